/* Internal: the loop that moves a proxy's messages (libzmq's steerable
 * proxy, with each message's first frame shown to its node's revocation
 * table on the way through, see core/revoke.h). */
#ifndef LZ_PATTERNS_PROXY_LOOP_H
#define LZ_PATTERNS_PROXY_LOOP_H

#include "core/node.h"

// A forwarder's topics subscribed upstream (each once), sorted for a
// binary search: see proxy_loop.c, passes_up.
typedef struct lz_proxy_topic {
    unsigned char *bytes; // malloc'd, never NULL (the empty topic has one byte unused)
    size_t size;
} lz_proxy_topic_t;

typedef struct lz_proxy_topics {
    lz_proxy_topic_t *items;
    size_t count, capacity;
} lz_proxy_topics_t;

// What a run of the loop leaves to the next on the same sockets, for each
// way (out of the frontend, out of the backend): a message whose first
// frame it took but had no room to pass on, the other frames still queued
// in the socket. The next run sends it first; dropped, it would cut the
// message in two (the rest went out as a message of its own). And for a
// forwarder, the topics its XSUB has subscribed upstream, which outlive a
// run as the XSUB's subscriptions do.
typedef struct lz_proxy_held {
    zmq_msg_t first[2];
    bool holding[2];
    lz_proxy_topics_t upstream;
} lz_proxy_held_t;

// lz__proxy_held_init makes held empty; lz__proxy_held_close drops what
// it holds, once no loop is to run on the sockets again.
void lz__proxy_held_init(lz_proxy_held_t *held);
void lz__proxy_held_close(lz_proxy_held_t *held);

// lz__proxy_loop forwards whole messages between frontend's and backend's
// sockets both ways, copying each frame to capture (a PUB socket; may be
// NULL), until a "TERMINATE" arrives on control, answering there the
// commands libzmq's zmq_proxy_steerable takes ("PAUSE", "RESUME",
// "STATISTICS": eight uint64_t frames in lz_proxy_stats_t's order; counts
// start at 0 with each call). A message whose sender a revocation refused
// is dropped (counted in its node's inbound_dropped). A forwarder (an XPUB
// backend, with XPUB_VERBOSE) passes up a topic's first subscribe and its
// last unsubscribe only, as libzmq's proxy does. held carries what the
// last run on these sockets left (lz_proxy_held_t) to the next. Runs on the
// calling thread, which alone uses the four sockets and held meanwhile.
// Returns 0 after TERMINATE or when the context is terminated, -1 with
// zmq_errno() set on another libzmq failure.
int lz__proxy_loop(lz_node_t *frontend, lz_node_t *backend, void *capture, void *control, lz_proxy_held_t *held);

#endif
