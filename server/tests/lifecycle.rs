//! The server binary at the edges of its life (spec document 1.2, §3.8): socket activation, a
//! drain that meets a connection nobody serviced for a while, a HELLO that arrives after the
//! shutdown began, requests written just before it that must each be answered or refused, and
//! a blocking model that must not outlive its drain timeout.
//!
//! Every test starts the real binary, binds 127.0.0.1 port 0 (or receives a socket bound there),
//! and bounds every wait; the time bounds are derived from the timeouts the test configures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use echowire_codec::ErrorCode;
use echowire_codec::message::{self, Message};
use echowire_test_support::messages::*;
use echowire_test_support::sockets::*;

const BIN: &str = env!("CARGO_BIN_EXE_echowire-server");

/// The server started by `sh -c SCRIPT` (so the script can set `LISTEN_PID=$$` and arrange
/// descriptors before `exec`), with its output.
fn sh(script: &str) -> std::process::Output {
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("SERVER", BIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that wrongly starts (the bug) is killed, and its output then fails the
    // test's assertions instead of hanging it.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    rx.recv_timeout(WAIT).unwrap_or_else(|_| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!("{script}: the server did not exit within {WAIT:?}");
    })
}

#[test]
fn socket_activation_is_checked_before_any_descriptor_is_taken() {
    // Descriptor 3 closed in the script: before the fix, the server took its own signal pipe
    // for the "systemd socket", printed `listening on`, and SIGTERM no longer stopped it (this
    // test then ran into its time bound).
    let cases: &[(&str, &str)] = &[
        (
            "exec 3>&- 4>&-; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$SERVER\" --listen 127.0.0.1:0",
            "descriptor 3 is not open",
        ),
        (
            "exec 3>&- 4>&-; LISTEN_PID=$$ LISTEN_FDS=99999 exec \"$SERVER\" --listen 127.0.0.1:0",
            "LISTEN_FDS=\"99999\"",
        ),
        (
            "LISTEN_PID=$$ LISTEN_FDS=-1 exec \"$SERVER\" --listen 127.0.0.1:0",
            "LISTEN_FDS=\"-1\"",
        ),
        (
            "LISTEN_PID=$$ LISTEN_FDS=0 exec \"$SERVER\" --listen 127.0.0.1:0",
            "LISTEN_FDS=\"0\"",
        ),
        (
            "exec 3</dev/null; LISTEN_PID=1 LISTEN_FDS=1 exec \"$SERVER\" --listen 127.0.0.1:0",
            "is not this process",
        ),
        (
            "exec 3</dev/null; LISTEN_FDS=1 exec \"$SERVER\" --listen 127.0.0.1:0",
            "without LISTEN_PID",
        ),
        (
            "exec 3</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$SERVER\" --listen 127.0.0.1:0",
            "descriptor 3 is not a socket",
        ),
    ];
    for (script, says) in cases {
        let out = sh(script);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{script}: {err}");
        assert!(err.contains(says), "{script}: expected {says:?} in: {err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening on"),
            "{script}: listened anyway"
        );
    }
}

/// Starts the server with socket `kind` (made by Python on 127.0.0.1 port 0) as descriptor 3.
fn activated(kind: &str) -> Command {
    let make = match kind {
        "tcp" => "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()",
        "udp" => "s = socket.socket(type=socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))",
        "unlistened" => "s = socket.socket(); s.bind(('127.0.0.1', 0))",
        _ => unreachable!(),
    };
    let script = format!(
        "import os, socket, sys\n{make}\n\
         if s.fileno() != 3: os.dup2(s.fileno(), 3)\n\
         os.set_inheritable(3, True)\n\
         os.environ['LISTEN_PID'] = str(os.getpid()); os.environ['LISTEN_FDS'] = '1'\n\
         os.execv(sys.argv[1], sys.argv[1:])\n"
    );
    let mut c = Command::new("python3");
    c.args(["-c", &script, BIN, "--log", "info"]);
    c
}

#[test]
fn socket_activation_takes_only_listening_stream_sockets() {
    for (kind, says) in [
        ("udp", "descriptor 3 is a socket that is not listening"),
        (
            "unlistened",
            "descriptor 3 is a socket that is not listening",
        ),
    ] {
        let out = activated(kind).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{kind}: {err}");
        assert!(err.contains(says), "{kind}: {err}");
    }
    // A listening TCP socket is served, and SIGTERM still stops the server.
    let mut child = activated("tcp")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = listening_line(&mut child);
    let mut r = Reader::new(TcpStream::connect(&addr).unwrap());
    r.stream.set_read_timeout(Some(WAIT)).unwrap();
    r.send(&hello_bytes(1, 1));
    assert!(matches!(r.frame().1, Message::Welcome(_)));
    r.send(&frame(1, &Message::Ping(message::Ping { data: 3 }), 1));
    assert!(matches!(r.frame(), (1, Message::Pong(_))));
    terminate(&child);
    assert!(exit_status(&mut child, WAIT).success());
}

fn listening_line(child: &mut Child) -> String {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no listening line: {line:?}"))
        .to_string()
}

fn terminate(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

fn exit_status(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the server did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the binary with `args`; returns it, its address and its stderr (logs at info).
fn start(args: &[&str]) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--log", "info"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_line(&mut child);
    let err = BufReader::new(child.stderr.take().unwrap());
    (child, addr, err)
}

/// Reads the server's log until a line contains `what` (the rest keeps draining in a thread, so
/// the server never blocks on a full pipe).
fn wait_for_log(mut err: BufReader<ChildStderr>, what: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).unwrap();
        assert!(n > 0, "the server's log ended before {what:?}");
        if line.contains(what) {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
}

#[test]
fn a_hello_with_a_request_after_the_shutdown_began_gets_the_request_refused() {
    // Before document 1.2 the PING that came with the HELLO was dropped in all three models:
    // WELCOME, GOODBYE SHUTTING_DOWN, a clean close, and no answer.
    for model in ["reactor", "threaded", "blocking"] {
        let (mut child, addr, err) = start(&["--model", model]);
        let mut r = Reader::new(TcpStream::connect(&addr).unwrap());
        r.stream.set_read_timeout(Some(WAIT)).unwrap();
        r.send(&echowire_codec::PREFACE);
        std::thread::sleep(Duration::from_millis(100)); // accepted and in PREFACE/HANDSHAKE
        terminate(&child);
        wait_for_log(err, "shutting down gracefully");
        let mut write = hello(1, 1, 1 << 20, 0);
        write.extend(frame(1, &Message::Ping(message::Ping { data: 9 }), 9));
        r.send(&write); // one write: both frames arrive together
        assert!(
            matches!(r.frame().1, Message::Welcome(_)),
            "{model}: no WELCOME"
        );
        let mut seen = Vec::new();
        let end = loop {
            match r.next_frame() {
                Ok((id, m)) => seen.push((id, m.msg_type().to_string(), error_code(&m))),
                Err(e) => break e,
            }
        };
        seen.sort();
        // The PING is answered (read before the connection saw the shutdown) or refused.
        let answered = seen
            .get(1)
            .is_some_and(|(id, t, _)| *id == 9 && t == "PONG");
        if !answered {
            assert_eq!(
                seen,
                vec![
                    (0, "GOODBYE".into(), None),
                    (9, "ERROR".into(), Some(ErrorCode::SHUTTING_DOWN)),
                ],
                "{model}"
            );
        }
        assert_eq!(seen.len(), 2, "{model}: {seen:?}");
        assert_eq!(seen[0].1, "GOODBYE", "{model}: {seen:?}");
        assert_eq!(end, End::Eof, "{model}");
        assert!(exit_status(&mut child, WAIT).success(), "{model}");
    }
}

#[test]
fn a_connection_not_serviced_for_longer_than_the_drain_timeout_still_gets_its_drain() {
    // The client stops reading for longer than the drain timeout, then the server is told to
    // stop: the drain clock starts at the drain (spec §8.3), so the client still gets all that
    // was queued, a GOODBYE and a clean close, and the server exits 0. (The session-level test
    // `the_drain_clock_starts_at_the_drain_not_at_the_last_service` pins the clock itself.) With
    // the build before the fix (594a332) the drain deadline was already past when the drain
    // began, so the reactor reset the connection and exited 1 — when its timer check came before
    // the client had read everything: the client here waits half a second after the signal
    // before it reads (it stopped reading, and has not noticed the shutdown yet), which the
    // fixed server's drain (2 s from the signal) allows for and the old one did not.

    for model in ["reactor", "threaded"] {
        let (mut child, addr, err) = start(&["--model", model, "--drain-timeout", "2s"]);
        std::thread::spawn(move || {
            let mut err = err;
            std::io::copy(&mut err, &mut std::io::sink())
        });
        let mut r = Reader::new(TcpStream::connect(&addr).unwrap());
        r.stream.set_read_timeout(Some(WAIT)).unwrap();
        r.send(&hello_bytes(1, 1));
        assert!(matches!(r.frame().1, Message::Welcome(_)));
        // Requests until the server stops reading (its output to us is full), not read.
        r.stream
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let payload = vec![7u8; 60_000];
        let mut sent = 0u32;
        loop {
            let f = frame(1, &echo(&payload), sent + 1);
            match r.stream.write(&f) {
                Ok(n) if n == f.len() => sent += 1,
                _ => break, // blocked (perhaps mid-frame): the server stopped reading
            }
            assert!(sent < 100_000, "{model}: the server never pushed back");
        }
        std::thread::sleep(Duration::from_millis(5_000)); // longer than the drain timeout
        terminate(&child);
        std::thread::sleep(Duration::from_millis(500));
        let (mut replies, mut goodbye) = (0u32, false);
        let end = loop {
            match r.next_frame() {
                Ok((_, Message::EchoReply(_))) => replies += 1,
                Ok((_, Message::Goodbye(g))) => {
                    assert_eq!(g.code, ErrorCode::SHUTTING_DOWN);
                    goodbye = true;
                }
                Ok((_, m)) if error_code(&m) == Some(ErrorCode::SHUTTING_DOWN) => {}
                Ok((_, m)) => panic!("{model}: {m:?}"),
                Err(e) => break e,
            }
        };
        assert!(goodbye && replies > 0, "{model}: {replies} replies");
        assert_eq!(end, End::Eof, "{model}: the drain ended abortively");
        let status = exit_status(&mut child, WAIT);
        assert!(status.success(), "{model}: exit {status}");
    }
}

#[test]
fn every_request_written_before_the_signal_is_answered_or_refused_in_every_model() {
    // Eight clients each write the preface, HELLO and 200 ECHOs at once, then the server is
    // told to stop: every request gets its response or ERROR SHUTTING_DOWN, none is dropped
    // (document 1.2, §3.8), and the server exits 0. With the build before the fix (594a332)
    // this test failed 3 of 3 runs (the threaded model twice, the blocking model once: a
    // connection's 200 requests all unanswered, read with the HELLO after the drain began and
    // dropped); the issue saw the threaded model lose a request in 1 of 10 runs.
    const CONNECTIONS: usize = 8;
    const REQUESTS: u32 = 200;
    for model in ["reactor", "threaded", "blocking"] {
        let (mut child, addr, err) = start(&["--model", model, "--drain-timeout", "10s"]);
        std::thread::spawn(move || {
            let mut err = err;
            std::io::copy(&mut err, &mut std::io::sink())
        });
        let mut clients: Vec<Reader> = (0..CONNECTIONS)
            .map(|_| {
                let mut r = Reader::new(TcpStream::connect(&addr).unwrap());
                r.stream.set_read_timeout(Some(WAIT)).unwrap();
                let mut all = hello_bytes(1, 1);
                for id in 1..=REQUESTS {
                    all.extend_from_slice(&frame(1, &echo(b"payload!"), id));
                }
                r.send(&all);
                r
            })
            .collect();
        terminate(&child);
        for (k, r) in clients.iter_mut().enumerate() {
            let mut fate = std::collections::BTreeMap::new();
            let mut half_closed = false;
            let end = loop {
                // Every answer in: the client ends its side, so a server that serves one
                // connection at a time (blocking) need not linger for it.
                if fate.len() as u32 == REQUESTS && !half_closed {
                    r.stream.shutdown(std::net::Shutdown::Write).unwrap();
                    half_closed = true;
                }
                match r.next_frame() {
                    Ok((id, m)) if id != 0 => {
                        let refused = error_code(&m) == Some(ErrorCode::SHUTTING_DOWN);
                        assert!(
                            refused || matches!(m, Message::EchoReply(_)),
                            "{model}: connection {k}: {m:?}"
                        );
                        assert!(fate.insert(id, refused).is_none(), "{model}: {id} twice");
                    }
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert_eq!(end, End::Eof, "{model}: connection {k}");
            assert_eq!(
                fate.len() as u32,
                REQUESTS,
                "{model}: connection {k}: {} of {REQUESTS} requests got no answer",
                REQUESTS - fate.len() as u32
            );
        }
        assert!(exit_status(&mut child, WAIT).success(), "{model}");
    }
}

#[test]
fn the_blocking_model_does_not_outlive_its_drain_timeout() {
    // One connection holds long COMPUTEs; ten more wait in the accept queue and never close
    // their side. Before the fix every queued connection got a drain timeout and a lingering
    // close of its own after the first one's drain: the server exited long after its drain
    // timeout (37-41 s for 30 s), and with status 0.
    let drain = Duration::from_secs(2);
    let (mut child, addr, err) = start(&[
        "--model",
        "blocking",
        "--drain-timeout",
        "2s",
        "--workers",
        "1",
    ]);
    let mut busy = Reader::new(TcpStream::connect(&addr).unwrap());
    busy.stream.set_read_timeout(Some(WAIT)).unwrap();
    busy.send(&hello_bytes(1, 1));
    assert!(matches!(busy.frame().1, Message::Welcome(_)));
    for id in 1..=4 {
        // The largest cost, four times on one worker: more work than the drain timeout allows.
        busy.send(&frame(1, &compute(1 << 24), id));
    }
    let queued: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(&hello_bytes(1, 1)).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // the COMPUTE is running
    let signalled = Instant::now();
    terminate(&child);
    wait_for_log(err, "shutting down gracefully");
    // The margin covers a loaded machine; the bug took one lingering close per queued client.
    let status = exit_status(&mut child, drain + Duration::from_secs(6));
    let took = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(1),
        "a drain that expired with work outstanding is exit 1 ({took:?})"
    );
    // What the queued clients saw: nothing processed (no WELCOME) or a WELCOME and a GOODBYE.
    for mut s in queued {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
}

#[test]
fn sighup_is_logged_and_ignored_and_logs_follow_one_connection() {
    // Before, SIGHUP killed the server at once (status 129, no drain, no log line), and a
    // connection's close line named no peer it could be matched by.
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log",
            "warn",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "echowire_server=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_line(&mut child);
    let err = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let mut r = Reader::new(TcpStream::connect(&addr).unwrap());
    r.stream.set_read_timeout(Some(WAIT)).unwrap();
    r.send(&hello_bytes(1, 1));
    assert!(
        matches!(r.frame().1, Message::Welcome(_)),
        "served after SIGHUP"
    );
    r.send(&frame(1, &goodbye_msg(), 0));
    while r.next_frame().is_ok() {}
    terminate(&child);
    assert!(exit_status(&mut child, WAIT).success());
    let lines = lines.join().unwrap();
    let json: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let message = |v: &serde_json::Value| v["fields"]["message"].as_str().unwrap_or("").to_string();
    assert!(
        json.iter()
            .any(|v| message(v).starts_with("SIGHUP ignored")),
        "no SIGHUP line in {lines:?}"
    );
    // RUST_LOG added debug lines to --log warn: the open and the close of our connection,
    // carrying the same `conn`, the open one its peer.
    let our = r.stream.local_addr().unwrap().to_string();
    let open = json
        .iter()
        .find(|v| message(v) == "connection open" && v["fields"]["peer"] == our.as_str())
        .unwrap_or_else(|| panic!("no open line for {our} in {lines:?}"));
    let conn = open["fields"]["conn"].as_u64().expect("conn number");
    assert!(
        json.iter().any(
            |v| message(v) == "connection closed" && v["fields"]["conn"].as_u64() == Some(conn)
        ),
        "no close line for conn {conn} in {lines:?}"
    );
}

fn goodbye_msg() -> Message {
    Message::Goodbye(message::Goodbye {
        code: ErrorCode::NO_ERROR,
        message: "".into(),
    })
}
