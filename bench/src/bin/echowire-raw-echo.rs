//! The physical limit: a mio reactor that writes back whatever arrives, parsing nothing.
//! `echowire-raw-echo [ADDR]`; prints `listening on ADDR`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

struct Conn {
    s: TcpStream,
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .expect("ADDR");
    let mut listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, Token(0), Interest::READABLE)?;
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 1;
    let mut buf = vec![0u8; 256 * 1024];
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == Token(0) {
                while let Ok((mut s, _)) = listener.accept() {
                    s.set_nodelay(true)?;
                    poll.registry().register(
                        &mut s,
                        Token(next),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns.insert(
                        next,
                        Conn {
                            s,
                            pending: Vec::new(),
                        },
                    );
                    next += 1;
                }
                continue;
            }
            let key = ev.token().0;
            let Some(c) = conns.get_mut(&key) else {
                continue;
            };
            let mut dead = false;
            loop {
                if !c.pending.is_empty() {
                    match c.s.write(&c.pending) {
                        Ok(n) => {
                            c.pending.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            dead = true;
                            break;
                        }
                    }
                    if !c.pending.is_empty() {
                        break;
                    }
                }
                match c.s.read(&mut buf) {
                    Ok(0) => {
                        dead = true;
                        break;
                    }
                    Ok(n) => match c.s.write(&buf[..n]) {
                        Ok(w) => c.pending.extend_from_slice(&buf[w..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            c.pending.extend_from_slice(&buf[..n])
                        }
                        Err(_) => {
                            dead = true;
                            break;
                        }
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            if dead {
                conns.remove(&key);
            }
        }
    }
}
