#!/usr/bin/env python3
"""Mutants of echowire_server.py: the same server with one realistic bug each.

The conformance suite tests itself with these (conformance/tests/suite/mutants.rs): every mutant must
fail the case named beside it. Each mutant is one textual edit of the server's source (the kind
of slip a programmer makes: an off-by-one, a check in the wrong place, a forgotten branch), so a
mutant is exactly as realistic as the line it changes. An edit whose text no longer occurs exactly
once in the server is an error, so the list cannot silently go stale when the server changes.

Usage:
  python3 mutants.py --list                 # JSON: [{"name", "section", "bug", "killer"}, ...]
  python3 mutants.py NAME [server options]  # run the server with that bug
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
SERVER = HERE / "echowire_server.py"

# (name, spec section, the bug in words, text in the server, replacement, the case that kills it
#  [, the first words of the one sentence it breaks, where its bug's words would also name
#  neighbouring sentences of the section: coverage.py then credits that sentence only])
MUTANTS = [
    # ---- 2.2 framing -----------------------------------------------------------------------------
    ("limit-off-by-one", "2.2", "a frame of Length exactly max_frame_size is refused (FRAME_TOO_LARGE one octet early)",
     "if length > limit:", "if length >= limit:", "2.2-length-at-limit"),
    ("handshake-limit-is-server-limit", "2.2", "before WELCOME, frames are held to the server's own limit, not 4096",
     'limit = MIN_LIMIT if self.state == "HANDSHAKE" else self.server.max_frame',
     "limit = self.server.max_frame", "2.2-hello-length-4097"),
    ("short-frame-limit-7", "2.2", "Length 7 is taken for a frame (the minimum is checked as 7: no FRAME_TOO_SHORT)",
     "if length < 8:", "if length < 7:", "2.2-length-7"),
    ("short-read-at-frame-start-dropped", "2.2",
     "a read that ends inside a frame's Length field, with nothing buffered, is dropped (only whole splits are handled)",
     "        self.inbuf += data\n", "        if self.inbuf or len(data) >= 4:\n            self.inbuf += data\n",
     "2.2-echo-1"),
    ("too-large-decided-when-buffered", "2.2",
     "FRAME_TOO_LARGE is decided only once the whole claimed frame is buffered, not as soon as the 4 length octets are complete",
     "            if length > limit:\n                return self.connection_error(FRAME_TOO_LARGE, f\"Length {length} exceeds the limit {limit}\")\n            if len(self.inbuf) < 4 + length:\n                return\n",
     "            if len(self.inbuf) < 4 + length:\n                return\n            if length > limit:\n                return self.connection_error(FRAME_TOO_LARGE, f\"Length {length} exceeds the limit {limit}\")\n",
     "2.2-prefix-only-too-large"),
    # ---- 2.4 flags -------------------------------------------------------------------------------
    ("only-high-flags-checked", "2.4", "only the high flag byte is checked for undefined bits (no INVALID_FLAGS for the low byte)",
     "if flags:\n            return self.error(rid, INVALID_FLAGS",
     "if flags & 0xFF00:\n            return self.error(rid, INVALID_FLAGS", "2.4-echo-bit-1"),
    ("hello-flags-ignored", "3.2", "HELLO's flags are not checked",
     "if flags:\n            return self.connection_error(INVALID_FLAGS",
     "if False:\n            return self.connection_error(INVALID_FLAGS", "3.2-hello-undefined-flag"),
    # ---- 2.5 request IDs ---------------------------------------------------------------------------
    ("duplicate-ids-accepted", "2.5", "an ID already outstanding is accepted again",
     "if type_ not in (CANCEL, ERROR) and rid in self.outstanding:",
     "if False:", "2.5-duplicate-outstanding"),
    ("cancel-counted-as-duplicate", "3.7", "CANCEL of an outstanding ID is taken for a duplicate",
     "if type_ not in (CANCEL, ERROR) and rid in self.outstanding:",
     "if type_ != ERROR and rid in self.outstanding:", "3.7-cancel-queued-compute"),
    ("request-id-0-accepted", "2.5", "a request with ID 0 is served (an ECHO with ID 0 gets its ECHO_REPLY)",
     "if (needs_id and rid == 0) or (type_ == GOODBYE and rid != 0):",
     "if type_ == GOODBYE and rid != 0:", "2.5-echo-id-0"),
    ("goodbye-id-unchecked", "2.5", "GOODBYE with a nonzero ID is accepted",
     "if (needs_id and rid == 0) or (type_ == GOODBYE and rid != 0):",
     "if needs_id and rid == 0:", "2.5-goodbye-nonzero-id"),
    ("invalid-id-error-carries-id", "2.5", "ERROR INVALID_REQUEST_ID carries the offending ID, not 0",
     "return self.error(0, INVALID_REQUEST_ID", "return self.error(rid, INVALID_REQUEST_ID",
     "2.5-goodbye-nonzero-id"),
    # ---- 2.7 processing order -------------------------------------------------------------------------
    ("flags-checked-before-role", "2.7", "flags are checked before the type's direction",
     "        if type_ not in TO_SERVER:\n            return self.error(rid, UNEXPECTED_MESSAGE, f\"type 0x{type_:02x} is not sent to a server\")\n        if flags:\n            return self.error(rid, INVALID_FLAGS, f\"flags 0x{flags:04x}\")\n",
     "        if flags:\n            return self.error(rid, INVALID_FLAGS, f\"flags 0x{flags:04x}\")\n        if type_ not in TO_SERVER:\n            return self.error(rid, UNEXPECTED_MESSAGE, f\"type 0x{type_:02x} is not sent to a server\")\n",
     "2.7-role-before-flags"),
    ("duplicate-checked-after-type", "2.7", "the duplicate-ID check comes after the unknown-type check",
     "        if type_ not in (CANCEL, ERROR) and rid in self.outstanding:\n            return self.connection_error(DUPLICATE_REQUEST_ID, f\"request ID {rid} is outstanding\")\n        if SINCE.get(type_, 256) > self.version:\n            return self.error(rid, UNKNOWN_TYPE, f\"type 0x{type_:02x} is not served\")\n",
     "        if SINCE.get(type_, 256) > self.version:\n            return self.error(rid, UNKNOWN_TYPE, f\"type 0x{type_:02x} is not served\")\n        if type_ not in (CANCEL, ERROR) and rid in self.outstanding:\n            return self.connection_error(DUPLICATE_REQUEST_ID, f\"request ID {rid} is outstanding\")\n",
     "2.5-duplicate-reserved-type"),
    ("draining-checked-before-argument", "2.7", "SHUTTING_DOWN is answered before the argument check",
     "        if type_ == COMPUTE and not 1 <= fields[0] <= MAX_COST:\n            return self.error(rid, INVALID_ARGUMENT, f\"COMPUTE cost {fields[0]} is outside 1..={MAX_COST}\")\n        if self.state == \"DRAINING\":\n            return self.error(rid, SHUTTING_DOWN, \"the connection is draining\")\n",
     "        if self.state == \"DRAINING\":\n            return self.error(rid, SHUTTING_DOWN, \"the connection is draining\")\n        if type_ == COMPUTE and not 1 <= fields[0] <= MAX_COST:\n            return self.error(rid, INVALID_ARGUMENT, f\"COMPUTE cost {fields[0]} is outside 1..={MAX_COST}\")\n",
     "2.7-argument-before-shutting-down"),
    # ---- 3.1 preface -----------------------------------------------------------------------------------
    ("preface-magic-only", "3.1", "only the first four preface octets are compared (no BAD_PREFACE for a wrong last octet)",
     "if b != PREFACE[self.preface_pos]:", "if self.preface_pos < 4 and b != PREFACE[self.preface_pos]:",
     "3.1-last-byte-wrong"),
    # ---- 3.2 handshake -----------------------------------------------------------------------------
    ("hello-header-version-unchecked", "3.2", "HELLO's header version is not checked",
     "if version != 1:\n            return self.connection_error(VERSION_MISMATCH, f\"HELLO in header",
     "if False:\n            return self.connection_error(VERSION_MISMATCH, f\"HELLO in header",
     "3.2-hello-header-version-2"),
    ("hello-trailing-accepted", "3.2", "octets after HELLO's fields are accepted",
     '            r.string("agent")\n            r.end()\n', '            r.string("agent")\n',
     "3.2-hello-trailing-bytes"),
    ("handshake-required-as-protocol-error", "3.2", "a first frame other than HELLO is PROTOCOL_ERROR",
     "return self.connection_error(HANDSHAKE_REQUIRED,", "return self.connection_error(PROTOCOL_ERROR,",
     "3.2-ping-before-hello"),
    ("welcome-in-negotiated-version", "3.3", "WELCOME's header carries the negotiated version, not 1",
     "self.send(frame(1, WELCOME, 0,", "self.send(frame(max(common), WELCOME, 0,",
     "3.3-welcome-written-in-v1"),
    ("second-hello-ignored", "3.2", "a second HELLO is ignored instead of PROTOCOL_ERROR",
     'return self.connection_error(PROTOCOL_ERROR, "HELLO after the handshake")', "return None",
     "3.2-second-hello"),
    # ---- 3.3 versions ------------------------------------------------------------------------------
    ("speaks-v1-after-announcing-v2", "3.3", "announces version 2 but keeps writing version 1",
     "self.version = max(common)", "self.version = 1", "3.3-responses-in-v2"),
    ("unsupported-version-as-protocol-error", "3.3", "no common version is PROTOCOL_ERROR, not UNSUPPORTED_VERSION",
     "return self.connection_error(UNSUPPORTED_VERSION,", "return self.connection_error(PROTOCOL_ERROR,",
     "3.3-offer-3-9"),
    # ---- 3.4 limits ----------------------------------------------------------------------------------
    ("client-limit-ignores-header", "3.4", "the client's limit is compared with the body, not Length (no RESPONSE_TOO_LARGE at the edge)",
     "if 8 + len(body) > self.client_limit:", "if len(body) > self.client_limit:",
     "3.4-response-too-large"),
    ("client-limit-4096-refused", "3.4", "a client max_frame_size of exactly 4096 is refused",
     "if limit < MIN_LIMIT:", "if limit <= MIN_LIMIT:", "3.4-response-at-client-limit"),
    ("max-outstanding-off-by-one", "8.4", "one request more than max_outstanding is accepted",
     "if len(self.outstanding) >= self.server.max_outstanding:",
     "if len(self.outstanding) > self.server.max_outstanding:", "8.4-small-max-outstanding-exact"),
    # ---- 3.6 pipelining ------------------------------------------------------------------------------
    ("compute-inline", "3.6", "COMPUTE runs on the event loop, blocking the connection",
     "            if not self.server.pool.submit(job):\n",
     "            self.outstanding[rid] = job\n            return self.respond(rid, COMPUTE_RESULT, compute_digest(job.cost, job.seed))\n            if not self.server.pool.submit(job):\n",
     "3.6-slow-request-does-not-block"),
    ("ping-held-behind-compute", "3.6",
     "PING is not answered as soon as it is read: its PONG is held back (responses kept in order) until the COMPUTEs outstanding before it are answered",
     "    def send(self, data):\n        if self.state not in (\"CLOSING\", \"CLOSED\"):\n            self.out += data\n",
     "    def send(self, data):\n        held = self.__dict__.setdefault(\"held_pongs\", [])\n"
     "        if data[5] == PONG and any(self.outstanding.values()):\n            held.append(data)  # in order: behind the COMPUTE received before it\n            return\n"
     "        if self.state not in (\"CLOSING\", \"CLOSED\"):\n            self.out += data\n"
     "            if held and not any(self.outstanding.values()):\n                self.out += b\"\".join(held)\n                held.clear()\n",
     "3.6-ping-while-compute-runs"),
    # ---- 2.7 as document 1.2 resolved it ---------------------------------------------------------------
    ("faulty-client-error-0-answered", "2.7",
     "a client's ERROR with ID 0 and an undefined flag is answered (ERROR INVALID_FLAGS) instead of ending the connection unanswered",
     "if type_ == ERROR and rid == 0 and not self.error_is_valid(flags, body):",
     "if type_ == ERROR and rid == 0 and not flags and not self.error_is_valid(flags, body):",
     "3.10-client-error-id-0-undefined-flag"),
    ("faulty-cancel-answered", "2.7",
     "a faulty CANCEL naming an outstanding request gets an ERROR with that ID (a second response to the request)",
     "if type_ == CANCEL and rid in self.outstanding and (flags or body):\n            return None",
     "if False:\n            return None", "3.7-faulty-cancel-undefined-flag"),
    # ---- 3.7 cancel ------------------------------------------------------------------------------------
    ("cancel-unknown-answered", "3.7", "CANCEL of an ID that is not outstanding is answered CANCELLED",
     "            return  # not outstanding (or answered inline): ignored (section 3.7)",
     "            return self.error(rid, CANCELLED, \"nothing to cancel\")", "3.7-cancel-unknown-id"),
    ("cancel-silent", "3.7", "a cancelled COMPUTE is dropped without its ERROR CANCELLED",
     '            self.error(rid, CANCELLED, "cancelled before it ran")\n', "",
     "3.7-busy-cancel-queued-is-cancelled"),
    # ---- 3.8 GOODBYE and shutdown ---------------------------------------------------------------------
    ("shutdown-keeps-handshaking-connections", "3.8",
     "a shutdown keeps a connection in PREFACE or HANDSHAKE until its handshake timeout instead of waiting at most 1 s",
     "self.shutdown_wait = min(time.monotonic() + 1.0, self.accepted + self.server.handshake_timeout)",
     "self.shutdown_wait = self.accepted + self.server.handshake_timeout",
     "3.8-shutdown-during-handshake"),
    ("shutdown-no-wait-for-hello", "3.8",
     "a shutdown closes a connection in PREFACE or HANDSHAKE at once, without waiting a moment for the HELLO",
     "self.shutdown_wait = min(time.monotonic() + 1.0, self.accepted + self.server.handshake_timeout)",
     "self.shutdown_wait = time.monotonic()",
     "3.8-shutdown-hello-with-request"),
    ("ping-answered-while-draining", "3.8", "PING is answered PONG during a drain",
     'if self.state == "DRAINING":\n            return self.error(rid, SHUTTING_DOWN',
     'if self.state == "DRAINING" and type_ != PING:\n            return self.error(rid, SHUTTING_DOWN',
     "3.8-ping-after-goodbye"),
    ("goodbye-before-results", "3.8", "the final GOODBYE does not wait for outstanding requests",
     'if self.state == "DRAINING" and not self.outstanding:', 'if self.state == "DRAINING":',
     "3.8-client-goodbye-outstanding"),
    ("two-goodbyes", "3.8", "a second GOODBYE is sent at the end of the server's drain",
     "        if not self.goodbye_sent:\n            self.goodbye_sent = True\n",
     "        if True:\n            self.goodbye_sent = True\n", "3.8-shutdown-answers-outstanding"),
    ("shutdown-without-goodbye", "3.8", "shutdown drains without telling the client (no GOODBYE SHUTTING_DOWN)",
     '            self.goodbye(SHUTTING_DOWN, "the server is shutting down")\n', "",
     "3.8-shutdown-answers-outstanding"),
    ("shutdown-drops-outstanding", "3.8", "shutdown closes at once, dropping outstanding work",
     '            self.goodbye(SHUTTING_DOWN, "the server is shutting down")\n            self.drain(by_client=False)\n',
     '            self.goodbye(SHUTTING_DOWN, "the server is shutting down")\n            self.close_gracefully()\n',
     "3.8-shutdown-answers-outstanding"),
    ("shutting-down-hint-after-client-goodbye", "3.8", "SHUTTING_DOWN carries a retry hint after the client's own GOODBYE",
     'return self.error(rid, SHUTTING_DOWN, "the connection is draining")',
     'return self.error(rid, SHUTTING_DOWN, "the connection is draining", retry_after=100)',
     "3.8-shutting-down-after-goodbye-no-hint"),
    ("shutting-down-hint-inverted", "4.8",
     "the condition of SHUTTING_DOWN's retry_after_ms is inverted: a delay is suggested when the client started the drain (GOODBYE or half-close), 0 when the server did",
     'return self.error(rid, SHUTTING_DOWN, "the connection is draining")',
     'return self.error(rid, SHUTTING_DOWN, "the connection is draining", retry_after=1000 if self.client_drain else 0)',
     "3.8-shutting-down-after-goodbye-no-hint"),
    # ---- 3.9 half-close --------------------------------------------------------------------------------
    ("half-close-drops-outstanding", "3.9", "end of stream closes at once, dropping outstanding work",
     "                self.inbuf.clear()\n            self.drain(by_client=True)\n",
     "                self.inbuf.clear()\n            self.close_gracefully()\n", "3.9-after-compute"),
    ("truncation-unreported", "3.9", "end of stream inside a frame is not reported",
     '                self.error(0, TRUNCATED_FRAME, f"end of stream inside a frame ({len(self.inbuf)} octets)")\n',
     "", "3.9-mid-frame"),
    ("truncated-hello-silent", "3.2", "end of stream inside HELLO closes without TRUNCATED_FRAME",
     'self.connection_error(TRUNCATED_FRAME, "end of stream inside the HELLO")', "self.close_gracefully()",
     "3.2-eof-inside-hello"),
    # ---- 3.10 close --------------------------------------------------------------------------------------
    ("client-error-0-ignored", "3.10", "the client's ERROR with ID 0 does not end the connection",
     "            if rid == 0:  # the client gives up on the connection (section 3.10)\n",
     "            if False:\n", "3.10-client-error-id-0"),
    ("close-not-lingering", "3.10",
     "the close is not lingering: once its output is written the server shuts down its write side and closes at once, without reading and discarding input until the peer's EOF or a short deadline",
     "            conn.linger_deadline = time.monotonic() + LINGER\n            if conn.eof:\n                return self.close(conn)\n",
     "            return self.close(conn)\n",
     "3.10-lingering-close-behind-unread-replies"),
    # ---- 3.11 abortive close ---------------------------------------------------------------------------
    ("reset-on-read-kills-server", "3.11",
     "a reset read from a connection (recv fails with ECONNRESET) is not caught: the exception ends the event loop, and every other connection with it",
     "        except OSError:\n            return self.close(conn, abortive=True)  # a reset: drop it (section 3.11)\n",
     "",
     "3.11-reset-leaves-other-connection-served"),
    # ---- 4 and 5.4 messages and unexpected input ----------------------------------------------------------
    ("response-types-unknown", "4.1", "a response type sent to the server is UNKNOWN_TYPE, not UNEXPECTED_MESSAGE",
     'return self.error(rid, UNEXPECTED_MESSAGE, f"type 0x{type_:02x} is not sent to a server")',
     'return self.error(rid, UNKNOWN_TYPE, f"type 0x{type_:02x} is not sent to a server")',
     "4.1-pong-to-server"),
    ("application-frames-not-requests", "4.1",
     "an application-type frame (0x80-0xFF) from a client is not held to the duplicate rule of requests: one reusing an outstanding ID is answered UNKNOWN_TYPE instead of DUPLICATE_REQUEST_ID",
     "if type_ not in (CANCEL, ERROR) and rid in self.outstanding:",
     "if type_ not in (CANCEL, ERROR) and type_ < 0x80 and rid in self.outstanding:",
     "2.5-duplicate-application-type"),
    ("v2-types-on-v1", "4.11", "STATS is served on a version-1 connection",
     "if SINCE.get(type_, 256) > self.version:", "if type_ not in SINCE:",
     "4.11-stats-on-v1"),
    ("echo-reply-without-length", "4.5", "ECHO_REPLY carries the payload without its length",
     'self.respond(rid, ECHO_REPLY, struct.pack(">I", len(fields[0])) + fields[0])',
     "self.respond(rid, ECHO_REPLY, fields[0])", "4.5-echo-v1"),
    ("cost-0-accepted", "4.6", "COMPUTE with cost 0 is computed",
     "if type_ == COMPUTE and not 1 <= fields[0] <= MAX_COST:",
     "if type_ == COMPUTE and not 0 <= fields[0] <= MAX_COST:", "4.6-compute-cost-0-v1"),
    ("v2-error-without-retry-field", "5.4", "version-2 ERROR lacks retry_after_ms",
     "        if self.version >= 2:\n            body += struct.pack(\">I\", retry_after)\n", "",
     "5.4-v2-error-layout"),
    ("frame-version-unchecked", "5.4", "a frame's header version is not checked after the handshake",
     "        if version != self.version:\n            return self.connection_error(VERSION_MISMATCH",
     "        if False:\n            return self.connection_error(VERSION_MISMATCH",
     "5.4-version-2-frame-on-v1"),
    # ---- 6 bodies ----------------------------------------------------------------------------------------
    ("trailing-octets-accepted", "6", "octets after a request's fields are accepted",
     "            else:  # CANCEL, STATS: empty bodies\n                fields = ()\n            r.end()\n",
     "            else:  # CANCEL, STATS: empty bodies\n                fields = ()\n",
     "5.4-trailing-echo"),
    ("utf8-unchecked", "6.3", "strings are not checked for UTF-8",
     '            return raw.decode("utf-8")', '            return raw.decode("latin-1")',
     "6.3-goodbye-invalid-utf8"),
    ("utf8-error-as-malformed", "6.3", "a string that is not UTF-8 is MALFORMED_BODY, not INVALID_UTF8",
     'raise BodyError(INVALID_UTF8, f"{what} is not UTF-8")', 'raise BodyError(MALFORMED_BODY, f"{what} is not UTF-8")',
     "6.3-error-invalid-utf8"),
    ("sum-not-wrapping", "4.10", "SUM saturates instead of wrapping modulo 2^64",
     "total = sum(fields[0]) & 0xFFFFFFFFFFFFFFFF",
     "total = max(min(sum(fields[0]), (1 << 63) - 1), -(1 << 63)) & 0xFFFFFFFFFFFFFFFF",
     "4.10-sum-wrapping"),
    ("byte-string-length-clamped", "6.8",
     "a string or byte-string length that exceeds the octets remaining in the body is clamped to them instead of being MALFORMED_BODY",
     '            raise BodyError(MALFORMED_BODY, f"{what} length {n} exceeds the body")\n',
     "            n = len(self.data) - self.pos  # take no more than the body holds\n",
     "6.8-echo-length-beyond-body", "A receiver MUST check every string or byte-string length"),
    # ---- 7.1 error codes -----------------------------------------------------------------------------------
    ("reserved-error-code-ignored", "7.1",
     "a client's ERROR with ID 0 whose code is unknown (in the reserved range) is ignored instead of being treated as INTERNAL_ERROR: the connection goes on",
     "            if rid == 0:  # the client gives up on the connection (section 3.10)\n",
     "            if rid == 0 and not INTERNAL_ERROR < fields[0] < 0x8000:  # unknown codes: informative\n",
     "3.10-client-error-id-0-reserved-code"),
    # ---- 8.3 timeouts and 8.4 resources ------------------------------------------------------------------------
    ("handshake-timeout-never", "8.3", "a connection that never sends HELLO is kept forever",
     'if self.state in ("PREFACE", "HANDSHAKE") and now >= self.accepted + s.handshake_timeout:',
     'if False:', "8.3-handshake-timeout-silent"),
    ("partial-frame-resets-idle", "8.3", "octets of an incomplete frame count as activity",
     "        self.inbuf += data\n        self.process()\n",
     "        self.inbuf += data\n        self.last_active = time.monotonic()\n        self.process()\n",
     "8.3-partial-frame-does-not-reset-idle"),
    ("handshake-timer-restarts-on-read", "8.3",
     "every read during the handshake restarts the handshake timeout, so the time from accept to a complete HELLO is not bounded (a client trickling its preface and HELLO is never evicted)",
     "            return  # read and discarded (section 3.5)\n",
     "            return  # read and discarded (section 3.5)\n        if self.state in (\"PREFACE\", \"HANDSHAKE\"):\n            self.accepted = time.monotonic()\n",
     "8.3-handshake-timeout-trickle"),
    ("limit-checked-after-buffering", "8.2",
     "a frame's Length is checked against 16 MiB before it is buffered but against the announced limit only once the frame is complete: a 4-octet prefix claiming up to 16 MiB makes the server reserve and buffer that much before refusing it",
     "            if length > limit:\n                return self.connection_error(FRAME_TOO_LARGE, f\"Length {length} exceeds the limit {limit}\")\n            if len(self.inbuf) < 4 + length:\n                return\n",
     "            if length > MAX_LIMIT:\n                return self.connection_error(FRAME_TOO_LARGE, f\"Length {length} exceeds {MAX_LIMIT}\")\n"
     "            if len(self.inbuf) < 4 + length:\n                return\n"
     "            if length > limit:\n                return self.connection_error(FRAME_TOO_LARGE, f\"Length {length} exceeds the limit {limit}\")\n",
     "2.2-prefix-only-too-large"),
    ("connection-limit-closed-silently", "8.4",
     "at its connection limit the server closes the new connection without sending ERROR CONNECTION_LIMIT",
     'conn.connection_error(CONNECTION_LIMIT, "the server is at its connection limit")',
     "conn.close_gracefully()",
     "8.4-crowded-third-connection-refused"),
    ("never-busy", "8.4", "heavy requests are queued without bound (never BUSY)",
     "self.capacity = workers + depth", "self.capacity = 1 << 30", "8.4-busy-third-heavy-request"),
    ("too-many-is-fatal", "8.4", "TOO_MANY_OUTSTANDING closes the connection",
     'return self.error(rid, TOO_MANY_OUTSTANDING, f"more than {self.server.max_outstanding} outstanding")',
     'return self.connection_error(TOO_MANY_OUTSTANDING, "too many outstanding")',
     "8.4-small-too-many-is-not-fatal"),
    ("no-backpressure", "8.4", "a connection is read on however much output is queued",
     'held = conn.state in ("HANDSHAKE", "OPEN", "DRAINING") and len(conn.out) > self.max_pending',
     "held = False", "8.4-backpressure-writes-stall"),
]


def mutated_source(name):
    """The server's source with the named mutant's edit applied."""
    for m_name, _section, _bug, old, new, _killer, *_spec in MUTANTS:
        if m_name == name:
            source = SERVER.read_text(encoding="utf-8")
            count = source.count(old)
            if count != 1:
                raise SystemExit(f"mutant {name}: its text occurs {count} times in {SERVER.name}, not once")
            return source.replace(old, new)
    raise SystemExit(f"no mutant named {name!r} (see --list)")


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "--list":
        for m in MUTANTS:
            mutated_source(m[0])  # every edit still applies
        print(json.dumps([dict({"name": n, "section": s, "bug": b, "killer": k}, **({"spec": q[0]} if q else {}))
                          for n, s, b, _, _, k, *q in MUTANTS]))
        return
    name = sys.argv[1]
    code = compile(mutated_source(name), f"{SERVER.name} (mutant {name})", "exec")
    sys.argv = [str(SERVER)] + sys.argv[2:]
    exec(code, {"__name__": "__main__", "__file__": str(SERVER)})


if __name__ == "__main__":
    main()
