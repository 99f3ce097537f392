//! The descriptor limit: raised to what the system allows, and checked against the
//! configuration before the server starts.
//!
//! Every connection is a descriptor, every reactor two (its epoll instance and its waker), the
//! acceptor two more, plus listeners and the standard streams. A server whose
//! `--max-connections` does not fit under `RLIMIT_NOFILE` would otherwise find out at run time:
//! accepts fail with `EMFILE` while clients hang in the backlog. So at startup the soft limit is
//! raised to the hard limit, and if the connections still do not fit the operator is told,
//! naming the setting; if not even the threads' own descriptors fit, the server does not start.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::config::{Config, ConfigError};

/// Descriptors the server needs besides its connections' (stdio, listeners, a little slack).
const BASE: u64 = 32;

/// What [`fit`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    /// The soft limit now in force.
    pub limit: u64,
    /// Descriptors the configuration needs at its connection limit.
    pub needed: u64,
}

impl Fit {
    /// A warning for the operator when `--max-connections` cannot be reached.
    pub fn warning(&self, config: &Config) -> Option<String> {
        (self.needed > self.limit).then(|| {
            let room = self
                .limit
                .saturating_sub(self.needed - config.max_connections as u64);
            format!(
                "--max-connections {} needs about {} descriptors but the limit is {} (hard limit \
                 reached): at most about {room} connections will be served; connections past \
                 that wait in the listen backlog. Raise `ulimit -n` or lower --max-connections",
                config.max_connections, self.needed, self.limit
            )
        })
    }
}

/// Raises the soft descriptor limit to the hard limit and checks `config` against it. An error
/// means the server cannot even start its threads (it names `--reactors`).
pub fn fit(config: &Config) -> Result<Fit, ConfigError> {
    let threads = 2 * config.reactors as u64 + 2 + config.listen.len() as u64;
    let needed = BASE + threads + config.max_connections as u64;
    let (mut soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        soft = hard;
    }
    if BASE + threads > soft {
        return Err(ConfigError {
            flag: "--reactors",
            problem: format!(
                "{} reactors need {} descriptors before any connection, but the descriptor \
                 limit is {soft}",
                config.reactors,
                BASE + threads
            ),
        });
    }
    Ok(Fit {
        limit: soft,
        needed,
    })
}
