//! Adversarial tests: what a hostile client or operator does to the server process, reproduced
//! with bounded loops on loopback. Each test starts the real binary, so memory figures are the
//! server's own resident set (`/proc/PID/status`), not the test's.
//!
//! Longer runs (a soak with the RSS trend over minutes) are `server/soak.sh`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use echowire_codec::client::Client;
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
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
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
        match s.write_all(&encode(1, &echo(&payload), id)) {
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
    std::thread::sleep(Duration::from_millis(300));
    let after = p.rss();
    println!("after they closed: RSS {} MiB", after / MIB);
    assert!(
        after <= before + 16 * MIB,
        "memory did not come back: RSS {before} before, {after} after the clients closed"
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
    let lines = err.matches("memory budget exhausted").count();
    assert!(
        (1..=evicted.min(30)).contains(&lines),
        "evictions logged {lines} times for {evicted} evictions: {err}"
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
    for mut s in conns {
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
