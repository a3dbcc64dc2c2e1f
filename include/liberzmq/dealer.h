/* liberzmq dealer/router: asynchronous requests with many in flight, and a
 * router that sees who asked and can answer any connected client by name.
 *
 * Wire (docs/protocol.md, the Python LiberZMQ's Dealer/Router): a dealer
 * sends [request_id, payload]; a router receives [identity, request_id,
 * payload] and answers [identity, request_id, payload]. payload is the
 * serialized value itself, with no envelope. See docs/reqrep.md. */
#ifndef LIBERZMQ_DEALER_H
#define LIBERZMQ_DEALER_H

#include <stddef.h>

#include "context.h"
#include "node.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_dealer lz_dealer_t;
typedef struct lz_router lz_router_t;
typedef struct lz_router_request lz_router_request_t;

// A dealer completion callback: status is 0 with the reply, LZ_ETIMEOUT
// (reply NULL), LZ_ESERIALIZATION (a reply that did not decode),
// LZ_ENOMEM (no memory to send the request or to read its reply; reply
// NULL) or LZ_ECLOSED (the dealer was destroyed first). reply is borrowed for the
// call. It runs on the dealer's I/O thread: keep it short. lz_dealer_send
// is fine from it; lz_dealer_request (it would wait for itself) and
// lz_dealer_destroy are refused, LZ_ESTATE (see lz_dealer_destroy).
typedef void (*lz_dealer_callback_fn)(int status, const lz_value_t *reply, void *arg);

// lz_dealer_new creates a dealer (DEALER; default side: connect) with its
// own I/O thread. identity, if not NULL, is the routing id routers see
// (copied; at most 255 bytes); NULL gives "dealer-" and 16 random hex
// digits, text as the Python LiberZMQ Dealer's default, which its Router
// needs (it decodes the id as UTF-8). Identities must be unique among a
// router's peers: libzmq's ROUTER refuses a second connection that brings
// an id already connected, and that dealer's requests then go unanswered
// (they time out; nothing on the router counts them). NULL on failure
// with the detail set: LZ_EINVAL (also for NULL, "" or only commas as
// endpoints: a dealer's are all given here, as a client's), LZ_ECONNECTION,
// LZ_ENOMEM, LZ_ECONFIG (serialization.default names no registered
// serializer), LZ_EIO (the eventfd that wakes its I/O thread could not be
// made: no file descriptor left, say).
lz_dealer_t *lz_dealer_new(lz_context_t *ctx, const char *endpoints, const char *identity);

// lz_dealer_destroy completes every request still in flight with
// LZ_ECLOSED (callbacks run), stops the I/O thread, closes the socket,
// frees *dealer_p and sets it to NULL. Not concurrent with other calls on
// the same dealer. NULL is a no-op. From one of the dealer's own callbacks
// it is refused (it would wait for the thread it runs on, then free what
// that thread still uses): lz_last_error is LZ_ESTATE, the refusal is
// logged at ERROR, *dealer_p is left as it was and the dealer keeps
// working; destroy it from another thread.
void lz_dealer_destroy(lz_dealer_t **dealer_p);

lz_node_t *lz_dealer_node(lz_dealer_t *dealer);

// lz_dealer_send encodes value (NULL: null) with the node's serializer,
// sends it under a fresh request id (written to request_id_out, 37 bytes,
// when not NULL) and returns at once. callback (may be NULL) then runs
// exactly once, when the reply arrives or after timeout_ms (-1:
// zmq.request_timeout). Dealers never retry. With tracing.enabled the
// request is a CLIENT span whose traceparent follows the payload as an
// extension frame, [request_id, payload, "traceparent=..."], unless
// tracing.extension_frames is off or the payload is empty
// (docs/protocol.md section 5). Thread safe. Returns 0,
// LZ_ESERIALIZATION or LZ_ENOMEM (nothing sent, no callback), LZ_ECLOSED,
// LZ_EINVAL (NULL dealer, or timeout_ms below -1: error.h).
int lz_dealer_send(lz_dealer_t *dealer, const lz_value_t *value, int timeout_ms,
                   lz_dealer_callback_fn callback, void *arg, char *request_id_out);

// lz_dealer_request sends value and waits for its reply (owned by the
// caller, stored in *reply) up to timeout_ms (-1: zmq.request_timeout).
// Returns 0, LZ_ETIMEOUT, LZ_ESERIALIZATION, LZ_ENOMEM, LZ_ECLOSED,
// LZ_EINVAL (NULL dealer, or timeout_ms below -1). Thread safe.
int lz_dealer_request(lz_dealer_t *dealer, const lz_value_t *value, lz_value_t **reply,
                      int timeout_ms);

// lz_router_new creates a router (ROUTER; default side: bind) with
// ZMQ_ROUTER_MANDATORY set, so a send to an identity that is not
// connected fails with LZ_EUNREACHABLE instead of vanishing.
lz_router_t *lz_router_new(lz_context_t *ctx, const char *endpoints);

// lz_router_destroy closes the router, frees *router_p and sets it to
// NULL. The requests it received stay their callers' (their accessors
// work; destroy each with lz_router_request_destroy, before or after the
// context): the spans of those not answered yet end here, LZ_ECLOSED. Not
// concurrent with other calls on the same router. NULL is a no-op.
void lz_router_destroy(lz_router_t **router_p);
lz_node_t *lz_router_node(lz_router_t *router);

// lz_router_recv returns the next request, owned by the caller (free with
// lz_router_request_destroy), waiting up to timeout_ms (-1: forever, 0: not
// at all). NULL with LZ_ETIMEOUT, LZ_ECLOSED, LZ_EINVAL (NULL router, or
// timeout_ms below -1: error.h). It accepts [identity,
// request_id, payload] (Python LiberZMQ Dealer, lz_dealer) and [identity,
// request_id, "", payload] (REQ-style framing, lz_client), each followed by
// any extension frames (docs/protocol.md section 5); anything else, or a
// payload that does not decode, is counted in inbound_dropped and skipped.
// With tracing.enabled the request gets a SERVER span, the child of the
// traceparent frame a traced dealer sent (trace.h), ended by the first
// lz_router_reply to it, else by lz_router_destroy (LZ_ECLOSED), else by
// lz_router_request_destroy. One thread
// at a time may receive; sending from other threads meanwhile is safe.
lz_router_request_t *lz_router_recv(lz_router_t *router, int timeout_ms);

// Request accessors; everything returned is borrowed from the request.
// lz_router_request_identity: the sender's routing id (binary; *size gets
// its length). lz_router_request_id: the request id frame as text ("" if
// it was empty). lz_router_request_value: the decoded payload, never NULL.
const void *lz_router_request_identity(const lz_router_request_t *request, size_t *size);
const char *lz_router_request_id(const lz_router_request_t *request);
const lz_value_t *lz_router_request_value(const lz_router_request_t *request);
// lz_router_request_traceparent: with tracing on, the traceparent of the
// request's SERVER span (a child of the dealer's span, docs/tracing.md).
// A router has no handler to make it the thread's current span: adopt it
// (lz_trace_adopt) so the requests and messages sent while answering join
// the trace, or hand it to other systems. NULL with tracing off. Stays
// valid, the same, after the reply, until the request is destroyed.
const char *lz_router_request_traceparent(const lz_router_request_t *request);

// lz_router_request_destroy frees *request_p and sets it to NULL; any
// thread, even after its router and context are destroyed. NULL is a no-op.
void lz_router_request_destroy(lz_router_request_t **request_p);

// lz_router_reply answers request with value (NULL: null): same identity,
// same request id, same framing as it came (no extension frames); the
// first reply ends the request's span. Thread safe. Returns 0,
// LZ_EUNREACHABLE (the client is gone), LZ_ESERIALIZATION, LZ_EAGAIN.
int lz_router_reply(lz_router_t *router, const lz_router_request_t *request,
                    const lz_value_t *value);

// lz_router_send sends [identity, request_id, payload] to any client by
// its routing id, e.g. a push to a dealer that asked earlier. request_id
// NULL sends an empty id frame. Thread safe. LZ_EUNREACHABLE when no peer
// with that identity is connected; LZ_EINVAL for an empty identity.
int lz_router_send(lz_router_t *router, const void *identity, size_t identity_size,
                   const char *request_id, const lz_value_t *value);

#ifdef __cplusplus
}
#endif
#endif
