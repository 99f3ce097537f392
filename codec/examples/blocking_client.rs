//! The blocking [`Client`] over TCP, against an in-process server: a thread that accepts one
//! connection on 127.0.0.1 (port 0) and drives a [`ServerSession`] with blocking reads. Nothing
//! else needs to run.
//!
//! `cargo run -p echowire-codec --example blocking_client`

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use echowire_codec::client::{Client, Config, Operation};
use echowire_codec::message::*;
use echowire_codec::service::{Reply, Service, dispatch};
use echowire_codec::session::{ClientConfig, Event, ServerConfig, ServerSession};

/// The server's application: one method per request type.
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
        Reply::Now(StatsReply::from_pairs([("connections", 1)]))
    }
}

/// The smallest server driver: answer inline, write, read, until the session is done. A
/// COMPUTE with a cost above 1000 is held back and answered only with the next request, to
/// show the client's request timeout.
fn serve(mut sock: TcpStream) -> std::io::Result<()> {
    let mut session = ServerSession::new(ServerConfig::default(), Instant::now());
    let mut held = None;
    loop {
        while let Some(ev) = session.poll_event(Instant::now()) {
            let Event::Request { id, message } = ev else {
                continue;
            };
            if let Some((late, request)) = held.take()
                && let Some(response) = dispatch(&mut App, late, request)
            {
                session.respond(late, &response, Instant::now());
            }
            if matches!(&message, Message::Compute(c) if c.cost > 1000) {
                held = Some((id, message));
            } else if let Some(response) = dispatch(&mut App, id, message) {
                session.respond(id, &response, Instant::now());
            }
        }
        echowire_codec::io::write_output(&mut session, &mut sock)?;
        sock.flush()?;
        if session.is_finished() {
            return Ok(());
        }
        if echowire_codec::io::read_input(&mut session, &mut sock)? != Some(0) {
            continue;
        }
        // The client closed: serve what is buffered, then stop.
        while session.poll_event(Instant::now()).is_some() {}
        return Ok(());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || serve(listener.accept()?.0));

    // Every wait is bounded: connect, WELCOME, each response, each write (and reads, if asked).
    let config = Config {
        connect_timeout: Some(Duration::from_secs(2)),
        write_timeout: Some(Duration::from_secs(5)),
        read_timeout: None, // the session's deadlines below bound every wait for the server
        session: ClientConfig {
            handshake_timeout: Some(Duration::from_secs(2)),
            request_timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    };
    let mut client = Client::connect_tcp_with(addr, config)?;
    println!("connected to {addr}: {:?}", client.negotiated());

    println!("ECHO    -> {:?}", client.echo(b"hello")?);
    println!("PING    -> {}", client.ping(42)?);
    println!("SUM     -> {:?}", client.sum(vec![1, 2, 3, -4], false)?);
    let digest = client.compute(10, b"seed")?;
    println!("COMPUTE -> {}", hex::encode(digest));

    // Pipelining: queue many, one write, collect by ID in any order.
    let ids = (0..10)
        .map(|i| client.queue(&Message::<&[u8]>::Ping(Ping { data: i })))
        .collect::<Result<Vec<u32>, _>>()?;
    client.flush()?;
    for id in ids.iter().rev() {
        client.wait(*id)?;
    }
    println!("10 pipelined PINGs answered");

    // A request the server answers too late: a typed timeout, and the client stays usable
    // (the late response, which comes with the next request's, is dropped).
    match client.compute(5000, b"slow") {
        Err(e) => {
            assert!(matches!(e.timed_out(), Some(Operation::Response { .. })));
            println!("COMPUTE -> {e}");
        }
        Ok(_) => unreachable!("this server holds a cost above 1000 back"),
    }
    assert!(!client.is_closed());
    println!("PING    -> {} (still usable)", client.ping(7)?);
    println!("ECHO    -> {:?}", client.echo(b"after the timeout")?);

    // GOODBYE: the server answers what is outstanding, then closes.
    let rest = client.goodbye()?;
    println!(
        "GOODBYE: closed cleanly, {} responses collected during the drain",
        rest.len()
    );
    server.join().expect("server thread")?;
    Ok(())
}
