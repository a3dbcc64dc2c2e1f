/* liberzmq push/pull: tasks spread round-robin over workers.
 *
 * Wire (docs/protocol.md): one frame per task. With a structured serializer
 * (json, the default, or msgpack) it is the Python LiberZMQ's object
 * {"type", "data", "priority", "timestamp", "task_id"}; with an opaque one
 * (raw) it is the payload bytes alone, like plain ZeroMQ. */
#ifndef LIBERZMQ_PUSHPULL_H
#define LIBERZMQ_PUSHPULL_H

#include <stddef.h>

#include "context.h"
#include "message.h"
#include "node.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_push lz_push_t;
typedef struct lz_pull lz_pull_t;

// lz_push_new creates a pusher (default side: connect).
lz_push_t *lz_push_new(lz_context_t *ctx, const char *endpoints);
void lz_push_destroy(lz_push_t **push_p);
lz_node_t *lz_push_node(lz_push_t *push);

// lz_push_send sends one task of the given type (NULL: "default") with data
// (NULL: null) and priority (carried for the worker; libzmq itself does
// not reorder). A fresh task_id (UUID v4) and the timestamp are added.
// Thread safe. Errors as lz_pub_publish; LZ_EVALIDATION when the node's
// serializer is opaque and data is not bytes or a string.
int lz_push_send(lz_push_t *push, const char *type, const lz_value_t *data, int priority);

// lz_push_send_bytes sends data as one frame, untouched. Thread safe.
int lz_push_send_bytes(lz_push_t *push, const void *data, size_t size);

// lz_pull_new creates a puller (default side: bind).
lz_pull_t *lz_pull_new(lz_context_t *ctx, const char *endpoints);
void lz_pull_destroy(lz_pull_t **pull_p);
lz_node_t *lz_pull_node(lz_pull_t *pull);

// lz_pull_on routes tasks of the given type to handler; lz_pull_on_default
// takes the rest (including "unknown", a task that was not an object).
// Register before lz_pull_start. A task nobody handles is counted in
// inbound_dropped and logged.
int lz_pull_on(lz_pull_t *pull, const char *type, lz_handler_fn handler, void *arg);
int lz_pull_on_default(lz_pull_t *pull, lz_handler_fn handler, void *arg);

// lz_pull_start runs a pool of workers threads (0: zmq.handler_max_concurrency)
// fed by one receiver. LZ_ESTATE if already started.
int lz_pull_start(lz_pull_t *pull, int workers);
// lz_pull_stop stops receiving, waits for running handlers and joins the
// threads; queued tasks are dropped and counted. Idempotent: a puller never
// started, or NULL, is LZ_OK.
int lz_pull_stop(lz_pull_t *pull);

// Caller-driven use, as for subscribers (see pubsub.h; lz_pull_recv, like
// lz_sub_recv, keeps the received frame without copying it).
int lz_pull_fd(lz_pull_t *pull, int *fd);
int lz_pull_dispatch(lz_pull_t *pull, int timeout_ms);
lz_message_t *lz_pull_recv(lz_pull_t *pull, int timeout_ms);

// lz_pull_recv_bytes is lz_pull_recv without a message: the counterpart of
// lz_push_send_bytes, for callers that want the bytes in their own buffer
// and no allocation per task (for small frames: from about 4 KiB on the
// copy costs more than lz_pull_recv's message). The next task's frame is
// copied into data untouched by the serializer (at most *size bytes), then
// *size is set to the frame's full length: more than was given says it was
// cut short, as zmq_recv says it. data stays the caller's. A message of more
// than one frame is not a task: counted and skipped. Returns 0, LZ_ETIMEOUT,
// LZ_ECLOSED, LZ_ESTATE (started), or LZ_EINVAL (NULL pull or size, or data
// NULL with *size above 0). Thread safe like lz_pull_recv.
int lz_pull_recv_bytes(lz_pull_t *pull, void *data, size_t *size, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
