//! Validation of the reports the runner writes, shared by the tests that produce them: JUnit
//! against the JUnit XSD (with `xmllint`, which `.ci/run` installs) plus the count consistency
//! XSD 1.0 cannot express, and JSON against `spec/conformance/schema/report.schema.json`.

#![allow(dead_code)] // each test binary uses the validators it needs

use std::process::Command;

const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schema/junit.xsd");
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/cases/schema/report.schema.json"
);

fn xmllint(args: &[&str], file: &std::path::Path) -> String {
    let out = Command::new("xmllint")
        .args(args)
        .arg(file)
        .output()
        .expect("xmllint runs (apt-get install libxml2-utils; .ci/run installs it)");
    assert!(
        out.status.success(),
        "xmllint {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Validates a JUnit report: the XSD, counts that agree with the test cases in every suite,
/// and classnames with one dot (package `echowire`, class the section).
pub fn junit(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    xmllint(&["--noout", "--schema", XSD], &file);
    for (what, child) in [
        ("tests", "testcase"),
        ("failures", "testcase/failure"),
        ("errors", "testcase/error"),
        ("skipped", "testcase/skipped"),
    ] {
        let xpath = format!("count(//testsuite[@{what} != count({child})])");
        assert_eq!(
            xmllint(&["--xpath", &xpath], &file),
            "0",
            "a testsuite's {what} count disagrees with its <{child}> elements:\n{xml}"
        );
        let total = format!("sum(//testsuite/@{what}) = count(//testsuite/{child})");
        assert_eq!(xmllint(&["--xpath", &total], &file), "true", "{what}");
    }
    let dotted = "count(//testcase[contains(substring-after(@classname, '.'), '.')])";
    assert_eq!(xmllint(&["--xpath", dotted], &file), "0", "{xml}");
}

/// Validates a JSON report against its schema.
pub fn json(report: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the report schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "JSON report violates its schema:\n{}",
        errors.join("\n")
    );
}
