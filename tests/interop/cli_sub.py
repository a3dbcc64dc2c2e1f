"""A plain pyzmq subscriber for tests/test_cli.c: binds ENDPOINT, receives
COUNT messages (10 s at most) and prints each as a JSON array
[topic, payload] so the test sees exactly what `lz pub` put on the wire."""
import json
import sys

import zmq


def main():
    endpoint, count = sys.argv[1], int(sys.argv[2])
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 10000)
    sub.bind(endpoint)
    try:
        for _ in range(count):
            frames = sub.recv_multipart()
            print(json.dumps([f.decode("utf-8", "replace") for f in frames]), flush=True)
    except zmq.Again:
        print("cli_sub.py: timeout", file=sys.stderr)
        return 1
    finally:
        sub.close(linger=0)
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
