/* The router: sees each request's sender identity and request id, answers
 * it or any other connected client by identity. libzmq's ROUTER_MANDATORY
 * (set for every ROUTER node) turns a send to an unknown identity into
 * LZ_EUNREACHABLE instead of a silent drop. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/extension.h"
#include "core/hooks.h"
#include "core/node.h"
#include "core/trace.h"
#include "liberzmq/dealer.h"
#include "patterns/routing.h"

struct lz_router {
    lz_node_t node;
};

struct lz_router_request {
    lz_routing_t route; // identity, request id, and the delimiter if one came
    lz_message_t *msg;  // the decoded payload; its id is the request id
    char *id;
    // The request's SERVER span (tracing.enabled), a child of the dealer's
    // traceparent frame: ended by the first reply, else when the request is
    // freed. Replies may come from several threads at once (lz_router_reply
    // is thread safe), so span_open is claimed before the span is touched.
    lz_span_t span;
    atomic_bool span_open;
};

lz_router_t *lz_router_new(lz_context_t *ctx, const char *endpoints) {
    lz_router_t *router = calloc(1, sizeof *router);
    if (!router) return lz__fail_null(LZ_ENOMEM, "lz_router_new: out of memory");
    if (lz__node_init(&router->node, ctx, ZMQ_ROUTER, "router", '@', endpoints) < 0) {
        free(router);
        return NULL;
    }
    return router;
}

void lz_router_destroy(lz_router_t **router_p) {
    if (!router_p || !*router_p) return;
    lz__node_close(&(*router_p)->node);
    free(*router_p);
    *router_p = NULL;
}

lz_node_t *lz_router_node(lz_router_t *router) { return router ? &router->node : NULL; }

// end_span ends the request's span with status, once: the first caller
// claims it. Untraced, one plain load.
static void end_span(const lz_router_request_t *request, int status) {
    lz_router_request_t *r = (lz_router_request_t *)request; // the span is not what the caller sees as const
    if (atomic_load_explicit(&r->span_open, memory_order_relaxed) && atomic_exchange(&r->span_open, false))
        lz__span_end(&r->span, status);
}

void lz_router_request_destroy(lz_router_request_t **request_p) {
    lz_router_request_t *request = request_p ? *request_p : NULL;
    if (!request) return;
    end_span(request, LZ_OK); // answered by lz_router_send, or not at all
    lz_message_destroy(&request->msg);
    lz__routing_close(&request->route);
    free(request->id);
    free(request);
    *request_p = NULL;
}

// take_request: [identity, request_id, payload] or [identity,
// request_id, "", payload], then any extension frames (a dealer's
// traceparent); anything else is refused (and dropped), as is a request
// the receive hooks refuse.
static int take_request(lz_node_t *node, lz_frames_t *f, void *out) {
    size_t last = f->count >= 4 && lz__frame_size(f, 2) == 0 ? 3 : 2; // the payload
    if (f->count < 3 || f->total != f->count)
        return lz__fail(LZ_EPROTOCOL, "request with %zu frames: expected [identity, request_id, payload]", f->total);
    lz_router_request_t *request = calloc(1, sizeof *request);
    char *id = request ? strndup(lz__frame_data(f, 1), lz__frame_size(f, 1)) : NULL;
    if (!id) {
        free(request);
        return lz__fail(LZ_ENOMEM, "request: out of memory");
    }
    request->id = id;
    request->msg = lz__message_decode(node->serializer, &f->part[last], lz__frame_size(f, last));
    lz__routing_take(&request->route, f, last);
    int rc = request->msg ? lz__ext_read(request->msg, f, last + 1) : LZ_EPROTOCOL;
    if (rc != LZ_OK) {
        if (!request->msg) rc = lz__fail(LZ_EPROTOCOL, "request %s does not decode: %s", id, lz_last_error());
        lz_router_request_destroy(&request);
        return rc;
    }
    request->msg->id = id;
    if (!lz__hooks_admit(node, &request->msg)) {
        lz_router_request_destroy(&request);
        return LZ__TAKE_DROPPED;
    }
    // As a server's: begun once the request is decoded and admitted.
    lz__span_begin_message(&request->span, node, LZ_SPAN_SERVER, request->msg);
    atomic_init(&request->span_open, request->span.active);
    *(lz_router_request_t **)out = request;
    return LZ_OK;
}

// The receive holds the node lock only while it reads (lz__node_take), so
// replies from other threads never wait for it.
lz_router_request_t *lz_router_recv(lz_router_t *router, int timeout_ms) {
    if (!router) return lz__fail_null(LZ_EINVAL, "lz_router_recv: router is NULL");
    lz_router_request_t *request = NULL;
    return lz__node_take(&router->node, timeout_ms, NULL, take_request, &request) == LZ_OK ? request : NULL;
}

const void *lz_router_request_identity(const lz_router_request_t *request, size_t *size) {
    if (size) *size = request ? zmq_msg_size((zmq_msg_t *)&request->route.part[0]) : 0;
    return request ? zmq_msg_data((zmq_msg_t *)&request->route.part[0]) : NULL;
}

const char *lz_router_request_id(const lz_router_request_t *request) { return request ? request->id : ""; }

const lz_value_t *lz_router_request_value(const lz_router_request_t *request) {
    return request ? request->msg->value : NULL;
}

const char *lz_router_request_traceparent(const lz_router_request_t *request) {
    // Written before the request was handed out, never after: any thread.
    return request && request->span.traceparent[0] ? request->span.traceparent : NULL;
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
    end_span(request, rc);
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
