//! The lifecycle of spec §3, driven in memory.

use std::time::Duration;

use bytes::Bytes;
use echowire_codec::ErrorCode;
use echowire_codec::frame::PREFACE;
use echowire_codec::message::{self, Message};
use echowire_codec::session::*;
use echowire_test_support::memory::*;
use echowire_test_support::messages::*;

fn v(min: u8, max: u8) -> ClientConfig {
    ClientConfig {
        min_version: min,
        max_version: max,
        ..Default::default()
    }
}

#[test]
fn negotiates_the_highest_common_version() {
    assert_eq!(
        Pair::handshake(ServerConfig::default(), v(1, 2)).1.version,
        2
    );
    assert_eq!(
        Pair::handshake(ServerConfig::default(), v(1, 1)).1.version,
        1
    );
    let old = ServerConfig {
        max_version: 1,
        ..Default::default()
    };
    assert_eq!(Pair::handshake(old, v(1, 2)).1.version, 1);
    let (_, n) = Pair::handshake(ServerConfig::default(), v(0, 9));
    assert_eq!(n.version, 2);
    assert_eq!(n.capabilities & message::CAP_RKYV, message::CAP_RKYV);
}

#[test]
fn no_version_in_common_is_a_connection_error() {
    for (min, max) in [(3, 9), (2, 1), (0, 0)] {
        let mut p = Pair::new(ServerConfig::default(), v(min, max));
        p.server_events();
        assert_eq!(p.server.state(), SessionState::Closing);
        let evs = p.client_events();
        assert!(
            matches!(
                &evs[..],
                [ClientEvent::ConnectionError {
                    code: ErrorCode::UNSUPPORTED_VERSION,
                    ..
                }]
            ),
            "{evs:?}"
        );
        assert!(p.server.is_finished());
    }
}

#[test]
fn garbage_and_http_as_first_bytes() {
    for (input, offset) in [
        (&b"GET / HTTP/1.1\r\n\r\n"[..], 0),
        (&PREFACE[..3], 99),
        (&[0x89, b'E', b'W', b'X'][..], 3),
    ] {
        let mut s = RawServer::new(ServerConfig::default());
        s.feed(input);
        assert!(s.events().is_empty());
        let frames = s.frames();
        if offset == 99 {
            // A correct prefix: still waiting.
            assert!(frames.is_empty());
            assert_eq!(s.server.state(), SessionState::Preface { matched: 3 });
            continue;
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(error_code(&frames[0].1), Some(ErrorCode::BAD_PREFACE));
        assert!(format!("{:?}", frames[0].1).contains(&format!("byte {offset}")));
        assert!(s.server.is_finished());
        // Input after the error is discarded, never answered.
        s.feed(b"more garbage");
        assert!(s.events().is_empty() && s.frames().is_empty());
    }
}

#[test]
fn first_frame_must_be_hello() {
    let mut s = RawServer::new(ServerConfig::default());
    s.feed(&PREFACE);
    s.feed(&frame(1, &echo(b"x"), 1));
    assert!(s.events().is_empty());
    assert_eq!(
        error_code(&s.frames()[0].1),
        Some(ErrorCode::HANDSHAKE_REQUIRED)
    );
    assert!(s.server.is_finished());
}

#[test]
fn hello_limits_are_checked() {
    let mut s = RawServer::new(ServerConfig::default());
    s.feed(&PREFACE);
    s.feed(&hello(1, 2, 100, 0));
    s.events();
    assert_eq!(
        error_code(&s.frames()[0].1),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
    // A second HELLO after the handshake.
    let mut s = RawServer::open(1, 0);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.events();
    assert_eq!(
        error_code(&s.frames()[0].1),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
    assert_eq!(s.server.state(), SessionState::Closing);
}

#[test]
fn handshake_timeout_evicts_a_silent_or_trickling_client() {
    let mut s = RawServer::new(ServerConfig {
        handshake_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    // The whole preface, one byte every 700 ms: the deadline runs from accept, not from progress.
    for b in &PREFACE {
        s.feed(&[*b]);
        s.events();
        s.advance(Duration::from_millis(700));
    }
    assert_eq!(
        error_code(&s.frames()[0].1),
        Some(ErrorCode::HANDSHAKE_TIMEOUT)
    );
    assert!(s.server.is_finished());
}

#[test]
fn idle_timeout_is_not_reset_by_partial_frames() {
    let mut s = RawServer::open(1, 0);
    s.server = {
        let mut r = RawServer::new(ServerConfig {
            idle_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        });
        r.feed(&PREFACE);
        r.feed(&hello(1, 1, 1 << 20, 0));
        r.events();
        r.frames();
        r.server
    };
    // A slowloris: one byte of a frame every 3 seconds.
    let f = frame(1, &echo(b"abc"), 1);
    for b in &f[..5] {
        s.feed(&[*b]);
        assert!(s.events().is_empty());
        s.advance(Duration::from_secs(3));
    }
    let frames = s.frames();
    assert!(
        matches!(&frames[0].1, Message::Goodbye(g) if g.code == ErrorCode::IDLE_TIMEOUT),
        "{frames:?}"
    );
    assert!(s.server.is_finished());
}

#[test]
fn a_thousand_pipelined_requests_answered_out_of_order() {
    let (mut p, _) = Pair::handshake(ServerConfig::default(), v(1, 2));
    let mut ids = Vec::new();
    for i in 0..1000u32 {
        ids.push(
            p.client
                .send(&echo_msg(Bytes::from(i.to_be_bytes().to_vec())), p.now)
                .unwrap(),
        );
    }
    let evs = p.server_events();
    assert_eq!(evs.len(), 1000);
    for ev in evs.into_iter().rev() {
        let (r_id, r_msg) = request(ev);
        let Message::Echo(message::Echo { payload }) = r_msg else {
            panic!()
        };
        assert!(p.server.respond(r_id, &echo_reply(payload), p.now));
    }
    let got = p.client_events();
    assert_eq!(got.len(), 1000);
    for (k, ev) in got.iter().enumerate() {
        let ClientEvent::Response {
            id,
            response: Message::EchoReply(message::EchoReply { payload }),
        } = ev
        else {
            panic!("{ev:?}")
        };
        assert_eq!(*id, ids[999 - k]);
        assert_eq!(&payload[..], &((999 - k) as u32).to_be_bytes());
    }
    assert_eq!(p.client.outstanding(), 0);
}

#[test]
fn duplicate_outstanding_id_is_a_connection_error() {
    let mut s = RawServer::open(1, 0);
    s.feed(&frame(1, &echo(b"a"), 5));
    s.feed(&frame(1, &echo(b"b"), 5));
    let evs = s.events();
    assert_eq!(evs.len(), 1);
    let frames = s.frames();
    assert_eq!(
        (frames[0].0, error_code(&frames[0].1)),
        (0, Some(ErrorCode::DUPLICATE_REQUEST_ID))
    );
    // The first request's late answer is not sent: the ERROR stood for it.
    assert!(!s.server.respond(5, &echo_reply(Bytes::new()), s.now));
}

#[test]
fn cancel_of_outstanding_and_unknown_ids() {
    let mut s = RawServer::open(1, 0);
    let compute = Message::Compute(message::Compute {
        cost: 10,
        seed: b"s"[..].into(),
    });
    s.feed(&frame(1, &compute, 7));
    s.feed(&frame(1, &Message::Cancel(message::Cancel {}), 7));
    s.feed(&frame(1, &Message::Cancel(message::Cancel {}), 8)); // not outstanding: ignored
    let evs = s.events();
    assert!(
        matches!(evs[..], [Event::Request { .. }, Event::Cancel { id: 7 }]),
        "{evs:?}"
    );
    assert!(
        s.server
            .respond(7, &Message::error(ErrorCode::CANCELLED, "cancelled"), s.now)
    );
    let frames = s.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].0, error_code(&frames[0].1)),
        (7, Some(ErrorCode::CANCELLED))
    );
}

#[test]
fn graceful_drain_answers_outstanding_and_refuses_new() {
    let mut s = RawServer::open(2, 0);
    s.feed(&frame(2, &echo(b"a"), 1));
    assert_eq!(s.events().len(), 1);
    s.server.start_drain(s.now);
    s.feed(&frame(2, &echo(b"b"), 2));
    assert!(s.events().is_empty());
    assert!(!s.server.is_finished());
    assert!(
        s.server
            .respond(1, &echo_reply(Bytes::from_static(b"a")), s.now)
    );
    let frames = s.frames();
    let kinds: Vec<_> = frames
        .iter()
        .map(|(id, m)| (*id, m.msg_type().to_string(), error_code(m)))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (0, "GOODBYE".into(), None),
            (2, "ERROR".into(), Some(ErrorCode::SHUTTING_DOWN)),
            (1, "ECHO_REPLY".into(), None),
        ]
    );
    assert!(s.server.is_finished());
}

#[test]
fn half_close_gets_every_answer_then_goodbye() {
    let mut s = RawServer::open(1, 0);
    for id in 1..=5 {
        s.feed(&frame(1, &echo(b"x"), id));
    }
    s.server.handle_eof();
    let evs = s.events();
    assert_eq!(evs.len(), 5);
    assert!(!s.server.is_finished());
    for ev in evs {
        let (r_id, _) = request(ev);
        s.server
            .respond(r_id, &echo_reply(Bytes::from_static(b"x")), s.now);
    }
    let frames = s.frames();
    assert_eq!(frames.len(), 6);
    assert!(matches!(&frames[5].1, Message::Goodbye(g) if g.code == ErrorCode::NO_ERROR));
    assert!(s.server.is_finished());
}

#[test]
fn eof_inside_a_frame_reports_truncation_and_still_answers() {
    let mut s = RawServer::open(1, 0);
    s.feed(&frame(1, &echo(b"x"), 1));
    let partial = frame(1, &echo(b"hello"), 2);
    s.feed(&partial[..9]);
    s.server.handle_eof();
    let evs = s.events();
    assert_eq!(evs.len(), 1);
    s.server
        .respond(1, &echo_reply(Bytes::from_static(b"x")), s.now);
    let frames = s.frames();
    assert_eq!(
        (frames[0].0, error_code(&frames[0].1)),
        (0, Some(ErrorCode::TRUNCATED_FRAME))
    );
    assert!(matches!(frames[1].1, Message::EchoReply(_)));
    assert!(matches!(frames[2].1, Message::Goodbye(_)));
    assert!(s.server.is_finished());
}

#[test]
fn backpressure_stops_input_until_output_drains_and_loses_nothing() {
    let config = ServerConfig {
        max_pending_output: 1000,
        ..Default::default()
    };
    let mut s = RawServer::new(config);
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.events();
    s.frames();
    for id in 1..=500 {
        s.feed(&frame(
            1,
            &Message::Ping(message::Ping { data: id.into() }),
            id,
        ));
    }
    let mut answered = Vec::new();
    let mut rounds = 0;
    loop {
        s.events();
        let pending = s.server.outbox().len();
        assert!(pending <= 1000 + 64, "output queue grew to {pending}");
        if !s.server.wants_read() {
            rounds += 1;
        }
        let frames = s.frames();
        if frames.is_empty() {
            break;
        }
        answered.extend(frames.into_iter().map(|(id, m)| match m {
            Message::Pong(p) => {
                assert_eq!(u64::from(id), p.data);
                id
            }
            m => panic!("{m:?}"),
        }));
    }
    assert!(rounds > 5, "backpressure never engaged");
    assert_eq!(answered, (1..=500).collect::<Vec<_>>());
}

#[test]
fn responses_above_the_clients_limit_become_errors() {
    let mut s = RawServer::new(ServerConfig::default());
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 4096, 0));
    s.events();
    s.frames();
    s.feed(&frame(1, &echo(&[0u8; 4090]), 3));
    let (_, r_msg) = request(s.events().pop().expect("a request"));
    let Message::Echo(message::Echo { payload }) = r_msg else {
        panic!()
    };
    s.server.respond(3, &echo_reply(payload), s.now);
    let frames = s.frames();
    assert_eq!(
        (frames[0].0, error_code(&frames[0].1)),
        (3, Some(ErrorCode::RESPONSE_TOO_LARGE))
    );
}

#[test]
fn outstanding_limit_and_request_errors_keep_the_connection() {
    let mut s = RawServer::new(ServerConfig {
        max_outstanding: 2,
        ..Default::default()
    });
    s.feed(&PREFACE);
    s.feed(&hello(2, 2, 1 << 20, 0));
    s.events();
    s.frames();
    s.version = 2;
    for id in 1..=3 {
        s.feed(&frame(2, &echo(b"x"), id));
    }
    let mut bad = frame(2, &echo(b"x"), 9);
    bad[5] = 0x7F; // reserved type
    s.feed(&bad);
    s.feed(&frame(2, &Message::Ping(message::Ping { data: 1 }), 10));
    assert_eq!(s.events().len(), 2);
    let frames = s.frames();
    let got: Vec<_> = frames
        .iter()
        .map(|(id, m)| (*id, m.msg_type().to_string(), error_code(m)))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "ERROR".into(), Some(ErrorCode::TOO_MANY_OUTSTANDING)),
            (9, "ERROR".into(), Some(ErrorCode::UNKNOWN_TYPE)),
            // §2.7 rule 10: PING is a request like any other, so it counts against the limit.
            (10, "ERROR".into(), Some(ErrorCode::TOO_MANY_OUTSTANDING)),
        ]
    );
    assert_eq!(s.server.state(), SessionState::Open);
}

#[test]
fn version_mismatch_after_handshake_closes() {
    let mut s = RawServer::open(2, 0);
    s.feed(&frame(1, &echo(b"x"), 1));
    assert!(s.events().is_empty());
    assert_eq!(
        error_code(&s.frames()[0].1),
        Some(ErrorCode::VERSION_MISMATCH)
    );
    assert!(s.server.is_finished());
}

#[test]
fn client_error_with_id_zero_ends_the_connection() {
    let mut s = RawServer::open(1, 0);
    s.feed(&frame(1, &echo(b"x"), 1));
    let err = Message::Error(message::Error {
        code: ErrorCode::INTERNAL_ERROR,
        message: "bye".into(),
        retry_after_ms: 0,
    });
    s.feed(&frame(1, &err, 0));
    assert_eq!(s.events().len(), 1);
    assert!(!s.server.respond(1, &echo_reply(Bytes::new()), s.now));
    assert!(s.frames().is_empty());
    assert!(s.server.is_finished());
    assert_eq!(
        s.server.close_reason(),
        Some(&CloseReason::PeerError(ErrorCode::INTERNAL_ERROR))
    );
}

#[test]
fn stats_only_in_version_2_and_rkyv_only_when_negotiated() {
    let mut s = RawServer::open(1, 1);
    s.feed(&frame(1, &Message::Stats(message::Stats {}), 1));
    assert!(s.events().is_empty());
    assert_eq!(error_code(&s.frames()[0].1), Some(ErrorCode::UNKNOWN_TYPE));

    let mut s = RawServer::open(2, 1);
    s.feed(&frame(2, &Message::Stats(message::Stats {}), 1));
    assert!(matches!(
        s.events()[..],
        [Event::Request {
            id: 1,
            message: Message::Stats(_)
        }]
    ));
    let mut archive = Vec::new();
    echowire_codec::body::archive::write_sum(&[4, 5], &mut archive).unwrap();
    let rk = Message::SumRkyv(message::RkyvBody {
        archive: Bytes::from(archive),
    });
    s.feed(&frame(2, &rk, 2));
    let evs = s.events();
    let [
        Event::Request {
            id: 2,
            message: Message::SumRkyv(message::RkyvBody { archive }),
        },
    ] = &evs[..]
    else {
        panic!("{evs:?}")
    };
    let r = echowire_codec::body::archive::check_sum(archive).map(|a| a.values().sum::<i64>());
    assert_eq!(r.unwrap(), 9);

    let mut s = RawServer::open(2, 0);
    s.feed(&frame(2, &rk, 3));
    assert!(s.events().is_empty());
    assert_eq!(error_code(&s.frames()[0].1), Some(ErrorCode::INVALID_FLAGS));
}

#[test]
fn client_rejects_unsolicited_and_mismatched_responses() {
    let (mut p, _) = Pair::handshake(ServerConfig::default(), v(1, 1));
    // A PONG for a request never sent.
    let pong = frame(1, &Message::Pong(message::Pong { data: 1 }), 77);
    p.client.handle_input(&pong);
    assert!(matches!(
        p.client.poll_event(p.now),
        Err(ClientError::Protocol(_))
    ));
    // A COMPUTE_RESULT answering an ECHO.
    let (mut p, _) = Pair::handshake(ServerConfig::default(), v(1, 1));
    let id = p.client.send(&echo_msg(Bytes::new()), p.now).unwrap();
    let wrong = frame(
        1,
        &Message::ComputeResult(message::ComputeResult { digest: [0; 32] }),
        id,
    );
    p.client.handle_input(&wrong);
    assert!(matches!(
        p.client.poll_event(p.now),
        Err(ClientError::Protocol(_))
    ));
}

#[test]
fn client_goodbye_drains_and_closes_both_sides() {
    let (mut p, _) = Pair::handshake(ServerConfig::default(), v(1, 2));
    let id = p
        .client
        .send(&echo_msg(Bytes::from_static(b"z")), p.now)
        .unwrap();
    p.client.goodbye();
    assert!(matches!(
        p.client
            .send(&Message::<Bytes>::Stats(message::Stats {}), p.now),
        Err(ClientError::Closed)
    ));
    let evs = p.server_events();
    let (r_id, _) = request(evs[0].clone());
    assert!(!p.server.is_finished());
    p.server
        .respond(r_id, &echo_reply(Bytes::from_static(b"z")), p.now);
    assert!(p.server.is_finished() || !p.server.outbox().is_empty());
    let evs = p.client_events();
    assert!(matches!(&evs[0], ClientEvent::Response { id: x, .. } if *x == id));
    assert!(matches!(
        &evs[1],
        ClientEvent::Goodbye {
            code: ErrorCode::NO_ERROR,
            ..
        }
    ));
    assert!(p.server.is_finished());
    assert!(p.client.is_closed());
}

#[test]
fn a_connection_with_output_still_queued_is_not_idle() {
    let mut s = RawServer::new(ServerConfig {
        idle_timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    });
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.events();
    s.frames();
    s.feed(&frame(1, &Message::Ping(message::Ping { data: 1 }), 1));
    s.events();
    // The PONG is queued but the client does not read: 30 s pass.
    for _ in 0..3 {
        s.advance(Duration::from_secs(10));
        assert_eq!(s.server.state(), SessionState::Open);
    }
    // Once the output is written, the idle period starts over, and then the connection is idle.
    assert!(matches!(s.frames()[0].1, Message::Pong(_)));
    s.advance(Duration::from_secs(5));
    assert_eq!(s.server.state(), SessionState::Open);
    s.advance(Duration::from_secs(10));
    assert!(matches!(&s.frames()[0].1, Message::Goodbye(g) if g.code == ErrorCode::IDLE_TIMEOUT));
}

// ---- spec 1.1 resolutions, in memory ---------------------------------------------------------

fn kinds(frames: &[(u32, Message)]) -> Vec<(u32, String, Option<ErrorCode>)> {
    frames
        .iter()
        .map(|(id, m)| (*id, m.msg_type().to_string(), error_code(m)))
        .collect()
}

#[test]
fn every_drain_is_bounded_and_ends_abortively() {
    // §3.8: a drain the client started (GOODBYE) with a request that never completes.
    let mut s = RawServer::new(ServerConfig {
        drain_timeout: Duration::from_secs(30),
        ..Default::default()
    });
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.events();
    s.frames();
    s.feed(&frame(1, &echo(b"slow"), 1));
    assert_eq!(s.events().len(), 1);
    s.feed(&frame(
        1,
        &Message::Goodbye(message::Goodbye {
            code: ErrorCode::NO_ERROR,
            message: "".into(),
        }),
        0,
    ));
    assert!(s.events().is_empty());
    assert_eq!(s.server.state(), SessionState::Draining);
    let deadline = s
        .server
        .poll_timeout()
        .expect("a draining session has a deadline");
    assert_eq!(deadline, s.now + Duration::from_secs(30));
    s.advance(Duration::from_secs(29));
    assert!(!s.server.is_finished());
    s.advance(Duration::from_secs(1));
    assert!(s.server.is_finished() && s.server.is_abortive());
    assert_eq!(s.server.close_reason(), Some(&CloseReason::DrainTimeout));
    // The late response is not sent: the connection is being reset.
    assert!(
        !s.server
            .respond(1, &echo_reply(Bytes::from_static(b"slow")), s.now)
    );
    assert!(s.frames().is_empty());
}

#[test]
fn a_closing_write_to_a_peer_that_never_reads_is_bounded() {
    // §3.10: queued output after a connection error is bounded by the write deadline.
    let mut s = RawServer::new(ServerConfig {
        drain_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    s.feed(&PREFACE);
    s.feed(&[0, 0, 0, 1]); // Length 1: FRAME_TOO_SHORT
    s.events();
    assert_eq!(s.server.state(), SessionState::Closing);
    assert!(!s.server.is_finished(), "the ERROR is still queued");
    s.advance(Duration::from_secs(5));
    assert!(s.server.is_finished() && s.server.is_abortive());
}

#[test]
fn ping_after_the_clients_goodbye_is_shutting_down_without_a_retry_hint() {
    let mut s = RawServer::open(2, 0);
    s.feed(&frame(2, &echo(b"a"), 1));
    assert_eq!(s.events().len(), 1);
    s.feed(&frame(
        2,
        &Message::Goodbye(message::Goodbye {
            code: ErrorCode::NO_ERROR,
            message: "".into(),
        }),
        0,
    ));
    s.feed(&frame(2, &Message::Ping(message::Ping { data: 7 }), 2));
    assert!(s.events().is_empty());
    let frames = s.frames();
    assert_eq!(
        kinds(&frames),
        vec![(2, "ERROR".into(), Some(ErrorCode::SHUTTING_DOWN))]
    );
    let Message::Error(e) = &frames[0].1 else {
        panic!()
    };
    assert_eq!(e.retry_after_ms, 0, "§3.8: the client started the drain");
}

#[test]
fn second_hello_is_protocol_error_whatever_its_header_version() {
    for header_version in [1, 2] {
        let mut s = RawServer::open(2, 0);
        s.feed(&frame(
            header_version,
            &Message::Hello(message::Hello {
                min_version: 1,
                max_version: 2,
                max_frame_size: 1 << 20,
                capabilities: 0,
                agent: "".into(),
            }),
            0,
        ));
        s.events();
        assert_eq!(
            kinds(&s.frames()),
            vec![(0, "ERROR".into(), Some(ErrorCode::PROTOCOL_ERROR))],
            "header version {header_version}"
        );
    }
}

#[test]
fn the_first_frame_is_held_to_4096_octets() {
    // §2.2: before WELCOME the limit is 4096, whatever the server's own limit.
    for (agent_len, expect_welcome) in [(4096 - 22, true), (4096 - 21, false)] {
        let mut s = RawServer::new(ServerConfig::default());
        s.feed(&PREFACE);
        let agent = "a".repeat(agent_len);
        s.feed(&frame(
            1,
            &Message::Hello(message::Hello {
                min_version: 1,
                max_version: 1,
                max_frame_size: 1 << 20,
                capabilities: 0,
                agent: agent.as_str().into(),
            }),
            0,
        ));
        s.events();
        let frames = s.frames();
        if expect_welcome {
            assert!(matches!(frames[0].1, Message::Welcome(_)), "{frames:?}");
        } else {
            assert_eq!(
                kinds(&frames),
                vec![(0, "ERROR".into(), Some(ErrorCode::FRAME_TOO_LARGE))]
            );
        }
    }
}

#[test]
fn unimplemented_application_types_are_unknown_before_flags_and_id() {
    let mut s = RawServer::open(1, 0);
    let mut app = frame(1, &echo(b"x"), 0);
    app[5] = 0x80; // application type, ID 0
    app[7] = 0x02; // an undefined flag too
    s.feed(&app);
    assert!(s.events().is_empty());
    assert_eq!(
        kinds(&s.frames()),
        vec![(0, "ERROR".into(), Some(ErrorCode::UNKNOWN_TYPE))]
    );
    // A server that implements 0x80 passes it on as a request.
    let mut s = RawServer::new(ServerConfig {
        application_types: 1,
        ..Default::default()
    });
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.events();
    s.frames();
    let mut app = frame(1, &echo(b"x"), 4);
    app[5] = 0x80;
    s.feed(&app);
    assert!(matches!(
        s.events().as_slice(),
        [Event::Request {
            id: 4,
            message: Message::Application(message::ApplicationBody {
                type_code: 0x80,
                ..
            })
        }]
    ));
}

#[test]
fn invalid_argument_comes_before_shutting_down() {
    // §2.7 rule 10: the request's own fields first.
    let mut s = RawServer::open(1, 0);
    s.feed(&frame(1, &echo(b"a"), 1));
    assert_eq!(
        s.events().len(),
        1,
        "one request outstanding keeps the drain open"
    );
    s.server.start_drain(s.now);
    s.feed(&frame(
        1,
        &Message::Compute(message::Compute {
            cost: 0,
            seed: (&b"s"[..]).into(),
        }),
        3,
    ));
    s.feed(&frame(
        1,
        &Message::Compute(message::Compute {
            cost: 1,
            seed: (&b"s"[..]).into(),
        }),
        4,
    ));
    assert!(s.events().is_empty());
    assert_eq!(
        kinds(&s.frames()),
        vec![
            (0, "GOODBYE".into(), None),
            (3, "ERROR".into(), Some(ErrorCode::INVALID_ARGUMENT)),
            (4, "ERROR".into(), Some(ErrorCode::SHUTTING_DOWN)),
        ]
    );
}

#[test]
fn huge_timeouts_mean_never_not_a_panic() {
    // A library user can configure any Duration: deadlines saturate instead of overflowing.
    let mut s = RawServer::new(ServerConfig {
        handshake_timeout: Duration::MAX,
        idle_timeout: Some(Duration::MAX),
        drain_timeout: Duration::MAX,
        ..Default::default()
    });
    assert!(s.server.poll_timeout().is_some());
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.events();
    assert!(matches!(s.frames()[0].1, Message::Welcome(_)));
    s.feed(&frame(1, &echo(b"x"), 1));
    assert_eq!(s.events().len(), 1);
    s.server.start_drain(s.now);
    s.advance(Duration::from_secs(3600));
    assert_eq!(s.server.state(), SessionState::Draining);
    assert!(!s.server.is_finished());
}

#[test]
fn a_drain_during_the_handshake_answers_a_buffered_hello_then_says_goodbye() {
    // Preface, HELLO and a PING were buffered when the server began shutting down (a connection
    // still in the accept queue): WELCOME, then GOODBYE SHUTTING_DOWN, then the PING that came
    // with the HELLO is refused with SHUTTING_DOWN (spec §3.8, document 1.2: a frame received
    // before the close is processed, never dropped), and only then the close.
    let mut s = RawServer::new(ServerConfig::default());
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.feed(&frame(
        1,
        &Message::Ping(echowire_codec::message::Ping { data: 5 }),
        9,
    ));
    s.server.start_drain(s.now);
    assert!(s.events().is_empty());
    let kinds: Vec<_> = s
        .frames()
        .iter()
        .map(|(id, m)| (*id, m.msg_type().to_string(), error_code(m)))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (0, "WELCOME".into(), None),
            (0, "GOODBYE".into(), None),
            (9, "ERROR".into(), Some(ErrorCode::SHUTTING_DOWN)),
        ]
    );
    assert!(s.server.is_finished());
}

#[test]
fn a_drain_during_the_handshake_waits_a_moment_for_the_hello_then_closes() {
    for input in [
        &PREFACE[..3],
        &PREFACE[..],
        &[PREFACE.as_slice(), &[0, 0]].concat()[..],
    ] {
        let mut s = RawServer::new(ServerConfig::default());
        s.feed(input);
        assert!(s.events().is_empty());
        s.server.start_drain(s.now);
        assert!(s.events().is_empty());
        assert!(!s.server.is_finished(), "{input:?}");
        assert_eq!(
            s.server.poll_timeout(),
            Some(s.now + DRAIN_HANDSHAKE_GRACE),
            "{input:?}"
        );
        s.advance(DRAIN_HANDSHAKE_GRACE);
        assert!(s.frames().is_empty(), "{input:?}");
        assert!(s.server.is_finished(), "{input:?}");
    }
    // A HELLO that arrives within the grace is answered: WELCOME, then GOODBYE.
    let mut s = RawServer::new(ServerConfig::default());
    s.feed(&PREFACE);
    assert!(s.events().is_empty());
    s.server.start_drain(s.now);
    s.advance(DRAIN_HANDSHAKE_GRACE / 2);
    s.feed(&hello(1, 1, 1 << 20, 0));
    assert!(s.events().is_empty());
    let kinds: Vec<_> = s
        .frames()
        .iter()
        .map(|(_, m)| m.msg_type().to_string())
        .collect();
    assert_eq!(kinds, ["WELCOME", "GOODBYE"]);
    assert!(s.server.is_finished());
    // The peer's EOF ends the wait at once.
    let mut s = RawServer::new(ServerConfig::default());
    s.feed(&PREFACE);
    s.server.start_drain(s.now);
    s.server.handle_eof();
    assert!(s.events().is_empty());
    assert!(s.server.is_finished());
}

#[test]
fn the_drain_clock_starts_at_the_drain_not_at_the_last_service() {
    // A connection not serviced for longer than the drain timeout (a client that stopped
    // reading) is not reset the moment the server starts draining: the drain timeout counts
    // from the drain (spec §3.8).
    let drain = Duration::from_secs(5);
    let mut s = RawServer::new(ServerConfig {
        drain_timeout: drain,
        idle_timeout: None,
        ..Default::default()
    });
    s.feed(&PREFACE);
    s.feed(&hello(1, 1, 1 << 20, 0));
    s.feed(&frame(1, &echo(b"x"), 1));
    assert_eq!(s.events().len(), 1, "one request outstanding");
    let later = s.now + drain * 2;
    s.server.start_drain(later);
    assert_eq!(s.server.poll_timeout(), Some(later + drain));
    s.server
        .handle_timeout(later + drain - Duration::from_millis(1));
    assert!(!s.server.is_finished(), "reset before its drain timeout");
    s.server.handle_timeout(later + drain);
    assert!(s.server.is_finished() && s.server.is_abortive());
}

/// Spec §3.8, §9.3 (document 1.2): after the server's GOODBYE, a clean end of stream leaves
/// what it did not answer *not processed* (it may be retried); without a GOODBYE the same end
/// is a failure with every outstanding request's fate unknown.
#[test]
fn a_clean_close_after_goodbye_returns_the_requests_not_processed() {
    let (mut p, _) = Pair::handshake(ServerConfig::default(), v(1, 2));
    let a = p
        .client
        .send(&echo_msg(Bytes::from_static(b"a")), p.now)
        .unwrap();
    let b = p
        .client
        .send(&echo_msg(Bytes::from_static(b"b")), p.now)
        .unwrap();
    let evs = p.server_events();
    let (first, _) = request(evs[0].clone());
    assert_eq!(first, a);
    p.server.start_drain(p.now);
    p.server
        .respond(a, &echo_reply(Bytes::from_static(b"a")), p.now);
    let evs = p.client_events();
    assert!(
        evs.iter()
            .any(|e| matches!(e, ClientEvent::Response { id, .. } if *id == a)),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|e| matches!(e, ClientEvent::Goodbye { .. })),
        "{evs:?}"
    );
    assert_eq!(p.client.handle_eof().expect("a clean end"), vec![b]);
    assert!(p.client.is_closed());

    // The same end of stream without GOODBYE: a failure.
    let (mut p, _) = Pair::handshake(ServerConfig::default(), v(1, 2));
    p.client
        .send(&echo_msg(Bytes::from_static(b"a")), p.now)
        .unwrap();
    assert!(p.client.handle_eof().is_err());
}
