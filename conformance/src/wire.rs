//! The decoded wire log: a run's raw log (every write and read, in order) turned into what an
//! implementer reads — per direction, the preface and each frame decoded (type, request ID,
//! flags, body fields), frames that never completed shown as partial ("9 of 12 header octets"),
//! and the octets in hex and ASCII with the boundaries of the writes or reads that carried them.
//!
//! Decoding here never trusts the bytes: a Length below 8 or a wrong preface ends framing for
//! that direction (the rest is shown raw), a huge Length claim is shown as a claim and never
//! allocated, and nothing here slices a string at a byte index.

use bytes::BytesMut;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{FRAME_OVERHEAD, FrameHeader, LENGTH_PREFIX_LEN, MessageType, PREFACE};
use echowire_codec::message::{self, DecodeContext, Message, Role};
use serde_json::{Value, json};

/// Direction of a wire-log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Dir {
    /// Client (runner) to server.
    #[serde(rename = "c2s")]
    ClientToServer,
    /// Server to client.
    #[serde(rename = "s2c")]
    ServerToClient,
}

/// One write or read.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WireEntry {
    /// Which way.
    pub dir: Dir,
    /// Milliseconds since the connection opened.
    pub at_ms: u64,
    /// Stream offset of the first byte.
    pub offset: u64,
    /// The octets written or read, hex (empty for a note).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hex: String,
    /// An event instead of octets: "FIN", "RST", "write error: ...", a signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Microseconds since the connection opened at which the octets began to move: a write's
    /// time *before* it was issued (`at_ms` is when it returned), a read's when it returned.
    /// The log is appended by a writer and a reader thread, so a response can be logged before
    /// the write that caused it; ordered by this, the entries are in causal order. Captures
    /// ([`crate::capture`]) use it; 0 where unknown (then `at_ms` is used).
    #[serde(skip)]
    pub at_us: u64,
}

/// The JSON form of a received frame (as in the vectors, plus `length`).
pub fn frame_json(frame: &echowire_codec::Frame, m: &Message) -> Value {
    let tagged = serde_json::to_value(m).unwrap_or(Value::Null);
    json!({
        "version": frame.header.version,
        "type": tagged["type"],
        "flags": frame.header.flags.0,
        "request_id": frame.header.request_id,
        "length": frame.header.length,
        "body": tagged["body"],
    })
}

/// Octets of a unit shown in hex (the rest is counted, not shown).
pub const SHOWN: usize = 48;
/// Octets of one frame kept for decoding; a larger frame is summarized from its header.
const KEEP: usize = 1 << 20;

/// What a line of the decoded log is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The client's 8-octet preface.
    Preface,
    /// A whole frame.
    Frame,
    /// Octets that never became a whole preface or frame.
    Partial,
    /// Octets that cannot be framed (after a wrong preface or an impossible Length).
    Raw,
    /// An event: end of stream, reset, write error, signal.
    Note,
}

/// One line of the decoded log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Item {
    /// Which way.
    pub dir: Dir,
    /// Milliseconds since the connection opened, when the unit's last octet moved.
    pub at_ms: u64,
    /// Stream offset of its first octet.
    pub offset: u64,
    /// Octets in it.
    pub octets: u64,
    /// How many writes (or reads) carried it.
    pub writes: usize,
    /// What it is.
    pub kind: Kind,
    /// The decoded summary (`ECHO v1 id=1 flags=0x0000 length=14 body={"payload":"6869"}`).
    pub text: String,
    /// The decoded frame (the vectors' JSON form), for whole frames that decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<Value>,
    /// The first [`SHOWN`] octets in hex, `|` between writes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hex: String,
    /// The same octets as ASCII (`.` for what is not printable).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ascii: String,
    /// Octets not shown.
    #[serde(skip_serializing_if = "is_zero")]
    pub more: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Decodes a run's log. Frames the runner received are decoded as a client decodes them, frames
/// it sent as a server does, in the version the server's WELCOME chose.
pub fn decode(wire: &[WireEntry]) -> Vec<Item> {
    let negotiated = negotiated(wire);
    let mut c2s = Stream::new(Dir::ClientToServer, negotiated);
    let mut s2c = Stream::new(Dir::ServerToClient, negotiated);
    let mut out = Vec::new();
    for e in wire {
        let s = match e.dir {
            Dir::ClientToServer => &mut c2s,
            Dir::ServerToClient => &mut s2c,
        };
        match &e.note {
            Some(note) => {
                s.flush_partial(&mut out);
                out.push(Item {
                    dir: e.dir,
                    at_ms: e.at_ms,
                    offset: e.offset,
                    octets: 0,
                    writes: 0,
                    kind: Kind::Note,
                    text: note.clone(),
                    frame: None,
                    hex: String::new(),
                    ascii: String::new(),
                    more: 0,
                });
            }
            None => {
                let bytes = hex::decode(&e.hex).unwrap_or_default();
                s.feed(&bytes, e.at_ms, &mut out);
            }
        }
    }
    c2s.flush_partial(&mut out);
    s2c.flush_partial(&mut out);
    out
}

/// The version and capabilities the server's WELCOME chose, if one arrived whole.
fn negotiated(wire: &[WireEntry]) -> Option<(u8, u32)> {
    let mut buf = BytesMut::new();
    for e in wire.iter().filter(|e| e.dir == Dir::ServerToClient) {
        buf.extend_from_slice(&hex::decode(&e.hex).unwrap_or_default());
        if buf.len() >= 64 * 1024 {
            break;
        }
    }
    let frame = FrameDecoder::new(64 * 1024).decode(&mut buf).ok()??;
    let ctx = DecodeContext {
        receiver: Role::Client,
        version: None,
        capabilities: 0,
    };
    match message::decode(&frame, &ctx) {
        Ok(Message::Welcome(w)) => Some((w.version, w.capabilities)),
        _ => None,
    }
}

/// One direction being decoded.
struct Stream {
    dir: Dir,
    negotiated: Option<(u8, u32)>,
    /// Stream offset of the current unit's first octet.
    start: u64,
    /// Octets of the current unit so far (only the first [`KEEP`] are kept).
    have: u64,
    kept: Vec<u8>,
    /// Octets each write contributed to the current unit (at most `SHOWN` entries matter).
    chunks: Vec<u64>,
    /// Total octets of the current unit, once known.
    need: Option<u64>,
    /// Framing is lost: every write is shown raw.
    lost: bool,
    /// The client stream starts with the preface.
    preface_pending: bool,
    /// When the last octet of this direction moved.
    last_at: u64,
}

impl Stream {
    fn new(dir: Dir, negotiated: Option<(u8, u32)>) -> Stream {
        Stream {
            dir,
            negotiated,
            start: 0,
            have: 0,
            kept: Vec::new(),
            chunks: Vec::new(),
            need: None,
            lost: false,
            preface_pending: dir == Dir::ClientToServer,
            last_at: 0,
        }
    }

    fn feed(&mut self, mut bytes: &[u8], at_ms: u64, out: &mut Vec<Item>) {
        self.last_at = at_ms;
        if self.lost {
            let n = bytes.len() as u64;
            out.push(self.item(
                Kind::Raw,
                at_ms,
                "octets that cannot be framed (framing was lost above)".into(),
                None,
                bytes,
                &[n],
            ));
            self.start += n;
            return;
        }
        while !bytes.is_empty() {
            let want = match (self.preface_pending, self.need) {
                (true, _) => PREFACE.len() as u64,
                (false, Some(n)) => n,
                (false, None) => LENGTH_PREFIX_LEN as u64,
            };
            let take = (want - self.have).min(bytes.len() as u64) as usize;
            let (now, rest) = bytes.split_at(take);
            bytes = rest;
            if self.kept.len() < KEEP {
                let room = KEEP - self.kept.len();
                self.kept.extend_from_slice(&now[..now.len().min(room)]);
            }
            self.have += take as u64;
            self.chunks.push(take as u64);
            if self.have < want {
                continue;
            }
            if self.preface_pending {
                self.preface_pending = false;
                if self.kept[..] == PREFACE {
                    self.emit(Kind::Preface, at_ms, "preface".into(), None, out);
                } else {
                    self.emit(
                        Kind::Raw,
                        at_ms,
                        "not the preface: the first 8 octets differ from it (3.1)".into(),
                        None,
                        out,
                    );
                    self.lost = true;
                    if !bytes.is_empty() {
                        self.feed(bytes, at_ms, out);
                    }
                    return;
                }
                continue;
            }
            if self.need.is_none() {
                let length = FrameHeader::peek_length(&self.kept).unwrap_or(0);
                if length < 8 {
                    self.emit(
                        Kind::Raw,
                        at_ms,
                        format!("Length {length}, below 8 (FRAME_TOO_SHORT): no frame boundary after it can be trusted"),
                        None,
                        out,
                    );
                    self.lost = true;
                    if !bytes.is_empty() {
                        self.feed(bytes, at_ms, out);
                    }
                    return;
                }
                self.need = Some(LENGTH_PREFIX_LEN as u64 + u64::from(length));
                continue;
            }
            let (text, frame) = self.decode_frame();
            self.emit(Kind::Frame, at_ms, text, frame, out);
        }
    }

    /// Decodes the whole frame in `kept`.
    fn decode_frame(&self) -> (String, Option<Value>) {
        let head = header_text(&self.kept);
        if self.have > self.kept.len() as u64 {
            return (
                format!("{head}; body of {} octets not decoded", self.have - 12),
                None,
            );
        }
        let mut buf = BytesMut::from(&self.kept[..]);
        let frame = match FrameDecoder::new(u32::MAX).decode(&mut buf) {
            Ok(Some(f)) => f,
            Ok(None) => return (format!("{head}; incomplete"), None),
            Err(e) => return (format!("{head}; {e}"), None),
        };
        let ty = frame.header.msg_type;
        let handshake = matches!(
            ty,
            MessageType::Hello | MessageType::Welcome | MessageType::Error
        );
        let (version, capabilities) = match self.negotiated {
            Some((v, c)) if !handshake => (Some(v), c),
            _ => (None, 0),
        };
        let ctx = DecodeContext {
            receiver: match self.dir {
                Dir::ClientToServer => Role::Server,
                Dir::ServerToClient => Role::Client,
            },
            version,
            capabilities,
        };
        match message::decode(&frame, &ctx) {
            Ok(m) => {
                let v = frame_json(&frame, &m);
                let body = crate::verdict::cut(&v["body"].to_string(), 200);
                (format!("{head} body={body}"), Some(v))
            }
            Err(e) => (format!("{head}; body not decodable: {e}"), None),
        }
    }

    fn emit(
        &mut self,
        kind: Kind,
        at_ms: u64,
        text: String,
        frame: Option<Value>,
        out: &mut Vec<Item>,
    ) {
        let kept = std::mem::take(&mut self.kept);
        let chunks = std::mem::take(&mut self.chunks);
        let mut item = self.item(kind, at_ms, text, frame, &kept, &chunks);
        item.octets = self.have;
        item.more = self.have.saturating_sub(SHOWN as u64);
        out.push(item);
        self.start += self.have;
        self.have = 0;
        self.need = None;
    }

    fn item(
        &self,
        kind: Kind,
        at_ms: u64,
        text: String,
        frame: Option<Value>,
        bytes: &[u8],
        chunks: &[u64],
    ) -> Item {
        let shown = &bytes[..bytes.len().min(SHOWN)];
        Item {
            dir: self.dir,
            at_ms,
            offset: self.start,
            octets: bytes.len() as u64,
            writes: chunks.len(),
            kind,
            text,
            frame,
            hex: grouped_hex(shown, chunks),
            ascii: ascii(shown),
            more: (bytes.len() as u64).saturating_sub(SHOWN as u64),
        }
    }

    /// The unit in progress, if any, as a partial item (the stream ended or was reset there).
    fn flush_partial(&mut self, out: &mut Vec<Item>) {
        if self.have == 0 {
            return;
        }
        let text = if self.preface_pending {
            format!("partial preface: {} of 8 octets", self.have)
        } else {
            format!("partial frame: {}", partial(&self.kept))
        };
        let at = self.last_at;
        let kept = std::mem::take(&mut self.kept);
        let chunks = std::mem::take(&mut self.chunks);
        let mut item = self.item(Kind::Partial, at, text, None, &kept, &chunks);
        item.octets = self.have;
        out.push(item);
        self.start += self.have;
        self.have = 0;
        self.need = None;
    }
}

/// A frame header in words, from as many of its 12 octets as there are.
fn header_text(b: &[u8]) -> String {
    let Some(h) = FrameHeader::peek(b) else {
        return partial(b);
    };
    let name = h.msg_type.name().map_or_else(
        || format!("type 0x{:02x}", h.msg_type.to_u8()),
        str::to_string,
    );
    format!(
        "{name} v{} id={} flags={:#06x} length={}",
        h.version, h.request_id, h.flags.0, h.length
    )
}

/// What the octets of a frame that has not completed amount to: "9 of 12 header octets
/// (Length 54)" — the words a failure uses for what did arrive.
pub fn partial(b: &[u8]) -> String {
    let n = b.len();
    let Some(length) = FrameHeader::peek_length(b) else {
        return format!("{n} of 4 Length octets");
    };
    let total = LENGTH_PREFIX_LEN as u64 + u64::from(length);
    if n < FRAME_OVERHEAD {
        return format!("{n} of 12 header octets (Length {length}, a frame of {total} octets)");
    }
    let head = header_text(&b[..FRAME_OVERHEAD]);
    format!(
        "{head}: {n} of its {total} octets ({} of {} body octets)",
        n - FRAME_OVERHEAD,
        u64::from(length).saturating_sub(8)
    )
}

/// Hex with a space between octets and ` | ` where one write ends and the next begins.
pub fn grouped_hex(bytes: &[u8], chunks: &[u64]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    let mut bounds = chunks.iter().scan(0u64, |acc, c| {
        *acc += c;
        Some(*acc)
    });
    let mut next = bounds.next();
    for (i, b) in bytes.iter().enumerate() {
        let i = i as u64;
        if i > 0 {
            while next.is_some_and(|n| n < i) {
                next = bounds.next();
            }
            out.push_str(if next == Some(i) { " | " } else { " " });
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Printable ASCII as itself, everything else as `.`.
pub fn ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

/// The octets of one direction, in order.
pub fn stream(wire: &[WireEntry], dir: Dir) -> Vec<u8> {
    let mut out = Vec::new();
    for e in wire.iter().filter(|e| e.dir == dir) {
        out.extend(hex::decode(&e.hex).unwrap_or_default());
    }
    out
}

/// Where offset `k` of the client stream falls, in words: "inside the Length field of frame 2
/// (ECHO, request ID 1)".
pub fn locate(stream: &[u8], k: u64) -> String {
    let mut at = 0u64;
    if stream.starts_with(&PREFACE) {
        if k < PREFACE.len() as u64 {
            return "inside the preface".into();
        }
        at = PREFACE.len() as u64;
        if k == at {
            return "between the preface and the first frame".into();
        }
    }
    let mut n = 0usize;
    loop {
        n += 1;
        let start = at as usize;
        let Some(length) = stream.get(start..).and_then(FrameHeader::peek_length) else {
            return format!("inside frame {n}, past what the stream holds");
        };
        let end = at + 4 + u64::from(length).max(8);
        let what = stream
            .get(start..)
            .and_then(FrameHeader::peek)
            .map(|h| format!("{}, request ID {}", h.msg_type, h.request_id))
            .unwrap_or_else(|| "incomplete".into());
        if k < end {
            let rel = k - at;
            const FIELDS: [(&str, u64); 6] = [
                ("Length", 0),
                ("Version", 4),
                ("Type", 5),
                ("Flags", 6),
                ("Request ID", 8),
                ("Body", 12),
            ];
            let mut inside = "Body";
            let mut boundary = None;
            for w in FIELDS.windows(2) {
                let ((a, sa), (b, sb)) = (w[0], w[1]);
                if rel == sb {
                    boundary = Some(format!("between the {a} and {b} fields"));
                    break;
                }
                if rel > sa && rel < sb {
                    inside = a;
                    break;
                }
            }
            let place = boundary.unwrap_or_else(|| format!("inside the {inside} field"));
            return format!("{place} of frame {n} ({what})");
        }
        at = end;
        if k == at {
            return format!("between frame {n} ({what}) and frame {}", n + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: Dir, offset: u64, bytes: &[u8]) -> WireEntry {
        WireEntry {
            dir,
            at_ms: 0,
            offset,
            hex: hex::encode(bytes),
            note: None,
            at_us: 0,
        }
    }

    fn echo(id: u32) -> Vec<u8> {
        let mut b = Vec::new();
        Message::<&[u8]>::Echo(message::Echo { payload: b"hi" })
            .encode(1, id, u32::MAX, &mut b)
            .unwrap();
        b
    }

    #[test]
    fn bytewise_writes_make_one_frame_line_with_write_boundaries() {
        let mut wire = vec![entry(Dir::ClientToServer, 0, &PREFACE)];
        let f = echo(7);
        for (i, b) in f.iter().enumerate() {
            wire.push(entry(Dir::ClientToServer, 8 + i as u64, &[*b]));
        }
        let items = decode(&wire);
        assert_eq!(items.len(), 2, "{items:#?}");
        assert_eq!(items[0].kind, Kind::Preface);
        assert_eq!(items[1].kind, Kind::Frame);
        assert_eq!(items[1].writes, f.len());
        assert!(
            items[1].text.starts_with("ECHO v1 id=7"),
            "{}",
            items[1].text
        );
        assert!(items[1].text.contains("6869"), "{}", items[1].text);
        assert!(
            items[1]
                .hex
                .starts_with(&format!("00 | 00 | 00 | {:02x} | 01", f.len() - 4)),
            "{}",
            items[1].hex
        );
    }

    #[test]
    fn partial_frames_say_how_far_they_got() {
        let f = echo(1);
        let wire = vec![
            entry(Dir::ServerToClient, 0, &f[..9]),
            WireEntry {
                dir: Dir::ServerToClient,
                at_ms: 1,
                offset: 9,
                hex: String::new(),
                note: Some("FIN".into()),
                at_us: 0,
            },
        ];
        let items = decode(&wire);
        assert_eq!(items[0].kind, Kind::Partial);
        assert!(
            items[0].text.contains("9 of 12 header octets"),
            "{}",
            items[0].text
        );
        assert_eq!(items[1].text, "FIN");
        assert_eq!(partial(&f[..2]), "2 of 4 Length octets");
    }

    #[test]
    fn impossible_lengths_and_wrong_prefaces_end_framing() {
        let items = decode(&[entry(Dir::ServerToClient, 0, &[0, 0, 0, 3, 1, 2, 3])]);
        assert!(items[0].text.contains("below 8"), "{items:?}");
        assert_eq!(items[1].kind, Kind::Raw);
        let items = decode(&[entry(Dir::ClientToServer, 0, b"GET / HTTP/1.1\r\n")]);
        assert!(items[0].text.contains("not the preface"), "{items:?}");
        assert_eq!(items[0].ascii, "GET / HT");
        let huge = decode(&[entry(Dir::ServerToClient, 0, &[0xff; 12])]);
        assert!(
            huge[0].text.contains("12 of its 4294967299 octets"),
            "{huge:?}"
        );
    }

    #[test]
    fn offsets_are_located_in_the_fields() {
        let mut s = PREFACE.to_vec();
        let n = echo(1).len() as u64;
        s.extend(echo(1));
        s.extend(echo(2));
        assert_eq!(locate(&s, 3), "inside the preface");
        assert_eq!(locate(&s, 8), "between the preface and the first frame");
        assert_eq!(
            locate(&s, 10),
            "inside the Length field of frame 1 (ECHO, request ID 1)"
        );
        assert_eq!(
            locate(&s, 13),
            "between the Version and Type fields of frame 1 (ECHO, request ID 1)"
        );
        assert_eq!(
            locate(&s, 8 + n),
            "between frame 1 (ECHO, request ID 1) and frame 2"
        );
        assert_eq!(
            locate(&s, 8 + n + 13),
            "inside the Body field of frame 2 (ECHO, request ID 2)"
        );
    }
}
