#!/usr/bin/python3
"""Interop (b): a plain pyzmq SUB receives what a liberzmq publisher sends.
argv: <endpoint to connect>. Each message must be exactly two frames: the
topic, then the JSON payload (the value itself, no envelope), byte for byte
what Python's own compact json.dumps writes (numbers included: docs/protocol.md
promises doubles in Python's repr form). Checks three messages, exits 0 if
they are right, 1 otherwise (or after 5 s of silence)."""
import json
import sys

import zmq

EXPECTED = {"name": "liberzmq", "pi": 3.5, "ok": True, "none": None, "list": [1, "two", {"k": "v"}],
            "text": "h\u00e9llo \u2603",
            "doubles": [43210.5, 1e-05, 1e+16, 2.0, 0.1, -1324845932296262.2, 1.2345678901234568e+20]}


def fail(why):
    print("pubsub_sub.py: " + why, file=sys.stderr)
    return 1


def main():
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.rcvtimeo = 5000
    sub.setsockopt(zmq.SUBSCRIBE, b"interop.")
    sub.connect(sys.argv[1])
    try:
        last = -1
        for _ in range(3):
            try:
                frames = sub.recv_multipart()
            except zmq.Again:
                return fail("timed out waiting for a message")
            if len(frames) != 2:
                return fail("expected 2 frames, got %d: %r" % (len(frames), frames))
            topic, payload = frames
            if topic != b"interop.c":
                return fail("unexpected topic %r" % topic)
            value = json.loads(payload.decode("utf-8"))
            if not isinstance(value, dict):
                return fail("payload is not an object: %r" % payload)
            python_text = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            if payload != python_text:
                return fail("payload %r is not what Python writes: %r" % (payload, python_text))
            if not all(isinstance(d, float) for d in value.get("doubles", [])):
                return fail("a double came as an integer: %r" % value.get("doubles"))
            seq = value.pop("seq", None)
            if not isinstance(seq, int) or seq <= last:
                return fail("bad or out-of-order seq %r after %r" % (seq, last))
            last = seq
            if value != EXPECTED:
                return fail("payload %r != %r" % (value, EXPECTED))
        return 0
    finally:
        sub.close()
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
