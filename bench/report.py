#!/usr/bin/python3
"""Writes BENCHMARKS.md (on stdout) from the JSON lines scripts/bench.sh
collected: medians over the repetitions, ratios against raw libzmq and the
peers, and which of the issue's targets are met.
usage: report.py RESULTS.jsonl "nproc=2; cpu=...; kernel=...; date=...; reps=3; seconds=0.4" """
import json
import statistics
import sys
from collections import defaultdict

SIZES = (16, 256, 4096, 65536)
TRANSPORTS = ("tcp", "ipc", "inproc")


def placement(r):
    """Where a result's ends ran: True (every thread on CPU 0, --pin),
    "spread" (each process on its own CPU, --spread) or False (unpinned)."""
    return "spread" if r.get("spread") else r.get("pinned", False)


def load(path):
    """Groups result lines by (contender, pattern, transport, size, placement)."""
    groups = defaultdict(list)
    versions = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            versions[r["contender"]] = r.get("version", "")
            # "as": the name scripts/bench.sh ran it under (liberzmq-40 and
            # liberzmq-frame are liberzmq runs at other sizes)
            key = (r.get("as", r["contender"]), r["pattern"], r["transport"], r["size"], placement(r))
            groups[key].append(r)
    return groups, versions


class Results:
    def __init__(self, groups):
        self.groups = groups

    def median(self, field, contender, pattern, transport, size, where=False):
        rows = self.groups.get((contender, pattern, transport, size, where), [])
        values = [r[field] for r in rows if field in r]
        return statistics.median(values) if values else None

    def paired_ratios(self, field, a, b, pattern, transport, size, where=False, size_b=None):
        """a's figure over b's, one ratio per repetition both have."""
        rows_a = self.groups.get((a, pattern, transport, size, where), [])
        rows_b = self.groups.get((b, pattern, transport, size if size_b is None else size_b, where), [])
        by_rep = {r.get("rep", i): r for i, r in enumerate(rows_b)}
        pairs = [(x.get(field), by_rep.get(x.get("rep", i), {}).get(field)) for i, x in enumerate(rows_a)]
        return [x / y for x, y in pairs if x and y]

    def paired_ratio(self, field, a, b, pattern, transport, size, where=False, size_b=None):
        """Median over repetitions of a's figure over b's from the same
        repetition: contenders measured seconds apart share the VM's drift,
        which the ratio of two medians would not cancel. Results carry their
        repetition ("rep", from scripts/bench.sh); older result files without
        it pair in run order. where is a placement (see placement())."""
        values = self.paired_ratios(field, a, b, pattern, transport, size, where, size_b)
        return statistics.median(values) if values else None

    def count(self, contender, pattern, transport, size, where=False):
        return len(self.groups.get((contender, pattern, transport, size, where), []))


def rate(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e3:
        return "%.0fk" % (v / 1e3)
    return "%.0f" % v


def ratio(v):
    return "-" if v is None else "%.2f" % v


def mbs(v):
    return "-" if v is None else "%.0f" % v if v >= 10 else "%.1f" % v


class Targets:
    """Collects each target check, met or missed, for the summary."""

    def __init__(self):
        self.checks = []

    def check(self, what, value, goal, higher_is_better=True):
        if value is None:
            self.checks.append((what, None, goal, None))
            return "?"
        ok = value >= goal if higher_is_better else value <= goal
        self.checks.append((what, value, goal, ok))
        return "yes" if ok else "**no**"


def json_size(res, contender="liberzmq-json", pattern=None):
    """The size of contender's JSON messages (the seeds' message) in
    pattern's rows, or in any throughput row when pattern is None; 40 B when
    none was measured."""
    sized = (k[3] for k in res.groups
             if k[0] == contender and (k[1] == pattern if pattern else k[1] in ("pushpull", "pubsub")))
    return next(sized, 40)


def cell_size(res, contender, pattern, transport, where=False):
    """The size contender ran at in one cell (liberzmq-frame's is the frame
    liberzmq JSON sent there), or None."""
    return next((k[3] for k in res.groups if k[0] == contender and k[1:3] == (pattern, transport)
                 and k[4] == where), None)


def frame_cells(res, p, t, where=False):
    """The frame comparison of a JSON row: liberzmq raw at the size of the
    frame liberzmq JSON sends (its task envelope, or its pub/sub payload),
    and JSON over it; these isolate the codec from the envelope's bytes."""
    frame = cell_size(res, "liberzmq-frame", p, t, where)
    if frame is None:
        return ["-", "-", "-"]
    vs = res.paired_ratio("msgs_per_sec", "liberzmq-json", "liberzmq-frame", p, t, json_size(res, pattern=p), where,
                          size_b=frame)
    return ["%d B" % frame, rate(res.median("msgs_per_sec", "liberzmq-frame", p, t, frame, where)), ratio(vs)]


def throughput_table(res, pattern, targets):
    out = ["| transport | size | raw libzmq msg/s | liberzmq msg/s | liberzmq MB/s | vs raw (>= 0.95) "
           "| CZMQ msg/s | vs CZMQ | nng msg/s | vs nng | pyzmq msg/s | vs pyzmq | targets met |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in TRANSPORTS:
        for s in SIZES:
            m = {c: res.median("msgs_per_sec", c, pattern, t, s) for c in ("raw", "liberzmq", "czmq", "nng", "pyzmq")}
            r = {c: res.paired_ratio("msgs_per_sec", "liberzmq", c, pattern, t, s) for c in ("raw", "czmq", "nng", "pyzmq")}
            name = "%s %s %d B" % (pattern, t, s)
            ok = [targets.check(name + ": liberzmq / raw libzmq", r["raw"], 0.95)]
            for peer in ("czmq", "nng"):
                if m[peer]:
                    ok.append(targets.check(name + ": liberzmq / " + peer, r[peer], 1.0))
            met = "yes" if all(x == "yes" for x in ok) else "**no**"
            out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                t, s, rate(m["raw"]), rate(m["liberzmq"]), mbs(res.median("mb_per_sec", "liberzmq", pattern, t, s)),
                ratio(r["raw"]), rate(m["czmq"]), ratio(r["czmq"]), rate(m["nng"]),
                ratio(r["nng"]), rate(m["pyzmq"]), ratio(r["pyzmq"]), met))
    return out


def json_table(res, targets):
    out = ["| pattern | transport | liberzmq JSON msg/s | pyzmq + json msg/s | vs pyzmq+json (>= 10) "
           "| Python LiberZMQ msg/s | vs Python LiberZMQ (>= 10) | liberzmq raw 40 B msg/s | JSON / raw (>= 0.5) "
           "| frame on the wire | liberzmq raw of the frame's size msg/s | JSON / raw of the frame's size |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in ("pushpull", "pubsub"):
        for t in TRANSPORTS:
            size = json_size(res, pattern=p)
            cells = [p, t, rate(res.median("msgs_per_sec", "liberzmq-json", p, t, size))]
            for peer, label, goal in (("pyzmq-json", "liberzmq / pyzmq+json", 10),
                                      ("python-liberzmq", "liberzmq / Python LiberZMQ", 10),
                                      ("liberzmq-40", "JSON / liberzmq raw", 0.5)):
                vs = res.paired_ratio("msgs_per_sec", "liberzmq-json", peer, p, t, size)
                targets.check("JSON %s %s: %s" % (p, t, label), vs, goal)
                cells += [rate(res.median("msgs_per_sec", peer, p, t, size)), ratio(vs)]
            cells += frame_cells(res, p, t)
            out.append("| " + " | ".join(cells) + " |")
    return out


def spread_tables(res):
    """The tcp and ipc rows again with each process on its own CPU: the
    judged pairs only, each ratio with its range over the repetitions."""
    def with_range(a, b, p, t, size):
        values = res.paired_ratios("msgs_per_sec", a, b, p, t, size, "spread")
        return "%.2f (%.2f-%.2f)" % (statistics.median(values), min(values), max(values)) if values else "-"

    def med(contender, p, t, size):
        return rate(res.median("msgs_per_sec", contender, p, t, size, "spread"))

    raw = ["| pattern | transport | size | raw libzmq msg/s | liberzmq msg/s | liberzmq / raw (range) |",
           "|---|---|---|---|---|---|"]
    js = ["| pattern | transport | liberzmq JSON msg/s | liberzmq raw 40 B msg/s | JSON / raw (range) "
          "| pyzmq + json msg/s | vs pyzmq+json (range) | frame on the wire | liberzmq raw of the frame's size msg/s "
          "| JSON / raw of the frame's size |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    size = json_size(res)
    for p in ("pushpull", "pubsub"):
        for t in ("tcp", "ipc"):
            for s in SIZES:
                raw.append("| %s | %s | %d | %s | %s | %s |" % (
                    p, t, s, med("raw", p, t, s), med("liberzmq", p, t, s), with_range("liberzmq", "raw", p, t, s)))
            js.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                p, t, med("liberzmq-json", p, t, size), med("liberzmq-40", p, t, size),
                with_range("liberzmq-json", "liberzmq-40", p, t, size), med("pyzmq-json", p, t, size),
                with_range("liberzmq-json", "pyzmq-json", p, t, size), " | ".join(frame_cells(res, p, t, "spread"))))
    return raw + ["", "JSON messages (the seeds' message, %d B), spread the same way:" % size, ""] + js


def proxy_table(res):
    """lz_proxy against zmq_proxy_steerable, raw ends on both (bench_proxy.c):
    the measured cells only, or a line saying none were (older results)."""
    cells = sorted({(k[2], k[3]) for k in res.groups if k[0] in ("proxy-liberzmq", "proxy-raw") and k[1] == "pubsub"},
                   key=lambda c: (TRANSPORTS.index(c[0]) if c[0] in TRANSPORTS else len(TRANSPORTS), c[1]))
    if not cells:
        return ["No proxy rows were measured in this run."]
    out = ["| transport | size | lz_proxy msg/s | zmq_proxy_steerable msg/s | lz_proxy / zmq_proxy_steerable |",
           "|---|---|---|---|---|"]
    for t, s in cells:
        out.append("| %s | %d | %s | %s | %s |" % (
            t, s, rate(res.median("msgs_per_sec", "proxy-liberzmq", "pubsub", t, s)),
            rate(res.median("msgs_per_sec", "proxy-raw", "pubsub", t, s)),
            ratio(res.paired_ratio("msgs_per_sec", "proxy-liberzmq", "proxy-raw", "pubsub", t, s))))
    return out


LAT = ("raw", "liberzmq", "liberzmq-json", "czmq", "nng", "pyzmq", "pyzmq-json")


def latency_table(res, targets):
    out = ["| transport | pinned | " + " | ".join("%s p50 / p99 / mean us" % c for c in LAT) +
           " | raw p50 / liberzmq p50 (>= 0.91, i.e. liberzmq <= 1.1x raw) |",
           "|---|---|" + "---|" * len(LAT) + "---|"]
    for t in ("tcp", "ipc"):
        for pinned in (True, False):
            cells = []
            for c in LAT:
                size = json_size(res, c, "reqrep") if c.endswith("json") else 16
                p50 = res.median("p50_us", c, "reqrep", t, size, pinned)
                p99 = res.median("p99_us", c, "reqrep", t, size, pinned)
                mean = res.median("mean_us", c, "reqrep", t, size, pinned)
                cells.append("-" if p50 is None else "%.1f / %.0f / %s" % (p50, p99, "-" if mean is None else
                                                                          "%.1f" % mean))
            # higher is better, as lz bench prints
            value = res.paired_ratio("p50_us", "raw", "liberzmq", "reqrep", t, 16, pinned)
            if pinned:  # the issue judges latency on the pinned figures
                targets.check("reqrep %s pinned: raw p50 / liberzmq p50" % t, value, 1 / 1.1)
            out.append("| %s | %s | %s | %s |" % (t, "yes" if pinned else "no", " | ".join(cells),
                                                   "-" if value is None else "%.2f" % value))
    return out


def memory_table(res):
    out = ["| contender | RSS at start KiB | idle (2 sockets, connected) KiB | after load KiB | peak KiB | idle - start KiB "
           "| of it anonymous (heap, stacks) KiB |",
           "|---|---|---|---|---|---|---|"]
    for c in LAT:
        rows = [r for k, v in res.groups.items() if k[0] == c and k[1] == "memory" for r in v]
        if not rows:
            continue
        med = lambda f: statistics.median(r[f] for r in rows)
        # Results from before the anonymous part was recorded have no such field.
        anon = [r["rss_anon_idle_kb"] - r["rss_anon_start_kb"] for r in rows if "rss_anon_idle_kb" in r]
        out.append("| %s | %d | %d | %d | %d | %d | %s |" % (c, med("rss_start_kb"), med("rss_idle_kb"),
                                                             med("rss_loaded_kb"), med("rss_peak_kb"),
                                                             med("rss_idle_kb") - med("rss_start_kb"),
                                                             "%d" % statistics.median(anon) if anon else "-"))
    return out


SPREAD_NOTE = """\
The throughput rows over tcp and ipc again, with the receiving process pinned to CPU 0 and the
sending one to CPU 1 (`--spread`), each with its libzmq I/O thread, for the pairs the targets
are judged on, each ratio with its range over the repetitions. Unpinned, the scheduler sometimes
runs both busy ends on one CPU and sometimes not, so single runs of the same program swing about
2x and a cell's ratio is a draw between those modes. Spread, a 16 B cell's ratios mostly span under
0.2, so a real difference of that size shows there; larger messages still swing, less. Each end has one
CPU for its own thread and its I/O thread, so one end's CPU time per message sets the pace (the
receiver's, for liberzmq at 16 B). The targets above are judged on the unpinned tables, as in
every earlier run; this table is not judged."""

PROXY_NOTE = """\
liberzmq's forwarder (`lz_proxy`, its own loop) against libzmq's `zmq_proxy_steerable`, each between
the same raw libzmq PUB and SUB in one process (`bench/bench_proxy.c`; see Method): the ends are
equal, so the ratio isolates the forwarding loop. Higher is better; not judged."""

METHOD = """\
## Method

- One harness (`bench/harness.c`, mirrored by `bench/bench_pyzmq.py`) drives every contender with the
  same arguments; each contender is a small program (`bench/bench_*.c`) that only makes library calls.
  `scripts/bench.sh` runs each row's contenders one after the other, {reps} repetitions. The pair a
  row's main ratio is judged on (raw libzmq and liberzmq; in the JSON rows liberzmq JSON and liberzmq
  raw 40 B) always runs back to back, in alternating order, and the pair's place among the other
  contenders rotates. Figures are the **median** of the repetitions; every ratio is the median of the
  ratios of the same repetition (contenders of a row run seconds apart, so they share most of the
  VM's drift, which throughput shows at 10-50% between runs and up to 2-3x between minutes). Compare
  ratios within a row, not absolute figures across rows.
- **Throughput** is one-way: the receiver times from the first data message to the last one, each
  measurement lasting at most {seconds} s. The sender first sends one warm-up message per millisecond
  until the receiver has one (a subscriber joins late). Over tcp and ipc the sender is a separate
  process for every contender (`--processes 2`: forked before either end exists), as two services
  on one machine are, each with its own libzmq context and I/O thread; over inproc the two ends are
  threads of one process. (Until the thirteenth run the C contenders ran both ends as threads of one
  process over tcp and ipc too, sharing one I/O thread, while pyzmq, which must not share a GIL,
  already used two processes, so JSON rows against pyzmq were not like for like. With a process and
  an I/O thread per end, raw libzmq's 16 B and 256 B rows ran 1.2-2.6x their one-process figures
  of the twelfth run, 4 KiB and 64 KiB ones 0.44-1.0x; four busy threads on two vCPUs also make
  single cells noisier.) Push/pull sends one frame; pub/sub sends `[topic, payload]` (topic `bench`) for
  libzmq, liberzmq, CZMQ and pyzmq, and `bench` + payload as one message for nng, which has no
  multipart. Publishers use `ZMQ_XPUB_NODROP`, so a full high water mark (1000, the default, for every
  contender) makes them wait instead of dropping and pub/sub measures delivered messages with flow
  control, like push/pull; nng has no such option (its queues are set to 1000 messages) and drops.
- What each contender does per message: raw libzmq `zmq_send` of the buffer and `zmq_msg_recv` into a
  reused `zmq_msg_t`; liberzmq `lz_push_send_bytes` / `lz_pub_publish_bytes`, and below 4 KiB
  `lz_pull_recv_bytes` / `lz_sub_recv_bytes` into a reused buffer (a copy), from 4 KiB on `lz_pull_recv` /
  `lz_sub_recv` with the raw codec + `lz_message_destroy`, which keep the frame libzmq received without
  one (all sizes until the sixteenth run, the copy at all sizes from then until the twenty-third); CZMQ `zframe_new` + `zframe_send`,
  `zframe_recv` + `zframe_destroy`; nng `nng_send` and `nng_recv(NNG_FLAG_ALLOC)` + `nng_free`;
  pyzmq `send`/`send_multipart` and `recv_multipart`.
- **JSON** rows send the seeds' message `{{"symbol":"BTC","price":43210.5,"seq":i}}` built per message:
  liberzmq builds an `lz_value_t` and calls `lz_push_send` (liberzmq's task envelope: type, priority,
  timestamp and a UUID task_id) or `lz_pub_publish`, and the receiver gets it decoded. Two Python
  contenders, both on pyzmq: **pyzmq + json** is the least a Python service pays, `json.dumps` of the
  message (pub/sub) or of the same envelope (`uuid4`, `time.time()`) and `json.loads` on receipt;
  **Python LiberZMQ** repeats what the Python LiberZMQ 1.0.0 does per message (`bench/python_liberzmq.py`):
  its JSON serializer (a walk converting tagged types, `json.dumps` with its keyword arguments,
  `json.loads` with its object hook), its task envelope (with `host_info` and `socket.gethostname()`
  per task) and its per-call counters and debug-log formatting, without its typeguard argument checks
  (so it errs on the fast side). "liberzmq raw 40 B" is liberzmq raw bytes of the same size, measured in
  the same row (interleaved with the JSON contenders), for the JSON / raw ratio. The last columns
  measure liberzmq raw bytes of the size of the frame liberzmq JSON puts on the wire in that row (the
  task envelope, about 160 B, which the Python LiberZMQ's wire format fixes; the pub/sub payload is
  the message itself), from a short run's `frame_bytes` just before the row: libzmq's own cost grows
  with the frame, so JSON over raw of the frame's size is what the codec costs apart from the
  envelope's bytes. It is shown, not judged.
- **Latency**: request/reply round trips (16 B payload), 100 warm-up round trips, then up to 20000
  (or {seconds} s), p50, p99 and the mean (a slow mode that only some round trips fall into shows in
  the mean before it reaches p50). Raw libzmq, CZMQ and nng use REQ/REP echo servers on a thread (pyzmq:
  a process); liberzmq uses `lz_client_request` against an `lz_server` whose `echo` action returns the
  request's data (a 16-character string, in the JSON envelope of docs/protocol.md; liberzmq-json sends
  the seeds' message). The liberzmq server runs with `zmq.handler_max_concurrency` 1, so its
  handler runs on the server's I/O thread like a REP socket's loop (with more, each request also
  crosses to a worker thread and back). A wake-up on the other vCPU costs about 100 us on this VM and swamps every
  library, so latency is measured twice: unpinned, and with every thread of both ends on CPU 0
  (`--pin`: `sched_setaffinity` before the sockets exist, as `taskset -c 0`). Judge on the pinned rows.
- **Memory**: RSS of one process holding a connected push/pull pair over tcp (`/proc/self/status`):
  at start, idle after one message, after a {seconds} s load of 256 B messages (liberzmq-json and
  pyzmq-json: of the seeds' 40 B message), and the peak (VmHWM).
  Python's interpreter is most of its start figure. Most of the idle growth is pages of the shared
  libraries' code touched for the first time; the last column is its anonymous part (`RssAnon`: heap
  and thread stacks, not shared with other processes). liberzmq's includes the connection monitor behind
  its connection metrics (a thread per context and an inproc socket pair per node).
- A contender run that fails is logged by `scripts/bench.sh` and leaves a gap in its cell (ratios pair
  results by repetition, so the other pairs stay matched): nng pub/sub sometimes delivers nothing
  within the 5 s join time (about one run in ten). libzmq 4.3.4 aborts with `Resource temporarily
  unavailable (src/session_base.cpp:260)` when a publisher is closed while its subscriber's
  connection drops and its session is half way through a `[topic, payload]` message; so after
  each measurement the harness stops the sender and receives what is still queued before any
  socket closes.
- **Proxy** rows measure one-way pub/sub throughput as above, through a forwarder, with sender,
  forwarder and receiver as threads of one process over every transport (tcp and ipc too, unlike
  the throughput tables): a raw libzmq PUB and SUB at the ends for both contenders, `lz_proxy`
  (`bench_proxy --proxy liberzmq`) or `zmq_proxy_steerable` with a PAIR control socket, stopped
  with `TERMINATE` (`--proxy raw`), in the middle. The two run back to back in alternating order
  like every row's pair; the ratio is lz_proxy's msg/s over zmq_proxy_steerable's, paired by
  repetition. liberzmq's loop also looks at each message's sender for a guarded socket (none is
  guarded here) and answers commands while a destination is full.
- `lz bench pushpull|pubsub|reqrep` runs the liberzmq and raw libzmq parts of this harness, both
  ends in one process (with `--processes 2` the sender in a forked one, as above), and prints
  their ratio (`--json` for JSON lines).
- Why the figures are what they are (instructions and system calls per message, from callgrind and
  strace), what was done about them and what is left: [docs/performance.md](docs/performance.md).
"""


def machine_section(machine, versions):
    fields = dict(kv.split("=", 1) for kv in (p.strip() for p in machine.split(";")) if "=" in kv)
    lines = ["## Machine", "",
             "- %s vCPU, %s, Linux %s, %s" % (fields.get("nproc", "?"), fields.get("cpu", "?"),
                                             fields.get("kernel", "?"), fields.get("os", "?")),
             "- libzmq %s, liberzmq %s, CZMQ %s, nng %s, pyzmq %s (Python %s)" % (
                 versions.get("raw", "?"), versions.get("liberzmq", "?"), versions.get("czmq", "-"),
                 versions.get("nng", "-"), versions.get("pyzmq", "-"), fields.get("python", "?")),
             "- run %s, %s repetitions per row, %s s per measurement" % (
                 fields.get("date", "?"), fields.get("reps", "?"), fields.get("seconds", "?")), ""]
    return lines, fields


def summary(targets):
    met = [c for c in targets.checks if c[3]]
    missed = [c for c in targets.checks if c[3] is False]
    unknown = [c for c in targets.checks if c[3] is None]
    out = ["## Targets", "",
           "%d of %d checks met, %d missed, %d not measured." % (len(met), len(targets.checks), len(missed), len(unknown)),
           ""]
    if missed:
        out += ["Missed:", ""]
        out += ["- %s: %.2f (goal >= %.2f)" % (w, v, g) for w, v, g, _ in missed]
        out.append("")
    return out


def main():
    groups, versions = load(sys.argv[1])
    res = Results(groups)
    targets = Targets()
    machine, fields = machine_section(sys.argv[2] if len(sys.argv) > 2 else "", versions)
    body = []
    for pattern, title in (("pushpull", "Push/pull throughput, raw bytes"), ("pubsub", "Pub/sub throughput, raw bytes")):
        body += ["## " + title, "", *throughput_table(res, pattern, targets), ""]
    body += ["## JSON messages (the seeds' message, %s B)" % json_size(res), "", *json_table(res, targets), ""]
    if any(k[4] == "spread" for k in groups):
        body += ["## Each process on its own CPU (tcp and ipc)", "", SPREAD_NOTE, "", *spread_tables(res), ""]
    body += ["## Proxy (pub/sub through a forwarder)", "", PROXY_NOTE, "", *proxy_table(res), ""]
    body += ["## Request/reply latency, 16 B", "", *latency_table(res, targets), ""]
    body += ["## Memory (RSS)", "", *memory_table(res), ""]
    head = ["# liberzmq benchmarks", "",
            "Generated by `scripts/bench.sh` (`make bench`); do not edit by hand. Ratios are liberzmq "
            "over the other contender, and for latency raw libzmq p50 over liberzmq p50: higher is "
            "better everywhere.", ""]
    print("\n".join(head + machine + summary(targets) + body +
                    [METHOD.format(reps=fields.get("reps", "?"), seconds=fields.get("seconds", "?"))]))


if __name__ == "__main__":
    main()
