//! STATS (0x0E) and STATS_REPLY (0x0F), version 2 only: the server's counters (spec §4.11).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::octets::{FromOctets, Str};

/// STATS, client → server, a request with an empty body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Stats {}

/// One counter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct StatEntry<B = Bytes> {
    /// Counter name, e.g. `frames_in`.
    pub name: Str<B>,
    /// Its value.
    pub value: u64,
}

/// STATS_REPLY, server → client. | `entries` | sequence of (string name, u64 value) |
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "B: FromOctets<'de>", serialize = "B: AsRef<[u8]>"))]
pub struct StatsReply<B = Bytes> {
    /// The counters, in the server's order.
    pub entries: Vec<StatEntry<B>>,
}

super::plain_body!(Stats);
super::octets_map!(StatEntry { name: Str, value });
super::octets_body!(StatsReply { entries: Seq });

impl StatsReply<Bytes> {
    /// A reply listing `entries` (name, value) in order.
    pub fn from_pairs<N: Into<String>>(entries: impl IntoIterator<Item = (N, u64)>) -> Self {
        StatsReply {
            entries: entries
                .into_iter()
                .map(|(name, value)| StatEntry {
                    name: Str::from(name.into()),
                    value,
                })
                .collect(),
        }
    }
}
