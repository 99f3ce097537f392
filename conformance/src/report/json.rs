//! The JSON report, `schema_version` 2. Its JSON Schema is `spec/conformance/schema/report.schema.json`
//! (the tests validate reports against it); in short:
//!
//! ```text
//! { "schema_version": 2, "tool": "echowire-conformance 0.1.0", "elapsed_ms": n, "passed": bool,
//!   "options": { "splits": [..], "seed": n, "timeout_ms": n, "jobs": n, "retries": n },
//!   "targets": [ { "name", "address", "info": {version, capabilities, max_frame_size, agent} | null,
//!                  "error"?, "warning"?, "died_after"?, "died_reason"?, "log_tail"?,
//!                  "summary": {pass, fail, non_strict, info, skipped, expected_fail, unexpected_pass} } ],
//!   "cases": [ { "id", "section", "level", "title", "description",
//!                "spec": [ {section, quote, sentence} ],
//!                "results": { TARGET_NAME: { "outcome", "reason"?, "runs", "millis",
//!                   "failures": [ { "cut", "local_addr", "failure": {step, expected, observed},
//!                                   "wire": [ {dir: "c2s"|"s2c", at_ms, offset, hex?, note?} ],
//!                                   "decoded": [ {dir, at_ms, offset, octets, writes, kind, text,
//!                                                 frame?, hex?, ascii?, more?} ] } ],
//!                   "shrunk"?: { from, cuts_before, cuts, runs, minimal, words, replay, run? },
//!                   "retried"?: { reruns, passed, first_failure } } } } ] }
//! ```

use serde_json::{Value, json};

use super::Counts;
use crate::Report;
use crate::exec::RunResult;

/// Schema version of the JSON report.
pub const SCHEMA_VERSION: u32 = 2;

/// A run as JSON, with its decoded wire log beside the raw one.
fn run_json(r: &RunResult) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert(
            "decoded".into(),
            serde_json::to_value(crate::wire::decode(&r.wire)).unwrap_or(Value::Null),
        );
    }
    v
}

/// Renders the report.
pub fn render(report: &Report) -> Value {
    let targets: Vec<Value> = report
        .targets
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.remove("results");
                o.insert(
                    "summary".into(),
                    serde_json::to_value(Counts::of(report, t, None)).unwrap_or(Value::Null),
                );
            }
            v
        })
        .collect();
    let cases: Vec<Value> = report
        .cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut results = serde_json::Map::new();
            for t in &report.targets {
                let Some(r) = t.results.get(i) else { continue };
                let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
                if let Value::Object(o) = &mut v {
                    o.insert(
                        "failures".into(),
                        Value::Array(r.failures.iter().map(run_json).collect()),
                    );
                    if let (Some(s), Some(Value::Object(so))) = (&r.shrunk, o.get_mut("shrunk"))
                        && let Some(run) = &s.run
                    {
                        so.insert("run".into(), run_json(run));
                    }
                }
                results.insert(t.name.clone(), v);
            }
            let spec: Vec<Value> = c
                .spec
                .iter()
                .map(|r| {
                    json!({
                        "section": r.section,
                        "quote": r.quote,
                        "sentence": crate::spec::resolve(r).map(|s| s.text.clone()).unwrap_or_default(),
                    })
                })
                .collect();
            json!({"id": c.id, "section": c.section, "level": c.level, "title": c.title,
                   "description": c.description, "spec": spec, "results": results})
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool": concat!("echowire-conformance ", env!("CARGO_PKG_VERSION")),
        "elapsed_ms": report.elapsed.as_millis() as u64,
        "passed": report.passed(false),
        "incomplete": report.incomplete,
        "options": {
            "splits": report.options.strategies.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "seed": report.options.seed,
            "timeout_ms": report.options.timeout.as_millis() as u64,
            "jobs": report.options.jobs,
            "retries": report.options.retries,
        },
        "targets": targets,
        "cases": cases,
    })
}
