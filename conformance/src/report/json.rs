//! The JSON report. Schema (`schema_version` 1), documented in `spec/conformance/README.md`:
//!
//! ```text
//! { "schema_version": 1, "tool": "echowire-conformance 0.1.0", "elapsed_ms": n,
//!   "options": { "splits": [..], "seed": n, "timeout_ms": n, "jobs": n },
//!   "targets": [ { "name", "address", "info": {version, capabilities, max_frame_size, agent} | null,
//!                  "error"?, "died_after"?, "summary": {pass, fail, non_strict, info, skipped} } ],
//!   "cases": [ { "id", "section", "level", "title", "description",
//!                "results": { TARGET_NAME: { "outcome", "reason"?, "runs", "millis",
//!                   "failures": [ { "cut", "local_addr", "failure": {step, expected, observed},
//!                                   "wire": [ {dir: "c2s"|"s2c", at_ms, offset, hex} ] } ] } } } ] }
//! ```

use serde_json::{Value, json};

use super::Counts;
use crate::Report;

/// Schema version of the JSON report.
pub const SCHEMA_VERSION: u32 = 1;

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
                if let Some(r) = t.results.get(i) {
                    results.insert(t.name.clone(), serde_json::to_value(r).unwrap_or(Value::Null));
                }
            }
            json!({"id": c.id, "section": c.section, "level": c.level, "title": c.title, "description": c.description, "results": results})
        })
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool": concat!("echowire-conformance ", env!("CARGO_PKG_VERSION")),
        "elapsed_ms": report.elapsed.as_millis() as u64,
        "options": {
            "splits": report.options.strategies.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "seed": report.options.seed,
            "timeout_ms": report.options.timeout.as_millis() as u64,
            "jobs": report.options.jobs,
        },
        "targets": targets,
        "cases": cases,
    })
}
