//! Interoperability with a framing library nobody here wrote: tokio-util's
//! `LengthDelimitedCodec`, configured with its builder to match spec §2.2 (a 4-byte big-endian
//! length counting everything after it). Also the `tokio` feature's `Framed` support.

use bytes::{Bytes, BytesMut};
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{Flags, Frame, MessageType};
use echowire_codec::message::{self, DecodeContext, Echo, Message};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

fn ldc() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_offset(0)
        .length_field_length(4)
        .big_endian()
        .length_adjustment(0)
        .num_skip(4) // yield what `Length` counts: the 8-byte header and the body
        .max_frame_length(1 << 20)
        .new_codec()
}

fn messages() -> Vec<(u32, Message)> {
    (1..=50u32)
        .map(|i| {
            let payload = vec![i as u8; (i as usize * 97) % 3000];
            (
                i,
                Message::Echo(Echo {
                    payload: payload.into(),
                }),
            )
        })
        .collect()
}

#[test]
fn frames_written_by_the_codec_are_read_by_length_delimited_codec() {
    let mut wire = BytesMut::new();
    for (id, m) in messages() {
        m.encode(1, id, 1 << 20, &mut wire).unwrap();
    }
    let mut ldc = ldc();
    let mut n = 0;
    while let Some(payload) = ldc.decode(&mut wire).unwrap() {
        n += 1;
        // header: version, type, flags, request id
        assert_eq!(payload[0], 1);
        assert_eq!(payload[1], MessageType::Echo.to_u8());
        assert_eq!(u32::from_be_bytes(payload[4..8].try_into().unwrap()), n);
        let body = &payload[8..];
        let len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        assert_eq!(&body[4..], vec![n as u8; len].as_slice());
    }
    assert_eq!(n, 50);
    assert!(wire.is_empty());
}

#[test]
fn frames_written_by_length_delimited_codec_are_read_by_the_codec() {
    let mut ldc = ldc();
    let mut wire = BytesMut::new();
    for (id, m) in messages() {
        let mut payload = Vec::new();
        // header + body, without the length: LengthDelimitedCodec adds it.
        let mut full = Vec::new();
        m.encode(2, id, 1 << 20, &mut full).unwrap();
        payload.extend_from_slice(&full[4..]);
        ldc.encode(Bytes::from(payload), &mut wire).unwrap();
    }
    let mut dec = FrameDecoder::new(1 << 20);
    let expected = messages();
    let mut i = 0;
    while let Some(frame) = dec.decode(&mut wire).unwrap() {
        let m = message::decode(&frame, &DecodeContext::server(2, 0)).unwrap();
        assert_eq!(frame.header.request_id, expected[i].0);
        assert_eq!(m, expected[i].1);
        i += 1;
    }
    assert_eq!(i, expected.len());
}

#[test]
fn tokio_framed_round_trip() {
    use echowire_codec::tokio::FrameCodec;
    use futures::{SinkExt, StreamExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = tokio::io::duplex(64);
        let mut tx = tokio_util::codec::Framed::new(a, FrameCodec::new(1 << 20));
        let mut rx = tokio_util::codec::Framed::new(b, FrameCodec::new(1 << 20));
        let sender = tokio::spawn(async move {
            for id in 1..=20u32 {
                let body = Bytes::from(vec![id as u8; id as usize * 100]);
                tx.send(Frame::new(
                    1,
                    MessageType::Application(0x80),
                    Flags::NONE,
                    id,
                    body,
                ))
                .await
                .unwrap();
            }
        });
        for id in 1..=20u32 {
            let f = rx.next().await.unwrap().unwrap();
            assert_eq!(f.header.request_id, id);
            assert_eq!(f.body.len(), id as usize * 100);
        }
        sender.await.unwrap();
        assert!(rx.next().await.is_none(), "clean end of stream");
    });
}
