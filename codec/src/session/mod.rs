//! The protocol as sans-IO state machines (spec §3): [`ServerSession`] and [`ClientSession`].
//!
//! In the manner of quinn-proto: no sockets, threads or clocks inside. Time comes in as `now`;
//! received bytes come in as the caller's `BytesMut`; output goes into an [`Outbox`] the caller
//! writes to its socket. The reference server (three I/O models), the blocking client, the
//! conformance runner, the tests and the fuzz targets all drive these same types.
//!
//! ## Driving a [`ServerSession`]
//! 1. Read from the socket into a `BytesMut` — at most [`ServerSession::read_capacity`] bytes, and
//!    only while [`ServerSession::wants_read`]. On EOF call [`ServerSession::handle_eof`].
//! 2. Call [`ServerSession::poll_event`] until it returns `None`. Each [`Event::Request`] must
//!    eventually be answered with [`ServerSession::respond`] (inline or from a worker);
//!    [`Event::Cancel`] asks the driver to drop queued work for that ID.
//! 3. Write [`ServerSession::outbox`] to the socket (vectored); partial writes stay queued.
//! 4. Arm a timer for [`ServerSession::poll_timeout`]; when it fires call
//!    [`ServerSession::handle_timeout`].
//! 5. When [`ServerSession::is_finished`], do a lingering close: shut down the write side, read
//!    and discard until EOF or a short deadline, close (spec §3.10).

mod client;
mod outbox;
mod server;

use bytes::Bytes;

pub use client::{ClientConfig, ClientError, ClientEvent, ClientSession, Negotiated};
pub use outbox::{Outbox, ZERO_COPY_MIN};
pub use server::{
    CloseReason, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_OUTSTANDING, DEFAULT_MAX_PENDING_OUTPUT, Event, ServerConfig, ServerSession,
    SessionState, SessionStats,
};

use crate::error::ErrorCode;
use crate::message::Sum;

/// A request as the application sees it. Byte fields share the receive buffer (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The request ID to answer with.
    pub id: u32,
    /// What is asked.
    pub kind: RequestKind,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// PING (sent by clients; a [`ServerSession`] answers it itself and never emits it).
    Ping {
        /// Opaque value.
        data: u64,
    },
    /// ECHO.
    Echo {
        /// The payload.
        payload: Bytes,
    },
    /// COMPUTE (heavy).
    Compute {
        /// Iterations.
        cost: u32,
        /// Seed.
        seed: Bytes,
    },
    /// SUM in the standard encoding.
    Sum(Sum),
    /// SUM as an rkyv archive (validated by the session before it is emitted).
    SumRkyv {
        /// The archive bytes (exactly the frame body).
        archive: Bytes,
    },
    /// STATS (version 2).
    Stats,
    /// An application-defined type.
    Application {
        /// Type code, `0x80..=0xFF`.
        type_code: u8,
        /// Undecoded body.
        body: Bytes,
    },
}

impl RequestKind {
    /// Whether the spec calls the request idempotent (spec §8.6): safe to retry after a lost
    /// connection. COMPUTE is deterministic too, but costly; applications decide for theirs.
    pub fn is_idempotent(&self) -> bool {
        !matches!(self, RequestKind::Application { .. })
    }

    /// A SUM in its archived form (spec §6.9.2, client side).
    pub fn sum_archived(sum: &Sum) -> Result<Self, crate::error::BodyError> {
        let mut archive = Vec::with_capacity(crate::body::archive::sum_len(sum.values.len()));
        crate::body::archive::write_sum(&sum.values, &mut archive)?;
        Ok(RequestKind::SumRkyv {
            archive: Bytes::from(archive),
        })
    }
}

/// A response: built by the server's application, decoded by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// PONG.
    Pong {
        /// The PING's data.
        data: u64,
    },
    /// ECHO_REPLY; large payloads are written without a copy.
    EchoReply {
        /// The payload.
        payload: Bytes,
    },
    /// COMPUTE_RESULT.
    ComputeResult {
        /// The digest.
        digest: [u8; 32],
    },
    /// SUM_RESULT.
    SumResult(crate::message::SumResult),
    /// STATS_REPLY (version 2).
    StatsReply(Vec<(String, u64)>),
    /// ERROR for this request.
    Error {
        /// Code.
        code: ErrorCode,
        /// Detail.
        message: String,
        /// Retry hint (sent in version 2 only).
        retry_after_ms: u32,
    },
    /// An application-defined response type.
    Application {
        /// Type code, `0x80..=0xFF`.
        type_code: u8,
        /// Body.
        body: Bytes,
    },
}

impl Response {
    /// An ERROR response with no retry hint.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
            retry_after_ms: 0,
        }
    }
}
