#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every fuzz target into fuzz/corpus/.

Seeds are valid and nearly valid inputs: the frames of docs/protocol.md as
the Python LiberZMQ and liberzmq send them, the configuration layouts of
docs/configuration.md, and the edges of each decoder (nesting limits,
number ranges, escapes, declared sizes). Seeds are named seed-*; inputs kept
from fuzzing runs (fuzzed-*) and reproducers of findings (crash-*) are left
alone (fuzz/README.md). Run from anywhere: python3 fuzz/make_corpus.py
"""
import json
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# The codec byte of a multipart input (fuzz_codec_pick: byte % 3).
JSON, MSGPACK, RAW = 0, 1, 2


# ---- a small MessagePack writer (python3-msgpack is not a build dependency) ----

def mp(value):
    """Encodes value as MessagePack; bytes as bin, str as str, float as float64."""
    if value is None:
        return b"\xc0"
    if value is True or value is False:
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack("b", value)
        if value >= 0:
            return b"\xcf" + struct.pack(">Q", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        head = bytes([0xA0 | len(data)]) if len(data) < 32 else b"\xd9" + bytes([len(data)]) if len(data) < 256 \
            else b"\xda" + struct.pack(">H", len(data))
        return head + data
    if isinstance(value, bytes):
        return b"\xc4" + bytes([len(value)]) + value
    if isinstance(value, list):
        head = bytes([0x90 | len(value)]) if len(value) < 16 else b"\xdc" + struct.pack(">H", len(value))
        return head + b"".join(mp(v) for v in value)
    if isinstance(value, dict):
        head = bytes([0x80 | len(value)]) if len(value) < 16 else b"\xde" + struct.pack(">H", len(value))
        return head + b"".join(mp(k) + mp(v) for k, v in value.items())
    raise TypeError(value)


def js(value):
    """Compact JSON as liberzmq and the Python LiberZMQ write it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def frames(codec, *parts):
    """A multipart input (fuzz_common.h): codec byte, frame count, 2-byte lengths."""
    return bytes([codec, len(parts)]) + b"".join(struct.pack(">H", len(p)) + p for p in parts)


# ---- values -------------------------------------------------------------------

SEEDS_MESSAGE = {"symbol": "BTC", "price": 43210.5, "seq": 1}
TIMESTAMP = 1763726400.123456
TASK = {"type": "resize", "priority": 0, "timestamp": TIMESTAMP,
        "task_id": "5b0c3f1e-8f0a-4c7e-9d2b-1a2b3c4d5e6f", "data": SEEDS_MESSAGE}
PYTHON_TASK = {"type": "resize", "data": {"width": 640, "height": 480, "path": "/img/\u00e9t\u00e9.png"},
               "priority": 1, "timestamp": TIMESTAMP, "task_id": "resize_1763726400123456_1",
               "host_info": {"hostname": "worker-1", "pusher_address": "tcp://127.0.0.1:5557",
                             "bind_mode": False}}
REQUEST = {"type": "add", "timestamp": TIMESTAMP, "request_id": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
           "data": {"a": 1, "b": 2}}
CALL = {"type": "call", "timestamp": TIMESTAMP, "request_id": "call-1",
        "data": {"method": "divide", "args": [1, 0], "kwargs": {}}}
ERROR_REPLY = {"status": "error", "message": "division by zero", "request_type": "divide",
               "code": "LZ_EINVAL", "error": "invalid argument"}
PONG = {"status": "ok", "pong": True, "timestamp": TIMESTAMP}
NUMBERS = [0, -1, 1.5, -1e-05, 1e16, 2.0, 9223372036854775807, -9223372036854775808,
           18446744073709551615, 1e308, 5e-324, 0.1]
STRINGS = ["", "\u00e9t\u00e9", "\U0001F600", "\x00", "\\\"/\b\f\n\r\t\x01\x1f\x7f", "a" * 80]
WIDE_OBJECT = {"k%02d" % i: i for i in range(70)}  # past LZ_KEY_SCAN_MAX: the key index


def nested(depth, innermost):
    value = innermost
    for _ in range(depth):
        value = [value]
    return value


# ---- per target ---------------------------------------------------------------

# The values both codecs' targets start from, each encoded by the codec.
CODEC_VALUES = [("message", SEEDS_MESSAGE), ("task-python", PYTHON_TASK), ("request", REQUEST),
                ("error-reply", ERROR_REPLY), ("numbers", NUMBERS), ("strings", STRINGS)]


def codec_seeds(encode):
    for name, value in CODEC_VALUES:
        yield name, encode(value)


def json_seeds():
    yield from codec_seeds(js)
    yield "escapes", b'["\\u00e9\\ud83d\\ude00\\u0000","\\/\\b\\f\\n\\r\\t","\\u007f"]'
    yield "keys", b'{"":1,"a\\u0000b":2,"a":3,"a":4,"long_key_past_inline_room":5}'
    yield "wide-object", js(WIDE_OBJECT)
    yield "depth-127", b"[" * 127 + b"]" * 127          # the deepest accepted
    yield "depth-128-empty", b"[" * 128 + b"]" * 128    # one past, innermost empty
    yield "depth-128", b"[" * 128 + b"1" + b"]" * 128
    yield "big-integer", b"[123456789012345678901234567890,-98765432109876543210]"  # yajl reads them
    yield "big-integer-then-escape", b'[18446744073709551616,"\\u00e9"]'
    yield "exponents", b"[1e400,-1e400,1e-400,1E+2,-0,-0.0,0e0]"
    yield "unpaired-surrogate", b'["\\ud800"]'
    yield "overlong-utf8", b'["\xc0\x80"]'
    yield "trailing", b'{"a":1} x'
    yield "truncated", js(REQUEST)[:-7]
    yield "trailing-comma", b"[1,2,]"
    yield "leading-zero", b"[01]"
    yield "scalars", b" true "
    yield "empty", b""


def msgpack_seeds():
    yield from codec_seeds(mp)
    yield "bytes", mp([b"", b"\x00\xff\xfe", b"x" * 40])
    yield "wide-object", mp(WIDE_OBJECT)
    yield "repeated-key", b"\x83\xa1a\x01\xa1a\x02\xa0\x03"
    yield "depth-32", mp(nested(32, 1))          # msgpack-c's limit
    yield "depth-33", mp(nested(33, 1))
    yield "float32", b"\x92\xca\x3f\xc0\x00\x00\xca\x7f\xc0\x00\x00"  # 1.5, NaN
    yield "float64-special", b"\x93\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00" \
                             b"\xcb\x80\x00\x00\x00\x00\x00\x00\x00"  # NaN, inf, -0.0
    yield "uint64-max", b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"
    yield "int-widths", b"\x96\xcc\xff\xcd\xff\xff\xce\xff\xff\xff\xff\xd0\x80\xd1\x80\x00\xd2\x80\x00\x00\x00"
    yield "str16-bin16", b"\x92\xda\x00\x03abc\xc5\x00\x02\x01\x02"
    yield "ext", b"\xd4\x01\x00"
    yield "array32-huge", b"\xdd\xff\xff\xff\xff"     # declares 4 billion values
    yield "map32-huge", b"\xdf\x7f\xff\xff\xff\xc0"
    yield "str32-past-end", b"\xdb\x00\x01\x00\x00abc"
    yield "reserved-c1", b"\xc1"
    yield "trailing", b"\x01\x02"
    yield "int-key", b"\x81\x01\x02"
    yield "nul-key", b"\x81\xa3a\x00b\x01"
    yield "bad-utf8-str", b"\xa2\xc0\x80"
    yield "empty", b""


def pubsub_seeds():
    yield "json", frames(JSON, b"prices.btc", js(SEEDS_MESSAGE))
    yield "msgpack", frames(MSGPACK, b"prices.btc", mp(SEEDS_MESSAGE))
    yield "raw", frames(RAW, b"raw.bytes", b"\x00\x01\x02\xff")
    yield "extension-frames", frames(JSON, b"prices.eth", js([1, 2]), b"application/json", b"trace=1")
    yield "topic-empty", frames(JSON, b"", b"null")
    yield "topic-3", frames(JSON, b"abc", b"1")
    yield "topic-8", frames(JSON, b"abcdefgh", b"1")        # one word exactly
    yield "topic-9", frames(JSON, b"abcdefghi", b"1")
    yield "topic-long", frames(JSON, b"prices." + b"x" * 60, b"{}")  # past the inline room
    yield "topic-utf8", frames(JSON, "prix.\u20ac.\U0001F600".encode(), b'"ok"')
    yield "topic-nul", frames(JSON, b"pri\x00ces", b"1")
    yield "topic-bad-utf8", frames(JSON, b"prices.\xc3", b"1")
    yield "topic-surrogate", frames(JSON, b"topic\xed\xa0\x80", b"1")
    yield "bad-payload", frames(JSON, b"prices.btc", b'{"symbol":')
    yield "one-frame", frames(JSON, b"prices.btc")


def task_seeds():
    yield "liberzmq", frames(JSON, js(TASK))
    yield "python", frames(JSON, js(PYTHON_TASK))
    yield "msgpack", frames(MSGPACK, mp(TASK))
    yield "raw", frames(RAW, b"resize /img/a.png")
    yield "plain-value", frames(JSON, js([1, 2, 3]))
    yield "type-not-string", frames(JSON, b'{"type":5,"data":1}')
    yield "no-data", frames(JSON, b'{"type":"stop","priority":0}')
    yield "data-null", frames(JSON, b'{"type":"stop","data":null,"priority":0,"timestamp":1763726400.5,'
                                    b'"task_id":"00000000-0000-4000-8000-000000000000"}')
    yield "type-nul", frames(JSON, b'{"type":"re\\u0000size","data":1}')
    yield "type-long", frames(JSON, js({"type": "t" * 60, "data": {}}))
    yield "priority-big", frames(JSON, b'{"type":"x","priority":9223372036854775807,"timestamp":1,"data":0}')
    yield "wrong-types", frames(MSGPACK, mp({"type": "x", "priority": 1.5, "timestamp": "now", "task_id": 7}))
    yield "two-frames", frames(JSON, js(TASK), b"")


def request_seeds():
    yield "req", frames(JSON, b"\x00\x6b\x8b\x45\x67", b"", js(REQUEST))
    yield "liberzmq-dealer", frames(JSON, b"\x00\x6b\x8b\x45\x68", REQUEST["request_id"].encode(), b"", js(REQUEST))
    yield "python-dealer", frames(JSON, b"client-7", b"req-1", js(REQUEST))
    yield "call", frames(JSON, b"id", b"", js(CALL))
    yield "action", frames(JSON, b"id", b"", b'{"action":"ping","request_id":"r1"}')
    yield "type-and-action", frames(JSON, b"id", b"", b'{"type":7,"action":"add","data":[1]}')
    yield "ping", frames(JSON, b"id", b"", b'{"type":"ping"}')
    yield "msgpack", frames(MSGPACK, b"id", b"", mp(REQUEST))
    yield "raw", frames(RAW, b"id", b"", b"add 1 2")
    yield "no-action", frames(JSON, b"id", b"", b'{"data":1}')
    yield "not-object", frames(JSON, b"id", b"", b"[1,2]")
    yield "malformed", frames(JSON, b"id", b"", b'{"type":"add",')
    yield "msgpack-malformed", frames(MSGPACK, b"id", b"", b"\xdd\xff\xff\xff\xff")
    yield "broker-hops", frames(JSON, b"hop1", b"hop2", b"id", b"", js(REQUEST))


def reply_seeds():
    request_id = REQUEST["request_id"].encode()
    yield "result", frames(JSON, request_id, b"", b"3")
    yield "python-dealer", frames(JSON, request_id, js({"sum": 3}))
    yield "pong", frames(JSON, request_id, b"", js(PONG))
    yield "error", frames(JSON, request_id, b"", js(ERROR_REPLY))
    yield "error-unicode", frames(JSON, request_id, b"", js({"status": "error", "message": "\u00e9chec \U0001F600",
                                                              "request_type": "d\u00e9"}))
    yield "error-bare", frames(JSON, request_id, b"", b'{"status":"error"}')
    yield "error-wrong-types", frames(JSON, request_id, b"", b'{"status":"error","message":1,"request_type":[]}')
    yield "msgpack-error", frames(MSGPACK, request_id, b"", mp(ERROR_REPLY))
    yield "raw", frames(RAW, request_id, b"", b"\x00raw reply\xff")
    yield "malformed", frames(JSON, request_id, b"", b'{"status":')
    yield "middle-not-empty", frames(JSON, request_id, b"x", b"3")


PYTHON_YAML = b"""# /etc/orders/liberzmq.yaml, read by the C gateway and the Python workers
zmq:
  io_threads: 2
  linger: 500
  high_water_mark: 5000
  send_timeout: 2000
  socket_timeout: 3000       # Python's name; liberzmq reads it as receive_timeout
  max_sockets: 1024
logging:
  level: INFO
  format: "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
  file_path: /var/log/orders/liberzmq.log
  max_file_size: 10485760
  backup_count: 5
  console_output: Yes
serialization:
  default: msgpack
  json_ensure_ascii: false
  json_indent: null
  protobuf_validate: true
debug: false
validate_data: off
"""

CONFIG_JSON = js({"zmq": {"io_threads": 1, "linger": 1000, "heartbeat_interval": 0, "immediate": False,
                          "max_message_size": -1, "reconnect_interval": 100, "reconnect_interval_max": 0},
                  "logging": {"level": "WARNING", "format": "json", "target": "syslog", "syslog_ident": "svc"},
                  "serialization": {"default": "json", "json_indent": 2}, "debug": True})


# ---- a small protobuf writer (the wire format of the tests/proto types) ----

def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64 as protobuf writes them
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number, wire_type, payload):
    """One field: a varint (wire type 0), fixed bytes (1, 5) or length-delimited bytes (2)."""
    tag = varint(number << 3 | wire_type)
    if wire_type == 0:
        return tag + varint(payload)
    if wire_type == 2:
        return tag + varint(len(payload)) + payload
    return tag + payload


def zigzag(n):
    return (n << 1) ^ (n >> 63)


LOCATION = field(1, 1, struct.pack("<d", 48.85)) + field(2, 1, struct.pack("<d", -2.35))
READING = b"".join([
    field(1, 2, "t-1".encode()), field(2, 1, struct.pack("<d", 21.5)), field(3, 5, struct.pack("<f", 0.1)),
    field(4, 0, -7), field(5, 0, zigzag(-3)), field(6, 0, 9007199254740993), field(7, 0, 2**64 - 1),
    field(8, 1, struct.pack("<Q", 42)), field(9, 0, 2**32 - 1), field(10, 0, 1), field(11, 0, 2),
    field(12, 2, b"\x00\xffABC"), field(13, 2, LOCATION), field(14, 2, varint(1) + varint(2) + varint(300)),
    field(15, 2, b"a"), field(15, 2, "\u00e9".encode()), field(16, 2, LOCATION), field(16, 2, b""),
    field(17, 2, field(1, 2, b"k") + field(2, 0, 5)), field(17, 2, field(1, 2, b"k") + field(2, 0, 6)),
    field(18, 2, field(1, 0, -5) + field(2, 2, LOCATION)), field(19, 2, b"dev-1"),
])


def nodes(levels):
    """A legacy.Node with levels children nested in one another."""
    node = b""
    for _ in range(levels):
        node = field(2, 2, node)
    return node


def protobuf_input(type_index, flags, payload):
    """The target's input: byte 0 picks the type (tests/proto) and the flags (fuzz_protobuf.c)."""
    return bytes([flags * 3 + type_index]) + payload


READING_T, CONFIG_T, NODE_T = 0, 1, 2
FALLBACK, DEFAULTS = 1, 2


def protobuf_seeds():
    yield "reading", protobuf_input(READING_T, 0, READING)
    yield "reading-defaults", protobuf_input(READING_T, DEFAULTS, field(4, 0, 0) + field(20, 0, 0))
    yield "reading-empty", protobuf_input(READING_T, DEFAULTS | FALLBACK, b"")
    yield "reading-unknown-enum-and-field", protobuf_input(READING_T, 0, field(11, 0, 7) + field(99, 2, b"new"))
    yield "reading-float-nan", protobuf_input(READING_T, 0, field(3, 5, struct.pack("<f", float("nan"))))
    yield "reading-not-utf8", protobuf_input(READING_T, 0, field(1, 2, b"\xff\xfe"))
    yield "reading-string-nul", protobuf_input(READING_T, 0, field(1, 2, b"a\x00b"))
    yield "reading-map-repeated-key", protobuf_input(READING_T, 0, field(18, 2, field(1, 0, 1)) * 2)
    yield "config", protobuf_input(CONFIG_T, 0, field(1, 2, b"svc") + field(2, 0, 5) + field(4, 0, 1) * 3)
    yield "config-defaults", protobuf_input(CONFIG_T, DEFAULTS, field(1, 2, b"svc"))
    yield "config-missing-required", protobuf_input(CONFIG_T, 0, field(2, 0, 5))
    yield "node-99", protobuf_input(NODE_T, 0, nodes(99))    # the deepest accepted
    yield "node-100", protobuf_input(NODE_T, 0, nodes(100))  # one past
    yield "node-3000", protobuf_input(NODE_T, FALLBACK, nodes(3000))
    yield "node-label", protobuf_input(NODE_T, DEFAULTS, field(1, 2, b"x") + field(2, 2, field(1, 2, b"y")))
    yield "fallback-json", protobuf_input(READING_T, FALLBACK, b"\xff" + js({"type": "tick", "data": [1, 2.5]}))
    yield "fallback-json-fits", protobuf_input(READING_T, FALLBACK, b"\xff" + js({"level": "5", "blob": "QUJD"}))
    yield "fallback-json-no-mark", protobuf_input(CONFIG_T, FALLBACK, js({"name": 1}))
    yield "truncated-varint", protobuf_input(READING_T, 0, b"\x20\xff")
    yield "length-past-end", protobuf_input(READING_T, 0, b"\x0a\x05ab")
    yield "group", protobuf_input(NODE_T, FALLBACK, b"\x2b\x2c")
    yield "long-varint", protobuf_input(READING_T, 0, b"\x20" + b"\xff" * 9 + b"\x01")


def config_seeds():
    yield "python-layout.yaml", PYTHON_YAML
    yield "layout.json", CONFIG_JSON
    yield "flow.yaml", b"zmq: {linger: 100, io_threads: 2, max_sockets: 10}\nlogging: {level: warn, target: none}\n"
    yield "nulls.yaml", b"zmq:\nlogging:\n  file_path: ~\n  syslog_ident: 'null'\nserialization: {json_indent: }\n"
    yield "anchors.yaml", b"base: &b {linger: 5}\nzmq: *b\n"
    yield "aliases.yaml", b"zmq: &z\n  linger: 5\nlogging: *z\n"
    yield "quoted.yaml", b"logging:\n  file_path: \"/tmp/l\\u00e9g.log\\t\\x7f\"\n  format: '%(message)s'\n"
    yield "target-file.yaml", b"logging:\n  target: FILE\n  file_path: /tmp/lz.log\n  max_file_size: 0\n"
    yield "target-file-no-path.yaml", b"logging: {target: file}\n"
    yield "backoff-below.yaml", b"zmq: {reconnect_interval: 500, reconnect_interval_max: 100}\n"
    yield "max-message-0.yaml", b"zmq: {max_message_size: 0}\n"
    yield "ranges.yaml", b"zmq: {heartbeat_interval: 715827882, hwm_inbound: -1, linger: -1}\n"
    yield "debug-level.yaml", b"debug: true\nlogging: {level: error}\n"
    yield "unknown-key.yaml", b"zmq:\n  linger: 50\n  bogus: 1\n"
    yield "bad-int.yaml", b"zmq:\n  linger: 10ms\n"
    yield "out-of-range.yaml", b"zmq: {io_threads: 0}\n"
    yield "list-value.yaml", b"zmq: {linger: [1, 2]}\n"
    yield "top-list.yaml", b"- zmq\n- logging\n"
    yield "section-scalar.yaml", b"zmq: 5\n"
    yield "complex-key.yaml", b"? [a, b]\n: 1\n"
    yield "two-documents.yaml", b"zmq: {linger: 1}\n---\nzmq: {linger: 2}\n"
    yield "tab-indent.yaml", b"zmq:\n\tlinger: 5\n"
    yield "bad-utf8.yaml", b"logging: {file_path: \"\xc3\x28\"}\n"
    yield "empty.yaml", b""
    yield "nested-32.yaml", b"retries: " + b"[" * 31 + b"]" * 31 + b"\n"  # the deepest parsed
    yield "nested-33.yaml", b"retries: " + b"[" * 32 + b"]" * 32 + b"\n"  # refused before it is built


# ---- JSON Schema ----------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READING_SCHEMA = {"type": "object", "required": ["sensor_id", "value"],
                  "properties": {"sensor_id": {"type": "string", "pattern": "^[a-z]+-[0-9]+$"},
                                 "value": {"type": "number", "minimum": -50, "maximum": 150},
                                 "tags": {"type": "array", "items": {"type": "string"}}},
                  "additionalProperties": False}
TREE_SCHEMA = {"$defs": {"node": {"type": "object", "properties": {"children": {
    "type": "array", "items": {"$ref": "#/$defs/node"}}}}}, "$ref": "#/$defs/node"}


def schema_input(schema, instance):
    """A schema target input: the schema text's 2-byte length, the text, the instance bytes."""
    text = schema if isinstance(schema, bytes) else js(schema)
    return struct.pack(">H", len(text)) + text + instance


def nested_schema(depth, keyword):
    schema = True
    for _ in range(depth):
        schema = {keyword: schema}
    return schema


def suite_seeds():
    """One case of each group of tests/schema/draft2020-12.json (the suite's format), in turn a valid and an
    invalid one where the group has both."""
    with open(os.path.join(ROOT, "tests", "schema", "draft2020-12.json"), encoding="utf-8") as f:
        groups = json.load(f)
    for i, group in enumerate(groups):
        tests = group["tests"]
        wanted = [t for t in tests if t["valid"] == (i % 2 == 0)] or tests
        yield "suite-%02d" % i, schema_input(group["schema"], js(wanted[0]["data"]))


def schema_seeds():
    yield from suite_seeds()
    yield "reading-valid", schema_input(READING_SCHEMA, js({"sensor_id": "t-1", "value": 21.5, "tags": ["a"]}))
    yield "reading-invalid", schema_input(READING_SCHEMA, js({"sensor_id": "t-1", "value": -80}))
    yield "reading-msgpack", schema_input(READING_SCHEMA, mp({"sensor_id": "t-1", "value": 3, "tags": [b"x"]}))
    yield "tree-deep", schema_input(TREE_SCHEMA, b'{"children":[' * 60 + b"{}" + b"]}" * 60)
    yield "ref-cycle", schema_input({"$ref": "#"}, b"1")
    yield "ref-cycle-quiet", schema_input({"anyOf": [{"$ref": "#"}, True]}, b"1")
    yield "ref-escapes", schema_input({"$defs": {"a/b": {"type": "integer"}, "c~d": {"minimum": 2},
                                                 "%e": {"maximum": 9}},
                                       "allOf": [{"$ref": "#/$defs/a~1b"}, {"$ref": "#/$defs/c~0d"},
                                                 {"$ref": "#/$defs/%25e"}]}, b"5")
    yield "ref-pending", schema_input({"properties": {"a": {"$ref": "#/x/0"}}, "x": [{"$ref": "#/x/1"}, False]},
                                      b'{"a":1}')
    yield "draft07-ref-siblings", schema_input({"$schema": "http://json-schema.org/draft-07/schema#",
                                                "definitions": {"n": {"type": "number"}},
                                                "$ref": "#/definitions/n", "maximum": 0}, b"5")
    yield "depth-128", schema_input(nested_schema(127, "not"), b"null")
    yield "depth-129", schema_input(nested_schema(128, "items"), b"[[[]]]")
    yield "pattern-backtracking", schema_input({"pattern": "^(a+)+$"}, js("a" * 3000 + "b"))
    yield "pattern-properties-backtracking", schema_input({"patternProperties": {"^(a|aa)*$": False}},
                                                          js({"a" * 2000 + "!": 1}))
    yield "pattern-ecma", schema_input({"patternProperties": {"^\\u0041[^]\\x42$": {"const": 1}, "[]": False},
                                        "propertyNames": {"pattern": "\\u{1F4A9}|^[A-Z]", "maxLength": 4}},
                                       js({"A\u00e9B": 1, "\U0001F4A9": 2}))
    yield "formats", schema_input({"properties": {f: {"format": f} for f in
                                                  ["date-time", "email", "ipv4", "uri", "regex", "uuid"]}},
                                  js({"date-time": "x", "email": "@", "ipv4": "1.2.3", "uri": ":", "regex": "[",
                                      "uuid": 1}))
    yield "numbers", schema_input({"items": {"multipleOf": 0.01, "exclusiveMinimum": -1e308,
                                             "maximum": 9223372036854775807}}, js(NUMBERS[:6] + [19.99]))
    yield "unique-across-types", schema_input({"uniqueItems": True}, b'[1,1.0,{"a":[1]},{"a":[1.0]}]')
    yield "logic", schema_input({"oneOf": [{"type": "string"}, {"maxLength": 2}], "not": {"const": "ab"},
                                 "if": {"minLength": 1}, "then": {"pattern": "b"}, "else": False}, js("bb"))
    yield "dependencies", schema_input({"dependencies": {"a": ["b"], "b": {"required": ["c"]}},
                                        "dependentRequired": {"c": ["a\u0000z"]}}, js({"a": 1, "b": 2, "c": 3}))
    yield "bad-minimum", schema_input({"properties": {"age": {"minimum": "0"}}}, b"{}")
    yield "bad-regex", schema_input({"pattern": "[a"}, b'"a"')
    yield "bad-ref", schema_input({"items": {"$ref": "#/$defs/b"}}, b"[]")
    yield "remote-ref", schema_input({"$ref": "http://example.com/s.json"}, b"1")
    yield "anchor-ref", schema_input({"$defs": {"a": {"$anchor": "n"}}, "$ref": "#n"}, b"1")
    yield "id-ref", schema_input({"$defs": {"a": {"$id": "http://x/a", "$ref": "#"}}}, b"1")
    yield "dynamic-ref", schema_input({"$dynamicRef": "#meta"}, b"1")
    yield "not-json", schema_input(b'{"type": ', b"1")
    yield "boolean-schema", schema_input(b"false", b"[]")


TARGETS = {"json": json_seeds, "msgpack": msgpack_seeds, "protobuf": protobuf_seeds, "pubsub": pubsub_seeds,
           "task": task_seeds, "request": request_seeds, "reply": reply_seeds, "config": config_seeds,
           "schema": schema_seeds}


def main():
    for target, seeds in TARGETS.items():
        directory = os.path.join(CORPUS, target)
        os.makedirs(directory, exist_ok=True)
        for name, data in seeds():
            with open(os.path.join(directory, "seed-" + name), "wb") as out:
                out.write(data)


if __name__ == "__main__":
    main()
