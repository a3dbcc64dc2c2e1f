#!/usr/bin/python3
"""Interop (security): a plain pyzmq PUSH, as a PLAIN client, sends to a
liberzmq puller that is a PLAIN server: one raw frame "hello over PLAIN",
then waits up to 3 s for its delivery (linger).
argv: <endpoint to connect> <user:password>. Exits 0."""
import sys

import zmq


def main():
    endpoint, login = sys.argv[1], sys.argv[2]
    user, password = login.split(":", 1)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.plain_username = user.encode()
    push.plain_password = password.encode()
    push.linger = 3000
    push.connect(endpoint)
    push.send(b"hello over PLAIN")
    push.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
