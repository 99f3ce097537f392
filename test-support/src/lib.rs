//! Helpers shared by the test binaries of the Echowire workspace: messages and frames
//! ([`messages`]), in-memory session pairs ([`memory`]), socket helpers for a running server
//! ([`sockets`]), report validators ([`junit`], [`json`]) and the optional tools ([`tools`]). Not
//! published; every crate of the workspace may use it as a dev-dependency.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

pub mod json;
pub mod junit;
pub mod memory;
pub mod messages;
pub mod sockets;
pub mod tools;
