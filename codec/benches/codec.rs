//! Codec benchmarks (`cargo bench -p echowire-codec`), each against a baseline measured in the
//! same run: frame decode/encode vs `LengthDelimitedCodec` and a plain memcpy of the same bytes;
//! the body encoding vs postcard and serde_json on the same struct; rkyv validated access vs the
//! serde decode of the same data. Results and ratios: BENCHMARKS.md.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use echowire_codec::body;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::message::{self, DecodeContext, Message};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

const FRAMES: usize = 1000;

fn stream(payload: usize) -> (Vec<u8>, Vec<Message>) {
    let msgs: Vec<Message> = (0..FRAMES)
        .map(|i| {
            Message::Echo(message::Echo {
                payload: vec![i as u8; payload].into(),
            })
        })
        .collect();
    let mut wire = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        m.encode(1, i as u32 + 1, u32::MAX, &mut wire).unwrap();
    }
    (wire, msgs)
}

fn ldc() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .num_skip(4)
        .max_frame_length(1 << 20)
        .new_codec()
}

fn frames(c: &mut Criterion) {
    for size in [16usize, 1024, 64 * 1024] {
        let (wire, msgs) = stream(size);
        let mut g = c.benchmark_group(format!("frames/{size}B"));
        g.throughput(Throughput::Elements(FRAMES as u64));
        let input = || BytesMut::from(&wire[..]);
        g.bench_function("decode/echowire+full-message", |b| {
            b.iter_batched_ref(
                input,
                |buf| {
                    let mut dec = FrameDecoder::new(1 << 20);
                    let ctx = DecodeContext::server(1, 0);
                    while let Some(f) = dec.decode(buf).unwrap() {
                        black_box(message::decode(&f, &ctx).unwrap());
                    }
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("decode/echowire+header-validation", |b| {
            b.iter_batched_ref(
                input,
                |buf| {
                    let mut dec = FrameDecoder::new(1 << 20);
                    let ctx = DecodeContext::server(1, 0);
                    while let Some(f) = dec.decode(buf).unwrap() {
                        message::check_header(&f.header, f.offset, &ctx).unwrap();
                        black_box(f);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("decode/echowire-borrowed+header-validation", |b| {
            b.iter_batched_ref(
                input,
                |buf| {
                    let mut dec = FrameDecoder::new(1 << 20);
                    let ctx = DecodeContext::server(1, 0);
                    let mut at = 0;
                    while let Some(f) = dec.decode_ref(&buf[at..]).unwrap() {
                        message::check_header(&f.header, f.offset, &ctx).unwrap();
                        at += f.encoded_len();
                        black_box(f);
                    }
                    buf.advance(at);
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("decode/echowire-framing", |b| {
            b.iter_batched_ref(
                input,
                |buf| {
                    let mut dec = FrameDecoder::new(1 << 20);
                    while let Some(f) = dec.decode(buf).unwrap() {
                        black_box(f);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("decode/length_delimited", |b| {
            b.iter_batched_ref(
                input,
                |buf| {
                    let mut codec = ldc();
                    while let Some(f) = codec.decode(buf).unwrap() {
                        black_box(f);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("decode/memcpy", |b| {
            let mut dst = vec![0u8; wire.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(&wire));
                black_box(&dst);
            })
        });
        let bodies: Vec<Bytes> = msgs
            .iter()
            .map(|m| {
                let mut v = Vec::new();
                m.encode(1, 1, u32::MAX, &mut v).unwrap();
                Bytes::copy_from_slice(&v[4..])
            })
            .collect();
        g.bench_function("encode/echowire", |b| {
            let mut out = BytesMut::with_capacity(wire.len() + 1024);
            b.iter(|| {
                out.clear();
                for (i, m) in msgs.iter().enumerate() {
                    m.encode(1, i as u32 + 1, u32::MAX, &mut out).unwrap();
                }
                black_box(&out);
            })
        });
        g.bench_function("encode/length_delimited", |b| {
            let mut out = BytesMut::with_capacity(wire.len() + 1024);
            let mut codec = ldc();
            b.iter(|| {
                out.clear();
                for body in &bodies {
                    codec.encode(body.clone(), &mut out).unwrap();
                }
                black_box(&out);
            })
        });
        g.finish();
    }
}

include!("common/order.rs");

fn bodies(c: &mut Criterion) {
    let o = order();
    let ew = body::to_vec(&o).unwrap();
    let pc = postcard::to_allocvec(&o).unwrap();
    let js = serde_json::to_vec(&o).unwrap();
    eprintln!(
        "body sizes for the same Order: echowire {} B, postcard {} B, serde_json {} B",
        ew.len(),
        pc.len(),
        js.len()
    );
    let mut g = c.benchmark_group("body");
    g.bench_function("encode/echowire", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            body::to_buf(black_box(&o), &mut out).unwrap();
            black_box(&out);
        })
    });
    g.bench_function("encode/postcard", |b| {
        let mut out = [0u8; 256];
        b.iter(|| black_box(postcard::to_slice(black_box(&o), &mut out).unwrap().len()))
    });
    g.bench_function("encode/serde_json", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&o)).unwrap();
            black_box(&out);
        })
    });
    g.bench_function("decode/echowire", |b| {
        b.iter(|| black_box(body::from_bytes::<Order>(black_box(&ew)).unwrap()))
    });
    g.bench_function("decode/postcard", |b| {
        b.iter(|| black_box(postcard::from_bytes::<Order>(black_box(&pc)).unwrap()))
    });
    g.bench_function("decode/serde_json", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Order>(black_box(&js)).unwrap()))
    });
    g.finish();
}

fn rkyv_vs_serde(c: &mut Criterion) {
    let sum = message::Sum {
        values: (0..1000).map(|i| i * 37 - 5000).collect(),
    };
    let archive = sum.to_rkyv().unwrap();
    let standard = body::to_vec(&sum).unwrap();
    // A misaligned copy of the archive, as a body usually sits in a receive buffer.
    let mut shifted = vec![0u8; archive.len() + 4];
    shifted[4..].copy_from_slice(&archive);
    let mut g = c.benchmark_group("sum-1000");
    g.bench_function("archive-check-in-place(spec 6.9)", |b| {
        b.iter(|| {
            black_box(
                body::archive::check_sum(black_box(&shifted[4..]))
                    .unwrap()
                    .values()
                    .sum::<i64>(),
            )
        })
    });
    g.bench_function("rkyv-access-aligned", |b| {
        b.iter(|| {
            black_box(
                message::Sum::with_rkyv(black_box(&archive), |a| {
                    a.values.iter().map(|v| v.to_native()).sum::<i64>()
                })
                .unwrap(),
            )
        })
    });
    g.bench_function("rkyv-access-misaligned(copy)", |b| {
        b.iter(|| {
            black_box(
                message::Sum::with_rkyv(black_box(&shifted[4..]), |a| {
                    a.values.iter().map(|v| v.to_native()).sum::<i64>()
                })
                .unwrap(),
            )
        })
    });
    g.bench_function("serde-decode", |b| {
        b.iter(|| {
            black_box(
                body::from_bytes::<message::Sum>(black_box(&standard))
                    .unwrap()
                    .values
                    .iter()
                    .sum::<i64>(),
            )
        })
    });
    g.finish();
    let _ = Instant::now();
}

criterion_group!(benches, frames, bodies, rkyv_vs_serde);
criterion_main!(benches);
