//! Every vector in `spec/vectors/` (generated from the spec by an independent Python encoder) is
//! decoded fed whole, one byte at a time, and split at every boundary; valid vectors must decode
//! to the expected messages and re-encode to the same bytes, invalid ones must fail with the
//! expected code, offset, request ID and scope.

use bytes::BytesMut;
use echowire_codec::decoder::{FrameDecoder, match_preface};
use echowire_codec::error::DecodeError;
use echowire_codec::frame::{Frame, MessageType};
use echowire_codec::message::{self, DecodeContext, Message, Role};
use serde_json::{Value, json};

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "echowire-vectors");
    doc["vectors"].as_array().unwrap().clone()
}

struct Ctx {
    ctx: DecodeContext,
    max_frame: u32,
    preface: bool,
}

fn ctx_of(v: &Value) -> Ctx {
    let receiver = match v["direction"].as_str().unwrap() {
        "to_server" => Role::Server,
        "to_client" => Role::Client,
        d => panic!("direction {d}"),
    };
    Ctx {
        ctx: DecodeContext {
            receiver,
            version: v["version"].as_u64().map(|x| x as u8),
            capabilities: v["capabilities"].as_u64().unwrap() as u32,
        },
        max_frame: v["max_frame_size"].as_u64().unwrap() as u32,
        preface: v["preface"].as_bool().unwrap_or(false),
    }
}

/// Receives `chunks` as a peer would: preface (if the vector starts a connection), frames,
/// end of stream; then applies the receiver rules to each frame.
fn receive(c: &Ctx, chunks: &[&[u8]]) -> Result<Vec<(Frame, Message)>, DecodeError> {
    let mut buf = BytesMut::new();
    let mut dec = FrameDecoder::new(c.max_frame);
    let mut matched = if c.preface { 0 } else { 8 };
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        if matched < 8 {
            let n = match_preface(matched, &buf)?;
            let _ = buf.split_to(n);
            matched += n;
            if matched < 8 {
                continue;
            }
            dec = dec.with_offset(8);
        }
        while let Some(f) = dec.decode(&mut buf)? {
            frames.push(f);
        }
    }
    if let Some(f) = dec.decode_eof(&mut buf)? {
        frames.push(f);
    }
    let mut out = Vec::new();
    for f in frames {
        // §3.2: before WELCOME a server accepts only HELLO.
        if c.ctx.version.is_none()
            && c.ctx.receiver == Role::Server
            && f.header.msg_type != MessageType::Hello
        {
            return Err(DecodeError::UnexpectedMessage {
                offset: f.offset,
                request_id: u32::MAX, // marker: HANDSHAKE_REQUIRED, checked below
                msg_type: f.header.msg_type,
            });
        }
        let m = message::decode(&f, &c.ctx)?;
        out.push((f, m));
    }
    Ok(out)
}

/// Whole, bytewise, and every two-chunk split.
fn splits(bytes: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut all = vec![vec![bytes], bytes.chunks(1).collect()];
    for k in 1..bytes.len() {
        all.push(vec![&bytes[..k], &bytes[k..]]);
    }
    all
}

fn frame_json(f: &Frame, m: &Message) -> Value {
    let tagged = serde_json::to_value(m).unwrap();
    json!({
        "version": f.header.version,
        "type": tagged["type"],
        "flags": f.header.flags.0,
        "request_id": f.header.request_id,
        "body": tagged["body"],
    })
}

#[test]
fn valid_vectors_decode_and_reencode_under_every_split() {
    let vectors = load("valid.json");
    assert!(vectors.len() >= 40, "only {} valid vectors", vectors.len());
    let mut types = std::collections::BTreeSet::new();
    for v in &vectors {
        let id = v["id"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let c = ctx_of(v);
        for chunks in splits(&bytes) {
            let got = receive(&c, &chunks)
                .unwrap_or_else(|e| panic!("{id}: {e} ({} chunks)", chunks.len()));
            let json: Vec<Value> = got.iter().map(|(f, m)| frame_json(f, m)).collect();
            assert_eq!(
                Value::Array(json),
                v["frames"],
                "{id}: decoded form differs ({} chunks)",
                chunks.len()
            );
            let mut re = Vec::new();
            for (f, m) in &got {
                let before = re.len();
                m.encode(f.header.version, f.header.request_id, u32::MAX, &mut re)
                    .unwrap();
                assert_eq!(
                    re.len() - before,
                    m.frame_len(f.header.version).unwrap(),
                    "{id}: predicted length"
                );
                types.insert(m.msg_type().to_u8() as u16 | (u16::from(f.header.version) << 8));
            }
            assert_eq!(re, bytes, "{id}: re-encoding differs");
        }
    }
    // Every message type of the spec appears, in both versions where it exists in both.
    for t in 1u8..=0x0F {
        let ty = MessageType::from_u8(t);
        // Handshake frames are always written in the base version (§3.2).
        let last = if matches!(ty, MessageType::Hello | MessageType::Welcome) {
            1
        } else {
            2
        };
        for version in ty.since_version().unwrap()..=last {
            assert!(
                types.contains(&(u16::from(t) | (u16::from(version) << 8))),
                "no valid vector for {ty} in v{version}"
            );
        }
    }
}

#[test]
fn invalid_vectors_fail_with_the_expected_error_under_every_split() {
    let vectors = load("invalid.json");
    assert!(
        vectors.len() >= 25,
        "only {} invalid vectors",
        vectors.len()
    );
    let mut codes = std::collections::BTreeSet::new();
    for v in &vectors {
        let id = v["id"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let c = ctx_of(v);
        let want = &v["error"];
        for chunks in splits(&bytes) {
            let err = match receive(&c, &chunks) {
                Ok(frames) => panic!(
                    "{id}: decoded {} frame(s), expected {}",
                    frames.len(),
                    want["code"]
                ),
                Err(e) => e,
            };
            let (code, rid, scope) = match &err {
                DecodeError::UnexpectedMessage {
                    request_id: u32::MAX,
                    ..
                } => (
                    echowire_codec::ErrorCode::HANDSHAKE_REQUIRED,
                    0,
                    "connection",
                ),
                e => {
                    let handshake = c.ctx.version.is_none();
                    let scope = if e.is_connection_error() || handshake {
                        "connection"
                    } else {
                        "request"
                    };
                    (e.code(), e.request_id(), scope)
                }
            };
            assert_eq!(code.name().unwrap(), want["code"], "{id}: {err}");
            assert_eq!(
                err.offset(),
                want["offset"].as_u64().unwrap(),
                "{id}: offset ({err})"
            );
            assert_eq!(
                u64::from(rid),
                want["request_id"].as_u64().unwrap(),
                "{id}: request id ({err})"
            );
            assert_eq!(scope, want["scope"], "{id}: scope");
            codes.insert(code);
        }
    }
    use echowire_codec::ErrorCode as E;
    for rule in [
        E::BAD_PREFACE,
        E::FRAME_TOO_SHORT,
        E::FRAME_TOO_LARGE,
        E::TRUNCATED_FRAME,
        E::VERSION_MISMATCH,
        E::HANDSHAKE_REQUIRED,
        E::UNKNOWN_TYPE,
        E::UNEXPECTED_MESSAGE,
        E::INVALID_FLAGS,
        E::INVALID_REQUEST_ID,
        E::MALFORMED_BODY,
        E::TRAILING_BYTES,
        E::INVALID_UTF8,
    ] {
        assert!(codes.contains(&rule), "no invalid vector for {rule}");
    }
}
