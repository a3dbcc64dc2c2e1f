/* Internal: extension frames, the ASCII "name=value" frames a message may
 * carry after its payload (docs/protocol.md sections 2 and 5). The one
 * extension liberzmq writes and reads is trace context,
 * "traceparent=00-<trace id>-<span id>-01", on pub/sub messages and dealer
 * requests, which have no envelope to carry it. */
#ifndef LZ_CORE_EXTENSION_H
#define LZ_CORE_EXTENSION_H

#include <stddef.h>

#include "core/node.h"
#include "core/trace.h"
#include "liberzmq/message.h"

#define LZ_EXT_TRACEPARENT "traceparent="
// A traceparent frame's bytes and the NUL after them.
#define LZ_EXT_TRACEPARENT_SIZE (sizeof LZ_EXT_TRACEPARENT + LZ_TRACEPARENT_LEN)

// lz__ext_traceparent_frame writes span's "traceparent=..." frame into buf
// and points *frame at it, returning 1 (one more frame to send), when span
// is active and node's context has tracing.extension_frames; else 0 and
// nothing is written. Any thread (buf is the caller's).
size_t lz__ext_traceparent_frame(const lz_node_t *node, const lz_span_t *span, char buf[LZ_EXT_TRACEPARENT_SIZE],
                                 lz_frame_t *frame);

// lz__ext_read reads the extension frames f->part[first..count) of a
// received message into msg: a well-formed traceparent becomes its
// envelope's "traceparent" (lz_message_envelope), where spans and callers
// find a task's, so msg must have no envelope yet. Frames it does not know,
// cannot parse, or whose traceparent is malformed are ignored. LZ_OK, or
// LZ_ENOMEM (msg unchanged). Without extension frames: one test.
int lz__ext_read_slow(lz_message_t *msg, const lz_frames_t *f, size_t first);
static inline int lz__ext_read(lz_message_t *msg, const lz_frames_t *f, size_t first) {
    return __builtin_expect(first < f->count, 0) ? lz__ext_read_slow(msg, f, first) : LZ_OK;
}

#endif
