#!/usr/bin/python3
"""Interop (c): a plain pyzmq PUSH writes the Python LiberZMQ 1.0.0's task frame
by hand, as its Pusher.push_task does (with host_info, and JSON written with
ensure_ascii=False, so UTF-8 as it is), and a liberzmq puller dispatches it on "type".
argv: <endpoint to connect> <task_id to use>. Sends a "resize" task, then a
"stop" task, waits for them to be delivered (linger) and exits 0."""
import json
import socket
import sys
import time

import zmq


def main():
    endpoint, task_id = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.linger = 5000
    push.sndtimeo = 5000
    push.connect(endpoint)
    task = {
        "type": "resize",
        "data": {"width": 640, "height": 480, "path": "/img/\u00e9t\u00e9.png"},
        "priority": 1,
        "timestamp": time.time(),
        "task_id": task_id,
        "host_info": {"hostname": socket.gethostname(), "pusher_address": endpoint, "bind_mode": False},
    }
    push.send(json.dumps(task, ensure_ascii=False).encode("utf-8"))
    push.send(json.dumps({"type": "stop", "data": None, "priority": 0, "timestamp": time.time(),
                          "task_id": "00000000-0000-4000-8000-000000000000"}).encode())
    push.close()  # waits up to linger for delivery
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
