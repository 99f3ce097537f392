#!/usr/bin/env python3
"""Summarizes bench/compare.sh results (JSON lines, one per server x workload x run).

Every ratio is taken inside one run (servers measured minutes apart on a shared machine drift
together), then reported over the runs as median [min-max]. A spread (max-min) above 20% of the
median is flagged "wide". Usage: summarize.py RESULTS.jsonl [OUT.json]
"""
import json
import statistics
import sys

WORKLOADS = ["echo64_100x16", "echo64_1x1", "echo16k_16x4", "echo64_20x4_alone", "echo64_20x4_compute"]
SERVERS = ["raw", "tokio", "reactor", "reactor_prev", "reactor2", "reuseport", "threaded", "blocking"]
NAMES = {
    "echo64_100x16": "ECHO 64 B, 100 x 16",
    "echo64_1x1": "ECHO 64 B, 1 x 1",
    "echo16k_16x4": "ECHO 16 KiB, 16 x 4",
    "echo64_20x4_alone": "ECHO 64 B, 20 x 4",
    "echo64_20x4_compute": "20 x 4 + 5% COMPUTE",
}


def lat(r, q):
    l = r.get("latency", {}).get("echo") or r.get("latency", {}).get("ping")
    return l[q] if l else None


def spread(values, fmt="{:.2f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-", None
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    wide = med and (hi - lo) / abs(med) > 0.20
    text = f"{fmt.format(med)} [{fmt.format(lo)}-{fmt.format(hi)}]" + (" wide" if wide else "")
    return text, {"median": med, "min": lo, "max": hi, "n": len(values), "wide": bool(wide)}


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    out_path = sys.argv[2] if len(sys.argv) > 2 else ""
    runs = sorted({r["run"] for r in rows})
    by = {(r["server"], r["workload"], r["run"]): r for r in rows}
    present = [s for s in SERVERS if any(r["server"] == s for r in rows)]
    summary = {}
    print(f"{len(runs)} interleaved runs; median [min-max] over runs; ratios within each run")
    steal = [r["steal_pct"] for r in rows if "steal_pct" in r]
    if steal:
        noisy = sum(1 for v in steal if v > 5)
        print(f"CPU steal by the hypervisor during the measurements: median {statistics.median(steal):.1f}%, "
              f"max {max(steal):.1f}%; {noisy} of {len(steal)} measurements above 5% (their figures are unreliable)")
    print()
    head = f"{'workload':<22} {'server':<10} {'req/s':>26} {'vs tokio':>24} {'p99.9 µs':>28} {'p99.9 vs tokio':>24} {'cpu µs/req':>24} {'cpu vs raw':>22}"
    print(head)
    for w in WORKLOADS:
        for s in present:
            cells = [by.get((s, w, n)) for n in runs]
            ok = [c for c in cells if c and "failed" not in c]
            if not ok:
                if any(c and "failed" in c for c in cells):
                    print(f"{NAMES[w]:<22} {s:<10} FAILED in every run")
                continue
            failed = sum(1 for c in cells if c and "failed" in c)
            rps, _ = spread([c["requests_per_s"] for c in ok], "{:.0f}")
            vs, vs_j = spread([
                c["requests_per_s"] / t["requests_per_s"]
                for n, c in zip(runs, cells)
                if c and "failed" not in c
                for t in [by.get(("tokio", w, n))]
                if t and "failed" not in t
            ])
            p999, p999_j = spread([lat(c, "p999_us") for c in ok], "{:.0f}")
            p999_vs, p999_vs_j = spread([
                lat(c, "p999_us") / lat(t, "p999_us")
                for n, c in zip(runs, cells)
                if c and "failed" not in c
                for t in [by.get(("tokio", w, n))]
                if t and "failed" not in t and lat(t, "p999_us") and lat(c, "p999_us") is not None
            ])
            cpu, cpu_j = spread([c.get("server_cpu_us_per_req") for c in ok])
            cpu_raw, cpu_raw_j = spread([
                c["server_cpu_us_per_req"] / r["server_cpu_us_per_req"]
                for n, c in zip(runs, cells)
                if c and "failed" not in c and c.get("server_cpu_us_per_req")
                for r in [by.get(("raw", w, n))]
                if r and "failed" not in r and r.get("server_cpu_us_per_req")
            ])
            note = f"  ({failed} runs failed)" if failed else ""
            print(f"{NAMES[w]:<22} {s:<10} {rps:>26} {vs:>24} {p999:>28} {p999_vs:>24} {cpu:>24} {cpu_raw:>22}{note}")
            summary[f"{s}/{w}"] = {
                "req_per_s": spread([c["requests_per_s"] for c in ok])[1],
                "vs_tokio": vs_j,
                "p999_us": p999_j,
                "p999_vs_tokio": p999_vs_j,
                "cpu_us_per_req": cpu_j,
                "cpu_vs_raw": cpu_raw_j,
                "p999_at_or_below_tokio_in_runs": sum(
                    1
                    for n, c in zip(runs, cells)
                    if c and "failed" not in c
                    for t in [by.get(("tokio", w, n))]
                    if t and "failed" not in t and lat(c, "p999_us") <= lat(t, "p999_us")
                ),
                "runs": len(ok),
                "failed_runs": failed,
            }
        print()
    idle = {}
    for s in present:
        vals = [by[(s, "idle10k", n)]["bytes_per_conn"] for n in runs if (s, "idle10k", n) in by]
        if vals:
            text, j = spread(vals, "{:.0f}")
            idle[s] = j
            print(f"10,000 idle handshaken connections, {s}: {text} bytes of server RSS each")
    if "reactor/echo64_100x16" in summary:
        print("\nGoals (reactor):")
        for w, goal, what in [
            ("echo64_100x16", 1.3, "throughput >= 1.3x tokio"),
            ("echo16k_16x4", 1.3, "throughput >= 1.3x tokio"),
            ("echo64_20x4_alone", 1.0, "throughput >= tokio"),
            ("echo64_1x1", 1.0, "throughput >= tokio"),
        ]:
            v = summary.get(f"reactor/{w}", {}).get("vs_tokio")
            if v:
                print(f"  {NAMES[w]}: {what}: median {v['median']:.2f}x [{v['min']:.2f}-{v['max']:.2f}] -> {'met' if v['median'] >= goal else 'MISSED'}")
        for w in WORKLOADS:
            s = summary.get(f"reactor/{w}")
            if s and w != "echo64_20x4_compute":
                print(f"  {NAMES[w]}: p99.9 at or below tokio's in {s['p999_at_or_below_tokio_in_runs']} of {s['runs']} runs")
        v = summary.get("reactor/echo64_100x16", {}).get("cpu_vs_raw")
        if v:
            print(f"  CPU per 64 B ECHO vs raw echo (100 x 16): median {v['median']:.2f}x [{v['min']:.2f}-{v['max']:.2f}] -> {'met' if v['median'] <= 1.5 else 'MISSED'} (goal <= 1.5x)")
        if "reactor" in idle:
            print(f"  idle RSS per connection: median {idle['reactor']['median']:.0f} bytes -> {'met' if idle['reactor']['median'] <= 512 else 'MISSED'} (goal <= 512)")
    if out_path:
        json.dump({"runs": len(runs), "summary": summary, "idle": idle, "rows": rows}, open(out_path, "w"), indent=1)
        print(f"\nJSON: {out_path}")


if __name__ == "__main__":
    main()
