//! Shared by the client drivers of the Rust clients (`src/bin/echowire-*-client-driver.rs`):
//! the driver interface's JSON forms (spec/conformance/CLIENT-DRIVER.md) of requests, responses
//! and error codes.

use std::io::Write;

use bytes::Bytes;
use echowire_codec::error::ErrorCode;
use echowire_codec::message::Sum;
use echowire_codec::session::{RequestKind, Response};
use serde_json::{Value, json};

/// Writes one event line and flushes it.
pub fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// The code's name as the spec writes it (`BUSY`), or its number.
pub fn code_name(c: ErrorCode) -> String {
    c.name().map_or_else(|| c.to_string(), str::to_string)
}

/// The request a `request` command asks for.
pub fn request_kind(cmd: &Value) -> Result<RequestKind, String> {
    let body = &cmd["body"];
    let hex = |k: &str| {
        // `{"fill": byte, "len": n}` stands for n copies of byte (large payloads).
        if let (Some(b), Some(n)) = (body[k]["fill"].as_u64(), body[k]["len"].as_u64()) {
            return Ok(Bytes::from(vec![b as u8; (n as usize).min(64 << 20)]));
        }
        hex::decode(body[k].as_str().unwrap_or(""))
            .map(Bytes::from)
            .map_err(|e| format!("{k}: {e}"))
    };
    Ok(match cmd["type"].as_str().unwrap_or("") {
        "PING" => RequestKind::Ping {
            data: body["data"].as_u64().unwrap_or(0),
        },
        "ECHO" => RequestKind::Echo {
            payload: hex("payload")?,
        },
        "COMPUTE" => RequestKind::Compute {
            cost: body["cost"].as_u64().unwrap_or(1) as u32,
            seed: hex("seed")?,
        },
        "SUM" => RequestKind::Sum(Sum {
            values: serde_json::from_value(body["values"].clone()).map_err(|e| e.to_string())?,
        }),
        "STATS" => RequestKind::Stats,
        other => return Err(format!("unknown request type {other:?}")),
    })
}

/// The event for a delivered response.
pub fn response_event(tag: &str, r: &Response) -> Value {
    match r {
        Response::Pong { data } => {
            json!({"event": "response", "tag": tag, "type": "PONG", "body": {"data": data}})
        }
        Response::EchoReply { payload } => json!({"event": "response", "tag": tag,
            "type": "ECHO_REPLY", "body": {"payload": hex::encode(payload)}}),
        Response::ComputeResult { digest } => json!({"event": "response", "tag": tag,
            "type": "COMPUTE_RESULT", "body": {"digest": hex::encode(digest)}}),
        Response::SumResult(s) => json!({"event": "response", "tag": tag,
            "type": "SUM_RESULT", "body": serde_json::to_value(s).unwrap_or(Value::Null)}),
        Response::StatsReply(v) => json!({"event": "response", "tag": tag,
            "type": "STATS_REPLY", "body": {"counters": v}}),
        Response::Error {
            code,
            message,
            retry_after_ms,
        } => json!({"event": "error", "tag": tag, "code": code_name(*code),
            "message": message, "retry_after_ms": retry_after_ms}),
        Response::Application { type_code, body } => json!({"event": "response", "tag": tag,
            "type": format!("0x{type_code:02x}"), "body": {"hex": hex::encode(body)}}),
        other => json!({"event": "response", "tag": tag, "type": format!("{other:?}")}),
    }
}
