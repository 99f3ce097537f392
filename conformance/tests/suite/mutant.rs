//! Deliberately broken servers: the codec's `ServerSession` behind a thread-per-connection loop,
//! with one small fault injected at the byte level. The suite must catch every one of them.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use echowire_codec::Frame;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::frame::{FRAME_OVERHEAD, MAX_MAX_FRAME_SIZE, MessageType, PREFACE};
use echowire_codec::message::{
    Compute, ComputeResult, Echo, EchoReply, Message, RkyvBody, Stats, StatsReply, Sum,
};
use echowire_codec::message::{SumResult, compute_digest};
use echowire_codec::service::{Reply, Service, dispatch};
use echowire_codec::session::{Event, ServerConfig, ServerSession};

/// The injected faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// None: the control server, which must pass.
    None,
    /// Assumes one read is one frame: bytes of an incomplete frame are dropped after each read.
    OneReadOneFrame,
    /// Reads the length prefix little-endian.
    LittleEndianLength,
    /// Announces a 1 MiB limit but enforces none (up to 16 MiB).
    NoMaxFrameCheck,
    /// When one read holds two or more complete frames, the second is dropped.
    DropSecondFrameInRead,
    /// Stops answering (closes) as soon as the client half-closes.
    StopAfterHalfClose,
    /// A response that completes out of order carries the ID of the oldest outstanding request.
    WrongIdOutOfOrder,
    /// Always announces version 1 in WELCOME, whatever was negotiated.
    IgnoreVersionNegotiation,
    /// Closes the connection on an unknown message type instead of answering UNKNOWN_TYPE.
    CloseOnUnknownType,
    /// Negotiates the lowest common version instead of the highest (it reads HELLO's
    /// `max_version` as its `min_version`): consistent, so only a dedicated probe exposes it.
    PickLowestVersion,
}

/// All faults but `None`.
pub const FAULTS: [Fault; 9] = [
    Fault::OneReadOneFrame,
    Fault::LittleEndianLength,
    Fault::NoMaxFrameCheck,
    Fault::DropSecondFrameInRead,
    Fault::StopAfterHalfClose,
    Fault::WrongIdOutOfOrder,
    Fault::IgnoreVersionNegotiation,
    Fault::CloseOnUnknownType,
    Fault::PickLowestVersion,
];

const ANNOUNCED_LIMIT: u32 = 1 << 20;

/// A running mutant; stops when dropped.
pub struct Mutant {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for Mutant {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

pub fn spawn(fault: Fault) -> Mutant {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        while !s.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_nodelay(true).unwrap();
                    std::thread::spawn(move || serve(stream, fault));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    Mutant { addr, stop }
}

/// Cuts the raw input stream into the preface and whole frames, reading the prefix in either
/// byte order and re-emitting it big-endian.
struct Splitter {
    preface_left: usize,
    buf: Vec<u8>,
    little_endian: bool,
}

impl Splitter {
    fn push(&mut self, data: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut passthrough = Vec::new();
        let mut data = data;
        if self.preface_left > 0 {
            let n = data.len().min(self.preface_left);
            passthrough.extend_from_slice(&data[..n]);
            self.preface_left -= n;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        loop {
            if self.buf.len() < 4 {
                break;
            }
            let raw: [u8; 4] = self.buf[..4].try_into().unwrap();
            let len = if self.little_endian {
                u32::from_le_bytes(raw)
            } else {
                u32::from_be_bytes(raw)
            };
            if len as usize > MAX_MAX_FRAME_SIZE as usize || len < 8 {
                // Let the session see (and reject) the prefix as it reads it.
                let mut f = len.to_be_bytes().to_vec();
                f.extend_from_slice(&self.buf[4..]);
                self.buf.clear();
                frames.push(f);
                break;
            }
            if self.buf.len() < 4 + len as usize {
                break;
            }
            let mut f = len.to_be_bytes().to_vec();
            f.extend_from_slice(&self.buf[4..4 + len as usize]);
            self.buf.drain(..4 + len as usize);
            frames.push(f);
        }
        (passthrough, frames)
    }
}

/// What a mutant serves: like the reference server, COMPUTE on a thread of its own.
struct Served<'a> {
    tx: &'a std::sync::mpsc::Sender<(u32, Message)>,
    running: &'a mut usize,
}

impl Service for Served<'_> {
    fn echo(&mut self, _id: u32, r: Echo) -> Reply<EchoReply> {
        Reply::Now(EchoReply { payload: r.payload })
    }
    fn compute(&mut self, id: u32, r: Compute) -> Reply<ComputeResult> {
        let tx = self.tx.clone();
        *self.running += 1;
        std::thread::spawn(move || {
            let digest = compute_digest(r.cost, &r.seed);
            let _ = tx.send((id, Message::ComputeResult(ComputeResult { digest })));
        });
        Reply::Later
    }
    fn sum(&mut self, _id: u32, r: Sum) -> Reply<SumResult> {
        Reply::Now(SumResult::of(r.values))
    }
    fn sum_archived(&mut self, _id: u32, r: RkyvBody) -> Reply<SumResult> {
        match echowire_codec::body::archive::check_sum(&r.archive) {
            Ok(a) => Reply::Now(SumResult::of(a.values())),
            Err(e) => Reply::error(e.code(), e.to_string()),
        }
    }
    fn stats(&mut self, _id: u32, _r: Stats) -> Reply<StatsReply> {
        Reply::Now(StatsReply::from_pairs([("mutant", 1)]))
    }
}

fn serve(mut stream: TcpStream, fault: Fault) {
    let now = Instant::now();
    let max = if fault == Fault::NoMaxFrameCheck {
        MAX_MAX_FRAME_SIZE
    } else {
        ANNOUNCED_LIMIT
    };
    let config = ServerConfig {
        max_frame_size: max,
        handshake_timeout: Duration::from_secs(10),
        // This loop writes with a blocking write_all outside the session, so the session cannot
        // see output still in flight: a long idle timeout keeps a slow reader from looking idle.
        idle_timeout: Some(Duration::from_secs(60)),
        ..ServerConfig::default()
    };
    let mut session = ServerSession::new(config, now);
    let (mut fed, mut hello_min) = (0usize, None::<u8>);
    let mut splitter = Splitter {
        preface_left: PREFACE.len(),
        buf: Vec::new(),
        little_endian: fault == Fault::LittleEndianLength,
    };
    // These faults see the input as the frames a read completed (the mutant cuts it itself).
    let split_input = matches!(
        fault,
        Fault::LittleEndianLength
            | Fault::DropSecondFrameInRead
            | Fault::CloseOnUnknownType
            | Fault::OneReadOneFrame
    );
    let (tx, rx) = channel::<(u32, Message)>();
    let mut running = 0usize;
    let mut order: VecDeque<u32> = VecDeque::new();
    let mut out_dec = FrameDecoder::new(u32::MAX);
    let mut out_buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        while let Ok((id, r)) = rx.try_recv() {
            running -= 1;
            let _ = session.respond(id, &r, now);
        }
        while let Some(ev) = session.poll_event(now) {
            let Event::Request { id, message } = ev else {
                continue;
            };
            order.push_back(id);
            let mut served = Served {
                tx: &tx,
                running: &mut running,
            };
            if let Some(response) = dispatch(&mut served, id, message) {
                let _ = session.respond(id, &response, now);
            }
        }
        // Output, possibly rewritten.
        let out = session.take_output();
        if !out.is_empty() {
            let bytes = if matches!(
                fault,
                Fault::WrongIdOutOfOrder | Fault::IgnoreVersionNegotiation | Fault::NoMaxFrameCheck
            ) {
                out_buf.extend_from_slice(&out);
                let mut rewritten = Vec::new();
                while let Ok(Some(f)) = out_dec.decode(&mut out_buf) {
                    rewritten.extend_from_slice(&rewrite(f, fault, &mut order));
                }
                rewritten
            } else {
                for id in frame_ids(&out) {
                    order.retain(|&x| x != id);
                }
                out.to_vec()
            };
            if stream.write_all(&bytes).is_err() {
                return;
            }
        }
        if session.is_finished() {
            let _ = stream.shutdown(Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            while matches!(stream.read(&mut chunk), Ok(n) if n > 0) {}
            return;
        }
        let wait = if running > 0 {
            Duration::from_millis(2)
        } else {
            Duration::from_millis(50)
        };
        let _ = stream.set_read_timeout(Some(wait));
        match stream.read(&mut chunk) {
            Ok(0) => {
                if fault == Fault::StopAfterHalfClose {
                    return;
                }
                session.handle_eof();
            }
            Ok(n) => {
                if fault == Fault::PickLowestVersion {
                    // Connection offsets 20 and 21 are HELLO's min_version and max_version
                    // (8 preface + 4 length + 8 header octets before them).
                    for (k, b) in chunk[..n].iter_mut().enumerate() {
                        match fed + k {
                            20 => hello_min = Some(*b),
                            21 => *b = hello_min.unwrap_or(*b),
                            _ => {}
                        }
                    }
                    fed += n;
                }
                if split_input {
                    let (pass, frames) = splitter.push(&chunk[..n]);
                    session.handle_input(&pass);
                    for (i, f) in frames.iter().enumerate() {
                        if fault == Fault::DropSecondFrameInRead && i == 1 {
                            continue;
                        }
                        if fault == Fault::CloseOnUnknownType
                            && f.len() >= 6
                            && matches!(MessageType::from_u8(f[5]), MessageType::Unknown(_))
                        {
                            return;
                        }
                        session.handle_input(f);
                    }
                    if fault == Fault::OneReadOneFrame {
                        // One read is taken for whole frames: the start of the next is dropped.
                        splitter.buf.clear();
                    }
                } else {
                    session.handle_input(&chunk[..n]);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        if let Some(t) = session.poll_timeout()
            && Instant::now() >= t
        {
            session.handle_timeout(Instant::now());
        }
    }
}

fn frame_ids(bytes: &[u8]) -> Vec<u32> {
    let mut dec = FrameDecoder::new(u32::MAX);
    let mut b = BytesMut::from(bytes);
    let mut ids = Vec::new();
    while let Ok(Some(f)) = dec.decode(&mut b) {
        ids.push(f.header.request_id);
    }
    ids
}

fn rewrite(f: Frame, fault: Fault, order: &mut VecDeque<u32>) -> Vec<u8> {
    let mut header = f.header;
    let mut body = f.body.to_vec();
    match (fault, header.msg_type) {
        (Fault::IgnoreVersionNegotiation, MessageType::Welcome) => body[0] = 1,
        (Fault::NoMaxFrameCheck, MessageType::Welcome) => {
            body[1..5].copy_from_slice(&ANNOUNCED_LIMIT.to_be_bytes())
        }
        (Fault::WrongIdOutOfOrder, _) if header.request_id != 0 => {
            let id = header.request_id;
            if let Some(&oldest) = order.front()
                && oldest != id
            {
                header.request_id = oldest;
            }
            order.retain(|&x| x != id);
        }
        _ => {}
    }
    let mut out = Vec::with_capacity(FRAME_OVERHEAD + body.len());
    header.encode(&mut out);
    out.extend_from_slice(&body);
    out
}
