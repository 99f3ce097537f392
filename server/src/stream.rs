//! One stream type over TCP and Unix-domain sockets, for each I/O style.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use bytes::BytesMut;

/// A non-blocking mio stream (reactor model).
#[derive(Debug)]
pub enum MioStream {
    /// TCP.
    Tcp(mio::net::TcpStream),
    /// Unix-domain.
    Unix(mio::net::UnixStream),
}

/// A blocking std stream (threaded and blocking models).
#[derive(Debug)]
pub enum StdStream {
    /// TCP.
    Tcp(std::net::TcpStream),
    /// Unix-domain.
    Unix(std::os::unix::net::UnixStream),
}

macro_rules! delegate_io {
    ($t:ty) => {
        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self {
                    Self::Tcp(s) => s.read(buf),
                    Self::Unix(s) => s.read(buf),
                }
            }
        }
        impl Write for $t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                match self {
                    Self::Tcp(s) => s.write(buf),
                    Self::Unix(s) => s.write(buf),
                }
            }
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                match self {
                    Self::Tcp(s) => s.write_vectored(bufs),
                    Self::Unix(s) => s.write_vectored(bufs),
                }
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl $t {
            /// Receives at most `max` octets straight into the spare capacity of `buf` (no
            /// scratch buffer, no zeroing); returns how many, 0 at the end of the stream. The
            /// session that owns `buf` reserved the room (`ServerSession::read_with`).
            #[allow(unsafe_code)]
            pub fn recv_into(&self, buf: &mut BytesMut, max: usize) -> io::Result<usize> {
                let start = buf.len();
                let room = (buf.capacity() - start).min(max);
                let spare = &mut buf.spare_capacity_mut()[..room];
                let n = match self {
                    Self::Tcp(s) => socket2::SockRef::from(s).recv(spare)?,
                    Self::Unix(s) => socket2::SockRef::from(s).recv(spare)?,
                };
                let len = start + n.min(room);
                // SAFETY: `recv` initialised the first `n` octets of `spare`, which starts at
                // `buf.len()` and lies within `buf`'s capacity (`n <= spare.len()`); `set_len`
                // covers exactly those octets.
                unsafe { buf.set_len(len) };
                Ok(n)
            }

            /// Shuts down one or both directions.
            pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                match self {
                    Self::Tcp(s) => s.shutdown(how),
                    Self::Unix(s) => s.shutdown(how),
                }
            }

            /// Makes the coming close abortive (spec §3.11): over TCP, `SO_LINGER` 0, so the
            /// peer sees a reset instead of a clean end of stream. A Unix-domain socket has no
            /// reset to send; dropping it is as abortive as it gets.
            pub fn set_abortive(&self) {
                if let Self::Tcp(s) = self {
                    let _ = socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO));
                }
            }
        }
    };
}

delegate_io!(MioStream);
delegate_io!(StdStream);

impl mio::event::Source for MioStream {
    fn register(&mut self, r: &mio::Registry, t: mio::Token, i: mio::Interest) -> io::Result<()> {
        match self {
            MioStream::Tcp(s) => s.register(r, t, i),
            MioStream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &mio::Registry, t: mio::Token, i: mio::Interest) -> io::Result<()> {
        match self {
            MioStream::Tcp(s) => s.reregister(r, t, i),
            MioStream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &mio::Registry) -> io::Result<()> {
        match self {
            MioStream::Tcp(s) => s.deregister(r),
            MioStream::Unix(s) => s.deregister(r),
        }
    }
}

impl MioStream {
    /// The peer's address, for logs (looked up when needed: a connection does not carry it).
    pub fn peer(&self) -> String {
        match self {
            MioStream::Tcp(s) => s
                .peer_addr()
                .map_or_else(|e| format!("(tcp peer unknown: {e})"), |a| a.to_string()),
            MioStream::Unix(s) => crate::listener::unix_peer(s),
        }
    }
}

impl StdStream {
    /// Sets both read and write timeouts.
    pub fn set_timeouts(
        &self,
        read: Option<std::time::Duration>,
        write: Option<std::time::Duration>,
    ) -> io::Result<()> {
        match self {
            StdStream::Tcp(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            StdStream::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
        }
    }
}

/// Whether an I/O error just means "try again later".
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
