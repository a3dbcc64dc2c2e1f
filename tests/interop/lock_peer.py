"""A Python client of our lock service (docs/lock.md), written with plain
pyzmq for tests/test_lock.c: the Python LiberZMQ guide's DistributedLock,
its request envelope sent frame by frame on a REQ socket (as its Client
does), then every action with its exact reply.
Usage: lock_peer.py ENDPOINT TOKEN, where the C side holds the lock
"held_by_c" under fencing token TOKEN.

Exit status 0 when every check passed; failures are printed."""
import json
import sys
import time
import uuid

import zmq

TIMEOUT_MS = 5000


def check(cond, what):
    if not cond:
        print("lock interop check failed:", what, file=sys.stderr)
        sys.exit(1)


class Client:
    """The part of liberzmq.patterns.Client the guide's lock uses."""

    def __init__(self, endpoint):
        self.socket = zmq.Context.instance().socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        self.socket.connect(endpoint)

    def send_request(self, kind, data):
        self.socket.send(json.dumps({"type": kind, "data": data, "timestamp": time.time(),
                                     "request_id": str(uuid.uuid4())}).encode())
        return json.loads(self.socket.recv())


class DistributedLock:
    """The guide's DistributedLock (section 分布式锁), unchanged but for its Client."""

    def __init__(self, client, lock_name, timeout=30):
        self.client = client
        self.lock_name = lock_name
        self.timeout = timeout
        self.lock_id = None
        self.acquired = False

    def acquire(self, blocking=True, timeout=None):
        self.lock_id = str(uuid.uuid4())
        start_time = time.time()
        while True:
            response = self.client.send_request('acquire_lock', {
                'lock_name': self.lock_name, 'lock_id': self.lock_id, 'timeout': self.timeout})
            if response.get('acquired'):
                self.acquired = True
                return True
            if not blocking:
                return False
            if timeout and (time.time() - start_time) > timeout:
                return False
            time.sleep(0.1)

    def release(self):
        if self.acquired and self.lock_id:
            self.client.send_request('release_lock', {'lock_name': self.lock_name, 'lock_id': self.lock_id})
            self.acquired = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.release()


def main(endpoint, c_token):
    client = Client(endpoint)
    ask = client.send_request

    # The guide's usage: a with block, then the lock is free again.
    with DistributedLock(client, "resource_1") as lock:
        check(lock.acquired, "with block acquired")
        other = DistributedLock(client, "resource_1")
        check(not other.acquire(blocking=False), "a second owner is refused while it is held")
    again = DistributedLock(client, "resource_1")
    check(again.acquire(blocking=False), "free again after the with block")
    again.release()
    check(not DistributedLock(client, "held_by_c").acquire(blocking=True, timeout=0.25),
          "the C side's lock stays held for a blocking acquire with a timeout")

    # Every reply, exactly.
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    got = ask("acquire_lock", {"lock_name": "py", "lock_id": me, "timeout": 30})
    token = got.get("fencing_token")
    check(got == {"acquired": True, "lock_id": me, "fencing_token": token, "expires_in": 30.0}, "grant: %r" % got)
    check(isinstance(token, int) and token > c_token, "a later grant has a larger token: %r > %d" % (token, c_token))
    got = ask("acquire_lock", {"lock_name": "py", "lock_id": other})
    left = got.get("expires_in")
    check(got == {"acquired": False, "reason": "lock_held", "expires_in": left} and 29 < left <= 30,
          "held: %r" % got)
    got = ask("renew_lock", {"lock_name": "py", "lock_id": me, "timeout": 5})
    check(got == {"renewed": True, "expires_in": 5.0, "fencing_token": token}, "renew: %r" % got)
    got = ask("renew_lock", {"lock_name": "py", "lock_id": other, "timeout": 5})
    check(got == {"renewed": False, "reason": "lock_not_found_or_mismatch"}, "renew by another: %r" % got)
    got = ask("lock_status", {"lock_name": "held_by_c"})
    left = got.get("expires_in")
    check(got == {"held": True, "lock_name": "held_by_c", "expires_in": left, "fencing_token": c_token}
          and 0 < left <= 10, "status: %r" % got)
    got = ask("release_lock", {"lock_name": "py", "lock_id": other})
    check(got == {"released": False, "reason": "lock_not_found_or_mismatch"}, "release by another: %r" % got)
    got = ask("release_lock", {"lock_name": "py", "lock_id": me})
    check(got == {"released": True}, "release: %r" % got)
    got = ask("release_lock", {"lock_name": "py", "lock_id": me})
    check(got == {"released": False, "reason": "lock_not_found_or_mismatch"}, "second release: %r" % got)
    got = ask("lock_status", {"lock_name": "py"})
    check(got == {"held": False, "lock_name": "py"}, "status after release: %r" % got)

    # What the guide's LockServer would crash on is an error reply.
    got = ask("acquire_lock", {"lock_name": "py"})
    check(got == {"status": "error", "message": "acquire_lock: missing 'lock_id' (a string)",
                  "request_type": "acquire_lock", "code": "LZ_EVALIDATION", "error": "validation error"},
          "malformed: %r" % got)
    got = ask("acquire_lock", {"lock_name": "py", "lock_id": me, "timeout": -1})
    check(got.get("status") == "error" and got.get("code") == "LZ_EVALIDATION", "negative timeout: %r" % got)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
