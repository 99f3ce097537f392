//! The `--exec` template that starts the Python server (or one of its mutants) with every
//! setting of the runner's profile, shared by the tests that run it.

/// `python3 impls/python/<script> <args> --listen {listen} ...` with every profile placeholder.
pub fn template(script_and_args: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../impls/python");
    format!(
        "python3 {dir}/{script_and_args} --listen {{listen}} --max-frame {{max_frame_size}} \
         --max-outstanding {{max_outstanding}} --workers {{workers}} --queue-depth {{queue_depth}} \
         --max-connections {{max_connections}} \
         --handshake-timeout-ms {{handshake_timeout_ms}} --idle-timeout-ms {{idle_timeout_ms}} \
         --drain-timeout-ms {{drain_timeout_ms}}"
    )
}
