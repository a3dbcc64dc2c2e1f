/* The latency of an uncontended lock: N lz_lock_acquire + lz_lock_release
 * cycles against a lock service in the same process, over ipc or inproc.
 * Prints one JSON line: the acquire's and the release's p50, p99 and mean
 * in microseconds (the release, a plain blocking request, is the control).
 *
 *   bench_lock [ipc|inproc] [cycles]     (default: ipc 20000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "liberzmq.h"

#define WARMUP_CYCLES 1000
#define TTL_MS 10000
#define WAIT_MS 1000

typedef struct stats {
    double p50, p99, mean;
} stats_t;

static stats_t summarize(double *us, long n) {
    double sum = 0;
    for (long i = 0; i < n; i++) sum += us[i];
    stats_t s = {.mean = sum / (double)n};
    s.p50 = lzb_median(us, (size_t)n); // sorts us
    s.p99 = us[(size_t)((double)(n - 1) * 0.99)];
    return s;
}

// cycle times one acquire and one release (microseconds); -1 on a failure.
static int cycle(lz_lock_t *lock, double *acquire_us, double *release_us) {
    uint64_t t0 = lzb_now_ns();
    int rc = lz_lock_acquire(lock, WAIT_MS);
    uint64_t t1 = lzb_now_ns();
    if (rc == LZ_OK) rc = lz_lock_release(lock);
    uint64_t t2 = lzb_now_ns();
    if (rc != LZ_OK) {
        fprintf(stderr, "bench_lock: %s\n", lz_last_error());
        return -1;
    }
    *acquire_us = (double)(t1 - t0) / 1e3;
    *release_us = (double)(t2 - t1) / 1e3;
    return 0;
}

static int run(lz_context_t *ctx, const char *transport, long cycles) {
    char bind[128], connect[128];
    if (strcmp(transport, "inproc") == 0) snprintf(bind, sizeof bind, "@inproc://bench-lock-%d", (int)getpid());
    else snprintf(bind, sizeof bind, "@ipc:///tmp/bench-lock-%d.sock", (int)getpid());
    snprintf(connect, sizeof connect, ">%s", bind + 1);
    lz_server_t *server = lz_server_new(ctx, bind);
    lz_lock_service_t *service = server ? lz_lock_service_attach(server, 0) : NULL;
    lz_lock_t *lock = service && lz_server_start(server) == LZ_OK ? lz_lock_new(ctx, connect, "bench", TTL_MS) : NULL;
    double *acquire = calloc((size_t)cycles, sizeof *acquire), *release = calloc((size_t)cycles, sizeof *release);
    int rc = lock && acquire && release ? 0 : -1;
    if (rc != 0) fprintf(stderr, "bench_lock: setup: %s\n", lz_last_error());
    double a, r;
    for (long i = 0; rc == 0 && i < WARMUP_CYCLES; i++) rc = cycle(lock, &a, &r);
    for (long i = 0; rc == 0 && i < cycles; i++) rc = cycle(lock, &acquire[i], &release[i]);
    if (rc == 0) {
        stats_t sa = summarize(acquire, cycles), sr = summarize(release, cycles);
        printf("{\"transport\":\"%s\",\"cycles\":%ld,\"acquire_p50_us\":%.1f,\"acquire_p99_us\":%.1f,"
               "\"acquire_mean_us\":%.1f,\"release_p50_us\":%.1f,\"release_p99_us\":%.1f,\"release_mean_us\":%.1f}\n",
               transport, cycles, sa.p50, sa.p99, sa.mean, sr.p50, sr.p99, sr.mean);
    }
    free(acquire);
    free(release);
    lz_lock_destroy(&lock);
    lz_server_destroy(&server);
    lz_lock_service_destroy(&service);
    if (strcmp(transport, "ipc") == 0) unlink(bind + strlen("@ipc://"));
    return rc;
}

int main(int argc, char **argv) {
    const char *transport = argc > 1 ? argv[1] : "ipc";
    long cycles = argc > 2 ? atol(argv[2]) : 20000;
    if ((strcmp(transport, "ipc") != 0 && strcmp(transport, "inproc") != 0) || cycles < 2) {
        fprintf(stderr, "usage: %s [ipc|inproc] [cycles >= 2]\n", argv[0]);
        return 2;
    }
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "bench_lock: %s\n", lz_last_error());
        return 1;
    }
    int rc = run(ctx, transport, cycles);
    lz_context_destroy(&ctx);
    return rc == 0 ? 0 : 1;
}
