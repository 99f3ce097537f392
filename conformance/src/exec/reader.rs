//! The reading half of a run: frames, ends of stream and resets as the runner observes them,
//! each wait bounded by a deadline.

use std::io::Read;
use std::time::{Duration, Instant};

use echowire_codec::message::{self, DecodeContext, Message, Role};
use serde_json::Value;

use super::writer::{log_entry, log_note};
use super::{Dir, Exec, frame_json};
use crate::verdict::describe;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Closed {
    Clean,
    Reset,
}

pub(super) enum Ev {
    Frame(Value),
    Closed(Closed),
    Invalid(String),
    /// The deadline passed; what had arrived of a frame that never completed, if anything.
    Timeout(Option<String>),
}

impl Ev {
    pub(super) fn describe(&self) -> String {
        match self {
            Ev::Frame(v) => format!("frame {}", describe(v)),
            Ev::Closed(Closed::Clean) => "end of stream (FIN)".into(),
            Ev::Closed(Closed::Reset) => "connection reset (RST)".into(),
            Ev::Invalid(e) => format!("invalid bytes from the server: {e}"),
            Ev::Timeout(None) => "nothing before the deadline".into(),
            Ev::Timeout(Some(partial)) => {
                format!("no whole frame before the deadline; what arrived is {partial}")
            }
        }
    }
}

impl Exec {
    pub(super) fn next_event(&mut self, deadline: Instant) -> Ev {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some(frame)) => return self.frame_event(frame),
                Ok(None) => {}
                Err(e) => return Ev::Invalid(e.to_string()),
            }
            if let Some(c) = self.closed {
                if let Some(partial) = self.arrived() {
                    let how = match c {
                        Closed::Clean => "ended (FIN)",
                        Closed::Reset => "was reset",
                    };
                    return Ev::Invalid(format!("the stream {how} inside a frame: {partial}"));
                }
                return Ev::Closed(c);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ev::Timeout(self.arrived());
            }
            let _ = self
                .conn
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            match self.conn.read(&mut chunk) {
                Ok(0) if self.peer_reset.load(std::sync::atomic::Ordering::Acquire) => {
                    // The writer met the reset; the read after it sees only the end.
                    log_note(
                        &self.log,
                        self.start,
                        Dir::ServerToClient,
                        self.rx_offset,
                        "RST (reported to a write)".into(),
                    );
                    self.closed = Some(Closed::Reset);
                }
                Ok(0) => {
                    log_note(
                        &self.log,
                        self.start,
                        Dir::ServerToClient,
                        self.rx_offset,
                        "FIN".into(),
                    );
                    self.closed = Some(Closed::Clean);
                }
                Ok(n) => {
                    if !self.quiet {
                        log_entry(
                            &self.log,
                            self.start,
                            Dir::ServerToClient,
                            self.rx_offset,
                            hex::encode(&chunk[..n]),
                        );
                    }
                    self.rx_offset += n as u64;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log_note(
                        &self.log,
                        self.start,
                        Dir::ServerToClient,
                        self.rx_offset,
                        format!("RST ({e})"),
                    );
                    self.closed = Some(Closed::Reset);
                }
            }
        }
    }

    /// The octets of a frame that has not completed, in words ("9 of 12 header octets").
    fn arrived(&self) -> Option<String> {
        (!self.buf.is_empty()).then(|| {
            format!(
                "{} octets at stream offset {}: {}",
                self.buf.len(),
                self.rx_offset - self.buf.len() as u64,
                crate::wire::partial(&self.buf)
            )
        })
    }

    fn frame_event(&mut self, frame: echowire_codec::Frame) -> Ev {
        let ctx = DecodeContext {
            receiver: Role::Client,
            version: self.version,
            capabilities: self.caps,
        };
        match message::decode(&frame, &ctx) {
            Ok(m) => {
                if let Message::Welcome(w) = &m {
                    self.version = Some(w.version);
                    self.limit = Some(w.max_frame_size);
                    self.caps = w.capabilities;
                }
                Ev::Frame(frame_json(&frame, &m))
            }
            Err(e) => Ev::Invalid(format!("undecodable frame: {e}")),
        }
    }
}
