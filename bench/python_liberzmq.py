"""The per-message work of the Python LiberZMQ (liberalchang/liberzmq 1.0.0), for the benchmark.

That package cannot be installed here (no PyPI), so this module repeats, step for step, what its
Publisher.publish, Subscriber.receive_message, Pusher.push_task and Puller.pull_task do for each
message on top of pyzmq, with its default JSON serializer (use_custom_encoder=True):

- serialize: walk the value converting tuples, sets, bytes, dates and Decimals to tagged objects,
  json.dumps with the serializer's keyword arguments (ensure_ascii=False, so not json's cached
  default encoder), encode to UTF-8;
- deserialize: decode from UTF-8, json.loads with an object hook that looks for those tags;
- a task is the envelope {type, data, priority, timestamp, task_id "<type>_<microseconds>_<count>",
  host_info {hostname, pusher_address, bind_mode}};
- each call counts, records the topic or task type in a set and formats its debug log line (an
  f-string, built whatever the log level; the logger is at INFO, so nothing is written).

Left out, so that this errs on the fast side: typeguard's @typechecked on publish and push_task
(the package requires typeguard >= 4; Debian 12 has 2.2), and receive_message's per-call timeout
(get and set RCVTIMEO twice) that the Subscriber's own receive loop uses.
"""
import json
import logging
import socket
import time
from datetime import date, datetime
from decimal import Decimal

log = logging.getLogger("python-liberzmq")
log.setLevel(logging.INFO)


def _tagged(kind, value):
    return {"__type__": kind, "value": value}


def _prepare(value):
    """What the serializer does to a value before json.dumps."""
    if isinstance(value, tuple):
        return _tagged("tuple", [_prepare(v) for v in value])
    if isinstance(value, set):
        return _tagged("set", [_prepare(v) for v in value])
    if isinstance(value, bytes):
        return _tagged("bytes", value.hex())
    if isinstance(value, datetime):
        return _tagged("datetime", value.isoformat())
    if isinstance(value, date):
        return _tagged("date", value.isoformat())
    if isinstance(value, Decimal):
        return _tagged("decimal", str(value))
    if isinstance(value, dict):
        return {k: _prepare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_prepare(v) for v in value]
    return value


_RESTORE = {"datetime": datetime.fromisoformat, "date": date.fromisoformat, "decimal": Decimal,
            "set": set, "bytes": bytes.fromhex, "tuple": tuple, "object": lambda value: value}


def _restore(obj):
    """The serializer's json.loads object hook: a tagged object becomes its
    value; an unknown tag leaves the object as it is."""
    restore = _RESTORE.get(obj["__type__"]) if "__type__" in obj else None
    return restore(obj["value"]) if restore else obj


def serialize(value):
    options = {"ensure_ascii": False, "indent": None, "separators": None, "sort_keys": False}
    data = json.dumps(_prepare(value), **options).encode("utf-8")
    log.debug(f"JSON serialized: {len(data)} bytes")
    return data


def deserialize(data):
    value = json.loads(data.decode("utf-8"), object_hook=_restore)
    log.debug(f"JSON deserialized: {type(value)}")
    return value


class Node:
    """One end's counters, as the package's Publisher, Subscriber, Pusher and Puller keep."""

    def __init__(self, address="tcp://*:5557", bind=True):
        self.address, self.bind = address, bind
        self.count = 0
        self.names = set()

    def publish(self, sock, topic, message):
        data = serialize(message)
        sock.send_multipart([topic.encode("utf-8"), data])
        self.count += 1
        self.names.add(topic)
        log.debug(f"published to '{topic}': {len(data)} bytes")

    def receive_message(self, sock):
        frames = sock.recv_multipart()
        if len(frames) < 2:
            raise ValueError("message has fewer than two frames")
        topic = frames[0].decode("utf-8")
        message = deserialize(frames[1])
        self.count += 1
        log.debug(f"received from '{topic}': {len(frames[1])} bytes")
        return topic, message

    def push_task(self, sock, task_type, data, priority=0):
        task = {"type": task_type, "data": data, "priority": priority, "timestamp": time.time(),
                "task_id": f"{task_type}_{int(time.time() * 1000000)}_{self.count}"}
        task["host_info"] = {"hostname": socket.gethostname(), "pusher_address": self.address,
                             "bind_mode": self.bind}
        payload = serialize(task)
        sock.send(payload)
        self.count += 1
        self.names.add(task_type)
        log.debug(f"pushed task '{task_type}': {len(payload)} bytes")

    def pull_task(self, sock):
        payload = sock.recv()
        task = deserialize(payload)
        self.count += 1
        log.debug(f"pulled task: {len(payload)} bytes")
        if not isinstance(task, dict):
            task = {"type": "unknown", "data": task}
        if "type" not in task:
            task["type"] = "unknown"
        return task
