//! What bounds one evaluation besides the engine's options: the caller's deadline and a
//! cancel flag the caller sets when nobody waits for the answer any more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Per-query bounds handed to [`Engine::instant_query_with`] / [`Engine::range_query_with`].
/// The evaluator checks both at its loop boundaries (per series, per few steps, per node).
///
/// [`Engine::instant_query_with`]: super::Engine::instant_query_with
/// [`Engine::range_query_with`]: super::Engine::range_query_with
#[derive(Debug, Clone, Default)]
pub struct QueryControl {
    /// Evaluation fails with a timeout after this instant (the earlier of this and the
    /// engine's own timeout wins). Time spent queued before evaluation counts.
    pub deadline: Option<Instant>,
    /// Evaluation stops with [`PromqlError::Cancelled`] soon after this becomes true.
    ///
    /// [`PromqlError::Cancelled`]: super::PromqlError::Cancelled
    pub cancel: Option<Arc<AtomicBool>>,
}

impl QueryControl {
    /// True once the caller asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}
