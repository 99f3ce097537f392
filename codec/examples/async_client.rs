//! The tokio [`AsyncClient`] (feature `async-client`), against an in-process server: a thread
//! that accepts one connection on 127.0.0.1 (port 0) and drives a [`ServerSession`] with
//! blocking reads. Nothing else needs to run.
//!
//! The client spawns its connection task on the current tokio runtime, which needs its I/O and
//! time drivers (`#[tokio::main]` or `Builder::enable_all`).
//!
//! `cargo run -p echowire-codec --example async_client --features async-client`

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use echowire_codec::async_client::AsyncClient;
use echowire_codec::message::*;
use echowire_codec::service::{Reply, Service, dispatch};
use echowire_codec::session::{ClientConfig, Event, ServerConfig, ServerSession};

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

/// A blocking server driver for one connection, in its own thread.
fn serve(mut sock: TcpStream) -> std::io::Result<()> {
    let mut session = ServerSession::new(ServerConfig::default(), Instant::now());
    loop {
        while let Some(ev) = session.poll_event(Instant::now()) {
            if let Event::Request { id, message } = ev
                && let Some(response) = dispatch(&mut App, id, message)
            {
                session.respond(id, &response, Instant::now());
            }
        }
        echowire_codec::io::write_output(&mut session, &mut sock)?;
        sock.flush()?;
        if session.is_finished() {
            return Ok(());
        }
        if echowire_codec::io::read_input(&mut session, &mut sock)? == Some(0) {
            while session.poll_event(Instant::now()).is_some() {}
            return Ok(());
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || serve(listener.accept()?.0));

    // Connecting and the handshake are each bounded by the last argument.
    let config = ClientConfig {
        request_timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let client = AsyncClient::connect_tcp(addr, config, Duration::from_secs(2)).await?;
    println!(
        "connected to {addr}: version {}",
        client.negotiated().version
    );

    // Pipelined: every request is on the wire before any response is awaited.
    let echo = client
        .send(Message::Echo(Echo {
            payload: Bytes::from_static(b"hello"),
        }))
        .await?;
    let pings = [
        client.send(Message::Ping(Ping { data: 1 })).await?,
        client.send(Message::Ping(Ping { data: 2 })).await?,
    ];
    let sum = client
        .send(Message::Sum(Sum {
            values: vec![1, 2, 3],
        }))
        .await?;
    // Each wait has its own bound too (`None`: the session's request timeout alone).
    let wait = Some(Duration::from_secs(2));
    println!("ECHO -> {:?}", echo.response(wait).await?);
    for p in pings {
        println!("PING -> {:?}", p.response(wait).await?);
    }
    println!("SUM  -> {:?}", sum.response(wait).await?);

    // A clone shares the connection: requests from several tasks are pipelined on it.
    let other = client.clone();
    let task = tokio::spawn(async move {
        let request = Message::Compute(Compute {
            cost: 10,
            seed: Bytes::from_static(b"seed"),
        });
        other.request(request, Some(Duration::from_secs(2))).await
    });
    println!("COMPUTE (from another task) -> {:?}", task.await??);

    client.goodbye().await?;
    server.join().expect("server thread")?;
    println!("GOODBYE: closed cleanly");
    Ok(())
}
