//! The message table: the one place the protocol's message types are listed (spec §4.1).
//!
//! Each row gives a type's code, its name in the code and in the spec, who sends it, the first
//! version that defines it, its kind, its request-ID rule (§2.5), the type that answers it (for a
//! request), whether it has an archived form (§6.9), its body type (generic over the octet
//! storage `B` when it has byte or string fields), and — for a request a service answers — the
//! [`crate::service::Service`] method that serves it. Every layer derives what it needs by
//! passing a macro of its own to [`for_each_message!`]:
//!
//! * the frame layer builds [`crate::frame::MessageType`] (codes, names, directions, versions,
//!   ID rules, pairing);
//! * the message layer builds [`crate::message::Message`] (decode dispatch, lengths, encoding,
//!   the map between octet storages);
//! * the service layer builds the [`crate::service::Service`] trait (one required method per
//!   request type, so a new request does not compile until it is served) and its dispatch.
//!
//! The rows are checked against `spec/registry.json`, the registry every other implementation
//! reads (`tests/registry.rs`). Adding a request/response pair: two rows here (and two in the
//! registry), the body file in `src/message/`, and the handler the compiler then asks for.
//! The repository's `ARCHITECTURE.md` walks through it. PING has no handler: the session answers it itself, as
//! soon as it is read (§3.6).

/// Calls `$callback!` with the message table. Row syntax:
///
/// ```text
/// CODE Variant "SPEC_NAME" sender since kind id_rule [Answer[<B>]] [archived?] Body[<B>] [fn method [/ archived_method]];
/// ```
macro_rules! for_each_message {
    ($callback:ident) => {
        $callback! {
            0x01 Hello         "HELLO"          ToServer 1 Handshake Zero    []              []         Hello<B>       [];
            0x02 Welcome       "WELCOME"        ToClient 1 Handshake Zero    []              []         Welcome<B>     [];
            0x03 Ping          "PING"           ToServer 1 Request   NonZero [Pong]          []         Ping           [];
            0x04 Pong          "PONG"           ToClient 1 Response  NonZero []              []         Pong           [];
            0x05 Echo          "ECHO"           ToServer 1 Request   NonZero [EchoReply<B>]  []         Echo<B>        [fn echo];
            0x06 EchoReply     "ECHO_REPLY"     ToClient 1 Response  NonZero []              []         EchoReply<B>   [];
            0x07 Compute       "COMPUTE"        ToServer 1 Request   NonZero [ComputeResult] []         Compute<B>     [fn compute];
            0x08 ComputeResult "COMPUTE_RESULT" ToClient 1 Response  NonZero []              []         ComputeResult  [];
            0x09 Cancel        "CANCEL"         ToServer 1 Control   NonZero []              []         Cancel         [];
            0x0A Error         "ERROR"          Both     1 Control   Any     []              []         Error<B>       [];
            0x0B Goodbye       "GOODBYE"        Both     1 Control   Zero    []              []         Goodbye<B>     [];
            0x0C Sum           "SUM"            ToServer 1 Request   NonZero [SumResult]     [archived] Sum            [fn sum / sum_archived];
            0x0D SumResult     "SUM_RESULT"     ToClient 1 Response  NonZero []              []         SumResult      [];
            0x0E Stats         "STATS"          ToServer 2 Request   NonZero [StatsReply<B>] []         Stats          [fn stats];
            0x0F StatsReply    "STATS_REPLY"    ToClient 2 Response  NonZero []              []         StatsReply<B>  [];
        }
    };
}

pub(crate) use for_each_message;
