//! Packet captures of runs: each run's exchange as a pcapng file, to open in Wireshark or
//! `tshark` with the Echowire dissector (`spec/wireshark/echowire.lua`).
//!
//! The runner does not sniff packets: that needs privileges, and would show the kernel's
//! segments rather than what the runner did. It *synthesizes* the packets from the wire log
//! every run keeps, so a capture shows exactly what the verdict was judged on:
//!
//! * one TCP/IPv4 connection per run, on loopback (`127.0.0.1`), client port as the runner's
//!   socket had it, server port as the target's (`7878`, the reference server's default, for a
//!   Unix-domain socket, which has no ports: the dissector's default port then finds it);
//! * a three-way handshake when the connection opened, then one segment per write of the runner
//!   (the real write boundaries the split strategy chose: a `bytewise` run is one segment per
//!   octet) and one per read (what the kernel delivered to the runner in one read), a write at
//!   the time it began and a read at the time it returned (microseconds), in that order, so a
//!   response never precedes its request; cut at 65,000 octets where a write was larger;
//! * FIN and RST where the log has them (the runner's half-close or abort, the server's end of
//!   stream or reset); a stream the log does not show (a flood's replies, "not shown") leaves a
//!   gap in the sequence numbers, which Wireshark reports as missing segments, as it should;
//! * sequence and acknowledgment numbers derived from the stream offsets, so Wireshark
//!   reassembles; an acknowledgment says what the other side had *sent*, not what it read
//!   (the runner cannot know what the server read).
//!
//! Every note of the log without a TCP meaning (the runner stops or resumes reading, a signal to
//! the target, a write error) becomes the comment of the next packet; the case, the verdict, the
//! split and the failure are the comment of each connection's SYN, and the section header says
//! which runner wrote the file.
//!
//! Nothing here hand-writes a file format or a header: `pcap-file` writes the pcapng blocks and
//! `etherparse` the IPv4 and TCP headers (with their checksums).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};

use crate::CaseResult;
use crate::case::Case;
use crate::exec::RunResult;
use crate::oracle::observe::notes;
use crate::wire::{Dir, WireEntry};

/// The server port of a capture of a Unix-domain socket (the reference server's default TCP
/// port, which the dissector decodes by default).
pub const UNIX_PORT: u16 = 7878;

/// The largest TCP payload of one synthesized segment (an IPv4 packet is at most 65,535 octets).
pub const MAX_SEGMENT: usize = 65_000;

/// Which runs `--pcap` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureOptions {
    /// The directory the files go to (created if missing).
    pub dir: PathBuf,
    /// Every case (`--pcap-all`), not only the failing ones.
    pub all: bool,
}

/// One connection of a capture.
#[derive(Clone, Debug)]
pub struct Conversation<'a> {
    /// The run's wire log.
    pub wire: &'a [WireEntry],
    /// When the connection opened (the log's times are milliseconds since then).
    pub started: SystemTime,
    /// The runner's end (`ip:port` of a TCP socket; anything else, e.g. a Unix socket, gets a
    /// synthesized port).
    pub client: &'a str,
    /// The server's end, as `client`.
    pub server: &'a str,
    /// The comment of the connection's first packet (case, verdict, split, failure).
    pub comment: String,
}

impl<'a> Conversation<'a> {
    /// The connection of one run, with the comment of its first packet.
    pub fn of(run: &'a RunResult, comment: String) -> Self {
        Conversation {
            wire: &run.wire,
            started: run.started.unwrap_or(SystemTime::UNIX_EPOCH),
            client: &run.local_addr,
            server: &run.peer_addr,
            comment,
        }
    }
}

/// Writes `conversations` to `path` as one pcapng file (raw IPv4 packets, one interface).
/// `about` is the section's comment (which runner, which target).
pub fn write(path: &Path, about: &str, conversations: &[Conversation<'_>]) -> io::Result<()> {
    let file = BufWriter::new(File::create(path)?);
    let section = SectionHeaderBlock {
        options: vec![
            SectionHeaderOption::UserApplication(Cow::Owned(format!(
                "echowire-conformance {}",
                env!("CARGO_PKG_VERSION")
            ))),
            SectionHeaderOption::Comment(Cow::Owned(about.to_string())),
        ],
        ..SectionHeaderBlock::default()
    };
    let mut w = PcapNgWriter::with_section_header(file, section).map_err(io::Error::other)?;
    let mut interface = InterfaceDescriptionBlock::new(DataLink::IPV4, 0);
    interface.options = vec![
        InterfaceDescriptionOption::IfName(Cow::Borrowed(
            "echowire-conformance (synthesized loopback)",
        )),
        // pcap-file writes an enhanced packet's timestamp in nanoseconds whatever the
        // interface says, and pcapng's default resolution is microseconds: say nanoseconds
        // (10^-9), or every time is read a thousand times too late.
        InterfaceDescriptionOption::IfTsResol(9),
    ];
    w.write_pcapng_block(interface).map_err(io::Error::other)?;
    for (k, c) in conversations.iter().enumerate() {
        for p in packets(c, k) {
            let mut options = Vec::new();
            if !p.comment.is_empty() {
                options.push(EnhancedPacketOption::Comment(Cow::Owned(p.comment)));
            }
            let block = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: p.timestamp,
                original_len: p.data.len() as u32,
                data: Cow::Owned(p.data),
                options,
            };
            w.write_pcapng_block(block).map_err(io::Error::other)?;
        }
    }
    use std::io::Write as _;
    w.into_inner().flush()
}

/// Writes the capture of one case's result if `opts` asks for it: a failing case's failing runs
/// (at most three are kept), or with [`CaptureOptions::all`] every run of every case that ran
/// (taken from [`CaseResult::captured`], which is emptied). The file is `DIR/CASE.pcapng`, or
/// `DIR/TARGET--CASE.pcapng` when `named` (a run against several targets). A file that cannot
/// be written is reported on standard error and in the log, and the run goes on: a capture is
/// an aid, not a verdict.
pub fn write_case(
    opts: &CaptureOptions,
    named: bool,
    case: &Case,
    target: &str,
    r: &mut CaseResult,
) -> Option<PathBuf> {
    let kept = std::mem::take(&mut r.captured);
    let runs: &[RunResult] = if opts.all { &kept } else { &r.failures };
    if runs.is_empty() {
        return None;
    }
    let outcome = r.outcome.label();
    let conversations: Vec<Conversation<'_>> = runs
        .iter()
        .map(|run| {
            let comment = match &run.failure {
                Some(f) => format!(
                    "{} under {}: {outcome}: step {}: expected {}; observed {}",
                    case.id,
                    run.cut,
                    f.step + 1,
                    crate::verdict::cut(&f.expected, 300),
                    crate::verdict::cut(&f.observed, 300)
                ),
                None => format!("{} under {}: passed", case.id, run.cut),
            };
            Conversation::of(run, comment)
        })
        .collect();
    let about = format!(
        "Echowire conformance case {} (section {}: {}) against {target}: {outcome}",
        case.id, case.section, case.title
    );
    let path = opts.dir.join(file_name(named.then_some(target), &case.id));
    match write(&path, &about, &conversations) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot write the capture");
            eprintln!("cannot write the capture {}: {e}", path.display());
            None
        }
    }
}

/// One synthesized packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Since the Unix epoch.
    pub timestamp: Duration,
    /// The IPv4 packet (header, TCP header, payload).
    pub data: Vec<u8>,
    /// The packet's comment (may be empty).
    pub comment: String,
}

/// The port of `addr` (`ip:port`), or a synthesized one (`40000 + k`) for an address without
/// one (a Unix socket, a run that never connected).
fn port(addr: &str, fallback: u16) -> u16 {
    addr.parse::<SocketAddr>()
        .map(|a| a.port())
        .unwrap_or(fallback)
}

/// What a packet is, besides its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Syn,
    SynAck,
    Ack,
    Data,
    Fin,
    Rst,
}

/// The state of one synthesized connection: ports, initial sequence numbers, and how far each
/// side has sent (stream offsets; a FIN takes one sequence number).
#[derive(Debug)]
struct Synth {
    client_port: u16,
    server_port: u16,
    isn_c: u32,
    isn_s: u32,
    base: Duration,
    c_next: u64,
    s_next: u64,
    c_fin: bool,
    s_fin: bool,
    out: Vec<Packet>,
}

impl Synth {
    /// The sequence number of stream offset `offset` of a side.
    fn seq(isn: u32, offset: u64, fin_before: bool) -> u32 {
        isn.wrapping_add(1)
            .wrapping_add(offset as u32)
            .wrapping_add(u32::from(fin_before))
    }

    fn emit(
        &mut self,
        from_client: bool,
        kind: Kind,
        offset: u64,
        payload: &[u8],
        at_us: u64,
        comment: String,
    ) {
        let (src, dst, my_isn, ack) = if from_client {
            let ack = Self::seq(self.isn_s, self.s_next, self.s_fin);
            (self.client_port, self.server_port, self.isn_c, ack)
        } else {
            let ack = Self::seq(self.isn_c, self.c_next, self.c_fin);
            (self.server_port, self.client_port, self.isn_s, ack)
        };
        let lo = Ipv4Addr::LOCALHOST.octets();
        let b = PacketBuilder::ipv4(lo, lo, 64);
        let seq = Self::seq(my_isn, offset, false);
        let b = match kind {
            Kind::Syn => b.tcp(src, dst, my_isn, 65_535).syn(),
            Kind::SynAck => b.tcp(src, dst, my_isn, 65_535).syn().ack(ack),
            Kind::Ack => b.tcp(src, dst, seq, 65_535).ack(ack),
            Kind::Data => b.tcp(src, dst, seq, 65_535).ack(ack).psh(),
            Kind::Fin => b.tcp(src, dst, seq, 65_535).fin().ack(ack),
            Kind::Rst => b.tcp(src, dst, seq, 0).rst().ack(ack),
        };
        let mut data = Vec::with_capacity(b.size(payload.len()));
        // Writing into a Vec fails only for a payload too large for one IPv4 packet, which the
        // callers cut at MAX_SEGMENT.
        if b.write(&mut data, payload).is_err() {
            return;
        }
        self.out.push(Packet {
            timestamp: self.base + Duration::from_micros(at_us),
            data,
            comment,
        });
    }
}

/// The packets of conversation `c`, the `k`-th of its file.
pub fn packets(c: &Conversation<'_>, k: usize) -> Vec<Packet> {
    let mut s = Synth {
        client_port: port(c.client, 40_000u16.wrapping_add(k as u16)),
        server_port: port(c.server, UNIX_PORT),
        // Fixed, distinct initial sequence numbers: captures of the same run compare equal.
        isn_c: 0x1000_0000u32.wrapping_add((k as u32).wrapping_mul(0x0010_0000)),
        isn_s: 0x8000_0000u32.wrapping_add((k as u32).wrapping_mul(0x0010_0000)),
        base: c
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
        c_next: 0,
        s_next: 0,
        c_fin: false,
        s_fin: false,
        out: Vec::new(),
    };
    s.emit(true, Kind::Syn, 0, &[], 0, c.comment.clone());
    s.emit(false, Kind::SynAck, 0, &[], 0, String::new());
    s.emit(true, Kind::Ack, 0, &[], 0, String::new());
    let mut notes_pending: Vec<String> = Vec::new();
    // The log is appended by a writer and a reader thread, each entry when its call returned:
    // a response can be logged before the write that caused it. Ordered by when each write
    // began and each read returned (`WireEntry::at_us`), the packets are in causal order; the
    // sort is stable, so entries of the same time keep the log's order.
    let time_us = |e: &WireEntry| {
        if e.at_us > 0 { e.at_us } else { e.at_ms * 1000 }
    };
    let mut wire: Vec<&WireEntry> = c.wire.iter().collect();
    wire.sort_by_key(|e| time_us(e));
    let mut last_us = 0u64;
    for e in wire {
        let at = time_us(e).max(last_us);
        last_us = at;
        let from_client = e.dir == Dir::ClientToServer;
        if let Some(note) = &e.note {
            let kind = if from_client && note == notes::HALF_CLOSE {
                Some(Kind::Fin)
            } else if note.starts_with(notes::RESET) {
                // The runner's abort is logged on its side, a reset it saw on the server's.
                Some(Kind::Rst)
            } else if !from_client && note == notes::FIN {
                Some(Kind::Fin)
            } else {
                None
            };
            let Some(kind) = kind else {
                notes_pending.push(note.clone());
                continue;
            };
            let offset = if from_client { s.c_next } else { s.s_next };
            let comment = std::mem::take(&mut notes_pending).join("; ");
            s.emit(from_client, kind, offset, &[], at, comment);
            if kind == Kind::Fin {
                if from_client {
                    s.c_fin = true;
                } else {
                    s.s_fin = true;
                }
            }
            continue;
        }
        let Ok(bytes) = hex::decode(&e.hex) else {
            notes_pending.push(format!("(octets not shown: {} hex digits)", e.hex.len()));
            continue;
        };
        for (i, chunk) in bytes.chunks(MAX_SEGMENT).enumerate() {
            let offset = e.offset + (i * MAX_SEGMENT) as u64;
            let end = offset + chunk.len() as u64;
            let comment = std::mem::take(&mut notes_pending).join("; ");
            s.emit(from_client, Kind::Data, offset, chunk, at, comment);
            if from_client {
                s.c_next = s.c_next.max(end);
            } else {
                s.s_next = s.s_next.max(end);
            }
        }
    }
    if !notes_pending.is_empty() {
        // Notes after the last packet: an acknowledgment from the runner carries them.
        let offset = s.c_next;
        s.emit(
            true,
            Kind::Ack,
            offset,
            &[],
            last_us,
            notes_pending.join("; "),
        );
    }
    s.out
}

/// A file name from a case ID and a target name: what is not `[A-Za-z0-9._-]` becomes `_`.
pub fn file_name(target: Option<&str>, case: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    match target {
        Some(t) => format!("{}--{}.pcapng", clean(t), clean(case)),
        None => format!("{}.pcapng", clean(case)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: Dir, at_ms: u64, offset: u64, bytes: &[u8], note: Option<&str>) -> WireEntry {
        WireEntry {
            dir,
            at_ms,
            offset,
            hex: hex::encode(bytes),
            note: note.map(str::to_string),
            at_us: 0,
        }
    }

    /// (source port, seq, ack, flags as "SAFRP", payload, comment) of each packet, parsed back
    /// with etherparse.
    fn parse(p: &[Packet]) -> Vec<(u16, u32, u32, String, Vec<u8>, String)> {
        p.iter()
            .map(|p| {
                let s = etherparse::SlicedPacket::from_ip(&p.data).expect("an IPv4 packet");
                let Some(etherparse::TransportSlice::Tcp(t)) = s.transport else {
                    panic!("not TCP")
                };
                let mut flags = String::new();
                for (on, c) in [
                    (t.syn(), 'S'),
                    (t.ack(), 'A'),
                    (t.fin(), 'F'),
                    (t.rst(), 'R'),
                    (t.psh(), 'P'),
                ] {
                    if on {
                        flags.push(c);
                    }
                }
                (
                    t.source_port(),
                    t.sequence_number(),
                    t.acknowledgment_number(),
                    flags,
                    t.payload().to_vec(),
                    p.comment.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_run_becomes_a_consistent_tcp_connection() {
        let wire = vec![
            entry(Dir::ClientToServer, 0, 0, b"abc", None),
            entry(Dir::ClientToServer, 1, 3, b"de", None),
            entry(
                Dir::ServerToClient,
                5,
                0,
                &[],
                Some("(the runner stops reading for 5 ms)"),
            ),
            entry(Dir::ServerToClient, 7, 0, b"XYZ", None),
            entry(Dir::ClientToServer, 8, 5, &[], Some(notes::HALF_CLOSE)),
            entry(Dir::ServerToClient, 9, 3, &[], Some(notes::FIN)),
        ];
        let c = Conversation {
            wire: &wire,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
            client: "127.0.0.1:5555",
            server: "127.0.0.1:7000",
            comment: "case x: FAIL".into(),
        };
        let p = packets(&c, 0);
        let got = parse(&p);
        let (ci, si) = (0x1000_0000u32, 0x8000_0000u32);
        let want = vec![
            (
                5555,
                ci,
                0,
                "S".to_string(),
                vec![],
                "case x: FAIL".to_string(),
            ),
            (7000, si, ci + 1, "SA".into(), vec![], String::new()),
            (5555, ci + 1, si + 1, "A".into(), vec![], String::new()),
            (
                5555,
                ci + 1,
                si + 1,
                "AP".into(),
                b"abc".to_vec(),
                String::new(),
            ),
            (
                5555,
                ci + 4,
                si + 1,
                "AP".into(),
                b"de".to_vec(),
                String::new(),
            ),
            (
                7000,
                si + 1,
                ci + 6,
                "AP".into(),
                b"XYZ".to_vec(),
                "(the runner stops reading for 5 ms)".into(),
            ),
            (5555, ci + 6, si + 4, "AF".into(), vec![], String::new()),
            (7000, si + 4, ci + 7, "AF".into(), vec![], String::new()),
        ];
        assert_eq!(got, want);
        // Timestamps: the connection's start plus each entry's time, never going backwards.
        let ms: Vec<u128> = p
            .iter()
            .map(|p| p.timestamp.as_millis() - 1_000_000)
            .collect();
        assert_eq!(ms, vec![0, 0, 0, 0, 1, 7, 8, 9]);
    }

    #[test]
    fn a_response_logged_before_its_request_is_put_after_it() {
        // The reader logged the reply (returned at 2.1 ms) before the writer logged the request
        // (issued at 1.9 ms, returned at 2.3 ms): the capture shows the request first.
        let mut reply = entry(Dir::ServerToClient, 2, 0, b"reply", None);
        reply.at_us = 2_100;
        let mut request = entry(Dir::ClientToServer, 2, 0, b"request", None);
        request.at_us = 1_900;
        let wire = vec![reply, request];
        let c = Conversation {
            wire: &wire,
            started: SystemTime::UNIX_EPOCH,
            client: "127.0.0.1:1",
            server: "127.0.0.1:2",
            comment: String::new(),
        };
        let p = packets(&c, 0);
        let got = parse(&p);
        assert_eq!(got[3].4, b"request");
        assert_eq!(got[4].4, b"reply");
        assert_eq!(p[3].timestamp, Duration::from_micros(1_900));
        assert_eq!(p[4].timestamp, Duration::from_micros(2_100));
    }

    #[test]
    fn a_large_write_is_cut_and_a_unix_socket_gets_ports() {
        let big = vec![7u8; MAX_SEGMENT + 10];
        let wire = vec![entry(Dir::ClientToServer, 2, 0, &big, None)];
        let c = Conversation {
            wire: &wire,
            started: SystemTime::UNIX_EPOCH,
            client: "unix (unnamed)",
            server: "unix:/tmp/x.sock",
            comment: String::new(),
        };
        let got = parse(&packets(&c, 3));
        assert_eq!(got.len(), 5);
        assert_eq!(got[3].0, 40_003);
        assert_eq!(got[1].0, UNIX_PORT);
        assert_eq!(got[3].4.len(), MAX_SEGMENT);
        assert_eq!(got[4].4.len(), 10);
        assert_eq!(got[4].1, got[3].1 + MAX_SEGMENT as u32);
    }

    #[test]
    fn the_file_is_pcapng_that_reads_back() {
        let wire = vec![
            entry(Dir::ClientToServer, 0, 0, b"hello", None),
            entry(Dir::ServerToClient, 1, 0, b"world", None),
        ];
        let c = Conversation {
            wire: &wire,
            started: SystemTime::now(),
            client: "127.0.0.1:1",
            server: "127.0.0.1:2",
            comment: "first".into(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(file_name(Some("exec: a b"), "2.2/x y"));
        assert!(path.ends_with("exec__a_b--2.2_x_y.pcapng"));
        write(&path, "about", &[c.clone(), c]).expect("written");
        let data = std::fs::read(&path).expect("read");
        let mut r = pcap_file::pcapng::PcapNgReader::new(&data[..]).expect("a pcapng file");
        let mut packets = 0;
        let mut comments = Vec::new();
        while let Some(b) = r.next_block() {
            if let pcap_file::pcapng::Block::EnhancedPacket(p) = b.expect("a block") {
                packets += 1;
                for o in p.options {
                    if let EnhancedPacketOption::Comment(c) = o {
                        comments.push(c.to_string());
                    }
                }
            }
        }
        assert_eq!(packets, 10);
        assert_eq!(comments, vec!["first", "first"]);
    }
}
