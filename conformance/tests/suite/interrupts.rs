//! The runner in a user's CI: an interrupted run still writes every report it was asked for
//! (marked incomplete) and leaves no process behind; `--fail-fast`/`--max-failures` stop
//! starting cases; a target that is not an Echowire server stops the run with one line that
//! says what answered; a skip always says why.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use echowire_conformance::split::Strategy;
use echowire_conformance::target::TargetSpec;
use echowire_conformance::{Options, case, report};
use echowire_test_support::{json as validate_json, junit as validate_junit};

use crate::pyserver;
use crate::reports::byte_echo_server;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_echowire-conformance"))
}

/// Waits for `child` for at most `limit` (the test's own bound); kills it past that.
fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the runner did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each case's result for the run's only target (JSON `results` is keyed by target name).
fn only_target_results(j: &serde_json::Value) -> Vec<&serde_json::Value> {
    j["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["results"].as_object().and_then(|m| m.values().next()))
        .collect()
}

/// Whether process `pid` still exists (a zombie counts: nobody reaped it).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn an_interrupted_run_writes_every_report_and_leaves_no_process() {
    for (sig, name, code) in [
        (nix::sys::signal::Signal::SIGINT, "SIGINT", 130),
        (nix::sys::signal::Signal::SIGTERM, "SIGTERM", 143),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The target records its pid (the shell execs the server in its place).
        let template = format!(
            "sh -c 'echo $$ >> {}; exec {}'",
            pids.display(),
            pyserver::template("echowire_server.py")
        );
        let (json, junit, html) = (
            dir.path().join("r.json"),
            dir.path().join("r.xml"),
            dir.path().join("r.html"),
        );
        let mut child = bin()
            .arg("--exec")
            .arg(&template)
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .arg("--html")
            .arg(&html)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Progress on stderr: interrupt once a case has finished (the status line then has an
        // ETA).
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = Vec::new();
            let mut sent = false;
            let mut all = String::new();
            while r
                .read_until(b'\n', &mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let l = String::from_utf8_lossy(&line).to_string();
                all.push_str(&l);
                if !sent && l.starts_with("[progress]") && l.contains("ETA") {
                    let _ = tx.send(());
                    sent = true;
                }
                line.clear();
            }
            all
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a case finished within a minute");
        let started: Vec<u32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        assert!(!started.is_empty(), "the target recorded its pid");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
            sig,
        )
        .unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(20));
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(status.code(), Some(code), "{name}: exit code\n{out}");
        assert!(
            out.contains(&format!("INCOMPLETE: interrupted by {name}")),
            "{name}: the summary says the run is incomplete\n{out}"
        );
        // Every report requested, each valid and marked incomplete.
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        validate_json::validate(&j);
        assert_eq!(j["incomplete"], format!("interrupted by {name}"));
        assert_eq!(j["passed"], false);
        let results = only_target_results(&j);
        assert!(results.iter().any(|r| r["outcome"] == "pass"), "{name}");
        assert!(
            results.iter().any(|r| r["reason"]
                .as_str()
                .is_some_and(|x| x.starts_with("not run"))),
            "{name}: the cases not started say so"
        );
        let x = std::fs::read_to_string(&junit).unwrap();
        validate_junit::validate(&x);
        assert!(x.contains("INCOMPLETE"), "{name}");
        assert!(
            std::fs::read_to_string(&html)
                .unwrap()
                .contains("INCOMPLETE")
        );
        // No process the runner started survives it (bounded wait: reaping is the runner's).
        let deadline = Instant::now() + Duration::from_secs(5);
        while started.iter().any(|&p| exists(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in &started {
            assert!(
                !exists(*p),
                "{name}: target process {p} outlived the runner"
            );
        }
    }
}

/// A server that answers every connection with `reply` (after reading what arrives, if
/// `read_first`) and closes; or, with an empty reply, holds it open in silence.
fn canned_server(reply: &'static [u8]) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            if reply.is_empty() {
                held.push(s);
                continue;
            }
            let _ = s.write_all(reply);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut sink = [0u8; 1024];
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = s.read(&mut sink);
        }
    });
    addr
}

#[test]
fn a_target_that_is_not_an_echowire_server_stops_the_run_with_one_line() {
    for (addr, says) in [
        (
            canned_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            "an HTTP server answered: \"HTTP/1.1 400 Bad Request\"",
        ),
        (
            canned_server(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]),
            "a TLS server answered",
        ),
        (canned_server(b"SSH-2.0-OpenSSH_9.6\r\n"), "an SSH server"),
        (byte_echo_server(), "it echoes what it is sent"),
        (canned_server(b""), "it sent nothing in answer to a HELLO"),
        (
            canned_server(b"\x00\x00\x00\x02\x01\x01"),
            "its first octets cannot begin a frame (Length 2",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        let out = bin()
            .args(["--target", &addr.to_string(), "--quiet", "--timeout", "1s"])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{says}: exit code\n{stdout}");
        // The first line of the target's section is the diagnosis.
        let first = stdout
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or_default();
        assert!(
            first.contains("not an Echowire server") && first.contains(says),
            "{says}: {first}\n{stdout}"
        );
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        validate_json::validate(&j);
        assert!(
            j["targets"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains(says)),
            "{says}: {j}"
        );
        assert!(
            !stdout.contains("PASS") && !stdout.contains("FAIL "),
            "{says}: no case ran\n{stdout}"
        );
    }
    // --force runs the cases anyway (the reports then show what arrived, case by case).
    let addr = byte_echo_server();
    let out = bin()
        .args(["--target", &addr.to_string(), "--quiet", "--force"])
        .args(["--timeout", "500ms", "--splits", "whole", "--jobs", "1"])
        .args(["--case", "3.1-valid-preface"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("WARNING: handshake probe failed"),
        "{stdout}"
    );
    assert!(stdout.contains("3.1-valid-preface"), "{stdout}");
}

#[test]
fn fail_fast_and_max_failures_stop_starting_cases() {
    // A server that stays up and fails four of section 4.1's ten cases (it answers response
    // types sent to it as if they were unknown).
    let template = pyserver::template("mutants.py response-types-unknown");
    for (flags, reason) in [
        (vec!["--fail-fast"], "(--max-failures 1)"),
        (vec!["--max-failures", "2"], "(--max-failures 2)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        let out = bin()
            .args(["--exec", &template, "--quiet"])
            .args(["--splits", "whole", "--jobs", "1"])
            .args(["--section", "4.1"])
            .args(&flags)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{flags:?}\n{stdout}");
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        validate_json::validate(&j);
        assert!(
            j["incomplete"]
                .as_str()
                .is_some_and(|x| x.ends_with(reason)),
            "{flags:?}: {}",
            j["incomplete"]
        );
        let results = only_target_results(&j);
        let failed = results.iter().filter(|r| r["outcome"] == "fail").count();
        let not_run = results
            .iter()
            .filter(|r| {
                r["reason"]
                    .as_str()
                    .is_some_and(|x| x.starts_with("not run"))
            })
            .count();
        let max: usize = if flags.len() == 1 { 1 } else { 2 };
        // One job: no case starts once the limit is reached.
        assert_eq!(failed, max, "{flags:?}\n{stdout}");
        assert!(not_run > 0, "{flags:?}\n{stdout}");
        assert!(stdout.contains("INCOMPLETE"), "{stdout}");
    }
}

#[test]
fn every_skip_says_why_in_every_report() {
    // A network target: the runner cannot start it with other profiles or signal it.
    let server = echowire_server::Server::builder()
        .config(echowire_conformance::target::embedded_config(
            echowire_server::Model::Reactor,
            echowire_conformance::target::Profile::Default,
        ))
        .start()
        .expect("the reference server starts");
    let addr = server.tcp_addr().expect("TCP");
    let opts = Options {
        targets: vec![TargetSpec::Tcp(addr.to_string())],
        strategies: vec![Strategy::Whole],
        ..Options::default()
    };
    let cases = echowire_conformance::select(
        case::builtin(),
        &["3.4-small-length-4096-accepted".into(), "3.8-*".into()],
        &[],
        &[],
    );
    let report = echowire_conformance::run(cases, opts, &|_| {});
    let skipped: Vec<_> = report.targets[0]
        .results
        .iter()
        .zip(&report.cases)
        .filter(|(r, _)| r.outcome == echowire_conformance::verdict::Outcome::Skipped)
        .collect();
    assert!(!skipped.is_empty());
    let text = report::terminal::render(&report, false);
    let html = report::html::render(&report);
    let junit = report::junit::render(&report, false);
    validate_junit::validate(&junit);
    let json = report::json::render(&report);
    for (r, c) in skipped {
        let why = r.reason.as_deref().expect("a skip has a reason");
        let line = text
            .lines()
            .find(|l| l.contains(&c.id))
            .expect("the case is listed");
        assert!(
            line.contains(&format!("skipped: {why}")),
            "terminal, {}: {line}",
            c.id
        );
        assert!(html.contains(why), "HTML, {}", c.id);
        assert!(junit.contains(why), "JUnit, {}", c.id);
        assert!(json.to_string().contains(why), "JSON, {}", c.id);
    }
}

#[test]
fn the_command_line_names_targets_writes_to_stdout_and_documents_itself() {
    // --name, and `-` for a report: the JSON on stdout, the terminal report on stderr with the
    // full command in its header.
    let template = pyserver::template("echowire_server.py");
    let out = bin()
        .args(["--exec", &template, "--name", "py", "--quiet"])
        .args(["--case", "3.1-valid-preface", "--splits", "whole"])
        .args(["--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    validate_json::validate(&j);
    assert_eq!(j["cases"][0]["results"]["py"]["outcome"], "pass", "{j}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("== Target py ("), "{err}");
    assert!(err.contains(&format!("command: {template}")), "{err}");
    // Two reports cannot both take stdout.
    let out = bin()
        .args(["--json", "-", "--junit", "-", "--case", "3.1-valid-preface"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Without --name, a short name derived from the command.
    let out = bin()
        .args([
            "--exec",
            &template,
            "--quiet",
            "--case",
            "3.1-valid-preface",
        ])
        .args(["--splits", "whole"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("== Target exec:python3 echowire_server.py ("),
        "{text}"
    );
    // The runner's own diagnostics: --log (or RUST_LOG).
    let out = bin()
        .args(["--log", "info", "--quiet", "--case", "3.1-valid-preface"])
        .args(["--splits", "whole"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("handshake probe"), "{err}");
    let out = bin()
        .env("RUST_LOG", "echowire_conformance=debug")
        .args([
            "--quiet",
            "--case",
            "3.1-valid-preface",
            "--splits",
            "whole",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("case finished"), "{err}");
    // Completions, the manual page, and `client list` beside `list`.
    let bash = bin().args(["completions", "bash"]).output().unwrap();
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("echowire-conformance"));
    let man = bin().arg("man").output().unwrap();
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH echowire-conformance 1"), "{man}");
    assert!(
        man.contains("max\\-failures"),
        "every option is in the page"
    );
    let listed = bin().args(["client", "list"]).output().unwrap();
    assert!(listed.status.success());
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed
            .lines()
            .last()
            .unwrap_or_default()
            .ends_with("client cases"),
        "{listed}"
    );
    assert!(listed.contains("9.1-hello-fields"), "{listed}");
}
