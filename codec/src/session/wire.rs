//! The octets a session owns, in the manner of rustls's connection: its receive buffer and its
//! output queue. The session sizes every read itself, so a driver never parses a `Length`: it
//! asks how much to read ([`Wire::prepare_read`]), reads that much into the buffer the session
//! hands it, and writes what the output queue holds.
//!
//! **Read sizing.** Between frames a read takes a window that adapts to the peer, as hyper's
//! adaptive read strategy does: it starts at [`READ_START`] (8 KiB), doubles after a read that
//! filled it, up to [`READ_CHUNK`] (64 KiB), and halves after two reads that used less than a
//! quarter of it. A connection that sends little holds little; one that streams large frames
//! reads several per system call (measured on 16 KiB ECHOs: a fixed 8 KiB window took 2.0 reads
//! per request and cost 2.2 times raw echo's CPU, the adaptive one about 0.5). The buffer never
//! holds more than one maximum-size frame plus its overhead (spec §8.1: a peer's claim is
//! checked against the limit before anything is reserved for it, §8.2). Once the
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
/// The smallest read window, and the first.
pub const READ_START: usize = 8 * 1024;
/// Frames at least this large get a receive buffer of exactly their size.
pub const LARGE_FRAME: usize = 16 * 1024;

/// A session's receive buffer and output queue.
#[derive(Clone, Debug, Default)]
pub(crate) struct Wire {
    /// Received octets not yet consumed.
    pub(crate) input: BytesMut,
    /// Encoded frames waiting for the socket.
    pub(crate) outbox: Outbox,
    /// The read window between frames.
    window: Window,
}

/// The adaptive read window (see the module docs): its size as a power of two times
/// [`READ_START`], and how many reads in a row used less than a quarter of it. Two octets: a
/// session is paid once per connection (a `u32` size cost the session 8 bytes of padding).
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    shift: u8,
    small: u8,
}

impl Window {
    /// The largest shift: [`READ_CHUNK`] is `READ_START << MAX_SHIFT`.
    const MAX_SHIFT: u8 = (READ_CHUNK / READ_START).trailing_zeros() as u8;

    fn get(self) -> usize {
        READ_START << self.shift
    }

    /// Records a read of `n` octets through a window of `offered` octets.
    fn record(&mut self, offered: usize, n: usize) {
        let size = self.get();
        if offered != size {
            return; // the read was sized by something else (the limit, a large frame's end)
        }
        if n >= size {
            self.shift = (self.shift + 1).min(Self::MAX_SHIFT);
            self.small = 0;
        } else if n < size / 4 {
            self.small += 1;
            if self.small >= 2 {
                self.shift = self.shift.saturating_sub(1);
                self.small = 0;
            }
        } else {
            self.small = 0;
        }
    }
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
        self.window.record(max, n);
        Ok(Some(n))
    }

    /// Appends octets a driver read into a buffer of its own, after asking [`Wire::room`].
    pub(crate) fn handle_input(&mut self, octets: &[u8]) {
        self.input.extend_from_slice(octets);
        self.window.record(self.window(), octets.len());
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

    /// The read window between frames (see the module docs).
    fn window(&self) -> usize {
        self.window.get()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(wire: &mut Wire, decoder: &FrameDecoder, available: usize) -> usize {
        let offered = wire.prepare_read(decoder, true);
        let n = available.min(offered);
        wire.input.extend_from_slice(&vec![0; n][..]);
        wire.window.record(offered, n);
        wire.input.clear(); // consumed (no frame is parsed here)
        offered
    }

    #[test]
    fn the_read_window_grows_with_full_reads_and_shrinks_with_small_ones() {
        let decoder = FrameDecoder::new(16 << 20);
        let mut wire = Wire::default();
        assert_eq!(read(&mut wire, &decoder, usize::MAX), READ_START);
        assert_eq!(read(&mut wire, &decoder, usize::MAX), 2 * READ_START);
        assert_eq!(read(&mut wire, &decoder, usize::MAX), 4 * READ_START);
        for _ in 0..4 {
            read(&mut wire, &decoder, usize::MAX);
        }
        assert_eq!(wire.window(), READ_CHUNK, "capped");
        // One small read is not a trend; two are.
        read(&mut wire, &decoder, 100);
        assert_eq!(wire.window(), READ_CHUNK);
        read(&mut wire, &decoder, 100);
        assert_eq!(wire.window(), READ_CHUNK / 2);
        for _ in 0..20 {
            read(&mut wire, &decoder, 10);
        }
        assert_eq!(wire.window(), READ_START, "floored");
    }

    #[test]
    fn a_read_bounded_by_a_large_frame_does_not_move_the_window() {
        let decoder = FrameDecoder::new(16 << 20);
        let mut wire = Wire::default();
        read(&mut wire, &decoder, usize::MAX);
        assert_eq!(wire.window(), 2 * READ_START);
        // The Length of a 32 KiB frame and a few octets of it.
        wire.input
            .extend_from_slice(&(32 * 1024u32 - 4).to_be_bytes());
        wire.input.extend_from_slice(&[0; 8]);
        let offered = wire.prepare_read(&decoder, true);
        assert_eq!(offered, 32 * 1024 - 12, "the rest of the frame, exactly");
        wire.window.record(offered, 10);
        wire.window.record(offered, 10);
        assert_eq!(wire.window(), 2 * READ_START);
    }
}
