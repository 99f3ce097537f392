//! ECHO (0x05) and ECHO_REPLY (0x06): the payload, returned unchanged (spec §4.5).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::octets::{FromOctets, serde_octets};

/// ECHO, client → server, a request. | `payload` | bytes | returned unchanged |
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct Echo<B = Bytes> {
    /// The payload (a slice of the frame it arrived in when decoded).
    #[serde(with = "serde_octets")]
    pub payload: B,
}

/// ECHO_REPLY, server → client. | `payload` | bytes | the ECHO's payload |
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct EchoReply<B = Bytes> {
    /// The ECHO's payload.
    #[serde(with = "serde_octets")]
    pub payload: B,
}

super::octets_body!(Echo { payload: B }, EchoReply { payload: B });
