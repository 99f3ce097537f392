//! Driving a [`ServerSession`] by hand, the way a server's event loop does: octets in, events
//! out, answers in, octets out, timers — with no socket and a simulated clock, so the same code
//! runs under any I/O model (the reference server drives it over mio, threads and tokio).
//!
//! `cargo run -p echowire-codec --example server_session`

use std::io::IoSlice;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use echowire_codec::frame::{BASE_VERSION, DEFAULT_MAX_FRAME_SIZE, PREFACE};
use echowire_codec::message::*;
use echowire_codec::service::{Reply, Service, dispatch};
use echowire_codec::session::{Event, ServerConfig, ServerSession};
use echowire_codec::{FrameDecoder, message};

/// The application: one method per request type (PING is answered by the session itself).
struct App;

impl Service for App {
    fn echo(&mut self, _id: u32, r: Echo) -> Reply<EchoReply> {
        Reply::Now(EchoReply { payload: r.payload })
    }
    fn compute(&mut self, _id: u32, r: Compute) -> Reply<ComputeResult> {
        Reply::Now(ComputeResult {
            digest: compute_digest(r.cost, &r.seed),
        })
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
        Reply::Now(StatsReply::from_pairs([("requests", 1)]))
    }
}

/// Serves every event the session has, answering requests inline.
fn serve(session: &mut ServerSession, now: Instant) {
    while let Some(ev) = session.poll_event(now) {
        match ev {
            Event::Request { id, message } => {
                if let Some(response) = dispatch(&mut App, id, message) {
                    session.respond(id, &response, now);
                }
            }
            other => println!("server event: {other:?}"),
        }
    }
}

/// What a socket would carry out: the session lends its queue as slices (one vectored write),
/// and is told how much was written; here everything "is written".
fn transmit(session: &mut ServerSession) -> Vec<u8> {
    let mut wire = Vec::new();
    while session.pending_output() > 0 {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = session.poll_transmit(&mut slices);
        let written: usize = slices[..n].iter().map(|s| s.len()).sum();
        for s in &slices[..n] {
            wire.extend_from_slice(s);
        }
        session.handle_written(written);
    }
    wire
}

/// Decodes the server's frames as a client of `version` would (`None`: during the handshake).
fn show(wire: &[u8], version: Option<u8>) {
    let ctx = DecodeContext {
        receiver: Role::Client,
        version,
        capabilities: 0,
    };
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let mut buf = BytesMut::from(wire);
    while let Some(frame) = decoder
        .decode(&mut buf)
        .expect("the server's frames are valid")
    {
        let msg = message::decode(&frame, &ctx).expect("and so are their bodies");
        println!("  <- id {}: {msg:?}", frame.header.request_id);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let config = ServerConfig {
        idle_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let mut session = ServerSession::new(config, start);

    // The client's preface and HELLO, built by hand, arriving in two pieces.
    let mut hello = PREFACE.to_vec();
    let msg: Message<&[u8]> = Message::Hello(Hello {
        min_version: 1,
        max_version: 2,
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        capabilities: 0,
        agent: Str::from("example"),
    });
    msg.encode(BASE_VERSION, 0, DEFAULT_MAX_FRAME_SIZE, &mut hello)?;
    let (a, b) = hello.split_at(5);
    session.handle_input(a);
    serve(&mut session, start);
    session.handle_input(b);
    serve(&mut session, start);
    println!("handshake: the server chose version {}", session.version());
    show(&transmit(&mut session), None);

    // Three requests in one read: ECHO and SUM go to the application, PING the session answers.
    let v = session.version();
    let mut input = Vec::new();
    Message::<&[u8]>::Echo(Echo { payload: b"hi" }).encode(
        v,
        1,
        DEFAULT_MAX_FRAME_SIZE,
        &mut input,
    )?;
    Message::<&[u8]>::Ping(Ping { data: 7 }).encode(v, 2, DEFAULT_MAX_FRAME_SIZE, &mut input)?;
    let sum: Message<&[u8]> = Message::Sum(Sum {
        values: vec![1, 2, 3],
    });
    sum.encode(v, 3, DEFAULT_MAX_FRAME_SIZE, &mut input)?;
    session.handle_input(&input);
    serve(&mut session, start);
    println!("requests answered:");
    show(&transmit(&mut session), Some(v));

    // Time passes with nothing outstanding: the session's timer says when to call it back, and
    // the idle timeout ends the connection with GOODBYE.
    let deadline = session.poll_timeout().expect("the idle timer is armed");
    println!("next timer in {:?}", deadline - start);
    session.handle_timeout(deadline);
    serve(&mut session, deadline);
    println!("after the idle timeout:");
    show(&transmit(&mut session), Some(v));
    // The client closes its side; the session is then done (a driver does a lingering close).
    session.handle_eof();
    serve(&mut session, deadline);
    println!(
        "finished: {}, reason: {:?}",
        session.is_finished(),
        session.close_reason()
    );
    assert!(session.is_finished());
    Ok(())
}
