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
    void *control;       // our end of the steering pipe; guarded by control_lock
    char control_url[64];
    pthread_mutex_t control_lock; // also guards thread, running and joining
    pthread_t thread;
    bool running;        // commands are accepted (start done, no stop yet)
    bool joining;        // a stop has sent TERMINATE and is joining thread
    atomic_bool ended;   // the thread's loop has returned (TERMINATE, or a libzmq failure)
};

// A command's send waits this long at a time for the proxy's thread to take
// it, checking in between that the thread is still there to take it.
#define LZ_PROXY_COMMAND_SLICE_MS 100

typedef struct {
    int frontend, backend;
    const char *front_name, *back_name;
} kind_info_t;

static const kind_info_t kinds[] = {
    [LZ_PROXY_FORWARDER] = {ZMQ_XSUB, ZMQ_XPUB, "forwarder-in", "forwarder-out"},
    [LZ_PROXY_QUEUE] = {ZMQ_ROUTER, ZMQ_DEALER, "queue-in", "queue-out"},
};

static void proxy_free(lz_proxy_t *p) {
    lz__node_close(&p->frontend);
    lz__node_close(&p->backend);
    if (p->has_capture) lz__node_close(&p->capture);
    if (p->control) zmq_close(p->control);
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
    const kind_info_t *k = &kinds[kind];
    int rc = lz__node_init(&p->frontend, ctx, k->frontend, k->front_name, '@', frontend);
    // A reply for a client that has gone must be dropped: with
    // ROUTER_MANDATORY (every ROUTER node's default) that send would fail and end the proxy.
    if (rc == LZ_OK && k->frontend == ZMQ_ROUTER)
        rc = set_option(&p->frontend, ZMQ_ROUTER_MANDATORY, 0, "proxy: ROUTER_MANDATORY");
    if (rc == LZ_OK) rc = lz__node_init(&p->backend, ctx, k->backend, k->back_name, '@', backend);
    // Every subscriber's subscribe and unsubscribe, not only a topic's
    // first and last: each tells the loop who sent it (lz__conns_look), so
    // a revocation cuts only whom it refuses. Unsubscribes too, or the
    // XSUB, which counts a topic's subscriptions, would keep it upstream
    // after its last subscriber left.
    if (rc == LZ_OK && k->backend == ZMQ_XPUB)
        rc = set_option(&p->backend, ZMQ_XPUB_VERBOSER, 1, "proxy: XPUB_VERBOSER");
    if (rc == LZ_OK && capture) {
        rc = lz__node_init(&p->capture, ctx, ZMQ_PUB, "proxy-capture", '@', capture);
        p->has_capture = rc == LZ_OK;
    }
    // The loop runs these sockets on the proxy's thread.
    p->frontend.thread_owned = p->backend.thread_owned = p->capture.thread_owned = true;
    if (rc == LZ_OK) {
        lz__inproc_endpoint(p->control_url, sizeof p->control_url, "proxy");
        p->control = zmq_socket(lz_context_zmq(ctx), ZMQ_PAIR);
        if (p->control) lz__sockopt_int(p->control, ZMQ_SNDTIMEO, LZ_PROXY_COMMAND_SLICE_MS);
        int bound = -1;
        if (p->control) LZ_EINTR_RESTART(bound, zmq_bind(p->control, p->control_url));
        if (bound != 0) rc = lz__fail_zmq("proxy: control pipe");
    }
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
    if (rc != 0) {
        lz__node_error(&p->frontend, LZ_EZMQ, "proxy: control pipe: %s", zmq_strerror(zmq_errno()));
        if (control) zmq_close(control);
        return NULL;
    }
    LZ_EINTR_RESTART(rc, zmq_send(control, "READY", 5, 0)); // lz_proxy_start waits for this: commands are never lost
    if (lz__proxy_loop(&p->frontend, &p->backend, p->has_capture ? p->capture.socket : NULL, control) != 0)
        lz__node_error(&p->frontend, LZ_EZMQ, "proxy ended: %s", zmq_strerror(zmq_errno()));
    atomic_store(&p->ended, true); // before its end of the pipe goes: no command waits for it after
    zmq_close(control);
    return NULL;
}

int lz_proxy_start(lz_proxy_t *proxy) {
    if (!proxy) return lz__fail(LZ_EINVAL, "lz_proxy_start: proxy is NULL");
    // Held throughout: the READY receive uses the control socket, which
    // commands on other threads send on, and no command may see the proxy
    // running before it is.
    pthread_mutex_lock(&proxy->control_lock);
    int rc = LZ_OK;
    if (proxy->running || proxy->joining) {
        rc = lz__fail(LZ_ESTATE, "lz_proxy_start: already running");
    } else {
        atomic_store(&proxy->ended, false);
        int err = lz__thread_start(&proxy->thread, proxy_main, proxy);
        if (err) {
            rc = lz__fail(LZ_EIO, "lz_proxy_start: pthread_create: %s", strerror(err));
        } else {
            char ready[8];
            int got;
            LZ_EINTR_RESTART(got, zmq_recv(proxy->control, ready, sizeof ready, 0));
            if (got < 0) {
                rc = lz__fail_zmq("proxy: waiting for the proxy thread");
                pthread_join(proxy->thread, NULL);
            } else {
                proxy->running = true;
            }
        }
    }
    pthread_mutex_unlock(&proxy->control_lock);
    return rc;
}

// send_command_locked sends verb to a running proxy's thread; the caller
// holds control_lock. The send waits while the thread's queue of commands
// is full, in slices, and gives up with LZ_ECLOSED once the thread has
// ended on a libzmq failure: it reads no more, and a send that waited for
// it would wait for good.
static int send_command_locked(lz_proxy_t *proxy, const char *verb) {
    if (!proxy->running) return lz__fail(LZ_ESTATE, "proxy %s: not running", verb);
    for (;;) { // a signal (eintr.h) or a slice gone by: is the thread still there?
        if (zmq_send(proxy->control, verb, strlen(verb), 0) >= 0) return LZ_OK;
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return lz__fail_zmq("proxy command");
        if (atomic_load(&proxy->ended))
            return lz__fail(LZ_ECLOSED, "proxy %s: the proxy's thread has ended (the frontend node logged why)", verb);
    }
}

static int command(lz_proxy_t *proxy, const char *verb) {
    if (!proxy) return lz__fail(LZ_EINVAL, "proxy %s: proxy is NULL", verb);
    pthread_mutex_lock(&proxy->control_lock);
    int rc = send_command_locked(proxy, verb);
    pthread_mutex_unlock(&proxy->control_lock);
    return rc;
}

// A proxy thread answers STATISTICS between two messages; one that has
// not within this long has ended (a libzmq error) or is stuck.
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
    lz__sockopt_int(proxy->control, ZMQ_RCVTIMEO, LZ_PROXY_ANSWER_MS);
    for (size_t i = 0; i < 8; i++) {
        if (!more) return lz__fail(LZ_EPROTOCOL, "proxy STATISTICS: %zu of 8 values", i);
        int got;
        LZ_EINTR_RESTART(got, zmq_recv(proxy->control, &values[i], sizeof values[i], 0));
        if (got < 0 && zmq_errno() == EAGAIN)
            return lz__fail(LZ_ETIMEOUT, "proxy STATISTICS: no answer from the proxy thread in %d ms",
                            LZ_PROXY_ANSWER_MS);
        if (got < 0) return lz__fail_zmq("proxy STATISTICS");
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
