//! proptest properties: every message round-trips in every version with an exact length
//! prediction; the decoder is split-invariant; the server session answers every request exactly
//! once under any interleaving of requests, completions, cancels, drain and half-close.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::error::DecodeError;
use echowire_codec::error::ErrorCode;
use echowire_codec::frame::{Frame, IdRule, Kind};
use echowire_codec::message::{self, DecodeContext, Message, Role};
use echowire_codec::session::*;
use echowire_test_support::memory::*;
use echowire_test_support::messages::*;
use proptest::prelude::*;

/// Any message valid in `version`, with a request ID its type allows: generated from the
/// message table (the codec's `arbitrary` generator, fed proptest's bytes), so a new type of the
/// table is reached without an edit here. The table's `since` column picks the versions and its
/// ID rule the ID; an ERROR in version 1 has no retry hint.
fn message_strategy(version: u8) -> impl Strategy<Value = (Message, u32)> {
    (
        proptest::collection::vec(any::<u8>(), 16..400),
        any::<u32>(),
    )
        .prop_filter_map("a message defined in the version", move |(raw, seed)| {
            let msg = Message::<Vec<u8>>::arbitrary(&mut Unstructured::new(&raw)).ok()?;
            let ty = msg.msg_type();
            if ty.since_version()? > version {
                return None;
            }
            let msg = match msg {
                Message::Error(e) if version == 1 => Message::Error(message::Error {
                    retry_after_ms: 0,
                    ..e
                }),
                m => m,
            };
            let id = match ty.id_rule() {
                IdRule::Zero => 0,
                IdRule::Any => seed,
                IdRule::NonZero => seed.max(1),
            };
            Some((msg.map(Bytes::from), id))
        })
}

fn receiver_of(m: &Message) -> Role {
    use echowire_codec::frame::Direction;
    match m.msg_type().direction() {
        Direction::ToClient => Role::Client,
        _ => Role::Server,
    }
}

fn decode_all(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
        buf.extend_from_slice(&bytes[last..c]);
        last = c;
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            frames.push(f);
        }
    }
    assert!(buf.is_empty());
    frames
}

/// The same stream through `decode_ref` (borrowed, the caller advances): frames as owned copies,
/// or the error.
fn decode_all_ref(bytes: &[u8], cuts: &[usize], max: u32) -> Result<Vec<Frame>, DecodeError> {
    let mut dec = FrameDecoder::new(max);
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
        buf.extend_from_slice(&bytes[last..c]);
        last = c;
        let mut at = 0;
        while let Some(f) = dec.decode_ref(&buf[at..])? {
            at += f.encoded_len();
            frames.push(Frame {
                header: f.header,
                body: Bytes::copy_from_slice(f.body),
                offset: f.offset,
            });
        }
        buf.drain(..at);
    }
    Ok(frames)
}

/// The owned decoder's frames or its error.
fn decode_all_owned(bytes: &[u8], cuts: &[usize], max: u32) -> Result<Vec<Frame>, DecodeError> {
    let mut dec = FrameDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
        buf.extend_from_slice(&bytes[last..c]);
        last = c;
        while let Some(f) = dec.decode(&mut buf)? {
            frames.push(f);
        }
    }
    Ok(frames)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn borrowed_and_owned_decoding_agree_on_frames_and_errors(
        msgs in proptest::collection::vec(message_strategy(2), 0..20),
        garbage in proptest::collection::vec(any::<u8>(), 0..24),
        cut_seeds in proptest::collection::vec(any::<proptest::sample::Index>(), 0..40),
        max in prop_oneof![Just(4096u32), Just(1 << 20)],
    ) {
        let mut wire = Vec::new();
        for (m, id) in &msgs {
            m.encode(2, *id, u32::MAX, &mut wire).unwrap();
        }
        // Arbitrary octets after the frames: a bad length (too short, too large) or a partial frame.
        wire.extend_from_slice(&garbage);
        let mut cuts: Vec<usize> = cut_seeds.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let owned = decode_all_owned(&wire, &cuts, max);
        let borrowed = decode_all_ref(&wire, &cuts, max);
        prop_assert_eq!(borrowed, owned);
    }

    #[test]
    fn any_message_round_trips(version in 1u8..=2, (msg, id) in (1u8..=2).prop_flat_map(message_strategy)) {
        let ty = msg.msg_type();
        let handshake = ty.kind() == Kind::Handshake;
        let version = if handshake { 1 } else { version.max(ty.since_version().unwrap_or(1)) };
        let msg = match msg {
            Message::Error(e) if version == 1 => Message::Error(message::Error { retry_after_ms: 0, ..e }),
            m => m,
        };
        let mut wire = Vec::new();
        msg.encode(version, id, u32::MAX, &mut wire).unwrap();
        prop_assert_eq!(wire.len(), msg.frame_len(version).unwrap());
        let frames = decode_all(&wire, &[]);
        prop_assert_eq!(frames.len(), 1);
        let ctx = DecodeContext { receiver: receiver_of(&msg), version: (!handshake).then_some(version), capabilities: 1 };
        let back = message::decode(&frames[0], &ctx).unwrap();
        prop_assert_eq!(back, msg);
    }

    /// `encode_split` (the outbox's path, with its own ECHO/ECHO_REPLY shortcut) writes what
    /// `encode` writes once the payload is appended, and refuses exactly the frames `encode`
    /// refuses: at the limit, one octet under it, and without one.
    #[test]
    fn encode_split_and_encode_agree(version in 1u8..=2, (msg, id) in (1u8..=2).prop_flat_map(message_strategy)) {
        let version = if msg.msg_type().kind() == Kind::Handshake { 1 } else { version.max(msg.msg_type().since_version().unwrap_or(1)) };
        let len = msg.frame_len(version).unwrap() as u32;
        for limit in [u32::MAX, len - 4, len - 5] {
            let mut whole = Vec::new();
            let a = msg.encode(version, id, limit, &mut whole);
            let mut split = Vec::new();
            let b = msg.encode_split(version, id, limit, &mut split).map(|tail| {
                if let Some(t) = tail {
                    split.extend_from_slice(t);
                }
            });
            prop_assert_eq!(a.is_ok(), b.is_ok(), "limit {}", limit);
            prop_assert_eq!(&whole, &split);
        }
    }

    #[test]
    fn decoder_is_split_invariant(
        msgs in proptest::collection::vec(message_strategy(2), 1..30),
        cut_seeds in proptest::collection::vec(any::<proptest::sample::Index>(), 0..40),
    ) {
        let mut wire = Vec::new();
        for (m, id) in &msgs {
            m.encode(2, *id, u32::MAX, &mut wire).unwrap();
        }
        let whole = decode_all(&wire, &[]);
        let mut cuts: Vec<usize> = cut_seeds.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let split = decode_all(&wire, &cuts);
        prop_assert_eq!(whole.len(), msgs.len());
        prop_assert_eq!(split, whole);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Echo,
    Compute,
    Complete(proptest::sample::Index),
    Cancel(proptest::sample::Index),
    HalfClose,
    Drain,
    Goodbye,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Echo),
        2 => Just(Op::Compute),
        4 => any::<proptest::sample::Index>().prop_map(Op::Complete),
        1 => any::<proptest::sample::Index>().prop_map(Op::Cancel),
        1 => Just(Op::HalfClose),
        1 => Just(Op::Drain),
        1 => Just(Op::Goodbye),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The application answers some requests immediately, holds others (the "workers") and
    /// completes them in any order; cancels, drain, GOODBYE and half-close interleave. Every
    /// request the client sent gets exactly one response, and both sides finish.
    #[test]
    fn every_request_is_answered_exactly_once(ops in proptest::collection::vec(op(), 1..80)) {
        let (mut p, _) = Pair::handshake(ServerConfig::default(), ClientConfig::default());
        let mut sent = BTreeSet::new();
        let mut held: Vec<u32> = Vec::new();
        let mut answers: BTreeMap<u32, usize> = BTreeMap::new();
        let mut client_open = true;
        let mut eof = false;
        for op in ops {
            match op {
                Op::Echo | Op::Compute if client_open => {
                    let request = if matches!(op, Op::Echo) {
                        echo_msg(Bytes::from_static(b"e"))
                    } else {
                        Message::Compute(message::Compute { cost: 1, seed: Bytes::new() })
                    };
                    match p.client.send(&request, p.now) {
                        Ok(id) => {
                            sent.insert(id);
                        }
                        // The server's GOODBYE arrived: the client may send no new request.
                        Err(ClientError::Closed) => client_open = false,
                        Err(e) => panic!("{e}"),
                    }
                }
                Op::Complete(i) if !held.is_empty() => {
                    let id = held.remove(i.index(held.len()));
                    p.server.respond(id, &computed(), p.now);
                }
                Op::Cancel(i) if !sent.is_empty() => {
                    let id = *sent.iter().nth(i.index(sent.len())).unwrap();
                    if client_open { p.client.cancel(id).unwrap(); }
                }
                Op::HalfClose if !eof => {
                    p.server_events_into(&mut held);
                    p.server.handle_eof();
                    eof = true;
                    client_open = false;
                }
                Op::Drain => p.server.start_drain(p.now),
                Op::Goodbye if client_open => {
                    p.client.goodbye();
                    client_open = false;
                }
                _ => {}
            }
            if !eof {
                p.server_events_into(&mut held);
            } else {
                while let Some(ev) = p.server.poll_event(p.now) {
                    apply(&mut p, ev, &mut held);
                }
            }
            collect(&mut p, &mut answers);
            prop_assert!(p.server.outstanding() <= 1024);
        }
        // Finish: complete everything still held, half-close.
        while let Some(id) = held.pop() {
            p.server.respond(id, &computed(), p.now);
        }
        if !eof {
            p.server_events_into(&mut held);
            while let Some(id) = held.pop() {
                p.server.respond(id, &computed(), p.now);
            }
            p.server.handle_eof();
            while let Some(ev) = p.server.poll_event(p.now) {
                apply(&mut p, ev, &mut held);
            }
            while let Some(id) = held.pop() {
                p.server.respond(id, &computed(), p.now);
            }
        }
        collect(&mut p, &mut answers);
        prop_assert!(p.server.is_finished(), "server not finished: {:?}", p.server.state());
        for id in &sent {
            prop_assert_eq!(answers.get(id).copied(), Some(1), "request {} answered {:?} times", id, answers.get(id));
        }
        prop_assert_eq!(answers.len(), sent.len());
    }
}

fn apply(p: &mut Pair, ev: Event, held: &mut Vec<u32>) {
    match ev {
        Event::Request { id, message } => match message {
            Message::Echo(e) => {
                p.server.respond(id, &echo_reply(e.payload), p.now);
            }
            _ => held.push(id),
        },
        Event::Cancel { id } => {
            if let Some(pos) = held.iter().position(|&h| h == id) {
                held.remove(pos);
                p.server
                    .respond(id, &Message::error(ErrorCode::CANCELLED, ""), p.now);
            }
        }
    }
}

fn computed() -> Message {
    Message::ComputeResult(message::ComputeResult { digest: [0; 32] })
}

fn collect(p: &mut Pair, answers: &mut BTreeMap<u32, usize>) {
    for ev in p.client_events() {
        if let ClientEvent::Response { id, .. } = ev {
            *answers.entry(id).or_default() += 1;
        }
    }
}

trait PairExt {
    fn server_events_into(&mut self, held: &mut Vec<u32>);
}

impl PairExt for Pair {
    fn server_events_into(&mut self, held: &mut Vec<u32>) {
        for ev in self.server_events() {
            apply(self, ev, held);
        }
    }
}
