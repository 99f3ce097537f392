//! An asynchronous client for tokio (feature `async-client`): pipelining, request IDs,
//! cancellation and timeouts over any `AsyncRead + AsyncWrite` stream. Like the blocking client it
//! only moves bytes: the protocol is the sans-IO [`ClientSession`].
//!
//! One background task owns the connection. It reads and writes at the same time (a server that
//! stops reading never stops the client from reading its responses), keeps the session's output
//! whole and in order however long the server's backpressure lasts, and routes each response to
//! the request it answers. A fault of the server ends the connection the way spec §9.3 says: the
//! session's ERROR is written, then every outstanding request fails with [`Error::Lost`] (its fate
//! is unknown).
//!
//! ```no_run
//! # async fn demo() -> Result<(), echowire_codec::async_client::Error> {
//! use std::time::Duration;
//! use echowire_codec::async_client::AsyncClient;
//! use echowire_codec::message::{Message, Ping, Pong};
//!
//! let client = AsyncClient::connect_tcp("127.0.0.1:7878", Default::default(), Duration::from_secs(5)).await?;
//! // Pipelined: both requests are on the wire before either response is awaited.
//! let a = client.send(Message::Ping(Ping { data: 1 })).await?;
//! let b = client.send(Message::Ping(Ping { data: 2 })).await?;
//! assert!(matches!(b.response(Some(Duration::from_secs(1))).await?, Message::Pong(Pong { data: 2 })));
//! assert!(matches!(a.response(None).await?, Message::Pong(Pong { data: 1 })));
//! client.goodbye().await?;
//! # Ok(()) }
//! # fn main() { let _ = demo(); }
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{TcpStream, ToSocketAddrs};
use ::tokio::sync::{mpsc, oneshot, watch};
use bytes::BytesMut;

use crate::error::ErrorCode;
use crate::message::Message;
use crate::session::{ClientConfig, ClientError, ClientEvent, ClientSession, Negotiated};

/// What can go wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(String),
    /// The server broke the protocol; the client sent ERROR with this code and closed.
    #[error("protocol violation by the server ({code}): {detail}")]
    Protocol {
        /// The code the client sent (spec §9.2, §9.3).
        code: ErrorCode,
        /// What happened.
        detail: String,
    },
    /// The server ended the connection with ERROR (or refused the handshake).
    #[error("the server ended the connection: {code}: {message}")]
    Server {
        /// Its code.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// The connection ended while the request was outstanding: its fate is unknown.
    #[error("the connection ended with the request outstanding: {0}")]
    Lost(String),
    /// The server closed cleanly after its GOODBYE without answering the request: it was not
    /// processed and may be retried on another connection (spec §3.8, §9.3).
    #[error("the server closed after GOODBYE without processing the request; it may be retried")]
    NotProcessed,
    /// No WELCOME, or no response, within the time allowed.
    #[error("timed out")]
    Timeout,
    /// The client refused the request (closed, too large, too many outstanding, ...).
    #[error("request refused: {0}")]
    Refused(String),
}

enum Cmd {
    Send(Message, oneshot::Sender<Result<Pending, Error>>),
    Cancel(u32),
    Goodbye(oneshot::Sender<()>),
}

/// A request on the wire; await its one response with [`Pending::response`].
#[derive(Debug)]
pub struct Pending {
    /// The request ID the session chose.
    pub id: u32,
    rx: oneshot::Receiver<Result<Message, Error>>,
}

impl Pending {
    /// The request's one response (which may be [`Message::Error`]); `timeout` bounds the wait
    /// (spec §9.4). On [`Error::Timeout`] the response is gone to this caller, though the request
    /// stays outstanding on the connection; to keep waiting for it, use [`Pending::wait`].
    pub async fn response(mut self, timeout: Option<Duration>) -> Result<Message, Error> {
        self.wait(timeout).await
    }

    /// Waits up to `timeout` for the request's one response. After [`Error::Timeout`] the
    /// request is still outstanding (spec §9.4: its ID is not reusable until its response
    /// arrives or the connection ends), and `wait` can be called again to receive that response
    /// or learn that the connection failed.
    pub async fn wait(&mut self, timeout: Option<Duration>) -> Result<Message, Error> {
        let wait = async {
            (&mut self.rx)
                .await
                .unwrap_or_else(|_| Err(Error::Lost("the connection task ended".into())))
        };
        match timeout {
            Some(t) => ::tokio::time::timeout(t, wait)
                .await
                .unwrap_or(Err(Error::Timeout)),
            None => wait.await,
        }
    }
}

/// How the connection ended, once it has.
pub type Closed = Option<Result<(), Error>>;

/// An asynchronous Echowire client. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct AsyncClient {
    tx: mpsc::UnboundedSender<Cmd>,
    negotiated: Negotiated,
    closed: watch::Receiver<Closed>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cmd::Send(..) => "Send",
            Cmd::Cancel(_) => "Cancel",
            Cmd::Goodbye(_) => "Goodbye",
        })
    }
}

fn session_error(e: ClientError) -> Error {
    match e {
        ClientError::Server { code, message } => Error::Server { code, message },
        other => match other.code() {
            Some(code) => Error::Protocol {
                code,
                detail: other.to_string(),
            },
            None => Error::Refused(other.to_string()),
        },
    }
}

impl AsyncClient {
    /// Connects over TCP (with `TCP_NODELAY`) within `timeout`, then completes the handshake
    /// within `timeout`.
    pub async fn connect_tcp(
        addr: impl ToSocketAddrs,
        config: ClientConfig,
        timeout: Duration,
    ) -> Result<AsyncClient, Error> {
        let stream = ::tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|e| Error::Io(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Self::handshake(stream, config, timeout).await
    }

    /// Completes the handshake on `stream` within `timeout`, then serves the connection from a
    /// background task.
    pub async fn handshake<S>(
        mut stream: S,
        config: ClientConfig,
        timeout: Duration,
    ) -> Result<AsyncClient, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut session = ClientSession::new(config, Instant::now());
        let mut buf = BytesMut::with_capacity(8192);
        let handshake = async {
            loop {
                write_all(&mut session, &mut stream).await?;
                match session.poll_event(Instant::now()) {
                    Ok(Some(ClientEvent::Welcome(n))) => return Ok(n),
                    Ok(Some(ClientEvent::ConnectionError { code, message })) => {
                        return Err(Error::Server { code, message });
                    }
                    Ok(Some(other)) => {
                        return Err(Error::Protocol {
                            code: ErrorCode::PROTOCOL_ERROR,
                            detail: format!("expected WELCOME, got {other:?}"),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // The session queued its ERROR (spec §9.2): send it, then fail.
                        let _ = write_all(&mut session, &mut stream).await;
                        return Err(session_error(e));
                    }
                }
                let n = read_some(&mut session, &mut stream, &mut buf).await?;
                if n == 0 && session.is_closed() {
                    return Err(Error::Lost("closed during the handshake".into()));
                }
            }
        };
        let negotiated = match ::tokio::time::timeout(timeout, handshake).await {
            Ok(r) => r?,
            Err(_) => return Err(Error::Timeout),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(None);
        ::tokio::spawn(serve(stream, session, buf, rx, closed_tx));
        Ok(AsyncClient {
            tx,
            negotiated,
            closed,
        })
    }

    /// What the handshake settled.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Sends a request and waits for its response.
    pub async fn request(
        &self,
        kind: Message,
        timeout: Option<Duration>,
    ) -> Result<Message, Error> {
        self.send(kind).await?.response(timeout).await
    }

    /// Sends a request (pipelined: it does not wait for earlier responses) and returns once it
    /// is queued for the wire. Beyond the server's `max_outstanding` it waits, in order, until a
    /// response makes room.
    pub async fn send(&self, kind: Message) -> Result<Pending, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Send(kind, tx))
            .map_err(|_| Error::Refused("the connection is closed".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(Error::Refused("the connection is closed".into())))
    }

    /// Sends CANCEL for an outstanding request (its one response still arrives, spec §3.7).
    pub fn cancel(&self, id: u32) {
        let _ = self.tx.send(Cmd::Cancel(id));
    }

    /// Sends GOODBYE and waits until the server has answered what was outstanding and closed.
    pub async fn goodbye(self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Goodbye(tx)).is_ok() {
            let _ = rx.await;
        }
        self.closed().await
    }

    /// Resolves when the connection is over: `Ok` for a graceful end, else why it failed.
    pub async fn closed(&self) -> Result<(), Error> {
        let mut rx = self.closed.clone();
        loop {
            if let Some(r) = rx.borrow().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return Err(Error::Lost("the connection task ended".into()));
            }
        }
    }
}

async fn write_all<S: AsyncWrite + Unpin>(
    session: &mut ClientSession,
    s: &mut S,
) -> Result<(), Error> {
    while session.pending_output() > 0 {
        let chunk = session.take_output();
        s.write_all(&chunk)
            .await
            .map_err(|e| Error::Io(e.to_string()))?;
    }
    s.flush().await.map_err(|e| Error::Io(e.to_string()))
}

/// Reads at most what the session takes ([`ClientSession::read_size`]: a huge Length claim is
/// refused from its 4 octets, never buffered) and hands it to the session.
async fn read_some<S: AsyncRead + Unpin>(
    session: &mut ClientSession,
    s: &mut S,
    buf: &mut BytesMut,
) -> Result<usize, Error> {
    let cap = session.read_size().max(1);
    buf.clear();
    buf.reserve(cap);
    let mut limited = s.take(cap as u64);
    let n = limited
        .read_buf(buf)
        .await
        .map_err(|e| Error::Io(e.to_string()))?;
    session.handle_input(buf);
    Ok(n)
}

type Reply = oneshot::Sender<Result<Pending, Error>>;

/// Hands a request to the session; `false` (and the request back at the front of `backlog`)
/// when the server's `max_outstanding` is reached.
fn submit(
    session: &mut ClientSession,
    waiting: &mut HashMap<u32, oneshot::Sender<Result<Message, Error>>>,
    backlog: &mut VecDeque<(Message, Reply)>,
    kind: Message,
    reply: Reply,
) -> bool {
    match session.send(&kind, Instant::now()) {
        Ok(id) => {
            let (tx, rx) = oneshot::channel();
            waiting.insert(id, tx);
            let _ = reply.send(Ok(Pending { id, rx }));
            true
        }
        Err(ClientError::TooManyOutstanding(_)) => {
            backlog.push_front((kind, reply));
            false
        }
        Err(e) => {
            let _ = reply.send(Err(session_error(e)));
            true
        }
    }
}

/// The connection task.
async fn serve<S>(
    stream: S,
    mut session: ClientSession,
    mut buf: BytesMut,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    closed: watch::Sender<Closed>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = ::tokio::io::split(stream);
    let mut waiting: HashMap<u32, oneshot::Sender<Result<Message, Error>>> = HashMap::new();
    let mut goodbye_waiters: Vec<oneshot::Sender<()>> = Vec::new();
    // Requests beyond the server's max_outstanding wait here, in order, until a response
    // makes room (spec §9.1: never more outstanding than allowed).
    let mut backlog: VecDeque<(Message, Reply)> = VecDeque::new();
    // Output is moved to a writer task in order, whole: backpressure delays it, never reorders
    // or drops it, and reading goes on meanwhile.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<bytes::Bytes>();
    let writer = ::tokio::spawn(async move {
        while let Some(chunk) = out_rx.recv().await {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
            let _ = wr.flush().await;
        }
        let _ = wr.shutdown().await;
    });
    let flush = |session: &mut ClientSession| {
        if session.pending_output() > 0 {
            let _ = out_tx.send(session.take_output());
        }
    };
    let end: Result<(), Error> = 'conn: loop {
        // Deliver every event already buffered.
        loop {
            match session.poll_event(Instant::now()) {
                Ok(Some(ClientEvent::Response { id, response })) => {
                    if let Some(w) = waiting.remove(&id) {
                        let _ = w.send(Ok(response));
                    }
                    // Room for requests that waited for the server's max_outstanding.
                    while let Some((kind, reply)) = backlog.pop_front() {
                        if !submit(&mut session, &mut waiting, &mut backlog, kind, reply) {
                            break;
                        }
                    }
                }
                Ok(Some(ClientEvent::ConnectionError { code, message })) => {
                    break 'conn Err(Error::Server { code, message });
                }
                Ok(Some(ClientEvent::Goodbye { .. } | ClientEvent::Rejected { .. })) => {}
                // Each caller bounds its own wait (`Pending::response`); the request stays
                // outstanding until its response comes (spec §9.4).
                Ok(Some(ClientEvent::TimedOut { .. })) => {}
                Ok(Some(ClientEvent::Welcome(_))) => {}
                Ok(None) => break,
                Err(e) => {
                    flush(&mut session);
                    break 'conn Err(session_error(e));
                }
            }
        }
        flush(&mut session);
        if session.is_closed() {
            break Ok(());
        }
        let cap = session.read_size().max(1);
        buf.clear();
        buf.reserve(cap);
        let mut limited = (&mut rd).take(cap as u64);
        ::tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Send(kind, reply)) => {
                    if backlog.is_empty() {
                        submit(&mut session, &mut waiting, &mut backlog, kind, reply);
                    } else {
                        backlog.push_back((kind, reply));
                    }
                }
                Some(Cmd::Cancel(id)) => {
                    let _ = session.cancel(id);
                }
                Some(Cmd::Goodbye(done)) => {
                    session.goodbye();
                    goodbye_waiters.push(done);
                }
                None => {
                    session.goodbye();
                }
            },
            n = limited.read_buf(&mut buf) => match n {
                Ok(0) => {
                    // End of stream: graceful only after GOODBYE with nothing outstanding.
                    match session.handle_eof() {
                        Ok(unprocessed) if !unprocessed.is_empty() => {
                            // After the server's GOODBYE: not processed, may be retried.
                            for id in unprocessed {
                                if let Some(w) = waiting.remove(&id) {
                                    let _ = w.send(Err(Error::NotProcessed));
                                }
                            }
                            break Ok(());
                        }
                        Ok(_) if waiting.is_empty() => break Ok(()),
                        Ok(_) => break Err(Error::Lost("the server closed".into())),
                        Err(e) => break Err(Error::Lost(e.to_string())),
                    }
                }
                Ok(_) => session.handle_input(&buf),
                Err(e) => break Err(Error::Lost(format!("connection reset: {e}"))),
            },
        }
    };
    // Publish how it ended first, then fail what was outstanding (spec §9.3: fate unknown).
    let _ = closed.send(Some(end.clone()));
    let why = match &end {
        Ok(()) => "the connection closed".to_string(),
        Err(e) => e.to_string(),
    };
    let mut ids: Vec<u32> = waiting.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        if let Some(w) = waiting.remove(&id) {
            let _ = w.send(Err(Error::Lost(why.clone())));
        }
    }
    for (_, reply) in backlog {
        let _ = reply.send(Err(Error::Refused(why.clone())));
    }
    for w in goodbye_waiters {
        let _ = w.send(());
    }
    drop(out_tx);
    let _ = ::tokio::time::timeout(Duration::from_secs(1), writer).await;
}
