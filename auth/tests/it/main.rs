//! didban-auth through its public API and real router layers. One test binary for the crate.
#![allow(clippy::unwrap_used)]

mod sign_in_burst;
