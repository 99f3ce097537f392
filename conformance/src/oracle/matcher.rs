//! Compares a frame the server sent with the frame the model would send, field by field, where
//! the spec leaves some fields to the server:
//!
//! * every human-readable text (ERROR's and GOODBYE's `message`, WELCOME's `agent`);
//! * ERROR's `retry_after_ms` for BUSY, and for SHUTTING_DOWN when the server started the drain
//!   (§4.8: otherwise it MUST be 0);
//! * STATS_REPLY's counters (§4.11);
//! * GOODBYE's code when the server was signalled while the client's own drain was under way
//!   (§3.8 says a client's drain ends with GOODBYE NO_ERROR and a shutdown announces itself
//!   with GOODBYE SHUTTING_DOWN, and that a server sends one GOODBYE: it does not say which
//!   drain names it when both are under way, so NO_ERROR and SHUTTING_DOWN are both accepted).
//!
//! Everything else — header version, type, flags, request ID, codes, payloads, digests, sums,
//! limits — must be exactly the model's.

use bytes::Bytes;
use echowire_codec::message::{self, DecodeContext, Message, Role};
use echowire_codec::{ErrorCode, Frame};

use crate::verdict::describe;
use crate::wire::frame_json;

/// How to read frames on this connection.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// The negotiated version, once WELCOME was sent.
    pub version: Option<u8>,
    /// The negotiated capabilities.
    pub capabilities: u32,
    /// The server started the drain (shutdown, idle timeout): SHUTTING_DOWN may carry a hint.
    pub server_drain: bool,
    /// Both the client and the server started a drain: the GOODBYE may carry either's code.
    pub two_drains: bool,
}

/// Decodes a server's frame as a client would.
pub fn decode(frame: &Frame, r: &Reading) -> Result<Message<Bytes>, String> {
    // WELCOME is read before a version is in force (spec §3.2), whatever the model's state.
    let handshake = frame.header.msg_type == echowire_codec::frame::MessageType::Welcome;
    let ctx = DecodeContext {
        receiver: Role::Client,
        version: if handshake { None } else { r.version },
        capabilities: r.capabilities,
    };
    message::decode(frame, &ctx).map_err(|e| e.to_string())
}

/// The frame in words, as the reports print it.
pub fn show(frame: &Frame, r: &Reading) -> String {
    match decode(frame, r) {
        Ok(m) => describe(&frame_json(frame, &m)),
        Err(e) => format!(
            "type 0x{:02x} id {} (undecodable: {e})",
            frame.header.msg_type.to_u8(),
            frame.header.request_id
        ),
    }
}

/// `Ok` if `observed` is a conformant rendering of `model`; otherwise what differs.
pub fn matches(observed: &Frame, model: &Frame, r: &Reading) -> Result<(), String> {
    let (o, m) = (&observed.header, &model.header);
    if o.msg_type != m.msg_type {
        return Err(format!(
            "type {}, not {}",
            type_name(o.msg_type),
            type_name(m.msg_type)
        ));
    }
    if o.request_id != m.request_id {
        return Err(format!("request ID {}, not {}", o.request_id, m.request_id));
    }
    if o.version != m.version {
        return Err(format!("header version {}, not {}", o.version, m.version));
    }
    if o.flags != m.flags {
        return Err(format!(
            "flags 0x{:04x}, not 0x{:04x}",
            o.flags.0, m.flags.0
        ));
    }
    if observed.body == model.body {
        return Ok(());
    }
    let om = decode(observed, r).map_err(|e| format!("a body that does not decode: {e}"))?;
    let mm = decode(model, r).map_err(|e| format!("(the model's frame: {e})"))?;
    fields(&om, &mm, r)
}

fn fields(o: &Message<Bytes>, m: &Message<Bytes>, r: &Reading) -> Result<(), String> {
    match (o, m) {
        (Message::Error(o), Message::Error(m)) => {
            if o.code != m.code {
                return Err(format!("code {}, not {}", o.code, m.code));
            }
            let open =
                o.code == ErrorCode::BUSY || (o.code == ErrorCode::SHUTTING_DOWN && r.server_drain);
            if !open && o.retry_after_ms != m.retry_after_ms {
                return Err(format!(
                    "retry_after_ms {} with {}, where it MUST be {} (spec 4.8)",
                    o.retry_after_ms, o.code, m.retry_after_ms
                ));
            }
            Ok(())
        }
        (Message::Goodbye(o), Message::Goodbye(m)) => {
            let either = [ErrorCode::NO_ERROR, ErrorCode::SHUTTING_DOWN];
            if o.code != m.code
                && !(r.two_drains && either.contains(&o.code) && either.contains(&m.code))
            {
                return Err(format!("GOODBYE code {}, not {}", o.code, m.code));
            }
            Ok(())
        }
        (Message::Welcome(o), Message::Welcome(m)) => {
            let mut w = o.clone();
            w.agent = m.agent.clone();
            if w != *m {
                return Err(format!(
                    "WELCOME version {} max_frame_size {} max_outstanding {} capabilities 0x{:x}, \
                     not version {} capabilities 0x{:x}",
                    o.version,
                    o.max_frame_size,
                    o.max_outstanding,
                    o.capabilities,
                    m.version,
                    m.capabilities
                ));
            }
            Ok(())
        }
        (Message::StatsReply(_), Message::StatsReply(_)) => Ok(()),
        (o, m) if o == m => Ok(()),
        (o, m) => Err(format!("body {}, not {}", short(o), short(m))),
    }
}

fn short(m: &Message<Bytes>) -> String {
    let v = serde_json::to_value(m).unwrap_or_default();
    let mut s = v["body"].to_string();
    if s.len() > 120 {
        let mut cut = 117;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A type's spec name, or its code.
pub fn type_name(t: echowire_codec::frame::MessageType) -> String {
    t.name()
        .map_or_else(|| format!("0x{:02x}", t.to_u8()), str::to_string)
}
