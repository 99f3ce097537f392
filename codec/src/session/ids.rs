//! The set of request IDs a server session has outstanding (spec §2.5).
//!
//! An idle connection has none, and a server holds thousands of idle connections: the set is
//! one pointer until the first request, its table is allocated then and given back by
//! [`IdSet::release`] once empty. A `HashSet` in place would cost 48 bytes per connection even
//! empty (its table header and its random hasher keys). The hasher stays `RandomState`: the IDs
//! are chosen by the peer, and a fixed hash would let it force collisions.

use std::collections::HashSet;

#[derive(Debug, Default)]
#[allow(
    clippy::box_collection,
    reason = "one pointer in the session instead of a 48-byte empty HashSet (see the module docs)"
)]
pub(crate) struct IdSet(Option<Box<HashSet<u32>>>);

impl IdSet {
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        self.0.as_ref().is_some_and(|s| s.contains(&id))
    }

    /// Adds `id`; `false` if it was already there.
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        self.0.get_or_insert_default().insert(id)
    }

    /// Removes `id`; `false` if it was not there.
    pub(crate) fn remove(&mut self, id: u32) -> bool {
        self.0.as_mut().is_some_and(|s| s.remove(&id))
    }

    /// Forgets every ID, keeping the table for the next burst.
    pub(crate) fn clear(&mut self) {
        if let Some(s) = &mut self.0 {
            s.clear();
        }
    }

    /// Gives the table back if the set is empty.
    pub(crate) fn release(&mut self) {
        if self.is_empty() {
            self.0 = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_set_and_gives_its_table_back_only_when_empty() {
        let mut s = IdSet::default();
        assert!(s.is_empty() && !s.contains(7) && !s.remove(7));
        assert!(s.insert(7));
        assert!(!s.insert(7));
        assert!(s.insert(9));
        assert_eq!(s.len(), 2);
        s.release();
        assert!(s.0.is_some(), "a non-empty set keeps its table");
        assert!(s.remove(7) && !s.remove(7));
        assert!(s.contains(9) && !s.contains(7));
        s.clear();
        assert!(s.is_empty() && s.0.is_some());
        s.release();
        assert!(s.0.is_none());
        assert_eq!(std::mem::size_of::<IdSet>(), std::mem::size_of::<usize>());
    }
}
