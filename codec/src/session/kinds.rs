//! The application's view of requests and responses, and their conversions to and from the
//! message layer.
//!
//! [`RequestKind`] and [`Response`] differ from [`Message`] in one way: their byte fields are
//! `Bytes` sharing the receive buffer (or the application's buffer), so a request can outlive the
//! decode call, move to a worker thread, and be answered without copying its payload. Every
//! conversion between the two forms lives in this file; adding a request type means one variant
//! in each enum and one arm in each conversion here (see `ARCHITECTURE.md`).

use std::borrow::Cow;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::message::{self, Message, Sum};

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
    /// PING (sent by clients; a [`ServerSession`](super::ServerSession) answers it itself and never emits it).
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

impl RequestKind {
    /// The request form of a decoded request message whose body is `body`; borrowed byte fields
    /// become slices of `body` (no copy). A message that is not a request is handed back.
    pub(crate) fn from_message<'m>(msg: Message<'m>, body: &Bytes) -> Result<Self, Message<'m>> {
        Ok(match msg {
            Message::Ping(p) => RequestKind::Ping { data: p.data },
            Message::Echo(e) => RequestKind::Echo {
                payload: share(body, e.payload),
            },
            Message::Compute(c) => RequestKind::Compute {
                cost: c.cost,
                seed: share(body, c.seed),
            },
            Message::Sum(s) => RequestKind::Sum(s),
            Message::SumRkyv(_) => RequestKind::SumRkyv {
                archive: body.clone(),
            },
            Message::Stats(_) => RequestKind::Stats,
            Message::Application(a) => RequestKind::Application {
                type_code: a.type_code,
                body: share(body, a.body),
            },
            other => return Err(other),
        })
    }

    /// The message form of the request, borrowing its byte fields.
    pub(crate) fn to_message(&self) -> Message<'_> {
        match self {
            RequestKind::Ping { data } => Message::Ping(message::Ping { data: *data }),
            RequestKind::Echo { payload } => Message::Echo(message::Echo {
                payload: Cow::Borrowed(payload),
            }),
            RequestKind::Compute { cost, seed } => Message::Compute(message::Compute {
                cost: *cost,
                seed: Cow::Borrowed(seed),
            }),
            RequestKind::Sum(s) => Message::Sum(s.clone()),
            RequestKind::SumRkyv { archive } => Message::SumRkyv(message::RkyvBody {
                archive: Cow::Borrowed(archive),
            }),
            RequestKind::Stats => Message::Stats(message::Stats {}),
            RequestKind::Application { type_code, body } => {
                Message::Application(message::ApplicationBody {
                    type_code: *type_code,
                    body: Cow::Borrowed(body),
                })
            }
        }
    }

    /// The trailing byte field the outbox may queue by reference instead of copying.
    pub(crate) fn zero_copy_source(&self) -> Option<&Bytes> {
        match self {
            RequestKind::Echo { payload } => Some(payload),
            RequestKind::SumRkyv { archive } => Some(archive),
            RequestKind::Application { body, .. } => Some(body),
            _ => None,
        }
    }
}

impl Response {
    /// The response form of a decoded response message (ERROR included) whose body is `body`.
    /// A message that is not a response is handed back.
    pub(crate) fn from_message<'m>(msg: Message<'m>, body: &Bytes) -> Result<Self, Message<'m>> {
        Ok(match msg {
            Message::Error(e) => Response::Error {
                code: e.code,
                message: e.message.into_owned(),
                retry_after_ms: e.retry_after_ms,
            },
            Message::Pong(p) => Response::Pong { data: p.data },
            Message::EchoReply(e) => Response::EchoReply {
                payload: share(body, e.payload),
            },
            Message::ComputeResult(c) => Response::ComputeResult { digest: c.digest },
            Message::SumResult(s) => Response::SumResult(s),
            Message::StatsReply(s) => Response::StatsReply(
                s.entries
                    .into_iter()
                    .map(|e| (e.name.into_owned(), e.value))
                    .collect(),
            ),
            Message::Application(a) => Response::Application {
                type_code: a.type_code,
                body: share(body, a.body),
            },
            other => return Err(other),
        })
    }

    /// The message form of the response, borrowing its fields.
    pub(crate) fn to_message(&self) -> Message<'_> {
        match self {
            Response::Pong { data } => Message::Pong(message::Pong { data: *data }),
            Response::EchoReply { payload } => Message::EchoReply(message::EchoReply {
                payload: Cow::Borrowed(payload),
            }),
            Response::ComputeResult { digest } => {
                Message::ComputeResult(message::ComputeResult { digest: *digest })
            }
            Response::SumResult(r) => Message::SumResult(*r),
            Response::StatsReply(entries) => Message::StatsReply(message::StatsReply {
                entries: entries
                    .iter()
                    .map(|(name, value)| message::StatEntry {
                        name: Cow::Borrowed(name),
                        value: *value,
                    })
                    .collect(),
            }),
            Response::Error {
                code,
                message,
                retry_after_ms,
            } => Message::Error(message::Error {
                code: *code,
                message: Cow::Borrowed(message),
                retry_after_ms: *retry_after_ms,
            }),
            Response::Application { type_code, body } => {
                Message::Application(message::ApplicationBody {
                    type_code: *type_code,
                    body: Cow::Borrowed(body),
                })
            }
        }
    }

    /// The trailing byte field the outbox may queue by reference instead of copying.
    pub(crate) fn zero_copy_source(&self) -> Option<&Bytes> {
        match self {
            Response::EchoReply { payload } => Some(payload),
            Response::Application { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// A byte field of a message decoded from `body` as a `Bytes` sharing `body`'s memory when it
/// was borrowed from it.
fn share(body: &Bytes, field: Cow<'_, [u8]>) -> Bytes {
    match field {
        Cow::Borrowed(slice) => body.slice_ref(slice),
        Cow::Owned(v) => Bytes::from(v),
    }
}
