/* Receive, decode, route, run: the loop behind subscribers and pullers.
 * The node lock is held only while a receive reads, not while it waits
 * (lz__node_wait), so subscribing from another thread never waits for an
 * idle receiver. */
#include "core/dispatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/hooks.h"
#include "core/thread.h"
#include "core/trace.h"

// Messages read ahead per lock round trip: enough to make the lock's cost
// per message small, few enough that the slots (LZ_MAX_FRAMES zmq_msg_t
// each) stay under ten kilobytes per dispatcher.
#define LZ_RECV_BURST 16
#define LZ_QUEUE_PER_WORKER 64

static void drop_burst(lz_dispatcher_t *d, bool free_slots);
static void abandon(void *job, void *arg);
static void drop_left(lz_dispatcher_t *d, bool destroying);
static void wait_for_callers(lz_dispatcher_t *d);

typedef struct job {
    lz_message_t *msg;
    const lz_route_t *route; // NULL for a retry: the route table may have moved since
    char *error; // why its last run failed, while it waits for a retry
    bool heap;   // malloc'd (queued, waiting); else on the stack of an inline run
} job_t;

void lz__dispatcher_init(lz_dispatcher_t *d, lz_node_t *node, lz_take_fn decode, bool prefix_match) {
    memset(d, 0, sizeof *d);
    d->node = node;
    d->decode = decode;
    d->prefix_match = prefix_match;
    atomic_init(&d->stopping, false);
    atomic_init(&d->closing, false);
    atomic_init(&d->loops, 0);
    atomic_init(&d->stops_asked, 0);
    atomic_init(&d->callers, 0);
    atomic_init(&d->stops_done, 0);
    pthread_mutex_init(&d->left_lock, NULL);
    pthread_cond_init(&d->left, NULL);
    // Fails only without a monotonic clock; a waiter then looks again often.
    if (lz__cond_init_monotonic(&d->resumed) != 0) pthread_cond_init(&d->resumed, NULL);
    pthread_mutex_init(&d->retry.due_lock, NULL);
    d->retry.first_due = INT64_MAX;
    lz__bias_init(&d->reading);
}

void lz__dispatcher_fini(lz_dispatcher_t *d) {
    lz__dispatcher_stop(d);
    wait_for_callers(d);
    drop_left(d, true);
    lz__delay_destroy(&d->retry.waiting, NULL, d); // drop_left gave every retry up
    for (size_t i = 0; i < d->route_count; i++) free(d->routes[i].key);
    free(d->routes);
    d->routes = NULL;
    d->route_count = 0;
    lz__bias_fini(&d->reading);
    pthread_mutex_destroy(&d->left_lock);
    pthread_cond_destroy(&d->left);
    pthread_cond_destroy(&d->resumed);
    pthread_mutex_destroy(&d->retry.due_lock);
}

int lz__dispatcher_may_destroy(lz_dispatcher_t *d, const char *what) {
    return lz__node_refuse_destroy(d->node, d, what, "handler or hook");
}

// stopped_now answers whether d is stopped, as a start or a setting
// (handlers, retries, the dead-letter sink) needs it: a stop one of its
// handlers asked for is finished first, from another thread.
static bool stopped_now(lz_dispatcher_t *d) {
    if (d->started && atomic_load(&d->stopping) && !lz__thread_inside(d)) lz__dispatcher_stop(d);
    return !d->started;
}

// set_route is lz__dispatcher_on once no caller's loop reads the routes.
static int set_route(lz_dispatcher_t *d, const char *key, lz_handler_fn handler, void *arg, bool *replaced) {
    if (!key) {
        *replaced = d->fallback.handler != NULL;
        d->fallback = (lz_route_t){NULL, 0, handler, arg};
        return LZ_OK;
    }
    for (size_t i = 0; i < d->route_count; i++) {
        if (strcmp(d->routes[i].key, key) == 0) { // a second registration replaces the first
            d->routes[i].handler = handler;
            d->routes[i].arg = arg;
            *replaced = true;
            return LZ_OK;
        }
    }
    lz_route_t *grown = realloc(d->routes, (d->route_count + 1) * sizeof *grown);
    char *copy = strdup(key);
    if (!grown || !copy) {
        free(copy);
        if (grown) d->routes = grown;
        return lz__fail(LZ_ENOMEM, "%s: out of memory", d->node->name);
    }
    d->routes = grown;
    d->routes[d->route_count++] = (lz_route_t){copy, strlen(key), handler, arg};
    *replaced = false;
    return LZ_OK;
}

// A caller's loop reads the settings without a lock (route_for, the
// retries, the dead-letter sink), and a new route may move the table: the
// loops are shut out while a setting changes, and a change during one is
// refused, not a use after free.
int lz__dispatcher_settings_begin(lz_dispatcher_t *d, const char *what) {
    if (!stopped_now(d)) return lz__fail(LZ_ESTATE, "%s: %s before start", d->node->name, what);
    int idle = 0;
    if (!atomic_compare_exchange_strong(&d->loops, &idle, -1))
        return lz__fail(LZ_ESTATE, "%s: called while a dispatch runs; %s between dispatch calls", d->node->name, what);
    return LZ_OK;
}

void lz__dispatcher_settings_end(lz_dispatcher_t *d) { atomic_store(&d->loops, 0); }

int lz__dispatcher_on(lz_dispatcher_t *d, const char *key, lz_handler_fn handler, void *arg, bool *replaced) {
    if (!handler) return lz__fail(LZ_EINVAL, "%s: NULL handler", d->node->name);
    int rc = lz__dispatcher_settings_begin(d, "register handlers");
    if (rc != LZ_OK) return rc;
    bool ignored;
    rc = set_route(d, key, handler, arg, replaced ? replaced : &ignored);
    lz__dispatcher_settings_end(d);
    return rc;
}

static const lz_route_t *route_for(const lz_dispatcher_t *d, const char *key) {
    const lz_route_t *best = NULL;
    for (size_t i = 0; i < d->route_count; i++) {
        const lz_route_t *r = &d->routes[i];
        bool match = d->prefix_match ? strncmp(key, r->key, r->key_len) == 0 : strcmp(key, r->key) == 0;
        if (match && (!best || r->key_len > best->key_len)) best = r;
    }
    return best ? best : d->fallback.handler ? &d->fallback : NULL;
}

// A failed message waits at most this many at once for its retry; past
// that a failure goes straight to the dead-letter sink, so a flood of
// failing tasks cannot hold the process's memory.
#define LZ_RETRY_WAITING_MAX 10000

static void handler_failed(lz_dispatcher_t *d, job_t *job, int rc);

static job_t *job_new(lz_dispatcher_t *d, lz_message_t *msg, const lz_route_t *route) {
    job_t *job = malloc(sizeof *job);
    if (!job) {
        lz__node_error(d->node, LZ_ENOMEM, "out of memory queueing a message");
        lz_message_destroy(&msg);
        return NULL;
    }
    *job = (job_t){msg, route, NULL, true};
    return job;
}

static void job_free(job_t *job) {
    lz_message_destroy(&job->msg);
    free(job->error);
    if (job->heap) free(job);
}

// run calls the handler inside the message's CONSUMER span, so what the
// handler sends belongs to the message's trace.
static void run(lz_dispatcher_t *d, job_t *job) {
    const lz_route_t *route = job->route ? job->route : route_for(d, lz_message_topic(job->msg));
    lz_span_t span;
    lz__span_begin_message(&span, d->node, LZ_SPAN_CONSUMER, job->msg);
    const lz_span_t *outer = lz__trace_enter(&span);
    lz__error_clear(); // what the handler records (lz_set_error) says why it failed
    int rc = route->handler(job->msg, route->arg);
    lz__trace_leave(&span, outer);
    lz__span_end(&span, rc == 0 ? LZ_OK : rc < 0 ? rc : LZ_EREMOTE);
    if (rc != 0) handler_failed(d, job, rc);
    else job_free(job);
}

// run_message runs msg's handler on the calling thread, its job on the
// stack: only a retry needs one that lives on.
static void run_message(lz_dispatcher_t *d, lz_message_t *msg, const lz_route_t *route) {
    job_t job = {msg, route, NULL, false};
    run(d, &job);
}

static void drop_job(void *self, void *arg);

// run_job runs a job on a pool worker, which runs d's handler meanwhile
// (thread.h). Once a stop was asked, a job not begun is dropped instead.
static void run_job(void *self, void *arg) {
    lz_dispatcher_t *d = arg;
    lz_thread_running_t here;
    lz__thread_enter(&here, d);
    if (atomic_load_explicit(&d->stopping, memory_order_relaxed)) drop_job(self, d);
    else run(d, self);
    lz__thread_leave(&here);
}

// drop_job disposes of a job a stop leaves queued: a retry that came due
// but did not run is given up like one still waiting (abandon), anything
// else is dropped.
static void drop_job(void *self, void *arg) {
    job_t *job = self;
    lz_dispatcher_t *d = arg;
    if (job->msg->retries > 0) {
        abandon(job, d);
        return;
    }
    lz__node_drop(d->node, "stopping: queued message '%s' dropped", lz_message_topic(job->msg));
    job_free(job);
}

/* ---- retries and dead letters ------------------------------------------- */

// give_up hands a message that failed for the last time (failures runs
// failed) to the dead-letter sink, if there is one, and frees it.
static void give_up(lz_dispatcher_t *d, job_t *job, const char *error, int failures) {
    const lz_retry_t *r = &d->retry;
    if (r->give_up) {
        LZ_COUNT(d->node, dead_letters); // first: whoever reads the letter may read the count
        r->give_up(r->owner, job->msg, error, failures);
    }
    job_free(job);
}

// not_retried logs why job, with retries left, gets no more (it is given
// up now: a dead letter, if there is a sink), as drops are logged: at most
// once a second, so a flood of failures cannot flood the log. Returns code.
static int not_retried(lz_dispatcher_t *d, const job_t *job, int code, const char *why) {
    const lz_message_t *msg = job->msg;
    lz__node_log_drop(d->node, "'%s'%s%s: retry %d of %d not planned (%s): given up %s", lz_message_topic(msg),
                      *lz_message_id(msg) ? " " : "", lz_message_id(msg), msg->retries + 1, d->retry.max_retries, why,
                      d->retry.give_up ? "as a dead letter" : "after this failure");
    return code;
}

// retry_later puts job in the waiting list for its next run. Once put, the
// job is no longer ours: a worker may run the retry at once and free it.
static int retry_later(lz_dispatcher_t *d, job_t *job) {
    lz_retry_t *r = &d->retry;
    if (lz__delay_count(r->waiting) >= LZ_RETRY_WAITING_MAX) {
        char why[64];
        snprintf(why, sizeof why, "%d messages already wait for a retry", LZ_RETRY_WAITING_MAX);
        return not_retried(d, job, LZ_EAGAIN, why);
    }
    job_t *held = job->heap ? job : malloc(sizeof *held);
    if (!held) return not_retried(d, job, LZ_ENOMEM, "out of memory");
    // A retry runs the handler registered for its type by then (lz_pull_on
    // may grow the route table between lz_pull_dispatch calls): run finds it.
    *held = (job_t){job->msg, NULL, job->error, true}; // a copy takes the message
    int retry = ++job->msg->retries;
    int64_t wait = (int64_t)r->delay_ms * retry;
    char what[LZ_DETAIL_MAX]; // for the log line, which comes after the put
    snprintf(what, sizeof what, "'%s'%s%s", lz_message_topic(job->msg), *lz_message_id(job->msg) ? " " : "",
             lz_message_id(job->msg));
    int64_t due = lz__now_ms() + wait;
    pthread_mutex_lock(&r->due_lock);
    int rc = lz__delay_put(r->waiting, held, due);
    if (rc == LZ_OK && due < r->first_due) r->first_due = due;
    pthread_mutex_unlock(&r->due_lock);
    if (rc != LZ_OK) {
        job->msg->retries--;
        if (held != job) free(held);
        return not_retried(d, job, LZ_ENOMEM, "out of memory");
    }
    LZ_COUNT(d->node, task_retries);
    LZ_LOG(d->node->log, LZ_LOG_INFO, d->node->name, "%s: retry %d of %d in %" PRId64 " ms", what, retry,
           r->max_retries, wait);
    return LZ_OK;
}

// handler_failed logs and counts a failed run, then runs it again later or
// gives it up.
static void handler_failed(lz_dispatcher_t *d, job_t *job, int rc) {
    char error[LZ_DETAIL_MAX];
    const char *topic = lz_message_topic(job->msg);
    if (*lz_last_error())
        snprintf(error, sizeof error, "handler for '%s' failed: %s", topic, lz_last_error());
    else
        snprintf(error, sizeof error, "handler for '%s' returned %d", topic, rc);
    lz__node_error(d->node, LZ_EREMOTE, "%s", error);
    if (job->msg->retries < d->retry.max_retries) {
        free(job->error);
        job->error = strdup(error); // for a dead letter if the puller stops first
        if (retry_later(d, job) == LZ_OK) return;
    }
    give_up(d, job, error, job->msg->retries + 1);
}

// retry_main hands each retry to the workers as it comes due. A retry the
// pool refuses (stopping) is given up here: to the dead-letter sink, d's.
static void *retry_main(void *self) {
    lz_dispatcher_t *d = self;
    lz_thread_running_t here;
    lz__thread_enter(&here, d);
    job_t *job;
    while ((job = lz__delay_wait(d->retry.waiting)))
        if (lz__pool_submit(d->pool, job) != LZ_OK) drop_job(job, d);
    lz__thread_leave(&here);
    return NULL;
}

// loop_goes_on: whether a caller's loop that began when d->stops_asked was
// asked runs another handler: not after a stop asked from one of its
// handlers, nor once a destroy on another thread is closing d.
static bool loop_goes_on(const lz_dispatcher_t *d, unsigned asked) {
    return atomic_load_explicit(&d->stops_asked, memory_order_relaxed) == asked &&
           !atomic_load_explicit(&d->closing, memory_order_relaxed);
}

// take_due_retry takes the first retry due now, if any, and notes when the
// next one is due (*wait_ms: how long until then, -1: none), for
// lz__dispatcher_next_retry.
static job_t *take_due_retry(lz_dispatcher_t *d, int *wait_ms) {
    lz_retry_t *r = &d->retry;
    pthread_mutex_lock(&r->due_lock);
    int64_t now = lz__now_ms(); // before the take's own: the note errs early, never late
    job_t *job = lz__delay_take(r->waiting, wait_ms);
    r->first_due = *wait_ms < 0 ? INT64_MAX : now + *wait_ms;
    pthread_mutex_unlock(&r->due_lock);
    return job;
}

// run_due_retries runs the retries due now on the calling thread, for the
// caller's loop begun at asked (loop_goes_on); *wait_ms is then how long
// until the next (-1: none).
static int run_due_retries(lz_dispatcher_t *d, int *wait_ms, unsigned asked) {
    *wait_ms = -1;
    if (!d->retry.waiting) return 0;
    int count = 0;
    for (job_t *job; loop_goes_on(d, asked) && (job = take_due_retry(d, wait_ms)); count++) run(d, job);
    return count;
}

int lz__dispatcher_next_retry(lz_dispatcher_t *d) {
    if (atomic_load(&d->started)) return -1; // its own threads run the retries
    lz_retry_t *r = &d->retry;
    pthread_mutex_lock(&r->due_lock);
    int64_t due = r->first_due;
    pthread_mutex_unlock(&r->due_lock);
    if (due == INT64_MAX) return -1;
    int64_t left = due - lz__now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

// abandon gives up a retry that a stop leaves waiting: to the dead-letter
// sink if there is one, else it is dropped like a queued message.
static void abandon(void *self, void *arg) {
    job_t *job = self;
    lz_dispatcher_t *d = arg;
    if (!d->retry.give_up) {
        lz__node_drop(d->node, "stopping: '%s' waiting for its retry dropped", lz_message_topic(job->msg));
        job_free(job);
        return;
    }
    char error[LZ_DETAIL_MAX];
    snprintf(error, sizeof error, "%s; stopped before retry %d", job->error ? job->error : "failed", job->msg->retries);
    give_up(d, job, error, job->msg->retries); // the retry due now never ran
}

int lz__dispatcher_set_retry(lz_dispatcher_t *d, int max_retries, int delay_ms) {
    int rc = lz__dispatcher_settings_begin(d, "set retries");
    if (rc != LZ_OK) return rc;
    if (max_retries > 0 && !d->retry.waiting && !(d->retry.waiting = lz__delay_new())) {
        rc = lz_last_error_code();
    } else {
        d->retry.max_retries = max_retries;
        d->retry.delay_ms = delay_ms;
    }
    lz__dispatcher_settings_end(d);
    return rc;
}

void lz__dispatcher_set_give_up(lz_dispatcher_t *d, lz_give_up_fn fn, void *owner) {
    d->retry.give_up = fn;
    d->retry.owner = owner;
}

/* ---- receiving ---------------------------------------------------------- */

// A destroy waits for the callers on other threads (wait_for_callers):
// each is counted in while it may use d without holding d->reading, and
// counted out holding it, so that once the count is 0, taking d->reading
// waits for the last one to be done with d.
static void caller_in(lz_dispatcher_t *d) { atomic_fetch_add(&d->callers, 1); }

// caller_out counts a caller out, with d->reading held; the last one out
// while d is closing tells a destroy waiting for it.
static void caller_out(lz_dispatcher_t *d) {
    if (atomic_fetch_sub(&d->callers, 1) != 1 || !atomic_load(&d->closing)) return;
    pthread_mutex_lock(&d->left_lock);
    pthread_cond_signal(&d->left);
    pthread_mutex_unlock(&d->left_lock);
}

// resume_readers tells the readers sitting out a stop (await_stop_end)
// that it has finished, or that a destroy began.
static void resume_readers(lz_dispatcher_t *d) {
    pthread_mutex_lock(&d->left_lock);
    atomic_fetch_add(&d->stops_done, 1);
    pthread_cond_broadcast(&d->resumed);
    pthread_mutex_unlock(&d->left_lock);
}

// await_stop_end is how a reader other than the receiver thread sits out a
// stop: it waits until the stop under way when stops_done was `seen` has
// finished (LZ_OK: it reads on), a destroy begins or no stop was under way
// (LZ_ECLOSED), or the deadline of its timeout_ms wait comes (LZ_ETIMEOUT).
static int await_stop_end(lz_dispatcher_t *d, unsigned seen, int64_t deadline, int timeout_ms) {
    int rc = LZ_OK;
    pthread_mutex_lock(&d->left_lock);
    while (atomic_load(&d->stops_done) == seen && atomic_load(&d->stopping) && !atomic_load(&d->closing)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&d->resumed, &d->left_lock);
        } else if (lz__ms_left(deadline, timeout_ms) == 0) {
            rc = LZ_ETIMEOUT;
            break;
        } else {
            lz__cond_wait_until(&d->resumed, &d->left_lock, deadline);
        }
    }
    if (rc == LZ_OK && (atomic_load(&d->closing) || atomic_load(&d->stops_done) == seen)) rc = LZ_ECLOSED;
    pthread_mutex_unlock(&d->left_lock);
    return rc;
}

// wait_for_callers ends the waits of the callers on other threads (their
// receives and loops return LZ_ECLOSED) and returns once none is left.
static void wait_for_callers(lz_dispatcher_t *d) {
    // Closing first: a reader woken by `stopping` returns only when closing.
    atomic_store(&d->closing, true);
    atomic_store(&d->stopping, true); // each waiter woken passes the wake-up on (read_burst)
    resume_readers(d);
    lz__node_wake(d->node);
    for (;;) {
        pthread_mutex_lock(&d->left_lock);
        while (atomic_load(&d->callers) > 0) pthread_cond_wait(&d->left, &d->left_lock);
        pthread_mutex_unlock(&d->left_lock);
        lz__bias_lock(&d->reading); // the last one out lets it go last
        bool none = atomic_load(&d->callers) == 0;
        lz__bias_unlock(&d->reading);
        if (none) return;
    }
}

// refill reads what is waiting now into the used-up read-ahead, for the
// reader holding d->reading and the node lock: LZ_OK, LZ_ETIMEOUT (nothing
// waiting, no last error) or an error. While other readers wait on the
// socket it reads one message and leaves the rest there, where the node's
// unlock wakes them for it (lz__node_wait).
static int refill(lz_dispatcher_t *d) {
    lz_node_t *node = d->node;
    if (!node->socket) return lz__fail(LZ_ECLOSED, "%s: closed", node->name);
    int n = lz__node_recv_burst(node, d->burst, node->waiting[LZ_WAIT_RECV] ? 1 : LZ_RECV_BURST, 0);
    if (n < 0) return n;
    d->burst_next = 0;
    d->burst_count = (unsigned)n;
    return LZ_OK;
}

// wait_for_news waits up to timeout_ms (-1: no limit) for the socket, for
// the reader holding d->reading and the node lock, right after a refill
// found nothing. It gives d->reading up meanwhile, so another reader may
// serve what a refill leaves read ahead, and holds both again on return.
static void wait_for_news(lz_dispatcher_t *d, int timeout_ms) {
    caller_in(d);
    lz__bias_unlock(&d->reading);
    lz__node_wait(d->node, timeout_ms, LZ_WAIT_RECV);
    lz__node_unlock(d->node); // d->reading is taken first, as by every reader
    lz__bias_lock(&d->reading);
    caller_out(d);
    lz__node_lock(d->node);
}

// sit_out_stop is wait_for_news for a reader other than the receiver
// thread while d is stopping: the stop ends the receiver's wait, not the
// reader's. Woken by it, the reader passes the wake-up on (the receiver
// may still wait for it), then waits, away from the socket so as not to
// take the next one, until the stop has finished or a destroy begins (at
// most timeout_ms, -1: no limit).
static void sit_out_stop(lz_dispatcher_t *d, int timeout_ms) {
    lz_node_t *node = d->node;
    bool others = node->waiting[LZ_WAIT_RECV] > 0;
    unsigned seen = atomic_load(&d->stops_done);
    caller_in(d);
    lz__bias_unlock(&d->reading);
    lz__node_unlock(node);
    if (others) lz__node_wake(node);
    await_stop_end(d, seen, lz__deadline_ms(timeout_ms), timeout_ms); // the caller looks at d again
    lz__bias_lock(&d->reading);
    caller_out(d);
    lz__node_lock(node);
}

// read_burst refills the used-up read-ahead for the reader holding
// d->reading: every message waiting now (up to a burst), else the first to
// come within timeout_ms. Readers sharing the dispatcher take turns at
// d->reading and serve each other's read-ahead, so none may wait holding
// it, nor wait on the socket while messages sit read ahead: a reader waits
// only once both were empty, and a refill meanwhile sees it waiting
// (refill). On LZ_OK the read-ahead holds a message, maybe from another
// reader's refill. Only a reader that must wait notes the time, in
// *wait_start (when 0). A stop ends only the receiver's read (receiver),
// a destroy every reader's.
static int read_burst(lz_dispatcher_t *d, int timeout_ms, int64_t *wait_start, bool receiver) {
    lz_node_t *node = d->node;
    int64_t deadline = 0;
    int rc = LZ_OK;
    lz__node_lock(node);
    while (d->burst_next == d->burst_count) {
        if ((rc = refill(d)) != LZ_ETIMEOUT) break;
        bool stopping = atomic_load(&d->stopping);
        if (stopping && (receiver || atomic_load(&d->closing))) {
            rc = lz__fail(LZ_ECLOSED, "%s: stopping", node->name);
            break;
        }
        if (timeout_ms > 0 && deadline == 0) {
            int64_t now = lz__now_ms();
            if (*wait_start == 0) *wait_start = now;
            deadline = now + timeout_ms;
        }
        int left = lz__ms_left(deadline, timeout_ms);
        if (left == 0) {
            rc = lz__fail(LZ_ETIMEOUT, "%s: no message within %d ms", node->name, timeout_ms);
            break;
        }
        if (stopping) sit_out_stop(d, left);
        else wait_for_news(d, left);
        rc = LZ_OK;
    }
    // One wake-up ends one waiter's wait: a stop is passed on to the next.
    bool pass_stop = rc == LZ_ECLOSED && atomic_load(&d->stopping) && node->waiting[LZ_WAIT_RECV];
    lz__node_unlock(node);
    if (pass_stop) lz__node_wake(node);
    return rc;
}

// next_frames hands out the next read-ahead message, reading a new burst
// when the last one is used up. Only the reader holding d->reading calls it.
static int next_frames(lz_dispatcher_t *d, int timeout_ms, int64_t *wait_start, bool receiver, lz_frames_t **frames) {
    if (d->burst_next == d->burst_count) {
        int rc = read_burst(d, timeout_ms, wait_start, receiver);
        if (rc < 0) return rc;
    }
    *frames = &d->burst[d->burst_next++];
    return LZ_OK;
}

// make_burst makes the read-ahead's slots, for the reader holding
// d->reading; false when out of memory.
static bool make_burst(lz_dispatcher_t *d) {
    if (!(d->burst = malloc(LZ_RECV_BURST * sizeof *d->burst))) return false;
    for (size_t i = 0; i < LZ_RECV_BURST; i++) lz__frames_ready(&d->burst[i]);
    return true;
}

// take_unread is next_taken for a reader, holding d->reading, that has
// no memory for the read-ahead: it lets d->reading go and takes one
// message at a time. A stop ends the wait of any reader here (the socket
// passes it on); one other than the receiver waits for the stop to finish
// and takes on.
static __attribute__((cold, noinline)) int take_unread(lz_dispatcher_t *d, int timeout_ms, bool receiver,
                                                       lz_take_fn take, void *out) {
    caller_in(d);
    lz__bias_unlock(&d->reading);
    int64_t deadline = lz__deadline_ms(timeout_ms);
    unsigned seen = atomic_load(&d->stops_done);
    int rc;
    while ((rc = lz__node_take(d->node, timeout_ms, &d->stopping, take, out)) == LZ_ECLOSED && !receiver) {
        int on = await_stop_end(d, seen, deadline, timeout_ms);
        if (on == LZ_ETIMEOUT) rc = lz__fail(on, "%s: no message within %d ms", d->node->name, timeout_ms);
        if (on != LZ_OK) break;
        seen = atomic_load(&d->stops_done);
        timeout_ms = lz__ms_left(deadline, timeout_ms);
    }
    lz__bias_lock(&d->reading);
    caller_out(d);
    lz__bias_unlock(&d->reading);
    return rc;
}

// next_taken receives until take accepts a message or timeout_ms passes,
// counting and dropping what it refuses; receiver: for the receiver
// thread, whose receive a stop ends (read_burst).
static int next_taken(lz_dispatcher_t *d, int timeout_ms, bool receiver, lz_take_fn take, void *out) {
    // One reader at a time uses the read-ahead (callers may share a puller
    // between threads); d->reading is held only while reading and taking,
    // never while waiting (read_burst), so a turn is short.
    lz__bias_lock(&d->reading);
    if (!d->burst && !make_burst(d)) return take_unread(d, timeout_ms, receiver, take, out);
    int64_t start = 0; // when this call began waiting, read only if it must
    int rc;
    for (;;) {
        lz_frames_t *frames;
        rc = next_frames(d, timeout_ms, &start, receiver, &frames);
        if (rc < 0) break;
        rc = take(d->node, frames, out);
        lz__frames_release(frames);
        if (rc == LZ_OK || !lz__node_skip_refused(d->node, rc)) break;
        if (timeout_ms > 0) {
            // Time not spent waiting went to decoding, which is short: the
            // first wait (or this failure) starts the clock.
            int64_t now = lz__now_ms();
            if (start == 0) start = now;
            int64_t left = start + timeout_ms - now;
            start = now;
            timeout_ms = left > 0 ? (int)left : 0;
        }
    }
    lz__bias_unlock(&d->reading);
    return rc;
}

// admitted runs the node's receive hooks on *msg (lz__hooks_admit) as d's
// (thread.h): in lz_sub_recv and lz_pull_recv they run on the caller's
// thread, where a destroy from a hook would free d under this very call.
static bool admitted(lz_dispatcher_t *d, lz_message_t **msg) {
    lz_thread_running_t here;
    lz__thread_enter(&here, d);
    bool taken = lz__hooks_admit(d->node, msg);
    lz__thread_leave(&here);
    return taken;
}

// next_message receives the next message that decodes and that the
// node's receive hooks take. Without hooks d is not read once next_taken
// has let d->reading go; with them it is, so the caller is counted in
// meanwhile (caller_in), and a destroy on another thread waits for it.
static int next_message(lz_dispatcher_t *d, int timeout_ms, bool receiver, lz_message_t **out) {
    if (!d->node->hooks) return next_taken(d, timeout_ms, receiver, d->decode, out);
    caller_in(d);
    int64_t deadline = lz__deadline_ms(timeout_ms);
    int rc;
    while ((rc = next_taken(d, timeout_ms, receiver, d->decode, out)) == LZ_OK && !admitted(d, out))
        timeout_ms = lz__ms_left(deadline, timeout_ms);
    lz__bias_lock(&d->reading);
    caller_out(d);
    lz__bias_unlock(&d->reading);
    return rc;
}

// drop_burst closes read-ahead messages nobody will take (the dispatcher
// is stopping or going away); like the pool's queue, they were counted
// received, so they count as dropped. A stop keeps the slots, emptied and
// ready: a receive begun before the start may still be waiting to read
// into them (the headers let receives and a stop meet). Only a destroy,
// which waited for every caller, frees them.
static void drop_burst(lz_dispatcher_t *d, bool free_slots) {
    if (!d->burst) return;
    size_t left = d->burst_count - d->burst_next;
    // Every slot is initialised whether or not it holds a message.
    for (size_t i = 0; i < LZ_RECV_BURST; i++) {
        lz__frames_fini(&d->burst[i]);
        if (!free_slots) lz__frames_ready(&d->burst[i]);
    }
    if (left) {
        LZ_COUNT_N(d->node, inbound_dropped, left);
        LZ_LOG(d->node->log, LZ_LOG_DEBUG, d->node->name, "stopping: %zu read-ahead message(s) dropped", left);
    }
    d->burst_next = d->burst_count = 0;
    if (!free_slots) return;
    free(d->burst);
    d->burst = NULL;
}

// deliver routes msg and runs or queues its handler; unrouted messages are
// counted, not lost silently.
static void deliver(lz_dispatcher_t *d, lz_message_t *msg, bool inline_only) {
    const lz_route_t *route = route_for(d, lz_message_topic(msg));
    if (!route) {
        lz__node_drop(d->node, "no handler for '%s'", lz_message_topic(msg));
        lz_message_destroy(&msg);
        return;
    }
    if (inline_only || !d->pool) {
        run_message(d, msg, route);
        return;
    }
    job_t *job = job_new(d, msg, route);
    if (job && lz__pool_submit(d->pool, job) != LZ_OK) drop_job(job, d);
}

// receiver_main reads and delivers until stopped. It runs d's handlers
// (and hooks, and the dead-letter sink) all its life: marked so (thread.h).
static void *receiver_main(void *self) {
    lz_dispatcher_t *d = self;
    lz_thread_running_t here;
    lz__thread_enter(&here, d);
    while (!atomic_load(&d->stopping)) {
        lz_message_t *msg = NULL;
        int rc = next_message(d, -1, true, &msg);
        if (rc == LZ_OK) deliver(d, msg, false);
        // LZ_ENOMEM is a message refused for want of memory to decode it,
        // already counted dropped and logged (lz__node_skip_refused).
        else if (rc != LZ_ETIMEOUT && rc != LZ_ECLOSED && rc != LZ_ENOMEM)
            lz__node_error(d->node, rc, "receive failed: %s", lz_last_error());
    }
    lz__thread_leave(&here);
    return NULL;
}

// start_retry_timer starts the thread that hands due retries to the pool.
static int start_retry_timer(lz_dispatcher_t *d) {
    lz_retry_t *r = &d->retry;
    if (r->max_retries == 0) return LZ_OK;
    int err = lz__thread_start(&r->timer, retry_main, d);
    if (err) return lz__thread_fail(err, d->node->name);
    r->timer_started = true;
    return LZ_OK;
}

static void stop_retry_timer(lz_dispatcher_t *d) {
    lz_retry_t *r = &d->retry;
    if (!r->timer_started) return;
    lz__delay_close(r->waiting);
    pthread_join(r->timer, NULL);
    r->timer_started = false;
}

int lz__dispatcher_start(lz_dispatcher_t *d, int workers) {
    if (lz__thread_inside(d))
        return lz__fail(LZ_ESTATE, "%s: started from its own handler; start it from another thread", d->node->name);
    if (!stopped_now(d)) return lz__fail(LZ_ESTATE, "%s: already started", d->node->name);
    // Retries come due on the timer's thread: they need workers to run on
    // even when one handler thread was asked for.
    if (workers > 1 || d->retry.max_retries > 0) {
        d->pool = lz__pool_new(workers > 1 ? workers : 1, (size_t)(workers > 1 ? workers : 1) * LZ_QUEUE_PER_WORKER,
                               run_job, d);
        if (!d->pool) return lz_last_error_code();
    }
    d->started = true; // before the threads: a handler may ask to stop at once (ask_stop)
    atomic_store(&d->stopping, false);
    int rc = start_retry_timer(d), err = 0;
    if (rc == LZ_OK && (err = lz__thread_start(&d->receiver, receiver_main, d)) != 0)
        rc = lz__thread_fail(err, d->node->name);
    if (rc != LZ_OK) {
        stop_retry_timer(d);
        lz__pool_destroy(&d->pool, NULL);
        d->started = false;
        return rc;
    }
    LZ_LOG(d->node->log, LZ_LOG_DEBUG, d->node->name, "started with %d handler thread(s)", workers > 1 ? workers : 1);
    return LZ_OK;
}

// drop_left drops what a stop leaves: the jobs queued for the workers
// (running handlers finish first: a failure may still wait for a retry),
// the read-ahead and the retries waiting. Giving retries up calls the
// dead-letter sink on this thread, marked as d's meanwhile, so a destroy
// from the sink is refused and a stop asks.
static void drop_left(lz_dispatcher_t *d, bool destroying) {
    lz_thread_running_t here;
    lz__thread_enter(&here, d);
    lz__pool_destroy(&d->pool, drop_job);
    // The receiver is joined, but a receive begun before the start may be
    // reading ahead still: it holds d->reading while it does.
    lz__bias_lock(&d->reading);
    drop_burst(d, destroying);
    lz__bias_unlock(&d->reading);
    if (d->retry.waiting) {
        // Before the drain: a retry put after it (by a caller's loop on
        // another thread) still lowers the note; one drained leaves it early.
        pthread_mutex_lock(&d->retry.due_lock);
        d->retry.first_due = INT64_MAX;
        pthread_mutex_unlock(&d->retry.due_lock);
        lz__delay_drain(d->retry.waiting, abandon, d);
    }
    lz__thread_leave(&here);
}

// ask_stop is a stop from one of d's handlers, which may not wait for the
// thread it runs on: the threads are told to end once their handlers
// return, and the next stop, start or destroy from another thread joins
// them. A caller's loop that runs the handler returns after it.
static int ask_stop(lz_dispatcher_t *d) {
    atomic_fetch_add(&d->stops_asked, 1);
    if (!d->started || atomic_exchange(&d->stopping, true)) return LZ_OK; // no threads, or stopping already
    lz__node_wake(d->node);
    if (d->pool) lz__pool_close(d->pool);
    if (d->retry.timer_started) lz__delay_close(d->retry.waiting);
    LZ_LOG(d->node->log, LZ_LOG_DEBUG, d->node->name, "stop asked from a handler: its threads end after it");
    return LZ_OK;
}

int lz__dispatcher_stop(lz_dispatcher_t *d) {
    if (lz__thread_inside(d)) return ask_stop(d); // joining would wait for this very thread
    if (!d->started) return LZ_OK;
    atomic_store(&d->stopping, true);
    lz__node_wake(d->node); // the receiver may be waiting with no end
    pthread_join(d->receiver, NULL);
    stop_retry_timer(d);
    drop_left(d, false);
    d->started = false;
    atomic_store(&d->stopping, false); // a stopped dispatcher serves the caller's loop again
    resume_readers(d);
    return LZ_OK;
}

// dispatch_loop runs the retries due, then what has arrived; it waits (up
// to timeout_ms) only when neither gave it anything to run, and then no
// longer than until the next retry is due. A stop asked from one of its
// handlers ends it after that handler; a destroy on another thread too
// (LZ_ECLOSED). A start and stop on another thread (a loop begun before
// the start) do not: it waits on (read_burst).
static int dispatch_loop(lz_dispatcher_t *d, int timeout_ms) {
    unsigned asked = atomic_load_explicit(&d->stops_asked, memory_order_relaxed);
    int64_t deadline = lz__deadline_ms(timeout_ms);
    int count = 0;
    for (;;) {
        int retry_wait;
        count += run_due_retries(d, &retry_wait, asked);
        if (!loop_goes_on(d, asked))
            return atomic_load(&d->closing) ? lz__fail(LZ_ECLOSED, "%s: closed", d->node->name) : count;
        int wait = count ? 0 : lz__ms_left(deadline, timeout_ms);
        if (retry_wait >= 0 && (wait < 0 || retry_wait < wait)) wait = retry_wait;
        lz_message_t *msg = NULL;
        int rc = next_message(d, wait, false, &msg);
        if (rc == LZ_OK) {
            deliver(d, msg, true);
            count++;
        } else if (rc != LZ_ETIMEOUT) {
            return rc;
        } else if (count || lz__ms_left(deadline, timeout_ms) == 0) {
            return count; // a wait cut short for a retry goes on
        }
    }
}

// lz__dispatcher_dispatch is the caller's loop: its handlers run on the
// caller's thread as d's (thread.h), and a destroy on another thread waits
// for it to return (caller_in).
int lz__dispatcher_dispatch(lz_dispatcher_t *d, int timeout_ms) {
    if (timeout_ms < -1) return lz__timeout_check(timeout_ms, d->node->name);
    if (d->started) return lz__fail(LZ_ESTATE, "%s: started: its own threads dispatch", d->node->name);
    int loops = atomic_load(&d->loops);
    do {
        if (loops < 0)
            return lz__fail(LZ_ESTATE, "%s: handlers are being registered on another thread", d->node->name);
    } while (!atomic_compare_exchange_weak(&d->loops, &loops, loops + 1));
    lz_thread_running_t here;
    lz__thread_enter(&here, d);
    caller_in(d);
    int rc = dispatch_loop(d, timeout_ms);
    lz__bias_lock(&d->reading);
    caller_out(d);
    lz__bias_unlock(&d->reading);
    lz__thread_leave(&here);
    atomic_fetch_sub(&d->loops, 1);
    return rc;
}

lz_message_t *lz__dispatcher_recv(lz_dispatcher_t *d, int timeout_ms) {
    if (timeout_ms < -1) return lz__timeout_check(timeout_ms, d->node->name), NULL;
    if (d->started) return lz__fail_null(LZ_ESTATE, "%s: started: handlers own the messages", d->node->name);
    lz_message_t *msg = NULL;
    return next_message(d, timeout_ms, false, &msg) == LZ_OK ? msg : NULL;
}

int lz__dispatcher_take(lz_dispatcher_t *d, int timeout_ms, lz_take_fn take, void *out) {
    if (timeout_ms < -1) return lz__timeout_check(timeout_ms, d->node->name);
    if (d->started) return lz__fail(LZ_ESTATE, "%s: started: handlers own the messages", d->node->name);
    return next_taken(d, timeout_ms, false, take, out);
}

int lz__dispatcher_fd(lz_dispatcher_t *d, int *fd) {
    if (!fd) return lz__fail(LZ_EINVAL, "%s: NULL fd", d->node->name);
    size_t size = sizeof *fd;
    lz__node_lock(d->node);
    int rc = zmq_getsockopt(d->node->socket, ZMQ_FD, fd, &size) == 0 ? LZ_OK : lz__fail_zmq("getsockopt ZMQ_FD");
    lz__node_unlock(d->node);
    return rc;
}
