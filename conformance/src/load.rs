//! The load generator (`echowire-conformance load`): closed and open loop, HDR latencies.
//!
//! * **Closed loop**: `--connections N --depth D`: every connection keeps D requests in flight
//!   and sends a new one for each response.
//! * **Open loop**: `--rate R`: requests are scheduled at fixed intervals across the connections,
//!   and latency is measured from each request's *intended* send time, so a stalled server shows
//!   up as latency instead of silently lowering the offered load (no coordinated omission).
//! * **Idle**: `--idle N`: opens N connections, completes the handshake on each and holds them
//!   for the duration (memory per idle connection is read from the server's side).
//!
//! Connections are driven by mio event loops (`--threads`, default 1), so hundreds of
//! connections cost no client threads; requests are pre-encoded and responses are matched by
//! request ID reading only the 12-byte header (and the error code of an ERROR), so the generator
//! spends as little as possible per request.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{MessageType, PREFACE};
use echowire_codec::message::{self, Message};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::target::{Target, TargetSpec};

/// Load settings.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Where.
    pub target: TargetSpec,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection (closed loop).
    pub depth: usize,
    /// Requests per second across all connections (open loop); `None`: closed loop.
    pub rate: Option<f64>,
    /// How long to measure.
    pub duration: Duration,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// ECHO payload size.
    pub echo_size: usize,
    /// Share of COMPUTE requests (0..=1).
    pub compute_share: f64,
    /// COMPUTE cost.
    pub compute_cost: u32,
    /// Share of PING requests (0..=1).
    pub ping_share: f64,
    /// Event-loop threads.
    pub threads: usize,
    /// Hold this many idle connections instead of sending load.
    pub idle: Option<usize>,
    /// Print progress every second.
    pub progress: bool,
    /// No handshake: for a raw byte-echo baseline, which returns each request frame unchanged
    /// (matched by its request ID like a response).
    pub raw: bool,
    /// Send exactly this many requests (closed loop), counting every one (no warm-up), and
    /// stop when all are answered; `duration` is then a time limit, an error if reached. For
    /// counting (instructions, system calls per request), where a timed run sends an unknown
    /// number.
    pub requests: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Echo,
    Compute,
    Ping,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Compute => "compute",
            Kind::Ping => "ping",
        }
    }
}

struct Stats {
    hist: BTreeMap<Kind, Histogram<u64>>,
    ok: u64,
    bytes: u64,
    errors: BTreeMap<String, u64>,
}

impl Stats {
    fn new() -> Stats {
        let mut hist = BTreeMap::new();
        for k in [Kind::Echo, Kind::Compute, Kind::Ping] {
            hist.insert(
                k,
                Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds"),
            );
        }
        Stats {
            hist,
            ok: 0,
            bytes: 0,
            errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, o: Stats) {
        for (k, h) in o.hist {
            let _ = self.hist.get_mut(&k).expect("kind").add(h);
        }
        self.ok += o.ok;
        self.bytes += o.bytes;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

struct Conn {
    stream: Stream,
    buf: BytesMut,
    dec: FrameDecoder,
    out: Vec<u8>,
    /// request id -> (kind, intended send time)
    inflight: HashMap<u32, (Kind, Instant)>,
    next_id: u32,
    writable: bool,
    /// Requests this connection may still issue (`--requests`; `u64::MAX` without).
    quota: u64,
}

enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(b),
            Stream::Unix(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Pre-encoded request bodies by kind (the ID is patched in per request).
struct Templates {
    version: u8,
    echo: Vec<u8>,
    compute: Vec<u8>,
    ping: Vec<u8>,
}

impl Templates {
    fn new(version: u8, o: &LoadOptions) -> Templates {
        let enc = |m: Message| {
            let mut v = Vec::new();
            m.encode(version, 1, u32::MAX, &mut v)
                .expect("encode template");
            v
        };
        Templates {
            version,
            echo: enc(Message::Echo(message::Echo {
                payload: vec![0x5a; o.echo_size].into(),
            })),
            compute: enc(Message::Compute(message::Compute {
                cost: o.compute_cost,
                seed: b"load"[..].into(),
            })),
            ping: enc(Message::Ping(message::Ping { data: 7 })),
        }
    }

    fn push(&self, kind: Kind, id: u32, out: &mut Vec<u8>) {
        let t = match kind {
            Kind::Echo => &self.echo,
            Kind::Compute => &self.compute,
            Kind::Ping => &self.ping,
        };
        let at = out.len();
        out.extend_from_slice(t);
        out[at + 8..at + 12].copy_from_slice(&id.to_be_bytes());
    }
}

/// Chooses request kinds with the configured shares, deterministically.
struct Mix {
    counter: u64,
    compute_per_1000: u64,
    ping_per_1000: u64,
}

impl Mix {
    fn next(&mut self) -> Kind {
        // A low-discrepancy sequence: shares are met exactly over every 1000 requests.
        self.counter = self.counter.wrapping_add(1);
        let slot = (self.counter.wrapping_mul(617)) % 1000;
        if slot < self.compute_per_1000 {
            Kind::Compute
        } else if slot < self.compute_per_1000 + self.ping_per_1000 {
            Kind::Ping
        } else {
            Kind::Echo
        }
    }
}

fn handshake(target: &Target) -> io::Result<(Stream, u8)> {
    let mut hello = PREFACE.to_vec();
    Message::<&[u8]>::Hello(message::Hello {
        min_version: 1,
        max_version: 2,
        max_frame_size: 16 << 20,
        capabilities: 0,
        agent: "echowire-load".into(),
    })
    .encode(1, 0, u32::MAX, &mut hello)
    .map_err(io::Error::other)?;
    let mut conn = target.connect()?;
    conn.write_all(&hello)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut dec = FrameDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 512];
    let version = loop {
        if let Some(f) = dec.decode(&mut buf).map_err(io::Error::other)? {
            let ctx = message::DecodeContext {
                receiver: message::Role::Client,
                version: None,
                capabilities: 0,
            };
            match message::decode(&f, &ctx).map_err(io::Error::other)? {
                Message::Welcome(w) => break w.version,
                other => return Err(io::Error::other(format!("handshake refused: {other:?}"))),
            }
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed during the handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    conn.set_read_timeout(None)?;
    Ok((into_mio(conn)?, version))
}

fn raw_connect(target: &Target) -> io::Result<(Stream, u8)> {
    Ok((into_mio(target.connect()?)?, 1))
}

fn into_mio(conn: crate::target::Conn) -> io::Result<Stream> {
    Ok(match conn {
        crate::target::Conn::Tcp(s) => {
            s.set_nonblocking(true)?;
            Stream::Tcp(mio::net::TcpStream::from_std(s))
        }
        crate::target::Conn::Unix(s) => {
            s.set_nonblocking(true)?;
            Stream::Unix(mio::net::UnixStream::from_std(s))
        }
    })
}

fn raise_fd_limit(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < want
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard);
    }
}

/// What a load run measured (written as JSON by `--json`; `bench/compare.sh` reads it).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum LoadReport {
    /// Requests were sent.
    Traffic(TrafficReport),
    /// Idle connections were held.
    Idle(IdleReport),
}

/// The result of a closed- or open-loop run.
#[derive(Clone, Debug, Serialize)]
pub struct TrafficReport {
    /// The target.
    pub target: String,
    /// `open` (a fixed rate) or `closed` (a fixed depth).
    pub mode: &'static str,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection (closed loop).
    pub depth: usize,
    /// Requests per second (open loop).
    pub rate: Option<f64>,
    /// Measured seconds.
    pub duration_s: f64,
    /// ECHO payload octets.
    pub echo_size: usize,
    /// Share of COMPUTE requests.
    pub compute_share: f64,
    /// COMPUTE cost.
    pub compute_cost: u32,
    /// Share of PING requests.
    pub ping_share: f64,
    /// Requests answered as asked.
    pub requests_ok: u64,
    /// Of those, per second.
    pub requests_per_s: f64,
    /// Payload megabytes per second.
    pub mb_per_s: f64,
    /// ERROR answers by code name.
    pub errors: BTreeMap<String, u64>,
    /// Of those, BUSY.
    pub busy: u64,
    /// Latency per request kind (`echo`, `compute`, `ping`).
    pub latency: BTreeMap<&'static str, Latency>,
}

/// Latency of one request kind, in microseconds, from its intended send time.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

/// The result of an idle run.
#[derive(Clone, Debug, Serialize)]
pub struct IdleReport {
    /// The target.
    pub target: String,
    /// Always `idle`.
    pub mode: &'static str,
    /// Connections held.
    pub connections: usize,
    /// Seconds it took to open them.
    pub open_s: f64,
}

/// Runs the load; returns what it measured.
pub fn run(o: &LoadOptions) -> Result<LoadReport, String> {
    let target = Target::open(o.target.clone(), Default::default(), Default::default())
        .map_err(|e| format!("cannot start target: {e}"))?;
    if let Some(n) = o.idle {
        return idle(&target, n, o);
    }
    raise_fd_limit((o.connections + 64) as u64);
    let threads = o.threads.clamp(1, o.connections.max(1));
    if o.requests.is_some() && o.rate.is_some() {
        return Err("--requests counts a closed loop: it does not go with --rate".into());
    }
    let started = Instant::now();
    let stats = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = o.connections / threads + usize::from(t < o.connections % threads);
                // Each connection's share of --requests: connection k of the whole run gets
                // requests / connections, the first requests % connections one more.
                let first = (0..t)
                    .map(|u| o.connections / threads + usize::from(u < o.connections % threads))
                    .sum::<usize>();
                let quotas: Vec<u64> = (first..first + n)
                    .map(|k| match o.requests {
                        Some(r) => {
                            let c = o.connections as u64;
                            r / c + u64::from((k as u64) < r % c)
                        }
                        None => u64::MAX,
                    })
                    .collect();
                let target = &target;
                s.spawn(move || worker(target, &quotas, threads, o))
            })
            .collect();
        let mut total = Stats::new();
        for h in handles {
            match h.join().expect("load thread") {
                Ok(st) => total.merge(st),
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    })?;
    // A counted run's rate is over the time it took (it has no warm-up to leave out).
    let secs = match o.requests {
        Some(_) => started.elapsed().as_secs_f64(),
        None => o.duration.as_secs_f64(),
    };
    let mut latency = BTreeMap::new();
    for (k, h) in &stats.hist {
        if h.is_empty() {
            continue;
        }
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        latency.insert(
            k.name(),
            Latency {
                count: h.len(),
                p50_us: us(0.5),
                p90_us: us(0.9),
                p99_us: us(0.99),
                p999_us: us(0.999),
                max_us: h.max() as f64 / 1000.0,
                mean_us: h.mean() / 1000.0,
            },
        );
    }
    let busy = stats.errors.get("BUSY").copied().unwrap_or(0);
    Ok(LoadReport::Traffic(TrafficReport {
        target: o.target.to_string(),
        mode: if o.rate.is_some() { "open" } else { "closed" },
        connections: o.connections,
        depth: o.depth,
        rate: o.rate,
        duration_s: secs,
        echo_size: o.echo_size,
        compute_share: o.compute_share,
        compute_cost: o.compute_cost,
        ping_share: o.ping_share,
        requests_ok: stats.ok,
        requests_per_s: stats.ok as f64 / secs,
        mb_per_s: stats.bytes as f64 / secs / 1e6,
        errors: stats.errors,
        busy,
        latency,
    }))
}

fn worker(
    target: &Target,
    quotas: &[u64],
    threads: usize,
    o: &LoadOptions,
) -> Result<Stats, String> {
    let n = quotas.len();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut conns = Vec::with_capacity(n);
    let mut version = 1;
    for (i, &quota) in quotas.iter().enumerate() {
        let (mut stream, v) = if o.raw {
            raw_connect(target)
        } else {
            handshake(target)
        }
        .map_err(|e| format!("connection {i}: {e}"))?;
        version = v;
        poll.registry()
            .register(
                stream.source(),
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        conns.push(Conn {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            dec: FrameDecoder::new(u32::MAX),
            out: Vec::new(),
            inflight: HashMap::new(),
            next_id: 1,
            writable: true,
            quota,
        });
    }
    let tpl = Templates::new(version, o);
    let mut mix = Mix {
        counter: 0,
        compute_per_1000: (o.compute_share * 1000.0).round() as u64,
        ping_per_1000: (o.ping_share * 1000.0).round() as u64,
    };
    let mut stats = Stats::new();
    let start = Instant::now();
    let counted = o.requests.is_some();
    let measure_from = if counted { start } else { start + o.warmup };
    let end = measure_from + o.duration;
    // Requests still to be answered in a counted run.
    let mut unanswered: u64 = if counted { quotas.iter().sum() } else { 0 };
    let mut next_progress = start + Duration::from_secs(1);
    let mut last_ok = 0u64;
    // Open loop: this thread's share of the rate.
    let interval = o
        .rate
        .map(|r| Duration::from_secs_f64(threads as f64 / r.max(1e-9)));
    let mut next_send = start;
    let mut rr = 0usize;
    let issue = |c: &mut Conn, intended: Instant, mix: &mut Mix| {
        if c.quota == 0 {
            return;
        }
        c.quota -= 1;
        let kind = mix.next();
        let id = c.next_id;
        c.next_id = c.next_id.wrapping_add(1).max(1);
        tpl.push(kind, id, &mut c.out);
        c.inflight.insert(id, (kind, intended));
    };
    if interval.is_none() {
        for c in &mut conns {
            for _ in 0..o.depth {
                issue(c, Instant::now(), &mut mix);
            }
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let now = Instant::now();
        if counted && unanswered == 0 {
            break;
        }
        if now >= end {
            if counted {
                return Err(format!(
                    "{unanswered} of the {} requests of this thread were not answered within {}",
                    quotas.iter().sum::<u64>(),
                    humantime::format_duration(o.duration)
                ));
            }
            break;
        }
        if o.progress && now >= next_progress && threads == 1 {
            eprintln!(
                "  {:>5.1}s  {} req/s",
                (now - start).as_secs_f64(),
                stats.ok - last_ok
            );
            last_ok = stats.ok;
            next_progress += Duration::from_secs(1);
        }
        // Open loop: everything due is issued now, with its intended time.
        if let Some(iv) = interval {
            while next_send <= now && !conns.is_empty() {
                let i = rr % conns.len();
                rr += 1;
                issue(&mut conns[i], next_send, &mut mix);
                next_send += iv;
            }
        }
        for c in conns.iter_mut().filter(|c| c.writable && !c.out.is_empty()) {
            match c.stream.write(&c.out) {
                Ok(w) => {
                    c.out.drain(..w);
                    if !c.out.is_empty() {
                        c.writable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        let timeout = match interval {
            Some(_) => Some(
                next_send
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            ),
            None => Some(
                end.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            ),
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.to_string());
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if ev.is_writable() {
                c.writable = true;
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                match c.stream.read(&mut chunk) {
                    Ok(0) => return Err("the server closed a connection".into()),
                    Ok(k) => c.buf.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            let recv = Instant::now();
            loop {
                let f = match c.dec.decode(&mut c.buf) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return Err(format!("bad framing from the server: {e}")),
                };
                let Some((kind, intended)) = c.inflight.remove(&f.header.request_id) else {
                    continue;
                };
                unanswered = unanswered.saturating_sub(1);
                if recv >= measure_from {
                    if f.header.msg_type == MessageType::Error {
                        let code = if f.body.len() >= 2 {
                            echowire_codec::ErrorCode((&f.body[..]).get_u16())
                        } else {
                            echowire_codec::ErrorCode(0)
                        };
                        *stats
                            .errors
                            .entry(
                                code.name()
                                    .map_or_else(|| format!("0x{:04X}", code.0), str::to_string),
                            )
                            .or_default() += 1;
                    } else {
                        stats.ok += 1;
                        stats.bytes += (f.encoded_len()) as u64;
                        let ns = recv.saturating_duration_since(intended).as_nanos().max(1) as u64;
                        let _ = stats.hist.get_mut(&kind).expect("kind").record(ns);
                    }
                }
                if interval.is_none() {
                    issue(c, Instant::now(), &mut mix);
                }
            }
        }
    }
    let _ = tpl.version;
    Ok(stats)
}

fn idle(target: &Target, n: usize, o: &LoadOptions) -> Result<LoadReport, String> {
    raise_fd_limit((n + 64) as u64);
    let start = Instant::now();
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let (s, _) = handshake(target).map_err(|e| format!("idle connection {i}: {e}"))?;
        held.push(s);
        if o.progress && i % 1000 == 999 {
            eprintln!("  {} idle connections open", i + 1);
        }
    }
    let opened = start.elapsed();
    // Hold them: the caller measures the server meanwhile. Print a marker line it can wait for.
    println!("idle: {n} connections open");
    let _ = io::stdout().flush();
    std::thread::sleep(o.duration);
    drop(held);
    Ok(LoadReport::Idle(IdleReport {
        target: o.target.to_string(),
        mode: "idle",
        connections: n,
        open_s: opened.as_secs_f64(),
    }))
}

/// A one-screen human summary of a load result.
pub fn summary(r: &TrafficReport) -> String {
    let mut s = format!(
        "{} {} conns={} depth={} echo={}B compute={}%: {:.0} req/s, {:.1} MB/s",
        r.target,
        r.mode,
        r.connections,
        r.depth,
        r.echo_size,
        r.compute_share * 100.0,
        r.requests_per_s,
        r.mb_per_s
    );
    for (k, x) in &r.latency {
        s.push_str(&format!(
            "\n  {k:<8} p50 {:>8.1} µs  p90 {:>8.1}  p99 {:>8.1}  p99.9 {:>8.1}  max {:>9.1}  (n={})",
            x.p50_us, x.p90_us, x.p99_us, x.p999_us, x.max_us, x.count
        ));
    }
    if !r.errors.is_empty() {
        s.push_str(&format!("\n  errors: {:?}", r.errors));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(requests: u64, connections: usize, threads: usize) -> LoadOptions {
        LoadOptions {
            target: TargetSpec::Embedded(echowire_server::Model::Reactor),
            connections,
            depth: 4,
            rate: None,
            duration: Duration::from_secs(60),
            warmup: Duration::from_secs(1),
            echo_size: 64,
            compute_share: 0.0,
            compute_cost: 0,
            ping_share: 0.1,
            threads,
            idle: None,
            progress: false,
            raw: false,
            requests: Some(requests),
        }
    }

    #[test]
    fn requests_sends_exactly_that_many_over_uneven_shares() {
        // 1001 over 3 connections and 2 threads: shares 334, 334, 333.
        for (n, conns, threads) in [(1001, 3, 2), (7, 5, 1), (2, 4, 2)] {
            let LoadReport::Traffic(t) = run(&counted(n, conns, threads)).expect("a run") else {
                panic!("not a traffic report")
            };
            let answered: u64 = t.requests_ok + t.errors.values().sum::<u64>();
            assert_eq!(answered, n, "{n} requests over {conns} connections");
            let counted: u64 = t.latency.values().map(|l| l.count).sum();
            assert_eq!(counted, t.requests_ok);
        }
        let mut o = counted(10, 1, 1);
        o.rate = Some(100.0);
        assert!(run(&o).is_err());
    }
}
