/* liberzmq publish/subscribe.
 *
 * Wire (docs/protocol.md): [topic, payload] where payload is the serialized
 * value itself, exactly what the Python LiberZMQ and plain pyzmq peers send
 * and expect. Subscriptions are libzmq prefix filters on the topic frame. */
#ifndef LIBERZMQ_PUBSUB_H
#define LIBERZMQ_PUBSUB_H

#include <stddef.h>

#include "context.h"
#include "message.h"
#include "node.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_pub lz_pub_t;
typedef struct lz_sub lz_sub_t;

// lz_pub_new creates a publisher on ctx with the given endpoints (see
// node.h; default side: bind). NULL on failure with the detail set.
lz_pub_t *lz_pub_new(lz_context_t *ctx, const char *endpoints);

// lz_pub_destroy closes the socket (bounded by zmq.linger), frees *pub_p and
// sets it to NULL. Not concurrent with other calls on the same publisher.
// Note: libzmq's linger does not cover messages a slow subscriber has not
// yet taken from the publisher's queue (libzmq issue #4660); a publisher
// that must deliver its last messages should give subscribers time (or an
// acknowledgement) before destroying.
// When a publisher and its subscriber live in one process, stop publishing
// and let the subscriber take what is queued before destroying either:
// libzmq 4.3.4 aborts (session_base.cpp:260, as in libzmq issue #3442) when
// a publisher is closed while its subscriber's connection drops and the
// publisher's session is half way through a [topic, payload] message.
void lz_pub_destroy(lz_pub_t **pub_p);

lz_node_t *lz_pub_node(lz_pub_t *pub);

// lz_pub_publish encodes value with the node's serializer and sends
// [topic, payload]. With tracing.enabled it records a PRODUCER span named
// topic (trace.h) and, unless tracing.extension_frames is off, sends
// [topic, payload, "traceparent=..."] (docs/protocol.md section 2). Thread
// safe. Returns 0, LZ_ESERIALIZATION (nothing sent), LZ_EAGAIN when the
// high water mark holds it past zmq.send_timeout (counted in
// outbound_dropped and backpressure_events), LZ_EINVAL for a NULL argument
// or a topic that is not UTF-8 text ("pub: topic is not UTF-8 text"),
// which every liberzmq subscriber would drop (docs/protocol.md section 2):
// nothing is sent, no send hook runs and no span is recorded.
int lz_pub_publish(lz_pub_t *pub, const char *topic, const lz_value_t *value);

// lz_pub_publish_bytes sends [topic, data] with data as it is, whatever the
// serializer, traced as lz_pub_publish is. Thread safe; same errors.
int lz_pub_publish_bytes(lz_pub_t *pub, const char *topic, const void *data, size_t size);

// lz_sub_new creates a subscriber (default side: connect). It receives
// nothing until it subscribes (lz_sub_subscribe or lz_sub_on).
lz_sub_t *lz_sub_new(lz_context_t *ctx, const char *endpoints);

// lz_sub_destroy stops the subscriber if started, frees *sub_p, sets it NULL.
// Other threads may be waiting in lz_sub_recv, lz_sub_recv_bytes or
// lz_sub_dispatch meanwhile: their calls end with LZ_ECLOSED (a dispatch
// after the handler it runs returns) and destroy returns once they have
// left; they must not call it again. No other call may run concurrently.
// From one of its own handlers (on its threads or in lz_sub_dispatch) or
// receive hooks (node.h) it is refused, as it would free what the calling
// thread still uses: it logs at ERROR, sets LZ_ESTATE ("lz_sub_destroy:
// called from its own handler or hook; destroy it from another thread")
// and leaves *sub_p as it was; the subscriber keeps working.
void lz_sub_destroy(lz_sub_t **sub_p);

lz_node_t *lz_sub_node(lz_sub_t *sub);

// lz_sub_subscribe / lz_sub_unsubscribe add or drop a topic prefix filter
// ("" is everything). libzmq counts them per prefix: a prefix subscribed
// twice (by lz_sub_subscribe, or by it and lz_sub_on) stays until it is
// unsubscribed twice, and unsubscribing a prefix not subscribed does
// nothing (LZ_OK). Thread safe, and prompt while a receive waits on
// another thread (a waiting receive does not hold the socket).
int lz_sub_subscribe(lz_sub_t *sub, const char *prefix);
int lz_sub_unsubscribe(lz_sub_t *sub, const char *prefix);

// What a subscriber takes beyond liberzmq's own [topic, payload] with a
// UTF-8 topic: forms plain ZeroMQ publishers send. Bits for lz_sub_accept.
typedef enum lz_sub_accepts {
    // One frame that starts with its topic (the ZeroMQ guide's weather
    // server: "10001 23 45"; subscriptions still match its start), taken
    // whole as the payload, without a topic: lz_message_topic "" and
    // lz_message_has_topic false; lz_sub_recv_bytes gives the topic ""
    // (size 0), which it cannot tell from an empty topic frame. Handlers
    // route it as the topic "" (a handler on "", else the default one).
    LZ_SUB_SINGLE_FRAME = 1 << 0,
    // A topic frame of any bytes, not only UTF-8 text without NUL (binary
    // ids, say): lz_message_topic_bytes gives it whole, lz_message_topic
    // as a C string reads it (to its first NUL), and handlers route on
    // that; lz_sub_recv_bytes copies it whole and reports its full size.
    LZ_SUB_BINARY_TOPIC = 1 << 1,
} lz_sub_accepts_t;

// lz_sub_accept sets which of those forms the subscriber takes (0, the
// default: none; any other message is malformed: counted in dropped,
// logged, skipped). Thread safe; messages already being decoded may still
// go the old way. LZ_EINVAL for a NULL sub or an unknown bit. Messages of
// three or more frames are [topic, payload, extension frames] either way.
int lz_sub_accept(lz_sub_t *sub, unsigned accepts);

// lz_sub_on subscribes to prefix (as one lz_sub_subscribe) and routes its
// messages to handler; the longest matching registered prefix wins. A
// second lz_sub_on for the same prefix replaces its handler and arg and
// does not subscribe again: one lz_sub_unsubscribe drops the prefix.
// lz_sub_on_default subscribes to nothing: it takes the messages that other
// subscriptions bring in and no handler matches; a second one replaces the
// first. Register before lz_sub_start (LZ_ESTATE while started), or, for a
// subscriber the caller drives, between lz_sub_dispatch calls: during one
// (on another thread, or from its handler) they change nothing and return
// LZ_ESTATE ("called while a dispatch runs; register handlers between
// dispatch calls"), and an lz_sub_dispatch begun while one of them runs on
// another thread returns LZ_ESTATE. After a stop asked from a handler, a
// registration from another thread first waits for that stop's threads to
// end. Not thread safe with each other nor with lz_sub_start and
// lz_sub_stop: make those calls from one thread at a time.
int lz_sub_on(lz_sub_t *sub, const char *prefix, lz_handler_fn handler, void *arg);
int lz_sub_on_default(lz_sub_t *sub, lz_handler_fn handler, void *arg);

// lz_sub_start runs the subscriber on its own threads: one receiver plus up
// to zmq.handler_max_concurrency handler workers (with 1, handlers run on
// the receiver thread in arrival order). After a stop asked from a handler
// (lz_sub_stop) it first waits for that stop's threads to end. LZ_ESTATE
// if already started, or from one of its own handlers or receive hooks.
int lz_sub_start(lz_sub_t *sub);

// lz_sub_stop stops receiving, waits for running handlers and joins the
// threads. Messages still queued are dropped and counted. Idempotent: a
// subscriber never started, or NULL, is LZ_OK.
// From its own handler: requests the stop, and returns at once (LZ_OK):
// no handler starts after the running ones return, its threads then end,
// and the next lz_sub_stop, lz_sub_start or lz_sub_destroy from another
// thread waits for them. In a handler lz_sub_dispatch runs, it ends that
// lz_sub_dispatch once the handler returns; messages not yet dispatched
// wait for the next call.
int lz_sub_stop(lz_sub_t *sub);

// Driving from the caller's loop instead of lz_sub_start:
// lz_sub_fd gives a file descriptor that becomes readable when messages
// may be waiting (libzmq's ZMQ_FD: edge-triggered, so after it fires call
// lz_sub_dispatch until it returns 0). lz_sub_dispatch receives and
// dispatches every waiting message on the calling thread, waiting up to
// timeout_ms (0: do not wait, -1: forever; below -1: LZ_EINVAL, error.h)
// for the first; it returns how many it dispatched, or a negative
// lz_error_t. A receive or
// lz_sub_dispatch waiting on another thread goes on across lz_sub_start and
// lz_sub_stop, its timeout counting (while a stop is under way it waits for
// it to finish); only lz_sub_destroy ends it, with LZ_ECLOSED.
int lz_sub_fd(lz_sub_t *sub, int *fd);
int lz_sub_dispatch(lz_sub_t *sub, int timeout_ms);

// lz_sub_recv returns the next good message, owned by the caller, waiting
// up to timeout_ms (-1: forever). NULL with LZ_ETIMEOUT, LZ_ECLOSED (the
// subscriber is being destroyed: lz_sub_destroy) or LZ_ESTATE (started:
// handlers own the messages) or LZ_EINVAL (NULL sub, timeout_ms below
// -1). Malformed messages are counted and skipped,
// never returned. The message keeps the payload frame as libzmq received
// it: lz_message_payload does not copy it, nor does the "raw" codec's
// value, so for large payloads this beats lz_sub_recv_bytes, which copies
// (from about 4 KiB on; bench/contender_liberzmq.c). A
// traceparent extension frame the publisher sent is in the message's
// lz_message_envelope, as a pulled task's is.
lz_message_t *lz_sub_recv(lz_sub_t *sub, int timeout_ms);

// lz_sub_recv_bytes is lz_sub_recv without a message: the counterpart of
// lz_pub_publish_bytes, for callers that want the bytes in their own
// buffers and no allocation per message. The next good message's topic is
// copied into topic as a C string (at most *topic_size - 1 bytes, then a
// NUL) and its payload into data (at most *size bytes), untouched by the
// serializer; then *topic_size and *size are set to the topic's and the
// payload's full lengths, so a value at or past what was given (topic:
// *topic_size or more; payload: more than *size) says that part was cut
// short, as zmq_recv says it. Both buffers stay the caller's. The same
// messages are good as for lz_sub_recv: a topic must be UTF-8 with no NUL;
// others are counted and skipped. Returns 0, LZ_ETIMEOUT, LZ_ECLOSED,
// LZ_ESTATE (started), or LZ_EINVAL (NULL sub, topic, topic_size or size,
// *topic_size 0, data NULL with *size above 0, or timeout_ms below -1). Thread safe like
// lz_sub_recv: concurrent callers each get whole messages.
int lz_sub_recv_bytes(lz_sub_t *sub, char *topic, size_t *topic_size, void *data, size_t *size, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
