#!/usr/bin/python3
"""Interop (e): a Python service sends a task that fails in a liberzmq puller
and reads its dead letter (docs/pushpull.md, docs/protocol.md section 3).
argv: <puller endpoint> <dead-letter publisher endpoint>. Subscribes to
"dead_letter", sends the Python LiberZMQ 1.0.0's task frame (host_info
included) with a plain PUSH, then requires the letter to be two frames,
topic "dead_letter" and a JSON object whose original_task is the task as
sent, key for key, with final_error, retry_count and failed_at as
documented. Exits 0 when every check passed."""
import json
import socket
import sys
import time

import zmq


def fail(why):
    print("dead_letter_peer.py: " + why, file=sys.stderr)
    return 1


def main():
    pull_endpoint, pub_endpoint = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.rcvtimeo = 10000
    sub.setsockopt(zmq.SUBSCRIBE, b"dead_letter")
    sub.connect(pub_endpoint)
    push = ctx.socket(zmq.PUSH)
    push.linger = 5000
    push.connect(pull_endpoint)
    time.sleep(0.3)  # the subscription reaches the publisher first
    task = {"type": "charge", "data": {"card": "4111", "amount": 12.5}, "priority": 2,
            "timestamp": time.time(), "task_id": "charge_1765000000000000_1",
            "host_info": {"hostname": socket.gethostname(), "pusher_address": pull_endpoint, "bind_mode": False}}
    push.send(json.dumps(task).encode("utf-8"))
    try:
        frames = sub.recv_multipart()
    except zmq.Again:
        return fail("no dead letter within 10 s")
    if len(frames) != 2 or frames[0] != b"dead_letter":
        return fail("expected [b'dead_letter', payload], got %r" % frames)
    letter = json.loads(frames[1].decode("utf-8"))
    if sorted(letter) != ["failed_at", "final_error", "original_task", "retry_count"]:
        return fail("letter keys: %r" % sorted(letter))
    if letter["original_task"] != task:
        return fail("original_task %r is not the task sent %r" % (letter["original_task"], task))
    if letter["final_error"] != "handler for 'charge' failed: card declined":
        return fail("final_error %r" % letter["final_error"])
    if letter["retry_count"] != 2 or not isinstance(letter["retry_count"], int):
        return fail("retry_count %r (one run and one retry failed)" % letter["retry_count"])
    if not isinstance(letter["failed_at"], float) or abs(letter["failed_at"] - time.time()) > 60:
        return fail("failed_at %r" % letter["failed_at"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
