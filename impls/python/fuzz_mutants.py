#!/usr/bin/env python3
"""Combination mutants of echowire_server.py: bugs that live where two spec rules meet.

What they are for: proving that the conformance *fuzzer* finds bugs that a test of each rule
alone would likely miss. Each mutant is the Python reference server with one small, plausible
edit (a condition that forgets a state, bookkeeping done on one path but not another, a check in
the wrong place), chosen so that the bug shows only when two conditions hold at once: a drain
(client GOODBYE, half-close, SIGTERM, idle GOODBYE) together with CANCEL, a client ERROR with
ID 0, TRUNCATED_FRAME, a full outstanding limit, a full worker pool, a reused request ID, a
version-1 connection, and so on.

Independence: these mutants were written from spec/PROTOCOL.md, spec/registry.json and the
server's source alone, WITHOUT reading the conformance cases (spec/conformance/), the runner
or its tests, so that they are not biased towards what the existing cases already check.

Every mutant violates a sentence of spec/PROTOCOL.md that a black-box client can observe on the
wire within a few seconds (timeouts of 1-3 s, at most a few COMPUTEs of a few million
iterations), and `trigger` describes the shortest client session known to show it. An edit whose
old text does not occur exactly once in the server is an error, so the list cannot silently go
stale when the server changes.

Entries: (name, sections, bug in words, [(old text, new text), ...], spec quote, trigger), where
the spec quote is the first words of the violated sentence, verbatim from spec/PROTOCOL.md
(compared with runs of whitespace collapsed, since the spec wraps its lines).

Conventions used in the triggers: "big COMPUTE" is a COMPUTE whose cost keeps one worker busy
for well over a second (about 6,000,000 iterations with the Python server; the fuzzer should
scale it to the target); "cheap COMPUTE" has cost 1. Unless a trigger says otherwise the
server runs with its defaults (2 workers, queue depth 64, max_outstanding 64).

Usage:
  python3 fuzz_mutants.py --list                 # JSON: [{"name", "sections", "bug", "spec", "trigger"}]
  python3 fuzz_mutants.py --self-check           # every edit applies once and compiles, every quote is in the spec
  python3 fuzz_mutants.py NAME [server options]  # run the server with that bug
"""

import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
SERVER = HERE / "echowire_server.py"
SPEC = HERE / ".." / ".." / "spec" / "PROTOCOL.md"

# Spec sentences quoted below (first words, whitespace collapsed).
Q_ANSWER_ONCE = "The server MUST answer every request it receives exactly once, unless a connection error"
Q_CLIENT_GOODBYE = "The server answers everything outstanding, then sends GOODBYE NO_ERROR and closes."
Q_DRAIN_ABORT = "When the drain timeout expires with requests still outstanding or output still queued, the server MUST close abortively"
Q_HALF_CLOSE = "The server MUST still answer every complete request received before the end of stream"
Q_TIMEOUT_EARLY = "A timeout fires no earlier than its value"
Q_CLIENT_ERROR_0 = "A client ERROR with ID 0 ends the connection, whatever its code"
Q_V1_LAYOUT = "A v2 implementation speaking to a v1 peer negotiates version 1 and then uses exactly the v1 layouts"
Q_RETRY_ZERO = "`retry_after_ms` MUST be 0 for every code other than BUSY and SHUTTING_DOWN"

# (name, sections, the bug in words, [(text in the server, replacement), ...], spec quote, trigger)
MUTANTS = [
    # ---- CANCEL x drain ---------------------------------------------------------------------------
    ("cancel-in-drain-never-finishes", ["3.7", "3.8"],
     "a CANCEL that removes the last outstanding request does not check whether a drain is now over, "
     "so the drain hangs until the drain timeout and ends abortively instead of with GOODBYE NO_ERROR",
     [('            self.error(rid, CANCELLED, "cancelled before it ran")\n            self.maybe_finish()\n',
       '            self.error(rid, CANCELLED, "cancelled before it ran")\n')],
     Q_CLIENT_GOODBYE,
     "server --workers 1 --drain-timeout-ms 2000; connection B: handshake, big COMPUTE (occupies the "
     "only worker); connection A: handshake v2; cheap COMPUTE id 1 (queued); GOODBYE; CANCEL 1; expect "
     "ERROR CANCELLED 1 then GOODBYE NO_ERROR and a clean end of stream (mutant: nothing, then a reset "
     "at the drain timeout)"),
    ("cancel-of-running-request-forgets-it", ["3.7", "3.8"],
     "CANCEL of a running COMPUTE removes it from the outstanding set although it is not stopped, so "
     "its result is dropped and a drain ends with GOODBYE NO_ERROR without answering it",
     [('        if cancelled:\n'
       '            self.outstanding.pop(rid, None)\n'
       '            self.error(rid, CANCELLED, "cancelled before it ran")\n'
       '            self.maybe_finish()\n',
       '        self.outstanding.pop(rid, None)\n'
       '        if cancelled:\n'
       '            self.error(rid, CANCELLED, "cancelled before it ran")\n'
       '        self.maybe_finish()\n')],
     Q_ANSWER_ONCE,
     "handshake v2; big COMPUTE id 1; wait 0.3 s (it is running); GOODBYE; CANCEL 1; expect exactly "
     "one of COMPUTE_RESULT 1 / ERROR CANCELLED 1, then GOODBYE NO_ERROR (mutant: GOODBYE NO_ERROR at "
     "once, request 1 never answered)"),
    # ---- outstanding bookkeeping x ID reuse -------------------------------------------------------
    ("cancelled-request-stays-outstanding", ["3.7", "2.5"],
     "a queued COMPUTE dropped by CANCEL is answered ERROR CANCELLED but its ID is never released, so "
     "reusing the ID afterwards is taken for a duplicate",
     [('        if cancelled:\n            self.outstanding.pop(rid, None)\n            self.error(rid, CANCELLED',
       '        if cancelled:\n            self.error(rid, CANCELLED')],
     "The ID MUST NOT equal the ID of a request of the same client that is still outstanding; IDs MAY be reused once answered.",
     "server --workers 1; handshake v2; big COMPUTE id 1; cheap COMPUTE id 2 (queued); CANCEL 2; expect "
     "ERROR CANCELLED 2; ECHO id 2 \"x\"; expect ECHO_REPLY 2 (mutant: ERROR DUPLICATE_REQUEST_ID with "
     "ID 0 and close)"),
    ("busy-refused-request-stays-outstanding", ["8.4", "2.5"],
     "a COMPUTE refused with BUSY is recorded as outstanding before the pool refuses it and is never "
     "released, so its ID cannot be reused (and a later drain never ends)",
     [('            job = Job(self, rid, fields[0], fields[1])\n'
       '            if not self.server.pool.submit(job):\n',
       '            job = Job(self, rid, fields[0], fields[1])\n'
       '            self.outstanding[rid] = job\n'
       '            if not self.server.pool.submit(job):\n')],
     "The ID MUST NOT equal the ID of a request of the same client that is still outstanding; IDs MAY be reused once answered.",
     "server --workers 1 --queue-depth 1; handshake v2; big COMPUTE id 1; big COMPUTE id 2; cheap "
     "COMPUTE id 3; expect ERROR BUSY 3; ECHO id 3 \"x\"; expect ECHO_REPLY 3 (mutant: ERROR "
     "DUPLICATE_REQUEST_ID with ID 0 and close)"),
    ("too-large-response-stays-outstanding", ["3.4", "2.5"],
     "a request answered ERROR RESPONSE_TOO_LARGE keeps its ID outstanding (the slot is released only "
     "on the path that sends the real response)",
     [('        self.outstanding.pop(request_id, None)\n'
       '        if 8 + len(body) > self.client_limit:\n'
       '            self.error(request_id, RESPONSE_TOO_LARGE,\n'
       '                       f"a response of Length {8 + len(body)} exceeds the client\'s {self.client_limit}")\n'
       '        else:\n'
       '            self.send(frame(self.version, type_, request_id, body))\n',
       '        if 8 + len(body) > self.client_limit:\n'
       '            self.error(request_id, RESPONSE_TOO_LARGE,\n'
       '                       f"a response of Length {8 + len(body)} exceeds the client\'s {self.client_limit}")\n'
       '        else:\n'
       '            self.outstanding.pop(request_id, None)\n'
       '            self.send(frame(self.version, type_, request_id, body))\n')],
     "The ID MUST NOT equal the ID of a request of the same client that is still outstanding; IDs MAY be reused once answered.",
     "handshake v2 with HELLO max_frame_size 4096; ECHO id 1 with a 4090-octet payload; expect ERROR "
     "RESPONSE_TOO_LARGE 1; ECHO id 1 \"x\"; expect ECHO_REPLY 1 (mutant: ERROR DUPLICATE_REQUEST_ID "
     "with ID 0 and close)"),
    # ---- CANCEL x ID reuse after an answer --------------------------------------------------------
    ("cancel-after-answer-poisons-reused-id", ["3.7", "2.5"],
     "a CANCEL for an ID that is not outstanding is remembered (as if it had overtaken its request), "
     "so the next request that reuses the answered ID is refused ERROR CANCELLED",
     [('        self.outstanding = {}  # request ID -> Job (COMPUTE) or None\n',
       '        self.outstanding = {}  # request ID -> Job (COMPUTE) or None\n'
       '        self.early_cancels = set()  # CANCELs that overtook their request\n'),
      ('        if job is None:\n            return  # not outstanding',
       '        if job is None:\n'
       '            if rid not in self.outstanding:\n'
       '                self.early_cancels.add(rid)\n'
       '            return  # not outstanding'),
      ('        if type_ == COMPUTE:\n            job = Job(',
       '        if rid in self.early_cancels:\n'
       '            self.early_cancels.discard(rid)\n'
       '            return self.error(rid, CANCELLED, "cancelled before it arrived")\n'
       '        if type_ == COMPUTE:\n            job = Job(')],
     "if its ID is not outstanding — it was already answered (the CANCEL raced the response), or it "
     "was never sent — the CANCEL MUST be ignored",
     "handshake v2; ECHO id 1 \"a\"; expect ECHO_REPLY 1; CANCEL 1; ECHO id 1 \"b\"; expect ECHO_REPLY 1 "
     "\"b\" (mutant: ERROR CANCELLED 1)"),
    # ---- idle timeout x outstanding work / frames that are not requests ---------------------------
    ("idle-timeout-ignores-outstanding-compute", ["8.3", "3.5"],
     "only queued output keeps a connection from being idle, so a long COMPUTE that is still running "
     "gets GOODBYE IDLE_TIMEOUT before its result",
     [('            if self.outstanding or self.out:\n                self.last_active = now',
       '            if self.out:\n                self.last_active = now')],
     Q_TIMEOUT_EARLY,
     "server --idle-timeout-ms 1000; handshake v2; big COMPUTE id 1 (about 2 s); expect COMPUTE_RESULT "
     "1 before any GOODBYE, then GOODBYE IDLE_TIMEOUT no earlier than 1 s after it (mutant: GOODBYE "
     "IDLE_TIMEOUT about 1 s after the COMPUTE, before its result)"),
    ("idle-period-not-restarted-after-work", ["8.3"],
     "while work is outstanding the idle check is skipped but the idle period is not restarted, so it "
     "is measured from the COMPUTE's receipt and fires the moment the long result has been written",
     [('                self.last_active = now  # not idle while work or output is pending (section 8.3)',
       '                pass  # not idle while work or output is pending (section 8.3)')],
     Q_TIMEOUT_EARLY,
     "server --idle-timeout-ms 1000; handshake v2; big COMPUTE id 1 (about 2 s); expect COMPUTE_RESULT "
     "1, then GOODBYE IDLE_TIMEOUT no earlier than 1 s after the result (mutant: GOODBYE within ~0.1 s "
     "of the result)"),
    ("idle-restarted-only-by-requests", ["8.3", "3.7"],
     "the idle period is restarted only when a request is accepted, not by every complete frame, so a "
     "client that sends only CANCELs (or other non-request frames) is evicted early",
     [('            self.last_active = time.monotonic()\n            if self.state == "HANDSHAKE":',
       '            if self.state == "HANDSHAKE":'),
      ('    def on_request(self, type_, rid, fields):\n',
       '    def on_request(self, type_, rid, fields):\n        self.last_active = time.monotonic()\n')],
     Q_TIMEOUT_EARLY,
     "server --idle-timeout-ms 1500; handshake v2; CANCEL id 7 (not outstanding) every 0.5 s for 2.5 s; "
     "expect no GOODBYE IDLE_TIMEOUT before 1.5 s after the last CANCEL (mutant: GOODBYE IDLE_TIMEOUT "
     "about 1.5 s after the handshake)"),
    # ---- drain timeout x who started the drain / traffic during the drain -------------------------
    ("drain-timeout-only-for-server-drains", ["3.8", "8.3"],
     "the drain deadline is armed only for drains the server started, so a client GOODBYE with a "
     "long COMPUTE outstanding is never bounded",
     [('            self.drain_deadline = time.monotonic() + self.server.drain_timeout\n',
       '            self.drain_deadline = float("inf") if by_client else time.monotonic() + self.server.drain_timeout\n')],
     Q_DRAIN_ABORT,
     "server --drain-timeout-ms 1000; handshake v2; COMPUTE id 1 cost 16,777,216; GOODBYE; expect a "
     "reset (no COMPUTE_RESULT, no GOODBYE) within about 2 s (mutant: COMPUTE_RESULT 1 and GOODBYE "
     "NO_ERROR several seconds later)"),
    ("drain-timeout-restarted-by-frames", ["3.8", "8.3"],
     "every complete frame received while draining restarts the drain deadline (as for the idle "
     "period), so a client that keeps sending requests that are refused SHUTTING_DOWN holds the drain open",
     [('            self.last_active = time.monotonic()\n',
       '            self.last_active = time.monotonic()\n'
       '            if self.state == "DRAINING":\n'
       '                self.drain_deadline = self.last_active + self.server.drain_timeout\n')],
     Q_DRAIN_ABORT,
     "server --drain-timeout-ms 1000; handshake v2; COMPUTE id 1 cost 16,777,216; GOODBYE; PING id "
     "2, 3, ... every 0.4 s (each ERROR SHUTTING_DOWN); expect a reset about 1 s after the GOODBYE "
     "(mutant: still open after 2.5 s)"),
    # ---- TRUNCATED_FRAME x drain / outstanding work -----------------------------------------------
    ("truncated-frame-not-reported-while-draining", ["3.9", "3.8"],
     "end of stream inside a frame is reported with TRUNCATED_FRAME only when the connection is OPEN, "
     "not after the client's GOODBYE",
     [('            if self.inbuf:\n                self.error(0, TRUNCATED_FRAME',
       '            if self.inbuf and self.state == "OPEN":\n                self.error(0, TRUNCATED_FRAME')],
     "The same holds when the connection was already DRAINING",
     "handshake v2; big COMPUTE id 1; GOODBYE; 5 octets of a frame; shut down the write side; expect "
     "ERROR TRUNCATED_FRAME (ID 0), COMPUTE_RESULT 1, GOODBYE NO_ERROR (mutant: no TRUNCATED_FRAME)"),
    ("truncated-frame-ends-drain-at-once", ["3.9", "3.6.1"],
     "after TRUNCATED_FRAME the server says GOODBYE NO_ERROR and closes at once, which is right only "
     "when nothing is outstanding: requests received before the partial frame are never answered",
     [('                self.inbuf.clear()\n            self.drain(by_client=True)',
       '                self.inbuf.clear()\n'
       '                self.goodbye(NO_ERROR, "")\n'
       '                return self.close_gracefully()\n'
       '            self.drain(by_client=True)')],
     Q_HALF_CLOSE,
     "handshake v2; big COMPUTE id 1; 5 octets of a frame; shut down the write side; expect ERROR "
     "TRUNCATED_FRAME (ID 0), COMPUTE_RESULT 1, then GOODBYE NO_ERROR (mutant: TRUNCATED_FRAME, "
     "GOODBYE NO_ERROR, close, no result)"),
    # ---- client ERROR with ID 0 x state / code / outstanding work ---------------------------------
    ("client-error-0-ignored-while-draining", ["3.10", "3.8"],
     "a client ERROR with ID 0 ends the connection only while it is OPEN; after the client's GOODBYE "
     "it is ignored and the drain goes on to answer and say GOODBYE",
     [('            if rid == 0:  # the client gives up',
       '            if rid == 0 and self.state == "OPEN":  # the client gives up')],
     Q_CLIENT_ERROR_0,
     "handshake v2; big COMPUTE id 1; GOODBYE; ERROR id 0 code PROTOCOL_ERROR; expect nothing more, "
     "then end of stream (mutant: COMPUTE_RESULT 1 and GOODBYE NO_ERROR)"),
    ("client-error-0-request-code-ignored", ["3.10", "7.1"],
     "a client ERROR with ID 0 ends the connection only when its code is a connection-scope code; "
     "with a request-scope code it is taken as informative",
     [('            if rid == 0:  # the client gives up',
       '            if rid == 0 and fields[0] in CONNECTION_SCOPE_CODES:  # the client gives up')],
     Q_CLIENT_ERROR_0,
     "handshake v2; ERROR id 0 code UNKNOWN_TYPE (0x000B); ECHO id 1 \"x\"; expect no ECHO_REPLY, end "
     "of stream (mutant: ECHO_REPLY 1)"),
    ("client-error-0-drains", ["3.10", "3.8"],
     "a client ERROR with ID 0 closes at once only when nothing is outstanding; otherwise it is "
     "handled like a GOODBYE (work in progress is finished, answered, and GOODBYE NO_ERROR sent)",
     [('                self.cancel_all()\n                self.close_gracefully()\n            return None',
       '                if self.outstanding:  # let the work in progress finish first\n'
       '                    return self.drain(by_client=True)\n'
       '                self.cancel_all()\n                self.close_gracefully()\n            return None')],
     Q_CLIENT_ERROR_0,
     "handshake v2; big COMPUTE id 1; ERROR id 0 code NO_ERROR; expect nothing more, then end of "
     "stream (mutant: COMPUTE_RESULT 1 then GOODBYE NO_ERROR)"),
    # ---- order of rule 10 of section 2.7 under specific states ------------------------------------
    ("busy-before-too-many-outstanding", ["2.7", "8.4"],
     "an early 'pool full' test refuses a COMPUTE with BUSY before the outstanding limit is checked, "
     "so a client at its limit against a busy server is told BUSY instead of TOO_MANY_OUTSTANDING",
     [('        if len(self.outstanding) >= self.server.max_outstanding:\n',
       '        if type_ == COMPUTE and self.server.pool.admitted >= self.server.pool.capacity:\n'
       '            return self.error(rid, BUSY, "the workers are busy", retry_after=50)\n'
       '        if len(self.outstanding) >= self.server.max_outstanding:\n')],
     "the client's own pacing (TOO_MANY_OUTSTANDING) before the server's load (BUSY)",
     "server --workers 1 --queue-depth 1 --max-outstanding 2; handshake v2; big COMPUTE id 1; big "
     "COMPUTE id 2; cheap COMPUTE id 3; expect ERROR TOO_MANY_OUTSTANDING 3 (mutant: ERROR BUSY 3)"),
    ("too-many-outstanding-before-shutting-down", ["2.7", "3.8"],
     "the outstanding limit is checked before the drain, so a draining connection at its limit answers "
     "TOO_MANY_OUTSTANDING instead of SHUTTING_DOWN",
     [('        if self.state == "DRAINING":\n'
       '            return self.error(rid, SHUTTING_DOWN, "the connection is draining")\n'
       '        if len(self.outstanding) >= self.server.max_outstanding:\n'
       '            return self.error(rid, TOO_MANY_OUTSTANDING, f"more than {self.server.max_outstanding} outstanding")\n',
       '        if len(self.outstanding) >= self.server.max_outstanding:\n'
       '            return self.error(rid, TOO_MANY_OUTSTANDING, f"more than {self.server.max_outstanding} outstanding")\n'
       '        if self.state == "DRAINING":\n'
       '            return self.error(rid, SHUTTING_DOWN, "the connection is draining")\n')],
     "SHUTTING_DOWN next, because it alone means \"retry on another connection\"",
     "server --max-outstanding 1; handshake v2; big COMPUTE id 1; GOODBYE; ECHO id 2 \"x\"; expect ERROR "
     "SHUTTING_DOWN 2 (mutant: ERROR TOO_MANY_OUTSTANDING 2)"),
    ("shutting-down-before-invalid-argument", ["2.7", "4.6", "3.8"],
     "the drain is checked before COMPUTE's cost range, so an invalid COMPUTE sent during a drain is "
     "answered SHUTTING_DOWN (retry elsewhere) instead of INVALID_ARGUMENT",
     [('        if type_ == COMPUTE and not 1 <= fields[0] <= MAX_COST:\n'
       '            return self.error(rid, INVALID_ARGUMENT, f"COMPUTE cost {fields[0]} is outside 1..={MAX_COST}")\n'
       '        if self.state == "DRAINING":\n'
       '            return self.error(rid, SHUTTING_DOWN, "the connection is draining")\n',
       '        if self.state == "DRAINING":\n'
       '            return self.error(rid, SHUTTING_DOWN, "the connection is draining")\n'
       '        if type_ == COMPUTE and not 1 <= fields[0] <= MAX_COST:\n'
       '            return self.error(rid, INVALID_ARGUMENT, f"COMPUTE cost {fields[0]} is outside 1..={MAX_COST}")\n')],
     "a request that can never succeed is reported as such first",
     "handshake v2; big COMPUTE id 1; GOODBYE; COMPUTE id 2 cost 16,777,217; expect ERROR "
     "INVALID_ARGUMENT 2 (mutant: ERROR SHUTTING_DOWN 2)"),
    # ---- PING x drain / outstanding limit ----------------------------------------------------------
    ("ping-answered-while-draining", ["3.5", "3.8", "4.4"],
     "PING is exempted from the drain check (a liveness probe is always answered), so a PING after "
     "GOODBYE gets PONG instead of ERROR SHUTTING_DOWN",
     [('        if self.state == "DRAINING":\n            return self.error(rid, SHUTTING_DOWN',
       '        if self.state == "DRAINING" and type_ != PING:\n            return self.error(rid, SHUTTING_DOWN')],
     "Requests received after a client's GOODBYE are answered ERROR SHUTTING_DOWN.",
     "handshake v2; big COMPUTE id 1; GOODBYE; PING id 2; expect ERROR SHUTTING_DOWN 2 (mutant: PONG 2)"),
    ("ping-exempt-from-outstanding-limit", ["2.7", "8.4", "4.4"],
     "PING is answered at once and so is exempted from the outstanding limit: at the limit it gets "
     "PONG instead of TOO_MANY_OUTSTANDING",
     [('        if len(self.outstanding) >= self.server.max_outstanding:\n',
       '        if type_ != PING and len(self.outstanding) >= self.server.max_outstanding:\n')],
     "the outstanding limit (Section 8.4): TOO_MANY_OUTSTANDING — every request counts, PING included",
     "server --max-outstanding 1; handshake v2; big COMPUTE id 1; PING id 2; expect ERROR "
     "TOO_MANY_OUTSTANDING 2 (mutant: PONG 2)"),
    # ---- retry_after_ms x who drains / which code / version ----------------------------------------
    ("shutting-down-hint-in-client-drain", ["4.8", "3.8", "5.2"],
     "ERROR SHUTTING_DOWN suggests retrying when the drain will be over (the time left to the drain "
     "deadline), also when the client itself started the drain",
     [('            return self.error(rid, SHUTTING_DOWN, "the connection is draining")\n',
       '            return self.error(rid, SHUTTING_DOWN, "the connection is draining",\n'
       '                              retry_after=int(max(0.0, self.drain_deadline - time.monotonic()) * 1000))\n')],
     "In ERROR SHUTTING_DOWN, `retry_after_ms` (version 2) MUST be 0 when the drain was started by the client",
     "handshake v2; big COMPUTE id 1; GOODBYE; ECHO id 2 \"x\"; expect ERROR SHUTTING_DOWN 2 with "
     "retry_after_ms 0 (mutant: about the drain timeout in ms)"),
    ("too-many-outstanding-with-retry-hint", ["4.8", "8.4", "5.2"],
     "ERROR TOO_MANY_OUTSTANDING on a version-2 connection carries a retry hint",
     [('return self.error(rid, TOO_MANY_OUTSTANDING, f"more than {self.server.max_outstanding} outstanding")',
       'return self.error(rid, TOO_MANY_OUTSTANDING, f"more than {self.server.max_outstanding} outstanding", retry_after=50)')],
     Q_RETRY_ZERO,
     "server --max-outstanding 1; handshake v2; big COMPUTE id 1; ECHO id 2 \"x\"; expect ERROR "
     "TOO_MANY_OUTSTANDING 2 with retry_after_ms 0 (mutant: 50)"),
    ("every-error-hints-during-shutdown", ["4.8", "3.8", "5.2"],
     "while the server shuts down (SIGTERM), every version-2 ERROR carries a retry hint, not only BUSY "
     "and SHUTTING_DOWN",
     [('        if self.version >= 2:\n            body += struct.pack(">I", retry_after)',
       '        if self.version >= 2:\n'
       '            if self.server.shutting_down and not retry_after:\n'
       '                retry_after = 1000  # come back after the restart\n'
       '            body += struct.pack(">I", retry_after)')],
     Q_RETRY_ZERO,
     "handshake v2; big COMPUTE id 1; SIGTERM the server; expect GOODBYE SHUTTING_DOWN; send a frame of "
     "reserved type 0x7F id 2; expect ERROR UNKNOWN_TYPE 2 with retry_after_ms 0 (mutant: 1000)"),
    # ---- GOODBYE: count and place ------------------------------------------------------------------
    ("client-goodbye-in-server-drain-second-goodbye", ["3.5", "3.6.1", "3.8"],
     "a client GOODBYE marks the drain as client-started even when the server started it, and a "
     "client-started drain always ends with 'our answer to its GOODBYE', so a client that answers the "
     "server's GOODBYE SHUTTING_DOWN with its own GOODBYE receives a second GOODBYE",
     [('        if type_ == GOODBYE:\n            return self.drain(by_client=True)',
       '        if type_ == GOODBYE:\n'
       '            self.client_drain = True  # the client said GOODBYE: it gets GOODBYE NO_ERROR back\n'
       '            return self.drain(by_client=True)'),
      ('            self.goodbye(NO_ERROR, "")\n            self.close_gracefully()',
       '            if self.client_drain:\n'
       "                self.goodbye_sent = False  # answer the client's GOODBYE\n"
       '            self.goodbye(NO_ERROR, "")\n'
       '            self.close_gracefully()')],
     "The server sends at most one GOODBYE per connection.",
     "handshake v2; big COMPUTE id 1; SIGTERM the server; expect GOODBYE SHUTTING_DOWN; GOODBYE; expect "
     "COMPUTE_RESULT 1 then end of stream, one GOODBYE in all (mutant: a GOODBYE NO_ERROR after the result)"),
    ("drain-ends-before-last-response", ["3.6.1", "3.8"],
     "the drain-end check runs when the last request is released but before its response is queued, "
     "so the final response of a drain is lost and GOODBYE NO_ERROR comes without it",
     [('        self.outstanding.pop(request_id, None)\n        if 8 + len(body) > self.client_limit:',
       '        self.outstanding.pop(request_id, None)\n        self.maybe_finish()\n'
       '        if 8 + len(body) > self.client_limit:')],
     Q_ANSWER_ONCE,
     "handshake v2; big COMPUTE id 1; GOODBYE; expect COMPUTE_RESULT 1 then GOODBYE NO_ERROR (mutant: "
     "GOODBYE NO_ERROR without the result)"),
    ("goodbye-while-draining-is-fatal", ["3.5", "3.8"],
     "a GOODBYE received while the connection is already draining (a second GOODBYE, or the client's "
     "answer to the server's GOODBYE) is taken for a protocol error",
     [('        if type_ == GOODBYE:\n            return self.drain(by_client=True)',
       '        if type_ == GOODBYE:\n'
       '            if self.state == "DRAINING":\n'
       '                return self.connection_error(PROTOCOL_ERROR, "GOODBYE while draining")\n'
       '            return self.drain(by_client=True)')],
     Q_CLIENT_GOODBYE,
     "handshake v2; big COMPUTE id 1; GOODBYE; GOODBYE; expect COMPUTE_RESULT 1 then GOODBYE NO_ERROR "
     "(mutant: ERROR PROTOCOL_ERROR with ID 0 and close)"),
    # ---- server shutdown x outstanding work --------------------------------------------------------
    ("shutdown-drops-outstanding-work", ["3.8", "3.6"],
     "on SIGTERM the connection's outstanding work is cancelled along with the GOODBYE SHUTTING_DOWN, "
     "so a COMPUTE in progress is never answered and the connection closes cleanly",
     [('            self.goodbye(SHUTTING_DOWN, "the server is shutting down")\n            self.drain(by_client=False)',
       '            self.goodbye(SHUTTING_DOWN, "the server is shutting down")\n'
       '            self.cancel_all()\n'
       '            self.drain(by_client=False)')],
     Q_ANSWER_ONCE,
     "handshake v2; big COMPUTE id 1; SIGTERM the server; expect GOODBYE SHUTTING_DOWN and "
     "COMPUTE_RESULT 1 (in either order), then end of stream (mutant: GOODBYE then end of stream, no result)"),
    # ---- duplicate ID x drain ---------------------------------------------------------------------
    ("drain-refusal-before-duplicate-check", ["2.7", "2.5", "3.8"],
     "while draining, every request is refused SHUTTING_DOWN before the duplicate-ID rule, so a request "
     "reusing an outstanding ID gets a second, ambiguous response instead of DUPLICATE_REQUEST_ID",
     [('        if type_ not in (CANCEL, ERROR) and rid in self.outstanding:\n',
       '        if self.state == "DRAINING" and type_ in REQUESTS:\n'
       '            return self.error(rid, SHUTTING_DOWN, "the connection is draining")\n'
       '        if type_ not in (CANCEL, ERROR) and rid in self.outstanding:\n')],
     "Duplicate request ID (server only, Section 2.5): a frame of any type but CANCEL and ERROR whose "
     "ID is outstanding is the connection error DUPLICATE_REQUEST_ID",
     "handshake v2; big COMPUTE id 1; GOODBYE; ECHO id 1 \"x\"; expect ERROR DUPLICATE_REQUEST_ID with "
     "ID 0 and close (mutant: ERROR SHUTTING_DOWN 1, later COMPUTE_RESULT 1 too)"),
    # ---- version 1 x version-2 layouts -------------------------------------------------------------
    ("v1-client-error-read-with-v2-layout", ["5.3", "3.10", "4.8"],
     "a client's ERROR is always decoded with the version-2 retry_after_ms field, so on a version-1 "
     "connection a client's ERROR with ID 0 is rejected MALFORMED_BODY and the connection goes on",
     [('                if type_ == ERROR and self.version >= 2:\n',
       '                if type_ == ERROR:\n')],
     Q_V1_LAYOUT,
     "handshake offering only version 1; ERROR id 0 code PROTOCOL_ERROR (v1 layout); ECHO id 1 \"x\"; "
     "expect nothing, end of stream (mutant: ERROR MALFORMED_BODY id 0, ECHO_REPLY 1)"),
    ("v1-busy-carries-retry-field", ["5.3", "8.4", "4.8"],
     "the retry_after_ms field is appended whenever there is a hint, so ERROR BUSY on a version-1 "
     "connection has 4 octets beyond the version-1 layout",
     [('        if self.version >= 2:\n            body += struct.pack(">I", retry_after)',
       '        if self.version >= 2 or retry_after:\n            body += struct.pack(">I", retry_after)')],
     Q_V1_LAYOUT,
     "server --workers 1 --queue-depth 1; handshake offering only version 1; big COMPUTE id 1; big "
     "COMPUTE id 2; cheap COMPUTE id 3; expect ERROR BUSY 3 whose body is exactly code + message "
     "(mutant: 4 trailing octets)"),
    # ---- half-close x queued work -----------------------------------------------------------------
    ("half-close-abandons-queued-work", ["3.9", "3.7"],
     "on a half-close, COMPUTEs still waiting in the queue are cancelled (the client 'has gone') but "
     "neither answered nor released, so the drain hangs and ends with a reset at the drain timeout",
     [('                self.inbuf.clear()\n            self.drain(by_client=True)',
       '                self.inbuf.clear()\n'
       '            for job in self.outstanding.values():  # the client has gone: drop work not started\n'
       '                if job is not None and job.state == "queued":\n'
       '                    job.state = "cancelled"\n'
       '            self.drain(by_client=True)')],
     Q_HALF_CLOSE,
     "server --workers 1 --drain-timeout-ms 3000; handshake v2; big COMPUTE id 1; cheap COMPUTE id 2; "
     "shut down the write side; expect COMPUTE_RESULT 1, COMPUTE_RESULT 2, GOODBYE NO_ERROR (mutant: "
     "COMPUTE_RESULT 1, then a reset at the drain timeout)"),
    # ---- HELLO limit above 16 MiB x responses above 4096 -------------------------------------------
    ("hello-limit-above-16mib-falls-to-minimum", ["3.4", "8.1"],
     "a HELLO max_frame_size above 16 MiB is replaced by the 4096 minimum instead of being clamped to "
     "16 MiB, so any response above 4096 octets is refused RESPONSE_TOO_LARGE",
     [('        self.client_limit = min(limit, MAX_LIMIT)',
       '        self.client_limit = limit if limit <= MAX_LIMIT else MIN_LIMIT')],
     "A value above 16 MiB (16,777,216) is treated as 16 MiB.",
     "handshake v2 with HELLO max_frame_size 16,777,217; ECHO id 1 with a 5000-octet payload; expect "
     "ECHO_REPLY 1 (mutant: ERROR RESPONSE_TOO_LARGE 1)"),
]


def _mutant(name):
    for m in MUTANTS:
        if m[0] == name:
            return m
    raise SystemExit(f"no mutant named {name!r} (see --list)")


def mutated_source(name):
    """The server's source with every edit of the named mutant applied (each old text must occur
    exactly once in the unmodified server, and the edits must not overlap)."""
    _name, _sections, _bug, edits, _spec, _trigger = _mutant(name)
    original = SERVER.read_text(encoding="utf-8")
    source = original
    for old, new in edits:
        count = original.count(old)
        if count != 1:
            raise SystemExit(f"mutant {name}: its text {old[:60]!r} occurs {count} times in {SERVER.name}, not once")
        if source.count(old) != 1:
            raise SystemExit(f"mutant {name}: its edits overlap at {old[:60]!r}")
        source = source.replace(old, new)
    return source


def _normalize(text):
    return re.sub(r"\s+", " ", text).strip()


def self_check():
    """Cheap: every edit applies and compiles, names are unique kebab-case, quotes are in the spec."""
    spec = _normalize(SPEC.read_text(encoding="utf-8"))
    names = [m[0] for m in MUTANTS]
    problems = []
    if len(set(names)) != len(names):
        problems.append("duplicate names")
    for name, sections, bug, edits, quote, trigger in MUTANTS:
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name):
            problems.append(f"{name}: not kebab-case")
        if not sections or not bug or not edits or not trigger:
            problems.append(f"{name}: an empty field")
        if len(quote.split()) < 6 or _normalize(quote) not in spec:
            problems.append(f"{name}: spec quote not found verbatim: {quote!r}")
        try:
            compile(mutated_source(name), name, "exec")
        except SystemExit as e:
            problems.append(str(e))
        except SyntaxError as e:
            problems.append(f"{name}: {e}")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(MUTANTS)} mutants, {len(problems)} problem(s)")
    return not problems


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "--list":
        for m in MUTANTS:
            mutated_source(m[0])  # every edit still applies
        print(json.dumps([{"name": n, "sections": s, "bug": b, "spec": q, "trigger": t}
                          for n, s, b, _, q, t in MUTANTS]))
        return
    if sys.argv[1] == "--self-check":
        raise SystemExit(0 if self_check() else 1)
    name = sys.argv[1]
    code = compile(mutated_source(name), f"{SERVER.name} (mutant {name})", "exec")
    sys.argv = [str(SERVER)] + sys.argv[2:]
    exec(code, {"__name__": "__main__", "__file__": str(SERVER)})


if __name__ == "__main__":
    main()
