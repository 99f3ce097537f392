//! ECHO (0x05) and ECHO_REPLY (0x06): the payload, returned unchanged (spec §4.5).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Body;
use crate::body::cow_bytes;

/// ECHO, client → server, a request. | `payload` | bytes | returned unchanged |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo<'a> {
    /// The payload (borrowed from the receive buffer when decoded).
    #[serde(borrow, with = "cow_bytes")]
    pub payload: Cow<'a, [u8]>,
}

/// ECHO_REPLY, server → client. | `payload` | bytes | the ECHO's payload |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReply<'a> {
    /// The ECHO's payload.
    #[serde(borrow, with = "cow_bytes")]
    pub payload: Cow<'a, [u8]>,
}

impl<'a> Body<'a> for Echo<'a> {
    type Static = Echo<'static>;

    fn into_static(self) -> Echo<'static> {
        Echo {
            payload: super::cow_owned(self.payload),
        }
    }
}

impl<'a> Body<'a> for EchoReply<'a> {
    type Static = EchoReply<'static>;

    fn into_static(self) -> EchoReply<'static> {
        EchoReply {
            payload: super::cow_owned(self.payload),
        }
    }
}
