//! Embeds the conformance cases of `spec/conformance/*.json` (server cases) and
//! `spec/conformance/client/*.json` (client cases) into the runner, so the binary works from
//! anywhere; the files stay the single source (other runners read them directly).
use std::fmt::Write;
use std::path::Path;

fn embed(dir: &Path, constant: &str, doc: &str, dest: &str) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out =
        format!("/// {doc}: (file name, contents).\npub const {constant}: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            f.canonicalize().unwrap().display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join(dest);
    std::fs::write(dest, out).unwrap();
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    embed(
        &dir,
        "CASE_FILES",
        "The case files of spec/conformance, embedded at build time",
        "cases.rs",
    );
    embed(
        &dir.join("client"),
        "CLIENT_CASE_FILES",
        "The client case files of spec/conformance/client, embedded at build time",
        "client_cases.rs",
    );
}
