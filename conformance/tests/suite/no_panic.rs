//! No input makes the runner panic: the pattern matcher, the verdict helpers, the decoded wire
//! log, the case loader and every report writer, driven with arbitrary JSON, arbitrary server
//! bytes and arbitrary (non-ASCII, control-character, very long) strings.

use std::time::Duration;

use echowire_conformance::case::{self, Case, Level};
use echowire_conformance::exec::{Dir, Failure, RunResult, WireEntry};
use echowire_conformance::spec::SpecRef;
use echowire_conformance::verdict::{self, Outcome};
use echowire_conformance::{CaseResult, Options, Report, Retried, TargetReport, report, wire};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;

use echowire_test_support::junit as validate_junit;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[é漢🦀\\x00-\\x1f<>&\"']{0,600}",
        "[a-z0-9.\\-]{0,12}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::String),
        Just(Value::String("limit+18446744073709551615".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("$ge".to_string()),
                        Just("$le".to_string()),
                        Just("$one_of".to_string()),
                        Just("$bits_within".to_string()),
                        Just("$fill".to_string()),
                        Just("len".to_string()),
                        Just("length".to_string()),
                        text()
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn wire_entries() -> impl Strategy<Value = Vec<WireEntry>> {
    prop::collection::vec(
        (
            any::<bool>(),
            prop_oneof![
                3 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| (hex::encode(b), None)),
                1 => text().prop_map(|t| (String::new(), Some(t))),
                1 => text().prop_map(|t| (t, None)),
            ],
            any::<u64>(),
        ),
        0..24,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(c2s, (hex, note), at)| WireEntry {
                dir: if c2s {
                    Dir::ClientToServer
                } else {
                    Dir::ServerToClient
                },
                at_ms: at,
                offset: at / 3,
                hex,
                note,
                at_us: 0,
            })
            .collect()
    })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Pass),
        Just(Outcome::Fail),
        Just(Outcome::NonStrict),
        Just(Outcome::Info),
        Just(Outcome::Skipped),
        Just(Outcome::ExpectedFail),
        Just(Outcome::UnexpectedPass),
    ]
}

fn report() -> impl Strategy<Value = Report> {
    let case =
        (text(), text(), text(), text(), text()).prop_map(|(id, section, title, d, q)| Case {
            id,
            section,
            level: Level::Must,
            title,
            description: d,
            spec: vec![SpecRef {
                section: "2.2".into(),
                quote: q,
            }],
            steps: Vec::new(),
            requires: Vec::new(),
            timing_sensitive: false,
            profile: Default::default(),
            coalesce: true,
            finding: None,
            file: String::new(),
        });
    let result = (
        outcome(),
        proptest::option::of(text()),
        text(),
        text(),
        text(),
        wire_entries(),
        proptest::option::of((text(), any::<bool>())),
    )
        .prop_map(
            |(outcome, reason, cut, expected, observed, wire, retried)| CaseResult {
                outcome,
                reason,
                runs: 1,
                failures: vec![RunResult {
                    cut,
                    local_addr: String::new(),
                    failure: Some(Failure {
                        step: 0,
                        expected,
                        observed,
                    }),
                    wire,
                    sent_bytes: 0,
                    oracle: None,
                    started: None,
                    peer_addr: String::new(),
                }],
                millis: 1,
                shrunk: None,
                // Hostile text in the flaky note too (it reaches every report).
                retried: retried.map(|(first_failure, passed)| Retried {
                    reruns: 1,
                    passed,
                    first_failure,
                }),
                captured: Vec::new(),
            },
        );
    (
        prop::collection::vec(case, 1..4),
        prop::collection::vec(result, 4),
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(cases, results, name, warning, died)| {
            let incomplete = warning.clone().filter(|w| w.len() % 2 == 0);
            let n = cases.len();
            Report {
                cases,
                targets: vec![TargetReport {
                    name,
                    address: String::new(),
                    info: None,
                    error: None,
                    warning,
                    died_after: died.clone(),
                    died_reason: died,
                    log_tail: None,
                    results: results.into_iter().take(n).collect(),
                }],
                options: Options::default(),
                elapsed: Duration::from_millis(5),
                incomplete,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn matcher_and_verdict_helpers(p in json(), o in json(), e in text(), limit in any::<u32>()) {
        let _ = verdict::matches(&p, &o);
        let _ = verdict::describe(&p);
        let _ = verdict::expand(&p, limit);
        let _ = verdict::eval(&e, limit);
        let _ = verdict::cut(&e, 7);
        let _ = case::glob_match(&e, "2.2-echo-1");
    }

    #[test]
    fn decoded_wire_log(entries in wire_entries(), bytes in prop::collection::vec(any::<u8>(), 0..80), k in any::<u64>()) {
        let items = wire::decode(&entries);
        let _ = report::wire_text(&items);
        let _ = wire::partial(&bytes);
        let _ = wire::locate(&bytes, k % 100);
    }

    #[test]
    fn case_files(t in text(), v in json()) {
        let _ = case::parse(&[("a.json", &t)]);
        let doc = serde_json::json!({"format": "echowire-conformance", "format_version": 1, "cases": [v]});
        let _ = case::parse(&[("b.json", &doc.to_string())]);
    }

    #[test]
    fn report_writers(r in report()) {
        let _ = report::terminal::render(&r, true);
        let _ = report::html::render(&r);
        let _ = report::json::render(&r);
        let x = report::junit::render(&r, true);
        prop_assert!(x.starts_with("<?xml"));
    }
}

/// The JUnit writer keeps its promises for strings no case file would hold (control
/// characters, markup, very long non-ASCII text): a sample is checked against the XSD.
#[test]
fn junit_of_hostile_strings_validates() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..8 {
        let r = report().new_tree(&mut runner).unwrap().current();
        let mut r = r;
        // The XSD requires non-empty names; an empty case ID cannot come from a case file.
        for c in &mut r.cases {
            c.id.insert(0, 'x');
        }
        r.targets[0].name.insert(0, 't');
        validate_junit::validate(&report::junit::render(&r, false));
    }
}
