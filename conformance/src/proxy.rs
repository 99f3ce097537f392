//! A fault-injecting TCP proxy, to test the suite itself for *specificity* and *sensitivity*.
//!
//! Put between the runner and a conformant server, the proxy changes the server's byte stream in
//! one of several ways. The **benign** modes change only what the spec leaves open — how the
//! octets are cut into reads, when they arrive, the order of responses (spec §3.6.1 rule 2) — so
//! the suite must still pass every case: a case that fails through a benign mode assumes more
//! than the spec says. The **breaking** modes change what the spec fixes (a response lost,
//! duplicated, misaddressed or corrupted), so the suite must fail: a mode that passes is a bug
//! class the suite cannot see.
//!
//! Each connection is two threads, one per direction, with blocking I/O: the proxy reads from
//! one side only as fast as it can write to the other, so backpressure passes through it. An end
//! of stream is passed on as a half-close and a reset as a reset. Only loopback addresses are
//! used by the tests; the proxy itself connects wherever it is told.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use echowire_codec::frame::FrameHeader;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// What the proxy does to the server's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Benign: both directions are forwarded in random pieces (1 to 7 octets for small reads,
    /// up to 4 KiB for large ones), with short random pauses between some small pieces.
    Rechunk,
    /// Benign: the server's output is held for 5 ms after each read and forwarded as one write.
    Coalesce,
    /// Benign: server frames that arrive together are held for 5 ms and each run of consecutive
    /// responses (request ID not 0) is forwarded in reverse order, as §3.6.1 rule 2 permits.
    Reorder,
    /// Breaking: the first response (request ID not 0) of each connection is dropped.
    DropResponse,
    /// Breaking: the first response of each connection is sent twice.
    DuplicateResponse,
    /// Breaking: the first response of each connection carries another request ID.
    CorruptId,
    /// Breaking: the last octet of the first ECHO_REPLY's body of each connection is flipped.
    CorruptPayload,
}

impl Mode {
    /// Every mode, benign first.
    pub const ALL: [Mode; 7] = [
        Mode::Rechunk,
        Mode::Coalesce,
        Mode::Reorder,
        Mode::DropResponse,
        Mode::DuplicateResponse,
        Mode::CorruptId,
        Mode::CorruptPayload,
    ];

    /// Whether a conformant server seen through this mode is still conformant.
    pub fn is_benign(self) -> bool {
        matches!(self, Mode::Rechunk | Mode::Coalesce | Mode::Reorder)
    }

    fn frames(self) -> bool {
        !matches!(self, Mode::Rechunk | Mode::Coalesce)
    }
}

/// A running proxy; it stops accepting when dropped (connections in progress run to their end).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    changes: Arc<AtomicU64>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream` through `mode`.
    pub fn start(upstream: SocketAddr, mode: Mode, seed: u64) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let changes = Arc::new(AtomicU64::new(0));
        let counted = changes.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stopping.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((client, _)) => {
                        n += 1;
                        let _ = client.set_nonblocking(false);
                        let counted = counted.clone();
                        std::thread::spawn(move || {
                            connection(client, upstream, mode, seed ^ n, &counted)
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Proxy {
            addr,
            stop,
            changes,
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How often the mode changed the stream so far (a read cut into several writes, reads held
    /// and merged, a run of responses reversed, a frame rewritten): a mode that never acted has
    /// tested nothing.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mode: Mode,
    seed: u64,
    changes: &Arc<AtomicU64>,
) {
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up_changes = changes.clone();
    let up = std::thread::spawn(move || {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        pipe(client2, server2, |data, to| {
            if mode == Mode::Rechunk {
                rechunk(data, to, &mut rng, &up_changes)
            } else {
                to.write_all(data)
            }
        })
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed.rotate_left(17));
    let mut frames = FrameStage {
        mode,
        buf: Vec::new(),
        done: false,
        changes: changes.clone(),
    };
    pipe_server(server, client, mode, &mut rng, &mut frames);
    let _ = up.join();
}

/// Copies `from` to `to` through `write` until the end of `from`'s stream; passes an end of
/// stream on as a half-close and a reset as a reset.
fn pipe(
    mut from: TcpStream,
    to: TcpStream,
    mut write: impl FnMut(&[u8], &mut TcpStream) -> io::Result<()>,
) {
    let mut to = to;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if write(&chunk[..n], &mut to).is_err() {
                    reset(&from);
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                reset(&to);
                return;
            }
        }
    }
}

/// Makes the close of `s` a reset, now.
fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
    let _ = s.shutdown(Shutdown::Both);
}

fn rechunk(
    data: &[u8],
    to: &mut TcpStream,
    rng: &mut ChaCha8Rng,
    changes: &AtomicU64,
) -> io::Result<()> {
    // Small reads are cut into 1 to 7 octets with occasional pauses; large ones into pieces of up
    // to 4 KiB without pauses, so that a megabyte frame is not turned into a trickle that an idle
    // timeout rightly ends (partial frames do not count as activity, spec §8.3).
    let small = data.len() <= 512;
    let mut at = 0;
    while at < data.len() {
        let most = if small { 7 } else { 4096 };
        let n = (1 + (rng.next_u32() % most) as usize).min(data.len() - at);
        if n < data.len() {
            changes.fetch_add(1, Ordering::Relaxed);
        }
        to.write_all(&data[at..at + n])?;
        at += n;
        if small && rng.next_u32().is_multiple_of(16) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

/// The server-to-client direction: reads, holds for the mode's window, forwards.
fn pipe_server(
    mut from: TcpStream,
    mut to: TcpStream,
    mode: Mode,
    rng: &mut ChaCha8Rng,
    frames: &mut FrameStage,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut held: Vec<u8> = Vec::new();
    let hold = matches!(mode, Mode::Coalesce | Mode::Reorder);
    let mut reads = 0u32;
    loop {
        // After a read, a holding mode keeps reading for 5 ms to gather what follows.
        let _ = from.set_read_timeout(if hold && !held.is_empty() {
            Some(Duration::from_millis(5))
        } else {
            None
        });
        let read = from.read(&mut chunk);
        let (data, end): (&[u8], Option<bool>) = match read {
            Ok(0) => (&[], Some(true)),
            Ok(n) => (&chunk[..n], None),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                (&[], None)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => (&[], Some(false)),
        };
        if !data.is_empty() {
            reads += 1;
        }
        held.extend_from_slice(data);
        let window_over = !hold || data.is_empty() || held.len() >= 1 << 20;
        if window_over || end.is_some() {
            let out = if mode.frames() {
                frames.push(&held)
            } else {
                std::mem::take(&mut held)
            };
            held.clear();
            if reads > 1 && mode == Mode::Coalesce {
                frames.changes.fetch_add(1, Ordering::Relaxed);
            }
            reads = 0;
            let sent = if mode == Mode::Rechunk {
                rechunk(&out, &mut to, rng, &frames.changes)
            } else {
                to.write_all(&out)
            };
            if sent.is_err() {
                reset(&from);
                return;
            }
        }
        match end {
            Some(true) => {
                let rest = std::mem::take(&mut frames.buf);
                let _ = to.write_all(&rest);
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Some(false) => {
                let rest = std::mem::take(&mut frames.buf);
                let _ = to.write_all(&rest);
                reset(&to);
                return;
            }
            None => {}
        }
    }
}

/// Whole frames of the server's output, rewritten by a frame-level mode.
struct FrameStage {
    mode: Mode,
    /// Octets of an incomplete frame.
    buf: Vec<u8>,
    /// The breaking modes act once per connection.
    done: bool,
    changes: Arc<AtomicU64>,
}

impl FrameStage {
    /// Takes octets; returns what to forward now (whole frames, rewritten).
    fn push(&mut self, data: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some(len) = FrameHeader::peek_length(&self.buf[at..]) {
            let len = len as usize;
            if !(8..=16 << 20).contains(&len) {
                // Not a frame the proxy can cut: forward the rest unchanged from here on.
                frames.push(self.buf[at..].to_vec());
                at = self.buf.len();
                break;
            }
            if self.buf.len() - at < 4 + len {
                break;
            }
            frames.push(self.buf[at..at + 4 + len].to_vec());
            at += 4 + len;
        }
        self.buf.drain(..at);
        self.rewrite(&mut frames);
        frames.concat()
    }

    fn rewrite(&mut self, frames: &mut Vec<Vec<u8>>) {
        let id = |f: &[u8]| FrameHeader::peek(f).map_or(0, |h| h.request_id);
        let ty = |f: &[u8]| FrameHeader::peek(f).map_or(0, |h| h.msg_type.to_u8());
        match self.mode {
            Mode::Reorder => {
                // Reverse each run of consecutive responses (ID not 0): rule 2 of §3.6.1.
                let mut start = 0;
                while start < frames.len() {
                    if id(&frames[start]) == 0 {
                        start += 1;
                        continue;
                    }
                    let mut end = start;
                    while end < frames.len() && id(&frames[end]) != 0 {
                        end += 1;
                    }
                    if end - start > 1 {
                        frames[start..end].reverse();
                        self.changes.fetch_add(1, Ordering::Relaxed);
                    }
                    start = end;
                }
            }
            Mode::Rechunk | Mode::Coalesce => {}
            _ if self.done => {}
            Mode::DropResponse => {
                if let Some(k) = frames.iter().position(|f| id(f) != 0) {
                    frames.remove(k);
                    self.done = true;
                    self.changes.fetch_add(1, Ordering::Relaxed);
                }
            }
            Mode::DuplicateResponse => {
                if let Some(k) = frames.iter().position(|f| id(f) != 0) {
                    let copy = frames[k].clone();
                    frames.insert(k, copy);
                    self.done = true;
                    self.changes.fetch_add(1, Ordering::Relaxed);
                }
            }
            Mode::CorruptId => {
                if let Some(f) = frames.iter_mut().find(|f| id(f) != 0) {
                    f[8] ^= 0x40;
                    self.done = true;
                    self.changes.fetch_add(1, Ordering::Relaxed);
                }
            }
            Mode::CorruptPayload => {
                const ECHO_REPLY: u8 = 0x06;
                if let Some(f) = frames
                    .iter_mut()
                    .find(|f| ty(f) == ECHO_REPLY && f.len() > 16)
                {
                    let last = f.len() - 1;
                    f[last] ^= 0x01;
                    self.done = true;
                    self.changes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
