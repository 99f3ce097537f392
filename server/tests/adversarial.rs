//! Adversarial tests: what a hostile client or operator does to the server process, reproduced
//! with bounded loops on loopback. Each test starts the real binary, so memory figures are the
//! server's own resident set (`/proc/PID/status`), not the test's.
//!
//! Longer runs (a soak with the RSS trend over minutes) are `server/soak.sh`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use echowire_codec::client::Client;
use echowire_codec::message::{self, Message};
use echowire_test_support::messages::*;
use echowire_test_support::sockets::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const MIB: usize = 1 << 20;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_echowire-server"))
}

/// A server process; killed if a test fails before stopping it.
struct Proc {
    child: Child,
    addr: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = bin()
            // `info`: the counters at exit ("stopped: ...") are read after the server stopped.
            .args(["--listen", "127.0.0.1:0", "--log", "info"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("no listening line: {line:?}"))
            .to_string();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Proc {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Resident set size in bytes.
    fn rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }
}

/// A counter from the server's last log line ("stopped: name=value ..."): read after it stopped,
/// so no event is still on its way.
fn final_counter(stderr: &str, name: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("stopped: "))
        .unwrap_or_else(|| panic!("no \"stopped:\" line in the server's log:\n{stderr}"));
    let key = format!("{name}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

impl Proc {
    fn stats(&self) -> Vec<(String, u64)> {
        let mut c = Client::connect_tcp(self.addr.as_str(), Default::default()).unwrap();
        c.stats().unwrap()
    }

    fn stat(&self, name: &str) -> u64 {
        self.stats()
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no {name} in STATS"))
            .1
    }

    /// Waits for the exit that a hand-over causes (bounded); the exit status and stderr.
    fn stop_after_handover(mut self) -> (std::process::ExitStatus, String) {
        let status = wait_exit(&mut self.child, Duration::from_secs(40));
        let err = self.stderr.take().unwrap().join().unwrap();
        (status, err)
    }

    /// SIGTERM, wait (bounded); the exit status and stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        kill(self.pid(), Signal::SIGTERM).unwrap();
        let status = wait_exit(&mut self.child, Duration::from_secs(40));
        let err = self.stderr.take().unwrap().join().unwrap();
        (status, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client that handshakes, then writes 64 KiB ECHOs without ever reading until its writes
/// stall for `stall` (the server stopped reading it) or the server resets it.
fn non_reader(addr: &str, stall: Duration) -> (TcpStream, usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&hello_bytes(1, 1)).unwrap();
    s.set_write_timeout(Some(stall)).unwrap();
    let payload = vec![0x5a; 64 * 1024];
    let mut written = 0;
    for id in 1.. {
        match s.write_all(&frame(1, &echo(&payload), id)) {
            Ok(()) => written += 64 * 1024,
            Err(_) => break,
        }
        if written > 256 * MIB {
            panic!("the server read 256 MiB from a client that reads nothing");
        }
    }
    (s, written)
}

/// Polls `f` until it holds (bounded by [`WAIT`]).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn non_reading_clients_hold_at_most_their_cap_and_memory_returns() {
    let cap = 2 * MIB;
    let p = Proc::start(&[
        "--max-connection-memory",
        "2MiB",
        "--memory-budget",
        "1GiB",
        "--reactors",
        "2",
        "--workers",
        "1",
    ]);
    // Warm up the allocator and threads, then take the baseline.
    let mut c = Client::connect_tcp(p.addr.as_str(), Default::default()).unwrap();
    assert_eq!(c.ping(1).unwrap(), 1);
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    let before = p.rss();
    const N: usize = 40;
    let clients: Vec<(TcpStream, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..N)
            .map(|_| s.spawn(|| non_reader(&p.addr, Duration::from_millis(500))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let held = p.stat("memory_held") as usize;
    let during = p.rss();
    let per_conn = during.saturating_sub(before) / N;
    println!(
        "{N} non-readers: RSS {} -> {} MiB, {:.2} MiB per connection (cap {} MiB); accounted {:.2} MiB per connection; each wrote {:.1} MiB before stalling",
        before / MIB,
        during / MIB,
        per_conn as f64 / MIB as f64,
        cap / MIB,
        held as f64 / N as f64 / MIB as f64,
        clients.iter().map(|c| c.1).sum::<usize>() as f64 / N as f64 / MIB as f64,
    );
    assert!(
        per_conn <= cap,
        "a non-reading connection costs {per_conn} bytes of RSS, above its cap of {cap}"
    );
    assert!(held <= N * (cap + 128 * 1024), "accounted {held}");
    drop(clients);
    eventually(
        "memory_held returns to 0 after the non-readers close",
        || p.stat("memory_held") < 64 * 1024,
    );
    // The reactors free their spare buffers after a quiet sweep period (a second).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = p.rss();
    while after > before + 16 * MIB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = p.rss();
    }
    println!("after they closed: RSS {} MiB", after / MIB);
    assert!(
        after <= before + 16 * MIB,
        "memory did not come back within 5 s: RSS {before} before, {after} after the clients closed"
    );
    let (status, err) = p.stop();
    assert!(status.success(), "{status}: {err}");
}

#[test]
fn at_the_memory_budget_the_heaviest_non_readers_are_evicted_and_others_are_served() {
    let budget = 16 * MIB;
    let p = Proc::start(&[
        "--memory-budget",
        "16MiB",
        "--max-connection-memory",
        "2MiB",
        "--eviction-grace",
        "1s",
        "--reactors",
        "2",
    ]);
    const N: usize = 30;
    let clients: Vec<(TcpStream, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..N)
            .map(|_| s.spawn(|| non_reader(&p.addr, Duration::from_millis(500))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Every non-reader stalled (the server stopped reading); the budget is reached, then after
    // the grace period the heaviest non-readers are reset until the rest fits.
    eventually("evictions bring the held memory under the budget", || {
        p.stat("connections_evicted") >= 1 && (p.stat("memory_held") as usize) < budget
    });
    let evicted = p.stat("connections_evicted") as usize;
    let held = p.stat("memory_held") as usize;
    println!(
        "{N} non-readers, budget {} MiB: {evicted} evicted, {:.1} MiB held after, high water {:.1} MiB",
        budget / MIB,
        held as f64 / MIB as f64,
        p.stat("memory_high_water") as f64 / MIB as f64
    );
    assert!(evicted < N, "every connection was evicted");
    // A well-behaved client is served meanwhile.
    let mut c = Client::connect_tcp(p.addr.as_str(), Default::default()).unwrap();
    assert_eq!(c.ping(77).unwrap(), 77);
    // The evicted ones were reset: reading them ends in an error or EOF after their replies, not
    // in all of them.
    drop(clients);
    let (status, err) = p.stop();
    assert!(status.success(), "{status}: {err}");
    // Counted once the server has stopped: an eviction after the STATS above is in the log too.
    let evicted = final_counter(&err, "connections_evicted") as usize;
    let lines = err.matches("memory budget exhausted").count();
    assert!(
        (1..=evicted.min(30)).contains(&lines),
        "evictions logged {lines} times for {evicted} evictions: {err}"
    );
}

#[test]
fn a_full_memory_budget_does_not_lock_out_well_behaved_clients() {
    // 100 non-readers against a 32 MiB budget, and no eviction during the test (grace 600 s):
    // before, at the budget no connection was read at all, so a new client got no WELCOME
    // until an eviction made room. Now a connection whose output flows and that holds less than
    // its fair share is still read (crate::memory).
    let budget = 32 * MIB;
    let p = Proc::start(&[
        "--memory-budget",
        "32MiB",
        "--max-connection-memory",
        "2MiB",
        "--eviction-grace",
        "600s",
        "--reactors",
        "2",
    ]);
    const N: usize = 100;
    let clients: Vec<(TcpStream, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..N)
            .map(|_| s.spawn(|| non_reader(&p.addr, Duration::from_millis(500))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let written: usize = clients.iter().map(|c| c.1).sum();
    // Probes: connect, handshake, PING, each bounded by WAIT (a locked-out probe fails here).
    let mut latencies = Vec::new();
    for i in 1..=10u64 {
        let start = Instant::now();
        let mut r = Reader::new(TcpStream::connect(&p.addr).unwrap());
        r.stream.set_read_timeout(Some(WAIT)).unwrap();
        r.send(&hello_bytes(1, 1));
        let (_, m) = r.frame();
        assert!(matches!(m, Message::Welcome(_)), "probe {i}: {m:?}");
        r.send(&frame(1, &Message::Ping(message::Ping { data: i }), 1));
        let (id, m) = r.frame();
        assert!(matches!(m, Message::Pong(_)) && id == 1, "probe {i}: {m:?}");
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let held = p.stat("memory_held") as usize;
    let high = p.stat("memory_high_water") as usize;
    println!(
        "{N} non-readers wrote {:.0} MiB; held {:.1} MiB (budget {} MiB, high water {:.1} MiB); \
         10 probes answered, latency median {:?}, max {:?}",
        written as f64 / MIB as f64,
        held as f64 / MIB as f64,
        budget / MIB,
        high as f64 / MIB as f64,
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert!(
        high >= budget,
        "the non-readers never filled the budget ({high} of {budget}): the test proves nothing"
    );
    assert!(
        high <= budget + budget / 8 + 2 * 4 * MIB,
        "held {high}, beyond the budget's reserve"
    );
    drop(clients);
    let (status, err) = p.stop();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(
        final_counter(&err, "connections_evicted"),
        0,
        "the probes were served by fairness, not by evictions"
    );
}

#[test]
fn a_flood_of_partial_hellos_holds_little_and_times_out() {
    let p = Proc::start(&["--handshake-timeout", "1s", "--reactors", "1"]);
    let mut warm = Client::connect_tcp(p.addr.as_str(), Default::default()).unwrap();
    assert_eq!(warm.ping(1).unwrap(), 1);
    drop(warm);
    let before = p.rss();
    const N: usize = 200;
    // Each: the preface and 4000 of the 4008 octets of a HELLO that claims the whole 4096 limit
    // ... and never the rest.
    let mut partial = echowire_codec::frame::PREFACE.to_vec();
    partial.extend_from_slice(&4096u32.to_be_bytes());
    partial.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    partial.resize(partial.len() + 3900, 0x41);
    let conns: Vec<TcpStream> = (0..N)
        .map(|_| {
            let mut s = TcpStream::connect(&p.addr).unwrap();
            s.write_all(&partial).unwrap();
            s
        })
        .collect();
    // One that claims a 1 MiB HELLO is refused at its Length field, nothing allocated (§8.2).
    let mut big = TcpStream::connect(&p.addr).unwrap();
    big.set_read_timeout(Some(WAIT)).unwrap();
    let mut claim = echowire_codec::frame::PREFACE.to_vec();
    claim.extend_from_slice(&(1u32 << 20).to_be_bytes());
    big.write_all(&claim).unwrap();
    let mut reader = Reader::new(big);
    let (_, m) = reader.frame();
    assert_eq!(
        error_code(&m),
        Some(echowire_codec::ErrorCode::FRAME_TOO_LARGE)
    );
    eventually("every partial HELLO is buffered", || {
        p.stat("bytes_in") as usize >= N * partial.len()
    });
    let held = p.stat("memory_held") as usize;
    let during = p.rss();
    let per_conn = during.saturating_sub(before) / N;
    println!(
        "{N} partial HELLOs: accounted {} bytes per connection, RSS +{} bytes per connection",
        held / N,
        per_conn
    );
    assert!(
        held / N <= 8192,
        "{} bytes held per partial HELLO",
        held / N
    );
    assert!(
        per_conn <= 16 * 1024,
        "{per_conn} bytes of RSS per partial HELLO"
    );
    // The handshake timeout ends them all (§8.3); their memory is given back.
    for s in conns {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut r = Reader::new(s);
        let (_, m) = r.frame();
        assert_eq!(
            error_code(&m),
            Some(echowire_codec::ErrorCode::HANDSHAKE_TIMEOUT)
        );
    }
    eventually("memory_held returns to 0", || p.stat("memory_held") < 4096);
    let (status, err) = p.stop();
    assert!(status.success(), "{status}: {err}");
}

/// Sends `sig` to the process.
fn signal(p: &Proc, sig: Signal) {
    kill(p.pid(), sig).unwrap();
}

#[test]
fn a_second_signal_ends_the_drain_at_once_with_resets_and_a_nonzero_exit() {
    let mut p = Proc::start(&["--drain-timeout", "600s", "--reactors", "1"]);
    // A client that reads nothing keeps the drain from finishing (its output cannot be written).
    let (mut s, _) = non_reader(&p.addr, Duration::from_millis(300));
    signal(&p, Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "exited before the drain"
    );
    let t = Instant::now();
    signal(&p, Signal::SIGINT);
    let status = wait_exit(&mut p.child, Duration::from_secs(10));
    println!("second signal: exit {status} after {:?}", t.elapsed());
    assert_eq!(status.code(), Some(128 + 2), "{status}");
    // The client sees a reset, not a clean end: its queued responses were discarded.
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut sink = vec![0u8; 1 << 20];
    let end = loop {
        match s.read(&mut sink) {
            Ok(0) => break "clean end of stream",
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(end, "reset");
    let err = p.stderr.take().unwrap().join().unwrap();
    assert!(err.contains("second signal"), "{err}");
}

#[test]
fn a_drain_that_times_out_resets_and_exits_1() {
    let mut p = Proc::start(&["--drain-timeout", "1s", "--reactors", "1"]);
    let (mut s, _) = non_reader(&p.addr, Duration::from_millis(300));
    signal(&p, Signal::SIGTERM);
    let status = wait_exit(&mut p.child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{status}");
    let err = p.stderr.take().unwrap().join().unwrap();
    assert!(err.contains("drain timeout expired"), "{err}");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut sink = vec![0u8; 1 << 20];
    let reset = loop {
        match s.read(&mut sink) {
            Ok(0) => break false,
            Ok(_) => continue,
            Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    };
    assert!(
        reset,
        "the drain timeout closed cleanly (spec 3.8: abortive)"
    );
}

#[test]
fn every_model_answers_its_accept_queue_at_shutdown() {
    use echowire_server::listener::{Bound, bind};
    use echowire_server::{Model, Server};
    for model in [Model::Reactor, Model::Threaded, Model::Blocking] {
        // Clients connect and send preface, HELLO and a PING before the server accepts anything:
        // they sit in the kernel's accept queue when the shutdown begins.
        let bound = bind(&"127.0.0.1:0".parse().unwrap(), 0o600).unwrap();
        let Bound::Tcp(l) = &bound else {
            unreachable!()
        };
        let addr = l.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..10)
            .map(|i| {
                let mut s = TcpStream::connect(addr).unwrap();
                let mut bytes = hello_bytes(1, 1);
                bytes.extend(frame(
                    1,
                    &echowire_codec::message::Message::Ping(echowire_codec::message::Ping {
                        data: i,
                    }),
                    1,
                ));
                s.write_all(&bytes).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                s
            })
            .collect();
        let server = Server::builder()
            .model(model)
            .with(|c| {
                c.reactors = 1;
                c.workers = 1;
                c.linger = Duration::from_millis(200);
            })
            .listeners(vec![bound])
            .start()
            .unwrap();
        server.begin_shutdown();
        for s in clients {
            // WELCOME, then (PONG or nothing) and GOODBYE SHUTTING_DOWN, then a clean end: never
            // a reset or a bare close.
            let mut r = Reader::new(s);
            let (_, first) = r.frame();
            assert!(
                matches!(first, echowire_codec::message::Message::Welcome(_)),
                "{model:?}: {first:?}"
            );
            let mut saw_goodbye = false;
            loop {
                match r.next_frame() {
                    Ok((_, echowire_codec::message::Message::Goodbye(_))) => saw_goodbye = true,
                    Ok(_) => {}
                    Err(End::Eof) => break,
                    Err(e) => panic!("{model:?}: {e:?}"),
                }
            }
            assert!(saw_goodbye, "{model:?}: no GOODBYE");
        }
        drop(server);
    }
}

#[test]
fn two_servers_racing_for_one_unix_path_never_both_claim_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.sock");
    for round in 0..10 {
        // A stale socket file: both servers may want to replace it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let spawn = || {
            bin()
                .args(["--listen", &format!("unix:{}", path.display())])
                .args(["--log", "warn", "--reactors", "1", "--workers", "1"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut a = spawn();
        let mut b = spawn();
        let first_line = |c: &mut Child| {
            let mut line = String::new();
            BufReader::new(c.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            line
        };
        let (la, lb) = (first_line(&mut a), first_line(&mut b));
        let listening = [&la, &lb]
            .iter()
            .filter(|l| l.starts_with("listening on"))
            .count();
        assert_eq!(listening, 1, "round {round}: {la:?} {lb:?}");
        // The winner is reachable at the path.
        let mut c = Client::connect_unix(&path, Default::default()).unwrap();
        assert_eq!(c.ping(round).unwrap(), round);
        drop(c);
        for mut child in [a, b] {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let status = wait_exit(&mut child, Duration::from_secs(20));
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(
                status.success() || err.contains("claimed by another server"),
                "round {round}: {status}: {err}"
            );
        }
        assert!(!path.exists(), "the socket file outlived its server");
    }
}

#[test]
fn a_restart_by_handover_refuses_no_connection() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    let unix = dir.path().join("s.sock");
    let start = |listen: &str| {
        Proc::start(&[
            "--listen",
            listen,
            "--handover",
            control.to_str().unwrap(),
            "--reactors",
            "1",
            "--workers",
            "1",
        ])
    };
    let old = start(&format!("unix:{}", unix.display()));
    let addr = old.addr.clone();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Every request's fate: answered at once, answered after a retry on a new connection (the
    // server refused it with SHUTTING_DOWN, or closed before reading it: not processed, spec
    // §3.8), or unanswered after five tries (lost); and connection attempts refused.
    let (attempts, refused, drained, lost) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let (mut attempts, mut refused, mut drained, mut lost) =
                        (0u64, Vec::new(), 0u64, 0u64);
                    let mut request = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        request += 1;
                        let mut answered = false;
                        for _ in 0..5 {
                            attempts += 1;
                            match Client::connect_tcp(addr.as_str(), Default::default()) {
                                Ok(mut c) => match c.ping(request) {
                                    Ok(v) => {
                                        assert_eq!(v, request);
                                        answered = true;
                                        break;
                                    }
                                    Err(_) => drained += 1, // draining: retry elsewhere
                                },
                                Err(e) => refused.push(e.to_string()),
                            }
                        }
                        if !answered {
                            lost += 1;
                        }
                    }
                    (attempts, refused, drained, lost)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        // Four restarts in a row: old -> new -> newer -> ...
        let mut current = old;
        for _ in 0..4 {
            let next = start("127.0.0.1:1");
            assert_eq!(
                next.addr, addr,
                "the successor listens where the old one did"
            );
            let (status, err) = current.stop_after_handover();
            assert!(status.success(), "old server: {status}: {err}");
            current = next;
            std::thread::sleep(Duration::from_millis(300));
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        let mut total = (0, Vec::new(), 0, 0);
        for c in clients {
            let (a, r, d, l) = c.join().unwrap();
            total.0 += a;
            total.1.extend(r);
            total.2 += d;
            total.3 += l;
        }
        // The Unix listener came along: the newest server serves the same path.
        let mut c = Client::connect_unix(&unix, Default::default()).unwrap();
        assert_eq!(c.ping(5).unwrap(), 5);
        drop(c);
        let (status, err) = current.stop();
        assert!(status.success(), "{status}: {err}");
        total
    });
    println!(
        "hand-over: {attempts} connection attempts across 4 restarts, {} refused, {drained} \
         requests told to retry (refused or not read by a draining server), {lost} lost",
        refused.len()
    );
    assert!(attempts > 20, "only {attempts} attempts");
    assert!(refused.is_empty(), "refused: {refused:?}");
    assert_eq!(lost, 0, "requests unanswered after five tries");
    assert!(!unix.exists(), "the socket file outlived the last server");
}
