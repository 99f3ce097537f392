//! Shared by the client drivers of the Rust clients (`src/bin/echowire-*-client-driver.rs`):
//! the driver interface of spec/conformance/CLIENT-DRIVER.md, typed. A command line is one
//! [`Command`]; a request's `type` and `body` are the vectors' JSON form of a message, so every
//! request type of the message table is understood without a list kept here; responses are
//! reported in the same form.

use std::io::Write;

use bytes::Bytes;
use echowire_codec::error::ErrorCode;
use echowire_codec::frame::{Kind, MessageType};
use echowire_codec::message::Message;
use serde::Deserialize;
use serde_json::{Value, json};

/// One command (runner → driver). Unknown fields are ignored, as the interface says, so a
/// runner may add some; a missing required field is an error naming it, never a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Connect and handshake, offering exactly these values.
    Connect(Connect),
    /// Send a request (pipelined).
    Request {
        /// Names the request in events.
        tag: String,
        /// The request type, as the spec names it.
        #[serde(rename = "type")]
        msg_type: String,
        /// The body in the vectors' JSON form (an ECHO payload may be `{"fill", "len"}`).
        body: Value,
        /// Bound of the wait for its response.
        timeout_ms: Option<u64>,
    },
    /// Send CANCEL for a request.
    Cancel {
        /// The request's tag.
        tag: String,
    },
    /// End the connection gracefully.
    Goodbye,
    /// End the process.
    Exit,
}

/// The `connect` command's values.
#[derive(Debug, Clone, Deserialize)]
pub struct Connect {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// Lowest version offered.
    pub min_version: u8,
    /// Highest version offered.
    pub max_version: u8,
    /// The client's receive limit.
    pub max_frame_size: u32,
    /// Capabilities offered.
    pub capabilities: u32,
    /// Bound of the wait for WELCOME.
    pub timeout_ms: u64,
}

impl Connect {
    /// The bound of the wait for WELCOME.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }

    /// The client's settings: exactly the values offered, WELCOME awaited for `timeout_ms`,
    /// and no session timeout on responses (each request's wait is the runner's `timeout_ms`,
    /// which the driver reports without the client giving up on the request).
    pub fn config(&self) -> echowire_codec::session::ClientConfig {
        echowire_codec::session::ClientConfig {
            min_version: self.min_version,
            max_version: self.max_version,
            max_frame_size: self.max_frame_size,
            capabilities: self.capabilities,
            handshake_timeout: Some(self.timeout()),
            request_timeout: None,
            ..Default::default()
        }
    }
}

/// A command line, or why it is not one: `Err((command name, detail))`.
pub fn parse_command(line: &str) -> Result<Command, (String, String)> {
    let v: Value = serde_json::from_str(line).map_err(|e| ("invalid".into(), e.to_string()))?;
    let name = v["cmd"].as_str().unwrap_or("").to_string();
    serde_json::from_value(v).map_err(|e| (name, e.to_string()))
}

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

/// The request a `request` command asks for: any request type of the message table, its body
/// in the vectors' JSON form (decoded by the message's own serde form).
pub fn request(msg_type: &str, body: &Value) -> Result<Message<Bytes>, String> {
    let ty = MessageType::from_name(msg_type)
        .ok_or_else(|| format!("unknown message type {msg_type:?}"))?;
    if ty.kind() != Kind::Request {
        return Err(format!("{msg_type} is not a request"));
    }
    let body = expand_fills(body.clone());
    serde_json::from_value(json!({"type": msg_type, "body": body}))
        .map_err(|e| format!("{msg_type} body: {e}"))
}

/// `{"fill": BYTE, "len": N}` stands for N copies of BYTE (large payloads); the message's JSON
/// form wants hex.
fn expand_fills(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            if let (Some(b), Some(n)) = (
                o.get("fill").and_then(Value::as_u64),
                o.get("len").and_then(Value::as_u64),
            ) && o.len() == 2
            {
                let octets = vec![b as u8; (n as usize).min(64 << 20)];
                return Value::String(hex::encode(octets));
            }
            Value::Object(o.into_iter().map(|(k, v)| (k, expand_fills(v))).collect())
        }
        other => other,
    }
}

/// The event for a delivered response: `error` for ERROR, else `response` with the type and
/// the body in the vectors' JSON form.
pub fn response_event(tag: &str, r: &Message<Bytes>) -> Value {
    if let Message::Error(e) = r {
        return json!({"event": "error", "tag": tag, "code": code_name(e.code),
            "message": e.message.as_str(), "retry_after_ms": e.retry_after_ms});
    }
    let v = serde_json::to_value(r).unwrap_or(Value::Null);
    let ty = match r {
        Message::Application(a) => format!("0x{:02x}", a.type_code),
        other => other.msg_type().to_string(),
    };
    json!({"event": "response", "tag": tag, "type": ty, "body": v["body"]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_typed_and_say_what_is_missing() {
        let c = parse_command(
            r#"{"cmd": "request", "tag": "a", "type": "ECHO", "body": {"payload": {"fill": 1, "len": 3}}, "extra": 1}"#,
        )
        .unwrap();
        let Command::Request { msg_type, body, .. } = c else {
            panic!("{c:?}")
        };
        let m = request(&msg_type, &body).unwrap();
        assert_eq!(m.msg_type(), MessageType::Echo);
        let e = parse_command(r#"{"cmd": "connect", "address": "x"}"#).unwrap_err();
        assert_eq!(e.0, "connect");
        assert!(e.1.contains("min_version"), "{}", e.1);
        assert_eq!(parse_command(r#"{"cmd": "dance"}"#).unwrap_err().0, "dance");
        assert!(request("PONG", &json!({"data": 1})).is_err());
        assert!(request("STATS", &json!({})).is_ok());
    }
}
