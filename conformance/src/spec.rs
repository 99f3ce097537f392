//! The spec's own words: `spec/PROTOCOL.md`, embedded when the runner is built, split into
//! sentences exactly as `spec/conformance/coverage.py` splits it, so every case can show the
//! MUST/SHOULD sentence it tests. Cases refer to a sentence by section and quote (its first words);
//! the sentence itself is always read from the spec, so a case cannot show stale text, and the
//! test suite fails when a quote stops resolving to exactly one sentence.

use std::sync::OnceLock;

/// The spec, as built into the runner.
pub const PROTOCOL: &str = include_str!("../PROTOCOL.md");

/// A case's reference to a sentence of the spec.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpecRef {
    /// The section the sentence is in.
    pub section: String,
    /// The sentence's first words (enough to make it unique in its section).
    pub quote: String,
}

/// One sentence of the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sentence {
    /// Its section (`2.2`).
    pub section: String,
    /// The sentence, its lines joined by single spaces.
    pub text: String,
}

/// The sentences of the numbered sections of `text` (not section 1, not the appendices), in order.
pub fn sentences(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut para: Vec<&str> = Vec::new();
    let flush = |section: &Option<String>, para: &mut Vec<&str>, out: &mut Vec<Sentence>| {
        let lines = std::mem::take(para);
        let Some(sec) = section else { return };
        if sec == "1" || sec.starts_with("1.") {
            return;
        }
        let joined = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        for piece in split_sentences(&joined) {
            let piece = piece.trim_matches(|c| matches!(c, ' ' | '|' | '-'));
            if !piece.is_empty() {
                out.push(Sentence {
                    section: sec.clone(),
                    text: piece.to_string(),
                });
            }
        }
    };
    for line in text.lines() {
        if line.starts_with("## Appendix") {
            flush(&section, &mut para, &mut out);
            section = None;
            continue;
        }
        if let Some(sec) = heading(line) {
            flush(&section, &mut para, &mut out);
            section = Some(sec);
            continue;
        }
        let trimmed = line.trim_start();
        if line.trim().is_empty()
            || trimmed.starts_with("- ")
            || trimmed.starts_with("* ")
            || numbered_item(trimmed)
            || line.starts_with('|')
        {
            flush(&section, &mut para, &mut out);
        }
        if !line.trim().is_empty() {
            para.push(line);
        }
    }
    flush(&section, &mut para, &mut out);
    out
}

/// `## 2.2. Title` (2 to 4 `#`) → `2.2`.
fn heading(line: &str) -> Option<String> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if !(2..=4).contains(&hashes) {
        return None;
    }
    let rest = line.get(hashes..)?.strip_prefix(' ')?;
    let num: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let after = rest.get(num.len()..)?;
    let num = num.strip_suffix('.')?;
    let valid = !num.is_empty()
        && num
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (valid && after.starts_with(char::is_whitespace)).then(|| num.to_string())
}

/// `3. ` or `12. ` at the start of a (trimmed) line.
fn numbered_item(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && s.get(digits..)
            .is_some_and(|r| r.starts_with('.') && r[1..].starts_with(char::is_whitespace))
}

/// Splits where a `.`, `;` or `:` is followed by whitespace and then a capital, `*`, a
/// backquote, `(` or a digit; and at ` | ` (table cells).
fn split_sentences(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut start = 0usize;
    let mut i = 0usize;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c.is_whitespace() {
            let mut j = i;
            while j < chars.len() && chars[j].1.is_whitespace() {
                j += 1;
            }
            let prev = i.checked_sub(1).map(|p| chars[p].1);
            let next = chars.get(j).map(|x| x.1);
            let sentence_end = matches!(prev, Some('.' | ';' | ':'))
                && next.is_some_and(|n| {
                    n.is_ascii_uppercase() || matches!(n, '*' | '`' | '(') || n.is_ascii_digit()
                });
            // ` | ` (a table cell): whitespace, a bar, whitespace.
            let table = chars.get(j).is_some_and(|x| x.1 == '|')
                && chars.get(j + 1).is_some_and(|x| x.1.is_whitespace());
            if sentence_end {
                out.push(&s[start..at]);
                start = chars.get(j).map_or(s.len(), |x| x.0);
                i = j;
                continue;
            }
            if table {
                out.push(&s[start..at]);
                start = chars.get(j + 2).map_or(s.len(), |x| x.0);
                i = j + 2;
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out.push(&s[start.min(s.len())..]);
    out
}

fn embedded() -> &'static [Sentence] {
    static S: OnceLock<Vec<Sentence>> = OnceLock::new();
    S.get_or_init(|| sentences(PROTOCOL))
}

/// Resolves a reference in `sentences`: the one sentence of its section (or a subsection) that
/// contains the quote.
pub fn resolve_in<'s>(sentences: &'s [Sentence], r: &SpecRef) -> Result<&'s Sentence, String> {
    let found: Vec<&Sentence> = sentences
        .iter()
        .filter(|s| s.section == r.section && s.text.contains(&r.quote))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no sentence of section {} contains {:?} (was it reworded or removed?)",
            r.section, r.quote
        )),
        more => Err(format!(
            "{} sentences of section {} contain {:?}: the quote must pick one",
            more.len(),
            r.section,
            r.quote
        )),
    }
}

/// Resolves a reference in the embedded spec.
pub fn resolve(r: &SpecRef) -> Result<&'static Sentence, String> {
    resolve_in(embedded(), r)
}

/// The sentence as shown in reports: Markdown emphasis removed.
pub fn display(s: &Sentence) -> String {
    format!("§{}: {}", s.section, s.text.replace("**", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_coverage_py() {
        let md = "## 1. Intro\n\nSkipped. Entirely.\n\n## 2. Framing\n\n### 2.2. The Length Field\n\n`Length` counts octets. A frame\noccupies 4 octets.\n\n- `Length` MUST be at least 8; a receiver MUST treat it as an error.\n\n| a | b |\n\n## Appendix A\n\nGone.\n";
        let s = sentences(md);
        let texts: Vec<(&str, &str)> = s
            .iter()
            .map(|x| (x.section.as_str(), x.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("2.2", "`Length` counts octets."),
                ("2.2", "A frame occupies 4 octets."),
                (
                    "2.2",
                    "`Length` MUST be at least 8; a receiver MUST treat it as an error."
                ),
                ("2.2", "a"),
                ("2.2", "b"),
            ]
        );
    }

    #[test]
    fn a_reference_fails_when_its_sentence_disappears() {
        let md = "## 2. F\n\n### 2.2. L\n\nA receiver MUST reject it. A sender MUST NOT send it.\n";
        let r = SpecRef {
            section: "2.2".into(),
            quote: "A sender MUST NOT".into(),
        };
        assert_eq!(
            resolve_in(&sentences(md), &r).unwrap().text,
            "A sender MUST NOT send it."
        );
        let edited = md.replace("A sender MUST NOT send it.", "");
        assert!(resolve_in(&sentences(&edited), &r).is_err());
        let ambiguous = SpecRef {
            section: "2.2".into(),
            quote: "MUST".into(),
        };
        assert!(resolve_in(&sentences(md), &ambiguous).is_err());
    }
}
