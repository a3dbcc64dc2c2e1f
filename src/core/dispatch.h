/* Internal: the receive-decode-route-run machinery that subscribers and
 * pullers share. A dispatcher owns the reading side of its node: either a
 * receiver thread feeding a worker pool, or the caller's own loop. */
#ifndef LZ_CORE_DISPATCH_H
#define LZ_CORE_DISPATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/bias.h"
#include "core/node.h"
#include "core/pool.h"
#include "liberzmq/message.h"

typedef struct lz_route {
    char *key;
    size_t key_len;
    lz_handler_fn handler;
    void *arg;
} lz_route_t;

typedef struct lz_dispatcher {
    lz_node_t *node;
    lz_take_fn decode;       // the taker that makes messages
    bool prefix_match;       // pub/sub: longest prefix; tasks: exact type
    lz_route_t *routes;
    size_t route_count;
    lz_route_t fallback;     // handler NULL when none
    pthread_t receiver;
    bool started;
    atomic_bool stopping;
    lz_pool_t *pool;         // NULL: handlers run on the receiver thread
    // Read-ahead: one lock round trip takes every message already waiting
    // (up to a burst), handed out one by one without the lock. The reader
    // holding `reading` owns the burst; a second concurrent reader reads
    // one message at a time under the lock instead. A biased lock: the
    // usual single reader takes it with plain stores.
    lz_bias_t reading;
    lz_frames_t *burst;      // LZ_RECV_BURST slots, made on first use
    unsigned burst_next, burst_count;
} lz_dispatcher_t;

void lz__dispatcher_init(lz_dispatcher_t *d, lz_node_t *node, lz_take_fn decode, bool prefix_match);
// lz__dispatcher_fini stops the dispatcher and frees its routes.
void lz__dispatcher_fini(lz_dispatcher_t *d);

// lz__dispatcher_on adds a route (key NULL: the fallback). LZ_ESTATE once started.
int lz__dispatcher_on(lz_dispatcher_t *d, const char *key, lz_handler_fn handler, void *arg);

// lz__dispatcher_start: a receiver thread plus workers handler threads
// (workers <= 1: handlers run on the receiver, in arrival order).
int lz__dispatcher_start(lz_dispatcher_t *d, int workers);
int lz__dispatcher_stop(lz_dispatcher_t *d);

// Caller-driven use (see lz_sub_dispatch, lz_sub_recv, lz_sub_fd).
int lz__dispatcher_dispatch(lz_dispatcher_t *d, int timeout_ms);
lz_message_t *lz__dispatcher_recv(lz_dispatcher_t *d, int timeout_ms);
// lz__dispatcher_take is lz__dispatcher_recv with take in the decoder's
// place: LZ_OK once take accepted a message, LZ_ETIMEOUT, LZ_ECLOSED,
// LZ_ESTATE (started) or a receive error.
int lz__dispatcher_take(lz_dispatcher_t *d, int timeout_ms, lz_take_fn take, void *out);
int lz__dispatcher_fd(lz_dispatcher_t *d, int *fd);

#endif
