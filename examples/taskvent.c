/* Task ventilator: the ZeroMQ guide's taskvent, with liberzmq.
 *
 * Binds a pusher for the workers (taskworker.c), tells the sink
 * (tasksink.c) that a batch starts, then pushes `count` tasks of type
 * "work" with data {"ms": workload}, each a random 1..100 ms.
 *
 *   usage: taskvent [tasks-endpoint] [sink-endpoint] [count]
 *          tasks-endpoint  bound, default tcp://127.0.0.1:5557
 *          sink-endpoint   connected, default tcp://127.0.0.1:5558
 *          count           tasks to send (default 100)
 *          an empty argument ("") takes the default
 *
 * It waits for Enter before sending: a pusher hands tasks only to workers
 * already connected, so start them first (or the first one gets them all).
 */
#define _POSIX_C_SOURCE 200809L

#include <liberzmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

// send_task pushes one task {key: n} of the given type.
static int send_task(lz_push_t *push, const char *type, const char *key, int64_t n) {
    lz_value_t *data = lz_value_object();
    if (!data) return LZ_ENOMEM;
    int rc = lz_value_object_set_int(data, key, n);
    if (rc == LZ_OK) rc = lz_push_send(push, type, data, 0);
    lz_value_destroy(&data);
    return rc;
}

int main(int argc, char **argv) {
    const char *tasks_endpoint = argc > 1 && *argv[1] ? argv[1] : "tcp://127.0.0.1:5557";
    const char *sink_endpoint = argc > 2 && *argv[2] ? argv[2] : "tcp://127.0.0.1:5558";
    long count = argc > 3 ? arg_integer("taskvent", "count", argv[3], 1, LONG_MAX) : 100;

    int status = EXIT_FAILURE;
    lz_push_t *workers = NULL, *sink = NULL;
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", lz_last_error());
        return EXIT_FAILURE;
    }
    // A pusher connects by default; the ventilator is the stable end of the
    // pipeline, so it binds instead and the workers connect to it.
    workers = lz_push_new(ctx, NULL);
    if (!workers) {
        fprintf(stderr, "pusher: %s\n", lz_last_error());
        goto done;
    }
    int rc = lz_node_bind(lz_push_node(workers), tasks_endpoint);
    if (rc != LZ_OK) {
        fprintf(stderr, "bind %s: %s (%s)\n", tasks_endpoint, lz_strerror(rc), lz_last_error());
        goto done;
    }
    sink = lz_push_new(ctx, sink_endpoint);
    if (!sink) {
        fprintf(stderr, "sink pusher on %s: %s\n", sink_endpoint, lz_last_error());
        goto done;
    }

    printf("Press Enter when the workers are ready: ");
    fflush(stdout);
    char line[16];
    // End of input goes on as well; from a pipe, end the prompt's line ourselves.
    if (!fgets(line, sizeof line, stdin) || !isatty(STDIN_FILENO)) printf("\n");
    printf("Sending %ld tasks to workers on %s...\n", count, tasks_endpoint);

    // The first message tells the sink that the batch starts: it starts its clock.
    rc = send_task(sink, "batch", "tasks", count);
    if (rc != LZ_OK) {
        fprintf(stderr, "batch start to the sink: %s (%s)\n", lz_strerror(rc), lz_last_error());
        goto done;
    }

    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    long total_ms = 0;
    for (long i = 0; i < count; i++) {
        int workload = 1 + rand() % 100; // milliseconds of "work"
        total_ms += workload;
        // With no worker connected, a send waits zmq.send_timeout and then
        // fails with LZ_EAGAIN: there is nobody to take the task.
        rc = send_task(workers, "work", "ms", workload);
        if (rc != LZ_OK) {
            fprintf(stderr, "task %ld: %s (%s)\n", i + 1, lz_strerror(rc), lz_last_error());
            if (rc == LZ_EAGAIN) fprintf(stderr, "no worker took it: is a taskworker running?\n");
            goto done;
        }
    }
    printf("Total expected cost: %ld ms\n", total_ms);
    status = EXIT_SUCCESS;

done:
    // Destroying waits up to zmq.linger for the queued tasks to leave.
    lz_push_destroy(&sink);
    lz_push_destroy(&workers);
    lz_context_destroy(&ctx);
    return status;
}
