/* liberzmq demo: a short tour of the library in one process (`make demo`).
 *
 *   1. publish/subscribe over TCP: two subscribers, two topic filters
 *   2. request/reply over IPC: a calculator server and its client
 *   3. a ventilator / workers / sink pipeline over inproc
 *   4. security: a CURVE server that admits one client key and refuses another
 *   5. the metrics every node kept, the context's total, a Prometheus scrape
 *   6. tracing: one request through two services, its four spans one trace
 *   7. retries and dead letters: a flaky task retried, a hopeless one published as a dead letter
 *   8. validation: a server's JSON Schema turns a malformed request into an error reply
 *
 * Everything binds to free ports or private names, so several demos can
 * run at once. It checks what it shows and exits non-zero when something
 * is wrong, so it doubles as a smoke test.
 */
#define _POSIX_C_SOURCE 200809L

#include <liberzmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// fail reports a failed call with the library's detail; returns -1 so a
// section can `return fail(...)`.
static int fail(const char *what, int rc) {
    fprintf(stderr, "  FAILED: %s: %s (%s)\n", what, lz_strerror(rc), lz_last_error());
    return -1;
}

// check reports a wrong result; returns -1 when ok is false.
static int check(bool ok, const char *what) {
    if (!ok) fprintf(stderr, "  FAILED: %s\n", what);
    return ok ? 0 : -1;
}

// show_log prints the library's log records in line with the demo's own
// output (instead of on stderr). Called from any thread: one printf each.
static void show_log(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)arg;
    printf("  [log %s] %s: %s\n", lz_log_level_name(level), component, message);
}

static void header(const char *title) { printf("\n== %s ==\n\n", title); }

// The metrics table of section 4. Each section records its nodes just
// before destroying them; the context keeps their totals after that.
#define MAX_NODES 16

typedef struct node_row {
    char name[32];
    lz_metrics_t metrics;
} node_row_t;

typedef struct node_table {
    node_row_t rows[MAX_NODES];
    int count;
} node_table_t;

static void record(node_table_t *table, lz_node_t *node) {
    if (!node || table->count == MAX_NODES) return;
    node_row_t *row = &table->rows[table->count];
    snprintf(row->name, sizeof row->name, "%s", lz_node_name(node));
    if (lz_node_metrics(node, &row->metrics) == LZ_OK) table->count++;
}

/* ---- 1. publish/subscribe ----------------------------------------------- */

#define ROUNDS 3
static const char *const cities[2] = {"weather.beijing", "weather.shanghai"};

// What one subscriber received. Handlers run on the subscriber's threads,
// several at once, so everything here is under the lock (or atomic).
typedef struct inbox {
    pthread_mutex_t lock;
    atomic_int hellos;                 // "demo.hello" messages seen
    int readings;                      // weather readings seen
    bool got[ROUNDS][2];               // [seq - 1][city]
    double temperature[ROUNDS][2];
} inbox_t;

static int on_hello(const lz_message_t *msg, void *arg) {
    (void)msg;
    atomic_fetch_add(&((inbox_t *)arg)->hellos, 1);
    return 0;
}

static int on_reading(const lz_message_t *msg, void *arg) {
    inbox_t *inbox = arg;
    const lz_value_t *reading = lz_message_value(msg);
    int64_t seq = lz_value_find_int(reading, "seq", 0);
    int city = strcmp(lz_message_topic(msg), cities[0]) == 0 ? 0 : 1;
    if (seq < 1 || seq > ROUNDS) return -1; // not ours: counted in `errors`
    pthread_mutex_lock(&inbox->lock);
    inbox->readings++;
    inbox->got[seq - 1][city] = true;
    inbox->temperature[seq - 1][city] = lz_value_find_double(reading, "temperature", 0.0);
    pthread_mutex_unlock(&inbox->lock);
    return 0;
}

static int readings_of(inbox_t *inbox) {
    pthread_mutex_lock(&inbox->lock);
    int n = inbox->readings;
    pthread_mutex_unlock(&inbox->lock);
    return n;
}

static int publish_reading(lz_pub_t *pub, int city, int seq) {
    lz_value_t *v = lz_value_object();
    int rc = v ? LZ_OK : LZ_ENOMEM;
    if (rc == LZ_OK) rc = lz_value_object_set_string(v, "city", city == 0 ? "Beijing" : "Shanghai");
    if (rc == LZ_OK) rc = lz_value_object_set_double(v, "temperature", (city == 0 ? 11.5 : 17.0) + seq * 0.5);
    if (rc == LZ_OK) rc = lz_value_object_set_int(v, "humidity", 40 + 5 * seq + 10 * city);
    if (rc == LZ_OK) rc = lz_value_object_set_int(v, "seq", seq);
    if (rc == LZ_OK) rc = lz_pub_publish(pub, cities[city], v);
    lz_value_destroy(&v);
    return rc;
}

static void print_inbox(const char *name, const char *filter, inbox_t *inbox) {
    printf("  %s (subscribed to \"%s\") got %d readings:\n", name, filter, inbox->readings);
    for (int seq = 1; seq <= ROUNDS; seq++)
        for (int city = 0; city < 2; city++)
            if (inbox->got[seq - 1][city])
                printf("      %-17s #%d  %5.1f °C\n", cities[city], seq, inbox->temperature[seq - 1][city]);
}

static int demo_pubsub(lz_context_t *ctx, node_table_t *table) {
    header("1. Publish/subscribe over TCP: topic filtering");
    int status = -1;
    lz_pub_t *pub = NULL;
    lz_sub_t *subs[2] = {NULL, NULL};
    inbox_t inboxes[2];
    const char *names[2] = {"beijing-only", "all-weather"};
    const char *filters[2] = {"weather.beijing", "weather."};
    for (int i = 0; i < 2; i++) {
        memset(&inboxes[i], 0, sizeof inboxes[i]);
        pthread_mutex_init(&inboxes[i].lock, NULL);
        atomic_init(&inboxes[i].hellos, 0);
    }

    // Port "*": the system picks a free one; lz_node_endpoint tells which.
    pub = lz_pub_new(ctx, "@tcp://127.0.0.1:*");
    if (!pub) {
        fail("publisher", lz_last_error_code());
        goto done;
    }
    lz_node_set_name(lz_pub_node(pub), "publisher");
    const char *endpoint = lz_node_endpoint(lz_pub_node(pub));
    printf("  publisher bound to %s\n", endpoint);

    for (int i = 0; i < 2; i++) {
        subs[i] = lz_sub_new(ctx, endpoint); // no prefix: a subscriber connects
        if (!subs[i]) {
            fail("subscriber", lz_last_error_code());
            goto done;
        }
        lz_node_set_name(lz_sub_node(subs[i]), names[i]);
        // Each subscriber also listens to "demo.hello", only to learn when
        // its subscriptions have reached the publisher (below). It is
        // subscribed last: once a hello gets through, so does the weather.
        int rc = lz_sub_on(subs[i], filters[i], on_reading, &inboxes[i]);
        if (rc == LZ_OK) rc = lz_sub_on(subs[i], "demo.hello", on_hello, &inboxes[i]);
        if (rc == LZ_OK) rc = lz_sub_start(subs[i]);
        if (rc != LZ_OK) {
            fail("subscriber set-up", rc);
            goto done;
        }
        printf("  %-12s subscribes to \"%s\"\n", names[i], filters[i]);
    }

    // The slow joiner: a subscription takes a moment to travel to the
    // publisher, and until it arrives the publisher drops those messages.
    // Say hello until both subscribers hear it (within 5 s), then publish.
    int probes = 0;
    while (atomic_load(&inboxes[0].hellos) == 0 || atomic_load(&inboxes[1].hellos) == 0) {
        if (++probes > 250) {
            check(false, "the subscribers did not join within 5 s");
            goto done;
        }
        lz_value_t *hello = lz_value_null();
        int rc = hello ? lz_pub_publish(pub, "demo.hello", hello) : LZ_ENOMEM;
        lz_value_destroy(&hello);
        if (rc != LZ_OK) {
            fail("publish hello", rc);
            goto done;
        }
        sleep_ms(20);
    }
    printf("  both subscribers joined after %d hello(s)\n", probes);

    for (int seq = 1; seq <= ROUNDS; seq++) {
        for (int city = 0; city < 2; city++) {
            int rc = publish_reading(pub, city, seq);
            if (rc != LZ_OK) {
                fail("publish", rc);
                goto done;
            }
        }
    }
    printf("  published %d readings on each of %s and %s\n\n", ROUNDS, cities[0], cities[1]);

    // Wait (bounded) for the readings each filter lets through.
    double deadline = now_ms() + 5000;
    while ((readings_of(&inboxes[0]) < ROUNDS || readings_of(&inboxes[1]) < 2 * ROUNDS) && now_ms() < deadline)
        sleep_ms(5);
    sleep_ms(50); // a little longer, so a reading that should not arrive would
    for (int i = 0; i < 2; i++) lz_sub_stop(subs[i]); // handlers are done: the inboxes are final

    for (int i = 0; i < 2; i++) print_inbox(names[i], filters[i], &inboxes[i]);
    status = 0;
    for (int seq = 0; seq < ROUNDS; seq++) {
        status |= check(inboxes[0].got[seq][0] && !inboxes[0].got[seq][1],
                        "beijing-only should get every Beijing reading and no Shanghai one");
        status |= check(inboxes[1].got[seq][0] && inboxes[1].got[seq][1],
                        "all-weather should get every reading");
    }
    status |= check(inboxes[0].readings == ROUNDS && inboxes[1].readings == 2 * ROUNDS,
                    "each reading should arrive exactly once");

done:
    record(table, lz_pub_node(pub));
    for (int i = 0; i < 2; i++) {
        record(table, lz_sub_node(subs[i]));
        lz_sub_destroy(&subs[i]); // stops it first if still running
        pthread_mutex_destroy(&inboxes[i].lock);
    }
    lz_pub_destroy(&pub);
    return status;
}

/* ---- 2. request/reply --------------------------------------------------- */

// calculate serves "add", "subtract", "multiply" and "divide"; arg is the
// operator. The request data is {"a": number, "b": number}; the reply is
// {"result": number}. A failure returns an error code and a message.
static int calculate(const lz_message_t *request, lz_value_t **reply, void *arg) {
    char op = *(const char *)arg;
    const lz_value_t *data = lz_message_value(request);
    if (!lz_value_get(data, "a") || !lz_value_get(data, "b")) {
        *reply = lz_value_string("expected {\"a\": number, \"b\": number}");
        return LZ_EVALIDATION;
    }
    double a = lz_value_find_double(data, "a", 0), b = lz_value_find_double(data, "b", 0);
    if (op == '/' && b == 0) {
        *reply = lz_value_string("division by zero"); // the error reply's message
        return LZ_EVALIDATION;
    }
    double result = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
    lz_value_t *answer = lz_value_object();
    if (!answer || lz_value_object_set_double(answer, "result", result) != LZ_OK) {
        lz_value_destroy(&answer);
        return LZ_ENOMEM;
    }
    *reply = answer;
    return 0;
}

typedef struct call {
    const char *action;
    char op;
    double a, b;
    double expected; // the result, when the call succeeds
    bool fails;      // true: the server should answer with an error reply
} call_t;

// ask sends one request and prints the outcome; -1 when it is not the one expected.
static int ask(lz_client_t *client, const call_t *call) {
    lz_value_t *data = lz_value_object();
    if (!data || lz_value_object_set_double(data, "a", call->a) != LZ_OK ||
        lz_value_object_set_double(data, "b", call->b) != LZ_OK) {
        lz_value_destroy(&data);
        return fail("request data", LZ_ENOMEM);
    }
    lz_value_t *reply = NULL;
    int rc = lz_client_request(client, call->action, data, &reply, 3000);
    lz_value_destroy(&data);

    // The line is printed once the answer is in, after any log line the
    // server wrote meanwhile.
    char question[64];
    snprintf(question, sizeof question, "%-9s %6g %c %-4g", call->action, call->a, call->op, call->b);
    int status = 0;
    if (rc == LZ_OK) {
        double result = lz_value_find_double(reply, "result", -1);
        printf("  %s = %g\n", question, result);
        status = check(!call->fails && result > call->expected - 1e-9 && result < call->expected + 1e-9,
                       "unexpected result");
    } else if (rc == LZ_EREMOTE) {
        // An error reply: the server's message is in the reply object.
        printf("  %s -> error reply: \"%s\"\n", question, lz_value_find_string(reply, "message", "?"));
        status = check(call->fails, "unexpected error reply");
    } else {
        status = fail(call->action, rc);
    }
    lz_value_destroy(&reply);
    return status;
}

static int demo_reqrep(lz_context_t *ctx, node_table_t *table) {
    header("2. Request/reply over IPC: a calculator");
    int status = -1;
    lz_server_t *server = NULL;
    lz_client_t *client = NULL;

    // An IPC endpoint is a file: a name of our own, so demos never collide.
    const char *tmp = getenv("TMPDIR");
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/liberzmq-demo-%ld.ipc", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());

    server = lz_server_new(ctx, endpoint);
    if (!server) {
        fail("server", lz_last_error_code());
        goto done;
    }
    lz_node_set_name(lz_server_node(server), "calc-server");
    // One handler for the four actions; its arg tells which operator.
    static const char *const actions[] = {"add", "subtract", "multiply", "divide"};
    static char operators[] = {'+', '-', '*', '/'};
    int rc = LZ_OK;
    for (int i = 0; i < 4 && rc == LZ_OK; i++) rc = lz_server_on(server, actions[i], calculate, &operators[i]);
    if (rc == LZ_OK) rc = lz_server_start(server); // handlers run on the server's threads from now on
    if (rc != LZ_OK) {
        fail("server set-up", rc);
        goto done;
    }
    printf("  calc-server serves add, subtract, multiply, divide on %s\n\n", endpoint);

    // A client needs no slow-joiner care: a request waits for its reply.
    client = lz_client_new(ctx, endpoint);
    if (!client) {
        fail("client", lz_last_error_code());
        goto done;
    }
    lz_node_set_name(lz_client_node(client), "calc-client");

    static const call_t calls[] = {
        {"add", '+', 6, 7, 13, false},      {"subtract", '-', 10, 4.5, 5.5, false},
        {"multiply", '*', 6, 7, 42, false}, {"divide", '/', 22, 8, 2.75, false},
        {"divide", '/', 1, 0, 0, true}, // the server answers with an error reply
        {"power", '^', 2, 10, 0, true}, // no such action: an error reply as well
    };
    status = 0;
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) status |= ask(client, &calls[i]);

done:
    record(table, lz_server_node(server));
    record(table, lz_client_node(client));
    lz_client_destroy(&client);
    lz_server_destroy(&server); // stops it first
    remove(endpoint + strlen("ipc://")); // libzmq leaves the socket file on close
    return status;
}

/* ---- 3. pipeline -------------------------------------------------------- */

#define TASKS 30
#define WORKERS 3

typedef struct worker {
    char name[16];
    lz_pull_t *tasks;
    lz_push_t *results; // shared by every worker: lz_push_send is thread safe
} worker_t;

typedef struct ventilator {
    lz_push_t *push;
    int rc;       // the first failure, or LZ_OK
    long cost_ms; // the sum of the workloads sent
} ventilator_t;

static long workload_ms(int task) { return 5 + (task * 7) % 31; } // 5..35 ms, repeatable

// do_work handles "work" tasks {"ms": n}: sleep n ms, then report to the sink.
static int do_work(const lz_message_t *task, void *arg) {
    worker_t *worker = arg;
    int64_t ms = lz_value_find_int(lz_message_value(task), "ms", -1);
    if (ms < 0) return -1;
    sleep_ms((long)ms);
    lz_value_t *result = lz_value_object();
    int rc = result ? LZ_OK : LZ_ENOMEM;
    if (rc == LZ_OK) rc = lz_value_object_set_string(result, "worker", worker->name);
    if (rc == LZ_OK) rc = lz_value_object_set_int(result, "ms", ms);
    if (rc == LZ_OK) rc = lz_push_send(worker->results, "result", result, 0);
    lz_value_destroy(&result);
    return rc;
}

// ventilator_main runs on its own thread: it sends while main collects.
static void *ventilator_main(void *arg) {
    ventilator_t *vent = arg;
    for (int i = 0; i < TASKS && vent->rc == LZ_OK; i++) {
        lz_value_t *data = lz_value_object();
        vent->rc = data ? lz_value_object_set_int(data, "ms", workload_ms(i)) : LZ_ENOMEM;
        if (vent->rc == LZ_OK) vent->rc = lz_push_send(vent->push, "work", data, 0);
        if (vent->rc == LZ_OK) vent->cost_ms += workload_ms(i);
        lz_value_destroy(&data);
    }
    if (vent->rc != LZ_OK) fail("ventilator", vent->rc); // lz_last_error is per thread: report here
    return NULL;
}

static int demo_pipeline(lz_context_t *ctx, node_table_t *table) {
    header("3. Pipeline over inproc: ventilator, 3 workers, sink");
    int status = -1;
    ventilator_t vent = {NULL, LZ_OK, 0};
    lz_pull_t *sink = NULL;
    lz_push_t *results = NULL;
    worker_t workers[WORKERS];
    memset(workers, 0, sizeof workers);

    // Bind first, connect after: inproc needs the name to exist (and the
    // pusher then sees all three workers before its first task).
    vent.push = lz_push_new(ctx, "@inproc://demo-tasks"); // '@': bind, not the default connect
    sink = lz_pull_new(ctx, "inproc://demo-results");    // a puller binds by default
    results = lz_push_new(ctx, "inproc://demo-results");
    if (!vent.push || !sink || !results) {
        fail("pipeline nodes", lz_last_error_code());
        goto done;
    }
    lz_node_set_name(lz_push_node(vent.push), "ventilator");
    lz_node_set_name(lz_pull_node(sink), "sink");
    lz_node_set_name(lz_push_node(results), "results");

    for (int i = 0; i < WORKERS; i++) {
        worker_t *w = &workers[i];
        snprintf(w->name, sizeof w->name, "worker-%d", i + 1);
        w->results = results;
        w->tasks = lz_pull_new(ctx, ">inproc://demo-tasks"); // '>': a worker connects
        if (!w->tasks) {
            fail(w->name, lz_last_error_code());
            goto done;
        }
        lz_node_set_name(lz_pull_node(w->tasks), w->name);
        int rc = lz_pull_on(w->tasks, "work", do_work, w);
        if (rc == LZ_OK) rc = lz_pull_start(w->tasks, 1); // one handler thread each
        if (rc != LZ_OK) {
            fail(w->name, rc);
            goto done;
        }
    }

    double started = now_ms();
    pthread_t thread;
    if (pthread_create(&thread, NULL, ventilator_main, &vent) != 0) {
        check(false, "cannot start the ventilator thread");
        goto done;
    }
    // The sink: receive on this thread, no handlers needed.
    int done_by[WORKERS] = {0};
    long busy_ms[WORKERS] = {0};
    int collected = 0;
    for (; collected < TASKS; collected++) {
        lz_message_t *msg = lz_pull_recv(sink, 5000);
        if (!msg) {
            fail("sink", lz_last_error_code());
            break;
        }
        const lz_value_t *result = lz_message_value(msg);
        const char *who = lz_value_find_string(result, "worker", "");
        for (int i = 0; i < WORKERS; i++) {
            if (strcmp(who, workers[i].name) == 0) {
                done_by[i]++;
                busy_ms[i] += (long)lz_value_find_int(result, "ms", 0);
            }
        }
        lz_message_destroy(&msg);
    }
    double elapsed = now_ms() - started;
    pthread_join(thread, NULL);

    printf("  %-10s %6s %9s\n", "worker", "tasks", "busy");
    for (int i = 0; i < WORKERS; i++) printf("  %-10s %6d %6ld ms\n", workers[i].name, done_by[i], busy_ms[i]);
    printf("\n  %d tasks, %ld ms of work, done in %.0f ms (%.1fx faster than one worker)\n", collected,
           vent.cost_ms, elapsed, elapsed > 0 ? (double)vent.cost_ms / elapsed : 0.0);
    status = check(vent.rc == LZ_OK && collected == TASKS, "every task should come back");
    for (int i = 0; i < WORKERS; i++) status |= check(done_by[i] > 0, "each worker should get tasks");

done:
    // Stop the workers before the pusher they share goes away.
    for (int i = 0; i < WORKERS; i++) lz_pull_stop(workers[i].tasks);
    record(table, lz_push_node(vent.push));
    for (int i = 0; i < WORKERS; i++) {
        record(table, lz_pull_node(workers[i].tasks));
        lz_pull_destroy(&workers[i].tasks);
    }
    record(table, lz_push_node(results));
    record(table, lz_pull_node(sink));
    lz_push_destroy(&vent.push);
    lz_push_destroy(&results);
    lz_pull_destroy(&sink);
    return status;
}

/* ---- 4. security --------------------------------------------------------- */

// whoami answers with the caller's CURVE key, as the server admitted it.
static int whoami(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    const char *key = lz_message_peer_key(request);
    *reply = lz_value_string(key ? key : "nobody");
    return *reply ? LZ_OK : LZ_ENOMEM;
}

// context_with: a context of its own with these settings (key, value pairs).
static lz_context_t *context_with(const char *const *settings) {
    lz_config_t *config = lz_config_new();
    for (int i = 0; config && settings[i]; i += 2)
        if (lz_config_set(config, settings[i], settings[i + 1]) != LZ_OK) lz_config_destroy(&config);
    lz_context_t *ctx = config ? lz_context_new(config) : NULL;
    lz_config_destroy(&config);
    return ctx;
}

// ask_as asks the server who we are, as a client with the given keys.
static int ask_as(const char *name, const char *secret, const char *server_key, const char *endpoint,
                  bool admitted) {
    const char *settings[] = {"security.curve_secret_key", secret, "security.curve_server_key", server_key,
                              "zmq.request_retries", "0", "zmq.linger", "0", "logging.level", "warning", NULL};
    lz_context_t *ctx = context_with(settings);
    if (ctx) lz_logger_to_callback(lz_context_logger(ctx), show_log, NULL);
    lz_client_t *client = ctx ? lz_client_new(ctx, endpoint) : NULL;
    lz_value_t *reply = NULL;
    int rc = client ? lz_client_request(client, "whoami", NULL, &reply, 500) : lz_last_error_code();
    if (rc == LZ_OK) printf("  %-8s -> the server sees key %s\n", name, lz_value_get_string(reply, NULL));
    else printf("  %-8s -> %s: refused, nothing reached the server\n", name, lz_strerror(rc));
    int status = check((rc == LZ_OK) == admitted, admitted ? "an authorized client was refused"
                                                           : "an unknown client got in");
    lz_value_destroy(&reply);
    lz_client_destroy(&client);
    lz_context_destroy(&ctx);
    return status;
}

// settled_handshake_failures counts node's failed handshakes once the count
// holds still for 100 ms (at most a second): a refused client that rebuilt
// its socket may still be half-way through another handshake as it goes,
// which the server's monitor reports a moment later.
static uint64_t settled_handshake_failures(lz_node_t *node) {
    lz_metrics_t m;
    lz_node_metrics(node, &m);
    for (uint64_t seen = UINT64_MAX, rounds = 0; m.handshake_failures != seen && rounds < 10; rounds++) {
        seen = m.handshake_failures;
        sleep_ms(100);
        lz_node_metrics(node, &m);
    }
    return m.handshake_failures;
}

static int demo_security(void) {
    header("4. Security: CURVE encryption, authorized keys, an audit log");
    char server_public[LZ_CURVE_KEY_SIZE], server_secret[LZ_CURVE_KEY_SIZE];
    char alice_public[LZ_CURVE_KEY_SIZE], alice_secret[LZ_CURVE_KEY_SIZE];
    char mallory_public[LZ_CURVE_KEY_SIZE], mallory_secret[LZ_CURVE_KEY_SIZE];
    if (lz_curve_keypair(server_public, server_secret) != LZ_OK || lz_curve_keypair(alice_public, alice_secret) ||
        lz_curve_keypair(mallory_public, mallory_secret))
        return fail("key pairs", lz_last_error_code());
    printf("  server key %s, alice %s, mallory %s\n", server_public, alice_public, mallory_public);
    printf("  the server admits alice's key only, and audits:\n\n");
    const char *settings[] = {"security.curve_secret_key", server_secret, "security.authorized_keys", alice_public,
                              "security.audit", "true", "zmq.linger", "0", NULL};
    lz_context_t *ctx = context_with(settings);
    if (!ctx) return fail("secure context", lz_last_error_code());
    lz_logger_to_callback(lz_context_logger(ctx), show_log, NULL);
    int status = -1;
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    if (!server || lz_server_on(server, "whoami", whoami, NULL) != LZ_OK || lz_server_start(server) != LZ_OK) {
        fail("secure server", lz_last_error_code());
        goto done;
    }
    const char *endpoint = lz_node_endpoint(lz_server_node(server));
    status = ask_as("alice", alice_secret, server_public, endpoint, true);
    status |= ask_as("mallory", mallory_secret, server_public, endpoint, false);
    uint64_t failures = settled_handshake_failures(lz_server_node(server));
    printf("\n  server handshake_failures: %llu (mallory's tries)\n", (unsigned long long)failures);
    status |= check(failures > 0, "the refusal was not counted");
done:
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
    return status;
}

/* ---- 5. metrics --------------------------------------------------------- */

static void print_metrics_row(const char *name, const lz_metrics_t *m) {
    printf("  %-14s %6llu %8llu %10llu %10llu %8llu %7llu %9llu\n", name, (unsigned long long)m->messages_sent,
           (unsigned long long)m->messages_received, (unsigned long long)m->bytes_sent,
           (unsigned long long)m->bytes_received,
           (unsigned long long)(m->outbound_dropped + m->inbound_dropped), (unsigned long long)m->errors,
           (unsigned long long)m->request_timeouts);
}

static int demo_metrics(lz_context_t *ctx, const node_table_t *table) {
    header("5. Metrics: what every node counted");
    printf("  %-14s %6s %8s %10s %10s %8s %7s %9s\n", "node", "sent", "received", "bytes out", "bytes in",
           "dropped", "errors", "timeouts");
    for (int i = 0; i < table->count; i++) print_metrics_row(table->rows[i].name, &table->rows[i].metrics);

    // The context sums every node it has had, open or closed.
    lz_metrics_t total;
    int rc = lz_context_metrics(ctx, &total);
    if (rc != LZ_OK) return fail("context metrics", rc);
    printf("  %.*s\n", 78, "--------------------------------------------------------------------------------");
    print_metrics_row("context total", &total);
    printf("\n  The subscribers' counts include the demo.hello probes; the server's\n"
           "  errors are the two error replies of section 2.\n");

    // The same counters as Prometheus scrapes them (lz_prometheus_new or
    // metrics.prometheus_listen serve this at /metrics): one family here.
    char *text = lz_context_prometheus(ctx);
    if (!text) return fail("prometheus", lz_last_error_code());
    printf("\n  Prometheus text (%zu bytes), its messages_sent family (every node has\n"
           "  closed by now: their counts live on in the \"(closed)\" series):\n\n", strlen(text));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "liberzmq_messages_sent_total")) printf("    %s\n", line);
    free(text);
    return 0;
}

/* ---- 6. tracing ---------------------------------------------------------- */

// The spans the context reports, copied as they end (on its threads).
#define MAX_SEEN 8
typedef struct seen_span {
    char name[32], trace_id[33], span_id[17], parent_id[17];
    lz_span_kind_t kind;
    double ms;
} seen_span_t;

typedef struct seen {
    pthread_mutex_t lock;
    int count;
    seen_span_t span[MAX_SEEN];
} seen_t;

static void on_span(const lz_span_t *span, void *arg) {
    seen_t *seen = arg;
    pthread_mutex_lock(&seen->lock);
    if (seen->count < MAX_SEEN) {
        seen_span_t *s = &seen->span[seen->count++];
        snprintf(s->name, sizeof s->name, "%s", lz_span_name(span));
        snprintf(s->trace_id, sizeof s->trace_id, "%s", lz_span_trace_id(span));
        snprintf(s->span_id, sizeof s->span_id, "%s", lz_span_id(span));
        snprintf(s->parent_id, sizeof s->parent_id, "%s", lz_span_parent_id(span));
        s->kind = lz_span_kind(span);
        s->ms = (double)(lz_span_end_ns(span) - lz_span_start_ns(span)) / 1e6;
    }
    pthread_mutex_unlock(&seen->lock);
}

static int seen_count(seen_t *seen) {
    pthread_mutex_lock(&seen->lock);
    int n = seen->count;
    pthread_mutex_unlock(&seen->lock);
    return n;
}

// price is the pricing service: 9.5 a piece.
static int price(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_double(9.5 * (double)lz_value_find_int(lz_message_value(request), "qty", 0));
    return *reply ? LZ_OK : LZ_ENOMEM;
}

// checkout asks the pricing service from inside its own handler: that
// request joins the checkout's trace by itself.
static int checkout(const lz_message_t *request, lz_value_t **reply, void *arg) {
    return lz_client_request(arg, "price", lz_message_value(request), reply, 2000);
}

// print_trace prints the spans as a tree, each under its parent, and
// returns how many hang together under the first (the trace's root).
static int print_trace(seen_t *seen) {
    static const char *const kinds[] = {"", "internal", "server", "client", "producer", "consumer"};
    const char *parent = "";
    int shown = 0;
    for (int depth = 0; depth < seen->count; depth++) {
        int i = 0;
        while (i < seen->count && strcmp(seen->span[i].parent_id, parent) != 0) i++;
        if (i == seen->count) break;
        if (depth == 0) printf("  trace %s\n", seen->span[i].trace_id);
        printf("  %*s%-6s %-8s span %s %6.2f ms\n", 2 + 2 * depth, "", kinds[seen->span[i].kind], seen->span[i].name,
               seen->span[i].span_id, seen->span[i].ms);
        parent = seen->span[i].span_id;
        shown++;
    }
    return shown;
}

static int demo_tracing(void) {
    header("6. Tracing: one request through two services, one trace");
    static seen_t seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
    const char *settings[] = {"tracing.enabled", "true", "zmq.linger", "0", NULL};
    lz_context_t *ctx = context_with(settings);
    if (!ctx || lz_context_on_span(ctx, on_span, &seen) != LZ_OK) return fail("traced context", lz_last_error_code());
    int status = -1;
    lz_value_t *order = lz_value_object(), *total = NULL;
    lz_server_t *pricing = lz_server_new(ctx, "tcp://127.0.0.1:*"), *shop = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_client_t *to_pricing = pricing ? lz_client_new(ctx, lz_node_endpoint(lz_server_node(pricing))) : NULL;
    lz_client_t *customer = shop ? lz_client_new(ctx, lz_node_endpoint(lz_server_node(shop))) : NULL;
    if (!to_pricing || !customer || lz_server_on(pricing, "price", price, NULL) ||
        lz_server_on(shop, "checkout", checkout, to_pricing) || lz_server_start(pricing) || lz_server_start(shop) ||
        lz_value_object_set_int(order, "qty", 4)) {
        fail("tracing services", lz_last_error_code());
        goto done;
    }
    int rc = lz_client_request(customer, "checkout", order, &total, 2000);
    if (rc != LZ_OK) {
        fail("checkout", rc);
        goto done;
    }
    printf("  checkout of 4 pieces -> %.1f; the spans, each under its parent:\n\n", lz_value_get_double(total));
    for (int waited = 0; seen_count(&seen) < 4 && waited < 2000; waited += 5) sleep_ms(5); // servers report after replying
    int linked = print_trace(&seen);
    printf("\n  The customer's request carried its traceparent to the shop, whose handler's\n"
           "  request to the pricing service became the next span of the same trace.\n");
    status = check(seen_count(&seen) == 4 && linked == 4, "the four spans do not form one trace");
done:
    lz_value_destroy(&total);
    lz_value_destroy(&order);
    lz_client_destroy(&customer);
    lz_server_destroy(&shop);
    lz_client_destroy(&to_pricing);
    lz_server_destroy(&pricing);
    lz_context_destroy(&ctx);
    return status;
}

/* ---- 7. retries and dead letters ---------------------------------------- */

// thumbnail fails as the file name asks: "busy" files on their first run
// only, "corrupt" ones every time.
static int thumbnail(const lz_message_t *task, void *arg) {
    (void)arg;
    const char *file = lz_value_get_string(lz_message_value(task), NULL);
    int attempt = lz_message_attempt(task);
    if (file && strstr(file, "corrupt"))
        return lz_set_error(LZ_EVALIDATION, "%s: corrupt PNG header", file);
    if (file && strstr(file, "busy") && attempt == 1) return lz_set_error(LZ_ETIMEOUT, "%s: storage busy", file);
    printf("  thumbnail of %s made on attempt %d\n", file ? file : "?", attempt);
    return 0;
}

static int send_thumbnails(lz_push_t *push) {
    const char *files[] = {"cat.png", "busy-dog.png", "corrupt-bird.png"};
    for (int i = 0; i < 3; i++) {
        lz_value_t *file = lz_value_string(files[i]);
        int rc = file ? lz_push_send(push, "thumbnail", file, 0) : LZ_ENOMEM;
        lz_value_destroy(&file);
        if (rc != LZ_OK) return fail("send", rc);
    }
    return 0;
}

static int demo_dead_letters(void) {
    header("7. Retries and dead letters: a flaky task, a hopeless one");
    const char *settings[] = {"tasks.max_retries", "2", "tasks.retry_delay", "30", "zmq.linger", "0", NULL};
    lz_context_t *ctx = context_with(settings);
    if (!ctx || lz_logger_to_callback(lz_context_logger(ctx), show_log, NULL) != LZ_OK)
        return fail("context", lz_last_error_code());
    int status = -1;
    lz_message_t *letter = NULL;
    lz_pub_t *dead_letters = lz_pub_new(ctx, "inproc://demo-dead-letters");
    lz_sub_t *watcher = lz_sub_new(ctx, "inproc://demo-dead-letters");
    lz_pull_t *worker = lz_pull_new(ctx, "inproc://demo-thumbnails");
    lz_push_t *push = lz_push_new(ctx, "inproc://demo-thumbnails");
    if (!dead_letters || !watcher || !worker || !push || lz_sub_subscribe(watcher, "dead_letter") ||
        lz_node_set_name(lz_pull_node(worker), "thumbnailer") || lz_pull_on(worker, "thumbnail", thumbnail, NULL) ||
        lz_pull_set_dead_letter(worker, dead_letters, NULL) || lz_pull_start(worker, 1)) {
        fail("nodes", lz_last_error_code());
        goto done;
    }
    sleep_ms(50); // the subscription reaches the publisher
    if (send_thumbnails(push) != 0) goto done;
    letter = lz_sub_recv(watcher, 5000);
    if (!letter) {
        fail("dead letter", lz_last_error_code());
        goto done;
    }
    char *json = lz_value_to_json(lz_message_value(letter));
    printf("\n  the dead letter, as any subscriber of \"%s\" reads it:\n  %s\n", lz_message_topic(letter),
           json ? json : "?");
    free(json);
    lz_pull_stop(worker);
    lz_metrics_t m;
    lz_node_metrics(lz_pull_node(worker), &m);
    printf("\n  thumbnailer: %llu retries, %llu dead letter, %llu handler errors\n",
           (unsigned long long)m.task_retries, (unsigned long long)m.dead_letters, (unsigned long long)m.errors);
    const lz_value_t *value = lz_message_value(letter);
    status = check(m.task_retries == 3 && m.dead_letters == 1 && lz_value_find_int(value, "retry_count", 0) == 3 &&
                       strcmp(lz_value_find_string(lz_value_get(value, "original_task"), "data", ""),
                              "corrupt-bird.png") == 0,
                   "one retry for the busy file, two and a dead letter for the corrupt one");
done:
    lz_message_destroy(&letter);
    lz_push_destroy(&push);
    lz_pull_destroy(&worker); // before the publisher it borrows
    lz_sub_destroy(&watcher);
    lz_pub_destroy(&dead_letters);
    lz_context_destroy(&ctx);
    return status;
}

/* ---- 8. validation ----------------------------------------------------- */

static const char transfer_schema[] =
    "{\"type\": \"object\", \"required\": [\"from\", \"to\", \"amount\"],"
    " \"properties\": {\"from\": {\"type\": \"string\", \"pattern\": \"^[A-Z]{2}[0-9]{4,}$\"},"
    "                \"to\": {\"type\": \"string\", \"pattern\": \"^[A-Z]{2}[0-9]{4,}$\"},"
    "                \"amount\": {\"type\": \"number\", \"exclusiveMinimum\": 0}},"
    " \"additionalProperties\": false}";

static int transfer(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_double(lz_value_find_double(lz_message_value(request), "amount", 0));
    return *reply ? LZ_OK : LZ_ENOMEM;
}

// try_transfer sends one transfer and prints what came back.
static int try_transfer(lz_client_t *client, const char *json) {
    lz_value_t *data = lz_value_from_json(json, strlen(json)), *reply = NULL;
    int rc = data ? lz_client_request(client, "transfer", data, &reply, 2000) : LZ_ENOMEM;
    if (rc == LZ_OK) printf("  %-48s -> transferred %.2f\n", json, lz_value_get_double(reply));
    else if (rc == LZ_EREMOTE) printf("  %-48s -> %s\n", json, lz_value_find_string(reply, "message", "?"));
    else fail("transfer", rc);
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    return rc;
}

static int demo_validation(void) {
    header("8. Validation: a JSON Schema on the server's \"transfer\" action");
    const char *settings[] = {"zmq.linger", "0", "logging.level", "critical", NULL};
    lz_context_t *ctx = context_with(settings);
    lz_schema_t *schema = lz_schema_from_json(transfer_schema, strlen(transfer_schema));
    lz_server_t *bank = ctx ? lz_server_new(ctx, "tcp://127.0.0.1:*") : NULL;
    lz_client_t *client = bank ? lz_client_new(ctx, lz_node_endpoint(lz_server_node(bank))) : NULL;
    int status = -1;
    if (!schema || !client || lz_node_set_schema(lz_server_node(bank), "transfer", schema) ||
        lz_server_on(bank, "transfer", transfer, NULL) || lz_server_start(bank)) {
        fail("validated server", lz_last_error_code());
    } else {
        int good = try_transfer(client, "{\"from\":\"DE1234\",\"to\":\"FR5678\",\"amount\":25.5}");
        int negative = try_transfer(client, "{\"from\":\"DE1234\",\"to\":\"FR5678\",\"amount\":-3}");
        int bad_iban = try_transfer(client, "{\"from\":\"de12\",\"to\":\"FR5678\",\"amount\":1}");
        int extra = try_transfer(client, "{\"from\":\"DE1234\",\"to\":\"FR5678\",\"amount\":1,\"fee\":0}");
        printf("\n  The handler ran once: the schema answered the other three, with the path\n"
               "  and the reason, before any code of ours saw them.\n");
        status = check(good == LZ_OK && negative == LZ_EREMOTE && bad_iban == LZ_EREMOTE && extra == LZ_EREMOTE,
                       "one transfer passes, three are refused");
    }
    lz_client_destroy(&client);
    lz_server_destroy(&bank);
    lz_context_destroy(&ctx);
    lz_schema_destroy(&schema);
    return status;
}

/* ---- 9. distributed locks -------------------------------------------------- */

// take_turns: a holds the lease, b is refused, a gives it back, b gets it
// with a higher fencing token. Returns whether all of that happened.
static bool take_turns(lz_lock_t *a, lz_lock_t *b) {
    int first = lz_lock_try_acquire(a);
    int64_t token_a = lz_lock_fencing_token(a);
    printf("  worker-a  acquire -> %s, fencing token %lld\n", lz_strerror(first), (long long)token_a);
    int busy = lz_lock_try_acquire(b);
    printf("  worker-b  acquire -> %s (worker-a holds it)\n", lz_strerror(busy));
    int released = lz_lock_release(a);
    printf("  worker-a  release -> %s\n", lz_strerror(released));
    int second = lz_lock_acquire(b, 2000);
    int64_t token_b = lz_lock_fencing_token(b);
    printf("  worker-b  acquire -> %s, fencing token %lld\n", lz_strerror(second), (long long)token_b);
    printf("\n  A store that refuses tokens lower than the last it saw turns away a stalled\n"
           "  worker-a that wakes after its lease ended: the token is the lease's proof.\n");
    return first == LZ_OK && busy == LZ_EBUSY && released == LZ_OK && second == LZ_OK && token_b > token_a;
}

static int demo_locks(void) {
    header("9. Distributed locks: two workers, one lease, fencing tokens");
    const char *settings[] = {"zmq.linger", "0", "logging.level", "critical", NULL};
    lz_context_t *ctx = context_with(settings);
    lz_server_t *server = ctx ? lz_server_new(ctx, "tcp://127.0.0.1:*") : NULL;
    lz_lock_service_t *service = server ? lz_lock_service_attach(server, 0) : NULL;
    const char *endpoint = server ? lz_node_endpoint(lz_server_node(server)) : NULL;
    lz_lock_t *a = service ? lz_lock_new(ctx, endpoint, "report.pdf", 5000) : NULL;
    lz_lock_t *b = a ? lz_lock_new(ctx, endpoint, "report.pdf", 5000) : NULL;
    int status = -1;
    if (!b || lz_server_start(server)) fail("lock service", lz_last_error_code());
    else status = check(take_turns(a, b), "the lease passes from one worker to the other, its token grows");
    lz_lock_destroy(&b); // releases what it holds
    lz_lock_destroy(&a);
    if (status == 0) status = check(lz_lock_service_count(service) == 0, "no lock is left held");
    lz_server_destroy(&server);
    lz_lock_service_destroy(&service);
    lz_context_destroy(&ctx);
    return status;
}

/* ---- main --------------------------------------------------------------- */

int main(void) {
    double started = now_ms();
    printf("liberzmq %s demo\n", lz_version());

    // NULL config: defaults, then LIBERZMQ_CONFIG and LIBERZMQ_* variables.
    lz_context_t *ctx = lz_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "context: %s\n", lz_last_error());
        return EXIT_FAILURE;
    }
    // Logging follows the configuration (logging.level...); only the target changes.
    int rc = lz_logger_to_callback(lz_context_logger(ctx), show_log, NULL);
    if (rc != LZ_OK) {
        fail("log callback", rc);
        lz_context_destroy(&ctx);
        return EXIT_FAILURE;
    }
    node_table_t table = {.count = 0};
    int failures = 0;
    failures += demo_pubsub(ctx, &table) != 0;
    failures += demo_reqrep(ctx, &table) != 0;
    failures += demo_pipeline(ctx, &table) != 0;
    failures += demo_security() != 0;
    failures += demo_metrics(ctx, &table) != 0;
    lz_context_destroy(&ctx);
    failures += demo_tracing() != 0;
    failures += demo_dead_letters() != 0;
    failures += demo_validation() != 0;
    failures += demo_locks() != 0;

    if (failures) {
        printf("\n%d section(s) FAILED (see above)\n", failures);
        return EXIT_FAILURE;
    }
    printf("\nAll done in %.1f s: every check passed.\n", (now_ms() - started) / 1000.0);
    return EXIT_SUCCESS;
}
