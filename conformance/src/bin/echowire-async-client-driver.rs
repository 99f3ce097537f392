//! The client-conformance driver of `echowire_codec::async_client::AsyncClient`, the codec's
//! tokio client (spec/conformance/CLIENT-DRIVER.md: commands on standard input, events on
//! standard output, JSON lines). Each request is awaited by a task of its own, as an application
//! pipelining requests would.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::time::Duration;

use echowire_codec::async_client::{AsyncClient, Error};
use echowire_conformance::driver::{
    Command, code_name, emit, parse_command, request, response_event,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

fn failed(stage: &str, e: &Error) -> Value {
    let (sent, server) = match e {
        Error::Protocol { code, .. } => (Some(code_name(*code)), None),
        Error::Server { code, .. } => (None, Some(code_name(*code))),
        _ => (None, None),
    };
    json!({"event": "failed", "stage": stage, "detail": e.to_string(),
           "sent_code": sent, "server_code": server})
}

enum Note {
    /// An event to print as it is.
    Event(Value),
    /// The connection ended (`None`: gracefully).
    Ended(Option<Error>),
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let (tx, mut rx) = mpsc::unbounded_channel::<Note>();
    let mut client: Option<AsyncClient> = None;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut lost: Vec<Value> = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(note) = rx.recv() => match note {
                // The interface orders a failure's events: `failed`, then `lost`, then `closed`.
                Note::Event(v) if v["event"] == "lost" => lost.push(v),
                Note::Event(v) => emit(v),
                Note::Ended(why) => {
                    if let Some(e) = why {
                        emit(failed("response", &e));
                    }
                    for v in lost.drain(..) {
                        emit(v);
                    }
                    // Every request task has its result by now (the connection task fails
                    // them right after it says how it ended): let them report, then close.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    while let Ok(Note::Event(v)) = rx.try_recv() {
                        emit(v);
                    }
                    emit(json!({"event": "closed"}));
                    client = None;
                }
            },
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return };
                let cmd = match parse_command(&line) {
                    Ok(c) => c,
                    Err((cmd, detail)) => {
                        emit(json!({"event": "unsupported", "cmd": cmd, "detail": detail}));
                        continue;
                    }
                };
                match cmd {
                    Command::Connect(c) => {
                        let (config, timeout) = (c.config(), c.timeout());
                        match AsyncClient::connect_tcp(c.address, config, timeout).await {
                            Ok(c) => {
                                let n = c.negotiated();
                                emit(json!({"event": "welcome", "version": n.version,
                                    "max_frame_size": n.max_frame_size,
                                    "max_outstanding": n.max_outstanding,
                                    "capabilities": n.capabilities}));
                                let watcher = c.clone();
                                let tx = tx.clone();
                                tokio::spawn(async move {
                                    let end = watcher.closed().await;
                                    let _ = tx.send(Note::Ended(end.err()));
                                });
                                client = Some(c);
                            }
                            Err(e) => {
                                emit(failed("handshake", &e));
                                emit(json!({"event": "closed"}));
                            }
                        }
                    }
                    Command::Request { tag, msg_type, body, timeout_ms } => {
                        let Some(c) = &client else {
                            emit(json!({"event": "refused", "tag": tag, "detail": "not connected"}));
                            continue;
                        };
                        let message = match request(&msg_type, &body) {
                            Ok(m) => m,
                            Err(e) => {
                                emit(json!({"event": "refused", "tag": tag, "detail": e}));
                                continue;
                            }
                        };
                        let timeout = timeout_ms.map(Duration::from_millis);
                        match c.send(message).await {
                            Ok(pending) => {
                                ids.insert(tag.clone(), pending.id);
                                let tx = tx.clone();
                                tokio::spawn(async move {
                                    let mut pending = pending;
                                    let mut timeout = timeout;
                                    // A timed-out request stays outstanding (spec 9.4): its
                                    // response, or its loss, is still reported.
                                    loop {
                                        let ev = match pending.wait(timeout).await {
                                            Ok(r) => response_event(&tag, &r),
                                            Err(Error::Timeout) => {
                                                timeout = None;
                                                let _ = tx.send(Note::Event(json!({"event": "timeout", "tag": tag})));
                                                continue;
                                            }
                                            Err(Error::NotProcessed) => {
                                                json!({"event": "unprocessed", "tag": tag})
                                            }
                                            Err(_) => json!({"event": "lost", "tag": tag}),
                                        };
                                        let _ = tx.send(Note::Event(ev));
                                        break;
                                    }
                                });
                            }
                            Err(e) => emit(json!({"event": "refused", "tag": tag, "detail": e.to_string()})),
                        }
                    }
                    Command::Cancel { tag } => {
                        if let (Some(c), Some(id)) = (&client, ids.get(&tag)) {
                            c.cancel(*id);
                        }
                    }
                    Command::Goodbye => {
                        if let Some(c) = client.clone() {
                            tokio::spawn(async move {
                                let _ = c.goodbye().await;
                            });
                        }
                    }
                    Command::Exit => return,
                }
            }
        }
    }
}
