//! The `flood` step: ECHOs written without reading until the server stops reading (spec §8.4),
//! then every reply read back.
//!
//! The writer thread writes whole frames with a short write deadline (`stall_ms`): a write that
//! makes no progress for that long is the stall, reported at once to the case's thread, which
//! then starts reading while the writer completes the frame the stall cut (with the run's normal
//! deadline: the server resumes reading once its output drains). A server that never stops
//! reading lets `max_bytes` through, which fails the step. Neither the frames written nor the
//! replies read are logged octet by octet (tens of megabytes): the log says how many there were.

use std::collections::HashSet;
use std::io::{ErrorKind, Write};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

use echowire_codec::message::{Echo, Message};
use serde_json::Value;

use super::reader::Ev;
use super::writer::Cmd;
use super::{Exec, StepResult, fail, log_note};
use crate::step::Flood;
use crate::target::Conn;

/// What the writer is to write.
pub(crate) struct Plan {
    first_id: u32,
    version: u8,
    payload_len: usize,
    max_bytes: u64,
    stall: Duration,
}

/// How the flood ended, as the writer saw it.
pub(crate) enum Outcome {
    /// A write made no progress for `stall_ms` after `bytes` octets; `frames` were started.
    Stalled { frames: u32, bytes: u64 },
    /// `max_bytes` were written without a stall.
    NoStall { frames: u32, bytes: u64 },
    /// The connection failed.
    Broken {
        frames: u32,
        bytes: u64,
        error: String,
    },
}

fn payload_octet(id: u32) -> u8 {
    id.to_be_bytes()[3]
}

fn echo_frame(version: u8, id: u32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let payload = vec![payload_octet(id); len];
    Message::<&[u8]>::Echo(Echo { payload: &payload })
        .encode(version, id, u32::MAX, &mut out)
        .expect("an ECHO within 16 MiB encodes");
    out
}

/// In the writer thread: writes the flood, reports its outcome on `done` as soon as it is known,
/// and returns the octets written and whether the connection is still usable.
pub(super) fn write(
    conn: &mut Conn,
    plan: &Plan,
    deadline: Duration,
    done: &Sender<Outcome>,
    reset: &std::sync::atomic::AtomicBool,
) -> (u64, bool) {
    let _ = conn.set_write_timeout(Some(plan.stall));
    let mut bytes = 0u64;
    let mut frames = 0u32;
    let mut stalled = false;
    let mut error = None;
    // Frames until the stall (the frame it cut is completed) or max_bytes, or an error.
    'frames: while !stalled && bytes < plan.max_bytes {
        let frame = echo_frame(plan.version, plan.first_id + frames, plan.payload_len);
        frames += 1;
        let mut at = 0;
        while at < frame.len() {
            match conn.write(&frame[at..]) {
                Ok(0) => {
                    error = Some("the connection accepts no more octets".to_string());
                    break 'frames;
                }
                Ok(n) => {
                    at += n;
                    bytes += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stalled {
                        // The client is reading, yet the server did not resume within the
                        // run's deadline.
                        error = Some(format!("no progress within {deadline:?}"));
                        break 'frames;
                    }
                    stalled = true;
                    let _ = done.send(Outcome::Stalled { frames, bytes });
                    let _ = conn.set_write_timeout(Some(deadline));
                }
                Err(e) => {
                    if e.kind() == ErrorKind::ConnectionReset {
                        reset.store(true, std::sync::atomic::Ordering::Release);
                    }
                    error = Some(e.to_string());
                    break 'frames;
                }
            }
        }
    }
    if !stalled {
        let _ = done.send(match &error {
            Some(e) => Outcome::Broken {
                frames,
                bytes,
                error: e.clone(),
            },
            None => Outcome::NoStall { frames, bytes },
        });
    }
    let ok = error.is_none();
    let _ = conn.set_write_timeout(Some(deadline));
    (bytes, ok)
}

impl Exec {
    /// Runs a `flood` step (see [`Flood`]).
    pub(super) fn flood(&mut self, i: usize, f: &Flood) -> StepResult {
        let plan = Plan {
            first_id: f.first_id,
            version: self.default_version(),
            payload_len: f.payload_len as usize,
            max_bytes: f.max_bytes,
            stall: Duration::from_millis(f.stall_ms),
        };
        let (tx, rx) = channel();
        self.writer.send(Cmd::Flood(plan, tx));
        // Writing max_bytes to a server that reads them all takes well under the run's deadline
        // on loopback; the stall itself takes stall_ms.
        let wait = self.settings.timeout + Duration::from_millis(f.stall_ms);
        let expected = format!(
            "the server to stop reading (backpressure, 8.4) before {} octets of ECHO from a client that reads nothing",
            f.max_bytes
        );
        let frames = match rx.recv_timeout(wait) {
            Ok(Outcome::Stalled { frames, bytes }) => {
                log_note(
                    &self.log,
                    self.start,
                    super::Dir::ClientToServer,
                    bytes,
                    format!(
                        "(flood: the server stopped reading after {bytes} octets, {frames} ECHO frames started)"
                    ),
                );
                frames
            }
            Ok(Outcome::NoStall { frames, bytes }) => {
                return Err(fail(
                    i,
                    expected,
                    format!("it read all {bytes} octets ({frames} ECHO frames) without a stall"),
                ));
            }
            Ok(Outcome::Broken {
                frames,
                bytes,
                error,
            }) => {
                return Err(fail(
                    i,
                    expected,
                    format!(
                        "the connection failed after {bytes} octets ({frames} frames): {error}"
                    ),
                ));
            }
            Err(_) => {
                return Err(fail(
                    i,
                    expected,
                    format!("the writes neither stalled nor finished within {wait:?}"),
                ));
            }
        };
        self.read_flood_replies(i, f, frames)
    }

    fn read_flood_replies(&mut self, i: usize, f: &Flood, frames: u32) -> StepResult {
        let ids = f.first_id..f.first_id + frames;
        let mut seen = HashSet::new();
        let mut expected_payloads: [Option<String>; 256] = std::array::from_fn(|_| None);
        let quiet_from = self.rx_offset;
        self.quiet = true;
        let result = (|| {
            while (seen.len() as u32) < frames {
                let deadline = Instant::now() + self.settings.timeout;
                let answered = seen.len();
                let expected = || {
                    format!(
                        "ECHO_REPLY for each of the {frames} ECHOs {}..={} ({answered} answered so far)",
                        ids.start,
                        ids.end - 1,
                    )
                };
                let ev = self.next_event(deadline);
                let Ev::Frame(v) = &ev else {
                    return Err(fail(i, expected(), ev.describe()));
                };
                let id = v["request_id"].as_u64().unwrap_or(0) as u32;
                let payload = v.pointer("/body/payload").and_then(Value::as_str);
                let want = expected_payloads[payload_octet(id) as usize].get_or_insert_with(|| {
                    hex::encode(vec![payload_octet(id); f.payload_len as usize])
                });
                let right = v["type"] == "ECHO_REPLY"
                    && ids.contains(&id)
                    && payload == Some(want.as_str())
                    && seen.insert(id);
                if !right {
                    let mut shown = v.clone();
                    if let Some(p) = shown.pointer_mut("/body/payload")
                        && p.as_str().is_some_and(|s| s.len() > 64)
                    {
                        let len = p.as_str().map_or(0, str::len) / 2;
                        *p = Value::String(format!("({len} octets)"));
                    }
                    let why = if seen.contains(&id) && v["type"] == "ECHO_REPLY" {
                        " (a second reply to this ID)"
                    } else {
                        ""
                    };
                    return Err(fail(i, expected(), format!("frame {shown}{why}")));
                }
            }
            Ok(())
        })();
        self.quiet = false;
        log_note(
            &self.log,
            self.start,
            super::Dir::ServerToClient,
            quiet_from,
            format!(
                "(flood: {} octets of replies, {} ECHO_REPLY frames, not shown)",
                self.rx_offset - quiet_from,
                seen.len()
            ),
        );
        result
    }
}
