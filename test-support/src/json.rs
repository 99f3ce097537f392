//! JSON report validation against `spec/conformance/schema/report.schema.json`.

/// The report schema.
pub const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../spec/conformance/schema/report.schema.json"
);

/// Validates a JSON report against its schema; panics listing the first violations.
pub fn validate(report: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(SCHEMA).expect("the report schema is readable"),
    )
    .expect("the report schema is JSON");
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
