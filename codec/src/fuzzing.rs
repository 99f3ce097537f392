//! Fuzz harnesses (feature `fuzzing`): the bodies of the cargo-fuzz targets in the repository's
//! `fuzz/`, kept here so that `cargo test` replays the corpora and every minimised crash on
//! stable Rust (`tests/fuzz_replay.rs`) through exactly the code the fuzzer ran.
//!
//! Each function takes the fuzzer's bytes, panics on a violated invariant, and otherwise returns.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use crate::body;
use crate::decoder::FrameDecoder;
use crate::error::{DecodeError, ErrorCode};
use crate::frame::{Direction, FRAME_OVERHEAD, Frame};
use crate::message::{self, Body, DecodeBody, DecodeContext, Message, Role};
use crate::session::{
    ClientConfig, ClientSession, CloseReason, Event, ServerConfig, ServerSession, SessionState,
};

fn frames_of(data: &[u8], cuts: &[usize], max: u32) -> (Vec<Frame>, Option<DecodeError>) {
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&data.len())) {
        let c = c.clamp(last, data.len());
        buf.extend_from_slice(&data[last..c]);
        last = c;
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
        // The decoder never asks for more than one maximum frame: a driver reading only
        // `bytes_needed` keeps its buffer within the limit plus the overhead.
        assert!(
            dec.bytes_needed(&buf) <= max as usize + FRAME_OVERHEAD,
            "decoder asks for more than a frame"
        );
    }
    match dec.decode_eof(&mut buf) {
        Ok(Some(f)) => frames.push(f),
        Ok(None) => {}
        Err(e) => return (frames, Some(e)),
    }
    (frames, None)
}

/// `decode_stream`: arbitrary bytes fed in arbitrary chunkings decode to exactly the frames (and
/// the error) of the whole input; every frame is then run through the receiver rules.
pub fn decode_stream(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let max = 16 + u32::from(u16::from_be_bytes([data[0], data[1]]));
    let step = usize::from(data[2] % 31) + 1;
    let data = &data[3..];
    let whole = frames_of(data, &[], max);
    let cuts: Vec<usize> = (step..data.len()).step_by(step).collect();
    let chunked = frames_of(data, &cuts, max);
    assert_eq!(whole, chunked, "chunking changed the decoded frames");
    for f in &whole.0 {
        for receiver in [Role::Server, Role::Client] {
            for version in [None, Some(1), Some(2)] {
                let ctx = DecodeContext {
                    receiver,
                    version,
                    capabilities: message::CAP_RKYV,
                };
                if let Ok(m) = message::decode(f, &ctx) {
                    // A decoded frame re-encodes to the same bytes.
                    let mut out = Vec::new();
                    m.encode(f.header.version, f.header.request_id, u32::MAX, &mut out)
                        .expect("re-encode");
                    let mut orig = Vec::new();
                    f.encode(&mut orig);
                    assert_eq!(out, orig, "decode/encode is not the identity");
                }
            }
        }
    }
}

/// `roundtrip`: an arbitrary valid message encodes to exactly its predicted length and decodes
/// back to itself.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(msg) = Message::arbitrary(&mut u) else {
        return;
    };
    let Ok(id_seed) = u32::arbitrary(&mut u) else {
        return;
    };
    let ty = msg.msg_type();
    let handshake = ty.kind() == crate::frame::Kind::Handshake;
    // The table's `since` column: a type is sent in a version that defines it.
    let since = ty.since_version().unwrap_or(1);
    let version = if handshake {
        1
    } else {
        (1 + u8::from(id_seed & 1 == 1)).max(since)
    };
    let msg = match msg {
        Message::Error(e) if version == 1 => Message::Error(message::Error {
            retry_after_ms: 0,
            ..e
        }),
        m => m,
    };
    // The table's request-ID rule.
    let id = match ty.id_rule() {
        crate::frame::IdRule::Zero => 0,
        crate::frame::IdRule::Any => id_seed,
        crate::frame::IdRule::NonZero => id_seed.max(1),
    };
    let predicted = msg
        .frame_len(version)
        .expect("our messages always serialize");
    let mut wire = Vec::new();
    msg.encode(version, id, u32::MAX, &mut wire)
        .expect("encode");
    assert_eq!(wire.len(), predicted, "predicted length is wrong");
    let (frames, err) = frames_of(&wire, &[], u32::MAX);
    assert!(err.is_none() && frames.len() == 1);
    let receiver = if msg.msg_type().direction() == Direction::ToClient {
        Role::Client
    } else {
        Role::Server
    };
    let ctx = DecodeContext {
        receiver,
        version: (!handshake).then_some(version),
        capabilities: message::CAP_RKYV,
    };
    let back = message::decode(&frames[0], &ctx).expect("decode what we encoded");
    assert_eq!(back, msg.map(bytes::Bytes::from));
}

/// A nested application type for the body-format harness.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum Node<'a> {
    Leaf(#[serde(borrow)] Cow<'a, str>),
    Blob(#[serde(borrow, with = "body::cow_bytes")] Cow<'a, [u8]>),
    Pair(Box<Node<'a>>, Box<Node<'a>>),
    Many(Vec<Node<'a>>),
    Rec {
        id: u64,
        flag: bool,
        ch: char,
        opt: Option<Box<Node<'a>>>,
        map: BTreeMap<u16, i8>,
    },
}

/// `body_serde`: arbitrary bytes into the body decoder for every message body type (both ERROR
/// layouts) and a nested application type. Message bodies that decode re-encode to the same
/// bytes; the application type (which has a map) round-trips to the same value.
pub fn body_serde(data: &[u8]) {
    fn check<'a, T: Body + DecodeBody<'a> + PartialEq + std::fmt::Debug>(
        version: u8,
        data: &'a [u8],
    ) {
        if let Ok(v) = T::decode(version, data) {
            let mut out = Vec::new();
            v.encode_body(version, &mut out).expect("re-encode");
            assert_eq!(out, data, "body re-encoding differs");
            assert_eq!(v.body_len(version).expect("len"), data.len());
        }
    }
    // Every body of the table, in every version that defines it (generated: a new type is
    // reached without an edit here).
    macro_rules! check_every_body {
        ($($code:literal $variant:ident $name:literal $dir:ident $since:literal $kind:ident $id:ident
           [$($answer:ident $(<$ab:ident>)?)?] [$($archived:ident)?] $body:ident $(<$b:ident>)?
           [$(fn $method:ident $(/ $archived_method:ident)?)?];)*) => {
            for version in crate::frame::SUPPORTED_VERSIONS {
                $(
                    if version >= $since {
                        check::<message::$body $(<crate::fuzzing::with_storage!($b, &[u8])>)?>(version, data);
                    }
                )*
            }
        };
    }
    crate::table::for_each_message!(check_every_body);
    if let Ok(n) = body::from_bytes::<Node>(data) {
        // Maps are not canonical (spec §6.5: duplicate or unsorted keys decode, the last duplicate
        // wins), so bytes may differ after a round trip; the decoded value may not.
        let again = body::to_vec(&n).expect("re-encode");
        let back: Node = body::from_bytes(&again).expect("our own encoding decodes");
        assert_eq!(back, n, "decode(encode(x)) != x");
    }
    let _ = body::from_bytes::<HashMap<String, Vec<Option<f64>>>>(data);
}

/// `rkyv_access`: arbitrary bytes as an archived SUM body. The spec's rules (§6.9.3,
/// [`body::archive`]) accept exactly what rkyv's validation accepts, with the same values; what is
/// accepted is read entirely, and its canonical re-archive validates to the same values.
pub fn rkyv_access(data: &[u8]) {
    let spec = body::archive::check_sum(data)
        .ok()
        .map(|a| a.values().collect::<Vec<i64>>());
    #[cfg(feature = "rkyv")]
    {
        let lib = message::Sum::with_rkyv(data, |a| {
            a.values.iter().map(|v| v.to_native()).collect::<Vec<i64>>()
        })
        .ok();
        assert_eq!(spec, lib, "spec 6.9.3 and rkyv disagree");
    }
    let Some(values) = spec else {
        return;
    };
    let mut again = Vec::new();
    body::archive::write_sum(&values, &mut again).expect("archive");
    let back = body::archive::check_sum(&again).map(|a| a.values().collect::<Vec<i64>>());
    assert_eq!(back.expect("our own archive validates"), values);
}

/// `session`: the server state machine driven by arbitrary input and events — bytes in
/// arbitrary chunks, half-close, timer ticks, worker completions in any order, cancels, drain —
/// with its invariants checked; then a client session reads what the server wrote.
///
/// Input: byte 0 selects options (bit 0: the harness prepends a valid preface and HELLO;
/// bit 1: half-close at the end; bit 2: drain midway; bits 3-7: chunk size), the rest is the
/// client's byte stream.
pub fn session(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut stream = Vec::new();
    if ctl & 1 == 1 {
        stream.extend_from_slice(&crate::PREFACE);
        let hello = Message::<&[u8]>::Hello(message::Hello {
            min_version: 1 + (ctl >> 7),
            max_version: 2,
            max_frame_size: 1 << 20,
            capabilities: message::CAP_RKYV,
            agent: "fuzz".into(),
        });
        hello.encode(1, 0, u32::MAX, &mut stream).expect("hello");
    }
    stream.extend_from_slice(rest);
    let chunk = usize::from(ctl >> 3) + 1;
    let config = ServerConfig {
        max_outstanding: 8,
        max_pending_output: 4096,
        ..ServerConfig::default()
    };
    let max_outstanding = config.max_outstanding as usize;
    let mut now = Instant::now();
    let mut server = ServerSession::new(config, now);
    let mut held: Vec<u32> = Vec::new();
    let mut emitted: HashMap<u32, u32> = HashMap::new(); // id -> times emitted while outstanding
    let mut answered: HashMap<u32, u32> = HashMap::new();
    let mut wire = BytesMut::new();
    let respond = |server: &mut ServerSession,
                   id: u32,
                   r: Message,
                   now: Instant,
                   answered: &mut HashMap<u32, u32>| {
        if server.respond(id, &r, now) {
            *answered.entry(id).or_default() += 1;
        }
    };
    for (i, piece) in stream.chunks(chunk).enumerate() {
        server.handle_input(piece);
        if i == 3 && ctl & 4 != 0 {
            server.start_drain(now);
        }
        loop {
            let Some(ev) = server.poll_event(now) else {
                break;
            };
            match ev {
                Event::Request { id, message } => {
                    *emitted.entry(id).or_default() += 1;
                    match message {
                        Message::Echo(e) => respond(
                            &mut server,
                            id,
                            Message::EchoReply(message::EchoReply { payload: e.payload }),
                            now,
                            &mut answered,
                        ),
                        _ => held.push(id),
                    }
                }
                Event::Cancel { id } => {
                    if let Some(p) = held.iter().position(|&h| h == id) {
                        held.remove(p);
                        respond(
                            &mut server,
                            id,
                            Message::error(ErrorCode::CANCELLED, ""),
                            now,
                            &mut answered,
                        );
                    }
                }
            }
            assert!(
                server.outstanding() <= max_outstanding,
                "outstanding above the announced limit"
            );
        }
        // Workers complete in an order the input decides; time passes.
        if piece[0] & 1 == 1
            && let Some(id) = held.pop()
        {
            respond(
                &mut server,
                id,
                Message::ComputeResult(message::ComputeResult { digest: [0; 32] }),
                now,
                &mut answered,
            );
        }
        now += Duration::from_millis(u64::from(piece[0]) * 40);
        if server.poll_timeout().is_some_and(|t| now >= t) {
            server.handle_timeout(now);
        }
        wire.extend_from_slice(&server.take_output());
    }
    if ctl & 2 != 0 || ctl & 1 == 0 {
        server.handle_eof();
    }
    while let Some(ev) = server.poll_event(now) {
        if let Event::Request { id, .. } = ev {
            *emitted.entry(id).or_default() += 1;
            held.push(id);
        }
    }
    while let Some(id) = held.pop() {
        respond(
            &mut server,
            id,
            Message::ComputeResult(message::ComputeResult { digest: [0; 32] }),
            now,
            &mut answered,
        );
    }
    wire.extend_from_slice(&server.take_output());
    // Every request was answered exactly once, unless a connection error (whose ERROR stands for
    // all outstanding requests), the peer's ERROR or an expired drain (an abortive close) ended
    // the connection.
    let aborted = matches!(
        server.close_reason(),
        Some(CloseReason::LocalError(_) | CloseReason::PeerError(_) | CloseReason::DrainTimeout)
    );
    for (id, n) in &emitted {
        let a = answered.get(id).copied().unwrap_or(0);
        assert!(a <= *n, "request {id} answered {a} times for {n} emissions");
        if !aborted {
            assert_eq!(a, *n, "request {id} left unanswered");
        }
    }
    if ctl & 2 != 0 || ctl & 1 == 0 {
        // After EOF and with everything answered, the session finishes.
        assert!(
            server.is_finished() || matches!(server.state(), SessionState::Preface { .. }),
            "session did not finish after EOF: {:?}",
            server.state()
        );
    }
    // The client side parses whatever the server wrote, and also the raw input as server output.
    for bytes in [&wire[..], rest] {
        let mut client = ClientSession::new(ClientConfig::default(), now);
        client.handle_input(bytes);
        while let Ok(Some(_)) = client.poll_event(now) {}
    }
}

/// Yields its second argument (a type), whatever its first: spells a row's generic body with a
/// given storage in the table-generated code above.
macro_rules! with_storage {
    ($x:ident, $($t:tt)*) => {
        $($t)*
    };
}
pub(crate) use with_storage;

/// A valid message of any type of the table, generated from the table: every row's body from
/// its [`message::ArbitraryBody`], plus the two forms no row describes (an archived SUM, whose
/// archive must be valid, and an application type, whose code is in `0x80..=0xFF`).
macro_rules! arbitrary_message {
    ($($code:literal $variant:ident $name:literal $dir:ident $since:literal $kind:ident $id:ident
       [$($answer:ident $(<$ab:ident>)?)?] [$($archived:ident)?] $body:ident $(<$b:ident>)?
       [$(fn $method:ident $(/ $archived_method:ident)?)?];)*) => {
        impl<'a> Arbitrary<'a> for Message<Vec<u8>> {
            fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
                type Make<'a> = fn(&mut Unstructured<'a>) -> arbitrary::Result<Message<Vec<u8>>>;
                let makers: &[Make<'a>] = &[
                    $(|u| Ok(Message::$variant(message::ArbitraryBody::arbitrary_body(u)?)),)*
                    |u| {
                        let sum: message::Sum = u.arbitrary()?;
                        let mut archive = Vec::new();
                        body::archive::write_sum(&sum.values, &mut archive)
                            .map_err(|_| arbitrary::Error::IncorrectFormat)?;
                        Ok(Message::SumRkyv(message::RkyvBody { archive }))
                    },
                    |u| {
                        Ok(Message::Application(message::ApplicationBody {
                            type_code: u.int_in_range(0x80..=0xFF)?,
                            body: u.arbitrary()?,
                        }))
                    },
                ];
                let make = u.choose(makers)?;
                make(u)
            }
        }
    };
}
crate::table::for_each_message!(arbitrary_message);
