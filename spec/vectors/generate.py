#!/usr/bin/env python3
"""Generates the Echowire test vectors from the specification, independently of any implementation.

Every byte here is built with struct.pack from the layouts in spec/PROTOCOL.md; no Echowire code is
imported. Run it from anywhere: `python3 spec/vectors/generate.py` rewrites the JSON files next to it.
"""
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import registry  # noqa: E402  (spec/registry.py: the codes, from spec/registry.json)

PREFACE = registry.PREFACE
DEFAULT_MAX = 1 << 20

HANDSHAKE_MAX = 4096  # spec 2.2: the limit in force before WELCOME, at either side

TYPES = registry.MESSAGE_CODES
CODES = registry.ERROR_CODES
SCOPES = {e["name"]: e["scopes"] for e in registry.ERRORS}


def error_scope(code, direction, version):
    """The scope of an invalid vector's error, from the spec's text:

    * at a client every fault of the server is a connection error (9.2, 9.3: "A client has no
      request errors");
    * before WELCOME there are no request errors (2.7, 3.2), and a partial HELLO closes too (3.9);
    * otherwise the code's registry scope (7.1): C "connection", D "truncated" (TRUNCATED_FRAME:
      ID 0, the requests before it are still answered and the connection drains, 3.9), R "request".
    """
    if direction == C or version is None:
        return "connection"
    scopes = SCOPES[code]
    for s in ("connection", "truncated", "request"):
        if s in scopes:
            return s
    raise ValueError(f"{code} has no receiver scope: {scopes}")

# ---- body encoding (spec section 6) ---------------------------------------------------------
def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def i64(v): return struct.pack(">q", v)
def byts(b): return u32(len(b)) + b
def string(s): return byts(s.encode() if isinstance(s, str) else s)
def seq(items, enc): return u32(len(items)) + b"".join(enc(x) for x in items)

def frame(version, type_code, flags, request_id, body, length=None):
    """Spec 2.1: Length counts header (8) + body."""
    if length is None:
        length = 8 + len(body)
    return u32(length) + u8(version) + u8(type_code) + u16(flags) + u32(request_id) + body

def header_json(version, type_name, flags, rid):
    return {"version": version, "type": type_name, "flags": flags, "request_id": rid}

# ---- message builders: (bytes, json body) ---------------------------------------------------
def hello(minv, maxv, maxf, caps, agent):
    return u8(minv) + u8(maxv) + u32(maxf) + u32(caps) + string(agent), \
        {"min_version": minv, "max_version": maxv, "max_frame_size": maxf, "capabilities": caps, "agent": agent}
def welcome(v, maxf, maxo, caps, agent):
    return u8(v) + u32(maxf) + u32(maxo) + u32(caps) + string(agent), \
        {"version": v, "max_frame_size": maxf, "max_outstanding": maxo, "capabilities": caps, "agent": agent}
def ping(d): return u64(d), {"data": d}
def echo(p): return byts(p), {"payload": p.hex()}
def compute(cost, seed): return u32(cost) + byts(seed), {"cost": cost, "seed": seed.hex()}
def compute_result(cost, seed):
    h = hashlib.sha256(seed).digest()
    for _ in range(cost - 1):
        h = hashlib.sha256(h).digest()
    return h, {"digest": h.hex()}
def error(version, code, msg, retry=0):
    name = code if isinstance(code, str) else None
    num = CODES[code] if name else code
    body = u16(num) + string(msg) + (u32(retry) if version >= 2 else b"")
    return body, {"code": name if name else num, "message": msg, "retry_after_ms": retry if version >= 2 else 0}
def goodbye(code, msg): return u16(CODES[code]) + string(msg), {"code": code, "message": msg}
def sum_(values): return seq(values, i64), {"values": values}
def sum_result(values):
    total = sum(values)
    total = (total + 2**63) % 2**64 - 2**63
    return u32(len(values)) + i64(total), {"count": len(values), "sum": total}
def stats_reply(entries):
    return seq(entries, lambda e: string(e[0]) + u64(e[1])), {"entries": [{"name": n, "value": v} for n, v in entries]}
def rkyv_sum(values):
    """The archived SUM body of spec 6.9.2 (canonical form): the values as i64 little-endian from
    offset 0, then the 8-octet root: rel_off (i32 LE, relative to its own position) and count
    (u32 LE). Written from the spec's diagram, not from any rkyv code."""
    data = b"".join(struct.pack("<q", v) for v in values)
    root_at = len(data)
    return data + struct.pack("<i", 0 - root_at) + struct.pack("<I", len(values))

def rkyv_check(body):
    """Spec 6.9.3: returns (values, None) if `body` passes every rule, else (None, rule number)."""
    L = len(body)
    if L < 8:
        return None, 1
    r = L - 8
    if r % 4 != 0:
        return None, 2
    rel_off, count = struct.unpack_from("<iI", body, r)
    p = r + rel_off
    if p < 0:
        return None, 3
    if p % 8 != 0:
        return None, 4
    if p + 8 * count > r:
        return None, 5
    return [struct.unpack_from("<q", body, p + 8 * i)[0] for i in range(count)], None

def rkyv_body(values, pad_front=0, pad_back=0):
    """A non-canonical archive a receiver must accept: `pad_front` octets before the values and
    `pad_back` between the values and the root."""
    data = bytes(pad_front) + b"".join(struct.pack("<q", v) for v in values) + bytes(pad_back)
    root_at = len(data)
    return data + struct.pack("<i", pad_front - root_at) + struct.pack("<I", len(values))

# ---- vector sets ------------------------------------------------------------------------------
def context(id_, desc, section, direction, version, caps, apps, max_frame):
    """The keys every vector has: who receives the bytes, in which state (README.md)."""
    if max_frame is None:
        # Spec 2.2: before WELCOME the limit is 4096 at both sides.
        max_frame = HANDSHAKE_MAX if version is None else DEFAULT_MAX
    assert version is not None or max_frame == HANDSHAKE_MAX, id_
    assert version is not None or caps == 0, id_  # 3.4: nothing is in effect before WELCOME
    assert all(0x80 <= a <= 0xFF for a in apps), id_
    return {"id": id_, "description": desc, "section": section, "direction": direction,
            "version": version, "capabilities": caps, "application_types": sorted(apps),
            "max_frame_size": max_frame}

def check_welcome(id_, hello_json, welcome_json):
    """Spec 9.2: what a client checks in WELCOME against the HELLO it sent (3.3, 3.4, 4.3)."""
    assert hello_json["min_version"] <= welcome_json["version"] <= hello_json["max_version"], id_
    assert welcome_json["max_frame_size"] >= HANDSHAKE_MAX, id_
    assert welcome_json["max_outstanding"] >= 1, id_
    assert welcome_json["capabilities"] & ~hello_json["capabilities"] == 0, id_

def valid(id_, desc, section, direction, version, frames, caps=0, max_frame=None, apps=(),
          client_hello=None):
    """frames: list of (frame_version, type_name, flags, rid, (body, body_json), length_override?)

    `apps`: the application types the receiver implements (spec 2.7 rule 5, 4.1): a frame of any
    other application type would be UNKNOWN_TYPE. `client_hello`: for a client before the
    handshake, the body (JSON form) of the HELLO it sent, which decides what WELCOME may say (9.2).
    """
    vec = context(id_, desc, section, direction, version, caps, apps, max_frame)
    assert (client_hello is not None) == (direction == C and version is None), id_
    if client_hello is not None:
        vec["client_hello"] = client_hello
    hex_ = b""
    out = []
    for f in frames:
        fv, tname, flags, rid, (body, bj) = f
        code = TYPES.get(tname, None)
        if code is None:
            code = int(tname, 16)
            assert code in apps, (id_, "an unimplemented application type is UNKNOWN_TYPE (2.7 rule 5)")
        hex_ += frame(fv, code, flags, rid, body)
        msg_type = tname
        if tname == "SUM" and flags & 1:
            msg_type = "SUM_RKYV"
        if tname.startswith("0x"):
            msg_type = "APPLICATION"
        if tname == "WELCOME":
            check_welcome(id_, client_hello, bj)
        fj = header_json(fv, msg_type, flags, rid)
        fj["body"] = bj
        out.append(fj)
    vec["hex"] = hex_.hex()
    vec["frames"] = out
    return vec

def invalid(id_, desc, section, direction, version, data, code, offset, rid=0, caps=0,
            max_frame=None, preface=False, apps=()):
    """`rid` is the request ID of the ERROR the receiver sends: the frame's own ID for a request
    error at a server, 0 for every other scope (3.10, 3.9; a client's ERROR always has ID 0, 9.3)."""
    scope = error_scope(code, direction, version)
    assert scope == "request" or rid == 0, (id_, scope, rid)
    vec = context(id_, desc, section, direction, version, caps, apps, max_frame)
    vec.update({"preface": preface, "hex": data.hex(),
                "error": {"code": code, "scope": scope, "offset": offset, "request_id": rid}})
    return vec

S, C = "to_server", "to_client"
V = []  # valid
# Handshake (version null: frames before WELCOME, header version 1)
V.append(valid("hello-v1-only", "HELLO offering version 1 only", "4.2", S, None,
               [(1, "HELLO", 0, 0, hello(1, 1, DEFAULT_MAX, 0, "py"))]))
# The HELLO of Appendix A; the WELCOME vectors below answer it.
HELLO_V1_V2_RKYV = hello(1, 2, DEFAULT_MAX, 1, "client")
V.append(valid("hello-v1-v2-rkyv", "HELLO offering 1..=2 and the RKYV capability", "4.2", S, None,
               [(1, "HELLO", 0, 0, HELLO_V1_V2_RKYV)]))
V.append(valid("hello-empty-agent-max-limits", "HELLO with an empty agent and a 16 MiB limit", "4.2", S, None,
               [(1, "HELLO", 0, 0, hello(2, 2, 16 << 20, 0, ""))]))
V.append(valid("hello-utf8-agent", "HELLO whose agent is multi-byte UTF-8", "6.3", S, None,
               [(1, "HELLO", 0, 0, hello(1, 2, 4096, 0, "에코와이어 ✓"))]))
# A client before the handshake: `client_hello` is what it offered (3.4: the server accepts a
# subset of the offered capabilities, and only those are in effect once WELCOME is read).
V.append(valid("welcome-v2", "WELCOME choosing version 2 and accepting RKYV, both offered by the client's HELLO "
               "(client_hello: hello-v1-v2-rkyv, as in Appendix A)", "4.3", C, None,
               [(1, "WELCOME", 0, 0, welcome(2, DEFAULT_MAX, 1024, 1, "echowire/0.1.0"))],
               client_hello=HELLO_V1_V2_RKYV[1]))
V.append(valid("welcome-v1", "WELCOME of a version-1 server without RKYV to a HELLO offering 1..=2 and RKYV: "
               "version 1, no capability, minimum limits", "4.3", C, None,
               [(1, "WELCOME", 0, 0, welcome(1, 4096, 1, 0, ""))], client_hello=HELLO_V1_V2_RKYV[1]))
V.append(valid("error-before-welcome", "ERROR UNSUPPORTED_VERSION sent instead of WELCOME (v1 layout) to a HELLO "
               "offering 3..=4", "3.3", C, None,
               [(1, "ERROR", 0, 0, error(1, "UNSUPPORTED_VERSION", "server supports 1..=2"))],
               client_hello=hello(3, 4, DEFAULT_MAX, 0, "future")[1]))
for v in (1, 2):
    V.append(valid(f"ping-v{v}", f"PING in version {v}", "4.4", S, v, [(v, "PING", 0, 1, ping(42))]))
    V.append(valid(f"pong-v{v}", f"PONG in version {v}", "4.4", C, v, [(v, "PONG", 0, 1, ping(42))]))
    V.append(valid(f"ping-max-data-v{v}", "PING with data 2^64-1 and ID 2^32-1", "4.4", S, v,
                   [(v, "PING", 0, 0xFFFFFFFF, ping(2**64 - 1))]))
    V.append(valid(f"echo-hello-v{v}", "ECHO of \"hello\"", "4.5", S, v, [(v, "ECHO", 0, 1, echo(b"hello"))]))
    V.append(valid(f"echo-empty-v{v}", "ECHO with an empty payload", "4.5", S, v, [(v, "ECHO", 0, 7, echo(b""))]))
    V.append(valid(f"echo-binary-v{v}", "ECHO of all 256 byte values", "4.5", S, v,
                   [(v, "ECHO", 0, 9, echo(bytes(range(256))))]))
    V.append(valid(f"echo-reply-v{v}", "ECHO_REPLY of \"hello\"", "4.5", C, v, [(v, "ECHO_REPLY", 0, 1, echo(b"hello"))]))
    V.append(valid(f"compute-v{v}", "COMPUTE cost 1 over \"abc\"", "4.6", S, v, [(v, "COMPUTE", 0, 2, compute(1, b"abc"))]))
    V.append(valid(f"compute-result-abc-v{v}", "COMPUTE_RESULT for cost 1, seed \"abc\" (SHA-256(\"abc\"))", "4.6", C, v,
                   [(v, "COMPUTE_RESULT", 0, 2, compute_result(1, b"abc"))]))
    V.append(valid(f"cancel-v{v}", "CANCEL of request 5", "4.7", S, v, [(v, "CANCEL", 0, 5, (b"", {}))]))
    V.append(valid(f"error-busy-v{v}", "ERROR BUSY for request 3", "4.8", C, v,
                   [(v, "ERROR", 0, 3, error(v, "BUSY", "worker queue full", 250 if v == 2 else 0))]))
    V.append(valid(f"error-app-code-v{v}", "ERROR with an application code 0x8001", "7.1", C, v,
                   [(v, "ERROR", 0, 4, error(v, 0x8001, "app"))]))
    V.append(valid(f"goodbye-v{v}", "GOODBYE SHUTTING_DOWN", "4.9", C, v,
                   [(v, "GOODBYE", 0, 0, goodbye("SHUTTING_DOWN", "server is shutting down"))]))
    V.append(valid(f"goodbye-client-v{v}", "client GOODBYE NO_ERROR", "4.9", S, v,
                   [(v, "GOODBYE", 0, 0, goodbye("NO_ERROR", ""))]))
    V.append(valid(f"sum-v{v}", "SUM of 1, -2, 3", "4.10", S, v, [(v, "SUM", 0, 6, sum_([1, -2, 3]))]))
    V.append(valid(f"sum-result-wrapping-v{v}", "SUM_RESULT wrapping past i64::MAX", "4.10", C, v,
                   [(v, "SUM_RESULT", 0, 6, sum_result([2**63 - 1, 1]))]))
    # Valid only at a server that implements type 0x80 (2.7 rule 5, 4.1); the same frame at a
    # server that implements no application type is the invalid vector application-unimplemented.
    V.append(valid(f"application-request-v{v}", "application type 0x80 request, opaque body, to a server that "
                   "implements type 0x80", "4.1", S, v,
                   [(v, "0x80", 0, 11, (b"\x01\x02\x03", {"type_code": 0x80, "body": "010203"}))], apps=[0x80]))
V.append(valid("sum-empty", "SUM of no values", "4.10", S, 1, [(1, "SUM", 0, 1, sum_([]))]))
V.append(valid("sum-extremes", "SUM of i64::MIN and i64::MAX", "6.1", S, 2, [(2, "SUM", 0, 1, sum_([-2**63, 2**63 - 1]))]))
V.append(valid("sum-result-empty", "SUM_RESULT for no values", "4.10", C, 1, [(1, "SUM_RESULT", 0, 1, sum_result([]))]))
# Archived SUM bodies (6.9): canonical ones written from the diagram, non-canonical ones every
# receiver must accept; each is checked here against the validation rules of 6.9.3, and carries
# the values a receiver must read from it.
for id_, desc, body, values in [
    ("sum-rkyv", "SUM as an rkyv archive of [1, 2, 3] (RKYV flag, capability negotiated)", rkyv_sum([1, 2, 3]), [1, 2, 3]),
    ("sum-rkyv-empty", "archived SUM of no values: the 8-octet root alone", rkyv_sum([]), []),
    ("sum-rkyv-extremes", "archived SUM of i64::MIN, -1 and i64::MAX (little-endian values)", rkyv_sum([-2**63, -1, 2**63 - 1]), [-2**63, -1, 2**63 - 1]),
    ("sum-rkyv-padded-front", "non-canonical archive: 8 octets of padding before the values", rkyv_body([7, 8], pad_front=8), [7, 8]),
    ("sum-rkyv-gap-before-root", "non-canonical archive: 4 octets between the values and the root", rkyv_body([5], pad_back=4), [5]),
    ("sum-rkyv-empty-with-gap", "non-canonical archive: no values, the pointer 8 octets before the root", rkyv_body([], pad_front=8), []),
]:
    got, rule = rkyv_check(body)
    assert rule is None and got == values, (id_, rule, got)
    vec = valid(id_, desc, "6.9", S, 2, [(2, "SUM", 1, 8, (body, {"archive": body.hex()}))], caps=1)
    vec["archived_values"] = values
    V.append(vec)
V.append(valid("stats-v2", "STATS (version 2)", "4.11", S, 2, [(2, "STATS", 0, 12, (b"", {}))]))
V.append(valid("stats-reply-v2", "STATS_REPLY with two counters", "4.11", C, 2,
               [(2, "STATS_REPLY", 0, 12, stats_reply([("frames_in", 10), ("connections_open", 1)]))]))
V.append(valid("application-response", "application type 0xFE response, to a client that implements type 0xFE", "4.1", C, 2,
               [(2, "0xFE", 0, 11, (b"ok", {"type_code": 0xFE, "body": "6f6b"}))], apps=[0xFE]))
V.append(valid("pipeline-three", "three requests in one stream (pipelining)", "3.6", S, 1,
               [(1, "ECHO", 0, 1, echo(b"a")), (1, "PING", 0, 2, ping(0)), (1, "COMPUTE", 0, 3, compute(1000, b""))]))
V.append(valid("out-of-order-replies", "responses to IDs 3, 1, 2 in that order", "3.6", C, 2,
               [(2, "PONG", 0, 3, ping(3)), (2, "ECHO_REPLY", 0, 1, echo(b"x")), (2, "COMPUTE_RESULT", 0, 2, compute_result(2, b"x"))]))
limit_payload = bytes(4096 - 8 - 4)
V.append(valid("length-at-limit", "ECHO whose Length equals the receiver's 4096-byte limit", "2.2", S, 1,
               [(1, "ECHO", 0, 1, echo(limit_payload))], max_frame=4096))
V.append(valid("error-v2-request-scope-id0", "ERROR INVALID_REQUEST_ID with ID 0 (request scope)", "3.10", C, 2,
               [(2, "ERROR", 0, 0, error(2, "INVALID_REQUEST_ID", "ECHO may not carry request ID 0"))]))

I = []  # invalid
def fr(v, t, flags, rid, body, length=None):
    return frame(v, TYPES[t] if isinstance(t, str) else t, flags, rid, body, length)
# Preface (3.1): the error offset is the first wrong byte
I.append(invalid("preface-http", "an HTTP request on the port", "3.1", S, None, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "BAD_PREFACE", 0, preface=True))
I.append(invalid("preface-tls", "a TLS ClientHello on the port", "3.1", S, None, bytes.fromhex("16030100c8010000c40303"), "BAD_PREFACE", 0, preface=True))
I.append(invalid("preface-byte5", "preface with the 6th byte wrong (\\n mangled to \\r)", "3.1", S, None, PREFACE[:5] + b"\r" + PREFACE[6:], "BAD_PREFACE", 5, preface=True))
I.append(invalid("preface-lf-crlf", "preface after a text-mode CRLF conversion", "3.1", S, None, PREFACE.replace(b"\n", b"\r\n"), "BAD_PREFACE", 5, preface=True))
# Length (2.2)
for n in (0, 1, 7):
    I.append(invalid(f"length-{n}", f"Length {n}, below the 8-byte header", "2.2", S, 1, u32(n) + bytes(8), "FRAME_TOO_SHORT", 0))
I.append(invalid("length-limit-plus-1", "Length one above the receiver's 4096 limit", "2.2", S, 1, u32(4097), "FRAME_TOO_LARGE", 0, max_frame=4096))
I.append(invalid("length-2pow32-1", "Length 2^32-1 (4 GiB claim): rejected with nothing allocated", "8.2", S, 1, u32(0xFFFFFFFF), "FRAME_TOO_LARGE", 0))
I.append(invalid("length-too-large-second-frame", "a valid PING, then a frame of Length 16 MiB + 1", "2.2", S, 1,
                 fr(1, "PING", 0, 1, u64(0)) + u32((16 << 20) + 1), "FRAME_TOO_LARGE", 20))
I.append(invalid("truncated-prefix", "end of stream after 2 bytes of a length prefix", "3.9", S, 1, b"\x00\x00", "TRUNCATED_FRAME", 0))
I.append(invalid("truncated-header", "end of stream inside a frame header", "3.9", S, 2, fr(2, "PING", 0, 1, u64(0))[:7], "TRUNCATED_FRAME", 0))
I.append(invalid("truncated-body", "end of stream inside an ECHO body", "3.9", S, 1, fr(1, "ECHO", 0, 1, byts(b"hello"))[:-2], "TRUNCATED_FRAME", 0))
I.append(invalid("truncated-after-request", "a complete ECHO (still answered), then end of stream inside a PING", "3.9", S, 2,
                 fr(2, "ECHO", 0, 1, byts(b"x")) + fr(2, "PING", 0, 2, u64(0))[:10], "TRUNCATED_FRAME", 17))
I.append(invalid("truncated-hello", "end of stream inside the HELLO: the server sends TRUNCATED_FRAME and closes", "3.9", S, None,
                 fr(1, "HELLO", 0, 0, hello(1, 2, DEFAULT_MAX, 0, "")[0])[:-3], "TRUNCATED_FRAME", 0))
# Version (5.4)
I.append(invalid("version-v2-on-v1", "a version-2 frame on a version-1 connection", "5.4", S, 1, fr(2, "PING", 0, 1, u64(0)), "VERSION_MISMATCH", 0))
I.append(invalid("version-v1-on-v2", "a version-1 frame on a version-2 connection", "5.4", S, 2, fr(1, "ECHO", 0, 1, byts(b"")), "VERSION_MISMATCH", 0))
I.append(invalid("version-hello-header-v2", "HELLO whose header says version 2 (handshake frames use version 1)", "3.2", S, None, fr(2, "HELLO", 0, 0, hello(1, 2, DEFAULT_MAX, 0, "")[0]), "VERSION_MISMATCH", 0))
I.append(invalid("version-0", "header version 0", "5.1", S, 1, fr(0, "PING", 0, 1, u64(0)), "VERSION_MISMATCH", 0))
# Handshake (3.2)
I.append(invalid("handshake-echo-first", "ECHO as the first frame", "3.2", S, None, fr(1, "ECHO", 0, 1, byts(b"x")), "HANDSHAKE_REQUIRED", 0))
I.append(invalid("handshake-ping-first", "PING as the first frame", "3.2", S, None, fr(1, "PING", 0, 1, u64(1)), "HANDSHAKE_REQUIRED", 0))
# Type (5.4, 4.1)
for t in (0x00, 0x10, 0x7F):
    I.append(invalid(f"type-unknown-{t:02x}", f"reserved type 0x{t:02X}", "5.4", S, 1, fr(1, t, 0, 3, b"\x01\x02"), "UNKNOWN_TYPE", 0, rid=3))
I.append(invalid("type-stats-on-v1", "STATS (a version-2 type) on a version-1 connection", "5.3", S, 1, fr(1, "STATS", 0, 4, b""), "UNKNOWN_TYPE", 0, rid=4))
for v in (1, 2):
    I.append(invalid(f"application-unimplemented-v{v}", "application type 0x80 request to a server that implements no "
                     "application type (the frame of application-request)", "4.1", S, v,
                     fr(v, 0x80, 0, 11, b"\x01\x02\x03"), "UNKNOWN_TYPE", 0, rid=11))
I.append(invalid("application-unimplemented-before-flags-and-id", "unimplemented application type 0xC0 with an undefined "
                 "flag and ID 0: UNKNOWN_TYPE (rule 5) comes before the flag and ID rules", "2.7", S, 2,
                 fr(2, 0xC0, 2, 0, b""), "UNKNOWN_TYPE", 0, apps=[0x80]))
I.append(invalid("type-welcome-to-server", "WELCOME sent to a server", "4.1", S, 1, fr(1, "WELCOME", 0, 0, welcome(1, 4096, 1, 0, "")[0]), "UNEXPECTED_MESSAGE", 0))
I.append(invalid("type-echo-reply-to-server", "ECHO_REPLY sent to a server", "4.1", S, 2, fr(2, "ECHO_REPLY", 0, 5, byts(b"")), "UNEXPECTED_MESSAGE", 0, rid=5))
I.append(invalid("type-echo-to-client", "ECHO sent to a client", "4.1", C, 1, fr(1, "ECHO", 0, 5, byts(b"")), "UNEXPECTED_MESSAGE", 0))
# Flags (2.4)
I.append(invalid("flags-bit1", "undefined flag bit 1 on ECHO", "2.4", S, 1, fr(1, "ECHO", 2, 6, byts(b"")), "INVALID_FLAGS", 0, rid=6))
I.append(invalid("flags-bit15", "undefined flag bit 15 on PING", "2.4", S, 2, fr(2, "PING", 0x8000, 6, u64(0)), "INVALID_FLAGS", 0, rid=6))
I.append(invalid("flags-rkyv-on-echo", "RKYV on ECHO, which has no rkyv form", "2.4", S, 2, fr(2, "ECHO", 1, 6, byts(b"")), "INVALID_FLAGS", 0, rid=6, caps=1))
I.append(invalid("flags-rkyv-not-negotiated", "RKYV on SUM without the capability", "2.4", S, 2, fr(2, "SUM", 1, 6, rkyv_sum([1])), "INVALID_FLAGS", 0, rid=6))
# Request IDs (2.5)
I.append(invalid("id-zero-echo", "ECHO with request ID 0", "2.5", S, 1, fr(1, "ECHO", 0, 0, byts(b"")), "INVALID_REQUEST_ID", 0))
I.append(invalid("id-zero-cancel", "CANCEL with request ID 0", "2.5", S, 1, fr(1, "CANCEL", 0, 0, b""), "INVALID_REQUEST_ID", 0))
I.append(invalid("id-goodbye-nonzero", "GOODBYE with request ID 5", "2.5", S, 1, fr(1, "GOODBYE", 0, 5, goodbye("NO_ERROR", "")[0]), "INVALID_REQUEST_ID", 0))
I.append(invalid("id-hello-nonzero", "HELLO with request ID 1", "2.5", S, None, fr(1, "HELLO", 0, 1, hello(1, 2, DEFAULT_MAX, 0, "")[0]), "INVALID_REQUEST_ID", 0))
# Bodies (6)
I.append(invalid("body-ping-short", "PING body of 7 bytes", "6.1", S, 1, fr(1, "PING", 0, 7, bytes(7)), "MALFORMED_BODY", 0, rid=7))
I.append(invalid("body-echo-length-beyond", "ECHO whose byte-string length exceeds the body", "6.8", S, 1, fr(1, "ECHO", 0, 7, u32(100) + b"abc"), "MALFORMED_BODY", 0, rid=7))
I.append(invalid("body-sum-count-4g", "SUM claiming 2^32-1 values in a 4-byte body (no allocation)", "8.2", S, 1, fr(1, "SUM", 0, 7, u32(0xFFFFFFFF)), "MALFORMED_BODY", 0, rid=7))
I.append(invalid("body-compute-result-31", "COMPUTE_RESULT with a 31-byte digest", "4.6", C, 1, fr(1, "COMPUTE_RESULT", 0, 7, bytes(31)), "MALFORMED_BODY", 0))
I.append(invalid("body-compute-empty", "COMPUTE with an empty body", "6.1", S, 2, fr(2, "COMPUTE", 0, 7, b""), "MALFORMED_BODY", 0, rid=7))
I.append(invalid("body-rkyv-garbage", "SUM with RKYV and an archive that fails validation", "6.9", S, 2, fr(2, "SUM", 1, 7, bytes([0xFF] * 8)), "MALFORMED_BODY", 0, rid=7, caps=1))
# One archive failing each validation rule of 6.9.3 (and only that rule, checked here).
for rule, id_, desc, body in [
    (1, "rkyv-rule1-short", "archive of 4 octets: no room for the root", bytes(4)),
    (1, "rkyv-rule1-empty", "archive of 0 octets", b""),
    (2, "rkyv-rule2-root-unaligned", "archive of 10 octets: the root at offset 2 is not 4-aligned", bytes(2) + struct.pack("<iI", -2, 0)),
    (3, "rkyv-rule3-before-body", "rel_off points 8 octets before the body", struct.pack("<q", 1) + struct.pack("<iI", -16, 1)),
    (3, "rkyv-rule3-far-before", "rel_off is i32::MIN", struct.pack("<iI", -2**31, 0)),
    (4, "rkyv-rule4-values-unaligned", "values at offset 4, not 8-aligned", bytes(4) + struct.pack("<q", 1) + struct.pack("<iI", -8, 1)),
    (5, "rkyv-rule5-overrun-root", "count 2 but room for one value before the root", rkyv_sum([1])[:8] + struct.pack("<iI", -8, 2)),
    (5, "rkyv-rule5-count-4g", "count 2^32-1 in a 16-octet archive (must not allocate)", rkyv_sum([1])[:8] + struct.pack("<iI", -8, 0xFFFFFFFF)),
    (5, "rkyv-rule5-after-root", "no values, but the pointer is past the root", struct.pack("<iI", 8, 0)),
]:
    got, failed = rkyv_check(body)
    assert failed == rule, (id_, failed, rule)
    vec = invalid(id_, f"SUM with RKYV: {desc} (spec 6.9.3 rule {rule})", "6.9", S, 2, fr(2, "SUM", 1, 7, body), "MALFORMED_BODY", 0, rid=7, caps=1)
    vec["rkyv_rule"] = rule
    I.append(vec)
I.append(invalid("body-hello-short", "HELLO cut after max_version", "4.2", S, None, fr(1, "HELLO", 0, 0, b"\x01\x02"), "MALFORMED_BODY", 0))
I.append(invalid("trailing-ping", "PING with a 9-byte body", "5.4", S, 1, fr(1, "PING", 0, 8, bytes(9)), "TRAILING_BYTES", 0, rid=8))
I.append(invalid("trailing-echo", "ECHO with a byte after its payload", "5.4", S, 2, fr(2, "ECHO", 0, 8, byts(b"hi") + b"!"), "TRAILING_BYTES", 0, rid=8))
I.append(invalid("trailing-cancel", "CANCEL with a non-empty body", "5.4", S, 1, fr(1, "CANCEL", 0, 8, b"\x00"), "TRAILING_BYTES", 0, rid=8))
I.append(invalid("trailing-error-v2-field-on-v1", "a version-1 ERROR carrying the version-2 retry_after_ms field", "5.3", C, 1,
                 fr(1, "ERROR", 0, 8, error(2, "BUSY", "", 5)[0]), "TRAILING_BYTES", 0))
I.append(invalid("utf8-hello-agent", "HELLO agent with an invalid UTF-8 byte", "6.3", S, None, fr(1, "HELLO", 0, 0, u8(1) + u8(2) + u32(DEFAULT_MAX) + u32(0) + byts(b"ab\xff")), "INVALID_UTF8", 0))
I.append(invalid("utf8-goodbye-overlong", "GOODBYE message with an overlong encoding (C0 AF)", "6.3", S, 1, fr(1, "GOODBYE", 0, 0, u16(0) + byts(b"\xc0\xaf")), "INVALID_UTF8", 0))
I.append(invalid("utf8-error-surrogate", "ERROR message with an encoded surrogate (ED A0 80)", "6.3", C, 2, fr(2, "ERROR", 0, 9, u16(0x16) + byts(b"\xed\xa0\x80") + u32(0)), "INVALID_UTF8", 0))

# The client's checks after WELCOME (9.3): a client has no request errors, so each of these is
# a connection error: the client sends ERROR (ID 0, the negotiated version) and closes.
I.append(invalid("client-length-too-large", "Length one above the client's 4096 limit", "9.3", C, 2, u32(4097) + bytes(8), "FRAME_TOO_LARGE", 0, max_frame=4096))
I.append(invalid("client-length-too-short", "Length 7 from the server", "9.3", C, 1, u32(7) + bytes(8), "FRAME_TOO_SHORT", 0))
I.append(invalid("client-version-mismatch", "a version-1 PONG on a version-2 connection", "9.3", C, 2, fr(1, "PONG", 0, 1, u64(0)), "VERSION_MISMATCH", 0))
I.append(invalid("client-type-reserved", "reserved type 0x10 from the server", "9.3", C, 2, fr(2, 0x10, 0, 1, b""), "UNKNOWN_TYPE", 0))
I.append(invalid("client-stats-reply-on-v1", "STATS_REPLY (a version-2 type) on a version-1 connection", "9.3", C, 1,
                 fr(1, "STATS_REPLY", 0, 1, stats_reply([])[0]), "UNKNOWN_TYPE", 0))
I.append(invalid("client-undefined-flag", "PONG with undefined flag bit 1", "9.3", C, 2, fr(2, "PONG", 2, 1, u64(0)), "INVALID_FLAGS", 0))
I.append(invalid("client-rkyv-on-sum-result", "RKYV on SUM_RESULT (no response has an archived form), RKYV negotiated", "9.3", C, 2,
                 fr(2, "SUM_RESULT", 1, 1, sum_result([1])[0]), "INVALID_FLAGS", 0, caps=1))
I.append(invalid("client-pong-id0", "PONG with request ID 0", "9.3", C, 1, fr(1, "PONG", 0, 0, u64(0)), "INVALID_REQUEST_ID", 0))
I.append(invalid("client-application-id0", "application response 0xFE with request ID 0", "9.3", C, 2,
                 fr(2, 0xFE, 0, 0, b"ok"), "INVALID_REQUEST_ID", 0, apps=[0xFE]))
I.append(invalid("client-goodbye-nonzero-id", "GOODBYE from the server with request ID 3", "9.3", C, 2,
                 fr(2, "GOODBYE", 0, 3, goodbye("SHUTTING_DOWN", "")[0]), "INVALID_REQUEST_ID", 0))

def write(name, section_title, vectors):
    doc = {"format": "echowire-vectors", "format_version": 1, "title": section_title,
           "generated_by": "spec/vectors/generate.py", "vectors": vectors}
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")

write("valid.json", "Valid frames: every message type in both versions", V)
write("invalid.json", "Invalid input: every receiver rule of spec sections 2, 3, 4.1, 5 and 6, and the client's checks of section 9", I)
print(f"{len(V)} valid, {len(I)} invalid vectors")
