//! The client side of a connection (spec §3.5).
//!
//! [`ClientSession::new`] queues the preface and HELLO; requests may be queued at once (they are
//! sent after HELLO; the server applies them under the negotiated version, so a client that
//! pipelines before WELCOME must offer a single version, or wait — [`ClientSession::is_open`]).
//! Request IDs are assigned by the session: increasing, never 0, never one still outstanding.
//! Every response is checked against the request it answers (ID outstanding, type matching).
//!
//! The surface is the server session's: inputs `send`/`cancel`/`goodbye`, `read_with` (or
//! `handle_input`), `handle_eof`, `handle_timeout` and `handle_written`, each with `now` where
//! time matters; outputs `poll_event`, `poll_transmit` and `poll_timeout`. Time comes in as an
//! argument here too (spec §9.4): the wait for WELCOME and for each response is bounded by the
//! session, so the blocking and the tokio clients share one timeout logic. A timed-out request
//! stays outstanding — its ID is not reused — until its one response arrives (which is then
//! still reported) or the connection ends.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::Outbox;
use super::wire::Wire;
use crate::decoder::FrameDecoder;
use crate::error::{DecodeError, ErrorCode};
use crate::frame::{
    BASE_VERSION, DEFAULT_MAX_FRAME_SIZE, FRAME_OVERHEAD, FrameHeader, MAX_MAX_FRAME_SIZE,
    MIN_MAX_FRAME_SIZE, MessageType, PREFACE, SUPPORTED_VERSIONS,
};
use crate::message::{self, CAP_DEFINED, DecodeContext, Message, Octets, Role, Str};

/// What a client offers in HELLO.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Lowest version offered.
    pub min_version: u8,
    /// Highest version offered.
    pub max_version: u8,
    /// The client's receive limit.
    pub max_frame_size: u32,
    /// Capabilities offered.
    pub capabilities: u32,
    /// Agent string.
    pub agent: String,
    /// How long to wait for WELCOME (spec §9.4); `None`: forever.
    pub handshake_timeout: Option<Duration>,
    /// How long to wait for each response (spec §9.4); `None`: forever. COMPUTE's largest cost
    /// takes seconds of a server's CPU, so this is generous by default.
    pub request_timeout: Option<Duration>,
}

/// Default wait for WELCOME: the spec's recommended handshake timeout of a server (§8.3).
pub const DEFAULT_CLIENT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for a response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            min_version: *SUPPORTED_VERSIONS.start(),
            max_version: *SUPPORTED_VERSIONS.end(),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            capabilities: CAP_DEFINED,
            agent: concat!("echowire-client/", env!("CARGO_PKG_VERSION")).into(),
            handshake_timeout: Some(DEFAULT_CLIENT_HANDSHAKE_TIMEOUT),
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
        }
    }
}

/// What the handshake settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Protocol version.
    pub version: u8,
    /// The server's receive limit.
    pub max_frame_size: u32,
    /// Outstanding requests allowed.
    pub max_outstanding: u32,
    /// Capabilities both sides use.
    pub capabilities: u32,
    /// The server's agent string.
    pub agent: String,
}

/// What the client application is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake completed.
    Welcome(Negotiated),
    /// A response to request `id`: the type that answers the request, or ERROR. Its byte and
    /// string fields are slices of the frame it arrived in.
    Response {
        /// The request ID.
        id: u32,
        /// The response.
        response: Message<Bytes>,
    },
    /// The server is closing gracefully; no new requests are accepted.
    Goodbye {
        /// Reason.
        code: ErrorCode,
        /// Detail.
        message: String,
    },
    /// The server rejected a frame that carried request ID 0 (a request-scope ERROR with ID 0,
    /// spec §3.10); the connection continues.
    Rejected {
        /// Code.
        code: ErrorCode,
        /// Detail.
        message: String,
    },
    /// The server reported a connection error (ERROR with ID 0); the connection is over.
    ConnectionError {
        /// Code.
        code: ErrorCode,
        /// Detail.
        message: String,
    },
    /// A wait timed out (spec §9.4): for request `id`, which stays outstanding until its
    /// response arrives (reported then as usual); or, with `None`, for WELCOME — the
    /// connection is then over.
    TimedOut {
        /// The request, or `None` for the handshake.
        id: Option<u32>,
    },
}

/// Client-side failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server sent bytes that are not a valid frame here.
    #[error("invalid frame from server: {0}")]
    Decode(#[from] DecodeError),
    /// The server answered an ID that is not outstanding, or with the wrong type.
    #[error("protocol violation by server: {0}")]
    Protocol(String),
    /// The connection is closed or closing.
    #[error("connection is closed")]
    Closed,
    /// A wait the session bounds timed out (spec §9.4). The session itself reports timeouts as
    /// [`ClientEvent::TimedOut`]; this is for drivers that turn that event into an error (the
    /// blocking client reports its own `client::Error::TimedOut`, with the operation and the
    /// bound).
    #[error("timed out waiting for {0}")]
    TimedOut(&'static str),
    /// The server's `max_outstanding` is reached; read responses first.
    #[error("{0} requests outstanding, the server's limit")]
    TooManyOutstanding(u32),
    /// The request would exceed the server's `max_frame_size`.
    #[error("request of {length} bytes exceeds the server's limit of {limit}")]
    TooLarge {
        /// Frame length.
        length: usize,
        /// Limit.
        limit: u32,
    },
    /// The ID is already outstanding.
    #[error("request ID {0} is already outstanding")]
    DuplicateId(u32),
    /// The server answered the request with ERROR.
    #[error("server error {code}: {message}")]
    Server {
        /// Code.
        code: ErrorCode,
        /// Detail.
        message: String,
    },
    /// The request is not valid in the negotiated version or capabilities.
    #[error("not available on this connection: {0}")]
    Unsupported(&'static str),
    /// The server closed cleanly after its GOODBYE without answering these requests: they were
    /// not processed and may be retried on another connection (spec §3.8, §9.3).
    #[error(
        "the server closed after GOODBYE without processing request(s) {0:?}; they may be retried"
    )]
    NotProcessed(Vec<u32>),
    /// The server broke a rule whose code is not PROTOCOL_ERROR (spec §9.3: a response with ID
    /// 0, a GOODBYE with a non-zero ID are INVALID_REQUEST_ID).
    #[error("protocol violation by server ({code}): {detail}")]
    Violation {
        /// The code the client sends in its ERROR.
        code: ErrorCode,
        /// What happened.
        detail: String,
    },
}

impl ClientError {
    /// The code a client sends in its ERROR (ID 0) for a fault of the server (spec §9.2, §9.3);
    /// `None` for errors that are not the server's fault.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Decode(d) => Some(d.code()),
            ClientError::Protocol(_) => Some(ErrorCode::PROTOCOL_ERROR),
            ClientError::Violation { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Handshake,
    Open,
    /// GOODBYE sent or received.
    Draining,
    Closed,
}

/// A request waiting for its response.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    /// What was asked (its response must answer it).
    request: MessageType,
    /// When its wait times out, until it has.
    deadline: Option<Instant>,
}

/// The client side of one connection.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    decoder: FrameDecoder,
    negotiated: Option<Negotiated>,
    /// The receive buffer and the output queue.
    wire: Wire,
    next_id: u32,
    outstanding: HashMap<u32, Waiting>,
    /// The server sent GOODBYE: once nothing is outstanding the connection is over.
    peer_goodbye: bool,
    /// When the wait for WELCOME times out.
    handshake_deadline: Option<Instant>,
    /// Timeouts reported by [`ClientSession::handle_timeout`], for `poll_event`.
    timed_out: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// A session, started at `now`, whose output already holds the preface and HELLO.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let mut outbox = Outbox::new();
        outbox.push_slice(&PREFACE);
        let hello = Message::<&[u8]>::Hello(message::Hello {
            min_version: config.min_version,
            max_version: config.max_version,
            max_frame_size: config.max_frame_size,
            capabilities: config.capabilities,
            agent: Str::from(config.agent.as_str()),
        });
        outbox.push_own(&hello, BASE_VERSION, 0);
        ClientSession {
            // §2.2: until WELCOME the limit in force is 4096 (a WELCOME is never longer).
            decoder: FrameDecoder::new(MIN_MAX_FRAME_SIZE),
            handshake_deadline: config.handshake_timeout.and_then(|t| now.checked_add(t)),
            config,
            state: State::Handshake,
            negotiated: None,
            wire: Wire::with_output(outbox),
            next_id: 1,
            outstanding: HashMap::new(),
            peer_goodbye: false,
            timed_out: VecDeque::new(),
        }
    }

    /// The session's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The handshake result, once WELCOME arrived.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// Whether WELCOME arrived and the connection is not closing.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the connection is over (connection error, or drained after GOODBYE).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Requests sent and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The output queue (read-only: write it with [`ClientSession::poll_transmit`]).
    pub fn outbox(&self) -> &Outbox {
        &self.wire.outbox
    }

    /// Octets of output waiting for the socket.
    pub fn pending_output(&self) -> usize {
        self.wire.outbox.len()
    }

    /// Whether the driver should read: the connection is not over.
    pub fn wants_read(&self) -> bool {
        self.state != State::Closed
    }

    /// When [`ClientSession::handle_timeout`] must next be called, if ever: the wait for
    /// WELCOME, or the earliest wait for a response.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let requests = self.outstanding.values().filter_map(|w| w.deadline).min();
        match (self.state, self.handshake_deadline) {
            (State::Handshake, Some(h)) => Some(requests.map_or(h, |r| r.min(h))),
            _ => requests,
        }
    }

    /// Timers (spec §9.4): a wait that expired by `now` is reported by
    /// [`ClientSession::poll_event`] as [`ClientEvent::TimedOut`]. An expired wait for WELCOME
    /// ends the connection; an expired request stays outstanding.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Handshake && self.handshake_deadline.is_some_and(|d| now >= d) {
            self.state = State::Closed;
            self.timed_out.push_back(ClientEvent::TimedOut { id: None });
            return;
        }
        let mut expired: Vec<u32> = self
            .outstanding
            .iter_mut()
            .filter(|(_, w)| w.deadline.is_some_and(|d| now >= d))
            .map(|(&id, w)| {
                w.deadline = None;
                id
            })
            .collect();
        expired.sort_unstable();
        self.timed_out.extend(
            expired
                .into_iter()
                .map(|id| ClientEvent::TimedOut { id: Some(id) }),
        );
    }

    /// Reads once into the session's receive buffer through `read` (see
    /// [`ServerSession::read_with`](super::ServerSession::read_with)); 0 is the server's end of
    /// stream, which the driver reports with [`ClientSession::handle_eof`]. `Ok(None)`: the
    /// session wants no input now.
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut BytesMut, usize) -> Result<usize, E>,
    ) -> Result<Option<usize>, E> {
        if self.state == State::Closed {
            return Ok(None);
        }
        let open = self.negotiated.is_some();
        self.wire.read_with(&self.decoder, open, read)
    }

    /// How many octets the session takes in one read now (0 once the connection is over), for
    /// a driver that reads into a buffer of its own and hands them over with
    /// [`ClientSession::handle_input`] (an async driver).
    pub fn read_size(&self) -> usize {
        if self.state == State::Closed {
            return 0;
        }
        self.wire.room(&self.decoder, self.negotiated.is_some())
    }

    /// Appends octets received elsewhere (a driver that reads into its own buffer, tests).
    pub fn handle_input(&mut self, octets: &[u8]) {
        self.wire.handle_input(octets);
    }

    /// Fills `dst` with the queued output, in order; returns how many slots it used. Report
    /// what was written with [`ClientSession::handle_written`].
    #[must_use]
    pub fn poll_transmit<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.wire.poll_transmit(dst)
    }

    /// `n` octets of the output were written.
    pub fn handle_written(&mut self, n: usize) {
        self.wire.handle_written(n);
    }

    /// Everything queued, as one buffer (tests and simple drivers).
    pub fn take_output(&mut self) -> bytes::Bytes {
        self.wire.take_output()
    }

    /// The version frames are written in: the negotiated one, or before WELCOME the single
    /// version offered (a client offering a range must wait for WELCOME to send requests).
    fn version(&self) -> u8 {
        self.negotiated
            .as_ref()
            .map_or(self.config.max_version, |n| n.version)
    }

    /// Queues a request with the next free ID; returns the ID. A large ECHO payload or archive
    /// held in shared storage (`Bytes`) is queued by reference, not copied.
    pub fn send<B: Octets>(
        &mut self,
        request: &Message<B>,
        now: Instant,
    ) -> Result<u32, ClientError> {
        let mut id = self.next_id;
        while id == 0 || self.outstanding.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.send_with_id(id, request, now)?;
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Queues a request with a chosen ID.
    pub fn send_with_id<B: Octets>(
        &mut self,
        id: u32,
        request: &Message<B>,
        now: Instant,
    ) -> Result<(), ClientError> {
        let ty = request.msg_type();
        if !ty.is_request() {
            return Err(ClientError::Unsupported(
                "only request types are sent with an ID of their own",
            ));
        }
        if matches!(self.state, State::Draining | State::Closed) {
            return Err(ClientError::Closed);
        }
        if id == 0 || self.outstanding.contains_key(&id) {
            return Err(ClientError::DuplicateId(id));
        }
        if let Some(n) = &self.negotiated {
            if self.outstanding.len() >= n.max_outstanding as usize {
                return Err(ClientError::TooManyOutstanding(n.max_outstanding));
            }
            // §5.2: the table's `since` column.
            if ty.since_version().is_some_and(|since| since > n.version) {
                return Err(ClientError::Unsupported(
                    "the request type is not defined in the negotiated version",
                ));
            }
            if matches!(request, Message::SumRkyv(_)) && n.capabilities & message::CAP_RKYV == 0 {
                return Err(ClientError::Unsupported(
                    "the RKYV capability was not negotiated",
                ));
            }
        }
        if self.negotiated.is_none() && self.config.min_version != self.config.max_version {
            return Err(ClientError::Unsupported(
                "requests before WELCOME need a single offered version",
            ));
        }
        let version = self.version();
        // Before WELCOME the server's limit is unknown: assume the smallest it may announce.
        let limit = self
            .negotiated
            .as_ref()
            .map_or(crate::frame::MIN_MAX_FRAME_SIZE, |n| n.max_frame_size);
        // An ECHO's payload or an archive is queued by reference, not copied.
        match self.wire.outbox.push(request, version, id, limit) {
            Ok(()) => {}
            Err(message::EncodeError::FrameTooLarge { length, limit }) => {
                let length = length as usize + 4;
                return Err(ClientError::TooLarge { length, limit });
            }
            Err(e) => return Err(ClientError::Protocol(e.to_string())),
        }
        let deadline = self.config.request_timeout.and_then(|t| now.checked_add(t));
        self.outstanding.insert(
            id,
            Waiting {
                request: ty,
                deadline,
            },
        );
        Ok(())
    }

    /// Queues CANCEL for an outstanding request (spec §3.7). The request still gets exactly one
    /// response: ERROR CANCELLED or its normal reply.
    pub fn cancel(&mut self, id: u32) -> Result<(), ClientError> {
        if !self.outstanding.contains_key(&id) {
            return Ok(());
        }
        let msg = Message::<&[u8]>::Cancel(message::Cancel {});
        let version = self.version();
        self.wire.outbox.push_own(&msg, version, id);
        Ok(())
    }

    /// Queues GOODBYE: no more requests; the server answers what is outstanding, then closes.
    pub fn goodbye(&mut self) {
        if matches!(self.state, State::Open | State::Handshake) {
            let msg = Message::<&[u8]>::Goodbye(message::Goodbye {
                code: ErrorCode::NO_ERROR,
                message: Str::from(""),
            });
            let version = self.version();
            self.wire.outbox.push_own(&msg, version, 0);
            self.state = State::Draining;
        }
    }

    /// The next event: a timeout due by `now`, or what the next complete frame in the receive
    /// buffer says. `Ok(None)`: more input is needed. A fault of the server is an error; the
    /// session has then queued its ERROR for the server (spec §9.2, §9.3) and is closed.
    #[must_use = "events carry responses; an error carries the server's fault"]
    pub fn poll_event(&mut self, now: Instant) -> Result<Option<ClientEvent>, ClientError> {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.handle_timeout(now);
        }
        if let Some(ev) = self.timed_out.pop_front() {
            return Ok(Some(ev));
        }
        if self.state == State::Closed {
            return Ok(None);
        }
        let (header, offset, total) = match self.decoder.decode_ref(&self.wire.input) {
            Ok(Some(f)) => (f.header, f.offset, f.encoded_len()),
            Ok(None) => return Ok(None),
            Err(e) => {
                let e = e.into();
                self.abort(&e);
                return Err(e);
            }
        };
        let buffered = self.wire.input.len();
        let r = self.handle_frame(header, offset, total);
        // A response handed out took its frame (split off the buffer); anything else is
        // dropped here.
        if self.wire.input.len() == buffered {
            let n = total.min(buffered);
            bytes::Buf::advance(&mut self.wire.input, n);
        }
        r.inspect_err(|e| self.abort(e))
    }

    /// A fault of the server is a connection error (spec §9.2, §9.3): queue ERROR (ID 0) with
    /// its code — in header version 1 during the handshake, else the negotiated one — and close.
    fn abort(&mut self, e: &ClientError) {
        if self.state != State::Closed
            && let Some(code) = e.code()
        {
            let version = match self.state {
                State::Handshake => BASE_VERSION,
                _ => self.version(),
            };
            let detail: String = e.to_string().chars().take(200).collect();
            let msg = Message::<&[u8]>::Error(message::Error {
                code,
                message: Str::from(detail.as_str()),
                retry_after_ms: 0,
            });
            self.wire.outbox.push_own(&msg, version, 0);
        }
        self.state = State::Closed;
    }

    /// The server closed the connection (EOF). A clean end returns the requests it left
    /// unanswered after its GOODBYE, in ID order: they were **not processed** and may be retried
    /// on another connection (spec §3.8, §9.3; usually none). An end of stream that leaves
    /// requests unanswered without a GOODBYE or a connection error, or that cuts a frame, is an
    /// error: those requests' fate is unknown.
    pub fn handle_eof(&mut self) -> Result<Vec<u32>, ClientError> {
        let was = self.state;
        self.state = State::Closed;
        if let Some(frame) = self.decoder.decode_eof(&mut self.wire.input)? {
            // A whole frame can only be left here by a driver that stopped calling poll_event.
            return Err(ClientError::Protocol(format!(
                "server closed with a {} unread",
                frame.header.msg_type
            )));
        }
        if self.outstanding.is_empty() || was == State::Closed {
            return Ok(Vec::new());
        }
        if !self.peer_goodbye {
            return Err(ClientError::Protocol(format!(
                "server closed with {} request(s) unanswered",
                self.outstanding.len()
            )));
        }
        let mut unprocessed: Vec<u32> = self.outstanding.drain().map(|(id, _)| id).collect();
        unprocessed.sort_unstable();
        Ok(unprocessed)
    }

    /// The text of a string field decoded in place (its octets are a range of the buffer).
    fn text(&self, s: &Str<Range<usize>>) -> String {
        let octets = self.wire.input.get(s.octets().clone()).unwrap_or_default();
        String::from_utf8_lossy(octets).into_owned()
    }

    /// Applies the rules to the frame at the front of the receive buffer (`total` octets). A
    /// response handed out is split off the buffer here; the caller drops anything else.
    fn handle_frame(
        &mut self,
        h: FrameHeader,
        offset: u64,
        total: usize,
    ) -> Result<Option<ClientEvent>, ClientError> {
        if self.state == State::Handshake {
            // §2.7 rule 2 (connection state) comes before the rules on version, flags and IDs:
            // before WELCOME only WELCOME or ERROR is acceptable (§9.2: PROTOCOL_ERROR).
            if !matches!(h.msg_type, MessageType::Welcome | MessageType::Error) {
                return Err(ClientError::Protocol(format!(
                    "expected WELCOME or ERROR, got {}",
                    h.msg_type
                )));
            }
            let ctx = DecodeContext {
                receiver: Role::Client,
                version: None,
                capabilities: 0,
            };
            let body = &self.wire.input[FRAME_OVERHEAD..total];
            return match message::decode_parts(&h, offset, body, &ctx)? {
                Message::Welcome(w) => {
                    // §9.2: every WELCOME fault is a connection error.
                    if w.version < self.config.min_version || w.version > self.config.max_version {
                        return Err(ClientError::Protocol(format!(
                            "server chose version {} not offered",
                            w.version
                        )));
                    }
                    if w.max_frame_size < MIN_MAX_FRAME_SIZE {
                        return Err(ClientError::Protocol(format!(
                            "WELCOME max_frame_size {} is below {MIN_MAX_FRAME_SIZE}",
                            w.max_frame_size
                        )));
                    }
                    if w.max_outstanding == 0 {
                        return Err(ClientError::Protocol("WELCOME max_outstanding is 0".into()));
                    }
                    if w.capabilities & !self.config.capabilities != 0 {
                        return Err(ClientError::Protocol(format!(
                            "WELCOME accepts capabilities {:#x} that were not offered ({:#x})",
                            w.capabilities, self.config.capabilities
                        )));
                    }
                    self.decoder.set_max_frame_size(
                        self.config
                            .max_frame_size
                            .clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
                    );
                    let n = Negotiated {
                        version: w.version,
                        // §9.2: above 16 MiB is treated as 16 MiB.
                        max_frame_size: w.max_frame_size.min(MAX_MAX_FRAME_SIZE),
                        max_outstanding: w.max_outstanding,
                        capabilities: w.capabilities,
                        agent: w.agent.to_string(),
                    };
                    self.negotiated = Some(n.clone());
                    self.state = State::Open;
                    Ok(Some(ClientEvent::Welcome(n)))
                }
                // §9.2: an ERROR with any ID ends the handshake; the client sends nothing.
                Message::Error(e) => {
                    self.state = State::Closed;
                    Ok(Some(ClientEvent::ConnectionError {
                        code: e.code,
                        message: e.message.to_string(),
                    }))
                }
                other => Err(ClientError::Protocol(format!(
                    "expected WELCOME, got {}",
                    other.msg_type()
                ))),
            };
        }
        let ctx = DecodeContext::client(
            self.version(),
            self.negotiated.as_ref().map_or(0, |n| n.capabilities),
        );
        // Decoded in place; octet fields become ranges of the buffer until a response is split
        // off it.
        let msg: Message<Range<usize>> = {
            let input = &self.wire.input;
            let base = input.as_ptr() as usize;
            message::decode_parts(&h, offset, &input[FRAME_OVERHEAD..total], &ctx)?.map(
                |s: &[u8]| {
                    let start = s.as_ptr() as usize - base;
                    start..start + s.len()
                },
            )
        };
        let id = h.request_id;
        let response = match msg {
            Message::Goodbye(_) if id != 0 => {
                return Err(ClientError::Violation {
                    code: ErrorCode::INVALID_REQUEST_ID,
                    detail: format!("GOODBYE with request ID {id}"),
                });
            }
            Message::Welcome(_) => {
                return Err(ClientError::Protocol("a second WELCOME".into()));
            }
            Message::Goodbye(g) => {
                self.peer_goodbye = true;
                self.state = if self.outstanding.is_empty() {
                    State::Closed
                } else {
                    State::Draining
                };
                return Ok(Some(ClientEvent::Goodbye {
                    code: g.code,
                    message: self.text(&g.message),
                }));
            }
            // Document 1.2 (§9.3): a GOODBYE reason (scope G alone) in an ERROR with ID 0 ends the
            // connection like a connection-scope code.
            Message::Error(e)
                if id == 0
                    && (e.code.is_connection_scope()
                        || e.code.scopes() == [crate::error::Scope::Goodbye]) =>
            {
                self.state = State::Closed;
                return Ok(Some(ClientEvent::ConnectionError {
                    code: e.code,
                    message: self.text(&e.message),
                }));
            }
            Message::Error(e) if id == 0 => {
                // §3.10: a request-scope ERROR with ID 0 reports a rejected frame that carried ID 0.
                return Ok(Some(ClientEvent::Rejected {
                    code: e.code,
                    message: self.text(&e.message),
                }));
            }
            response @ (Message::Error(_) | Message::Application(_)) => response,
            response if response.msg_type().kind() == crate::frame::Kind::Response => response,
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected {} from server",
                    other.msg_type()
                )));
            }
        };
        if id == 0 {
            return Err(ClientError::Violation {
                code: ErrorCode::INVALID_REQUEST_ID,
                detail: format!("{} with request ID 0", h.msg_type),
            });
        }
        let Some(Waiting {
            request: request_type,
            ..
        }) = self.outstanding.remove(&id)
        else {
            return Err(ClientError::Protocol(format!(
                "response {} for request ID {id}, which is not outstanding",
                h.msg_type
            )));
        };
        if !matches!(response, Message::Error(_)) && !answers(request_type, h.msg_type) {
            return Err(ClientError::Protocol(format!(
                "{} does not answer {request_type} (ID {id})",
                h.msg_type
            )));
        }
        if self.peer_goodbye && self.outstanding.is_empty() {
            self.state = State::Closed;
        }
        // Split off only if a field needs the octets (ECHO_REPLY's payload, ERROR's text).
        let input = &mut self.wire.input;
        let mut frame: Option<Bytes> = None;
        let response = response.map(|r| {
            frame
                .get_or_insert_with(|| input.split_to(total).freeze())
                .slice(r)
        });
        if frame.is_none() {
            bytes::Buf::advance(input, total);
        }
        Ok(Some(ClientEvent::Response { id, response }))
    }
}

/// Whether a response type answers a request type (spec §4.1, §9.3): the message table's pairing,
/// and any application type for an application request.
fn answers(request: MessageType, response: MessageType) -> bool {
    match request {
        MessageType::Application(_) => matches!(response, MessageType::Application(_)),
        _ => request.answered_by() == Some(response),
    }
}
