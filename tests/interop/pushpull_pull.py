#!/usr/bin/python3
"""Interop (d): a plain pyzmq PULL receives what lz_push sends.
argv: <endpoint to bind>. Each task must be one frame holding a JSON object
with exactly the keys type, data, priority, timestamp, task_id, written as
Python's json.dumps writes it compactly (docs/protocol.md). Checks two
tasks, exits 0 if they are right, 1 otherwise (or after 5 s of silence)."""
import json
import sys
import time
import uuid

import zmq

KEYS = {"type", "data", "priority", "timestamp", "task_id"}
EXPECTED = [
    ("resize", {"width": 640, "tags": ["a", "b"], "ratio": 0.5, "none": None}, 3),
    ("default", None, 0),
]


def fail(why):
    print("pushpull_pull.py: " + why, file=sys.stderr)
    return 1


def main():
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    pull.rcvtimeo = 5000
    pull.bind(sys.argv[1])
    try:
        ids = set()
        for want_type, want_data, want_priority in EXPECTED:
            try:
                frames = pull.recv_multipart()
            except zmq.Again:
                return fail("timed out waiting for a task")
            if len(frames) != 1:
                return fail("expected 1 frame, got %d" % len(frames))
            text = frames[0].decode("utf-8")
            task = json.loads(text)
            if not isinstance(task, dict) or set(task) != KEYS:
                return fail("task keys %r != %r" % (sorted(task) if isinstance(task, dict) else task,
                                                     sorted(KEYS)))
            if task["type"] != want_type:
                return fail("type %r != %r" % (task["type"], want_type))
            if task["data"] != want_data:
                return fail("data %r != %r" % (task["data"], want_data))
            if task["priority"] != want_priority or not isinstance(task["priority"], int):
                return fail("priority %r != %r" % (task["priority"], want_priority))
            ts = task["timestamp"]
            if not isinstance(ts, float) or abs(ts - time.time()) > 30:
                return fail("timestamp %r is not a float near now" % (ts,))
            tid = uuid.UUID(task["task_id"])
            if tid.version != 4 or str(tid) != task["task_id"]:
                return fail("task_id %r is not a canonical UUID v4" % task["task_id"])
            ids.add(task["task_id"])
            # Every number, the timestamp's too, is written as Python writes
            # it (repr: the shortest text that reads back), in compact JSON.
            python_text = json.dumps(task, separators=(",", ":"))
            if text != python_text:
                return fail("frame %r is not Python's own text %r" % (text, python_text))
        if len(ids) != len(EXPECTED):
            return fail("task ids repeat: %r" % ids)
        return 0
    finally:
        pull.close()
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
