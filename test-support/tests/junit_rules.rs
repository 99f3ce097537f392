//! The Rust JUnit rules against the XSD: every violation of a schema rule is rejected by both
//! (xmllint only where it is installed; CI requires it), valid reports are accepted by both,
//! and the count rules XSD 1.0 cannot express are rejected by the Rust rules.

use echowire_test_support::junit;

const VALID: &[&str] = &[
    r#"<testsuites/>"#,
    r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="echowire" tests="3" failures="1" errors="0" skipped="1" time="1.5">
  <testsuite name="2.2" tests="3" failures="1" errors="0" skipped="1" time="0.25" timestamp="2026-12-07T00:00:00">
    <properties><property name="target" value=""/></properties>
    <testcase name="2.2-a" classname="echowire.2_2" time="0.1"/>
    <testcase name="2.2-b" classname="echowire.2_2"><failure message="expected PONG" type="MUST">log</failure><system-out>wire</system-out></testcase>
    <testcase name="2.2-c" classname="echowire"><skipped message="needs --exec"/></testcase>
    <system-out>x</system-out><system-err>y</system-err>
  </testsuite>
</testsuites>"#,
    r#"<testsuite name="x" tests="0" failures="0" errors="0" time="+0.0"/>"#,
    r#"<testsuites><testsuite name="x" tests=" 1 " failures="0" errors="0" time="-0"><testcase name="a" classname="b" line="+3"/></testsuite></testsuites>"#,
];

/// Each breaks one rule of the XSD.
const SCHEMA_VIOLATIONS: &[&str] = &[
    r#"<report/>"#,
    r#"<testsuites bogus="1"/>"#,
    r#"<testsuites tests="-1"/>"#,
    r#"<testsuites time="abc"/>"#,
    r#"<testsuites time="-1.5"/>"#,
    r#"<testsuites><testcase name="a" classname="b"/></testsuites>"#,
    r#"<testsuites>text</testsuites>"#,
    r#"<testsuites><testsuite tests="0" failures="0" errors="0"/></testsuites>"#,
    r#"<testsuites><testsuite name="" tests="0" failures="0" errors="0"/></testsuites>"#,
    r#"<testsuites><testsuite name="x" failures="0" errors="0"/></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1.5" failures="0" errors="0"/></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="0" failures="0" errors="0"><system-out/><properties/></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a"/></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" classname=""/></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="1" errors="0"><testcase name="a" classname="b"><failure/></testcase></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="1" errors="0"><testcase name="a" classname="b"><failure message=""/></testcase></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="1" errors="1"><testcase name="a" classname="b"><failure message="m"/><error message="m"/></testcase></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="1" errors="0"><testcase name="a" classname="b"><failure message="m"><b/></failure></testcase></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" classname="b"><system-out/><skipped message="m"/></testcase></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="0" failures="0" errors="0"><properties><property name="p"/></properties></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" classname="b" line="x"/></testsuite></testsuites>"#,
    r#"<testsuites xmlns="urn:other"/>"#,
    r#"<testsuites><testsuite name="x" tests="0" failures="0" errors="0"/><testsuite name="y" tests="0" failures="0" errors="0"/>t</testsuites>"#,
];

/// Valid by the XSD, wrong by the count rules.
const COUNT_VIOLATIONS: &[&str] = &[
    r#"<testsuites><testsuite name="x" tests="2" failures="0" errors="0"><testcase name="a" classname="b"/></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" classname="b"><failure message="m"/></testcase></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="1"><testcase name="a" classname="b"/></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0" skipped="0"><testcase name="a" classname="b"><skipped message="m"/></testcase></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" classname="echowire.2.2"/></testsuite></testsuites>"#,
    r#"<testsuites><testsuite name="x" tests="1" failures="0" errors="0"><testcase name="a" classname="b"><skipped message="m"/></testcase></testsuite><testsuite name="y" tests="0" failures="0" errors="0" skipped="0"/></testsuites>"#,
];

#[test]
fn valid_reports_pass_both_validators() {
    for xml in VALID {
        junit::check(xml)
            .unwrap_or_else(|e| panic!("Rust rules reject a valid report: {e}\n{xml}"));
        if let Some(r) = junit::xmllint_schema(xml) {
            r.unwrap_or_else(|e| panic!("xmllint rejects {xml}: {e}"));
        }
        junit::validate(xml);
    }
}

#[test]
fn each_schema_violation_is_rejected_by_both() {
    let mut agreed = 0;
    for xml in SCHEMA_VIOLATIONS {
        let rust = junit::check(xml);
        assert!(rust.is_err(), "Rust rules accept a schema violation: {xml}");
        if let Some(r) = junit::xmllint_schema(xml) {
            assert!(
                r.is_err(),
                "xmllint accepts what the Rust rules reject ({}): {xml}",
                rust.unwrap_err()
            );
            agreed += 1;
        }
    }
    println!(
        "{} schema violations rejected by the Rust rules; xmllint agreed on {agreed}",
        SCHEMA_VIOLATIONS.len()
    );
}

#[test]
fn count_violations_are_rejected_by_the_rust_rules() {
    for xml in COUNT_VIOLATIONS {
        assert!(
            junit::check(xml).is_err(),
            "Rust rules accept a count violation: {xml}"
        );
        if let Some(r) = junit::xmllint_schema(xml) {
            r.unwrap_or_else(|e| panic!("the XSD alone cannot see counts, yet: {e}"));
        }
    }
}
