#!/usr/bin/env bash
# Soak: the release reactor server under a mixed load (ECHO of several sizes, PING, COMPUTE) for
# a while, with connections churning (a new set every segment), sampling the server's RSS every
# 5 s. Prints the RSS trend as a least-squares slope (MiB per minute) over the samples after the
# first minute, requests served, and any request errors. A server that leaks (a timer heap that
# grows with every request, buffers never given back) shows a steady positive slope.
#   server/soak.sh [--minutes N] [--segment SECONDS] [--warmup MINUTES] [--json FILE]
# The slope is fitted to the samples after --warmup minutes (default 1): the allocator and the
# buffer pools settle in the first minutes of a long run.
# Loopback only. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=5; segment=20; warmup=1; json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --segment) segment=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
cargo build --release -q -p echowire-server -p echowire-conformance
bin=target/release
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
# A short idle timeout so idle deadlines move and fire all the time.
$bin/echowire-server --listen 127.0.0.1:0 --idle-timeout 5s --log warn >"$out/srv" 2>&1 &
spid=$!
for _ in $(seq 200); do grep -q "listening on" "$out/srv" 2>/dev/null && break; sleep 0.05; done
addr=$(grep -m1 "listening on" "$out/srv" | awk '{print $3}')
( while kill -0 $spid 2>/dev/null; do
    echo "$(date +%s.%N) $(awk '/VmRSS/ {print $2}' /proc/$spid/status)"; sleep 5
  done ) >"$out/rss" &
end=$(( $(date +%s) + minutes * 60 ))
i=0
while [ "$(date +%s)" -lt "$end" ]; do
  i=$((i + 1))
  size=$(( (i % 4 == 0) ? 16384 : (i % 3 == 0 ? 1024 : 64) ))
  $bin/echowire-conformance load --target "$addr" --connections $(( 20 + (i % 5) * 20 )) --depth 8 \
    --echo-size $size --ping-share 0.2 --compute-share 0.02 --compute-cost 2000 \
    --duration "${segment}s" --warmup 0s --quiet --json "$out/seg.$i.json" >/dev/null 2>>"$out/load.err" || true
done
kill -TERM $spid; wait $spid || true
python3 - "$out" "$i" "$json_out" "$warmup" <<'PY'
import json, sys, glob, os
out, segs, json_out, warmup = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
rows = [l.split() for l in open(os.path.join(out, "rss")) if len(l.split()) == 2]
t0 = float(rows[0][0])
pts = [((float(t) - t0) / 60, int(k) / 1024) for t, k in rows]
late = [p for p in pts if p[0] >= warmup] or pts
n = len(late); mx = sum(p[0] for p in late) / n; my = sum(p[1] for p in late) / n
sxx = sum((p[0] - mx) ** 2 for p in late) or 1e-9
slope = sum((p[0] - mx) * (p[1] - my) for p in late) / sxx
ok = errs = 0
by_code = {}
for f in glob.glob(os.path.join(out, "seg.*.json")):
    r = json.load(open(f)); ok += r["requests_ok"]; errs += sum(r["errors"].values())
    for k, v in r["errors"].items():
        by_code[k] = by_code.get(k, 0) + v
res = {"minutes": round(pts[-1][0], 2), "segments": segs, "requests_ok": ok, "request_errors": errs, "errors_by_code": by_code,
       "rss_first_mib": round(pts[0][1], 1), "rss_max_mib": round(max(p[1] for p in pts), 1),
       "rss_last_mib": round(pts[-1][1], 1), "warmup_minutes": warmup,
       "rss_slope_kib_per_min_after_warmup": round(slope * 1024, 1),
       "samples": len(pts)}
print(json.dumps(res, indent=1))
if json_out: json.dump(res, open(json_out, "w"), indent=1)
PY
