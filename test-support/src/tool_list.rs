// The optional tools, shared by build.rs and tools.rs.

/// The tools the tests use when they are there, with the Debian package that has them.
pub const OPTIONAL: &[(&str, &str, &str)] = &[
    (
        "xmllint",
        "libxml2-utils",
        "JUnit reports are also validated against the XSD",
    ),
    (
        "prlimit",
        "util-linux",
        "the server is run under small descriptor limits",
    ),
    (
        "setpriv",
        "util-linux",
        "a Unix-socket peer of another uid is refused",
    ),
    (
        "tshark",
        "tshark",
        "the Wireshark dissector decodes the runner's captures with every response linked",
    ),
];
