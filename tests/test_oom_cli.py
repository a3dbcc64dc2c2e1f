#!/usr/bin/python3
"""lz when memory runs out. Each case runs one lz command under the
LD_PRELOAD shim tests/oom_preload.c: first with nothing failing, to count
its allocations, then with its Nth allocation failing, for N sampled
evenly from 1 to that count (LZ_OOM_ALL=1: every N). Its peers are lz
processes without the shim. Whatever N, lz must (docs/lz.md, exit codes):
end by itself, killed by no signal, within a bound; print only whole lines,
each a line its output may hold; and either succeed with the whole,
right result (no message lost), or exit 7 (out of memory) with one line on
stderr saying so. Cases whose memory is mapped rather than allocated are
also run under ceilings on their address space (Ceiling), which fail what
the shim cannot. LZ_OOM_ONLY="NAME..." runs only those cases,
LZ_OOM_SAMPLES=K samples K Ns (24), LZ_OOM_TRACE=1 prints the stack of
each failing allocation in the command's stderr (shown with a failure).
usage: test_oom_cli.py PATH/TO/lz PATH/TO/liblz_oom_preload.so"""
import concurrent.futures
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

LZ, SHIM = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
EXIT_NOMEM = 7
BOUND = 20            # seconds one command may take, at most
CEILINGS_MIB = range(4, 65, 2)  # the address-space ceilings a Ceiling sweep tries; below 4 MiB exec dies
SAMPLES = int(os.environ.get("LZ_OOM_SAMPLES", "24"))
WORKERS = 8           # the commands mostly wait (settle, peers): more than the CPUs


class Result:
    """How a command ended: rc (negative: the signal), out, err, hung; and,
    under the shim, counted (its allocations) and hit (the Nth failed)."""

    def __init__(self, rc, out, err, hung, counted=None, hit=False):
        self.rc, self.out, self.err, self.hung, self.counted, self.hit = rc, out, err, hung, counted, hit


class Shim:
    """lz under the shim, failing its Nth allocation (0: none), counted on
    any thread when threads."""

    def __init__(self, n, threads):
        self.n, self.threads = n, threads

    def command(self, argv, env, count_file):
        env.update(LD_PRELOAD=SHIM, LZ_OOM_FAIL_AT=str(self.n), LZ_OOM_THREADS="1" if self.threads else "0",
                   LZ_OOM_COUNT_FILE=count_file)
        return [LZ] + argv


class Ceiling:
    """lz with its address space capped at kib KiB (ulimit -v): what it maps
    fails too (libxcrypt's yescrypt maps its megabytes), as the shim cannot
    make it."""

    def __init__(self, kib):
        self.kib = kib

    def command(self, argv, env, count_file):
        return ["sh", "-c", 'ulimit -v %d && exec "$0" "$@"' % self.kib, LZ] + argv


class Proc:
    """lz started with argv; stdin is fed and closed (None: left open for
    the caller); shim (a Shim or a Ceiling, None: neither) is how its memory
    runs out."""

    def __init__(self, argv, stdin=b"", shim=None):
        self.tmp = tempfile.mkdtemp(prefix="proc-", dir=TMP)
        self.count_file = os.path.join(self.tmp, "count")
        env = dict(os.environ)
        command = shim.command(argv, env, self.count_file) if shim else [LZ] + argv
        self.out = open(os.path.join(self.tmp, "out"), "w+b")
        self.err = open(os.path.join(self.tmp, "err"), "w+b")
        self.p = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.out, stderr=self.err, env=env)
        if stdin is None:
            return
        try:
            self.p.stdin.write(stdin)
            self.p.stdin.close()
        except BrokenPipeError:
            pass

    def running(self):
        return self.p.poll() is None

    def finish(self, seconds=BOUND, stop=False):
        """Waits for the end (SIGTERM first when stop); kills it past seconds."""
        if stop and self.running():
            self.p.send_signal(signal.SIGTERM)
        hung = False
        try:
            self.p.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            hung = True
            self.p.kill()
            self.p.wait()
        self.out.seek(0)
        self.err.seek(0)
        counted, hit = None, False
        if os.path.exists(self.count_file):
            with open(self.count_file) as f:
                counted, hit = (int(x) for x in f.read().split())
        result = Result(self.p.returncode, self.out.read(), self.err.read(), hung, counted, bool(hit))
        self.out.close()
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return result


def wait_for(path, proc, seconds=BOUND):
    """Until path exists (an ipc endpoint bound); False if proc ended first."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if not proc.running() or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def lines_of(out):
    return out.decode("utf-8", "replace").splitlines()


def json_lines(out):
    try:
        return [json.loads(line) for line in lines_of(out)]
    except ValueError:
        return None


# Each case's run(d, shim) starts the command under test with shim (and
# its peers without it) in the directory d and returns its Result and what
# it achieved (its output, or its peer's): with nothing failing that is
# the reference; a run that exits 0 must achieve the same, or pass the
# case's own check when the answer varies (fresh keys, a stream).

def run_alone(*argv, stdin=b""):
    """A command alone: its output."""
    def run(d, shim):
        res = Proc(list(argv), stdin, shim).finish()
        return res, res.out
    return run


def run_pub(*args, lines, sub_args=()):
    """lz pub --connect to a bound lz sub: what the subscriber printed."""
    def run(d, shim):
        sub = Proc(["sub", "--bind", "ipc://%s/s" % d, "--count", str(len(lines)), "--timeout", "10"] + list(sub_args))
        wait_for("%s/s" % d, sub)
        res = Proc(["pub", "--connect", "ipc://%s/s" % d, "--topic", "t", "--settle", "400"] + list(args),
                   b"".join(line + b"\n" for line in lines), shim).finish()
        return res, sub.finish(seconds=5 if res.rc == 0 else 0).out
    return run


TASKS = b'{"a":1}\nhello\n[1,2]\n\xff\xfe\n'


def run_push(*args):
    """lz push --connect to a bound lz pull: what the puller printed."""
    def run(d, shim):
        pull = Proc(["pull", "--bind", "ipc://%s/p" % d, "--count", "4", "--timeout", "10"] + list(args))
        wait_for("%s/p" % d, pull)
        res = Proc(["push", "--connect", "ipc://%s/p" % d] + list(args), TASKS, shim).finish()
        return res, pull.finish(seconds=5 if res.rc == 0 else 0).out
    return run


def run_pull(*args):
    """lz pull --count bound, a lz push connecting to it: what it printed."""
    def run(d, shim):
        pull = Proc(["pull", "--bind", "ipc://%s/p" % d, "--count", "4", "--timeout", "10"] + list(args), shim=shim)
        push = Proc(["push", "--connect", "ipc://%s/p" % d] + list(args), TASKS) if wait_for("%s/p" % d, pull) else None
        res = pull.finish()
        if push:
            push.finish(seconds=0)
        return res, res.out
    return run


def run_sub(d, shim):
    """lz sub --count 3 connecting to the steady publisher (start_stream)."""
    res = Proc(["sub", "--connect", STREAM, "--count", "3", "--timeout", "10"], shim=shim).finish()
    return res, res.out


def consecutive(out):
    """Three messages of the stream, none lost between them."""
    got = json_lines(out)
    if not got or len(got) != 3 or any(g.get("topic") != "t" or not isinstance(g.get("data"), dict) for g in got):
        return "wrong output %r" % out
    numbers = [g["data"]["n"] for g in got]
    return None if numbers == list(range(numbers[0], numbers[0] + 3)) else "lost messages: %r" % numbers


def run_req(*args, stdin=b""):
    """lz req against the lz rep --echo serving every run (ECHO)."""
    def run(d, shim):
        res = Proc(["req", "--connect", ECHO] + list(args), stdin, shim).finish()
        return res, res.out
    return run


def run_rep_exec(d, shim):
    """lz rep --exec cat --count 1, a lz req asking it: the reply's type and data."""
    rep = Proc(["rep", "--bind", "ipc://%s/r" % d, "--exec", "cat", "--count", "1"], shim=shim)
    req = Proc(["req", "--connect", "ipc://%s/r" % d, "--timeout", "10000", "act", '{"x":[1,2]}']) if wait_for(
        "%s/r" % d, rep) else None
    answer = req.finish() if req else None
    # A request the library dropped for want of memory (reported) leaves it
    # serving, as any server: stopped by SIGTERM then.
    try:
        rep.p.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass
    res = rep.finish(stop=True)
    reply = json_lines(answer.out) if answer else None
    return res, ([(r.get("type"), r.get("data")) if isinstance(r, dict) else r for r in reply or []],
                 answer and answer.err)


def run_proxy(d, shim):
    """lz proxy queue between a lz req and a lz rep --echo, stopped by
    SIGTERM: the reply the client got and the proxy's report."""
    proxy = Proc(["proxy", "queue", "--frontend", "ipc://%s/f" % d, "--backend", "ipc://%s/b" % d], shim=shim)
    if not (wait_for("%s/f" % d, proxy) and wait_for("%s/b" % d, proxy)):
        return proxy.finish(), None
    rep = Proc(["rep", "--connect", "ipc://%s/b" % d, "--echo", "--count", "1"])
    answer = Proc(["req", "--connect", "ipc://%s/f" % d, "--timeout", "10000", "echo", "42"]).finish()
    res = proxy.finish(stop=True)
    rep.finish(seconds=0)
    return res, (answer.out, res.err)


def run_lock(d, shim):
    """lz lock around a command, the lz rep --locks serving every run (LOCKS)."""
    res = Proc(["lock", "--connect", LOCKS, os.path.basename(d), "--", "sh", "-c", "echo ran"], shim=shim).finish()
    return res, res.out


def is_json(line):
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def lines_like(count, line_ok):
    """A check: count lines, each one line_ok takes (fresh keys, a measurement)."""
    def check(out):
        lines = lines_of(out)
        return None if len(lines) == count and all(line_ok(line) for line in lines) else "wrong output %r" % out
    return check


KEY_LINE = lambda line: line.startswith(("public_key: \"", "secret_key: \"")) and line.endswith('"')
BENCH_PUSHPULL = re.compile(r"pushpull inproc 16 B, median of 1: liberzmq (\d+) msg/s \(\d+\.\d MB/s\); "
                            r"raw libzmq (\d+) msg/s \(\d+\.\d MB/s\); ratio \d+\.\d\d")
BENCH_REQREP = {"pattern": "reqrep", "transport": "inproc", "size": 16, "codec": "raw", "pinned": False,
                "spread": False, "reps": 1}
BENCH_LATENCIES = ("p50_us", "p99_us", "raw_p50_us", "raw_p99_us", "mean_us", "raw_mean_us", "ratio")


def bench_pushpull_line(line):
    """lz bench pushpull's line, with both contenders measured."""
    match = BENCH_PUSHPULL.fullmatch(line)
    return bool(match) and all(int(rate) > 0 for rate in match.groups())


def bench_reqrep_line(line):
    """lz bench reqrep --json's object, with both contenders measured."""
    try:
        got = json.loads(line)
    except ValueError:
        return False
    return isinstance(got, dict) and set(got) == set(BENCH_REQREP) | set(BENCH_LATENCIES) and all(
        got[key] == value for key, value in BENCH_REQREP.items()) and all(
        isinstance(got[key], (int, float)) and got[key] > 0 for key in BENCH_LATENCIES)


PASSWORD = "wonderland"
LIBCRYPT = ctypes.CDLL(ctypes.util.find_library("crypt"))
LIBCRYPT.crypt.restype = LIBCRYPT.crypt_gensalt.restype = ctypes.c_char_p
LIBCRYPT.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
LIBCRYPT.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
LIBCRYPT_LOCK = threading.Lock()  # crypt(3) hashes into static memory
# The method lz passwd must hash with: yescrypt, bcrypt where it is missing (docs/lz.md).
PASSWD_METHOD = "$y$" if LIBCRYPT.crypt_gensalt(b"$y$", 0, None, 0) else "$2b$"


def passwd_line(line):
    """USER:HASH, HASH the password's, by the system's best method."""
    user, _, hashed = line.partition(":")
    with LIBCRYPT_LOCK:
        return user == "alice" and hashed.startswith(PASSWD_METHOD) and LIBCRYPT.crypt(
            PASSWORD.encode(), hashed.encode()) == hashed.encode()


NO_LINE = lambda line: False
SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"


class Case:
    """run as above; line_ok(line): a line its stdout may hold; threads: the
    sweep is also run failing any thread's allocations; check(achieved):
    what is wrong with a success, when it cannot be the reference;
    ceilings: it is also run under address-space ceilings (CeilingSweep)."""

    def __init__(self, run, line_ok, threads=False, check=None, ceilings=False):
        self.run, self.line_ok, self.threads, self.check, self.ceilings = run, line_ok, threads, check, ceilings


TMP = tempfile.mkdtemp(prefix="lz-oom-")
STREAM, ECHO, LOCKS = "ipc://%s/stream" % TMP, "ipc://%s/echo" % TMP, "ipc://%s/locks" % TMP
CONFIG, SCHEMA = os.path.join(TMP, "config.yaml"), os.path.join(TMP, "schema.json")
CASES = {
    "version": Case(run_alone("version"), lambda line: line.startswith("lz ")),
    "keygen": Case(run_alone("keygen"), KEY_LINE, check=lines_like(2, KEY_LINE)),
    "keygen_secret": Case(run_alone("keygen", SECRET), KEY_LINE),
    "config_yaml": Case(run_alone("config", "--config", CONFIG), lambda line: ": " in line and "  # " in line),
    "config_json": Case(run_alone("config", "--config", CONFIG, "--format", "json"), is_json),
    "config_keys": Case(run_alone("config", "--config", CONFIG, "zmq.linger", "security.curve_secret_key"),
                        lambda line: line in ("123", "(hidden)")),
    "pub_json": Case(run_pub(lines=[b'{"a":1}', b"hello", b"[1,2]", b"\xff\xfe"]), NO_LINE, threads=True),
    "pub_raw": Case(run_pub("--raw", lines=[b'{"a":1}', b"hello"], sub_args=["--raw"]), NO_LINE),
    "pub_msgpack": Case(run_pub("--format", "msgpack", lines=[b'{"a":[1,2.5,null]}', b"\xff"],
                                sub_args=["--format", "msgpack"]), NO_LINE),
    "sub": Case(run_sub, is_json, threads=True, check=consecutive),
    "push": Case(run_push(), NO_LINE, threads=True),
    "push_msgpack": Case(run_push("--format", "msgpack"), NO_LINE),
    "pull": Case(run_pull(), is_json, threads=True),
    "pull_raw": Case(run_pull("--raw"), is_json),
    "req": Case(run_req("--config", CONFIG, "echo", '{"a":[1,2,3],"b":"x"}'), is_json),
    "req_schema": Case(run_req("--schema", SCHEMA, "echo", '{"a":[1,2,3],"b":"x"}'), is_json),
    "req_stdin": Case(run_req("echo", "-", stdin=b'{"big":"' + b"y" * 100000 + b'"}\n'), is_json),
    "rep_exec": Case(run_rep_exec, NO_LINE, threads=True),
    "proxy": Case(run_proxy, NO_LINE, threads=True),
    "lock": Case(run_lock, lambda line: line == "ran", threads=True),
    "passwd": Case(run_alone("passwd", "alice", stdin=PASSWORD.encode() + b"\n"), passwd_line,
                   check=lines_like(1, passwd_line), ceilings=True),
    "bench_pushpull": Case(run_alone("bench", "pushpull", "--transport", "inproc", "--size", "16", "--count", "200",
                                     "--reps", "1"), bench_pushpull_line, threads=True,
                           check=lines_like(1, bench_pushpull_line)),
    "bench_reqrep": Case(run_alone("bench", "reqrep", "--transport", "inproc", "--size", "16", "--count", "2",
                                   "--reps", "1", "--json"),
                         bench_reqrep_line, threads=True, check=lines_like(1, bench_reqrep_line)),
}


def about_memory(line):
    return "out of memory" in line or "Cannot allocate memory" in line


def dropped(line):
    """A line of the library's on what it dropped for want of memory, which
    lz cannot see (a handler's failure is lz's own: rep then exits 7)."""
    return about_memory(line) and not re.search(r"handler '.*' failed", line)


def judge(case, reference, res, achieved, threads):
    """What is wrong with one run, or None. A failure in another thread
    than the main one may be the library's to report (a dropped message:
    docs/lz.md), as a line on stderr: lz then goes on."""
    err = res.err.decode("utf-8", "replace")
    if res.hung:
        return "still running after %d s (stderr %r)" % (BOUND, err[-300:])
    if res.rc < 0:
        return "killed by signal %d: %s" % (-res.rc, err[-500:])
    if res.out and not res.out.endswith(b"\n"):
        return "a partial line on stdout: %r" % res.out[-200:]
    bad = [line for line in lines_of(res.out) if not case.line_ok(line)]
    if bad:
        return "stdout line %r" % bad[0][:200]
    if res.rc == 0:
        wrong = case.check(achieved) if case.check else None if achieved == reference else "%r" % (achieved,)
        if wrong and threads and any(dropped(line) for line in err.splitlines()):
            return None
        return wrong and "exit 0, but %s (stderr %r)" % (wrong[:600], err[-3000:])
    if not res.hit:
        return "exit %d with no allocation failing: %s" % (res.rc, err[-500:])
    if res.rc != EXIT_NOMEM:
        return "exit %d, not %d: %s" % (res.rc, EXIT_NOMEM, err[-500:])
    # One line from lz, after the library's about what it dropped, if any.
    lines = err.splitlines()
    if not err.endswith("\n") or not lines or not all(about_memory(line) for line in lines) or (
            "out of memory" not in lines[-1]):
        return "stderr is not a line saying out of memory: %r" % err[-500:]
    return None


class Sweep:
    """One case in one mode (threads): its reference, allocation count and
    the Ns to fail, then what went wrong."""

    def __init__(self, name, case, threads):
        self.case, self.threads, self.failures, self.points = case, threads, [], []
        self.mode = "%s%s" % (name, " (any thread)" if threads else "")

    def count(self):
        """Runs the case with nothing failing: the reference and the Ns."""
        with tempfile.TemporaryDirectory(prefix="c-", dir=TMP) as d:
            clean, self.reference = self.case.run(d, Shim(0, self.threads))
        if clean.rc != 0 or clean.counted is None or (self.case.check and self.case.check(self.reference)):
            self.failures.append("%s: exit %d with nothing failing: %r %r" % (self.mode, clean.rc, clean.err[-500:],
                                                                            self.reference))
            return
        self.total = clean.counted
        if os.environ.get("LZ_OOM_ALL") == "1" or self.total <= SAMPLES:
            self.points = list(range(1, self.total + 1))
        else:
            self.points = sorted({1 + round(i * (self.total - 1) / (SAMPLES - 1)) for i in range(SAMPLES)})

    def fail_at(self, n):
        with tempfile.TemporaryDirectory(prefix="n-", dir=TMP) as d:
            res, achieved = self.case.run(d, Shim(n, self.threads))
        why = judge(self.case, self.reference, res, achieved, self.threads)
        if why:
            self.failures.append("%s: allocation %d of %d failing: %s" % (self.mode, n, self.total, why))

    def verdict(self):
        """What went wrong, once every run is done."""
        return self.failures


class CeilingSweep(Sweep):
    """One case under each ceiling of CEILINGS_MIB, some of which must let
    it succeed (else the range no longer spans what lz needs). Under a
    ceiling too low for the loader to map lz's libraries (exit 127), lz
    never ran."""

    def __init__(self, name, case):
        super().__init__(name, case, False)
        self.mode, self.succeeded = name + " (address space)", False

    def count(self):
        super().count()
        self.points = [] if self.failures else [mib << 10 for mib in CEILINGS_MIB]

    def fail_at(self, kib):
        with tempfile.TemporaryDirectory(prefix="n-", dir=TMP) as d:
            res, achieved = self.case.run(d, Ceiling(kib))
        if res.rc == 127 and b"error while loading shared libraries" in res.err:
            return
        res.hit = True  # memory may have run out: no count tells
        self.succeeded |= res.rc == 0
        why = judge(self.case, self.reference, res, achieved, False)
        if why:
            self.failures.append("%s: under %d KiB: %s" % (self.mode, kib, why))

    def verdict(self):
        if self.succeeded or not self.points:
            return self.failures
        return self.failures + ["%s: no ceiling up to %d MiB let it succeed" % (self.mode, CEILINGS_MIB[-1])]


def start_stream():
    """The steady publisher the subscribers join: {"n": i} on topic t every 10 ms."""
    pub = Proc(["pub", "--bind", STREAM, "--topic", "t", "--settle", "0"], stdin=None)

    def feed():
        try:
            for i in range(10 ** 9):
                pub.p.stdin.write(b'{"n":%d}\n' % i)
                pub.p.stdin.flush()
                time.sleep(0.01)
        except (OSError, ValueError):
            pass
    threading.Thread(target=feed, daemon=True).start()
    return pub


def main():
    start = time.monotonic()
    with open(CONFIG, "w") as f:
        f.write('zmq:\n  linger: 123\n  request_timeout: 8000\nsecurity:\n  curve_secret_key: "%s"\n' % SECRET)
    with open(SCHEMA, "w") as f:
        f.write('{"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}}}\n')
    peers = [start_stream(), Proc(["rep", "--bind", ECHO, "--echo"]), Proc(["rep", "--bind", LOCKS, "--locks"])]
    only = os.environ.get("LZ_OOM_ONLY", "").split()
    chosen = [(name, case) for name, case in CASES.items() if not only or name in only]
    sweeps = [Sweep(name, case, threads) for name, case in chosen
              for threads in ((False, True) if case.threads else (False,))]
    sweeps += [CeilingSweep(name, case) for name, case in chosen if case.ceilings]
    try:
        # All at once: the commands mostly wait (settle times, peers).
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda sweep: sweep.count(), sweeps))
            list(pool.map(lambda job: job[0].fail_at(job[1]), [(s, n) for s in sweeps for n in s.points]))
    finally:
        for peer in peers:
            peer.finish(seconds=5, stop=True)
        shutil.rmtree(TMP, ignore_errors=True)
    failures = [f for s in sweeps for f in s.verdict()]
    for s in sweeps:
        print("%s: %d runs, %d failed" % (s.mode, len(s.points), len(s.verdict())))
    runs = sum(len(s.points) for s in sweeps)
    for failure in failures:
        print("FAIL " + failure)
    print("%d runs in %.0f s, %d failed" % (runs, time.monotonic() - start, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
