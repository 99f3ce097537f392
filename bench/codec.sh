#!/usr/bin/env bash
# The codec benchmarks as ratios: criterion runs --runs times (default 5) over the frame and body
# benchmarks; after each run every ratio (echowire against LengthDelimitedCodec, against
# postcard) is computed from that run's medians, then reported as median [min-max] over the runs.
#   bench/codec.sh [--runs N] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5; json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for run in $(seq "$runs"); do
  echo "run $run of $runs" >&2
  rm -rf target/criterion/frames_16B target/criterion/frames_1024B target/criterion/body
  cargo bench -q -p echowire-codec --bench codec -- --warm-up-time 1 --measurement-time 2 \
    'frames/16B/decode|frames/1024B/decode|body/' >/dev/null 2>"$out/err" || { cat "$out/err" >&2; exit 1; }
  python3 - "$run" >>"$out/runs.jsonl" <<'PY'
import glob, json, sys
est = {}
for d in glob.glob("target/criterion/*/*/new"):
    b = json.load(open(d + "/benchmark.json"))
    est[b["full_id"]] = json.load(open(d + "/estimates.json"))["median"]["point_estimate"]
print(json.dumps({"run": int(sys.argv[1]), "ns": est}))
PY
done
python3 - "$out/runs.jsonl" "$json_out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def ratio(base, x):
    vals = [r["ns"][base] / r["ns"][x] for r in runs if base in r["ns"] and x in r["ns"]]
    if not vals: return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
rows = []
for size in ["16B", "1024B"]:
    ldc = f"frames/{size}/decode/length_delimited"
    for name in ["echowire-framing", "echowire+header-validation", "echowire-borrowed+header-validation", "echowire+full-message"]:
        rows.append((f"decode {size}: {name} vs LengthDelimitedCodec", ratio(ldc, f"frames/{size}/decode/{name}")))
rows.append(("body decode: echowire vs postcard", ratio("body/decode/postcard", "body/decode/echowire")))
rows.append(("body encode: echowire vs postcard", ratio("body/encode/postcard", "body/encode/echowire")))
print(f"{len(runs)} runs; speed ratio (baseline time / echowire time, >1 = echowire faster), median [min-max]")
for name, r in rows:
    if r:
        wide = " wide" if (r["max"] - r["min"]) / r["median"] > 0.2 else ""
        print(f"  {name:<66} {r['median']:.2f}x [{r['min']:.2f}-{r['max']:.2f}]{wide}")
med = {k: statistics.median([r["ns"][k] for r in runs if k in r["ns"]]) for k in runs[0]["ns"]}
print("median times (ns per iteration; frames: 1000 frames per iteration):")
for k in sorted(med):
    print(f"  {k:<60} {med[k]:>12.1f}")
if sys.argv[2]:
    json.dump({"ratios": dict(rows), "median_ns": med, "runs": runs}, open(sys.argv[2], "w"), indent=1)
PY
