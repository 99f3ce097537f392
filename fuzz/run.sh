#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, with the seed corpus and dictionary.
#   fuzz/run.sh 900                       # 15 minutes per target, one after another
#   JOBS=2 fuzz/run.sh 900                # two targets at a time (one per core)
#   fuzz/run.sh 60 session decode_stream  # chosen targets
#   fuzz/run.sh 0                         # replay the corpora only (-runs=0), no new inputs
# Uses `cargo +nightly fuzz`; without a nightly toolchain, stable with RUSTC_BOOTSTRAP=1.
# Installs cargo-fuzz if missing. New corpus entries go to fuzz/corpus/TARGET, crashes to
# fuzz/artifacts/TARGET; each target's final libFuzzer stats line is printed at the end.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_stream roundtrip body_serde rkyv_access session)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1" >&2
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

# Frames up to 64 KiB payloads are explored; larger inputs slow every execution down.
max_len=${MAX_LEN:-131072}
"${fuzz[@]}" build --release "${targets[@]/#/}" >/dev/null 2>&1 || "${fuzz[@]}" build --release

run_one() {
  local t=$1
  mkdir -p "corpus/$t" "logs"
  local args=(-dict=echowire.dict -max_len="$max_len" -malloc_limit_mb=256 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
  if [ "$secs" = 0 ]; then args+=(-runs=0); else args+=(-max_total_time="$secs"); fi
  "${fuzz[@]}" run --release "$t" "corpus/$t" "seeds/$t" -- "${args[@]}" >"logs/$t.log" 2>&1
  local rc=$?
  echo "== $t (exit $rc): $(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "logs/$t.log" | tail -1)"
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "logs/$t.log" | tr '\n' ' '
  echo " corpus files: $(ls "corpus/$t" | wc -l)"
  return $rc
}

jobs=${JOBS:-1}
status=0
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
