#!/usr/bin/env bash
# Side-by-side benchmark of Echowire servers on this machine, repeated: every server x workload
# runs --runs times (default 5), interleaved (run 1 of every pair, then run 2, ...; the server
# order rotates each run), each server pinned to CPU 0, the load generator to CPU 1. Every ratio
# is taken between servers measured in the same run, then reported as the median and the spread
# (min-max) over the runs; a spread wider than 20% of the median is flagged.
#   bench/compare.sh [--duration SECONDS] [--runs N] [--servers LIST] [--workloads LIST]
#                    [--no-idle] [--json FILE]
# Servers: raw (byte echo, the physical limit), tokio (the baseline), reactor, reactor2 (two
# reactor threads, both on CPU 0 with the rest), reuseport (two reactors, one SO_REUSEPORT
# listener each, instead of the acceptor thread), reactor_prev (the reactor of another build,
# PREV_SERVER=/path/to/echowire-server: an A/B comparison in the same runs), threaded,
# blocking. Default: raw,tokio,reactor.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=4
runs=5
servers="raw,tokio,reactor"
workloads="echo64_100x16,echo64_1x1,echo16k_16x4,echo64_20x4_alone,echo64_20x4_compute"
idle=1
json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --no-idle) idle=0; shift ;;
    --json) json_out=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p echowire-server -p echowire-conformance -p echowire-bench
bin=${BIN:-target/release}
out=$(mktemp -d)
starts=0
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
IFS=, read -r -a server_list <<<"$servers"
IFS=, read -r -a workload_list <<<"$workloads"

start_server() { # name -> sets SPID, ADDR
  local name=$1
  starts=$((starts + 1))
  local log="$out/srv.$starts"
  local common="--listen 127.0.0.1:0 --workers 1 --max-connections 20000 --log warn"
  case "$name" in
    reactor)   taskset -c 0 $bin/echowire-server $common --reactors 1 >"$log" 2>&1 & ;;
    reactor2)  taskset -c 0 $bin/echowire-server $common --reactors 2 >"$log" 2>&1 & ;;
    reuseport) taskset -c 0 $bin/echowire-server $common --reactors 2 --reuseport >"$log" 2>&1 & ;;
    reactor_prev) taskset -c 0 "${PREV_SERVER:?set PREV_SERVER to another build of echowire-server}" $common --reactors 1 >"$log" 2>&1 & ;;
    threaded)  taskset -c 0 $bin/echowire-server $common --model threaded >"$log" 2>&1 & ;;
    blocking)  taskset -c 0 $bin/echowire-server --listen 127.0.0.1:0 --model blocking --workers 1 --log warn >"$log" 2>&1 & ;;
    tokio)     taskset -c 0 $bin/echowire-tokio-server 127.0.0.1:0 1 >"$log" 2>&1 & ;;
    raw)       taskset -c 0 $bin/echowire-raw-echo 127.0.0.1:0 >"$log" 2>&1 & ;;
    *) echo "unknown server $name" >&2; exit 2 ;;
  esac
  SPID=$!
  for _ in $(seq 200); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(grep -m1 "listening on" "$log" | awk '{print $3}' || true)
  [ -n "$ADDR" ] || { echo "$name did not start:" >&2; cat "$log" >&2; exit 1; }
}
stop_server() { kill -TERM "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Steal: time the hypervisor ran someone else on this VM's CPUs (all CPUs, jiffies).
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
total_ticks() { awk '/^cpu / {s=0; for (i=2; i<=NF; i++) s+=$i; print s}' /proc/stat; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# workload name -> load arguments
declare -A W=(
  [echo64_100x16]="--connections 100 --depth 16 --echo-size 64"
  [echo64_1x1]="--connections 1 --depth 1 --echo-size 64"
  [echo16k_16x4]="--connections 16 --depth 4 --echo-size 16384"
  [echo64_20x4_alone]="--connections 20 --depth 4 --echo-size 64"
  [echo64_20x4_compute]="--connections 20 --depth 4 --echo-size 64 --compute-share 0.05 --compute-cost 20000"
)
results="$out/results.jsonl"
: >"$results"
for run in $(seq "$runs"); do
  echo "run $run of $runs" >&2
  # Rotate the server order each run so no server always follows the same one.
  n=${#server_list[@]}
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${server_list[$(( (i + run - 1) % n ))]}"); done
  for w in "${workload_list[@]}"; do
    for server in "${order[@]}"; do
      case "$server:$w" in
        raw:*compute*|raw:echo64_20x4_alone) continue ;;          # no protocol, no COMPUTE
        blocking:echo64_100x16|blocking:echo16k_16x4|blocking:echo64_20x4*) continue ;; # one connection at a time
      esac
      start_server "$server"
      extra=""; [ "$server" = raw ] && extra="--raw"
      c0=$(cpu_ticks "$SPID"); st0=$(steal_ticks); tt0=$(total_ticks)
      if taskset -c 1 $bin/echowire-conformance load --target "$ADDR" ${W[$w]} $extra --duration "${duration}s" --warmup 1s --quiet --json "$out/r.json" >/dev/null 2>"$out/err"; then
        c1=$(cpu_ticks "$SPID"); st1=$(steal_ticks); tt1=$(total_ticks)
        python3 - "$out/r.json" "$server" "$w" "$((c1 - c0))" "$run" "$((st1 - st0))" "$((tt1 - tt0))" >>"$results" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1])); ticks = int(sys.argv[4]); hz = os.sysconf("SC_CLK_TCK")
r.update(server=sys.argv[2], workload=sys.argv[3], run=int(sys.argv[5]))
r["steal_pct"] = 100.0 * int(sys.argv[6]) / max(1, int(sys.argv[7]))
n = r["requests_ok"] + sum(r["errors"].values())
r["server_cpu_us_per_req"] = ticks / hz * 1e6 / n if n else None
print(json.dumps(r))
PY
      else
        echo "{\"server\": \"$server\", \"workload\": \"$w\", \"run\": $run, \"failed\": $(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()[-300:]))' "$out/err")}" >>"$results"
      fi
      stop_server
    done
  done
  # Idle connections: server RSS per handshaken connection at 10,000.
  if [ "$idle" = 1 ]; then
    for server in "${order[@]}"; do
      case "$server" in raw|blocking|reactor2|reuseport) continue ;; esac
      start_server "$server"
      r0=$(rss_kib "$SPID")
      taskset -c 1 $bin/echowire-conformance load --target "$ADDR" --idle 10000 --duration 6s --quiet >"$out/idle" 2>&1 &
      lp=$!
      for _ in $(seq 600); do grep -q "connections open" "$out/idle" 2>/dev/null && break; sleep 0.1; done
      sleep 2.5 # the reactor gives a quiet connection's buffers back after 1-2 s
      r1=$(rss_kib "$SPID")
      wait $lp || true
      echo "{\"server\": \"$server\", \"workload\": \"idle10k\", \"run\": $run, \"rss_before_kib\": $r0, \"rss_after_kib\": $r1, \"bytes_per_conn\": $(( (r1 - r0) * 1024 / 10000 ))}" >>"$results"
      stop_server
    done
  fi
done
python3 bench/summarize.py "$results" "$json_out"
