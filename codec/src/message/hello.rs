//! HELLO (0x01, client → server, request ID 0): opens the handshake (spec §4.2).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::octets::{FromOctets, Str};

/// | field            | type   | meaning                                             |
/// |------------------|--------|-----------------------------------------------------|
/// | `min_version`    | u8     | lowest protocol version the client speaks           |
/// | `max_version`    | u8     | highest protocol version the client speaks          |
/// | `max_frame_size` | u32    | largest `Length` the client accepts                 |
/// | `capabilities`   | u32    | optional features offered (spec §3.4)               |
/// | `agent`          | string | free-form implementation name, informative only     |
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct Hello<B = Bytes> {
    /// Lowest version offered.
    pub min_version: u8,
    /// Highest version offered.
    pub max_version: u8,
    /// The client's receive limit.
    pub max_frame_size: u32,
    /// Capability bits offered.
    pub capabilities: u32,
    /// Implementation name.
    pub agent: Str<B>,
}

super::octets_body!(Hello {
    min_version,
    max_version,
    max_frame_size,
    capabilities,
    agent: Str
});
