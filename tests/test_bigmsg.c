/* Large messages through the json codec: a request and reply of several
 * MiB round-trip byte for byte, and a small one after them reads nothing
 * stale; the thread's large JSON parser is kept for the next large
 * document, let go after a run of small ones and never kept for a huge
 * one; the writer's block copy of long strings escapes every special byte
 * wherever it falls in a block. */
#include "lz_test.h"

#include "serial/json_reader.h"

#define MIB (1024 * 1024)

static int echo(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_copy(lz_message_value(request));
    return *reply ? 0 : LZ_ENOMEM;
}

// big_text is len bytes of text, every byte position landing in a
// different place of the writer's blocks: plain runs of varying length
// broken by what JSON escapes ('"', '\\', control bytes) and by UTF-8 of
// two, three and four bytes. seed varies the runs.
static char *big_text(size_t len, unsigned seed) {
    static const char *const pieces[] = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
                                         "\xf0\x9d\x84\x9e", "/"};
    char *text = malloc(len + 1);
    size_t at = 0;
    unsigned state = seed * 2654435761u + 1;
    while (at < len) {
        state = state * 1103515245u + 12345u;
        size_t run = (state >> 16) % 300; // plain bytes, then one piece
        for (size_t i = 0; i < run && at < len; i++, at++) text[at] = (char)('a' + (at + seed) % 26);
        const char *piece = pieces[(state >> 8) % (sizeof pieces / sizeof pieces[0])];
        size_t n = strlen(piece);
        if (at + n > len) break;
        memcpy(text + at, piece, n);
        at += n;
    }
    while (at < len) text[at++] = 'z';
    text[len] = '\0';
    return text;
}

// big_value is {"text": big_text(len), "blob": 256 KiB of every byte value, "n": seed}.
static lz_value_t *big_value(size_t len, unsigned seed) {
    char *text = big_text(len, seed);
    unsigned char *blob = malloc(256 * 1024);
    for (size_t i = 0; i < 256 * 1024; i++) blob[i] = (unsigned char)(i * 7 + seed);
    lz_value_t *value = lz_value_object();
    LZ_CHECK_INT(lz_value_object_set(value, "text", lz_value_stringn(text, len)), 0);
    LZ_CHECK_INT(lz_value_object_set(value, "blob", lz_value_bytes(blob, 256 * 1024)), 0);
    LZ_CHECK_INT(lz_value_object_set_int(value, "n", seed), 0);
    free(text);
    free(blob);
    return value;
}

// same_bytes checks reply holds exactly what data does: equal values, and
// the long string's bytes compared as bytes.
static void same_bytes(const lz_value_t *reply, const lz_value_t *data) {
    LZ_CHECK(lz_value_equal(reply, data));
    size_t got_len = 0, want_len = 0;
    const char *got = lz_value_get_string(lz_value_get(reply, "text"), &got_len);
    const char *want = lz_value_get_string(lz_value_get(data, "text"), &want_len);
    if (want) LZ_CHECK(got && got_len == want_len && memcmp(got, want, want_len) == 0);
}

static void round_trip(lz_client_t *client, lz_value_t *data) {
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "echo", data, &reply, 20000 * LZ_TEST_SLOWDOWN), 0);
    same_bytes(reply, data);
    lz_value_destroy(&reply);
}

// Large requests and replies, a small one between them, then a large one
// smaller than the first (the kept parser and buffers then hold the first
// one's bytes past the end of the new one): all come back exact. Handlers
// inline (the server's I/O thread decodes and encodes) and on workers.
static void large_round_trips(const char *concurrency) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", concurrency);
    char endpoint[128];
    lz_server_t *server = lz_server_new(ctx, lz_test_ipc_endpoint(endpoint, sizeof endpoint));
    LZ_CHECK(server != NULL);
    LZ_CHECK_INT(lz_server_on(server, "echo", echo, NULL), 0);
    LZ_CHECK_INT(lz_server_start(server), 0);
    lz_client_t *client = lz_client_new(ctx, endpoint);
    LZ_CHECK(client != NULL);
    lz_value_t *large = big_value(6 * MIB, 1), *small = lz_value_object(), *smaller = big_value(3 * MIB + 77, 2);
    lz_value_object_set_string(small, "x", "small");
    round_trip(client, large);
    round_trip(client, small);
    round_trip(client, smaller);
    round_trip(client, large);
    round_trip(client, small);
    lz_value_destroy(&large);
    lz_value_destroy(&small);
    lz_value_destroy(&smaller);
    lz_client_destroy(&client);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
}

LZ_TEST(large_request_and_reply_round_trip_exactly_inline) { large_round_trips("zmq.handler_max_concurrency=1"); }

LZ_TEST(large_request_and_reply_round_trip_exactly_on_workers) { large_round_trips("zmq.handler_max_concurrency=4"); }

// decode_string decodes the JSON string text and checks it is want.
static void decode_string(const char *text, size_t len, const char *want, size_t want_len) {
    lz_value_t *value = lz_value_from_json(text, len);
    size_t got_len = 0;
    const char *got = lz_value_get_string(value, &got_len);
    LZ_CHECK(got && got_len == want_len && memcmp(got, want, want_len) == 0);
    lz_value_destroy(&value);
}

// json_string is "text" as JSON (quoted; 'x' only, so nothing to escape).
static char *json_string(size_t len, char fill) {
    char *text = malloc(len + 3);
    text[0] = '"';
    memset(text + 1, fill, len);
    text[len + 1] = '"';
    text[len + 2] = '\0';
    return text;
}

static void *kept_parser_thread(void *arg) {
    (void)arg;
    LZ_CHECK_INT(lz__json_reader_large_capacity(), 0); // a new thread keeps none
    char *large = json_string(200 * 1024, 'x'), *larger = json_string(900 * 1024, 'y');
    decode_string(larger, strlen(larger), larger + 1, 900 * 1024);
    size_t kept = lz__json_reader_large_capacity();
    LZ_CHECK(kept >= 900 * 1024);
    // A smaller document is read with the same parser, which still holds
    // the larger one's bytes past its end.
    decode_string(large, strlen(large), large + 1, 200 * 1024);
    LZ_CHECK_INT(lz__json_reader_large_capacity(), kept);
    // Small documents do not use it; 256 of them in a row let it go.
    for (int i = 0; i < 255; i++) decode_string("\"small\"", 7, "small", 5);
    LZ_CHECK_INT(lz__json_reader_large_capacity(), kept);
    decode_string(large, strlen(large), large + 1, 200 * 1024); // a large one starts the count again
    for (int i = 0; i < 255; i++) decode_string("\"small\"", 7, "small", 5);
    LZ_CHECK_INT(lz__json_reader_large_capacity(), kept);
    decode_string("\"small\"", 7, "small", 5);
    LZ_CHECK_INT(lz__json_reader_large_capacity(), 0);
    // A document over 8 MiB is read by a parser of its own, not kept.
    char *huge = json_string(9 * MIB, 'h');
    decode_string(huge, strlen(huge), huge + 1, 9 * MIB);
    LZ_CHECK_INT(lz__json_reader_large_capacity(), 0);
    decode_string(large, strlen(large), large + 1, 200 * 1024);
    LZ_CHECK(lz__json_reader_large_capacity() > 0);
    free(huge);
    free(large);
    free(larger);
    return NULL;
}

// On a thread of its own, so that what it keeps is known from the start.
LZ_TEST(large_parser_is_kept_reused_and_let_go) {
    pthread_t thread;
    LZ_CHECK_INT(pthread_create(&thread, NULL, kept_parser_thread, NULL), 0);
    pthread_join(thread, NULL);
}

// escaped writes s (len bytes) as the writer must: '"' and '\\' escaped,
// control bytes as \b \f \n \r \t or \u00XX, everything else as it is.
static size_t escaped(const char *s, size_t len, char *out) {
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *form = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t" : NULL;
        if (form) n += (size_t)sprintf(out + n, "%s", form);
        else if (c < 0x20) n += (size_t)sprintf(out + n, "\\u%04X", c);
        else out[n++] = (char)c;
    }
    out[n++] = '"';
    return n;
}

// The writer checks long strings a block at a time: a special byte (or
// UTF-8 sequence) at every offset of strings around the block size is
// escaped as it must be, and the text reads back; a byte that is not UTF-8
// is refused wherever it is.
LZ_TEST(long_strings_escape_every_special_byte_at_every_offset) {
    static const char *const specials[] = {"\"", "\\", "\n", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9",
                                           "\xf0\x9d\x84\x9e"};
    static const size_t lengths[] = {63, 64, 65, 127, 128, 129, 200};
    const lz_serializer_t *json = lz_serializer_builtin("json");
    lz_buffer_t *out = lz_buffer_new();
    char text[256], want[2048];
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
            size_t n = strlen(specials[k]);
            for (size_t at = 0; at + n <= lengths[l]; at++) {
                memset(text, 'a', lengths[l]);
                memcpy(text + at, specials[k], n);
                lz_value_t *value = lz_value_stringn(text, lengths[l]);
                lz_buffer_reset(out);
                LZ_CHECK_INT(lz_serializer_encode(json, value, out), 0);
                size_t want_len = escaped(text, lengths[l], want);
                LZ_CHECK(lz_buffer_size(out) == want_len && memcmp(lz_buffer_data(out), want, want_len) == 0);
                lz_value_t *back = lz_value_from_json(lz_buffer_data(out), lz_buffer_size(out));
                LZ_CHECK(lz_value_equal(back, value));
                lz_value_destroy(&back);
                lz_value_destroy(&value);
            }
        }
        for (size_t at = 0; at < lengths[l]; at++) {
            memset(text, 'a', lengths[l]);
            text[at] = (char)0xff;
            lz_value_t *value = lz_value_stringn(text, lengths[l]);
            lz_buffer_reset(out);
            LZ_CHECK_INT(lz_serializer_encode(json, value, out), LZ_ESERIALIZATION);
            lz_value_destroy(&value);
        }
    }
    lz_buffer_destroy(&out);
}

LZ_TEST_MAIN(LZ_CASE(large_request_and_reply_round_trip_exactly_inline),
             LZ_CASE(large_request_and_reply_round_trip_exactly_on_workers),
             LZ_CASE(large_parser_is_kept_reused_and_let_go),
             LZ_CASE(long_strings_escape_every_special_byte_at_every_offset))
