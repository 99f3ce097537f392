//! A blocking client over any `Read + Write` stream: `std::net::TcpStream` or
//! `std::os::unix::net::UnixStream`. It drives [`ClientSession`]; all protocol logic is there.
//!
//! ```no_run
//! use echowire_codec::client::Client;
//! let mut client = Client::connect_tcp("127.0.0.1:7878", Default::default())?;
//! assert_eq!(&client.echo(b"hello")?[..], b"hello");
//! let _digest = client.compute(1000, b"seed")?;
//! // Pipelining: send several, then collect the responses by ID (they may arrive out of order).
//! use echowire_codec::message::{Message, Ping};
//! let a = client.send(&Message::<&[u8]>::Ping(Ping { data: 1 }))?;
//! let b = client.send(&Message::<&[u8]>::Ping(Ping { data: 2 }))?;
//! client.wait(b)?;
//! client.wait(a)?;
//! client.goodbye()?;
//! # Ok::<(), echowire_codec::client::Error>(())
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::message::{self, Message, Octets, Sum, SumResult};
use crate::session::{ClientConfig, ClientError, ClientEvent, ClientSession, Negotiated};

/// A response as the client hands it out: its byte and string fields share the receive buffer.
pub type Response = Message<Bytes>;

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

/// A stream the blocking client can bound its waits on: the session's deadlines (spec §9.4)
/// become the socket's read timeout, the request timeout its write timeout.
pub trait Stream: Read + Write {
    /// Bounds the next reads (`None`: block).
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Bounds the next writes (`None`: block).
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
}

#[cfg(unix)]
impl Stream for UnixStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, t)
    }
}

/// A blocking Echowire client.
///
/// Every wait is bounded by the session's timeouts ([`ClientConfig::handshake_timeout`],
/// [`ClientConfig::request_timeout`]): connecting and the wait for WELCOME by the first, each
/// response and each write by the second. A request that times out fails with
/// [`ClientError::TimedOut`] and stays outstanding until its late response arrives, which is
/// then dropped (spec §9.4).
#[derive(Debug)]
pub struct Client<S: Stream> {
    stream: S,
    session: ClientSession,
    /// Responses received while waiting for another ID.
    ready: HashMap<u32, Response>,
    /// Arrival order of `ready`, for [`Client::recv`].
    order: VecDeque<u32>,
    /// Requests whose wait timed out: their responses are dropped when they come.
    given_up: HashSet<u32>,
    goodbye: Option<(crate::error::ErrorCode, String)>,
}

impl Client<TcpStream> {
    /// Connects over TCP (with `TCP_NODELAY`), bounded by the handshake timeout, and completes
    /// the handshake.
    pub fn connect_tcp(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Self, Error> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            let r = match config.handshake_timeout {
                Some(t) => TcpStream::connect_timeout(&a, t),
                None => TcpStream::connect(a),
            };
            match r {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Client::handshake(stream, config);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
            })
            .into())
    }
}

#[cfg(unix)]
impl Client<UnixStream> {
    /// Connects over a Unix socket and completes the handshake.
    pub fn connect_unix(path: impl AsRef<Path>, config: ClientConfig) -> Result<Self, Error> {
        Client::handshake(UnixStream::connect(path)?, config)
    }
}

impl<S: Stream> Client<S> {
    /// Sends preface and HELLO on `stream` and waits for WELCOME.
    pub fn handshake(stream: S, config: ClientConfig) -> Result<Self, Error> {
        stream.set_write_timeout(config.request_timeout)?;
        let mut client = Client {
            stream,
            session: ClientSession::new(config, Instant::now()),
            ready: HashMap::new(),
            order: VecDeque::new(),
            given_up: HashSet::new(),
            goodbye: None,
        };
        client.flush()?;
        match client.next_event()? {
            ClientEvent::Welcome(_) => Ok(client),
            ClientEvent::ConnectionError { code, message } => {
                Err(ClientError::Server { code, message }.into())
            }
            ClientEvent::TimedOut { .. } => Err(ClientError::TimedOut("WELCOME").into()),
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
        while self.session.pending_output() > 0 {
            crate::io::write_output(&mut self.session, &mut self.stream)?;
        }
        self.stream.flush()?;
        Ok(())
    }

    /// Queues and sends a request; returns its ID. Responses are collected with [`Client::wait`]
    /// or [`Client::recv`]. If the server's `max_outstanding` is reached, responses are read
    /// (and kept) until there is room.
    pub fn send<B: Octets>(&mut self, request: &Message<B>) -> Result<u32, Error> {
        loop {
            match self.session.send(request, Instant::now()) {
                Err(ClientError::TooManyOutstanding(_)) => {
                    self.flush()?;
                    self.read_one(None)?;
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
    pub fn queue<B: Octets>(&mut self, request: &Message<B>) -> Result<u32, Error> {
        Ok(self.session.send(request, Instant::now())?)
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
            if let Some((id, r)) = self.read_one(None)? {
                self.order.retain(|&x| x != id);
                self.ready.remove(&id);
                return Ok((id, r));
            }
        }
    }

    /// Waits for the response to `id`, keeping others for later. Fails with
    /// [`ClientError::TimedOut`] when the request timeout passes first.
    pub fn wait(&mut self, id: u32) -> Result<Response, Error> {
        self.flush()?;
        loop {
            if let Some(r) = self.ready.remove(&id) {
                self.order.retain(|&x| x != id);
                return Ok(r);
            }
            if self.given_up.contains(&id) {
                return Err(ClientError::TimedOut("a response").into());
            }
            self.read_one(Some(id))?;
        }
    }

    /// Reads until one event arrives; stores a response in `ready` and returns it too. A
    /// timeout of `waiting_for` is an error; of another request, it is remembered.
    fn read_one(&mut self, waiting_for: Option<u32>) -> Result<Option<(u32, Response)>, Error> {
        let ev = self.next_event()?;
        self.on_event(ev, waiting_for)
    }

    /// What an event means for the caller: a response (kept in `ready` too), nothing, or an
    /// error (a timeout of `waiting_for`, or of any request when waiting for any).
    fn on_event(
        &mut self,
        ev: ClientEvent,
        waiting_for: Option<u32>,
    ) -> Result<Option<(u32, Response)>, Error> {
        match ev {
            ClientEvent::Response { id, response } => {
                if self.given_up.remove(&id) {
                    return Ok(None); // a late response to a request the caller gave up on
                }
                self.ready.insert(id, response.clone());
                self.order.push_back(id);
                Ok(Some((id, response)))
            }
            ClientEvent::TimedOut { id: Some(id) } => {
                self.given_up.insert(id);
                if waiting_for.is_none() || waiting_for == Some(id) {
                    return Err(ClientError::TimedOut("a response").into());
                }
                Ok(None)
            }
            ClientEvent::TimedOut { id: None } => Err(ClientError::TimedOut("WELCOME").into()),
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

    /// The next response to arrive within `wait`, whatever its ID; `Ok(None)` if none came in
    /// time (a driver that also watches something else polls with this).
    pub fn recv_within(&mut self, wait: Duration) -> Result<Option<(u32, Response)>, Error> {
        if let Some(id) = self.order.pop_front() {
            let r = self.ready.remove(&id).expect("order and ready agree");
            return Ok(Some((id, r)));
        }
        self.flush()?;
        let until = Instant::now() + wait;
        loop {
            let Some(ev) = self.next_event_until(Some(until))? else {
                return Ok(None);
            };
            if let Some((id, r)) = self.on_event(ev, None)? {
                self.order.retain(|&x| x != id);
                self.ready.remove(&id);
                return Ok(Some((id, r)));
            }
        }
    }

    /// The session's next event; reads (bounded by the session's next deadline) until there
    /// is one.
    fn next_event(&mut self) -> Result<ClientEvent, Error> {
        loop {
            if let Some(ev) = self.next_event_until(None)? {
                return Ok(ev);
            }
        }
    }

    /// The session's next event, reading until one comes or `limit` passes (`Ok(None)`).
    fn next_event_until(&mut self, limit: Option<Instant>) -> Result<Option<ClientEvent>, Error> {
        loop {
            match self.session.poll_event(Instant::now()) {
                Ok(Some(ev)) => return Ok(Some(ev)),
                Ok(None) => {}
                Err(e) => {
                    // The session queued its ERROR for the server (spec §9.3): send it, best
                    // effort (the connection is over either way), then report the fault.
                    let _ = self.flush();
                    return Err(e.into());
                }
            }
            let now = Instant::now();
            if limit.is_some_and(|l| now >= l) {
                return Ok(None);
            }
            let until = match (self.session.poll_timeout(), limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = until.map(|t| {
                t.saturating_duration_since(now)
                    .max(Duration::from_millis(1))
            });
            self.stream.set_read_timeout(wait)?;
            match crate::io::read_input(&mut self.session, &mut self.stream) {
                Ok(Some(0)) => {
                    self.session.handle_eof()?;
                    return Err(ClientError::Closed.into());
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(ClientError::Closed.into()),
                // A deadline passed: the next poll reports what timed out, if anything did.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.session.handle_timeout(Instant::now());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn expect<B: Octets>(&mut self, request: Message<B>) -> Result<Response, Error> {
        let id = self.send(&request)?;
        match self.wait(id)? {
            Message::Error(e) => Err(ClientError::Server {
                code: e.code,
                message: e.message.to_string(),
            }
            .into()),
            r => Ok(r),
        }
    }

    /// PING; returns the PONG's data.
    pub fn ping(&mut self, data: u64) -> Result<u64, Error> {
        match self.expect(Message::<&[u8]>::Ping(message::Ping { data }))? {
            Message::Pong(p) => Ok(p.data),
            r => Err(ClientError::Protocol(format!("PING answered with {r:?}")).into()),
        }
    }

    /// ECHO; returns the payload sent back.
    pub fn echo(&mut self, payload: &[u8]) -> Result<Bytes, Error> {
        match self.expect(Message::<&[u8]>::Echo(message::Echo { payload }))? {
            Message::EchoReply(e) => Ok(e.payload),
            r => Err(ClientError::Protocol(format!("ECHO answered with {r:?}")).into()),
        }
    }

    /// COMPUTE; returns the digest.
    pub fn compute(&mut self, cost: u32, seed: &[u8]) -> Result<[u8; 32], Error> {
        match self.expect(Message::<&[u8]>::Compute(message::Compute { cost, seed }))? {
            Message::ComputeResult(c) => Ok(c.digest),
            r => Err(ClientError::Protocol(format!("COMPUTE answered with {r:?}")).into()),
        }
    }

    /// SUM, in the standard encoding or (if negotiated) in its archived form (spec §6.9).
    pub fn sum(&mut self, values: Vec<i64>, archived: bool) -> Result<SumResult, Error> {
        let sum = Sum { values };
        let request: Message<Bytes> = if archived {
            Message::SumRkyv(
                sum.archived()
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
            )
        } else {
            Message::Sum(sum)
        };
        match self.expect(request)? {
            Message::SumResult(r) => Ok(r),
            r => Err(ClientError::Protocol(format!("SUM answered with {r:?}")).into()),
        }
    }

    /// STATS (version 2); returns the counters.
    pub fn stats(&mut self) -> Result<Vec<(String, u64)>, Error> {
        match self.expect(Message::<&[u8]>::Stats(message::Stats {}))? {
            Message::StatsReply(r) => Ok(r
                .entries
                .into_iter()
                .map(|e| (e.name.to_string(), e.value))
                .collect()),
            r => Err(ClientError::Protocol(format!("STATS answered with {r:?}")).into()),
        }
    }

    /// Sends GOODBYE, collects the outstanding responses and waits for the server to close
    /// (bounded by the request timeout, if any). Returns the responses that were still
    /// outstanding.
    pub fn goodbye(self) -> Result<Vec<(u32, Response)>, Error> {
        let bound = self.session.config().request_timeout;
        self.goodbye_within(bound)
    }

    /// [`Client::goodbye`] with its own bound on the wait for the server's close (`None`:
    /// forever). On an error the responses that arrived before it are dropped; use
    /// [`Client::goodbye_collect`] to keep them.
    pub fn goodbye_within(self, wait: Option<Duration>) -> Result<Vec<(u32, Response)>, Error> {
        let (rest, r) = self.goodbye_collect(wait);
        r.map(|()| rest)
    }

    /// [`Client::goodbye_within`] that keeps what arrived: the responses read during the drain
    /// (in the order they arrived), and how the wait for the server's close ended. A response
    /// read before the connection failed is delivered, not lost with the failure (spec §9.3:
    /// only requests still outstanding have an unknown fate).
    pub fn goodbye_collect(
        mut self,
        wait: Option<Duration>,
    ) -> (Vec<(u32, Response)>, Result<(), Error>) {
        self.session.goodbye();
        let mut rest: Vec<(u32, Response)> = self
            .order
            .drain(..)
            .filter_map(|id| self.ready.remove(&id).map(|r| (id, r)))
            .collect();
        if let Err(e) = self.flush() {
            return (rest, Err(e));
        }
        let until = wait.and_then(|w| Instant::now().checked_add(w));
        loop {
            let end = match self.next_event_until(until) {
                Ok(Some(ClientEvent::Response { id, response })) => {
                    if !self.given_up.remove(&id) {
                        rest.push((id, response));
                    }
                    continue;
                }
                Ok(Some(ClientEvent::Goodbye { .. } | ClientEvent::Rejected { .. })) => continue,
                Ok(Some(ClientEvent::TimedOut { .. })) | Ok(None) => {
                    Err(ClientError::TimedOut("the server to close").into())
                }
                Ok(Some(ClientEvent::ConnectionError { code, message })) => {
                    Err(ClientError::Server { code, message }.into())
                }
                Ok(Some(ClientEvent::Welcome(_))) => {
                    Err(ClientError::Protocol("second WELCOME".into()).into())
                }
                Err(Error::Session(ClientError::Closed)) => Ok(()),
                Err(e) => Err(e),
            };
            return (rest, end);
        }
    }
}
