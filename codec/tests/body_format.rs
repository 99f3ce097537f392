//! The body encoding as a serde data format (spec §6): nested application types round-trip,
//! borrowed fields borrow, every malformed input gives a positioned error, lengths are checked
//! against the remaining input before allocating, nesting is bounded.

use std::borrow::Cow;
use std::collections::BTreeMap;

use echowire_codec::body::{self, cow_bytes};
use echowire_codec::error::{BodyError, BodyErrorKind};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Poly(Vec<(i16, i16)>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order<'a> {
    id: u64,
    #[serde(borrow)]
    customer: Cow<'a, str>,
    #[serde(borrow, with = "cow_bytes")]
    blob: Cow<'a, [u8]>,
    note: Option<String>,
    shapes: Vec<Shape>,
    tags: BTreeMap<String, i64>,
    flag: bool,
    initial: char,
    signed: i128,
    nested: Option<Box<Order<'a>>>,
}

fn order_strategy() -> impl Strategy<Value = Order<'static>> {
    let shape = prop_oneof![
        Just(Shape::Unit),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Shape::Circle),
        (any::<u32>(), any::<u32>()).prop_map(|(w, h)| Shape::Rect { w, h }),
        proptest::collection::vec(any::<(i16, i16)>(), 0..5).prop_map(Shape::Poly),
    ];
    let leaf = (
        any::<u64>(),
        ".{0,12}",
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::option::of(".{0,8}"),
        proptest::collection::vec(shape, 0..4),
        proptest::collection::btree_map(".{0,6}", any::<i64>(), 0..4),
        any::<bool>(),
        any::<char>(),
        any::<i128>(),
    )
        .prop_map(
            |(id, customer, blob, note, shapes, tags, flag, initial, signed)| Order {
                id,
                customer: customer.into(),
                blob: blob.into(),
                note,
                shapes,
                tags,
                flag,
                initial,
                signed,
                nested: None,
            },
        );
    leaf.prop_recursive(3, 8, 1, |inner| {
        (inner.clone(), inner).prop_map(|(mut outer, child)| {
            outer.nested = Some(Box::new(child));
            outer
        })
    })
}

proptest! {
    #[test]
    fn nested_application_type_round_trips(order in order_strategy()) {
        let bytes = body::to_vec(&order).unwrap();
        prop_assert_eq!(bytes.len(), body::encoded_len(&order).unwrap());
        let back: Order = body::from_bytes(&bytes).unwrap();
        prop_assert!(matches!(back.customer, Cow::Borrowed(_)), "strings borrow");
        prop_assert!(matches!(back.blob, Cow::Borrowed(_)), "byte strings borrow");
        prop_assert_eq!(back, order);
    }

    #[test]
    fn every_strict_prefix_is_rejected_without_panicking(order in order_strategy()) {
        let bytes = body::to_vec(&order).unwrap();
        for cut in 0..bytes.len() {
            prop_assert!(body::from_bytes::<Order>(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = body::from_bytes::<Order>(&bytes);
        let _ = body::from_bytes::<Vec<Shape>>(&bytes);
    }

    #[test]
    fn lengths_beyond_the_input_are_rejected_before_allocating(claim in 5u32.., rest in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut bytes = claim.to_be_bytes().to_vec();
        bytes.extend_from_slice(&rest);
        for e in [
            body::from_bytes::<Vec<u8>>(&bytes).unwrap_err(),
            body::from_bytes::<String>(&bytes).unwrap_err(),
            body::from_bytes::<&[u8]>(&bytes).unwrap_err(),
            body::from_bytes::<BTreeMap<u8, u8>>(&bytes).unwrap_err(),
        ] {
            prop_assert_eq!(e.kind, BodyErrorKind::LengthExceedsInput { length: claim.into(), remaining: rest.len() });
            prop_assert_eq!(e.offset, 0);
        }
    }
}

#[test]
fn errors_say_what_and_where() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Msg<'a> {
        a: u32,
        #[serde(borrow)]
        name: &'a str,
        ok: bool,
    }
    // name: invalid UTF-8 at string offset 1
    let bytes = [0, 0, 0, 1, 0, 0, 0, 2, b'x', 0xFF, 1];
    let e = body::from_bytes::<Msg>(&bytes).unwrap_err();
    assert_eq!(e.kind, BodyErrorKind::InvalidUtf8 { valid_up_to: 1 });
    assert_eq!((e.offset, e.field), (9, Some("name")));
    assert_eq!(e.code(), echowire_codec::ErrorCode::INVALID_UTF8);
    // ok: bool 2
    let bytes = [0, 0, 0, 1, 0, 0, 0, 1, b'x', 2];
    let e = body::from_bytes::<Msg>(&bytes).unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.offset, e.field),
        (BodyErrorKind::InvalidBool(2), 9, Some("ok"))
    );
    assert_eq!(
        e.to_string(),
        "invalid bool byte 0x02 at body offset 9 (field `ok`)"
    );
    // a: body ends
    let e = body::from_bytes::<Msg>(&[0, 0]).unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.offset, e.field),
        (
            BodyErrorKind::UnexpectedEnd {
                needed: 4,
                remaining: 2
            },
            0,
            Some("a")
        )
    );
    // trailing
    let e = body::from_bytes::<u8>(&[1, 2, 3]).unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.offset),
        (BodyErrorKind::TrailingBytes { count: 2 }, 1)
    );
    assert_eq!(e.code(), echowire_codec::ErrorCode::TRAILING_BYTES);
    // enum index out of range
    let e = body::from_bytes::<Shape>(&[0, 0, 0, 9]).unwrap_err();
    assert!(matches!(e.kind, BodyErrorKind::Invalid(_)), "{e}");
    assert_eq!(e.code(), echowire_codec::ErrorCode::MALFORMED_BODY);
    // option tag, char
    assert_eq!(
        body::from_bytes::<Option<u8>>(&[2]).unwrap_err().kind,
        BodyErrorKind::InvalidOptionTag(2)
    );
    assert_eq!(
        body::from_bytes::<char>(&[0, 0, 0xD8, 0]).unwrap_err().kind,
        BodyErrorKind::InvalidChar(0xD800)
    );
    // self-describing input is not supported
    assert!(matches!(
        body::from_bytes::<serde_json::Value>(&[0])
            .unwrap_err()
            .kind,
        BodyErrorKind::Unsupported(_)
    ));
}

#[test]
fn nesting_is_bounded() {
    // Option<Option<...>> 200 deep: 200 tag bytes of 1, then a u8.
    #[derive(Debug, Deserialize)]
    struct Deep(#[allow(dead_code)] Option<Box<Deep>>);
    let mut bytes = vec![1u8; 200];
    bytes.push(0);
    let e = body::from_bytes::<Deep>(&bytes).unwrap_err();
    assert_eq!(e.kind, BodyErrorKind::DepthLimit(body::DEFAULT_MAX_DEPTH));
    assert!(body::from_bytes_with_depth::<Deep>(&bytes, 512).is_ok());
}

#[test]
fn every_body_error_variant_formats() {
    let kinds = [
        BodyErrorKind::UnexpectedEnd {
            needed: 4,
            remaining: 1,
        },
        BodyErrorKind::LengthExceedsInput {
            length: 9,
            remaining: 1,
        },
        BodyErrorKind::TrailingBytes { count: 1 },
        BodyErrorKind::InvalidUtf8 { valid_up_to: 0 },
        BodyErrorKind::InvalidBool(3),
        BodyErrorKind::InvalidOptionTag(3),
        BodyErrorKind::InvalidChar(0xD800),
        BodyErrorKind::DepthLimit(64),
        BodyErrorKind::Unsupported("x"),
        BodyErrorKind::Invalid("y".into()),
        BodyErrorKind::InvalidArchive { rule: 3 },
    ];
    for kind in kinds {
        let e = BodyError {
            kind,
            offset: 3,
            field: Some("f"),
        };
        let s = e.to_string();
        assert!(s.contains("at body offset 3") && s.contains("`f`"), "{s}");
    }
}

#[test]
fn encoding_matches_the_spec_table() {
    assert_eq!(body::to_vec(&true).unwrap(), [1]);
    assert_eq!(body::to_vec(&-2i16).unwrap(), [0xFF, 0xFE]);
    assert_eq!(
        body::to_vec(&1.5f32).unwrap(),
        1.5f32.to_bits().to_be_bytes()
    );
    assert_eq!(body::to_vec(&'é').unwrap(), [0, 0, 0, 0xE9]);
    assert_eq!(body::to_vec("hé").unwrap(), [0, 0, 0, 3, b'h', 0xC3, 0xA9]);
    assert_eq!(body::to_vec(&Some(7u8)).unwrap(), [1, 7]);
    assert_eq!(body::to_vec(&None::<u8>).unwrap(), [0]);
    assert_eq!(
        body::to_vec(&vec![1u16, 2]).unwrap(),
        [0, 0, 0, 2, 0, 1, 0, 2]
    );
    assert_eq!(body::to_vec(&(1u8, 2u8)).unwrap(), [1, 2]);
    assert_eq!(
        body::to_vec(&Shape::Rect { w: 1, h: 2 }).unwrap(),
        [0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]
    );
    assert_eq!(body::to_vec(&Shape::Unit).unwrap(), [0, 0, 0, 0]);
}
