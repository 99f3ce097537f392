//! Measures the server's memory per idle connection (reactor model).
//!
//! `cargo run --release -p echowire-server --example idle_memory -- [CONNECTIONS]`
//!
//! Starts the server in this process, opens CONNECTIONS connections, completes the handshake on
//! each, waits until the server has processed them, and reports the growth of this process's RSS
//! divided by the number of connections. The client side of each connection is a bare descriptor
//! (no user-space memory), so the growth is the server's: its slab entry, session, and whatever
//! buffers it keeps for an idle connection (it gives them back).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use echowire_server::Server;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(5000, |s| s.parse().expect("CONNECTIONS is a number"));
    // Both ends of every connection live in this process: two descriptors each.
    let want = (2 * n + 256) as u64;
    let (soft, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if soft < want {
        nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            want.min(hard),
            hard,
        )
        .unwrap();
    }
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .with(|c| {
            c.reactors = 1;
            c.workers = 1;
            c.max_connections = n + 10;
        })
        .start()
        .unwrap();
    let addr = server.tcp_addr().unwrap();
    let hello = {
        let mut c = echowire_codec::session::ClientSession::new(Default::default(), Instant::now());
        c.take_output()
    };
    // Warm up allocator arenas and the reactor with a few connections first.
    let warm: Vec<TcpStream> = (0..50).map(|_| handshake(addr, &hello)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let start = Instant::now();
    let conns: Vec<TcpStream> = (0..n).map(|_| handshake(addr, &hello)).collect();
    std::thread::sleep(Duration::from_millis(2500));
    let after = rss_kib();
    let per = (after.saturating_sub(before) as f64 * 1024.0) / n as f64;
    println!(
        "{n} idle connections: RSS {before} KiB -> {after} KiB, {per:.0} bytes per connection (opened in {:?})",
        start.elapsed()
    );
    drop(conns);
    drop(warm);
    server.shutdown();
}

fn handshake(addr: std::net::SocketAddr, hello: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(hello).unwrap();
    let mut buf = [0u8; 256];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = s.read(&mut buf).unwrap();
    assert!(n > 12, "WELCOME expected");
    s
}
