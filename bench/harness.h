/* The benchmark harness every C contender shares: argument parsing, the
 * sender/receiver and client/server drivers, timing, statistics, CPU pinning,
 * RSS and JSON-lines output. A contender only supplies lzb_ops_t. */
#ifndef LZB_HARNESS_H
#define LZB_HARNESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum lzb_pattern { LZB_PUSHPULL, LZB_PUBSUB, LZB_REQREP, LZB_MEMORY } lzb_pattern_t;

// Which ends a contender's open makes: both, or one of them when the sender
// runs in a child process (--processes 2).
typedef enum lzb_ends { LZB_BOTH_ENDS, LZB_SENDING_END, LZB_RECEIVING_END } lzb_ends_t;

// What to measure; the harness fills endpoint (unique per open) before open.
typedef struct lzb_spec {
    lzb_pattern_t pattern;
    char transport[8];  // "tcp", "ipc" or "inproc"
    size_t size;        // payload bytes (json codecs send the seeds' message)
    long count;         // messages (throughput) or round trips (latency)
    double max_seconds; // a measurement (and its reqrep warm-up) stops early after this long
    int pinned;         // every thread of both ends (both processes) on CPU 0
    int reps;           // repetitions in this process (lz bench; programs use 1)
    char codec[8];      // "raw" or "json" (liberzmq and pyzmq have both)
    int processes;      // throughput over tcp/ipc: 2 puts the sender in a child process
    int spread;         // with processes 2: receiving process on CPU 0, sending one on CPU 1
    lzb_ends_t ends;    // set by the harness before open
    char endpoint[256];
} lzb_spec_t;

// lzb_makes says whether open should make the given end.
static inline int lzb_makes(const lzb_spec_t *spec, lzb_ends_t end) {
    return spec->ends == LZB_BOTH_ENDS || spec->ends == end;
}

// The topic every pub/sub contender sends as its first frame (or prefix).
#define LZB_TOPIC "bench"
// Socket receive/send timeouts: how long an idle wait lasts before the
// driver looks at its stop conditions again.
#define LZB_IO_TIMEOUT_MS 200
// How long every contender's request waits for its reply (liberzmq's
// lz_client_request, a REQ socket's send and receive): a slow round trip
// (a large message, a stalled VM) is a sample, not an idle wait; one that
// takes longer fails the measurement. bench_pyzmq.py's REQUEST_TIMEOUT_MS.
#define LZB_REQUEST_TIMEOUT_MS 5000

// A contender. open makes the ends of spec->pattern that spec->ends names
// (bound and connected, reqrep server started if it runs its own threads;
// reqrep and memory always get both) and returns its state, or NULL after
// printing why on stderr. close takes a state with either end missing.
typedef struct lzb_ops {
    const char *name; // "raw", "czmq", "nng", "liberzmq", "liberzmq-json"
    const char *(*version)(void);
    void *(*open)(const lzb_spec_t *spec);
    // send: send n messages; returns how many went (fewer after a send timeout).
    long (*send)(void *st, long n);
    // recv: receive about n messages (more is fine); fewer means an idle
    // timeout of LZB_IO_TIMEOUT_MS happened.
    long (*recv)(void *st, long n);
    // serve: answer requests until *stop (NULL when open started a server).
    void (*serve)(void *st, const atomic_int *stop);
    // request: one round trip, waiting up to LZB_REQUEST_TIMEOUT_MS for
    // the reply; 0 on success.
    int (*request)(void *st);
    void (*close)(void *st);
    // frame_bytes (optional): the size of the last data frame recv took,
    // for a contender whose frames are not spec->size bytes (JSON ones
    // send an envelope).
    size_t (*frame_bytes)(void *st);
} lzb_ops_t;

typedef struct lzb_tput {
    long received; // messages timed (after the first)
    double msgs_per_sec, mb_per_sec;
    size_t frame_bytes; // ops->frame_bytes after the run; 0 without it
} lzb_tput_t;

typedef struct lzb_latency {
    long round_trips;
    double p50_us, p99_us, mean_us;
} lzb_latency_t;

// Resident memory (VmRSS), and of it the anonymous part (RssAnon: heap and
// stacks, where VmRSS also counts the shared libraries' pages touched).
typedef struct lzb_memory {
    long start_kb, idle_kb, loaded_kb, peak_kb;
    long anon_start_kb, anon_idle_kb;
} lzb_memory_t;

#define LZB_SIZE_MAX (64L << 20) // --size limit: 64 MiB messages
#define LZB_REPS_MAX 64          // --reps limit
// reqrep --count limit: each round trip's time is kept for the percentiles
// (8 bytes each, 80 MB at most); throughput keeps nothing per message.
#define LZB_ROUND_TRIPS_MAX 10000000

// Parsing: argv[0] is the pattern ("pushpull", "pubsub", "reqrep",
// "memory"), then --transport, --size (1..LZB_SIZE_MAX), --count (at least
// 2, at most LZB_ROUND_TRIPS_MAX for reqrep), --max-seconds, --pin, --reps
// (1..LZB_REPS_MAX), --codec, --processes (1, or 2 for pushpull and pubsub
// over tcp or ipc), --spread (only with --processes 2, not with --pin),
// --json, each at most once. With --codec
// json, spec->size is the seeds' message's, whatever --size said (make
// bench gives every contender of a row the same --size). Returns 0, or 2
// for bad arguments with one line in why saying which (the caller prints
// it and the usage).
int lzb_parse(int argc, char **argv, lzb_spec_t *spec, int *json, char *why, size_t why_size);
const char *lzb_pattern_name(lzb_pattern_t pattern);
void lzb_usage(const char *prog);

// Drivers; each returns 0 or -1 (reason on stderr).
int lzb_throughput(const lzb_ops_t *ops, lzb_spec_t *spec, lzb_tput_t *out);
int lzb_latency(const lzb_ops_t *ops, lzb_spec_t *spec, lzb_latency_t *out);
int lzb_memory(const lzb_ops_t *ops, lzb_spec_t *spec, lzb_memory_t *out);

// Output: one JSON object per line, prefixed fields for the lz tool.
void lzb_print_tput(const lzb_ops_t *ops, const lzb_spec_t *spec, const lzb_tput_t *r);
void lzb_print_latency(const lzb_ops_t *ops, const lzb_spec_t *spec, const lzb_latency_t *r);
void lzb_print_memory(const lzb_ops_t *ops, const lzb_spec_t *spec, const lzb_memory_t *r);

// lzb_main: a whole contender program (parse, run spec->reps times, print).
int lzb_main(int argc, char **argv, const lzb_ops_t *ops);

// Helpers for contenders.
uint64_t lzb_now_ns(void);
double lzb_median(double *values, size_t n); // sorts values
long lzb_rss_kb(const char *field);          // "VmRSS", "VmHWM"; -1 if unknown
int lzb_pin_self(int cpu);                   // cpu < 0: every CPU again
void lzb_sleep_ms(int ms);
// The seeds' JSON message for codec json, and its encoded size.
#define LZB_SEED_SYMBOL "BTC"
#define LZB_SEED_PRICE 43210.5
size_t lzb_seed_json(char *buf, size_t len, long seq);

#endif
