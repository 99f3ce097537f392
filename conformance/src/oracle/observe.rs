//! From a run's wire log to what the oracle judges: the client's input cut into atoms (at every
//! write and at every frame boundary, so the model can be advanced frame by frame and a server
//! that answered between two frames of one write is explained), the server's frames with the
//! time each one completed, and how the connection ended.

use bytes::BytesMut;
use echowire_codec::Frame;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{FRAME_OVERHEAD, LENGTH_PREFIX_LEN, PREFACE};

use crate::wire::{Dir, WireEntry};

/// Notes the judged executor writes into the wire log, read back here.
pub mod notes {
    /// The runner shut down its write side.
    pub const HALF_CLOSE: &str = "FIN (half-close)";
    /// The runner aborted the connection (prefix).
    pub const RESET: &str = "RST";
    /// The runner signalled the target (prefix; the rest names the signal).
    pub const SIGNAL: &str = "(to the target: SIGTERM";
    /// The runner stopped reading (prefix).
    pub const STOP_READING: &str = "(the runner stops reading";
    /// The runner reads again.
    pub const READING_AGAIN: &str = "(the runner reads again)";
    /// The server's end of stream.
    pub const FIN: &str = "FIN";
}

/// What one atom of input does to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AtomKind {
    /// Octets (a whole frame, or part of one, or of the preface).
    Octets(Vec<u8>),
    /// The client's end of stream (half-close).
    Eof,
    /// The client reset the connection: nothing after it is observed.
    Reset,
    /// The target was sent SIGTERM (its graceful shutdown, §3.8).
    Signal,
}

/// One unit of input, with the time the runner finished writing it.
#[derive(Clone, Debug)]
pub struct Atom {
    /// Milliseconds since the connection was opened.
    pub at_ms: u64,
    /// The latest the server can be expected to have read it: later than `at_ms` when the
    /// runner was not reading then (a server may stop reading while its output cannot be
    /// written, §8.4).
    pub latest_ms: u64,
    /// Stream offset of its first octet.
    pub offset: u64,
    /// What it is.
    pub kind: AtomKind,
    /// The type code and request ID of the frame this atom completes, if it completes one.
    pub completes: Option<(u8, u32)>,
}

/// One frame the server sent.
#[derive(Clone, Debug)]
pub struct Observed {
    /// When its last octet arrived (milliseconds since the connection was opened).
    pub at_ms: u64,
    /// The frame.
    pub frame: Frame,
}

/// How the server's side of the connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// End of stream.
    Clean,
    /// A reset.
    Reset,
}

/// Everything the oracle judges on one connection.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The client's input, in order.
    pub input: Vec<Atom>,
    /// The server's frames, in order.
    pub output: Vec<Observed>,
    /// How and when the server's side ended, if it did while observed.
    pub close: Option<(CloseKind, u64)>,
    /// Bytes that cannot be framed (an impossible Length): a description.
    pub garbage: Option<String>,
    /// Octets after the last whole frame that did not (yet) become one: a description.
    pub partial: Option<String>,
    /// When the observation ended (milliseconds since the connection was opened).
    pub end_ms: u64,
    /// Periods in which the runner did not read: `(from, to)` in milliseconds.
    pub not_reading: Vec<(u64, u64)>,
    /// The first write that failed, if one did (the server had closed or reset).
    pub write_failed_ms: Option<u64>,
}

impl Observation {
    /// Builds the observation from a run's log; `end_ms` is when reading stopped.
    pub fn from_log(log: &[WireEntry], end_ms: u64, slack_ms: u64) -> Observation {
        let mut o = Observation {
            end_ms,
            ..Observation::default()
        };
        // Periods of not reading, first: atoms written then may be read late. A second stop
        // while the runner is not reading moves the end of the hold, not its start (the runner
        // logs one "reads again" for both), so the period begins at the first.
        let mut since = None;
        for e in log {
            match e.note.as_deref() {
                Some(n) if n.starts_with(notes::STOP_READING) => {
                    since.get_or_insert(e.at_ms);
                }
                Some(n) if n == notes::READING_AGAIN => {
                    if let Some(s) = since.take() {
                        o.not_reading.push((s, e.at_ms));
                    }
                }
                _ => {}
            }
        }
        if let Some(s) = since {
            o.not_reading.push((s, end_ms));
        }
        o.input = atoms(log, &o.not_reading, slack_ms);
        o.write_failed_ms = log
            .iter()
            .filter(|e| e.dir == Dir::ClientToServer)
            .find(|e| {
                e.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("write error"))
            })
            .map(|e| e.at_ms);
        let (output, close, garbage, partial) = frames(log);
        o.output = output;
        o.close = close;
        o.garbage = garbage;
        o.partial = partial;
        o
    }

    /// Whether the runner did not read at some moment between `from` and `to`.
    pub fn not_reading_near(&self, from: u64, to: u64) -> bool {
        self.not_reading.iter().any(|&(a, b)| a <= to && from <= b)
    }
}

/// Splits the client's stream into atoms: every write, cut again at every frame boundary, with
/// the octets of a write that ends inside a frame carried into the next write's atom.
///
/// A server can act on a frame only at a few points of it: when its Length is complete (a
/// Length above the limit), when its header is complete, and when it is complete; so octets
/// between two such points are fed together, at the time the later of them arrived. This keeps
/// a 200 KiB frame written in 300 pieces from becoming 300 steps of the model (each a copy of a
/// growing buffer), and changes no judgement. The preface is not merged (each of its octets is
/// compared as it arrives), nor is anything after framing is lost.
fn atoms(log: &[WireEntry], not_reading: &[(u64, u64)], slack_ms: u64) -> Vec<Atom> {
    let latest = |t: u64| {
        not_reading
            .iter()
            .filter(|&&(a, b)| a <= t && t <= b)
            .map(|&(_, b)| b + slack_ms)
            .max()
            .unwrap_or(t)
    };
    let mut out = Vec::new();
    let mut framing = Framing::default();
    // Octets of the current segment not yet fed, and the stream offset of the first.
    let mut carry: Vec<u8> = Vec::new();
    let mut carry_from = 0u64;
    let flush = |out: &mut Vec<Atom>, carry: &mut Vec<u8>, from: u64, at_ms: u64| {
        if !carry.is_empty() {
            out.push(Atom {
                at_ms,
                latest_ms: latest(at_ms),
                offset: from,
                kind: AtomKind::Octets(std::mem::take(carry)),
                completes: None,
            });
        }
    };
    for e in log.iter().filter(|e| e.dir == Dir::ClientToServer) {
        if let Some(note) = &e.note {
            let kind = if note == notes::HALF_CLOSE {
                AtomKind::Eof
            } else if note.starts_with(notes::RESET) {
                AtomKind::Reset
            } else if note.starts_with(notes::SIGNAL) {
                AtomKind::Signal
            } else {
                continue;
            };
            flush(&mut out, &mut carry, carry_from, e.at_ms);
            out.push(Atom {
                at_ms: e.at_ms,
                latest_ms: latest(e.at_ms),
                offset: e.offset,
                kind,
                completes: None,
            });
            continue;
        }
        let Ok(bytes) = hex::decode(&e.hex) else {
            continue;
        };
        let mut at = 0;
        for (cut, completes) in framing.cuts(&bytes) {
            if carry.is_empty() {
                carry_from = e.offset + at as u64;
            }
            carry.extend_from_slice(&bytes[at..cut]);
            let from = carry_from;
            out.push(Atom {
                at_ms: e.at_ms,
                latest_ms: latest(e.at_ms),
                offset: from,
                kind: AtomKind::Octets(std::mem::take(&mut carry)),
                completes,
            });
            at = cut;
        }
        if at < bytes.len() {
            if carry.is_empty() {
                carry_from = e.offset + at as u64;
            }
            carry.extend_from_slice(&bytes[at..]);
            if !framing.mergeable() {
                flush(&mut out, &mut carry, carry_from, e.at_ms);
            }
        }
    }
    if let Some(last) = log.iter().rev().find(|e| e.dir == Dir::ClientToServer) {
        flush(&mut out, &mut carry, carry_from, last.at_ms);
    }
    out
}

/// Where frames end in the client's stream (as a server would frame it: 8 octets of preface,
/// then Length-prefixed frames; an impossible Length ends framing).
#[derive(Default)]
struct Framing {
    /// Octets of the stream seen.
    seen: u64,
    /// Stream offset where the next frame ends, once its Length is known.
    next_end: Option<u64>,
    /// The current frame's octets so far, up to the end of its header.
    head: Vec<u8>,
    /// Framing is over (a Length below 8).
    lost: bool,
}

impl Framing {
    /// Whether octets written now may wait for the next write (past the preface, framing
    /// intact).
    fn mergeable(&self) -> bool {
        !self.lost && self.seen > PREFACE.len() as u64
    }

    /// Cut points (indices into `chunk`, the last possibly `chunk.len()`) after which the
    /// preface or a frame is complete, with the type code and request ID of each frame.
    fn cuts(&mut self, chunk: &[u8]) -> Vec<(usize, Option<(u8, u32)>)> {
        let mut cuts = Vec::new();
        let preface = PREFACE.len() as u64;
        for (i, &b) in chunk.iter().enumerate() {
            let pos = self.seen;
            self.seen += 1;
            if self.lost || pos < preface {
                if self.seen == preface {
                    cuts.push((i + 1, None));
                }
                continue;
            }
            let in_header = self.head.len() < FRAME_OVERHEAD;
            if in_header {
                self.head.push(b);
            }
            if self.next_end.is_none() && self.head.len() == LENGTH_PREFIX_LEN {
                let length =
                    u32::from_be_bytes([self.head[0], self.head[1], self.head[2], self.head[3]]);
                if (length as usize) < FRAME_OVERHEAD - LENGTH_PREFIX_LEN {
                    self.lost = true;
                    cuts.push((i + 1, None));
                    continue;
                }
                self.next_end = Some(self.seen + u64::from(length));
                if self.next_end != Some(self.seen) {
                    // The Length is known: a server may refuse it now.
                    cuts.push((i + 1, None));
                }
            } else if in_header
                && self.head.len() == FRAME_OVERHEAD
                && self.next_end != Some(self.seen)
            {
                // The header is complete.
                cuts.push((i + 1, None));
            }
            if self.next_end == Some(self.seen) {
                let h = &self.head;
                let id = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                cuts.push((i + 1, Some((h[5], id))));
                self.next_end = None;
                self.head.clear();
            }
        }
        cuts
    }
}

type Frames = (
    Vec<Observed>,
    Option<(CloseKind, u64)>,
    Option<String>,
    Option<String>,
);

/// The server's frames, its end, and bytes that never framed.
fn frames(log: &[WireEntry]) -> Frames {
    let mut out = Vec::new();
    let mut close = None;
    let mut buf = BytesMut::new();
    // The limit of what the runner accepts from a server: the largest frame the spec permits.
    let mut dec = FrameDecoder::new(echowire_codec::frame::MAX_MAX_FRAME_SIZE);
    let mut garbage = None;
    for e in log.iter().filter(|e| e.dir == Dir::ServerToClient) {
        if let Some(note) = &e.note {
            if close.is_none() {
                if note == notes::FIN {
                    close = Some((CloseKind::Clean, e.at_ms));
                } else if note.starts_with(notes::RESET) {
                    close = Some((CloseKind::Reset, e.at_ms));
                }
            }
            continue;
        }
        if garbage.is_some() {
            continue;
        }
        let Ok(bytes) = hex::decode(&e.hex) else {
            continue;
        };
        buf.extend_from_slice(&bytes);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Observed {
                    at_ms: e.at_ms,
                    frame,
                }),
                Ok(None) => break,
                Err(err) => {
                    garbage = Some(format!("the server's octets do not frame: {err}"));
                    break;
                }
            }
        }
    }
    let partial = (garbage.is_none() && !buf.is_empty()).then(|| {
        format!(
            "{} octets of a frame that never completed: {}",
            buf.len(),
            crate::wire::partial(&buf)
        )
    });
    (out, close, garbage, partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_cut_at_frame_boundaries() {
        let mut f = Framing::default();
        let mut stream = PREFACE.to_vec();
        for len in [8u32, 12] {
            stream.extend_from_slice(&len.to_be_bytes());
            stream.extend(std::iter::repeat_n(0u8, len as usize));
        }
        let at = |cuts: Vec<(usize, Option<(u8, u32)>)>| -> Vec<usize> {
            cuts.into_iter().map(|(i, _)| i).collect()
        };
        // One write of everything: cuts after the preface, after each Length and header (where
        // a server may act), and after each frame.
        assert_eq!(at(f.cuts(&stream)), vec![8, 12, 20, 24, 32, 36]);
        // The same stream in two writes, the second starting inside the first frame.
        let mut f = Framing::default();
        assert_eq!(at(f.cuts(&stream[..10])), vec![8]);
        assert_eq!(at(f.cuts(&stream[10..])), vec![2, 10, 14, 22, 26]);
    }

    #[test]
    fn a_stop_while_not_reading_extends_the_period_from_the_first_stop() {
        // Fuzz seed 1796674989, session 13: the runner stopped reading at 0 ms, again at 33 ms
        // (which moved the end of the hold) and read again at 387 ms. Taking the period as
        // 33..387 made input written at 8..33 ms count as read at once, so the model held the
        // server to max_outstanding with responses it had queued but the runner had not read.
        let note = |at_ms: u64, n: String| WireEntry {
            at_ms,
            dir: Dir::ServerToClient,
            offset: 0,
            hex: String::new(),
            note: Some(n),
            at_us: 0,
        };
        let log = vec![
            note(0, format!("{} for 231 ms)", notes::STOP_READING)),
            note(33, format!("{} for 350 ms)", notes::STOP_READING)),
            note(387, notes::READING_AGAIN.into()),
            note(500, format!("{} for 10 ms)", notes::STOP_READING)),
        ];
        let o = Observation::from_log(&log, 600, 0);
        assert_eq!(o.not_reading, vec![(0, 387), (500, 600)]);
    }

    #[test]
    fn a_frame_written_in_pieces_is_fed_at_the_points_a_server_can_act() {
        // A 1000-octet body written 10 octets at a time: the preface, the Length, the header
        // and the rest of the frame, which is one atom at the time of its last write.
        let mut stream = PREFACE.to_vec();
        stream.extend_from_slice(&1008u32.to_be_bytes());
        stream.extend_from_slice(&[1, 0x10, 0, 0, 0, 0, 0, 1]);
        stream.extend(std::iter::repeat_n(7u8, 1000));
        let log: Vec<WireEntry> = stream
            .chunks(10)
            .enumerate()
            .map(|(k, c)| WireEntry {
                at_ms: k as u64,
                dir: Dir::ClientToServer,
                offset: 10 * k as u64,
                hex: hex::encode(c),
                note: None,
                at_us: 0,
            })
            .collect();
        let a = atoms(&log, &[], 0);
        let sizes: Vec<usize> = a
            .iter()
            .map(|a| match &a.kind {
                AtomKind::Octets(o) => o.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![8, 4, 8, 1000]);
        let last = a.last().expect("atoms");
        assert_eq!(last.completes, Some((0x10, 1)));
        assert_eq!(last.at_ms, (stream.len() as u64 - 1) / 10);
        assert_eq!(last.offset, 20);
    }
}
