//! The octets a session owns, in the manner of rustls's connection: its receive buffer and its
//! output queue. The session sizes every read itself, so a driver never parses a `Length`: it
//! asks how much to read ([`Wire::prepare_read`]), reads that much into the buffer the session
//! hands it, and writes what the output queue holds.
//!
//! **Read sizing.** Between frames a read takes at most [`READ_CHUNK`] octets (64 KiB), and the
//! buffer never holds more than one maximum-size frame plus its overhead (spec §8.1: a peer's
//! claim is checked against the limit before anything is reserved for it, §8.2). Once the
//! Length of a frame of [`LARGE_FRAME`] octets or more has arrived, that frame gets a buffer of
//! exactly its size and the read ends where the frame does: a large ECHO_REPLY's payload is a
//! slice of that buffer (zero copy), and reading across frame boundaries would make each such
//! allocation pin the start of the next frame too — the memory a slow reader held was about
//! twice its queued output before this rule, and what a connection pins is now what its
//! queue holds.

use std::io::IoSlice;

use bytes::{Bytes, BytesMut};

use super::outbox::{Outbox, SpareBuffers};
use crate::decoder::FrameDecoder;
use crate::frame::{FRAME_OVERHEAD, LENGTH_PREFIX_LEN};

/// Most octets one read takes between frames.
pub const READ_CHUNK: usize = 64 * 1024;
/// The smallest read window. A read takes as much as the buffer's capacity allows (at least
/// this, at most [`READ_CHUNK`]): a buffer that reads fill grows as `BytesMut` grows, one given
/// back empty and taken again starts small, so a connection that sends little holds little and
/// no per-connection state is kept for it.
pub const READ_START: usize = 8 * 1024;
/// Frames at least this large get a receive buffer of exactly their size.
pub const LARGE_FRAME: usize = 16 * 1024;

/// A session's receive buffer and output queue.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// Received octets not yet consumed.
    pub(crate) input: BytesMut,
    /// Encoded frames waiting for the socket.
    pub(crate) outbox: Outbox,
}

impl Wire {
    /// A wire whose output already holds `outbox` (a client's preface and HELLO).
    pub(crate) fn with_output(outbox: Outbox) -> Self {
        Wire {
            outbox,
            ..Wire::default()
        }
    }

    /// Reads once through `read` (see the sessions' `read_with`): makes room, lets `read`
    /// append at most the room it was given. `Ok(None)`: there is no room (the buffer holds a
    /// maximum-size frame).
    pub(crate) fn read_with<E>(
        &mut self,
        decoder: &FrameDecoder,
        frames_sized: bool,
        read: impl FnOnce(&mut BytesMut, usize) -> Result<usize, E>,
    ) -> Result<Option<usize>, E> {
        let max = self.prepare_read(decoder, frames_sized);
        if max == 0 {
            return Ok(None);
        }
        let before = self.input.len();
        let n = read(&mut self.input, max)?;
        // A reader that appended more than it was given would defeat the limit: drop the excess.
        if self.input.len() > before + max {
            self.input.truncate(before + max);
        }
        let n = n.min(max);
        Ok(Some(n))
    }

    /// Makes room for one read and returns how many octets may be appended to
    /// [`Wire::input`]. `frames_sized`: the handshake is over, so a large frame may be read
    /// into a buffer of its own.
    pub(crate) fn prepare_read(&mut self, decoder: &FrameDecoder, frames_sized: bool) -> usize {
        let buffered = self.input.len();
        let limit = FRAME_OVERHEAD + decoder.max_frame_size() as usize;
        let room = limit.saturating_sub(buffered);
        if room == 0 {
            return 0;
        }
        if frames_sized && let Some(total) = self.large_frame(decoder) {
            if self.input.capacity() < total {
                // One exact allocation for the frame (the octets of it already here move once).
                let mut fresh = BytesMut::with_capacity(total);
                fresh.extend_from_slice(&self.input);
                self.input = fresh;
            }
            return (total - buffered).min(room);
        }
        let want = room.min(self.window());
        self.input.reserve(want);
        want
    }

    /// The read window between frames: the buffer's capacity, at least [`READ_START`] and at
    /// most [`READ_CHUNK`].
    fn window(&self) -> usize {
        self.input.capacity().clamp(READ_START, READ_CHUNK)
    }

    /// How many octets one read may append now, without making room for them (for a driver
    /// that reads into a buffer of its own and hands the octets over).
    pub(crate) fn room(&self, decoder: &FrameDecoder, frames_sized: bool) -> usize {
        let buffered = self.input.len();
        let room = (FRAME_OVERHEAD + decoder.max_frame_size() as usize).saturating_sub(buffered);
        match self.large_frame(decoder).filter(|_| frames_sized) {
            Some(total) => (total - buffered).min(room),
            None => room.min(self.window()),
        }
    }

    /// The total size of the frame at the front of the input, if its Length has arrived, the
    /// frame is large, within the limit, and not complete yet.
    fn large_frame(&self, decoder: &FrameDecoder) -> Option<usize> {
        let prefix = self.input.first_chunk::<LENGTH_PREFIX_LEN>()?;
        let length = u32::from_be_bytes(*prefix);
        // A Length above the limit is the decoder's to reject (FRAME_TOO_LARGE): never
        // allocate for it (spec §8.2).
        if length > decoder.max_frame_size() {
            return None;
        }
        let total = LENGTH_PREFIX_LEN + length as usize;
        (total >= LARGE_FRAME && total > self.input.len()).then_some(total)
    }

    /// Fills `dst` with the queued output (see [`Outbox::io_slices`]).
    pub(crate) fn poll_transmit<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.outbox.io_slices(dst)
    }

    /// Octets of the output the driver wrote.
    pub(crate) fn handle_written(&mut self, n: usize) {
        self.outbox.advance(n);
    }

    /// Everything queued, as one buffer (tests, simple drivers).
    pub(crate) fn take_output(&mut self) -> Bytes {
        self.outbox.take_all()
    }

    /// Frees the buffers of an idle connection (both empty ones).
    pub(crate) fn release(&mut self) {
        self.outbox.release_memory();
        if self.input.is_empty() {
            self.input = BytesMut::new();
        }
    }

    /// The empty buffers, for a driver's pool: the input buffer if it is empty and has capacity,
    /// and the output queue's if it is empty.
    pub(crate) fn take_spare(&mut self) -> (Option<BytesMut>, Option<SpareBuffers>) {
        let input = (self.input.is_empty() && self.input.capacity() > 0)
            .then(|| std::mem::take(&mut self.input));
        (input, self.outbox.take_spare())
    }

    /// Gives an idle connection spare buffers from a driver's pool; hands back those it does
    /// not take (it takes an input buffer only when it holds none).
    pub(crate) fn reuse(
        &mut self,
        input: Option<BytesMut>,
        output: Option<SpareBuffers>,
    ) -> (Option<BytesMut>, Option<SpareBuffers>) {
        let input = match input {
            Some(b) if self.input.is_empty() && self.input.capacity() == 0 => {
                self.input = b;
                None
            }
            other => other,
        };
        let output = output.and_then(|s| self.outbox.reuse(s));
        (input, output)
    }
}
