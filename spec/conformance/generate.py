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
import re
import sys
import os
import struct

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import registry  # noqa: E402  (spec/registry.py: the codes, from spec/registry.json)

HERE = os.path.dirname(os.path.abspath(__file__))
PREFACE = registry.PREFACE.hex()

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
def case(file, id_, level, title, description, steps, requires=(), timing=False, coalesce=True, profile=None):
    assert id_ not in [c["id"] for f in CASES.values() for c in f], id_
    c = {"id": id_, "section": id_.split("-")[0], "level": level, "title": title,
         "description": description, "steps": steps}
    if requires: c["requires"] = list(requires)
    if timing: c["timing_sensitive"] = True
    if not coalesce: c["coalesce"] = False
    if profile: c["profile"] = profile
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
def ping_hex(id_, data, version=1):
    return u32(16) + bytes([version, 0x03, 0, 0]).hex() + u32(id_) + struct.pack(">Q", data).hex()
case(F, "2.2-two-frames-one-write", "MUST", "Two frames in one write are both answered",
     "TCP has no message boundaries (2.1): both PINGs are one send, so one write (under the whole split).",
     [hs(1), raw(ping_hex(1, 1) + ping_hex(2, 2)), pong(1, 1), pong(2, 2)])
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
# Document 1.2: a client's ERROR with ID 0 ends the connection whatever its flags and body (2.7).
for cid, what, fr in [
        ("3.10-client-error-id-0-undefined-flag", "an undefined flag",
         frame("ERROR", 0, {"code": "INTERNAL_ERROR", "message": "x", "retry_after_ms": 0}, flags=0x0100)),
        ("3.10-client-error-id-0-short-body", "a body too short for its code", frame("ERROR", 0, body_hex="00")),
        ("3.10-client-error-id-0-trailing-octets", "octets after its body",
         frame("ERROR", 0, body_hex="0019" + u32(0) + "0000"))]:
    case(F, cid, "MUST", f"A client ERROR with ID 0 and {what} still ends the connection, unanswered",
         "Rules 7 to 9 of 2.7 are not applied to a client's ERROR with ID 0 (document 1.2): the server stops "
         "processing and sends nothing more (3.10); an answer could only be another ERROR with ID 0.",
         [hs(1), fr, closed("any")])
case(F, "3.10-error-then-clean-eof", "MUST", "A connection error is followed by a clean end of stream", "ERROR, then FIN, not RST (3.10).",
     [hs(1), raw(u32(3)), fill(0, 5000), err("FRAME_TOO_SHORT", 0), closed("clean")])
case(F, "3.10-lingering-close-behind-unread-replies", "MUST", "A connection error behind unread replies still ends with a clean EOF",
     "The client pipelines ECHOs whose replies (about 1 MB) it does not read yet, then a Length of 3 and more input. "
     "Whatever replies the server sends before its ERROR (3.6.1), they and the ERROR wait in its send buffer; a server "
     "that closes at once instead of lingering meets the later input with a reset that discards them. A lingering "
     "close writes all queued output, shuts down its write side and reads until the peer's EOF (3.10).",
     [hs(1)] + [echo(i, bytes(60000)) for i in range(1, 17)] + [raw(u32(3)), fill(0xAB, 65536),
      {"expect": {"closed": "clean", "skip_frames": True}}])
case(F, "3.11-reset-mid-response", "MUST", "A client reset while responses are in flight does not hurt the server",
     "The liveness probe after the case checks the server still serves (3.11).",
     [hs(1)] + [echo(i, bytes(60000)) for i in range(1, 30)] + [pause(50), {"reset": True}])
case(F, "3.11-reset-during-handshake", "MUST", "A reset during the handshake does not hurt the server", "(3.11)",
     [preface(), {"reset": True}])
case(F, "3.11-reset-with-compute-queued", "MUST", "A reset with heavy work queued does not hurt the server", "(3.11)",
     [hs(1)] + [compute(i, 200_000) for i in range(1, 6)] + [{"reset": True}])
case(F, "3.11-reset-leaves-other-connection-served", "MUST", "A reset on one connection does not affect another",
     "A connection resets while its replies are in flight; another connection is then served (3.11: without "
     "affecting other connections). The check is in the case itself, not only in the liveness probe after it; "
     "the connections follow each other, so a server that serves one connection at a time is tested too.",
     [{"parallel": {"connections": 1, "steps": [hs(1)] + [echo(i, bytes(60000)) for i in range(1, 7)]
                                               + [pause(50), {"reset": True}]}},
      pause(200),
      {"parallel": {"connections": 1, "steps": [hs(1), ping(1, 77), pong(1, 77), half_close()] + GOODBYE_CLOSE}}])

# ---- 8.3 timeouts (INFO: values are implementation-defined) ------------------------------------------------
F = "8.3-timeouts.json"
# Timeouts are implementation-defined within the ranges of 8.3; a target declares its values
# (the runner's --handshake-timeout, --idle-timeout, --drain-timeout; the embedded server declares
# its own). Time expressions such as "idle_timeout+1500" are evaluated against those values.
HS_PREFIX = "0000001c" + "0101" + "0000" + "00000000"  # a HELLO's length and header, no body
case(F, "8.3-handshake-timeout-silent", "MUST", "A silent connection is evicted with HANDSHAKE_TIMEOUT",
     "The handshake timeout is at most 30 s (or the declared value): ERROR HANDSHAKE_TIMEOUT (ID 0), then close (8.3).",
     [{"expect": {"frame": {"type": "ERROR", "request_id": 0, "body": {"code": "HANDSHAKE_TIMEOUT"}}, "at_most_ms": "handshake_timeout+1500"}},
      closed("any")], timing=True)
case(F, "8.3-handshake-timeout-not-early", "MUST", "The handshake timeout does not fire before its declared value",
     "A timeout fires no earlier than its value (8.3).",
     [nothing("handshake_timeout-500"),
      {"expect": {"frame": {"type": "ERROR", "body": {"code": "HANDSHAKE_TIMEOUT"}}, "at_most_ms": 2000}}, closed("any")],
     requires=["handshake_timeout"], timing=True)
case(F, "8.3-handshake-timeout-trickle", "MUST", "A client trickling its preface and HELLO is still evicted in time",
     "Octets of the preface or of a partial HELLO do not extend the handshake period (8.3): the preface and a HELLO's "
     "first 12 octets trickled over twice the timeout still get HANDSHAKE_TIMEOUT within it.",
     [{"trickle": {"hex": PREFACE + HS_PREFIX, "interval_ms": "handshake_timeout/10"}},
      {"expect": {"frame": {"type": "ERROR", "body": {"code": "HANDSHAKE_TIMEOUT"}}, "at_most_ms": "handshake_timeout+1500"}},
      closed("any")], timing=True)
case(F, "8.3-idle-timeout", "MUST", "An idle connection gets GOODBYE IDLE_TIMEOUT at its declared idle timeout",
     "Not before the idle timeout, and within a second after it; nothing is outstanding, so the drain ends at once with "
     "a clean close (8.3, 3.5).",
     [hs(1), nothing("idle_timeout-500"),
      {"expect": {"frame": {"type": "GOODBYE", "body": {"code": "IDLE_TIMEOUT"}}, "at_most_ms": 2000}}, closed()],
     requires=["idle_timeout"], timing=True)
case(F, "8.3-partial-frame-does-not-reset-idle", "MUST", "Octets of a partial frame do not reset the idle timer",
     "10 of a frame's 12 header octets, sent in three pieces spread over the whole idle timeout: the connection is "
     "idle all along, so GOODBYE IDLE_TIMEOUT comes at most 1 s after the timeout runs out from the handshake, not a "
     "whole timeout after the last octet (8.3, slowloris).",
     [hs(1), {"send": {"hex": "00000011"}}, {"pause": {"ms": "idle_timeout/2"}}, {"send": {"hex": "01050000"}},
      {"pause": {"ms": "idle_timeout/2"}}, {"send": {"hex": "0000"}},
      {"expect": {"frame": {"type": "GOODBYE", "body": {"code": "IDLE_TIMEOUT"}}, "at_most_ms": "idle_timeout+1500"}},
      closed("any")], requires=["idle_timeout"], timing=True)
case(F, "8.3-idle-starts-after-the-response", "MUST", "After a long COMPUTE the idle period starts when its result is written",
     "A connection with a request outstanding is not idle; the idle period starts when the connection last had a "
     "request outstanding (8.3). The COMPUTE takes a second or more, so a server that timed the idle period from the "
     "COMPUTE's receipt would send GOODBYE early.",
     [hs(1), compute(1, 6_000_000), {"expect": {"frame": {"type": "COMPUTE_RESULT", "request_id": 1, "body": {"digest": digest(6_000_000, b"seed")}}, "within_ms": 60000}},
      nothing("idle_timeout-500"),
      {"expect": {"frame": {"type": "GOODBYE", "body": {"code": "IDLE_TIMEOUT"}}, "at_most_ms": 2000}}, closed()],
     requires=["idle_timeout"], timing=True)

# ---- 8.4 resources ------------------------------------------------------------------------------------------
F = "8.4-resources.json"
case(F, "8.4-backpressure-nothing-lost", "MUST", "A client that pauses reading then reads everything loses nothing",
     "The server may stop reading but MUST NOT drop responses (8.4).",
     [hs(1)] + [echo(i, bytes([i % 256]) * 32768) for i in range(1, 201)] + [{"stop_reading": {"ms": 1000}}] +
     [reply(i, bytes([i % 256]) * 32768) for i in range(1, 201)], timing=True)
case(F, "8.4-backpressure-writes-stall", "SHOULD", "A client that reads nothing is stopped by backpressure, then loses nothing",
     "ECHOs of 64 KiB written without reading: the server SHOULD bound its queued output and, at the bound, MUST stop "
     "reading (8.4), so the client's writes stall (no progress for 1 s) before 64 MiB; then every ECHO written is "
     "answered. A server that reads on queues without limit: 'a client that does not read can stall only itself'.",
     [hs(1), {"flood": {"first_id": 1, "payload_len": 65536, "max_bytes": 64 << 20, "stall_ms": 1000}},
      ping(1 << 20, 7), pong(1 << 20, 7)], timing=True)
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

# ---- document 1.1: each resolution that is observable on the wire (Appendix C) -------------------
def hello_frame(min_v=1, max_v=1, max_frame=1 << 20, caps=0, agent="", version=1, id_=0, flags=0, **kw):
    return frame("HELLO", id_, {"min_version": min_v, "max_version": max_v, "max_frame_size": max_frame,
                                "capabilities": caps, "agent": agent}, version=version, flags=flags, **kw)
def err_body(code, id_, **body):
    b = {"code": code}
    b.update(body)
    return {"expect": {"frame": {"type": "ERROR", "request_id": id_, "body": b}}}
SLOW = 1_000_000  # a COMPUTE still outstanding when the frames sent right after it arrive
# Every case that relies on SLOW outlasting the client's next writes is timing-sensitive (whole
# writes only): a delayed split spreads a few frames over 200 ms or more, about what SLOW takes
# in a compiled server, and CI runs saw the busy-profile cases fail that way.

# C.1: a client ERROR with ID 0 ends the connection whatever its code's scope (3.10).
F = "3.10-close.json"
for cid, code, title in [("3.10-client-error-id-0-request-code", "UNEXPECTED_MESSAGE", "a request-scope code"),
                         ("3.10-client-error-id-0-application-code", 0x8001, "an application code"),
                         ("3.10-client-error-id-0-reserved-code", 0x0777, "a code of the reserved range")]:
    case(F, cid, "MUST", f"A client ERROR with ID 0 and {title} ends the connection without a reply",
         "Only servers send request errors; a client's ERROR with ID 0 always announces that it is closing (3.10); "
         "a code of the reserved range is taken as INTERNAL_ERROR (7.1), which ends the connection too.",
         [hs(1), frame("ERROR", 0, {"code": code, "message": "", "retry_after_ms": 0}), closed("any")])
case(F, "3.10-client-error-id-0-with-work-outstanding", "MUST", "After a client ERROR with ID 0 nothing more is answered",
     "The server queues nothing more, not even the result of a COMPUTE already running or a GOODBYE (3.10).",
     [hs(1), compute(1, SLOW), frame("ERROR", 0, {"code": "INTERNAL_ERROR", "message": "bye", "retry_after_ms": 0}), closed("any")],
     timing=True)

# C.2 and C.13: TRUNCATED_FRAME drains; its place among the responses; EOF inside the preface or a HELLO.
F = "3.9-half-close.json"
case(F, "3.9-truncated-with-compute-outstanding", "MUST", "TRUNCATED_FRAME and an outstanding result arrive in either order, then GOODBYE",
     "TRUNCATED_FRAME (scope D) does not end the processing of requests: the COMPUTE is still answered, in either order "
     "relative to the ERROR, and the final GOODBYE comes after both (3.6.1 rule 5, 3.9).",
     [hs(1), compute(1, 500_000), raw("00000010010300"), half_close(),
      unordered(result(1, 500_000), err("TRUNCATED_FRAME", 0))] + GOODBYE_CLOSE, timing=True)
case(F, "3.9-truncated-while-draining", "MUST", "EOF inside a frame after the client's GOODBYE is TRUNCATED_FRAME; the drain continues",
     "A partial frame after GOODBYE is reported with TRUNCATED_FRAME, and the outstanding COMPUTE is still answered (3.5, 3.9).",
     [hs(1), compute(1, 500_000), goodbye(), raw("000000"), half_close(),
      unordered(result(1, 500_000), err("TRUNCATED_FRAME", 0))] + GOODBYE_CLOSE, timing=True)
F = "3.1-preface.json"
case(F, "3.1-eof-inside-preface", "MUST", "EOF inside the preface closes without a reply",
     "No frame was started, so nothing is sent (3.5, 3.9).", [raw("894557"), half_close(), closed("any")])
F = "3.2-handshake.json"
case(F, "3.2-eof-inside-hello", "MUST", "EOF inside the HELLO is TRUNCATED_FRAME, then close",
     "A partial HELLO at the end of stream is reported, and the connection closes (3.5, 3.9).",
     [preface(), raw(HS_PREFIX + "0101"), half_close(), err("TRUNCATED_FRAME", 0), closed()])

# C.3: CANCEL: exactly one response, whatever happens.
F = "3.7-cancel.json"
case(F, "3.7-cancel-twice", "MUST", "Two CANCELs of one request still give it exactly one response",
     "The second CANCEL finds the request answered or still outstanding; either way no second response (3.7).",
     [hs(1), compute(1, SLOW), compute(2, SLOW), cancel(2), cancel(2),
      unordered(result(1, SLOW), {"expect": {"frame": {"request_id": 2, "$one_of": [{"type": "ERROR", "body": {"code": "CANCELLED"}}, {"type": "COMPUTE_RESULT"}]}}}),
      nothing(300)], timing=True)
# Document 1.2: a faulty CANCEL naming an outstanding request is ignored (2.7, 3.6, 3.7).
for cid, what, fr in [("3.7-faulty-cancel-undefined-flag", "an undefined flag", cancel(1, flags=0x0100)),
                      ("3.7-faulty-cancel-trailing-octets", "a body", frame("CANCEL", 1, body_hex="00"))]:
    case(F, cid, "MUST", f"A CANCEL with {what} naming an outstanding request is ignored: one response",
         "An ERROR with the request's ID would be a second response to it (3.6); the faulty CANCEL is ignored "
         "(document 1.2, 2.7), and the request gets exactly one response, its result or CANCELLED.",
         [hs(1), compute(1, SLOW), fr,
          {"expect": {"frame": {"request_id": 1, "$one_of": [{"type": "ERROR", "body": {"code": "CANCELLED"}}, {"type": "COMPUTE_RESULT", "body": {"digest": digest(SLOW, b"seed")}}]}, "within_ms": 30000}},
          nothing(300)] + still_alive(), timing=True)
case(F, "3.7-cancel-running-compute", "MUST", "CANCEL of a running COMPUTE: CANCELLED or its result, exactly once",
     "A running request MAY be stopped (CANCELLED) or completed (its result); never both, never neither (3.7).",
     [hs(1), compute(1, SLOW), pause(100), cancel(1),
      {"expect": {"frame": {"request_id": 1, "$one_of": [{"type": "ERROR", "body": {"code": "CANCELLED"}}, {"type": "COMPUTE_RESULT", "body": {"digest": digest(SLOW, b"seed")}}]}, "within_ms": 30000}},
      nothing(300)] + still_alive(), timing=True)

# C.4: the duplicate rule looks only at the ID, before the type, flag and ID rules.
F = "2.5-request-ids.json"
for cid, step, title in [
    ("2.5-duplicate-goodbye", frame("GOODBYE", 5, {"code": "NO_ERROR", "message": ""}), "a GOODBYE"),
    ("2.5-duplicate-reserved-type", frame("0x7F", 5, body_hex=""), "a reserved type"),
    ("2.5-duplicate-response-type", frame("PONG", 5, {"data": 0}), "a PONG"),
    ("2.5-duplicate-application-type", frame("0xFD", 5, body_hex="00"), "an application type"),
    ("2.5-duplicate-undefined-flag", echo(5, b"x", flags=2), "an ECHO with an undefined flag"),
]:
    case(F, cid, "MUST", f"{title[0].upper() + title[1:]} reusing an outstanding ID is DUPLICATE_REQUEST_ID",
         "At a server the duplicate rule comes before the type, role, flag and ID rules (2.5, 2.7 rule 4).",
         [hs(1), compute(5, SLOW), step, err("DUPLICATE_REQUEST_ID", 0), closed("any")], timing=True)
case(F, "2.5-error-with-outstanding-id-is-not-duplicate", "MUST", "A client ERROR naming an outstanding ID is ignored, not a duplicate",
     "CANCEL and ERROR are exempt from the duplicate rule; a client ERROR with a non-zero ID is ignored (2.5, 4.8).",
     [hs(1), compute(5, 200_000), frame("ERROR", 5, {"code": "INTERNAL_ERROR", "message": "", "retry_after_ms": 0}),
      result(5, 200_000)] + still_alive(), timing=True)

# C.5 and C.9: application types are requests from a client; an unimplemented one is UNKNOWN_TYPE at rule 5.
F = "4-messages.json"
for cid, step, rid, title in [
    ("4.1-application-id-0", frame("0xFE", 0, body_hex="01"), 0, "with request ID 0"),
    ("4.1-application-undefined-flag", frame("0xFE", 6, body_hex="01", flags=0x0004), 6, "with an undefined flag"),
    ("4.1-application-rkyv-flag", frame("0xFE", 6, body_hex="01", flags=0x0001), 6, "with the RKYV flag"),
]:
    case(F, cid, "MUST", f"An unimplemented application type {title} is UNKNOWN_TYPE",
         "An application type the server does not implement fails rule 5, before its flags and ID are examined; the "
         "ERROR carries the frame's ID (2.7, 4.1). A target that implements type 0xFE excludes this case.",
         [hs(1), step, err("UNKNOWN_TYPE", rid)] + still_alive())

# C.6: the limit before WELCOME is 4096.
F = "2.2-framing.json"
case(F, "2.2-hello-length-4096", "MUST", "A HELLO of Length 4096 is accepted",
     "Before WELCOME the limit is 4096, the minimum every server accepts (2.2).",
     [preface(), hello_frame(agent="a" * 4074), exp("WELCOME", 0)] + still_alive())
case(F, "2.2-hello-length-4097", "MUST", "A HELLO of Length 4097 is FRAME_TOO_LARGE",
     "Before WELCOME the limit is 4096, whatever limit the server will announce (2.2, 8.2).",
     [preface(), hello_frame(agent="a" * 4075), err("FRAME_TOO_LARGE", 0), closed("any")])
case(F, "2.2-first-prefix-4097", "MUST", "A first length prefix of 4097 is FRAME_TOO_LARGE from the prefix alone",
     "The limit applies as soon as the 4 length octets are complete (2.2).",
     [preface(), raw(u32(4097)), err("FRAME_TOO_LARGE", 0), closed("any")])

# C.7 and C.8: the order of the handshake's checks.
F = "3.2-handshake.json"
for v in (1, 2):
    case(F, f"3.2-second-hello-header-v{v}-on-v2", "MUST", f"A second HELLO written in header version {v} on a v2 connection is PROTOCOL_ERROR",
         "The state rule comes before the version rule (2.7 rules 2 and 3, 3.2).",
         [hs(2), hello_frame(1, 2, version=v), err("PROTOCOL_ERROR", 0), closed("any")], requires=["v2"])
for cid, step, code, title, why in [
    ("3.2-order-type-before-version", ping(1, version=2), "HANDSHAKE_REQUIRED", "A PING in header version 2 as the first frame",
     "The type rule (not HELLO) comes before the version rule"),
    ("3.2-order-version-before-flags", hello_frame(version=2, flags=4), "VERSION_MISMATCH", "A HELLO in header version 2 with a flag set",
     "The version rule comes before the flag rule"),
    ("3.2-order-flags-before-id", hello_frame(flags=4, id_=1), "INVALID_FLAGS", "A HELLO with a flag set and request ID 1",
     "The flag rule comes before the ID rule"),
    ("3.2-order-id-before-body", frame("HELLO", 1, body_hex="01", version=1), "INVALID_REQUEST_ID", "A HELLO with request ID 1 and a short body",
     "The ID rule comes before the body rule"),
    ("3.2-order-body-before-versions", frame("HELLO", 0, body_hex="0309" + u32(100) + u32(0) + u32(0) + "ff", version=1), "TRAILING_BYTES",
     "A HELLO offering only 3..=9 with trailing octets", "The body rule comes before version negotiation"),
    ("3.2-order-versions-before-limit", hello_frame(3, 9, max_frame=100), "UNSUPPORTED_VERSION",
     "A HELLO offering only 3..=9 with max_frame_size 100", "Version negotiation comes before the limit check"),
    ("3.2-hello-rkyv-flag", hello_frame(flags=1), "INVALID_FLAGS", "A HELLO with the RKYV flag", "HELLO defines no flag"),
]:
    case(F, cid, "MUST", f"{title}: {code}", f"{why} (3.2).", [preface(), step, err(code, 0), closed("any")])
F = "2.7-processing-order.json"
for cid, steps, title, why in [
    ("2.7-version-before-duplicate", [compute(5, SLOW), echo(5, b"x", version=2), err("VERSION_MISMATCH", 0), closed("any")],
     "A version-2 ECHO reusing an outstanding ID on v1: VERSION_MISMATCH", "rule 3 before rule 4"),
    ("2.7-type-before-role", [frame("0x7F", 6, body_hex="", flags=2), err("UNKNOWN_TYPE", 6)] + still_alive(),
     "A reserved type with an undefined flag: UNKNOWN_TYPE", "rule 5 before rule 7"),
    ("2.7-role-before-flags", [frame("PONG", 6, {"data": 1}, flags=2), err("UNEXPECTED_MESSAGE", 6)] + still_alive(),
     "A PONG with an undefined flag: UNEXPECTED_MESSAGE", "rule 6 before rule 7"),
    ("2.7-flags-before-id", [echo(0, b"x", flags=2), err("INVALID_FLAGS", 0)] + still_alive(),
     "An ECHO with ID 0 and an undefined flag: INVALID_FLAGS", "rule 7 before rule 8"),
    ("2.7-id-before-body", [frame("ECHO", 0, body_hex="ff"), err("INVALID_REQUEST_ID", 0)] + still_alive(),
     "An ECHO with ID 0 and a malformed body: INVALID_REQUEST_ID", "rule 8 before rule 9"),
    ("2.7-body-before-argument", [frame("COMPUTE", 6, body_hex=u32(0) + u32(1) + "61" + "ff"), err("TRAILING_BYTES", 6)] + still_alive(),
     "A COMPUTE of cost 0 with a trailing octet: TRAILING_BYTES", "rule 9 before rule 10"),
    ("2.7-argument-before-shutting-down", [compute(1, SLOW), goodbye(), compute(2, 0),
      unordered(err("INVALID_ARGUMENT", 2), result(1, SLOW))] + GOODBYE_CLOSE,
     "A COMPUTE of cost 0 after the client's GOODBYE: INVALID_ARGUMENT", "rule 10.1 before 10.2"),
]:
    case(F, cid, "MUST", title, f"Two faults whose answer depends on the order of 2.7: {why}.", [hs(1)] + steps,
         timing=any("COMPUTE" in json.dumps(st) and "cost\": " + str(SLOW) in json.dumps(st) for st in steps))

# C.15: retry_after_ms.
F = "3.8-goodbye.json"
case(F, "3.8-ping-after-goodbye", "MUST", "A PING after the client's GOODBYE is SHUTTING_DOWN, not PONG",
     "Every request after GOODBYE, PING included, is refused (3.5, 3.8).",
     [hs(1), compute(1, SLOW), goodbye(), ping(2, 5), unordered(err("SHUTTING_DOWN", 2), result(1, SLOW))] + GOODBYE_CLOSE,
     timing=True)
case(F, "3.8-shutting-down-after-goodbye-no-hint", "MUST", "SHUTTING_DOWN after the client's own GOODBYE carries retry_after_ms 0",
     "The client started the drain, so there is no retry hint (3.8, 4.8).",
     [hs(2), compute(1, SLOW), goodbye(), echo(2, b"late"),
      unordered(err_body("SHUTTING_DOWN", 2, retry_after_ms=0), result(1, SLOW))] + GOODBYE_CLOSE, requires=["v2"], timing=True)
F = "5.4-unexpected-input.json"
for cid, step, code, rid in [
    ("5.4-v2-request-error-no-retry-hint", frame("0x7F", 9, body_hex=""), "UNKNOWN_TYPE", 9),
    ("5.4-v2-flags-error-no-retry-hint", ping(9, flags=2), "INVALID_FLAGS", 9),
]:
    case(F, cid, "MUST", f"{code} in version 2 carries retry_after_ms 0",
         "retry_after_ms is 0 for every code but BUSY and SHUTTING_DOWN (4.8).",
         [hs(2), step, err_body(code, rid, retry_after_ms=0)] + still_alive(), requires=["v2"])

# C.16: several faults in one body: front to back, the first wins.
F = "6-bodies.json"
for cid, body_hex, code, title in [
    ("6.10-invalid-utf8-then-trailing", "0000" + u32(2) + "c328" + "ff", "INVALID_UTF8", "invalid UTF-8 followed by a trailing octet"),
    ("6.10-length-beyond-body-over-invalid-utf8", "0000" + u32(10) + "c328", "MALFORMED_BODY", "a message length past the body over invalid octets"),
]:
    case(F, cid, "MUST", f"A GOODBYE with {title}: {code}", "The body is decoded front to back; the first fault wins (6.10).",
         [hs(1), frame("GOODBYE", 0, body_hex=body_hex), err(code, 0)] + still_alive())
case(F, "6.10-invalid-string-before-short-field", "MUST", "A v2 ERROR whose message is invalid UTF-8 and whose retry_after_ms is missing: INVALID_UTF8",
     "The string comes before the missing field, so its fault wins (6.10).",
     [hs(2), frame("ERROR", 4, body_hex="001b" + u32(2) + "c328"), err("INVALID_UTF8", 4)] + still_alive(), requires=["v2"])

# 6.9: archived bodies from the diagram.
F = "6-bodies.json"
def rkyv_le(values, pad_front=0, pad_back=0):
    data = bytes(pad_front) + b"".join(struct.pack("<q", v) for v in values) + bytes(pad_back)
    return data + struct.pack("<i", pad_front - len(data)) + struct.pack("<I", len(values))
for cid, body, values, title in [
    ("6.9-rkyv-empty", rkyv_le([]), [], "the empty archive (the 8-octet root alone)"),
    ("6.9-rkyv-padded", rkyv_le([40, 2], pad_front=8, pad_back=4), [40, 2], "a non-canonical archive with padding"),
]:
    case(F, cid, "MUST", f"SUM with {title} is answered", "Receivers accept every archive that passes 6.9.3 (6.9); the "
         "archive is exactly the body, its root found from the end (6.9.1), so padding before the data is no fault.",
         [hs(2, caps=1), frame("SUM", 1, body_hex=body.hex(), flags=1), exp("SUM_RESULT", 1, count=len(values), sum=sum(values))],
         requires=["v2", "rkyv"])
for rule, body in [(1, bytes(4)), (2, bytes(2) + struct.pack("<iI", -2, 0)), (3, struct.pack("<q", 1) + struct.pack("<iI", -16, 1)),
                   (4, bytes(4) + struct.pack("<q", 1) + struct.pack("<iI", -8, 1)), (5, struct.pack("<q", 1) + struct.pack("<iI", -8, 0xFFFFFFFF))]:
    case(F, f"6.9-rkyv-rule-{rule}", "MUST", f"An archive failing validation rule {rule} is MALFORMED_BODY",
         "Receivers reject every archive that fails a rule of 6.9.3 (6.9).",
         [hs(2, caps=1), frame("SUM", 1, body_hex=body.hex(), flags=1), err("MALFORMED_BODY", 1)] + still_alive(),
         requires=["v2", "rkyv"])

# ---- limits at their edges (profiles: the runner starts the target with these settings) ----------
# Profile "small": max_frame_size 4096 (the minimum of 3.4), max_outstanding 2.
# Profile "busy": one heavy-request worker with a queue of one, max_outstanding 16.
def echo_len(id_, length): return {"send": {"echo_fill": {"request_id": id_, "length": length}}}
def reply_len(id_, length): return {"expect": {"frame": {"type": "ECHO_REPLY", "request_id": id_, "length": length}}}
F = "3.4-limits.json"
case(F, "3.4-response-at-client-limit", "MUST", "A response whose Length equals the client's max_frame_size is sent",
     "The client announced 4096; an ECHO of Length 4096 is answered with an ECHO_REPLY of Length 4096 (3.4).",
     [hs(1, max_frame=4096), echo_len(1, 4096), reply_len(1, 4096)] + still_alive())
case(F, "3.4-response-too-large", "MUST", "A response above the client's max_frame_size is ERROR RESPONSE_TOO_LARGE",
     "The client announced 4096; the reply to an ECHO of Length 4097 would exceed it, so the server answers "
     "the request with ERROR RESPONSE_TOO_LARGE and the connection continues (3.4, 5.4).",
     [hs(1, max_frame=4096), echo_len(1, 4097), err("RESPONSE_TOO_LARGE", 1)] + still_alive())
case(F, "3.4-response-too-large-v2", "MUST", "RESPONSE_TOO_LARGE in version 2, retry_after_ms 0",
     "(3.4, 4.8: retry_after_ms is 0 for every code but BUSY and SHUTTING_DOWN)",
     [hs(2, max_frame=4096), echo_len(1, 5000), exp("ERROR", 1, code="RESPONSE_TOO_LARGE", retry_after_ms=0)] + still_alive(),
     requires=["v2"])
case(F, "3.4-response-too-large-then-fits", "MUST", "After RESPONSE_TOO_LARGE a smaller request is served",
     "(3.4)", [hs(1, max_frame=4096), echo_len(1, 8192), err("RESPONSE_TOO_LARGE", 1), echo_len(2, 4000), reply_len(2, 4000)])
case(F, "3.4-client-limit-above-16mib-is-16mib", "MUST", "A client max_frame_size above 16 MiB is treated as 16 MiB",
     "HELLO announces 2^32-1; the server accepts it (3.4) and serves requests.",
     [hs(1, max_frame=0xFFFFFFFF)] + still_alive())
case(F, "3.4-small-welcome-announces-4096", "MUST", "A server configured with the minimum limit announces 4096",
     "(3.4; profile small)", [hs(1), nothing(0)] if False else
     [{"handshake": {"min_version": 1, "max_version": 1, "max_frame_size": 16 << 20, "capabilities": 0,
                     "expect": {"body": {"max_frame_size": 4096, "max_outstanding": 2}}}}] + still_alive(), profile="small")
case(F, "3.4-small-length-4096-accepted", "MUST", "At the minimum limit, a frame of Length 4096 is served",
     "(2.2, 3.4; profile small)", [hs(1), echo_len(1, 4096), reply_len(1, 4096)] + still_alive(), profile="small")
case(F, "3.4-small-length-4097-too-large", "MUST", "At the minimum limit, Length 4097 is FRAME_TOO_LARGE",
     "(2.2, 3.4; profile small)", [hs(1), {"send": {"length_prefix": 4097}}, err("FRAME_TOO_LARGE", 0), closed()],
     profile="small")
case(F, "3.4-small-length-limit-expression", "MUST", "The announced limit, read from WELCOME, is enforced exactly",
     "(2.2, 3.4; profile small)", [hs(1), echo_len(1, "limit+1"), err("FRAME_TOO_LARGE", 0), closed()], profile="small")

F = "8.4-limits.json"
case(F, "8.4-small-max-outstanding-exact", "MUST", "The request above max_outstanding is TOO_MANY_OUTSTANDING",
     "max_outstanding is 2: two slow COMPUTEs are outstanding, a third request is refused with "
     "TOO_MANY_OUTSTANDING, the two are answered (2.7 rule 10, 8.4; profile small).",
     [hs(1), compute(1, SLOW), compute(2, SLOW), compute(3, 1),
      unordered(err("TOO_MANY_OUTSTANDING", 3), result(1, SLOW), result(2, SLOW))] + still_alive(), profile="small", coalesce=False, timing=True)
case(F, "8.4-small-ping-counts-as-outstanding", "MUST", "A PING above max_outstanding is TOO_MANY_OUTSTANDING",
     "PING counts against max_outstanding like every request (2.7 rule 10.3; profile small).",
     [hs(1), compute(1, SLOW), compute(2, SLOW), ping(3, 5),
      unordered(err("TOO_MANY_OUTSTANDING", 3), result(1, SLOW), result(2, SLOW))], profile="small", coalesce=False, timing=True)
case(F, "8.4-small-outstanding-freed-by-responses", "MUST", "Answered requests free their place under max_outstanding",
     "(8.4; profile small)",
     [hs(1), compute(1, 10), compute(2, 10), unordered(result(1, 10), result(2, 10)),
      compute(3, 10), compute(4, 10), unordered(result(3, 10), result(4, 10))], profile="small", coalesce=False)
case(F, "8.4-small-outstanding-freed-by-errors", "MUST", "A request answered with an ERROR is no longer outstanding",
     "(8.4; profile small)",
     [hs(1), compute(1, 0), compute(2, 0), unordered(err("INVALID_ARGUMENT", 1), err("INVALID_ARGUMENT", 2)),
      compute(3, 10), compute(4, 10), unordered(result(3, 10), result(4, 10))], profile="small", coalesce=False)
case(F, "8.4-small-argument-before-outstanding", "MUST", "INVALID_ARGUMENT comes before TOO_MANY_OUTSTANDING",
     "Two slow COMPUTEs fill max_outstanding; a COMPUTE with cost 0 is INVALID_ARGUMENT, not TOO_MANY_OUTSTANDING "
     "(2.7 rule 10.1 before 10.3; profile small).",
     [hs(1), compute(1, SLOW), compute(2, SLOW), compute(3, 0),
      unordered(err("INVALID_ARGUMENT", 3), result(1, SLOW), result(2, SLOW))], profile="small", coalesce=False, timing=True)
case(F, "8.4-small-too-many-is-not-fatal", "MUST", "TOO_MANY_OUTSTANDING keeps the connection",
     "(5.4; profile small)",
     [hs(1), compute(1, SLOW), compute(2, SLOW), echo(3, b"x"),
      unordered(err("TOO_MANY_OUTSTANDING", 3), result(1, SLOW), result(2, SLOW)), echo(4, b"y"), reply(4, b"y")],
     profile="small", coalesce=False, timing=True)
case(F, "8.4-busy-third-heavy-request", "SHOULD", "With one worker and a queue of one, the third COMPUTE is BUSY",
     "Heavy work runs on a bounded queue: one COMPUTE runs, one waits, the third is answered BUSY (8.4; profile busy).",
     [hs(1), compute(1, SLOW), compute(2, SLOW), compute(3, SLOW),
      unordered(err("BUSY", 3), result(1, SLOW), result(2, SLOW))], profile="busy", coalesce=False, timing=True)
case(F, "8.4-busy-v2-retry-after", "MUST", "BUSY in version 2 is a request error of the frame's ID",
     "(4.8, 8.4; profile busy)",
     [hs(2), compute(1, SLOW), compute(2, SLOW), compute(3, SLOW),
      unordered({"expect": {"frame": {"type": "ERROR", "request_id": 3, "body": {"code": "BUSY"}}}},
                result(1, SLOW), result(2, SLOW))] + still_alive(), requires=["v2"], profile="busy", coalesce=False, timing=True)
case(F, "8.4-busy-light-requests-still-served", "MUST", "While the workers are busy, ECHO and PING are answered at once",
     "Heavy work must not block the connection: with the only worker busy, an ECHO and a PING sent after the "
     "COMPUTEs are answered before the COMPUTE results (3.6, 8.4; profile busy).",
     [hs(1), compute(1, SLOW), compute(2, SLOW), echo(3, b"e"), ping(4, 9), reply(3, b"e"), pong(4, 9),
      unordered(result(1, SLOW), result(2, SLOW))], profile="busy", coalesce=False, timing=True)
case(F, "8.4-busy-recovers", "MUST", "After BUSY, the server serves heavy requests again once the queue drains",
     "(8.4; profile busy)",
     [hs(1), compute(1, SLOW), compute(2, SLOW), compute(3, SLOW),
      {"expect": {"unordered": [{"request_id": 3, "$one_of": [{"type": "ERROR", "body": {"code": "BUSY"}},
                                                              {"type": "COMPUTE_RESULT"}]}]}},
      unordered(result(1, SLOW), result(2, SLOW)), compute(4, 10), result(4, 10)], profile="busy", coalesce=False, timing=True)

# Profile "crowded": a connection limit of 2 (the --exec template's {max_connections}).
def parallel(steps, n=1): return {"parallel": {"connections": n, "steps": steps}}
REFUSED = [err("CONNECTION_LIMIT", 0), closed()]
case(F, "8.4-crowded-third-connection-refused", "SHOULD", "At the connection limit a new connection gets CONNECTION_LIMIT",
     "With two connections open (the limit), a third is sent ERROR CONNECTION_LIMIT with ID 0 without waiting for "
     "its preface and closed lingeringly; the two open ones are still served (8.4; profile crowded).",
     [hs(1), parallel([hs(1), parallel(REFUSED), ping(2, 2), pong(2, 2), half_close()] + GOODBYE_CLOSE)]
     + still_alive(), profile="crowded", coalesce=False)
case(F, "8.4-crowded-place-freed-on-close", "SHOULD", "A closed connection frees its place under the limit",
     "A second connection fills the limit and a third is refused; once the second and the refused one are closed, "
     "a new connection is served (8.4: a connection counts until its socket is closed, which a lingering close "
     "does within its bound, 3.10: the new connection waits 1.5 s; profile crowded).",
     [hs(1), parallel([hs(1), parallel(REFUSED), half_close()] + GOODBYE_CLOSE), {"pause": {"ms": 1500}},
      parallel([hs(1), echo(5, b"again"), reply(5, b"again"), half_close()] + GOODBYE_CLOSE)]
     + still_alive(), profile="crowded", coalesce=False, timing=True)
case(F, "8.4-crowded-refusal-is-version-1", "MUST", "CONNECTION_LIMIT is sent with header version 1 and ID 0",
     "The refusal comes before any handshake, so it is a version-1 frame (8.4; profile crowded).",
     [hs(2), parallel([hs(1), parallel([{"expect": {"frame": {"type": "ERROR", "version": 1, "request_id": 0,
                                                             "body": {"code": "CONNECTION_LIMIT"}}}}, closed()]),
                       half_close()] + GOODBYE_CLOSE)]
     + still_alive(), profile="crowded", coalesce=False, requires=["v2"])

# ---- 3.8 the server's own shutdown (the runner signals the target: SIGTERM) -------------------------
SIGTERM = {"signal": "terminate"}
SHUT = {"type": "GOODBYE", "request_id": 0, "body": {"code": "SHUTTING_DOWN"}}
# A PING answered after the COMPUTE proves the server read the COMPUTE before the signal: a request
# still in flight when the drain starts may rightly be dropped unanswered (the GOODBYE says so).
READ = [ping(99, 99), pong(99, 99)]
F = "3.8-shutdown.json"
case(F, "3.8-shutdown-idle-connection", "MUST", "On shutdown an idle connection gets GOODBYE SHUTTING_DOWN and a clean close",
     "(3.5: OPEN + server shutdown -> GOODBYE SHUTTING_DOWN; 3.8)",
     [hs(1)] + still_alive() + [SIGTERM, {"expect": {"frame": SHUT}}, closed()])
case(F, "3.8-shutdown-v2", "MUST", "Shutdown in version 2", "(3.8)",
     [hs(2)] + still_alive() + [SIGTERM, {"expect": {"frame": SHUT}}, closed()], requires=["v2"])
case(F, "3.8-shutdown-answers-outstanding", "MUST", "On shutdown, outstanding work is answered before the close",
     "A slow COMPUTE is outstanding when the server starts its shutdown: its result and GOODBYE SHUTTING_DOWN "
     "(in either order, 3.6.1 rule 4), then a clean close (3.8).",
     [hs(1), compute(1, SLOW)] + READ + [SIGTERM, {"expect": {"unordered": [SHUT, result(1, SLOW)["expect"]["frame"]]}}, closed()],
     timing=True)
case(F, "3.8-shutdown-refuses-new-requests", "MUST", "During the shutdown drain, a new request is SHUTTING_DOWN",
     "With a slow COMPUTE outstanding, the server's GOODBYE arrives; an ECHO sent after it is refused with "
     "ERROR SHUTTING_DOWN, the COMPUTE answered, then the close (3.8).",
     [hs(1), compute(1, SLOW)] + READ + [SIGTERM, {"expect": {"frame": SHUT}}, echo(2, b"late"),
      unordered(err("SHUTTING_DOWN", 2), result(1, SLOW)), closed()], timing=True)
case(F, "3.8-shutdown-ping-refused", "MUST", "During the shutdown drain, PING is SHUTTING_DOWN too",
     "(3.5: DRAINING + request of any type, PING included -> ERROR SHUTTING_DOWN)",
     [hs(1), compute(1, SLOW)] + READ + [SIGTERM, {"expect": {"frame": SHUT}}, ping(2, 1),
      unordered(err("SHUTTING_DOWN", 2), result(1, SLOW)), closed()], timing=True)
case(F, "3.8-shutdown-pipelined-before-signal", "MUST", "Requests read before the shutdown are all answered",
     "(3.8)", [hs(1), echo(1, b"a"), echo(2, b"b"), ping(3, 3), reply(1, b"a"), reply(2, b"b"), pong(3, 3),
               SIGTERM, {"expect": {"frame": SHUT}}, closed()])
case(F, "3.8-shutdown-client-goodbye-during-drain", "MUST", "A client GOODBYE during the server's drain ends it cleanly",
     "Both sides said GOODBYE: the server answers what is outstanding and closes; it sends no second GOODBYE (3.5, 3.8).",
     [hs(1), compute(1, SLOW)] + READ + [SIGTERM, {"expect": {"frame": SHUT}}, goodbye(), result(1, SLOW), closed()],
     timing=True)
case(F, "3.8-shutdown-half-close-during-drain", "MUST", "A client half-close during the server's drain: answered, then closed",
     "(3.8, 3.9)", [hs(1), compute(1, SLOW)] + READ + [SIGTERM, {"expect": {"frame": SHUT}}, half_close(), result(1, SLOW), closed()],
     timing=True)
case(F, "3.8-shutdown-drain-timeout-is-abortive", "MUST", "A shutdown drain that outlasts the drain timeout ends abortively",
     "Twelve ECHOs of the largest size are answered into a client that does not read, so output is still queued "
     "when the server starts its shutdown; the drain cannot finish, and when the drain timeout expires the server "
     "closes abortively, never with a clean end of stream that would mark queued work as not processed (3.8, 3.10, "
     "3.11). The frames that do arrive before the close are skipped. On a Unix-domain socket, which has no reset, "
     "any close is accepted.",
     [hs(1)] + [echo_len(i, "limit") for i in range(1, 13)] + [SIGTERM, {"stop_reading": {"ms": "drain_timeout+1000"}},
      {"expect": {"closed": "reset", "skip_frames": True, "within_ms": "drain_timeout+5000"}}],
     requires=["drain_timeout"], timing=True)
case(F, "3.8-shutdown-during-handshake", "MUST", "A connection still in its handshake at shutdown is closed",
     "The preface was sent but not HELLO (the connection is in PREFACE or HANDSHAKE); at shutdown the server waits at "
     "most a moment for the HELLO, then closes the connection without sending a frame, long before the handshake "
     "timeout (document 1.2: 3.5, 3.8). The close must come before the handshake timeout would have "
     "closed the connection anyway: within the handshake timeout minus 400 ms of the signal (the "
     "preface went 200 ms before it; 1.6 s for the runner's profiles, whose handshake timeout is 2 s, "
     "against the 1 s a server SHOULD wait at most). Any frame first fails the case.",
     [preface(), pause(200), SIGTERM,
      {"expect": {"closed": "clean", "at_most_ms": "handshake_timeout-400"}}])
# Document 1.2: a HELLO that arrives after the shutdown began, with a request in the same write.
HELLO_V1_HEX = "00000016" + "0101" + "0000" + "00000000" + "01" + "01" + u32(1 << 20) + u32(0) + u32(0)
case(F, "3.8-shutdown-hello-with-request", "SHOULD", "A HELLO after the shutdown began: WELCOME, GOODBYE, the request refused",
     "The preface was sent; the server begins shutting down; 100 ms later HELLO and a PING arrive in one write. "
     "A server that waits for the HELLO (SHOULD, 3.8) answers WELCOME, then GOODBYE SHUTTING_DOWN, and the PING that "
     "came with the HELLO is answered or refused with SHUTTING_DOWN, never dropped (document 1.2: nothing received "
     "is dropped); then it closes cleanly.",
     [preface(), pause(200), SIGTERM, pause(100), raw(HELLO_V1_HEX + ping_hex(7, 7)),
      exp("WELCOME"), unordered({"expect": {"frame": SHUT}},
                                {"expect": {"frame": {"request_id": 7, "$one_of": [
                                    {"type": "PONG"}, {"type": "ERROR", "body": {"code": "SHUTTING_DOWN"}}]}}}),
      closed()], timing=True)
case(F, "3.8-shutdown-reads-what-was-sent", "SHOULD", "Requests sent before the shutdown are answered or refused, never dropped",
     "Ten PINGs in one write, then the shutdown at once: every complete frame the server has read before it closes "
     "is processed, like a request that came with the HELLO (document 1.2, 3.8), and a server that begins a drain reads what the connection already "
     "delivered first (SHOULD). Each PING gets PONG or ERROR SHUTTING_DOWN, the GOODBYE SHUTTING_DOWN comes in any "
     "order among them (3.6.1 rule 4), then a clean close.",
     [hs(1), raw("".join(ping_hex(i, i) for i in range(1, 11))), SIGTERM]
     + [unordered({"expect": {"frame": SHUT}}, *[{"expect": {"frame": {"request_id": i, "$one_of": [
         {"type": "PONG"}, {"type": "ERROR", "body": {"code": "SHUTTING_DOWN"}}]}}} for i in range(1, 11)]), closed()],
     timing=True)

# ---- round 3: the fault pairs of 2.7, request type x lifecycle state, and the families' gaps -------------
# 2.7: every pair of two faults in one frame, answered by the earlier rule. The faults, in rule order:
# V version (3), D duplicate ID (4), T unknown type (5), R a response type sent to a server (6),
# L an undefined flag (7), I request ID 0 (8), B a trailing octet (9), A COMPUTE cost 0 (10.1).
RULES = "VDTRLIBA"
RULE_NO = {"V": "3", "D": "4", "T": "5", "R": "6", "L": "7", "I": "8", "B": "9", "A": "10.1"}
RULE_WHAT = {"V": "header version 2 on a version-1 connection", "D": "an ID still outstanding",
             "T": "the undefined type 0x42", "R": "type PONG", "L": "the undefined flag 0x0100",
             "I": "request ID 0", "B": "an octet after the body", "A": "COMPUTE cost 0"}
RULE_ERR = {"V": "VERSION_MISMATCH", "D": "DUPLICATE_REQUEST_ID", "T": "UNKNOWN_TYPE", "R": "UNEXPECTED_MESSAGE",
            "L": "INVALID_FLAGS", "I": "INVALID_REQUEST_ID", "B": "TRAILING_BYTES", "A": "INVALID_ARGUMENT"}
EXISTING_PAIRS = {"VD", "TL", "RL", "LI", "IB", "BA"}
F = "2.7-processing-order.json"
for x in range(len(RULES)):
    for y in range(x + 1, len(RULES)):
        a, b = RULES[x], RULES[y]
        pair = a + b
        if pair in EXISTING_PAIRS or pair in ("TR", "TA", "RA", "DI"):
            continue
        faults = set(pair)
        type_ = "0x42" if "T" in faults else "PONG" if "R" in faults else "COMPUTE" if "A" in faults else "ECHO"
        rid = 0 if "I" in faults else 5 if "D" in faults else 6
        body = {"0x42": "", "PONG": "00" * 8, "COMPUTE": u32(0) + u32(4) + b"seed".hex(), "ECHO": u32(1) + "78"}[type_]
        if "B" in faults:
            body += "ff"
        f = frame(type_, rid, body_hex=body, flags=0x0100 if "L" in faults else 0, version=2 if "V" in faults else None)
        steps = [hs(1)] + ([compute(5, SLOW)] if "D" in faults else []) + [f]
        if a in "VD":
            steps += [err(RULE_ERR[a], 0), closed("any")]
        else:
            steps += [err(RULE_ERR[a], 0 if (rid == 0 or a == "I") else rid)] + still_alive()
        cid = f"2.7-pair-{RULE_ERR[a].lower().replace('_', '-')}-over-{RULE_ERR[b].lower().replace('_', '-')}"
        case(F, cid, "MUST", f"{RULE_WHAT[a].capitalize()} and {RULE_WHAT[b]}: {RULE_ERR[a]}",
             f"One frame with two faults: {RULE_WHAT[a]} (rule {RULE_NO[a]}) and {RULE_WHAT[b]} (rule {RULE_NO[b]}); "
             f"the earlier rule of 2.7 decides the answer, {RULE_ERR[a]}"
             + (" (a connection error, ID 0, then the close)." if a in "VD" else
                ", with the frame's ID (ID 0 when the frame's ID is 0, or for rule 8); the connection continues."),
             steps, timing="D" in faults)

# Request type x lifecycle: every request type after the client's GOODBYE and during the server's shutdown
# drain is SHUTTING_DOWN (3.5: DRAINING + request of any type); faults decided before rule 10.2 keep their
# own code while draining (2.7).
F = "3.8-goodbye.json"
for name, req, v in [("compute", compute(2, 10), 1), ("sum", sum_(2, [1, 2]), 1), ("stats", frame("STATS", 2, {}), 2)]:
    case(F, f"3.8-{name}-after-goodbye", "MUST", f"A {name.upper()} after the client's GOODBYE is SHUTTING_DOWN",
         "Every request after GOODBYE is refused, whatever its type (3.5, 3.8).",
         [hs(v), compute(1, SLOW), goodbye(), req, unordered(err("SHUTTING_DOWN", 2), result(1, SLOW))] + GOODBYE_CLOSE,
         requires=["v2"] if v == 2 else (), timing=True)
for name, f, code, rid, why in [
    ("unknown-type", frame("0x42", 2, body_hex=""), "UNKNOWN_TYPE", 2, "rule 5"),
    ("undefined-flag", echo(2, b"x", flags=0x0100), "INVALID_FLAGS", 2, "rule 7"),
    ("id-0", echo(0, b"x"), "INVALID_REQUEST_ID", 0, "rule 8"),
    ("trailing-octet", frame("ECHO", 2, body_hex=u32(1) + "78" + "ff"), "TRAILING_BYTES", 2, "rule 9"),
]:
    case(F, f"3.8-draining-{name}-keeps-its-code", "MUST", f"While draining, a frame failing {why} gets {code}, not SHUTTING_DOWN",
         f"2.7: {why} comes before rule 10.2 (draining), so the drain does not change the answer.",
         [hs(1), compute(1, SLOW), goodbye(), f, unordered(err(code, rid), result(1, SLOW))] + GOODBYE_CLOSE, timing=True)
F = "3.8-shutdown.json"
for name, req, v in [("compute", compute(2, 10), 1), ("sum", sum_(2, [1, 2]), 1), ("stats", frame("STATS", 2, {}), 2),
                     ("echo-v2", echo(2, b"late"), 2)]:
    case(F, f"3.8-shutdown-refuses-{name}", "MUST", f"During the shutdown drain, {name.split('-')[0].upper()} is SHUTTING_DOWN",
         "A request that arrives after the server's GOODBYE SHUTTING_DOWN is refused, whatever its type (3.5, 3.8).",
         [hs(v), compute(1, SLOW)] + READ + [SIGTERM, {"expect": {"frame": SHUT}}, req,
          unordered(err("SHUTTING_DOWN", 2), result(1, SLOW)), closed()], requires=["v2"] if v == 2 else (), timing=True)

# Bodies: a short body and a trailing octet for the types that lacked them (6.1, 5.4).
F = "5.4-unexpected-input.json"
for cid, f, code, rid, what, v in [
    ("6.1-echo-short", frame("ECHO", 3, body_hex="0000"), "MALFORMED_BODY", 3, "ECHO cut inside the payload length", 1),
    ("6.1-echo-payload-short", frame("ECHO", 3, body_hex=u32(3) + "6869"), "MALFORMED_BODY", 3, "ECHO whose payload is one octet short", 1),
    ("6.1-sum-short", frame("SUM", 3, body_hex=u32(1) + "00" * 7), "MALFORMED_BODY", 3, "SUM cut inside its value", 1),
    ("5.4-trailing-compute", frame("COMPUTE", 3, body_hex=u32(10) + u32(1) + "61" + "00"), "TRAILING_BYTES", 3, "COMPUTE with a byte after the seed", 1),
    ("5.4-trailing-goodbye", frame("GOODBYE", 0, body_hex="0000" + u32(0) + "00"), "TRAILING_BYTES", 0, "GOODBYE with a byte after the message", 1),
    ("5.4-trailing-stats", frame("STATS", 3, body_hex="00"), "TRAILING_BYTES", 3, "STATS with a body", 2),
    ("5.4-trailing-ping-v2", frame("PING", 3, body_hex="00" * 9), "TRAILING_BYTES", 3, "PING with 9 body bytes on version 2", 2),
]:
    case(F, cid, "MUST", f"{what}: {code}", "A body that does not match its layout is a request error; the connection "
         "continues (6, 2.7 rule 9).", [hs(v), f, err(code, rid)] + still_alive(), requires=["v2"] if v == 2 else ())

# Flags and IDs for the types that lacked them (2.4, 2.5).
F = "2.4-flags.json"
for cid, f, rid, v in [("2.4-cancel-bit-3", cancel(3, flags=0x0008), 3, 1),
                       ("2.4-goodbye-bit-12", frame("GOODBYE", 0, {"code": "NO_ERROR", "message": ""}, flags=0x1000), 0, 1),
                       ("2.4-stats-bit-2", frame("STATS", 3, {}, flags=0x0004), 3, 2),
                       ("2.4-echo-bit-14-v2", echo(3, b"x", flags=0x4000), 3, 2)]:
    case(F, cid, "MUST", "An undefined flag is INVALID_FLAGS, and the frame is otherwise ignored",
         "Undefined flags MUST be zero; the receiver answers INVALID_FLAGS and continues (2.4, 2.7 rule 7). A GOODBYE so "
         "rejected does not start a drain.", [hs(v), f, err("INVALID_FLAGS", rid)] + still_alive(),
         requires=["v2"] if v == 2 else ())
F = "2.5-request-ids.json"
for cid, f, v in [("2.5-sum-id-0", sum_(0, [1]), 1), ("2.5-stats-id-0", frame("STATS", 0, {}), 2),
                  ("2.5-echo-id-0-v2", echo(0, b"x"), 2)]:
    case(F, cid, "MUST", "A request with ID 0 is INVALID_REQUEST_ID (ID 0)", "(2.5, 2.7 rule 8)",
         [hs(v), f, err("INVALID_REQUEST_ID", 0)] + still_alive(), requires=["v2"] if v == 2 else ())

# Header versions a version-2 connection must refuse (5.4), and versions never defined.
F = "5.4-unexpected-input.json"
for cid, v_conn, v_frame in [("5.4-version-3-frame-on-v2", 2, 3), ("5.4-version-255-frame-on-v1", 1, 255),
                             ("5.4-version-0-frame-on-v2", 2, 0)]:
    case(F, cid, "MUST", f"A frame in header version {v_frame} on a version-{v_conn} connection: VERSION_MISMATCH",
         "(2.7 rule 3: a connection error, ID 0, then the close)",
         [hs(v_conn), echo(1, b"x", version=v_frame), err("VERSION_MISMATCH", 0), closed("any")],
         requires=["v2"] if v_conn == 2 else ())

# Cancel of a queued COMPUTE, made deterministic by the busy profile (one worker, a queue of one).
F = "3.7-cancel.json"
case(F, "3.7-busy-cancel-queued-is-cancelled", "MUST", "CANCEL of a COMPUTE still waiting in the queue is CANCELLED",
     "With one worker busy, the second COMPUTE waits; the server has not started it, so it MUST drop it and answer "
     "ERROR CANCELLED (3.7; profile busy).",
     [hs(1), compute(1, SLOW), compute(2, SLOW)] + READ + [cancel(2),
      unordered(err("CANCELLED", 2), result(1, SLOW))] + still_alive(), profile="busy", coalesce=False, timing=True)
F = "3.8-goodbye.json"
case(F, "3.8-cancel-after-goodbye", "MUST", "CANCEL after the client's GOODBYE still acts on an outstanding request",
     "CANCEL is not a request, so the drain does not refuse it: the outstanding COMPUTE gets exactly one response, "
     "ERROR CANCELLED or its result, then GOODBYE (3.7, 3.8).",
     [hs(1), compute(1, SLOW), goodbye(), cancel(1), one_of(err("CANCELLED", 1), result(1, SLOW))] + GOODBYE_CLOSE,
     timing=True)

# Half-close after each kind of request (3.9).
F = "3.9-half-close.json"
for cid, req, resp in [("3.9-after-sum", sum_(1, [2, 3]), exp("SUM_RESULT", 1)), ("3.9-after-ping", ping(1, 4), pong(1, 4)),
                       ("3.9-after-cancel-of-compute", None, None)]:
    if req is None:
        steps = [hs(1), compute(1, SLOW), cancel(1), half_close(),
                 one_of(err("CANCELLED", 1), result(1, SLOW))] + GOODBYE_CLOSE
        case(F, cid, "MUST", "Half-close after CANCEL: the request still gets exactly one response, then GOODBYE",
             "(3.7, 3.9)", steps, timing=True)
    else:
        case(F, cid, "MUST", "After a half-close, the last request is answered, then GOODBYE and a clean close",
             "(3.9)", [hs(1), req, half_close(), resp] + GOODBYE_CLOSE)

# Pipelining in version 2 (3.6).
F = "3.6-pipelining.json"
case(F, "3.6-pipeline-10-v2", "MUST", "Ten pipelined ECHOs on version 2 are each answered", "(3.6)",
     [hs(2)] + [echo(i, bytes([i])) for i in range(1, 11)] + [reply(i, bytes([i])) for i in range(1, 11)], requires=["v2"])
case(F, "3.6-mixed-types-v2", "MUST", "PING, ECHO, SUM, STATS and COMPUTE pipelined on version 2", "(3.6)",
     [hs(2), ping(1, 1), echo(2, b"e"), sum_(3, [5]), frame("STATS", 4, {}), compute(5, 10),
      pong(1, 1), reply(2, b"e"), exp("SUM_RESULT", 3), exp("STATS_REPLY", 4), result(5, 10)], requires=["v2"])

# the many-computes case above used a shortcut: rewrite it properly
for c in CASES["3.6-pipelining.json"]:
    if c["id"] == "3.6-many-computes":
        c["steps"] = [hs(1)] + [compute(i, 100 * i) for i in range(1, 9)] + [
            unordered(*[{"expect": {"frame": {"request_id": i, "$one_of": [
                {"type": "COMPUTE_RESULT", "body": {"digest": digest(100 * i, b"seed")}},
                {"type": "ERROR", "body": {"code": "BUSY"}}]}}} for i in range(1, 9)])]

# Spec 3.6.1: responses may come in any order. Consecutive expectations of responses (nothing sent
# between them) become one unordered expectation, so that every case accepts every permitted order.
# The cases that test an order the spec requires (no head-of-line blocking) are left as written.
ORDER_IS_THE_POINT = {"3.6-slow-request-does-not-block", "3.6-ping-while-compute-runs"}
CONNECTION_CODES = registry.CONNECTION_ERRORS
def response_patterns(step):
    e = step.get("expect")
    if not e or "within_ms" in e or "at_most_ms" in e:
        return None
    pats = [e["frame"]] if "frame" in e else e.get("unordered")
    if not pats:
        return None
    def is_response(p):
        rid = p.get("request_id")
        if rid is None:
            return False
        if rid != 0:
            return True
        return p.get("type") == "ERROR" and p.get("body", {}).get("code") not in CONNECTION_CODES | {None}
    return pats if all(is_response(p) for p in pats) else None
def permit_orders(steps):
    out, group = [], []
    def flush():
        if len(group) > 1:
            out.append({"expect": {"unordered": [p for g in group for p in g[1]]}})
        else:
            out.extend(g[0] for g in group)
        group.clear()
    for st in steps:
        pats = response_patterns(st)
        if pats is not None:
            group.append((st, pats))
            continue
        flush()
        out.append(st)
    flush()
    return out
for cases in CASES.values():
    for c in cases:
        if c["id"] not in ORDER_IS_THE_POINT:
            c["steps"] = permit_orders(c["steps"])

# ---- the spec's words: each case refers to the sentence(s) of spec/PROTOCOL.md it tests ---------
# A reference is a section and a quote (the sentence's first words, as many as make it unique in
# its section); the runner shows the whole sentence, read from PROTOCOL.md when it is built, and
# its tests fail if a quote no longer resolves to exactly one sentence. The sentence is chosen by
# the rule coverage.py documents (section plus a shared key term), the best-scoring first.
sys.path.insert(0, HERE)
import coverage as cov  # noqa: E402

SENTENCES = cov.sentences()


def prose(text):
    return len(text) >= 30 and re.search(r"[a-z]{3}", text) and "```" not in text and "+--" not in text


def quote_for(section, text):
    same = [t for sec, t in SENTENCES if sec == section]
    words = text.split(" ")
    for k in range(6, len(words) + 1):
        q = " ".join(words[:k])
        if sum(q in t for t in same) == 1:
            return q
    return text


def spec_refs(c):
    blob = json.dumps(c["steps"]) + " " + c["title"] + " " + c["description"]
    cited = set(re.findall(r"\b(\d+(?:\.\d+)*)\b", c["description"])) | {c["section"]}
    scored = []
    for n, (sec, text) in enumerate(SENTENCES):
        if not cov.KEYWORD.search(text) or not prose(text):
            continue
        keys = cov.terms(text)
        shared = [k for k in keys if k in blob]
        hit = (cov.in_section(cited, sec) and (not keys or shared)) or (cov.in_parent(cited, sec) and shared)
        if hit:
            score = 10 * (sec == c["section"]) + 2 * len(shared) + (sec in cited)
            scored.append((-score, n, sec, text))
    scored.sort()
    if scored:
        best = scored[0][0]
        chosen = [(sec, text) for score, _n, sec, text in scored if score == best][:2]
    else:
        own = [(sec, t) for sec, t in SENTENCES if sec == c["section"] and prose(t)]
        keyed = [(sec, t) for sec, t in own if any(k in blob for k in cov.terms(t))]
        reqs = [(sec, t) for sec, t in own if cov.KEYWORD.search(t)]
        chosen = (keyed or reqs or own)[:1]
    assert chosen, f"no sentence of section {c['section']} for {c['id']}"
    return [{"section": sec, "quote": quote_for(sec, text)} for sec, text in chosen]


for cases in CASES.values():
    for c in cases:
        c["spec"] = spec_refs(c)

total = 0
for name, cases in sorted(CASES.items()):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump({"format": "echowire-conformance", "format_version": 1, "generated_by": "spec/conformance/generate.py",
                   "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total += len(cases)
print(f"{total} cases in {len(CASES)} files")


def readme_tables():
    """The case counts in README.md, generated: the headline and the per-section table (between
    its markers), so they cannot drift from the case files."""
    import re
    titles = {}
    with open(os.path.join(HERE, "..", "PROTOCOL.md")) as f:
        for line in f:
            m = re.match(r"^#{2,4} (\d+(?:\.\d+)*)\.? +(.*?)\s*$", line)
            if m and m.group(1) not in titles:
                titles[m.group(1)] = m.group(2)
    by = {}
    for cases in CASES.values():
        for c in cases:
            by.setdefault(c["section"], []).append(c["level"])
    key = lambda sec: [int(x) for x in sec.split(".")]
    rows = ["| section | title | cases | MUST | SHOULD |", "|---|---|--:|--:|--:|"]
    for sec in sorted(by, key=key):
        levels = by[sec]
        rows.append(f"| {sec} | {titles.get(sec, '')} | {len(levels)} | {levels.count('MUST')} | {levels.count('SHOULD')} |")
    every = [l for v in by.values() for l in v]
    rows.append(f"| | **all** | **{len(every)}** | **{every.count('MUST')}** | **{every.count('SHOULD')}** |")
    path = os.path.join(HERE, "README.md")
    text = open(path).read()
    begin = "<!-- cases by section: generated by generate.py -->"
    end = "<!-- end of cases by section -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + begin + "\n" + "\n".join(rows) + "\n" + end + tail
    text = re.sub(r"^\d+ language-neutral cases \(\d+ MUST, \d+ SHOULD\)",
                  f"{len(every)} language-neutral cases ({every.count('MUST')} MUST, {every.count('SHOULD')} SHOULD)",
                  text, count=1, flags=re.M)
    with open(path, "w") as f:
        f.write(text)


readme_tables()
