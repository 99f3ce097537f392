//! A working demo of the codec: a server session driven over a real socket pair by a thread,
//! and the blocking client on the other end. `cargo run -p echowire-codec --example demo`

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use bytes::BytesMut;
use echowire_codec::client::Client;
use echowire_codec::message::{SumResult, compute_digest};
use echowire_codec::session::{Event, RequestKind, Response, ServerConfig, ServerSession};

/// The smallest possible driver: blocking reads, inline answers.
fn serve(mut sock: UnixStream) -> std::io::Result<()> {
    let mut session = ServerSession::new(ServerConfig::default(), Instant::now());
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(ev) = session.poll_event(&mut buf, Instant::now()) {
            if let Event::Request(r) = ev {
                let response = match r.kind {
                    RequestKind::Echo { payload } => Response::EchoReply { payload },
                    RequestKind::Compute { cost, seed } => Response::ComputeResult {
                        digest: compute_digest(cost, &seed),
                    },
                    RequestKind::Sum(s) => Response::SumResult(SumResult::of(s.values)),
                    RequestKind::SumRkyv { archive } => {
                        match echowire_codec::body::archive::check_sum(&archive) {
                            Ok(a) => Response::SumResult(SumResult::of(a.values())),
                            Err(e) => Response::error(e.code(), e.to_string()),
                        }
                    }
                    RequestKind::Stats => {
                        Response::StatsReply(vec![("frames_in".into(), session.stats().frames_in)])
                    }
                    _ => Response::error(
                        echowire_codec::ErrorCode::UNKNOWN_TYPE,
                        "not served by the demo",
                    ),
                };
                session.respond(r.id, response, Instant::now());
            }
        }
        echowire_codec::io::write_outbox(session.outbox(), &mut sock)?;
        sock.flush()?;
        if session.is_finished() {
            return Ok(());
        }
        let n = sock.read(&mut chunk)?;
        if n == 0 {
            session.handle_eof();
        } else {
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (a, b) = UnixStream::pair()?;
    let server = std::thread::spawn(move || serve(b));
    let mut client = Client::handshake(a, Default::default())?;
    let n = client.negotiated().clone();
    println!(
        "handshake: version {}, server limit {} bytes, capabilities {:#x}",
        n.version, n.max_frame_size, n.capabilities
    );
    println!(
        "ECHO    -> {:?}",
        String::from_utf8_lossy(&client.echo(b"hello, echowire")?)
    );
    println!("PING    -> {}", client.ping(42)?);
    println!("COMPUTE -> {}", hex_digest(&client.compute(1000, b"seed")?));
    println!(
        "SUM     -> {:?} (standard body)",
        client.sum(vec![1, 2, 3, -4], false)?
    );
    println!(
        "SUM     -> {:?} (rkyv body)",
        client.sum(vec![1, 2, 3, -4], true)?
    );
    println!("STATS   -> {:?}", client.stats()?);
    let ids: Vec<u32> = (0..100)
        .map(|i| client.queue(&RequestKind::Ping { data: i }))
        .collect::<Result<_, _>>()?;
    client.flush()?;
    for id in ids.iter().rev() {
        client.wait(*id)?;
    }
    println!("pipelined 100 PINGs, all answered");
    client.goodbye()?;
    server.join().expect("server thread")?;
    println!("GOODBYE exchanged, both sides closed cleanly");
    Ok(())
}

fn hex_digest(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
