#!/usr/bin/env python3
"""Prints every failing test of a `cargo test --no-fail-fast` log, with its output: each test
binary prints its own failures as it finishes, so without this summary the first ones scroll
away behind the rest of the run.

usage: failures.py LOG
"""
import re
import sys


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = "?"
    blocks = []  # (binary, test, lines)
    current = None
    names = []
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"\s*Running (\S+)", line)
            if m:
                binary = m.group(1)
                current = None
                continue
            m = re.match(r"---- (.+) stdout ----$", line)
            if m:
                current = (binary, m.group(1), [])
                blocks.append(current)
                continue
            if current and (line == "failures:" or line.startswith("test result:")):
                current = None
                continue
            if current is not None:
                current[2].append(line)
            m = re.match(r"test (\S+) \.\.\. FAILED$", line)
            if m:
                names.append(f"{binary}: {m.group(1)}")
            if line.startswith("error:") and "target" in line and "failed" in line:
                names.append(line)
    print(f"\n== {len(blocks)} failing test(s)")
    for n in names:
        print(f"  {n}")
    for b, test, lines in blocks:
        print(f"\n---- {b}: {test}")
        # The panic message and what the test printed; long outputs keep their end.
        text = [l for l in lines if l.strip()]
        if len(text) > 80:
            text = text[:20] + [f"... ({len(text) - 60} lines) ..."] + text[-40:]
        print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
