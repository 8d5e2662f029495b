// SPDX-License-Identifier: GPL-2.0
//! Host build of tcp_listener's `core`-only file: the HTTP/1.1 request parser (`http.rs`), as
//! the kernel module builds it.

#[path = "../../http.rs"]
pub mod http;

#[cfg(test)]
mod tests;

#[path = "../../params.rs"]
pub mod params;

#[cfg(test)]
mod params_tests;
