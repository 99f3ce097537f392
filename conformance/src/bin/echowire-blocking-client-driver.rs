//! The client-conformance driver of `echowire_codec::client::Client`, the codec's blocking
//! client: it speaks the driver interface of `spec/conformance/CLIENT-DRIVER.md` (JSON lines:
//! commands on standard input, events on standard output) and does only what a program using
//! the client would do — connect, send, cancel, wait with a timeout, say GOODBYE.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::BufRead;
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use echowire_codec::client::{Client, Error};
use echowire_codec::session::{ClientConfig, ClientError};
use echowire_conformance::driver::{code_name, emit, request_kind, response_event};
use serde_json::{Value, json};

fn failed(stage: &str, e: &Error) {
    let code = match e {
        Error::Session(s) => s.code().map(code_name),
        _ => None,
    };
    let server_code = match e {
        Error::Session(ClientError::Server { code, .. }) => Some(code_name(*code)),
        _ => None,
    };
    emit(
        json!({"event": "failed", "stage": stage, "detail": e.to_string(),
                "sent_code": code, "server_code": server_code}),
    );
}

struct Conn {
    client: Client<TcpStream>,
    /// request ID -> (tag, deadline, timed out already)
    tags: Tags,
}

type Tags = HashMap<u32, (String, Option<Instant>, bool)>;

/// Every request still outstanding when the connection failed: its fate is unknown.
fn lose_all(tags: &mut Tags) {
    let mut left: Vec<_> = tags.drain().collect();
    left.sort_by_key(|(id, _)| *id);
    for (_, (tag, _, _)) in left {
        emit(json!({"event": "lost", "tag": tag}));
    }
}

fn stdin_lines() -> Receiver<Value> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let v = serde_json::from_str(&line)
                .unwrap_or_else(|e| json!({"cmd": "invalid", "error": e.to_string()}));
            if tx.send(v).is_err() {
                break;
            }
        }
        let _ = tx.send(json!({"cmd": "exit"}));
    });
    rx
}

fn main() {
    let commands = stdin_lines();
    let mut conn: Option<Conn> = None;
    loop {
        let waiting = conn.as_ref().is_some_and(|c| !c.tags.is_empty());
        let wait = if waiting {
            Duration::from_millis(2)
        } else {
            Duration::from_millis(200)
        };
        match commands.recv_timeout(wait) {
            Ok(cmd) => {
                if !command(&cmd, &mut conn) {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(c) = conn.as_mut() else { continue };
        if c.tags.is_empty() {
            continue;
        }
        let _ = c
            .client
            .stream()
            .set_read_timeout(Some(Duration::from_millis(20)));
        match c.client.recv() {
            Ok((id, r)) => {
                let tag = c.tags.remove(&id).map_or_else(|| id.to_string(), |t| t.0);
                emit(response_event(&tag, &r));
            }
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let now = Instant::now();
                for (tag, deadline, reported) in c.tags.values_mut() {
                    if !*reported && deadline.is_some_and(|d| now >= d) {
                        *reported = true;
                        emit(json!({"event": "timeout", "tag": tag}));
                    }
                }
            }
            Err(e) => {
                failed("response", &e);
                lose_all(&mut c.tags);
                emit(json!({"event": "closed"}));
                conn = None;
            }
        }
    }
}

/// Runs one command; `false` to exit.
fn command(cmd: &Value, conn: &mut Option<Conn>) -> bool {
    match cmd["cmd"].as_str().unwrap_or("") {
        "connect" => {
            let addr = cmd["address"].as_str().unwrap_or("");
            let config = ClientConfig {
                min_version: cmd["min_version"].as_u64().unwrap_or(1) as u8,
                max_version: cmd["max_version"].as_u64().unwrap_or(2) as u8,
                max_frame_size: cmd["max_frame_size"].as_u64().unwrap_or(1 << 20) as u32,
                capabilities: cmd["capabilities"].as_u64().unwrap_or(0) as u32,
                ..ClientConfig::default()
            };
            let timeout = Duration::from_millis(cmd["timeout_ms"].as_u64().unwrap_or(2000));
            let stream = match TcpStream::connect(addr) {
                Ok(s) => s,
                Err(e) => {
                    failed("connect", &Error::Io(e));
                    return true;
                }
            };
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(timeout));
            match Client::handshake(stream, config) {
                Ok(client) => {
                    let n = client.negotiated();
                    emit(json!({"event": "welcome", "version": n.version,
                        "max_frame_size": n.max_frame_size, "max_outstanding": n.max_outstanding,
                        "capabilities": n.capabilities}));
                    *conn = Some(Conn {
                        client,
                        tags: HashMap::new(),
                    });
                }
                Err(e) => {
                    failed("handshake", &e);
                    emit(json!({"event": "closed"}));
                }
            }
        }
        "request" => {
            let Some(c) = conn.as_mut() else {
                emit(json!({"event": "refused", "tag": cmd["tag"], "detail": "not connected"}));
                return true;
            };
            let tag = cmd["tag"].as_str().unwrap_or("").to_string();
            let kind = match request_kind(cmd) {
                Ok(k) => k,
                Err(e) => {
                    emit(json!({"event": "refused", "tag": tag, "detail": e}));
                    return true;
                }
            };
            let deadline = cmd["timeout_ms"]
                .as_u64()
                .map(|ms| Instant::now() + Duration::from_millis(ms));
            match c.client.send(&kind) {
                Ok(id) => {
                    c.tags.insert(id, (tag, deadline, false));
                }
                Err(e) => {
                    emit(json!({"event": "refused", "tag": tag, "detail": e.to_string()}));
                }
            }
        }
        "cancel" => {
            if let Some(c) = conn.as_mut() {
                let tag = cmd["tag"].as_str().unwrap_or("");
                if let Some((&id, _)) = c.tags.iter().find(|(_, t)| t.0 == tag)
                    && let Err(e) = c.client.cancel(id)
                {
                    failed("cancel", &e);
                }
            }
        }
        "goodbye" => {
            if let Some(c) = conn.take() {
                let Conn {
                    mut client,
                    mut tags,
                } = c;
                let _ = client
                    .stream()
                    .set_read_timeout(Some(Duration::from_secs(5)));
                match client.goodbye() {
                    Ok(rest) => {
                        for (id, r) in rest {
                            let tag = tags.remove(&id).map_or_else(|| id.to_string(), |t| t.0);
                            emit(response_event(&tag, &r));
                        }
                    }
                    Err(e) => failed("goodbye", &e),
                }
                lose_all(&mut tags);
                emit(json!({"event": "closed"}));
            }
        }
        "exit" => return false,
        other => emit(json!({"event": "unsupported", "cmd": other})),
    }
    true
}
