#!/usr/bin/env bash
# Instructions per operation of the codec's hot paths, counted under valgrind (callgrind), not
# timed: a count is the same on a quiet and on a busy machine. Each operation runs N and 2N times
# after the same set-up (bench/src/bin/echowire-count.rs); (count(2N) - count(N)) / N is one
# operation's cost, start-up and set-up removed.
#   bench/count.sh [--n N] [--json FILE] [--check BASELINE] [--tolerance PCT] [--servers]
# --check compares with a committed baseline (bench/counts.json) and fails if an operation
# costs more than PCT percent (default 3) above it; a count more than PCT below is reported as
# an improvement to commit (`bench/count.sh --json bench/counts.json`).
# --servers also counts the user-space instructions per 64-octet ECHO of whole servers (the
# reactor, the tokio baseline on the same codec, the raw byte echo), each under callgrind with
# one reactor/runtime thread and one worker, at 16 connections x 16 in flight and at 1 x 1:
# `echowire-conformance load --requests` sends exactly N and then 2N requests to fresh
# instances, so start-up, handshakes and shutdown cancel out. (What depends on time rather than
# requests, a timer's tick, does not cancel: the 1 x 1 figures carry a few percent of it.)
set -euo pipefail
cd "$(dirname "$0")/.."
n=10000; json_out=""; check=""; tol=3; servers=0
while [ $# -gt 0 ]; do
  case "$1" in
    --n) n=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    --check) check=$2; shift 2 ;;
    --tolerance) tol=$2; shift 2 ;;
    --servers) servers=1; shift ;;
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
if [ "$servers" = 1 ]; then
  cargo build -q --release -p echowire-server -p echowire-conformance -p echowire-bench
  rel=target/release
  log=$(mktemp)
  # server_count SERVER REQUESTS CONNECTIONS DEPTH -> the server process's instructions
  server_count() {
    local raw=""
    case $1 in
      reactor) valgrind --tool=callgrind --callgrind-out-file=/dev/null $rel/echowire-server \
                 --listen 127.0.0.1:0 --workers 1 --reactors 1 --log warn >"$log" 2>&1 & ;;
      tokio)   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                 $rel/echowire-tokio-server 127.0.0.1:0 1 >"$log" 2>&1 & ;;
      raw)     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                 $rel/echowire-raw-echo 127.0.0.1:0 >"$log" 2>&1 & raw=--raw ;;
    esac
    local pid=$!
    for _ in $(seq 600); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.1; done
    local addr
    addr=$(grep -m1 "listening on" "$log" | awk '{print $3}')
    $rel/echowire-conformance load --target "$addr" $raw --requests "$2" --connections "$3" \
      --depth "$4" --duration 300s --quiet >/dev/null || { kill "$pid"; echo "load failed" >&2; return 1; }
    kill -TERM "$pid"
    wait "$pid" || true
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
  }
  for s in reactor tokio raw; do
    for w in "16 16 3200" "1 1 500"; do
      set -- $w
      a=$(server_count "$s" "$3" "$1" "$2")
      b=$(server_count "$s" $((2 * $3)) "$1" "$2")
      printf '%s\t%s\t%s\n' "server/$s/${1}x$2" "$(( (b - a) / $3 ))" \
        "the $s server's user-space instructions per 64-octet ECHO at $1 connection(s) x $2 in flight" >>"$out"
    done
  done
  rm -f "$log"
fi
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
if "server/reactor/16x16" in counts:
    print("servers, per request:",
          f"reactor / tokio {counts['server/reactor/16x16'] / counts['server/tokio/16x16']:.2f} at 16x16,",
          f"{counts['server/reactor/1x1'] / counts['server/tokio/1x1']:.2f} at 1x1")
if json_out:
    with open(json_out, "w") as f:
        json.dump({"about": "Instructions per operation, bench/count.sh (callgrind; (count(2N) - count(N)) / N)",
                   "rustc": rustc, "n": int(n), "instructions_per_op": counts, "what": what}, f, indent=2)
        f.write("\n")
if failed:
    print("counts above the baseline by more than", tol, "percent:", *failed, sep="\n  ")
    sys.exit(1)
PY
