//! Helpers shared by the test binaries of the Echowire workspace: report validators, the
//! settings that keep tests honest on a busy machine, and small process utilities. Not
//! published; every crate of the workspace may use it as a dev-dependency.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

pub mod json;
pub mod junit;
pub mod tools;
