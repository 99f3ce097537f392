#!/usr/bin/env python3
"""Builds the fuzzers' seed corpora from the spec: every vector and every raw send of the
conformance cases. Run: python3 fuzz/make_seeds.py (writes fuzz/seeds/TARGET/)."""
import glob, hashlib, json, os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds")

def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

streams = []
for path in glob.glob(os.path.join(ROOT, "spec", "vectors", "*.json")):
    for v in json.load(open(path))["vectors"]:
        streams.append(bytes.fromhex(v["hex"]))
for path in glob.glob(os.path.join(ROOT, "spec", "conformance", "*.json")):
    for c in json.load(open(path))["cases"]:
        raw = b"".join(bytes.fromhex(s["send"]["hex"]) for s in c["steps"] if "send" in s and "hex" in s["send"])
        if raw:
            streams.append(raw)
for s in streams:
    if len(s) > 70000:
        continue
    put("decode_stream", b"\x10\x00\x07" + s)       # limit 4112, chunks of 8
    put("decode_stream", b"\xff\xff\x00" + s)       # large limit, bytewise
    put("session", b"\x01" + s)                      # after a valid preface + HELLO, one byte at a time
    put("session", b"\x7b" + s)                      # chunks of 16, half-close, drain
    put("session", b"\x00" + s)                      # the raw stream from the first byte
    if len(s) > 12:
        put("body_serde", s[12:])                    # the first frame's body
        put("rkyv_access", s[12:])
    put("roundtrip", s)
print({t: len(os.listdir(os.path.join(OUT, t))) for t in os.listdir(OUT)})
