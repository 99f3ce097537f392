#!/usr/bin/env python3
"""The protocol's registries, from spec/registry.json.

As a module (`import registry` with spec/ on the path): `load()` returns the registry, and the
helpers below give what generators and implementations need (`MESSAGE_CODES`, `ERROR_CODES`,
`CONNECTION_ERRORS`, ...), so no other file keeps its own copy of a code.

As a program: rewrites the registry tables of PROTOCOL.md (sections 2.4, 3.4, 4.1, 7.1) between
their `<!-- registry:NAME -->` and `<!-- /registry:NAME -->` markers from registry.json. CI runs
it and fails if PROTOCOL.md changed (the tables are generated, never edited by hand).
`--check` only reports whether they are up to date.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "registry.json")


def load(path=PATH):
    with open(path, encoding="utf-8") as f:
        reg = json.load(f)
    if reg.get("format") != "echowire-registry" or reg.get("format_version") != 1:
        raise ValueError(f"{path}: not an echowire registry of format version 1")
    return reg


REGISTRY = load()
MESSAGES = REGISTRY["messages"]
ERRORS = REGISTRY["errors"]
#: Spec name -> type code.
MESSAGE_CODES = {m["name"]: m["code"] for m in MESSAGES}
#: Type code -> spec name.
MESSAGE_NAMES = {m["code"]: m["name"] for m in MESSAGES}
#: Spec name -> error code.
ERROR_CODES = {e["name"]: e["code"] for e in ERRORS}
#: Error code -> spec name.
ERROR_NAMES = {e["code"]: e["name"] for e in ERRORS}
#: Names of the codes that are connection errors (scope C).
CONNECTION_ERRORS = {e["name"] for e in ERRORS if "connection" in e["scopes"]}
#: Request type name -> the name of the type that answers it.
ANSWERS = {m["name"]: m["answer"] for m in MESSAGES if m["answer"]}
#: Names of request types.
REQUESTS = [m["name"] for m in MESSAGES if m["kind"] == "request"]
#: Names of the types a client sends, and of those a server sends.
SENT_BY_CLIENT = {m["name"] for m in MESSAGES if m["sender"] in ("client", "either")}
SENT_BY_SERVER = {m["name"] for m in MESSAGES if m["sender"] in ("server", "either")}
#: Name -> the first version that defines it.
SINCE = {m["name"]: m["since"] for m in MESSAGES}
#: Names of the types with an archived (rkyv) form.
ARCHIVED = {m["name"] for m in MESSAGES if m["archived"]}
PREFACE = bytes.fromhex(REGISTRY["preface"])
VERSIONS = REGISTRY["versions"]
FLAGS = {f["name"]: 1 << f["bit"] for f in REGISTRY["flags"]}
CAPABILITIES = {c["name"]: 1 << c["bit"] for c in REGISTRY["capabilities"]}

SCOPE_LETTER = {"connection": "C", "request": "R", "goodbye": "G", "truncated": "D"}


def table(header, widths, rows):
    """A markdown table whose columns are at least `widths` wide."""
    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def messages_md(reg):
    rows = []
    ranges = {r["from"]: r for r in reg["message_ranges"]}
    rows.append([f"`0x00`", "(reserved)", "-", "-", "-", "-"])
    for m in reg["messages"]:
        kind = m["kind"]
        if m.get("responds_to_any_request"):
            kind = "response/" + kind
        rows.append([f"`0x{m['code']:02X}`", m["name"], m["sender"], kind, str(m["since"]),
                     m["section"]])
    for r in reg["message_ranges"]:
        if r["from"] == 0:
            continue
        rows.append([f"`0x{r['from']:02X}-0x{r['to']:02X}`", f"({r['use']})" if r["use"].startswith("reserved") else r["use"], "", "", "", ""])
    return table(["Code", "Name", "Sent by", "Kind", "Since", "Body (section)"],
                 [11, 14, 7, 10, 5, 16], rows)


def errors_md(reg):
    rows = []
    for e in reg["errors"]:
        scopes = ", ".join(SCOPE_LETTER[s] for s in e["scopes"])
        rows.append([f"`0x{e['code']:04X}`", e["name"], scopes, e["meaning"]])
    for r in reg["error_ranges"]:
        scopes = ", ".join(SCOPE_LETTER[s] for s in r.get("scopes", []))
        name = f"({r['use']})" if r["use"] == "reserved" else r["use"]
        rows.append([f"`0x{r['from']:04X}-0x{r['to']:04X}`", name, scopes, ""])
    return table(["Code", "Name", "Scope", "Meaning"], [8, 20, 5, 67], rows)


def bits_md(entries, hexwidth):
    rows = []
    for e in entries:
        rows.append([f"{e['bit']} (`0x{1 << e['bit']:0{hexwidth}X}`)", e["name"], e["meaning"]])
    return rows


def flags_md(reg):
    rows = bits_md(reg["flags"], 4)
    used = {f["bit"] for f in reg["flags"]}
    free = [b for b in range(16) if b not in used]
    if free:
        rows.append([f"{free[0]}-{free[-1]}", "-", "undefined"])
    return table(["Bit (value)", "Name", "Meaning"], [15, 4, 65], rows)


def capabilities_md(reg):
    return table(["Bit (value)", "Name", "Meaning"], [13, 4, 72],
                 bits_md(reg["capabilities"], 1))


TABLES = {"flags": flags_md, "capabilities": capabilities_md, "messages": messages_md,
          "errors": errors_md}


def render(text, reg):
    """PROTOCOL.md's text with every marked table regenerated."""
    for name, make in TABLES.items():
        pattern = re.compile(
            rf"(<!-- registry:{name} -->\n).*?(\n<!-- /registry:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"PROTOCOL.md has no <!-- registry:{name} --> markers")
        text = pattern.sub(lambda m: m.group(1) + make(reg) + m.group(2), text)
    return text


def main(argv):
    spec = os.path.join(HERE, "PROTOCOL.md")
    with open(spec, encoding="utf-8") as f:
        text = f.read()
    new = render(text, REGISTRY)
    if "--check" in argv:
        if new != text:
            print("PROTOCOL.md's registry tables differ from registry.json: run spec/registry.py")
            return 1
        return 0
    if new != text:
        with open(spec, "w", encoding="utf-8") as f:
            f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
