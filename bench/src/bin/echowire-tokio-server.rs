//! The tokio baseline server. `echowire-tokio-server [ADDR] [WORKERS]`; prints `listening on ADDR`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use bytes::Bytes;
use echowire_codec::frame::{BASE_VERSION, Flags, Frame, MessageType, PREFACE};
use echowire_codec::message::{self, DecodeContext, Message, compute_digest};
use echowire_codec::tokio::FrameCodec;
use echowire_codec::{ErrorCode, FrameHeader};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, FramedWrite};

const MAX_FRAME: u32 = 1 << 20;

fn encode(version: u8, id: u32, m: &Message) -> Frame {
    let mut body = Vec::with_capacity(m.body_len(version).unwrap_or(0));
    m.encode_body(version, &mut body)
        .expect("our messages encode");
    Frame {
        header: FrameHeader::new(version, m.msg_type(), m.flags(), id, body.len()),
        body: body.into(),
        offset: 0,
    }
}

fn error(version: u8, id: u32, code: ErrorCode, text: &str) -> Frame {
    encode(
        version,
        id,
        &Message::Error(message::Error {
            code,
            message: text.into(),
            retry_after_ms: 0,
        }),
    )
}

async fn serve(sock: tokio::net::TcpStream, pool: Arc<Semaphore>) {
    let _ = sock.set_nodelay(true);
    let (mut rd, wr) = sock.into_split();
    let mut preface = [0u8; 8];
    if rd.read_exact(&mut preface).await.is_err() || preface != PREFACE {
        return;
    }
    let mut frames = FramedRead::new(rd, FrameCodec::new(MAX_FRAME).after_preface());
    let mut sink = FramedWrite::new(wr, FrameCodec::new(u32::MAX));
    let Some(Ok(first)) = frames.next().await else {
        return;
    };
    let hs = DecodeContext {
        receiver: message::Role::Server,
        version: None,
        capabilities: 0,
    };
    let version = match message::decode(&first, &hs) {
        Ok(Message::Hello(h)) if h.min_version <= 2 && h.max_version >= 1 => h.max_version.min(2),
        _ => {
            let _ = sink
                .send(error(
                    BASE_VERSION,
                    0,
                    ErrorCode::HANDSHAKE_REQUIRED,
                    "expected HELLO",
                ))
                .await;
            return;
        }
    };
    let welcome = Message::Welcome(message::Welcome {
        version,
        max_frame_size: MAX_FRAME,
        max_outstanding: 1024,
        capabilities: 0,
        agent: "tokio-baseline".into(),
    });
    if sink.send(encode(BASE_VERSION, 0, &welcome)).await.is_err() {
        return;
    }
    // The writer task: batches whatever is ready into one flush.
    let (tx, mut rx) = mpsc::channel::<Frame>(4096);
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            if sink.feed(f).await.is_err() {
                return;
            }
            while let Ok(f) = rx.try_recv() {
                if sink.feed(f).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let ctx = DecodeContext::server(version, 0);
    while let Some(Ok(frame)) = frames.next().await {
        let id = frame.header.request_id;
        let reply = match message::decode(&frame, &ctx) {
            // ECHO_REPLY's body is ECHO's body: share it, no copy.
            Ok(Message::Echo(_)) => Frame::new(
                version,
                MessageType::EchoReply,
                Flags::NONE,
                id,
                frame.body.clone(),
            ),
            Ok(Message::Ping(p)) => {
                encode(version, id, &Message::Pong(message::Pong { data: p.data }))
            }
            Ok(Message::Compute(c)) => {
                let Ok(permit) = pool.clone().try_acquire_owned() else {
                    let _ = tx.send(error(version, id, ErrorCode::BUSY, "busy")).await;
                    continue;
                };
                let (cost, seed, tx) = (c.cost, Bytes::copy_from_slice(&c.seed), tx.clone());
                tokio::task::spawn_blocking(move || {
                    let digest = compute_digest(cost, &seed);
                    drop(permit);
                    let _ = tx.blocking_send(encode(
                        version,
                        id,
                        &Message::ComputeResult(message::ComputeResult { digest }),
                    ));
                });
                continue;
            }
            Ok(Message::Goodbye(_)) => break,
            Ok(_) => error(
                version,
                id,
                ErrorCode::UNKNOWN_TYPE,
                "not served by the baseline",
            ),
            Err(e) if e.is_connection_error() => break,
            Err(e) => error(version, e.request_id(), e.code(), "rejected"),
        };
        if tx.send(reply).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let workers: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // A fair baseline: COMPUTE runs on at most `workers` blocking threads at once (the reference
    // server's worker pool size), the rest waits in tokio's blocking queue, admitted up to the
    // same bound (256 queued) as the reference server's queue. Without `max_blocking_threads`
    // tokio would start up to 512 threads that starve the runtime thread on a pinned core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(workers)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("listening on {}", listener.local_addr()?);
        // The same bound on heavy work as the reference server's default worker queue.
        let pool = Arc::new(Semaphore::new(256 + workers));
        loop {
            let (sock, _) = listener.accept().await?;
            tokio::spawn(serve(sock, pool.clone()));
        }
    })
}
