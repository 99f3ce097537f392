//! The client side of a connection (spec §3.5).
//!
//! [`ClientSession::new`] queues the preface and HELLO; requests may be queued at once (they are
//! sent after HELLO; the server applies them under the negotiated version, so a client that
//! pipelines before WELCOME must offer a single version, or wait — [`ClientSession::is_open`]).
//! Request IDs are assigned by the session: increasing, never 0, never one still outstanding.
//! Every response is checked against the request it answers (ID outstanding, type matching).

use std::collections::HashMap;

use bytes::BytesMut;

use super::{Outbox, RequestKind, Response};
use crate::decoder::FrameDecoder;
use crate::error::{DecodeError, ErrorCode};
use crate::frame::{
    BASE_VERSION, DEFAULT_MAX_FRAME_SIZE, FRAME_OVERHEAD, Frame, FrameHeader, MAX_MAX_FRAME_SIZE,
    MIN_MAX_FRAME_SIZE, MessageType, PREFACE, SUPPORTED_VERSIONS,
};
use crate::message::{self, CAP_DEFINED, DecodeContext, Message, Role};

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
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            min_version: *SUPPORTED_VERSIONS.start(),
            max_version: *SUPPORTED_VERSIONS.end(),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            capabilities: CAP_DEFINED,
            agent: concat!("echowire-client/", env!("CARGO_PKG_VERSION")).into(),
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
    /// A response to request `id` (possibly ERROR).
    Response {
        /// The request ID.
        id: u32,
        /// The response.
        response: Response,
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

/// The client side of one connection.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    decoder: FrameDecoder,
    negotiated: Option<Negotiated>,
    outbox: Outbox,
    next_id: u32,
    outstanding: HashMap<u32, MessageType>,
    /// The server sent GOODBYE: once nothing is outstanding the connection is over.
    peer_goodbye: bool,
}

impl ClientSession {
    /// A session whose outbox already holds the preface and HELLO.
    pub fn new(config: ClientConfig) -> Self {
        let mut outbox = Outbox::new();
        outbox.push_slice(&PREFACE);
        let hello = Message::Hello(message::Hello {
            min_version: config.min_version,
            max_version: config.max_version,
            max_frame_size: config.max_frame_size,
            capabilities: config.capabilities,
            agent: config.agent.as_str().into(),
        });
        outbox.push_own(&hello, BASE_VERSION, 0);
        ClientSession {
            // §2.2: until WELCOME the limit in force is 4096 (a WELCOME is never longer).
            decoder: FrameDecoder::new(MIN_MAX_FRAME_SIZE),
            config,
            state: State::Handshake,
            negotiated: None,
            outbox,
            next_id: 1,
            outstanding: HashMap::new(),
            peer_goodbye: false,
        }
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

    /// The output queue, for the driver to write.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// How many bytes the driver may add to `buf` (one maximum frame plus overhead).
    pub fn read_capacity(&self, buf: &BytesMut) -> usize {
        (FRAME_OVERHEAD + self.config.max_frame_size as usize).saturating_sub(buf.len())
    }

    /// The version frames are written in: the negotiated one, or before WELCOME the single
    /// version offered (a client offering a range must wait for WELCOME to send requests).
    fn version(&self) -> u8 {
        self.negotiated
            .as_ref()
            .map_or(self.config.max_version, |n| n.version)
    }

    /// Queues a request with the next free ID; returns the ID.
    pub fn send(&mut self, kind: &RequestKind) -> Result<u32, ClientError> {
        let mut id = self.next_id;
        while id == 0 || self.outstanding.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.send_with_id(id, kind)?;
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Queues a request with a chosen ID.
    pub fn send_with_id(&mut self, id: u32, kind: &RequestKind) -> Result<(), ClientError> {
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
            if matches!(kind, RequestKind::Stats) && n.version < 2 {
                return Err(ClientError::Unsupported("STATS needs protocol version 2"));
            }
            if matches!(kind, RequestKind::SumRkyv { .. })
                && n.capabilities & message::CAP_RKYV == 0
            {
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
        let msg = kind.to_message();
        let version = self.version();
        // Before WELCOME the server's limit is unknown: assume the smallest it may announce.
        let limit = self
            .negotiated
            .as_ref()
            .map_or(crate::frame::MIN_MAX_FRAME_SIZE, |n| n.max_frame_size);
        // An ECHO's payload or an archive is queued by reference, not copied.
        match self
            .outbox
            .push(&msg, version, id, limit, kind.zero_copy_source())
        {
            Ok(()) => {}
            Err(message::EncodeError::FrameTooLarge { length, limit }) => {
                let length = length as usize + 4;
                return Err(ClientError::TooLarge { length, limit });
            }
            Err(e) => return Err(ClientError::Protocol(e.to_string())),
        }
        self.outstanding.insert(id, msg.msg_type());
        Ok(())
    }

    /// Queues CANCEL for an outstanding request (spec §3.7). The request still gets exactly one
    /// response: ERROR CANCELLED or its normal reply.
    pub fn cancel(&mut self, id: u32) -> Result<(), ClientError> {
        if !self.outstanding.contains_key(&id) {
            return Ok(());
        }
        let msg = Message::Cancel(message::Cancel {});
        let version = self.version();
        self.outbox.push_own(&msg, version, id);
        Ok(())
    }

    /// Queues GOODBYE: no more requests; the server answers what is outstanding, then closes.
    pub fn goodbye(&mut self) {
        if matches!(self.state, State::Open | State::Handshake) {
            let msg = Message::Goodbye(message::Goodbye {
                code: ErrorCode::NO_ERROR,
                message: "".into(),
            });
            let version = self.version();
            self.outbox.push_own(&msg, version, 0);
            self.state = State::Draining;
        }
    }

    /// Decodes at most one frame from `buf`. `Ok(None)`: more bytes needed.
    pub fn poll_event(&mut self, buf: &mut BytesMut) -> Result<Option<ClientEvent>, ClientError> {
        if self.state == State::Closed {
            return Ok(None);
        }
        let frame = match self.decoder.decode(buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) => {
                let e = e.into();
                self.abort(&e);
                return Err(e);
            }
        };
        self.handle_frame(&frame).inspect_err(|e| self.abort(e))
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
            let detail = e.to_string();
            let msg = Message::Error(message::Error {
                code,
                message: detail.chars().take(200).collect::<String>().into(),
                retry_after_ms: 0,
            });
            self.outbox.push_own(&msg, version, 0);
        }
        self.state = State::Closed;
    }

    /// The server closed the connection (EOF). Returns an error if requests were left unanswered
    /// without a GOODBYE or connection error explaining why.
    pub fn handle_eof(&mut self, buf: &mut BytesMut) -> Result<(), ClientError> {
        let was = self.state;
        self.state = State::Closed;
        self.decoder.decode_eof(buf)?;
        if !self.outstanding.is_empty() && was != State::Closed {
            return Err(ClientError::Protocol(format!(
                "server closed with {} request(s) unanswered",
                self.outstanding.len()
            )));
        }
        Ok(())
    }

    fn handle_frame(&mut self, frame: &Frame) -> Result<Option<ClientEvent>, ClientError> {
        let h: FrameHeader = frame.header;
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
            return match message::decode(frame, &ctx)? {
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
                        agent: w.agent.into_owned(),
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
                        message: e.message.into_owned(),
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
        let msg = message::decode(frame, &ctx)?;
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
                    message: g.message.into_owned(),
                }));
            }
            Message::Error(e) if id == 0 && e.code.is_connection_scope() => {
                self.state = State::Closed;
                return Ok(Some(ClientEvent::ConnectionError {
                    code: e.code,
                    message: e.message.into_owned(),
                }));
            }
            Message::Error(e) if id == 0 => {
                // §3.10: a request-scope ERROR with ID 0 reports a rejected frame that carried ID 0.
                return Ok(Some(ClientEvent::Rejected {
                    code: e.code,
                    message: e.message.into_owned(),
                }));
            }
            other => match Response::from_message(other, &frame.body) {
                Ok(response) => response,
                Err(other) => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected {} from server",
                        other.msg_type()
                    )));
                }
            },
        };
        if id == 0 {
            return Err(ClientError::Violation {
                code: ErrorCode::INVALID_REQUEST_ID,
                detail: format!("{} with request ID 0", h.msg_type),
            });
        }
        let Some(request_type) = self.outstanding.remove(&id) else {
            return Err(ClientError::Protocol(format!(
                "response {} for request ID {id}, which is not outstanding",
                h.msg_type
            )));
        };
        if !matches!(response, Response::Error { .. }) && !answers(request_type, h.msg_type) {
            return Err(ClientError::Protocol(format!(
                "{} does not answer {request_type} (ID {id})",
                h.msg_type
            )));
        }
        if self.peer_goodbye && self.outstanding.is_empty() {
            self.state = State::Closed;
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
