//! Reading into and writing from a session over `std::io` (feature `io`, which the blocking
//! client enables): the one place this crate performs I/O. The sans-IO core only hands out its
//! receive buffer ([`Transport::read_with`]) and its output ([`Transport::poll_transmit`]).

use std::io::{self, IoSlice, Read, Write};

use bytes::BytesMut;

use crate::session::{ClientSession, ServerSession};

/// What the server and the client sessions have in common for a driver: the octets in and out.
pub trait Transport {
    /// See [`ServerSession::read_with`].
    fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut BytesMut, usize) -> Result<usize, E>,
    ) -> Result<Option<usize>, E>;
    /// See [`ServerSession::poll_transmit`].
    fn poll_transmit<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize;
    /// See [`ServerSession::handle_written`].
    fn handle_written(&mut self, n: usize);
    /// Octets of output waiting.
    fn pending_output(&self) -> usize;
}

macro_rules! transport {
    ($ty:ty) => {
        impl Transport for $ty {
            fn read_with<E>(
                &mut self,
                read: impl FnOnce(&mut BytesMut, usize) -> Result<usize, E>,
            ) -> Result<Option<usize>, E> {
                <$ty>::read_with(self, read)
            }
            fn poll_transmit<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
                <$ty>::poll_transmit(self, dst)
            }
            fn handle_written(&mut self, n: usize) {
                <$ty>::handle_written(self, n)
            }
            fn pending_output(&self) -> usize {
                <$ty>::pending_output(self)
            }
        }
    };
}
transport!(ServerSession);
transport!(ClientSession);

/// Writes as much of the session's output as `w` accepts with vectored writes, retrying
/// `Interrupted`; stops at `WouldBlock` (returned as `Ok` with what was written so far) or when
/// the output is empty.
pub fn write_output<T: Transport + ?Sized, W: Write + ?Sized>(
    session: &mut T,
    w: &mut W,
) -> io::Result<usize> {
    let mut total = 0;
    while session.pending_output() > 0 {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = session.poll_transmit(&mut slices);
        match w.write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                session.handle_written(written);
                total += written;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Reads once from `r` into the session's receive buffer (the session sizes the read),
/// retrying `Interrupted`. `Ok(Some(0))` is the end of the stream; `Ok(None)`: the session
/// wants no input now.
///
/// The read goes into zeroed space of the session's buffer (this crate has no `unsafe`, and
/// reading into uninitialised memory needs it): a driver that counts every cycle, like the
/// reference server, reads into the spare capacity itself through `read_with`.
pub fn read_input<T: Transport + ?Sized, R: Read + ?Sized>(
    session: &mut T,
    r: &mut R,
) -> io::Result<Option<usize>> {
    session.read_with(|buf, max| {
        let start = buf.len();
        buf.resize(start + max, 0);
        let got = loop {
            match r.read(&mut buf[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match got {
            Ok(n) => {
                buf.truncate(start + n);
                Ok(n)
            }
            Err(e) => {
                buf.truncate(start);
                Err(e)
            }
        }
    })
}
