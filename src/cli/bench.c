/* `lz bench`: liberzmq against raw libzmq in the same run, interleaved,
 * with the median of repetitions and the ratio. The measuring code is the
 * benchmark harness's (bench/, library lz_bench_core), so the numbers match
 * the bench programs and BENCHMARKS.md. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "contenders.h"

// One contender's results over the repetitions.
typedef struct series {
    double a[LZB_REPS_MAX], b[LZB_REPS_MAX]; // msgs/s and MB/s, or p50 and p99
    double mean[LZB_REPS_MAX];               // request/reply: the mean round trip
    size_t n;
} series_t;

// The harness says only that a measurement failed, on lines of its own.
// lz bench runs it on the contenders wrapped below, which note a failure
// for want of memory (on any thread), so that it ends lz bench as it ends
// every lz command: exit 7 and one line (docs/lz.md).
static const lzb_ops_t *measured; // the contender being measured: one at a time
static atomic_bool starved;       // an allocation failed while measuring

// fresh clears the calling thread's errors, so that those an operation
// leaves are its own.
static void fresh(void) {
    errno = 0;
    lz_set_error(LZ_OK, NULL);
}

// note_failure: an operation failed; for want of memory when liberzmq or
// the C library says so.
static void note_failure(void) {
    if (errno == ENOMEM || lz_last_error_code() == LZ_ENOMEM) atomic_store(&starved, true);
}

static void *watched_open(const lzb_spec_t *spec) {
    fresh();
    void *st = measured->open(spec);
    if (!st) note_failure();
    return st;
}

static long watched_send(void *st, long n) {
    fresh();
    long sent = measured->send(st, n);
    if (sent < n) note_failure();
    return sent;
}

static long watched_recv(void *st, long n) {
    fresh();
    long got = measured->recv(st, n);
    if (got < n) note_failure(); // a timeout too: errno EAGAIN, LZ_ETIMEOUT
    return got;
}

static int watched_request(void *st) {
    fresh();
    int rc = measured->request(st);
    if (rc != 0) note_failure();
    return rc;
}

// The harness's own allocations (a thread, the round trips' times) fail
// with no word but errno ENOMEM, which closing keeps for measure to see.
static void watched_close(void *st) {
    int kept = errno;
    measured->close(st);
    errno = kept;
}

// watch: ops, each operation that can fail for want of memory watched.
static lzb_ops_t watch(const lzb_ops_t *ops) {
    measured = ops;
    lzb_ops_t watched = *ops;
    watched.open = watched_open;
    watched.send = watched_send;
    watched.recv = watched_recv;
    watched.request = watched_request;
    watched.close = watched_close;
    return watched;
}

static int measure(const lzb_ops_t *contender, lzb_spec_t *spec, series_t *s) {
    lzb_ops_t watched = watch(contender);
    const lzb_ops_t *ops = &watched;
    fresh();
    if (spec->pattern == LZB_REQREP) {
        lzb_latency_t l;
        if (lzb_latency(ops, spec, &l) != 0) goto failed;
        s->a[s->n] = l.p50_us;
        s->mean[s->n] = l.mean_us;
        s->b[s->n++] = l.p99_us;
    } else {
        lzb_tput_t t;
        if (lzb_throughput(ops, spec, &t) != 0) goto failed;
        s->a[s->n] = t.msgs_per_sec;
        s->b[s->n++] = t.mb_per_sec;
    }
    return 0;
failed:
    note_failure();
    return -1;
}

// run alternates which contender goes first, so a drift of the machine
// during the run does not favour either.
static int run(const lzb_ops_t *lz, lzb_spec_t *spec, series_t *mine, series_t *raw) {
    for (int rep = 0; rep < spec->reps; rep++) {
        const lzb_ops_t *order[2] = {lz, &lzb_raw_ops};
        series_t *into[2] = {mine, raw};
        for (int k = 0; k < 2; k++) {
            int i = (rep + k) % 2;
            if (measure(order[i], spec, into[i]) != 0) return -1;
        }
    }
    return 0;
}

// The two measures a pattern reports, with their JSON names and precision
// (the raw libzmq ones carry the same names prefixed "raw_").
typedef struct measure_names {
    const char *first, *second;
    int first_digits, second_digits;
} measure_names_t;

// print_json prints one result; mean and raw_mean (request/reply only,
// else negative) are the medians of the mean round trips.
static void print_json(const lzb_spec_t *spec, const measure_names_t *n, double a, double b, double ra, double rb,
                       double mean, double raw_mean, double ratio) {
    printf("{\"pattern\":\"%s\",\"transport\":\"%s\",\"size\":%zu,\"codec\":\"%s\",\"pinned\":%s,"
           "\"spread\":%s,\"reps\":%d,\"%s\":%.*f,\"%s\":%.*f,\"raw_%s\":%.*f,\"raw_%s\":%.*f,",
           lzb_pattern_name(spec->pattern), spec->transport, spec->size, spec->codec, spec->pinned ? "true" : "false",
           spec->spread ? "true" : "false", spec->reps, n->first, n->first_digits, a, n->second, n->second_digits, b,
           n->first, n->first_digits, ra, n->second, n->second_digits, rb);
    if (mean >= 0) printf("\"mean_us\":%.2f,\"raw_mean_us\":%.2f,", mean, raw_mean);
    printf("\"ratio\":%.3f}\n", ratio);
}

// placement says where the ends ran, for the human line.
static const char *placement(const lzb_spec_t *spec) {
    if (spec->pinned) return " pinned to CPU 0";
    return spec->spread ? " each end on its own CPU" : "";
}

static void print_result(const lzb_spec_t *spec, const lzb_ops_t *lz, series_t *mine, series_t *raw, int json) {
    static const measure_names_t latency = {"p50_us", "p99_us", 2, 2};
    static const measure_names_t throughput = {"msgs_per_sec", "mb_per_sec", 0, 2};
    double a = lzb_median(mine->a, mine->n), b = lzb_median(mine->b, mine->n);
    double ra = lzb_median(raw->a, raw->n), rb = lzb_median(raw->b, raw->n);
    bool reqrep = spec->pattern == LZB_REQREP;
    // Higher is better for both: raw over liberzmq for latency.
    double ratio = reqrep ? (a > 0 ? ra / a : 0) : (ra > 0 ? a / ra : 0);
    double mean = reqrep ? lzb_median(mine->mean, mine->n) : -1, raw_mean = reqrep ? lzb_median(raw->mean, raw->n) : -1;
    if (json) {
        print_json(spec, reqrep ? &latency : &throughput, a, b, ra, rb, mean, raw_mean, ratio);
        return;
    }
    printf("%s %s %zu B%s, median of %d: ", lzb_pattern_name(spec->pattern), spec->transport, spec->size,
           placement(spec), spec->reps);
    if (reqrep)
        printf("%s p50 %.1f us p99 %.1f us mean %.1f us; raw libzmq p50 %.1f us p99 %.1f us mean %.1f us; "
               "ratio (raw p50 / %s p50) %.2f\n",
               lz->name, a, b, mean, ra, rb, raw_mean, lz->name, ratio);
    else
        printf("%s %.0f msg/s (%.1f MB/s); raw libzmq %.0f msg/s (%.1f MB/s); ratio %.2f\n", lz->name, a, b, ra, rb,
               ratio);
}

#define BENCH_USAGE                                                                                                    \
    "lz bench pushpull|pubsub|reqrep [--transport tcp|ipc|inproc] [--size BYTES] [--count N] "                         \
    "[--max-seconds S] [--reps R] [--pin] [--codec raw|json] [--processes 1|2] [--spread] [--json]"

_Static_assert(LZB_ROUND_TRIPS_MAX == 10000000, "reqrep --count's limit as the help states it");

static void help(void) {
    printf("usage: " BENCH_USAGE "\n\n"
           "Measure liberzmq and raw libzmq in the same run (interleaved, the median\n"
           "of R repetitions) and print the ratio: liberzmq over raw for throughput,\n"
           "raw over liberzmq for request/reply p50 latency (higher is better).\n"
           "\nOptions:\n"
           "  --transport T     tcp, ipc or inproc (default tcp)\n"
           "  --size BYTES      message size (default 16)\n"
           "  --count N         messages (round trips for reqrep, at most 10000000:\n"
           "                    each one's time is kept) per measurement (default:\n"
           "                    as many as --max-seconds allows)\n"
           "  --max-seconds S   stop each measurement after S seconds (default 1)\n"
           "  --reps R          repetitions (default 3)\n"
           "  --codec C         raw bytes or json (the seeds' message, of its own\n"
           "                    size: not with --size)\n"
           "  --pin             run both ends on CPU 0\n"
           "  --processes 2     push/pull and pub/sub over tcp or ipc: the sender in\n"
           "                    a child process, as two services would be (default:\n"
           "                    both ends are threads here)\n"
           "  --spread          with --processes 2: the receiving process on CPU 0,\n"
           "                    the sending one on CPU 1, each with its libzmq\n"
           "                    threads (steadier figures)\n"
           "  --json            one JSON object per result\n"
           "\nExamples:\n"
           "  lz bench pushpull --transport tcp --size 16\n"
           "  lz bench pubsub --transport ipc --size 4096 --reps 5 --json\n"
           "  lz bench pubsub --transport tcp --size 40 --processes 2\n"
           "  lz bench pushpull --transport ipc --size 16 --processes 2 --spread\n"
           "  lz bench pushpull --transport inproc --size 64 --codec json\n"
           "  lz bench reqrep --transport tcp --size 16 --pin\n\n");
    lz_cli_print_exit_codes(stdout, 0);
}

static const lz_cli_command_t bench_command = {.name = "bench", .usage = BENCH_USAGE};

// usage_error: the tool's contract for bad arguments, one line and exit 2.
static int usage_error(const char *why) { return lz_cli_usage_error(&bench_command, "%s", why); }

// The harness's lines go to stderr while it measures: held there, and
// shown unless memory ran out, which lz bench then tells in its one line.
typedef struct held_stderr {
    int saved, held; // the real stderr, and the memory file holding its lines; -1: not held
} held_stderr_t;

static held_stderr_t hold_stderr(void) {
    held_stderr_t h = {dup(STDERR_FILENO), memfd_create("lz-bench-stderr", MFD_CLOEXEC)};
    if (h.saved >= 0 && h.held >= 0 && dup2(h.held, STDERR_FILENO) >= 0) return h;
    if (h.saved >= 0) close(h.saved);
    if (h.held >= 0) close(h.held);
    return (held_stderr_t){-1, -1};
}

// release_stderr gives stderr back, with the lines held when show.
static void release_stderr(held_stderr_t h, bool show) {
    if (h.saved < 0) return;
    dup2(h.saved, STDERR_FILENO);
    char buf[4096];
    ssize_t n;
    for (off_t at = 0; show && (n = pread(h.held, buf, sizeof buf, at)) > 0; at += n)
        if (write(STDERR_FILENO, buf, (size_t)n) != n) break;
    close(h.saved);
    close(h.held);
}

// given: whether the options in argv include name, as --name VALUE or
// --name=VALUE. Only once lzb_parse took them: then no option's value (a
// number, a transport, a codec) can look like an option.
static bool given(int argc, char **argv, const char *name) {
    size_t len = strlen(name);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], name, len) == 0 && (argv[i][len] == '\0' || argv[i][len] == '=')) return true;
    return false;
}

int lz_cmd_bench(int argc, char **argv) {
    lzb_spec_t spec;
    int json;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help();
            return 0;
        }
    }
    char why[128];
    if (lzb_parse(argc - 1, argv + 1, &spec, &json, why, sizeof why) != 0) return usage_error(why);
    if (spec.pattern == LZB_MEMORY) return usage_error("pattern 'memory' is make bench's, not lz bench's");
    // The harness sends the seeds' message whatever --size says (make bench
    // gives a row's contenders one --size); here that would be a size unmeasured.
    if (strcmp(spec.codec, "json") == 0 && given(argc, argv, "--size"))
        return lz_cli_usage_error(&bench_command, "--size does not go with --codec json, which sends the seeds' "
                                                  "%zu-byte message", spec.size);
    if (!given(argc, argv, "--reps")) spec.reps = 3;
    const lzb_ops_t *lz = strcmp(spec.codec, "json") == 0 ? &lzb_liberzmq_json_ops : &lzb_liberzmq_ops;
    series_t mine = {.n = 0}, raw = {.n = 0};
    held_stderr_t held = hold_stderr();
    int rc = run(lz, &spec, &mine, &raw);
    // A measurement that went without an allocation (a message dropped) measured something else.
    bool out_of_memory = atomic_load(&starved);
    release_stderr(held, !out_of_memory);
    if (out_of_memory) return lz_cli_fail(&(lz_cli_opts_t){.cmd = &bench_command}, LZ_ENOMEM, "measuring");
    if (rc != 0) return LZ_EXIT_FAILURE;
    print_result(&spec, lz, &mine, &raw, json);
    return LZ_EXIT_OK;
}
