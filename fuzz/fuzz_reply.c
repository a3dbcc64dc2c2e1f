/* What the client does with a received reply (src/patterns/client.c,
 * handle_reply and decode_reply; docs/protocol.md section 4): frames
 * [request_id, payload] or [request_id, "", payload], the payload decoded
 * into a value the caller owns (a copy for an opaque codec, whose decode
 * borrows the frame), and told an error reply or not. An error reply, sent
 * on by a server with its message and request type, must stay one. The
 * input is a multipart message (fuzz_common.h). */
#include <string.h>

#include "fuzz_common.h"

// reply_shape_ok mirrors the client's check before it looks anything up.
static bool reply_shape_ok(const lz_frames_t *f) {
    return f->count == 2 || (f->count == 3 && lz__frame_size(f, 1) == 0);
}

// decode_owned decodes the payload as the client does: the value must not
// borrow the frame, which is closed before the caller reads the reply.
static lz_value_t *decode_owned(const lz_serializer_t *codec, const lz_frames_t *f, size_t last) {
    lz_value_t *reply = NULL;
    int rc = lz_serializer_decode(codec, lz__frame_data(f, last), lz__frame_size(f, last), &reply);
    fuzz_require(rc == LZ_OK || rc == LZ_ESERIALIZATION, "a reply that does not decode is LZ_ESERIALIZATION");
    if (rc != LZ_OK || !(lz_serializer_flags(codec) & LZ_SERIALIZER_OPAQUE)) return reply;
    lz_value_t *copy = lz_value_copy(reply);
    fuzz_require(lz_value_equal(copy, reply), "a copy equals its original");
    lz_value_destroy(&reply);
    return copy;
}

// check_error_relayed: an error reply's message and request type, written
// into a new error reply, read back the same and as an error.
static void check_error_relayed(const lz_serializer_t *codec, const lz_value_t *reply) {
    const char *message = lz_value_find_string(reply, "message", NULL);
    const char *request_type = lz_value_find_string(reply, "request_type", NULL);
    lz_value_t *again = fuzz_error_reply(codec, LZ_EREMOTE, message, request_type); // sent on
    const char *message_again = lz_value_find_string(again, "message", "");
    fuzz_require(strcmp(message_again, message ? message : lz_strerror(LZ_EREMOTE)) == 0,
                 "the message arrives as sent");
    fuzz_require(strcmp(lz_value_find_string(again, "request_type", ""), request_type ? request_type : "") == 0,
                 "the request type arrives as sent");
    lz_value_destroy(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_message_t in;
    if (!fuzz_message_split(data, size, &in)) return 0;
    lz_value_t *reply = reply_shape_ok(&in.frames) ? decode_owned(in.codec, &in.frames, in.frames.count - 1) : NULL;
    fuzz_message_close(&in); // the client closes the frames; the reply lives on
    if (reply) {
        bool opaque = lz_serializer_flags(in.codec) & LZ_SERIALIZER_OPAQUE;
        bool relayable = !opaque;
        if (relayable && lz__envelope_is_error(reply)) check_error_relayed(in.codec, reply);
        fuzz_codec_round_trip(in.codec, reply);
        lz_value_destroy(&reply);
    }
    return 0;
}
