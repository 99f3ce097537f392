//! # echowire-server
//!
//! The Echowire reference server (spec: `spec/PROTOCOL.md`). It drives the codec's sans-IO
//! [`ServerSession`](echowire_codec::session::ServerSession) and adds only I/O, scheduling and
//! operations:
//!
//! * [`reactor`]: the default model — an acceptor thread, mio reactor threads, a worker pool for
//!   heavy requests, backpressure, timeouts, lingering close, graceful drain;
//! * [`models`]: the `threaded` and `blocking` models, same protocol, for comparison;
//! * [`listener`]: TCP and Unix-domain listeners, stale socket files, peer credentials;
//! * [`workers`]: the bounded worker pool; [`service`]: what each request does.
//!
//! ```no_run
//! let server = echowire_server::Server::builder().listen("127.0.0.1:0".parse().unwrap()).start()?;
//! println!("listening on {}", server.local_addrs()[0]);
//! let stats = server.shutdown(); // graceful: GOODBYE, drain, flush
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `SIGPIPE`: the Rust runtime ignores it before `main`, so writing to a reset connection returns
//! `EPIPE` to that connection's handler instead of killing the process; the test suite resets
//! connections mid-response to prove it.
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod admission;
pub mod config;
pub mod counters;
pub mod descriptors;
pub mod handover;
pub mod listener;
pub mod memory;
pub mod models;
pub mod pool;
pub mod ratelimit;
pub mod reactor;
pub mod service;
pub mod shared;
pub mod stream;
pub mod timers;
pub mod workers;

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{Config, ConfigError, Model};
pub use counters::Counters;
pub use listener::ListenAddr;
pub use shared::{Shared, Stopper};

/// Entry point: [`Server::builder`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder with the default [`Config`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: Config {
                listen: Vec::new(),
                ..Config::default()
            },
            bound: Vec::new(),
        }
    }
}

/// Configures and starts a server.
#[derive(Debug)]
pub struct ServerBuilder {
    config: Config,
    bound: Vec<listener::Bound>,
}

impl Clone for ServerBuilder {
    /// Clones the configuration; listeners given with [`ServerBuilder::listeners`] are not
    /// cloned.
    fn clone(&self) -> Self {
        ServerBuilder {
            config: self.config.clone(),
            bound: Vec::new(),
        }
    }
}

impl ServerBuilder {
    /// Adds an address to listen on (default if none: `127.0.0.1:7878`).
    pub fn listen(mut self, addr: ListenAddr) -> Self {
        self.config.listen.push(addr);
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Changes the configuration in place.
    pub fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// The I/O model.
    pub fn model(mut self, model: Model) -> Self {
        self.config.model = model;
        self
    }

    /// Serves on listening sockets that are already bound (handed over by a previous server,
    /// or passed by systemd) instead of binding `listen` addresses.
    pub fn listeners(mut self, bound: Vec<listener::Bound>) -> Self {
        self.bound = bound;
        self
    }

    /// Binds every listener and starts serving.
    pub fn start(mut self) -> io::Result<ServerHandle> {
        if !self.bound.is_empty() {
            self.config.listen = self
                .bound
                .iter()
                .map(listener::Bound::addr)
                .collect::<io::Result<_>>()?;
        }
        if self.config.listen.is_empty() {
            self.config.listen = Config::default().listen;
        }
        self.config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut bound = std::mem::take(&mut self.bound);
        let mut addrs = Vec::new();
        for b in &bound {
            addrs.push(b.addr()?);
        }
        let to_bind = if bound.is_empty() {
            self.config.listen.as_slice()
        } else {
            &[]
        };
        for a in to_bind {
            let b = listener::bind_opts(a, self.config.socket_mode, self.config.reuseport)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))?;
            addrs.push(b.addr()?);
            bound.push(b);
        }
        let buffers = listener::socket_buffer_size(self.config.max_connection_memory);
        for b in &bound {
            listener::set_socket_buffers(b, buffers)
                .map_err(|e| io::Error::new(e.kind(), format!("socket buffers: {e}")))?;
        }
        let counters = Arc::new(Counters::with_budget(self.config.memory_budget));
        let pool = workers::Pool::new(
            self.config.workers,
            self.config.queue_depth,
            counters.clone(),
        )
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot start {} worker threads (--workers): {e}",
                    self.config.workers
                ),
            )
        })?;
        let shared = Arc::new(Shared::new(self.config, counters, pool));
        let (threads, waker) = match shared.config.model {
            Model::Reactor => {
                let (t, w) = reactor::start(bound, shared.clone())?;
                (t, Some(w))
            }
            Model::Threaded | Model::Blocking => (models::start(bound, shared.clone())?, None),
        };
        for a in &addrs {
            tracing::info!(addr = %a, model = ?shared.config.model, "listening");
        }
        Ok(ServerHandle {
            addrs,
            shared: Some(shared),
            threads,
            waker,
        })
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addrs: Vec<ListenAddr>,
    shared: Option<Arc<Shared>>,
    threads: Vec<JoinHandle<()>>,
    waker: Option<Arc<mio::Waker>>,
}

impl ServerHandle {
    /// The bound addresses, in `--listen` order (port 0 resolved).
    pub fn local_addrs(&self) -> &[ListenAddr] {
        &self.addrs
    }

    /// The first TCP address, if any.
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.addrs.iter().find_map(|a| match a {
            ListenAddr::Tcp(s) => Some(*s),
            ListenAddr::Unix(_) => None,
        })
    }

    /// Live counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.shared
            .as_ref()
            .expect("present until shutdown")
            .counters
            .clone()
    }

    /// Begins a graceful shutdown without waiting (e.g. from a signal handler thread).
    pub fn begin_shutdown(&self) {
        if let Some(s) = self.stopper() {
            s.begin_shutdown();
        }
    }

    /// A handle that stops this server from another thread.
    pub fn stopper(&self) -> Option<Stopper> {
        self.shared
            .as_ref()
            .map(|s| Stopper::new(s.clone(), self.waker.clone()))
    }

    /// Graceful shutdown: stop accepting, GOODBYE to every connection, finish accepted work
    /// (including queued COMPUTE) up to the drain timeout, flush, close. Returns the counters.
    pub fn shutdown(mut self) -> Arc<Counters> {
        self.begin_shutdown();
        self.join()
    }

    /// Waits for the server threads (after [`ServerHandle::begin_shutdown`]).
    pub fn join(&mut self) -> Arc<Counters> {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let shared = self.shared.take().expect("joined once");
        let counters = shared.counters.clone();
        // Dropping the last reference drops the pool: queued jobs finish, workers join.
        drop(shared);
        counters
    }

    /// How long a graceful shutdown may take at most (drain timeout plus linger).
    pub fn shutdown_bound(&self) -> Duration {
        self.shared
            .as_ref()
            .map_or(Duration::ZERO, |s| s.config.drain_timeout + s.config.linger)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.shared.is_some() {
            self.begin_shutdown();
            self.join();
        }
    }
}
