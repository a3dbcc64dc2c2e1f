"""Python LiberZMQ (v1.0.0) request/reply peers, written frame by frame with
pyzmq, for tests/test_reqrep_interop.c. Usage: reqrep_peer.py MODE ENDPOINT.

  client  REQ, like liberzmq.patterns.Client: send_request / ping / call
  server  REP, like liberzmq.patterns.Server: answers 'echo', 'add' and
          errors as {"status": "error", ...}; binds, serves 4 requests,
          which must carry no "traceparent" key
  traced-server  the same, but every request must carry a W3C
          "traceparent" (docs/tracing.md), a fresh trace each
  validated-client  REQ against a server whose 'add' has a JSON Schema
          (lz_node_set_schema, docs/schema.md): a request that does not
          match gets the error reply docs/protocol.md section 6 gives
  router  ROUTER, like liberzmq.patterns.Router: [client_id, request_id,
          payload] in, same out with payload * 2; binds, serves 3
  dealer  DEALER, like liberzmq.patterns.Dealer: [request_id, payload]

Exit status 0 when every check passed; failures are printed."""
import json
import os
import re
import sys
import time
import uuid

import zmq

# The Python LiberZMQ's JSON serializer, step for step (its tagged bytes,
# tuples and sets): the server below reads and writes with it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from python_liberzmq import deserialize, serialize  # noqa: E402

TIMEOUT_MS = 5000


def socket(kind, endpoint, bind, identity=None):
    s = zmq.Context.instance().socket(kind)
    if identity:  # before connecting, as the Python LiberZMQ Dealer does
        s.setsockopt(zmq.IDENTITY, identity)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    s.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
    (s.bind if bind else s.connect)(endpoint)
    return s


def check(cond, what):
    if not cond:
        print("interop check failed:", what, file=sys.stderr)
        sys.exit(1)


def request(s, kind, data):
    # Client.send_request: one JSON frame, the reply is the whole frame.
    s.send(json.dumps({"type": kind, "data": data, "timestamp": time.time(),
                       "request_id": str(uuid.uuid4())}).encode())
    return json.loads(s.recv())


def run_client(endpoint):
    s = socket(zmq.REQ, endpoint, False)
    check(request(s, "echo", {"x": [1, 2]}) == {"x": [1, 2]}, "echo")
    pong = request(s, "ping", {"timestamp": time.time(), "client_id": 1})
    check(pong.get("status") == "ok" and pong.get("pong") is True, "ping: %r" % pong)
    err = request(s, "nope", None)
    check(err.get("status") == "error" and err.get("request_type") == "nope" and "message" in err,
          "unknown action: %r" % err)
    # Client.call("add", 2, 3): args is a tuple, which its JSON encoder wraps.
    call = {"method": "add", "args": {"__type__": "tuple", "value": [2, 3]}, "kwargs": {}}
    check(request(s, "call", call) == 5, "call add")
    s.send(b"\x00garbage")
    err = json.loads(s.recv())
    check(err.get("status") == "error", "garbage: %r" % err)


def run_validated_client(endpoint):
    s = socket(zmq.REQ, endpoint, False)
    check(request(s, "add", {"a": 2, "b": 3}) == 5, "a request that matches is served")
    err = request(s, "add", {"a": 2})
    check(err == {"status": "error", "message": "'add' refused: $: missing required property 'b'",
                  "request_type": "add", "code": "LZ_EVALIDATION", "error": err.get("error")}
          and isinstance(err.get("error"), str), "refused request: %r" % err)


TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01\Z")


def run_server(endpoint, traced=False):
    s = socket(zmq.REP, endpoint, True)
    traces = set()
    for _ in range(4):
        req = deserialize(s.recv())
        kind, data = req.get("type", "unknown"), req.get("data")
        check(not isinstance(data, dict) or "blob" not in data or data["blob"] == b"\xff\x00\x01",
              "bytes read as the Python serializer reads them: %r" % data)
        check(isinstance(req.get("request_id"), str) and isinstance(req.get("timestamp"), float),
              "request fields: %r" % req)
        parent = req.get("traceparent")
        check((parent is not None) == traced, "traceparent %sexpected: %r" % ("" if traced else "not ", req))
        if traced:
            check(TRACEPARENT.match(parent) and list(req)[-2:] == ["traceparent", "data"],
                  "traceparent form or place (just before data): %r" % req)
            traces.add(parent[3:35])
        if kind == "echo":
            reply = data
        elif kind == "add":
            reply = data["a"] + data["b"]
        else:
            reply = {"status": "error", "message": "Unknown request type: %s" % kind,
                     "request_type": kind}
        s.send(serialize(reply))
    check(len(traces) == (4 if traced else 0), "one trace per request: %r" % traces)


def run_router(endpoint):
    s = socket(zmq.ROUTER, endpoint, True)
    for _ in range(3):
        parts = s.recv_multipart()
        check(len(parts) == 3, "router got %d frames" % len(parts))
        client_id, request_id, payload = parts
        # As liberzmq.patterns.Router.receive_request does: both ids are text.
        client_id.decode("utf-8")
        request_id.decode("utf-8")
        s.send_multipart([client_id, request_id, json.dumps(json.loads(payload) * 2).encode()])


def run_dealer(endpoint):
    s = socket(zmq.DEALER, endpoint, False, b"dealer-py")
    s.send_multipart([b"dealer-py-1", json.dumps({"n": 21}).encode()])
    request_id, payload = s.recv_multipart()
    check(request_id == b"dealer-py-1", "request id %r" % request_id)
    check(json.loads(payload) == {"n": 42, "from": "dealer-py"}, "reply %r" % payload)


if __name__ == "__main__":
    {"client": run_client, "server": run_server, "traced-server": lambda e: run_server(e, traced=True),
     "validated-client": run_validated_client, "router": run_router, "dealer": run_dealer}[sys.argv[1]](sys.argv[2])
