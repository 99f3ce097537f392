//! The archived SUM body is defined by spec §6.9 (a byte diagram and five validation rules), not
//! by a library version. These tests pin the codec's rkyv path to that text:
//!
//! * every archived vector in `spec/vectors/` (written by the independent Python generator from
//!   the diagram) reads back as the values the generator recorded, at every buffer alignment;
//! * every invalid archive vector names the rule it breaks, and is rejected;
//! * a direct transcription of the five rules (the oracle below) and rkyv's own validation agree
//!   on hundreds of thousands of generated and mutated archives, canonical or not, so the text and
//!   the implementation cannot drift apart silently.
#![cfg(feature = "rkyv")]

use echowire_codec::body::archive::{check_sum, write_sum};
use echowire_codec::message::Sum;
use proptest::prelude::*;
use serde_json::Value;

/// Spec §6.9.3, transcribed: `Ok(values)` if `body` passes every rule, else the failing rule.
fn oracle(body: &[u8]) -> Result<Vec<i64>, u8> {
    let len = body.len() as i64;
    if len < 8 {
        return Err(1);
    }
    let r = len - 8;
    if r % 4 != 0 {
        return Err(2);
    }
    let at = r as usize;
    let rel_off = i32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as i64;
    let count = u32::from_le_bytes(body[at + 4..at + 8].try_into().unwrap()) as i64;
    let p = r + rel_off;
    if p < 0 {
        return Err(3);
    }
    if p % 8 != 0 {
        return Err(4);
    }
    if p + 8 * count > r {
        return Err(5);
    }
    Ok((0..count)
        .map(|i| {
            let o = (p + 8 * i) as usize;
            i64::from_le_bytes(body[o..o + 8].try_into().unwrap())
        })
        .collect())
}

/// The codec's own reading of the archived body (`body::archive`, what the session uses).
fn spec_module(body: &[u8]) -> Option<Vec<i64>> {
    check_sum(body).ok().map(|a| a.values().collect())
}

/// rkyv's reading of `body`, placed at buffer offset `shift` (any alignment).
fn codec(body: &[u8], shift: usize) -> Result<Vec<i64>, String> {
    let mut buf = vec![0u8; body.len() + 32];
    buf[shift..shift + body.len()].copy_from_slice(body);
    Sum::with_rkyv(&buf[shift..shift + body.len()], |a| {
        a.values.iter().map(|v| v.to_native()).collect()
    })
    .map_err(|e| e.to_string())
}

fn vectors(name: &str) -> Vec<Value> {
    let path = format!("{}/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

fn body_of(v: &Value) -> Vec<u8> {
    // Each archive vector is one SUM frame: 4 length octets, 8 header octets, the archive.
    hex::decode(v["hex"].as_str().unwrap()).unwrap()[12..].to_vec()
}

#[test]
fn archived_vectors_read_back_as_the_recorded_values() {
    let mut seen = 0;
    for v in vectors("valid.json") {
        let Some(expected) = v.get("archived_values") else {
            continue;
        };
        let expected: Vec<i64> = serde_json::from_value(expected.clone()).unwrap();
        let body = body_of(&v);
        assert_eq!(oracle(&body), Ok(expected.clone()), "{}", v["id"]);
        assert_eq!(spec_module(&body), Some(expected.clone()), "{}", v["id"]);
        for shift in 0..16 {
            assert_eq!(
                codec(&body, shift),
                Ok(expected.clone()),
                "{} at shift {shift}",
                v["id"]
            );
        }
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} archived vectors");
}

#[test]
fn every_validation_rule_has_a_rejected_vector() {
    let mut rules = std::collections::BTreeSet::new();
    for v in vectors("invalid.json") {
        let Some(rule) = v.get("rkyv_rule").and_then(Value::as_u64) else {
            continue;
        };
        let body = body_of(&v);
        assert_eq!(oracle(&body), Err(rule as u8), "{}", v["id"]);
        let named = check_sum(&body).unwrap_err().to_string();
        assert!(
            named.contains(&format!("rule {rule} ")),
            "{}: {named}",
            v["id"]
        );
        for shift in 0..16 {
            assert!(
                codec(&body, shift).is_err(),
                "{} accepted at shift {shift}",
                v["id"]
            );
        }
        rules.insert(rule);
    }
    assert_eq!(rules.into_iter().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn the_writer_produces_the_canonical_form_of_the_diagram() {
    for values in [vec![], vec![1], vec![1, 2, 3], vec![i64::MIN, -1, i64::MAX]] {
        let archive = Sum {
            values: values.clone(),
        }
        .to_rkyv()
        .unwrap();
        let mut canonical: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        canonical.extend_from_slice(&(-(8 * values.len() as i32)).to_le_bytes());
        canonical.extend_from_slice(&(values.len() as u32).to_le_bytes());
        assert_eq!(&archive[..], &canonical[..], "{values:?}");
        let mut ours = Vec::new();
        write_sum(&values, &mut ours).unwrap();
        assert_eq!(ours, canonical, "{values:?}");
    }
}

/// An archive built from parts chosen to land near every rule's boundary.
fn archive_parts() -> impl Strategy<Value = Vec<u8>> {
    (
        0usize..5,                                     // 4-octet words before the values
        proptest::collection::vec(any::<i64>(), 0..5), // the values
        0usize..4,                                     // 4-octet words between values and root
        -12i32..12,                                    // rel_off error, in octets
        0u32..8,                                       // count
        prop_oneof![Just(0usize), 1usize..4],          // octets cut from or added to the end
        any::<bool>(),
    )
        .prop_map(|(front, values, back, skew, count, tweak, grow)| {
            let mut b = vec![0xA5u8; 4 * front];
            b.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            b.extend(std::iter::repeat_n(0x5Au8, 4 * back));
            let r = b.len() as i32;
            b.extend_from_slice(&((4 * front as i32) - r + skew).to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            if grow {
                b.splice(0..0, std::iter::repeat_n(0u8, tweak));
            } else {
                b.truncate(b.len().saturating_sub(tweak));
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn spec_rules_and_rkyv_agree_on_structured_archives(body in archive_parts(), shift in 0usize..16) {
        prop_assert_eq!(oracle(&body).ok(), codec(&body, shift).ok(), "body {}", hex::encode(&body));
        prop_assert_eq!(oracle(&body).ok(), spec_module(&body), "body {}", hex::encode(&body));
    }

    #[test]
    fn spec_rules_and_rkyv_agree_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..48)) {
        prop_assert_eq!(oracle(&body).ok(), codec(&body, 0).ok(), "body {}", hex::encode(&body));
        prop_assert_eq!(oracle(&body).ok(), spec_module(&body), "body {}", hex::encode(&body));
    }
}
