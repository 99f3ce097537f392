//! A reactor's few spare I/O buffers, passed from one connection's turn to the next.
//!
//! A connection gives its input buffer and its output queue's buffers back as soon as a turn
//! leaves them empty (idle connections must cost little, see [`crate::reactor`]). Freeing them
//! there and allocating them again on the connection's next turn cost a `malloc`, a `free` and
//! the growth of the output buffer by doubling on every turn of every busy connection. A
//! reactor drives one connection at a time, so a handful of spare buffers serves all of them:
//! the turn that ends puts its buffers here, the next turn takes them (still in the cache).
//!
//! The pool is bounded in count and in each buffer's size, so it holds at most
//! `SPARES * (MAX_SPARE + MAX_SPARE)` bytes per reactor (1 MiB): memory the budget does not
//! charge to any connection. Buffers larger than that (a 1 MiB frame's) are freed as before.
//! When no connection of the reactor took a turn for a sweep period (a second), the reactor
//! frees the pool as well: after a load, the memory goes back.

use bytes::BytesMut;
use echowire_codec::session::SpareBuffers;

/// Spare buffers of each kind a reactor keeps.
const SPARES: usize = 8;
/// Larger buffers are freed, not kept.
const MAX_SPARE: usize = 64 * 1024;
/// An input buffer is kept only if it has room for this much (a turn's worth of small frames).
/// The pool never allocates: with none spare, a connection's first read allocates exactly what
/// it brought (an input buffer sized ahead of the read would be grown by reallocation under a
/// 64 KiB read, and the non-reader test saw RSS stay 10-15 MiB higher after such a load).
const INPUT_CAPACITY: usize = 8 * 1024;

#[derive(Default)]
pub(crate) struct BufferPool {
    inputs: Vec<BytesMut>,
    outputs: Vec<SpareBuffers>,
}

impl BufferPool {
    /// A spare input buffer, if any. None: the first read allocates exactly what it brings.
    pub(crate) fn input(&mut self) -> Option<BytesMut> {
        self.inputs.pop()
    }

    /// Takes back an empty input buffer if nothing else refers to its memory (an ECHO_REPLY
    /// still queued may share it) and it is not too large.
    pub(crate) fn put_input(&mut self, mut buf: BytesMut) {
        debug_assert!(buf.is_empty());
        if self.inputs.len() < SPARES
            && buf.try_reclaim(INPUT_CAPACITY)
            && buf.capacity() <= MAX_SPARE
        {
            self.inputs.push(buf);
        }
    }

    /// Spare output buffers, if any.
    pub(crate) fn output(&mut self) -> Option<SpareBuffers> {
        self.outputs.pop()
    }

    /// Frees every spare buffer (the reactor went quiet) and asks the allocator to give its
    /// free pages back to the system.
    pub(crate) fn clear(&mut self) {
        self.inputs = Vec::new();
        self.outputs = Vec::new();
        trim();
    }

    pub(crate) fn put_output(&mut self, spare: SpareBuffers) {
        if self.outputs.len() < SPARES && spare.capacity() <= MAX_SPARE {
            self.outputs.push(spare);
        }
    }
}

/// Returns the allocator's free pages to the system.
///
/// glibc gives memory back on `free` only from the top of a heap: one long-lived allocation
/// made late (a timer node, a slab's growth, a spare buffer) keeps every page freed below it
/// resident. `malloc_trim` releases free pages anywhere in every arena. It walks the arenas
/// under their locks, so it is called only when a reactor goes quiet: at most once per sweep
/// period per reactor, and never while a reactor serves load.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: `malloc_trim` takes no pointer, touches only the allocator's own free lists under
    // its arena locks, and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_reusable_buffers_and_frees_the_rest() {
        let mut pool = BufferPool::default();
        assert!(pool.input().is_none(), "the pool never allocates");
        let mut a = BytesMut::with_capacity(INPUT_CAPACITY);
        a.extend_from_slice(b"frame");
        let frame = a.split_to(5).freeze();
        pool.put_input(a);
        assert!(
            pool.inputs.is_empty(),
            "still shared with a frame: not reusable"
        );
        drop(frame);

        let mut a = BytesMut::with_capacity(INPUT_CAPACITY);
        let ptr2 = a.as_ptr();
        a.extend_from_slice(b"frame");
        drop(a.split_to(5));
        pool.put_input(a);
        assert_eq!(pool.inputs.len(), 1);
        assert_eq!(
            pool.input().map(|b| b.as_ptr()),
            Some(ptr2),
            "the same allocation, from its start"
        );

        pool.put_input(BytesMut::with_capacity(MAX_SPARE * 2));
        assert!(pool.inputs.is_empty(), "too large to keep");
        for _ in 0..SPARES + 3 {
            pool.put_input(BytesMut::with_capacity(INPUT_CAPACITY));
        }
        assert_eq!(pool.inputs.len(), SPARES, "bounded in count");
    }
}
