"""A plain pyzmq publisher for tests/test_cli.c: binds ENDPOINT, waits for
a subscriber (XPUB shows subscriptions; on the wire it is a PUB), then sends
2-frame [topic, payload] messages, one of them not UTF-8, then the two forms
lz sub takes beyond them (docs/protocol.md section 2): a classic one-frame
message and a binary topic, and exits."""
import sys

import zmq

MESSAGES = [
    [b"plain", b'{"x": 1}'],
    [b"plain", b'"text"'],
    [b"plain", b"not json"],
    [b"plain", b"\xff\x00\xfe"],
    [b'{"t": 21.5}'],
    [b"\xff\x01", b'{"price": 42}'],
]


def main():
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 2000)
    pub.bind(sys.argv[1])
    if not pub.poll(10000):  # the subscription message
        print("cli_pub.py: no subscriber", file=sys.stderr)
        return 1
    pub.recv()
    for frames in MESSAGES:
        pub.send_multipart(frames)
    pub.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
