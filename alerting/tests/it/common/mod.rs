//! Shared by the e-mail tests: a real SMTP server process (aiosmtpd) killed on drop, and
//! free ports for it.
#![allow(clippy::unwrap_used, dead_code)]

use std::process::Child;

/// An SMTP server started by a test; killed when dropped.
pub struct Smtp {
    pub child: Child,
    pub port: u16,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use didban_testkit::free_port;
