//! Every vector in `spec/vectors/` (generated from the spec by an independent Python encoder) is
//! decoded fed whole, one byte at a time, and split at every boundary; valid vectors must decode
//! to the expected messages and re-encode to the same bytes, invalid ones must fail with the
//! expected code, offset, request ID and scope. Each vector is then replayed through the
//! session of its receiver (the server session for `to_server`, the client session for
//! `to_client`), which must react as its scope says: a request error answered with the frame's
//! ID and the connection going on, a connection error as the last frame, TRUNCATED_FRAME
//! followed by the drain; at a client, every fault an ERROR with ID 0 (spec §9.3).

use std::time::Instant;

use bytes::BytesMut;
use echowire_codec::decoder::{FrameDecoder, match_preface};
use echowire_codec::error::{DecodeError, ErrorCode, Scope};
use echowire_codec::frame::{Frame, Kind, MessageType, PREFACE};
use echowire_codec::message::{self, DecodeContext, Message, Role};
use echowire_codec::session::{ClientConfig, ClientEvent, ClientSession, Event, ServerConfig};
use echowire_test_support::memory::RawServer;
use echowire_test_support::messages::{frame, hello};
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
    /// The application types the receiver implements (§2.7 rule 5, §4.1).
    application_types: Vec<u8>,
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
        application_types: v["application_types"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no application_types", v["id"]))
            .iter()
            .map(|t| u8::try_from(t.as_u64().unwrap()).unwrap())
            .collect(),
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
        // §2.7 rule 5, §4.1: an application type the receiver does not implement is UNKNOWN_TYPE,
        // after the version rule and before the others. The decoder leaves the choice to the
        // session (`ServerConfig::application_types`, replayed below).
        if let MessageType::Application(code) = f.header.msg_type
            && f.header.version == c.ctx.expected_version()
            && !c.application_types.contains(&code)
        {
            return Err(DecodeError::UnknownType {
                offset: f.offset,
                request_id: f.header.request_id,
                type_code: code,
                version: f.header.version,
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
                // §9.3: a client has no request errors; every fault of the server is a
                // connection error, reported with ERROR ID 0 (checked on the client session
                // below).
                e if c.ctx.receiver == Role::Client => (e.code(), 0, "connection"),
                // §2.7, §3.2: before WELCOME every error is a connection error.
                e if c.ctx.version.is_none() => (e.code(), e.request_id(), "connection"),
                e => (e.code(), e.request_id(), registry_scope(e)),
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
    for scope in ["connection", "request", "truncated"] {
        assert!(
            vectors.iter().any(|v| v["error"]["scope"] == scope),
            "no invalid vector of scope {scope}"
        );
    }
    // Every fault of §9.3 a client can tell from one frame has a client-direction vector.
    for code in [
        E::FRAME_TOO_LARGE,
        E::FRAME_TOO_SHORT,
        E::VERSION_MISMATCH,
        E::UNKNOWN_TYPE,
        E::UNEXPECTED_MESSAGE,
        E::INVALID_FLAGS,
        E::INVALID_REQUEST_ID,
        E::MALFORMED_BODY,
        E::TRAILING_BYTES,
        E::INVALID_UTF8,
    ] {
        assert!(
            vectors.iter().any(
                |v| v["direction"] == "to_client" && v["error"]["code"] == code.name().unwrap()
            ),
            "no client-direction invalid vector for {code}"
        );
    }
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

/// The scope of a decode failure at a server after WELCOME: the registry's scope of its code
/// (§7.1), which must agree with the codec's own classification of the failure.
fn registry_scope(e: &DecodeError) -> &'static str {
    let scopes = e.code().scopes();
    let scope = if !e.is_connection_error() {
        Scope::Request
    } else if scopes.contains(&Scope::Truncated) {
        Scope::Truncated
    } else {
        Scope::Connection
    };
    assert!(
        scopes.contains(&scope),
        "{e}: {:?} is not in {scopes:?}",
        scope
    );
    scope.name()
}

fn error_code(m: &Message) -> Option<ErrorCode> {
    match m {
        Message::Error(e) => Some(e.code),
        _ => None,
    }
}

/// A server session configured as the vector's receiver, past the handshake the vector assumes
/// (or at the start of the connection for a handshake vector).
fn server_for(v: &Value) -> RawServer {
    let c = ctx_of(v);
    let mut s = RawServer::new(ServerConfig {
        max_frame_size: c.max_frame,
        application_types: c.application_types.iter().fold(0u128, |bits, t| {
            bits | 1 << (t - MessageType::APPLICATION_START)
        }),
        ..Default::default()
    });
    let id = v["id"].as_str().unwrap();
    match c.ctx.version {
        Some(version) => {
            s.feed(&PREFACE);
            s.feed(&hello(version, version, 1 << 20, c.ctx.capabilities));
            assert!(s.events().is_empty(), "{id}");
            let frames = s.frames();
            let [(0, Message::Welcome(w))] = &frames[..] else {
                panic!("{id}: no WELCOME: {frames:?}")
            };
            assert_eq!(
                (w.version, w.capabilities),
                (version, c.ctx.capabilities),
                "{id}: the handshake the vector assumes"
            );
        }
        None if !c.preface => s.feed(&PREFACE),
        None => {}
    }
    s
}

/// A client session configured as the vector's receiver, past the handshake the vector assumes;
/// its preface and HELLO are taken from its output.
fn client_for(v: &Value) -> ClientSession {
    let c = ctx_of(v);
    let version = c.ctx.version.expect("a client after WELCOME");
    let now = Instant::now();
    let mut client = ClientSession::new(
        ClientConfig {
            min_version: version,
            max_version: version,
            max_frame_size: c.max_frame,
            capabilities: c.ctx.capabilities,
            handshake_timeout: None,
            request_timeout: None,
            ..Default::default()
        },
        now,
    );
    let welcome = Message::Welcome(message::Welcome {
        version,
        max_frame_size: 1 << 20,
        max_outstanding: 16,
        capabilities: c.ctx.capabilities,
        agent: "vectors".into(),
    });
    client.handle_input(&frame(1, &welcome, 0));
    match client.poll_event(now) {
        Ok(Some(ClientEvent::Welcome(n))) => {
            assert_eq!((n.version, n.capabilities), (version, c.ctx.capabilities))
        }
        other => panic!("{}: no WELCOME: {other:?}", v["id"]),
    }
    let _ = client.take_output();
    client
}

/// The frames in a session's output.
fn frames_of(mut out: BytesMut) -> Vec<Frame> {
    let mut dec = FrameDecoder::new(16 << 20);
    let mut frames = Vec::new();
    while let Some(f) = dec.decode(&mut out).unwrap() {
        frames.push(f);
    }
    assert!(out.is_empty(), "a partial frame in the output");
    frames
}

#[test]
fn invalid_vectors_get_the_reaction_of_their_scope_from_the_sessions() {
    for v in load("invalid.json") {
        let id = v["id"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let want = &v["error"];
        let code = ErrorCode::from_name(want["code"].as_str().unwrap()).unwrap();
        let rid = want["request_id"].as_u64().unwrap() as u32;
        let scope = want["scope"].as_str().unwrap();
        if v["direction"] == "to_client" {
            // §9.3: ERROR (ID 0, the negotiated version) with the code, and the client closes.
            let version = v["version"].as_u64().unwrap() as u8;
            let mut client = client_for(&v);
            client.handle_input(&bytes);
            let now = Instant::now();
            // The first event is the fault (every vector holds one offending frame, or ends
            // inside one).
            let err = match client.poll_event(now) {
                Ok(Some(ev)) => panic!("{id}: event {ev:?}"),
                Ok(None) => client.handle_eof().expect_err(&format!("{id}: accepted")),
                Err(e) => e,
            };
            assert_eq!(err.code(), Some(code), "{id}: {err}");
            assert!(client.is_closed(), "{id}");
            let sent = frames_of(BytesMut::from(&client.take_output()[..]));
            let [f] = &sent[..] else {
                panic!("{id}: the client sent {sent:?}")
            };
            let m = message::decode(
                f,
                &DecodeContext {
                    receiver: Role::Server,
                    version: Some(version),
                    capabilities: 0,
                },
            )
            .unwrap();
            assert_eq!(
                (f.header.version, f.header.request_id, error_code(&m)),
                (version, 0, Some(code)),
                "{id}: the client's ERROR"
            );
            assert_eq!((scope, rid), ("connection", 0), "{id}");
            continue;
        }
        let mut s = server_for(&v);
        s.feed(&bytes);
        s.server.handle_eof();
        let mut requests = Vec::new();
        loop {
            let events = s.events();
            if events.is_empty() {
                break;
            }
            for ev in events {
                let Event::Request { id: rq, .. } = ev else {
                    panic!("{id}: {ev:?}")
                };
                // Answered with a code no vector expects, so that the drain can end.
                let cancelled: Message = Message::Error(message::Error {
                    code: ErrorCode::CANCELLED,
                    message: "".into(),
                    retry_after_ms: 0,
                });
                assert!(s.server.respond(rq, &cancelled, s.now), "{id}");
                requests.push(rq);
            }
        }
        let frames = s.frames();
        let errors: Vec<usize> = (0..frames.len())
            .filter(|&i| error_code(&frames[i].1) == Some(code))
            .collect();
        let [at] = errors[..] else {
            panic!("{id}: expected one ERROR {code}, got {frames:?}")
        };
        assert_eq!(frames[at].0, rid, "{id}: the ERROR's request ID");
        let goodbyes: Vec<&Message> = frames[at + 1..]
            .iter()
            .map(|(_, m)| m)
            .filter(|m| matches!(m, Message::Goodbye(_)))
            .collect();
        match scope {
            // §3.10, §3.6.1 rule 3: the ERROR is the last frame.
            "connection" => assert_eq!(at + 1, frames.len(), "{id}: {frames:?}"),
            // §3.9: the requests before the partial frame are still answered, and the drain ends
            // with GOODBYE NO_ERROR; §2.7: after a request error the connection goes on (here to
            // the drain of the end of stream).
            "truncated" | "request" => {
                assert!(
                    matches!(goodbyes[..], [Message::Goodbye(g)] if g.code == ErrorCode::NO_ERROR),
                    "{id}: {frames:?}"
                );
                for rq in &requests {
                    assert!(
                        frames
                            .iter()
                            .any(|(i, m)| i == rq && error_code(m) == Some(ErrorCode::CANCELLED)),
                        "{id}: request {rq} unanswered"
                    );
                }
            }
            other => panic!("{id}: scope {other}"),
        }
        if scope != "connection" {
            // After a request error, or the end of stream inside a frame, nothing received
            // before the offending input is lost (§2.7, §3.9): every request before it reached
            // the application (PING is answered by the session itself).
            let before = want["offset"].as_u64().unwrap() as usize;
            let expected: Vec<u32> = frames_of(BytesMut::from(&bytes[..before]))
                .iter()
                .filter(|f| {
                    f.header.msg_type.kind() == Kind::Request
                        && f.header.msg_type != MessageType::Ping
                })
                .map(|f| f.header.request_id)
                .collect();
            assert_eq!(requests, expected, "{id}: requests delivered");
        }
    }
}

#[test]
fn valid_vectors_are_accepted_by_the_sessions() {
    let mut app_requests = 0;
    let mut client_handshakes = 0;
    for v in load("valid.json") {
        let id = v["id"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        if v["direction"] == "to_server" {
            let mut s = server_for(&v);
            s.feed(&bytes);
            let events = s.events();
            let frames = s.frames();
            assert!(
                frames.iter().all(|(_, m)| error_code(m).is_none()),
                "{id}: {frames:?}"
            );
            if v["version"].is_null() {
                assert!(
                    matches!(frames[..], [(0, Message::Welcome(_))]),
                    "{id}: {frames:?}"
                );
            }
            // An application request reaches the application of a server that implements its
            // type (§4.1).
            for f in v["frames"].as_array().unwrap() {
                if f["type"] == "APPLICATION" {
                    let (rq, code) = (
                        f["request_id"].as_u64().unwrap() as u32,
                        f["body"]["type_code"].as_u64().unwrap() as u8,
                    );
                    assert!(
                        events.iter().any(|ev| matches!(ev, Event::Request { id, message: Message::Application(a) } if *id == rq && a.type_code == code)),
                        "{id}: {events:?}"
                    );
                    app_requests += 1;
                }
            }
            continue;
        }
        let Some(offer) = v.get("client_hello") else {
            assert!(
                !v["version"].is_null(),
                "{id}: a client before WELCOME without client_hello"
            );
            continue;
        };
        // §9.2: a client that sent `client_hello` accepts the WELCOME (or takes the ERROR as the
        // end of the handshake, sending nothing).
        let now = Instant::now();
        let mut client = ClientSession::new(
            ClientConfig {
                min_version: offer["min_version"].as_u64().unwrap() as u8,
                max_version: offer["max_version"].as_u64().unwrap() as u8,
                max_frame_size: offer["max_frame_size"].as_u64().unwrap() as u32,
                capabilities: offer["capabilities"].as_u64().unwrap() as u32,
                agent: offer["agent"].as_str().unwrap().into(),
                handshake_timeout: None,
                request_timeout: None,
            },
            now,
        );
        let _ = client.take_output();
        client.handle_input(&bytes);
        let body = &v["frames"][0]["body"];
        match client.poll_event(now) {
            Ok(Some(ClientEvent::Welcome(n))) => {
                assert_eq!(v["frames"][0]["type"], "WELCOME", "{id}");
                assert_eq!(
                    (u64::from(n.version), u64::from(n.capabilities)),
                    (
                        body["version"].as_u64().unwrap(),
                        body["capabilities"].as_u64().unwrap()
                    ),
                    "{id}"
                );
            }
            Ok(Some(ClientEvent::ConnectionError { code, .. })) => {
                assert_eq!(v["frames"][0]["type"], "ERROR", "{id}");
                assert_eq!(code.name().unwrap(), body["code"], "{id}");
                assert!(client.is_closed(), "{id}");
            }
            other => panic!("{id}: {other:?}"),
        }
        assert!(
            client.take_output().is_empty(),
            "{id}: the client sent something"
        );
        client_handshakes += 1;
    }
    assert!(app_requests >= 2, "{app_requests} application requests");
    assert!(
        client_handshakes >= 3,
        "{client_handshakes} client handshakes"
    );
}
