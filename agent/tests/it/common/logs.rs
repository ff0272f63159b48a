//! Captures the agent's tracing output in a test (current-thread runtime), to check that a
//! problem is reported once and clearly.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Capture {
    captured: Captured,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Capture {
    pub fn text(&self) -> String {
        self.captured.text()
    }
}

/// Records WARN and above until the returned value is dropped.
pub fn capture() -> Capture {
    capture_at(tracing::Level::WARN)
}

/// Records `level` and above until the returned value is dropped.
pub fn capture_at(level: tracing::Level) -> Capture {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    Capture {
        captured,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}
