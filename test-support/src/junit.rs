//! JUnit report validation: the rules of `conformance/tests/schema/junit.xsd` checked in Rust
//! (so `cargo test` needs no outside tool), the count consistency XSD 1.0 cannot express, and —
//! where `xmllint` is installed — the XSD itself through `xmllint`, as a second opinion.
//!
//! `ECHOWIRE_REQUIRE_TOOLS=1` (set by `.ci/run`) turns a missing `xmllint` into a failure, so CI
//! never passes quietly without it ([`crate::tools`]).

use std::path::Path;
use std::process::Command;

use roxmltree::{Document, Node};

/// The JUnit XSD the reports are held to.
pub const XSD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../conformance/tests/schema/junit.xsd"
);

/// Validates a JUnit report; panics with every problem found.
pub fn validate(xml: &str) {
    if let Err(e) = check(xml) {
        panic!("JUnit report is invalid: {e}\n{xml}");
    }
    if let Some(out) = xmllint_schema(xml) {
        assert!(
            out.is_ok(),
            "xmllint rejects a report the Rust rules accept: {}\n{xml}",
            out.unwrap_err()
        );
    }
}

/// `xmllint --schema` on `xml`: `None` if xmllint is not installed, else its verdict.
pub fn xmllint_schema(xml: &str) -> Option<Result<(), String>> {
    if !crate::tools::available("xmllint") {
        return None;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).expect("the report is written");
    Some(xmllint(&["--noout", "--schema", XSD], &file).map(|_| ()))
}

fn xmllint(args: &[&str], file: &Path) -> Result<String, String> {
    let out = Command::new("xmllint")
        .args(args)
        .arg(file)
        .output()
        .map_err(|e| format!("xmllint does not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "xmllint {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The XSD's rules and the count rules, in Rust. `Err` names the element and the rule.
pub fn check(xml: &str) -> Result<(), String> {
    let doc = Document::parse(xml).map_err(|e| format!("not well-formed XML: {e}"))?;
    let root = doc.root_element();
    match root.tag_name().name() {
        "testsuites" => testsuites(root)?,
        "testsuite" => testsuite(root)?,
        other => {
            return Err(format!(
                "root element <{other}> is not testsuites or testsuite"
            ));
        }
    }
    counts(root)
}

/// What an attribute must hold (the XSD's simple types).
#[derive(Clone, Copy)]
enum Ty {
    /// xs:string.
    Str,
    /// `nonEmpty`: xs:string of length 1 or more.
    NonEmpty,
    /// `count`: xs:nonNegativeInteger.
    Count,
    /// `seconds`: xs:decimal, at least 0.
    Seconds,
}

/// An attribute the XSD declares: name, type, required.
type Attr = (&'static str, Ty, bool);

const SUITES_ATTRS: &[Attr] = &[
    ("name", Ty::Str, false),
    ("tests", Ty::Count, false),
    ("failures", Ty::Count, false),
    ("errors", Ty::Count, false),
    ("skipped", Ty::Count, false),
    ("disabled", Ty::Count, false),
    ("time", Ty::Seconds, false),
    ("timestamp", Ty::Str, false),
];

const SUITE_ATTRS: &[Attr] = &[
    ("name", Ty::NonEmpty, true),
    ("tests", Ty::Count, true),
    ("failures", Ty::Count, true),
    ("errors", Ty::Count, true),
    ("skipped", Ty::Count, false),
    ("disabled", Ty::Count, false),
    ("time", Ty::Seconds, false),
    ("timestamp", Ty::Str, false),
    ("hostname", Ty::Str, false),
    ("id", Ty::Str, false),
    ("package", Ty::Str, false),
];

const CASE_ATTRS: &[Attr] = &[
    ("name", Ty::NonEmpty, true),
    ("classname", Ty::NonEmpty, true),
    ("assertions", Ty::Count, false),
    ("time", Ty::Seconds, false),
    ("timestamp", Ty::Str, false),
    ("status", Ty::Str, false),
    ("file", Ty::Str, false),
    ("line", Ty::Count, false),
];

const PROBLEM_ATTRS: &[Attr] = &[("message", Ty::NonEmpty, true), ("type", Ty::Str, false)];

const PROPERTY_ATTRS: &[Attr] = &[("name", Ty::NonEmpty, true), ("value", Ty::Str, true)];

fn where_(n: Node) -> String {
    let mut path = Vec::new();
    let mut cur = Some(n);
    while let Some(x) = cur.filter(|x| x.is_element()) {
        let name = x.tag_name().name();
        path.push(match x.attribute("name") {
            Some(v) => format!("{name}[@name={v:?}]"),
            None => name.to_string(),
        });
        cur = x.parent();
    }
    path.reverse();
    format!("/{}", path.join("/"))
}

/// The element is in no namespace (the XSD has no target namespace) and carries only the
/// declared attributes, each of its type, the required ones present.
fn attributes(n: Node, allowed: &[Attr]) -> Result<(), String> {
    if n.tag_name().namespace().is_some() {
        return Err(format!("{}: element in a namespace", where_(n)));
    }
    for a in n.attributes() {
        if a.namespace().is_some() {
            return Err(format!(
                "{}: attribute {} in a namespace",
                where_(n),
                a.name()
            ));
        }
        let Some(&(_, ty, _)) = allowed.iter().find(|(name, _, _)| *name == a.name()) else {
            return Err(format!("{}: undeclared attribute {}", where_(n), a.name()));
        };
        if !valid(ty, a.value()) {
            return Err(format!(
                "{}: attribute {}={:?} is not a valid {}",
                where_(n),
                a.name(),
                a.value(),
                match ty {
                    Ty::Str => "string",
                    Ty::NonEmpty => "non-empty string",
                    Ty::Count => "non-negative integer",
                    Ty::Seconds => "non-negative decimal",
                }
            ));
        }
    }
    for (name, _, required) in allowed {
        if *required && n.attribute(*name).is_none() {
            return Err(format!(
                "{}: required attribute {name} is missing",
                where_(n)
            ));
        }
    }
    Ok(())
}

fn valid(ty: Ty, v: &str) -> bool {
    // xs:nonNegativeInteger and xs:decimal collapse whitespace; xs:string keeps it.
    let t = v.trim_matches([' ', '\t', '\n', '\r']);
    match ty {
        Ty::Str => true,
        Ty::NonEmpty => !v.is_empty(),
        Ty::Count => {
            let digits = t.strip_prefix('+').unwrap_or(t);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        Ty::Seconds => {
            let (neg, body) = match t.as_bytes().first() {
                Some(b'-') => (true, &t[1..]),
                Some(b'+') => (false, &t[1..]),
                _ => (false, t),
            };
            let (int, frac) = body.split_once('.').unwrap_or((body, ""));
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            let lexical = !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac);
            // minInclusive 0: a negative value is valid only if it is zero.
            lexical && (!neg || int.bytes().chain(frac.bytes()).all(|b| b == b'0'))
        }
    }
}

/// The element's child elements; text other than whitespace is an error (no mixed content).
fn element_children<'a, 'i>(n: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>, String> {
    let mut out = Vec::new();
    for c in n.children() {
        if c.is_element() {
            out.push(c);
        } else if c.is_text() && !c.text().unwrap_or("").trim().is_empty() {
            return Err(format!("{}: text where only elements may be", where_(n)));
        }
    }
    Ok(out)
}

/// Children matching `sequence`: each entry a name with its minimum and maximum occurrences.
fn sequence<'a, 'i>(
    n: Node<'a, 'i>,
    seq: &[(&[&str], usize, usize)],
) -> Result<Vec<Node<'a, 'i>>, String> {
    let children = element_children(n)?;
    let mut i = 0;
    for (names, min, max) in seq {
        let mut k = 0;
        while i < children.len() && k < *max && names.contains(&children[i].tag_name().name()) {
            i += 1;
            k += 1;
        }
        if k < *min {
            return Err(format!("{}: expected <{}>", where_(n), names.join("|")));
        }
    }
    if let Some(extra) = children.get(i) {
        return Err(format!(
            "{}: element <{}> is not allowed here",
            where_(n),
            extra.tag_name().name()
        ));
    }
    Ok(children)
}

/// An element of simple content (xs:string): no child elements.
fn simple(n: Node, attrs: &[Attr]) -> Result<(), String> {
    attributes(n, attrs)?;
    match n.children().find(|c| c.is_element()) {
        Some(c) => Err(format!(
            "{}: <{}> inside an element of text content",
            where_(n),
            c.tag_name().name()
        )),
        None => Ok(()),
    }
}

fn testsuites(n: Node) -> Result<(), String> {
    attributes(n, SUITES_ATTRS)?;
    for s in sequence(n, &[(&["testsuite"], 0, usize::MAX)])? {
        testsuite(s)?;
    }
    Ok(())
}

fn testsuite(n: Node) -> Result<(), String> {
    attributes(n, SUITE_ATTRS)?;
    let children = sequence(
        n,
        &[
            (&["properties"], 0, 1),
            (&["testcase"], 0, usize::MAX),
            (&["system-out"], 0, 1),
            (&["system-err"], 0, 1),
        ],
    )?;
    for c in children {
        match c.tag_name().name() {
            "properties" => {
                attributes(c, &[])?;
                for p in sequence(c, &[(&["property"], 0, usize::MAX)])? {
                    attributes(p, PROPERTY_ATTRS)?;
                    sequence(p, &[])?;
                }
            }
            "testcase" => testcase(c)?,
            _ => simple(c, &[])?,
        }
    }
    Ok(())
}

fn testcase(n: Node) -> Result<(), String> {
    attributes(n, CASE_ATTRS)?;
    let children = sequence(
        n,
        &[
            (&["skipped", "error", "failure"], 0, 1),
            (&["system-out"], 0, 1),
            (&["system-err"], 0, 1),
        ],
    )?;
    for c in children {
        match c.tag_name().name() {
            "skipped" | "error" | "failure" => simple(c, PROBLEM_ATTRS)?,
            _ => simple(c, &[])?,
        }
    }
    Ok(())
}

/// What XSD 1.0 cannot say: each suite's counts agree with its test cases, the sums agree, and
/// a classname has at most one dot (package `echowire`, class the section).
fn counts(root: Node) -> Result<(), String> {
    let suites: Vec<Node> = if root.has_tag_name("testsuite") {
        vec![root]
    } else {
        root.children()
            .filter(|c| c.has_tag_name("testsuite"))
            .collect()
    };
    for (what, child) in [
        ("tests", None),
        ("failures", Some("failure")),
        ("errors", Some("error")),
        ("skipped", Some("skipped")),
    ] {
        let mut sum = 0u64;
        let mut present = 0u64;
        for s in &suites {
            let actual = s
                .children()
                .filter(|c| c.has_tag_name("testcase"))
                .filter(|c| child.is_none_or(|ch| c.children().any(|x| x.has_tag_name(ch))))
                .count() as u64;
            present += actual;
            let Some(v) = s.attribute(what) else { continue };
            let v: u64 = v
                .trim()
                .trim_start_matches('+')
                .parse()
                .map_err(|_| format!("{}: {what}={v:?} is out of range", where_(*s)))?;
            if v != actual {
                return Err(format!(
                    "{}: {what}={v} but {actual} <testcase> element(s) have {}",
                    where_(*s),
                    child.map_or("that name".to_string(), |c| format!("a <{c}>"))
                ));
            }
            sum += v;
        }
        // XPath's sum(//testsuite/@what) = count(...): a suite without the attribute adds
        // nothing to the sum but its test cases still count.
        if sum != present {
            return Err(format!("the suites' {what} add up to {sum}, not {present}"));
        }
    }
    for c in root.descendants().filter(|c| c.has_tag_name("testcase")) {
        let classname = c.attribute("classname").unwrap_or("");
        if classname.matches('.').count() > 1 {
            return Err(format!(
                "{}: classname {classname:?} has more than one dot",
                where_(c)
            ));
        }
    }
    Ok(())
}
