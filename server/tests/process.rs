//! Tests of the server as a process and of its Unix-socket handling.

use echowire_test_support::tools;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use echowire_codec::ErrorCode;
use echowire_codec::client::Client;
use echowire_codec::message::{self, Message};
use echowire_server::{Model, Server};
use echowire_test_support::messages::*;
use echowire_test_support::sockets::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_echowire-server"))
}

/// Spawns the server command and waits for its first `listening on ADDR` line.
fn spawn_listening(cmd: &mut Command) -> (std::process::Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_string();
    (child, addr)
}

#[test]
fn sigterm_with_requests_in_flight_answers_everything_and_exits_0() {
    for model in ["reactor", "threaded"] {
        let (mut child, addr) = spawn_listening(
            bin()
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--model",
                    model,
                    "--workers",
                    "1",
                    "--log",
                    "warn",
                ])
                .stderr(Stdio::inherit()),
        );
        let mut r = Reader::new(std::net::TcpStream::connect(&addr).unwrap());
        r.stream.set_read_timeout(Some(WAIT)).unwrap();
        r.send(&hello_bytes(1, 1));
        r.frame();
        let mut batch = Vec::new();
        for id in 1..=6 {
            batch.extend_from_slice(&frame(1, &compute(150_000), id));
        }
        r.send(&batch);
        r.send(&frame(1, &Message::Ping(message::Ping { data: 7 }), 7));
        // The PONG shows every request before it was read (accepted); COMPUTE results may
        // arrive before it.
        let mut answered = Vec::new();
        loop {
            match r.frame() {
                (7, Message::Pong(_)) => break,
                (id, Message::ComputeResult(_)) => answered.push(id),
                (_, m) => panic!("{m:?}"),
            }
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        while let Ok((id, m)) = r.next_frame() {
            match m {
                Message::ComputeResult(_) => answered.push(id),
                Message::Goodbye(g) => assert_eq!(g.code, ErrorCode::SHUTTING_DOWN),
                m => panic!("{m:?}"),
            }
        }
        answered.sort_unstable();
        assert_eq!(answered, vec![1, 2, 3, 4, 5, 6], "model {model}");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit status {status}");
    }
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for args in [
        &["--listen", "nonsense"][..],
        &["--max-frame", "10"][..],
        &["--model", "fibers"][..],
        &["--idle-timeout", "soon"][..],
        &["--log", "[[["][..],
        // Settings that make no sense (spec ranges, overflow, thread counts): exit 2, named.
        &["--max-outstanding", "0"][..],
        &["--max-connections", "0"][..],
        &["--idle-timeout", "0s"][..],
        &["--idle-timeout", "300000000000years"][..],
        &["--handshake-timeout", "300000000000years"][..],
        &["--drain-timeout", "300000000000years"][..],
        &["--handshake-timeout", "31s"][..],
        &["--drain-timeout", "601s"][..],
        &["--socket-mode", "77777"][..],
        &["--workers", "1000000"][..],
        &["--reactors", "100000"][..],
        &["--reactors", "0"][..],
        &["--queue-depth", "0"][..],
        // Memory settings: one frame must fit a connection, a connection the budget.
        &["--max-connection-memory", "64KiB"][..],
        &["--memory-budget", "1MiB"][..],
        &["--memory-budget", "2TiB"][..],
        &["--memory-budget", "12parsecs"][..],
        &["--eviction-grace", "0s"][..],
        &["--eviction-grace", "300000000000years"][..],
        &["--eviction-grace", "1ms"][..],
        // Settings that cannot take effect together (document: exit 2, naming the flags).
        &["--allow-uid", "1000"][..],
        &["--reactors", "4", "--model", "blocking"][..],
        &["--reuseport", "--model", "threaded"][..],
        &["--reuseport", "--model", "blocking"][..],
        &["--socket-mode", "600"][..],
        &["--handover", "/"][..],
        &["--handover", "/dev/null"][..],
        &["--handover", "/nonexistent-dir/x.sock"][..],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(args[0]),
            "{args:?}: the error does not name the flag: {err}"
        );
    }
    let help = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--reactors",
        "--workers",
        "--max-frame",
        "--max-connections",
        "--handshake-timeout",
        "--idle-timeout",
        "--drain-timeout",
        "--allow-uid",
        "--model",
        "--log",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    assert!(text.contains("[default: 127.0.0.1:7878]"));
}

#[test]
fn unix_socket_serves_every_model_and_cleans_up() {
    for model in [Model::Reactor, Model::Threaded, Model::Blocking] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ew.sock");
        let server = Server::builder()
            .listen(format!("unix:{}", path.display()).parse().unwrap())
            .model(model)
            .start()
            .unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o660
        );
        let mut c = Client::connect_unix(&path, Default::default()).unwrap();
        assert_eq!(&c.echo(b"over unix").unwrap()[..], b"over unix");
        drop(c);
        server.shutdown();
        assert!(
            !path.exists(),
            "socket file removed at shutdown ({model:?})"
        );
        let lock = dir.path().join("ew.sock.lock");
        assert!(!lock.exists(), "lock file removed at shutdown ({model:?})");
        // And the path can be taken again at once.
        let again = Server::builder()
            .listen(format!("unix:{}", path.display()).parse().unwrap())
            .model(model)
            .start()
            .unwrap();
        assert!(lock.exists(), "the lock file is created again ({model:?})");
        again.shutdown();
    }
}

#[test]
fn stale_socket_files_are_replaced_live_ones_and_other_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ew.sock");
    let addr = format!("unix:{}", path.display());
    // Stale: a socket file nobody accepts on.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = Server::builder()
        .listen(addr.parse().unwrap())
        .start()
        .expect("stale file replaced");
    // Live: a second server must refuse to steal it.
    let err = Server::builder()
        .listen(addr.parse().unwrap())
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    server.shutdown();
    // Not a socket: never removed.
    std::fs::write(&path, b"precious").unwrap();
    let err = Server::builder()
        .listen(addr.parse().unwrap())
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn unix_peer_credentials_are_checked() {
    let me = nix::unistd::getuid().as_raw();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("cred.sock");
    let _server = Server::builder()
        .listen(format!("unix:{}", path.display()).parse().unwrap())
        .with(|c| {
            c.allow_uids = vec![me];
            c.socket_mode = 0o666;
        })
        .start()
        .unwrap();
    // Our own uid is allowed.
    let mut c = Client::connect_unix(&path, Default::default()).unwrap();
    assert_eq!(c.ping(1).unwrap(), 1);
    // Another uid is refused with ERROR UNAUTHORIZED.
    if !tools::possible(
        me == 0,
        &format!("the refusal half needs root, to connect as another uid (uid {me})"),
    ) || !tools::available("setpriv")
    {
        return;
    }
    // The system interpreter: a per-user one (pyenv under /root) is unreadable for uid 65534.
    let python = "/usr/bin/python3";
    if !tools::possible(
        std::path::Path::new(python).exists(),
        &format!("the refusal half needs {python}, runnable by any uid"),
    ) {
        return;
    }
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\ns.settimeout(20)\nd=b''\nwhile True:\n  x=s.recv(4096)\n  if not x: break\n  d+=x\nsys.stdout.write(d.hex())",
        path.display().to_string()
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            python,
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = hex::decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    let mut dec = echowire_codec::decoder::FrameDecoder::new(1 << 20);
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let f = dec.decode(&mut buf).unwrap().expect("an ERROR frame");
    let m = message::decode(
        &f,
        &message::DecodeContext {
            receiver: message::Role::Client,
            version: None,
            capabilities: 0,
        },
    )
    .unwrap();
    assert_eq!(
        (f.header.request_id, error_code(&m)),
        (0, Some(ErrorCode::UNAUTHORIZED))
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn no_descriptor_leak_after_ten_thousand_connections() {
    for model in [Model::Reactor, Model::Threaded] {
        let server = start(model, |c| c.linger = Duration::from_millis(50));
        let addr = server.tcp_addr().unwrap();
        // Warm up (thread stacks, lazily opened descriptors), then measure.
        let _ = std::net::TcpStream::connect(addr).unwrap();
        wait_closed(&server);
        let before = open_fds();
        let preface_hello = hello_bytes(1, 1);
        for i in 0..10_000u32 {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            match i % 4 {
                0 => {}
                1 => s.write_all(&preface_hello).unwrap(),
                2 => s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap(),
                _ => {
                    s.write_all(&preface_hello).unwrap();
                    let mut b = [0u8; 64];
                    s.set_read_timeout(Some(WAIT)).unwrap();
                    let _ = s.read(&mut b);
                }
            }
        }
        wait_closed(&server);
        let after = open_fds();
        assert!(
            after <= before,
            "{model:?}: descriptors {before} -> {after}"
        );
        server.shutdown();
    }
}

fn wait_closed(server: &echowire_server::ServerHandle) {
    let deadline = Instant::now() + WAIT;
    let c = server.counters();
    while c
        .connections_open
        .load(std::sync::atomic::Ordering::Relaxed)
        != 0
    {
        assert!(Instant::now() < deadline, "connections never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn ipv6_loopback_when_available() {
    let Ok(server) = Server::builder().listen("[::1]:0".parse().unwrap()).start() else {
        eprintln!("note: skipped: no IPv6 loopback on this machine");
        return;
    };
    let mut c = Client::connect_tcp(server.tcp_addr().unwrap(), Default::default()).unwrap();
    assert_eq!(c.ping(6).unwrap(), 6);
    let _ = UnixStream::pair();
}

#[test]
fn emfile_on_accept_neither_crashes_nor_wedges() {
    if !tools::available("prlimit") {
        return;
    }
    // 40 descriptors: the server runs out after a few dozen connections.
    let (mut child, addr) = spawn_listening(
        Command::new("prlimit")
            .args(["--nofile=40:40", "--"])
            .arg(env!("CARGO_BIN_EXE_echowire-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--reactors",
                "1",
                "--workers",
                "1",
                "--log",
                "warn",
            ])
            .stderr(Stdio::piped()),
    );
    // Far more connections than descriptors: the kernel completes them into the backlog, the
    // server cannot accept them all.
    let flood: Vec<std::net::TcpStream> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "server died on EMFILE");
    drop(flood);
    // Descriptors come back; the server recovers and serves again.
    let deadline = Instant::now() + WAIT;
    loop {
        let attempt =
            Client::connect_tcp(addr.as_str(), Default::default()).and_then(|mut c| c.ping(9));
        if let Ok(9) = attempt {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server never recovered from EMFILE: {attempt:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("out of file descriptors"),
        "EMFILE was not logged: {err}"
    );
}

#[test]
fn a_descriptor_limit_too_small_is_named_at_startup() {
    if !tools::available("prlimit") {
        return;
    }
    // 200 descriptors (soft = hard, so it cannot be raised) and the default 10,000 connections:
    // the server starts, and says so once, naming the flag.
    let (mut child, _addr) = spawn_listening(
        Command::new("prlimit")
            .args(["--nofile=200:200", "--"])
            .arg(env!("CARGO_BIN_EXE_echowire-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--reactors",
                "1",
                "--log",
                "warn",
            ])
            .stderr(Stdio::piped()),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("--max-connections 10000 needs about") && err.contains("the limit is 200"),
        "{err}"
    );
    // Not even the reactors' own descriptors fit: exit 2, naming --reactors.
    let out = Command::new("prlimit")
        .args(["--nofile=64:64", "--"])
        .arg(env!("CARGO_BIN_EXE_echowire-server"))
        .args(["--listen", "127.0.0.1:0", "--reactors", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--reactors"), "{err}");
    // A soft limit below the hard one is raised: no warning for 100 connections.
    let (mut child, _addr) = spawn_listening(
        Command::new("prlimit")
            .args(["--nofile=64:4096", "--"])
            .arg(env!("CARGO_BIN_EXE_echowire-server"))
            .args(["--listen", "127.0.0.1:0", "--max-connections", "2000"])
            .args(["--reactors", "1", "--log", "warn"])
            .stderr(Stdio::piped()),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("needs about"), "{err}");
}
