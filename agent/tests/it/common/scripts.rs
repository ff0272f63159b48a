//! The agent's own Python helper scripts in agent/tests/ (exporters, fill scripts, an
//! instrumented app), run through the test kit's Python guard. The servers they talk to
//! (PostgreSQL, Redis, RabbitMQ) and certificates come from `didban_testkit`.

use std::path::{Path, PathBuf};

use didban_testkit::python::{Python, Source};

/// Path of a helper script in agent/tests/.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(name)
}

/// Runs agent/tests/`name` with `args`; returns it (killed on drop) with the first line it
/// printed.
pub fn spawn_python(name: &str, args: &[&str]) -> (Python, String) {
    Python::start(Source::Script(&script(name)), args)
}
