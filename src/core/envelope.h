/* Internal: the frames on the wire for every pattern (docs/protocol.md),
 * encoded and decoded in one place. Decoders build lz_message_t. */
#ifndef LZ_CORE_ENVELOPE_H
#define LZ_CORE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#include "liberzmq/error.h"
#include "liberzmq/message.h"
#include "liberzmq/serializer.h"
#include "liberzmq/trace.h"
#include "liberzmq/value.h"
#include "serial/utf8.h"
#include "serial/value.h"

// The first block of a message's arena: a task envelope with a few fields
// of data takes about 600 bytes, a larger document chains more blocks.
#define LZ_MESSAGE_ARENA 1024

// What a message holds. payload is the frame kept alive, so raw payloads
// are read without a copy. value and envelope are each read-only to
// callers, whose lz_value_destroy leaves them alone: held, in value_slot
// (raw) or in arena (json, "data" lifted out of the envelope), or a tree a
// decoder built on the heap, frozen (msgpack, custom codecs, JSON the yajl
// fallback reads), which lz_message_destroy frees (lz__value_release).
// (An envelope extension.c builds is the message's own, not frozen.)
struct lz_message {
    char *topic;              // topic, task type or action; never NULL
    size_t topic_size;        // strlen(topic), unless a binary topic holds NUL
    bool topicless;           // a one-frame pub/sub message: no topic frame
    char topic_inline[48];    // topic points here when it fits (no allocation)
    lz_value_t *value;        // decoded data; never NULL after decode
    lz_value_t *envelope;     // decoded envelope object (tasks, requests) or NULL
    const char *id;           // task_id / request_id inside envelope, or ""
    int64_t priority;
    double timestamp;
    int retries;              // times a puller ran it again after its handler failed
    zmq_msg_t payload;        // the payload frame, moved from the receive
    bool has_payload;
    lz_value_slot_t value_slot; // holds value for raw payloads (no allocation)
    // A JSON payload's tree, released at once with the message. Its first
    // block travels with the message through message.c's per-thread list,
    // so a small document allocates nothing.
    lz_arena_t arena;
    _Alignas(8) unsigned char arena_block[LZ_MESSAGE_ARENA];
};

// lz__message_new returns an empty message (topic "", value null).
lz_message_t *lz__message_new(void);

// lz__message_take_payload moves frame, a message just received, into
// msg's payload (msg has none yet) and leaves frame empty but initialised.
void lz__message_take_payload(lz_message_t *msg, zmq_msg_t *frame);

// lz__message_decode makes frame, a whole message's only payload (moved
// in; size is its length), a message with the value serializer decodes
// from it; a raw value borrows the frame, which the message keeps. NULL
// with the serializer's error (or LZ_ENOMEM) when it fails.
lz_message_t *lz__message_decode(const lz_serializer_t *serializer, zmq_msg_t *frame, size_t size);

// lz__uuid4 writes a random UUID v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx")
// into out (37 bytes).
void lz__uuid4(char out[37]);

// lz__uuid4_secret is lz__uuid4 with every bit read from getrandom(2): for
// ids that are also credentials (a lock's owner id: whoever knows it may
// release the lock), which must not follow from ids seen before. LZ_EIO if
// the kernel has no randomness to give.
int lz__uuid4_secret(char out[37]);

// lz__random64: 64 random bits from the thread's generator (xorshift,
// seeded from getrandom(2), reseeded in a forked child): ids, not keys.
uint64_t lz__random64(void);
// lz__hex64 writes the 16 lower-case hex digits of v, most significant first (no NUL).
void lz__hex64(uint64_t v, char out[16]);

// lz__now_seconds: wall-clock time as a double, like Python's time.time().
double lz__now_seconds(void);

// --- Tasks (push/pull): one frame. ---
// lz__envelope_encode_task appends the task object
// {"type","data","priority","timestamp","task_id"} encoded with serializer.
// span (NULL: none) gets the task id, and when it is active its
// traceparent goes in the envelope (core/trace.h).
int lz__envelope_encode_task(const lz_serializer_t *serializer, const char *type,
                             const lz_value_t *data, int priority, lz_span_t *span, lz_buffer_t *out);
// The decoders below take each frame with its size, as the receive
// returned it (lz__frame_size), which spares a libzmq call per frame.
//
// lz__envelope_decode_task decodes one frame of size bytes (moved into the
// message) into a task. A structured payload that is not an object becomes
// type "unknown" with the whole value as data; an opaque serializer gives
// type "" and the bytes as data. LZ_ESERIALIZATION when the bytes do not
// decode.
int lz__envelope_decode_task(const lz_serializer_t *serializer, zmq_msg_t *frame, size_t size,
                             lz_message_t **out);

// --- Pub/sub: [topic, payload, (extension frames)]. ---
// lz__topic_text_from is lz__topic_text from byte i on, which is not
// ASCII or is NUL: out of line, as most topics never get there.
static __attribute__((noinline, unused)) bool lz__topic_text_from(const unsigned char *p, size_t size, size_t i) {
    return lz__utf8_walk(p, size, i, true);
}

// lz__topic_text tells whether size bytes at data can be a topic: UTF-8
// with no NUL, so that a C string holds all of it. Inline, as every
// received message runs it: the usual topic, plain ASCII, is proved a
// word at a time.
static inline bool lz__topic_text(const void *data, size_t size) {
    size_t plain = lz__text_span(data, size, true);
    return plain == size || lz__topic_text_from(data, size, plain);
}
// lz__topic_refused sets the last error for a topic that is not text and
// returns LZ_EPROTOCOL.
int lz__topic_refused(void);
// lz__topic_check: LZ_OK when lz__topic_text, else LZ_EPROTOCOL (with the
// detail set). Inline: every received pub/sub message runs it.
static inline int lz__topic_check(const void *data, size_t size) {
    return lz__topic_text(data, size) ? LZ_OK : lz__topic_refused();
}
// lz__envelope_decode_pub takes topic and payload (moved into the message);
// a NULL topic makes a topicless message (topic "", LZ_SUB_SINGLE_FRAME).
// LZ_EPROTOCOL for a topic that is not UTF-8 text unless binary_topic;
// LZ_ESERIALIZATION when the payload does not decode.
int lz__envelope_decode_pub(const lz_serializer_t *serializer, zmq_msg_t *topic, size_t topic_size, bool binary_topic,
                            zmq_msg_t *payload, size_t payload_size, lz_message_t **out);

// --- Request/reply: one payload frame after the routing envelope. ---
// lz__envelope_encode_request appends {"type": action, "data", "timestamp",
// "request_id"}, with span's traceparent when it is active (the caller,
// who made the request id, gives it to the span).
int lz__envelope_encode_request(const lz_serializer_t *serializer, const char *action,
                                const lz_value_t *data, const char *request_id, lz_span_t *span,
                                lz_buffer_t *out);
// lz__envelope_decode_request decodes a request frame (moved into the
// message). The action is "type" (the Python LiberZMQ), or "action" as a
// fallback; a missing action is LZ_EPROTOCOL.
int lz__envelope_decode_request(const lz_serializer_t *serializer, zmq_msg_t *frame, size_t size,
                                lz_message_t **out);
// lz__envelope_encode_error appends the error reply
// {"status": "error", "message", "request_type", "code", "error"}.
// message (NULL: lz_strerror(code)) and request_type (NULL: "") need not
// be UTF-8, which no codec writes: each byte of them that starts no
// well-formed sequence is sent as U+FFFD, so the reply still encodes.
int lz__envelope_encode_error(const lz_serializer_t *serializer, int code, const char *message,
                              const char *request_type, lz_buffer_t *out);
// lz__envelope_is_error tells whether a decoded reply is an error reply
// ({"status": "error", ...}).
bool lz__envelope_is_error(const lz_value_t *reply);


#endif
