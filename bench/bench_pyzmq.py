#!/usr/bin/python3
"""Benchmark program for pyzmq: raw bytes; --codec json: json.dumps/json.loads of the
message (pub/sub) or of a task envelope (push/pull), the least a Python service pays;
--codec python-liberzmq: what the Python LiberZMQ does per message (python_liberzmq.py).
Same arguments, drivers and JSON-lines output as the C harness (bench/harness.c)."""
import argparse
import json
import multiprocessing as mp
import os
import sys
import threading
import time
import uuid

import zmq

import python_liberzmq

TOPIC = b"bench"          # LZB_TOPIC
IO_TIMEOUT_MS = 200       # LZB_IO_TIMEOUT_MS
REQUEST_TIMEOUT_MS = 5000 # LZB_REQUEST_TIMEOUT_MS: how long a request waits for its reply
WARM_UP_ROUND_TRIPS = 100 # LZB_WARM_UP_ROUND_TRIPS
BATCH = 256               # LZB_BATCH
JOIN_SECONDS = 5.0


class Failed(Exception):
    """A measurement that failed: one line on stderr and exit 1, as the C harness."""


def seed(seq):
    return {"symbol": "BTC", "price": 43210.5, "seq": seq}


def parse():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("pattern", choices=["pushpull", "pubsub", "reqrep", "memory"])
    p.add_argument("--transport", choices=["tcp", "ipc", "inproc"], default="tcp")
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--pin", action="store_true")
    p.add_argument("--codec", choices=["raw", "json", "python-liberzmq"], default="raw")
    # The C harness's --processes; tcp and ipc default to 2 here (no shared GIL).
    p.add_argument("--processes", type=int, choices=[1, 2], default=2)
    # The C harness's --spread: the receiving process on CPU 0, the sending one on CPU 1.
    p.add_argument("--spread", action="store_true")
    a = p.parse_args()
    if a.spread and (a.pin or a.processes != 2 or a.transport == "inproc" or
                     a.pattern not in ("pushpull", "pubsub")):
        p.error("--spread is for pushpull and pubsub over tcp or ipc in two processes, without --pin")
    if a.count <= 0:
        a.count = 20000 if a.pattern == "reqrep" else 10000000
    if a.codec == "python-liberzmq" and a.pattern not in ("pushpull", "pubsub"):
        p.error("--codec python-liberzmq is for pushpull and pubsub")
    if a.codec != "raw":
        a.size = len(json.dumps(seed(0), separators=(",", ":")))
    return a


_serial = 0


def endpoint(transport):
    """A fresh endpoint per run, like the C harness (tcp: a free port)."""
    global _serial
    _serial += 1
    if transport == "tcp":
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return "tcp://127.0.0.1:%d" % port
    if transport == "ipc":
        return "ipc:///tmp/lzb-py-%d-%d" % (os.getpid(), _serial)
    return "inproc://lzb-py-%d" % _serial


def forget(ep):
    """Removes an ipc endpoint's socket file once its socket is closed, as harness.c's close_contender."""
    if ep.startswith("ipc://"):
        try:
            os.unlink(ep[len("ipc://"):])
        except FileNotFoundError:
            pass


def make_socket(ctx, kind, timeout_ms=IO_TIMEOUT_MS):
    s = ctx.socket(kind)
    s.linger = 0
    s.sndtimeo = timeout_ms
    s.rcvtimeo = timeout_ms
    return s


class Ends:
    """What one side sends or receives for a pattern and codec: one message
    per send_one or recv_one call, chosen once here."""

    def __init__(self, args):
        self.pattern, self.json = args.pattern, args.codec == "json"
        self.buf = b"x" * args.size
        self.seq = 0
        pubsub = self.pattern == "pubsub"
        if args.codec == "python-liberzmq":
            self.node = python_liberzmq.Node()
            self.send_one = self.publish if pubsub else self.push_task
            self.recv_one = self.node.receive_message if pubsub else self.node.pull_task
        else:
            self.send_one = self.send_multipart if pubsub else self.send_single
            self.recv_one = self.recv_frames

    def payload(self):
        if not self.json:
            return self.buf
        self.seq += 1
        if self.pattern == "pubsub":
            return json.dumps(seed(self.seq)).encode()
        # A task envelope like liberzmq's (type, data, priority, timestamp, UUID task_id).
        return json.dumps({"type": "tick", "data": seed(self.seq), "priority": 0,
                           "timestamp": time.time(), "task_id": str(uuid.uuid4())}).encode()

    def send_multipart(self, sock):
        sock.send_multipart([TOPIC, self.payload()])

    def send_single(self, sock):
        sock.send(self.payload())

    def publish(self, sock):
        self.seq += 1
        self.node.publish(sock, TOPIC.decode(), seed(self.seq))

    def push_task(self, sock):
        self.seq += 1
        self.node.push_task(sock, "tick", seed(self.seq))

    def recv_frames(self, sock):
        frames = sock.recv_multipart()
        if self.json:
            json.loads(frames[-1])

    def send(self, sock, n):
        return self.repeat(self.send_one, sock, n)

    def recv(self, sock, n):
        return self.repeat(self.recv_one, sock, n)

    @staticmethod
    def repeat(one, sock, n):
        """Calls one(sock) n times; fewer when a socket timeout (zmq.Again) ends it."""
        for i in range(n):
            try:
                one(sock)
            except zmq.Again:
                return i
        return n


def in_process(args):
    """tcp/ipc peers run in a child process (no GIL shared with the measuring
    side, as separate Python services) unless --processes 1; inproc and
    memory use a thread."""
    return args.transport == "inproc" or args.processes == 1 or getattr(args, "one_process", False)


def runner(args, target, argv):
    if in_process(args):
        t = threading.Thread(target=target, args=argv)
    else:
        t = mp.get_context("fork").Process(target=target, args=argv)
    t.start()
    return t


# ---- Throughput ----

def sender_main(args, ep, ctx, ready, stop, done):
    own = ctx is None
    if args.spread:
        os.sched_setaffinity(0, {1})  # before this process's context starts its I/O thread
    ctx = ctx or zmq.Context()
    sock = make_socket(ctx, zmq.PUB if args.pattern == "pubsub" else zmq.PUSH)
    if args.pattern == "pubsub":
        sock.setsockopt(zmq.XPUB_NODROP, 1)  # flow control, as for every contender
    sock.connect(ep)
    ends = Ends(args)
    while not ready.is_set() and not stop.is_set():
        ends.send(sock, 1)
        time.sleep(0.001)
    sent = 0
    while sent < args.count and not stop.is_set():
        sent += ends.send(sock, min(BATCH, args.count - sent))
    done.set()
    sock.close()
    if own:
        ctx.term()


def wait_first(ends, sock):
    t0 = time.monotonic()
    while ends.recv(sock, 1) < 1:
        if time.monotonic() - t0 > JOIN_SECONDS:
            raise Failed("no messages arrived")


def receive(args, ends, sock, ready, done):
    wait_first(ends, sock)
    ready.set()
    wait_first(ends, sock)
    t0 = t_last = time.perf_counter()
    timed = 0
    while timed < args.count - 1:
        want = min(BATCH, args.count - 1 - timed)
        got = ends.recv(sock, want)
        t = time.perf_counter()
        if got < want and done.is_set():
            break
        if got > 0:
            timed, t_last = timed + got, t
        if t - t0 > args.max_seconds:
            break
    secs = t_last - t0
    return timed, (timed / secs if secs > 0 else 0.0)


def drain(ends, sock, stop, done, peer):
    """Stops the sender and takes what is still queued, as harness.c's drain."""
    stop.set()
    while True:
        sender_done = done.is_set() or not peer.is_alive()
        if ends.recv(sock, BATCH) < BATCH and sender_done:
            return


def throughput(args, ctx):
    ep = endpoint(args.transport)
    sock = make_socket(ctx, zmq.SUB if args.pattern == "pubsub" else zmq.PULL)
    if args.pattern == "pubsub":
        sock.setsockopt(zmq.SUBSCRIBE, TOPIC)
    sock.bind(ep)
    ev = threading.Event if in_process(args) else mp.get_context("fork").Event
    ready, stop, done = ev(), ev(), ev()
    peer = runner(args, sender_main, (args, ep, ctx if in_process(args) else None, ready, stop, done))
    ends = Ends(args)
    try:
        received, rate = receive(args, ends, sock, ready, done)
    finally:
        drain(ends, sock, stop, done, peer)
        peer.join()
        sock.close()
        forget(ep)
    return {"received": received, "msgs_per_sec": round(rate),
            "mb_per_sec": round(rate * args.size / 1e6, 2)}


# ---- Latency ----

def server_main(args, ep, ctx, stop, bound):
    own = ctx is None
    ctx = ctx or zmq.Context()
    sock = make_socket(ctx, zmq.REP)
    sock.bind(ep)
    bound.set()
    while not stop.is_set():
        try:
            req = sock.recv()
        except zmq.Again:
            continue
        if args.codec == "json":
            req = json.dumps(json.loads(req)["data"]).encode()
        sock.send(req)
    sock.close()
    if own:
        ctx.term()


def request(args, sock, buf):
    """One round trip; zmq.Again when no reply came within REQUEST_TIMEOUT_MS."""
    if args.codec == "json":
        sock.send(json.dumps({"type": "echo", "data": seed(0), "timestamp": time.time(),
                              "request_id": str(uuid.uuid4())}).encode())
        json.loads(sock.recv())
    else:
        sock.send(buf)
        sock.recv()


def round_trips(args, sock, buf):
    """harness.c's rr_measure: the warm-up (at most --max-seconds too), then the
    timed round trips; one that fails fails the measurement."""
    start = time.perf_counter()
    for i in range(WARM_UP_ROUND_TRIPS):
        if time.perf_counter() - start >= args.max_seconds:
            break
        try:
            request(args, sock, buf)
        except zmq.Again:
            raise Failed("warm-up round trip %d failed" % (i + 1)) from None
    samples = []
    start = time.perf_counter()
    while len(samples) < args.count and time.perf_counter() - start < args.max_seconds:
        t = time.perf_counter()
        try:
            request(args, sock, buf)
        except zmq.Again:
            raise Failed("round trip %d failed after %.0f ms" % (len(samples) + 1,
                                                                  (time.perf_counter() - t) * 1e3)) from None
        samples.append((time.perf_counter() - t) * 1e6)
    if not samples:
        raise Failed("no round trip completed within --max-seconds %g" % args.max_seconds)
    return samples


def latency(args, ctx):
    ep = endpoint(args.transport)
    ev = threading.Event if in_process(args) else mp.get_context("fork").Event
    stop, bound = ev(), ev()
    peer = runner(args, server_main, (args, ep, ctx if in_process(args) else None, stop, bound))
    bound.wait(JOIN_SECONDS)
    sock = make_socket(ctx, zmq.REQ, REQUEST_TIMEOUT_MS)
    sock.connect(ep)
    try:
        samples = round_trips(args, sock, b"x" * args.size)
    finally:
        stop.set()
        peer.join()
        sock.close()
        forget(ep)
    samples.sort()
    n = len(samples)
    pick = lambda p: samples[min(n - 1, int(p * (n - 1) + 0.5))]
    return {"pinned": args.pin, "round_trips": n, "p50_us": round(pick(0.5), 2),
            "p99_us": round(pick(0.99), 2), "mean_us": round(sum(samples) / n, 2)}


# ---- Memory ----

def rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def memory(args, ctx):
    """A push/pull pair in this process over tcp (threads: RSS is per process)."""
    args.pattern, args.one_process = "pushpull", True
    start, anon_start = rss_kb("VmRSS"), rss_kb("RssAnon")
    one = argparse.Namespace(**vars(args))
    one.count = 2
    throughput(one, ctx)
    time.sleep(0.1)
    idle, anon_idle = rss_kb("VmRSS"), rss_kb("RssAnon")
    throughput(args, ctx)
    args.pattern = "memory"
    return {"rss_start_kb": start, "rss_idle_kb": idle, "rss_loaded_kb": rss_kb("VmRSS"),
            "rss_peak_kb": rss_kb("VmHWM"), "rss_anon_start_kb": anon_start, "rss_anon_idle_kb": anon_idle}


def main():
    args = parse()
    if args.pin or args.spread:
        os.sched_setaffinity(0, {0})  # threads inherit it (a spread sender moves itself)
    ctx = zmq.Context()
    measure = {"reqrep": latency, "memory": memory}.get(args.pattern, throughput)
    name = {"json": "pyzmq-json", "python-liberzmq": "python-liberzmq"}.get(args.codec, "pyzmq")
    for _ in range(args.reps):
        transport = args.transport
        try:
            result = measure(args, ctx)
        except Failed as e:
            print("%s: %s" % (name, e), file=sys.stderr)
            return 1
        head = {"contender": name, "version": zmq.pyzmq_version(), "pattern": args.pattern,
                "transport": transport, "size": args.size, "codec": args.codec}
        if args.pattern in ("pushpull", "pubsub"):
            head["pinned"] = args.pin
            head["spread"] = args.spread
        head.update(result)
        print(json.dumps(head, separators=(",", ":")), flush=True)
    ctx.term()


if __name__ == "__main__":
    sys.exit(main())
