//! The set of request IDs a server session has outstanding (spec §2.5).
//!
//! An idle connection has none, and a server holds thousands of idle connections: the set is
//! one pointer until the first request, its table is allocated then and given back by
//! [`IdSet::release`] once empty. A `HashSet` in place would cost 48 bytes per connection even
//! empty (its table header and its random hasher keys).
//!
//! Up to [`INLINE`] IDs — every pipelining depth seen in practice — live in a small array that
//! is searched linearly: a few vector compares, no hashing. The set is checked and changed three
//! times per request (duplicate check, insert, remove on the answer), and SipHash for those cost
//! about 4% of a reactor's CPU per small ECHO. Past [`INLINE`] the IDs move to a `HashSet` whose
//! hasher stays `RandomState`: the IDs are chosen by the peer, and a weak or fixed hash would let
//! it force collisions; the array's linear search is bounded by its size, so it cannot be forced
//! into anything worse either.

use std::collections::HashSet;

/// IDs kept in the inline array before the set moves to a hash table.
pub(crate) const INLINE: usize = 32;

#[derive(Clone, Debug, Default)]
pub(crate) struct IdSet(Option<Box<Table>>);

#[derive(Clone, Debug)]
struct Table {
    /// `small[..len]` are the IDs while `large` is `None`.
    len: usize,
    small: [u32; INLINE],
    /// Once more than [`INLINE`] were outstanding at once: every ID is here.
    large: Option<HashSet<u32>>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            len: 0,
            small: [0; INLINE],
            large: None,
        }
    }
}

impl Table {
    fn small(&self) -> &[u32] {
        &self.small[..self.len]
    }
}

impl IdSet {
    pub(crate) fn len(&self) -> usize {
        match &self.0 {
            None => 0,
            Some(t) => t.large.as_ref().map_or(t.len, |h| h.len()),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        match &self.0 {
            None => false,
            Some(t) => match &t.large {
                Some(h) => h.contains(&id),
                None => t.small().contains(&id),
            },
        }
    }

    /// Adds `id`; `false` if it was already there.
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        let t = self.0.get_or_insert_default();
        if let Some(h) = &mut t.large {
            return h.insert(id);
        }
        if t.small().contains(&id) {
            return false;
        }
        if t.len < INLINE {
            t.small[t.len] = id;
            t.len += 1;
            return true;
        }
        let mut h = HashSet::with_capacity(INLINE * 2);
        h.extend(t.small().iter().copied());
        h.insert(id);
        t.large = Some(h);
        t.len = 0;
        true
    }

    /// Removes `id`; `false` if it was not there.
    pub(crate) fn remove(&mut self, id: u32) -> bool {
        let Some(t) = &mut self.0 else { return false };
        if let Some(h) = &mut t.large {
            return h.remove(&id);
        }
        match t.small().iter().position(|&x| x == id) {
            Some(i) => {
                t.small[i] = t.small[t.len - 1];
                t.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Forgets every ID, keeping the table for the next burst.
    pub(crate) fn clear(&mut self) {
        if let Some(t) = &mut self.0 {
            t.len = 0;
            if let Some(h) = &mut t.large {
                h.clear();
            }
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

    #[test]
    fn agrees_with_a_hash_set_across_the_move_to_the_table() {
        // A deterministic mix of inserts and removes over a small ID range, so that sizes cross
        // INLINE both ways and duplicates happen; every answer is checked against HashSet.
        let mut s = IdSet::default();
        let mut model = HashSet::new();
        let mut x: u32 = 12345;
        for step in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let id = (x >> 16) % 80;
            // Grow for a while, then shrink, then grow again.
            let inserting = (step / 2_000) % 2 == 0 || x & 3 == 0;
            if inserting {
                assert_eq!(s.insert(id), model.insert(id), "insert {id} at step {step}");
            } else {
                assert_eq!(
                    s.remove(id),
                    model.remove(&id),
                    "remove {id} at step {step}"
                );
            }
            assert_eq!(s.len(), model.len());
            assert_eq!(s.contains(id), model.contains(&id));
            if step % 5_000 == 4_999 {
                s.clear();
                model.clear();
                assert!(s.is_empty());
            }
        }
        assert!(
            s.0.as_ref().is_some_and(|t| t.large.is_some()),
            "the test crossed INLINE"
        );
    }
}
