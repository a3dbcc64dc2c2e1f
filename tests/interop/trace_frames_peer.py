#!/usr/bin/python3
"""The Python LiberZMQ (v1.0.0) Subscriber and Router against a traced
liberzmq publisher and dealer, whose messages end with a trace context
extension frame (docs/protocol.md sections 2 and 5). Each peer reads frames
as the Python LiberZMQ does, by index, so the extra frame must not disturb
it; the script also checks that the frame is there and well formed, so the
test proves the extension is on the wire. Usage: trace_frames_peer.py MODE
ENDPOINT.

  subscriber  SUB, like liberzmq.patterns.Subscriber: `len(frames) < 2` is
              skipped, frames[0] the topic, frames[1] the JSON payload;
              connects, subscribes to "trace.", reads 3 messages
              {"seq": n} in increasing order
  router      ROUTER, like liberzmq.patterns.Router: `len(parts) < 3` is
              skipped, parts[0..2] the client id, request id and payload;
              binds, answers 3 requests with payload * 2

Exit status 0 when every check passed; failures are printed."""
import json
import re
import sys

import zmq

TIMEOUT_MS = 10000
TRACEPARENT = re.compile(rb"^traceparent=00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def check(cond, what):
    if not cond:
        print("trace_frames_peer.py: check failed:", what, file=sys.stderr)
        sys.exit(1)


def socket(kind, endpoint, bind):
    s = zmq.Context.instance().socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    (s.bind if bind else s.connect)(endpoint)
    return s


def run_subscriber(endpoint):
    s = socket(zmq.SUB, endpoint, False)
    s.setsockopt(zmq.SUBSCRIBE, b"trace.")
    last, seen = -1, 0
    while seen < 3:
        frames = s.recv_multipart()
        if len(frames) < 2:  # the Python LiberZMQ Subscriber's own test
            continue
        topic, data = frames[0].decode("utf-8"), json.loads(frames[1])
        check(topic == "trace.c", "topic %r" % topic)
        check(isinstance(data.get("seq"), int) and data["seq"] > last, "seq %r after %r" % (data, last))
        check(len(frames) == 3 and TRACEPARENT.match(frames[2]), "extension frames %r" % frames[2:])
        last, seen = data["seq"], seen + 1


def run_router(endpoint):
    s = socket(zmq.ROUTER, endpoint, True)
    for _ in range(3):
        parts = s.recv_multipart()
        if len(parts) < 3:  # the Python LiberZMQ Router's own test
            continue
        client_id, request_id, payload = parts[0], parts[1], parts[2]
        check(len(parts) == 4 and TRACEPARENT.match(parts[3]), "extension frames %r" % parts[3:])
        s.send_multipart([client_id, request_id, json.dumps(json.loads(payload) * 2).encode()])


if __name__ == "__main__":
    {"subscriber": run_subscriber, "router": run_router}[sys.argv[1]](sys.argv[2])
