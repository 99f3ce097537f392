//! A blocking client over any `Read + Write` stream: `std::net::TcpStream` or
//! `std::os::unix::net::UnixStream`. It drives [`ClientSession`]; all protocol logic is there.
//!
//! ```no_run
//! use echowire_codec::client::Client;
//! let mut client = Client::connect_tcp("127.0.0.1:7878", Default::default())?;
//! assert_eq!(&client.echo(b"hello")?[..], b"hello");
//! let _digest = client.compute(1000, b"seed")?;
//! // Pipelining: send several, then collect the responses by ID (they may arrive out of order).
//! let a = client.send(&echowire_codec::session::RequestKind::Ping { data: 1 })?;
//! let b = client.send(&echowire_codec::session::RequestKind::Ping { data: 2 })?;
//! client.wait(b)?;
//! client.wait(a)?;
//! client.goodbye()?;
//! # Ok::<(), echowire_codec::client::Error>(())
//! ```

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::path::Path;

use bytes::{Bytes, BytesMut};

use crate::message::{Sum, SumResult};
use crate::session::{
    ClientConfig, ClientError, ClientEvent, ClientSession, Negotiated, RequestKind, Response,
};

/// What can go wrong for the blocking client: its socket, or the protocol (the session's
/// [`ClientError`], which knows nothing of sockets).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The protocol failed, or the server answered with an error.
    #[error(transparent)]
    Session(#[from] ClientError),
}

/// A blocking Echowire client.
#[derive(Debug)]
pub struct Client<S: Read + Write> {
    stream: S,
    session: ClientSession,
    buf: BytesMut,
    /// Responses received while waiting for another ID.
    ready: HashMap<u32, Response>,
    /// Arrival order of `ready`, for [`Client::recv`].
    order: std::collections::VecDeque<u32>,
    goodbye: Option<(crate::error::ErrorCode, String)>,
}

impl Client<TcpStream> {
    /// Connects over TCP (with `TCP_NODELAY`) and completes the handshake.
    pub fn connect_tcp(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Client::handshake(stream, config)
    }
}

#[cfg(unix)]
impl Client<UnixStream> {
    /// Connects over a Unix socket and completes the handshake.
    pub fn connect_unix(path: impl AsRef<Path>, config: ClientConfig) -> Result<Self, Error> {
        Client::handshake(UnixStream::connect(path)?, config)
    }
}

impl<S: Read + Write> Client<S> {
    /// Sends preface and HELLO on `stream` and waits for WELCOME.
    pub fn handshake(stream: S, config: ClientConfig) -> Result<Self, Error> {
        let mut client = Client {
            stream,
            session: ClientSession::new(config),
            buf: BytesMut::with_capacity(8192),
            ready: HashMap::new(),
            order: Default::default(),
            goodbye: None,
        };
        client.flush()?;
        match client.next_event()? {
            ClientEvent::Welcome(_) => Ok(client),
            ClientEvent::ConnectionError { code, message } => {
                Err(ClientError::Server { code, message }.into())
            }
            other => Err(ClientError::Protocol(format!("expected WELCOME, got {other:?}")).into()),
        }
    }

    /// What the handshake settled.
    pub fn negotiated(&self) -> &Negotiated {
        self.session
            .negotiated()
            .expect("handshake completed in Client::handshake")
    }

    /// The session, for callers that need more control.
    pub fn session(&mut self) -> &mut ClientSession {
        &mut self.session
    }

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        while !self.session.outbox().is_empty() {
            crate::io::write_outbox(self.session.outbox(), &mut self.stream)?;
        }
        self.stream.flush()?;
        Ok(())
    }

    /// Queues and sends a request; returns its ID. Responses are collected with [`Client::wait`]
    /// or [`Client::recv`]. If the server's `max_outstanding` is reached, responses are read
    /// (and kept) until there is room.
    pub fn send(&mut self, kind: &RequestKind) -> Result<u32, Error> {
        loop {
            match self.session.send(kind) {
                Err(ClientError::TooManyOutstanding(_)) => {
                    self.flush()?;
                    self.read_one()?;
                }
                other => {
                    let id = other?;
                    self.flush()?;
                    return Ok(id);
                }
            }
        }
    }

    /// Queues a request without writing it (to batch many requests into one write).
    pub fn queue(&mut self, kind: &RequestKind) -> Result<u32, Error> {
        Ok(self.session.send(kind)?)
    }

    /// Sends CANCEL for `id`.
    pub fn cancel(&mut self, id: u32) -> Result<(), Error> {
        self.session.cancel(id)?;
        self.flush()
    }

    /// The next response to arrive, whatever its ID.
    pub fn recv(&mut self) -> Result<(u32, Response), Error> {
        if let Some(id) = self.order.pop_front() {
            let r = self.ready.remove(&id).expect("order and ready agree");
            return Ok((id, r));
        }
        self.flush()?;
        loop {
            if let Some((id, r)) = self.read_one()? {
                self.order.retain(|&x| x != id);
                self.ready.remove(&id);
                return Ok((id, r));
            }
        }
    }

    /// Waits for the response to `id`, keeping others for later.
    pub fn wait(&mut self, id: u32) -> Result<Response, Error> {
        self.flush()?;
        loop {
            if let Some(r) = self.ready.remove(&id) {
                self.order.retain(|&x| x != id);
                return Ok(r);
            }
            self.read_one()?;
        }
    }

    /// Reads until one response arrives; stores it in `ready` and returns it too.
    fn read_one(&mut self) -> Result<Option<(u32, Response)>, Error> {
        match self.next_event()? {
            ClientEvent::Response { id, response } => {
                self.ready.insert(id, response.clone());
                self.order.push_back(id);
                Ok(Some((id, response)))
            }
            ClientEvent::Goodbye { code, message } => {
                self.goodbye = Some((code, message));
                Ok(None)
            }
            ClientEvent::ConnectionError { code, message } => {
                Err(ClientError::Server { code, message }.into())
            }
            ClientEvent::Welcome(_) => Err(ClientError::Protocol("second WELCOME".into()).into()),
            // §3.10: a request-scope ERROR with ID 0 reports a frame the server rejected; the
            // connection goes on (this client never sends frames with ID 0, so it concerns
            // nothing outstanding).
            ClientEvent::Rejected { .. } => Ok(None),
        }
    }

    fn next_event(&mut self) -> Result<ClientEvent, Error> {
        loop {
            match self.session.poll_event(&mut self.buf) {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) => {
                    // The session queued its ERROR for the server (spec §9.3): send it, best
                    // effort (the connection is over either way), then report the fault.
                    let _ = self.flush();
                    return Err(e.into());
                }
            }
            let cap = self.session.read_capacity(&self.buf).clamp(1, 64 * 1024);
            let start = self.buf.len();
            self.buf.resize(start + cap, 0);
            let n = loop {
                match self.stream.read(&mut self.buf[start..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = n.inspect_err(|_| self.buf.truncate(start))?;
            self.buf.truncate(start + n);
            if n == 0 {
                self.session.handle_eof(&mut self.buf)?;
                return Err(ClientError::Closed.into());
            }
        }
    }

    fn expect(&mut self, kind: RequestKind) -> Result<Response, Error> {
        let id = self.send(&kind)?;
        match self.wait(id)? {
            Response::Error { code, message, .. } => {
                Err(ClientError::Server { code, message }.into())
            }
            r => Ok(r),
        }
    }

    /// PING; returns the PONG's data.
    pub fn ping(&mut self, data: u64) -> Result<u64, Error> {
        match self.expect(RequestKind::Ping { data })? {
            Response::Pong { data } => Ok(data),
            r => Err(ClientError::Protocol(format!("PING answered with {r:?}")).into()),
        }
    }

    /// ECHO; returns the payload sent back.
    pub fn echo(&mut self, payload: &[u8]) -> Result<Bytes, Error> {
        match self.expect(RequestKind::Echo {
            payload: Bytes::copy_from_slice(payload),
        })? {
            Response::EchoReply { payload } => Ok(payload),
            r => Err(ClientError::Protocol(format!("ECHO answered with {r:?}")).into()),
        }
    }

    /// COMPUTE; returns the digest.
    pub fn compute(&mut self, cost: u32, seed: &[u8]) -> Result<[u8; 32], Error> {
        match self.expect(RequestKind::Compute {
            cost,
            seed: Bytes::copy_from_slice(seed),
        })? {
            Response::ComputeResult { digest } => Ok(digest),
            r => Err(ClientError::Protocol(format!("COMPUTE answered with {r:?}")).into()),
        }
    }

    /// SUM, in the standard encoding or (if negotiated) in its archived form (spec §6.9).
    pub fn sum(&mut self, values: Vec<i64>, archived: bool) -> Result<SumResult, Error> {
        let sum = Sum { values };
        let kind = if archived {
            RequestKind::sum_archived(&sum).map_err(|e| ClientError::Protocol(e.to_string()))?
        } else {
            RequestKind::Sum(sum)
        };
        match self.expect(kind)? {
            Response::SumResult(r) => Ok(r),
            r => Err(ClientError::Protocol(format!("SUM answered with {r:?}")).into()),
        }
    }

    /// STATS (version 2); returns the counters.
    pub fn stats(&mut self) -> Result<Vec<(String, u64)>, Error> {
        match self.expect(RequestKind::Stats)? {
            Response::StatsReply(entries) => Ok(entries),
            r => Err(ClientError::Protocol(format!("STATS answered with {r:?}")).into()),
        }
    }

    /// Sends GOODBYE, collects the outstanding responses and waits for the server to close.
    /// Returns the responses that were still outstanding.
    pub fn goodbye(mut self) -> Result<Vec<(u32, Response)>, Error> {
        self.session.goodbye();
        self.flush()?;
        let mut rest: Vec<(u32, Response)> = self
            .order
            .drain(..)
            .filter_map(|id| self.ready.remove(&id).map(|r| (id, r)))
            .collect();
        loop {
            match self.next_event() {
                Ok(ClientEvent::Response { id, response }) => rest.push((id, response)),
                Ok(ClientEvent::Goodbye { .. }) => {}
                Ok(ClientEvent::ConnectionError { code, message }) => {
                    return Err(ClientError::Server { code, message }.into());
                }
                Ok(ClientEvent::Welcome(_)) => {
                    return Err(ClientError::Protocol("second WELCOME".into()).into());
                }
                Ok(ClientEvent::Rejected { .. }) => {}
                Err(Error::Session(ClientError::Closed)) => return Ok(rest),
                Err(e) => return Err(e),
            }
        }
    }
}
