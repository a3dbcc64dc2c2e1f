#!/usr/bin/python3
"""Interop: a pyzmq peer with protoc's Python classes (tests/proto/sensor.proto,
generated into the build tree, found through PYTHONPATH) and a liberzmq node
using the protobuf serializer. argv: <liberzmq PUB endpoint> <liberzmq SUB
endpoint>. Receives a demo.Reading on topic "sensor.c" and checks its fields,
then publishes its own Reading on "sensor.py" until liberzmq answers on
"sensor.done". Exits 0 if all went right, 1 otherwise (or after 10 s)."""
import sys
import time

import zmq

import sensor_pb2


def fail(why):
    print("protobuf_pubsub.py: " + why, file=sys.stderr)
    return 1


def check(reading):
    want = [("sensor_id", "t-1"), ("value", 21.5), ("level", -7), ("delta", -3), ("count", 9007199254740993),
            ("serial", 2**64 - 1), ("mask", 42), ("flags", 2**32 - 1), ("ok", True), ("unit", sensor_pb2.KELVIN),
            ("blob", b"\x00\x01\x02\xff"), ("samples", [1, -2, 3]), ("tags", ["a", "b"]), ("device", "probe")]
    for name, value in want:
        got = getattr(reading, name)
        if list(got) != value if isinstance(value, list) else got != value:
            return "%s is %r, want %r" % (name, got, value)
    if abs(reading.ratio - 0.1) > 1e-7 or (reading.where.lat, reading.where.lon) != (48.1, 11.5):
        return "ratio or where wrong: %r %r" % (reading.ratio, reading.where)
    if [(p.lat, p.lon) for p in reading.path] != [(1.0, 0.0), (0.0, 0.0)]:
        return "path is %r" % (reading.path,)
    if dict(reading.counts) != {"x": 1, "y": -2} or sorted(reading.stations) != [-1, 7] \
            or reading.stations[7].lat != 2.5 or reading.WhichOneof("source") != "device":
        return "maps or oneof wrong: %r" % (reading,)
    return None


def ours():
    reading = sensor_pb2.Reading(sensor_id="py-7", ratio=0.25, count=-5, serial=2**64 - 2, unit=sensor_pb2.CELSIUS,
                                 blob=b"\xff\x00", tags=["\u00e9t\u00e9"], channel=3)
    reading.where.lat = -33.9
    reading.counts["z"] = 26
    return reading.SerializeToString()


def main():
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    pub = ctx.socket(zmq.PUB)
    for s in (sub, pub):
        s.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"sensor.")
    sub.connect(sys.argv[1])
    pub.connect(sys.argv[2])
    deadline = time.monotonic() + 10
    got_reading = False
    try:
        while time.monotonic() < deadline:
            if got_reading:
                pub.send_multipart([b"sensor.py", ours()])
            if not sub.poll(20):
                continue
            frames = sub.recv_multipart()
            if len(frames) != 2:
                return fail("expected 2 frames, got %r" % (frames,))
            if frames[0] == b"sensor.done":
                return 0 if got_reading else fail("done before any reading")
            reading = sensor_pb2.Reading()
            reading.ParseFromString(frames[1])
            why = check(reading)
            if why:
                return fail(why)
            got_reading = True
        return fail("timed out (reading received: %s)" % got_reading)
    finally:
        sub.close()
        pub.close()
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
