/* Task worker: the ZeroMQ guide's taskwork, with liberzmq.
 *
 * Pulls "work" tasks from the ventilator (taskvent.c), "does" each one by
 * sleeping its {"ms": workload}, and pushes a "result" to the sink
 * (tasksink.c). Tasks run on a pool of threads, so one worker process
 * handles several at once. Runs until Ctrl-C; start as many as you like.
 *
 *   usage: taskworker [tasks-endpoint] [sink-endpoint] [threads]
 *          tasks-endpoint  default tcp://127.0.0.1:5557
 *          sink-endpoint   default tcp://127.0.0.1:5558
 *          threads         handler threads, 0 = zmq.handler_max_concurrency
 *                          (default 0)
 *          an empty argument ("") takes the default
 */
#define _POSIX_C_SOURCE 200809L

#include <liberzmq.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

typedef struct worker {
    lz_push_t *results; // lz_push_send is thread safe: all handlers share it
    char name[32];      // tells the sink who did the task
    atomic_long done;
} worker_t;

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int signo) {
    (void)signo;
    interrupted = 1;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// do_work runs on a pool thread for every task of type "work".
static int do_work(const lz_message_t *task, void *arg) {
    worker_t *worker = arg;
    int64_t ms = lz_value_find_int(lz_message_value(task), "ms", -1);
    if (ms < 0 || ms > 60000) return -1; // not a task we understand: counted in `errors`
    sleep_ms((long)ms);

    // The result names the task and the worker, for the sink's tally.
    lz_value_t *result = lz_value_object();
    int rc = result ? LZ_OK : LZ_ENOMEM;
    if (rc == LZ_OK) rc = lz_value_object_set_string(result, "task_id", lz_message_id(task));
    if (rc == LZ_OK) rc = lz_value_object_set_int(result, "ms", ms);
    if (rc == LZ_OK) rc = lz_value_object_set_string(result, "worker", worker->name);
    if (rc == LZ_OK) rc = lz_push_send(worker->results, "result", result, 0);
    lz_value_destroy(&result);
    if (rc != LZ_OK) {
        fprintf(stderr, "\nresult to the sink: %s (%s)\n", lz_strerror(rc), lz_last_error());
        return rc;
    }
    atomic_fetch_add(&worker->done, 1);
    printf(".");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    const char *tasks_endpoint = argc > 1 && *argv[1] ? argv[1] : "tcp://127.0.0.1:5557";
    const char *sink_endpoint = argc > 2 && *argv[2] ? argv[2] : "tcp://127.0.0.1:5558";
    long threads = argc > 3 ? arg_integer("taskworker", "threads", argv[3], 0, 1024) : 0;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    worker_t worker = {.results = NULL};
    atomic_init(&worker.done, 0);
    snprintf(worker.name, sizeof worker.name, "worker-%ld", (long)getpid());

    int status = EXIT_FAILURE;
    lz_pull_t *tasks = NULL;
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", lz_last_error());
        return EXIT_FAILURE;
    }
    // A puller binds by default; workers come and go, so this one connects
    // to the ventilator instead. libzmq retries until the ventilator is up.
    tasks = lz_pull_new(ctx, NULL);
    if (!tasks) {
        fprintf(stderr, "puller: %s\n", lz_last_error());
        goto done;
    }
    int rc = lz_node_connect(lz_pull_node(tasks), tasks_endpoint);
    if (rc != LZ_OK) {
        fprintf(stderr, "connect %s: %s (%s)\n", tasks_endpoint, lz_strerror(rc), lz_last_error());
        goto done;
    }
    // The results pusher connects by default.
    worker.results = lz_push_new(ctx, sink_endpoint);
    if (!worker.results) {
        fprintf(stderr, "pusher on %s: %s\n", sink_endpoint, lz_last_error());
        goto done;
    }
    lz_node_set_name(lz_pull_node(tasks), worker.name); // shows in log lines

    rc = lz_pull_on(tasks, "work", do_work, &worker);
    if (rc == LZ_OK) rc = lz_pull_start(tasks, (int)threads);
    if (rc != LZ_OK) {
        fprintf(stderr, "start: %s (%s)\n", lz_strerror(rc), lz_last_error());
        goto done;
    }
    printf("%s: tasks from %s, results to %s (Ctrl-C to stop)\n", worker.name, tasks_endpoint, sink_endpoint);
    fflush(stdout);

    while (!interrupted) sleep_ms(200); // the pool does the work meanwhile

    lz_pull_stop(tasks); // waits for the tasks in progress
    printf("\n%s: %ld tasks done\n", worker.name, atomic_load(&worker.done));
    lz_metrics_t m;
    char json[1024];
    if (lz_node_metrics(lz_pull_node(tasks), &m) == LZ_OK && lz_metrics_to_json(&m, json, sizeof json) > 0)
        printf("puller metrics: %s\n", json);
    status = EXIT_SUCCESS;

done:
    lz_pull_destroy(&tasks); // first: no handler may use the pusher after this
    lz_push_destroy(&worker.results);
    lz_context_destroy(&ctx);
    return status;
}
