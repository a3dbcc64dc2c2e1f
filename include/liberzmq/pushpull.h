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
#include "pubsub.h"
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
// lz_pull_destroy stops the puller if started, frees *pull_p, sets it NULL.
// As lz_sub_destroy (pubsub.h): threads waiting in lz_pull_recv,
// lz_pull_recv_bytes or lz_pull_dispatch return LZ_ECLOSED and destroy
// waits for them to leave; from one of its own handlers, receive hooks
// or dead-letter function it is refused: logged at ERROR, LZ_ESTATE
// ("lz_pull_destroy: called from its own handler or hook; ..."), *pull_p
// kept.
void lz_pull_destroy(lz_pull_t **pull_p);
lz_node_t *lz_pull_node(lz_pull_t *pull);

// lz_pull_on routes tasks of the given type to handler; lz_pull_on_default
// takes the rest (including "unknown", a task that was not an object).
// Register before lz_pull_start (LZ_ESTATE while started), or, for a puller
// the caller drives, between lz_pull_dispatch calls, never during one:
// during one (on another thread, or from its handler) LZ_ESTATE ("called
// while a dispatch runs; register handlers between dispatch calls"). After
// a stop asked from a handler, this and the other calls set before the
// start (retries, dead letters) first wait, from another thread, for that
// stop's threads to end, as lz_pull_start does. These calls, lz_pull_start
// and lz_pull_stop are not thread safe with each other: make them from one
// thread at a time. A second
// registration of a type replaces the first. A task waiting for a retry
// runs the handler registered for its type when the retry comes due. A task
// nobody handles is counted in inbound_dropped and logged.
int lz_pull_on(lz_pull_t *pull, const char *type, lz_handler_fn handler, void *arg);
int lz_pull_on_default(lz_pull_t *pull, lz_handler_fn handler, void *arg);

// Retries and dead letters (docs/pushpull.md). A handler fails by
// returning non-zero; lz_set_error (error.h) in it says why.
//
// lz_pull_set_retry runs a task whose handler failed again, up to
// max_retries more times (0..100), the n-th retry after n * delay_ms
// (linear backoff, as the seeds' RetryablePuller). The task waits in the
// puller, not in a handler thread, so other tasks go on meanwhile; its
// handler sees which run it is with lz_message_attempt. Defaults:
// tasks.max_retries (0: a failure is final) and tasks.retry_delay (1000).
// At most 10000 tasks wait at once; a failure beyond that is final. Set
// before lz_pull_start and between lz_pull_dispatch calls: LZ_ESTATE once
// started or while a dispatch runs (on any thread), LZ_EINVAL for a NULL pull or a
// count or delay out of range. Retries run on the puller's workers (one,
// when lz_pull_start asked for one), or in lz_pull_dispatch, which also
// runs the retries that came due; tasks taken with lz_pull_recv are the
// caller's and never retried.
int lz_pull_set_retry(lz_pull_t *pull, int max_retries, int delay_ms);

// lz_dead_letter_fn receives a task whose handler failed for the last time
// (after its retries), or that was waiting for a retry when the puller
// stopped. letter is the dead-letter record, as lz_pull_set_dead_letter
// publishes it:
//   {"original_task": {the task's envelope with its "data"}, "final_error":
//    "handler for 'resize' failed: <lz_set_error's detail>", "retry_count":
//    <runs that failed>, "failed_at": <seconds since the epoch>}
// (a task without envelope, raw or from a plain peer, has original_task
// {"type", "data"}). letter and task are borrowed for the call. Called on
// the thread that ran the handler, or the one stopping the puller.
typedef void (*lz_dead_letter_fn)(const lz_value_t *letter, const lz_message_t *task, void *arg);

// lz_pull_on_dead_letter sets the function (NULL: none) that receives dead
// letters; arg is passed along, not owned. Each one is counted in the
// dead_letters metric. Without a function or publisher a final failure is
// counted in errors and logged only. Set before lz_pull_start and between
// lz_pull_dispatch calls, as lz_pull_set_retry (LZ_ESTATE).
int lz_pull_on_dead_letter(lz_pull_t *pull, lz_dead_letter_fn fn, void *arg);

// lz_pull_set_dead_letter publishes each dead letter on pub under topic
// (NULL: "dead_letter", the seeds' topic) with pub's serializer, so any
// subscriber (lz sub, a Python Subscriber) can collect them. pub is
// borrowed: it must outlive the puller (or be unset with NULL first). A
// publish that fails is logged and counted on pub. Replaces any function
// set with lz_pull_on_dead_letter. Set as lz_pull_on_dead_letter (LZ_ESTATE).
// LZ_EINVAL for a NULL pull, or a topic that is not UTF-8 text (which
// lz_pub_publish refuses).
int lz_pull_set_dead_letter(lz_pull_t *pull, lz_pub_t *pub, const char *topic);

// lz_pull_start runs a pool of workers threads (0: zmq.handler_max_concurrency)
// fed by one receiver. LZ_ESTATE if already started, or from one of its
// own handlers or receive hooks; after a stop asked from a handler it first waits for that
// stop's threads to end.
int lz_pull_start(lz_pull_t *pull, int workers);
// lz_pull_stop stops receiving, waits for running handlers and joins the
// threads; queued tasks are dropped and counted, except retries: a task
// waiting for its retry, or whose retry came due but had not run, goes to
// the dead-letter sink (if any). Idempotent: a puller never started, or
// NULL, is LZ_OK.
// From its own handler (or dead-letter function): requests the stop, and
// returns at once, as lz_sub_stop does (pubsub.h): no task starts after
// the running handlers return, and the next stop, start or destroy from
// another thread joins the threads; in lz_pull_dispatch, it ends that call.
int lz_pull_stop(lz_pull_t *pull);

// Caller-driven use, as for subscribers (see pubsub.h; lz_pull_recv, like
// lz_sub_recv, keeps the received frame without copying it). A receive or
// lz_pull_dispatch waiting on another thread goes on across lz_pull_start
// and lz_pull_stop, its timeout counting (while a stop is under way it
// waits for the stop to finish: a stop asked from a handler, until another
// thread's stop, start or destroy joins its threads); only lz_pull_destroy
// ends it, with LZ_ECLOSED. lz_pull_dispatch is LZ_ESTATE while started, or while
// lz_pull_on or a retry or dead-letter setter runs on another thread.
// lz_pull_fd's descriptor is the socket's (ZMQ_FD): a retry coming due
// does not make it readable. A loop polling it with retries set must
// poll no longer than lz_pull_next_retry_ms says, then call
// lz_pull_dispatch, which runs the retries due:
//   int ms; lz_pull_next_retry_ms(pull, &ms);
//   poll(&(struct pollfd){fd, POLLIN, 0}, 1, ms);   // (or less)
//   while (lz_pull_dispatch(pull, 0) > 0) {}
int lz_pull_fd(lz_pull_t *pull, int *fd);
int lz_pull_dispatch(lz_pull_t *pull, int timeout_ms);
lz_message_t *lz_pull_recv(lz_pull_t *pull, int timeout_ms);

// lz_pull_next_retry_ms sets *ms to how long until the earliest task
// waiting for its retry is due: 0 if one is due now, -1 if none waits (nor
// while started: the puller's own threads run retries). It may say a
// millisecond early, never late. Thread safe. LZ_EINVAL for a NULL pull or
// ms.
int lz_pull_next_retry_ms(lz_pull_t *pull, int *ms);

// lz_pull_recv_bytes is lz_pull_recv without a message: the counterpart of
// lz_push_send_bytes, for callers that want the bytes in their own buffer
// and no allocation per task (for small frames: from about 4 KiB on the
// copy costs more than lz_pull_recv's message). The next task's frame is
// copied into data untouched by the serializer (at most *size bytes), then
// *size is set to the frame's full length: more than was given says it was
// cut short, as zmq_recv says it. data stays the caller's. A message of more
// than one frame is not a task: counted and skipped. Returns 0, LZ_ETIMEOUT,
// LZ_ECLOSED, LZ_ESTATE (started), or LZ_EINVAL (NULL pull or size, data
// NULL with *size above 0, or timeout_ms below -1). Thread safe like
// lz_pull_recv.
int lz_pull_recv_bytes(lz_pull_t *pull, void *data, size_t *size, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
