/* The server's decoder, lz__envelope_decode_request, on received requests
 * (docs/protocol.md section 4): routing frames, then the request object as
 * the last frame, in any of the built-in codecs. A request that does not
 * decode is answered with an error reply, as the server does; a decoded one
 * is checked against the envelope rules and sent again. The input is a
 * multipart message (fuzz_common.h). */
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "patterns/routing.h"

static int encode_request(const lz_serializer_t *codec, const lz_message_t *msg, lz_buffer_t *out) {
    return lz__envelope_encode_request(codec, lz_message_type(msg), lz_message_value(msg), lz_message_id(msg), NULL, out);
}

static const fuzz_envelope_kind_t request_kind = {"request_id", lz__envelope_decode_request, encode_request, true};

// check_request: the action is "type", or "action" when "type" is no string.
static void check_request(const lz_serializer_t *codec, const lz_message_t *msg) {
    lz_value_t *whole = fuzz_payload_decode(codec, msg);
    size_t size = 0;
    const char *action = lz_value_get_string(lz_value_get(whole, "type"), &size);
    if (!action) action = lz_value_get_string(lz_value_get(whole, "action"), &size);
    fuzz_require(action && fuzz_type_is(msg, action, size), "the action is \"type\", else \"action\"");
    fuzz_check_envelope(&request_kind, whole, msg, true);
    fuzz_envelope_round_trip(&request_kind, codec, msg);
    fuzz_codec_round_trip(codec, lz_message_value(msg));
    lz_value_destroy(&whole);
}

// answer_malformed: the server answers a request it cannot decode with an
// error reply naming why, which the client must see as one. An opaque
// codec cannot carry the error object (the server then sends an empty frame).
static void answer_malformed(const lz_serializer_t *codec, int rc) {
    if (lz_serializer_flags(codec) & LZ_SERIALIZER_OPAQUE) return;
    char text[256];
    snprintf(text, sizeof text, "malformed request: %s", lz_last_error());
    lz_value_t *reply = fuzz_error_reply(codec, rc, text, "unknown");
    lz_value_destroy(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_message_t in;
    if (!fuzz_message_split(data, size, &in)) return 0;
    lz_frames_t *f = &in.frames;
    if (f->count >= 2) { // the server cannot route a reply to less
        size_t last = f->count - 1;
        lz_routing_t route;
        lz__routing_take(&route, f, last);
        lz_message_t *msg = NULL;
        int rc = lz__envelope_decode_request(in.codec, &f->part[last], f->size[last], &msg);
        fuzz_require(rc == LZ_OK || rc == LZ_EPROTOCOL || rc == LZ_ESERIALIZATION,
                     "a bad request is LZ_EPROTOCOL or LZ_ESERIALIZATION");
        fuzz_require((rc == LZ_OK) == (msg != NULL), "a message comes back exactly on success");
        if (rc == LZ_OK)
            check_request(in.codec, msg);
        else
            answer_malformed(in.codec, rc);
        lz_message_destroy(&msg);
        lz__routing_close(&route);
    }
    fuzz_message_close(&in);
    return 0;
}
