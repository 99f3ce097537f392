//! Runs one of the codec's hot paths a given number of times, for counting instructions under
//! valgrind (`bench/count.sh`): a count does not move with the machine's noise, a time does.
//!
//! `echowire-count OP N SETUP` prepares the input of `SETUP` operations, then performs the
//! first `N`. `bench/count.sh` runs it with `N = SETUP / 2` and `N = SETUP`: everything but the
//! `SETUP / 2` extra operations is the same in both runs (start-up, input, allocation of the
//! output), so the difference of the two counts divided by `SETUP / 2` is the cost of one
//! operation. The frames are ECHO requests with 64-octet payloads (the servers' benchmark
//! workload); the body is the `Order` of the codec's criterion benchmarks.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use echowire_codec::body;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::message::{self, DecodeContext, Message};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The operations, with what each counts.
const OPS: &[(&str, &str)] = &[
    (
        "frame/length_delimited",
        "tokio-util's LengthDelimitedCodec::decode of one frame (the framing baseline)",
    ),
    (
        "frame/owned",
        "FrameDecoder::decode of one frame (owned Bytes), no validation",
    ),
    (
        "frame/owned+validation",
        "FrameDecoder::decode and message::check_header",
    ),
    (
        "frame/borrowed+validation",
        "FrameDecoder::decode_ref and message::check_header",
    ),
    (
        "message/decode",
        "FrameDecoder::decode and message::decode (the whole ECHO)",
    ),
    (
        "encode/echo_reply",
        "an ECHO_REPLY encoded into an output buffer (header, length, payload), as the server's outbox does",
    ),
    (
        "encode/length_delimited",
        "LengthDelimitedCodec::encode of the same 76-octet frame (the baseline)",
    ),
    (
        "body/encode",
        "body::to_buf of the Order into a reused buffer",
    ),
    (
        "body/encode-postcard",
        "postcard::to_slice of the same Order (the baseline)",
    ),
    ("body/decode", "body::from_bytes of the Order (borrowing)"),
    (
        "body/decode-postcard",
        "postcard::from_bytes of the same Order (the baseline)",
    ),
];

const PAYLOAD: usize = 64;

// The same `Order` as the codec's criterion benchmarks.
include!("../../../codec/benches/common/order.rs");

/// `setup` ECHO frames, IDs 1.., version 1.
fn stream(setup: usize) -> BytesMut {
    let mut wire = BytesMut::new();
    for i in 0..setup {
        let m = Message::Echo(message::Echo {
            payload: Bytes::from(vec![i as u8; PAYLOAD]),
        });
        m.encode(1, i as u32 + 1, u32::MAX, &mut wire)
            .expect("an ECHO encodes");
    }
    wire
}

fn ldc() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .num_skip(4)
        .max_frame_length(1 << 20)
        .new_codec()
}

fn run(op: &str, n: usize, setup: usize) -> Result<u64, String> {
    let ctx = DecodeContext::server(1, 0);
    let mut sum = 0u64;
    match op {
        "frame/length_delimited" => {
            let mut buf = stream(setup);
            let mut codec = ldc();
            for _ in 0..n {
                let f = codec.decode(&mut buf).map_err(|e| e.to_string())?;
                sum += f.map_or(0, |f| f.len() as u64);
            }
        }
        "frame/owned" | "frame/owned+validation" | "message/decode" => {
            let mut buf = stream(setup);
            let mut dec = FrameDecoder::new(1 << 20);
            for _ in 0..n {
                let f = dec
                    .decode(&mut buf)
                    .map_err(|e| e.to_string())?
                    .ok_or("input ran out")?;
                match op {
                    "frame/owned" => {}
                    "frame/owned+validation" => {
                        message::check_header(&f.header, f.offset, &ctx)
                            .map_err(|e| e.to_string())?;
                    }
                    _ => {
                        let m = message::decode(&f, &ctx).map_err(|e| e.to_string())?;
                        black_box(&m);
                    }
                }
                sum += f.body.len() as u64;
                black_box(f);
            }
        }
        "frame/borrowed+validation" => {
            let buf = stream(setup);
            let mut dec = FrameDecoder::new(1 << 20);
            let mut at = 0;
            for _ in 0..n {
                let f = dec
                    .decode_ref(&buf[at..])
                    .map_err(|e| e.to_string())?
                    .ok_or("input ran out")?;
                message::check_header(&f.header, f.offset, &ctx).map_err(|e| e.to_string())?;
                at += f.encoded_len();
                sum += f.body.len() as u64;
                black_box(f);
            }
        }
        "encode/echo_reply" | "encode/length_delimited" => {
            let payloads: Vec<Bytes> = (0..setup)
                .map(|i| Bytes::from(vec![i as u8; PAYLOAD]))
                .collect();
            let mut out = BytesMut::with_capacity(setup * (PAYLOAD + 16));
            let mut codec = ldc();
            for (i, p) in payloads.iter().take(n).enumerate() {
                if op == "encode/echo_reply" {
                    let m = Message::EchoReply(message::EchoReply { payload: p.clone() });
                    let tail = m
                        .encode_split(1, i as u32 + 1, u32::MAX, &mut out)
                        .map_err(|e| e.to_string())?;
                    if let Some(tail) = tail {
                        out.extend_from_slice(tail);
                    }
                } else {
                    codec
                        .encode(p.clone(), &mut out)
                        .map_err(|e| e.to_string())?;
                }
            }
            sum += out.len() as u64;
            black_box(&out);
        }
        "body/encode" | "body/encode-postcard" => {
            let o = order();
            let mut out = Vec::with_capacity(256);
            let mut slice = [0u8; 256];
            for _ in 0..n {
                if op == "body/encode" {
                    out.clear();
                    body::to_buf(black_box(&o), &mut out).map_err(|e| e.to_string())?;
                    sum += out.len() as u64;
                } else {
                    let w =
                        postcard::to_slice(black_box(&o), &mut slice).map_err(|e| e.to_string())?;
                    sum += w.len() as u64;
                }
            }
            let _ = setup;
        }
        "body/decode" | "body/decode-postcard" => {
            let o = order();
            let ew = body::to_vec(&o).map_err(|e| e.to_string())?;
            let pc = postcard::to_allocvec(&o).map_err(|e| e.to_string())?;
            for _ in 0..n {
                let d: Order<'_> = if op == "body/decode" {
                    body::from_bytes(black_box(&ew)).map_err(|e| e.to_string())?
                } else {
                    postcard::from_bytes(black_box(&pc)).map_err(|e| e.to_string())?
                };
                sum += d.items.len() as u64;
            }
        }
        _ => return Err(format!("unknown operation {op}")),
    }
    Ok(sum)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for (op, what) in OPS {
            println!("{op}\t{what}");
        }
        return std::process::ExitCode::SUCCESS;
    }
    let parse = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok());
    let (Some(op), Some(n), Some(setup)) = (args.first(), parse(1), parse(2)) else {
        eprintln!("usage: echowire-count OP N SETUP (N <= SETUP) | --list");
        return std::process::ExitCode::from(2);
    };
    if n > setup {
        eprintln!("N ({n}) must not exceed SETUP ({setup})");
        return std::process::ExitCode::from(2);
    }
    match run(op, n, setup) {
        Ok(sum) => {
            black_box(sum);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{op}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
