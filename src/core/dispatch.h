/* Internal: the receive-decode-route-run machinery that subscribers and
 * pullers share. A dispatcher owns the reading side of its node: either a
 * receiver thread feeding a worker pool, or the caller's own loop. */
#ifndef LZ_CORE_DISPATCH_H
#define LZ_CORE_DISPATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/bias.h"
#include "core/delay.h"
#include "core/node.h"
#include "core/pool.h"
#include "liberzmq/message.h"

typedef struct lz_route {
    char *key;
    size_t key_len;
    lz_handler_fn handler;
    void *arg;
} lz_route_t;

// lz_give_up_fn receives a message whose handler failed for the last time:
// error says why, failures counts the runs that failed. msg stays the
// dispatcher's.
typedef void (*lz_give_up_fn)(void *owner, const lz_message_t *msg, const char *error, int failures);

// What a dispatcher does when a handler fails (pullers: pushpull.h).
typedef struct lz_retry {
    int max_retries;       // runs again after a failure; 0: none
    int delay_ms;          // the n-th retry waits n * delay_ms
    lz_give_up_fn give_up; // the dead-letter sink; NULL: counted and logged only
    void *owner;
    lz_delay_t *waiting;   // failed messages until their retry; made by the first policy with retries
    // When the earliest retry waiting is due (INT64_MAX: none), for an fd
    // loop's poll (lz__dispatcher_next_retry); under due_lock. Exact after
    // each put and each take of a caller's loop; the timer's takes and a
    // stop's drain leave it early, which the next caller's loop corrects.
    pthread_mutex_t due_lock;
    int64_t first_due;
    pthread_t timer;       // hands due retries to the pool while started
    bool timer_started;
} lz_retry_t;

typedef struct lz_dispatcher {
    lz_node_t *node;
    lz_take_fn decode;       // the taker that makes messages
    bool prefix_match;       // pub/sub: longest prefix; tasks: exact type
    lz_route_t *routes;
    size_t route_count;
    lz_route_t fallback;     // handler NULL when none
    pthread_t receiver;
    atomic_bool started;     // its threads run, or were asked to stop from a handler and wait to be joined
    atomic_bool stopping;    // the threads end and every receive's wait ends: a stop or a destroy
    // A destroy: receives and caller's loops on other threads return
    // LZ_ECLOSED. A plain stop leaves them waiting: woken by the stop, they
    // wait for it to finish (`resumed`) and go on, their timeouts counting.
    atomic_bool closing;
    // Caller's loops running (lz__dispatcher_dispatch), or -1 while a
    // setting they read changes (lz__dispatcher_settings_begin).
    atomic_int loops;
    atomic_uint stops_asked; // stops asked from handlers: a caller's loop running one returns
    lz_pool_t *pool;         // NULL: handlers run on the receiver thread
    // Callers a destroy must wait for: readers waiting for the socket (away
    // from `reading`) and the caller's loops (lz__dispatcher_dispatch). The
    // last one out while stopping signals `left` (under left_lock).
    atomic_int callers;
    pthread_mutex_t left_lock;
    pthread_cond_t left;
    pthread_cond_t resumed;  // a stop finished or a destroy began: stops_done grew (under left_lock)
    atomic_uint stops_done;  // changed under left_lock
    // Read-ahead: one lock round trip takes every message already waiting
    // (up to a burst), handed out one by one without the node lock. Readers
    // sharing the dispatcher take turns holding `reading`, which guards the
    // burst; a reader that must wait lets it go meanwhile, so no reader
    // waits on the socket while messages sit read ahead (dispatch.c,
    // read_burst). A biased lock: the usual single reader takes it with
    // plain stores.
    lz_bias_t reading;
    lz_frames_t *burst;      // LZ_RECV_BURST slots, made on first use
    unsigned burst_next, burst_count;
    lz_retry_t retry;
} lz_dispatcher_t;

void lz__dispatcher_init(lz_dispatcher_t *d, lz_node_t *node, lz_take_fn decode, bool prefix_match);
// lz__dispatcher_fini stops the dispatcher, ends the waits of callers'
// receives and loops on other threads (LZ_ECLOSED) and returns once they
// have left, then frees its routes. Not from one of its handlers: see
// lz__dispatcher_may_destroy.
void lz__dispatcher_fini(lz_dispatcher_t *d);

// lz__dispatcher_may_destroy: LZ_OK, or LZ_ESTATE (logged at ERROR, the
// detail set, naming what, the caller's function) when the calling thread
// runs one of d's handlers, which its destroy would free under it.
int lz__dispatcher_may_destroy(lz_dispatcher_t *d, const char *what);

// lz__dispatcher_settings_begin lets the calling thread change d's
// settings (routes, retries, the dead-letter sink and what it reads) until
// lz__dispatcher_settings_end. LZ_ESTATE, the detail naming what ("set
// retries"), once started, and while a caller's loop runs
// (lz__dispatcher_dispatch, on any thread), which reads them without a
// lock: settings change between its calls. A dispatch begun meanwhile is
// refused, LZ_ESTATE.
int lz__dispatcher_settings_begin(lz_dispatcher_t *d, const char *what);
void lz__dispatcher_settings_end(lz_dispatcher_t *d);

// lz__dispatcher_on adds a route (key NULL: the fallback); *replaced (if
// not NULL) tells whether key had one already, which this one replaced
// (pub/sub subscribes only for a new prefix). LZ_ESTATE once started, and
// while a caller's loop runs (lz__dispatcher_dispatch, on any thread), which
// reads the routes without a lock: registrations go between its calls.
// Routes are only added or replaced, never removed, so a retry (which looks
// its route up again when it runs) always finds one.
int lz__dispatcher_on(lz_dispatcher_t *d, const char *key, lz_handler_fn handler, void *arg, bool *replaced);

// lz__dispatcher_set_retry sets how often a failed handler runs again and
// how long each retry waits (both checked by the caller: lz_pull_set_retry,
// the tasks.* key ranges). LZ_ESTATE as lz__dispatcher_settings_begin.
int lz__dispatcher_set_retry(lz_dispatcher_t *d, int max_retries, int delay_ms);
// lz__dispatcher_set_give_up sets the dead-letter sink (fn NULL: none),
// between lz__dispatcher_settings_begin and _end.
void lz__dispatcher_set_give_up(lz_dispatcher_t *d, lz_give_up_fn fn, void *owner);

// lz__dispatcher_start: a receiver thread plus workers handler threads
// (workers <= 1: handlers run on the receiver, in arrival order; with
// retries, on one worker, still one at a time, while a timer thread hands
// due retries to the workers). A stop asked from a handler is finished
// first (joined). LZ_ESTATE when started, or from one of d's handlers.
int lz__dispatcher_start(lz_dispatcher_t *d, int workers);
// lz__dispatcher_stop stops the threads and joins them. From one of d's
// handlers (its threads' or the caller's loop's) it waits for nothing: it
// asks, and the running handlers are the last (pubsub.h, lz_sub_stop).
int lz__dispatcher_stop(lz_dispatcher_t *d);

// Caller-driven use (see lz_sub_dispatch, lz_sub_recv, lz_sub_fd). A
// receive or a caller's loop waiting on another thread goes on across a
// start and a stop; only a destroy ends it (LZ_ECLOSED). The dispatch is
// LZ_ESTATE while started, or while lz__dispatcher_on runs on another thread.
int lz__dispatcher_dispatch(lz_dispatcher_t *d, int timeout_ms);
lz_message_t *lz__dispatcher_recv(lz_dispatcher_t *d, int timeout_ms);
// lz__dispatcher_take is lz__dispatcher_recv with take in the decoder's
// place: LZ_OK once take accepted a message, LZ_ETIMEOUT, LZ_ECLOSED,
// LZ_ESTATE (started) or a receive error.
int lz__dispatcher_take(lz_dispatcher_t *d, int timeout_ms, lz_take_fn take, void *out);
int lz__dispatcher_fd(lz_dispatcher_t *d, int *fd);
// lz__dispatcher_next_retry: how long an fd loop may poll before the
// earliest waiting retry is due: ms, 0 if due now, -1 if none waits (as
// lz_pull_next_retry_ms gives it). Thread safe.
int lz__dispatcher_next_retry(lz_dispatcher_t *d);

#endif
