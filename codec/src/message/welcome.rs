//! WELCOME (0x02, server → client, request ID 0): completes the handshake (spec §4.3).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::octets::{FromOctets, Str};

/// | field             | type   | meaning                                                  |
/// |-------------------|--------|----------------------------------------------------------|
/// | `version`         | u8     | the negotiated version: the highest both peers speak     |
/// | `max_frame_size`  | u32    | largest `Length` the server accepts                      |
/// | `max_outstanding` | u32    | requests the client may have unanswered at once          |
/// | `capabilities`    | u32    | the offered capabilities the server accepts (a subset)   |
/// | `agent`           | string | free-form implementation name, informative only          |
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct Welcome<B = Bytes> {
    /// Negotiated version.
    pub version: u8,
    /// The server's receive limit.
    pub max_frame_size: u32,
    /// Per-connection outstanding-request limit.
    pub max_outstanding: u32,
    /// Accepted capability bits.
    pub capabilities: u32,
    /// Implementation name.
    pub agent: Str<B>,
}

super::octets_body!(Welcome {
    version,
    max_frame_size,
    max_outstanding,
    capabilities,
    agent: Str
});
