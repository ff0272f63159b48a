//! The few basics several Didban crates share, so each exists once:
//!
//! - [`clock`]: the wall clock as Unix milliseconds and nanoseconds;
//! - [`duration`]: Prometheus duration syntax (`5m`, `1h30m`), alone or with plain seconds,
//!   and Go's (`1.5s`, `250us`) as Jaeger writes it;
//! - [`bytes`]: byte sizes (`512`, `64KiB`, `1.5GB`);
//! - `otlp` (feature `otlp`): building OTLP attributes.
//!
//! This is not a place for helpers in general: a function belongs here only when several
//! crates need exactly the same thing and none of them is its natural owner.

pub mod bytes;
pub mod clock;
pub mod duration;
#[cfg(feature = "otlp")]
pub mod otlp;

pub use bytes::{parse_bytes, BytesError};
pub use clock::{now_ms, now_nanos};
pub use duration::{parse_duration, parse_go_duration_nanos, parse_seconds_or_duration, DurationError};
