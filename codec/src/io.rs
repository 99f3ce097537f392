//! Writing a session's output to a `std::io::Write` (feature `io`, which the blocking client
//! enables): the one place this crate performs I/O. The sans-IO core only hands out
//! [`Outbox::io_slices`] and takes [`Outbox::advance`].

use std::io::{self, IoSlice, Write};

use crate::session::Outbox;

/// Writes as much of `outbox` as `w` accepts with vectored writes, retrying `Interrupted`; stops
/// at `WouldBlock` (returned as `Ok` with what was written so far) or when the queue is empty.
pub fn write_outbox<W: Write + ?Sized>(outbox: &mut Outbox, w: &mut W) -> io::Result<usize> {
    let mut total = 0;
    while !outbox.is_empty() {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = outbox.io_slices(&mut slices);
        match w.write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => {
                outbox.advance(written);
                total += written;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}
