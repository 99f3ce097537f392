//! The Rust tables agree with `spec/registry.json`, the machine-readable registry every other
//! implementation and generator reads: the message table (`table.rs`, through [`MessageType`])
//! and the error-code table ([`ErrorCode`]), row for row, both ways.

use echowire_codec::ErrorCode;
use echowire_codec::error::Scope;
use echowire_codec::frame::{Direction, Kind, MessageType, SUPPORTED_VERSIONS};
use serde_json::Value;

fn registry() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/registry.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reg: Value = serde_json::from_str(&text).expect("registry.json is JSON");
    assert_eq!(reg["format"], "echowire-registry");
    reg
}

#[test]
fn the_message_table_is_the_registry() {
    let reg = registry();
    let rows = reg["messages"].as_array().unwrap();
    for m in rows {
        let name = m["name"].as_str().unwrap();
        let code = m["code"].as_u64().unwrap() as u8;
        let t = MessageType::from_u8(code);
        let why = format!("registry row {name} (0x{code:02X})");
        assert_eq!(
            t.name(),
            Some(name),
            "{why}: the Rust table names code {code:#04x} {:?}",
            t.name()
        );
        assert_eq!(MessageType::from_name(name), Some(t), "{why}");
        let direction = match m["sender"].as_str().unwrap() {
            "client" => Direction::ToServer,
            "server" => Direction::ToClient,
            "either" => Direction::Both,
            s => panic!("{why}: sender {s}"),
        };
        assert_eq!(t.direction(), direction, "{why}: sender");
        let kind = match m["kind"].as_str().unwrap() {
            "handshake" => Kind::Handshake,
            "request" => Kind::Request,
            "response" => Kind::Response,
            "control" => Kind::Control,
            k => panic!("{why}: kind {k}"),
        };
        assert_eq!(t.kind(), kind, "{why}: kind");
        assert_eq!(
            t.since_version(),
            Some(m["since"].as_u64().unwrap() as u8),
            "{why}: since"
        );
        let answer = m["answer"]
            .as_str()
            .map(|a| MessageType::from_name(a).unwrap());
        assert_eq!(t.answered_by(), answer, "{why}: answer");
        assert_eq!(
            t.has_rkyv_form(),
            m["archived"].as_bool().unwrap(),
            "{why}: archived"
        );
    }
    // ...and the Rust table has no row the registry lacks.
    for t in MessageType::DEFINED {
        assert!(
            rows.iter()
                .any(|m| m["code"].as_u64() == Some(u64::from(t.to_u8()))),
            "{t} (0x{:02X}) is in the Rust table but not in spec/registry.json",
            t.to_u8()
        );
    }
    let versions: Vec<u8> = reg["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(versions, SUPPORTED_VERSIONS.collect::<Vec<_>>());
    let preface = hex::decode(reg["preface"].as_str().unwrap()).unwrap();
    assert_eq!(preface, echowire_codec::frame::PREFACE);
}

#[test]
fn the_error_code_table_is_the_registry() {
    let reg = registry();
    let rows = reg["errors"].as_array().unwrap();
    for e in rows {
        let name = e["name"].as_str().unwrap();
        let code = ErrorCode(e["code"].as_u64().unwrap() as u16);
        assert_eq!(code.name(), Some(name), "registry row {name}");
        assert_eq!(ErrorCode::from_name(name), Some(code), "{name}");
        let scopes: Vec<&str> = code.scopes().iter().map(|s| s.name()).collect();
        let want: Vec<&str> = e["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(scopes, want, "{name}: scopes");
        assert_eq!(
            code.is_connection_scope(),
            code.scopes().contains(&Scope::Connection),
            "{name}"
        );
    }
    assert_eq!(
        ErrorCode::ALL.len(),
        rows.len(),
        "codes in Rust but not in the registry"
    );
}
