/* The subscriber's decoder, lz__envelope_decode_pub, on received messages
 * [topic, payload, extension frames...] (docs/protocol.md section 2) in any
 * of the built-in codecs. The input is a multipart message (fuzz_common.h). */
#include <string.h>

#include "fuzz_common.h"

// check_topic: the receive path's fast topic test agrees with the rule, and
// an accepted topic is the topic frame's text, whole; with binary topics
// (LZ_SUB_BINARY_TOPIC) none is refused and the topic is the frame's bytes.
static void check_topic(const lz_frames_t *frames, bool binary, int rc, const lz_message_t *msg) {
    const void *topic = lz__frame_data(frames, 0);
    size_t size = lz__frame_size(frames, 0);
    bool text = fuzz_is_topic_text(topic, size);
    fuzz_require(lz__topic_text(topic, size) == text, "lz__topic_text is UTF-8 without NUL");
    fuzz_require(rc != LZ_EPROTOCOL || (!text && !binary), "only a topic that is not text is refused, if any");
    if (rc != LZ_OK) return;
    fuzz_require(text || binary, "a message with a topic that is not text is refused");
    size_t received_size;
    const char *received = lz_message_topic_bytes(msg, &received_size);
    fuzz_require(received_size == size && memcmp(received, topic, size) == 0 && received[size] == '\0',
                 "the topic is the frame's bytes, NUL-terminated");
    fuzz_require(!text || strlen(lz_message_topic(msg)) == size, "a text topic reads whole as a C string");
}

// check_payload: the value is the payload decoded, and can be sent on.
static void check_payload(const lz_serializer_t *codec, const lz_frames_t *frames, const lz_message_t *msg) {
    size_t size;
    const void *payload = lz_message_payload(msg, &size);
    fuzz_require(size == lz__frame_size(frames, 1), "the message keeps the whole payload frame");
    fuzz_require(lz_message_envelope(msg) == NULL, "pub/sub messages carry no envelope");
    fuzz_same_decode(codec, payload, size, lz_message_value(msg));
    fuzz_codec_round_trip(codec, lz_message_value(msg));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_message_t in;
    if (!fuzz_message_split(data, size, &in)) return 0;
    lz_frames_t *f = &in.frames;
    if (f->count >= 2) { // the subscriber drops shorter messages before decoding
        lz_message_t *msg = NULL;
        bool binary = size & 1; // half the inputs decode as LZ_SUB_BINARY_TOPIC allows
        int rc = lz__envelope_decode_pub(in.codec, &f->part[0], f->size[0], binary, &f->part[1], f->size[1], &msg);
        fuzz_require(rc == LZ_OK || rc == LZ_EPROTOCOL || rc == LZ_ESERIALIZATION,
                     "a bad message is LZ_EPROTOCOL or LZ_ESERIALIZATION");
        fuzz_require((rc == LZ_OK) == (msg != NULL), "a message comes back exactly on success");
        check_topic(f, binary, rc, msg);
        if (rc == LZ_OK) check_payload(in.codec, f, msg);
        lz_message_destroy(&msg);
    }
    fuzz_message_close(&in);
    return 0;
}
