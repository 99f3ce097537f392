//! The case data model (spec/conformance/*.json) and its loader.
//!
//! A case is data any runner can execute: an ID that starts with the spec section it tests and
//! never depends on the case's position, a requirement level, a description, and steps. The file
//! format is documented in `spec/conformance/README.md`.

use serde::Deserialize;

use crate::step::{self, Step};

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

pub use crate::verdict::Level;

/// What a case needs of its target (a case file's `requires`): a capability the target's
/// handshake must offer, or a timeout it must declare (spec §8.3). An unknown word is a load
/// error naming the file and the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// The handshake offers version 2.
    V2,
    /// The handshake offers the RKYV capability.
    Rkyv,
    /// The handshake timeout is declared (`--handshake-timeout`).
    HandshakeTimeout,
    /// The idle timeout is declared (`--idle-timeout`).
    IdleTimeout,
    /// The drain timeout is declared (`--drain-timeout`).
    DrainTimeout,
}

impl Requirement {
    /// Its name in case files.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::V2 => "v2",
            Requirement::Rkyv => "rkyv",
            Requirement::HandshakeTimeout => "handshake_timeout",
            Requirement::IdleTimeout => "idle_timeout",
            Requirement::DrainTimeout => "drain_timeout",
        }
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One conformance case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Stable ID, `SECTION-name`.
    pub id: String,
    /// The spec section.
    pub section: String,
    /// Requirement level.
    pub level: Level,
    /// One line.
    pub title: String,
    /// What is expected and why.
    pub description: String,
    /// The sentences of spec/PROTOCOL.md the case tests, by reference ([`crate::spec`]).
    #[serde(default)]
    pub spec: Vec<crate::spec::SpecRef>,
    /// The steps, typed and validated at load ([`crate::step`]), executed by [`crate::exec`].
    pub steps: Vec<Step>,
    /// What the target must offer or declare, else the case is Skipped (with the reason).
    #[serde(default)]
    pub requires: Vec<Requirement>,
    /// Depends on timing (timeouts, slow requests): run under the `whole` split only.
    #[serde(default)]
    pub timing_sensitive: bool,
    /// The settings the target must run with ([`crate::target::Profile`]; default: its own).
    #[serde(default)]
    pub profile: crate::target::Profile,
    /// Whether the `coalesced` strategy may merge sends across expectations (default true).
    #[serde(default = "yes")]
    pub coalesce: bool,
    /// Informative: what the fuzzer found (a case it wrote); not read by the runner.
    #[serde(default)]
    pub finding: Option<serde_json::Value>,
    /// The file it came from.
    #[serde(skip)]
    pub file: String,
}

impl Case {
    /// The spec's sentences this case tests, read from the embedded spec (a reference that no
    /// longer resolves shows why instead).
    pub fn requirement(&self) -> Vec<String> {
        self.spec
            .iter()
            .map(|r| match crate::spec::resolve(r) {
                Ok(s) => crate::spec::display(s),
                Err(e) => format!("§{}: (reference unresolved: {e})", r.section),
            })
            .collect()
    }

    /// Whether each run of the case needs an instance of the target of its own: it signals
    /// the target (a drain), or its profile counts every connection the instance ever saw
    /// still lingering (`crowded`: a connection limit).
    pub fn own_instance(&self) -> bool {
        self.signals() || self.profile == crate::target::Profile::Crowded
    }

    /// Whether a step signals the target (a drain): the case then needs an instance of its own.
    pub fn signals(&self) -> bool {
        fn any(steps: &[Step]) -> bool {
            steps.iter().any(|s| match s {
                Step::Signal(_) => true,
                Step::Parallel(p) => any(&p.steps),
                _ => false,
            })
        }
        any(&self.steps)
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    format: String,
    format_version: u32,
    /// Informative: the program that wrote the file.
    #[serde(default, rename = "generated_by")]
    _generated_by: Option<String>,
    cases: Vec<Case>,
}

/// Parses case files (name, JSON text). Errors name the file.
pub fn parse(files: &[(&str, &str)]) -> Result<Vec<Case>, String> {
    let mut all = Vec::new();
    for (name, text) in files {
        let f: CaseFile = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        if f.format != "echowire-conformance" || f.format_version != 1 {
            return Err(format!(
                "{name}: unsupported format {} v{}",
                f.format, f.format_version
            ));
        }
        for mut c in f.cases {
            step::validate(&c.steps).map_err(|e| format!("{name}: case {}: {e}", c.id))?;
            c.file = name.to_string();
            all.push(c);
        }
    }
    let mut ids = std::collections::HashSet::new();
    for c in &all {
        if !ids.insert(c.id.clone()) {
            return Err(format!("duplicate case ID {}", c.id));
        }
        if !c.id.starts_with(&format!("{}-", c.section)) {
            return Err(format!(
                "case {} does not start with its section {}",
                c.id, c.section
            ));
        }
    }
    all.sort_by(|a, b| {
        section_key(&a.section)
            .cmp(&section_key(&b.section))
            .then(a.id.cmp(&b.id))
    });
    Ok(all)
}

/// The embedded cases.
pub fn builtin() -> Vec<Case> {
    parse(CASE_FILES).expect("the embedded case files are valid (checked by the test suite)")
}

/// Loads every `*.json` case file of a directory.
pub fn load_dir(dir: &std::path::Path) -> Result<Vec<Case>, String> {
    let mut texts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            let t = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            texts.push((
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                t,
            ));
        }
    }
    let refs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    parse(&refs)
}

/// Sorts sections numerically: 2.2 < 2.10 < 3.1.
pub fn section_key(s: &str) -> Vec<u32> {
    s.split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}

/// Whether an ID or glob (`*` matches any run of characters) selects `id`. Linear in practice:
/// on a mismatch only the last `*` is retried (patterns come from the command line and files).
pub fn glob_match(pattern: &str, id: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), id.as_bytes());
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_refers_to_sentences_that_exist() {
        let cases = builtin();
        let mut unresolved = Vec::new();
        for c in &cases {
            assert!(!c.spec.is_empty(), "case {} has no spec reference", c.id);
            for r in &c.spec {
                if let Err(e) = crate::spec::resolve(r) {
                    unresolved.push(format!("{}: {e}", c.id));
                }
            }
        }
        assert!(unresolved.is_empty(), "{}", unresolved.join("\n"));
    }
}
