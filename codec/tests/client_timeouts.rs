//! The blocking client's timeouts against servers that stop talking: every test runs a server on
//! 127.0.0.1 port 0 (or a Unix socket pair) in a thread, keeps the client's bounds short (200 ms)
//! and checks the kind of error only, never a duration. Each client runs in its own thread
//! under a generous overall bound, so a client that hangs fails the test instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use echowire_codec::client::{Client, Config, Error, Operation};
use echowire_codec::frame::MAX_MAX_FRAME_SIZE;
use echowire_codec::message::{Echo, EchoReply, Message};
use echowire_codec::session::{
    ClientConfig, ClientError, Event, ServerConfig, ServerSession, SessionState,
};

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(5);

/// Runs `f` in a thread; fails if it has not returned within 20 s (the client hung).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the client did not return: it hung")
}

/// A listener on 127.0.0.1, port 0, whose one connection is handled by `serve` in a thread.
fn server(serve: impl FnOnce(TcpStream) + Send + 'static) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(stream);
    });
    (addr, handle)
}

/// Reads and discards until the client closes: a server that never answers.
fn silent(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

/// A server session that completes the handshake and hands each request to `on_request` (which
/// may answer it now, later or never); it serves until the client closes.
fn serving(mut on_request: impl FnMut(&mut ServerSession, u32, Message)) -> impl FnOnce(TcpStream) {
    move |mut stream| {
        let config = ServerConfig {
            idle_timeout: None,
            ..Default::default()
        };
        let mut session = ServerSession::new(config, Instant::now());
        loop {
            while let Some(ev) = session.poll_event(Instant::now()) {
                if let Event::Request { id, message } = ev {
                    on_request(&mut session, id, message);
                }
            }
            if echowire_codec::io::write_output(&mut session, &mut stream).is_err()
                || stream.flush().is_err()
                || session.is_finished()
            {
                return;
            }
            match echowire_codec::io::read_input(&mut session, &mut stream) {
                Ok(Some(n)) if n > 0 => {}
                _ => return,
            }
        }
    }
}

/// A server session that completes the handshake, then stops reading until `stop` fires (or
/// its sender is dropped).
fn handshake_then_deaf(stop: mpsc::Receiver<()>) -> impl FnOnce(TcpStream) {
    move |mut stream| {
        let config = ServerConfig {
            max_frame_size: MAX_MAX_FRAME_SIZE,
            idle_timeout: None,
            ..Default::default()
        };
        let mut session = ServerSession::new(config, Instant::now());
        while session.state() != SessionState::Open || session.pending_output() > 0 {
            while session.poll_event(Instant::now()).is_some() {}
            if echowire_codec::io::write_output(&mut session, &mut stream).is_err() {
                return;
            }
            if session.state() == SessionState::Open && session.pending_output() == 0 {
                break;
            }
            match echowire_codec::io::read_input(&mut session, &mut stream) {
                Ok(Some(n)) if n > 0 => {}
                _ => return,
            }
        }
        let _ = stop.recv();
    }
}

fn echo(payload: &'static [u8]) -> Message<&'static [u8]> {
    Message::Echo(Echo { payload })
}

fn config(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config {
        session: ClientConfig {
            handshake_timeout: Some(SHORT),
            request_timeout: Some(SHORT),
            ..Default::default()
        },
        connect_timeout: Some(LONG),
        read_timeout: None,
        write_timeout: Some(SHORT),
    };
    f(&mut c);
    c
}

#[test]
fn handshake_times_out_on_a_server_that_never_answers() {
    let (addr, server) = server(silent);
    let r = bounded(move || Client::connect_tcp_with(addr, config(|_| {})).map(drop));
    match r {
        Err(Error::TimedOut {
            operation: Operation::Handshake,
            after,
        }) => assert_eq!(after, SHORT),
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    server.join().unwrap(); // the client's socket was closed: the server saw the end
}

#[test]
fn handshake_timeout_through_the_session_config_alone() {
    // `connect_tcp` (the session's settings, default socket timeouts) is bounded too.
    let (addr, server) = server(silent);
    let session = ClientConfig {
        handshake_timeout: Some(SHORT),
        ..Default::default()
    };
    let r = bounded(move || Client::connect_tcp(addr, session).map(drop));
    let e = r.expect_err("no WELCOME can arrive");
    assert_eq!(e.timed_out(), Some(Operation::Handshake), "{e}");
    assert!(e.to_string().contains("WELCOME"), "{e}");
    server.join().unwrap();
}

#[test]
fn read_timeout_bounds_the_handshake_when_it_is_shorter() {
    let (addr, server) = server(silent);
    let c = config(|c| {
        c.session.handshake_timeout = None;
        c.read_timeout = Some(SHORT);
    });
    let r = bounded(move || Client::connect_tcp_with(addr, c).map(drop));
    assert_eq!(r.unwrap_err().timed_out(), Some(Operation::Read));
    server.join().unwrap();
}

#[cfg(unix)]
#[test]
fn handshake_times_out_over_a_unix_socket() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let r = bounded(move || Client::handshake_with(a, config(|_| {})).map(drop));
    assert_eq!(r.unwrap_err().timed_out(), Some(Operation::Handshake));
    drop(b);
}

#[test]
fn request_times_out_and_the_client_stays_usable() {
    // The server holds the first ECHO back and answers it late, just before the second.
    let mut held = None;
    let (addr, server) = server(serving(move |session, id, message| {
        let Message::Echo(e) = message else { return };
        if held.is_none() {
            held = Some((id, e.payload));
            return;
        }
        let (first, payload) = held.take().unwrap();
        let late: Message = Message::EchoReply(EchoReply { payload });
        assert!(session.respond(first, &late, Instant::now()));
        let now: Message = Message::EchoReply(EchoReply { payload: e.payload });
        assert!(session.respond(id, &now, Instant::now()));
    }));
    let c = config(|c| c.read_timeout = Some(LONG)); // the shorter request timeout wins
    bounded(move || {
        let mut client = Client::connect_tcp_with(addr, c).unwrap();
        let id = client.send(&echo(b"first")).unwrap();
        match client.wait(id) {
            Err(Error::TimedOut {
                operation: Operation::Response { id: timed_out },
                after,
            }) => {
                assert_eq!(timed_out, id);
                assert_eq!(after, SHORT);
            }
            other => panic!("expected a response timeout, got {other:?}"),
        }
        assert!(!client.is_closed());
        // Waiting again for the abandoned request reports the timeout again, not a hang.
        assert_eq!(
            client.wait(id).unwrap_err().timed_out(),
            Some(Operation::Response { id })
        );
        // The late response to the first request is dropped; the second gets its own.
        assert_eq!(&client.echo(b"second").unwrap()[..], b"second");
        assert_eq!(client.session().outstanding(), 0);
        client.goodbye().unwrap();
    });
    server.join().unwrap();
}

#[test]
fn read_timeout_closes_the_client() {
    // Handshake, then no response ever; no request timeout: the read timeout ends the wait.
    let (addr, server) = server(serving(|_, _, _| {}));
    let c = config(|c| {
        c.session.request_timeout = None;
        c.read_timeout = Some(SHORT);
    });
    bounded(move || {
        let mut client = Client::connect_tcp_with(addr, c).unwrap();
        match client.echo(b"anyone?") {
            Err(Error::TimedOut {
                operation: Operation::Read,
                after,
            }) => assert_eq!(after, SHORT),
            other => panic!("expected a read timeout, got {other:?}"),
        }
        assert!(client.is_closed());
        // Every later call fails at once, without touching the socket.
        for r in [client.echo(b"again").map(drop), client.ping(1).map(drop)] {
            assert!(
                matches!(r, Err(Error::Session(ClientError::Closed))),
                "{r:?}"
            );
        }
        assert!(matches!(
            client.goodbye(),
            Err(Error::Session(ClientError::Closed))
        ));
    });
    server.join().unwrap(); // the client shut its socket down: the server saw the end
}

#[test]
fn write_timeout_closes_the_client() {
    // The server stops reading after the handshake; three 15 MiB ECHOs cannot all fit in the
    // socket buffers, so a write makes no progress and times out.
    let (stop, stopped) = mpsc::channel::<()>();
    let (addr, server) = server(handshake_then_deaf(stopped));
    let c = config(|c| c.session.request_timeout = Some(LONG));
    bounded(move || {
        let mut client = Client::connect_tcp_with(addr, c).unwrap();
        let payload: &'static [u8] = Box::leak(vec![7u8; 15 << 20].into_boxed_slice());
        for _ in 0..3 {
            client.queue(&echo(payload)).unwrap();
        }
        match client.flush() {
            Err(Error::TimedOut {
                operation: Operation::Write,
                after,
            }) => assert_eq!(after, SHORT),
            other => panic!("expected a write timeout, got {other:?}"),
        }
        assert!(client.is_closed());
        assert!(matches!(
            client.ping(1),
            Err(Error::Session(ClientError::Closed))
        ));
        assert!(matches!(
            client.queue(&echo(b"x")),
            Err(Error::Session(ClientError::Closed))
        ));
    });
    drop(stop);
    server.join().unwrap();
}

#[test]
fn goodbye_times_out_when_the_server_never_closes() {
    let (stop, stopped) = mpsc::channel::<()>();
    let (addr, server) = server(handshake_then_deaf(stopped));
    bounded(move || {
        let client = Client::connect_tcp_with(addr, config(|_| {})).unwrap();
        match client.goodbye_within(Some(SHORT)) {
            Err(Error::TimedOut {
                operation: Operation::Close,
                after,
            }) => assert_eq!(after, SHORT),
            other => panic!("expected a close timeout, got {other:?}"),
        }
    });
    drop(stop);
    server.join().unwrap();
}

#[test]
fn timeout_errors_say_what_and_how_long() {
    let e = Error::TimedOut {
        operation: Operation::Response { id: 7 },
        after: Duration::from_millis(1500),
    };
    assert_eq!(
        e.to_string(),
        "timed out after 1.5s waiting for the response to request 7"
    );
    let io: Error = io::Error::other("x").into();
    assert_eq!(io.timed_out(), None);
}
