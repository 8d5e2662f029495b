// SPDX-License-Identifier: GPL-2.0
//! Host build of lightnvm's `core`-only files: the FTL (`ftl.rs`), its on-disk metadata
//! (`format.rs`) and the table (`table.rs`), as the kernel module builds them.

#[path = "../../format.rs"]
pub mod format;
#[path = "../../ftl.rs"]
pub mod ftl;
#[path = "../../table.rs"]
pub mod table;

#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod ftl_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod table_tests;
