/* Extension frames after a payload (core/extension.h): the traceparent
 * frame written for a traced send and found in a received message. */
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/extension.h"
#include "serial/value.h"

size_t lz__ext_traceparent_frame(const lz_node_t *node, const lz_span_t *span, char buf[LZ_EXT_TRACEPARENT_SIZE],
                                 lz_frame_t *frame) {
    const char *traceparent = lz__span_traceparent(span);
    if (!traceparent || !LZ_LIVE(node->live, tracing_extension_frames)) return 0;
    memcpy(buf, LZ_EXT_TRACEPARENT, sizeof LZ_EXT_TRACEPARENT - 1);
    memcpy(buf + sizeof LZ_EXT_TRACEPARENT - 1, traceparent, LZ_TRACEPARENT_LEN + 1);
    *frame = (lz_frame_t){buf, LZ_EXT_TRACEPARENT_SIZE - 1};
    return 1;
}

// traceparent_value copies the value of frame i, if it is a traceparent
// frame whose value is well formed, into out (NUL-terminated) and says so.
// A later version's longer traceparent fits out whole or is refused.
static bool traceparent_value(const lz_frames_t *f, size_t i, char *out, size_t size) {
    const size_t prefix = sizeof LZ_EXT_TRACEPARENT - 1;
    size_t len = lz__frame_size(f, i);
    const char *data = lz__frame_data(f, i);
    if (len <= prefix || len - prefix >= size || memcmp(data, LZ_EXT_TRACEPARENT, prefix) != 0) return false;
    memcpy(out, data + prefix, len - prefix);
    out[len - prefix] = '\0';
    return strlen(out) == len - prefix && !lz__traceparent_check(out); // a NUL inside is malformed
}

int lz__ext_read_slow(lz_message_t *msg, const lz_frames_t *f, size_t first) {
    char traceparent[256];
    for (size_t i = first; i < f->count; i++) {
        if (!traceparent_value(f, i, traceparent, sizeof traceparent)) continue;
        // Read-only to callers, as every received value (message.h).
        lz_value_t *envelope = lz_value_object();
        if (!envelope || lz_value_object_set_string(envelope, "traceparent", traceparent) != LZ_OK ||
            lz__value_freeze(&envelope) != LZ_OK) {
            lz_value_destroy(&envelope);
            return lz__fail(LZ_ENOMEM, "extension frames: out of memory");
        }
        msg->envelope = envelope;
        return LZ_OK; // the first well-formed one counts
    }
    return LZ_OK;
}
