//! Says at build time, where every user of the tests sees it, which optional tools are missing:
//! the checks that need them are then skipped with a note (CI requires them; see `tools.rs`).

include!("src/tool_list.rs");

fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=src/tool_list.rs");
    let paths = std::env::var_os("PATH").unwrap_or_default();
    for (tool, package, what) in OPTIONAL {
        let found = std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file());
        if !found {
            // A path that does not exist makes cargo run this script again on every build, so
            // the warning goes away as soon as the tool is installed.
            println!("cargo:rerun-if-changed=/nonexistent/echowire-tool-check/{tool}");
            println!(
                "cargo:warning={tool} not found: the tests will not check that {what} \
                 (install {package}; CI does, and requires it)"
            );
        }
    }
}
