#!/usr/bin/env python3
"""An Echowire client written from spec/PROTOCOL.md section 9 alone (standard library only), with
its client-conformance driver (spec/conformance/CLIENT-DRIVER.md): commands as JSON lines on
standard input, events as JSON lines on standard output.

  python3 echowire_client.py            # the driver

It reuses the server's body reader and constants (echowire_server.py) and nothing else: the
checks of WELCOME (9.2) and of every frame after it (9.3, in the order of 2.7) are its own.
"""

import json
import os
import select
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echowire_server as ew  # noqa: E402
from echowire_server import (  # noqa: E402
    BodyError, Reader, frame, string, PREFACE, MIN_LIMIT, MAX_LIMIT,
    HELLO, WELCOME, PING, PONG, ECHO, ECHO_REPLY, COMPUTE, COMPUTE_RESULT, CANCEL, ERROR, GOODBYE,
    SUM, SUM_RESULT, STATS, STATS_REPLY,
)

# From the registry (spec/registry.json), through the server module that loads it.
REG = ew.REGISTRY
CODE_NAMES = {e["code"]: e["name"] for e in REG["errors"]}
# Codes that end the connection in an ERROR with ID 0: the connection-scope ones, and (document
# 1.2, section 9.3) those registered only as GOODBYE reasons.
GOODBYE_ONLY = {e["code"] for e in ew.REGISTRY["errors"] if e["scopes"] == ["goodbye"]}
REGISTERED = {e["code"] for e in ew.REGISTRY["errors"]}
CONNECTION_SCOPE = ew.CONNECTION_SCOPE_CODES | GOODBYE_ONLY
ANSWERS = {m["code"]: ew.REGISTRY_CODES[m["answer"]] for m in REG["messages"] if m["answer"]}
NEVER_RECEIVED = {m["code"] for m in REG["messages"] if m["sender"] == "client"}
TYPE_NAMES = {m["code"]: m["name"] for m in REG["messages"] if m["kind"] == "response"}
OUT = threading.Lock()


def emit(**event):
    with OUT:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def name(code):
    return CODE_NAMES.get(code, str(code))


class Fault(Exception):
    """A fault of the server: the client sends ERROR with this code and closes (9.2, 9.3)."""

    def __init__(self, code, what):
        super().__init__(what)
        self.code = code


class Ended(Exception):
    """The connection ended without a fault to report with ERROR (end of stream, reset, the
    server's ERROR)."""

    def __init__(self, what, server_code=None):
        super().__init__(what)
        self.server_code = server_code


class Client:
    def __init__(self, cmd):
        self.offer = (cmd.get("min_version", 1), cmd.get("max_version", 2))
        self.my_limit = cmd.get("max_frame_size", 1 << 20)
        self.caps = cmd.get("capabilities", 0)
        self.timeout = cmd.get("timeout_ms", 2000) / 1000
        host, port = cmd["address"].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.lock = threading.Lock()
        self.wlock = threading.Lock()
        self.next_id = 1
        self.outstanding = {}  # id -> (tag, type, deadline, timed_out)
        self.backlog = []
        self.version = 1
        self.closed = False
        self.peer_goodbye = False

    # ---- bytes -------------------------------------------------------------------------------
    def write(self, data):
        # Blocking: a server that stops reading delays the rest of the output, whole and in
        # order (9.1); the reader goes on meanwhile (it waits with select, not a socket timeout).
        with self.wlock:
            self.sock.sendall(data)

    def fail_with(self, code, what):
        try:
            version = self.version
            body = struct.pack(">H", code) + string(what[:200])
            if version >= 2:
                body += struct.pack(">I", 0)
            self.write(frame(version, ERROR, 0, body))
        except OSError:
            pass

    def read_frame(self, limit, deadline=None):
        """One whole frame: (version, type, flags, id, body). The Length is judged from its 4
        octets before anything else is read (9.3)."""
        while True:
            if len(self.buf) >= 4:
                length = struct.unpack(">I", self.buf[:4])[0]
                if length > limit:
                    raise Fault(ew.FRAME_TOO_LARGE, f"Length {length} exceeds {limit}")
                if length < 8:
                    raise Fault(ew.FRAME_TOO_SHORT, f"Length {length}")
                if len(self.buf) >= 4 + length:
                    version, type_, flags, rid = struct.unpack(">BBHI", self.buf[4:12])
                    body = self.buf[12:4 + length]
                    self.buf = self.buf[4 + length:]
                    return version, type_, flags, rid, body
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError()
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.02)
                if not ready:
                    if deadline is None:
                        return None
                    continue
                data = self.sock.recv(65536)
            except OSError as e:
                raise Ended(f"connection reset: {e}")
            if not data:
                raise Ended("end of stream" + (" inside a frame" if self.buf else ""))
            self.buf += data

    # ---- the handshake (9.2) -----------------------------------------------------------------
    def handshake(self):
        hello = bytes([self.offer[0], self.offer[1]]) + struct.pack(">II", self.my_limit, self.caps) + string("echowire-python-client/0.1")
        self.write(PREFACE + frame(1, HELLO, 0, hello))
        version, type_, flags, rid, body = self.read_frame(MIN_LIMIT, time.monotonic() + self.timeout)
        if type_ not in (WELCOME, ERROR):
            raise Fault(ew.PROTOCOL_ERROR, f"first frame of type {type_}")
        if type_ == ERROR:
            # An ERROR ends the handshake; a faulty one is a fault like a faulty WELCOME (9.2,
            # document 1.2): its code cannot be trusted.
            if version != 1:
                raise Fault(ew.VERSION_MISMATCH, f"ERROR in header version {version}")
            if flags:
                raise Fault(ew.INVALID_FLAGS, f"flags {flags:#x}")
            try:
                check = Reader(body)
                check.u16("code")
                check.string("message")
                check.end()
            except BodyError as e:
                raise Fault(e.code, str(e))
            r = Reader(body)
            raise Ended("the server refused the handshake", server_code=r.u16("code"))
        if version != 1:
            raise Fault(ew.VERSION_MISMATCH, f"WELCOME in header version {version}")
        if flags:
            raise Fault(ew.INVALID_FLAGS, f"flags {flags:#x}")
        if rid != 0:
            raise Fault(ew.INVALID_REQUEST_ID, f"WELCOME with ID {rid}")
        try:
            r = Reader(body)
            v, limit, max_out, caps = r.u8("version"), r.u32("max_frame_size"), r.u32("max_outstanding"), r.u32("capabilities")
            r.string("agent")
            r.end()
        except BodyError as e:
            raise Fault(e.code, str(e))
        if not (self.offer[0] <= v <= self.offer[1]):
            raise Fault(ew.PROTOCOL_ERROR, f"version {v} not offered")
        if limit < MIN_LIMIT:
            raise Fault(ew.PROTOCOL_ERROR, f"max_frame_size {limit}")
        if max_out == 0:
            raise Fault(ew.PROTOCOL_ERROR, "max_outstanding 0")
        if caps & ~self.caps:
            raise Fault(ew.PROTOCOL_ERROR, f"capabilities {caps:#x} not offered")
        self.version, self.server_limit, self.max_out, self.negotiated_caps = v, min(limit, MAX_LIMIT), max_out, caps
        self.sock.settimeout(None)
        emit(event="welcome", version=v, max_frame_size=self.server_limit, max_outstanding=max_out, capabilities=caps)

    # ---- requests (9.1) ----------------------------------------------------------------------
    def request(self, cmd):
        tag, type_name, body = cmd.get("tag", ""), cmd.get("type", ""), cmd.get("body", {})
        type_ = ew.REQUEST_CODES.get(type_name)

        def hexfield(k):
            v = body.get(k, "")
            if isinstance(v, dict):
                return bytes([v["fill"]]) * v["len"]
            return bytes.fromhex(v)
        if type_ == PING:
            b = struct.pack(">Q", body.get("data", 0))
        elif type_ == ECHO:
            p = hexfield("payload")
            b = struct.pack(">I", len(p)) + p
        elif type_ == COMPUTE:
            s = hexfield("seed")
            b = struct.pack(">II", body.get("cost", 1), len(s)) + s
        elif type_ == SUM:
            vals = body.get("values", [])
            b = struct.pack(">I", len(vals)) + b"".join(struct.pack(">q", x) for x in vals)
        elif type_ == STATS and self.version >= 2:
            b = b""
        else:
            return emit(event="refused", tag=tag, detail=f"cannot send {type_name}")
        if 8 + len(b) > self.server_limit:
            return emit(event="refused", tag=tag, detail="longer than the server's max_frame_size")
        if self.closed or self.peer_goodbye:
            return emit(event="refused", tag=tag, detail="the connection is closing")
        deadline = time.monotonic() + cmd["timeout_ms"] / 1000 if "timeout_ms" in cmd else None
        with self.lock:
            self.backlog.append((tag, type_, b, deadline))
        self.pump()

    def pump(self):
        """Sends what the server's max_outstanding allows, in order."""
        while True:
            with self.lock:
                if not self.backlog or len(self.outstanding) >= self.max_out:
                    return
                tag, type_, b, deadline = self.backlog.pop(0)
                rid = self.next_id
                while rid == 0 or rid in self.outstanding:
                    rid = (rid + 1) & 0xFFFFFFFF
                self.next_id = (rid + 1) & 0xFFFFFFFF
                self.outstanding[rid] = [tag, type_, deadline, False]
            self.write(frame(self.version, type_, rid, b))

    def cancel(self, tag):
        with self.lock:
            ids = [rid for rid, o in self.outstanding.items() if o[0] == tag]
        for rid in ids:
            self.write(frame(self.version, CANCEL, rid, b""))

    def goodbye(self):
        self.write(frame(self.version, GOODBYE, 0, struct.pack(">H", ew.NO_ERROR) + string("")))

    # ---- responses (9.3) ---------------------------------------------------------------------
    def check(self, version, type_, flags, rid, body):
        if type_ == WELCOME:
            raise Fault(ew.PROTOCOL_ERROR, "a second WELCOME")
        if version != self.version:
            raise Fault(ew.VERSION_MISMATCH, f"header version {version}")
        defined = set(range(1, 14)) | ({STATS, STATS_REPLY} if self.version >= 2 else set())
        if type_ not in defined and type_ < 0x80:
            raise Fault(ew.UNKNOWN_TYPE, f"type {type_:#x}")
        if type_ in NEVER_RECEIVED:
            raise Fault(ew.UNEXPECTED_MESSAGE, f"type {type_:#x}")
        if flags:
            raise Fault(ew.INVALID_FLAGS, f"flags {flags:#x}")
        if (type_ in ANSWERS.values() or type_ >= 0x80) and rid == 0:
            raise Fault(ew.INVALID_REQUEST_ID, "a response with ID 0")
        if type_ == GOODBYE and rid != 0:
            raise Fault(ew.INVALID_REQUEST_ID, f"GOODBYE with ID {rid}")
        try:
            r = Reader(body)
            if type_ == PONG:
                out = {"data": r.u64("data")}
            elif type_ == ECHO_REPLY:
                out = {"payload": r.bytes_("payload").hex()}
            elif type_ == COMPUTE_RESULT:
                out = {"digest": r.take(32, "digest").hex()}
            elif type_ == SUM_RESULT:
                count, total = r.u32("count"), r.i64("sum")  # i64, two's complement (4.10)
                out = {"count": count, "sum": total}
            elif type_ == STATS_REPLY:
                n = r.u32("entries count")
                out = {"entries": [{"name": r.string("name"), "value": r.u64("value")} for _ in range(n)]}
            elif type_ in (ERROR, GOODBYE):
                out = {"code": r.u16("code"), "message": r.string("message")}
                if type_ == ERROR and self.version >= 2:
                    out["retry_after_ms"] = r.u32("retry_after_ms")
            else:
                out = {"hex": r.take(len(body), "body").hex()}
            r.end()
        except BodyError as e:
            raise Fault(e.code, str(e))
        if type_ == GOODBYE:
            self.peer_goodbye = True
            return
        if type_ == ERROR and rid == 0 and out["code"] not in REGISTERED and out["code"] < 0x8000:
            # An unknown code of the reserved range is treated as INTERNAL_ERROR (7.1): with ID 0,
            # the server meant to end the connection.
            raise Ended("the server ended the connection", server_code=out["code"])
        if type_ == ERROR and rid == 0:
            if out["code"] in CONNECTION_SCOPE:
                raise Ended("the server ended the connection", server_code=out["code"])
            return  # TRUNCATED_FRAME or a request-scope code: the connection goes on (3.10)
        with self.lock:
            o = self.outstanding.get(rid)
            # A response of the wrong type does not answer its request: the request stays
            # outstanding, and the connection error reports it lost (9.3).
            if o is not None and (type_ == ERROR or ANSWERS.get(o[1]) == type_):
                del self.outstanding[rid]
        if o is None:
            raise Fault(ew.PROTOCOL_ERROR, f"ID {rid} is not outstanding")
        tag, req_type = o[0], o[1]
        if type_ == ERROR:
            emit(event="error", tag=tag, code=name(out["code"]), message=out["message"],
                 retry_after_ms=out.get("retry_after_ms", 0))
        elif ANSWERS.get(req_type) == type_:
            emit(event="response", tag=tag, type=TYPE_NAMES[type_], body=out)
        else:
            raise Fault(ew.PROTOCOL_ERROR, f"type {type_} does not answer {req_type}")
        self.pump()

    def serve(self):
        """The reader: every frame after WELCOME, until the connection ends."""
        try:
            while True:
                f = self.read_frame(self.my_limit)
                if f is None:
                    now = time.monotonic()
                    with self.lock:
                        late = [o for o in self.outstanding.values() if o[2] is not None and not o[3] and now >= o[2]]
                        for o in late:
                            o[3] = True
                    for o in late:
                        emit(event="timeout", tag=o[0])
                    continue
                self.check(*f)
        except Fault as e:
            self.fail_with(e.code, str(e))
            self.finish(f"protocol violation: {e}", sent_code=name(e.code))
        except Ended as e:
            with self.lock:
                left = []
                if self.peer_goodbye and str(e) == "end of stream" and e.server_code is None:
                    # A clean end after the server's GOODBYE: what it did not answer was not
                    # processed and may be retried on another connection (3.8, 9.3).
                    left = sorted(self.outstanding.items())
                    self.outstanding.clear()
                graceful = not self.outstanding and self.peer_goodbye and "inside" not in str(e)
            for _, o in left:
                emit(event="unprocessed", tag=o[0])
            if graceful:
                self.finish(None)
            else:
                self.finish(str(e), server_code=name(e.server_code) if e.server_code is not None else None)

    def finish(self, why, sent_code=None, server_code=None):
        self.closed = True
        if why is not None:
            emit(event="failed", stage="response", detail=why, sent_code=sent_code, server_code=server_code)
        with self.lock:
            left = sorted(self.outstanding.items())
            self.outstanding.clear()
        for _, o in left:
            emit(event="lost", tag=o[0])
        try:
            self.sock.close()
        except OSError:
            pass
        emit(event="closed")


def main():
    client = None
    for line in sys.stdin:
        try:
            cmd = json.loads(line)
        except ValueError:
            continue
        op = cmd.get("cmd")
        if op == "connect":
            try:
                client = Client(cmd)
                client.handshake()
                threading.Thread(target=client.serve, daemon=True).start()
            except Fault as e:
                client.fail_with(e.code, str(e))
                client.sock.close()
                emit(event="failed", stage="handshake", detail=str(e), sent_code=name(e.code), server_code=None)
                emit(event="closed")
            except Ended as e:
                client.sock.close()
                emit(event="failed", stage="handshake", detail=str(e), sent_code=None,
                     server_code=name(e.server_code) if e.server_code is not None else None)
                emit(event="closed")
            except (OSError, TimeoutError) as e:
                emit(event="failed", stage="handshake", detail=f"no WELCOME: {e!r}", sent_code=None, server_code=None)
                emit(event="closed")
        elif op == "request" and client:
            client.request(cmd)
        elif op == "cancel" and client:
            client.cancel(cmd.get("tag"))
        elif op == "goodbye" and client:
            client.goodbye()
        elif op == "exit":
            break
        else:
            emit(event="unsupported", cmd=op)
    os._exit(0)


if __name__ == "__main__":
    main()
