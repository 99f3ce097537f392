//! Encoding and decoding frames by hand: no session, no socket, no tokio (the crate with
//! `default-features = false` is enough).
//!
//! `cargo run -p echowire-codec --example frames`

use bytes::BytesMut;
use echowire_codec::FrameDecoder;
use echowire_codec::frame::{DEFAULT_MAX_FRAME_SIZE, MessageType};
use echowire_codec::message::{self, DecodeContext, Echo, EchoReply, Message, Ping};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two requests as a client would write them once version 2 is negotiated: the length is
    // checked against the peer's limit before anything is written.
    let version = 2;
    let mut wire = Vec::new();
    let echo: Message<&[u8]> = Message::Echo(Echo { payload: b"hello" });
    echo.encode(version, 1, DEFAULT_MAX_FRAME_SIZE, &mut wire)?;
    Message::<&[u8]>::Ping(Ping { data: 42 }).encode(
        version,
        2,
        DEFAULT_MAX_FRAME_SIZE,
        &mut wire,
    )?;
    println!(
        "encoded 2 frames, {} bytes: {}",
        wire.len(),
        hex::encode(&wire)
    );

    // A server decodes them as they arrive, here 3 bytes at a time: the decoder keeps its
    // place across reads and yields whole frames only.
    let ctx = DecodeContext::server(version, 0);
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in wire.chunks(3) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buf)? {
            // The owned frame's body is shared, not copied; so are the message's octets.
            let msg = message::decode(&frame, &ctx)?;
            println!("request {}: {msg:?}", frame.header.request_id);
            requests.push((frame.header.request_id, msg));
        }
    }
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].1.msg_type(), MessageType::Ping);

    // The reply, decoded in place this time (no reference counting, no allocation).
    let mut out = Vec::new();
    let Message::Echo(e) = &requests[0].1 else {
        unreachable!("the first request is the ECHO")
    };
    let reply: Message = Message::EchoReply(EchoReply {
        payload: e.payload.clone(),
    });
    reply.encode(version, requests[0].0, DEFAULT_MAX_FRAME_SIZE, &mut out)?;
    let mut client_decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let frame = client_decoder.decode_ref(&out)?.expect("a whole frame");
    let decoded = message::decode_ref(&frame, &DecodeContext::client(version, 0))?;
    assert_eq!(
        decoded,
        Message::EchoReply(EchoReply {
            payload: &b"hello"[..]
        })
    );
    println!("reply to {}: {decoded:?}", frame.header.request_id);

    // A length claim above the limit is refused before anything is buffered for it.
    let mut hostile = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xFF][..]);
    let err = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE)
        .decode(&mut hostile)
        .unwrap_err();
    println!("a 4 GiB length claim: {err}");
    Ok(())
}
