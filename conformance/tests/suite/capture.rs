//! `--pcap`: the captures hold exactly what each run exchanged, as TCP that reassembles, with
//! the case and verdict as comments; and (where tshark is installed; CI requires it) the
//! Wireshark dissector of spec/wireshark/ decodes a whole suite's captures with every response
//! linked to its request.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use echowire_conformance::capture::CaptureOptions;
use echowire_conformance::split::Strategy;
use echowire_conformance::target::TargetSpec;
use echowire_conformance::{Options, case};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::{Block, PcapNgReader};

use crate::reports::byte_echo_server;

/// One TCP segment read back from a capture.
#[derive(Debug)]
struct Segment {
    src_port: u16,
    dst_port: u16,
    syn: bool,
    payload: Vec<u8>,
    comment: Option<String>,
}

fn read(path: &Path) -> (Vec<String>, Vec<Segment>) {
    let data = std::fs::read(path).expect("the capture");
    let mut r = PcapNgReader::new(&data[..]).expect("a pcapng file");
    let mut section_comments = Vec::new();
    for o in &r.section().options {
        if let pcap_file::pcapng::blocks::section_header::SectionHeaderOption::Comment(c) = o {
            section_comments.push(c.to_string());
        }
    }
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        let Block::EnhancedPacket(p) = b.expect("a block") else {
            continue;
        };
        let s = etherparse::SlicedPacket::from_ip(&p.data).expect("an IPv4 packet");
        let Some(etherparse::TransportSlice::Tcp(t)) = s.transport else {
            panic!("not TCP")
        };
        let comment = p.options.iter().find_map(|o| match o {
            EnhancedPacketOption::Comment(c) => Some(c.to_string()),
            _ => None,
        });
        out.push(Segment {
            src_port: t.source_port(),
            dst_port: t.destination_port(),
            syn: t.syn(),
            payload: t.payload().to_vec(),
            comment,
        });
    }
    (section_comments, out)
}

#[test]
fn a_failing_case_is_captured_with_exactly_the_octets_of_its_failing_runs() {
    let addr = byte_echo_server();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        targets: vec![TargetSpec::Tcp(addr.to_string())],
        strategies: vec![Strategy::Whole, Strategy::Random(2)],
        timeout: Duration::from_millis(500),
        jobs: 2,
        force: true,
        liveness: false,
        shrink: false,
        capture: Some(CaptureOptions {
            dir: dir.path().to_path_buf(),
            all: false,
        }),
        ..Options::default()
    };
    let cases = echowire_conformance::select(case::builtin(), &["3.2-*".into()], &[], &[]);
    let report = echowire_conformance::run(cases, opts, &|_| {});
    let t = &report.targets[0];
    let mut checked = 0;
    for (case, r) in report.cases.iter().zip(&t.results) {
        let path = dir.path().join(format!("{}.pcapng", case.id));
        if r.failures.is_empty() {
            assert!(!path.exists(), "{}: passed, yet captured", case.id);
            continue;
        }
        let (about, segments) = read(&path);
        assert!(about[0].contains(&case.id), "{about:?}");
        // One connection per failing run, in order, its SYN commented with the case, split
        // and failure; the octets of each direction are the run's log, in order.
        let syns: Vec<&Segment> = segments
            .iter()
            .filter(|s| s.syn && s.dst_port == addr.port())
            .collect();
        assert_eq!(syns.len(), r.failures.len(), "{}", case.id);
        for (run, syn) in r.failures.iter().zip(&syns) {
            let comment = syn.comment.as_deref().unwrap_or("");
            assert!(
                comment.contains(&case.id) && comment.contains(&run.cut),
                "{comment}"
            );
            assert!(comment.contains("FAIL"), "{comment}");
            let client_port: u16 = run.local_addr.rsplit(':').next().unwrap().parse().unwrap();
            assert_eq!(syn.src_port, client_port);
            for (dir, from, to) in [
                (
                    echowire_conformance::wire::Dir::ClientToServer,
                    client_port,
                    addr.port(),
                ),
                (
                    echowire_conformance::wire::Dir::ServerToClient,
                    addr.port(),
                    client_port,
                ),
            ] {
                let logged = echowire_conformance::wire::stream(&run.wire, dir);
                let captured: Vec<u8> = segments
                    .iter()
                    .filter(|s| s.src_port == from && s.dst_port == to)
                    .flat_map(|s| s.payload.iter().copied())
                    .collect();
                assert_eq!(captured, logged, "{} {dir:?}", case.id);
                // A write is a segment: the client's segments are the log's writes.
                if dir == echowire_conformance::wire::Dir::ClientToServer {
                    let writes = run
                        .wire
                        .iter()
                        .filter(|e| e.dir == dir && !e.hex.is_empty())
                        .count();
                    let data = segments
                        .iter()
                        .filter(|s| s.src_port == from && s.dst_port == to && !s.payload.is_empty())
                        .count();
                    assert_eq!(data, writes, "{}", case.id);
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} failing runs captured");
}

#[test]
fn pcap_all_writes_every_case_that_ran_and_nothing_for_a_skipped_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_echowire-conformance"))
        .args(["--quiet", "--section", "3.6", "--splits", "whole,bytewise"])
        .arg("--pcap")
        .arg(dir.path().join("new"))
        .arg("--pcap-all")
        .arg("--json")
        .arg(dir.path().join("report.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One connection per run (the JSON report counts them), every one of them passing.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let cases = json["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let runs = c["results"]["embedded:reactor"]["runs"].as_u64().unwrap() as usize;
        let (_, segments) = read(&dir.path().join("new").join(format!("{id}.pcapng")));
        let syns: Vec<&Segment> = segments
            .iter()
            .filter(|s| s.syn && s.comment.is_some())
            .collect();
        assert_eq!(syns.len(), runs, "{id}");
        assert!(
            syns.iter()
                .all(|s| s.comment.as_deref().unwrap().ends_with(": passed")),
            "{id}"
        );
    }
    // The Wireshark dissector decodes them: every frame, every response linked to its request
    // (spec/wireshark/check.py with the real tshark; CI installs it).
    if echowire_test_support::tools::available("tshark") {
        let check = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../spec/wireshark/check.py"
            ))
            .arg("--capture")
            .arg(dir.path().join("new"))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    // A directory that cannot be made is refused before any case runs.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_echowire-conformance"))
        .args(["--quiet", "--section", "3.6", "--pcap"])
        .arg(file.join("sub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pcap"));
}
