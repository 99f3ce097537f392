//! The conformance crate's integration tests, in one binary: one link instead of seven, and the
//! test harness runs the long tests of every part side by side (most of their time is spent
//! waiting on timeouts, not computing).
//!
//! * `reference`: the suite against the reference server; the runner's own contracts;
//! * `python`: the suite against the second implementation, written in Python;
//! * `mutants`: deliberately broken servers, each killed by a named case;
//! * `proxy`: the reference through a fault-injecting proxy;
//! * `client`: the client suite against the Rust and Python clients and client mutants;
//! * `reports`: what the reports say about broken servers;
//! * `no_panic`: property tests feeding the runner hostile input;
//! * `capture`: the packet captures (`--pcap`) hold exactly the runs' exchanges, and the
//!   Wireshark dissector (spec/wireshark/) decodes them;
//! * `fuzz`: the fuzzer raises no false alarm on correct servers and finds every combination
//!   mutant.

#![allow(dead_code)] // helpers shared by some of the parts

mod capture;
mod client;
mod client_fuzz;
mod fuzz;
mod interrupts;
mod mutant;
mod mutants;
mod no_panic;
mod proxy;
mod pyserver;
mod python;
mod reference;
mod reports;
