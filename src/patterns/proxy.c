/* Proxies: a forwarding loop (proxy_loop.c, libzmq's steerable proxy
 * with revocation's look on the way) on a thread of its own, between two
 * liberzmq nodes (so sockets get the configured options and endpoints),
 * with an optional capture node and an inproc PAIR to steer it. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/answer.h"
#include "core/eintr.h"
#include "core/error.h"
#include "core/node.h"
#include "core/sockopt.h"
#include "core/thread.h"
#include "liberzmq/proxy.h"
#include "patterns/proxy_loop.h"

struct lz_proxy {
    lz_node_t frontend, backend, capture;
    bool has_capture;
    lz_proxy_held_t held; // what a run leaves to the next; the proxy's thread's while it runs
    void *control;       // our end of this run's steering pipe (NULL between runs); guarded by control_lock
    char control_url[64];
    pthread_mutex_t control_lock; // also guards thread, running and joining
    pthread_t thread;
    bool running;        // commands are accepted (start done, no stop yet)
    bool joining;        // a stop has sent TERMINATE and is joining thread
    atomic_bool ended;   // the thread's loop has returned (TERMINATE, or a libzmq failure)
};

// A command's send, and a wait for the thread's READY or answer, waits
// this long at a time, checking in between that the thread is still there.
#define LZ_PROXY_COMMAND_SLICE_MS 100
#define LZ_PROXY_ENDED "the proxy's thread has ended (the frontend node logged why)"

typedef struct {
    int frontend, backend;
    const char *front_name, *back_name;
} kind_info_t;

static const kind_info_t kinds[] = {
    [LZ_PROXY_FORWARDER] = {ZMQ_XSUB, ZMQ_XPUB, "forwarder-in", "forwarder-out"},
    [LZ_PROXY_QUEUE] = {ZMQ_ROUTER, ZMQ_DEALER, "queue-in", "queue-out"},
};

static void close_control_locked(lz_proxy_t *p) {
    if (p->control) zmq_close(p->control);
    p->control = NULL;
}

// open_control_locked makes our end of a fresh steering pipe for a run,
// under a name of its own. A pipe serves one run only: libzmq tears the
// last run's down after the close returns (on its reaper thread), and a
// bound PAIR refuses a second peer meanwhile, so a start right after a
// stop lost its thread's READY and waited for good. Sends and receives
// wait in slices, between which the caller looks whether the thread ended.
static int open_control_locked(lz_proxy_t *p) {
    lz__inproc_endpoint(p->control_url, sizeof p->control_url, "proxy");
    p->control = zmq_socket(lz_context_zmq(p->frontend.ctx), ZMQ_PAIR);
    int bound = -1;
    if (p->control) {
        lz__sockopt_int(p->control, ZMQ_SNDTIMEO, LZ_PROXY_COMMAND_SLICE_MS);
        lz__sockopt_int(p->control, ZMQ_RCVTIMEO, LZ_PROXY_COMMAND_SLICE_MS);
        LZ_EINTR_RESTART(bound, zmq_bind(p->control, p->control_url));
    }
    if (bound == 0) return LZ_OK;
    int rc = lz__fail_zmq("proxy: control pipe");
    close_control_locked(p);
    return rc;
}

static void proxy_free(lz_proxy_t *p) {
    lz__node_close(&p->frontend);
    lz__node_close(&p->backend);
    if (p->has_capture) lz__node_close(&p->capture);
    close_control_locked(p);
    lz__proxy_held_close(&p->held);
    pthread_mutex_destroy(&p->control_lock);
    free(p);
}

// set_option sets an int option on a node's socket; name says which if it fails.
static int set_option(lz_node_t *node, int option, int value, const char *name) {
    return lz__sockopt_int(node->socket, option, value) == 0 ? LZ_OK : lz__fail_zmq(name);
}

lz_proxy_t *lz_proxy_new(lz_context_t *ctx, lz_proxy_kind_t kind, const char *frontend, const char *backend,
                         const char *capture) {
    if (!ctx || (kind != LZ_PROXY_FORWARDER && kind != LZ_PROXY_QUEUE))
        return lz__fail_null(LZ_EINVAL, "lz_proxy_new: NULL context or unknown kind");
    lz_proxy_t *p = calloc(1, sizeof *p);
    if (!p) return lz__fail_null(LZ_ENOMEM, "lz_proxy_new: out of memory");
    pthread_mutex_init(&p->control_lock, NULL);
    lz__proxy_held_init(&p->held);
    const kind_info_t *k = &kinds[kind];
    int rc = lz__node_init(&p->frontend, ctx, k->frontend, k->front_name, '@', frontend);
    // A reply for a client that has gone must be dropped: with
    // ROUTER_MANDATORY (every ROUTER node's default) that send would fail and end the proxy.
    if (rc == LZ_OK && k->frontend == ZMQ_ROUTER)
        rc = set_option(&p->frontend, ZMQ_ROUTER_MANDATORY, 0, "proxy: ROUTER_MANDATORY");
    if (rc == LZ_OK) rc = lz__node_init(&p->backend, ctx, k->backend, k->back_name, '@', backend);
    // Every subscribe, a topic's second subscriber's too, not only its
    // first: each tells the loop who sent it (lz__conns_look), so a
    // revocation cuts only whom it refuses. The loop passes each topic up
    // once (proxy_loop.c, passes_up): the XSUB counts what it is sent and
    // unsubscribes upstream only when the count is back at 0.
    if (rc == LZ_OK && k->backend == ZMQ_XPUB) rc = set_option(&p->backend, ZMQ_XPUB_VERBOSE, 1, "proxy: XPUB_VERBOSE");
    if (rc == LZ_OK && capture) {
        rc = lz__node_init(&p->capture, ctx, ZMQ_PUB, "proxy-capture", '@', capture);
        p->has_capture = rc == LZ_OK;
    }
    // The loop runs these sockets on the proxy's thread.
    p->frontend.thread_owned = p->backend.thread_owned = p->capture.thread_owned = true;
    if (rc != LZ_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", lz_last_error());
        proxy_free(p);
        return lz__fail_null(rc, "%s", detail);
    }
    return p;
}

lz_node_t *lz_proxy_frontend(lz_proxy_t *proxy) { return proxy ? &proxy->frontend : NULL; }
lz_node_t *lz_proxy_backend(lz_proxy_t *proxy) { return proxy ? &proxy->backend : NULL; }
lz_node_t *lz_proxy_capture(lz_proxy_t *proxy) { return proxy && proxy->has_capture ? &proxy->capture : NULL; }

static void *proxy_main(void *arg) {
    lz_proxy_t *p = arg;
    // The set-up is restarted after a signal (see eintr.h): under
    // ThreadSanitizer's runtime the connect saw EINTR. The loop restarts
    // its own calls.
    void *control = zmq_socket(lz_context_zmq(p->frontend.ctx), ZMQ_PAIR);
    int rc = control ? 0 : -1;
    if (control) LZ_EINTR_RESTART(rc, zmq_connect(control, p->control_url));
    // lz_proxy_start waits for READY, so that no command is sent before the thread is there to take it.
    if (rc == 0) LZ_EINTR_RESTART(rc, zmq_send(control, "READY", 5, 0));
    if (rc < 0)
        lz__node_error(&p->frontend, LZ_EZMQ, "proxy: control pipe: %s", zmq_strerror(zmq_errno()));
    else if (lz__proxy_loop(&p->frontend, &p->backend, p->has_capture ? p->capture.socket : NULL, control,
                            &p->held) != 0)
        lz__node_error(&p->frontend, LZ_EZMQ, "proxy ended: %s", zmq_strerror(zmq_errno()));
    atomic_store(&p->ended, true); // before its end of the pipe goes: no command or start waits for it after
    if (control) zmq_close(control);
    return NULL;
}

// send_locked sends verb to the proxy's thread; the caller holds
// control_lock. The send waits while the thread's queue of commands is
// full, in slices, and gives up with LZ_ECLOSED once the thread has ended
// on a libzmq failure: it reads no more, and a send that waited for it
// would wait for good.
static int send_locked(lz_proxy_t *proxy, const char *verb) {
    for (;;) { // a signal (eintr.h) or a slice gone by: is the thread still there?
        if (zmq_send(proxy->control, verb, strlen(verb), 0) >= 0) return LZ_OK;
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return lz__fail_zmq("proxy command");
        if (atomic_load(&proxy->ended)) return lz__fail(LZ_ECLOSED, "proxy %s: %s", verb, LZ_PROXY_ENDED);
    }
}

// receive_locked receives the proxy thread's next frame into buf (what
// names it in errors); the caller holds control_lock. It waits up to
// timeout_ms (-1: for as long as the thread runs), and gives up with
// LZ_ECLOSED once the thread has ended (lz__receive_answer). The frame's
// size, or the error.
static int receive_locked(lz_proxy_t *proxy, void *buf, size_t size, int timeout_ms, const char *what) {
    int got = lz__receive_answer(proxy->control, buf, size, &proxy->ended, timeout_ms);
    if (got == LZ_ECLOSED) return lz__fail(LZ_ECLOSED, "%s: %s", what, LZ_PROXY_ENDED);
    if (got == LZ_ETIMEOUT)
        return lz__fail(LZ_ETIMEOUT, "%s: no answer from the proxy's thread in %d ms", what, timeout_ms);
    return got == LZ_EZMQ ? lz__fail_zmq(what) : got;
}

// run_locked starts the proxy's thread on a fresh steering pipe and waits
// until it is ready; the caller holds control_lock. On failure nothing is
// left running.
static int run_locked(lz_proxy_t *proxy) {
    int rc = open_control_locked(proxy);
    if (rc != LZ_OK) return rc;
    atomic_store(&proxy->ended, false);
    int err = lz__thread_start(&proxy->thread, proxy_main, proxy);
    if (err) {
        close_control_locked(proxy);
        return lz__thread_fail(err, "lz_proxy_start");
    }
    char ready[8];
    rc = receive_locked(proxy, ready, sizeof ready, -1, "lz_proxy_start: waiting for the proxy's thread");
    if (rc >= 0) {
        proxy->running = true;
        return LZ_OK;
    }
    // The thread ended before READY (it logged why), or the wait failed on
    // our side (the context is ending, say) and the thread may be in its
    // loop, which must end before it is joined. The failure to report is
    // the wait's, not TERMINATE's.
    char detail[LZ_DETAIL_MAX];
    snprintf(detail, sizeof detail, "%s", lz_last_error());
    if (!atomic_load(&proxy->ended)) send_locked(proxy, "TERMINATE");
    pthread_join(proxy->thread, NULL);
    close_control_locked(proxy);
    return lz__fail(rc, "%s", detail);
}

int lz_proxy_start(lz_proxy_t *proxy) {
    if (!proxy) return lz__fail(LZ_EINVAL, "lz_proxy_start: proxy is NULL");
    // Held throughout: no command may see the proxy running before it is.
    pthread_mutex_lock(&proxy->control_lock);
    int rc = proxy->running || proxy->joining ? lz__fail(LZ_ESTATE, "lz_proxy_start: already running")
                                              : run_locked(proxy);
    pthread_mutex_unlock(&proxy->control_lock);
    return rc;
}

// send_command_locked sends verb to a running proxy's thread (send_locked).
static int send_command_locked(lz_proxy_t *proxy, const char *verb) {
    if (!proxy->running) return lz__fail(LZ_ESTATE, "proxy %s: not running", verb);
    return send_locked(proxy, verb);
}

static int command(lz_proxy_t *proxy, const char *verb) {
    if (!proxy) return lz__fail(LZ_EINVAL, "proxy %s: proxy is NULL", verb);
    pthread_mutex_lock(&proxy->control_lock);
    int rc = send_command_locked(proxy, verb);
    pthread_mutex_unlock(&proxy->control_lock);
    return rc;
}

// A proxy thread answers STATISTICS between two messages; one that has
// not within this long, and has not ended, is stuck.
#define LZ_PROXY_ANSWER_MS 5000

// drain_control drops what the control socket holds: an answer that came
// after its asker gave up must not pass for the next one.
static void drain_control(lz_proxy_t *proxy) {
    char frame[16];
    while (zmq_recv(proxy->control, frame, sizeof frame, ZMQ_DONTWAIT) >= 0 || zmq_errno() == EINTR) {
    }
}

// receive_stats reads the proxy thread's answer to STATISTICS: eight
// frames of one uint64_t each, in lz_proxy_stats_t's order (libzmq's).
static int receive_stats(lz_proxy_t *proxy, lz_proxy_stats_t *stats) {
    uint64_t values[8];
    int more = 1;
    for (size_t i = 0; i < 8; i++) {
        if (!more) return lz__fail(LZ_EPROTOCOL, "proxy STATISTICS: %zu of 8 values", i);
        int got = receive_locked(proxy, &values[i], sizeof values[i], LZ_PROXY_ANSWER_MS, "proxy STATISTICS");
        if (got < 0) return got;
        if (got != (int)sizeof values[i]) return lz__fail(LZ_EPROTOCOL, "proxy STATISTICS: a value of %d bytes", got);
        size_t size = sizeof more;
        zmq_getsockopt(proxy->control, ZMQ_RCVMORE, &more, &size);
    }
    if (more) return lz__fail(LZ_EPROTOCOL, "proxy STATISTICS: more than 8 values");
    _Static_assert(sizeof *stats == sizeof values, "lz_proxy_stats_t is libzmq's eight counters");
    memcpy(stats, values, sizeof values);
    return LZ_OK;
}

int lz_proxy_statistics(lz_proxy_t *proxy, lz_proxy_stats_t *stats) {
    if (!proxy || !stats) return lz__fail(LZ_EINVAL, "proxy STATISTICS: NULL argument");
    // Under the lock: the answer comes on the control socket, which only
    // one thread may use at a time, and nothing else reads from it.
    pthread_mutex_lock(&proxy->control_lock);
    drain_control(proxy);
    int rc = send_command_locked(proxy, "STATISTICS");
    if (rc == LZ_OK) rc = receive_stats(proxy, stats);
    pthread_mutex_unlock(&proxy->control_lock);
    return rc;
}

int lz_proxy_pause(lz_proxy_t *proxy) { return command(proxy, "PAUSE"); }
int lz_proxy_resume(lz_proxy_t *proxy) { return command(proxy, "RESUME"); }

int lz_proxy_stop(lz_proxy_t *proxy) {
    if (!proxy) return lz__fail(LZ_EINVAL, "proxy TERMINATE: proxy is NULL");
    // Decided under the lock: of concurrent stops exactly one sends
    // TERMINATE and joins the thread; the others, and any command after
    // it, get LZ_ESTATE. A start waits until the join is done.
    pthread_mutex_lock(&proxy->control_lock);
    int rc = send_command_locked(proxy, "TERMINATE");
    if (rc == LZ_ECLOSED) rc = LZ_OK; // ended already: join it all the same
    pthread_t thread = proxy->thread;
    if (rc == LZ_OK) {
        proxy->running = false;
        proxy->joining = true;
    }
    pthread_mutex_unlock(&proxy->control_lock);
    if (rc != LZ_OK) return rc;
    pthread_join(thread, NULL);
    pthread_mutex_lock(&proxy->control_lock);
    close_control_locked(proxy); // the thread has closed its end: this run's pipe is done
    proxy->joining = false;
    pthread_mutex_unlock(&proxy->control_lock);
    return LZ_OK;
}

void lz_proxy_destroy(lz_proxy_t **proxy_p) {
    if (!proxy_p || !*proxy_p) return;
    lz_proxy_t *proxy = *proxy_p;
    pthread_mutex_lock(&proxy->control_lock);
    bool running = proxy->running;
    pthread_mutex_unlock(&proxy->control_lock);
    if (running) lz_proxy_stop(proxy); // not concurrent with other calls on the proxy
    proxy_free(*proxy_p);
    *proxy_p = NULL;
}
