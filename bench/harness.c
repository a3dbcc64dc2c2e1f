/* The benchmark harness: one set of drivers (one-way throughput, round-trip
 * latency, memory) and one output format for every C contender, so the
 * contenders differ only in the library calls they make. */
#include "harness.h"

#include "cli/number.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Messages per send/recv call between looks at the clock and stop flags:
// big enough that the checks cost nothing, small enough to stop on time.
#define LZB_BATCH 256
// How long the first message may take (connecting, pub/sub joining).
#define LZB_JOIN_SECONDS 5.0
// Round trips before the timed ones: connections made, caches warm.
#define LZB_WARM_UP_ROUND_TRIPS 100

uint64_t lzb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double seconds_since(uint64_t t0) { return (double)(lzb_now_ns() - t0) / 1e9; }

void lzb_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// percentile of sorted values, nearest rank.
static double percentile(const double *sorted, size_t n, double p) {
    if (n == 0) return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

double lzb_median(double *values, size_t n) {
    qsort(values, n, sizeof *values, cmp_double);
    if (n == 0) return 0;
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

long lzb_rss_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kb = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int lzb_pin_self(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu >= 0) {
        CPU_SET(cpu, &set);
    } else {
        long n = sysconf(_SC_NPROCESSORS_CONF);
        for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET((int)i, &set);
    }
    return sched_setaffinity(0, sizeof set, &set);
}

size_t lzb_seed_json(char *buf, size_t len, long seq) {
    int n = snprintf(buf, len, "{\"symbol\":\"%s\",\"price\":%.1f,\"seq\":%ld}", LZB_SEED_SYMBOL, LZB_SEED_PRICE, seq);
    return n < 0 ? 0 : (size_t)n;
}

const char *lzb_pattern_name(lzb_pattern_t pattern) {
    static const char *const names[] = {"pushpull", "pubsub", "reqrep", "memory"};
    return names[pattern];
}

// A free loopback TCP port: bind port 0 and read what the kernel chose. The
// port is closed again before the contender binds it; nothing else on this
// machine races for ports during a benchmark.
static int free_tcp_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

// Every open gets a fresh endpoint, so repetitions never meet old peers.
static int make_endpoint(lzb_spec_t *spec) {
    static int serial;
    serial++;
    if (strcmp(spec->transport, "tcp") == 0) {
        int port = free_tcp_port();
        if (port < 0) return -1;
        snprintf(spec->endpoint, sizeof spec->endpoint, "tcp://127.0.0.1:%d", port);
    } else if (strcmp(spec->transport, "ipc") == 0) {
        snprintf(spec->endpoint, sizeof spec->endpoint, "ipc:///tmp/lzb-%d-%d", (int)getpid(), serial);
    } else {
        snprintf(spec->endpoint, sizeof spec->endpoint, "inproc://lzb-%d", serial);
    }
    return 0;
}

// close_contender also removes an ipc socket file some libraries leave.
static void close_contender(const lzb_ops_t *ops, void *st, const lzb_spec_t *spec) {
    ops->close(st);
    if (strncmp(spec->endpoint, "ipc://", 6) == 0) unlink(spec->endpoint + 6);
    if (spec->pinned) lzb_pin_self(-1);
}

// place pins the calling process before its library starts any thread, so
// every thread it starts (libzmq I/O threads, server workers, the drivers')
// stays with it: under --pin on CPU 0, as taskset -c 0 would, in both
// processes when there are two; under --spread on spread_cpu, so each end has
// a CPU of its own and no run finds both busy ends sharing one while the
// other idles, which made single runs swing 2x. close_contender undoes --pin.
static int place(const lzb_spec_t *spec, int spread_cpu) {
    int cpu = spec->pinned ? 0 : spec->spread ? spread_cpu : -1;
    if (cpu < 0 || lzb_pin_self(cpu) == 0) return 0;
    fprintf(stderr, "%s: cannot run on CPU %d: %s\n", spec->pinned ? "--pin" : "--spread", cpu, strerror(errno));
    return -1;
}

// open_ends opens the given ends at spec's endpoint.
static void *open_ends(const lzb_ops_t *ops, const lzb_spec_t *spec, lzb_ends_t ends) {
    lzb_spec_t made = *spec;
    made.ends = ends;
    void *st = ops->open(&made);
    if (!st)
        fprintf(stderr, "%s: cannot open %s over %s\n", ops->name, lzb_pattern_name(spec->pattern), spec->endpoint);
    return st;
}

// open_contender opens both ends in this process, placed (see place).
static void *open_contender(const lzb_ops_t *ops, lzb_spec_t *spec) {
    if (place(spec, 0) != 0) return NULL;
    void *st = NULL;
    if (make_endpoint(spec) != 0)
        fprintf(stderr, "%s: no free endpoint\n", ops->name);
    else
        st = open_ends(ops, spec, LZB_BOTH_ENDS);
    if (!st && spec->pinned) lzb_pin_self(-1);
    return st;
}

// ---- Throughput: a sender thread, the receiver on the calling thread. ----

// What the two ends tell each other; shared memory when they are processes.
typedef struct tp_flags {
    atomic_int ready;           // the receiver got a warm-up message
    atomic_int stop;            // the receiver is done
    atomic_int sender_done;     // every message was sent
    atomic_int receiver_closed; // the sender may close (see drain)
} tp_flags_t;

typedef struct tp_run {
    const lzb_ops_t *ops;
    void *st;
    long count;
    tp_flags_t *flags;
} tp_run_t;

static void *tp_sender(void *arg) {
    tp_run_t *run = arg;
    // Warm up one message at a time until the receiver sees one: a
    // subscriber joins late and would miss the start of the stream.
    while (!atomic_load(&run->flags->ready) && !atomic_load(&run->flags->stop)) {
        run->ops->send(run->st, 1);
        lzb_sleep_ms(1);
    }
    long sent = 0;
    while (sent < run->count && !atomic_load(&run->flags->stop)) {
        long want = run->count - sent < LZB_BATCH ? run->count - sent : LZB_BATCH;
        sent += run->ops->send(run->st, want);
    }
    atomic_store(&run->flags->sender_done, 1);
    return NULL;
}

// wait_first receives one message, giving up after LZB_JOIN_SECONDS.
static int wait_first(tp_run_t *run) {
    uint64_t t0 = lzb_now_ns();
    while (run->ops->recv(run->st, 1) < 1)
        if (seconds_since(t0) > LZB_JOIN_SECONDS) return -1;
    return 0;
}

// tp_receive times from the first data message to the last one of the last
// whole batch: a short batch ended in an idle timeout whose wait is not
// traffic (a publisher dropped messages, or the sender stopped).
static int tp_receive(tp_run_t *run, double max_seconds, lzb_tput_t *out) {
    if (wait_first(run) != 0) return -1;
    atomic_store(&run->flags->ready, 1);
    if (wait_first(run) != 0) return -1;
    uint64_t t0 = lzb_now_ns(), t_last = t0;
    long timed = 0;
    while (timed < run->count - 1) {
        long want = run->count - 1 - timed < LZB_BATCH ? run->count - 1 - timed : LZB_BATCH;
        long got = run->ops->recv(run->st, want);
        uint64_t t = lzb_now_ns();
        if (got < want && atomic_load(&run->flags->sender_done)) break;
        if (got > 0) {
            timed += got;
            t_last = t;
        }
        if ((double)(t - t0) / 1e9 > max_seconds) break;
    }
    double secs = (double)(t_last - t0) / 1e9;
    out->frame_bytes = run->ops->frame_bytes ? run->ops->frame_bytes(run->st) : 0;
    out->received = timed;
    out->msgs_per_sec = secs > 0 ? (double)timed / secs : 0;
    return timed > 0 ? 0 : -1;
}

// drain stops the sender and receives what is still queued, until the
// sender is done and a receive times out. Closing sockets with a backlog can
// abort libzmq 4.3.4: a publisher's session that is half way through a
// [topic, payload] message when its socket closes, and then sees the
// connection drop (the receiver closing too), asserts in
// session_base_t::clean_pipes ("Resource temporarily unavailable
// (src/session_base.cpp:260)", as in libzmq issue #3442). With the queues
// empty no session holds half a message. Draining also frees a sender
// blocked on a full queue at once instead of after its send timeout.
// A sender that never says it is done (a child process that died) is given
// up on after LZB_JOIN_SECONDS without a message.
static void drain(tp_run_t *run) {
    atomic_store(&run->flags->stop, 1);
    for (uint64_t heard = lzb_now_ns(); seconds_since(heard) < LZB_JOIN_SECONDS;) {
        int sender_done = atomic_load(&run->flags->sender_done);
        long got = run->ops->recv(run->st, LZB_BATCH);
        if (got < LZB_BATCH && sender_done) return;
        if (got > 0) heard = lzb_now_ns();
    }
}

// tp_finish reports a measurement that got nothing and fills in MB/s.
static int tp_finish(const lzb_ops_t *ops, const lzb_spec_t *spec, int rc, lzb_tput_t *out) {
    out->mb_per_sec = out->msgs_per_sec * (double)spec->size / 1e6;
    if (rc != 0) fprintf(stderr, "%s: no messages arrived\n", ops->name);
    return rc;
}

static int tp_measure(const lzb_ops_t *ops, void *st, const lzb_spec_t *spec, lzb_tput_t *out) {
    tp_flags_t flags = {0};
    tp_run_t run = {.ops = ops, .st = st, .count = spec->count, .flags = &flags};
    pthread_t sender;
    if (pthread_create(&sender, NULL, tp_sender, &run) != 0) return -1;
    int rc = tp_receive(&run, spec->max_seconds, out);
    drain(&run);
    pthread_join(sender, NULL);
    return tp_finish(ops, spec, rc, out);
}

// tp_sending_child is the sender's process: it opens its end, sends, and
// closes once the receiver has (the order of one process, see drain), or
// after LZB_JOIN_SECONDS if the receiver never gets that far.
static int tp_sending_child(const lzb_ops_t *ops, const lzb_spec_t *spec, tp_flags_t *flags) {
    void *st = open_ends(ops, spec, LZB_SENDING_END);
    if (!st) {
        atomic_store(&flags->sender_done, 1);
        return 1;
    }
    tp_run_t run = {.ops = ops, .st = st, .count = spec->count, .flags = flags};
    tp_sender(&run);
    uint64_t t0 = lzb_now_ns();
    while (!atomic_load(&flags->receiver_closed) && seconds_since(t0) < LZB_JOIN_SECONDS) lzb_sleep_ms(1);
    ops->close(st);
    return 0;
}

// tp_two_processes measures with the sender in a child process, forked
// before either end exists (libzmq, CZMQ and nng contexts do not survive a
// fork), as two services on one machine would run.
static int tp_two_processes(const lzb_ops_t *ops, lzb_spec_t *spec, lzb_tput_t *out) {
    if (make_endpoint(spec) != 0) return -1;
    tp_flags_t *flags = mmap(NULL, sizeof *flags, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (flags == MAP_FAILED) return -1; // anonymous memory starts zeroed: every flag clear
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) _exit(place(spec, 1) == 0 ? tp_sending_child(ops, spec, flags) : 1);
    int rc = -1;
    void *st = child > 0 && place(spec, 0) == 0 ? open_ends(ops, spec, LZB_RECEIVING_END) : NULL;
    if (st) {
        tp_run_t run = {.ops = ops, .st = st, .count = spec->count, .flags = flags};
        rc = tp_receive(&run, spec->max_seconds, out);
        drain(&run);
        close_contender(ops, st, spec);
    }
    atomic_store(&flags->stop, 1);
    atomic_store(&flags->receiver_closed, 1);
    int status = 0;
    int sender_ok = child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (child > 0 && !sender_ok) fprintf(stderr, "%s: the sending process failed\n", ops->name);
    munmap(flags, sizeof *flags);
    if (spec->spread || spec->pinned) lzb_pin_self(-1);
    return st && sender_ok ? tp_finish(ops, spec, rc, out) : -1;
}

int lzb_throughput(const lzb_ops_t *ops, lzb_spec_t *spec, lzb_tput_t *out) {
    if (spec->processes == 2) return tp_two_processes(ops, spec, out);
    void *st = open_contender(ops, spec);
    if (!st) return -1;
    int rc = tp_measure(ops, st, spec, out);
    close_contender(ops, st, spec);
    return rc;
}

// ---- Latency: the server on a thread (or its own), round trips here. ----

typedef struct rr_server {
    const lzb_ops_t *ops;
    void *st;
    atomic_int stop;
} rr_server_t;

static void *rr_serve(void *arg) {
    rr_server_t *s = arg;
    s->ops->serve(s->st, &s->stop);
    return NULL;
}

// rr_warm_up: LZB_WARM_UP_ROUND_TRIPS, or fewer when max_seconds runs out
// (a large message's round trips can take a good part of a second each).
static int rr_warm_up(const lzb_ops_t *ops, void *st, const lzb_spec_t *spec) {
    uint64_t start = lzb_now_ns();
    for (int i = 0; i < LZB_WARM_UP_ROUND_TRIPS && seconds_since(start) < spec->max_seconds; i++)
        if (ops->request(st) != 0) {
            fprintf(stderr, "%s: warm-up round trip %d failed\n", ops->name, i + 1);
            return -1;
        }
    return 0;
}

// rr_measure: the warm-up, then count timed round trips (or fewer when
// max_seconds runs out). A round trip that fails (no reply within
// LZB_REQUEST_TIMEOUT_MS) fails the measurement: the run without it would
// report fewer round trips than asked and hide the stall from p99 and mean.
static int rr_measure(const lzb_ops_t *ops, void *st, const lzb_spec_t *spec, lzb_latency_t *out) {
    if (rr_warm_up(ops, st, spec) != 0) return -1;
    double *us = malloc((size_t)spec->count * sizeof *us);
    if (!us) {
        int err = errno; // ENOMEM, for lz bench to tell (src/cli/bench.c)
        fprintf(stderr, "%s: no memory for %ld round trips' times\n", ops->name, spec->count);
        errno = err;
        return -1;
    }
    long n = 0;
    uint64_t start = lzb_now_ns();
    while (n < spec->count && seconds_since(start) < spec->max_seconds) {
        uint64_t t = lzb_now_ns();
        if (ops->request(st) != 0) {
            fprintf(stderr, "%s: round trip %ld failed after %.0f ms\n", ops->name, n + 1, seconds_since(t) * 1e3);
            free(us);
            return -1;
        }
        us[n++] = (double)(lzb_now_ns() - t) / 1e3;
    }
    if (n == 0) fprintf(stderr, "%s: no round trip completed within --max-seconds %g\n", ops->name, spec->max_seconds);
    double sum = 0;
    for (long i = 0; i < n; i++) sum += us[i];
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    *out = (lzb_latency_t){.round_trips = n,
                           .p50_us = percentile(us, (size_t)n, 0.50),
                           .p99_us = percentile(us, (size_t)n, 0.99),
                           .mean_us = n ? sum / (double)n : 0};
    free(us);
    return n > 0 ? 0 : -1;
}

int lzb_latency(const lzb_ops_t *ops, lzb_spec_t *spec, lzb_latency_t *out) {
    int rc = -1;
    rr_server_t server = {.ops = ops};
    pthread_t thread;
    server.st = open_contender(ops, spec);
    if (!server.st) return -1;
    if (ops->serve && pthread_create(&thread, NULL, rr_serve, &server) != 0) goto close;
    rc = rr_measure(ops, server.st, spec, out);
    if (ops->serve) {
        atomic_store(&server.stop, 1);
        pthread_join(thread, NULL);
    }
close:
    close_contender(ops, server.st, spec);
    return rc;
}

// ---- Memory: a push/pull pair over tcp, idle then after a load. ----

int lzb_memory(const lzb_ops_t *ops, lzb_spec_t *spec, lzb_memory_t *out) {
    lzb_spec_t s = *spec;
    s.pattern = LZB_PUSHPULL;
    out->start_kb = lzb_rss_kb("VmRSS");
    out->anon_start_kb = lzb_rss_kb("RssAnon");
    void *st = open_contender(ops, &s);
    if (!st) return -1;
    lzb_tput_t warm;
    // One message through makes the connection (and its buffers) real.
    lzb_spec_t one = s;
    one.count = 2;
    int rc = tp_measure(ops, st, &one, &warm);
    lzb_sleep_ms(100);
    out->idle_kb = lzb_rss_kb("VmRSS");
    out->anon_idle_kb = lzb_rss_kb("RssAnon");
    if (rc == 0) rc = tp_measure(ops, st, &s, &warm);
    out->loaded_kb = lzb_rss_kb("VmRSS");
    out->peak_kb = lzb_rss_kb("VmHWM");
    close_contender(ops, st, &s);
    return rc;
}

// ---- Output ----

static void print_head(const lzb_ops_t *ops, const lzb_spec_t *spec) {
    printf("{\"contender\":\"%s\",\"version\":\"%s\",\"pattern\":\"%s\",\"transport\":\"%s\","
           "\"size\":%zu,\"codec\":\"%s\"",
           ops->name, ops->version ? ops->version() : "", lzb_pattern_name(spec->pattern), spec->transport, spec->size,
           spec->codec);
}

void lzb_print_tput(const lzb_ops_t *ops, const lzb_spec_t *spec, const lzb_tput_t *r) {
    print_head(ops, spec);
    printf(",\"pinned\":%s,\"spread\":%s,\"received\":%ld,\"msgs_per_sec\":%.0f,\"mb_per_sec\":%.2f",
           spec->pinned ? "true" : "false", spec->spread ? "true" : "false", r->received, r->msgs_per_sec,
           r->mb_per_sec);
    if (r->frame_bytes) printf(",\"frame_bytes\":%zu", r->frame_bytes);
    printf("}\n");
    fflush(stdout);
}

void lzb_print_latency(const lzb_ops_t *ops, const lzb_spec_t *spec, const lzb_latency_t *r) {
    print_head(ops, spec);
    printf(",\"pinned\":%s,\"round_trips\":%ld,\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f}\n",
           spec->pinned ? "true" : "false", r->round_trips, r->p50_us, r->p99_us, r->mean_us);
    fflush(stdout);
}

void lzb_print_memory(const lzb_ops_t *ops, const lzb_spec_t *spec, const lzb_memory_t *r) {
    print_head(ops, spec);
    printf(",\"rss_start_kb\":%ld,\"rss_idle_kb\":%ld,\"rss_loaded_kb\":%ld,\"rss_peak_kb\":%ld", r->start_kb,
           r->idle_kb, r->loaded_kb, r->peak_kb);
    printf(",\"rss_anon_start_kb\":%ld,\"rss_anon_idle_kb\":%ld}\n", r->anon_start_kb, r->anon_idle_kb);
    fflush(stdout);
}

// ---- Arguments ----

void lzb_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s pushpull|pubsub|reqrep|memory [--transport tcp|ipc|inproc] [--size BYTES]\n"
            "       [--count N] [--max-seconds S] [--reps R] [--pin] [--codec raw|json] [--processes 1|2]\n"
            "       [--spread] [--json]\n",
            prog);
}

static int parse_pattern(const char *s, lzb_pattern_t *out) {
    for (int p = LZB_PUSHPULL; p <= LZB_MEMORY; p++)
        if (strcmp(s, lzb_pattern_name((lzb_pattern_t)p)) == 0) {
            *out = (lzb_pattern_t)p;
            return 0;
        }
    return -1;
}

static int copy_choice(char *dst, size_t len, const char *s, const char *const *choices) {
    for (; *choices; choices++)
        if (strcmp(s, *choices) == 0) {
            snprintf(dst, len, "%s", s);
            return 0;
        }
    return -1;
}

// parse_long_in reads a decimal integer within [min, max] (the tool's rule).
static int parse_long_in(const char *s, long min, long max, long *out) {
    return lz_cli_parse_long(s, min, max, out) ? 0 : -1;
}

// parse_option reads one option with its value, within sane bounds (a
// size past LZB_SIZE_MAX or a negative count is a usage error, not a
// failed allocation later).
static int parse_option(lzb_spec_t *spec, const char *opt, const char *val) {
    static const char *const transports[] = {"tcp", "ipc", "inproc", NULL};
    static const char *const codecs[] = {"raw", "json", NULL};
    long n = 0;
    if (strcmp(opt, "--transport") == 0) return copy_choice(spec->transport, sizeof spec->transport, val, transports);
    if (strcmp(opt, "--codec") == 0) return copy_choice(spec->codec, sizeof spec->codec, val, codecs);
    if (strcmp(opt, "--max-seconds") == 0) {
        if (!lz_cli_is_decimal(val)) return -1;
        spec->max_seconds = strtod(val, NULL);
        return spec->max_seconds > 0 && spec->max_seconds <= 3600 ? 0 : -1;
    }
    int rc = -1;
    if (strcmp(opt, "--size") == 0 && (rc = parse_long_in(val, 1, LZB_SIZE_MAX, &n)) == 0)
        spec->size = (size_t)n;
    else if (strcmp(opt, "--count") == 0 && (rc = parse_long_in(val, 2, LONG_MAX, &n)) == 0)
        spec->count = n;
    else if (strcmp(opt, "--reps") == 0 && (rc = parse_long_in(val, 1, LZB_REPS_MAX, &n)) == 0)
        spec->reps = (int)n;
    else if (strcmp(opt, "--processes") == 0 && (rc = parse_long_in(val, 1, 2, &n)) == 0)
        spec->processes = (int)n;
    return rc;
}

// refuse stores why the arguments were refused and returns 2.
__attribute__((format(printf, 3, 4))) static int refuse(char *why, size_t why_size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(why, why_size, format, args);
    va_end(args);
    return 2;
}

// The options followed by a value, each with the values it takes (for
// the refusal of a bad one; parse_option holds the same limits).
#define LZB_STR_(x) #x
#define LZB_STR(x) LZB_STR_(x)
_Static_assert(LZB_SIZE_MAX == 67108864, "--size's limit as its refusal states it");
static const struct valued_option {
    const char *name, *takes;
} valued_options[] = {
    {"--transport", "tcp, ipc or inproc"},
    {"--codec", "raw or json"},
    {"--max-seconds", "seconds above 0, at most 3600"},
    {"--size", "1 to 67108864 bytes (64 MiB)"},
    {"--count", "2 or more"},
    {"--reps", "1 to " LZB_STR(LZB_REPS_MAX)},
    {"--processes", "1 or 2"},
};

// An option's name is shorter than this; a longer one is unknown anyway.
#define LZB_OPTION_NAME_MAX 32

// split_option copies the name of the option arg into name: all of it, or
// what comes before an '=' (--count=5, as lz's other commands take it).
// Returns the value after that '=', or NULL.
static const char *split_option(const char *arg, char *name, size_t size) {
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    snprintf(name, size, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    return eq ? eq + 1 : NULL;
}

// valued_option: opt's entry, or NULL for an option without a value.
static const struct valued_option *valued_option(const char *opt) {
    for (size_t i = 0; i < sizeof valued_options / sizeof valued_options[0]; i++)
        if (strcmp(opt, valued_options[i].name) == 0) return &valued_options[i];
    return NULL;
}

// check_combination says which options do not go together, or "" when they do.
static const char *check_combination(const lzb_spec_t *spec) {
    // Two processes are two services: throughput over a transport between processes.
    int throughput = spec->pattern == LZB_PUSHPULL || spec->pattern == LZB_PUBSUB;
    if (spec->processes == 2 && !throughput) return "--processes 2 is for pushpull and pubsub only";
    if (spec->processes == 2 && strcmp(spec->transport, "inproc") == 0)
        return "--processes 2 needs tcp or ipc: inproc stays inside one process";
    // Spreading places two processes; pinning puts everything on one CPU.
    if (spec->spread && spec->processes != 2) return "--spread needs --processes 2";
    if (spec->spread && spec->pinned) return "--spread and --pin exclude each other";
    return "";
}

int lzb_parse(int argc, char **argv, lzb_spec_t *spec, int *json, char *why, size_t why_size) {
    *spec = (lzb_spec_t){
        .transport = "tcp", .size = 16, .count = 0, .max_seconds = 1.0, .reps = 1, .codec = "raw", .processes = 1};
    *json = 0;
    if (argc < 1) return refuse(why, why_size, "no pattern given");
    if (parse_pattern(argv[0], &spec->pattern) != 0)
        return refuse(why, why_size, "unknown pattern '%s'", argv[0]);
    for (int i = 1; i < argc; i++) {
        char name[LZB_OPTION_NAME_MAX];
        const char *value = split_option(argv[i], name, sizeof name);
        for (int k = 1; k < i; k++) { // each option once
            char seen[LZB_OPTION_NAME_MAX];
            if (argv[k][0] != '-') continue;
            split_option(argv[k], seen, sizeof seen);
            if (strcmp(seen, name) == 0) return refuse(why, why_size, "option %s given twice", name);
        }
        int *flag = strcmp(name, "--pin") == 0      ? &spec->pinned
                    : strcmp(name, "--spread") == 0 ? &spec->spread
                    : strcmp(name, "--json") == 0   ? json
                                                    : NULL;
        if (flag && value) return refuse(why, why_size, "option %s takes no value", name);
        if (flag) {
            *flag = 1;
            continue;
        }
        if (!valued_option(name)) return refuse(why, why_size, "unknown option '%s'", argv[i]);
        if (!value && i + 1 >= argc) return refuse(why, why_size, "option %s needs a value", name);
        if (!value) value = argv[++i];
        if (parse_option(spec, name, value) != 0)
            return refuse(why, why_size, "bad value '%s' for %s: %s", value, name, valued_option(name)->takes);
    }
    if (spec->count <= 0) spec->count = spec->pattern == LZB_REQREP ? 20000 : 10000000;
    if (spec->pattern == LZB_REQREP && spec->count > LZB_ROUND_TRIPS_MAX)
        return refuse(why, why_size, "bad value '%ld' for --count: reqrep keeps each round trip's time, at most %d",
                      spec->count, LZB_ROUND_TRIPS_MAX);
    const char *clash = check_combination(spec);
    if (*clash) return refuse(why, why_size, "%s", clash);
    if (strcmp(spec->codec, "json") == 0) {
        char buf[128];
        spec->size = lzb_seed_json(buf, sizeof buf, 0);
    }
    return 0;
}

int lzb_main(int argc, char **argv, const lzb_ops_t *ops) {
    lzb_spec_t spec;
    int json;
    char why[128];
    if (lzb_parse(argc - 1, argv + 1, &spec, &json, why, sizeof why) != 0) {
        fprintf(stderr, "%s: %s\n", argv[0], why);
        lzb_usage(argv[0]);
        return 2;
    }
    // Only contenders that encode per message may claim a JSON row; the
    // others would measure raw bytes under a JSON label.
    if (strcmp(spec.codec, "json") == 0 && !strstr(ops->name, "json")) {
        fprintf(stderr, "%s: --codec json is not implemented by this contender\n", ops->name);
        return 2;
    }
    for (int rep = 0; rep < spec.reps; rep++) {
        lzb_tput_t t;
        lzb_latency_t l;
        lzb_memory_t m;
        if (spec.pattern == LZB_REQREP) {
            if (lzb_latency(ops, &spec, &l) != 0) return 1;
            lzb_print_latency(ops, &spec, &l);
        } else if (spec.pattern == LZB_MEMORY) {
            if (lzb_memory(ops, &spec, &m) != 0) return 1;
            lzb_print_memory(ops, &spec, &m);
        } else {
            if (lzb_throughput(ops, &spec, &t) != 0) return 1;
            lzb_print_tput(ops, &spec, &t);
        }
    }
    return 0;
}
