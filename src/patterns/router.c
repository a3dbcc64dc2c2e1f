/* The router: sees each request's sender identity and request id, answers
 * it or any other connected client by identity. libzmq's ROUTER_MANDATORY
 * (set for every ROUTER node) turns a send to an unknown identity into
 * LZ_EUNREACHABLE instead of a silent drop. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/node.h"
#include "liberzmq/dealer.h"
#include "patterns/routing.h"

#define ROUTER_WAIT_SLICE_MS 10 // see router_wait

struct lz_router {
    lz_node_t node;
    int fd; // libzmq's ZMQ_FD, read once: the socket is never rebuilt
};

struct lz_router_request {
    lz_routing_t route; // identity, request id, and the delimiter if one came
    zmq_msg_t payload;  // kept alive: a raw value borrows it
    lz_value_t *value;
    char *id;
};

lz_router_t *lz_router_new(lz_context_t *ctx, const char *endpoints) {
    lz_router_t *router = calloc(1, sizeof *router);
    if (!router) return lz__fail_null(LZ_ENOMEM, "lz_router_new: out of memory");
    if (lz__node_init(&router->node, ctx, ZMQ_ROUTER, "router", '@', endpoints) < 0) {
        free(router);
        return NULL;
    }
    size_t size = sizeof router->fd;
    zmq_getsockopt(router->node.socket, ZMQ_FD, &router->fd, &size);
    return router;
}

void lz_router_destroy(lz_router_t **router_p) {
    if (!router_p || !*router_p) return;
    lz__node_close(&(*router_p)->node);
    free(*router_p);
    *router_p = NULL;
}

lz_node_t *lz_router_node(lz_router_t *router) { return router ? &router->node : NULL; }

void lz_router_request_destroy(lz_router_request_t **request_p) {
    lz_router_request_t *request = request_p ? *request_p : NULL;
    if (!request) return;
    lz_value_destroy(&request->value);
    zmq_msg_close(&request->payload);
    lz__routing_close(&request->route);
    free(request->id);
    free(request);
    *request_p = NULL;
}

// parse_request: [identity, request_id, payload] or [identity,
// request_id, "", payload]; anything else is dropped.
static lz_router_request_t *parse_request(lz_router_t *router, lz_frames_t *f) {
    bool delimited = f->count == 4 && lz__frame_size(f, 2) == 0;
    if (f->total != f->count || (f->count != 3 && !delimited)) {
        lz__node_drop(&router->node, "request with %zu frames: expected [identity, request_id, payload]", f->total);
        return NULL;
    }
    lz_router_request_t *request = calloc(1, sizeof *request);
    char *id = request ? strndup(lz__frame_data(f, 1), lz__frame_size(f, 1)) : NULL;
    if (!id) {
        free(request);
        lz__node_error(&router->node, LZ_ENOMEM, "request dropped: out of memory");
        return NULL;
    }
    request->id = id;
    zmq_msg_init(&request->payload);
    zmq_msg_move(&request->payload, &f->part[f->count - 1]);
    lz__routing_take(&request->route, f, f->count - 1);
    if (lz_serializer_decode(router->node.serializer, zmq_msg_data(&request->payload),
                             zmq_msg_size(&request->payload), &request->value) < 0) {
        lz__node_drop(&router->node, "request %s does not decode: %s", id, lz_last_error());
        lz_router_request_destroy(&request);
    }
    return request;
}

// router_wait sleeps on libzmq's edge-triggered fd. A sender on another
// thread may consume the edge under the lock, so sleep in short slices.
static void router_wait(lz_router_t *router, int remaining_ms) {
    int slice = remaining_ms < 0 || remaining_ms > ROUTER_WAIT_SLICE_MS ? ROUTER_WAIT_SLICE_MS : remaining_ms;
    struct pollfd pfd = {router->fd, POLLIN, 0};
    poll(&pfd, 1, slice);
}

lz_router_request_t *lz_router_recv(lz_router_t *router, int timeout_ms) {
    if (!router) return lz__fail_null(LZ_EINVAL, "lz_router_recv: router is NULL");
    int64_t deadline = lz__deadline_ms(timeout_ms);
    for (;;) {
        lz_frames_t f;
        lz__bias_lock(&router->node.lock); // senders share the socket
        int rc = lz__node_recv(&router->node, &f, 0);
        lz__bias_unlock(&router->node.lock);
        if (rc == LZ_OK) {
            lz_router_request_t *request = parse_request(router, &f);
            lz__frames_close(&f);
            if (request) return request;
            continue;
        }
        if (rc != LZ_ETIMEOUT) return NULL;
        int remaining = lz__ms_left(deadline, timeout_ms); // -1: no limit
        if (remaining == 0) return lz__fail_null(LZ_ETIMEOUT, "router: no request within %d ms", timeout_ms);
        router_wait(router, remaining);
    }
}

const void *lz_router_request_identity(const lz_router_request_t *request, size_t *size) {
    if (size) *size = request ? zmq_msg_size((zmq_msg_t *)&request->route.part[0]) : 0;
    return request ? zmq_msg_data((zmq_msg_t *)&request->route.part[0]) : NULL;
}

const char *lz_router_request_id(const lz_router_request_t *request) { return request ? request->id : ""; }

const lz_value_t *lz_router_request_value(const lz_router_request_t *request) {
    return request ? request->value : NULL;
}

// encode_value encodes value (NULL: null) with the router's serializer.
static int encode_value(lz_router_t *router, const lz_value_t *value, lz_buffer_t *out) {
    lz_value_t *null_value = value ? NULL : lz_value_null();
    int rc = lz_serializer_encode(router->node.serializer, value ? value : null_value, out);
    lz_value_destroy(&null_value);
    return rc;
}

int lz_router_reply(lz_router_t *router, const lz_router_request_t *request, const lz_value_t *value) {
    if (!router || !request) return lz__fail(LZ_EINVAL, "lz_router_reply: NULL router or request");
    lz_buffer_t *buffer = lz_buffer_new();
    if (!buffer) return lz__fail(LZ_ENOMEM, "router: out of memory");
    int rc = encode_value(router, value, buffer);
    if (rc == LZ_OK) rc = lz__routing_send(&router->node, &request->route, lz_buffer_data(buffer), lz_buffer_size(buffer));
    lz_buffer_destroy(&buffer);
    return rc;
}

int lz_router_send(lz_router_t *router, const void *identity, size_t identity_size, const char *request_id,
                   const lz_value_t *value) {
    if (!router || !identity || identity_size == 0)
        return lz__fail(LZ_EINVAL, "lz_router_send: NULL router or empty identity");
    lz_buffer_t *buffer = lz_buffer_new();
    if (!buffer) return lz__fail(LZ_ENOMEM, "router: out of memory");
    int rc = encode_value(router, value, buffer);
    if (rc == LZ_OK) {
        const char *id = request_id ? request_id : "";
        lz_frame_t frames[3] = {{identity, identity_size}, {id, strlen(id)},
                                {lz_buffer_data(buffer), lz_buffer_size(buffer)}};
        rc = lz__node_send(&router->node, frames, 3);
    }
    lz_buffer_destroy(&buffer);
    return rc;
}
