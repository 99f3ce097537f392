//! STATS (0x0E) and STATS_REPLY (0x0F), version 2 only: the server's counters (spec §4.11).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Body;

/// STATS, client → server, a request with an empty body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {}

/// One counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatEntry<'a> {
    /// Counter name, e.g. `frames_in`.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Its value.
    pub value: u64,
}

/// STATS_REPLY, server → client. | `entries` | sequence of (string name, u64 value) |
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply<'a> {
    /// The counters, in the server's order.
    #[serde(borrow)]
    pub entries: Vec<StatEntry<'a>>,
}

impl Body<'_> for Stats {
    type Static = Self;

    fn into_static(self) -> Self {
        self
    }
}

impl<'a> Body<'a> for StatsReply<'a> {
    type Static = StatsReply<'static>;

    fn into_static(self) -> StatsReply<'static> {
        StatsReply {
            entries: self
                .entries
                .into_iter()
                .map(|e| StatEntry {
                    name: super::cow_owned(e.name),
                    value: e.value,
                })
                .collect(),
        }
    }
}
