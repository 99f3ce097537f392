//! The application side of a server, generated from the message table (`table.rs`): the
//! [`Service`] trait has one required method per request type a service answers, typed by the
//! table (ECHO is answered with an ECHO_REPLY or an ERROR, nothing else), and [`dispatch`] hands
//! each request a session emits to its method. There is no catch-all: a new request type in the
//! table does not compile until every service implements its method.
//!
//! PING has no method: the session answers it itself, as soon as it is read (spec §3.6).
//! Application types (`0x80..=0xFF`) go to [`Service::application`], which answers
//! UNKNOWN_TYPE unless a service implements some (the session answers UNKNOWN_TYPE itself for
//! the types [`crate::session::ServerConfig::application_types`] does not list, spec §4.1).
//!
//! ```
//! use bytes::Bytes;
//! use echowire_codec::message::*;
//! use echowire_codec::service::{dispatch, Reply, Service};
//!
//! struct Inline;
//! impl Service for Inline {
//!     fn echo(&mut self, _id: u32, r: Echo) -> Reply<EchoReply> {
//!         Reply::Now(EchoReply { payload: r.payload })
//!     }
//!     fn compute(&mut self, _id: u32, r: Compute) -> Reply<ComputeResult> {
//!         Reply::Now(ComputeResult { digest: compute_digest(r.cost, &r.seed) })
//!     }
//!     fn sum(&mut self, _id: u32, r: Sum) -> Reply<SumResult> {
//!         Reply::Now(SumResult::of(r.values))
//!     }
//!     fn sum_archived(&mut self, _id: u32, r: RkyvBody) -> Reply<SumResult> {
//!         match echowire_codec::body::archive::check_sum(&r.archive) {
//!             Ok(a) => Reply::Now(SumResult::of(a.values())),
//!             Err(e) => Reply::error(e.code(), e.to_string()),
//!         }
//!     }
//!     fn stats(&mut self, _id: u32, _r: Stats) -> Reply<StatsReply> {
//!         Reply::Now(StatsReply::from_pairs([("requests", 1)]))
//!     }
//! }
//!
//! let echo = Message::Echo(Echo { payload: Bytes::from_static(b"hi") });
//! let reply = dispatch(&mut Inline, 7, echo).expect("answered now");
//! assert_eq!(reply, Message::EchoReply(EchoReply { payload: Bytes::from_static(b"hi") }));
//! ```

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::frame::MessageType;
// The table names body types by their bare names.
use crate::message::{self, *};

/// How a service answers one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<T> {
    /// The response, now.
    Now(T),
    /// ERROR for the request (a request error, spec §7.1).
    Error(message::Error<Bytes>),
    /// Later: the service answers through
    /// [`ServerSession::respond`](crate::session::ServerSession::respond) itself (work handed
    /// to a worker thread, say). Until then the request is outstanding.
    Later,
}

impl<T> Reply<T> {
    /// ERROR with `code` and a detail text, no retry hint.
    pub fn error(code: ErrorCode, detail: impl Into<String>) -> Self {
        Reply::Error(message::Error::new(code, detail))
    }

    /// The response message, or `None` for [`Reply::Later`].
    pub fn into_message(self) -> Option<Message<Bytes>>
    where
        T: Into<Message<Bytes>>,
    {
        match self {
            Reply::Now(r) => Some(r.into()),
            Reply::Error(e) => Some(Message::Error(e)),
            Reply::Later => None,
        }
    }
}

/// A row's body or answer type with `Bytes` storage.
macro_rules! shared_type {
    ($t:ident) => {
        $t
    };
    ($t:ident < $b:ident >) => {
        $t<Bytes>
    };
}

/// The trait method(s) of one row: none for a row a service does not serve; for a request,
/// its method, typed by the row's body and answer; for a request with an archived form, a
/// second method for that form.
macro_rules! service_methods {
    ([$name:literal] [$body:ident $(<$b:ident>)?] [$($answer:ident $(<$ab:ident>)?)?] []) => {};
    ([$name:literal] [$body:ident $(<$b:ident>)?] [$answer:ident $(<$ab:ident>)?]
     [fn $method:ident $(/ $archived_method:ident)?]) => {
        service_method_items!(
            [$name]
            [shared_type!($body $(<$b>)?)]
            [shared_type!($answer $(<$ab>)?)]
            [fn $method $(/ $archived_method)?]
        );
    };
}

macro_rules! service_method_items {
    ([$name:literal] [$req:ty] [$ans:ty] [fn $method:ident $(/ $archived_method:ident)?]) => {
        #[doc = concat!("Serves ", $name, " (request `id`).")]
        fn $method(&mut self, id: u32, request: $req) -> Reply<$ans>;
        $(
            #[doc = concat!(
                "Serves ", $name,
                " in its archived form (spec §6.9), already validated by the session."
            )]
            fn $archived_method(&mut self, id: u32, request: RkyvBody<Bytes>) -> Reply<$ans>;
        )?
    };
}

/// The dispatch of one row: its method, or — for a row a service does not serve — the answer
/// that says so (the session never hands such a message out as a request).
macro_rules! serve_row {
    ($service:ident, $id:ident, $b:ident, $variant:ident, []) => {{
        let _ = $b;
        not_served(MessageType::$variant)
    }};
    ($service:ident, $id:ident, $b:ident, $variant:ident, [fn $method:ident $(/ $archived:ident)?]) => {
        $service.$method($id, $b).into_message()
    };
}

/// The dispatch of an archived body to the row that has an archived form.
macro_rules! serve_archived {
    ($service:ident, $id:ident, $r:ident, []) => {};
    ($service:ident, $id:ident, $r:ident, [fn $method:ident]) => {};
    ($service:ident, $id:ident, $r:ident, [fn $method:ident / $archived:ident]) => {
        return $service.$archived($id, $r).into_message();
    };
}

macro_rules! define_service {
    ($($code:literal $variant:ident $name:literal $dir:ident $since:literal $kind:ident $id:ident
       [$($answer:ident $(<$ab:ident>)?)?] [$($archived:ident)?] $body:ident $(<$b:ident>)?
       [$(fn $method:ident $(/ $archived_method:ident)?)?];)*) => {
        /// What a server does with each request type, generated from the message table: one
        /// required method per request type (none for PING, which the session answers), typed
        /// by the table's answer column. Each returns its answer now, an ERROR, or
        /// [`Reply::Later`].
        pub trait Service {
            $(service_methods!(
                [$name] [$body $(<$b>)?] [$($answer $(<$ab>)?)?]
                [$(fn $method $(/ $archived_method)?)?]
            );)*

            /// Serves an application type (`0x80..=0xFF`) that the session's configuration lists;
            /// by default, UNKNOWN_TYPE.
            fn application(
                &mut self,
                id: u32,
                request: ApplicationBody<Bytes>,
            ) -> Reply<ApplicationBody<Bytes>> {
                let _ = id;
                Reply::error(
                    ErrorCode::UNKNOWN_TYPE,
                    format!("application type {:#04x} is not implemented", request.type_code),
                )
            }
        }

        /// Hands request `id` to its [`Service`] method; returns the response to send now
        /// (through [`ServerSession::respond`](crate::session::ServerSession::respond)), or
        /// `None` when the service answers later.
        pub fn dispatch<S: Service + ?Sized>(
            service: &mut S,
            id: u32,
            request: Message<Bytes>,
        ) -> Option<Message<Bytes>> {
            match request {
                $(Message::$variant(b) => serve_row!(service, id, b, $variant, [$(fn $method $(/ $archived_method)?)?]),)*
                #[allow(unreachable_code)]
                Message::SumRkyv(r) => {
                    $(serve_archived!(service, id, r, [$(fn $method $(/ $archived_method)?)?]);)*
                    let _ = r;
                    not_served(MessageType::Sum)
                }
                Message::Application(a) => service.application(id, a).into_message(),
            }
        }
    };
}

/// The answer to a message that no service method serves (the session answers PING itself and
/// hands out only requests): an internal error, never a silent drop.
fn not_served(t: MessageType) -> Option<Message<Bytes>> {
    Some(Message::error(
        ErrorCode::INTERNAL_ERROR,
        format!("{t} is not a request a service answers"),
    ))
}

crate::table::for_each_message!(define_service);
