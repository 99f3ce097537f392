//! Baselines for `bench/compare.sh` (see BENCHMARKS.md):
//!
//! * `echowire-tokio-server`: the Echowire protocol on tokio, written the way a competent tokio
//!   user would: multi-thread runtime, a task per connection, `Framed` with the codec's
//!   `FrameCodec`, responses through a per-connection channel to a writer task that batches
//!   (feed while more are ready, flush once), COMPUTE on a dedicated bounded blocking pool
//!   (`spawn_blocking` behind a semaphore; BUSY when exhausted), ECHO replies sharing the
//!   request's memory (no copy). It serves the protocol subset the workloads use (handshake with
//!   version negotiation, PING, ECHO, COMPUTE, GOODBYE, and ERROR for anything else).
//! * `echowire-raw-echo`: the physical limit — a mio reactor that writes back whatever it reads,
//!   parsing nothing.
#![forbid(unsafe_code)]
