#!/usr/bin/env python3
"""Generates spec/conformance/COVERAGE.md: every MUST/SHOULD sentence of spec/PROTOCOL.md, the
cases that test it, and the sentences no case tests.

A requirement is a sentence containing MUST, MUST NOT, SHOULD or SHOULD NOT (RFC 2119 capitals),
outside Section 1.1 and the appendices. Its ID is its section and its ordinal within the section
(`3.8/2`). A case covers it when both hold:
  1. the case is filed under the sentence's section or a subsection of it, or its description
     cites that section (e.g. "(3.5, 3.8)");
  2. the case names one of the sentence's key terms: a message type, an error code or a field
     name in backquotes. A sentence without key terms needs only condition 1.
The mapping is mechanical, so it can be regenerated on every change and cannot drift; it can
over-report (a case in the right section naming the right code may test a neighbouring
sentence), never invent a section's coverage. Sentences about the client's behaviour (Section 9,
or whose subject is "a client") are listed apart: a server suite cannot observe them.

Usage: python3 spec/conformance/coverage.py   (writes COVERAGE.md beside this script)
"""

import glob
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "..", "PROTOCOL.md")
KEYWORD = re.compile(r"\b(MUST NOT|MUST|SHOULD NOT|SHOULD)\b")
HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.\s")


def requirements():
    """(section, text) for every requirement sentence, in document order."""
    return [(sec, t) for sec, t in sentences() if KEYWORD.search(t)]


def sentences():
    """(section, text) for every sentence of the numbered sections (not 1.x, not the appendices),
    in document order. The runner splits the same way (conformance/src/spec.rs)."""
    out = []
    section = None
    para = []

    def flush():
        if section is None or section.startswith("1.") or section == "1":
            para.clear()
            return
        text = " ".join(line.strip() for line in para)
        para.clear()
        # Table rows: each row is its own statement.
        for piece in re.split(r"(?<=[.;:])\s+(?=[A-Z*`(\d])|\s\|\s", text):
            piece = piece.strip(" |-")
            if piece:
                out.append((section, piece))

    for line in open(SPEC, encoding="utf-8"):
        if line.startswith("## Appendix"):
            flush()
            section = None
            continue
        m = HEADING.match(line)
        if m:
            flush()
            section = m.group(1)
            continue
        if line.strip() == "" or line.lstrip().startswith(("- ", "* ")) or re.match(r"\s*\d+\.\s", line) \
                or line.startswith("|"):
            flush()
        if line.strip():
            para.append(line)
    flush()
    return out


TERM = re.compile(r"\b([A-Z][A-Z0-9_]{2,})\b|`([a-z_]+)`")
NOT_TERMS = {"MUST", "SHOULD", "NOT", "MAY", "REQUIRED", "SHALL", "OPTIONAL", "RECOMMENDED", "RFC"}

# Requirements no byte on the wire can show, with the reason; matched by a distinctive fragment.
NOT_OBSERVABLE = {
    "16-aligned address": "where a receiver keeps a body in its own memory",
    "buffer for one connection therefore never needs": "how much a receiver buffers internally "
    "(the bound's visible effect, backpressure, is tested in 8.4)",
    "map encoding is not canonical": "no message of the protocol contains a map",
    "restrictive permissions": "file-system state of a Unix socket, outside the byte stream",
}


def terms(text):
    found = set()
    for a, b in TERM.findall(text):
        if a and a not in NOT_TERMS:
            found.add(a)
        elif b:
            found.add(b)
    return found


def is_client_requirement(section, text):
    return section.startswith("9") or re.search(r"\b[Aa] client (MUST|SHOULD)|\bthe client (MUST|SHOULD)", text)


def load_cases():
    cases = []
    # Server cases, and the client cases (client/), where the runner plays the server.
    for path in sorted(glob.glob(os.path.join(HERE, "*.json")) + glob.glob(os.path.join(HERE, "client", "*.json"))):
        doc = json.load(open(path, encoding="utf-8"))
        for c in doc["cases"]:
            blob = json.dumps(c["steps"]) + " " + c["title"] + " " + c["description"]
            cited = set(re.findall(r"\b(\d+(?:\.\d+)*)\b", c["description"])) | {c["section"]}
            cases.append((c["id"], c["section"], cited, blob))
    return cases


def in_section(cited, section):
    return any(s == section or s.startswith(section + ".") for s in cited)


def in_parent(cited, section):
    """A case filed under an enclosing section (6.9 for a sentence of 6.9.1)."""
    return any(section.startswith(s + ".") for s in cited)


def load_mutants():
    """(kind, name, sections, bug, killer or None, quote or None) of every mutant of the Python
    implementations: the server's (mutants.py) and the client's (client_mutants.py), each killed
    by the case named beside it (the tests assert it), and the server's combination mutants
    (fuzz_mutants.py), each found by the fuzzer (the tests hunt them) and citing its sentence."""
    import subprocess
    import sys
    impls = os.path.join(HERE, "..", "..", "impls", "python")
    out = []
    for script, kind in (("mutants.py", "server"), ("client_mutants.py", "client"), ("fuzz_mutants.py", "fuzz")):
        listed = subprocess.run([sys.executable, os.path.join(impls, script), "--list"],
                                capture_output=True, check=True, text=True).stdout
        for m in json.loads(listed):
            sections = m.get("sections") or [m["section"]]
            out.append((kind, m["name"], sections, m["bug"], m.get("killer"), m.get("spec")))
    return out


def squash(text):
    return re.sub(r"[`*]", "", re.sub(r"\s+", " ", text)).strip().lower()


def mutants_for(section, text, hits, mutants):
    """The mutants that verify one requirement sentence: a mutant whose cited sentence it is
    (fuzz mutants quote theirs), or a mutant of its section whose bug names one of the sentence's
    key terms and whose killer case is among the sentence's cases."""
    keys = terms(text)
    found = []
    for kind, name, sections, bug, killer, quote in mutants:
        if quote:
            # A mutant that names its sentence is credited with that sentence only.
            if squash(quote)[:60] in squash(text) or squash(text)[:60] in squash(quote):
                if kind == "fuzz":
                    found.append(f"{name} (fuzzer)")
                elif killer and killer in hits:
                    found.append(f"{name} ({killer})")
            continue
        if not in_section(sections, section) and not in_parent(sections, section):
            continue
        named = not keys or any(k in bug or k.lower() in bug.lower() for k in keys)
        if not named:
            continue
        if killer and killer in hits:
            found.append(f"{name} ({killer})")
        elif kind == "fuzz" and not quote:
            found.append(f"{name} (fuzzer)")
    return found


def main():
    reqs = requirements()
    cases = load_cases()
    mutants = load_mutants()
    rows, uncovered, client, unobservable = [], [], [], []
    counter = {}
    for section, text in reqs:
        counter[section] = counter.get(section, 0) + 1
        rid = f"{section}/{counter[section]}"
        keys = terms(text)
        hits = [cid for cid, _sec, cited, blob in cases
                if (in_section(cited, section) and (not keys or any(k in blob for k in keys)))
                or (in_parent(cited, section) and keys and any(k in blob for k in keys))]
        short = text if len(text) <= 160 else text[:157] + "..."
        short = short.replace("|", "\\|")
        why = next((w for frag, w in NOT_OBSERVABLE.items() if frag in text), None)
        if why and not hits:
            unobservable.append((rid, short, why))
            continue
        if is_client_requirement(section, text) and not hits:
            client.append((rid, short))
            continue
        rows.append((rid, short, hits, mutants_for(section, text, hits, mutants)))
        if not hits:
            uncovered.append((rid, short))
    unverified = [(rid, t) for rid, t, hits, muts in rows if hits and not muts]
    out = ["# Coverage of the spec's requirements by the conformance cases", "",
           "Generated by `coverage.py` from `spec/PROTOCOL.md`, the case files and the mutants' lists; do not",
           "edit. How a case is matched to a sentence is described in `coverage.py` (section plus a shared key",
           "term): that says a case is *about* the sentence, not that it would fail a server that breaks it.",
           "The proof is a mutant: an implementation in this repository with one bug, killed by the case named",
           "beside it (`impls/python/mutants.py`, `client_mutants.py`; the tests assert every kill) or found by",
           "the fuzzer (`impls/python/fuzz_mutants.py`, each citing its sentence; `cargo test` hunts the 12 quickest,",
           "`ECHOWIRE_FUZZ_ALL_MUTANTS=1` all). A mutant of a section is matched to the sentences of that section",
           "whose key terms its bug names and whose cases include its killer, so it can stand beside neighbouring",
           "sentences of the same rule; the Rust mutants of the tests carry no section and are not listed. A sentence whose cases no",
           "killed mutant proves is listed as **unverified**: its cases may well catch a broken server, but",
           "nothing in the repository shows it.", "",
           f"- Requirement sentences (MUST, MUST NOT, SHOULD, SHOULD NOT): **{len(reqs)}**",
           f"- Tested by at least one case: **{len(rows) - len(uncovered)}**",
           f"- Not tested (observable from a server, no case yet): **{len(uncovered)}**",
           f"- The client's requirements (not observable by a server suite): **{len(client)}**",
           f"- Not observable on the wire at all: **{len(unobservable)}**",
           f"- Tested and verified by at least one killed mutant: **{len(rows) - len(uncovered) - len(unverified)}**",
           f"- Tested but unverified (no killed mutant breaks the sentence): **{len(unverified)}**", ""]
    out += ["## Not tested", ""]
    if uncovered:
        out += ["| ID | Requirement |", "|---|---|"] + [f"| {rid} | {t} |" for rid, t in uncovered]
    else:
        out.append("None.")
    out += ["", "## Unverified: tested, but no killed mutant breaks the sentence", ""]
    if unverified:
        out += ["| ID | Requirement |", "|---|---|"] + [f"| {rid} | {t} |" for rid, t in unverified]
    else:
        out.append("None.")
    out += ["", "## Not observable on the wire", "", "| ID | Requirement | Why |", "|---|---|---|"]
    out += [f"| {rid} | {t} | {w} |" for rid, t, w in unobservable]
    out += ["", "## The client's requirements", "", "| ID | Requirement |", "|---|---|"]
    out += [f"| {rid} | {t} |" for rid, t in client]
    out += ["", "## Every requirement, its cases and the mutants that prove them", "",
            "| ID | Requirement | Cases | Mutants (killed by) |", "|---|---|---|---|"]
    for rid, t, hits, muts in rows:
        shown = ", ".join(hits[:8]) + (f" and {len(hits) - 8} more" if len(hits) > 8 else "")
        proven = ", ".join(muts[:4]) + (f" and {len(muts) - 4} more" if len(muts) > 4 else "")
        out.append(f"| {rid} | {t} | {shown or '**none**'} | {proven or '**unverified**'} |")
    open(os.path.join(HERE, "COVERAGE.md"), "w", encoding="utf-8").write("\n".join(out) + "\n")
    print(f"{len(reqs)} requirements: {len(rows) - len(uncovered)} tested, {len(uncovered)} not, "
          f"{len(client)} the client's, {len(unobservable)} not observable on the wire; "
          f"{len(unverified)} tested but verified by no killed mutant")


if __name__ == "__main__":
    main()
