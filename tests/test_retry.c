/* Retries and dead letters: the delay queue under them, a puller running a
 * failed task again after its backoff, the dead-letter record (to a
 * function and published to a subscriber), other tasks flowing while one
 * waits, the caller-driven loop, a stop with retries waiting, the
 * configuration keys and bad arguments. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "core/delay.h"
#include "core/node.h"
#include "lz_test.h"

/* ---- the delay queue ------------------------------------------------------ */

static int job_ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};

static void collect(void *job, void *arg) {
    int *order = arg;
    order[order[0]++ + 1] = *(int *)job;
}

LZ_TEST(delay_queue_keeps_due_order) {
    lz_delay_t *q = lz__delay_new();
    LZ_CHECK(q != NULL);
    if (!q) return;
    int64_t now = lz__now_ms();
    int wait = 0;
    LZ_CHECK(lz__delay_take(q, &wait) == NULL);
    LZ_CHECK_INT(wait, -1); // nothing held
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[1], now + 60000), LZ_OK);
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[2], now - 5), LZ_OK);
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[3], now - 5), LZ_OK); // same time: after 2
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[4], now - 10), LZ_OK);
    LZ_CHECK_INT((int)lz__delay_count(q), 4);
    LZ_CHECK(lz__delay_take(q, NULL) == &job_ids[4]);
    LZ_CHECK(lz__delay_take(q, NULL) == &job_ids[2]);
    LZ_CHECK(lz__delay_take(q, &wait) == &job_ids[3]);
    LZ_CHECK(wait > 50000 && wait <= 60000); // the next is a minute away
    LZ_CHECK(lz__delay_take(q, &wait) == NULL); // not due
    LZ_CHECK_INT((int)lz__delay_count(q), 1);
    // Draining hands over what is not due too, in order.
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[5], now + 30000), LZ_OK);
    int order[8] = {0};
    lz__delay_drain(q, collect, order);
    LZ_CHECK_INT(order[0], 2);
    LZ_CHECK_INT(order[1], 5);
    LZ_CHECK_INT(order[2], 1);
    LZ_CHECK_INT((int)lz__delay_count(q), 0);
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[6], now + 30000), LZ_OK);
    lz__delay_destroy(&q, collect, order); // destroy drains too
    LZ_CHECK(q == NULL);
    LZ_CHECK_INT(order[0], 3);
    LZ_CHECK_INT(order[3], 6);
}

typedef struct {
    lz_delay_t *q;
    void *got;
    int64_t at;
} waiter_t;

static void *wait_main(void *self) {
    waiter_t *w = self;
    w->got = lz__delay_wait(w->q);
    w->at = lz__now_ms();
    return NULL;
}

LZ_TEST(delay_queue_wakes_its_waiter) {
    lz_delay_t *q = lz__delay_new();
    LZ_CHECK(q != NULL);
    if (!q) return;
    // A waiter on an empty queue wakes for a job put later, when it is due.
    waiter_t w = {q, NULL, 0};
    pthread_t thread;
    LZ_CHECK_INT(pthread_create(&thread, NULL, wait_main, &w), 0);
    lz_test_sleep_ms(20);
    int64_t put_at = lz__now_ms();
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[1], put_at + 60000), LZ_OK);
    LZ_CHECK_INT(lz__delay_put(q, &job_ids[2], put_at + 80), LZ_OK); // earlier: the waiter re-arms
    pthread_join(thread, NULL);
    LZ_CHECK(w.got == &job_ids[2]);
    LZ_CHECK(w.at >= put_at + 80);
    LZ_CHECK(w.at < put_at + 10000);
    // Closing ends the wait with NULL and keeps what is held.
    w = (waiter_t){q, &job_ids[0], 0};
    LZ_CHECK_INT(pthread_create(&thread, NULL, wait_main, &w), 0);
    lz_test_sleep_ms(20);
    lz__delay_close(q);
    pthread_join(thread, NULL);
    LZ_CHECK(w.got == NULL);
    LZ_CHECK_INT((int)lz__delay_count(q), 1);
    lz__delay_destroy(&q, NULL, NULL);
}

/* ---- a puller's retries ----------------------------------------------------- */

// What the handlers saw and the dead letters that came out.
typedef struct {
    pthread_mutex_t lock;
    int runs;
    int attempt[32];     // lz_message_attempt of each run
    int64_t at[32];      // when each run began
    char type[32][16];
    int succeed_on;      // the attempt that succeeds; 0: none
    bool explain;        // fail through lz_set_error
    int letters;
    lz_value_t *letter;  // a copy of the last dead letter
    char letter_task[16];
} log_t;

static void log_init(log_t *log, int succeed_on, bool explain) {
    memset(log, 0, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
    log->succeed_on = succeed_on;
    log->explain = explain;
}

static void log_fini(log_t *log) {
    lz_value_destroy(&log->letter);
    pthread_mutex_destroy(&log->lock);
}

static int log_count(log_t *log, int *field) {
    pthread_mutex_lock(&log->lock);
    int n = *field;
    pthread_mutex_unlock(&log->lock);
    return n;
}

static int flaky(const lz_message_t *msg, void *arg) {
    log_t *log = arg;
    pthread_mutex_lock(&log->lock);
    int i = log->runs < 32 ? log->runs++ : 31;
    log->attempt[i] = lz_message_attempt(msg);
    log->at[i] = lz__now_ms();
    snprintf(log->type[i], sizeof log->type[i], "%s", lz_message_type(msg));
    pthread_mutex_unlock(&log->lock);
    if (strcmp(lz_message_type(msg), "good") == 0 || lz_message_attempt(msg) == log->succeed_on) return 0;
    return log->explain ? lz_set_error(LZ_EVALIDATION, "width %d too large", 9000) : -1;
}

static void keep_letter(const lz_value_t *letter, const lz_message_t *task, void *arg) {
    log_t *log = arg;
    pthread_mutex_lock(&log->lock);
    log->letters++;
    lz_value_destroy(&log->letter);
    log->letter = lz_value_copy(letter);
    snprintf(log->letter_task, sizeof log->letter_task, "%s", lz_message_type(task));
    pthread_mutex_unlock(&log->lock);
}

typedef struct {
    lz_context_t *ctx;
    lz_pull_t *pull;
    lz_push_t *push;
} pipe_t;

static bool pipe_open(pipe_t *p, lz_context_t *ctx) {
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->pull = ctx ? lz_pull_new(ctx, "tcp://127.0.0.1:*") : NULL;
    p->push = p->pull ? lz_push_new(ctx, lz_node_endpoint(lz_pull_node(p->pull))) : NULL;
    LZ_CHECK(p->push != NULL);
    return p->push != NULL;
}

static void pipe_close(pipe_t *p) {
    lz_push_destroy(&p->push);
    lz_pull_destroy(&p->pull);
    lz_context_destroy(&p->ctx);
}

static void send_task(pipe_t *p, const char *type, const char *json) {
    lz_value_t *data = lz_value_from_json(json, strlen(json));
    LZ_CHECK(data != NULL);
    LZ_CHECK_INT(lz_push_send(p->push, type, data, 0), LZ_OK);
    lz_value_destroy(&data);
}

LZ_TEST(retry_runs_a_failed_task_again_after_its_backoff) {
    pipe_t p;
    log_t log;
    log_init(&log, 3, false);
    if (pipe_open(&p, lz_test_pattern_context(2))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 3, 40), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 2), LZ_OK);
        send_task(&p, "resize", "{\"w\": 1}");
        LZ_TEST_WAIT_UNTIL(log_count(&log, &log.runs) >= 3, 5000);
        lz_test_sleep_ms(100); // no fourth run comes
        LZ_CHECK_INT(log_count(&log, &log.runs), 3);
        for (int i = 0; i < 3; i++) LZ_CHECK_INT(log.attempt[i], i + 1);
        // The n-th retry waits n * 40 ms.
        LZ_CHECK(log.at[1] - log.at[0] >= 40);
        LZ_CHECK(log.at[2] - log.at[1] >= 80);
        lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
        LZ_CHECK_INT(m.task_retries, 2);
        LZ_CHECK_INT(m.errors, 2);
        LZ_CHECK_INT(m.dead_letters, 0);
        LZ_CHECK_INT(log_count(&log, &log.letters), 0);
    }
    pipe_close(&p);
    log_fini(&log);
}

LZ_TEST(dead_letter_after_the_last_retry) {
    pipe_t p;
    log_t log;
    log_init(&log, 0, true);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 2, 10), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        lz_value_t *data = lz_value_from_json("{\"w\": 9000}", 11);
        LZ_CHECK_INT(lz_push_send(p.push, "resize", data, 7), LZ_OK);
        lz_value_destroy(&data);
        LZ_TEST_WAIT_UNTIL(log_count(&log, &log.letters) == 1, 5000);
        LZ_CHECK_INT(log_count(&log, &log.letters), 1);
        LZ_CHECK_INT(log_count(&log, &log.runs), 3);
        pthread_mutex_lock(&log.lock);
        const lz_value_t *letter = log.letter, *task = lz_value_get(letter, "original_task");
        LZ_CHECK_STR(log.letter_task, "resize");
        LZ_CHECK_INT(lz_value_size(letter), 4);
        LZ_CHECK_STR(lz_value_get_string(lz_value_get(letter, "final_error"), NULL),
                     "handler for 'resize' failed: width 9000 too large");
        LZ_CHECK_INT(lz_value_get_int(lz_value_get(letter, "retry_count")), 3);
        double failed_at = lz_value_get_double(lz_value_get(letter, "failed_at"));
        LZ_CHECK(failed_at > (double)time(NULL) - 60 && failed_at < (double)time(NULL) + 60);
        // The task as it came: its envelope, with its data.
        LZ_CHECK_STR(lz_value_get_string(lz_value_get(task, "type"), NULL), "resize");
        LZ_CHECK_INT(lz_value_get_int(lz_value_get(lz_value_get(task, "data"), "w")), 9000);
        LZ_CHECK_INT(lz_value_get_int(lz_value_get(task, "priority")), 7);
        LZ_CHECK_INT((int)strlen(lz_value_get_string(lz_value_get(task, "task_id"), NULL)), 36);
        LZ_CHECK(lz_value_get(task, "timestamp") != NULL);
        pthread_mutex_unlock(&log.lock);
        lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
        LZ_CHECK_INT(m.task_retries, 2);
        LZ_CHECK_INT(m.dead_letters, 1);
        LZ_CHECK_INT(m.errors, 3);
    }
    pipe_close(&p);
    log_fini(&log);
}

// A subscriber's view of the dead letters published for us.
static lz_message_t *next_letter(lz_sub_t *sub) { return lz_sub_recv(sub, 5000); }

LZ_TEST(dead_letters_are_published) {
    pipe_t p;
    log_t log;
    log_init(&log, 0, false);
    if (pipe_open(&p, lz_test_pattern_context(2))) {
        lz_pub_t *pub = lz_pub_new(p.ctx, "@tcp://127.0.0.1:*");
        lz_sub_t *sub = pub ? lz_sub_new(p.ctx, lz_node_endpoint(lz_pub_node(pub))) : NULL;
        LZ_CHECK(sub != NULL);
        if (sub) {
            LZ_CHECK_INT(lz_sub_subscribe(sub, "dead_letter"), LZ_OK);
            LZ_CHECK_INT(lz_sub_subscribe(sub, "failed.tasks"), LZ_OK);
            lz_test_sleep_ms(100); // the subscription travels
            LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, pub, NULL), LZ_OK); // no retries: the first failure is final
            LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
            LZ_CHECK_INT(lz_pull_start(p.pull, 2), LZ_OK);
            send_task(&p, "email", "\"to@example.org\"");
            lz_message_t *msg = next_letter(sub);
            LZ_CHECK(msg != NULL);
            if (msg) {
                LZ_CHECK_STR(lz_message_topic(msg), "dead_letter");
                const lz_value_t *letter = lz_message_value(msg);
                LZ_CHECK_STR(lz_value_get_string(lz_value_get(letter, "final_error"), NULL), "handler for 'email' returned -1");
                LZ_CHECK_INT(lz_value_get_int(lz_value_get(letter, "retry_count")), 1);
                const lz_value_t *task = lz_value_get(letter, "original_task");
                LZ_CHECK_STR(lz_value_get_string(lz_value_get(task, "data"), NULL), "to@example.org");
                LZ_CHECK_STR(lz_value_get_string(lz_value_get(task, "type"), NULL), "email");
            }
            lz_message_destroy(&msg);
            LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).dead_letters, 1);
            // Another topic, set between runs.
            LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
            LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, pub, "failed.tasks"), LZ_OK);
            LZ_CHECK_INT(lz_pull_start(p.pull, 2), LZ_OK);
            send_task(&p, "email", "null");
            msg = next_letter(sub);
            LZ_CHECK(msg != NULL);
            if (msg) LZ_CHECK_STR(lz_message_topic(msg), "failed.tasks");
            lz_message_destroy(&msg);
            LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        }
        lz_sub_destroy(&sub);
        lz_pub_destroy(&pub);
    }
    pipe_close(&p);
    log_fini(&log);
}

// A codec that encodes nothing: a publisher using it cannot send a letter.
static int refuse_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    return lz_set_error(LZ_ESERIALIZATION, "refuse: encodes nothing");
}

static int refuse_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    return lz_set_error(LZ_ESERIALIZATION, "refuse: decodes nothing");
}

// A dead letter its publisher cannot send is counted once on the puller,
// in dead_letters (and the publisher counts its failed encode): it was
// also counted in the puller's errors, a lost task counted twice.
LZ_TEST(a_dead_letter_that_cannot_be_published_is_counted_once) {
    pipe_t p;
    log_t log;
    log_init(&log, 0, false);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        static const lz_serializer_ops_t refuse = {"refuse", "application/x-refuse", 0, refuse_encode, refuse_decode,
                                                   NULL};
        LZ_CHECK_INT(lz_serializer_register(p.ctx, &refuse, NULL), LZ_OK);
        lz_pub_t *pub = lz_pub_new(p.ctx, "@tcp://127.0.0.1:*");
        LZ_CHECK(pub != NULL);
        if (pub) {
            LZ_CHECK_INT(lz_node_set_serializer(lz_pub_node(pub), "refuse"), LZ_OK);
            LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, pub, NULL), LZ_OK); // the first failure is final
            LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
            LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
            send_task(&p, "email", "1");
            LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_pub_node(pub)).errors == 1, 5000);
            LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
            lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
            LZ_CHECK_INT(m.dead_letters, 1);
            LZ_CHECK_INT(m.errors, 1); // the handler's failure
            LZ_CHECK_INT(lz_test_metrics(lz_pub_node(pub)).errors, 1);
        }
        lz_pub_destroy(&pub);
    }
    pipe_close(&p);
    log_fini(&log);
}

LZ_TEST(raw_tasks_keep_their_bytes_in_the_letter) {
    pipe_t p;
    log_t log;
    log_init(&log, 0, false);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(p.pull), "raw"), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        LZ_CHECK_INT(lz_push_send_bytes(p.push, "\x00\xff", 2), LZ_OK);
        LZ_TEST_WAIT_UNTIL(log_count(&log, &log.letters) == 1, 5000);
        pthread_mutex_lock(&log.lock);
        const lz_value_t *task = lz_value_get(log.letter, "original_task");
        size_t size = 0;
        const void *bytes = lz_value_get_bytes(lz_value_get(task, "data"), &size);
        LZ_CHECK(bytes != NULL && size == 2 && memcmp(bytes, "\x00\xff", 2) == 0);
        LZ_CHECK(lz_value_get_string(lz_value_get(task, "type"), NULL) != NULL);
        pthread_mutex_unlock(&log.lock);
    }
    pipe_close(&p);
    log_fini(&log);
}

LZ_TEST(other_tasks_go_on_while_one_waits) {
    pipe_t p;
    log_t log;
    log_init(&log, 2, false);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        // One handler thread: a retry waiting in it would hold every task back.
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 400), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        send_task(&p, "resize", "1");
        for (int i = 0; i < 5; i++) send_task(&p, "good", "2");
        LZ_TEST_WAIT_UNTIL(log_count(&log, &log.runs) >= 7, 5000);
        LZ_CHECK_INT(log_count(&log, &log.runs), 7);
        pthread_mutex_lock(&log.lock);
        LZ_CHECK_STR(log.type[0], "resize");
        for (int i = 1; i < 6; i++) LZ_CHECK_STR(log.type[i], "good");
        LZ_CHECK_STR(log.type[6], "resize");
        LZ_CHECK_INT(log.attempt[6], 2);
        LZ_CHECK(log.at[5] - log.at[0] < 400); // the good ones did not wait for the retry
        LZ_CHECK(log.at[6] - log.at[0] >= 400);
        pthread_mutex_unlock(&log.lock);
    }
    pipe_close(&p);
    log_fini(&log);
}

LZ_TEST(caller_driven_dispatch_runs_due_retries) {
    pipe_t p;
    log_t log;
    log_init(&log, 2, false);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 60), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        send_task(&p, "resize", "1");
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 5000), 1); // the first run, which fails
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 0), 0);    // the retry is not due yet
        // A long wait ends when the retry comes due, not at its timeout.
        int64_t start = lz__now_ms();
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 10000), 1);
        LZ_CHECK(lz__now_ms() - start < 5000);
        LZ_CHECK_INT(log.runs, 2);
        LZ_CHECK_INT(log.attempt[1], 2);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).task_retries, 1);
        // Tasks taken with lz_pull_recv are the caller's: nothing to retry.
        send_task(&p, "resize", "1");
        lz_message_t *msg = lz_pull_recv(p.pull, 5000);
        LZ_CHECK(msg != NULL);
        LZ_CHECK_INT(lz_message_attempt(msg), 1);
        lz_message_destroy(&msg);
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 100), 0);
    }
    pipe_close(&p);
    log_fini(&log);
}

// A loop on lz_pull_fd: a retry coming due does not make the socket's
// descriptor readable, so a loop that polled it without end waited for the
// next task, however late. Polling no longer than lz_pull_next_retry_ms
// runs the retry when it is due.
LZ_TEST(fd_loop_polls_no_longer_than_the_next_retry) {
    pipe_t p;
    log_t log;
    log_init(&log, 2, false);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        int ms = 0, fd = -1;
        LZ_CHECK_INT(lz_pull_next_retry_ms(NULL, &ms), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_next_retry_ms(p.pull, NULL), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_next_retry_ms(p.pull, &ms), LZ_OK);
        LZ_CHECK_INT(ms, -1); // nothing waits
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 50), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_fd(p.pull, &fd), LZ_OK);
        send_task(&p, "resize", "1");
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 5000), 1); // the first run, which fails
        int64_t failed = lz__now_ms();
        LZ_CHECK_INT(lz_pull_next_retry_ms(p.pull, &ms), LZ_OK);
        LZ_CHECK(ms >= 0 && ms <= 50);
        // The loop, as pushpull.h shows it, bounded at 3 s (no task comes).
        while (log_count(&log, &log.runs) < 2 && lz__now_ms() - failed < 3000) {
            LZ_CHECK_INT(lz_pull_next_retry_ms(p.pull, &ms), LZ_OK);
            int left = (int)(failed + 3000 - lz__now_ms());
            poll(&(struct pollfd){fd, POLLIN, 0}, 1, ms >= 0 && ms < left ? ms : left > 0 ? left : 0);
            while (lz_pull_dispatch(p.pull, 0) > 0) {
            }
        }
        LZ_CHECK_INT(log_count(&log, &log.runs), 2);
        LZ_CHECK(lz__now_ms() - failed < 1000); // due at 50 ms
        LZ_CHECK_INT(lz_pull_next_retry_ms(p.pull, &ms), LZ_OK);
        LZ_CHECK_INT(ms, -1); // it succeeded: nothing waits
    }
    pipe_close(&p);
    log_fini(&log);
}

LZ_TEST(stop_gives_up_the_retries_waiting) {
    pipe_t p;
    log_t log;
    log_init(&log, 0, true);
    if (pipe_open(&p, lz_test_pattern_context(2))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 5, 20000), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 2), LZ_OK);
        send_task(&p, "resize", "1");
        LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_pull_node(p.pull)).task_retries == 1, 5000);
        int64_t start = lz__now_ms();
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK); // does not wait 20 s
        LZ_CHECK(lz__now_ms() - start < 5000);
        LZ_CHECK_INT(log.letters, 1);
        LZ_CHECK_STR(lz_value_get_string(lz_value_get(log.letter, "final_error"), NULL),
                     "handler for 'resize' failed: width 9000 too large; stopped before retry 1");
        LZ_CHECK_INT(lz_value_get_int(lz_value_get(log.letter, "retry_count")), 1);
        // Without a sink, a waiting retry is dropped and counted as such.
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, NULL, NULL), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 2), LZ_OK);
        uint64_t dropped = lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped;
        send_task(&p, "resize", "1");
        LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_pull_node(p.pull)).task_retries == 2, 5000);
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped, dropped + 1);
        LZ_CHECK_INT(log.letters, 1);
        // A waiting retry when the puller is destroyed unstarted goes the same way.
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        send_task(&p, "resize", "1");
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 5000), 1);
        lz_pull_destroy(&p.pull);
        LZ_CHECK_INT(log.letters, 2);
    }
    pipe_close(&p);
    log_fini(&log);
}

// A flood of failing tasks, and the first dead letter it gave: atomics, as
// the handler runs on a worker and the sink there or on the thread that
// stops the puller (the first letter's fields are written before the count).
typedef struct {
    atomic_int runs, letters;
    int first_task, first_retry_count;
    char first_error[64];
} flood_t;

static int always_fail(const lz_message_t *msg, void *arg) {
    (void)msg;
    atomic_fetch_add(&((flood_t *)arg)->runs, 1);
    return -1;
}

static void count_letter(const lz_value_t *letter, const lz_message_t *task, void *arg) {
    (void)task;
    flood_t *flood = arg;
    if (atomic_load(&flood->letters) == 0) {
        flood->first_task = (int)lz_value_get_int(lz_value_get(lz_value_get(letter, "original_task"), "data"));
        flood->first_retry_count = (int)lz_value_get_int(lz_value_get(letter, "retry_count"));
        snprintf(flood->first_error, sizeof flood->first_error, "%s",
                 lz_value_find_string(letter, "final_error", ""));
    }
    atomic_fetch_add(&flood->letters, 1);
}

// At most 10000 failed tasks wait for a retry (pushpull.h, pushpull.md):
// a failure past that is final, the task a dead letter at once, while the
// 10000 keep waiting for theirs (given up only when the puller stops).
LZ_TEST(a_failure_past_the_waiting_cap_is_a_dead_letter) {
    enum { WAITING_MAX = 10000 };
    pipe_t p;
    flood_t flood = {0};
    // One worker runs the handlers in arrival order: the last task is the one past the cap.
    if (pipe_open(&p, LZ_TEST_CONTEXT("zmq.linger=200", "zmq.handler_max_concurrency=1", "logging.level=off"))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 600000), LZ_OK); // no retry comes due in the test
        LZ_CHECK_INT(lz_pull_on_default(p.pull, always_fail, &flood), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, count_letter, &flood), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        for (int i = 0; i <= WAITING_MAX; i++) {
            char data[16];
            snprintf(data, sizeof data, "%d", i);
            send_task(&p, "flood", data);
        }
        LZ_TEST_WAIT_UNTIL(atomic_load(&flood.letters) == 1, 5000 * LZ_TEST_SLOWDOWN);
        LZ_CHECK_INT(atomic_load(&flood.letters), 1);
        LZ_CHECK_INT(atomic_load(&flood.runs), WAITING_MAX + 1);
        LZ_CHECK_INT(flood.first_task, WAITING_MAX);
        LZ_CHECK_INT(flood.first_retry_count, 1);
        LZ_CHECK_STR(flood.first_error, "handler for 'flood' returned -1");
        lz_metrics_t m = lz_test_metrics(lz_pull_node(p.pull));
        LZ_CHECK_INT(m.task_retries, WAITING_MAX);
        LZ_CHECK_INT(m.dead_letters, 1);
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        LZ_CHECK_INT(atomic_load(&flood.letters), WAITING_MAX + 1);
    }
    pipe_close(&p);
}

// A retry due at once (delay 0) may run on another worker, fail for the
// last time and be freed before the worker whose run failed first has
// counted and logged the retry: that one must not read the task after
// handing it over. Many tasks and workers make the race likely (ASan).
static void count_retry_lines(lz_log_level_t level, const char *component, const char *line, void *arg) {
    (void)component;
    if (level == LZ_LOG_INFO && strstr(line, ": retry 1 of 1 in 0 ms")) atomic_fetch_add((atomic_int *)arg, 1);
}

LZ_TEST(retries_due_at_once_on_many_workers) {
    pipe_t p;
    log_t log;
    atomic_int retry_lines = 0;
    log_init(&log, 0, false);
    if (pipe_open(&p, lz_test_pattern_context(8))) {
        LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(p.ctx), count_retry_lines, &retry_lines), LZ_OK);
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 0), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 8), LZ_OK);
        enum { TASKS = 1500 };
        for (int i = 0; i < TASKS; i++) send_task(&p, "resize", "1");
        LZ_TEST_WAIT_UNTIL(log_count(&log, &log.letters) == TASKS, 10000);
        LZ_CHECK_INT(log_count(&log, &log.letters), TASKS);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).task_retries, TASKS);
        LZ_CHECK_INT(atomic_load(&retry_lines), TASKS);
    }
    pipe_close(&p);
    log_fini(&log);
}

LZ_TEST(a_waiting_retry_runs_the_handler_registered_by_then) {
    pipe_t p;
    log_t log;
    atomic_int others = 0, replaced = 0;
    log_init(&log, 0, false);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 50), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", flaky, &log), LZ_OK);
        send_task(&p, "resize", "1");
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 5000), 1); // fails: the retry waits
        // Between dispatches handlers may still be registered: enough to
        // move the route table, then the failing one replaced.
        for (int i = 0; i < 64; i++) {
            char type[16];
            snprintf(type, sizeof type, "other%d", i);
            LZ_CHECK_INT(lz_pull_on(p.pull, type, lz_test_count_handler, &others), LZ_OK);
        }
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", lz_test_count_handler, &replaced), LZ_OK);
        LZ_CHECK_INT(lz_pull_dispatch(p.pull, 5000), 1);
        LZ_CHECK_INT(atomic_load(&replaced), 1);
        LZ_CHECK_INT(log_count(&log, &log.runs), 1);
        LZ_CHECK_INT(atomic_load(&others), 0);
    }
    pipe_close(&p);
    log_fini(&log);
}

// slow takes long enough for a retry to come due behind it.
static int slow(const lz_message_t *msg, void *arg) {
    (void)msg;
    atomic_store((atomic_bool *)arg, true);
    lz_test_sleep_ms(400);
    return 0;
}

LZ_TEST(stop_gives_up_a_due_retry_still_queued) {
    pipe_t p;
    log_t log;
    atomic_bool slow_running = false;
    log_init(&log, 0, true);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 3, 100), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "resize", flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_on(p.pull, "slow", slow, &slow_running), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        send_task(&p, "resize", "1");
        LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_pull_node(p.pull)).task_retries == 1, 5000);
        send_task(&p, "slow", "2"); // holds the one worker past the retry's due time
        LZ_TEST_WAIT_UNTIL(atomic_load(&slow_running), 5000);
        lz_test_sleep_ms(200); // the retry is due now, queued behind "slow"
        uint64_t dropped = lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped;
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        LZ_CHECK_INT(log.runs, 1);
        LZ_CHECK_INT(log.letters, 1);
        LZ_CHECK_STR(log.letter_task, "resize");
        LZ_CHECK_STR(lz_value_get_string(lz_value_get(log.letter, "final_error"), NULL),
                     "handler for 'resize' failed: width 9000 too large; stopped before retry 1");
        LZ_CHECK_INT(lz_value_get_int(lz_value_get(log.letter, "retry_count")), 1);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).dead_letters, 1);
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).inbound_dropped, dropped);
    }
    pipe_close(&p);
    log_fini(&log);
}

LZ_TEST(retry_defaults_come_from_the_configuration) {
    pipe_t p;
    log_t log;
    log_init(&log, 0, false);
    if (pipe_open(&p, LZ_TEST_CONTEXT("zmq.linger=200", "tasks.max_retries=2", "tasks.retry_delay=5"))) {
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        send_task(&p, "resize", "1");
        LZ_TEST_WAIT_UNTIL(log_count(&log, &log.letters) == 1, 5000);
        LZ_CHECK_INT(log_count(&log, &log.runs), 3);
    }
    pipe_close(&p);
    log_fini(&log);
    lz_config_t *cfg = lz_config_new();
    LZ_CHECK_INT(lz_config_set(cfg, "tasks.max_retries", "101"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(cfg, "tasks.retry_delay", "-1"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(cfg, "tasks.retry_delay", "21474837"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(cfg, "tasks.retry_delay", "21474836"), LZ_OK);
    lz_config_destroy(&cfg);
}

LZ_TEST(retry_arguments_are_checked) {
    pipe_t p;
    log_t log;
    log_init(&log, 0, false);
    LZ_CHECK_INT(lz_pull_set_retry(NULL, 1, 1), LZ_EINVAL);
    LZ_CHECK_INT(lz_pull_on_dead_letter(NULL, keep_letter, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_pull_set_dead_letter(NULL, NULL, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_message_attempt(NULL), 0);
    if (pipe_open(&p, lz_test_pattern_context(1))) {
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, -1, 1), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 101, 1), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, -1), LZ_EINVAL);
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 100, 21474836), LZ_OK);
        // A letter's topic must be text, as every publish's (lz_pub_publish).
        lz_pub_t *pub = lz_pub_new(p.ctx, NULL);
        LZ_CHECK(pub != NULL);
        LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, pub, "letters\xff"), LZ_EINVAL);
        LZ_CHECK(strstr(lz_last_error(), "not UTF-8") != NULL);
        LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, pub, "letters.\xc3\xa9"), LZ_OK);
        LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, NULL, NULL), LZ_OK);
        lz_pub_destroy(&pub);
        LZ_CHECK_INT(lz_pull_on_default(p.pull, flaky, &log), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 1, 1), LZ_ESTATE);
        LZ_CHECK(strstr(lz_last_error(), "before start") != NULL);
        LZ_CHECK_INT(lz_pull_on_dead_letter(p.pull, keep_letter, &log), LZ_ESTATE);
        LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, NULL, NULL), LZ_ESTATE);
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
    }
    pipe_close(&p);
    log_fini(&log);
    // lz_set_error records what lz_last_error reports and returns the code.
    LZ_CHECK_INT(lz_set_error(LZ_ENOTFOUND, "no %s", "thing"), LZ_ENOTFOUND);
    LZ_CHECK_STR(lz_last_error(), "no thing");
    LZ_CHECK_INT(lz_last_error_code(), LZ_ENOTFOUND);
}

static int fail_task(const lz_message_t *msg, void *arg) { return -1; }

// A stop hands the retries still waiting to the dead-letter publisher,
// which does not wait for room then: its subscriber reads nothing, its
// queue holds one letter, and the rest are counted as dropped at once.
// Each used to hold the stop for zmq.send_timeout (3 s here, 12 s for 5).
LZ_TEST(a_stop_does_not_wait_for_a_full_dead_letter_subscriber) {
    pipe_t p;
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.hwm_outbound=1", "zmq.hwm_inbound=1",
                                        "zmq.send_timeout=3000", "logging.level=off");
    char sink[64];
    lz_test_inproc_endpoint(sink, sizeof sink);
    lz_pub_t *pub = lz_pub_new(ctx, sink);
    lz_sub_t *sub = lz_sub_new(ctx, sink); // joins, then reads nothing
    LZ_CHECK(sub && lz_sub_subscribe(sub, "") == LZ_OK && lz_test_sub_joined(pub, sub, "dead_letter"));
    if (pipe_open(&p, ctx)) {
        enum { TASKS = 5 };
        LZ_CHECK_INT(lz_pull_set_retry(p.pull, 3, 600000), LZ_OK); // no retry comes due in the test
        LZ_CHECK_INT(lz_pull_on_default(p.pull, fail_task, NULL), LZ_OK);
        LZ_CHECK_INT(lz_pull_set_dead_letter(p.pull, pub, NULL), LZ_OK);
        LZ_CHECK_INT(lz_pull_start(p.pull, 1), LZ_OK);
        for (int i = 0; i < TASKS; i++) send_task(&p, "t", "1");
        LZ_TEST_WAIT_UNTIL(lz_test_metrics(lz_pull_node(p.pull)).task_retries == TASKS, 5000);
        uint64_t dropped = lz_test_metrics(lz_pub_node(pub)).outbound_dropped;
        int64_t start = lz_test_now_ms();
        LZ_CHECK_INT(lz_pull_stop(p.pull), LZ_OK);
        LZ_CHECK(lz_test_now_ms() - start < 2500); // not one send_timeout
        LZ_CHECK_INT(lz_test_metrics(lz_pull_node(p.pull)).dead_letters, TASKS);
        LZ_CHECK(lz_test_metrics(lz_pub_node(pub)).outbound_dropped > dropped); // counted, not lost silently
    }
    lz_push_destroy(&p.push);
    lz_pull_destroy(&p.pull);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(delay_queue_keeps_due_order), LZ_CASE(delay_queue_wakes_its_waiter),
             LZ_CASE(retry_runs_a_failed_task_again_after_its_backoff), LZ_CASE(dead_letter_after_the_last_retry),
             LZ_CASE(dead_letters_are_published), LZ_CASE(a_dead_letter_that_cannot_be_published_is_counted_once),
             LZ_CASE(raw_tasks_keep_their_bytes_in_the_letter),
             LZ_CASE(other_tasks_go_on_while_one_waits), LZ_CASE(caller_driven_dispatch_runs_due_retries),
             LZ_CASE(fd_loop_polls_no_longer_than_the_next_retry),
             LZ_CASE(stop_gives_up_the_retries_waiting), LZ_CASE(a_failure_past_the_waiting_cap_is_a_dead_letter),
             LZ_CASE(retries_due_at_once_on_many_workers), LZ_CASE(a_waiting_retry_runs_the_handler_registered_by_then),
             LZ_CASE(stop_gives_up_a_due_retry_still_queued), LZ_CASE(retry_defaults_come_from_the_configuration),
             LZ_CASE(retry_arguments_are_checked), LZ_CASE(a_stop_does_not_wait_for_a_full_dead_letter_subscriber))
