//! The one guard for a child process a test starts (a server, a helper script, the agent
//! binary): whatever happens in the test, the process does not outlive it.

use std::process::Child;

/// A child process killed (and reaped) when dropped, so a failing test leaves no server
/// behind holding a port or a directory.
pub struct Proc(
    /// The child process.
    pub Child,
);

impl Proc {
    /// The process id, e.g. to send it a signal.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// True once the process has exited (it is then reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
