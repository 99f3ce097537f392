#!/usr/bin/env bash
# Builds every fuzz target for a continuous fuzzing service (OSS-Fuzz, ClusterFuzzLite) into $OUT,
# in the layout those services expect:
#   $OUT/TARGET                   the libFuzzer binary
#   $OUT/TARGET_seed_corpus.zip   its seeds (fuzz/seeds/TARGET) and committed corpus (fuzz/corpus/TARGET)
#   $OUT/TARGET.dict              the dictionary (echowire.dict)
#   $OUT/TARGET.options           libFuzzer options: the dictionary and -max_len
# On OSS-Fuzz this is the project's build.sh (its Dockerfile copies the repository to
# $SRC/echowire; the base-builder-rust image provides cargo-fuzz, a nightly toolchain and the
# sanitizer flags in RUSTFLAGS). Locally: OUT=/tmp/out fuzz/build.sh, then run one target as the
# service would: /tmp/out/session -dict=/tmp/out/session.dict /tmp/corpus
# Targets: every [[bin]] of fuzz/Cargo.toml (`cargo fuzz list`), so a new target needs no edit here.
set -euo pipefail
cd "$(dirname "$0")"
out=${OUT:?set OUT to the directory the fuzzers go to}
mkdir -p "$out"

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1" >&2
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

# -O: release with debug assertions (what OSS-Fuzz builds); the service's RUSTFLAGS choose the
# sanitizer.
"${fuzz[@]}" build -O --debug-assertions
triple=$(rustc -vV | sed -n 's/^host: //p')
max_len=${MAX_LEN:-131072}
for t in $("${fuzz[@]}" list); do
  cp "target/$triple/release/$t" "$out/$t"
  cp echowire.dict "$out/$t.dict"
  printf '[libfuzzer]\ndict = %s.dict\nmax_len = %s\n' "$t" "$max_len" > "$out/$t.options"
  # The seed corpus: seeds and the committed corpus, flat (python3's zipfile: no zip needed).
  python3 - "$out/${t}_seed_corpus.zip" "seeds/$t" "corpus/$t" <<'PY'
import os, sys, zipfile
dest, dirs = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
    for d in dirs:
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                p = os.path.join(d, name)
                if os.path.isfile(p) and name not in z.namelist():
                    z.write(p, name)
PY
  echo "$t: $(stat -c %s "$out/$t") octets, $(python3 -c 'import sys,zipfile; print(len(zipfile.ZipFile(sys.argv[1]).namelist()))' "$out/${t}_seed_corpus.zip") seeds"
done
