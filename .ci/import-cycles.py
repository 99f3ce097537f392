#!/usr/bin/env python3
"""Fails if a crate's top-level modules import each other in a circle.

usage: import-cycles.py CRATE_DIR...   (each a crate root: its src/ is read)

A module depends on another when its code (comments aside) names `crate::other`. The test code
of a module counts too: a circle through a test is a circle a reader has to follow.
"""
import os
import re
import sys


def graph(root):
    src = os.path.join(root, "src")
    deps = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[0] == "bin":
                continue
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            top = parts[0] if parts else "crate"
            with open(path, encoding="utf-8") as fh:
                code = "\n".join(l for l in fh if not l.strip().startswith("//"))
            names = {m.group(1) for m in re.finditer(r"crate::([a-z_]+)", code)}
            deps.setdefault(top, set()).update(n for n in names if n != top)
    return {k: {d for d in v if d in deps} for k, v in deps.items()}


def cycles(g):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main():
    bad = 0
    for root in sys.argv[1:]:
        found = cycles(graph(root))
        print(f"{root}: {len(graph(root))} modules, {len(found)} import circle(s)")
        for c in found:
            print("  circle:", " <-> ".join(c))
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
