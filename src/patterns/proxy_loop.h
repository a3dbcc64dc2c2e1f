/* Internal: the loop that moves a proxy's messages (libzmq's steerable
 * proxy, with each message's first frame shown to its node's revocation
 * table on the way through, see core/revoke.h). */
#ifndef LZ_PATTERNS_PROXY_LOOP_H
#define LZ_PATTERNS_PROXY_LOOP_H

#include "core/node.h"

// What a run of the loop leaves to the next on the same sockets, for each
// way (out of the frontend, out of the backend): a message whose first
// frame it took but had no room to pass on, the other frames still queued
// in the socket. The next run sends it first; dropped, it would cut the
// message in two (the rest went out as a message of its own).
typedef struct lz_proxy_held {
    zmq_msg_t first[2];
    bool holding[2];
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
// is dropped (counted in its node's inbound_dropped). held carries a held
// message from the last run on these sockets and to the next. Runs on the
// calling thread, which alone uses the four sockets and held meanwhile.
// Returns 0 after TERMINATE or when the context is terminated, -1 with
// zmq_errno() set on another libzmq failure.
int lz__proxy_loop(lz_node_t *frontend, lz_node_t *backend, void *capture, void *control, lz_proxy_held_t *held);

#endif
