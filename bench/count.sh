#!/usr/bin/env bash
# Instructions per operation of the codec's hot paths, counted under valgrind (callgrind), not
# timed: a count is the same on a quiet and on a busy machine. Each operation runs N and 2N times
# after the same set-up (bench/src/bin/echowire-count.rs); (count(2N) - count(N)) / N is one
# operation's cost, start-up and set-up removed.
#   bench/count.sh [--n N] [--json FILE] [--check BASELINE] [--tolerance PCT]
# --check compares with a committed baseline (bench/counts.json) and fails if an operation
# costs more than PCT percent (default 3) above it; a count more than PCT below is reported as
# an improvement to commit (`bench/count.sh --json bench/counts.json`).
set -euo pipefail
cd "$(dirname "$0")/.."
n=10000; json_out=""; check=""; tol=3
while [ $# -gt 0 ]; do
  case "$1" in
    --n) n=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    --check) check=$2; shift 2 ;;
    --tolerance) tol=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 2; }
cargo build -q --release -p echowire-bench --bin echowire-count
bin=target/release/echowire-count
count() { # OP RUNS SETUP -> instructions of the whole process
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" "$3" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --list | while IFS=$'\t' read -r op what; do
  a=$(count "$op" "$n" $((2 * n)))
  b=$(count "$op" $((2 * n)) $((2 * n)))
  [ -n "$a" ] && [ -n "$b" ] || { echo "$op: valgrind gave no count" >&2; exit 1; }
  printf '%s\t%s\t%s\n' "$op" "$(( (b - a) / n ))" "$what" >>"$out"
done
python3 - "$out" "$n" "$json_out" "$check" "$tol" "$(rustc --version)" <<'PY'
import json, sys
path, n, json_out, check, tol, rustc = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path)]
counts = {op: int(c) for op, c, _ in rows}
what = {op: w for op, _, w in rows}
base = json.load(open(check))["instructions_per_op"] if check else {}
ratio = lambda a, b: f"{counts[a] / counts[b]:.2f}x" if counts.get(b) else "-"
print(f"instructions per operation (callgrind, N={n}; {rustc})")
print(f"{'operation':<28}{'count':>9}{'baseline':>10}  change")
failed = []
for op, c in counts.items():
    b = base.get(op)
    change = "" if b is None else f"{(c - b) / b * 100:+.1f}%"
    if b is not None and c > b * (1 + float(tol) / 100):
        failed.append(f"{op}: {c} instructions, baseline {b} ({change})")
        change += "  REGRESSION"
    elif b is not None and c < b * (1 - float(tol) / 100):
        change += "  improved: commit the new baseline"
    print(f"{op:<28}{c:>9}{'' if b is None else b:>10}  {change}")
print("the baseline's count / echowire's (above 1: echowire executes fewer instructions):",
      f"framing+validation {ratio('frame/length_delimited', 'frame/owned+validation')} owned,",
      f"{ratio('frame/length_delimited', 'frame/borrowed+validation')} borrowed;",
      f"full message decode {ratio('frame/length_delimited', 'message/decode')};",
      f"body encode {ratio('body/encode-postcard', 'body/encode')}, decode {ratio('body/decode-postcard', 'body/decode')} (postcard)")
if json_out:
    with open(json_out, "w") as f:
        json.dump({"about": "Instructions per operation, bench/count.sh (callgrind; (count(2N) - count(N)) / N)",
                   "rustc": rustc, "n": int(n), "instructions_per_op": counts, "what": what}, f, indent=2)
        f.write("\n")
if failed:
    print("counts above the baseline by more than", tol, "percent:", *failed, sep="\n  ")
    sys.exit(1)
PY
