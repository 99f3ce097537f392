//! Driving a [`ClientSession`] by hand: the sans-IO client the blocking and the async clients
//! are built on. Here it talks to a [`ServerSession`] in memory, and time is simulated to show
//! the session's own deadlines (spec §9.4): the wait for WELCOME and for each response.
//!
//! `cargo run -p echowire-codec --example client_session`

use std::time::{Duration, Instant};

use bytes::Bytes;
use echowire_codec::message::{Echo, EchoReply, Message, Ping};
use echowire_codec::session::{
    ClientConfig, ClientEvent, ClientSession, Event, ServerConfig, ServerSession,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let config = ClientConfig {
        handshake_timeout: Some(Duration::from_secs(5)),
        request_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let mut client = ClientSession::new(config, start);
    let mut server = ServerSession::new(ServerConfig::default(), start);

    // The session queued the preface and HELLO at once; its timer bounds the wait for WELCOME.
    println!(
        "WELCOME awaited until start + {:?}",
        client.poll_timeout().unwrap() - start
    );
    server.handle_input(&client.take_output());
    while server.poll_event(start).is_some() {}
    client.handle_input(&server.take_output());
    let Some(ClientEvent::Welcome(n)) = client.poll_event(start)? else {
        panic!("expected WELCOME")
    };
    println!(
        "negotiated version {}, up to {} outstanding",
        n.version, n.max_outstanding
    );

    // Two pipelined requests; the session picks their IDs and arms a deadline for each.
    let echo: Message = Message::Echo(Echo {
        payload: Bytes::from_static(b"payload"),
    });
    let a = client.send(&echo, start)?;
    let b = client.send(&Message::<&[u8]>::Ping(Ping { data: 9 }), start)?;
    server.handle_input(&client.take_output());

    // The server answers the PING at once (the session does that itself) and holds the ECHO.
    let mut held = None;
    while let Some(ev) = server.poll_event(start) {
        if let Event::Request { id, message } = ev {
            held = Some((id, message));
        }
    }
    client.handle_input(&server.take_output());
    let ev = client.poll_event(start)?.expect("the PONG");
    println!("request {b}: {ev:?}");

    // Three seconds later the ECHO's deadline has passed: the session says so (no clock inside:
    // the driver asks when to call back and passes the time in).
    let later = start + Duration::from_secs(3);
    assert!(client.poll_timeout().is_some_and(|t| t <= later));
    client.handle_timeout(later);
    let ev = client.poll_event(later)?;
    assert_eq!(ev, Some(ClientEvent::TimedOut { id: Some(a) }));
    println!(
        "request {a}: {ev:?}; still outstanding: {}",
        client.outstanding()
    );

    // Its late response is still matched to it (the ID was not reused), then it is done.
    let (id, Message::Echo(e)) = held.expect("the held ECHO") else {
        panic!("expected the ECHO")
    };
    let reply: Message = Message::EchoReply(EchoReply { payload: e.payload });
    server.respond(id, &reply, later);
    client.handle_input(&server.take_output());
    let ev = client.poll_event(later)?;
    println!("late: {ev:?}; outstanding: {}", client.outstanding());

    // GOODBYE: the server answers what is outstanding (nothing) and closes.
    client.goodbye();
    server.handle_input(&client.take_output());
    while server.poll_event(later).is_some() {}
    client.handle_input(&server.take_output());
    while let Some(ev) = client.poll_event(later)? {
        println!("closing: {ev:?}");
    }
    client.handle_eof()?;
    println!("closed: {}", client.is_closed());
    Ok(())
}
