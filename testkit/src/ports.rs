//! Ports for test servers that cannot be taken by someone else before the server binds them.
//!
//! Binding `127.0.0.1:0` hands out a port from the kernel's ephemeral range, the same range
//! outgoing connections draw their local ports from; between the test dropping that socket
//! and the server binding the port, a connection (or a parallel test doing the same) could
//! take it, and the server fails with "Address already in use". Here ports come from
//! 20000–31999 instead, below Linux' ephemeral range (32768–60999), handed out in sequence
//! within a process from a start that depends on the process id, and each is held bound by
//! a [`ReservedPort`] until the test releases it to the server.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

const FIRST: u32 = 20_000;
const END: u32 = 32_000;

/// A loopback port held bound (so nobody else can take it) until [`ReservedPort::release`].
/// It is held by a listening socket: a connection made to it meanwhile is accepted by the
/// kernel and then hangs, it is not refused. A test simulating "nothing listens here" uses
/// [`free_port`] instead.
pub struct ReservedPort {
    port: u16,
    held: Option<TcpListener>,
}

impl ReservedPort {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops holding the port so a server can bind it; returns the number. Call right before
    /// starting the server.
    pub fn release(mut self) -> u16 {
        self.held = None;
        self.port
    }
}

fn next_candidate() -> u32 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        // Processes started one after another (cargo runs test binaries in turn) start at
        // different places, so a port of a server that is still shutting down is not reused.
        let span = END - FIRST;
        AtomicU32::new(FIRST + (std::process::id() * 997) % span)
    });
    let n = next.fetch_add(1, Ordering::Relaxed);
    FIRST + (n - FIRST) % (END - FIRST)
}

/// Reserves a free loopback port, held bound until released.
pub fn reserve() -> ReservedPort {
    for _ in 0..(END - FIRST) {
        let port = next_candidate() as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return ReservedPort { port, held: Some(l) };
        }
    }
    panic!("no free loopback port in {FIRST}..{END}");
}

/// A free loopback port, released at once: for servers started right after. No other user of
/// this module gets the same port in this process.
pub fn free_port() -> u16 {
    reserve().release()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_held_and_free_after_release() {
        let a = reserve();
        let b = reserve();
        assert_ne!(a.port(), b.port());
        assert!(u32::from(a.port()) >= FIRST && u32::from(a.port()) < END);
        assert!(TcpListener::bind(a.addr()).is_err(), "a reserved port is held");
        let port = a.release();
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "released");
    }
}
