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

// A request handler. On success return 0 and store the reply in *reply
// (ownership passes to the server; leaving it NULL replies null). To fail,
// return a negative lz_error_t and optionally store a string value in
// *reply: it becomes the error reply's message. Handlers run on up to
// zmq.handler_max_concurrency threads at once; with 1 they run on the
// server's I/O thread (the fastest round trip, but a running handler then
// also delays "ping").
typedef int (*lz_server_handler_fn)(const lz_message_t *request, lz_value_t **reply, void *arg);

// lz_server_new creates a server (ROUTER; default side: bind). It answers
// REQ and DEALER peers alike, and the built-in action "ping" at once.
lz_server_t *lz_server_new(lz_context_t *ctx, const char *endpoints);
void lz_server_destroy(lz_server_t **server_p);
lz_node_t *lz_server_node(lz_server_t *server);

// lz_server_on routes requests of action to handler; lz_server_on_default
// takes unknown actions (without one they get an LZ_ENOTFOUND error reply).
// Register before lz_server_start.
int lz_server_on(lz_server_t *server, const char *action, lz_server_handler_fn handler, void *arg);
int lz_server_on_default(lz_server_t *server, lz_server_handler_fn handler, void *arg);

// lz_server_start serves on its own threads; lz_server_stop waits for
// running handlers, then stops; replies that find no room in their
// client's queue are then dropped (counted in outbound_dropped), not
// waited on. LZ_ESTATE if already started.
int lz_server_start(lz_server_t *server);
int lz_server_stop(lz_server_t *server);

// How a client with several endpoints picks one per request.
typedef enum lz_strategy {
    LZ_STRATEGY_ROUND_ROBIN = 0, // the next healthy endpoint in turn
    LZ_STRATEGY_RANDOM = 1,      // a random healthy endpoint
    LZ_STRATEGY_FAILOVER = 2     // the first healthy endpoint in the given order
} lz_strategy_t;

// lz_client_new creates a client (default side: connect) on one or more
// endpoints. Requests use zmq.request_timeout and zmq.request_retries.
lz_client_t *lz_client_new(lz_context_t *ctx, const char *endpoints);
void lz_client_destroy(lz_client_t **client_p);
lz_node_t *lz_client_node(lz_client_t *client);

int lz_client_set_strategy(lz_client_t *client, lz_strategy_t strategy);
// lz_client_set_retries: how many times a request is sent again after a
// timeout (0: never), with exponential backoff and jitter.
int lz_client_set_retries(lz_client_t *client, int retries);

// lz_client_request sends action with data (NULL: null) and waits up to
// timeout_ms (-1: zmq.request_timeout) in all, retries included. On success
// stores the decoded reply (owned by the caller) in *reply and returns 0.
// Returns LZ_ETIMEOUT, LZ_EREMOTE for an error reply (the reply object, with
// "message", is still stored in *reply), LZ_ESERIALIZATION, LZ_ECLOSED.
// Thread safe: many threads may have requests in flight at once. While it
// is the only request in flight on a single-endpoint client, the calling
// thread sends and receives it itself (no hand-off to the client's thread).
int lz_client_request(lz_client_t *client, const char *action, const lz_value_t *data,
                      lz_value_t **reply, int timeout_ms);

// A completion callback: status as lz_client_request returns it; reply is
// borrowed for the call (NULL on timeout). Runs on the client's thread.
typedef void (*lz_client_callback_fn)(int status, const lz_value_t *reply, void *arg);

// lz_client_request_async sends the request and returns at once; callback
// runs exactly once when it completes, fails or times out. Thread safe.
int lz_client_request_async(lz_client_t *client, const char *action, const lz_value_t *data,
                            int timeout_ms, lz_client_callback_fn callback, void *arg);

#ifdef __cplusplus
}
#endif
#endif
