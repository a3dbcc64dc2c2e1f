#!/usr/bin/python3
"""Revocation (test_revoke.c): a plain pyzmq PUSH, a CURVE client with the
given key pair, sends one raw frame "first", 50 more a second later, and stays
connected 4 s more (its refused reconnects, once cut, come in that time).
argv: <endpoint to connect> <server public key>,<client secret key> (Z85,
which has no ','). Exits 0."""
import sys
import time

import zmq


def main():
    endpoint = sys.argv[1]
    server_key, secret = (key.encode() for key in sys.argv[2].split(","))
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.curve_serverkey = server_key
    push.curve_publickey = zmq.curve_public(secret)
    push.curve_secretkey = secret
    push.linger = 0
    push.connect(endpoint)
    push.send(b"first")
    time.sleep(1)
    for _ in range(50):
        push.send(b"late")
    time.sleep(4)
    push.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
