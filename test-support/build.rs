//! Says at build time, where every user of the tests sees it, whether `xmllint` is there: the
//! JUnit reports are always checked against the schema's rules in Rust, and additionally by
//! `xmllint` against the XSD when it is installed (CI installs it and requires it).

fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=ECHOWIRE_REQUIRE_XMLLINT");
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("xmllint").is_file())
    });
    if !found {
        println!(
            "cargo:warning=xmllint not found: the tests check JUnit reports against the JUnit \
             schema's rules in Rust only; install libxml2-utils to also validate them with \
             xmllint (CI does, and requires it)"
        );
    }
}
