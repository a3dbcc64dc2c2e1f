/* Task sink: the ZeroMQ guide's tasksink, with liberzmq.
 *
 * Binds a puller, waits for the ventilator's "batch" message (taskvent.c),
 * then collects `count` "result" messages from the workers (taskworker.c)
 * and prints the total elapsed time and how many results each worker sent.
 * It receives on its own thread with lz_pull_recv: no handlers needed.
 *
 *   usage: tasksink [endpoint] [count]
 *          endpoint  bound, default tcp://127.0.0.1:5558
 *          count     results to collect (default 100)
 *          an empty argument ("") takes the default
 */
#define _POSIX_C_SOURCE 200809L

#include <liberzmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"

#define MAX_WORKERS 32

typedef struct worker_count {
    char name[32];
    long results;
} worker_count_t;

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int signo) {
    (void)signo;
    interrupted = 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

// count_worker adds one result to the worker's line of the tally.
static void count_worker(worker_count_t *tally, int *used, const char *name) {
    for (int i = 0; i < *used; i++) {
        if (strcmp(tally[i].name, name) == 0) {
            tally[i].results++;
            return;
        }
    }
    if (*used == MAX_WORKERS) return; // more workers than lines: not tallied
    snprintf(tally[*used].name, sizeof tally[*used].name, "%s", name);
    tally[(*used)++].results = 1;
}

int main(int argc, char **argv) {
    const char *endpoint = argc > 1 && *argv[1] ? argv[1] : "tcp://127.0.0.1:5558";
    long count = argc > 2 ? arg_integer("tasksink", "count", argv[2], 1, LONG_MAX) : 100;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int status = EXIT_FAILURE;
    lz_pull_t *results = NULL;
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", lz_last_error());
        return EXIT_FAILURE;
    }
    results = lz_pull_new(ctx, endpoint); // a puller binds by default
    if (!results) {
        fprintf(stderr, "puller on %s: %s\n", endpoint, lz_last_error());
        goto done;
    }
    printf("waiting for a batch of %ld results on %s (Ctrl-C to stop)\n", count, endpoint);
    fflush(stdout);

    worker_count_t tally[MAX_WORKERS];
    int workers = 0;
    long received = 0;
    double started = 0; // 0: the batch has not started yet
    while (received < count && !interrupted) {
        // A bounded wait, so Ctrl-C is noticed within a second.
        lz_message_t *msg = lz_pull_recv(results, 1000);
        if (!msg) {
            if (lz_last_error_code() == LZ_ETIMEOUT) continue;
            fprintf(stderr, "receive: %s (%s)\n", lz_strerror(lz_last_error_code()), lz_last_error());
            goto done;
        }
        const char *type = lz_message_type(msg);
        if (strcmp(type, "batch") == 0) {
            started = now_ms();
            printf("batch started: %lld tasks\n",
                   (long long)lz_value_find_int(lz_message_value(msg), "tasks", 0));
        } else if (strcmp(type, "result") == 0) {
            if (started == 0) started = now_ms(); // no batch message seen: time from the first result
            count_worker(tally, &workers, lz_value_find_string(lz_message_value(msg), "worker", "?"));
            received++;
            // The guide's progress line: ':' every ten results, '.' otherwise.
            putchar(received % 10 == 0 ? ':' : '.');
            fflush(stdout);
        } else {
            fprintf(stderr, "ignoring a message of type '%s'\n", type);
        }
        lz_message_destroy(&msg); // lz_pull_recv's messages are ours to free
    }

    if (received > 0) {
        printf("\nTotal elapsed time: %.0f ms\n", now_ms() - started);
        for (int i = 0; i < workers; i++) printf("  %-24s %5ld results\n", tally[i].name, tally[i].results);
    }
    status = received == count ? EXIT_SUCCESS : EXIT_FAILURE;

done:
    lz_pull_destroy(&results);
    lz_context_destroy(&ctx);
    return status;
}
