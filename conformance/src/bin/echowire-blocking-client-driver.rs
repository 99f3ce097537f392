//! The client-conformance driver of `echowire_codec::client::Client`, the codec's blocking
//! client: it speaks the driver interface of `spec/conformance/CLIENT-DRIVER.md` (JSON lines:
//! commands on standard input, events on standard output) and does only what a program using
//! the client would do — connect, send, cancel, wait with a timeout, say GOODBYE.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::BufRead;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use echowire_codec::client::{Client, Error};
use echowire_codec::session::ClientError;
use echowire_conformance::driver::{
    Command, code_name, emit, parse_command, request, response_event,
};
use serde_json::json;

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

/// Requests the server did not process before its clean close after GOODBYE: they may be
/// retried (spec 3.8, 9.3).
fn not_processed(ids: &[u32], tags: &mut Tags) {
    for id in ids {
        if let Some((tag, _, _)) = tags.remove(id) {
            emit(json!({"event": "unprocessed", "tag": tag}));
        }
    }
}

/// Command lines, parsed; a line that is not a command is reported and skipped.
fn stdin_commands() -> Receiver<Command> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match parse_command(&line) {
                Ok(c) => {
                    if tx.send(c).is_err() {
                        break;
                    }
                }
                Err((cmd, detail)) => {
                    emit(json!({"event": "unsupported", "cmd": cmd, "detail": detail}));
                }
            }
        }
        let _ = tx.send(Command::Exit);
    });
    rx
}

fn main() {
    let commands = stdin_commands();
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
                if !command(cmd, &mut conn) {
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
        // The client bounds its own waits; 20 ms here keeps the commands flowing.
        match c.client.recv_within(Duration::from_millis(20)) {
            Ok(Some((id, r))) => {
                let tag = c.tags.remove(&id).map_or_else(|| id.to_string(), |t| t.0);
                emit(response_event(&tag, &r));
            }
            Ok(None) => {
                let now = Instant::now();
                for (tag, deadline, reported) in c.tags.values_mut() {
                    if !*reported && deadline.is_some_and(|d| now >= d) {
                        *reported = true;
                        emit(json!({"event": "timeout", "tag": tag}));
                    }
                }
            }
            // A clean close after the server's GOODBYE: what it did not answer was not
            // processed and may be retried (spec 3.8, 9.3); not a failure.
            Err(Error::Session(ClientError::NotProcessed(ids))) => {
                not_processed(&ids, &mut c.tags);
                lose_all(&mut c.tags);
                emit(json!({"event": "closed"}));
                conn = None;
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
fn command(cmd: Command, conn: &mut Option<Conn>) -> bool {
    match cmd {
        Command::Connect(c) => {
            let (config, timeout, address) = (c.config(), c.timeout(), c.address);
            let connected = address
                .parse::<SocketAddr>()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
                .and_then(|a| TcpStream::connect_timeout(&a, timeout));
            let stream = match connected {
                Ok(s) => s,
                Err(e) => {
                    failed("connect", &Error::Io(e));
                    return true;
                }
            };
            let _ = stream.set_nodelay(true);
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
        Command::Request {
            tag,
            msg_type,
            body,
            timeout_ms,
        } => {
            let Some(c) = conn.as_mut() else {
                emit(json!({"event": "refused", "tag": tag, "detail": "not connected"}));
                return true;
            };
            let message = match request(&msg_type, &body) {
                Ok(m) => m,
                Err(e) => {
                    emit(json!({"event": "refused", "tag": tag, "detail": e}));
                    return true;
                }
            };
            let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
            match c.client.send(&message) {
                Ok(id) => {
                    c.tags.insert(id, (tag, deadline, false));
                }
                Err(e) => {
                    emit(json!({"event": "refused", "tag": tag, "detail": e.to_string()}));
                }
            }
        }
        Command::Cancel { tag } => {
            if let Some(c) = conn.as_mut()
                && let Some((&id, _)) = c.tags.iter().find(|(_, t)| t.0 == tag)
                && let Err(e) = c.client.cancel(id)
            {
                failed("cancel", &e);
            }
        }
        Command::Goodbye => {
            if let Some(c) = conn.take() {
                let Conn { client, mut tags } = c;
                // What arrived before a failure is delivered; only what is still outstanding
                // is lost.
                let (rest, end) = client.goodbye_collect(Some(Duration::from_secs(5)));
                for (id, r) in rest {
                    let tag = tags.remove(&id).map_or_else(|| id.to_string(), |t| t.0);
                    emit(response_event(&tag, &r));
                }
                match end {
                    Ok(()) => {}
                    Err(Error::Session(ClientError::NotProcessed(ids))) => {
                        not_processed(&ids, &mut tags)
                    }
                    Err(e) => failed("goodbye", &e),
                }
                lose_all(&mut tags);
                emit(json!({"event": "closed"}));
            }
        }
        Command::Exit => return false,
    }
    true
}
