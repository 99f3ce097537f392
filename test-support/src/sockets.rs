//! Helpers for tests over real sockets: everything on 127.0.0.1 port 0 or a temp-dir Unix
//! socket, every read bounded by a timeout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use echowire_codec::decoder::FrameDecoder;
use echowire_codec::message::{self, DecodeContext, Message, Role};
use echowire_server::{Config, Model, Server, ServerHandle};

use crate::messages::hello_bytes;

/// Upper bound for any single wait in these tests (generous for loaded CI machines).
pub const WAIT: Duration = Duration::from_secs(20);

pub fn start(model: Model, f: impl FnOnce(&mut Config)) -> ServerHandle {
    Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .model(model)
        .with(|c| {
            c.reactors = 2;
            c.workers = 2;
            c.linger = Duration::from_millis(200);
            f(c)
        })
        .start()
        .expect("server starts")
}

pub fn connect(server: &ServerHandle) -> TcpStream {
    let s = TcpStream::connect(server.tcp_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads frames from a raw connection, as a client.
#[derive(Debug)]
pub struct Reader {
    pub stream: TcpStream,
    buf: BytesMut,
    dec: FrameDecoder,
    pub version: u8,
}

/// What a read ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Eof,
    Reset,
}

impl Reader {
    pub fn new(stream: TcpStream) -> Self {
        Reader {
            stream,
            buf: BytesMut::new(),
            dec: FrameDecoder::new(16 << 20),
            version: 1,
        }
    }

    /// The next frame, or how the stream ended. Panics on timeout (a hung server).
    pub fn next_frame(&mut self) -> Result<(u32, Message), End> {
        loop {
            if let Some(f) = self
                .dec
                .decode(&mut self.buf)
                .expect("server sent valid framing")
            {
                let ctx = DecodeContext {
                    receiver: Role::Client,
                    version: Some(f.header.version),
                    capabilities: 1,
                };
                let m = message::decode(&f, &ctx).expect("server sent a valid frame");
                if let Message::Welcome(w) = &m {
                    self.version = w.version;
                }
                return Ok((f.header.request_id, m));
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(End::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err(End::Reset);
                }
                Err(e) => panic!("read failed (timeout = hung server?): {e}"),
            }
        }
    }

    pub fn frame(&mut self) -> (u32, Message) {
        self.next_frame()
            .expect("a frame, not the end of the stream")
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Connects, handshakes at `version`, returns the reader.
    pub fn open(server: &ServerHandle, version: u8) -> Reader {
        let mut r = Reader::new(connect(server));
        r.send(&hello_bytes(version, version));
        let (_, m) = r.frame();
        assert!(matches!(m, Message::Welcome(_)), "{m:?}");
        r
    }
}

/// Runs a test body against each model.
#[macro_export]
macro_rules! for_models {
    ($name:ident, [$($model:ident),*], $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                #[allow(non_snake_case)]
                fn $model() {
                    let f: fn(echowire_server::Model) = $body;
                    f(echowire_server::Model::$model)
                }
            )*
        }
    };
}
