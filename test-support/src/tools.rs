//! Outside tools some tests use (`xmllint`, `prlimit`, `setpriv`): a test that cannot run its
//! check without one says so on standard error and in the build's warnings, never passes
//! quietly; with `ECHOWIRE_REQUIRE_TOOLS=1` (set by `.ci/run`) a missing tool fails the test.

use std::process::Command;
use std::sync::Mutex;

include!("tool_list.rs");

/// Whether tests must fail rather than skip a check for want of a tool (CI).
pub fn required() -> bool {
    std::env::var_os("ECHOWIRE_REQUIRE_TOOLS").is_some_and(|v| v != "0")
}

/// Whether `tool` runs here. If not: panics when [`required`], else says once, on standard
/// error, which check is skipped and why.
pub fn available(tool: &str) -> bool {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    let (package, what) = OPTIONAL
        .iter()
        .find(|(t, _, _)| *t == tool)
        .map_or(("?", "?"), |(_, p, w)| (*p, *w));
    assert!(
        !required(),
        "ECHOWIRE_REQUIRE_TOOLS is set but {tool} does not run (install {package}): {what}"
    );
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if !said.iter().any(|t| t == tool) {
        said.push(tool.to_string());
        eprintln!("note: {tool} not found (package {package}): not checked here that {what}");
    }
    false
}

/// A check a test cannot make here for a reason other than a missing tool (not root, say):
/// a failure when [`required`], else a note on standard error. Returns `false` to skip.
pub fn possible(ok: bool, why: &str) -> bool {
    if !ok {
        assert!(!required(), "ECHOWIRE_REQUIRE_TOOLS is set but {why}");
        eprintln!("note: skipped: {why}");
    }
    ok
}
