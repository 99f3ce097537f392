//! Expected versus observed: pattern matching over the JSON form of frames, and outcome classes.
//!
//! An observed frame is `{"version", "type", "flags", "request_id", "length", "body"}` (the
//! vectors' form). A pattern is a JSON object whose keys must all match; keys it does not name are
//! free, so a case can require exactly what the spec requires and accept everything else.
//! Operators: `{"$ge": n}`, `{"$le": n}`, `{"$bits_within": mask}`, and `"$one_of": [patterns]`
//! inside an object (any alternative may match, with the object's other keys).

use serde_json::Value;

use serde::Deserialize;

/// Requirement level (RFC 2119).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, PartialOrd, Ord)]
pub enum Level {
    /// Failing it fails the run.
    #[serde(rename = "MUST")]
    Must,
    /// Failing it is "non-strict" (fails the run only with `--strict`).
    #[serde(rename = "SHOULD")]
    Should,
    /// Never fails: reports what was observed where the spec leaves a value open.
    #[serde(rename = "INFO")]
    Info,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Info => "INFO",
        })
    }
}

/// What a case finally is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every run behaved as required.
    Pass,
    /// A SHOULD not met.
    NonStrict,
    /// A MUST not met.
    Fail,
    /// Informational: what was observed is reported, never failed.
    Info,
    /// Not run: the target does not offer what the case needs.
    Skipped,
    /// Failed, and listed in the expected-failures file: does not fail the run.
    ExpectedFail,
    /// Passed although listed in the expected-failures file: fails the run until the entry is
    /// removed, so the list stays current.
    UnexpectedPass,
}

impl Outcome {
    /// The outcome for a case of `level` that did (`failed`) or did not fail a run.
    pub fn of(level: Level, failed: bool) -> Outcome {
        match (level, failed) {
            (Level::Info, _) => Outcome::Info,
            (_, false) => Outcome::Pass,
            (Level::Must, true) => Outcome::Fail,
            (Level::Should, true) => Outcome::NonStrict,
        }
    }

    /// Label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::NonStrict => "NON-STRICT",
            Outcome::Fail => "FAIL",
            Outcome::Info => "INFO",
            Outcome::Skipped => "SKIPPED",
            Outcome::ExpectedFail => "XFAIL",
            Outcome::UnexpectedPass => "XPASS",
        }
    }
}

/// Whether `observed` matches `pattern`.
pub fn matches(pattern: &Value, observed: &Value) -> bool {
    match pattern {
        Value::Object(p) => {
            if let Some(v) = p.get("$ge") {
                return cmp_num(observed, v, |a, b| a >= b)
                    && p.get("$le")
                        .is_none_or(|l| cmp_num(observed, l, |a, b| a <= b));
            }
            if let Some(v) = p.get("$le") {
                return cmp_num(observed, v, |a, b| a <= b);
            }
            if let Some(mask) = p.get("$bits_within").and_then(Value::as_u64) {
                return observed.as_u64().is_some_and(|o| o & !mask == 0);
            }
            let Value::Object(o) = observed else {
                return false;
            };
            for (k, pv) in p {
                if k == "$one_of" {
                    let Value::Array(alts) = pv else { return false };
                    if !alts.iter().any(|alt| matches(alt, observed)) {
                        return false;
                    }
                    continue;
                }
                match o.get(k) {
                    Some(ov) if matches(pv, ov) => {}
                    _ => return false,
                }
            }
            true
        }
        other => other == observed,
    }
}

fn cmp_num(observed: &Value, bound: &Value, f: impl Fn(u64, u64) -> bool) -> bool {
    matches!((observed.as_u64(), bound.as_u64()), (Some(a), Some(b)) if f(a, b))
}

/// The largest `$fill` expanded (a pattern can name any length; no frame is larger than this,
/// and a larger one is left as it is, so it matches nothing instead of exhausting memory).
pub const MAX_FILL: u64 = 64 << 20;

/// Replaces `{"$fill": byte, "len": n}` with its hex string and evaluates `"limit"` expressions
/// in `length` fields, so patterns and bodies are plain JSON.
pub fn expand(v: &Value, limit: u32) -> Value {
    match v {
        Value::Object(o) => {
            if let (Some(b), Some(n)) = (
                o.get("$fill").and_then(Value::as_u64),
                o.get("len").and_then(Value::as_u64),
            ) && n <= MAX_FILL
            {
                return Value::String(hex::encode(vec![b as u8; n as usize]));
            }
            let mut out = serde_json::Map::new();
            for (k, x) in o {
                if k == "length"
                    && let Some(n) = x.as_str().and_then(|s| eval(s, limit))
                {
                    out.insert(k.clone(), Value::from(n));
                    continue;
                }
                out.insert(k.clone(), expand(x, limit));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| expand(x, limit)).collect()),
        other => other.clone(),
    }
}

/// Evaluates `limit`, `limit+N`, `limit-N` or a number.
pub fn eval(expr: &str, limit: u32) -> Option<u64> {
    let expr = expr.trim();
    if let Ok(n) = expr.parse::<u64>() {
        return Some(n);
    }
    let rest = expr.strip_prefix("limit")?;
    let limit = u64::from(limit);
    if rest.is_empty() {
        return Some(limit);
    }
    let (sign, n) = rest.split_at(1);
    let n: u64 = n.parse().ok()?;
    match sign {
        "+" => limit.checked_add(n),
        "-" => limit.checked_sub(n),
        _ => None,
    }
}

/// A short human description of a pattern (for reports).
pub fn describe(pattern: &Value) -> String {
    cut(&pattern.to_string(), 400)
}

/// `s` cut to at most `max` characters (with `…` when cut). Case files and server bytes may
/// hold any UTF-8, so strings are cut at character boundaries, never at a byte index.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => s.get(..at).map_or_else(String::new, |h| format!("{h}…")),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_and_operators() {
        let obs = json!({"type": "ERROR", "request_id": 3, "body": {"code": "BUSY", "message": "x", "retry_after_ms": 50}});
        assert!(matches(
            &json!({"type": "ERROR", "body": {"code": "BUSY"}}),
            &obs
        ));
        assert!(!matches(
            &json!({"type": "ERROR", "body": {"code": "CANCELLED"}}),
            &obs
        ));
        assert!(matches(
            &json!({"body": {"retry_after_ms": {"$ge": 1, "$le": 100}}}),
            &obs
        ));
        assert!(!matches(
            &json!({"body": {"retry_after_ms": {"$ge": 51}}}),
            &obs
        ));
        assert!(matches(
            &json!({"request_id": 3, "$one_of": [{"type": "PONG"}, {"type": "ERROR"}]}),
            &obs
        ));
        assert!(!matches(
            &json!({"request_id": 4, "$one_of": [{"type": "PONG"}, {"type": "ERROR"}]}),
            &obs
        ));
        assert!(matches(&json!({"$bits_within": 1}), &json!(1)));
        assert!(!matches(&json!({"$bits_within": 1}), &json!(3)));
        assert_eq!(
            expand(
                &json!({"payload": {"$fill": 97, "len": 3}, "length": "limit-2"}),
                10
            ),
            json!({"payload": "616161", "length": 8})
        );
        assert_eq!(eval("limit+1", 4096), Some(4097));
    }

    #[test]
    fn long_non_ascii_patterns_are_cut_at_a_character_boundary() {
        for fill in ["é", "漢", "🦀", "a"] {
            let p = json!({"body": {"message": fill.repeat(500)}});
            let d = describe(&p);
            assert!(d.ends_with('…'), "{d}");
            assert!(d.chars().count() <= 401);
        }
    }
}
