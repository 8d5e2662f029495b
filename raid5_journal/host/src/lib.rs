// SPDX-License-Identifier: GPL-2.0
//! Host build of raid5_journal's `core`-only files: the left-symmetric layout (`layout.rs`),
//! parity and the write planner (`parity.rs`), the superblock and array assembly
//! (`superblock.rs`), the journal format (`journal.rs`) and the table and status lines (`table.rs`), as the kernel module builds
//! them.

#[path = "../../journal.rs"]
pub mod journal;
#[path = "../../layout.rs"]
pub mod layout;
#[path = "../../parity.rs"]
pub mod parity;
#[path = "../../superblock.rs"]
pub mod superblock;
#[path = "../../table.rs"]
pub mod table;

#[cfg(test)]
mod journal_tests;
#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod parity_tests;
#[cfg(test)]
mod rng;
#[cfg(test)]
mod superblock_tests;
#[cfg(test)]
mod table_tests;
