#!/usr/bin/env python3
"""Proves the Echowire Wireshark dissector (spec/wireshark/echowire.lua) with the real tshark.

    python3 spec/wireshark/check.py                      every test vector, several segmentations
    python3 spec/wireshark/check.py --capture FILE|DIR   check existing pcap/pcapng captures
            [--port N]                                   the server's TCP port (default 7878)
    options: --tshark PATH, --keep DIR (keep the generated captures), --jobs N, -v (per file)

Vectors (spec/vectors/valid.json, invalid.json): every vector becomes TCP connections in
synthesized captures (IPv4 over Ethernet, written here with the standard library: text2pcap
cannot write the SYN and FIN segments the checks need), with a preface, HELLO and WELCOME
establishing the vector's context, and the vector's octets sent as one segment, as 1-octet
segments, split inside the Length and inside the header, coalesced with the handshake
(pipelined before WELCOME), on a port found only by the heuristic dissector, and without any
handshake (mid-stream, context from the dissector's preferences). tshark decodes them in
two passes (-2) and its PDML output is compared with the vectors:

  valid:   every frame decoded with the vector's version, type, flags, request ID and body
           fields; no expert info of severity warn or error on the vector's frames;
  invalid: the first violation in the vector's octets has the vector's error code
           (field echowire.violation), scope, ERROR request ID and stream offset.

Exit status: 0 all passed, 1 a check failed, 2 tshark (or the dissector) not found.
Python 3 standard library only.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # never leave a __pycache__ in spec/
HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.dirname(HERE)
sys.path.insert(0, SPEC)
import registry  # noqa: E402  (spec/registry.py)

LUA = os.path.join(HERE, "echowire.lua")
VECTORS = os.path.join(SPEC, "vectors")
SERVER_PORT = 7878
HEUR_PORT = 17878  # not registered: only the heuristic dissector finds these connections

PREFACE = registry.PREFACE
T = registry.MESSAGE_CODES
E = registry.ERROR_CODES
RKYV_FLAG = registry.FLAGS["RKYV"]
BASE = registry.REGISTRY["base_version"]
# The application-defined message types (registry message_ranges).
APP_FROM = min(r["from"] for r in registry.REGISTRY["message_ranges"] if r["use"].startswith("application"))

# Vectors a passive dissector cannot check, with the reason (vector id -> reason). Keep it
# short: it is empty, every vector is checked.
EXCLUDED = {
}


# ---------------------------------------------------------------------------------------------
# Frames (spec sections 2.1, 4, 6)
# ---------------------------------------------------------------------------------------------

def u8(v): return struct.pack(">B", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def byts(b): return u32(len(b)) + b


def frame(version, type_code, flags, request_id, body):
    return u32(8 + len(body)) + struct.pack(">BBHI", version, type_code, flags, request_id) + body


def hello_body(minv, maxv, maxf, caps, agent):
    return u8(minv) + u8(maxv) + u32(maxf) + u32(caps) + byts(agent.encode())


def welcome_body(v, maxf, maxo, caps, agent):
    return u8(v) + u32(maxf) + u32(maxo) + u32(caps) + byts(agent.encode())


def split_frames(data):
    """The complete frames at the start of data: (offset, version, type, flags, id, raw)."""
    out, off = [], 0
    while off + 12 <= len(data):
        length = struct.unpack_from(">I", data, off)[0]
        if length < 8 or off + 4 + length > len(data):
            break
        v, t, fl, rid = struct.unpack_from(">BBHI", data, off + 4)
        out.append((off, v, t, fl, rid, data[off:off + 4 + length]))
        off += 4 + length
    return out


# The request a synthesized client sends so that a response of a vector is linked.
REQUEST_FOR = {m["answer"]: m["name"] for m in registry.MESSAGES if m["answer"]}


def request_for(resp_type, version, app_types):
    """A request frame body answered by a frame of type resp_type, or None."""
    name = registry.MESSAGE_NAMES.get(resp_type)
    if resp_type >= APP_FROM:
        return resp_type, b""
    if name == "ERROR":
        return T["PING"], u64(0)
    req = REQUEST_FOR.get(name)
    if req is None or registry.SINCE[req] > version:
        return None
    body = {"PING": u64(0), "ECHO": byts(b"x"), "COMPUTE": u32(1) + byts(b""), "SUM": u32(0),
            "STATS": b""}[req]
    return T[req], body


# ---------------------------------------------------------------------------------------------
# Captures: classic pcap, Ethernet, IPv4, TCP with SYN, data segments and FIN
# ---------------------------------------------------------------------------------------------

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.t = 1_700_000_000.0
        self.packets = 0

    def packet(self, src, dst, sport, dport, seq, ack, flags, payload):
        self.t += 0.000125
        ip_src, ip_dst = bytes(src), bytes(dst)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, 65535, 0, 0) + payload
        pseudo = ip_src + ip_dst + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, ip_src, ip_dst)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
        pkt = eth + ip + tcp
        sec = int(self.t)
        usec = int(round((self.t - sec) * 1e6))
        self.f.write(struct.pack("<IIII", sec, usec, len(pkt), len(pkt)) + pkt)
        self.packets += 1

    def close(self):
        self.f.close()


SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10


class Conn:
    """One TCP connection between 127.0.0.1:cport (client) and 127.0.0.2:sport (server)."""

    def __init__(self, pcap, cport, sport, handshake=True):
        self.p, self.cport, self.sport = pcap, cport, sport
        self.seq = {"c": 1000, "s": 5000}
        if handshake:
            self._send("c", SYN, b"")
            self.seq["c"] += 1
            self._send("s", SYN | ACK, b"")
            self.seq["s"] += 1
            self._send("c", ACK, b"")

    def _send(self, side, flags, payload):
        if side == "c":
            self.p.packet((127, 0, 0, 1), (127, 0, 0, 2), self.cport, self.sport,
                          self.seq["c"], self.seq["s"], flags, payload)
        else:
            self.p.packet((127, 0, 0, 2), (127, 0, 0, 1), self.sport, self.cport,
                          self.seq["s"], self.seq["c"], flags, payload)

    def send(self, side, data, cuts=()):
        """data in segments cut at the given offsets."""
        bounds = [0] + sorted(c for c in set(cuts) if 0 < c < len(data)) + [len(data)]
        for a, b in zip(bounds, bounds[1:]):
            self._send(side, PSH | ACK, data[a:b])
            self.seq[side] += b - a

    def fin(self, side):
        self._send(side, FIN | ACK, b"")
        self.seq[side] += 1


# ---------------------------------------------------------------------------------------------
# Vector connections: context, segmentations
# ---------------------------------------------------------------------------------------------

VARIANTS = ("whole", "octets", "split-length", "split-header", "coalesced", "heuristic", "midstream")


def load_vectors():
    out = []
    for name in ("valid", "invalid"):
        with open(os.path.join(VECTORS, name + ".json"), encoding="utf-8") as f:
            doc = json.load(f)
        for v in doc["vectors"]:
            v["_kind"] = name
            out.append(v)
    return out


def responses_needing_requests(v, data):
    """(type, body, id) of the requests a client must have sent for the responses in data."""
    if v["direction"] != "to_client" or v["version"] is None:
        return []
    reqs, seen = [], set()
    for _, ver, t, fl, rid, raw in split_frames(data):
        server_sends = t >= APP_FROM or registry.MESSAGE_NAMES.get(t) in registry.SENT_BY_SERVER
        if rid == 0 or rid in seen or not server_sends:
            continue
        r = request_for(t, v["version"], v.get("application_types", []))
        if r:
            reqs.append((r[0], r[1], rid))
            seen.add(rid)
    return reqs


def app_pref(v):
    return ",".join(str(t) for t in v.get("application_types", []))


def cuts_for(variant, n):
    if variant == "octets":
        return list(range(1, n))
    if variant == "split-length":
        return [2]
    if variant == "split-header":
        return [7, 13]
    if variant == "heuristic":
        return list(range(3, n, 3))
    return []


def applicable(v, variant):
    """Whether the variant applies to the vector, and what it expects ('normal' / 'none')."""
    if variant == "midstream" and v["version"] is None:
        return None
    if variant == "heuristic" and v.get("preface") and not PREFACE.startswith(bytes.fromhex(v["hex"])[:1]):
        return "none"  # not Echowire at all: the heuristic must not claim it
    return "normal"


def write_connection(pcap, v, variant, cport):
    """Writes one connection for vector v; returns what the checker needs to know about it."""
    data = bytes.fromhex(v["hex"])
    to_server = v["direction"] == "to_server"
    version = v["version"]
    caps = v["capabilities"]
    mid = variant == "midstream"
    sport = HEUR_PORT if variant == "heuristic" else SERVER_PORT
    conn = Conn(pcap, cport, sport, handshake=not mid)
    coalesce = variant == "coalesced"
    pre = {"c": b"", "s": b""}   # context octets sent before the vector, per direction
    ctx_c, ctx_s = [], []        # context segments, per direction
    if not mid:
        if version is None:
            if to_server:
                if not v.get("preface"):
                    ctx_c.append(PREFACE)
            else:
                ch = v.get("client_hello") or {"min_version": BASE, "max_version": max(registry.VERSIONS),
                                                "max_frame_size": 1 << 20, "capabilities": 0, "agent": "check"}
                ctx_c.append(PREFACE + frame(BASE, T["HELLO"], 0, 0, hello_body(
                    ch["min_version"], ch["max_version"], ch["max_frame_size"], ch["capabilities"], ch["agent"])))
        else:
            client_limit = v["max_frame_size"] if not to_server else 1 << 20
            server_limit = v["max_frame_size"] if to_server else 1 << 20
            ctx_c.append(PREFACE + frame(BASE, T["HELLO"], 0, 0, hello_body(
                version, version, client_limit, caps, "check")))
            ctx_s.append(frame(BASE, T["WELCOME"], 0, 0, welcome_body(version, server_limit, 1024, caps, "check")))
    reqs = responses_needing_requests(v, data)
    for t, body, rid in reqs:
        ctx_c.append(frame(version, t, 0, rid, body))
    pre["c"] = b"".join(ctx_c)
    pre["s"] = b"".join(ctx_s)
    cuts = cuts_for(variant, len(data))
    if to_server:
        if coalesce and ctx_c:
            head = b"".join(ctx_c)
            conn.send("c", head + data, [len(head) + c for c in cuts])
            for seg in ctx_s:
                conn.send("s", seg)
        else:
            for seg in ctx_c:
                conn.send("c", seg)
            for seg in ctx_s:
                conn.send("s", seg)
            conn.send("c", data, cuts)
        conn.fin("c")
        conn.fin("s")
    else:
        if coalesce:
            if ctx_c:
                conn.send("c", b"".join(ctx_c))
            head = b"".join(ctx_s)
            conn.send("s", head + data, [len(head) + c for c in cuts])
        else:
            for seg in ctx_c:
                conn.send("c", seg)
            for seg in ctx_s:
                conn.send("s", seg)
            conn.send("s", data, cuts)
        conn.fin("s")
        conn.fin("c")
    return {"vector": v, "variant": variant, "cport": cport, "sport": sport,
            "base": len(pre["c"] if to_server else pre["s"]),
            "dir": v["direction"], "segments": len(cuts) + 1}


def prefs_for(v, variant):
    prefs = [("echowire.app_types", app_pref(v))]
    if variant == "midstream":
        prefs += [("echowire.mid_version", "version %d" % v["version"]),
                  ("echowire.mid_max_frame_size", str(v["max_frame_size"])),
                  ("echowire.mid_rkyv", "TRUE" if v["capabilities"] & registry.CAPABILITIES["RKYV"] else "FALSE")]
    return tuple(prefs)


# ---------------------------------------------------------------------------------------------
# tshark and its PDML
# ---------------------------------------------------------------------------------------------

SEV_WARN, SEV_ERROR = 0x00600000, 0x00800000
SEVERITY = {0x00200000: "chat", 0x00400000: "note", 0x00600000: "warn", 0x00800000: "error",
            0x00100000: "comment"}


def find_tshark(path=None):
    t = path or shutil.which("tshark")
    if not t or not os.path.exists(t):
        print("tshark not found: apt-get install tshark")
        sys.exit(2)
    return t


def run_tshark(tshark, capture, prefs=(), display_filter="echowire || _ws.malformed || tcp.len > 0",
               protos="tcp echowire data"):
    cmd = [tshark, "-n", "-r", capture, "-X", "lua_script:" + LUA, "-2", "-T", "pdml", "-J", protos]
    if display_filter:
        cmd += ["-Y", display_filter]
    for k, val in prefs:
        cmd += ["-o", f"{k}:{val}"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = "\n".join(line for line in proc.stderr.decode("utf-8", "replace").splitlines()
                    if "could be dangerous" not in line and line.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"tshark failed ({proc.returncode}) on {capture}: {err}\n{' '.join(cmd)}")
    return proc.stdout, err


class Pdu:
    """One echowire protocol item of a packet."""

    def __init__(self, packet, elem):
        self.packet = packet
        self.showname = elem.get("showname", "")
        self.fields = {}      # name -> [(show, value)] in document order
        self.experts = []     # (abbr, severity name, message)
        self.lua_errors = []
        self._walk(elem)

    def _walk(self, elem):
        for ch in elem:
            name = ch.get("name", "")
            if name == "_ws.expert":
                abbr, sev, msg = None, None, ""
                for e in ch:
                    n = e.get("name", "")
                    if n == "_ws.expert.severity":
                        sev = SEVERITY.get(int(e.get("show", "0")), e.get("show"))
                    elif n == "_ws.expert.message":
                        msg = e.get("show", "")
                    elif n.startswith("echowire."):
                        abbr = n
                self.experts.append((abbr, sev, msg))
                continue
            show = ch.get("show", "")
            if show.startswith("Lua Error") or ch.get("showname", "").startswith("Lua Error"):
                self.lua_errors.append(show or ch.get("showname"))
            if name:
                self.fields.setdefault(name, []).append((show, ch.get("value")))
            self._walk(ch)

    def get(self, name, default=None):
        vals = self.fields.get(name)
        return vals[0][0] if vals else default

    def num(self, name, default=None):
        s = self.get(name)
        return int(s, 0) if s not in (None, "") else default

    def all(self, name):
        return [s for s, _ in self.fields.get(name, [])]

    def value(self, name):
        vals = self.fields.get(name)
        return (vals[0][1] or "") if vals else None

    @property
    def kind(self):
        if "echowire.type" in self.fields:
            return "frame"
        if "echowire.preface" in self.fields:
            return "preface"
        if "echowire.length" in self.fields:
            return "length"
        if "echowire.discarded" in self.fields:
            return "discard"
        if self.showname.find("end of stream") >= 0:
            return "eos"
        return "other"

    @property
    def soff(self):
        return self.num("echowire.stream_offset", 0)

    def violation(self):
        code = self.get("echowire.violation")
        if code is None:
            return None
        return {"code": code, "scope": self.get("echowire.violation.scope"),
                "request_id": self.num("echowire.violation.error_request_id"),
                "offset": self.num("echowire.violation.stream_offset"),
                "section": self.get("echowire.violation.section")}

    def worst(self):
        """Experts of severity warn or error: [(severity, message)]."""
        return [(s, m) for _, s, m in self.experts if s in ("warn", "error")]


class Packet:
    def __init__(self, elem):
        self.number = None
        self.sport = self.dport = None
        self.tcp_len = 0
        self.reassembled_in = None
        self.pdus = []
        self.lua_errors = []
        self.exceptions = []
        self.data = False
        for proto in elem:
            name = proto.get("name")
            sn = proto.get("showname", "") or ""
            if name == "tcp" and "Len: " in sn:
                self.tcp_len = int(sn.rsplit("Len: ", 1)[1].split(",")[0].split()[0])
            if name == "geninfo":
                for f in proto:
                    if f.get("name") == "num":
                        self.number = int(f.get("show"))
            elif name == "tcp":
                sn = proto.get("showname", "")
                for f in proto.iter("field"):
                    n = f.get("name")
                    if n == "tcp.srcport":
                        self.sport = int(f.get("show"))
                    elif n == "tcp.dstport":
                        self.dport = int(f.get("show"))
                    elif n == "tcp.len":
                        self.tcp_len = int(f.get("show"))
                    elif n == "tcp.reassembled_in":
                        self.reassembled_in = int(f.get("show"))
                if self.sport is None and "Src Port: " in sn:
                    self.sport = int(sn.split("Src Port: ")[1].split(",")[0])
                    self.dport = int(sn.split("Dst Port: ")[1].split(",")[0])
            elif name == "echowire":
                pdu = Pdu(self, proto)
                self.pdus.append(pdu)
                self.lua_errors += pdu.lua_errors
            elif name == "data":
                self.data = True
            for f in proto.iter():
                show = f.get("show", "") or ""
                sn = f.get("showname", "") or ""
                if show.startswith("Lua Error") or sn.startswith("Lua Error"):
                    if name != "echowire":
                        self.lua_errors.append(show or sn)
                if f.get("name") == "_ws.malformed.expert" or sn.startswith("[Malformed Packet:") \
                        or show.startswith("[Malformed Packet:") or f.get("name") == "_ws.dissector_bug":
                    self.exceptions.append(sn or show)


def parse_pdml(xml_bytes):
    packets = []
    for _, elem in ET.iterparse(__import__("io").BytesIO(xml_bytes), events=("end",)):
        if elem.tag == "packet":
            packets.append(Packet(elem))
            elem.clear()
    return packets


# ---------------------------------------------------------------------------------------------
# Checking the vectors
# ---------------------------------------------------------------------------------------------

BYTES_KEYS = {"payload", "seed", "digest", "archive", "body"}
RESPONSE_TYPES = {m["code"] for m in registry.MESSAGES if m["kind"] == "response"}


def type_code(exp):
    t = exp["type"]
    if t == "SUM_RKYV":
        return T["SUM"]
    if t == "APPLICATION":
        return exp["body"]["type_code"]
    return T[t]


def compare_frame(p, exp, v, label):
    errs = []

    def eq(what, got, want):
        if got != want:
            errs.append(f"{label}: field {what} is {got!r}, expected {want!r}")

    eq("echowire.version", p.num("echowire.version"), exp["version"])
    eq("echowire.type", p.num("echowire.type"), type_code(exp))
    eq("echowire.flags", p.num("echowire.flags"), exp["flags"])
    eq("echowire.request_id", p.num("echowire.request_id"), exp["request_id"])
    t, body = exp["type"], exp["body"]
    if t == "SUM_RKYV":
        eq("echowire.sum.archive", p.value("echowire.sum.archive"), body["archive"])
        eq("echowire.sum.rkyv.value", [int(x) for x in p.all("echowire.sum.rkyv.value")],
           v.get("archived_values"))
        return errs
    if t == "APPLICATION":
        eq("echowire.application.body", p.value("echowire.application.body") or "", body["body"])
        return errs
    pre = "echowire." + t.lower() + "."
    for k, want in body.items():
        f = pre + k
        if k == "values":
            f = pre + "value"
            got = [int(x) for x in p.all(f)]
        elif k == "entries":
            names, vals = p.all(pre + "name"), [int(x) for x in p.all(pre + "value")]
            got = [{"name": n, "value": x} for n, x in zip(names, vals)]
            f = pre + "name/value"
        elif k == "code":
            if isinstance(want, str):
                eq(f + "_name", p.get(f + "_name"), want)
                want = E[want]
            got = p.num(f)
        elif k == "retry_after_ms" and exp["version"] < 2:
            if f in p.fields:
                errs.append(f"{label}: field {f} present in a version-1 ERROR")
            continue
        elif k in BYTES_KEYS:
            got = p.value(f) or ""
        elif isinstance(want, str):
            got = p.get(f)
        else:
            got = p.num(f)
        eq(f, got, want)
    return errs


def conn_of(pkt, server_ports):
    if pkt.sport in server_ports:
        return pkt.dport
    return pkt.sport


def check_connection(desc, pdus, packets):
    """Failures of one vector connection."""
    v, variant = desc["vector"], desc["variant"]
    label = f"{v['_kind']} vector {v['id']} [{variant}]"
    errs = []
    for pkt in packets:
        for e in pkt.lua_errors:
            errs.append(f"{label}: frame {pkt.number}: {e}")
        for e in pkt.exceptions:
            errs.append(f"{label}: frame {pkt.number}: dissector exception {e}")
        if pkt.data:
            errs.append(f"{label}: frame {pkt.number}: undissected data")
    if desc["expect"] == "none":
        if pdus:
            errs.append(f"{label}: the heuristic dissector claimed a connection that is not Echowire")
        return errs
    region, context = [], []
    for p in pdus:
        (region if p.get("echowire.direction") == desc["dir"] and p.soff >= desc["base"] else context).append(p)
    for p in context:
        viol = p.violation()
        if viol and viol["code"] != "UNSUPPORTED_VERSION":
            errs.append(f"{label}: context frame {p.packet.number} (the synthesized handshake or requests) has "
                        f"violation {viol['code']}: {p.worst()}")
    if v["_kind"] == "valid":
        frames = [p for p in region if p.kind == "frame"]
        for p in region:
            if p.kind != "frame":
                errs.append(f"{label}: frame {p.packet.number}: unexpected {p.kind} item {p.showname!r}")
        if len(frames) != len(v["frames"]):
            errs.append(f"{label}: {len(frames)} Echowire frames decoded, expected {len(v['frames'])}")
        for i, (p, exp) in enumerate(zip(frames, v["frames"])):
            flabel = f"{label} frame {i} (capture frame {p.packet.number})"
            errs += compare_frame(p, exp, v, flabel)
            if p.violation():
                errs.append(f"{flabel}: unexpected violation {p.violation()}")
            for sev, msg in p.worst():
                errs.append(f"{flabel}: unexpected expert info ({sev}): {msg}")
            t = p.num("echowire.type")
            rid = p.num("echowire.request_id")
            if desc["dir"] == "to_client" and rid and (t in RESPONSE_TYPES or t == T["ERROR"] or t >= APP_FROM) \
                    and p.get("echowire.request_in") is None:
                errs.append(f"{flabel}: response with request ID {rid} not linked to its request "
                            f"(no echowire.request_in)")
        return errs
    want = v["error"]
    viols = [(p.violation()["offset"], i, p) for i, p in enumerate(region) if p.violation()]
    if not viols:
        errs.append(f"{label}: no violation found, expected {want['code']} at offset {want['offset']}")
        return errs
    viols.sort(key=lambda x: (x[0], x[1]))
    p = viols[0][2]
    got = p.violation()
    flabel = f"{label} (capture frame {p.packet.number})"
    if got["code"] != want["code"]:
        errs.append(f"{flabel}: field echowire.violation is {got['code']}, expected {want['code']}")
    if got["scope"] != want["scope"]:
        errs.append(f"{flabel}: field echowire.violation.scope is {got['scope']}, expected {want['scope']}")
    if got["request_id"] != want["request_id"]:
        errs.append(f"{flabel}: field echowire.violation.error_request_id is {got['request_id']}, "
                    f"expected {want['request_id']}")
    if got["offset"] - desc["base"] != want["offset"]:
        errs.append(f"{flabel}: field echowire.violation.stream_offset is {got['offset'] - desc['base']} "
                    f"(from the vector's first octet), expected {want['offset']}")
    sev = "warn" if want["scope"] == "request" else "error"
    if not any(s == sev and m.startswith(want["code"] + ":") for _, s, m in p.experts):
        errs.append(f"{flabel}: no expert info of severity {sev} naming {want['code']}: {p.experts}")
    return errs


def check_vectors(args, tshark):
    started = time.monotonic()
    vectors = load_vectors()
    groups = {}   # prefs -> [(v, variant)]
    excluded = []
    for v in vectors:
        if v["id"] in EXCLUDED:
            excluded.append((v["id"], EXCLUDED[v["id"]]))
            continue
        for variant in VARIANTS:
            expect = applicable(v, variant)
            if expect is None:
                continue
            groups.setdefault(prefs_for(v, variant), []).append((v, variant, expect))
    tmp = args.keep or tempfile.mkdtemp(prefix="echowire-check-")
    os.makedirs(tmp, exist_ok=True)
    jobs = []
    for gi, (prefs, items) in enumerate(sorted(groups.items())):
        path = os.path.join(tmp, f"vectors-{gi:02d}.pcap")
        pcap = Pcap(path)
        descs = {}
        for i, (v, variant, expect) in enumerate(items):
            d = write_connection(pcap, v, variant, 20000 + i)
            d["expect"] = expect
            descs[d["cport"]] = d
        pcap.close()
        jobs.append((path, prefs, descs, pcap.packets))
    results = run_parallel(tshark, jobs, args.jobs)
    failures, checked, splits, conns = [], set(), 0, 0
    per_variant = {}
    for (path, prefs, descs, npk), (xml, err) in zip(jobs, results):
        if err:
            failures.append(f"tshark on {os.path.basename(path)} wrote to standard error: {err}")
        packets = parse_pdml(xml)
        by_conn = {}
        for pkt in packets:
            by_conn.setdefault(conn_of(pkt, (SERVER_PORT, HEUR_PORT)), []).append(pkt)
        for cport, d in descs.items():
            pkts = by_conn.get(cport, [])
            pdus = [p for pkt in pkts for p in pkt.pdus]
            errs = check_connection(d, pdus, pkts)
            conns += 1
            if d["segments"] > 1:
                splits += 1
            per_variant[d["variant"]] = per_variant.get(d["variant"], 0) + 1
            checked.add((d["vector"]["_kind"], d["vector"]["id"]))
            failures += errs
    n_valid = sum(1 for k, _ in checked if k == "valid")
    n_invalid = sum(1 for k, _ in checked if k == "invalid")
    for f in failures:
        print("FAIL " + f)
    print(f"vectors: {n_valid} valid and {n_invalid} invalid checked, {len(excluded)} excluded")
    for vid, why in excluded:
        print(f"  excluded {vid}: {why}")
    print(f"connections: {conns} ({', '.join(f'{k} {n}' for k, n in per_variant.items())}); "
          f"{splits} with the vector split across several TCP segments; "
          f"{len(jobs)} tshark runs, {sum(j[3] for j in jobs)} packets")
    if failures and not args.keep:
        print(f"captures kept in {tmp}")
    elif not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failures, "
          f"{time.monotonic() - started:.1f} s")
    return 1 if failures else 0


def run_parallel(tshark, jobs, n):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, n)) as ex:
        # No display filter: tshark's first pass then builds no protocol tree, the harder case
        # for a Lua dissector (its field extractors are empty).
        futs = [ex.submit(run_tshark, tshark, path, prefs, None, "echowire data")
                for path, prefs, _, _ in jobs]
        return [f.result() for f in futs]


# ---------------------------------------------------------------------------------------------
# Checking existing captures (--capture)
# ---------------------------------------------------------------------------------------------

CAPTURE_FILTER = "echowire || _ws.malformed || data"


def capture_files(path):
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".pcapng"))
        if not files:
            raise SystemExit(f"no .pcapng file in {path}")
        return files
    if not os.path.exists(path):
        raise SystemExit(f"no such capture: {path}")
    return [path]


def check_capture(path, packets, port, server_faults_ok=False):
    """(failures, counts) of one capture."""
    fails = []
    n = {"frames": 0, "to_server": 0, "to_client": 0, "requests": 0, "responses": 0, "linked": 0,
         "connections": set()}
    violations, experts = {}, {}
    by_number = {pkt.number: pkt for pkt in packets}
    n["predicted"] = n["agreed"] = n["unanswered"] = 0
    for pkt in packets:
        where = f"{os.path.basename(path)} frame {pkt.number}"
        for e in pkt.lua_errors:
            fails.append(f"{where}: {e}")
        for e in pkt.exceptions:
            fails.append(f"{where}: dissector exception: {e}")
        if pkt.data:
            fails.append(f"{where}: undissected data (TCP payload not decoded as Echowire)")
        if pkt.pdus:
            n["connections"].add(tuple(sorted((pkt.sport, pkt.dport))))
        for p in pkt.pdus:
            for _, sev, msg in p.experts:
                experts[sev] = experts.get(sev, 0) + 1
            viol = p.violation()
            if viol:
                key = (viol["code"], p.get("echowire.direction"))
                violations[key] = violations.get(key, 0) + 1
                if p.get("echowire.direction") == "to_server" and viol["scope"] != "ignored":
                    # The server's ERROR must carry the code the dissector predicted.
                    n["predicted"] += 1
                    answer = answer_of(p, pkt, by_number, viol)
                    if answer is None:
                        n["unanswered"] += 1
                    elif answer == viol["code"]:
                        n["agreed"] += 1
                    else:
                        fails.append(f"{where}: the dissector predicts {viol['code']} (Section {viol['section']}) "
                                     f"for this frame, the server answered {answer} "
                                     f"(frame {p.get('echowire.response_in')})")
            if p.kind != "frame":
                continue
            n["frames"] += 1
            direction = p.get("echowire.direction")
            n[direction] = n.get(direction, 0) + 1
            t, rid = p.num("echowire.type"), p.num("echowire.request_id")
            name = registry.MESSAGE_NAMES.get(t)
            if direction == "to_server":
                if rid and (t >= APP_FROM or (name and name in registry.REQUESTS)):
                    n["requests"] += 1
                continue
            is_response = t >= APP_FROM or (name and registry.MESSAGES[t - 1]["kind"] == "response") \
                or (name == "ERROR" and rid)
            if not is_response or not rid:
                continue
            n["responses"] += 1
            if p.get("echowire.request_in") is not None:
                n["linked"] += 1
            elif server_faults_ok and p.violation():
                n["faulty_unlinked"] = n.get("faulty_unlinked", 0) + 1
            else:
                why = [m for _, s, m in p.experts if s in ("warn", "error", "note")]
                fails.append(f"{where}: {name or 'application type 0x%02X' % t} with request ID {rid} "
                             f"is not linked to a request (field echowire.request_in missing){': ' + '; '.join(why) if why else ''}")
    n["connections"] = len(n["connections"])
    return fails, n, violations, experts


def answer_of(p, pkt, by_number, viol):
    """The code of the ERROR that answers PDU p (or the type of its answer), None if unanswered."""
    resp = p.get("echowire.response_in")
    if resp is None or int(resp) not in by_number:
        return None
    cands = [q for q in by_number[int(resp)].pdus if q.get("echowire.request_in") == str(pkt.number)]
    # Several frames of one packet may be answered in one packet: prefer the ERROR with the ID.
    errors = [q for q in cands if q.get("echowire.error.code_name") is not None]
    cands = [q for q in errors if q.num("echowire.request_id") == viol["request_id"]] or errors or cands
    if not cands:
        return None
    q = cands[0]
    return q.get("echowire.error.code_name") or "%s (not an ERROR)" % registry.MESSAGE_NAMES.get(
        q.num("echowire.type"), "type %s" % q.get("echowire.type"))


def check_captures(args, tshark):
    started = time.monotonic()
    files = capture_files(args.capture)
    prefs = (("echowire.tcp_port", str(args.port)),)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = [ex.submit(run_tshark, tshark, f, prefs, CAPTURE_FILTER, "echowire data") for f in files]
        outputs = [f.result() for f in futs]
    total = {}
    all_viol, all_exp, failures = {}, {}, []
    for path, (xml, err) in zip(files, outputs):
        fails, n, viol, exp = check_capture(path, parse_pdml(xml), args.port, args.server_faults_ok)
        if err:
            fails.insert(0, f"{os.path.basename(path)}: tshark wrote to standard error: {err}")
        failures += fails
        for k, val in n.items():
            total[k] = total.get(k, 0) + val
        for k, val in viol.items():
            all_viol[k] = all_viol.get(k, 0) + val
        for k, val in exp.items():
            all_exp[k] = all_exp.get(k, 0) + val
        if args.verbose or (fails and len(files) > 1):
            print(f"{path}: {n['frames']} frames, {n['responses']} responses, {n['linked']} linked, "
                  f"{sum(viol.values())} violations, {len(fails)} failures")
    for f in failures:
        print("FAIL " + f)
    print(f"captures: {len(files)}; connections: {total.get('connections', 0)}; Echowire frames: "
          f"{total.get('frames', 0)} ({total.get('to_server', 0)} to server, {total.get('to_client', 0)} to client)")
    print(f"requests: {total.get('requests', 0)}; responses (and ERRORs with a request ID): "
          f"{total.get('responses', 0)}, linked to their request: {total.get('linked', 0)}"
          + (f", faulty and not linked: {total['faulty_unlinked']}" if total.get("faulty_unlinked") else ""))
    print(f"violations in frames to the server: {total.get('predicted', 0)}, answered with the ERROR "
          f"the dissector names: {total.get('agreed', 0)}, not answered in the capture: "
          f"{total.get('unanswered', 0)}")
    print("expert infos by severity: " + (", ".join(f"{k} {v}" for k, v in sorted(all_exp.items())) or "none"))
    print("violations (echowire.violation) by code and direction:")
    for (code, d), cnt in sorted(all_viol.items(), key=lambda x: (-x[1], x[0])):
        print(f"  {cnt:6d}  {code:22s} {d}")
    print(f"{'FAILED' if failures else 'passed'}: {len(failures)} failures, "
          f"{time.monotonic() - started:.1f} s")
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", metavar="FILE|DIR", help="check existing capture(s) instead of the vectors")
    ap.add_argument("--port", type=int, default=SERVER_PORT, help="the server's TCP port in --capture mode")
    ap.add_argument("--server-faults-ok", action="store_true",
                    help="with --capture: a response the dissector flags as faulty (captures of the client "
                         "conformance cases, where the runner plays a misbehaving server) need not be linked")
    ap.add_argument("--tshark", help="tshark to use (default: tshark on PATH)")
    ap.add_argument("--keep", metavar="DIR", help="write the vector captures to DIR and keep them")
    ap.add_argument("--jobs", "-j", type=int, default=min(4, os.cpu_count() or 1),
                    help="tshark processes at once (default: the cores, at most 4)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    tshark = find_tshark(args.tshark)
    if not os.path.exists(LUA):
        print(f"dissector not found: {LUA}")
        return 2
    if args.capture:
        return check_captures(args, tshark)
    return check_vectors(args, tshark)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
