/* liberzmq request/reply: an action-dispatching server and a client that
 * never gets stuck (timeouts, Lazy Pirate retries, failover).
 *
 * Wire (docs/protocol.md): a request is one frame, the Python LiberZMQ's
 * {"type": action, "data": ..., "timestamp": ..., "request_id": ...}; the
 * reply is the handler's result serialized as the whole frame, an error is
 * {"status": "error", "message": ..., "request_type": ..., "code": ...}. */
#ifndef LIBERZMQ_REQREP_H
#define LIBERZMQ_REQREP_H

#include "context.h"
#include "message.h"
#include "node.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_server lz_server_t;
typedef struct lz_client lz_client_t;
typedef struct lz_server_reply lz_server_reply_t;

// A request handler. On success return 0 and store the reply in *reply
// (ownership passes to the server; leaving it NULL replies null). To fail,
// return a negative lz_error_t and optionally store a string value in
// *reply: it becomes the error reply's message (each byte of it that
// starts no UTF-8 sequence sent as U+FFFD). To answer later, call
// lz_server_defer and return LZ_SERVER_DEFERRED. Handlers run on up to
// zmq.handler_max_concurrency threads at once; with 1 they run on the
// server's I/O thread (the fastest round trip, but a running handler then
// also delays "ping").
typedef int (*lz_server_handler_fn)(const lz_message_t *request, lz_value_t **reply, void *arg);

// What a handler returns after lz_server_defer: the server sends no reply
// now; the handle does later. Returned without a deferral, it is an
// LZ_ESTATE error reply.
#define LZ_SERVER_DEFERRED 1

// lz_server_new creates a server (ROUTER; default side: bind). It answers
// REQ and DEALER peers alike, and the built-in action "ping" at once.
lz_server_t *lz_server_new(lz_context_t *ctx, const char *endpoints);

// lz_server_destroy stops the server (lz_server_stop), frees *server_p and
// sets it to NULL. NULL is a no-op. From one of the server's own handlers
// it is refused (it would free what that handler's thread still uses):
// lz_last_error is LZ_ESTATE, the refusal is logged at ERROR, *server_p is
// left as it was and the server keeps working; destroy it from another
// thread (a handler may lz_server_stop it first).
void lz_server_destroy(lz_server_t **server_p);
lz_node_t *lz_server_node(lz_server_t *server);

// lz_server_on routes requests of action to handler; lz_server_on_default
// takes unknown actions (without one they get an LZ_ENOTFOUND error reply).
// Register before lz_server_start, or after lz_server_stop: after a stop
// one of its handlers asked for, a registration from another thread first
// waits for the server's threads, as lz_server_start does. LZ_ESTATE while
// the server runs; LZ_EINVAL, LZ_ENOMEM. Not thread safe.
int lz_server_on(lz_server_t *server, const char *action, lz_server_handler_fn handler, void *arg);
int lz_server_on_default(lz_server_t *server, lz_server_handler_fn handler, void *arg);

// lz_server_start serves on its own threads; lz_server_stop waits for
// running handlers, then stops; replies that find no room in their
// client's queue are then dropped (counted in outbound_dropped), not
// waited on. LZ_ESTATE if already started.
//
// From its own handler, lz_server_stop requests the stop, and returns
// LZ_OK at once: no request is read after, requests still queued get their
// LZ_ECLOSED error reply, the running handlers (the caller's included)
// finish and their replies go out, deferred replies not answered by then
// get theirs, and the server's threads end once the handlers have returned.
// The next lz_server_stop, lz_server_start or lz_server_destroy from
// another thread waits for those threads (a start then serves again).
int lz_server_start(lz_server_t *server);
int lz_server_stop(lz_server_t *server);

/* ---- answering later (docs/reqrep.md "Answering later") ------------------- */

// lz_server_defer, called by a handler with the request it was given,
// takes that request's reply out of the handler's hands: the handler then
// returns LZ_SERVER_DEFERRED (the server ignores any other return value
// and frees *reply) and its thread goes on to the next request, while the
// client waits. Until it returns the handler stays inside the request's
// trace (lz_trace_current, the parent of spans it starts), even once the
// reply has been sent. Any thread answers later with lz_server_reply_send or
// lz_server_reply_error, exactly once per handle: that sends the reply
// with the same encoding, metrics, hooks and span as a handler's own (the
// request's span ends when the reply goes out). Long polls and waiters
// thus hold no worker thread.
//
// request stays valid until the reply is sent: a handler that hands the
// handle to another thread must not touch request after that. Returns the
// handle (owned by the caller until finished) or NULL: LZ_EINVAL (request
// NULL), LZ_ESTATE (not inside the handler of request, on its thread, or
// deferred already: also once the reply was sent), LZ_ENOMEM.
//
// The server keeps every handle not yet answered: lz_server_stop (and so
// lz_server_destroy) answers each with an LZ_ECLOSED error reply ("server
// stopping"), as it does queued requests, waiting for one being sent at
// that moment. The handle itself stays valid, and still must be finished:
// lz_server_reply_send/lz_server_reply_error then send nothing, free it
// and return LZ_ECLOSED, also after the server was destroyed.
lz_server_reply_t *lz_server_defer(const lz_message_t *request);

// lz_server_reply_send answers a deferred request with value (borrowed;
// NULL: null), frees the handle and sets *reply_p to NULL. Returns 0 only
// once the reply was handed to the socket. Every other return means the
// client did not get this answer, so a caller can take back what it
// answered: the lock service gives an undeliverable grant to the next
// waiter (a client behind a proxy looks connected while the proxy is).
// The handle is finished all the same:
//   LZ_EUNREACHABLE  the client's connection has gone meanwhile: the reply
//                    is dropped (counted in outbound_dropped, as for any
//                    reply);
//   LZ_EAGAIN        the client's queue had no room (it reads no replies)
//                    within zmq.send_timeout, or at once while the server
//                    is stopping: the reply is dropped (counted in
//                    outbound_dropped and backpressure_events);
//   LZ_ECLOSED       the server's stop answered it first (its LZ_ECLOSED
//                    error reply went), or the socket was closed under it
//                    (the libzmq context shut down): nothing went;
//   LZ_ENOMEM        memory ran out: the reply could not be made (an error
//                    reply went instead) or not copied for the socket
//                    (nothing went: the client times out);
//   LZ_ESERIALIZATION neither the reply nor an error reply encodes with
//                    the server's serializer (raw, or a custom codec that
//                    refuses them): the client got an empty reply;
//   LZ_EINVAL        reply_p or *reply_p is NULL;
//   LZ_EZMQ          (or the code of libzmq's errno) libzmq refused the
//                    send otherwise (logged): nothing went.
// A value that does not encode becomes an error reply (counted in errors)
// and 0 is returned (when that error reply encodes). Like a handler's
// reply, the send waits for room up to zmq.send_timeout.
// Thread safe: any thread, any number of handles at once.
int lz_server_reply_send(lz_server_reply_t **reply_p, const lz_value_t *value);

// lz_server_reply_closed: whether the server's stop has answered the
// deferred request (its LZ_ECLOSED error reply), so that finishing the
// handle would send nothing (true for NULL). A holder of many (waiters of
// a long poll) drops those at once instead of at their turn. Thread safe.
bool lz_server_reply_closed(lz_server_reply_t *reply);

// lz_server_reply_error answers a deferred request with the error reply a
// handler returning code (a negative lz_error_t; others: LZ_EREMOTE)
// gets, message (NULL: the code's own words; bytes that are not UTF-8 sent
// as U+FFFD) as its "message"; counted
// in errors. A message the serializer refuses (a custom codec may) gives
// way to the code's own words. Frees the handle as lz_server_reply_send,
// same returns (0 only once that error reply was handed to the socket).
int lz_server_reply_error(lz_server_reply_t **reply_p, int code, const char *message);

// How a client with several endpoints picks one per request.
typedef enum lz_strategy {
    LZ_STRATEGY_ROUND_ROBIN = 0, // the next healthy endpoint in turn
    LZ_STRATEGY_RANDOM = 1,      // a random healthy endpoint
    LZ_STRATEGY_FAILOVER = 2     // the first healthy endpoint in the given order
} lz_strategy_t;

// lz_client_new creates a client (default side: connect) on one or more
// endpoints. Requests use zmq.request_timeout and zmq.request_retries.
// The endpoints are all given here: none can be added later (lz_node_connect
// and lz_node_bind are LZ_ESTATE on its node), so NULL, "" or a list of
// only commas is LZ_EINVAL ("no endpoint"), as is a NULL ctx.
lz_client_t *lz_client_new(lz_context_t *ctx, const char *endpoints);

// lz_client_destroy ends every request still in flight with LZ_ECLOSED
// (callbacks run, waiting callers wake), waits until the threads inside
// lz_client_request or lz_client_request_async have returned, then frees
// *client_p and sets it to NULL. Requests that began before it on other
// threads are thus safe; one that begins once it has (or is called on the
// freed client) is not. NULL is a no-op. From one of the client's own
// completion callbacks it is refused (it would wait for the thread it runs
// on, then free what that thread still uses): lz_last_error is LZ_ESTATE,
// the refusal is logged at ERROR, *client_p is left as it was and the
// client keeps working; destroy it from another thread.
void lz_client_destroy(lz_client_t **client_p);
lz_node_t *lz_client_node(lz_client_t *client);

int lz_client_set_strategy(lz_client_t *client, lz_strategy_t strategy);

// The most retries a client makes per request: zmq.request_retries' bound.
#define LZ_CLIENT_RETRIES_MAX 100

// lz_client_set_retries: how many times a request is sent again after a
// timeout (0: never, up to LZ_CLIENT_RETRIES_MAX), with exponential
// backoff and jitter; for requests made afterwards. LZ_EINVAL for a NULL
// client or a count out of range. Thread safe.
int lz_client_set_retries(lz_client_t *client, int retries);

// lz_client_request sends action with data (NULL: null) and waits up to
// timeout_ms (-1: zmq.request_timeout) in all, retries included. On success
// stores the decoded reply (owned by the caller) in *reply and returns 0.
// Returns LZ_ETIMEOUT, LZ_EREMOTE for an error reply (the reply object, with
// "message", is still stored in *reply), LZ_ESERIALIZATION, LZ_ECLOSED,
// LZ_ENOMEM: no memory to encode or send the request (at once: no retry,
// nothing held against the endpoint, the client usable) or to read its reply;
// LZ_EINVAL for a NULL client or action or a timeout_ms below -1 (error.h);
// LZ_ESTATE when called from one of
// the client's completion callbacks (it would wait for itself); a send
// hook's refusal (lz_node_on_send: its code, LZ_EVALIDATION for a positive
// one), at once, nothing sent.
// Thread safe: many threads may have requests in flight at once. While it
// is the only request in flight on a single-endpoint client, the calling
// thread sends and receives it itself (no hand-off to the client's thread).
int lz_client_request(lz_client_t *client, const char *action, const lz_value_t *data,
                      lz_value_t **reply, int timeout_ms);

// A completion callback: status as lz_client_request returns it; reply is
// borrowed for the call (NULL on timeout). Runs on the client's thread, or
// on the thread of a synchronous caller reading the client's socket for its
// own request at that moment (see docs/reqrep.md, "Direct requests").
// From it, lz_client_request (it would wait for itself) and
// lz_client_destroy are refused, LZ_ESTATE; lz_client_request_async is
// fine.
typedef void (*lz_client_callback_fn)(int status, const lz_value_t *reply, void *arg);

// lz_client_request_async sends the request and returns at once; callback
// runs exactly once when it completes, fails or times out. A failure to
// send it (the codes of lz_client_request) is returned instead, the
// callback not run. Thread safe.
int lz_client_request_async(lz_client_t *client, const char *action, const lz_value_t *data,
                            int timeout_ms, lz_client_callback_fn callback, void *arg);

#ifdef __cplusplus
}
#endif
#endif
