//! How many threads one read or one query may use at once: the cores this process may
//! run on, at most 8 (more only adds coordination for the reads a dashboard makes).

use std::sync::OnceLock;

/// Most threads one query's range functions or one head read split their work over.
const MAX_READ_THREADS: usize = 8;

/// The threads one read may use: the cores available to this process (at most
/// [`MAX_READ_THREADS`]), found once.
pub(crate) fn read_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_READ_THREADS)))
}
