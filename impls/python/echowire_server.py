#!/usr/bin/env python3
"""A minimal Echowire server in Python (standard library only), written from spec/PROTOCOL.md.

It exists to show what a small conformant server looks like, and to prove on every commit that the
conformance suite tests *any* implementation, not just the Rust reference: CI runs the whole suite
against it through the runner's --exec option.

Design: one thread runs a selectors event loop over non-blocking sockets (accept, read, write,
timers); COMPUTE runs on a small pool of worker threads with a bounded admission count (BUSY beyond
it), whose results come back through a queue and a wake-up socket. Each connection is a state
machine following the table of spec section 3.5; frames are checked in the order of section 2.7.

Usage:
  python3 echowire_server.py --listen 127.0.0.1:7878          # or --listen unix:/tmp/e.sock
  python3 echowire_server.py --help                           # limits, workers, timeouts

SIGTERM or SIGINT start a graceful shutdown (section 3.8): stop accepting, GOODBYE SHUTTING_DOWN to
every open connection, answer what is outstanding, exit when every connection is closed.
"""

import argparse
import hashlib
import json
import os
import queue
import selectors
import signal
import socket
import struct
import sys
import threading
import time


def _load_registry():
    """The protocol's registries (spec/registry.json): message types, error codes, flags.

    The one place a code is declared; this server reads it rather than keeping a copy.
    ECHOWIRE_REGISTRY names another file (for a copy of this script outside the repository).
    """
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("ECHOWIRE_REGISTRY") or os.path.join(here, "..", "..", "spec", "registry.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


REGISTRY = _load_registry()
PREFACE = bytes.fromhex(REGISTRY["preface"])
MIN_LIMIT = 4096
MAX_LIMIT = 16 << 20
SUPPORTED = tuple(REGISTRY["versions"])
MAX_COST = 1 << 24
AGENT = "echowire-python/0.1"
LINGER = 1.0  # the lingering close's deadline (section 3.10)

# Message types (section 4.1) and error codes (section 7.1), by their registry names:
# HELLO, WELCOME, ..., STATS_REPLY and NO_ERROR, PROTOCOL_ERROR, ..., INTERNAL_ERROR.
globals().update({m["name"]: m["code"] for m in REGISTRY["messages"]})
globals().update({e["name"]: e["code"] for e in REGISTRY["errors"]})
#: Spec name -> type code, for every type and for the request types.
REGISTRY_CODES = {m["name"]: m["code"] for m in REGISTRY["messages"]}
REQUEST_CODES = {m["name"]: m["code"] for m in REGISTRY["messages"] if m["kind"] == "request"}
TO_SERVER = {m["code"] for m in REGISTRY["messages"] if m["sender"] in ("client", "either")}
REQUESTS = {m["code"] for m in REGISTRY["messages"] if m["kind"] == "request"}
#: Request type -> the first version that defines it (section 5.2).
SINCE = {m["code"]: m["since"] for m in REGISTRY["messages"]}
#: The codes that are connection errors (section 7.1, scope C).
CONNECTION_SCOPE_CODES = {e["code"] for e in REGISTRY["errors"] if "connection" in e["scopes"]}
RKYV_FLAG = 1 << next(f["bit"] for f in REGISTRY["flags"] if f["name"] == "RKYV")


class BodyError(Exception):
    """A body that does not match its layout: the code of the first fault met (section 6.10)."""

    def __init__(self, code, what):
        super().__init__(what)
        self.code = code


class Reader:
    """The standard body encoding (section 6), decoded front to back."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n, what):
        if len(self.data) - self.pos < n:
            raise BodyError(MALFORMED_BODY, f"body ends inside {what} at body offset {self.pos}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, what):
        return self.take(1, what)[0]

    def u16(self, what):
        return struct.unpack(">H", self.take(2, what))[0]

    def u32(self, what):
        return struct.unpack(">I", self.take(4, what))[0]

    def u64(self, what):
        return struct.unpack(">Q", self.take(8, what))[0]

    def i64(self, what):
        return struct.unpack(">q", self.take(8, what))[0]

    def bytes_(self, what):
        n = self.u32(what + " length")
        if n > len(self.data) - self.pos:  # checked before taking anything (section 6.8)
            raise BodyError(MALFORMED_BODY, f"{what} length {n} exceeds the body")
        return self.take(n, what)

    def string(self, what):
        raw = self.bytes_(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BodyError(INVALID_UTF8, f"{what} is not UTF-8") from None

    def end(self):
        if self.pos != len(self.data):
            raise BodyError(TRAILING_BYTES, f"{len(self.data) - self.pos} octet(s) after the body")


def string(s):
    b = s.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def frame(version, type_, request_id, body, flags=0):
    return struct.pack(">IBBHI", 8 + len(body), version, type_, flags, request_id) + body


def compute_digest(cost, seed):
    h = seed
    for _ in range(cost):
        h = hashlib.sha256(h).digest()
    return h


class Job:
    """A COMPUTE for the workers. `state`: queued, running or cancelled, moved under `lock`."""

    def __init__(self, conn, request_id, cost, seed):
        self.conn, self.request_id, self.cost, self.seed = conn, request_id, cost, seed
        self.state = "queued"
        self.lock = threading.Lock()


class Pool:
    """Workers for COMPUTE. At most workers + queue_depth jobs are admitted (running or waiting);
    beyond that `submit` refuses and the request is answered BUSY (section 8.4)."""

    def __init__(self, workers, depth, done, wake):
        self.capacity = workers + depth
        self.admitted = 0
        self.lock = threading.Lock()
        self.jobs = queue.Queue()
        self.done, self.wake = done, wake
        for _ in range(workers):
            threading.Thread(target=self.work, daemon=True).start()

    def submit(self, job):
        with self.lock:
            if self.admitted >= self.capacity:
                return False
            self.admitted += 1
        self.jobs.put(job)
        return True

    def work(self):
        while True:
            job = self.jobs.get()
            with job.lock:
                run = job.state == "queued"
                if run:
                    job.state = "running"
            digest = compute_digest(job.cost, job.seed) if run else None
            with self.lock:
                self.admitted -= 1
            if run:
                self.done.put((job, digest))
                try:
                    self.wake.send(b"x")
                except OSError:
                    pass


class Conn:
    """One connection: the server's states of section 3.5."""

    def __init__(self, server, sock, now):
        self.server, self.sock = server, sock
        self.state = "PREFACE"
        self.inbuf = bytearray()
        self.out = bytearray()
        self.preface_pos = 0
        self.version = 1
        self.client_limit = MAX_LIMIT
        self.outstanding = {}  # request ID -> Job (COMPUTE) or None
        self.goodbye_sent = False
        self.client_drain = False  # the client started the drain (GOODBYE, half-close)
        self.eof = False
        self.accepted = now
        self.last_active = now
        self.drain_deadline = None
        self.write_deadline = None
        self.linger_deadline = None
        self.shutdown_wait = None  # the shutdown caught the handshake: wait for HELLO until then

    # ---- output ---------------------------------------------------------------------------------

    def send(self, data):
        if self.state not in ("CLOSING", "CLOSED"):
            self.out += data

    def error(self, request_id, code, message, retry_after=0):
        body = struct.pack(">H", code) + string(message)
        if self.version >= 2:
            body += struct.pack(">I", retry_after)
        self.send(frame(self.version, ERROR, request_id, body))

    def respond(self, request_id, type_, body):
        """A response, unless it would exceed the client's limit (section 3.4)."""
        self.outstanding.pop(request_id, None)
        if 8 + len(body) > self.client_limit:
            self.error(request_id, RESPONSE_TOO_LARGE,
                       f"a response of Length {8 + len(body)} exceeds the client's {self.client_limit}")
        else:
            self.send(frame(self.version, type_, request_id, body))
        self.maybe_finish()

    def goodbye(self, code, message):
        if not self.goodbye_sent:
            self.goodbye_sent = True
            self.send(frame(self.version, GOODBYE, 0, struct.pack(">H", code) + string(message)))

    # ---- state changes --------------------------------------------------------------------------

    def connection_error(self, code, message):
        """Section 3.10: ERROR with ID 0, stop processing, close lingeringly."""
        self.error(0, code, message)
        self.close_gracefully()

    def close_gracefully(self):
        self.cancel_all()
        self.state = "CLOSING"
        self.write_deadline = time.monotonic() + self.server.drain_timeout

    def cancel_all(self):
        for job in self.outstanding.values():
            if job is not None:
                with job.lock:
                    if job.state == "queued":
                        job.state = "cancelled"
        self.outstanding.clear()

    def drain(self, by_client):
        if self.state == "OPEN":
            self.state = "DRAINING"
            self.client_drain = by_client
            self.drain_deadline = time.monotonic() + self.server.drain_timeout
        self.maybe_finish()

    def frame_buffered(self):
        """A complete frame is buffered but not yet processed."""
        return len(self.inbuf) >= 4 and len(self.inbuf) >= 4 + struct.unpack(">I", self.inbuf[:4])[0]

    def maybe_finish(self):
        # Frames already received are processed first (section 3.8, document 1.2): nothing
        # received is dropped; process() finishes the drain once none is left.
        if self.frame_buffered():
            return
        if self.state == "DRAINING" and not self.outstanding:
            self.goodbye(NO_ERROR, "")
            self.close_gracefully()

    # ---- input ----------------------------------------------------------------------------------

    def on_data(self, data):
        if self.state in ("CLOSING", "CLOSED"):
            return  # read and discarded (section 3.5)
        if self.state == "PREFACE":
            for i, b in enumerate(data):
                if b != PREFACE[self.preface_pos]:
                    self.connection_error(BAD_PREFACE, f"octet {self.preface_pos} of the preface is 0x{b:02x}")
                    return
                self.preface_pos += 1
                if self.preface_pos == len(PREFACE):
                    self.state = "HANDSHAKE"
                    data = data[i + 1:]
                    break
            else:
                return
        self.inbuf += data
        self.process()

    def process(self):
        self.process_frames()
        if self.state == "DRAINING":
            self.maybe_finish()  # every complete frame received is processed: the drain may end

    def process_frames(self):
        while self.state in ("HANDSHAKE", "OPEN", "DRAINING") and len(self.inbuf) >= 4:
            if len(self.out) > self.server.max_pending:
                return  # backpressure: read no further until the output drains (section 8.4)
            length = struct.unpack(">I", self.inbuf[:4])[0]
            limit = MIN_LIMIT if self.state == "HANDSHAKE" else self.server.max_frame
            if length < 8:
                return self.connection_error(FRAME_TOO_SHORT, f"Length {length} is below 8")
            if length > limit:
                return self.connection_error(FRAME_TOO_LARGE, f"Length {length} exceeds the limit {limit}")
            if len(self.inbuf) < 4 + length:
                return
            version, type_, flags, rid = struct.unpack(">BBHI", self.inbuf[4:12])
            body = bytes(self.inbuf[12:4 + length])
            del self.inbuf[:4 + length]
            self.last_active = time.monotonic()
            if self.state == "HANDSHAKE":
                self.on_hello(version, type_, flags, rid, body)
            else:
                self.on_frame(version, type_, flags, rid, body)

    def on_hello(self, version, type_, flags, rid, body):
        """The first frame, in the order of section 3.2."""
        if type_ != HELLO:
            return self.connection_error(HANDSHAKE_REQUIRED, f"the first frame is type 0x{type_:02x}, not HELLO")
        if version != 1:
            return self.connection_error(VERSION_MISMATCH, f"HELLO in header version {version}, not 1")
        if flags:
            return self.connection_error(INVALID_FLAGS, f"HELLO with flags 0x{flags:04x}")
        if rid:
            return self.connection_error(INVALID_REQUEST_ID, f"HELLO with request ID {rid}")
        try:
            r = Reader(body)
            lo, hi = r.u8("min_version"), r.u8("max_version")
            limit, _caps = r.u32("max_frame_size"), r.u32("capabilities")
            r.string("agent")
            r.end()
        except BodyError as e:
            return self.connection_error(e.code, f"HELLO: {e}")
        common = [v for v in SUPPORTED if lo <= v <= hi]
        if not common:
            return self.connection_error(UNSUPPORTED_VERSION,
                                         f"no version in {lo}..={hi}; this server speaks 1..=2")
        if limit < MIN_LIMIT:
            return self.connection_error(PROTOCOL_ERROR, f"max_frame_size {limit} is below 4096")
        self.client_limit = min(limit, MAX_LIMIT)
        self.state = "OPEN"
        # Capabilities: RKYV is optional and not offered, so none are accepted (section 3.4).
        self.send(frame(1, WELCOME, 0, struct.pack(">BIII", max(common), self.server.max_frame,
                                                   self.server.max_outstanding, 0) + string(AGENT)))
        self.version = max(common)
        if self.server.shutting_down:
            self.shutdown()

    def on_frame(self, version, type_, flags, rid, body):
        """A frame after the handshake, in the order of section 2.7."""
        if type_ == HELLO:
            return self.connection_error(PROTOCOL_ERROR, "HELLO after the handshake")
        if version != self.version:
            return self.connection_error(VERSION_MISMATCH, f"header version {version} on a version {self.version} connection")
        # Document 1.2 (section 2.7): rules 7 to 9 are not applied to a client's ERROR with ID 0
        # (it ends the connection whatever its flags and body), and a faulty CANCEL naming an
        # outstanding request is ignored (an ERROR with that ID would be a second response).
        if type_ == ERROR and rid == 0 and not self.error_is_valid(flags, body):
            self.cancel_all()
            return self.close_gracefully()
        if type_ == CANCEL and rid in self.outstanding and (flags or body):
            return None
        if type_ not in (CANCEL, ERROR) and rid in self.outstanding:
            return self.connection_error(DUPLICATE_REQUEST_ID, f"request ID {rid} is outstanding")
        if SINCE.get(type_, 256) > self.version:
            return self.error(rid, UNKNOWN_TYPE, f"type 0x{type_:02x} is not served")
        if type_ not in TO_SERVER:
            return self.error(rid, UNEXPECTED_MESSAGE, f"type 0x{type_:02x} is not sent to a server")
        if flags:
            return self.error(rid, INVALID_FLAGS, f"flags 0x{flags:04x}")
        needs_id = type_ in REQUESTS or type_ == CANCEL
        if (needs_id and rid == 0) or (type_ == GOODBYE and rid != 0):
            return self.error(0, INVALID_REQUEST_ID, f"request ID {rid} for type 0x{type_:02x}")
        try:
            r = Reader(body)
            if type_ == PING:
                fields = (r.u64("data"),)
            elif type_ == ECHO:
                fields = (r.bytes_("payload"),)
            elif type_ == COMPUTE:
                fields = (r.u32("cost"), r.bytes_("seed"))
            elif type_ == SUM:
                n = r.u32("values count")
                if n > len(body) - r.pos:
                    raise BodyError(MALFORMED_BODY, f"values count {n} exceeds the body")
                fields = ([r.i64("value") for _ in range(n)],)
            elif type_ in (ERROR, GOODBYE):
                fields = (r.u16("code"), r.string("message"))
                if type_ == ERROR and self.version >= 2:
                    r.u32("retry_after_ms")
            else:  # CANCEL, STATS: empty bodies
                fields = ()
            r.end()
        except BodyError as e:
            return self.error(rid, e.code, str(e))
        if type_ == CANCEL:
            return self.on_cancel(rid)
        if type_ == ERROR:
            if rid == 0:  # the client gives up on the connection (section 3.10)
                self.cancel_all()
                self.close_gracefully()
            return None
        if type_ == GOODBYE:
            return self.drain(by_client=True)
        self.on_request(type_, rid, fields)
        return None

    def error_is_valid(self, flags, body):
        if flags:
            return False
        try:
            r = Reader(body)
            r.u16("code")
            r.string("message")
            if self.version >= 2:
                r.u32("retry_after_ms")
            r.end()
        except BodyError:
            return False
        return True

    def on_request(self, type_, rid, fields):
        if type_ == COMPUTE and not 1 <= fields[0] <= MAX_COST:
            return self.error(rid, INVALID_ARGUMENT, f"COMPUTE cost {fields[0]} is outside 1..={MAX_COST}")
        if self.state == "DRAINING":
            return self.error(rid, SHUTTING_DOWN, "the connection is draining")
        if len(self.outstanding) >= self.server.max_outstanding:
            return self.error(rid, TOO_MANY_OUTSTANDING, f"more than {self.server.max_outstanding} outstanding")
        if type_ == COMPUTE:
            job = Job(self, rid, fields[0], fields[1])
            if not self.server.pool.submit(job):
                return self.error(rid, BUSY, "the workers are busy", retry_after=50)
            self.outstanding[rid] = job
            return None
        self.outstanding[rid] = None
        if type_ == PING:
            self.respond(rid, PONG, struct.pack(">Q", fields[0]))
        elif type_ == ECHO:
            self.respond(rid, ECHO_REPLY, struct.pack(">I", len(fields[0])) + fields[0])
        elif type_ == SUM:
            total = sum(fields[0]) & 0xFFFFFFFFFFFFFFFF
            self.respond(rid, SUM_RESULT, struct.pack(">IQ", len(fields[0]), total))
        elif type_ == STATS:
            s = self.server.stats
            entries = [("connections_accepted", s["accepted"]), ("connections_open", len(self.server.conns))]
            body = struct.pack(">I", len(entries)) + b"".join(string(k) + struct.pack(">Q", v) for k, v in entries)
            self.respond(rid, STATS_REPLY, body)
        return None

    def on_cancel(self, rid):
        job = self.outstanding.get(rid)
        if job is None:
            return  # not outstanding (or answered inline): ignored (section 3.7)
        with job.lock:
            cancelled = job.state == "queued"
            if cancelled:
                job.state = "cancelled"
        if cancelled:
            self.outstanding.pop(rid, None)
            self.error(rid, CANCELLED, "cancelled before it ran")
            self.maybe_finish()

    def on_result(self, job, digest):
        if self.outstanding.get(job.request_id) is job:
            self.respond(job.request_id, COMPUTE_RESULT, digest)

    def on_eof(self):
        self.eof = True
        if self.state == "PREFACE":
            self.close_gracefully()
        elif self.state == "HANDSHAKE":
            if self.inbuf:
                self.connection_error(TRUNCATED_FRAME, "end of stream inside the HELLO")
            else:
                self.close_gracefully()
        elif self.state in ("OPEN", "DRAINING"):
            if self.inbuf:
                self.error(0, TRUNCATED_FRAME, f"end of stream inside a frame ({len(self.inbuf)} octets)")
                self.inbuf.clear()
            self.drain(by_client=True)

    def shutdown(self):
        """The server's graceful shutdown (section 3.8)."""
        if self.state in ("PREFACE", "HANDSHAKE"):
            # Wait a moment for the HELLO (section 3.8, document 1.2): at most 1 s, never past
            # the handshake timeout; on_timer closes without a frame when it ends.
            self.shutdown_wait = min(time.monotonic() + 1.0, self.accepted + self.server.handshake_timeout)
        elif self.state == "OPEN":
            self.goodbye(SHUTTING_DOWN, "the server is shutting down")
            self.drain(by_client=False)

    def on_timer(self, now):
        s = self.server
        if self.state in ("PREFACE", "HANDSHAKE") and self.shutdown_wait is not None and now >= self.shutdown_wait:
            self.close_gracefully()
        elif self.state in ("PREFACE", "HANDSHAKE") and now >= self.accepted + s.handshake_timeout:
            self.connection_error(HANDSHAKE_TIMEOUT, "no HELLO in time")
        elif self.state == "OPEN":
            if self.outstanding or self.out:
                self.last_active = now  # not idle while work or output is pending (section 8.3)
            elif now >= self.last_active + s.idle_timeout:
                self.goodbye(IDLE_TIMEOUT, "idle")
                self.drain(by_client=False)
        elif self.state == "DRAINING" and now >= self.drain_deadline:
            return "abort"
        elif self.state == "CLOSING":
            if self.out and now >= self.write_deadline:
                return "abort"
            if self.linger_deadline is not None and now >= self.linger_deadline:
                return "close"
        return None


class Server:
    def __init__(self, args):
        self.max_frame = args.max_frame
        self.max_outstanding = args.max_outstanding
        self.max_pending = 4 << 20
        self.max_connections = args.max_connections
        self.handshake_timeout = args.handshake_timeout_ms / 1000
        self.idle_timeout = args.idle_timeout_ms / 1000
        self.drain_timeout = args.drain_timeout_ms / 1000
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.stats = {"accepted": 0}
        self.shutting_down = False
        self.shutdown_requested = False  # set by the signal handler, acted on by the loop
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.done = queue.Queue()
        self.pool = Pool(args.workers, args.queue_depth, self.done, self.wake_w)
        self.listeners = []
        for addr in args.listen:
            if addr.startswith("unix:"):
                path = addr[5:]
                if os.path.exists(path):
                    os.unlink(path)
                ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                ls.bind(path)
            else:
                host, port = addr.rsplit(":", 1)
                ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.bind((host.strip("[]"), int(port)))
            ls.listen(1024)
            ls.setblocking(False)
            self.sel.register(ls, selectors.EVENT_READ, "listen")
            self.listeners.append(ls)
            print(f"listening on {addr}", file=sys.stderr, flush=True)

    def begin_shutdown(self):
        if self.shutting_down:
            return
        self.shutting_down = True
        for ls in self.listeners:
            self.sel.unregister(ls)
            ls.close()
        self.listeners.clear()
        for c in list(self.conns.values()):
            # What the connection already delivered is read first (section 3.8, document 1.2):
            # requests sent before the shutdown are answered or refused, not left unread.
            for _ in range(64):
                if c.sock.fileno() < 0 or c.state in ("CLOSING", "CLOSED") or c.eof:
                    break
                if not self.read(c):
                    break
            if c.sock.fileno() >= 0:
                c.shutdown()

    def run(self):
        while not (self.shutting_down and not self.conns):
            if self.shutdown_requested and not self.shutting_down:
                self.begin_shutdown()
            for key, events in self.sel.select(timeout=0.05):
                if key.data == "listen":
                    self.accept(key.fileobj)
                elif key.data == "wake":
                    try:
                        while key.fileobj.recv(4096):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                else:
                    conn = key.data
                    if events & selectors.EVENT_READ:
                        self.read(conn)
                    if events & selectors.EVENT_WRITE and conn.sock.fileno() >= 0:
                        self.flush(conn)
            while True:
                try:
                    job, digest = self.done.get_nowait()
                except queue.Empty:
                    break
                job.conn.on_result(job, digest)
            now = time.monotonic()
            for conn in list(self.conns.values()):
                action = conn.on_timer(now)
                if action == "abort":
                    self.close(conn, abortive=True)
                elif action == "close":
                    self.close(conn)
                else:
                    self.flush(conn)

    def accept(self, ls):
        while True:
            try:
                sock, _ = ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.stats["accepted"] += 1
            conn = Conn(self, sock, time.monotonic())
            self.conns[sock.fileno()] = conn
            self.sel.register(sock, selectors.EVENT_READ, conn)
            if len(self.conns) > self.max_connections:
                conn.connection_error(CONNECTION_LIMIT, "the server is at its connection limit")
            self.flush(conn)

    def read(self, conn):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(conn, abortive=True)  # a reset: drop it (section 3.11)
        if not data:
            if conn.state == "CLOSING" and conn.linger_deadline is not None:
                return self.close(conn)
            if not conn.eof:
                conn.on_eof()
        else:
            conn.on_data(data)
        self.flush(conn)
        return len(data)

    def flush(self, conn):
        if conn.sock.fileno() < 0:
            return
        while conn.out:
            try:
                n = conn.sock.send(conn.out[:1 << 20])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return self.close(conn, abortive=True)
            del conn.out[:n]
        if not conn.out and conn.state in ("HANDSHAKE", "OPEN", "DRAINING") and conn.inbuf:
            conn.process()  # input held back by backpressure
            if conn.out:
                return self.flush(conn)
        if conn.state == "CLOSING" and not conn.out and conn.linger_deadline is None:
            # Lingering close (section 3.10): shut down the write side, read until EOF or deadline.
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                return self.close(conn)
            conn.linger_deadline = time.monotonic() + LINGER
            if conn.eof:
                return self.close(conn)
        # Backpressure: a connection with too much output queued is not read (section 8.4).
        held = conn.state in ("HANDSHAKE", "OPEN", "DRAINING") and len(conn.out) > self.max_pending
        want = (0 if held else selectors.EVENT_READ) | (selectors.EVENT_WRITE if conn.out else 0)
        try:
            self.sel.modify(conn.sock, want, conn)
        except (KeyError, ValueError):
            pass

    def close(self, conn, abortive=False):
        if conn.state == "CLOSED":
            return
        conn.cancel_all()
        conn.state = "CLOSED"
        self.conns.pop(conn.sock.fileno(), None)
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        if abortive and conn.sock.family != socket.AF_UNIX:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()


def main():
    p = argparse.ArgumentParser(description="A minimal Echowire server (spec/PROTOCOL.md).")
    p.add_argument("--listen", action="append", default=[], help="HOST:PORT or unix:PATH (repeatable)")
    p.add_argument("--max-frame", type=int, default=1 << 20, help="max_frame_size announced in WELCOME")
    p.add_argument("--max-outstanding", type=int, default=64, help="max_outstanding announced in WELCOME")
    p.add_argument("--max-connections", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2, help="COMPUTE worker threads")
    p.add_argument("--queue-depth", type=int, default=64, help="COMPUTEs waiting beyond the running ones")
    p.add_argument("--handshake-timeout-ms", type=int, default=10_000)
    p.add_argument("--idle-timeout-ms", type=int, default=300_000)
    p.add_argument("--drain-timeout-ms", type=int, default=30_000)
    args = p.parse_args()
    if not args.listen:
        args.listen = ["127.0.0.1:7878"]
    checks = [
        (MIN_LIMIT <= args.max_frame <= MAX_LIMIT, "--max-frame must be in 4096..=16777216"),
        (args.max_outstanding >= 1, "--max-outstanding must be at least 1"),
        (args.workers >= 1 and args.queue_depth >= 1, "--workers and --queue-depth must be at least 1"),
        (1000 <= args.handshake_timeout_ms <= 30_000, "--handshake-timeout-ms must be in 1000..=30000"),
        (1000 <= args.idle_timeout_ms <= 3_600_000, "--idle-timeout-ms must be in 1000..=3600000"),
        (1000 <= args.drain_timeout_ms <= 600_000, "--drain-timeout-ms must be in 1000..=600000"),
    ]
    for ok, message in checks:
        if not ok:
            p.error(message)
    server = Server(args)

    def on_signal(_sig, _frame):
        server.shutdown_requested = True
        try:
            server.wake_w.send(b"s")
        except OSError:
            pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.run()


if __name__ == "__main__":
    main()
