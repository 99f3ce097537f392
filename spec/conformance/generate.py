#!/usr/bin/env python3
"""Generates the Echowire conformance cases (spec/conformance/*.json) from compact definitions.

The cases are data: any runner in any language can execute them. Expected digests and encodings
are computed here with Python's hashlib/struct, independently of any Echowire implementation.
Case IDs start with the spec section they test and are written out literally below: they never
depend on a case's position, so adding or excluding cases renumbers nothing.
Run: python3 spec/conformance/generate.py
"""
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PREFACE = "89455752" "0d0a1a0a"

def u32(v): return struct.pack(">I", v).hex()
def digest(cost, seed):
    h = hashlib.sha256(seed).digest()
    for _ in range(cost - 1):
        h = hashlib.sha256(h).digest()
    return h.hex()

# ---- step builders ------------------------------------------------------------------------------
def hs(min_v=1, max_v=None, max_frame=16 << 20, caps=0, expect_version=None):
    """Preface + HELLO, then expect WELCOME (optionally with a given version)."""
    if max_v is None:
        max_v = min_v
    step = {"handshake": {"min_version": min_v, "max_version": max_v, "max_frame_size": max_frame, "capabilities": caps}}
    if expect_version is not None:
        step["handshake"]["expect_version"] = expect_version
    return step
def raw(hexstr): return {"send": {"hex": hexstr}}
def fill(byte, n): return {"send": {"fill": {"byte": byte, "len": n}}}
def preface(): return raw(PREFACE)
def frame(type_, id_=0, body=None, version=None, flags=0, body_hex=None, length=None):
    f = {"type": type_, "request_id": id_, "flags": flags}
    if version is not None: f["version"] = version
    if body is not None: f["body"] = body
    if body_hex is not None: f["body_hex"] = body_hex
    if length is not None: f["length"] = length
    return {"send": {"frame": f}}
def bstr(b):
    """A byte string in a body: hex, or {"$fill": byte, "len": n} when it is one byte repeated and long."""
    if len(b) > 64 and b == bytes([b[0]]) * len(b):
        return {"$fill": b[0], "len": len(b)}
    return b.hex()
def echo(id_, payload=b"", **kw): return frame("ECHO", id_, {"payload": bstr(payload)}, **kw)
def ping(id_, data=0, **kw): return frame("PING", id_, {"data": data}, **kw)
def compute(id_, cost, seed=b"seed", **kw): return frame("COMPUTE", id_, {"cost": cost, "seed": seed.hex()}, **kw)
def cancel(id_, **kw): return frame("CANCEL", id_, {}, **kw)
def goodbye(code="NO_ERROR", **kw): return frame("GOODBYE", 0, {"code": code, "message": ""}, **kw)
def sum_(id_, values, **kw): return frame("SUM", id_, {"values": values}, **kw)

def exp(type_=None, id_=None, **body):
    p = {}
    if type_ is not None: p["type"] = type_
    if id_ is not None: p["request_id"] = id_
    if body: p["body"] = body
    return {"expect": {"frame": p}}
def err(code, id_=None): return exp("ERROR", id_, code=code)
def pong(id_, data=0): return exp("PONG", id_, data=data)
def reply(id_, payload=b""): return exp("ECHO_REPLY", id_, payload=bstr(payload))
def result(id_, cost, seed=b"seed"): return exp("COMPUTE_RESULT", id_, digest=digest(cost, seed))
def closed(how="clean"): return {"expect": {"closed": how}}
def nothing(ms=300): return {"expect": {"nothing": {"ms": ms}}}
def unordered(*pats): return {"expect": {"unordered": [p["expect"]["frame"] for p in pats]}}
def one_of(*pats): return {"expect": {"one_of": [p["expect"]["frame"] for p in pats]}}
def half_close(): return {"half_close": True}
def pause(ms): return {"pause": {"ms": ms}}
def still_alive(id_=0xABCD): return [ping(id_, 77), pong(id_, 77)]

CASES = {}
def case(file, id_, level, title, description, steps, requires=(), timing=False, coalesce=True):
    assert id_ not in [c["id"] for f in CASES.values() for c in f], id_
    c = {"id": id_, "section": id_.split("-")[0], "level": level, "title": title,
         "description": description, "steps": steps}
    if requires: c["requires"] = list(requires)
    if timing: c["timing_sensitive"] = True
    if not coalesce: c["coalesce"] = False
    CASES.setdefault(file, []).append(c)

GOODBYE_CLOSE = [exp("GOODBYE", 0, code="NO_ERROR"), closed()]

# ---- 3.1 preface ----------------------------------------------------------------------------------
F = "3.1-preface.json"
case(F, "3.1-valid-preface", "MUST", "The preface followed by HELLO opens the connection",
     "A client that sends the 8-byte preface and a HELLO receives WELCOME (3.1, 3.2).", [hs(1)] + still_alive())
for cid, title, data in [
    ("3.1-http-get", "An HTTP GET as the first bytes", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("3.1-http-post", "An HTTP POST with a body as the first bytes", b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
    ("3.1-tls-client-hello", "A TLS ClientHello as the first bytes", bytes.fromhex("16030100c8010000c40303") + bytes(32)),
    ("3.1-ssh-banner", "An SSH banner as the first bytes", b"SSH-2.0-OpenSSH_9.6\r\n"),
    ("3.1-zeros", "Zero bytes as the first bytes", bytes(16)),
    ("3.1-last-byte-wrong", "A preface whose 8th byte is wrong", bytes.fromhex(PREFACE[:14] + "00")),
    ("3.1-crlf-mangled", "A preface mangled by text-mode CRLF conversion", bytes.fromhex("89455752") + b"\r\r\n\x1a\r\n"),
    ("3.1-frame-without-preface", "A HELLO frame without the preface", bytes.fromhex("0000001c01010000000000000101001000000000000000000000")),
]:
    case(F, cid, "MUST", title + " is refused with BAD_PREFACE",
         "The server compares the preface octet by octet and at the first difference sends ERROR BAD_PREFACE "
         "(ID 0) and closes; the close is lingering, so the ERROR arrives before a clean end of stream (3.1, 3.10).",
         [raw(data.hex()), err("BAD_PREFACE", 0), closed()])
case(F, "3.1-garbage-then-more-input", "MUST", "BAD_PREFACE survives unread input (lingering close, not RST)",
     "After garbage the client keeps sending 64 KiB the server never reads. A server that closes with unread input "
     "sends RST and can destroy its own ERROR; the spec requires a lingering close: ERROR then a clean EOF (3.10).",
     [raw("00" * 8), fill(0xAB, 65536), err("BAD_PREFACE", 0), closed("clean")])
case(F, "3.1-preface-then-eof", "MUST", "A client that half-closes after the preface is closed without a reply",
     "EOF in the handshake state: nothing to answer (3.5).", [preface(), half_close(), closed("any")])
case(F, "3.1-empty-connection", "MUST", "A client that connects and half-closes at once is closed",
     "EOF before the preface (3.5).", [half_close(), closed("any")])

# ---- 3.2 handshake ----------------------------------------------------------------------------------
F = "3.2-handshake.json"
for cid, step, title in [
    ("3.2-echo-before-hello", echo(1, b"x", version=1), "ECHO before HELLO"),
    ("3.2-ping-before-hello", ping(1, version=1), "PING before HELLO"),
    ("3.2-goodbye-before-hello", goodbye(version=1), "GOODBYE before HELLO"),
    ("3.2-unknown-type-before-hello", frame("0x7F", 1, body_hex="", version=1), "a reserved type before HELLO"),
]:
    case(F, cid, "MUST", title + " is HANDSHAKE_REQUIRED",
         "The first frame MUST be HELLO; anything else is the connection error HANDSHAKE_REQUIRED (3.2).",
         [preface(), step, err("HANDSHAKE_REQUIRED", 0), closed()])
case(F, "3.2-hello-header-version-2", "MUST", "HELLO written with header version 2 is VERSION_MISMATCH",
     "Handshake frames are written in version 1 (3.2, 5.4).",
     [preface(), frame("HELLO", 0, {"min_version": 1, "max_version": 2, "max_frame_size": 1 << 20, "capabilities": 0, "agent": ""}, version=2),
      err("VERSION_MISMATCH", 0), closed()])
case(F, "3.2-hello-short-body", "MUST", "A HELLO cut short is MALFORMED_BODY and closes",
     "A HELLO that fails the receiver rules is a connection error with that rule's code (3.2).",
     [preface(), frame("HELLO", 0, body_hex="0102", version=1), err("MALFORMED_BODY", 0), closed()])
case(F, "3.2-hello-trailing-bytes", "MUST", "A HELLO with trailing bytes is TRAILING_BYTES and closes", "(3.2, 5.4)",
     [preface(), frame("HELLO", 0, body_hex="0101" + u32(1 << 20) + u32(0) + u32(0) + "ff", version=1), err("TRAILING_BYTES", 0), closed()])
case(F, "3.2-hello-invalid-utf8", "MUST", "A HELLO whose agent is not UTF-8 is INVALID_UTF8 and closes", "(3.2, 6.3)",
     [preface(), frame("HELLO", 0, body_hex="0101" + u32(1 << 20) + u32(0) + u32(2) + "c328", version=1), err("INVALID_UTF8", 0), closed()])
case(F, "3.2-hello-nonzero-id", "MUST", "A HELLO with request ID 1 is refused", "HELLO carries ID 0 (2.5); during the handshake every error is fatal (3.2).",
     [preface(), frame("HELLO", 1, {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0, "agent": ""}, version=1),
      err("INVALID_REQUEST_ID", 0), closed()])
case(F, "3.2-hello-undefined-flag", "MUST", "A HELLO with an undefined flag is refused", "(2.4, 3.2)",
     [preface(), frame("HELLO", 0, {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0, "agent": ""}, version=1, flags=4),
      err("INVALID_FLAGS", 0), closed()])
case(F, "3.2-second-hello", "MUST", "A second HELLO is PROTOCOL_ERROR", "A HELLO after the handshake is a connection error (3.2).",
     [hs(1), frame("HELLO", 0, {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0, "agent": ""}),
      err("PROTOCOL_ERROR", 0), closed()])
case(F, "3.2-welcome-fields", "MUST", "WELCOME is well-formed",
     "WELCOME has request ID 0, header version 1, max_frame_size in 4096..=16 MiB and max_outstanding >= 1 (4.3).",
     [{"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0,
                     "expect": {"version": 1, "request_id": 0, "body": {"version": 1, "max_frame_size": {"$ge": 4096, "$le": 16 << 20}, "max_outstanding": {"$ge": 1}}}}}])
case(F, "3.2-pipelined-after-hello", "MUST", "Requests sent right after HELLO, before WELCOME, are served",
     "A client offering a single version may pipeline requests after HELLO (3.2).",
     [{"send": {"hex": PREFACE}}, frame("HELLO", 0, {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0, "agent": "x"}, version=1),
      echo(1, b"early", version=1), ping(2, 5, version=1), exp("WELCOME", 0), reply(1, b"early"), pong(2, 5)])
case(F, "3.2-hello-max-frame-too-small", "MUST", "HELLO with max_frame_size 100 is PROTOCOL_ERROR", "Limits below 4096 are invalid (3.4).",
     [preface(), frame("HELLO", 0, {"min_version": 1, "max_version": 1, "max_frame_size": 100, "capabilities": 0, "agent": ""}, version=1),
      err("PROTOCOL_ERROR", 0), closed()])
case(F, "3.2-hello-max-frame-huge", "MUST", "HELLO with max_frame_size 2^32-1 is accepted (treated as 16 MiB)", "(3.4)",
     [hs(1, max_frame=0xFFFFFFFF)] + still_alive())
case(F, "3.2-capabilities-subset", "MUST", "WELCOME accepts only a subset of the offered capabilities",
     "Undefined capability bits are never echoed (3.4).",
     [{"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0xFFFFFFFF,
                     "expect": {"body": {"capabilities": {"$bits_within": 1}}}}}])
case(F, "3.2-capabilities-none-offered", "MUST", "With no capability offered, none is accepted", "(3.4)",
     [{"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 1 << 20, "capabilities": 0,
                     "expect": {"body": {"capabilities": 0}}}}])

# ---- 3.3 versions ----------------------------------------------------------------------------------
F = "3.3-versions.json"
case(F, "3.3-offer-v1", "MUST", "A client offering only version 1 gets version 1", "(3.3)", [hs(1, 1, expect_version=1)] + still_alive())
case(F, "3.3-offer-v1-v2", "MUST", "A client offering 1..=2 gets version 2 from a v2 server", "The highest common version (3.3).",
     [hs(1, 2, expect_version=2)], requires=["v2"])
case(F, "3.3-offer-v2", "MUST", "A client offering only version 2 gets version 2", "(3.3)", [hs(2, 2, expect_version=2)], requires=["v2"])
case(F, "3.3-welcome-within-offer", "MUST", "The chosen version lies in the offered range, or the handshake fails",
     "A client offering only version 2 gets WELCOME with version 2, or UNSUPPORTED_VERSION from a server without it; "
     "never a version it did not offer (3.3). Both outcomes are legal, so both are accepted.",
     [preface(), frame("HELLO", 0, {"min_version": 2, "max_version": 2, "max_frame_size": 1 << 20, "capabilities": 0, "agent": ""}, version=1),
      one_of(exp("WELCOME", 0, version=2), err("UNSUPPORTED_VERSION", 0))])
case(F, "3.3-offer-0-1", "MUST", "Offering 0..=1 gives version 1", "Version 0 is never valid (5.1); 1 is common (3.3).", [hs(0, 1, expect_version=1)])
case(F, "3.3-offer-1-255", "MUST", "Offering 1..=255 gives the server's highest version", "(3.3)",
     [{"handshake": {"min_version": 1, "max_version": 255, "max_frame_size": 1 << 20, "capabilities": 0, "expect": {"body": {"version": {"$ge": 1}}}}}] + still_alive())
case(F, "3.3-offer-1-255-v2", "MUST", "Offering 1..=255 gives version 2 from a v2 server", "(3.3)", [hs(1, 255, expect_version=2)], requires=["v2"])
for cid, lo, hi, title in [("3.3-offer-3-9", 3, 9, "versions 3..=9 only"), ("3.3-empty-range", 2, 1, "an empty range (2..=1)"),
                           ("3.3-offer-0-0", 0, 0, "version 0 only"), ("3.3-offer-200-255", 200, 255, "versions 200..=255")]:
    case(F, cid, "MUST", f"Offering {title} is UNSUPPORTED_VERSION",
         "No version in common: ERROR UNSUPPORTED_VERSION and close (3.3).",
         [preface(), frame("HELLO", 0, {"min_version": lo, "max_version": hi, "max_frame_size": 1 << 20, "capabilities": 0, "agent": ""}, version=1),
          err("UNSUPPORTED_VERSION", 0), closed()])
case(F, "3.3-welcome-written-in-v1", "MUST", "WELCOME is written with header version 1 even when 2 is negotiated", "(3.2)",
     [{"handshake": {"min_version": 2, "max_version": 2, "max_frame_size": 1 << 20, "capabilities": 0, "expect": {"version": 1, "body": {"version": 2}}}}],
     requires=["v2"])
for v in (1, 2):
    case(F, f"3.3-responses-in-v{v}", "MUST", f"After negotiating version {v}, responses are written in version {v}", "(5.3)",
         [hs(v), ping(1, 9), {"expect": {"frame": {"type": "PONG", "request_id": 1, "version": v}}}], requires=["v2"] if v == 2 else [])

# ---- 2.2 framing ----------------------------------------------------------------------------------
F = "2.2-framing.json"
for n in (0, 1, 7):
    case(F, f"2.2-length-{n}", "MUST", f"Length {n} is FRAME_TOO_SHORT", "Length counts the 8-byte header and the body (2.2).",
         [hs(1), raw(u32(n) + "00" * 8), err("FRAME_TOO_SHORT", 0), closed()])
case(F, "2.2-length-8-cancel", "MUST", "Length 8 (empty body) is a valid frame", "A CANCEL has an empty body; for an unknown ID it is ignored (2.2, 3.7).",
     [hs(1), cancel(5), nothing(200)] + still_alive())
case(F, "2.2-length-8-ping", "MUST", "A PING with Length 8 (no body) is MALFORMED_BODY, connection survives", "(2.7, 6.1)",
     [hs(1), frame("PING", 3, body_hex=""), err("MALFORMED_BODY", 3)] + still_alive())
case(F, "2.2-length-at-limit", "MUST", "A frame whose Length equals the server's limit is accepted",
     "An ECHO of exactly max_frame_size (2.2, 3.4). Timing-sensitive: written one byte at a time, a 1 MiB frame can "
     "outlast an idle timeout, which partial frames rightly do not reset (8.3).",
     [hs(1), {"send": {"echo_fill": {"request_id": 1, "length": "limit"}}},
      {"expect": {"frame": {"type": "ECHO_REPLY", "request_id": 1, "length": "limit"}}}], timing=True)
case(F, "2.2-length-limit-plus-1", "MUST", "Length limit+1 is FRAME_TOO_LARGE",
     "Checked as soon as the length prefix is complete (2.2).",
     [hs(1), {"send": {"length_prefix": "limit+1"}}, raw("01050000000000010000"), err("FRAME_TOO_LARGE", 0), closed()])
case(F, "2.2-prefix-only-too-large", "MUST", "A too-large length is rejected from the 4 prefix bytes alone",
     "The receiver MUST NOT wait for the claimed bytes (2.2, 8.2).",
     [hs(1), {"send": {"length_prefix": "limit+1"}}, err("FRAME_TOO_LARGE", 0), closed("any")])
for cid, val, title in [("2.2-length-2pow32-1", 0xFFFFFFFF, "2^32-1"), ("2.2-length-2pow31", 0x80000000, "2^31"),
                        ("2.2-length-16mib-plus-1", (16 << 20) + 1, "16 MiB + 1")]:
    case(F, cid, "MUST", f"Length {title} is FRAME_TOO_LARGE", "Above every permitted limit; nothing may be allocated for it (2.2, 8.2).",
         [hs(1), raw(u32(val)), err("FRAME_TOO_LARGE", 0), closed("any")])
case(F, "2.2-too-large-with-unread-input", "MUST", "FRAME_TOO_LARGE then a clean close despite unread input",
     "Lingering close (3.10).", [hs(1), raw(u32(0xFFFFFFFF)), fill(0xEE, 30000), err("FRAME_TOO_LARGE", 0), closed("clean")])
for n, title in [(0, "an empty payload"), (1, "a 1-byte payload"), (256, "all 256 byte values"), (65536, "a 64 KiB payload")]:
    payload = bytes(range(256)) if n == 256 else bytes([0x61] * n)
    case(F, f"2.2-echo-{n}", "MUST", f"ECHO of {title}", "(4.5)", [hs(1), echo(1, payload), reply(1, payload)])
case(F, "2.2-two-frames-one-write", "MUST", "Two frames in one write are both answered", "TCP has no message boundaries (2.1).",
     [hs(1), ping(1, 1), ping(2, 2), pong(1, 1), pong(2, 2)])
case(F, "2.2-many-small-frames", "MUST", "Fifty small frames in one burst are all answered in order", "(2.1, 3.6)",
     [hs(1)] + [ping(i, i) for i in range(1, 51)] + [pong(i, i) for i in range(1, 51)])

# ---- 2.4 flags ----------------------------------------------------------------------------------
F = "2.4-flags.json"
for cid, flags, step_fn, title in [
    ("2.4-echo-bit-1", 0x0002, lambda f: echo(4, b"x", flags=f), "ECHO with flag bit 1"),
    ("2.4-ping-bit-15", 0x8000, lambda f: ping(4, flags=f), "PING with flag bit 15"),
    ("2.4-compute-all-bits", 0xFFFE, lambda f: compute(4, 1, flags=f), "COMPUTE with every undefined bit"),
    ("2.4-sum-bit-8", 0x0100, lambda f: sum_(4, [1], flags=f), "SUM with flag bit 8"),
]:
    case(F, cid, "MUST", title + " is INVALID_FLAGS, connection survives",
         "Undefined bits MUST be zero; the frame is rejected with its request ID (2.4, 5.4).",
         [hs(1), step_fn(flags), err("INVALID_FLAGS", 4)] + still_alive())
case(F, "2.4-rkyv-on-echo", "MUST", "RKYV on ECHO (no rkyv form) is INVALID_FLAGS", "(2.4)",
     [hs(2, caps=1), echo(4, b"x", flags=1), err("INVALID_FLAGS", 4)] + still_alive(), requires=["v2", "rkyv"])
case(F, "2.4-rkyv-not-negotiated", "MUST", "RKYV on SUM without the capability is INVALID_FLAGS", "(2.4, 3.4)",
     [hs(1, caps=0), frame("SUM", 4, body_hex="0100000000000000f8ffffff01000000", flags=1), err("INVALID_FLAGS", 4)] + still_alive())

# ---- 2.5 request IDs ----------------------------------------------------------------------------------
F = "2.5-request-ids.json"
for cid, step, title in [("2.5-echo-id-0", echo(0, b"x"), "ECHO"), ("2.5-ping-id-0", ping(0), "PING"),
                         ("2.5-compute-id-0", compute(0, 1), "COMPUTE"), ("2.5-cancel-id-0", cancel(0), "CANCEL")]:
    case(F, cid, "MUST", f"{title} with request ID 0 is INVALID_REQUEST_ID", "Requests and CANCEL carry a non-zero ID; the error is sent with ID 0 and the connection survives (2.5).",
         [hs(1), step, err("INVALID_REQUEST_ID", 0)] + still_alive())
case(F, "2.5-goodbye-nonzero-id", "MUST", "GOODBYE with request ID 5 is INVALID_REQUEST_ID", "(2.5)",
     [hs(1), frame("GOODBYE", 5, {"code": "NO_ERROR", "message": ""}), err("INVALID_REQUEST_ID", 0)] + still_alive())
case(F, "2.5-max-id", "MUST", "Request ID 2^32-1 is valid", "(2.5)", [hs(1), ping(0xFFFFFFFF, 1), pong(0xFFFFFFFF, 1)])
case(F, "2.5-ids-not-monotonic", "MUST", "IDs need not increase", "(2.5)", [hs(1), ping(9, 1), ping(3, 2), ping(7, 3), pong(9, 1), pong(3, 2), pong(7, 3)])
case(F, "2.5-reuse-after-answer", "MUST", "An ID may be reused once answered", "(2.5)", [hs(1), ping(5, 1), pong(5, 1), echo(5, b"again"), reply(5, b"again")])
case(F, "2.5-duplicate-outstanding", "MUST", "Reusing the ID of an outstanding request is DUPLICATE_REQUEST_ID",
     "A COMPUTE is outstanding when an ECHO with its ID arrives: connection error (2.5).",
     [hs(1), compute(5, 3_000_000), echo(5, b"dup"), err("DUPLICATE_REQUEST_ID", 0), closed("any")], timing=True)

# ---- 3.6 pipelining -------------------------------------------------------------------------------
F = "3.6-pipelining.json"
for n in (10, 100, 1000):
    case(F, f"3.6-pipeline-{n}", "MUST", f"{n} pipelined ECHOs are all answered with their IDs", "(3.6)",
         [hs(1)] + [echo(i, struct.pack(">I", i)) for i in range(1, n + 1)] + [unordered(*[reply(i, struct.pack(">I", i)) for i in range(1, n + 1)])])
case(F, "3.6-slow-request-does-not-block", "MUST", "A slow COMPUTE does not delay an ECHO sent after it",
     "No head-of-line blocking (2.5, 3.6): the ECHO_REPLY arrives before the COMPUTE_RESULT.",
     [hs(1), compute(1, 2_000_000), echo(2, b"fast"), reply(2, b"fast"), result(1, 2_000_000)], timing=True)
case(F, "3.6-ping-while-compute-runs", "MUST", "PING is answered while a COMPUTE runs", "(3.6)",
     [hs(1), compute(1, 2_000_000), ping(2, 8), pong(2, 8), result(1, 2_000_000)], timing=True)
case(F, "3.6-mixed-types", "MUST", "Pipelined requests of every type are each answered once", "(3.6)",
     [hs(1), ping(1, 1), echo(2, b"e"), compute(3, 10), sum_(4, [1, 2, 3]),
      unordered(pong(1, 1), reply(2, b"e"), result(3, 10), exp("SUM_RESULT", 4, count=3, sum=6))])
case(F, "3.6-many-computes", "MUST", "Eight COMPUTEs complete with the right digests, in any order", "(3.6, 4.6)",
     [])  # steps filled in below

# ---- 4 message types --------------------------------------------------------------------------------
F = "4-messages.json"
for v in (1, 2):
    req = ["v2"] if v == 2 else []
    case(F, f"4.4-ping-v{v}", "MUST", f"PING is answered by PONG with the same data (v{v})", "(4.4)", [hs(v), ping(1, 2**64 - 1), pong(1, 2**64 - 1)], requires=req)
    case(F, f"4.5-echo-v{v}", "MUST", f"ECHO is answered by ECHO_REPLY with the same payload (v{v})", "(4.5)", [hs(v), echo(1, b"hello"), reply(1, b"hello")], requires=req)
    case(F, f"4.6-compute-abc-v{v}", "MUST", f"COMPUTE cost 1 over \"abc\" is SHA-256(\"abc\") (v{v})", "(4.6)",
         [hs(v), compute(1, 1, b"abc"), result(1, 1, b"abc")], requires=req)
    case(F, f"4.6-compute-1000-v{v}", "MUST", f"COMPUTE cost 1000 gives the iterated digest (v{v})", "(4.6)",
         [hs(v), compute(1, 1000, b""), result(1, 1000, b"")], requires=req)
    case(F, f"4.6-compute-cost-0-v{v}", "MUST", f"COMPUTE cost 0 is INVALID_ARGUMENT (v{v})", "(4.6)",
         [hs(v), compute(1, 0), err("INVALID_ARGUMENT", 1)] + still_alive(), requires=req)
    case(F, f"4.10-sum-v{v}", "MUST", f"SUM adds its values (v{v})", "(4.10)",
         [hs(v), sum_(1, [5, -7, 1000]), exp("SUM_RESULT", 1, count=3, sum=998)], requires=req)
    case(F, f"4.8-client-error-ignored-v{v}", "MUST", f"An ERROR from the client with a non-zero ID is ignored (v{v})", "(4.8)",
         [hs(v), frame("ERROR", 7, {"code": "INTERNAL_ERROR", "message": "client-side", "retry_after_ms": 0}), nothing(200)] + still_alive(), requires=req)
    case(F, f"4.1-application-type-v{v}", "MUST", f"An application type the server does not implement is UNKNOWN_TYPE (v{v})", "(4.1, 5.4)",
         [hs(v), frame("0x80", 6, body_hex="0102"), err("UNKNOWN_TYPE", 6)] + still_alive(), requires=req)
case(F, "4.6-compute-cost-above-max", "MUST", "COMPUTE cost 2^24+1 is INVALID_ARGUMENT", "(4.6)",
     [hs(1), compute(1, (1 << 24) + 1), err("INVALID_ARGUMENT", 1)] + still_alive())
case(F, "4.6-compute-empty-seed", "MUST", "COMPUTE with an empty seed", "(4.6)", [hs(1), compute(1, 3, b""), result(1, 3, b"")])
case(F, "4.10-sum-empty", "MUST", "SUM of no values is count 0, sum 0", "(4.10)", [hs(1), sum_(1, []), exp("SUM_RESULT", 1, count=0, sum=0)])
case(F, "4.10-sum-wrapping", "MUST", "SUM wraps on overflow", "Two's complement modulo 2^64 (4.10).",
     [hs(1), sum_(1, [2**63 - 1, 1]), exp("SUM_RESULT", 1, count=2, sum=-2**63)])
case(F, "4.10-sum-rkyv", "MUST", "SUM as an rkyv archive is answered", "With the RKYV capability (6.9).",
     [hs(2, caps=1), frame("SUM", 1, body_hex="010000000000000002000000000000000300000000000000e8ffffff03000000", flags=1),
      exp("SUM_RESULT", 1, count=3, sum=6)], requires=["v2", "rkyv"])
case(F, "4.10-sum-rkyv-invalid", "MUST", "An rkyv archive that fails validation is MALFORMED_BODY", "(6.9)",
     [hs(2, caps=1), frame("SUM", 1, body_hex="ffffffffffffffff", flags=1), err("MALFORMED_BODY", 1)] + still_alive(), requires=["v2", "rkyv"])
case(F, "4.11-stats-v2", "MUST", "STATS is answered by STATS_REPLY in version 2", "(4.11)",
     [hs(2), frame("STATS", 1, {}), exp("STATS_REPLY", 1)], requires=["v2"])
case(F, "4.11-stats-on-v1", "MUST", "STATS on a version-1 connection is UNKNOWN_TYPE", "(5.3)",
     [hs(1), frame("STATS", 1, {}), err("UNKNOWN_TYPE", 1)] + still_alive())
case(F, "4.1-application-type-ff", "MUST", "Type 0xFF without a body is UNKNOWN_TYPE", "(4.1)",
     [hs(1), frame("0xFF", 6, body_hex=""), err("UNKNOWN_TYPE", 6)] + still_alive())
for cid, t, body, title in [
    ("4.1-welcome-to-server", "WELCOME", {"version": 1, "max_frame_size": 4096, "max_outstanding": 1, "capabilities": 0, "agent": ""}, "WELCOME"),
    ("4.1-echo-reply-to-server", "ECHO_REPLY", {"payload": ""}, "ECHO_REPLY"),
    ("4.1-pong-to-server", "PONG", {"data": 0}, "PONG"),
    ("4.1-compute-result-to-server", "COMPUTE_RESULT", {"digest": "00" * 32}, "COMPUTE_RESULT"),
]:
    rid = 0 if t == "WELCOME" else 6
    case(F, cid, "MUST", f"{title} sent to a server is UNEXPECTED_MESSAGE", "A type the receiver's role never receives (4.1).",
         [hs(1), frame(t, rid, body), err("UNEXPECTED_MESSAGE", rid)] + still_alive())

# ---- 3.7 cancel ---------------------------------------------------------------------------------------
F = "3.7-cancel.json"
case(F, "3.7-cancel-unknown-id", "MUST", "CANCEL of an ID that is not outstanding is ignored", "(3.7)", [hs(1), cancel(42), nothing(300)] + still_alive())
case(F, "3.7-cancel-after-answer", "MUST", "CANCEL after the response is ignored", "(3.7)", [hs(1), ping(1, 1), pong(1, 1), cancel(1), nothing(300)] + still_alive())
case(F, "3.7-cancel-queued-compute", "MUST", "A cancelled request gets exactly one response",
     "ERROR CANCELLED if it had not started, its result otherwise; CANCEL itself is never answered (3.7).",
     [hs(1), compute(1, 2_000_000), compute(2, 2_000_000), cancel(2),
      unordered(result(1, 2_000_000), {"expect": {"frame": {"request_id": 2, "$one_of": [{"type": "ERROR", "body": {"code": "CANCELLED"}}, {"type": "COMPUTE_RESULT"}]}}}),
      nothing(300)], timing=True)
case(F, "3.7-cancel-echo", "MUST", "CANCEL of an inline request does not produce a second response", "(3.7)",
     [hs(1), echo(1, b"x"), cancel(1), reply(1, b"x"), nothing(300)])

# ---- 5.4 unexpected input --------------------------------------------------------------------------------
F = "5.4-unexpected-input.json"
for t in ("0x00", "0x10", "0x42", "0x7F"):
    case(F, f"5.4-unknown-type-{t[2:].lower()}", "MUST", f"Reserved type {t} is UNKNOWN_TYPE, connection survives",
         "The body is skipped using Length; ERROR carries the frame's ID (5.4).",
         [hs(1), frame(t, 9, body_hex="deadbeef"), err("UNKNOWN_TYPE", 9)] + still_alive())
case(F, "5.4-unknown-type-then-pipelined", "MUST", "Frames after an unknown type in the same write are served", "(5.4)",
     [hs(1), frame("0x7F", 9, body_hex="00" * 100), ping(10, 1), err("UNKNOWN_TYPE", 9), pong(10, 1)])
for cid, step, rid, title in [
    ("5.4-trailing-ping", frame("PING", 3, body_hex="00" * 9), 3, "PING with 9 body bytes"),
    ("5.4-trailing-echo", frame("ECHO", 3, body_hex=u32(2) + "6869" + "21"), 3, "ECHO with a byte after the payload"),
    ("5.4-trailing-cancel", frame("CANCEL", 3, body_hex="00"), 3, "CANCEL with a body"),
    ("5.4-trailing-sum", frame("SUM", 3, body_hex=u32(0) + "00"), 3, "SUM with a byte after the sequence"),
]:
    case(F, cid, "MUST", f"{title} is TRAILING_BYTES, connection survives", "(5.4)", [hs(1), step, err("TRAILING_BYTES", rid)] + still_alive())
case(F, "5.4-version-2-frame-on-v1", "MUST", "A version-2 frame on a version-1 connection is VERSION_MISMATCH", "(5.4)",
     [hs(1), ping(1, version=2), err("VERSION_MISMATCH", 0), closed()])
case(F, "5.4-version-1-frame-on-v2", "MUST", "A version-1 frame on a version-2 connection is VERSION_MISMATCH", "(5.4)",
     [hs(2), ping(1, version=1), err("VERSION_MISMATCH", 0), closed()], requires=["v2"])
case(F, "5.4-version-0-frame", "MUST", "A frame with header version 0 is VERSION_MISMATCH", "(5.1, 5.4)",
     [hs(1), ping(1, version=0), err("VERSION_MISMATCH", 0), closed()])
case(F, "5.4-v1-error-layout", "MUST", "On version 1, ERROR has the version-1 layout", "No retry_after_ms field (5.2, 5.3).",
     [hs(1), frame("0x7F", 9, body_hex=""), {"expect": {"frame": {"type": "ERROR", "request_id": 9, "version": 1, "body": {"code": "UNKNOWN_TYPE", "retry_after_ms": 0}}}}])
case(F, "5.4-v2-error-layout", "MUST", "On version 2, ERROR has the version-2 layout", "retry_after_ms present (5.2).",
     [hs(2), frame("0x7F", 9, body_hex=""), {"expect": {"frame": {"type": "ERROR", "request_id": 9, "version": 2, "body": {"code": "UNKNOWN_TYPE"}}}}], requires=["v2"])

# ---- 6 bodies -----------------------------------------------------------------------------------------
F = "6-bodies.json"
for cid, step, code, rid, title in [
    ("6.8-echo-length-beyond-body", frame("ECHO", 3, body_hex=u32(100) + "616263"), "MALFORMED_BODY", 3, "ECHO whose payload length exceeds the body"),
    ("6.8-echo-length-4g", frame("ECHO", 3, body_hex=u32(0xFFFFFFFF)), "MALFORMED_BODY", 3, "ECHO claiming a 4 GiB payload"),
    ("6.8-sum-count-4g", frame("SUM", 3, body_hex=u32(0xFFFFFFFF)), "MALFORMED_BODY", 3, "SUM claiming 2^32-1 values in 4 bytes"),
    ("6.1-ping-short", frame("PING", 3, body_hex="00" * 7), "MALFORMED_BODY", 3, "PING with a 7-byte body"),
    ("6.1-compute-short", frame("COMPUTE", 3, body_hex="0000"), "MALFORMED_BODY", 3, "COMPUTE cut inside cost"),
    ("6.8-compute-seed-beyond", frame("COMPUTE", 3, body_hex=u32(1) + u32(50) + "00"), "MALFORMED_BODY", 3, "COMPUTE whose seed length exceeds the body"),
    ("6.3-goodbye-invalid-utf8", frame("GOODBYE", 0, body_hex="0000" + u32(2) + "c328"), "INVALID_UTF8", 0, "GOODBYE whose message is not UTF-8"),
    ("6.3-error-invalid-utf8", frame("ERROR", 4, body_hex="001b" + u32(3) + "eda080"), "INVALID_UTF8", 4, "ERROR whose message is an encoded surrogate"),
    ("6.3-error-overlong-utf8", frame("ERROR", 4, body_hex="001b" + u32(2) + "c0af"), "INVALID_UTF8", 4, "ERROR whose message is overlong UTF-8"),
    ("6.1-goodbye-short", frame("GOODBYE", 0, body_hex="00"), "MALFORMED_BODY", 0, "GOODBYE cut inside code"),
]:
    case(F, cid, "MUST", f"{title}: {code}, connection survives", "Request errors reject one frame (6, 7.2).", [hs(1), step, err(code, rid)] + still_alive())

# ---- 3.8 goodbye and drain ------------------------------------------------------------------------------
F = "3.8-goodbye.json"
case(F, "3.8-client-goodbye-idle", "MUST", "Client GOODBYE with nothing outstanding: server GOODBYE, then close", "(3.8)",
     [hs(1), goodbye()] + GOODBYE_CLOSE)
case(F, "3.8-client-goodbye-outstanding", "MUST", "Client GOODBYE: outstanding work is still answered", "(3.8)",
     [hs(1), compute(1, 50_000), goodbye(), result(1, 50_000)] + GOODBYE_CLOSE)
case(F, "3.8-request-after-goodbye", "MUST", "A request after the client's GOODBYE is SHUTTING_DOWN", "(3.8)",
     [hs(1), compute(1, 2_000_000), goodbye(), echo(2, b"late"),
      unordered(err("SHUTTING_DOWN", 2), result(1, 2_000_000))] + GOODBYE_CLOSE, timing=True)
case(F, "3.8-goodbye-then-half-close", "MUST", "GOODBYE followed by half-close closes cleanly", "(3.8, 3.9)",
     [hs(1), echo(1, b"a"), goodbye(), half_close(), reply(1, b"a")] + GOODBYE_CLOSE)
case(F, "3.8-goodbye-v2", "MUST", "GOODBYE in version 2", "(3.8)", [hs(2), goodbye()] + GOODBYE_CLOSE, requires=["v2"])
case(F, "3.8-one-goodbye-only", "MUST", "The server sends exactly one GOODBYE", "(3.5)",
     [hs(1), goodbye(), half_close()] + GOODBYE_CLOSE)

# ---- 3.9 half-close ---------------------------------------------------------------------------------------
F = "3.9-half-close.json"
case(F, "3.9-after-one-echo", "MUST", "Half-close after one ECHO: answered, GOODBYE, close", "(3.9)",
     [hs(1), echo(1, b"x"), half_close(), reply(1, b"x")] + GOODBYE_CLOSE)
case(F, "3.9-after-pipeline", "MUST", "Half-close after 20 pipelined requests: all answered", "(3.9)",
     [hs(1)] + [echo(i, b"p") for i in range(1, 21)] + [half_close(), unordered(*[reply(i, b"p") for i in range(1, 21)])] + GOODBYE_CLOSE)
case(F, "3.9-after-compute", "MUST", "Half-close with a COMPUTE outstanding: its result still arrives", "(3.9)",
     [hs(1), compute(1, 100_000), half_close(), result(1, 100_000)] + GOODBYE_CLOSE)
case(F, "3.9-right-after-handshake", "MUST", "Half-close right after the handshake", "(3.9)", [hs(1), half_close()] + GOODBYE_CLOSE)
case(F, "3.9-mid-frame", "MUST", "Half-close inside a frame is TRUNCATED_FRAME; complete requests are answered",
     "The partial frame is reported with ERROR TRUNCATED_FRAME (ID 0), complete requests before it are answered, then the "
     "drain ends with GOODBYE and a close (3.5, 3.9).",
     [hs(1), ping(1, 1), raw("0000001001030000000000"), half_close(),
      unordered(pong(1, 1), err("TRUNCATED_FRAME", 0))] + GOODBYE_CLOSE)
case(F, "3.9-mid-prefix", "MUST", "Half-close inside a length prefix is TRUNCATED_FRAME", "(3.9)",
     [hs(1), raw("0000"), half_close(), err("TRUNCATED_FRAME", 0)] + GOODBYE_CLOSE)

# ---- 3.10 / 3.11 closing ---------------------------------------------------------------------------------
F = "3.10-close.json"
case(F, "3.10-client-error-id-0", "MUST", "A client ERROR with ID 0 ends the connection without a reply", "(3.10)",
     [hs(1), frame("ERROR", 0, {"code": "INTERNAL_ERROR", "message": "giving up", "retry_after_ms": 0}), closed("any")])
case(F, "3.10-error-then-clean-eof", "MUST", "A connection error is followed by a clean end of stream", "ERROR, then FIN, not RST (3.10).",
     [hs(1), raw(u32(3)), fill(0, 5000), err("FRAME_TOO_SHORT", 0), closed("clean")])
case(F, "3.11-reset-mid-response", "MUST", "A client reset while responses are in flight does not hurt the server",
     "The liveness probe after the case checks the server still serves (3.11).",
     [hs(1)] + [echo(i, bytes(60000)) for i in range(1, 30)] + [pause(50), {"reset": True}])
case(F, "3.11-reset-during-handshake", "MUST", "A reset during the handshake does not hurt the server", "(3.11)",
     [preface(), {"reset": True}])
case(F, "3.11-reset-with-compute-queued", "MUST", "A reset with heavy work queued does not hurt the server", "(3.11)",
     [hs(1)] + [compute(i, 200_000) for i in range(1, 6)] + [{"reset": True}])

# ---- 8.3 timeouts (INFO: values are implementation-defined) ------------------------------------------------
F = "8.3-timeouts.json"
case(F, "8.3-handshake-timeout-silent", "INFO", "A silent connection is evicted with HANDSHAKE_TIMEOUT",
     "Servers MUST bound the handshake; the value is open, so this case is informational (8.3).",
     [{"expect": {"frame": {"type": "ERROR", "body": {"code": "HANDSHAKE_TIMEOUT"}}, "within_ms": 30000}}, closed("any")], timing=True)
case(F, "8.3-handshake-timeout-trickle", "INFO", "A client trickling the preface is evicted", "Slowloris in the handshake (8.3).",
     [{"trickle": {"hex": PREFACE + "00" * 100, "interval_ms": 500}},
      {"expect": {"frame": {"type": "ERROR", "body": {"code": "HANDSHAKE_TIMEOUT"}}, "within_ms": 30000}}, closed("any")], timing=True)
case(F, "8.3-idle-timeout", "INFO", "An idle connection gets GOODBYE IDLE_TIMEOUT", "(8.3)",
     [hs(1), {"expect": {"frame": {"type": "GOODBYE", "body": {"code": "IDLE_TIMEOUT"}}, "within_ms": 400000}}, closed("any")], timing=True)
case(F, "8.3-partial-frame-does-not-reset-idle", "INFO", "A frame trickled byte by byte does not reset the idle timer", "(8.3)",
     [hs(1), {"trickle": {"hex": "00000011010500000000000100000005" + "68656c6c6f", "interval_ms": 500}},
      {"expect": {"frame": {"type": "GOODBYE", "body": {"code": "IDLE_TIMEOUT"}}, "within_ms": 400000}}, closed("any")], timing=True)

# ---- 8.4 resources ------------------------------------------------------------------------------------------
F = "8.4-resources.json"
case(F, "8.4-backpressure-nothing-lost", "MUST", "A client that pauses reading then reads everything loses nothing",
     "The server may stop reading but MUST NOT drop responses (8.4).",
     [hs(1)] + [echo(i, bytes([i % 256]) * 32768) for i in range(1, 201)] + [{"stop_reading": {"ms": 1000}}] +
     [reply(i, bytes([i % 256]) * 32768) for i in range(1, 201)], timing=True)
case(F, "8.4-parallel-connections-10", "MUST", "Ten concurrent connections are each served", "(8.4)",
     [{"parallel": {"connections": 10, "steps": [hs(1), echo(1, b"c"), reply(1, b"c"), goodbye()] + GOODBYE_CLOSE}}])
case(F, "8.4-parallel-connections-50", "SHOULD", "Fifty concurrent connections are each served", "(8.4)",
     [{"parallel": {"connections": 50, "steps": [hs(1), ping(1, 1), pong(1, 1), half_close()] + GOODBYE_CLOSE}}])
case(F, "8.4-busy-or-served", "MUST", "Under a burst of COMPUTEs every request is answered: a result or BUSY",
     "Heavy work is bounded; overflow is answered BUSY, never dropped (8.4).",
     [hs(2)] + [compute(i, 20_000) for i in range(1, 41)] +
     [unordered(*[{"expect": {"frame": {"request_id": i, "$one_of": [{"type": "COMPUTE_RESULT", "body": {"digest": digest(20_000, b"seed")}},
                                                                    {"type": "ERROR", "body": {"code": "BUSY"}}]}}} for i in range(1, 41)])],
     requires=["v2"])

# the many-computes case above used a shortcut: rewrite it properly
for c in CASES["3.6-pipelining.json"]:
    if c["id"] == "3.6-many-computes":
        c["steps"] = [hs(1)] + [compute(i, 100 * i) for i in range(1, 9)] + [
            unordered(*[{"expect": {"frame": {"request_id": i, "$one_of": [
                {"type": "COMPUTE_RESULT", "body": {"digest": digest(100 * i, b"seed")}},
                {"type": "ERROR", "body": {"code": "BUSY"}}]}}} for i in range(1, 9)])]

total = 0
for name, cases in sorted(CASES.items()):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump({"format": "echowire-conformance", "format_version": 1, "generated_by": "spec/conformance/generate.py",
                   "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total += len(cases)
print(f"{total} cases in {len(CASES)} files")
