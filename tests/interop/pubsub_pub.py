#!/usr/bin/python3
"""Interop (a): a plain pyzmq PUB sends [topic, json] frames to a liberzmq
subscriber. argv: <pub endpoint to bind> <control endpoint to bind>.
Publishes until the C side pushes b"stop" on the control PULL socket;
exits 0 then, 1 if nothing stops it within 10 s."""
import json
import sys
import time

import zmq


def main():
    pub_ep, ctl_ep = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    pub.bind(pub_ep)
    ctl = ctx.socket(zmq.PULL)
    ctl.linger = 0
    ctl.bind(ctl_ep)
    poller = zmq.Poller()
    poller.register(ctl, zmq.POLLIN)
    deadline = time.monotonic() + 10
    seq = 0
    status = 1
    while time.monotonic() < deadline:
        body = {
            "seq": seq,
            "text": "h\u00e9llo \u2603",
            "list": [1, 2.5, None, True, False, "x"],
            "nested": {"a": {"b": [{}]}},
            "big": 2**53,
            "neg": -17,
        }
        # Something the C side did not subscribe to, then what it did.
        pub.send_multipart([b"other.topic", json.dumps({"seq": -1}).encode()])
        pub.send_multipart([b"interop.py", json.dumps(body).encode("utf-8")])
        seq += 1
        if dict(poller.poll(20)).get(ctl):
            if ctl.recv() == b"stop":
                status = 0
                break
    pub.close()
    ctl.close()
    ctx.term()
    if status:
        print("pubsub_pub.py: never told to stop", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
