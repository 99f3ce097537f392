#!/usr/bin/env python3
"""Generates the client conformance cases (spec/conformance/client/*.json): the runner plays the
server, the client under test runs as a driver (CLIENT-DRIVER.md). Every case is replayed under
every split strategy, the server's octets cut at arbitrary boundaries.

Usage: python3 spec/conformance/client/generate.py
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import coverage as cov  # noqa: E402

CASES = []


def case(id_, level, title, description, steps, timing=False, spec=None):
    assert id_ not in [c["id"] for c in CASES], id_
    c = {"id": id_, "section": id_.split("-")[0], "level": level, "title": title,
         "description": description, "spec": spec or [], "steps": steps}
    if timing:
        c["timing_sensitive"] = True
    CASES.append(c)


def ref(section, quote):
    return {"section": section, "quote": quote}


# ---- building blocks ---------------------------------------------------------------------------
def connect(min_v=1, max_v=1, max_frame=1 << 20, caps=0, timeout_ms=3000):
    return {"driver": {"cmd": "connect", "min_version": min_v, "max_version": max_v,
                       "max_frame_size": max_frame, "capabilities": caps, "timeout_ms": timeout_ms}}


def accept(**body):
    hello = {"type": "HELLO", "request_id": 0, "version": 1}
    if body:
        hello["body"] = body
    return {"accept": {"hello": hello}}


def welcome(version=1, max_frame=1 << 20, max_out=64, caps=0, agent="echowire-conformance", **kw):
    f = {"type": "WELCOME", "request_id": 0, "version": 1,
         "body": {"version": version, "max_frame_size": max_frame, "max_outstanding": max_out,
                  "capabilities": caps, "agent": agent}}
    f.update(kw)
    return {"send": {"frame": f}}


def frame(type_, rid, body=None, **kw):
    f = {"type": type_, "request_id": rid}
    if body is not None:
        f["body"] = body
    f.update(kw)
    return {"send": {"frame": f}}


def raw(hexstr):
    return {"send": {"hex": hexstr}}


def event(**p):
    return {"event": p}


def request(tag, type_, body, timeout_ms=None):
    c = {"cmd": "request", "tag": tag, "type": type_, "body": body}
    if timeout_ms is not None:
        c["timeout_ms"] = timeout_ms
    return {"driver": c}


def ping(tag, data=7, **kw):
    return request(tag, "PING", {"data": data}, **kw)


def cframe(pattern, bind=None):
    c = {"match": pattern}
    if bind:
        c["bind"] = bind
    return {"client_frame": c}


def got(type_, tag):
    """The client's request of `type_`, its ID bound to `tag`."""
    return cframe({"type": type_, "request_id": {"$ge": 1}}, bind=tag)


def pong(tag, data=7, **kw):
    return frame("PONG", "$" + tag, {"data": data}, **kw)


def delivered(tag, type_, **body):
    p = {"event": "response", "tag": tag, "type": type_}
    if body:
        p["body"] = body
    return {"event": p}


def client_error(code):
    """The client's connection error: ERROR with ID 0 and the code, then it closes."""
    return [cframe({"type": "ERROR", "request_id": 0, "body": {"code": code}}),
            event(event="failed", sent_code=code), {"client_closed": "any"}]


def opened(version=1, max_v=None, **w):
    return [connect(1, max_v or version, **({"max_frame": w.pop("client_max_frame")} if "client_max_frame" in w else {})),
            accept(), welcome(version, **w), event(event="welcome", version=version)]


def driver_closed():
    return event(event="closed")


S92 = ref("9.2", "Every other fault below is a connection error")
S93 = ref("9.3", "A client has no request errors")

# ---- 9.1 what a client sends -------------------------------------------------------------------
case("9.1-hello-fields", "MUST", "The preface, then HELLO with ID 0, header version 1 and the offer",
     "The client opens with the preface and a HELLO carrying ID 0 in header version 1, offering the "
     "versions and limit it was configured with (9.1, 3.2).",
     [connect(1, 2, max_frame=65536), accept(min_version=1, max_version=2, max_frame_size=65536),
      welcome(2), event(event="welcome", version=2)],
     spec=[ref("9.1", "The preface (Section 3.1), then HELLO")])
case("9.1-hello-single-version", "MUST", "A client offering only version 2 says so in HELLO",
     "HELLO offers 2..2, still written in header version 1 (9.1).",
     [connect(2, 2), accept(min_version=2, max_version=2), welcome(2), event(event="welcome", version=2)],
     spec=[ref("9.1", "The preface (Section 3.1), then HELLO")])
case("9.1-request-ids-distinct", "MUST", "Pipelined requests carry distinct non-zero IDs",
     "Three requests pipelined before any answer carry three distinct non-zero IDs (2.5, 9.1).",
     opened() + [ping("a", 1), ping("b", 2), ping("c", 3), got("PING", "a"), got("PING", "b"), got("PING", "c"),
                 {"distinct": ["a", "b", "c"]}, pong("a", 1), pong("b", 2), pong("c", 3),
                 delivered("a", "PONG", data=1), delivered("b", "PONG", data=2), delivered("c", "PONG", data=3)],
     spec=[ref("9.1", "Requests with non-zero IDs")])
case("9.1-requests-in-v2", "MUST", "After WELCOME version 2, requests are written in version 2",
     "Frames after WELCOME are written in the negotiated version (2.3, 9.1).",
     opened(2) + [ping("a"), cframe({"type": "PING", "version": 2}, bind="a"), pong("a", version=2),
                  delivered("a", "PONG", data=7)],
     spec=[ref("9.1", "Requests with non-zero IDs")])
case("9.1-max-outstanding", "MUST", "No more than max_outstanding requests outstanding",
     "WELCOME allows 2 outstanding: of three requests the third is not written while two are "
     "outstanding. The client holds it and writes it after a response, or refuses it to its caller "
     "(event refused) and never writes it; either is conformant (document 1.2: 9.1, 8.4).",
     opened(max_out=2) + [ping("a", 1), ping("b", 2), ping("c", 3), got("PING", "a"), got("PING", "b"),
                          {"held_or_refused": {"tag": "c", "ms": 300}}, pong("a", 1), got("PING", "c"),
                          pong("b", 2), pong("c", 3),
                          delivered("a", "PONG"), delivered("b", "PONG"), delivered("c", "PONG")],
     spec=[ref("9.1", "A client MUST NOT have more than")])
case("9.1-cancel-carries-the-id", "MUST", "CANCEL carries the ID of the request, which still gets its response",
     "The client's CANCEL names the request; the request's one response (ERROR CANCELLED) is "
     "delivered (3.7, 9.1).",
     opened() + [request("a", "COMPUTE", {"cost": 1000, "seed": "00"}), got("COMPUTE", "a"),
                 {"driver": {"cmd": "cancel", "tag": "a"}}, cframe({"type": "CANCEL", "request_id": "$a"}),
                 frame("ERROR", "$a", {"code": "CANCELLED", "message": "", "retry_after_ms": 0}),
                 event(event="error", tag="a", code="CANCELLED")],
     spec=[ref("9.1", "CANCEL with the ID of a request")])
case("9.1-goodbye", "MUST", "GOODBYE with ID 0 ends the connection gracefully",
     "The client's GOODBYE carries ID 0; it reads until the server's GOODBYE and close (9.1, 3.8).",
     opened() + [{"driver": {"cmd": "goodbye"}}, cframe({"type": "GOODBYE", "request_id": 0}),
                 frame("GOODBYE", 0, {"code": "NO_ERROR", "message": ""}), {"close": "fin"},
                 driver_closed()],
     spec=[ref("9.1", "To end the connection gracefully")])
case("9.1-frame-limit", "MUST", "A request longer than the server's max_frame_size is not sent",
     "WELCOME announces 4096: an ECHO of 5000 octets is refused by the client, never written (9.1, 3.4).",
     opened(max_frame=4096) + [request("a", "ECHO", {"payload": {"fill": 97, "len": 5000}}),
                               event(event="refused", tag="a"), {"no_client_frame": 200},
                               ping("b"), got("PING", "b"), pong("b"), delivered("b", "PONG")],
     spec=[ref("9.1", "Requests with non-zero IDs")])
case("9.1-backpressure-keeps-every-request", "MUST",
     "A server that stops reading gets every request once, in full, when it reads again",
     "WELCOME allows 16 MiB frames; eight ECHOs of 1 MiB are more than the socket buffers hold while "
     "the runner reads nothing for 500 ms; then all eight arrive whole, with distinct IDs, and all eight "
     "responses are delivered (9.1, 8.4).",
     opened(max_frame=16 << 20, client_max_frame=16 << 20)
     + [request(f"r{i}", "ECHO", {"payload": {"fill": 97, "len": 1 << 20}}) for i in range(8)]
     + [{"stop_reading": 500}]
     + [cframe({"type": "ECHO", "length": (1 << 20) + 12}, bind=f"r{i}") for i in range(8)]
     + [{"distinct": [f"r{i}" for i in range(8)]}]
     + [frame("ECHO_REPLY", f"$r{i}", {"payload": "61"}) for i in range(8)]
     + [delivered(f"r{i}", "ECHO_REPLY") for i in range(8)],
     spec=[ref("9.1", "A client that the server stops reading from")])

# ---- 9.2 checking WELCOME ------------------------------------------------------------------------
for cid, title, offer, w, code in [
    ("version-above-offer", "WELCOME picks a version above the offer", (1, 1), dict(version=2), "PROTOCOL_ERROR"),
    ("version-below-offer", "WELCOME picks a version below the offer", (2, 2), dict(version=1), "PROTOCOL_ERROR"),
    ("version-0", "WELCOME picks version 0", (1, 2), dict(version=0), "PROTOCOL_ERROR"),
    ("limit-4095", "WELCOME max_frame_size 4095", (1, 1), dict(max_frame=4095), "PROTOCOL_ERROR"),
    ("limit-0", "WELCOME max_frame_size 0", (1, 1), dict(max_frame=0), "PROTOCOL_ERROR"),
    ("max-outstanding-0", "WELCOME max_outstanding 0", (1, 1), dict(max_out=0), "PROTOCOL_ERROR"),
    ("capability-not-offered", "WELCOME accepts a capability not offered", (1, 1), dict(caps=1), "PROTOCOL_ERROR"),
    ("capability-undefined", "WELCOME accepts an undefined capability bit", (1, 1), dict(caps=0x80000000), "PROTOCOL_ERROR"),
    ("header-version-2", "WELCOME written in header version 2", (1, 2), dict(version=2, **{"_hv": 2}), "VERSION_MISMATCH"),
    ("flags", "WELCOME with a flag set", (1, 1), dict(flags=2), "INVALID_FLAGS"),
    ("nonzero-id", "WELCOME with request ID 5", (1, 1), dict(request_id=5), "INVALID_REQUEST_ID"),
]:
    hv = w.pop("_hv", None)
    wf = welcome(**w)
    if hv:
        wf["send"]["frame"]["version"] = hv
    case(f"9.2-{cid}", "MUST", title,
         f"A WELCOME fault is a connection error: the client sends ERROR {code} (ID 0, header version 1) "
         "and closes, and reports the failure (9.2).",
         [connect(*offer), accept(), wf] + client_error(code), spec=[S92])
welcome_body = "01" + "00100000" + "00000040" + "00000000"  # version 1, 1 MiB, 64, no caps
case("9.2-trailing-octets", "MUST", "WELCOME with octets after its fields",
     "TRAILING_BYTES, a connection error (9.2).",
     [connect(), accept(), frame("WELCOME", 0, None, version=1, body_hex=welcome_body + "00000000" + "ff")]
     + client_error("TRAILING_BYTES"), spec=[S92])
case("9.2-agent-not-utf8", "MUST", "WELCOME whose agent is not UTF-8",
     "INVALID_UTF8, a connection error (9.2).",
     [connect(), accept(), frame("WELCOME", 0, None, version=1, body_hex=welcome_body + "00000002" + "c328")]
     + client_error("INVALID_UTF8"), spec=[S92])
case("9.2-malformed", "MUST", "WELCOME whose body ends inside a field",
     "MALFORMED_BODY, a connection error (9.2).",
     [connect(), accept(), frame("WELCOME", 0, None, version=1, body_hex="010010")]
     + client_error("MALFORMED_BODY"), spec=[S92])
case("9.2-first-frame-too-long", "MUST", "A first frame longer than 4096 octets",
     "Before WELCOME the client's limit is 4096; a longer first frame is FRAME_TOO_LARGE, decided from "
     "the length octets (9.2, 2.2).",
     [connect(), accept(), welcome(agent="a" * 5000)] + client_error("FRAME_TOO_LARGE"), spec=[S92])
case("9.2-first-frame-length-7", "MUST", "A first frame with Length 7",
     "FRAME_TOO_SHORT (9.2, 2.2).", [connect(), accept(), raw("00000007" + "01020000000000")]
     + client_error("FRAME_TOO_SHORT"), spec=[S92])
for cid, f in [("pong", frame("PONG", 1, {"data": 1}, version=1)),
               ("goodbye", frame("GOODBYE", 0, {"code": "NO_ERROR", "message": ""}, version=1))]:
    case(f"9.2-first-frame-{cid}", "MUST", f"A {cid.upper()} instead of WELCOME",
         "The first frame must be WELCOME or ERROR: PROTOCOL_ERROR (9.2).",
         [connect(), accept(), f] + client_error("PROTOCOL_ERROR"), spec=[S92])
for cid, rid in [("id-0", 0), ("id-9", 9)]:
    case(f"9.2-error-instead-of-welcome-{cid}", "MUST", f"ERROR (ID {rid}) instead of WELCOME ends the handshake",
         "An ERROR with any ID ends the handshake: its code is delivered and the client closes, sending "
         "nothing (9.2).",
         [connect(), accept(), frame("ERROR", rid, {"code": "UNSUPPORTED_VERSION", "message": "", "retry_after_ms": 0}, version=1),
          event(event="failed", server_code="UNSUPPORTED_VERSION"), {"client_closed": "any"}],
         spec=[ref("9.2", "An ERROR (any ID) ends the handshake")])
for cid, f, code in [
        ("flags", frame("ERROR", 0, {"code": "UNSUPPORTED_VERSION", "message": "", "retry_after_ms": 0}, version=1,
                        flags=0x0100), "INVALID_FLAGS"),
        ("body", frame("ERROR", 0, None, version=1, body_hex="00"), "MALFORMED_BODY")]:
    case(f"9.2-faulty-error-instead-of-welcome-{cid}", "MUST", f"A faulty ERROR instead of WELCOME ({cid})",
         "An ERROR before WELCOME that is itself faulty is a fault like a faulty WELCOME: the client sends ERROR "
         f"{code} (ID 0, header version 1) and closes (document 1.2, 9.2).",
         [connect(), accept(), f] + client_error(code), spec=[S92])
case("9.2-limit-at-minimum", "MUST", "WELCOME max_frame_size exactly 4096 is accepted",
     "4096 is the minimum, not a fault (9.2).", opened(max_frame=4096) + [ping("a"), got("PING", "a"), pong("a"), delivered("a", "PONG")],
     spec=[S92])
case("9.2-limit-above-16mib", "MUST", "WELCOME max_frame_size above 16 MiB counts as 16 MiB",
     "Not a fault: the client treats it as 16 MiB (9.2).",
     [connect(), accept(), welcome(max_frame=0xFFFFFFFF), event(event="welcome", max_frame_size=16 << 20)],
     spec=[ref("9.2", "A `max_frame_size` above 16 MiB is treated as 16 MiB")])
case("9.2-second-welcome", "MUST", "A second WELCOME", "PROTOCOL_ERROR, a connection error (9.2, 9.3).",
     opened() + [ping("a"), got("PING", "a"), welcome()] + client_error("PROTOCOL_ERROR"), spec=[S92])
case("9.2-capability-offered-and-accepted", "MUST", "WELCOME accepting an offered capability",
     "Offered RKYV (1) and accepted: not a fault (9.2).",
     [connect(caps=1), accept(capabilities=1), welcome(caps=1), event(event="welcome", capabilities=1)], spec=[S92])

# ---- 9.3 checking responses ----------------------------------------------------------------------
case("9.3-in-order", "MUST", "Two responses in order", "Each completes its request (9.3).",
     opened() + [ping("a", 1), ping("b", 2), got("PING", "a"), got("PING", "b"), pong("a", 1), pong("b", 2),
                 delivered("a", "PONG", data=1), delivered("b", "PONG", data=2)], spec=[ref("9.3", "Responses in any order")])
case("9.3-out-of-order", "MUST", "Two responses in reverse order", "Each completes the request with its ID (9.3, 3.6.1).",
     opened() + [ping("a", 1), ping("b", 2), got("PING", "a"), got("PING", "b"), pong("b", 2), pong("a", 1),
                 delivered("b", "PONG", data=2), delivered("a", "PONG", data=1)], spec=[ref("9.3", "Responses in any order")])
case("9.3-three-reversed", "MUST", "Three responses in reverse order", "(9.3, 3.6.1)",
     opened() + [ping("a", 1), ping("b", 2), ping("c", 3), got("PING", "a"), got("PING", "b"), got("PING", "c"),
                 pong("c", 3), pong("b", 2), pong("a", 1),
                 delivered("c", "PONG", data=3), delivered("b", "PONG", data=2), delivered("a", "PONG", data=1)],
     spec=[ref("9.3", "Responses in any order")])
case("9.3-interleaved-types", "MUST", "ECHO, PING and COMPUTE answered out of order", "(9.3, 3.6.1)",
     opened() + [request("a", "ECHO", {"payload": "6869"}), ping("b", 5), request("c", "COMPUTE", {"cost": 1, "seed": "00"}),
                 got("ECHO", "a"), got("PING", "b"), got("COMPUTE", "c"),
                 frame("COMPUTE_RESULT", "$c", {"digest": "11" * 32}), frame("ECHO_REPLY", "$a", {"payload": "6869"}), pong("b", 5),
                 delivered("c", "COMPUTE_RESULT", digest="11" * 32), delivered("a", "ECHO_REPLY", payload="6869"),
                 delivered("b", "PONG", data=5)], spec=[ref("9.3", "Responses in any order")])
for n in [0, 1, 3000]:
    p = "ab" * n
    case(f"9.3-echo-reply-{n}", "MUST", f"ECHO_REPLY with a {n}-octet payload", "Delivered unchanged (9.3, 4.5).",
         opened() + [request("a", "ECHO", {"payload": p}), got("ECHO", "a"), frame("ECHO_REPLY", "$a", {"payload": p}),
                     delivered("a", "ECHO_REPLY", payload=p)], spec=[ref("9.3", "Responses in any order")])
case("9.3-sum-result", "MUST", "SUM_RESULT delivered", "(9.3, 4.10)",
     opened() + [request("a", "SUM", {"values": [1, 2, 3]}), got("SUM", "a"),
                 frame("SUM_RESULT", "$a", {"sum": 6, "count": 3}), delivered("a", "SUM_RESULT")],
     spec=[ref("9.3", "Responses in any order")])
case("9.3-stats-reply-v2", "MUST", "STATS_REPLY delivered on version 2", "(9.3, 4.11)",
     opened(2) + [request("a", "STATS", {}), got("STATS", "a"),
                  frame("STATS_REPLY", "$a", {"entries": [{"name": "requests", "value": 5}]}, version=2), delivered("a", "STATS_REPLY")],
     spec=[ref("9.3", "Responses in any order")])
for cid, body, ev in [("busy", {"code": "BUSY", "message": "full", "retry_after_ms": 0}, dict(code="BUSY")),
                      ("internal", {"code": "INTERNAL_ERROR", "message": "", "retry_after_ms": 0}, dict(code="INTERNAL_ERROR"))]:
    case(f"9.3-error-{cid}-then-continue", "MUST", f"ERROR {ev['code']} for a request, then the connection goes on",
         "ERROR with an outstanding ID is that request's one response; its code is delivered and the "
         "connection continues (9.3).",
         opened() + [ping("a"), got("PING", "a"), frame("ERROR", "$a", body), event(event="error", tag="a", **ev),
                     ping("b"), got("PING", "b"), pong("b"), delivered("b", "PONG")],
         spec=[ref("9.3", "ERROR with a non-zero outstanding ID")])
case("9.3-busy-retry-hint-v2", "MUST", "BUSY's retry_after_ms is delivered (version 2)", "(9.3)",
     opened(2) + [ping("a"), got("PING", "a"), frame("ERROR", "$a", {"code": "BUSY", "message": "", "retry_after_ms": 250}, version=2),
                  event(event="error", tag="a", code="BUSY", retry_after_ms=250)], spec=[ref("9.3", "ERROR with a non-zero outstanding ID")])
for cid, f, code in [
    ("unknown-id", frame("PONG", 999, {"data": 1}), "PROTOCOL_ERROR"),
    ("id-0", frame("PONG", 0, {"data": 1}), "INVALID_REQUEST_ID"),
    ("wrong-type", frame("ECHO_REPLY", "$a", {"payload": ""}), "PROTOCOL_ERROR"),
    ("goodbye-nonzero-id", frame("GOODBYE", 3, {"code": "NO_ERROR", "message": ""}), "INVALID_REQUEST_ID"),
    ("header-version-2-on-v1", frame("PONG", "$a", {"data": 7}, version=2), "VERSION_MISMATCH"),
    ("unknown-type", frame("0x7f", "$a", None, body_hex=""), "UNKNOWN_TYPE"),
    ("stats-reply-on-v1", frame("STATS_REPLY", "$a", None, body_hex="00000000"), "UNKNOWN_TYPE"),
    ("hello-from-server", frame("HELLO", 0, {"min_version": 1, "max_version": 1, "max_frame_size": 4096, "capabilities": 0, "agent": ""}), "UNEXPECTED_MESSAGE"),
    ("ping-from-server", frame("PING", 77, {"data": 1}), "UNEXPECTED_MESSAGE"),
    ("undefined-flag", frame("PONG", "$a", {"data": 7}, flags=4), "INVALID_FLAGS"),
    ("rkyv-flag", frame("PONG", "$a", {"data": 7}, flags=1), "INVALID_FLAGS"),
    ("trailing-octets", frame("PONG", "$a", None, body_hex="0000000000000007ff"), "TRAILING_BYTES"),
    ("malformed", frame("PONG", "$a", None, body_hex="0000"), "MALFORMED_BODY"),
    ("error-message-not-utf8", frame("ERROR", "$a", None, body_hex="0003" + "00000002c328"), "INVALID_UTF8"),
    ("length-7", raw("0000000701060000"), "FRAME_TOO_SHORT"),
    ("length-max", raw("ffffffff01060000"), "FRAME_TOO_LARGE"),
]:
    case(f"9.3-{cid}", "MUST", f"A fault of the server: {cid.replace('-', ' ')}",
         f"Every fault of the server is a connection error: the client sends ERROR {code} (ID 0), reports "
         "the failure (outstanding requests: fate unknown) and closes (9.3).",
         opened() + [ping("a"), got("PING", "a"), f] + client_error(code), spec=[S93])
case("9.3-duplicate-response", "MUST", "A second response for an answered request",
     "Its ID is no longer outstanding: PROTOCOL_ERROR (9.3).",
     opened() + [ping("a"), got("PING", "a"), pong("a"), delivered("a", "PONG"), ping("b"), got("PING", "b"), pong("a")]
     + client_error("PROTOCOL_ERROR"),
     spec=[S93])
case("9.3-length-above-client-limit", "MUST", "A response longer than the client's max_frame_size",
     "The client offered 4096: a 5000-octet ECHO_REPLY is FRAME_TOO_LARGE, decided from its 4 length "
     "octets before reading or allocating the rest (9.3, 8.2).",
     opened(client_max_frame=4096) + [request("a", "ECHO", {"payload": "00"}), got("ECHO", "a"),
                                      raw("00001388" + "01040000"), ] + client_error("FRAME_TOO_LARGE"), spec=[S93])
for cid, code in [("protocol-error", "PROTOCOL_ERROR"), ("internal", "INTERNAL_ERROR")]:
    case(f"9.3-connection-error-{cid}", "MUST", f"ERROR {code} with ID 0 ends the connection",
         "A connection-scope ERROR with ID 0 ends the connection: the client reports it and closes, "
         "sending nothing (9.3, 3.10).",
         opened() + [ping("a"), got("PING", "a"), frame("ERROR", 0, {"code": code, "message": "", "retry_after_ms": 0}),
                     event(event="failed"), {"client_closed": "any"}], spec=[ref("9.3", "ERROR with ID 0")])
for cid, code in [("no-error", "NO_ERROR"), ("idle-timeout", "IDLE_TIMEOUT")]:
    case(f"9.3-error-id-0-goodbye-code-{cid}", "MUST", f"ERROR {code} (a GOODBYE reason) with ID 0 ends the connection",
         "A code registered only for GOODBYE in an ERROR with ID 0 ends the connection like a connection-scope "
         "code: the client reports it and closes, sending nothing (document 1.2: 9.3, 3.10).",
         opened() + [ping("a"), got("PING", "a"), frame("ERROR", 0, {"code": code, "message": "", "retry_after_ms": 0}),
                     event(event="failed"), {"client_closed": "any"}], spec=[ref("9.3", "ERROR with ID 0")])
case("9.3-error-id-0-reserved-code", "MUST", "ERROR with ID 0 and an unknown reserved code ends the connection",
     "A receiver treats an unknown code of the reserved range as INTERNAL_ERROR (7.1), a connection-scope code: "
     "with ID 0 it ends the connection; the client reports it and closes, sending nothing (9.3, 3.10).",
     opened() + [ping("a"), got("PING", "a"), frame("ERROR", 0, {"code": 0x0777, "message": "", "retry_after_ms": 0}),
                 event(event="failed"), {"client_closed": "any"}],
     spec=[ref("7.1", "A receiver MUST treat an unknown code in the reserved range")])
for cid, code in [("truncated-frame", "TRUNCATED_FRAME"), ("invalid-request-id", "INVALID_REQUEST_ID")]:
    case(f"9.3-error-id-0-{cid}-continues", "MUST", f"ERROR {code} with ID 0 does not end the connection",
         "TRUNCATED_FRAME and request-scope codes with ID 0 do not end the connection (9.3, 3.10).",
         opened() + [frame("ERROR", 0, {"code": code, "message": "", "retry_after_ms": 0}),
                     ping("a"), got("PING", "a"), pong("a"), delivered("a", "PONG")], spec=[ref("9.3", "ERROR with ID 0")])
case("9.3-goodbye-then-answers", "MUST", "GOODBYE with requests outstanding, then their responses",
     "Outstanding requests are still answered after the server's GOODBYE; then the server closes (9.3, 3.8).",
     opened() + [ping("a", 1), ping("b", 2), got("PING", "a"), got("PING", "b"),
                 frame("GOODBYE", 0, {"code": "SHUTTING_DOWN", "message": ""}), pong("a", 1),
                 frame("ERROR", "$b", {"code": "SHUTTING_DOWN", "message": "", "retry_after_ms": 0}), {"close": "fin"},
                 delivered("a", "PONG", data=1), event(event="error", tag="b", code="SHUTTING_DOWN")],
     spec=[ref("9.3", "GOODBYE with requests outstanding")])
case("9.3-goodbye-then-clean-close-not-processed", "SHOULD", "GOODBYE, then a clean close with a request unanswered",
     "A request neither answered nor refused when the connection closes cleanly after the server's GOODBYE "
     "was not processed and may be retried: the client tells its caller so (`unprocessed`), not as a failure "
     "with unknown fate (document 1.2: 9.3, 3.8).",
     opened() + [ping("a", 1), ping("b", 2), got("PING", "a"), got("PING", "b"),
                 frame("GOODBYE", 0, {"code": "SHUTTING_DOWN", "message": ""}), pong("a", 1), {"close": "fin"},
                 delivered("a", "PONG", data=1), event(event="unprocessed", tag="b"), event(event="closed")],
     spec=[ref("9.3", "A client SHOULD tell its caller so")])
for cid, steps, title in [
    ("fin-mid-frame", [raw("0000000c0106")], "The stream ends inside a response"),
    ("fin-no-goodbye", [], "The stream ends with a request outstanding, no GOODBYE"),
]:
    case(f"9.3-{cid}", "MUST", title,
         "The connection failed: the outstanding request is reported failed with unknown fate, not "
         "delivered and not left waiting; nothing is sent (9.3).",
         opened() + [ping("a"), got("PING", "a")] + steps + [{"close": "fin"}, event(event="failed")],
         spec=[ref("9.3", "End of stream or reset")])
case("9.3-rst-mid-response", "MUST", "A reset inside a response",
     "The connection failed: the request is reported failed, not delivered (9.3, 3.11).",
     opened() + [ping("a"), got("PING", "a"), raw("0000001001060000"), {"close": "rst"}, event(event="failed")],
     spec=[ref("9.3", "End of stream or reset")])

# ---- 9.4 timeouts --------------------------------------------------------------------------------
case("9.4-response-timeout", "SHOULD", "A server that never answers: the request times out",
     "The client bounds the wait for a response and reports the timed-out request (9.4).",
     opened() + [ping("a", timeout_ms=300), got("PING", "a"), event(event="timeout", tag="a")], timing=True,
     spec=[ref("9.4", "A client SHOULD bound the wait")])
case("9.4-welcome-timeout", "SHOULD", "A server that never sends WELCOME: the handshake times out",
     "The client bounds the wait for WELCOME and reports the failure (9.4).",
     [connect(timeout_ms=300), accept(), event(event="failed")], timing=True,
     spec=[ref("9.4", "A client SHOULD bound the wait")])

for c in CASES:
    for r in c["spec"]:
        same = [t for sec, t in cov.sentences() if sec == r["section"] and r["quote"] in t]
        assert len(same) == 1, (c["id"], r, len(same))

with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump({"format": "echowire-client-conformance", "format_version": 1,
               "generated_by": "spec/conformance/client/generate.py", "cases": CASES}, f, indent=1)
    f.write("\n")
print(f"{len(CASES)} client cases")
