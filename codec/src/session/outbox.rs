//! The output queue of a session: encoded frames waiting to be written.
//!
//! Small frames are encoded back to back into one `BytesMut` (one iovec for many responses);
//! payloads of [`ZERO_COPY_MIN`] bytes or more are queued as their own `Bytes` chunk, sharing the
//! memory they were received in, so an ECHO_REPLY of 64 KiB is never copied. A driver writes the
//! queue with one vectored write ([`Outbox::io_slices`]) and reports how much went out
//! ([`Outbox::advance`]); partial writes simply leave the rest queued.
//!
//! The buffers sit behind one pointer, allocated on the first frame and given back by
//! [`Outbox::release_memory`]: a server keeps thousands of idle connections, and an empty
//! `VecDeque` and `BytesMut` in place would cost 64 bytes each of them.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use crate::message::{EncodeError, Message, Octets};

/// Payloads at least this large are queued by reference instead of copied.
pub const ZERO_COPY_MIN: usize = 1024;

/// Encoded frames waiting for the socket: small frames packed together, large payloads queued by
/// reference, written with one vectored write.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    /// `None` until the first frame, and again once released.
    bufs: Option<Box<Bufs>>,
    /// Bytes queued in total.
    len: usize,
}

/// The buffers of an empty [`Outbox`], detached for reuse by another ([`Outbox::take_spare`]).
#[derive(Debug)]
pub struct SpareBuffers(Box<Bufs>);

impl SpareBuffers {
    /// Bytes of memory these buffers hold (what a pool of them should bound).
    pub fn capacity(&self) -> usize {
        self.0.tail.capacity() + self.0.chunks.capacity() * std::mem::size_of::<Bytes>()
    }
}

#[derive(Clone, Debug, Default)]
struct Bufs {
    /// Sealed chunks, in order, before `tail`.
    chunks: VecDeque<Bytes>,
    /// Where small frames are encoded; written after every chunk.
    tail: BytesMut,
}

impl Outbox {
    /// An empty queue (allocates nothing until the first frame).
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Encodes `msg` as one frame at the end of the queue — the one place a session encodes
    /// anything. A trailing payload of [`ZERO_COPY_MIN`] octets or more that is held in shared
    /// storage ([`Octets::shared`]: a request's receive buffer, a response's `Bytes`) is queued
    /// by reference, never copied. Fails, queueing nothing, if the frame would exceed `limit`.
    pub(crate) fn push<B: Octets>(
        &mut self,
        msg: &Message<B>,
        version: u8,
        request_id: u32,
        limit: u32,
    ) -> Result<(), EncodeError> {
        let tail = &mut self.bufs.get_or_insert_default().tail;
        let before = tail.len();
        let payload = msg.encode_split(version, request_id, limit, tail)?;
        self.len += tail.len() - before;
        let Some(payload) = payload else {
            return Ok(());
        };
        let octets = payload.as_ref();
        if octets.is_empty() {
            return Ok(());
        }
        // A small payload is copied either way: no reference count taken and dropped for it.
        match payload.shared().filter(|_| octets.len() >= ZERO_COPY_MIN) {
            Some(b) => self.push_payload(b.clone()),
            None => {
                self.len += octets.len();
                self.bufs
                    .get_or_insert_default()
                    .tail
                    .extend_from_slice(octets);
            }
        }
        Ok(())
    }

    /// Queues a frame of the session's own (HELLO, WELCOME, GOODBYE, ERROR, CANCEL): small and
    /// always valid.
    pub(crate) fn push_own<B: Octets>(&mut self, msg: &Message<B>, version: u8, request_id: u32) {
        // Our own messages always serialize and are far below any limit; a failure here would
        // be a bug in this crate, so it is not hidden in debug builds.
        let r = self.push(msg, version, request_id, u32::MAX);
        debug_assert!(r.is_ok(), "encoding our own message failed: {r:?}");
    }

    /// Queues `payload` after everything queued so far, without copying it if it is large.
    fn push_payload(&mut self, payload: Bytes) {
        self.len += payload.len();
        let b = self.bufs.get_or_insert_default();
        if payload.len() < ZERO_COPY_MIN {
            b.tail.extend_from_slice(&payload);
            return;
        }
        if !b.tail.is_empty() {
            b.chunks.push_back(b.tail.split().freeze());
        }
        b.chunks.push_back(payload);
    }

    /// Appends raw bytes (the preface).
    pub(crate) fn push_slice(&mut self, bytes: &[u8]) {
        self.bufs
            .get_or_insert_default()
            .tail
            .extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Fills `dst` with the queued chunks in order; returns how many slots were used.
    pub fn io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let Some(b) = &self.bufs else { return 0 };
        let mut n = 0;
        for chunk in b
            .chunks
            .iter()
            .map(|c| &c[..])
            .chain(std::iter::once(&b.tail[..]))
        {
            if n == dst.len() {
                break;
            }
            if !chunk.is_empty() {
                dst[n] = IoSlice::new(chunk);
                n += 1;
            }
        }
        n
    }

    /// Drops the first `n` bytes, which were written.
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len, "advanced past the queued bytes");
        let Some(b) = &mut self.bufs else { return };
        self.len -= n;
        while n > 0 {
            match b.chunks.front_mut() {
                Some(chunk) if chunk.len() <= n => {
                    n -= chunk.len();
                    b.chunks.pop_front();
                }
                Some(chunk) => {
                    chunk.advance(n);
                    n = 0;
                }
                None => {
                    b.tail.advance(n);
                    n = 0;
                }
            }
        }
        if self.len == 0 {
            // Reuse the allocation from its start instead of growing it forever.
            b.tail.clear();
        }
    }

    /// Gives back the memory of an empty queue (for idle connections).
    pub fn release_memory(&mut self) {
        if self.is_empty() {
            self.bufs = None;
        }
    }

    /// Detaches the buffers of an empty queue so that another queue can reuse them
    /// ([`Outbox::reuse`]): a driver that serves many connections in turn keeps a few in a pool
    /// instead of freeing and allocating them on every turn. `None` if the queue is not empty or
    /// holds no buffers.
    pub fn take_spare(&mut self) -> Option<SpareBuffers> {
        if !self.is_empty() {
            return None;
        }
        let mut b = self.bufs.take()?;
        b.chunks.clear();
        b.tail.clear();
        // Back to the start of its allocation if nothing else shares it (large payloads split
        // off earlier may have been written and dropped by now); otherwise a fresh one later.
        let cap = b.tail.capacity();
        if !b.tail.try_reclaim(cap.max(1)) {
            b.tail = BytesMut::new();
        }
        Some(SpareBuffers(b))
    }

    /// Gives an empty queue that holds no buffers the spare ones of another; otherwise hands
    /// them back.
    pub fn reuse(&mut self, spare: SpareBuffers) -> Option<SpareBuffers> {
        if self.bufs.is_some() {
            return Some(spare);
        }
        self.bufs = Some(spare.0);
        None
    }

    /// Discards everything queued, e.g. before an abortive close (a frame may be cut short:
    /// only for a connection that will be reset).
    pub fn clear(&mut self) {
        self.len = 0;
        self.bufs = None;
    }

    /// Takes everything queued as one contiguous buffer (tests, simple drivers).
    pub fn take_all(&mut self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len);
        if let Some(b) = &mut self.bufs {
            for c in b.chunks.drain(..) {
                out.extend_from_slice(&c);
            }
            out.extend_from_slice(&b.tail);
            b.tail.clear();
        }
        self.len = 0;
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_resume_in_order() {
        let mut o = Outbox::new();
        o.push_slice(b"head");
        o.push_payload(Bytes::from(vec![7u8; 2000]));
        o.push_slice(b"tail");
        let expect: Vec<u8> = [&b"head"[..], &[7u8; 2000][..], b"tail"].concat();
        let mut got = Vec::new();
        // A peer that accepts 3 bytes per write: the queue resumes exactly where it stopped.
        while !o.is_empty() {
            let mut slices = [IoSlice::new(&[]); 64];
            let n = o.io_slices(&mut slices);
            assert!(n > 0);
            let k = slices[0].len().min(3);
            got.extend_from_slice(&slices[0][..k]);
            o.advance(k);
        }
        assert_eq!(got, expect);
        assert!(o.is_empty());
        o.release_memory();
        assert!(o.bufs.is_none());
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(o.io_slices(&mut slices), 0);
        o.advance(0);
        assert_eq!(o.take_all().len(), 0);
        o.push_slice(b"again");
        assert_eq!(&o.take_all()[..], b"again");
    }

    #[test]
    fn spare_buffers_move_between_queues_only_when_empty() {
        let mut a = Outbox::new();
        assert!(a.take_spare().is_none(), "no buffers yet");
        a.push_slice(&[1u8; 3000]);
        assert!(a.take_spare().is_none(), "not while bytes are queued");
        a.advance(1000);
        a.push_payload(Bytes::from(vec![2u8; 4000])); // a chunk split off the tail
        a.advance(a.len());
        let spare = a.take_spare().expect("an empty queue gives its buffers");
        assert!(a.bufs.is_none());
        assert!(
            spare.capacity() >= 3000,
            "the tail's allocation is kept from its start"
        );
        let mut b = Outbox::new();
        b.push_slice(b"x");
        let spare = b
            .reuse(spare)
            .expect("a queue with buffers hands them back");
        let mut c = Outbox::new();
        assert!(c.reuse(spare).is_none());
        let ptr = c.bufs.as_ref().unwrap().tail.as_ptr();
        c.push_slice(b"reused");
        assert_eq!(
            c.bufs.as_ref().unwrap().tail.as_ptr(),
            ptr,
            "no new allocation"
        );
        assert_eq!(&c.take_all()[..], b"reused");
    }
}
