//! Which indexes a read covers: everything, or only what no bucket holds yet (what an
//! ingester answers a querier with).

/// Which indexes a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every index: writable days, staged and uploaded sealed days.
    All,
    /// What no bucket holds yet: the writable days and the staged sealed ones.
    Unpublished,
}
