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
//!
//! ## Timeouts
//!
//! Every wait of the client is bounded unless configured otherwise. Two bounds are the
//! protocol's, kept by the session itself (spec §9.4) and shared with the async client; the
//! others are the socket's, set with std's `TcpStream::connect_timeout`, `set_read_timeout` and
//! `set_write_timeout` (and their `UnixStream` equivalents):
//!
//! | bound | setting | default | on expiry | the client afterwards |
//! |---|---|---|---|---|
//! | connecting (TCP) | [`Config::connect_timeout`] | 10 s | [`Operation::Connect`] | none was made |
//! | waiting for WELCOME | [`ClientConfig::handshake_timeout`] | 10 s | [`Operation::Handshake`] | none was made |
//! | waiting for a response | [`ClientConfig::request_timeout`] | 60 s | [`Operation::Response`] | usable |
//! | one read receiving nothing | [`Config::read_timeout`] | none | [`Operation::Read`] | closed |
//! | one write sending nothing | [`Config::write_timeout`] | 30 s | [`Operation::Write`] | closed |
//! | the server's close after GOODBYE | the request timeout, or [`Client::goodbye_within`] | 60 s | [`Operation::Close`] | consumed |
//!
//! `None` means no limit. Every expiry is [`Error::TimedOut`], naming the operation and the
//! bound; none panics. After a response timeout the connection goes on: the request stays
//! outstanding (its ID is not reused) until its late response arrives, which is then dropped,
//! and the other requests are unaffected. After a read or write timeout the connection's state
//! is unknown (a frame may be half written, the server may be gone): the client shuts the
//! socket down and is *closed*: [`Client::is_closed`] is true and every later call fails with
//! [`ClientError::Closed`] instead of touching the socket. The same holds after any socket error
//! ([`Error::Io`]), and after a fault of the server (the session is then closed).
//!
//! The read timeout is off by default because the session's deadlines already bound every wait
//! for the server's answer; set it to also bound waits that no deadline covers ([`Client::recv`]
//! with nothing outstanding, a request timeout of `None`), or to detect a dead server sooner than
//! the request timeout. It must then be longer than the slowest response the server may take.
//! `UnixStream::connect` has no timeout in std: the connect timeout applies to TCP only (a
//! Unix-domain connect blocks only while the listener's backlog is full).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
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

/// Default bound of a TCP connect ([`Config::connect_timeout`]).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound of a write during which the server accepts nothing
/// ([`Config::write_timeout`]).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The blocking client's settings: the session's (what HELLO offers, and the protocol's waits)
/// and the socket's.
///
/// ```
/// use std::time::Duration;
/// use echowire_codec::client::Config;
/// use echowire_codec::session::ClientConfig;
///
/// let config = Config {
///     connect_timeout: Some(Duration::from_secs(2)),
///     read_timeout: Some(Duration::from_secs(120)),
///     session: ClientConfig {
///         handshake_timeout: Some(Duration::from_secs(2)),
///         request_timeout: Some(Duration::from_secs(30)),
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// The session's settings, including the two protocol timeouts:
    /// [`ClientConfig::handshake_timeout`] (the wait for WELCOME) and
    /// [`ClientConfig::request_timeout`] (the per-request wait for a response). They are the
    /// session's deadlines (spec §9.4), not copies: the client arms its socket with them.
    pub session: ClientConfig,
    /// Bound of a TCP connect, per address tried; `None`: the operating system's. Not applied
    /// to Unix-domain sockets (std has no `UnixStream::connect_timeout`). Zero is rejected by std.
    pub connect_timeout: Option<Duration>,
    /// Bound of one read that receives nothing (the server silent), whatever the client waits
    /// for; `None` (the default): reads are bounded by the session's deadlines alone. Its expiry
    /// closes the client.
    pub read_timeout: Option<Duration>,
    /// Bound of one write that sends nothing (the server not reading); `None`: block. Its expiry
    /// closes the client.
    pub write_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from(ClientConfig::default())
    }
}

impl From<ClientConfig> for Config {
    /// The session's settings with the default socket timeouts.
    fn from(session: ClientConfig) -> Self {
        Config {
            session,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            read_timeout: None,
            write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
        }
    }
}

/// What timed out (see the [module documentation](self#timeouts)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Connecting the TCP socket ([`Config::connect_timeout`]); no client was made.
    Connect,
    /// Waiting for WELCOME ([`ClientConfig::handshake_timeout`]); no client was made.
    Handshake,
    /// Waiting for the response to a request ([`ClientConfig::request_timeout`]); the client is
    /// still usable, the request stays outstanding and its late response is dropped.
    Response {
        /// The request's ID.
        id: u32,
    },
    /// A read received nothing ([`Config::read_timeout`]); the client is closed.
    Read,
    /// A write sent nothing ([`Config::write_timeout`]); the client is closed.
    Write,
    /// Waiting for the server to close the connection after GOODBYE.
    Close,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Connect => f.write_str("connecting"),
            Operation::Handshake => f.write_str("waiting for WELCOME"),
            Operation::Response { id } => write!(f, "waiting for the response to request {id}"),
            Operation::Read => f.write_str("reading from the server"),
            Operation::Write => f.write_str("writing to the server"),
            Operation::Close => f.write_str("waiting for the server to close"),
        }
    }
}

/// What can go wrong for the blocking client: its socket, the protocol (the session's
/// [`ClientError`], which knows nothing of sockets), or a bounded wait.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed; the client is closed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The protocol failed, or the server answered with an error.
    #[error(transparent)]
    Session(#[from] ClientError),
    /// A bounded wait expired: [`Operation`] says which and what the client is afterwards.
    #[error("timed out after {after:?} {operation}")]
    TimedOut {
        /// What timed out.
        operation: Operation,
        /// The bound that expired.
        after: Duration,
    },
}

impl Error {
    /// What timed out, if this is a timeout.
    pub fn timed_out(&self) -> Option<Operation> {
        match self {
            Error::TimedOut { operation, .. } => Some(*operation),
            _ => None,
        }
    }
}

/// A stream the blocking client can bound its waits on: the session's deadlines (spec §9.4)
/// and [`Config::read_timeout`] become the socket's read timeout, [`Config::write_timeout`] its
/// write timeout. The stream must be in blocking mode.
pub trait Stream: Read + Write {
    /// Bounds the next reads (`None`: block).
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Bounds the next writes (`None`: block).
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Shuts both directions down, once the client is closed after a timeout or a socket error
    /// (the default does nothing: the stream is closed when the client is dropped).
    fn shutdown(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
    fn shutdown(&self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
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
    fn shutdown(&self) -> io::Result<()> {
        UnixStream::shutdown(self, Shutdown::Both)
    }
}

/// A blocking Echowire client.
///
/// Every wait is bounded as the [module documentation](self#timeouts) says: connecting and the
/// wait for WELCOME, each response ([`ClientConfig::request_timeout`]: the request fails with
/// [`Error::TimedOut`] and stays outstanding until its late response arrives, which is then
/// dropped, spec §9.4), each read and each write. After a read or write timeout, a socket error
/// or a fault of the server the client is closed ([`Client::is_closed`]): every later call
/// fails with [`ClientError::Closed`].
#[derive(Debug)]
pub struct Client<S: Stream> {
    stream: S,
    session: ClientSession,
    /// [`Config::read_timeout`].
    read_timeout: Option<Duration>,
    /// [`Config::write_timeout`].
    write_timeout: Option<Duration>,
    /// A read or write timed out, or the socket failed: the connection is given up.
    broken: bool,
    /// Responses received while waiting for another ID.
    ready: HashMap<u32, Response>,
    /// Arrival order of `ready`, for [`Client::recv`].
    order: VecDeque<u32>,
    /// Requests whose wait timed out: their responses are dropped when they come.
    given_up: HashSet<u32>,
    goodbye: Option<(crate::error::ErrorCode, String)>,
}

impl Client<TcpStream> {
    /// Connects over TCP (with `TCP_NODELAY`) and completes the handshake, with the session's
    /// settings and the default socket timeouts ([`Config::from`]).
    pub fn connect_tcp(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Self, Error> {
        Client::connect_tcp_with(addr, Config::from(config))
    }

    /// Connects over TCP (with `TCP_NODELAY`), each address tried bounded by
    /// [`Config::connect_timeout`], and completes the handshake.
    pub fn connect_tcp_with(addr: impl ToSocketAddrs, config: Config) -> Result<Self, Error> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            let r = match config.connect_timeout {
                Some(t) => TcpStream::connect_timeout(&a, t),
                None => TcpStream::connect(a),
            };
            match r {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Client::handshake_with(stream, config);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == io::ErrorKind::TimedOut => Error::TimedOut {
                operation: Operation::Connect,
                after: config.connect_timeout.unwrap_or_default(),
            },
            Some(e) => e.into(),
            None => io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to").into(),
        })
    }
}

#[cfg(unix)]
impl Client<UnixStream> {
    /// Connects over a Unix socket and completes the handshake, with the session's settings and
    /// the default socket timeouts ([`Config::from`]).
    pub fn connect_unix(path: impl AsRef<Path>, config: ClientConfig) -> Result<Self, Error> {
        Client::connect_unix_with(path, Config::from(config))
    }

    /// Connects over a Unix socket and completes the handshake ([`Config::connect_timeout`]
    /// does not apply: see the [module documentation](self#timeouts)).
    pub fn connect_unix_with(path: impl AsRef<Path>, config: Config) -> Result<Self, Error> {
        Client::handshake_with(UnixStream::connect(path)?, config)
    }
}

impl<S: Stream> Client<S> {
    /// Sends preface and HELLO on `stream` and waits for WELCOME, with the session's settings
    /// and the default socket timeouts ([`Config::from`]).
    pub fn handshake(stream: S, config: ClientConfig) -> Result<Self, Error> {
        Client::handshake_with(stream, Config::from(config))
    }

    /// Sends preface and HELLO on `stream` (in blocking mode) and waits for WELCOME, bounded by
    /// [`ClientConfig::handshake_timeout`] (and [`Config::read_timeout`], if shorter).
    pub fn handshake_with(stream: S, config: Config) -> Result<Self, Error> {
        stream.set_write_timeout(config.write_timeout)?;
        let handshake_timeout = config.session.handshake_timeout;
        let mut client = Client {
            stream,
            session: ClientSession::new(config.session, Instant::now()),
            read_timeout: config.read_timeout,
            write_timeout: config.write_timeout,
            broken: false,
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
            ClientEvent::TimedOut { .. } => Err(Error::TimedOut {
                operation: Operation::Handshake,
                after: handshake_timeout.unwrap_or_default(),
            }),
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

    /// Whether the connection is over: a read or write timed out, the socket failed, the server
    /// ended the connection or broke the protocol. Every later call then fails with
    /// [`ClientError::Closed`] (responses already received are still handed out by
    /// [`Client::wait`] and [`Client::recv`]).
    pub fn is_closed(&self) -> bool {
        self.broken || self.session.is_closed()
    }

    /// Fails with [`ClientError::Closed`] once the connection was given up after a timeout or a
    /// socket error: the socket is not touched again.
    fn check_usable(&self) -> Result<(), Error> {
        if self.broken {
            return Err(ClientError::Closed.into());
        }
        Ok(())
    }

    /// Gives the connection up after `e` if it leaves the connection in an unknown state (a
    /// socket error, a read or write timeout): the socket is shut down. Returns `e`.
    fn fail(&mut self, e: Error) -> Error {
        let fatal = match &e {
            Error::Io(_) => true,
            Error::TimedOut { operation, .. } => {
                matches!(operation, Operation::Read | Operation::Write)
            }
            Error::Session(_) => false,
        };
        if fatal && !self.broken {
            self.broken = true;
            let _ = self.stream.shutdown();
        }
        e
    }

    /// Writes everything queued, each write bounded by [`Config::write_timeout`].
    pub fn flush(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        while self.session.pending_output() > 0 {
            match crate::io::write_output(&mut self.session, &mut self.stream) {
                // `write_output` stops at `WouldBlock`, which a blocking socket returns when its
                // write timeout expires with nothing sent.
                Ok(0) => {
                    let e = Error::TimedOut {
                        operation: Operation::Write,
                        after: self.write_timeout.unwrap_or_default(),
                    };
                    return Err(self.fail(e));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    let e = Error::TimedOut {
                        operation: Operation::Write,
                        after: self.write_timeout.unwrap_or_default(),
                    };
                    return Err(self.fail(e));
                }
                Err(e) => return Err(self.fail(e.into())),
            }
        }
        if let Err(e) = self.stream.flush() {
            return Err(self.fail(e.into()));
        }
        Ok(())
    }

    /// Queues and sends a request; returns its ID. Responses are collected with [`Client::wait`]
    /// or [`Client::recv`]. If the server's `max_outstanding` is reached, responses are read
    /// (and kept) until there is room.
    pub fn send<B: Octets>(&mut self, request: &Message<B>) -> Result<u32, Error> {
        self.check_usable()?;
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
        self.check_usable()?;
        Ok(self.session.send(request, Instant::now())?)
    }

    /// Sends CANCEL for `id`.
    pub fn cancel(&mut self, id: u32) -> Result<(), Error> {
        self.check_usable()?;
        self.session.cancel(id)?;
        self.flush()
    }

    /// The next response to arrive, whatever its ID. With nothing outstanding and no
    /// [`Config::read_timeout`] this waits for the server indefinitely.
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
    /// [`Error::TimedOut`] ([`Operation::Response`]) when the request timeout passes first.
    pub fn wait(&mut self, id: u32) -> Result<Response, Error> {
        if let Some(r) = self.ready.remove(&id) {
            self.order.retain(|&x| x != id);
            return Ok(r);
        }
        self.flush()?;
        loop {
            if let Some(r) = self.ready.remove(&id) {
                self.order.retain(|&x| x != id);
                return Ok(r);
            }
            if self.given_up.contains(&id) {
                return Err(self.response_timeout(id));
            }
            self.read_one(Some(id))?;
        }
    }

    /// The error of a request whose wait timed out.
    fn response_timeout(&self, id: u32) -> Error {
        Error::TimedOut {
            operation: Operation::Response { id },
            after: self.session.config().request_timeout.unwrap_or_default(),
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
                    return Err(self.response_timeout(id));
                }
                Ok(None)
            }
            ClientEvent::TimedOut { id: None } => Err(Error::TimedOut {
                operation: Operation::Handshake,
                after: self.session.config().handshake_timeout.unwrap_or_default(),
            }),
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
    /// time (a driver that also watches something else polls with this). `wait` is a poll, not
    /// a timeout: its expiry is no error. A [`Config::read_timeout`] shorter than `wait` still
    /// closes the client when it expires.
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

    /// The session's next event, reading until one comes or `limit` passes (`Ok(None)`). Each
    /// read is bounded by the session's next deadline, `limit` and the read timeout, whichever
    /// comes first; only the read timeout's expiry is an error here (the session reports its
    /// own deadlines as events).
    fn next_event_until(&mut self, limit: Option<Instant>) -> Result<Option<ClientEvent>, Error> {
        self.check_usable()?;
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
            let deadline = match (self.session.poll_timeout(), limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let read_deadline = self.read_timeout.and_then(|t| now.checked_add(t));
            // Whether the read timeout, not a deadline of the session or the caller, bounds
            // this read.
            let (until, by_read_timeout) = match (deadline, read_deadline) {
                (Some(d), Some(r)) if r < d => (Some(r), true),
                (None, Some(r)) => (Some(r), true),
                (d, _) => (d, false),
            };
            let wait = until.map(|t| {
                t.saturating_duration_since(now)
                    .max(Duration::from_millis(1))
            });
            if let Err(e) = self.stream.set_read_timeout(wait) {
                return Err(self.fail(e.into()));
            }
            match crate::io::read_input(&mut self.session, &mut self.stream) {
                Ok(Some(0)) => {
                    let unprocessed = self.session.handle_eof()?;
                    if !unprocessed.is_empty() {
                        return Err(ClientError::NotProcessed(unprocessed).into());
                    }
                    return Err(ClientError::Closed.into());
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(ClientError::Closed.into()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if by_read_timeout {
                        let e = Error::TimedOut {
                            operation: Operation::Read,
                            after: self.read_timeout.unwrap_or_default(),
                        };
                        return Err(self.fail(e));
                    }
                    // A deadline passed: the next poll reports what timed out, if anything did.
                    self.session.handle_timeout(Instant::now());
                }
                Err(e) => return Err(self.fail(e.into())),
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
    /// only requests still outstanding have an unknown fate). The wait's expiry is
    /// [`Error::TimedOut`] with [`Operation::Close`], or [`Operation::Response`] if a request's
    /// own timeout expires first.
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
                Ok(Some(ClientEvent::TimedOut { id: Some(id) })) => Err(self.response_timeout(id)),
                Ok(Some(ClientEvent::TimedOut { id: None })) | Ok(None) => Err(Error::TimedOut {
                    operation: Operation::Close,
                    after: wait.unwrap_or_default(),
                }),
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
