//! What a store does with the metastore's live rows each maintenance round: the blocks it
//! lists that are no longer live (the compactor retired them) leave its list.

use std::collections::HashSet;
use std::sync::Arc;

/// Removes from `list` the blocks whose bucket name (`name_of`; `None` for a local block,
/// always kept) is not in `live`, and returns them, so the caller drops their cached copies
/// once no query holds them.
pub(crate) fn take_retired<B>(
    list: &mut Vec<Arc<B>>,
    live: &HashSet<&str>,
    name_of: impl Fn(&B) -> Option<&str>,
) -> Vec<Arc<B>> {
    let mut gone = Vec::new();
    list.retain(|b| match name_of(b) {
        Some(name) if !live.contains(name) => {
            gone.push(b.clone());
            false
        }
        _ => true,
    });
    gone
}
