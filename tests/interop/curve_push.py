#!/usr/bin/python3
"""Interop (security): a plain pyzmq PUSH, as a CURVE client with a key pair of
its own, sends to a liberzmq puller that is a CURVE server: one raw frame
"hello over CURVE", then waits up to 3 s for its delivery (linger).
argv: <endpoint to connect> <server public key, Z85>. Exits 0."""
import sys

import zmq


def main():
    endpoint, server_key = sys.argv[1], sys.argv[2]
    public, secret = zmq.curve_keypair()
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.curve_serverkey = server_key.encode()
    push.curve_publickey = public
    push.curve_secretkey = secret
    push.linger = 3000
    push.connect(endpoint)
    push.send(b"hello over CURVE")
    push.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
