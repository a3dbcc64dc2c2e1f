/* The router: sees each request's sender identity and request id, answers
 * it or any other connected client by identity. libzmq's ROUTER_MANDATORY
 * (set for every ROUTER node) turns a send to an unknown identity into
 * LZ_EUNREACHABLE instead of a silent drop. */
#include <pthread.h>
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
    lz_node_t node; // first: take_request gets the router as its node
    // The requests whose span is open (tracing.enabled). A span reports to
    // the context, which may be freed once the router is gone, so the
    // router's destroy ends them LZ_ECLOSED, as a server's stop answers
    // its deferred replies. Spans end under open_lock, which the destroy
    // takes too: none is half reported when the node lets the context go.
    pthread_mutex_t open_lock;
    lz_router_request_t *open;
    // The caller's handle and each request that may still take open_lock:
    // the last to let go frees the router.
    atomic_int refs;
};

struct lz_router_request {
    lz_routing_t route; // identity, request id, and the delimiter if one came
    lz_message_t *msg;  // the decoded payload; its id is the request id
    char *id;
    // The request's SERVER span (tracing.enabled), a child of the dealer's
    // traceparent frame: ended by the first reply, else by the router's
    // destroy, else when the request is freed. Replies may come from
    // several threads at once (lz_router_reply is thread safe): the one
    // that takes router (a reference, NULL untraced) ends the span.
    lz_span_t span;
    _Atomic(lz_router_t *) router;
    lz_router_request_t *prev, *next; // on router->open, under its open_lock
    bool listed;                      // under open_lock: the span is open
};

lz_router_t *lz_router_new(lz_context_t *ctx, const char *endpoints) {
    lz_router_t *router = calloc(1, sizeof *router);
    if (!router) return lz__fail_null(LZ_ENOMEM, "lz_router_new: out of memory");
    if (lz__node_init(&router->node, ctx, ZMQ_ROUTER, "router", '@', endpoints) < 0) {
        free(router);
        return NULL;
    }
    pthread_mutex_init(&router->open_lock, NULL);
    atomic_init(&router->refs, 1);
    return router;
}

static void router_unref(lz_router_t *router) {
    if (atomic_fetch_sub(&router->refs, 1) != 1) return;
    pthread_mutex_destroy(&router->open_lock);
    free(router);
}

// close_spans ends every open span LZ_ECLOSED: no reply can follow. The
// requests stay their callers'; each one's end_span lets its reference go.
static void close_spans(lz_router_t *router) {
    pthread_mutex_lock(&router->open_lock);
    for (lz_router_request_t *r = router->open; r; r = r->next) {
        r->listed = false;
        lz__span_end(&r->span, LZ_ECLOSED);
    }
    router->open = NULL;
    pthread_mutex_unlock(&router->open_lock);
}

void lz_router_destroy(lz_router_t **router_p) {
    if (!router_p || !*router_p) return;
    lz_router_t *router = *router_p;
    close_spans(router); // before the node lets the context go
    lz__node_close(&router->node);
    router_unref(router);
    *router_p = NULL;
}

lz_node_t *lz_router_node(lz_router_t *router) { return router ? &router->node : NULL; }

// open_span lists a request whose span began on router's open list.
static void open_span(lz_router_t *router, lz_router_request_t *request) {
    atomic_fetch_add(&router->refs, 1);
    pthread_mutex_lock(&router->open_lock);
    request->next = router->open;
    if (router->open) router->open->prev = request;
    router->open = request;
    request->listed = true;
    pthread_mutex_unlock(&router->open_lock);
    atomic_store(&request->router, router); // before the request is handed out
}

// end_span ends the request's span with status, once: the first caller
// takes the router, and ends the span unless the router's destroy did.
// Untraced, one plain load.
static void end_span(const lz_router_request_t *request, int status) {
    lz_router_request_t *r = (lz_router_request_t *)request; // the span is not what the caller sees as const
    lz_router_t *router = atomic_load_explicit(&r->router, memory_order_relaxed);
    if (!router || !(router = atomic_exchange(&r->router, NULL))) return;
    pthread_mutex_lock(&router->open_lock);
    if (r->listed) {
        if (r->prev) r->prev->next = r->next;
        else router->open = r->next;
        if (r->next) r->next->prev = r->prev;
        r->listed = false;
        lz__span_end(&r->span, status);
    }
    pthread_mutex_unlock(&router->open_lock);
    router_unref(router);
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
    atomic_init(&request->router, NULL); // untraced until its span opens
    request->msg = lz__message_decode(node->serializer, &f->part[last], lz__frame_size(f, last));
    lz__routing_take(&request->route, f, last);
    // Out of memory is not the request's fault: it is not called malformed.
    bool no_memory = !request->msg && lz_last_error_code() == LZ_ENOMEM;
    int rc = request->msg ? lz__ext_read(request->msg, f, last + 1) : no_memory ? LZ_ENOMEM : LZ_EPROTOCOL;
    if (rc != LZ_OK) {
        if (!request->msg && !no_memory)
            rc = lz__fail(LZ_EPROTOCOL, "request %s does not decode: %s", id, lz_last_error());
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
    if (request->span.active) open_span((lz_router_t *)node, request);
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

int lz_router_reply(lz_router_t *router, const lz_router_request_t *request, const lz_value_t *value) {
    if (!router || !request) return lz__fail(LZ_EINVAL, "lz_router_reply: NULL router or request");
    lz_buffer_t *buffer = lz_buffer_new();
    if (!buffer) return lz__fail(LZ_ENOMEM, "router: out of memory");
    int rc = lz__node_encode(&router->node, value, buffer);
    if (rc == LZ_OK)
        rc = lz__routing_send(&router->node, &request->route, lz_buffer_data(buffer), lz_buffer_size(buffer));
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
    int rc = lz__node_encode(&router->node, value, buffer);
    if (rc == LZ_OK) {
        const char *id = request_id ? request_id : "";
        lz_frame_t frames[3] = {{identity, identity_size}, {id, strlen(id)},
                                {lz_buffer_data(buffer), lz_buffer_size(buffer)}};
        rc = lz__node_send(&router->node, frames, 3);
    }
    lz_buffer_destroy(&buffer);
    return rc;
}
