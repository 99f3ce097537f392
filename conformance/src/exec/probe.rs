//! Probes of a target: what it offers (a handshake offering every version and capability),
//! whether it still serves (the liveness probe after each case), and whether its heavy-request
//! queue is empty (the settle probe before each run of a case whose profile shares that queue).

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::PREFACE;
use echowire_codec::message::{self, DecodeContext, Message, Role};
use serde_json::json;

use super::{RunSettings, run};
use crate::split::Cut;
use crate::step::Step;
use crate::target::{Conn, Target};

/// What a target offers, from a handshake offering every version and capability.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TargetInfo {
    /// The version it picked from 1..=255.
    pub version: u8,
    /// Capabilities it accepted from 0xFFFFFFFF.
    pub capabilities: u32,
    /// Its max_frame_size.
    pub max_frame_size: u32,
    /// Its agent string.
    pub agent: String,
}

/// Why the capability probe failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Nothing accepts connections there: one clear error, no case is run.
    Unreachable(String),
    /// It accepts connections but its handshake is broken: the cases still run (as for a
    /// version-1 target without capabilities) so the report shows what fails.
    Handshake(String),
    /// What answered is not an Echowire server at all (HTTP, TLS, SSH, an echo of the probe,
    /// octets that cannot begin a frame, or nothing: silence, a close, a reset). The run stops
    /// with this one line unless `--force`: every case would fail or wait for the same reason.
    NotEchowire(String),
}

/// Smallest and largest `Length` a WELCOME can have (a header alone; the probe's own limit).
const LENGTH_RANGE: std::ops::RangeInclusive<u32> = 8..=16 << 20;

/// What `buf` (the first octets a target wrote in answer to the probe) is, if it cannot be the
/// start of an Echowire frame; `None` while it may still be one (or when too few octets arrived
/// to tell and more may come: `ended` says none will).
fn foreign(buf: &[u8], sent: &[u8], ended: bool) -> Option<String> {
    let printable = |b: &[u8]| -> String {
        let line = b.split(|&c| c == b'\n').next().unwrap_or_default();
        let text: String = String::from_utf8_lossy(&line[..line.len().min(60)])
            .trim_end()
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        text
    };
    let is_prefix = |p: &[u8]| buf.len() < p.len() && p.starts_with(buf) && !ended;
    if is_prefix(b"HTTP/") || is_prefix(b"SSH-") {
        return None;
    }
    if buf.starts_with(b"HTTP/") || buf.starts_with(b"<") {
        return Some(format!("an HTTP server answered: \"{}\"", printable(buf)));
    }
    if buf.starts_with(b"SSH-") {
        return Some(format!("an SSH server answered: \"{}\"", printable(buf)));
    }
    if buf.len() >= 2 && (0x14..=0x17).contains(&buf[0]) && buf[1] == 0x03 {
        return Some(format!(
            "a TLS server answered (a TLS record of content type {:#04x}, version 3.{}): \
             Echowire runs over plain TCP",
            buf[0],
            buf.get(2).copied().unwrap_or(0)
        ));
    }
    let n = buf.len().min(sent.len());
    if n >= 4 && buf[..n] == sent[..n] {
        return Some("it echoes what it is sent (the probe's own preface came back)".to_string());
    }
    if buf.len() >= 4 {
        let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if !LENGTH_RANGE.contains(&length) {
            let ascii = buf[..buf.len().min(16)]
                .iter()
                .all(|c| c.is_ascii_graphic() || c.is_ascii_whitespace());
            return Some(if ascii {
                format!("it answered with text, not a frame: \"{}\"", printable(buf))
            } else {
                format!(
                    "its first octets cannot begin a frame (Length {length} is outside \
                     {}..={} for a WELCOME): {}",
                    LENGTH_RANGE.start(),
                    LENGTH_RANGE.end(),
                    hex::encode(&buf[..buf.len().min(16)])
                )
            });
        }
    }
    None
}

/// Learns what the target supports, by dedicated probes rather than by inference from one
/// negotiation (which is itself under test): a HELLO offering every version and capability (its
/// limit, agent, and the version it picks), then a HELLO offering version 2 alone. A target that
/// answers the second with WELCOME version 2 supports version 2, even if it picked a lower
/// version from 1..=255 — the negotiation cases then hold it to spec §3.3 instead of silently
/// skipping every version-2 case.
pub fn probe(target: &Target, timeout: Duration) -> Result<TargetInfo, ProbeError> {
    let mut info = hello_probe(target, timeout, 1, 255)?;
    if let Ok(v2) = hello_probe(target, timeout, 2, 2)
        && v2.version == 2
    {
        info.version = info.version.max(2);
        info.capabilities |= v2.capabilities;
    }
    Ok(info)
}

/// One handshake offering `min..=max` and every capability.
fn hello_probe(
    target: &Target,
    timeout: Duration,
    min: u8,
    max: u8,
) -> Result<TargetInfo, ProbeError> {
    let conn = target.connect().map_err(|e| {
        ProbeError::Unreachable(format!("cannot connect to {}: {e}", target.address()))
    })?;
    probe_handshake(conn, target, timeout, min, max)
}

fn probe_handshake(
    mut conn: Conn,
    target: &Target,
    timeout: Duration,
    min: u8,
    max: u8,
) -> Result<TargetInfo, ProbeError> {
    use ProbeError::{Handshake, NotEchowire};
    let mut out = PREFACE.to_vec();
    Message::<&[u8]>::Hello(message::Hello {
        min_version: min,
        max_version: max,
        max_frame_size: 16 << 20,
        capabilities: u32::MAX,
        agent: "echowire-conformance probe".into(),
    })
    .encode(1, 0, u32::MAX, &mut out)
    .map_err(|e| Handshake(e.to_string()))?;
    conn.write_all(&out)
        .map_err(|e| Handshake(format!("cannot write to {}: {e}", target.address())))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| Handshake(e.to_string()))?;
    let mut dec = FrameDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    let started = std::time::Instant::now();
    loop {
        if let Some(what) = foreign(&buf, &out, false) {
            return Err(NotEchowire(what));
        }
        if let Some(mut f) = dec
            .decode(&mut buf)
            .map_err(|e| Handshake(format!("the target does not speak Echowire: {e}")))?
        {
            // The probe learns what the target supports; whether its WELCOME is written in header
            // version 1 (§3.2) is for the cases to judge, so a wrong header version here must not
            // hide the target's version 2 support and skip the very cases that would catch it.
            f.header.version = 1;
            let ctx = DecodeContext {
                receiver: Role::Client,
                version: None,
                capabilities: 0,
            };
            return match message::decode(&f, &ctx) {
                Ok(Message::Welcome(w)) => {
                    let _ = conn.shutdown(Shutdown::Write);
                    Ok(TargetInfo {
                        version: w.version,
                        capabilities: w.capabilities,
                        max_frame_size: w.max_frame_size,
                        agent: w.agent.to_string(),
                    })
                }
                Ok(other) => Err(Handshake(format!(
                    "the target answered HELLO with {other:?}"
                ))),
                Err(e) => Err(Handshake(format!(
                    "the target does not speak Echowire: {e}"
                ))),
            };
        }
        match conn.read(&mut chunk) {
            Ok(0) if buf.is_empty() => {
                return Err(NotEchowire(
                    "it closed the connection without answering the HELLO".into(),
                ));
            }
            Ok(0) => {
                return Err(foreign(&buf, &out, true).map_or_else(
                    || Handshake("the target closed the connection during the handshake".into()),
                    NotEchowire,
                ));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let waited = started.elapsed().as_secs_f64();
                return Err(match buf.len() {
                    0 => NotEchowire(format!(
                        "it sent nothing in answer to a HELLO within {waited:.1} s (the wait is \
                         --timeout)"
                    )),
                    n => foreign(&buf, &out, true).map_or_else(
                        || {
                            Handshake(format!(
                                "no complete answer to HELLO within {waited:.1} s ({n} octets \
                                 arrived: {}; the wait is --timeout)",
                                hex::encode(&buf[..n.min(32)])
                            ))
                        },
                        NotEchowire,
                    ),
                });
            }
            Err(e) if buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(NotEchowire(
                    "it reset the connection without answering the HELLO".into(),
                ));
            }
            Err(e) => {
                return Err(Handshake(format!(
                    "no WELCOME from {}: {e}",
                    target.address()
                )));
            }
        }
    }
}

/// The liveness probe run after each case: a fresh connection, handshake, one ECHO.
pub fn alive(target: &Target, timeout: Duration) -> Result<(), String> {
    let steps: Vec<Step> = serde_json::from_value(json!([
        {"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0}},
        {"send": {"frame": {"type": "ECHO", "request_id": 1, "body": {"payload": "6c697665"}}}},
        {"expect": {"frame": {"type": "ECHO_REPLY", "request_id": 1, "body": {"payload": "6c697665"}}}},
    ]))
    .expect("the liveness probe's steps are well-formed");
    let mut last = String::new();
    for _ in 0..3 {
        match run_whole(target, &steps, timeout) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

/// Runs a probe's steps once under whole writes; the failure, described.
fn run_whole(target: &Target, steps: &[Step], timeout: Duration) -> Result<(), String> {
    let r = run(
        target,
        steps,
        RunSettings {
            cut: Cut::Whole,
            timeout,
            coalesce: true,
            timeouts: target.timeouts,
            server: None,
            slack_ms: crate::oracle::DEFAULT_SLACK_MS,
        },
    );
    match r.failure {
        None => Ok(()),
        Some(f) => Err(format!(
            "{}: expected {}, observed {}",
            f.step, f.expected, f.observed
        )),
    }
}

/// The settle probe, run before each run of a case of an exclusive profile (one worker, a
/// queue of one): waits until a COMPUTE of cost 1 is answered with its result, retrying while
/// it is BUSY. A run that failed early, or a shrinking replay, leaves its slow COMPUTEs running
/// when its connection closes; the next case would find the worker and the queue taken and fail
/// for a reason of its own. One worker and a queue of one: once the probe's COMPUTE has run,
/// every job queued before it has finished. Gives up after `timeout` (the case then runs and
/// shows what it finds).
pub fn settle(target: &Target, timeout: Duration) -> Result<(), String> {
    let steps: Vec<Step> = serde_json::from_value(json!([
        {"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0}},
        {"send": {"frame": {"type": "COMPUTE", "request_id": 1, "body": {"cost": 1, "seed": "736574746c65"}}}},
        {"expect": {"frame": {"type": "COMPUTE_RESULT", "request_id": 1}}},
    ]))
    .expect("the settle probe's steps are well-formed");
    let deadline = Instant::now() + timeout;
    loop {
        match run_whole(target, &steps, timeout) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
