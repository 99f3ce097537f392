#!/usr/bin/env bash
# Side-by-side benchmark of Echowire servers on this machine: each server pinned to CPU 0, the
# load generator to CPU 1, the same workloads, one table with ratios against the tokio baseline
# and throughput as a fraction of the raw byte echo (the physical limit).
#   bench/compare.sh [--duration SECONDS] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=5
json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (use --duration SECONDS, --json FILE)" >&2; exit 2 ;;
  esac
done
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p echowire-server -p echowire-conformance -p echowire-bench
bin=target/release
out=$(mktemp -d)
starts=0
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT

start_server() { # name -> sets SPID, ADDR
  local name=$1
  starts=$((starts + 1))
  local log="$out/srv.$starts"
  case "$name" in
    reactor)  taskset -c 0 $bin/echowire-server --listen 127.0.0.1:0 --reactors 1 --workers 1 --max-connections 20000 --log warn >"$log" 2>&1 & ;;
    threaded) taskset -c 0 $bin/echowire-server --listen 127.0.0.1:0 --model threaded --workers 1 --max-connections 20000 --log warn >"$log" 2>&1 & ;;
    blocking) taskset -c 0 $bin/echowire-server --listen 127.0.0.1:0 --model blocking --workers 1 --log warn >"$log" 2>&1 & ;;
    tokio)    taskset -c 0 $bin/echowire-tokio-server 127.0.0.1:0 1 >"$log" 2>&1 & ;;
    raw)      taskset -c 0 $bin/echowire-raw-echo 127.0.0.1:0 >"$log" 2>&1 & ;;
  esac
  SPID=$!
  for _ in $(seq 200); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(grep -m1 "listening on" "$log" | awk '{print $3}' || true)
  [ -n "$ADDR" ] || { echo "$name did not start:" >&2; cat "$log" >&2; exit 1; }
}
stop_server() { kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# workload name -> load arguments
declare -A W=(
  [echo64_100x16]="--connections 100 --depth 16 --echo-size 64"
  [echo64_1x1]="--connections 1 --depth 1 --echo-size 64"
  [echo16k_16x4]="--connections 16 --depth 4 --echo-size 16384"
  [echo64_20x4_alone]="--connections 20 --depth 4 --echo-size 64"
  [echo64_20x4_compute]="--connections 20 --depth 4 --echo-size 64 --compute-share 0.05 --compute-cost 20000"
)
order=(echo64_100x16 echo64_1x1 echo16k_16x4 echo64_20x4_alone echo64_20x4_compute)
results="$out/results.jsonl"
: >"$results"
for server in raw tokio reactor threaded blocking; do
  for w in "${order[@]}"; do
    case "$server:$w" in
      raw:*compute*|raw:echo64_20x4_alone) continue ;;          # no protocol, no COMPUTE
      blocking:echo64_100x16|blocking:echo16k_16x4|blocking:echo64_20x4*) continue ;; # one connection at a time
    esac
    start_server "$server"
    extra=""; [ "$server" = raw ] && extra="--raw"
    c0=$(cpu_ticks "$SPID")
    if taskset -c 1 $bin/echowire-conformance load --target "$ADDR" ${W[$w]} $extra --duration "${duration}s" --warmup 1s --quiet --json "$out/r.json" >/dev/null 2>"$out/err"; then
      c1=$(cpu_ticks "$SPID")
      python3 - "$out/r.json" "$server" "$w" "$((c1 - c0))" "$duration" >>"$results" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1])); ticks = int(sys.argv[4]); hz = os.sysconf("SC_CLK_TCK")
r.update(server=sys.argv[2], workload=sys.argv[3])
n = r["requests_ok"] + sum(r["errors"].values())
r["server_cpu_us_per_req"] = ticks / hz * 1e6 / n if n else None
print(json.dumps(r))
PY
    else
      echo "{\"server\": \"$server\", \"workload\": \"$w\", \"failed\": $(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()[-300:]))' "$out/err")}" >>"$results"
    fi
    stop_server
  done
done
# Idle connections: server RSS per connection.
for server in reactor tokio threaded; do
  start_server "$server"
  r0=$(rss_kib "$SPID")
  taskset -c 1 $bin/echowire-conformance load --target "$ADDR" --idle 10000 --duration 4s --quiet >"$out/idle" 2>&1 &
  lp=$!
  for _ in $(seq 600); do grep -q "connections open" "$out/idle" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  r1=$(rss_kib "$SPID")
  wait $lp || true
  echo "{\"server\": \"$server\", \"workload\": \"idle10k\", \"rss_before_kib\": $r0, \"rss_after_kib\": $r1, \"bytes_per_conn\": $(( (r1 - r0) * 1024 / 10000 ))}" >>"$results"
  stop_server
done
python3 - "$results" "$json_out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["server"], r["workload"]): r for r in rows}
def lat(r, q):
    l = r.get("latency", {}).get("echo") or r.get("latency", {}).get("ping")
    return l[q] if l else float("nan")
print(f"{'workload':<22} {'server':<9} {'req/s':>10} {'vs tokio':>9} {'of raw':>7} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9} {'cpu µs/req':>10} {'busy':>6}")
for w in ["echo64_100x16", "echo64_1x1", "echo16k_16x4", "echo64_20x4_alone", "echo64_20x4_compute"]:
    t = by.get(("tokio", w)); raw = by.get(("raw", w))
    for s in ["raw", "tokio", "reactor", "threaded", "blocking"]:
        r = by.get((s, w))
        if not r: continue
        if "failed" in r:
            print(f"{w:<22} {s:<9} FAILED: {r['failed'][-120:]!r}"); continue
        rps = r["requests_per_s"]
        vs = f"{rps / t['requests_per_s']:.2f}x" if t and "failed" not in t else "-"
        of = f"{rps / raw['requests_per_s'] * 100:.0f}%" if raw and "failed" not in raw else "-"
        cpu = r.get("server_cpu_us_per_req")
        print(f"{w:<22} {s:<9} {rps:>10.0f} {vs:>9} {of:>7} {lat(r,'p50_us'):>9.1f} {lat(r,'p99_us'):>9.1f} {lat(r,'p999_us'):>9.1f} {cpu if cpu is None else round(cpu,2)!s:>10} {r.get('busy',0):>6}")
print()
for s in ["reactor", "tokio"]:
    a, b = by.get((s, "echo64_20x4_alone")), by.get((s, "echo64_20x4_compute"))
    if a and b and "failed" not in a and "failed" not in b:
        print(f"{s}: ECHO p99 with COMPUTE saturating the workers / without: {lat(b,'p99_us') / lat(a,'p99_us'):.2f}x "
              f"({lat(b,'p99_us'):.0f} µs vs {lat(a,'p99_us'):.0f} µs, {b.get('busy',0)} BUSY)")
for s in ["reactor", "tokio", "threaded"]:
    r = by.get((s, "idle10k"))
    if r: print(f"{s}: 10,000 idle connections: {r['bytes_per_conn']} bytes of server RSS each ({r['rss_before_kib']} -> {r['rss_after_kib']} KiB)")
if sys.argv[2]:
    json.dump({"rows": rows}, open(sys.argv[2], "w"), indent=1)
    print(f"\nJSON: {sys.argv[2]}")
PY
