//! Replays, on stable Rust, every input the fuzzers kept — the seed corpora, the committed
//! corpora, and each minimised crash under `tests/fuzz-regressions/TARGET/` — through the same
//! harnesses the cargo-fuzz targets run (`echowire_codec::fuzzing`).

use std::path::Path;

type Harness = fn(&[u8]);

fn replay(dir: &Path, harness: Harness) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let data = std::fs::read(e.path()).unwrap();
        let path = e.path();
        let r = std::panic::catch_unwind(|| harness(&data));
        assert!(r.is_ok(), "{} fails its harness", path.display());
        n += 1;
    }
    n
}

#[test]
fn corpora_and_regressions_replay_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let targets: [(&str, Harness); 5] = [
        ("decode_stream", echowire_codec::fuzzing::decode_stream),
        ("roundtrip", echowire_codec::fuzzing::roundtrip),
        ("body_serde", echowire_codec::fuzzing::body_serde),
        ("rkyv_access", echowire_codec::fuzzing::rkyv_access),
        ("session", echowire_codec::fuzzing::session),
    ];
    let mut total = 0;
    for (name, harness) in targets {
        let mut n = 0;
        for dir in ["../fuzz/seeds", "../fuzz/corpus", "tests/fuzz-regressions"] {
            n += replay(&root.join(dir).join(name), harness);
        }
        assert!(n > 0, "nothing to replay for {name}");
        println!("{name}: {n} inputs");
        total += n;
    }
    assert!(total > 500, "only {total} inputs replayed");
}
