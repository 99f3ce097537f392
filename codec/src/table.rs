//! The message table: the one place the protocol's message types are listed (spec §4.1).
//!
//! Each row gives a type's code, its name in the code and in the spec, who sends it, the first
//! version that defines it, its kind, the type that answers it (for a request), whether it has an
//! archived form (§6.9), and its body type. Every layer derives what it needs from these rows by
//! passing a macro of its own to [`for_each_message!`]: the frame layer builds
//! [`crate::frame::MessageType`] (codes, names, directions, versions, pairing), the message layer
//! builds [`crate::message::Message`] (decode dispatch, lengths, encoding, ownership). No other
//! file lists the message types.
//!
//! Adding a message type: one row here, its body file in `message/` (a struct implementing
//! [`crate::message::Body`]), and — for a request — its variants and conversions in
//! `session/kinds.rs` and its handler in the server. `ARCHITECTURE.md` walks through it.

/// Calls `$callback!` with the message table. Row syntax:
///
/// ```text
/// CODE Variant "SPEC_NAME" sent_by since kind [answer] [archived?] Body<'a?> [borrow?];
/// ```
macro_rules! for_each_message {
    ($callback:ident) => {
        $callback! {
            0x01 Hello         "HELLO"          ToServer 1 Handshake [] [] Hello<'a> [borrow];
            0x02 Welcome       "WELCOME"        ToClient 1 Handshake [] [] Welcome<'a> [borrow];
            0x03 Ping          "PING"           ToServer 1 Request [Pong] [] Ping [];
            0x04 Pong          "PONG"           ToClient 1 Response [] [] Pong [];
            0x05 Echo          "ECHO"           ToServer 1 Request [EchoReply] [] Echo<'a> [borrow];
            0x06 EchoReply     "ECHO_REPLY"     ToClient 1 Response [] [] EchoReply<'a> [borrow];
            0x07 Compute       "COMPUTE"        ToServer 1 Request [ComputeResult] [] Compute<'a> [borrow];
            0x08 ComputeResult "COMPUTE_RESULT" ToClient 1 Response [] [] ComputeResult [];
            0x09 Cancel        "CANCEL"         ToServer 1 Control [] [] Cancel [];
            0x0A Error         "ERROR"          Both     1 Control [] [] Error<'a> [borrow];
            0x0B Goodbye       "GOODBYE"        Both     1 Control [] [] Goodbye<'a> [borrow];
            0x0C Sum           "SUM"            ToServer 1 Request [SumResult] [archived] Sum [];
            0x0D SumResult     "SUM_RESULT"     ToClient 1 Response [] [] SumResult [];
            0x0E Stats         "STATS"          ToServer 2 Request [StatsReply] [] Stats [];
            0x0F StatsReply    "STATS_REPLY"    ToClient 2 Response [] [] StatsReply<'a> [borrow];
        }
    };
}

pub(crate) use for_each_message;
