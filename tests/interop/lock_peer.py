"""A Python client of our lock service (docs/lock.md), written with plain
pyzmq for tests/test_lock.c: the Python LiberZMQ guide's DistributedLock,
its request envelope sent frame by frame on a REQ socket (as its Client
does), then every action with its exact reply, then the wait_ms addition
(docs/protocol.md 4.1): a parked acquire answered at the release, at the
end of its wait, and skipped when its socket has closed.
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

    def send(self, kind, data):
        self.socket.send(json.dumps({"type": kind, "data": data, "timestamp": time.time(),
                                     "request_id": str(uuid.uuid4())}).encode())

    def reply_within(self, seconds):
        """The reply to the request sent, or None if none came within seconds."""
        if not self.socket.poll(int(seconds * 1000)):
            return None
        return json.loads(self.socket.recv())

    def send_request(self, kind, data):
        self.send(kind, data)
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
    parked_waits(endpoint, ask)
    return 0


def grant_for(got, lock_id, after_token, timeout):
    """Whether got is the exact grant to lock_id with a token above after_token."""
    token = got.get("fencing_token") if got else None
    return (got == {"acquired": True, "lock_id": lock_id, "fencing_token": token, "expires_in": timeout}
            and isinstance(token, int) and token > after_token)


def parked_waits(endpoint, ask):
    holder = str(uuid.uuid4())
    got = ask("acquire_lock", {"lock_name": "queue", "lock_id": holder})
    check(got.get("acquired"), "queue: the holder's grant: %r" % got)
    held_token = got["fencing_token"]

    # Parked until the release, then the ordinary grant, with a larger token.
    waiter, waiter_id = Client(endpoint), str(uuid.uuid4())
    waiter.send("acquire_lock", {"lock_name": "queue", "lock_id": waiter_id, "timeout": 7, "wait_ms": 9000})
    check(waiter.reply_within(0.3) is None, "a parked acquire is not answered while the lock is held")
    check(ask("release_lock", {"lock_name": "queue", "lock_id": holder}) == {"released": True}, "queue: release")
    got = waiter.reply_within(2)
    check(grant_for(got, waiter_id, held_token, 7.0), "parked grant at the release: %r" % got)
    waiter_token = got["fencing_token"]

    # Parked until its wait ends: the ordinary refusal, not before.
    late, started = Client(endpoint), time.monotonic()
    late.send("acquire_lock", {"lock_name": "queue", "lock_id": str(uuid.uuid4()), "wait_ms": 300})
    got = late.reply_within(5)
    waited = time.monotonic() - started
    left = got.get("expires_in") if got else None
    check(got == {"acquired": False, "reason": "lock_held", "expires_in": left} and waited >= 0.25,
          "refusal when the wait ends (after %.3f s): %r" % (waited, got))

    # A parked acquire whose socket closed is skipped: the next waiter gets
    # the lock at the release, not after the gone one's lease.
    gone = Client(endpoint)
    gone.send("acquire_lock", {"lock_name": "queue", "lock_id": str(uuid.uuid4()), "timeout": 60, "wait_ms": 9000})
    time.sleep(0.2)
    gone.socket.close()
    nxt, next_id = Client(endpoint), str(uuid.uuid4())
    nxt.send("acquire_lock", {"lock_name": "queue", "lock_id": next_id, "wait_ms": 9000})
    time.sleep(0.5)  # the server has seen the first one's connection end
    check(ask("release_lock", {"lock_name": "queue", "lock_id": waiter_id}) == {"released": True}, "queue: release 2")
    got = nxt.reply_within(2)
    check(grant_for(got, next_id, waiter_token, 30.0), "the next waiter's grant, the gone one skipped: %r" % got)
    ask("release_lock", {"lock_name": "queue", "lock_id": next_id})

    for bad in (-1, "soon", None):
        got = ask("acquire_lock", {"lock_name": "queue", "lock_id": holder, "wait_ms": bad})
        check(got.get("status") == "error" and got.get("code") == "LZ_EVALIDATION", "wait_ms %r: %r" % (bad, got))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
