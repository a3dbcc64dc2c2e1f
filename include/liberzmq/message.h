/* liberzmq received messages: what a handler or a receive call gets.
 *
 * A message handed to a handler is borrowed: valid during the call only.
 * One returned by a *_recv function is owned: free it with
 * lz_message_destroy. Reading a message from several threads is safe. */
#ifndef LIBERZMQ_MESSAGE_H
#define LIBERZMQ_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_message lz_message_t;

// A message handler, for subscribers and pullers. Return 0 when handled; a
// non-zero return counts in the node's errors metric and is logged. The
// message is borrowed for the call. Handlers may run on several threads at
// once (up to zmq.handler_max_concurrency): arg must be safe for that.
typedef int (*lz_handler_fn)(const lz_message_t *msg, void *arg);

// lz_message_destroy frees an owned message and sets *msg_p to NULL.
void lz_message_destroy(lz_message_t **msg_p);

// lz_message_topic: the topic (pub/sub), the task type (push/pull) or the
// action (request/reply). Never NULL ("" when absent; "unknown" for a task
// that was not an object).
const char *lz_message_topic(const lz_message_t *msg);
const char *lz_message_type(const lz_message_t *msg); // same field, for tasks and requests

// lz_message_topic_bytes: the topic exactly as received, *size set to its
// length (lz_message_topic's bytes, unless a subscriber took a binary topic
// with LZ_SUB_BINARY_TOPIC: then it may hold any bytes, NUL too), with a
// NUL after them. Borrowed from the message, like lz_message_topic. Never
// NULL; size may be NULL.
const void *lz_message_topic_bytes(const lz_message_t *msg, size_t *size);

// lz_message_has_topic is false only for a one-frame pub/sub message that
// a subscriber took with LZ_SUB_SINGLE_FRAME (its topic reads ""), and for
// NULL; true for every other message, so it tells such a message from one
// whose topic frame was empty.
bool lz_message_has_topic(const lz_message_t *msg);

// lz_message_value: the decoded data (for tasks and requests the envelope's
// "data" member; for pub/sub the whole payload). Never NULL (a null value
// when the data is absent). Borrowed from the message and read-only,
// whatever the codec: it lives in the message's own memory until
// lz_message_destroy (setters on it or on any value in it fail with
// LZ_EINVAL, lz_value_destroy on them does nothing; lz_value_copy makes a
// tree of your own).
const lz_value_t *lz_message_value(const lz_message_t *msg);

// lz_message_payload: the payload frame exactly as received.
const void *lz_message_payload(const lz_message_t *msg, size_t *size);

// lz_message_peer_key: the Z85 CURVE public key of the client that sent
// msg, as the context's ZAP handler admitted it (docs/security.md), so a
// handler can decide per client. NULL when msg did not come through a CURVE
// server node (PLAIN, GSSAPI, plain or inproc peers, messages made
// locally): a "User-Id" a peer names itself in its handshake, which libzmq
// passes on where no ZAP reply set one, counts for nothing. Borrowed from
// the message.
const char *lz_message_peer_key(const lz_message_t *msg);

// lz_message_peer_user: who the context's ZAP handler admitted as the
// sender of msg (libzmq's "User-Id" property): the user name a PLAIN client
// logged in with on a PLAIN server node, the Kerberos principal
// ("alice@EXAMPLE.COM") of a client of a GSSAPI server node, or the key
// lz_message_peer_key gives on a CURVE server node. NULL for peers that
// were not authenticated (a "User-Id" of the peer's own naming is not
// believed) and for messages made locally. Borrowed from the message.
const char *lz_message_peer_user(const lz_message_t *msg);

// lz_message_envelope: the decoded envelope object of a task or request
// (type, request_id / task_id, timestamp, priority and any extension keys
// such as "message_id" or "traceparent"), without its "data" member, which
// is lz_message_value. For a pub/sub message (or a router's request) that
// came with a well-formed traceparent extension frame, {"traceparent":
// ...} (docs/protocol.md section 2). NULL for other pub/sub messages, raw
// payloads and plain-peer tasks. Read-only, as lz_message_value.
const lz_value_t *lz_message_envelope(const lz_message_t *msg);

// Envelope fields, when present: task or request id ("" if absent),
// priority (0 if absent), timestamp in seconds since the epoch (0 if absent).
const char *lz_message_id(const lz_message_t *msg);
int64_t lz_message_priority(const lz_message_t *msg);
double lz_message_timestamp(const lz_message_t *msg);

// lz_message_attempt: which run of its handler this is, 1 the first; a
// puller with retries (lz_pull_set_retry) runs a failed task again, as
// attempt 2, 3... 0 for a NULL msg.
int lz_message_attempt(const lz_message_t *msg);

#ifdef __cplusplus
}
#endif
#endif
