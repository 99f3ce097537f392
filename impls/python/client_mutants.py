#!/usr/bin/env python3
"""Mutants of echowire_client.py: the same client with one realistic bug each.

The client conformance suite tests itself with these (conformance/tests/suite/client.rs): every mutant
must fail the client case named beside it. Each mutant is one textual edit of the client's source;
an edit whose text no longer occurs exactly once is an error, so the list cannot go stale.

Usage:
  python3 client_mutants.py --list     # JSON: [{"name", "section", "bug", "killer"}, ...]
  python3 client_mutants.py NAME       # run the client's driver with that bug
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
CLIENT = HERE / "echowire_client.py"

# (name, spec section, the bug in words, text in the client, replacement, the case that kills it)
MUTANTS = [
    ("welcome-version-unchecked", "9.2", "WELCOME's version is not checked against the offer",
     "if not (self.offer[0] <= v <= self.offer[1]):", "if False:", "9.2-version-above-offer"),
    ("welcome-limit-unchecked", "9.2", "a WELCOME max_frame_size below 4096 is accepted",
     "if limit < MIN_LIMIT:", "if limit < 0:", "9.2-limit-4095"),
    ("max-outstanding-0-accepted", "9.2", "WELCOME max_outstanding 0 is accepted",
     "if max_out == 0:", "if max_out < 0:", "9.2-max-outstanding-0"),
    ("capabilities-unchecked", "9.2", "capabilities the client did not offer are accepted",
     "if caps & ~self.caps:", "if False:", "9.2-capability-not-offered"),
    ("error-before-welcome-answered", "9.2", "an ERROR instead of WELCOME is answered with ERROR",
     'raise Ended("the server refused the handshake", server_code=r.u16("code"))',
     'raise Fault(ew.PROTOCOL_ERROR, "the server refused the handshake")',
     "9.2-error-instead-of-welcome-id-9"),
    ("unknown-id-ignored", "9.3", "a response to an ID that is not outstanding is dropped silently",
     'raise Fault(ew.PROTOCOL_ERROR, f"ID {rid} is not outstanding")', "return", "9.3-unknown-id"),
    ("wrong-type-accepted", "9.3", "a response of the wrong type completes the request",
     "elif ANSWERS.get(req_type) == type_:", "elif type_ in TYPE_NAMES:", "9.3-wrong-type"),
    ("response-id-0-as-unknown", "9.3", "a response with ID 0 is reported as an unknown ID (PROTOCOL_ERROR, not INVALID_REQUEST_ID)",
     "if (type_ in ANSWERS.values() or type_ >= 0x80) and rid == 0:", "if False:", "9.3-id-0"),
    ("length-limit-unchecked", "9.3", "a Length above the client's limit is buffered instead of refused",
     "                if length > limit:\n", "                if length > 0xFFFFFFFF:\n", "9.3-length-above-client-limit"),
    ("no-error-on-fault", "9.3", "a fault of the server closes the connection without ERROR",
     "            self.fail_with(e.code, str(e))\n            self.finish(", "            self.finish(", "9.3-trailing-octets"),
    ("short-read-dropped", "9.3", "a read that ends inside the Length field, with nothing buffered, is dropped",
     "            self.buf += data\n", "            if self.buf or len(data) >= 4:\n                self.buf += data\n", "9.3-in-order"),
    ("truncated-frame-is-fatal", "9.3", "ERROR TRUNCATED_FRAME with ID 0 ends the connection",
     'if out["code"] in CONNECTION_SCOPE:', "if True:", "9.3-error-id-0-truncated-frame-continues"),
    ("goodbye-codes-not-connection-scope", "9.3",
     "an ERROR with ID 0 whose code is registered only as a GOODBYE reason (NO_ERROR, IDLE_TIMEOUT) is not treated like a connection-scope code: the connection goes on",
     "CONNECTION_SCOPE = ew.CONNECTION_SCOPE_CODES | GOODBYE_ONLY", "CONNECTION_SCOPE = ew.CONNECTION_SCOPE_CODES",
     "9.3-error-id-0-goodbye-code-no-error"),
    ("not-processed-reported-lost", "9.3",
     "a clean end of stream after the server's GOODBYE reports the unanswered requests failed and lost (fate unknown), not as not processed (may be retried)",
     'if self.peer_goodbye and str(e) == "end of stream" and e.server_code is None:', "if False:",
     "9.3-goodbye-then-clean-close-not-processed"),
    ("reserved-code-not-connection-scope", "7.1",
     "an ERROR with ID 0 and an unknown code of the reserved range is not treated as INTERNAL_ERROR: the connection goes on",
     'if type_ == ERROR and rid == 0 and out["code"] not in REGISTERED and out["code"] < 0x8000:', "if False:",
     "9.3-error-id-0-reserved-code"),
    ("eof-is-graceful", "9.3", "an end of stream with requests outstanding is taken for a graceful close (nothing reported)",
     'graceful = not self.outstanding and self.peer_goodbye and "inside" not in str(e)', "graceful = True",
     "9.3-fin-no-goodbye"),
    ("max-outstanding-ignored", "9.1", "requests beyond max_outstanding are sent at once",
     "if not self.backlog or len(self.outstanding) >= self.max_out:", "if not self.backlog:", "9.1-max-outstanding"),
    ("backpressure-drops-output", "9.1", "output the socket does not take at once is dropped",
     "            self.sock.sendall(data)\n",
     "            self.sock.setblocking(False)\n            try:\n                self.sock.send(data)\n"
     "            except BlockingIOError:\n                pass\n            self.sock.setblocking(True)\n",
     "9.1-backpressure-keeps-every-request"),
    ("no-response-timeout", "9.4", "a request without a response waits forever (no timeout reported)",
     "if o[2] is not None and not o[3] and now >= o[2]]", "if False]", "9.4-response-timeout"),
    ("welcome-wait-in-milliseconds", "9.4",
     "the deadline of the wait for WELCOME adds the timeout in milliseconds to a clock in seconds: the wait is 1000 times too long, in effect unbounded, and no timeout is reported",
     "self.read_frame(MIN_LIMIT, time.monotonic() + self.timeout)",
     "self.read_frame(MIN_LIMIT, time.monotonic() + self.timeout * 1000)",
     "9.4-welcome-timeout"),
]


def mutated_source(name):
    """The client's source with the named mutant's edit applied."""
    for m_name, _section, _bug, old, new, _killer in MUTANTS:
        if m_name == name:
            source = CLIENT.read_text(encoding="utf-8")
            count = source.count(old)
            if count != 1:
                raise SystemExit(f"mutant {name}: its text occurs {count} times in {CLIENT.name}, not once")
            return source.replace(old, new)
    raise SystemExit(f"no mutant named {name!r} (see --list)")


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "--list":
        for m in MUTANTS:
            mutated_source(m[0])
        print(json.dumps([{"name": n, "section": s, "bug": b, "killer": k} for n, s, b, _, _, k in MUTANTS]))
        return
    name = sys.argv[1]
    code = compile(mutated_source(name), f"{CLIENT.name} (mutant {name})", "exec")
    sys.argv = [str(CLIENT)] + sys.argv[2:]
    sys.path.insert(0, str(HERE))
    exec(code, {"__name__": "__main__", "__file__": str(CLIENT)})


if __name__ == "__main__":
    main()
