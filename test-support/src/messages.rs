//! Messages and frames the tests build and look at, shared by every test binary.

use bytes::Bytes;
use echowire_codec::message::{self, Message};
use echowire_codec::session::Event;

/// A frame's octets: `m` in `version` with request `id`.
pub fn frame(version: u8, m: &Message, id: u32) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(version, id, u32::MAX, &mut out).unwrap();
    out
}

/// HELLO (frame only, no preface).
pub fn hello(min: u8, max: u8, max_frame: u32, caps: u32) -> Vec<u8> {
    frame(
        1,
        &Message::Hello(message::Hello {
            min_version: min,
            max_version: max,
            max_frame_size: max_frame,
            capabilities: caps,
            agent: "test".into(),
        }),
        0,
    )
}

/// The preface and a HELLO offering `min..=max`, a 1 MiB limit and RKYV.
pub fn hello_bytes(min: u8, max: u8) -> Vec<u8> {
    let mut out = echowire_codec::PREFACE.to_vec();
    out.extend(hello(min, max, 1 << 20, 1));
    out
}

/// ECHO of a copy of `payload`.
pub fn echo(payload: &[u8]) -> Message {
    echo_msg(Bytes::copy_from_slice(payload))
}

/// ECHO of `payload`.
pub fn echo_msg(payload: impl Into<Bytes>) -> Message {
    Message::Echo(message::Echo {
        payload: payload.into(),
    })
}

/// ECHO_REPLY of `payload`.
pub fn echo_reply(payload: impl Into<Bytes>) -> Message {
    Message::EchoReply(message::EchoReply {
        payload: payload.into(),
    })
}

/// COMPUTE of `cost` iterations over `seed`.
pub fn compute(cost: u32) -> Message {
    Message::Compute(message::Compute {
        cost,
        seed: Bytes::from_static(b"seed"),
    })
}

/// The ID and message of a request event.
pub fn request(ev: Event) -> (u32, Message) {
    match ev {
        Event::Request { id, message } => (id, message),
        other => panic!("not a request: {other:?}"),
    }
}

/// The code of an ERROR.
pub fn error_code(m: &Message) -> Option<echowire_codec::ErrorCode> {
    match m {
        Message::Error(e) => Some(e.code),
        _ => None,
    }
}
