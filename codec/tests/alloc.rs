//! Allocation bounds (spec §8.2), measured with an instrumented global allocator.
//! One test function: the allocator's counters are process-wide.

use std::alloc::System;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{FrameHeader, MessageType};
use echowire_codec::message::{self, DecodeContext, Message};
use echowire_codec::session::{
    ClientConfig, ClientEvent, ClientSession, Event, ServerConfig, ServerSession,
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
    // The payload is a slice of the frame's body: no copy.
    let within = |p: &[u8]| {
        let (outer, inner) = (frame.body.as_ptr_range(), p.as_ptr_range());
        outer.start <= inner.start && inner.end <= outer.end
    };
    assert!(
        matches!(msg, Message::Echo(ref e) if e.payload.len() == PAYLOAD && within(&e.payload))
    );
    assert!(
        stats.bytes_allocated < 1024,
        "decode allocated {} bytes",
        stats.bytes_allocated
    );

    // 2. The whole server session path: request emitted, answered, reply queued (zero-copy).
    let now = Instant::now();
    let mut server = ServerSession::new(ServerConfig::default(), now);
    let mut client = ClientSession::new(
        ClientConfig {
            min_version: 1,
            max_version: 1,
            ..Default::default()
        },
        now,
    );
    server.handle_input(&client.take_output());
    assert!(server.poll_event(now).is_none());
    client.handle_input(&server.take_output());
    assert!(matches!(
        client.poll_event(now).unwrap(),
        Some(ClientEvent::Welcome(_))
    ));
    // The ECHO arrives in the session's buffer (as a read puts it there), outside the region.
    server.handle_input(&echo_frame(1, 1));
    let region = Region::new(GLOBAL);
    let Some(Event::Request {
        id,
        message: Message::Echo(echo),
    }) = server.poll_event(now)
    else {
        panic!("no ECHO")
    };
    let reply = Message::EchoReply(message::EchoReply {
        payload: echo.payload,
    });
    assert!(server.respond(id, &reply, now));
    drop(reply);
    let stats = region.change();
    assert_eq!(server.pending_output(), PAYLOAD + 16);
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
    server.handle_input(&echowire_codec::PREFACE);
    server.handle_input(&client_hello());
    server.handle_input(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let region = Region::new(GLOBAL);
    assert!(server.poll_event(now).is_none());
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
    let mut c = ClientSession::new(ClientConfig::default(), Instant::now());
    c.take_output()[8..].to_vec()
}
