/* Push/pull: tasks routed by type, the "unknown" type, worker pools,
 * round robin, the ventilator/worker/sink shape, the raw serializer and
 * the task envelope on the wire; a stop or destroy from the puller's own
 * handler or dead-letter sink, and a destroy while readers wait. */
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <zmq.h>

#include "core/node.h"
#include "lz_seen.h"
#include "lz_test.h"

// A pattern context, a puller bound on tcp, a pusher connected to it, and
// what the puller's handlers saw.
typedef struct {
    lz_context_t *ctx;
    lz_pull_t *pull;
    lz_push_t *push;
    seen_t seen;
} pp_t;

// pp_connect makes a fresh puller and pusher in the pair's context.
static bool pp_connect(pp_t *p) {
    p->pull = lz_pull_new(p->ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(p->pull != NULL);
    if (!p->pull) return false;
    p->push = lz_push_new(p->ctx, lz_node_endpoint(lz_pull_node(p->pull)));
    LZ_CHECK(p->push != NULL);
    return p->push != NULL;
}

static void pp_disconnect(pp_t *p) {
    lz_push_destroy(&p->push);
    lz_pull_destroy(&p->pull);
}

// pp_open: the context has handler_max_concurrency concurrency (0: the default).
static bool pp_open(pp_t *p, int concurrency) {
    memset(p, 0, sizeof *p);
    seen_init(&p->seen);
    p->ctx = lz_test_pattern_context(concurrency);
    return p->ctx && pp_connect(p);
}

static void pp_close(pp_t *p) {
    pp_disconnect(p);
    lz_context_destroy(&p->ctx);
    seen_fini(&p->seen);
}

/* ---- what handlers saw ------------------------------------------------------ */

static int on_resize(const lz_message_t *msg, void *arg) { return seen_record(arg, "resize", msg); }
static int on_email(const lz_message_t *msg, void *arg) { return seen_record(arg, "email", msg); }
static int on_default(const lz_message_t *msg, void *arg) { return seen_record(arg, "default", msg); }

static int find_seen(seen_t *s, const char *type) {
    for (int i = 0; i < s->count; i++)
        if (strcmp(s->topic[i], type) == 0) return i;
    return -1;
}

// dispatch_until drives the puller from this thread until want handlers ran.
static void dispatch_until(lz_pull_t *pull, seen_t *s, int want) {
    for (int64_t deadline = lz_test_now_ms() + 5000; seen_count(s) < want && lz_test_now_ms() < deadline;)
        LZ_CHECK(lz_pull_dispatch(pull, 100) >= 0);
}

static lz_value_t *json(const char *text) {
    lz_value_t *v = lz_value_from_json(text, strlen(text));
    LZ_CHECK(v != NULL);
    return v;
}

/* ---- routing -------------------------------------------------------------- */

LZ_TEST(pushpull_tasks_reach_their_handler) {
    pp_t p;
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", on_resize, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "email", on_email, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, on_default, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, NULL, on_email, &p.seen), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_on(p.pull, "x", NULL, &p.seen), LZ_EINVAL);
        lz_value_t *resize = json("{\"width\":640,\"height\":480,\"path\":\"/img/a.png\"}");
        lz_value_t *email = json("[\"to@example.com\",\"hello\"]");
        lz_value_t *other = lz_value_string("x");
        LZ_CHECK_INT(lz_push_send(p.push, "resize", resize, 2), LZ_OK);
        LZ_CHECK_INT(lz_push_send(p.push, "email", email, -5), LZ_OK);
        LZ_CHECK_INT(lz_push_send(p.push, "resize.more", other, 0), LZ_OK); // exact match only
        LZ_CHECK_INT(lz_push_send(p.push, NULL, NULL, 9), LZ_OK);           // type "default", data null
        dispatch_until(p.pull, &p.seen, 4);
        LZ_CHECK_INT(seen_count(&p.seen), 4);
        int i = find_seen(&p.seen, "resize");
        LZ_CHECK(i >= 0);
        if (i >= 0) {
            LZ_CHECK_STR(p.seen.who[i], "resize");
            LZ_CHECK(lz_value_equal(p.seen.data[i], resize));
            LZ_CHECK_INT(p.seen.priority[i], 2);
        }
        i = find_seen(&p.seen, "email");
        LZ_CHECK(i >= 0);
        if (i >= 0) {
            LZ_CHECK_STR(p.seen.who[i], "email");
            LZ_CHECK(lz_value_equal(p.seen.data[i], email));
            LZ_CHECK_INT(p.seen.priority[i], -5);
        }
        i = find_seen(&p.seen, "resize.more");
        LZ_CHECK(i >= 0);
        if (i >= 0) {
            LZ_CHECK_STR(p.seen.who[i], "default");
            LZ_CHECK(lz_value_equal(p.seen.data[i], other));
        }
        i = find_seen(&p.seen, "default");
        LZ_CHECK(i >= 0);
        if (i >= 0) {
            LZ_CHECK_STR(p.seen.who[i], "default");
            LZ_CHECK_INT(lz_value_type(p.seen.data[i]), LZ_VALUE_NULL);
            LZ_CHECK_INT(p.seen.priority[i], 9);
        }
        lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
        LZ_CHECK_INT(m.messages_received, 4);
        LZ_CHECK_INT(m.inbound_dropped, 0);
        LZ_CHECK_INT(m.bytes_received, lz_test_metrics(lz_push_node(p.push)).bytes_sent);
        lz_value_destroy(&resize);
        lz_value_destroy(&email);
        lz_value_destroy(&other);
    }
    pp_close(&p);
}

LZ_TEST(pushpull_unknown_type_for_non_objects) {
    pp_t p;
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", on_resize, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, on_default, &p.seen), LZ_OK);
        const char *frames[] = {"[1,2,3]", "42", "\"text\"", "null", "{\"no_type\":true}"};
        for (int i = 0; i < 5; i++) LZ_CHECK_INT(lz_push_send_bytes(p.push, frames[i], strlen(frames[i])), LZ_OK);
        dispatch_until(p.pull, &p.seen, 5);
        LZ_CHECK_INT(seen_count(&p.seen), 5);
        for (int i = 0; i < p.seen.count && i < 5; i++) {
            LZ_CHECK_STR(p.seen.who[i], "default");
            LZ_CHECK_STR(p.seen.topic[i], "unknown");
            lz_value_t *want = json(frames[i]); // the whole value is the data
            LZ_CHECK(lz_value_equal(p.seen.data[i], want));
            lz_value_destroy(&want);
        }
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped, 0);
        // Without a default handler, an unknown task is counted as dropped.
        pp_disconnect(&p);
        if (pp_connect(&p)) {
            LZ_CHECK_INT(lz_pull_on(p.pull, "resize", on_resize, &p.seen), LZ_OK);
            LZ_CHECK_INT(lz_push_send_bytes(p.push, "[1]", 3), LZ_OK);
            lz_value_t *v = lz_value_int(1);
            LZ_CHECK_INT(lz_push_send(p.push, "nobody", v, 0), LZ_OK);
            LZ_CHECK_INT(lz_push_send(p.push, "resize", v, 0), LZ_OK);
            lz_value_destroy(&v);
            dispatch_until(p.pull, &p.seen, 6);
            LZ_CHECK_INT(seen_count(&p.seen), 6);
            LZ_CHECK_STR(p.seen.who[5], "resize");
            lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
            LZ_CHECK_INT(m.messages_received, 3);
            LZ_CHECK_INT(m.inbound_dropped, 2);
        }
    }
    pp_close(&p);
}

// Registering a type again replaces its handler and argument: the tasks go
// to the second one only, and the other types keep theirs.
LZ_TEST(pushpull_second_registration_replaces_the_first) {
    pp_t p;
    seen_t first;
    seen_init(&first);
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on(p.pull, "email", on_email, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", on_resize, &first), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", on_default, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_push_send(p.push, "resize", NULL, 0), LZ_OK);
        LZ_CHECK_INT(lz_push_send(p.push, "email", NULL, 0), LZ_OK);
        dispatch_until(p.pull, &p.seen, 2);
        LZ_CHECK_INT(seen_count(&p.seen), 2);
        LZ_CHECK_INT(seen_count(&first), 0);
        int i = find_seen(&p.seen, "resize");
        LZ_CHECK(i >= 0);
        if (i >= 0) LZ_CHECK_STR(p.seen.who[i], "default"); // on_default, the second handler
        i = find_seen(&p.seen, "email");
        LZ_CHECK(i >= 0);
        if (i >= 0) LZ_CHECK_STR(p.seen.who[i], "email");
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped, 0);
    }
    pp_close(&p);
    seen_fini(&first);
}

/* ---- worker pools ----------------------------------------------------------- */

static void pool_case(int workers, int configured, int tasks, int expect_max) {
    pp_t p;
    if (pp_open(&p, configured)) {
        p.seen.sleep_ms = 100;
        LZ_CHECK_INT(lz_pull_on(p.pull, "slow", on_resize, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, workers), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, workers), LZ_ESTATE);
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 0), LZ_ESTATE);
        LZ_CHECK(lz_pull_recv(p.pull, 0) == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
        int64_t t0 = lz_test_now_ms();
        for (int i = 0; i < tasks; i++) {
            lz_value_t *v = lz_value_int(i);
            LZ_CHECK_INT(lz_push_send(p.push, "slow", v, 0), LZ_OK);
            lz_value_destroy(&v);
        }
        LZ_CHECK(seen_wait(&p.seen, tasks, 5000));
        int64_t elapsed = lz_test_now_ms() - t0;
        int rounds = (tasks + expect_max - 1) / expect_max;
        LZ_CHECK_INT(atomic_load(&p.seen.max_running), expect_max);
        // expect_max at a time: rounds x 100 ms, well under tasks x 100 ms.
        LZ_CHECK(elapsed >= rounds * 100 - 20);
        LZ_CHECK(elapsed < rounds * 100 + 250);
        if (elapsed >= rounds * 100 + 250)
            fprintf(stderr, "%d tasks on %d workers took %lld ms\n", tasks, expect_max, (long long)elapsed);
        int64_t sum = 0;
        for (int i = 0; i < p.seen.count; i++) sum += lz_value_get_int(p.seen.data[i]);
        LZ_CHECK_INT(sum, (int64_t)tasks * (tasks - 1) / 2); // each task once
        t0 = lz_test_now_ms();
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        LZ_CHECK(lz_test_now_ms() - t0 < 1000);
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        // Stopped, it is the caller's again: a timed receive waits it out.
        t0 = lz_test_now_ms();
        LZ_CHECK(lz_pull_recv(p.pull, 300) == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
        LZ_CHECK(lz_test_now_ms() - t0 >= 280);
        lz_value_t *v = lz_value_int(77);
        LZ_CHECK_INT(lz_push_send(p.push, "slow", v, 0), LZ_OK);
        lz_value_destroy(&v);
        lz_message_t *msg = lz_pull_recv(p.pull, 5000);
        LZ_CHECK(msg != NULL);
        if (msg) LZ_CHECK_INT(lz_value_get_int(lz_message_value(msg)), 77);
        lz_message_destroy(&msg);
    }
    pp_close(&p);
}

LZ_TEST(pushpull_pool_of_4_runs_8_tasks_concurrently) { pool_case(4, 0, 8, 4); }
LZ_TEST(pushpull_pool_size_from_config) { pool_case(0, 2, 6, 2); }
LZ_TEST(pushpull_single_worker_is_sequential) { pool_case(1, 8, 3, 1); }

LZ_TEST(pushpull_bad_arguments) {
    pp_t p;
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_start(p.pull, -1), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_start(NULL, 1), LZ_EINVAL);
        LZ_CHECK_INT(lz_push_send(NULL, "t", NULL, 0), LZ_EINVAL);
        LZ_CHECK_INT(lz_push_send_bytes(p.push, NULL, 3), LZ_EINVAL);
        LZ_CHECK_INT(lz_push_send_bytes(p.push, NULL, 0), LZ_OK); // an empty frame is fine
        LZ_CHECK_INT(lz_pull_stop(NULL), LZ_OK);
        LZ_CHECK(lz_pull_recv(NULL, 0) == NULL);
        LZ_CHECK(lz_push_new(NULL, NULL) == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
        LZ_CHECK(lz_pull_new(p.ctx, "bogus://x") == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
        // libzmq takes these for a connect and never completes it.
        static const char *const bad_tcp[] = {">tcp://[::1:5555", ">tcp://127.0.0.1:65536", ">tcp://127.0.0.1",
                                               ">tcp://:5555", ">tcp://[]:5555", ">tcp://127.0.0.1:0;host:x"};
        for (size_t i = 0; i < sizeof bad_tcp / sizeof bad_tcp[0]; i++) {
            LZ_CHECK(lz_pull_new(p.ctx, bad_tcp[i]) == NULL);
            LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
            LZ_CHECK(strstr(lz_last_error(), bad_tcp[i] + 1) != NULL);
        }
        lz_pull_t *ipv6 = lz_pull_new(p.ctx, ">tcp://[::1]:5555,>tcp://127.0.0.1:0;127.0.0.1:5555");
        LZ_CHECK(ipv6 != NULL);
        lz_pull_destroy(&ipv6);
    }
    pp_close(&p);
}

// A pusher with nowhere to send waits zmq.send_timeout, then reports
// LZ_EAGAIN and counts the task as dropped.
LZ_TEST(pushpull_no_peer_times_out) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.send_timeout=100");
    lz_push_t *push = ctx ? lz_push_new(ctx, NULL) : NULL;
    LZ_CHECK(push != NULL);
    if (push) {
        int64_t t0 = lz_test_now_ms();
        LZ_CHECK_INT(lz_push_send_bytes(push, "x", 1), LZ_EAGAIN);
        int64_t waited = lz_test_now_ms() - t0;
        LZ_CHECK(waited >= 80 && waited < 1000);
        lz_metrics_t m = lz_test_metrics(lz_push_node(push));
        LZ_CHECK_INT(m.messages_sent, 0);
        LZ_CHECK_INT(m.outbound_dropped, 1);
    }
    lz_push_destroy(&push);
    lz_context_destroy(&ctx);
}

// Connecting to where nobody listens: by default the task waits in the
// connection's queue (the send succeeds, and a puller that binds later gets
// it); with zmq.immediate it is refused after zmq.send_timeout, and sent
// once a puller is up.
LZ_TEST(pushpull_immediate_needs_a_live_puller) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    char connect[140];
    snprintf(connect, sizeof connect, ">%s", ep);
    lz_context_t *queued = LZ_TEST_CONTEXT("zmq.send_timeout=100", "zmq.linger=0");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.send_timeout=100", "zmq.linger=0", "zmq.immediate=true");
    lz_push_t *lax = lz_push_new(queued, connect), *push = lz_push_new(ctx, connect);
    LZ_CHECK(lax && push);
    LZ_CHECK_INT(lz_push_send_bytes(lax, "x", 1), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(push, "x", 1), LZ_EAGAIN);
    lz_pull_t *pull = lz_pull_new(ctx, ep);
    LZ_CHECK(pull && lz_node_set_serializer(lz_pull_node(pull), "raw") == LZ_OK);
    int rc = LZ_EAGAIN;
    for (int i = 0; i < 50 && rc == LZ_EAGAIN; i++) rc = lz_push_send_bytes(push, "y", 1);
    LZ_CHECK_INT(rc, LZ_OK);
    char got[3] = "";
    for (int i = 0; i < 2; i++) {
        lz_message_t *msg = lz_pull_recv(pull, 5000);
        size_t size = 0;
        const char *payload = lz_message_payload(msg, &size);
        LZ_CHECK(msg && size == 1);
        if (msg && size == 1) got[payload[0] == 'y'] = payload[0];
        lz_message_destroy(&msg);
    }
    LZ_CHECK_STR(got, "xy"); // the queued task and the refused-then-sent one
    lz_pull_destroy(&pull);
    lz_push_destroy(&push);
    lz_push_destroy(&lax);
    lz_context_destroy(&ctx);
    lz_context_destroy(&queued);
}

/* ---- distribution ------------------------------------------------------------ */

LZ_TEST(pushpull_round_robin_across_two_pullers) {
    lz_context_t *ctx = lz_test_pattern_context(0);
    char ipc[128];
    lz_pull_t *a = ctx ? lz_pull_new(ctx, "tcp://127.0.0.1:*") : NULL;
    lz_pull_t *b = ctx ? lz_pull_new(ctx, lz_test_ipc_endpoint(ipc, sizeof ipc)) : NULL;
    LZ_CHECK(a && b);
    lz_push_t *push = NULL;
    if (a && b) {
        char eps[512];
        snprintf(eps, sizeof eps, "%s,>%s", lz_node_endpoint(lz_pull_node(a)), lz_node_endpoint(lz_pull_node(b)));
        push = lz_push_new(ctx, eps); // connects to both before anything is sent
        LZ_CHECK(push != NULL);
    }
    if (push) {
        const int N = 20;
        for (int i = 0; i < N; i++) {
            lz_value_t *v = lz_value_int(i);
            LZ_CHECK_INT(lz_push_send(push, "rr", v, 0), LZ_OK);
            lz_value_destroy(&v);
        }
        int got_a = 0, got_b = 0;
        int64_t seen_a[32], seen_b[32];
        for (int64_t deadline = lz_test_now_ms() + 5000; got_a + got_b < N && lz_test_now_ms() < deadline;) {
            lz_message_t *m = lz_pull_recv(a, 10);
            if (m && got_a < 32) seen_a[got_a++] = lz_value_get_int(lz_message_value(m));
            lz_message_destroy(&m);
            m = lz_pull_recv(b, 10);
            if (m && got_b < 32) seen_b[got_b++] = lz_value_get_int(lz_message_value(m));
            lz_message_destroy(&m);
        }
        LZ_CHECK_INT(got_a + got_b, N);
        // libzmq's load balancer alternates strictly between ready pipes.
        LZ_CHECK_INT(got_a, N / 2);
        LZ_CHECK_INT(got_b, N / 2);
        for (int i = 1; i < got_a; i++) LZ_CHECK_INT(seen_a[i] - seen_a[i - 1], 2);
        for (int i = 1; i < got_b; i++) LZ_CHECK_INT(seen_b[i] - seen_b[i - 1], 2);
    }
    lz_push_destroy(&push);
    lz_pull_destroy(&a);
    lz_pull_destroy(&b);
    lz_context_destroy(&ctx);
}

/* ---- ventilator, workers, sink --------------------------------------------------- */

typedef struct {
    lz_push_t *to_sink;
    atomic_int handled;
} worker_t;

static int square(const lz_message_t *msg, void *arg) {
    worker_t *w = arg;
    int64_t n = lz_value_get_int(lz_message_value(msg));
    lz_value_t *result = lz_value_object();
    lz_value_object_set_int(result, "n", n);
    lz_value_object_set_int(result, "square", n * n);
    int rc = lz_push_send(w->to_sink, "result", result, (int)lz_message_priority(msg));
    lz_value_destroy(&result);
    atomic_fetch_add(&w->handled, 1);
    return rc;
}

LZ_TEST(pushpull_ventilator_workers_sink) {
    lz_context_t *ctx = lz_test_pattern_context(3);
    if (!ctx) return;
    // The ventilator connects to every worker: libzmq makes each pipe at
    // connect time, so the work is dealt out evenly from the first task.
    lz_push_t *ventilator = lz_push_new(ctx, NULL);
    lz_pull_t *sink = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(ventilator && sink);
    enum { WORKERS = 3, TASKS = 30 };
    lz_pull_t *in[WORKERS] = {0};
    worker_t w[WORKERS];
    memset(w, 0, sizeof w);
    bool ok = ventilator && sink;
    for (int i = 0; ok && i < WORKERS; i++) {
        atomic_init(&w[i].handled, 0);
        char ep[128];
        in[i] = lz_pull_new(ctx, i == 1 ? lz_test_ipc_endpoint(ep, sizeof ep) : "tcp://127.0.0.1:*");
        w[i].to_sink = lz_push_new(ctx, lz_node_endpoint(lz_pull_node(sink)));
        ok = in[i] && w[i].to_sink;
        LZ_CHECK(ok);
        if (ok) LZ_CHECK_INT(lz_pull_on(in[i], "square", square, &w[i]), LZ_OK);
        if (ok) LZ_CHECK_INT(lz_pull_start(in[i], 0), LZ_OK);
        if (ok) LZ_CHECK_INT(lz_node_connect(lz_push_node(ventilator), lz_node_endpoint(lz_pull_node(in[i]))), LZ_OK);
    }
    if (ok) {
        for (int i = 0; i < TASKS; i++) {
            lz_value_t *v = lz_value_int(i);
            LZ_CHECK_INT(lz_push_send(ventilator, "square", v, i % 3), LZ_OK);
            lz_value_destroy(&v);
        }
        int64_t sum = 0, results = 0;
        bool seen[TASKS] = {false};
        for (int64_t deadline = lz_test_now_ms() + 5000; results < TASKS && lz_test_now_ms() < deadline;) {
            lz_message_t *m = lz_pull_recv(sink, 100);
            if (!m) continue;
            LZ_CHECK_STR(lz_message_type(m), "result");
            int64_t n = lz_value_find_int(lz_message_value(m), "n", -1);
            LZ_CHECK(n >= 0 && n < TASKS);
            if (n >= 0 && n < TASKS) {
                LZ_CHECK(!seen[n]);
                seen[n] = true;
                LZ_CHECK_INT(lz_message_priority(m), n % 3);
            }
            sum += lz_value_find_int(lz_message_value(m), "square", 0);
            results++;
            lz_message_destroy(&m);
        }
        LZ_CHECK_INT(results, TASKS);
        LZ_CHECK_INT(sum, (int64_t)(TASKS - 1) * TASKS * (2 * TASKS - 1) / 6);
        // A result can reach the sink before its handler has returned.
        for (int64_t deadline = lz_test_now_ms() + 2000; lz_test_now_ms() < deadline;) {
            int handled = 0;
            for (int i = 0; i < WORKERS; i++) handled += atomic_load(&w[i].handled);
            if (handled == TASKS) break;
            lz_test_sleep_ms(1);
        }
        for (int i = 0; i < WORKERS; i++) LZ_CHECK_INT(atomic_load(&w[i].handled), TASKS / WORKERS);
        lz_metrics_t total;
        LZ_CHECK_INT(lz_context_metrics(ctx, &total), LZ_OK);
        LZ_CHECK_INT(total.messages_sent, 2 * TASKS);
        LZ_CHECK_INT(total.messages_received, 2 * TASKS);
        LZ_CHECK_INT(total.errors, 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        lz_pull_destroy(&in[i]); // stops its workers first
        lz_push_destroy(&w[i].to_sink);
    }
    lz_pull_destroy(&sink);
    lz_push_destroy(&ventilator);
    lz_context_destroy(&ctx);
}

/* ---- raw serializer ---------------------------------------------------------- */

// raw_pusher_sends_one_frame: a raw pusher's frames, as a plain zmq PULL gets them.
static void raw_pusher_sends_one_frame(lz_context_t *ctx) {
    void *raw = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_PULL, 5000, "@tcp://127.0.0.1:*");
    char ep[256];
    lz_test_bound_endpoint(raw, ep, sizeof ep);
    lz_push_t *push = lz_push_new(ctx, ep);
    LZ_CHECK(push != NULL);
    if (push) {
        LZ_CHECK_INT(lz_node_set_serializer(lz_push_node(push), "raw"), LZ_OK);
        unsigned char bin[100];
        for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(255 - i);
        lz_value_t *bytes = lz_value_bytes(bin, sizeof bin);
        lz_value_t *text = lz_value_string("plain text");
        lz_value_t *number = lz_value_int(5);
        LZ_CHECK_INT(lz_push_send(push, "ignored-type", bytes, 7), LZ_OK);
        LZ_CHECK_INT(lz_push_send(push, NULL, text, 0), LZ_OK);
        LZ_CHECK_INT(lz_push_send(push, "x", number, 0), LZ_EVALIDATION); // bytes or strings only
        LZ_CHECK_INT(lz_push_send(push, "x", NULL, 0), LZ_EVALIDATION);
        const void *want[] = {bin, "plain text"};
        size_t want_size[] = {sizeof bin, 10};
        for (int i = 0; i < 2; i++) {
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            int n = zmq_msg_recv(&msg, raw, 0);
            LZ_CHECK(n >= 0);
            if (n >= 0) {
                LZ_CHECK_INT(zmq_msg_size(&msg), want_size[i]);
                LZ_CHECK(zmq_msg_size(&msg) == want_size[i] && memcmp(zmq_msg_data(&msg), want[i], want_size[i]) == 0);
                LZ_CHECK_INT(zmq_msg_more(&msg), 0); // exactly one frame
            }
            zmq_msg_close(&msg);
        }
        char buf[8];
        int flags = ZMQ_DONTWAIT;
        LZ_CHECK(zmq_recv(raw, buf, sizeof buf, flags) < 0); // the refused ones sent nothing
        lz_value_destroy(&bytes);
        lz_value_destroy(&text);
        lz_value_destroy(&number);
    }
    lz_push_destroy(&push);
    zmq_close(raw);
}

// A raw puller hands any frame to the default handler as bytes.
static void raw_puller_gets_bytes(pp_t *p) {
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(p->pull), "raw"), LZ_OK);
    LZ_CHECK_INT(lz_pull_on_default(p->pull, on_default, &p->seen), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(p->push, "\x00\x01\xff", 3), LZ_OK);
    lz_value_t *v = lz_value_int(3);
    LZ_CHECK_INT(lz_push_send(p->push, "json-task", v, 1), LZ_OK); // JSON bytes, as bytes
    lz_value_destroy(&v);
    dispatch_until(p->pull, &p->seen, 2);
    LZ_CHECK_INT(seen_count(&p->seen), 2);
    if (p->seen.count < 2) return;
    LZ_CHECK_STR(p->seen.topic[0], "");
    size_t n = 0;
    const void *data = lz_value_get_bytes(p->seen.data[0], &n);
    LZ_CHECK(n == 3 && data && memcmp(data, "\x00\x01\xff", 3) == 0);
    LZ_CHECK_INT(lz_value_type(p->seen.data[1]), LZ_VALUE_BYTES);
    data = lz_value_get_bytes(p->seen.data[1], &n);
    LZ_CHECK(data && n > 0 && ((const char *)data)[0] == '{');
}

LZ_TEST(pushpull_raw_sends_one_frame_of_bytes) {
    pp_t p;
    bool paired = pp_open(&p, 0);
    if (p.ctx) raw_pusher_sends_one_frame(p.ctx);
    if (paired) raw_puller_gets_bytes(&p);
    pp_close(&p);
}

// A raw puller's lz_pull_recv keeps a large payload as libzmq received it:
// the value borrows the frame, nothing is copied (pushpull.h says so).
LZ_TEST(pushpull_raw_recv_keeps_the_frame) {
    pp_t p;
    if (pp_open(&p, 0)) {
        static unsigned char big[65536];
        for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 13);
        LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(p.pull), "raw"), LZ_OK);
        LZ_CHECK_INT(lz_push_send_bytes(p.push, big, sizeof big), LZ_OK);
        lz_message_t *msg = lz_pull_recv(p.pull, 5000);
        lz_test_check_borrowed(&msg, big, sizeof big);
    }
    pp_close(&p);
}

/* ---- bytes into the caller's buffer ----------------------------------------- */

// recv_bytes_sizes: small (inside the zmq_msg_t), large (a block of its
// own) and cut short tasks, and the whole-frame size reported each time.
static void recv_bytes_sizes(pp_t *p) {
    unsigned char big[5000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7);
    LZ_CHECK_INT(lz_push_send_bytes(p->push, "hello", 5), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(p->push, big, sizeof big), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(p->push, big, sizeof big), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(p->push, "", 0), LZ_OK);
    unsigned char buf[6000];
    size_t size = sizeof buf;
    LZ_CHECK_INT(lz_pull_recv_bytes(p->pull, buf, &size, 5000), LZ_OK);
    LZ_CHECK(size == 5 && memcmp(buf, "hello", 5) == 0);
    size = sizeof buf;
    LZ_CHECK_INT(lz_pull_recv_bytes(p->pull, buf, &size, 5000), LZ_OK);
    LZ_CHECK(size == sizeof big && memcmp(buf, big, sizeof big) == 0);
    memset(buf, 0, sizeof buf);
    size = 10; // cut short: ten bytes copied, the full size reported
    LZ_CHECK_INT(lz_pull_recv_bytes(p->pull, buf, &size, 5000), LZ_OK);
    LZ_CHECK_INT(size, sizeof big);
    LZ_CHECK(memcmp(buf, big, 10) == 0 && buf[10] == 0);
    size = 0; // no buffer at all: the size alone
    LZ_CHECK_INT(lz_pull_recv_bytes(p->pull, NULL, &size, 5000), LZ_OK);
    LZ_CHECK_INT(size, 0);
    size = sizeof buf;
    LZ_CHECK_INT(lz_pull_recv_bytes(p->pull, buf, &size, 50), LZ_ETIMEOUT);
    LZ_CHECK_INT(size, sizeof buf); // untouched on failure
    lz_metrics_t m = lz_test_metrics(lz_pull_node(p->pull));
    LZ_CHECK_INT(m.messages_received, 4);
    LZ_CHECK_INT(m.bytes_received, 5 + 2 * sizeof big);
}

// recv_bytes_every_small_size: every size up to 40 bytes (the copy has a
// path of its own below 4, 8 and 16) arrives whole, or cut short to the
// room given, and nothing past that room is written.
static void recv_bytes_every_small_size(pp_t *p) {
    unsigned char sent[40], buf[48];
    for (size_t i = 0; i < sizeof sent; i++) sent[i] = (unsigned char)(i * 13 + 1);
    for (size_t n = 1; n <= sizeof sent; n++) {
        for (size_t room = n - 1; room <= n; room++) {
            LZ_CHECK_INT(lz_push_send_bytes(p->push, sent, n), LZ_OK);
            memset(buf, 0xEE, sizeof buf);
            size_t size = room;
            LZ_CHECK_INT(lz_pull_recv_bytes(p->pull, room ? buf : NULL, &size, 5000), LZ_OK);
            LZ_CHECK_INT(size, n);
            if (memcmp(buf, sent, room) != 0 || buf[room] != 0xEE) {
                printf("  %zu bytes into room for %zu: wrong copy\n", n, room);
                LZ_CHECK(false);
            }
        }
    }
}

// recv_bytes_skips_multipart: a two-frame message is no task; it is counted
// and skipped, and the task after it arrives.
static void recv_bytes_skips_multipart(pp_t *p) {
    void *raw = lz_test_plain_socket(lz_context_zmq(p->ctx), ZMQ_PUSH, -1, lz_node_endpoint(lz_pull_node(p->pull)));
    LZ_CHECK_INT(zmq_send(raw, "two", 3, ZMQ_SNDMORE), 3);
    LZ_CHECK_INT(zmq_send(raw, "frames", 6, 0), 6);
    LZ_CHECK_INT(zmq_send(raw, "task", 4, 0), 4);
    char buf[16];
    size_t size = sizeof buf;
    LZ_CHECK_INT(lz_pull_recv_bytes(p->pull, buf, &size, 5000), LZ_OK);
    LZ_CHECK(size == 4 && memcmp(buf, "task", 4) == 0);
    LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p->pull)).inbound_dropped, 1);
    zmq_close(raw);
}

LZ_TEST(pushpull_recv_bytes) {
    pp_t p;
    if (pp_open(&p, 0)) {
        // Whatever the serializer: the bytes are the frame's.
        recv_bytes_sizes(&p);
        recv_bytes_skips_multipart(&p);
        recv_bytes_every_small_size(&p);
        char buf[4];
        size_t size = sizeof buf;
        LZ_CHECK_INT(lz_pull_recv_bytes(NULL, buf, &size, 0), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_recv_bytes(p.pull, buf, NULL, 0), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_recv_bytes(p.pull, NULL, &size, 0), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, on_default, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        LZ_CHECK_INT(lz_pull_recv_bytes(p.pull, buf, &size, 0), LZ_ESTATE); // handlers own the tasks
    }
    pp_close(&p);
}

/* ---- readers sharing one puller ---------------------------------------------- */

#define SHARED_READERS 4
#define SHARED_TASKS 20000

typedef struct {
    lz_pull_t *pull;
    bool bytes;           // lz_pull_recv_bytes, or lz_pull_recv
    atomic_int *seen;     // per task number, how often it arrived
    atomic_bool *sent;    // the sender is done
    int received, errors; // this reader's
} shared_reader_t;

// task_number reads the number a task carries: four raw bytes (the raw
// serializer) or an integer (a structured one).
static bool task_number(const lz_value_t *value, uint32_t *n) {
    if (lz_value_type(value) == LZ_VALUE_INT) {
        int64_t i = lz_value_get_int(value);
        *n = (uint32_t)i;
        return i >= 0 && i <= UINT32_MAX;
    }
    size_t size = 0;
    const void *data = lz_value_get_bytes(value, &size);
    if (!data || size != sizeof *n) return false;
    memcpy(n, data, sizeof *n);
    return true;
}

// shared_reader takes tasks until the sender is done and none came for
// 300 ms, counting each task number it gets.
static void *shared_reader(void *self) {
    shared_reader_t *r = self;
    for (int64_t idle_since = 0;;) {
        uint32_t n = 0;
        int rc;
        if (r->bytes) {
            size_t size = sizeof n;
            rc = lz_pull_recv_bytes(r->pull, &n, &size, 50);
            if (rc == LZ_OK && size != sizeof n) r->errors++;
        } else {
            lz_message_t *msg = lz_pull_recv(r->pull, 50);
            rc = msg ? LZ_OK : lz_last_error_code();
            if (msg && !task_number(lz_message_value(msg), &n)) r->errors++;
            lz_message_destroy(&msg);
        }
        if (rc == LZ_OK) {
            if (n < SHARED_TASKS)
                atomic_fetch_add(&r->seen[n], 1);
            else
                r->errors++;
            r->received++;
            idle_since = 0;
        } else if (rc != LZ_ETIMEOUT) {
            r->errors++;
            return NULL;
        } else if (atomic_load(r->sent)) {
            if (idle_since == 0)
                idle_since = lz_test_now_ms();
            else if (lz_test_now_ms() - idle_since > 300)
                return NULL;
        }
    }
}

// Readers sharing one puller while this thread sends tasks numbered from 0.
typedef struct {
    int count;
    shared_reader_t reader[SHARED_READERS];
    pthread_t thread[SHARED_READERS];
    atomic_bool sent;
} sharing_t;

static atomic_int shared_seen[SHARED_TASKS];

// sharing_start starts count readers on p's puller; with mixed, every other
// one asks for bytes instead of messages.
static void sharing_start(sharing_t *s, pp_t *p, int count, bool mixed) {
    for (int i = 0; i < SHARED_TASKS; i++) atomic_init(&shared_seen[i], 0);
    atomic_init(&s->sent, false);
    s->count = count;
    for (int i = 0; i < count; i++) {
        s->reader[i] = (shared_reader_t){p->pull, mixed && i % 2 == 0, shared_seen, &s->sent, 0, 0};
        LZ_CHECK_INT(pthread_create(&s->thread[i], NULL, shared_reader, &s->reader[i]), 0);
    }
}

// sharing_finish tells the readers the sender is done, joins them, checks
// each of the tasks numbers sent reached exactly one of them, and returns
// how many readers got any.
static int sharing_finish(sharing_t *s, int tasks) {
    atomic_store(&s->sent, true);
    int received = 0, readers_used = 0;
    for (int i = 0; i < s->count; i++) {
        pthread_join(s->thread[i], NULL);
        LZ_CHECK_INT(s->reader[i].errors, 0);
        received += s->reader[i].received;
        readers_used += s->reader[i].received > 0;
    }
    LZ_CHECK_INT(received, tasks);
    int wrong = 0;
    for (int i = 0; i < SHARED_TASKS; i++) wrong += atomic_load(&shared_seen[i]) != (i < tasks);
    LZ_CHECK_INT(wrong, 0);
    return readers_used;
}

// Callers may share a puller: they take turns at the read-ahead, and every
// task reaches exactly one of them, whether it asks for bytes or for a
// message.
LZ_TEST(pushpull_shared_readers) {
    pp_t p;
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(p.pull), "raw"), LZ_OK);
        sharing_t s;
        sharing_start(&s, &p, SHARED_READERS, true);
        for (uint32_t n = 0; n < SHARED_TASKS; n++)
            if (lz_push_send_bytes(p.push, &n, sizeof n) != LZ_OK) LZ_CHECK(false);
        LZ_CHECK(sharing_finish(&s, SHARED_TASKS) >= 2); // the tasks did not all go one way
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped, 0);
    }
    pp_close(&p);
}

// A waiting reader of a shared puller, one round of
// pushpull_waiting_readers_share_a_burst: one task, within timeout_ms.
typedef struct {
    lz_pull_t *pull;
    int timeout_ms;
    int rc;
    int64_t took_ms;
    atomic_bool returned;
} waiting_reader_t;

static void *waiting_reader(void *self) {
    waiting_reader_t *r = self;
    char task[8];
    size_t size = sizeof task;
    int64_t start = lz_test_now_ms();
    r->rc = lz_pull_recv_bytes(r->pull, task, &size, r->timeout_ms);
    r->took_ms = lz_test_now_ms() - start;
    atomic_store(&r->returned, true);
    return NULL;
}

#define WAITING_ROUNDS 6

// Two readers wait on one puller and two tasks arrive: each reader gets
// one at once. Before, the reader holding the read-ahead kept it while it
// waited, so the other waited on the socket alone; when the first woke up
// to both tasks, it read them into its read-ahead and took one, and the
// second slept on next to the other for its whole timeout. Who wakes first
// is the scheduler's choice, hence the rounds.
LZ_TEST(pushpull_waiting_readers_share_a_burst) {
    pp_t p;
    if (pp_open(&p, 0)) {
        int timeout_ms = 1000 * LZ_TEST_SLOWDOWN, late = 0;
        for (int round = 0; round < WAITING_ROUNDS; round++) {
            waiting_reader_t r[2];
            pthread_t thread[2];
            for (int i = 0; i < 2; i++) {
                r[i] = (waiting_reader_t){p.pull, timeout_ms, 0, 0, false};
                LZ_CHECK_INT(pthread_create(&thread[i], NULL, waiting_reader, &r[i]), 0);
            }
            lz_test_sleep_ms(50 * LZ_TEST_SLOWDOWN); // both waiting
            for (int i = 0; i < 2; i++) LZ_CHECK_INT(lz_push_send_bytes(p.push, "task", 4), LZ_OK);
            for (int i = 0; i < 2; i++) {
                pthread_join(thread[i], NULL);
                LZ_CHECK_INT(r[i].rc, LZ_OK);
                late += r[i].took_ms >= timeout_ms;
            }
        }
        LZ_CHECK_INT(late, 0);
        char task[8];
        size_t size = sizeof task;
        LZ_CHECK_INT(lz_pull_recv_bytes(p.pull, task, &size, 0), LZ_ETIMEOUT); // none left behind
    }
    pp_close(&p);
}

#define MIXED_TASKS 3000
#define MALFORMED_EVERY 10 // after every tenth task, one malformed message of each kind

// Two readers of one JSON puller, with malformed messages among the tasks
// (docs/protocol.md section 3: JSON that does not parse, and a message of
// two frames): whichever reader meets one, holding the read-ahead or
// reading alone, counts and skips it, and every task still reaches exactly
// one reader. Who reads what varies from run to run; the totals do not.
LZ_TEST(pushpull_shared_readers_skip_malformed_tasks) {
    pp_t p;
    void *raw = NULL;
    if (pp_open(&p, 0)) {
        // A plain libzmq pusher for the two-frame messages lz_push cannot send.
        raw = lz_test_plain_socket(lz_context_zmq(p.ctx), ZMQ_PUSH, -1, lz_node_endpoint(lz_pull_node(p.pull)));
        sharing_t s;
        sharing_start(&s, &p, 2, false);
        int malformed = 0;
        for (int n = 0; n < MIXED_TASKS; n++) {
            lz_value_t *v = lz_value_int(n);
            if (lz_push_send(p.push, "job", v, 0) != LZ_OK) LZ_CHECK(false);
            lz_value_destroy(&v);
            if (n % MALFORMED_EVERY != 0) continue;
            if (lz_push_send_bytes(p.push, "{\"type\":", 8) != LZ_OK) LZ_CHECK(false);
            if (zmq_send(raw, "two", 3, ZMQ_SNDMORE) != 3 || zmq_send(raw, "frames", 6, 0) != 6) LZ_CHECK(false);
            malformed += 2;
        }
        sharing_finish(&s, MIXED_TASKS);
        lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
        LZ_CHECK_INT(m.inbound_dropped, malformed);
        LZ_CHECK_INT(m.messages_received, MIXED_TASKS + malformed);
    }
    if (raw) zmq_close(raw);
    pp_close(&p);
}

/* ---- receiving and the envelope --------------------------------------------------- */

static bool is_uuid4(const char *s) {
    if (!s || strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void envelope_case(const char *serializer) {
    pp_t p;
    if (pp_open(&p, 0)) {
        if (serializer) {
            LZ_CHECK_INT(lz_node_set_serializer(lz_push_node(p.push), serializer), LZ_OK);
            LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(p.pull), serializer), LZ_OK);
        }
        lz_value_t *data = json("{\"w\":1,\"tags\":[\"a\",\"b\"],\"f\":1.5}");
        LZ_CHECK_INT(lz_push_send(p.push, "resize", data, 7), LZ_OK);
        LZ_CHECK_INT(lz_push_send(p.push, "resize", data, 7), LZ_OK);
        double now = (double)time(NULL);
        lz_message_t *a = lz_pull_recv(p.pull, 5000), *b = lz_pull_recv(p.pull, 5000);
        LZ_CHECK(a && b);
        if (a && b) {
            LZ_CHECK_STR(lz_message_type(a), "resize");
            LZ_CHECK_STR(lz_message_topic(a), "resize");
            LZ_CHECK(lz_value_equal(lz_message_value(a), data));
            LZ_CHECK_INT(lz_message_priority(a), 7);
            double ts = lz_message_timestamp(a);
            LZ_CHECK(ts > now - 5 && ts < now + 5);
            LZ_CHECK(is_uuid4(lz_message_id(a)));
            if (!is_uuid4(lz_message_id(a))) fprintf(stderr, "not a UUID v4: '%s'\n", lz_message_id(a));
            LZ_CHECK(is_uuid4(lz_message_id(b)));
            LZ_CHECK(strcmp(lz_message_id(a), lz_message_id(b)) != 0);
            const lz_value_t *env = lz_message_envelope(a);
            LZ_CHECK_INT(lz_value_type(env), LZ_VALUE_OBJECT);
            LZ_CHECK_STR(lz_value_find_string(env, "type", NULL), "resize");
            LZ_CHECK_INT(lz_value_find_int(env, "priority", -1), 7);
            LZ_CHECK_STR(lz_value_find_string(env, "task_id", NULL), lz_message_id(a));
            LZ_CHECK(lz_value_get(env, "timestamp") != NULL);
            // The payload frame holds the whole task object.
            size_t size = 0;
            const void *payload = lz_message_payload(a, &size);
            LZ_CHECK(payload && size > 0);
            const lz_serializer_t *codec = lz_serializer_find(p.ctx, serializer ? serializer : "json");
            lz_value_t *task = NULL;
            if (payload && codec) LZ_CHECK_INT(lz_serializer_decode(codec, payload, size, &task), LZ_OK);
            LZ_CHECK_INT(lz_value_size(task), 5);
            LZ_CHECK(lz_value_equal(lz_value_get(task, "data"), data));
            LZ_CHECK_STR(lz_value_find_string(task, "task_id", NULL), lz_message_id(a));
            LZ_CHECK(lz_value_find_double(task, "timestamp", 0) == ts);
            lz_value_destroy(&task);
        }
        lz_message_destroy(&a);
        lz_message_destroy(&b);
        LZ_CHECK(a == NULL);
        lz_message_destroy(&a); // twice is fine
        lz_message_destroy(NULL);
        lz_value_destroy(&data);
        // Nothing more: a timed receive times out.
        int64_t t0 = lz_test_now_ms();
        LZ_CHECK(lz_pull_recv(p.pull, 100) == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ETIMEOUT);
        LZ_CHECK(lz_test_now_ms() - t0 >= 80);
    }
    pp_close(&p);
}

LZ_TEST(pushpull_recv_and_envelope_json) { envelope_case(NULL); }
LZ_TEST(pushpull_recv_and_envelope_msgpack) { envelope_case("msgpack"); }

// The caller-driven loop with the puller's fd, as for subscribers.
LZ_TEST(pushpull_fd_dispatch) {
    pp_t p;
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", on_resize, &p.seen), LZ_OK);
        int fd = -1;
        LZ_CHECK_INT(lz_pull_fd(p.pull, &fd), LZ_OK);
        LZ_CHECK(fd >= 0);
        lz_value_t *v = lz_value_int(1);
        for (int i = 0; i < 10; i++) LZ_CHECK_INT(lz_push_send(p.push, "resize", v, 0), LZ_OK);
        lz_value_destroy(&v);
        int dispatched = 0;
        for (int64_t deadline = lz_test_now_ms() + 5000; dispatched < 10 && lz_test_now_ms() < deadline;) {
            struct pollfd pfd = {fd, POLLIN, 0};
            LZ_CHECK(poll(&pfd, 1, 200) >= 0);
            for (int n; (n = lz_pull_dispatch(p.pull, 0)) > 0;) dispatched += n;
        }
        LZ_CHECK_INT(dispatched, 10);
        LZ_CHECK_INT(seen_count(&p.seen), 10);
    }
    pp_close(&p);
}

/* ---- stop and destroy from the puller's own handler ------------------------------ */

// A handler that stops its own puller on its first task.
typedef struct {
    lz_pull_t *pull;
    atomic_int calls;
    atomic_int stop_rc; // what the first call's lz_pull_stop returned; 1 until it did
} self_stop_t;

static int stop_own_pull(const lz_message_t *msg, void *arg) {
    (void)msg;
    self_stop_t *st = arg;
    if (atomic_fetch_add(&st->calls, 1) == 0) atomic_store(&st->stop_rc, lz_pull_stop(st->pull));
    return 0;
}

// send_jobs pushes n tasks of type "job".
static void send_jobs(lz_push_t *push, int n) {
    for (int i = 0; i < n; i++) LZ_CHECK_INT(lz_push_send(push, "job", NULL, 0), LZ_OK);
}

// stop_from_handler_case: a handler stops its own puller (workers 1: on
// the receiver thread; 3: on a worker). The stop only asks, returning
// LZ_OK: no task is handled after it, and a registration from this thread joins
// the threads it left; each task sent is then handled, dropped (counted)
// or still there for lz_pull_recv. Before, the stop stopped nothing (1) or
// freed the pool under the worker it ran on (3).
static void stop_from_handler_case(int workers) {
    pp_t p;
    self_stop_t st = {.stop_rc = 1};
    if (pp_open(&p, 0)) {
        st.pull = p.pull;
        LZ_CHECK_INT(lz_pull_on(p.pull, "job", stop_own_pull, &st), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, workers), LZ_OK);
        send_jobs(p.push, 1);
        LZ_TEST_WAIT_UNTIL(atomic_load(&st.stop_rc) != 1, 5000);
        LZ_CHECK_INT(atomic_load(&st.stop_rc), LZ_OK);
        const int later = 10;
        send_jobs(p.push, later);
        lz_test_sleep_ms(150 * LZ_TEST_SLOWDOWN);
        LZ_CHECK_INT(atomic_load(&st.calls), 1);
        // A registration finishes the stop the handler asked for, as
        // lz_pull_stop would (before: LZ_ESTATE until someone joined).
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 0, 0), LZ_OK);
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK); // nothing left to join
        int left = 0;
        for (lz_message_t *msg; (msg = lz_pull_recv(p.pull, 300)); left++) lz_message_destroy(&msg);
        LZ_CHECK_INT(1 + lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped + left, 1 + later);
        LZ_CHECK_INT(atomic_load(&st.calls), 1);
    }
    pp_close(&p);
}

LZ_TEST(pushpull_stop_from_own_handler_on_the_receiver) { stop_from_handler_case(1); }
LZ_TEST(pushpull_stop_from_own_handler_on_a_worker) { stop_from_handler_case(3); }

// A handler that tries to destroy its own puller; refused counts the
// times that was refused as it should be, calls the calls that have ended.
typedef struct {
    lz_pull_t **pull_p;
    atomic_int calls, refused;
} self_destroy_t;

static int destroy_own_pull(const lz_message_t *msg, void *arg) {
    (void)msg;
    self_destroy_t *sd = arg;
    lz_pull_destroy(sd->pull_p);
    if (*sd->pull_p && lz_last_error_code() == LZ_ESTATE && strstr(lz_last_error(), "lz_pull_destroy"))
        atomic_fetch_add(&sd->refused, 1);
    atomic_fetch_add(&sd->calls, 1); // last: the test reads refused once calls says this call is over
    return 0;
}

// A destroy from the puller's own handler, on a worker or in the caller's
// lz_pull_dispatch, would free what it still uses: refused, the pointer
// kept, and the puller keeps working.
LZ_TEST(pushpull_destroy_from_own_handler_is_refused) {
    pp_t p;
    self_destroy_t sd = {.pull_p = &p.pull};
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on(p.pull, "job", destroy_own_pull, &sd), LZ_OK);
        send_jobs(p.push, 1);
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 5000), 1);
        LZ_CHECK_INT(lz_pull_start(p.pull, 2), LZ_OK);
        send_jobs(p.push, 2);
        LZ_TEST_WAIT_UNTIL(atomic_load(&sd.calls) == 3, 5000);
        LZ_CHECK_INT(atomic_load(&sd.refused), 3);
    }
    pp_close(&p);
    LZ_CHECK(p.pull == NULL);
}

static int fail_job(const lz_message_t *msg, void *arg) {
    (void)msg;
    (void)arg;
    return lz_set_error(LZ_EINVAL, "fails");
}

// What the dead-letter sink got back from its own puller.
typedef struct {
    lz_pull_t **pull_p;
    int letters, destroy_rc, start_rc;
} sink_calls_t;

static void destroy_from_sink(const lz_value_t *letter, const lz_message_t *task, void *arg) {
    (void)letter;
    (void)task;
    sink_calls_t *c = arg;
    c->letters++;
    lz_pull_destroy(c->pull_p);
    c->destroy_rc = *c->pull_p ? lz_last_error_code() : LZ_OK;
    c->start_rc = lz_pull_start(*c->pull_p, 1);
}

// A stop gives a task waiting for its retry to the dead-letter sink on the
// stopping thread: a destroy from the sink there is refused too (before,
// it stopped the puller a second time inside the first stop, then freed
// it under it), and so is a start.
LZ_TEST(pushpull_destroy_from_the_dead_letter_sink_is_refused) {
    pp_t p;
    sink_calls_t c = {.pull_p = &p.pull};
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on(p.pull, "job", fail_job, NULL), LZ_OK);
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 60000), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, destroy_from_sink, &c), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        send_jobs(p.push, 1);
        LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_pull_node(p.pull)).task_retries == 1, 5000);
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        LZ_CHECK_INT(c.letters, 1);
        LZ_CHECK_INT(c.destroy_rc, LZ_ESTATE);
        LZ_CHECK_INT(c.start_rc, LZ_ESTATE);
    }
    pp_close(&p);
}

// wait_for_waiters waits (up to 5 s) until want threads wait inside the
// puller's socket wait (core/node.h) and says how many do.
static int wait_for_waiters(lz_pull_t *pull, int want) {
    lz_node_t *node = lz_pull_node(pull);
    int waiting = 0;
    for (int64_t end = lz_test_now_ms() + 5000; waiting < want && lz_test_now_ms() < end; lz_test_sleep_ms(2)) {
        lz__node_lock(node);
        waiting = node->waiting[LZ_WAIT_RECV];
        lz__node_unlock(node);
    }
    return waiting;
}

// A puller destroyed while readers wait in lz_pull_recv_bytes(-1) ends
// their waits (LZ_ECLOSED) and frees it once they have left. Before, they
// went on waiting for good, on a socket closed under them.
LZ_TEST(pushpull_destroy_while_readers_wait) {
    pp_t p;
    if (pp_open(&p, 0)) {
        waiting_reader_t r[2];
        pthread_t thread[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (waiting_reader_t){p.pull, -1, 1, 0, false};
            LZ_CHECK_INT(pthread_create(&thread[i], NULL, waiting_reader, &r[i]), 0);
        }
        LZ_CHECK_INT(wait_for_waiters(p.pull, 2), 2);
        lz_pull_destroy(&p.pull);
        for (int i = 0; i < 2; i++) {
            LZ_TEST_WAIT_UNTIL(atomic_load(&r[i].returned), 5000);
            LZ_CHECK(atomic_load(&r[i].returned));
            if (!atomic_load(&r[i].returned)) continue; // left behind: the test failed
            pthread_join(thread[i], NULL);
            LZ_CHECK_INT(r[i].rc, LZ_ECLOSED);
        }
    }
    pp_close(&p);
}

typedef struct {
    lz_pull_t *pull;
    lz_push_t *push;
    atomic_bool going;
    atomic_long received;
} start_stop_t;

static int ignore_task(const lz_message_t *msg, void *arg) { return 0; }

// A receive loop that may have entered lz_pull_recv before a start.
static void *receive_across_starts(void *arg) {
    start_stop_t *t = arg;
    while (atomic_load(&t->going)) {
        lz_message_t *msg = lz_pull_recv(t->pull, 5);
        if (msg) atomic_fetch_add(&t->received, 1);
        lz_message_destroy(&msg);
    }
    return NULL;
}

static void *feed_tasks(void *arg) {
    start_stop_t *t = arg;
    while (atomic_load(&t->going)) lz_push_send_bytes(t->push, "{\"type\":\"t\"}", 12);
    return NULL;
}

// Receives on other threads meet starts and stops, which the header allows
// (only registration calls may not overlap them). A stop freed the
// read-ahead while a receive begun before the start still read into it: a
// use after free (ASan, valgrind), a crash in a release build most runs.
LZ_TEST(pushpull_receives_across_starts_and_stops) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.send_timeout=10", "zmq.linger=0", "logging.level=ERROR");
    char endpoint[64];
    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    start_stop_t t = {.pull = lz_pull_new(ctx, endpoint), .going = true};
    LZ_CHECK(t.pull != NULL);
    t.push = lz_push_new(ctx, endpoint);
    LZ_CHECK(t.push != NULL);
    LZ_CHECK_INT(lz_pull_on(t.pull, "t", ignore_task, NULL), LZ_OK);
    pthread_t threads[3];
    pthread_create(&threads[0], NULL, receive_across_starts, &t);
    pthread_create(&threads[1], NULL, receive_across_starts, &t);
    pthread_create(&threads[2], NULL, feed_tasks, &t);
    LZ_TEST_WAIT_UNTIL(atomic_load(&t.received) > 0, 5000);
    int rounds = lz_test_under_valgrind() ? 100 : 1000;
    for (int i = 0; i < rounds; i++) {
        LZ_CHECK_INT(lz_pull_start(t.pull, 1 + i % 3), LZ_OK);
        usleep((useconds_t)(i % 200)); // stops at every stage of the readers' work
        LZ_CHECK_INT(lz_pull_stop(t.pull), LZ_OK);
        usleep((useconds_t)(i % 100));
    }
    atomic_store(&t.going, false);
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    LZ_CHECK(atomic_load(&t.received) > 0);
    lz_push_destroy(&t.push);
    lz_pull_destroy(&t.pull);
    lz_context_destroy(&ctx);
}

// A caller's loop on its own thread: lz_pull_dispatch(timeout_ms) once.
typedef struct {
    lz_pull_t *pull;
    int timeout_ms;
    int rc;
    atomic_bool returned;
} waiting_loop_t;

static void *waiting_loop(void *self) {
    waiting_loop_t *l = self;
    l->rc = lz_pull_dispatch(l->pull, l->timeout_ms);
    atomic_store(&l->returned, true);
    return NULL;
}

// A receive and a caller's loop waiting on other threads go on waiting
// across starts and stops, as the header says; each then gets the task
// sent after them. Before, the first stop ended both with LZ_ECLOSED, as
// if the puller were being destroyed. Every stop still ends the receiver
// thread, though the waiters may take the wake-up meant for it.
LZ_TEST(pushpull_waits_go_on_across_starts_and_stops) {
    pp_t p;
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on_default(p.pull, on_default, &p.seen), LZ_OK);
        waiting_reader_t r = {p.pull, 10000, 1, 0, false};
        waiting_loop_t l = {p.pull, 10000, 1, false};
        pthread_t reader, loop;
        LZ_CHECK_INT(pthread_create(&reader, NULL, waiting_reader, &r), 0);
        LZ_CHECK_INT(pthread_create(&loop, NULL, waiting_loop, &l), 0);
        LZ_CHECK_INT(wait_for_waiters(p.pull, 2), 2);
        for (int i = 0; i < 20; i++) {
            LZ_CHECK_INT(lz_pull_start(p.pull, 1 + i % 3), LZ_OK);
            lz_test_sleep_ms(i % 5);
            LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        }
        lz_test_sleep_ms(20);
        LZ_CHECK(!atomic_load(&r.returned));
        LZ_CHECK(!atomic_load(&l.returned));
        send_jobs(p.push, 1); // one at a time: one waiter could read both ahead
        LZ_TEST_WAIT_UNTIL(atomic_load(&r.returned) || atomic_load(&l.returned), 5000);
        send_jobs(p.push, 1);
        LZ_TEST_WAIT_UNTIL(atomic_load(&r.returned) && atomic_load(&l.returned), 5000);
        pthread_join(reader, NULL);
        pthread_join(loop, NULL);
        LZ_CHECK_INT(r.rc, LZ_OK);
        LZ_CHECK_INT(l.rc, 1);
        LZ_CHECK(r.took_ms < 9000);
    }
    pp_close(&p);
}

static int register_from_handler(const lz_message_t *msg, void *arg) {
    pp_t *p = arg;
    return lz_pull_on(p->pull, "late", on_default, &p->seen) == LZ_ESTATE &&
                   lz_pull_set_retry(p->pull, 1, 1) == LZ_ESTATE &&
                   lz_pull_on_dead_letter(p->pull, NULL, NULL) == LZ_ESTATE
               ? 0
               : -1;
}

static atomic_bool looping;

static void *dispatch_while_looping(void *arg) {
    while (atomic_load(&looping)) {
        lz_pull_dispatch(arg, 1);
        usleep(100); // room between the calls, where registrations go
    }
    return NULL;
}

// lz_pull_on during lz_pull_dispatch (another thread's, or from its
// handler) is refused with LZ_ESTATE: the loop reads the route table
// without a lock, and a new route moved it under the loop (a heap use
// after free under ASan). So are the retry and dead-letter setters: the
// loop reads those too (a dead-letter topic freed under its publish).
LZ_TEST(pushpull_on_during_a_dispatch_is_refused) {
    pp_t p;
    if (pp_open(&p, 0)) {
        LZ_CHECK_INT(lz_pull_on_default(p.pull, on_default, &p.seen), LZ_OK);
        waiting_loop_t l = {p.pull, 10000, 1, false};
        pthread_t loop;
        LZ_CHECK_INT(pthread_create(&loop, NULL, waiting_loop, &l), 0);
        LZ_CHECK_INT(wait_for_waiters(p.pull, 1), 1);
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", on_resize, &p.seen), LZ_ESTATE);
        LZ_CHECK(strstr(lz_last_error(), "while a dispatch runs") != NULL);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, on_email, &p.seen), LZ_ESTATE);
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 1), LZ_ESTATE);
        LZ_CHECK(strstr(lz_last_error(), "set retries between dispatch calls") != NULL);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, NULL, NULL), LZ_ESTATE);
        LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, NULL, NULL), LZ_ESTATE);
        send_jobs(p.push, 1);
        pthread_join(loop, NULL);
        LZ_CHECK_INT(l.rc, 1);
        LZ_CHECK_INT(seen_count(&p.seen), 1);
        LZ_CHECK_STR(p.seen.who[0], "default"); // the default route was kept
        // Between dispatch calls registration works; from a handler, not.
        LZ_CHECK_INT(lz_pull_on(p.pull, "job", register_from_handler, &p), LZ_OK);
        send_jobs(p.push, 1);
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 5000), 1);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).errors, 0);
        // Many registrations against a busy loop: each refused or made
        // whole, never a table moved under it.
        LZ_CHECK_INT(lz_pull_on(p.pull, "job", on_default, &p.seen), LZ_OK);
        atomic_store(&looping, true);
        LZ_CHECK_INT(pthread_create(&loop, NULL, dispatch_while_looping, p.pull), 0);
        int made = 0, refused = 0;
        int64_t end = lz_test_now_ms() + 3000;
        for (int i = 0; (i < 500 || refused < 20 || made < 20) && lz_test_now_ms() < end; i++) {
            char type[16];
            snprintf(type, sizeof type, "t%d", i);
            int rc = lz_pull_on(p.pull, type, on_resize, &p.seen);
            LZ_CHECK(rc == LZ_OK || rc == LZ_ESTATE);
            made += rc == LZ_OK;
            refused += rc == LZ_ESTATE;
            if (i % 10 == 0) send_jobs(p.push, 1);
        }
        atomic_store(&looping, false);
        pthread_join(loop, NULL);
        LZ_CHECK(refused >= 20 && made >= 20); // they met
    }
    pp_close(&p);
}

// A codec that has no memory for the first task it decodes (as a failed
// allocation in the JSON parser would), and is JSON otherwise.
static atomic_int starved_decodes;

static int starved_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    return lz_serializer_encode(lz_serializer_builtin("json"), value, out);
}

static int starved_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    if (atomic_fetch_add(&starved_decodes, 1) == 0) return lz_set_error(LZ_ENOMEM, "starved: out of memory");
    return lz_serializer_decode(lz_serializer_builtin("json"), data, size, out);
}

static void send_job(lz_push_t *push, int n) {
    lz_value_t *data = lz_value_int(n);
    LZ_CHECK_INT(lz_push_send(push, "job", data, 0), LZ_OK);
    lz_value_destroy(&data);
}

// A task the receiver thread has no memory to decode is one message lost:
// counted once, in inbound_dropped. It was counted in errors as well.
LZ_TEST(pushpull_task_without_memory_to_decode_is_counted_once) {
    pp_t p;
    atomic_store(&starved_decodes, 0);
    if (pp_open(&p, 1)) {
        static const lz_serializer_ops_t starved = {"starved", "application/json", 0, starved_encode, starved_decode,
                                                    NULL};
        LZ_CHECK_INT(lz_serializer_register(p.ctx, &starved, NULL), LZ_OK);
        LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(p.pull), "starved"), LZ_OK);
        LZ_CHECK_INT(lz_node_set_serializer(lz_push_node(p.push), "starved"), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "job", on_default, &p.seen), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        send_job(p.push, 1);
        send_job(p.push, 2);
        LZ_TEST_WAIT_UNTIL(seen_count(&p.seen) == 1, 5000);
        LZ_CHECK_INT(seen_count(&p.seen), 1);
        lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
        LZ_CHECK_INT(m.messages_received, 2);
        LZ_CHECK_INT(m.inbound_dropped, 1);
        LZ_CHECK_INT(m.errors, 0);
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
    }
    pp_close(&p);
}

LZ_TEST_MAIN(LZ_CASE(pushpull_immediate_needs_a_live_puller), LZ_CASE(pushpull_tasks_reach_their_handler),
             LZ_CASE(pushpull_unknown_type_for_non_objects), LZ_CASE(pushpull_pool_of_4_runs_8_tasks_concurrently),
             LZ_CASE(pushpull_pool_size_from_config), LZ_CASE(pushpull_single_worker_is_sequential),
             LZ_CASE(pushpull_bad_arguments), LZ_CASE(pushpull_no_peer_times_out),
             LZ_CASE(pushpull_round_robin_across_two_pullers), LZ_CASE(pushpull_ventilator_workers_sink),
             LZ_CASE(pushpull_raw_sends_one_frame_of_bytes), LZ_CASE(pushpull_raw_recv_keeps_the_frame),
             LZ_CASE(pushpull_recv_and_envelope_json),
             LZ_CASE(pushpull_recv_and_envelope_msgpack), LZ_CASE(pushpull_fd_dispatch), LZ_CASE(pushpull_recv_bytes),
             LZ_CASE(pushpull_shared_readers), LZ_CASE(pushpull_waiting_readers_share_a_burst),
             LZ_CASE(pushpull_shared_readers_skip_malformed_tasks),
             LZ_CASE(pushpull_second_registration_replaces_the_first),
             LZ_CASE(pushpull_stop_from_own_handler_on_the_receiver),
             LZ_CASE(pushpull_stop_from_own_handler_on_a_worker),
             LZ_CASE(pushpull_destroy_from_own_handler_is_refused),
             LZ_CASE(pushpull_destroy_from_the_dead_letter_sink_is_refused),
             LZ_CASE(pushpull_destroy_while_readers_wait), LZ_CASE(pushpull_receives_across_starts_and_stops),
             LZ_CASE(pushpull_waits_go_on_across_starts_and_stops), LZ_CASE(pushpull_on_during_a_dispatch_is_refused),
             LZ_CASE(pushpull_task_without_memory_to_decode_is_counted_once))
