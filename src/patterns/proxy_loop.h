/* Internal: the loop that moves a proxy's messages (libzmq's steerable
 * proxy, with each message's first frame shown to its node's revocation
 * table on the way through, see core/revoke.h). */
#ifndef LZ_PATTERNS_PROXY_LOOP_H
#define LZ_PATTERNS_PROXY_LOOP_H

#include "core/node.h"

// lz__proxy_loop forwards whole messages between frontend's and backend's
// sockets both ways, copying each frame to capture (a PUB socket; may be
// NULL), until a "TERMINATE" arrives on control, answering there the
// commands libzmq's zmq_proxy_steerable takes ("PAUSE", "RESUME",
// "STATISTICS": eight uint64_t frames in lz_proxy_stats_t's order; counts
// start at 0 with each call). A message whose sender a revocation refused
// is dropped (counted in its node's inbound_dropped). Runs on the calling
// thread, which alone uses the four sockets meanwhile. Returns 0 after
// TERMINATE or when the context is terminated, -1 with zmq_errno() set on
// another libzmq failure.
int lz__proxy_loop(lz_node_t *frontend, lz_node_t *backend, void *capture, void *control);

#endif
