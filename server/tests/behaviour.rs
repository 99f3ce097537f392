//! Behavioural tests of the reference server over real sockets, against every I/O model that can
//! serve them.

use std::io::{Read, Write};
use std::time::Duration;

use echowire_codec::ErrorCode;
use echowire_codec::client::Client;
use echowire_codec::message::{self, Message, compute_digest};
use echowire_test_support::for_models;
use echowire_test_support::messages::*;
use echowire_test_support::sockets::*;

for_models!(
    pipelined_thousand_in_one_write,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |_| {});
        let mut r = Reader::open(&server, 2);
        let mut batch = Vec::new();
        for id in 1..=1000u32 {
            batch.extend_from_slice(&frame(2, &echo(&id.to_be_bytes()), id));
        }
        r.send(&batch);
        for id in 1..=1000u32 {
            let (got, m) = r.frame();
            assert_eq!(got, id);
            let Message::EchoReply(e) = m else {
                panic!("{m:?}")
            };
            assert_eq!(&e.payload[..], &id.to_be_bytes());
        }
    }
);

for_models!(
    slow_compute_does_not_delay_later_echoes,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |_| {});
        let mut r = Reader::open(&server, 1);
        let cost = 300_000;
        let mut batch = frame(1, &compute(cost), 1);
        for id in 2..=11 {
            batch.extend_from_slice(&frame(1, &echo(b"fast"), id));
        }
        r.send(&batch);
        let mut order = Vec::new();
        for _ in 0..11 {
            let (id, m) = r.frame();
            if let Message::ComputeResult(c) = &m {
                assert_eq!(c.digest, compute_digest(cost, b"seed"));
            }
            order.push(id);
        }
        assert_eq!(
            order.last(),
            Some(&1),
            "COMPUTE answered before the ECHOs behind it: {order:?}"
        );
    }
);

for_models!(
    half_close_gets_every_answer,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |_| {});
        let mut r = Reader::open(&server, 2);
        let mut batch = Vec::new();
        for id in 1..=20u32 {
            let m = if id % 5 == 0 {
                compute(2000)
            } else {
                echo(b"x")
            };
            batch.extend_from_slice(&frame(2, &m, id));
        }
        r.send(&batch);
        r.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut ids = Vec::new();
        loop {
            match r.next_frame() {
                Ok((0, Message::Goodbye(g))) => assert_eq!(g.code, ErrorCode::NO_ERROR),
                Ok((id, m)) => {
                    assert!(
                        matches!(m, Message::EchoReply(_) | Message::ComputeResult(_)),
                        "{m:?}"
                    );
                    ids.push(id);
                }
                Err(end) => {
                    assert_eq!(end, End::Eof);
                    break;
                }
            }
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=20).collect::<Vec<_>>());
    }
);

for_models!(
    garbage_and_http_first_bytes,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |_| {});
        for input in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            &[0x16, 0x03, 0x01, 0x00, 0xc8][..],
            &[0u8; 64][..],
        ] {
            let mut r = Reader::new(connect(&server));
            r.send(input);
            let (id, m) = r.frame();
            assert_eq!((id, error_code(&m)), (0, Some(ErrorCode::BAD_PREFACE)));
            // Lingering close: a clean EOF, not a reset, even though we sent more than was read.
            assert_eq!(r.next_frame().unwrap_err(), End::Eof);
        }
        // Still serving.
        let mut c = Client::connect_tcp(server.tcp_addr().unwrap(), Default::default()).unwrap();
        assert_eq!(&c.echo(b"ok").unwrap()[..], b"ok");
    }
);

for_models!(
    oversize_length_claim_is_refused,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |_| {});
        let mut r = Reader::open(&server, 1);
        r.send(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 5, 0, 0]);
        let (id, m) = r.frame();
        assert_eq!((id, error_code(&m)), (0, Some(ErrorCode::FRAME_TOO_LARGE)));
        assert_eq!(r.next_frame().unwrap_err(), End::Eof);
        let mut c = Client::connect_tcp(server.tcp_addr().unwrap(), Default::default()).unwrap();
        assert_eq!(c.ping(5).unwrap(), 5);
    }
);

for_models!(
    slowloris_is_evicted,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |c| {
            c.handshake_timeout = Duration::from_secs(1);
            c.idle_timeout = Duration::from_secs(1);
        });
        // During the handshake: one preface byte every 100 ms.
        let mut r = Reader::new(connect(&server));
        let writer = {
            let mut s = r.stream.try_clone().unwrap();
            std::thread::spawn(move || {
                for b in echowire_codec::PREFACE.iter().chain(&[0u8; 100]) {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let (_, m) = r.frame();
        assert_eq!(error_code(&m), Some(ErrorCode::HANDSHAKE_TIMEOUT));
        assert!(r.next_frame().is_err());
        writer.join().unwrap();
        // After the handshake: a frame trickled byte by byte never resets the idle timer.
        let mut r = Reader::open(&server, 1);
        let frame = frame(1, &echo(b"slow"), 1);
        let mut s = r.stream.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            for b in frame {
                if s.write_all(&[b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let (_, m) = r.frame();
        assert!(
            matches!(&m, Message::Goodbye(g) if g.code == ErrorCode::IDLE_TIMEOUT),
            "{m:?}"
        );
        assert!(r.next_frame().is_err());
        writer.join().unwrap();
    }
);

for_models!(
    reset_mid_response_leaves_others_served,
    [Reactor, Threaded],
    |model| {
        let server = start(model, |_| {});
        for _ in 0..5 {
            let mut r = Reader::open(&server, 1);
            let mut batch = Vec::new();
            for id in 1..=50 {
                batch.extend_from_slice(&frame(1, &echo(&vec![7u8; 60_000]), id));
            }
            r.send(&batch);
            // Read a little of the response, then reset (SO_LINGER 0).
            let mut some = [0u8; 1000];
            let _ = r.stream.read(&mut some).unwrap();
            socket2::SockRef::from(&r.stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(r);
        }
        let mut c = Client::connect_tcp(server.tcp_addr().unwrap(), Default::default()).unwrap();
        assert_eq!(&c.echo(b"still here").unwrap()[..], b"still here");
    }
);

for_models!(
    client_that_never_reads_is_held_back_and_loses_nothing,
    [Reactor, Threaded],
    |model| {
        let cap = 256 * 1024;
        let server = start(model, |c| c.max_pending_output = cap);
        let mut r = Reader::open(&server, 1);
        let payload = vec![0xA5u8; 32 * 1024];
        let n = 400u32; // 12.8 MiB of responses: far above the cap plus the kernel's buffers
        let mut writer_stream = r.stream.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            for id in 1..=n {
                writer_stream
                    .write_all(&frame(1, &echo(&payload), id))
                    .unwrap();
            }
        });
        // Give the server time to fill the socket buffers and hit the cap, while another client is
        // served normally.
        std::thread::sleep(Duration::from_millis(500));
        let mut other =
            Client::connect_tcp(server.tcp_addr().unwrap(), Default::default()).unwrap();
        for i in 0..20 {
            assert_eq!(other.ping(i).unwrap(), i);
        }
        let high = server
            .counters()
            .output_high_water
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            high <= (cap + 64 * 1024) as u64,
            "output queue reached {high} bytes, cap {cap}"
        );
        for id in 1..=n {
            let (got, m) = r.frame();
            assert_eq!(got, id, "responses in order");
            let Message::EchoReply(e) = m else { panic!() };
            assert_eq!(e.payload.len(), 32 * 1024);
        }
        writer.join().unwrap();
    }
);

for_models!(
    busy_when_the_worker_queue_is_full,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |c| {
            c.workers = 1;
            c.queue_depth = 1;
        });
        let mut r = Reader::open(&server, 2);
        // One worker and one queue slot: at most two of the eight are accepted.
        let mut batch = Vec::new();
        for id in 1..=8 {
            batch.extend_from_slice(&frame(2, &compute(400_000), id));
        }
        r.send(&batch);
        let mut results = std::collections::BTreeMap::new();
        for _ in 0..8 {
            let (id, m) = r.frame();
            assert!(
                results.insert(id, m).is_none(),
                "request {id} answered twice"
            );
        }
        let busy: Vec<u32> = results
            .iter()
            .filter(|(_, m)| error_code(m) == Some(ErrorCode::BUSY))
            .map(|(i, _)| *i)
            .collect();
        assert!(
            busy.len() >= 6,
            "expected BUSY for the overflow, got {results:?}"
        );
        for id in &busy {
            let Message::Error(e) = &results[id] else {
                unreachable!()
            };
            assert!(e.retry_after_ms > 0, "version 2 BUSY carries a retry hint");
        }
        assert!(matches!(results[&1], Message::ComputeResult(_)));
    }
);

for_models!(
    cancel_of_queued_work,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |c| {
            c.workers = 1;
            c.queue_depth = 8;
        });
        let mut r = Reader::open(&server, 1);
        // One worker: job 2 cannot start before job 1 (long) ends, so the CANCEL finds it queued.
        let mut batch = frame(1, &compute(1_000_000), 1);
        batch.extend_from_slice(&frame(1, &compute(1_000_000), 2));
        batch.extend_from_slice(&frame(1, &Message::Cancel(message::Cancel {}), 2));
        batch.extend_from_slice(&frame(1, &Message::Cancel(message::Cancel {}), 99)); // unknown: ignored
        r.send(&batch);
        let (id, m) = r.frame();
        assert_eq!(
            (id, error_code(&m)),
            (2, Some(ErrorCode::CANCELLED)),
            "{m:?}"
        );
        let (id, m) = r.frame();
        assert_eq!(id, 1);
        assert!(matches!(m, Message::ComputeResult(_)), "{m:?}");
        // Nothing else: the CANCELs themselves are never answered.
        r.send(&frame(1, &Message::Ping(message::Ping { data: 3 }), 3));
        assert_eq!(r.frame().0, 3);
    }
);

for_models!(
    sum_both_encodings_and_stats,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |_| {});
        let mut c = Client::connect_tcp(server.tcp_addr().unwrap(), Default::default()).unwrap();
        let values: Vec<i64> = (0..1000).map(|i| i * 7 - 3000).collect();
        let expect = message::SumResult::of(values.iter().copied());
        assert_eq!(c.sum(values.clone(), false).unwrap(), expect);
        assert_eq!(c.sum(values, true).unwrap(), expect);
        let stats = c.stats().unwrap();
        let get = |k: &str| stats.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert!(get("connections_open").unwrap() >= 1);
        // Per server, not per process: exactly the one archived SUM this test sent.
        assert_eq!(get("archived_sums"), Some(1));
    }
);

for_models!(connection_limit, [Reactor, Threaded], |model| {
    let server = start(model, |c| c.max_connections = 2);
    let _a = Reader::open(&server, 1);
    let _b = Reader::open(&server, 1);
    let mut r = Reader::new(connect(&server));
    let (id, m) = r.frame();
    assert_eq!((id, error_code(&m)), (0, Some(ErrorCode::CONNECTION_LIMIT)));
    assert_eq!(r.next_frame().unwrap_err(), End::Eof);
});

for_models!(
    graceful_shutdown_finishes_accepted_work,
    [Reactor, Threaded, Blocking],
    |model| {
        let server = start(model, |c| c.workers = 1);
        let mut r = Reader::open(&server, 2);
        let mut batch = Vec::new();
        for id in 1..=4 {
            batch.extend_from_slice(&frame(2, &compute(100_000), id));
        }
        batch.extend_from_slice(&frame(2, &echo(b"e"), 5));
        r.send(&batch);
        let (first, _) = r.frame(); // something was processed: the requests were accepted
        let stopper = std::thread::spawn(move || server.shutdown());
        let mut answered = vec![first];
        let mut goodbye = false;
        loop {
            match r.next_frame() {
                Ok((0, Message::Goodbye(g))) => {
                    assert_eq!(g.code, ErrorCode::SHUTTING_DOWN);
                    goodbye = true;
                }
                Ok((id, m)) => {
                    assert!(
                        matches!(m, Message::ComputeResult(_) | Message::EchoReply(_)),
                        "{m:?}"
                    );
                    answered.push(id);
                }
                Err(_) => break,
            }
        }
        answered.sort_unstable();
        assert_eq!(answered, vec![1, 2, 3, 4, 5]);
        assert!(goodbye);
        stopper.join().unwrap();
    }
);

// Spec §8.4 (document 1.1): a connection counts against the limit until its socket is closed,
// including its lingering close. The linger is long here so the lingering connection is certain
// to hold its place while the next one is tried; the place comes back once it closes.
for_models!(
    lingering_connections_count_against_the_limit,
    [Reactor, Threaded],
    |model| {
        let server = start(model, |c| {
            c.max_connections = 1;
            c.linger = Duration::from_secs(30);
        });
        let mut a = Reader::open(&server, 1);
        a.send(&[0, 0, 0, 1]); // Length 1: FRAME_TOO_SHORT, then a lingering close
        let (id, m) = a.frame();
        assert_eq!((id, error_code(&m)), (0, Some(ErrorCode::FRAME_TOO_SHORT)));
        // `a` is lingering now (we neither read to EOF nor close): it still holds the only place.
        let mut b = Reader::new(connect(&server));
        let (id, m) = b.frame();
        assert_eq!((id, error_code(&m)), (0, Some(ErrorCode::CONNECTION_LIMIT)));
        drop(b);
        drop(a);
        // Once both sockets are closed the place is free again (bounded retries, no timing claim).
        let mut served = false;
        for _ in 0..100 {
            let mut c = Reader::new(connect(&server));
            c.send(&hello_bytes(1, 1));
            match c.next_frame() {
                Ok((0, Message::Welcome(_))) => {
                    served = true;
                    break;
                }
                Ok((0, m)) if error_code(&m) == Some(ErrorCode::CONNECTION_LIMIT) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            served,
            "the place never came back after both connections closed"
        );
    }
);

#[test]
fn reuseport_reactors_each_accept_and_drain_their_own_connections() {
    let server = start(echowire_server::Model::Reactor, |c| {
        c.reuseport = true;
        c.reactors = 2;
    });
    let addr = server.tcp_addr().unwrap();
    let mut clients: Vec<_> = (0..40)
        .map(|_| echowire_codec::client::Client::connect_tcp(addr, Default::default()).unwrap())
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.ping(i as u64).unwrap(), i as u64);
    }
    let counters = server.counters();
    assert_eq!(
        counters
            .connections_open
            .load(std::sync::atomic::Ordering::Relaxed),
        40
    );
    drop(clients);
    server.shutdown();
}
