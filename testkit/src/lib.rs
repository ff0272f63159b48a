//! What Didban's tests share, so each exists once (a dev-dependency only; nothing here is
//! part of the product):
//!
//! - [`ports`]: loopback ports that no other test and no outgoing connection can take
//!   between picking and binding;
//! - [`didban`]: the real `didban serve` binary as a child process, started on reserved
//!   ports and waited for until it is ready;
//! - real servers the tests talk to, each private to the test (own temp dir, reserved
//!   ports), ready only once it answers, gone on drop: [`postgres`], [`redis`],
//!   [`rabbitmq`], [`nats`] (JetStream), [`smtp`], [`nginx`], [`pgbouncer`], a three-node [`garage`] cluster (S3);
//!   with [`certs`] for their TLS variants;
//! - [`python`] helper processes, a [`gunicorn`] serving a test's WSGI app, and the
//!   [`browser`] (Chromium + Playwright);
//! - [`process`]: the one kill-on-drop guard for child processes;
//! - [`wait`]: polling for a condition with a deadline that only a hang reaches;
//! - [`tmpfs`]: a small private tmpfs that really fills up, for disk-full tests;
//! - re-exports of the one clock and the one OTLP attribute builder.
//!
//! Tests panic on failure; so do these helpers (with a message that says what failed).
#![allow(clippy::unwrap_used)]

pub mod browser;
pub mod certs;
pub mod didban;
pub mod garage;
pub mod gunicorn;
pub mod nats;
pub mod nginx;
pub mod pgbouncer;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod python;
pub mod rabbitmq;
pub mod redis;
pub mod rng;
pub mod smtp;
pub mod tmpfs;
pub mod wait;
pub mod webhook;

pub use didban::{Didban, Start};
pub use didban_base::otlp::{kv, kv_any, string_value};
pub use didban_base::{now_ms, now_nanos};
pub use ports::{free_port, reserve, ReservedPort};
