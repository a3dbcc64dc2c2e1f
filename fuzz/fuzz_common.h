/* What the fuzz targets share: the input format for multipart messages,
 * the codec a message is decoded with, the properties several targets
 * check, and how a broken property stops the run. Each target is one
 * LLVMFuzzerTestOneInput (libFuzzer's entry point); fuzz/replay.c calls the
 * same function on every corpus file in builds without libFuzzer. */
#ifndef LZ_FUZZ_COMMON_H
#define LZ_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/envelope.h"
#include "core/node.h"
#include "liberzmq.h"
#include "serial/registry.h"

// libFuzzer's entry point, defined once per target.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// fuzz_require aborts, naming the broken property, when ok is false: an
// abort is what libFuzzer (and the replay test) report as a failure with
// the input that caused it. Prints nothing otherwise.
#define fuzz_require(ok, property) fuzz_require_at((ok), (property), __FILE__, __LINE__)
void fuzz_require_at(bool ok, const char *property, const char *file, int line);

/* ---- multipart input ---------------------------------------------------
 * A message of frames is written as
 *     byte 0   the codec: fuzz_codec_pick(byte 0)
 *     byte 1   the number of frames (taken modulo LZ_MAX_FRAMES + 1)
 *     then per frame a 2-byte big-endian length and that many bytes; a
 *     length past the end of the input takes what is left, and frames
 *     missing at the end are empty.
 * Cutting and splicing inputs then still gives messages, so the fuzzer's
 * mutations land in frame contents more often than in a dead format. */

// A multipart message as lz__node_recv hands it to the decoders.
typedef struct fuzz_message {
    const lz_serializer_t *codec;
    lz_frames_t frames;
} fuzz_message_t;

// fuzz_message_split builds msg from the input. False for an input too
// short to name a codec and a frame count (the target then just returns).
bool fuzz_message_split(const uint8_t *data, size_t size, fuzz_message_t *msg);
// fuzz_message_close frees the frames (those a decoder moved out are empty).
void fuzz_message_close(fuzz_message_t *msg);

// fuzz_codec_pick maps a byte to one of the built-in codecs a node can be
// configured with: json, msgpack or raw.
const lz_serializer_t *fuzz_codec_pick(uint8_t selector);

// fuzz_frame_set fills frame, initialised and empty, with a copy of buffer:
// what a receiving node would get for what a sending one encoded.
void fuzz_frame_set(zmq_msg_t *frame, const lz_buffer_t *buffer);

/* ---- properties ------------------------------------------------------- */

// fuzz_codec_round_trip checks what a value decoded by codec must satisfy:
// it encodes (whatever a peer sent and we accepted, we can send on), that
// encoding decodes to an equal value, and encoding that value again gives
// the same bytes (the writer is deterministic).
void fuzz_codec_round_trip(const lz_serializer_t *codec, const lz_value_t *value);

// fuzz_codec_normalises is fuzz_codec_round_trip for a value codec may
// change once (a protobuf codec reads {"level": "5"} back as {"level": 5},
// drops a zero, or with LZ_PROTOBUF_DEFAULTS adds one): it encodes, that
// decodes, and what it decoded passes fuzz_codec_round_trip.
void fuzz_codec_normalises(const lz_serializer_t *codec, const lz_value_t *value);

// fuzz_error_reply encodes an error reply (code, message, request_type) as
// a server does and decodes it as a client does; aborts unless the client
// reads it as an error reply. Returns the decoded reply (the caller's).
lz_value_t *fuzz_error_reply(const lz_serializer_t *codec, int code, const char *message, const char *request_type);

// fuzz_same_decode checks that decoding data with lz_serializer_decode,
// which builds an owned tree, agrees with a value the receive path decoded
// in a message's arena (lz__serializer_decode_in): for JSON the two trees
// are built differently (nodes, repeated keys, long keys, the yajl path).
void fuzz_same_decode(const lz_serializer_t *codec, const void *data, size_t size, const lz_value_t *decoded);

// fuzz_decode_value is a whole codec target: data is one payload decoded
// with codec both ways a node decodes payloads (owned, as clients, routers
// and pairs do, and into a message's arena, as subscribers, pullers and
// servers do). Both must agree, fail only with LZ_ESERIALIZATION, and an
// accepted value must pass fuzz_codec_round_trip.
void fuzz_decode_value(const lz_serializer_t *codec, const uint8_t *data, size_t size);

// A check of a value a codec accepted, which fuzz_decode_value_then runs.
typedef void fuzz_value_check_fn(const lz_serializer_t *codec, const lz_value_t *value, const uint8_t *data,
                                 size_t size);

// fuzz_decode_value_then is fuzz_decode_value with check, given the value
// and the payload it came from, in place of fuzz_codec_round_trip: for a
// codec whose encoding does not give back every value it decodes (a
// protobuf codec normalises values of its message type). Returns the
// decodes' code; when they failed, lz_last_error() still says why.
int fuzz_decode_value_then(const lz_serializer_t *codec, const uint8_t *data, size_t size,
                           fuzz_value_check_fn *check);

/* ---- task and request envelopes (one frame each) ------------------------ */

// What differs between tasks and requests for the checks below.
typedef struct fuzz_envelope_kind {
    const char *id_key; // "task_id" or "request_id"
    int (*decode)(const lz_serializer_t *codec, zmq_msg_t *frame, size_t size, lz_message_t **out);
    // encode sends msg's type, data and, where the kind carries it on, id.
    int (*encode)(const lz_serializer_t *codec, const lz_message_t *msg, lz_buffer_t *out);
    bool id_carried; // requests keep their id when sent again (retries, proxies)
} fuzz_envelope_kind_t;

// fuzz_check_envelope checks a decoded task or request against the rules
// of docs/protocol.md applied to whole, its payload decoded on its own:
// when enveloped, the value is whole's "data" (null when absent), the
// envelope is whole without "data", and id, priority and timestamp come
// from their keys; otherwise (a plain peer's task) the value is whole.
void fuzz_check_envelope(const fuzz_envelope_kind_t *kind, const lz_value_t *whole, const lz_message_t *msg,
                         bool enveloped);

// fuzz_envelope_round_trip checks that msg's type and data (and id, where
// carried), sent again in an envelope of kind, arrive as they were. Only a
// plain peer's task may fail to encode: its whole value then sits one level
// deeper, which can pass the codec's nesting limit.
void fuzz_envelope_round_trip(const fuzz_envelope_kind_t *kind, const lz_serializer_t *codec, const lz_message_t *msg);

// fuzz_payload_decode decodes msg's payload on its own into a value the
// caller owns; the receive path accepted it, so this must too.
lz_value_t *fuzz_payload_decode(const lz_serializer_t *codec, const lz_message_t *msg);

// fuzz_type_is: msg's type (its topic) is exactly the size bytes at text,
// so that a type cut short at a NUL shows.
bool fuzz_type_is(const lz_message_t *msg, const char *text, size_t size);

// fuzz_is_topic_text is the topic rule of docs/protocol.md spelled out the
// slow way (UTF-8, no NUL), against which the receive path's word-at-a-time
// lz__topic_text is checked.
bool fuzz_is_topic_text(const void *data, size_t size);

#endif
