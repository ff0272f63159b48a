//! What Didban's tests share, so each exists once (a dev-dependency only; nothing here is
//! part of the product):
//!
//! - [`ports`]: loopback ports that no other test and no outgoing connection can take
//!   between picking and binding;
//! - [`didban`]: the real `didban serve` binary as a child process, started on reserved
//!   ports and waited for until it is ready;
//! - re-exports of the one clock and the one OTLP attribute builder.
//!
//! Tests panic on failure; so do these helpers (with a message that says what failed).
#![allow(clippy::unwrap_used)]

pub mod didban;
pub mod ports;

pub use didban::{Didban, Start};
pub use didban_base::otlp::{kv, kv_any, string_value};
pub use didban_base::{now_ms, now_nanos};
pub use ports::{free_port, reserve, ReservedPort};
