//! WELCOME (0x02, server → client, request ID 0): completes the handshake (spec §4.3).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Body;

/// | field             | type   | meaning                                                  |
/// |-------------------|--------|----------------------------------------------------------|
/// | `version`         | u8     | the negotiated version: the highest both peers speak     |
/// | `max_frame_size`  | u32    | largest `Length` the server accepts                      |
/// | `max_outstanding` | u32    | requests the client may have unanswered at once          |
/// | `capabilities`    | u32    | the offered capabilities the server accepts (a subset)   |
/// | `agent`           | string | free-form implementation name, informative only          |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome<'a> {
    /// Negotiated version.
    pub version: u8,
    /// The server's receive limit.
    pub max_frame_size: u32,
    /// Per-connection outstanding-request limit.
    pub max_outstanding: u32,
    /// Accepted capability bits.
    pub capabilities: u32,
    /// Implementation name.
    #[serde(borrow)]
    pub agent: Cow<'a, str>,
}

impl<'a> Body<'a> for Welcome<'a> {
    type Static = Welcome<'static>;

    fn into_static(self) -> Welcome<'static> {
        Welcome {
            agent: super::cow_owned(self.agent),
            ..self
        }
    }
}
