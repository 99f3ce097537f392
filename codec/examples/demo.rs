//! A working demo of the codec: a server session driven over a real socket pair by a thread,
//! and the blocking client on the other end. `cargo run -p echowire-codec --example demo`

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use echowire_codec::client::Client;
use echowire_codec::message::*;
use echowire_codec::service::{Reply, Service, dispatch};
use echowire_codec::session::{Event, ServerConfig, ServerSession};

/// What the demo server does with each request type: the compiler asks for one method per
/// request type of the message table.
struct Demo {
    answered: u64,
}

impl Service for Demo {
    fn echo(&mut self, _id: u32, r: Echo) -> Reply<EchoReply> {
        self.answered += 1;
        Reply::Now(EchoReply { payload: r.payload })
    }
    fn compute(&mut self, _id: u32, r: Compute) -> Reply<ComputeResult> {
        self.answered += 1;
        Reply::Now(ComputeResult {
            digest: compute_digest(r.cost, &r.seed),
        })
    }
    fn sum(&mut self, _id: u32, r: Sum) -> Reply<SumResult> {
        self.answered += 1;
        Reply::Now(SumResult::of(r.values))
    }
    fn sum_archived(&mut self, _id: u32, r: RkyvBody) -> Reply<SumResult> {
        self.answered += 1;
        match echowire_codec::body::archive::check_sum(&r.archive) {
            Ok(a) => Reply::Now(SumResult::of(a.values())),
            Err(e) => Reply::error(e.code(), e.to_string()),
        }
    }
    fn stats(&mut self, _id: u32, _r: Stats) -> Reply<StatsReply> {
        Reply::Now(StatsReply::from_pairs([("answered", self.answered)]))
    }
}

/// The smallest possible driver: blocking reads into the session, inline answers.
fn serve(mut sock: UnixStream) -> std::io::Result<()> {
    let mut session = ServerSession::new(ServerConfig::default(), Instant::now());
    let mut service = Demo { answered: 0 };
    loop {
        while let Some(ev) = session.poll_event(Instant::now()) {
            if let Event::Request { id, message } = ev
                && let Some(response) = dispatch(&mut service, id, message)
            {
                let _ = session.respond(id, &response, Instant::now());
            }
        }
        echowire_codec::io::write_output(&mut session, &mut sock)?;
        sock.flush()?;
        if session.is_finished() {
            return Ok(());
        }
        // The session sizes the read and takes the end of the stream itself.
        echowire_codec::io::read_input(&mut session, &mut sock)?;
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
        .map(|i| client.queue(&Message::<&[u8]>::Ping(Ping { data: i })))
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
