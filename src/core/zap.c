/* The ZAP handler: one thread owns the ROUTER socket libzmq sends its
 * authentication requests to (zmq sockets are not thread safe), judges
 * CURVE, NULL and address rules itself (cheap) and hands PLAIN passwords,
 * one crypt(3) hash each (tens of ms), to a pool of workers; they hand the
 * judged requests back through a queue and a wakeup, and the thread sends
 * the answers. */
#include "core/zap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "core/eintr.h"
#include "core/error.h"
#include "core/pool.h"
#include "core/thread.h"
#include "core/wakeup.h"

// Requests with the workers (queued, hashing, or hashed and not yet
// answered) at most; beyond, new ones wait in the socket, as the
// handshakes behind them wait for their answer anyway. The pool's queue
// holds as many, so handing one over never blocks.
#define PENDING_MAX 64
#define WORKERS_MIN 2
#define WORKERS_MAX 4 // each yescrypt check takes its 16 MiB or so

struct lz_zap {
    pthread_t thread;
    void *router;     // the ZAP thread's only
    lz_pool_t *pool;  // the ZAP thread's: started at the first password
    size_t pending;   // the ZAP thread's: handed to the pool, not yet answered
    int wake_fd;      // ends the ZAP thread's wait: a request hashed, or a stop
    atomic_bool stopping;
    pthread_mutex_t lock; // guards hashed
    lz_zap_request_t *hashed[PENDING_MAX];
    size_t hashed_count;
    lz_zap_policy_fn policy;
    void *policy_arg;
    lz_logger_t *logger;
};

int lz__zap_workers(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < WORKERS_MIN ? WORKERS_MIN : cpus > WORKERS_MAX ? WORKERS_MAX : (int)cpus;
}

// hash_job checks a password on a worker, then hands the request back to
// the ZAP thread, the only one that may send its answer.
static void hash_job(void *job, void *arg) {
    lz_zap_t *zap = arg;
    lz__zap_hash(job);
    pthread_mutex_lock(&zap->lock);
    zap->hashed[zap->hashed_count++] = job;
    pthread_mutex_unlock(&zap->lock);
    lz__wakeup_signal(zap->wake_fd);
}

static void drop_job(void *job, void *arg) {
    (void)arg;
    lz_zap_request_t *req = job;
    lz__zap_request_free(&req);
}

// hash_later hands req to the workers; false when there are none to take it.
static bool hash_later(lz_zap_t *zap, lz_zap_request_t *req) {
    if (!zap->pool) zap->pool = lz__pool_new(lz__zap_workers(), PENDING_MAX, hash_job, zap);
    if (!zap->pool || lz__pool_submit(zap->pool, req) != LZ_OK) return false;
    zap->pending++;
    return true;
}

static void serve_request(lz_zap_t *zap) {
    lz_zap_request_t *req = lz__zap_receive(zap->router);
    if (!req) return;
    bool hash = lz__zap_judge(req, zap->policy(zap->policy_arg));
    if (hash && hash_later(zap, req)) return;
    if (hash) lz__zap_hash(req); // no worker could start: slower, but answered
    lz__zap_answer(&req, zap->router, zap->logger);
}

static void answer_hashed(lz_zap_t *zap) {
    lz_zap_request_t *hashed[PENDING_MAX];
    lz__wakeup_drain(zap->wake_fd);
    pthread_mutex_lock(&zap->lock);
    size_t count = zap->hashed_count;
    memcpy(hashed, zap->hashed, count * sizeof *hashed);
    zap->hashed_count = 0;
    pthread_mutex_unlock(&zap->lock);
    for (size_t i = 0; i < count; i++) lz__zap_answer(&hashed[i], zap->router, zap->logger);
    zap->pending -= count;
}

static void *zap_main(void *self) {
    lz_zap_t *zap = self;
    while (!atomic_load(&zap->stopping)) {
        zmq_pollitem_t items[] = {{NULL, zap->wake_fd, ZMQ_POLLIN, 0}, {zap->router, 0, ZMQ_POLLIN, 0}};
        int polled = zap->pending < PENDING_MAX ? 2 : 1, rc; // the workers' hands full: requests wait
        LZ_EINTR_RESTART(rc, zmq_poll(items, polled, -1));
        if (rc < 0) break;
        if (items[0].revents & ZMQ_POLLIN) answer_hashed(zap);
        if (items[1].revents & ZMQ_POLLIN) serve_request(zap);
    }
    // A hash under way ends first; its request is dropped with the others.
    lz__pool_destroy(&zap->pool, drop_job);
    for (size_t i = 0; i < zap->hashed_count; i++) lz__zap_request_free(&zap->hashed[i]);
    lz__zap_close(zap->router);
    return NULL;
}

static void zap_free(lz_zap_t *zap) {
    lz__wakeup_close(&zap->wake_fd);
    pthread_mutex_destroy(&zap->lock);
    free(zap);
}

lz_zap_t *lz__zap_start(void *zmq_context, lz_zap_policy_fn policy, void *arg, lz_logger_t *logger) {
    lz_zap_t *zap = calloc(1, sizeof *zap);
    if (!zap) return lz__fail_null(LZ_ENOMEM, "security: out of memory for the ZAP handler");
    zap->policy = policy;
    zap->policy_arg = arg;
    zap->logger = logger;
    zap->wake_fd = lz__wakeup_open();
    atomic_init(&zap->stopping, false);
    pthread_mutex_init(&zap->lock, NULL);
    if (zap->wake_fd < 0) {
        zap_free(zap);
        return lz__fail_null(LZ_EIO, "security: no eventfd for the ZAP handler");
    }
    zap->router = lz__zap_bind(zmq_context);
    if (!zap->router) {
        zap_free(zap);
        return NULL; // the bind's error stands
    }
    // The socket moves to the new thread: thread creation orders our use before its.
    int err = lz__thread_start(&zap->thread, zap_main, zap);
    if (err) {
        lz__zap_close(zap->router);
        zap_free(zap);
        lz__thread_fail(err, "security: ZAP handler");
        return NULL;
    }
    return zap;
}

void lz__zap_stop(lz_zap_t **zap_p) {
    lz_zap_t *zap = *zap_p;
    if (!zap) return;
    atomic_store(&zap->stopping, true);
    lz__wakeup_signal(zap->wake_fd);
    pthread_join(zap->thread, NULL);
    zap_free(zap);
    *zap_p = NULL;
}
