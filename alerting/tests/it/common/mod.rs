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

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
