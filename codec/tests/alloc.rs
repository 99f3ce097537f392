//! Allocation bounds (spec §8.2), measured with an instrumented global allocator.
//! One test function: the allocator's counters are process-wide.

use std::alloc::System;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{FrameHeader, MessageType};
use echowire_codec::message::{self, DecodeContext};
use echowire_codec::session::{
    ClientConfig, ClientEvent, ClientSession, Event, RequestKind, ServerConfig, ServerSession,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PAYLOAD: usize = 64 * 1024;

fn echo_frame(version: u8, id: u32) -> BytesMut {
    let mut buf = BytesMut::with_capacity(PAYLOAD + 64);
    FrameHeader::new(
        version,
        MessageType::Echo,
        Default::default(),
        id,
        PAYLOAD + 4,
    )
    .encode(&mut buf);
    buf.put_u32(PAYLOAD as u32);
    buf.put_bytes(0xAB, PAYLOAD);
    buf
}

#[test]
fn decoding_allocates_nothing_payload_sized_and_length_claims_allocate_nothing() {
    // 1. Frame decoder + message decode of a 64 KiB ECHO already in the buffer.
    let mut buf = echo_frame(1, 1);
    let mut dec = FrameDecoder::new(1 << 20);
    let region = Region::new(GLOBAL);
    let frame = dec.decode(&mut buf).unwrap().unwrap();
    let msg = message::decode(&frame, &DecodeContext::server(1, 0)).unwrap();
    let stats = region.change();
    assert!(
        matches!(msg, message::Message::Echo(ref e) if e.payload.len() == PAYLOAD && matches!(e.payload, std::borrow::Cow::Borrowed(_)))
    );
    assert!(
        stats.bytes_allocated < 1024,
        "decode allocated {} bytes",
        stats.bytes_allocated
    );

    // 2. The whole server session path: request emitted, answered, reply queued (zero-copy).
    let now = Instant::now();
    let mut server = ServerSession::new(ServerConfig::default(), now);
    let mut client = ClientSession::new(ClientConfig {
        min_version: 1,
        max_version: 1,
        ..Default::default()
    });
    let mut input = BytesMut::from(&client.outbox().take_all()[..]);
    assert!(server.poll_event(&mut input, now).is_none());
    let mut to_client = BytesMut::from(&server.outbox().take_all()[..]);
    assert!(matches!(
        client.poll_event(&mut to_client).unwrap(),
        Some(ClientEvent::Welcome(_))
    ));
    let mut input = echo_frame(1, 1);
    let region = Region::new(GLOBAL);
    let Some(Event::Request(req)) = server.poll_event(&mut input, now) else {
        panic!("no request")
    };
    let RequestKind::Echo { payload } = req.kind else {
        panic!("not echo")
    };
    assert!(server.respond(
        req.id,
        echowire_codec::session::Response::EchoReply { payload },
        now
    ));
    let stats = region.change();
    assert_eq!(server.outbox().len(), PAYLOAD + 16);
    assert!(
        stats.bytes_allocated < PAYLOAD / 4,
        "session path allocated {} bytes",
        stats.bytes_allocated
    );

    // 3. A 4-byte claim of 4 GiB: rejected at once, nothing large allocated, nothing buffered.
    let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xFF][..]);
    let mut dec = FrameDecoder::new(1 << 20);
    let region = Region::new(GLOBAL);
    let err = dec.decode(&mut buf).unwrap_err();
    let stats = region.change();
    assert_eq!(err.code(), echowire_codec::ErrorCode::FRAME_TOO_LARGE);
    assert!(
        stats.bytes_allocated < 1024,
        "4 GiB claim allocated {} bytes",
        stats.bytes_allocated
    );

    // 4. A body claiming 2^32-1 sequence elements in 4 bytes: rejected before allocating.
    let region = Region::new(GLOBAL);
    let r: Result<Vec<u64>, _> = echowire_codec::body::from_bytes(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let stats = region.change();
    assert!(r.is_err());
    assert!(
        stats.bytes_allocated < 1024,
        "count claim allocated {} bytes",
        stats.bytes_allocated
    );

    // 5. Through the server session: the 4 GiB claim becomes ERROR FRAME_TOO_LARGE and a close.
    let mut server = ServerSession::new(ServerConfig::default(), now);
    let mut input = BytesMut::new();
    input.extend_from_slice(&echowire_codec::PREFACE);
    input.extend_from_slice(&client_hello());
    input.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let region = Region::new(GLOBAL);
    assert!(server.poll_event(&mut input, now).is_none());
    let stats = region.change();
    assert!(
        stats.bytes_allocated < 16 * 1024,
        "session allocated {} bytes",
        stats.bytes_allocated
    );
    assert_eq!(
        server.state(),
        echowire_codec::session::SessionState::Closing
    );
}

fn client_hello() -> Vec<u8> {
    let mut c = ClientSession::new(ClientConfig::default());
    c.outbox().take_all()[8..].to_vec()
}
