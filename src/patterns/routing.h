/* Internal: what the ROUTER-based patterns (server, router) share. A
 * route is the frames before the payload, kept as received and sent back
 * unchanged in front of the reply. */
#ifndef LZ_PATTERNS_ROUTING_H
#define LZ_PATTERNS_ROUTING_H

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "core/node.h"

// The routing envelope of one request: identity, then whatever the peer
// put before its payload (request id, empty delimiter, a broker's hops).
typedef struct lz_routing {
    zmq_msg_t part[LZ_MAX_FRAMES];
    size_t count;
} lz_routing_t;

// lz__routing_take moves the first n frames of f into route (n < LZ_MAX_FRAMES).
static inline void lz__routing_take(lz_routing_t *route, lz_frames_t *f, size_t n) {
    route->count = n;
    for (size_t i = 0; i < n; i++) lz__msg_move_to_empty(&route->part[i], &f->part[i]);
}

static inline void lz__routing_close(lz_routing_t *route) {
    for (size_t i = 0; i < route->count; i++) zmq_msg_close(&route->part[i]);
    route->count = 0;
}

// lz__routing_send sends [route..., payload] on node (taking its lock),
// copying the route's frames: a router may answer one request more than
// once. (The server, which answers once, gives the frames themselves to
// lz__node_send_parts_locked.)
static inline int lz__routing_send(lz_node_t *node, const lz_routing_t *route, const void *payload,
                                   size_t size) {
    lz_frame_t frames[LZ_MAX_FRAMES + 1];
    for (size_t i = 0; i < route->count; i++) {
        frames[i].data = zmq_msg_data((zmq_msg_t *)&route->part[i]);
        frames[i].size = zmq_msg_size((zmq_msg_t *)&route->part[i]);
    }
    frames[route->count] = (lz_frame_t){payload, size};
    return lz__node_send(node, frames, route->count + 1);
}

#endif
