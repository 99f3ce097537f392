#!/usr/bin/env python3
"""Checks a JSON report of echowire-conformance for CI's exhaustive step: every target reachable
and alive, every case passed (a case that passed only on a re-run is printed as flaky), and no
case skipped except those whose skip reason contains one of the --allow-skip words.

usage: check-report.py REPORT.json [--allow-skip WORD ...]
"""
import json
import sys


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    path, allow = args[0], []
    rest = args[1:]
    while rest:
        if rest[0] != "--allow-skip" or len(rest) < 2:
            print(__doc__, file=sys.stderr)
            return 2
        allow.append(rest[1])
        rest = rest[2:]
    with open(path) as f:
        report = json.load(f)
    bad = []
    for t in report["targets"]:
        for key in ("error", "warning", "died_after"):
            if t.get(key):
                bad.append(f"{t['name']}: {key}: {t[key]}")
    flaky = 0
    counted = 0
    for case in report["cases"]:
        for target, r in case["results"].items():
            counted += 1
            outcome = r["outcome"]
            retried = r.get("retried")
            if outcome == "pass":
                if retried:
                    flaky += 1
                    print(f"flaky: {target}: {case['id']}: {retried['first_failure']}")
                continue
            reason = r.get("reason", "")
            if outcome == "skipped" and any(w in reason for w in allow):
                continue
            first = (r.get("failures") or [{}])[0].get("failure") or {}
            bad.append(f"{target}: {case['id']}: {outcome} {reason} {first}")
    if counted == 0:
        bad.append("the report holds no result")
    print(f"{path}: {counted} results, {flaky} flaky, {len(bad)} problem(s)")
    for b in bad:
        print(f"  {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
