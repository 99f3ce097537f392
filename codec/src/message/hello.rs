//! HELLO (0x01, client → server, request ID 0): opens the handshake (spec §4.2).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Body;

/// | field            | type   | meaning                                             |
/// |------------------|--------|-----------------------------------------------------|
/// | `min_version`    | u8     | lowest protocol version the client speaks           |
/// | `max_version`    | u8     | highest protocol version the client speaks          |
/// | `max_frame_size` | u32    | largest `Length` the client accepts                 |
/// | `capabilities`   | u32    | optional features offered (spec §3.4)             |
/// | `agent`          | string | free-form implementation name, informative only     |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello<'a> {
    /// Lowest version offered.
    pub min_version: u8,
    /// Highest version offered.
    pub max_version: u8,
    /// The client's receive limit.
    pub max_frame_size: u32,
    /// Capability bits offered.
    pub capabilities: u32,
    /// Implementation name.
    #[serde(borrow)]
    pub agent: Cow<'a, str>,
}

impl<'a> Body<'a> for Hello<'a> {
    type Static = Hello<'static>;

    fn into_static(self) -> Hello<'static> {
        Hello {
            agent: super::cow_owned(self.agent),
            ..self
        }
    }
}
