/* The Protocol Buffers serializer (src/serial/protobuf.c): values to
 * messages and back for every field kind, the bytes checked against
 * protobuf-c's own packing of the generated structs, proto2 presence and
 * required fields, each kind of misfit named, malformed input, the JSON
 * fallback, the codec in pub/sub and push/pull, and a pyzmq peer using
 * protoc's Python classes (tests/interop/protobuf_pubsub.py). */
#include <float.h>
#include <math.h>
#include <protobuf-c/protobuf-c.h>

#include "legacy.pb-c.h"
#include "liberzmq/protobuf.h"
#include "lz_test.h"
#include "sensor.pb-c.h"
#include "series.pb-c.h"

static lz_value_t *json(const char *text) {
    lz_value_t *value = lz_value_from_json(text, strlen(text));
    LZ_CHECK(value != NULL);
    return value;
}

// encode: value (JSON text) through lz_protobuf_from_value and protobuf-c's
// pack, into a buffer the caller frees; NULL (and the error kept) on failure.
static uint8_t *encode(const ProtobufCMessageDescriptor *descriptor, const char *text, size_t *size) {
    lz_value_t *value = json(text);
    ProtobufCMessage *message = NULL;
    int rc = lz_protobuf_from_value(descriptor, value, &message);
    lz_value_destroy(&value);
    if (rc) {
        LZ_CHECK(message == NULL);
        return NULL;
    }
    *size = protobuf_c_message_get_packed_size(message);
    uint8_t *bytes = malloc(*size + 1);
    protobuf_c_message_pack(message, bytes);
    protobuf_c_message_free_unpacked(message, NULL);
    return bytes;
}

// decode_json: bytes unpacked by protobuf-c and turned into a value,
// rendered as JSON (caller frees).
static char *decode_json(const ProtobufCMessageDescriptor *descriptor, const uint8_t *bytes, size_t size,
                         unsigned flags) {
    ProtobufCMessage *message = protobuf_c_message_unpack(descriptor, NULL, size, bytes);
    LZ_CHECK(message != NULL);
    lz_value_t *value = NULL;
    LZ_CHECK_INT(lz_protobuf_to_value(message, flags, &value), LZ_OK);
    protobuf_c_message_free_unpacked(message, NULL);
    char *text = lz_value_to_json(value);
    lz_value_destroy(&value);
    return text;
}

static void check_round_trip(const ProtobufCMessageDescriptor *descriptor, const char *in, const char *want,
                             unsigned flags) {
    size_t size = 0;
    uint8_t *bytes = encode(descriptor, in, &size);
    LZ_CHECK(bytes != NULL);
    if (!bytes) {
        fprintf(stderr, "  encoding %s failed: %s\n", in, lz_last_error());
        return;
    }
    char *text = decode_json(descriptor, bytes, size, flags);
    LZ_CHECK_STR(text, want);
    free(text);
    free(bytes);
}

static void check_misfit(const ProtobufCMessageDescriptor *descriptor, const char *in, const char *detail) {
    size_t size;
    uint8_t *bytes = encode(descriptor, in, &size);
    LZ_CHECK(bytes == NULL);
    free(bytes);
    LZ_CHECK(strstr(lz_last_error(), detail) != NULL);
    if (!strstr(lz_last_error(), detail)) fprintf(stderr, "  %s: got \"%s\"\n", in, lz_last_error());
}

// Every field kind, written and read back; keys come back in field order.
#define FULL_READING                                                                                               \
    "{\"sensor_id\":\"t-1\",\"value\":21.5,\"ratio\":0.1,\"level\":-7,\"delta\":-3,\"count\":9007199254740993,"     \
    "\"serial\":\"18446744073709551615\",\"mask\":\"42\",\"flags\":4294967295,\"ok\":true,\"unit\":\"KELVIN\","         \
    "\"blob\":\"AAEC/w==\",\"where\":{\"lat\":48.1,\"lon\":11.5},\"samples\":[1,-2,3],\"tags\":[\"a\",\"b\"],"     \
    "\"path\":[{\"lat\":1.0},{}],\"counts\":{\"x\":1,\"y\":-2},\"stations\":{\"7\":{\"lat\":2.5},\"-1\":{}},"       \
    "\"device\":\"probe\"}"

// FULL_READING read back: serial (UINT64_MAX) does not fit an int64 and
// comes as the decimal string; "42" as a number; bytes as base64 (to_json).
#define FULL_READING_BACK                                                                                          \
    "{\"sensor_id\":\"t-1\",\"value\":21.5,\"ratio\":0.1,\"level\":-7,\"delta\":-3,"                                \
    "\"count\":9007199254740993,\"serial\":\"18446744073709551615\",\"mask\":42,"                                  \
    "\"flags\":4294967295,\"ok\":true,\"unit\":\"KELVIN\",\"blob\":\"AAEC/w==\","                                  \
    "\"where\":{\"lat\":48.1,\"lon\":11.5},\"samples\":[1,-2,3],\"tags\":[\"a\",\"b\"],"                          \
    "\"path\":[{\"lat\":1.0},{}],\"counts\":{\"x\":1,\"y\":-2},"                                                 \
    "\"stations\":{\"7\":{\"lat\":2.5},\"-1\":{}},\"device\":\"probe\"}"

LZ_TEST(every_field_kind_round_trips) {
    check_round_trip(&demo__reading__descriptor, FULL_READING,
                     FULL_READING_BACK, 0);
    // The other member of the oneof; enum by number; JSON names.
    check_round_trip(&demo__reading__descriptor, "{\"sensorId\":\"c\",\"channel\":0,\"unit\":1}",
                     "{\"sensor_id\":\"c\",\"unit\":\"CELSIUS\",\"channel\":0}", 0);
    // An enum number the type does not name stays a number (proto3 enums are open).
    check_round_trip(&demo__reading__descriptor, "{\"unit\":9}", "{\"unit\":9}", 0);
    check_round_trip(&demo__reading__descriptor, "{}", "{}", 0);
    check_round_trip(&demo__reading__descriptor, "{\"value\":null,\"tags\":null}", "{}", 0);
}

// The bytes are protobuf's: protobuf-c packs the generated struct filled
// by hand to the same bytes, and reading those gives the value.
LZ_TEST(bytes_match_protobuf_c_generated_code) {
    Demo__Location where = DEMO__LOCATION__INIT;
    where.lat = 48.1;
    where.lon = 11.5;
    int32_t samples[] = {1, -2, 3};
    char *tags[] = {"a", "b"};
    Demo__Reading__CountsEntry x = DEMO__READING__COUNTS_ENTRY__INIT, y = DEMO__READING__COUNTS_ENTRY__INIT;
    x.key = "x", x.value = 1, y.key = "y", y.value = -2;
    Demo__Reading__CountsEntry *counts[] = {&x, &y};
    Demo__Reading reading = DEMO__READING__INIT;
    reading.sensor_id = "t-1";
    reading.value = 21.5;
    reading.ratio = 0.1f;
    reading.level = -7;
    reading.serial = UINT64_MAX;
    reading.unit = DEMO__UNIT__KELVIN;
    reading.blob = (ProtobufCBinaryData){.len = 4, .data = (uint8_t *)"\x00\x01\x02\xff"};
    reading.where = &where;
    reading.n_samples = 3, reading.samples = samples;
    reading.n_tags = 2, reading.tags = tags;
    reading.n_counts = 2, reading.counts = counts;
    reading.source_case = DEMO__READING__SOURCE_CHANNEL;
    reading.channel = 5;
    size_t want_size = demo__reading__get_packed_size(&reading);
    uint8_t *want = malloc(want_size);
    demo__reading__pack(&reading, want);

    size_t size = 0;
    uint8_t *got = encode(&demo__reading__descriptor,
                          "{\"sensor_id\":\"t-1\",\"value\":21.5,\"ratio\":0.1,\"level\":-7,"
                          "\"serial\":\"18446744073709551615\",\"unit\":\"KELVIN\",\"blob\":\"AAEC/w==\","
                          "\"where\":{\"lat\":48.1,\"lon\":11.5},\"samples\":[1,-2,3],\"tags\":[\"a\",\"b\"],"
                          "\"counts\":{\"x\":1,\"y\":-2},\"channel\":5}",
                          &size);
    LZ_CHECK(got && size == want_size && memcmp(got, want, size) == 0);
    char *text = decode_json(&demo__reading__descriptor, want, want_size, 0);
    LZ_CHECK_STR(text, "{\"sensor_id\":\"t-1\",\"value\":21.5,\"ratio\":0.1,\"level\":-7,"
                       "\"serial\":\"18446744073709551615\",\"unit\":\"KELVIN\",\"blob\":\"AAEC/w==\","
                       "\"where\":{\"lat\":48.1,\"lon\":11.5},\"samples\":[1,-2,3],\"tags\":[\"a\",\"b\"],"
                       "\"counts\":{\"x\":1,\"y\":-2},\"channel\":5}");
    free(text);
    free(got);
    free(want);
}

LZ_TEST(defaults_appear_only_when_asked) {
    size_t size = 0;
    uint8_t *bytes = encode(&demo__reading__descriptor, "{\"level\":0,\"sensor_id\":\"\",\"tags\":[]}", &size);
    LZ_CHECK(bytes && size == 0); // proto3 sends no default
    char *text = decode_json(&demo__reading__descriptor, bytes, size, LZ_PROTOBUF_DEFAULTS);
    LZ_CHECK_STR(text, "{\"sensor_id\":\"\",\"value\":0.0,\"ratio\":0.0,\"level\":0,\"delta\":0,\"count\":0,"
                       "\"serial\":0,\"mask\":0,\"flags\":0,\"ok\":false,\"unit\":\"UNIT_UNSPECIFIED\",\"blob\":\"\","
                       "\"samples\":[],\"tags\":[],\"path\":[],\"counts\":{},\"stations\":{}}");
    free(text);
    free(bytes);
    // proto2: optional fields say whether they were sent; declared defaults
    // fill the rest when asked.
    check_round_trip(&legacy__config__descriptor, "{\"name\":\"n\"}", "{\"name\":\"n\"}", 0);
    check_round_trip(&legacy__config__descriptor, "{\"name\":\"n\",\"retries\":0,\"mode\":\"fast\"}",
                     "{\"name\":\"n\",\"retries\":0,\"mode\":\"fast\"}", 0);
    check_round_trip(&legacy__config__descriptor, "{\"name\":\"n\"}",
                     "{\"name\":\"n\",\"retries\":3,\"mode\":\"fast\",\"switches\":[]}", LZ_PROTOBUF_DEFAULTS);
    check_round_trip(&legacy__config__descriptor, "{\"name\":\"n\",\"switches\":[true,false]}",
                     "{\"name\":\"n\",\"switches\":[true,false]}", 0);
    // A map entry sent without its value holds the value type's empty
    // message, whose defaults appear as they do when the empty message is
    // sent (found by fuzz_protobuf: it read {} and the re-sent entry
    // {"lat":0.0,"lon":0.0}).
    static const uint8_t entry_without_value[] = {0x92, 0x01, 0x02, 0x08, 0x09}; // stations {9: unset}
    static const uint8_t entry_with_empty[] = {0x92, 0x01, 0x04, 0x08, 0x09, 0x12, 0x00};
    for (int defaults = 0; defaults <= 1; defaults++) {
        unsigned flags = defaults ? LZ_PROTOBUF_DEFAULTS : 0;
        char *unset = decode_json(&demo__reading__descriptor, entry_without_value, sizeof entry_without_value, flags);
        char *empty = decode_json(&demo__reading__descriptor, entry_with_empty, sizeof entry_with_empty, flags);
        LZ_CHECK_STR(unset, empty);
        LZ_CHECK(strstr(unset, defaults ? "\"stations\":{\"9\":{\"lat\":0.0,\"lon\":0.0}}" : "{\"9\":{}}"));
        free(unset);
        free(empty);
    }
}

LZ_TEST(misfits_are_refused_naming_the_field) {
    const ProtobufCMessageDescriptor *reading = &demo__reading__descriptor;
    check_misfit(reading, "[1]", "demo.Reading needs an object (got array)");
    check_misfit(reading, "{\"nope\":1}", "demo.Reading has no field \"nope\"");
    check_misfit(reading, "{\"level\":\"x\"}", "demo.Reading.level needs an integer (got string)");
    check_misfit(reading, "{\"level\":\" 1\"}", "demo.Reading.level needs an integer (got string)");
    check_misfit(reading, "{\"level\":\"\\t1\"}", "demo.Reading.level needs an integer (got string)");
    check_misfit(reading, "{\"level\":\"+1\"}", "demo.Reading.level needs an integer (got string)");
    check_misfit(reading, "{\"level\":\"-\"}", "demo.Reading.level needs an integer (got string)");
    check_misfit(reading, "{\"level\":2147483648}", "demo.Reading.level is out of range");
    check_misfit(reading, "{\"level\":1.5}", "demo.Reading.level needs an integer (got double)");
    check_misfit(reading, "{\"flags\":-1}", "demo.Reading.flags is out of range");
    check_misfit(reading, "{\"serial\":\"-1\"}", "demo.Reading.serial is out of range");
    check_misfit(reading, "{\"serial\":\"18446744073709551616\"}", "demo.Reading.serial is out of range");
    check_misfit(reading, "{\"serial\":1.8446744073709552e19}", "demo.Reading.serial is out of range");
    check_misfit(reading, "{\"count\":\"-9223372036854775809\"}", "demo.Reading.count is out of range");
    check_misfit(reading, "{\"count\":\"12x\"}", "demo.Reading.count needs an integer (got string)");
    check_misfit(reading, "{\"ratio\":1e300}", "demo.Reading.ratio is too large for a float");
    check_misfit(reading, "{\"value\":true}", "demo.Reading.value needs a number (got bool)");
    check_misfit(reading, "{\"ok\":1}", "demo.Reading.ok needs a boolean (got int)");
    check_misfit(reading, "{\"unit\":\"FAHRENHEIT\"}", "demo.Unit has no value \"FAHRENHEIT\"");
    check_misfit(reading, "{\"sensor_id\":5}", "demo.Reading.sensor_id needs a string (got int)");
    check_misfit(reading, "{\"sensor_id\":\"a\\u0000b\"}", "demo.Reading.sensor_id cannot hold a NUL character");
    check_misfit(reading, "{\"blob\":\"not base64!\"}", "demo.Reading.blob needs bytes or a base64 string");
    check_misfit(reading, "{\"where\":[]}", "demo.Location needs an object (got array)");
    check_misfit(reading, "{\"where\":{\"lat\":\"n\"}}", "demo.Location.lat needs a number (got string)");
    check_misfit(reading, "{\"samples\":5}", "demo.Reading.samples needs an array (a repeated field)");
    check_misfit(reading, "{\"samples\":[1,null]}", "demo.Reading.samples cannot hold null elements");
    check_misfit(reading, "{\"tags\":[\"a\",2]}", "demo.Reading.tags needs a string");
    check_misfit(reading, "{\"path\":[{},{\"x\":1}]}", "demo.Location has no field \"x\"");
    check_misfit(reading, "{\"counts\":[1]}", "demo.Reading.counts needs an object (a map field)");
    check_misfit(reading, "{\"counts\":{\"a\":\"b\"}}", "Reading.CountsEntry.value needs an integer");
    check_misfit(reading, "{\"stations\":{\"seven\":{}}}", "Reading.StationsEntry.key needs an integer");
    check_misfit(reading, "{\"device\":\"d\",\"channel\":1}", "demo.Reading.channel: another field of its oneof");
    check_misfit(reading, "{\"sensor_id\":\"a\",\"sensorId\":\"b\"}", "demo.Reading.sensor_id is given twice");
    check_misfit(&legacy__config__descriptor, "{\"retries\":1}", "legacy.Config: required field name is missing");
    check_misfit(&legacy__config__descriptor, "{\"name\":null}", "legacy.Config: required field name is missing");
    // Special doubles take the proto3 JSON spellings.
    size_t size = 0;
    uint8_t *bytes = encode(reading, "{\"value\":\"-Infinity\"}", &size);
    Demo__Reading *back = bytes ? demo__reading__unpack(NULL, size, bytes) : NULL;
    LZ_CHECK(back && isinf(back->value) && back->value < 0);
    demo__reading__free_unpacked(back, NULL);
    free(bytes);
}

// A double with no fraction fills an integer field (docs/protobuf.md):
// negative ones too, and one past INT64_MAX for a uint64.
LZ_TEST(whole_doubles_fill_integer_fields) {
    check_round_trip(&demo__reading__descriptor,
                     "{\"level\":-7.0,\"delta\":-0.0,\"count\":-9007199254740992.0,\"serial\":1.8e19,"
                     "\"flags\":4294967295.0,\"channel\":3.0}",
                     "{\"level\":-7,\"count\":-9007199254740992,\"serial\":\"18000000000000000000\","
                     "\"flags\":4294967295,\"channel\":3}",
                     0);
    check_misfit(&demo__reading__descriptor, "{\"level\":-2147483649.0}", "demo.Reading.level is out of range");
    check_misfit(&demo__reading__descriptor, "{\"flags\":-1.0}", "demo.Reading.flags is out of range");
    check_misfit(&demo__reading__descriptor, "{\"count\":-9.3e18}", "demo.Reading.count is out of range");
}

// Repeated floats and bytes land in protobuf-c's arrays at their own
// element sizes; a map keyed by bool takes "true" and "false" and sends
// the bool, read back as that text (docs/protobuf.md).
#define SERIES                                                                                                     \
    "{\"ratios\":[0.1,-2.5,3.0],\"chunks\":[\"AAE=\",\"\",\"/w==\"],\"labels\":{\"true\":\"on\",\"false\":\"off\"}}"

LZ_TEST(repeated_floats_bytes_and_bool_keys) {
    size_t size = 0;
    uint8_t *bytes = encode(&series__series__descriptor, SERIES, &size);
    Series__Series *s = bytes ? series__series__unpack(NULL, size, bytes) : NULL;
    LZ_CHECK(s != NULL);
    if (s) {
        LZ_CHECK(s->n_ratios == 3 && s->ratios[0] == 0.1f && s->ratios[1] == -2.5f && s->ratios[2] == 3.0f);
        LZ_CHECK(s->n_chunks == 3 && s->chunks[0].len == 2 && memcmp(s->chunks[0].data, "\x00\x01", 2) == 0 &&
                 s->chunks[1].len == 0 && s->chunks[2].len == 1 && s->chunks[2].data[0] == 0xff);
        LZ_CHECK(s->n_labels == 2 && s->labels[0]->key && !strcmp(s->labels[0]->value, "on") &&
                 !s->labels[1]->key && !strcmp(s->labels[1]->value, "off"));
    }
    series__series__free_unpacked(s, NULL);
    free(bytes);
    check_round_trip(&series__series__descriptor, SERIES, SERIES, 0);
    check_misfit(&series__series__descriptor, "{\"labels\":{\"yes\":\"x\"}}",
                 "series.Series.LabelsEntry.key needs a boolean (got string)");
    check_misfit(&series__series__descriptor, "{\"ratios\":[1,1e300]}",
                 "series.Series.ratios is too large for a float");
    check_misfit(&series__series__descriptor, "{\"chunks\":[\"AA==\",5]}", "series.Series.chunks needs bytes");
}

// A bytes field's base64 may be URL-safe and unpadded, as protobuf's JSON
// parsers (Python's ParseDict) take it: "+/8=" and its three other forms.
LZ_TEST(bytes_take_url_safe_and_unpadded_base64) {
    static const char *const forms[] = {"{\"blob\":\"+/8=\"}", "{\"blob\":\"-_8=\"}", "{\"blob\":\"+/8\"}",
                                        "{\"blob\":\"-_8\"}"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t size = 0;
        uint8_t *bytes = encode(&demo__reading__descriptor, forms[i], &size);
        Demo__Reading *r = bytes ? demo__reading__unpack(NULL, size, bytes) : NULL;
        LZ_CHECK(r && r->blob.len == 2 && r->blob.data[0] == 0xfb && r->blob.data[1] == 0xff);
        if (!r) fprintf(stderr, "  %s: %s\n", forms[i], lz_last_error());
        demo__reading__free_unpacked(r, NULL);
        free(bytes);
    }
    check_round_trip(&demo__reading__descriptor, "{\"blob\":\"Zg\"}", "{\"blob\":\"Zg==\"}", 0);
    static const char *const bad[] = {"{\"blob\":\"A\"}", "{\"blob\":\"Zm9v!\"}", "{\"blob\":\"Zg=x\"}",
                                      "{\"blob\":\"Z===\"}", "{\"blob\":\"Zg==Zg==\"}", "{\"blob\":\"+/8.\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_misfit(&demo__reading__descriptor, bad[i], "demo.Reading.blob needs bytes or a base64 string");
}

// reading_with_counts: a demo.Reading whose counts map has n entries, keys
// "k<i>" and values i; the caller frees it with free_counts.
static Demo__Reading *reading_with_counts(size_t n) {
    Demo__Reading *r = malloc(sizeof *r);
    demo__reading__init(r);
    r->n_counts = n;
    r->counts = calloc(n, sizeof *r->counts);
    Demo__Reading__CountsEntry *entries = calloc(n, sizeof *entries);
    char *keys = calloc(n, 24); // room for "k" and any size_t
    for (size_t i = 0; i < n; i++) {
        demo__reading__counts_entry__init(&entries[i]);
        snprintf(keys + i * 24, 24, "k%zu", i);
        entries[i].key = keys + i * 24, entries[i].value = (int32_t)i;
        r->counts[i] = &entries[i];
    }
    return r;
}

// free_counts: the entries and their keys are one block each, from the first.
static void free_counts(Demo__Reading *r) {
    if (r->n_counts) free(r->counts[0]->key), free(r->counts[0]);
    free(r->counts);
    free(r);
}

// counts_value: r's counts as lz_protobuf_to_value reads them.
static lz_value_t *counts_value(Demo__Reading *r, lz_value_t **whole) {
    LZ_CHECK_INT(lz_protobuf_to_value(&r->base, 0, whole), LZ_OK);
    return lz_value_get(*whole, "counts");
}

// A map field with many entries decodes in time linear in its size (each
// key was looked for among all before it: 320,000 took over a minute), and
// a key sent twice keeps its first place and takes the last value, the
// last one winning as in protobuf, small map or large.
LZ_TEST(map_fields_decode_in_linear_time_the_last_repeat_winning) {
    Demo__Reading *small = reading_with_counts(3);
    small->counts[2]->key = small->counts[0]->key; // k0, k1, k0 again
    lz_value_t *whole = NULL;
    char *text = lz_value_to_json(counts_value(small, &whole));
    LZ_CHECK_STR(text, "{\"k0\":2,\"k1\":1}");
    free(text);
    lz_value_destroy(&whole);
    free_counts(small);

    size_t n = 320000;
    Demo__Reading *large = reading_with_counts(n);
    large->counts[n - 1]->key = large->counts[1]->key; // k1 again, last
    int64_t start = lz_test_now_ms();
    const lz_value_t *counts = counts_value(large, &whole);
    int64_t took = lz_test_now_ms() - start;
    LZ_CHECK(took < 20000);
    if (took >= 20000) fprintf(stderr, "  %zu entries took %lld ms\n", n, (long long)took);
    LZ_CHECK_INT(lz_value_size(counts), n - 1);
    LZ_CHECK_STR(lz_value_key_at(counts, 1), "k1");
    LZ_CHECK_INT(lz_value_get_int(lz_value_at(counts, 1)), n - 1);
    LZ_CHECK_STR(lz_value_key_at(counts, n - 2), "k319998");
    LZ_CHECK_INT(lz_value_find_int(counts, "k319998", -1), 319998);
    lz_value_destroy(&whole);
    free_counts(large);
}

LZ_TEST(nesting_is_bounded) {
    // A recursive type nests 99 levels below the top, not 100.
    char text[4096] = "";
    for (int depth = 99; depth <= 100; depth++) {
        text[0] = '\0';
        for (int i = 0; i < depth; i++) strcat(text, "{\"child\":");
        strcat(text, "{}");
        for (int i = 0; i < depth; i++) strcat(text, "}");
        size_t size;
        uint8_t *bytes = encode(&legacy__node__descriptor, text, &size);
        LZ_CHECK((bytes != NULL) == (depth == 99));
        if (bytes) free(decode_json(&legacy__node__descriptor, bytes, size, 0));
        free(bytes);
    }
    LZ_CHECK(strstr(lz_last_error(), "nesting deeper than 100 levels") != NULL);
}

// A message built by hand nests as deep as its maker likes:
// lz_protobuf_to_value reads 99 levels below the top, as a decode does,
// and refuses the 100th (docs/protobuf.md).
LZ_TEST(a_built_message_nested_too_deep_is_refused) {
    Legacy__Node nodes[101];
    for (int i = 0; i < 101; i++) {
        legacy__node__init(&nodes[i]);
        if (i) nodes[i - 1].child = &nodes[i];
    }
    for (int levels = 100; levels <= 101; levels++) {
        nodes[99].child = levels == 101 ? &nodes[100] : NULL;
        lz_value_t *value = NULL;
        int rc = lz_protobuf_to_value(&nodes[0].base, 0, &value);
        LZ_CHECK_INT(rc, levels == 100 ? LZ_OK : LZ_ESERIALIZATION);
        if (rc) LZ_CHECK_STR(lz_last_error(), "protobuf: nesting deeper than 100 levels");
        int depth = 0;
        for (const lz_value_t *v = value; v; v = lz_value_get(v, "child")) depth++;
        LZ_CHECK_INT(depth, rc ? 0 : 100);
        lz_value_destroy(&value);
    }
}

// nested_nodes writes a legacy.Node holding levels children nested one in
// another (Node{child: Node{child: ...}}), built from the inside out at the
// end of a buffer the caller frees; *start is where the message begins.
static uint8_t *nested_nodes(long levels, const uint8_t **start, size_t *size) {
    size_t cap = (size_t)levels * 6 + 1;
    uint8_t *buf = malloc(cap), *at = buf + cap;
    size_t len = 0;
    for (long i = 0; i < levels; i++) {
        uint8_t varint[5];
        size_t n = 0;
        for (size_t v = len; n == 0 || v; v >>= 7) varint[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        at -= n;
        memcpy(at, varint, n);
        *--at = 0x12; // field 2 (child), length-delimited
        len += n + 1;
    }
    *start = at;
    *size = len;
    return buf;
}

// protobuf-c unpacks nested messages by recursion with no limit: the codec
// must refuse a peer's deep nesting before protobuf-c overflows the stack
// (half a million levels here, 1.9 MB, on the main thread's 8 MB stack;
// 20 thousand did before the codec read the nesting first).
LZ_TEST(nesting_on_the_wire_is_refused_before_unpacking) {
    lz_context_t *ctx = lz_test_pattern_context(1);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "node", &legacy__node__descriptor, 0), LZ_OK);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "node-or-json", &legacy__node__descriptor, LZ_PROTOBUF_JSON_FALLBACK),
                 LZ_OK);
    const char *names[] = {"node", "node-or-json"};
    const long levels[] = {99, 100, 101, 20000, 500000};
    for (size_t n = 0; n < 2; n++) {
        const lz_serializer_t *codec = lz_serializer_find(ctx, names[n]);
        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
            const uint8_t *start;
            size_t size;
            uint8_t *buf = nested_nodes(levels[i], &start, &size);
            lz_value_t *value = NULL;
            int rc = lz_serializer_decode(codec, start, size, &value);
            LZ_CHECK_INT(rc, levels[i] == 99 ? LZ_OK : LZ_ESERIALIZATION);
            if (rc) LZ_CHECK_STR(lz_last_error(), "protobuf: nesting deeper than 100 levels");
            // 99 children below the top: 100 objects, the innermost empty.
            int depth = 0;
            for (const lz_value_t *v = value; v; v = lz_value_get(v, "child")) depth++;
            LZ_CHECK_INT(depth, rc ? 0 : 100);
            lz_value_destroy(&value);
            free(buf);
        }
    }
    lz_context_destroy(&ctx);
}

// protobuf-c sends no float or double field without presence that holds
// -0.0 (it tests == 0; protobuf's own libraries, pyzmq's peer here, test the
// bits and send it): a received -0.0 reads as -0.0, and one sent arrives
// as absent (docs/protobuf.md; the protobuf fuzz target allows for it).
LZ_TEST(negative_zero_is_read_but_not_sent) {
    static const uint8_t ratio_negative_zero[] = {0x1d, 0x00, 0x00, 0x00, 0x80}; // what Python sends
    char *text = decode_json(&demo__reading__descriptor, ratio_negative_zero, sizeof ratio_negative_zero, 0);
    LZ_CHECK_STR(text, "{\"ratio\":-0.0}");
    free(text);
    size_t size = 1;
    uint8_t *bytes = encode(&demo__reading__descriptor, "{\"ratio\":-0.0,\"value\":-0.0}", &size);
    LZ_CHECK(bytes != NULL && size == 0);
    free(bytes);
}

// big_reading: a Reading whose message outgrows the codec's 2 KB stack
// block (60 strings, a 3000-byte blob, nested messages in arrays and maps),
// with tail (more members, or "") last, as JSON text (caller frees).
static char *big_reading(const char *tail) {
    size_t cap = 32768, len = 0;
    char *text = malloc(cap);
    len += (size_t)snprintf(text + len, cap - len, "{\"sensor_id\":\"big\",\"blob\":\"");
    for (int i = 0; i < 1000; i++) len += (size_t)snprintf(text + len, cap - len, "QUJD"); // "ABC"
    len += (size_t)snprintf(text + len, cap - len, "\",\"tags\":[");
    for (int i = 0; i < 60; i++) len += (size_t)snprintf(text + len, cap - len, "%s\"tag-%d\"", i ? "," : "", i);
    len += (size_t)snprintf(text + len, cap - len, "],\"path\":[");
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s{\"lat\":%d.5,\"lon\":-%d}", i ? "," : "", i, i);
    len += (size_t)snprintf(text + len, cap - len, "],\"counts\":{");
    for (int i = 0; i < 30; i++) len += (size_t)snprintf(text + len, cap - len, "%s\"k%d\":%d", i ? "," : "", i, i * 7);
    len += (size_t)snprintf(text + len, cap - len, "},\"stations\":{");
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s\"%d\":{\"lat\":%d}", i ? "," : "", i - 5, i);
    snprintf(text + len, cap - len, "},\"channel\":3%s}", tail);
    return text;
}

// fnv1a: a 64-bit FNV-1a hash, to pin a long encoding in a line.
static uint64_t fnv1a(const uint8_t *bytes, size_t size) {
    uint64_t hash = 0xcbf29ce484222325u;
    for (size_t i = 0; i < size; i++) hash = (hash ^ bytes[i]) * 0x100000001b3u;
    return hash;
}

static lz_context_t *context_with(unsigned flags) {
    lz_context_t *ctx = lz_test_pattern_context(1);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "reading", &demo__reading__descriptor, flags), LZ_OK);
    return ctx;
}

LZ_TEST(codec_registers_and_rejects_bad_input) {
    lz_context_t *ctx = context_with(0);
    const lz_serializer_t *codec = lz_serializer_find(ctx, "reading");
    LZ_CHECK_STR(lz_serializer_content_type(codec), "application/x-protobuf");
    LZ_CHECK_INT(lz_protobuf_register(ctx, "reading", &legacy__config__descriptor, 0), LZ_ESTATE);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "x", &demo__reading__descriptor, 1u << 7), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "", &demo__reading__descriptor, 0), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "x", (const void *)&demo__unit__descriptor, 0), LZ_EINVAL);
    LZ_CHECK(strstr(lz_last_error(), "not a protobuf-c message descriptor") != NULL);

    // Malformed bytes: a clear error, never a crash (random bytes too:
    // most are not protobuf, the rest must decode into a value).
    lz_value_t *value = NULL;
    LZ_CHECK_INT(lz_serializer_decode(codec, "\x0a\x05" "ab", 4, &value), LZ_ESERIALIZATION);
    LZ_CHECK(strstr(lz_last_error(), "4 bytes are not a valid demo.Reading") != NULL);
    LZ_CHECK_INT(lz_serializer_decode(codec, "\x0a\x02\xff\xfe", 4, &value), LZ_ESERIALIZATION);
    LZ_CHECK(strstr(lz_last_error(), "not UTF-8") != NULL);
    // protobuf-c would cut a string at its NUL: refused, in a map's key too.
    LZ_CHECK_INT(lz_serializer_decode(codec, "\x0a\x03" "a\0b", 5, &value), LZ_ESERIALIZATION);
    LZ_CHECK_STR(lz_last_error(), "protobuf: demo.Reading.sensor_id cannot hold a NUL character");
    LZ_CHECK_INT(lz_serializer_decode(codec, "\x8a\x01\x05\x0a\x03" "k\0k", 8, &value), LZ_ESERIALIZATION);
    LZ_CHECK_STR(lz_last_error(), "protobuf: demo.Reading.CountsEntry.key cannot hold a NUL character");
    LZ_CHECK(value == NULL);
    unsigned seed = 7;
    for (int round = 0; round < 2000; round++) {
        uint8_t bytes[48];
        size_t size = (size_t)(rand_r(&seed) % (int)sizeof bytes);
        for (size_t i = 0; i < size; i++) bytes[i] = (uint8_t)rand_r(&seed);
        int rc = lz_serializer_decode(codec, bytes, size, &value);
        LZ_CHECK(rc == LZ_OK || rc == LZ_ESERIALIZATION);
        LZ_CHECK((rc == LZ_OK) == (lz_value_type(value) == LZ_VALUE_OBJECT));
        lz_value_destroy(&value);
    }
    lz_context_destroy(&ctx);
}

// A float field reads as the shortest double that reads back as the same
// float, as Python's MessageToDict shows it: 9 digits where 8 do not do
// (shortest_float stopped at 8, giving the full double expansion), and for
// ±FLT_MAX 3.4028235e+38, a double just above FLT_MAX that rounds to it:
// encoding it again was refused as too large for a float. Only a number
// that rounds to an infinity is (3.4028236e+38 does).
LZ_TEST(float_fields_read_shortest_and_encode_again) {
    static const struct {
        float f;
        const char *text;
    } cases[] = {{FLT_MAX, "{\"ratio\":3.4028235e+38}"},         {-FLT_MAX, "{\"ratio\":-3.4028235e+38}"},
                 {1.06994845e+23f, "{\"ratio\":1.06994845e+23}"}, {1042678656.0f, "{\"ratio\":1042678660.0}"},
                 {0.1f, "{\"ratio\":0.1}"},                       {FLT_MIN, "{\"ratio\":1.1754944e-38}"}};
    lz_context_t *ctx = context_with(0);
    const lz_serializer_t *codec = lz_serializer_find(ctx, "reading");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Demo__Reading r = DEMO__READING__INIT;
        r.ratio = cases[i].f;
        uint8_t wire[16];
        size_t size = protobuf_c_message_pack(&r.base, wire);
        lz_value_t *value = NULL;
        LZ_CHECK_INT(lz_serializer_decode(codec, wire, size, &value), LZ_OK);
        char *text = lz_value_to_json(value);
        LZ_CHECK_STR(text, cases[i].text);
        lz_buffer_t *buf = lz_buffer_new();
        LZ_CHECK_INT(lz_serializer_encode(codec, value, buf), LZ_OK);
        LZ_CHECK(lz_buffer_size(buf) == size && memcmp(lz_buffer_data(buf), wire, size) == 0);
        lz_buffer_destroy(&buf);
        lz_value_destroy(&value);
        free(text);
    }
    check_misfit(&demo__reading__descriptor, "{\"ratio\":3.4028236e+38}", "ratio is too large for a float");
    check_misfit(&demo__reading__descriptor, "{\"ratio\":-3.5e+38}", "ratio is too large for a float");
    lz_context_destroy(&ctx);
}

// not_utf8_fails: value (taken) refused by lz_protobuf_from_value, the
// detail naming what is not UTF-8.
static void not_utf8_fails(lz_value_t *value, const char *detail) {
    ProtobufCMessage *message = (ProtobufCMessage *)1;
    LZ_CHECK_INT(lz_protobuf_from_value(&demo__reading__descriptor, value, &message), LZ_ESERIALIZATION);
    LZ_CHECK(message == NULL);
    if (!strstr(lz_last_error(), detail)) LZ_CHECK_STR(lz_last_error(), detail);
    lz_value_destroy(&value);
}

// with_member: a new object holding item under key.
static lz_value_t *with_member(const char *key, lz_value_t *item) {
    lz_value_t *object = lz_value_object();
    lz_value_object_set(object, key, item);
    return object;
}

// protobuf's string fields are UTF-8, and its parsers (this codec's decode,
// Python's ParseFromString) refuse a message with one that is not: such a
// string, or string map key, is refused when encoding, as JSON and
// msgpack refuse it, rather than sent to be dropped by every receiver.
LZ_TEST(strings_that_are_not_utf8_are_refused_when_encoding) {
    not_utf8_fails(with_member("sensor_id", lz_value_stringn("t-\xff\xfe", 4)),
                   "demo.Reading.sensor_id is not valid UTF-8");
    not_utf8_fails(with_member("device", lz_value_string("\xed\xa0\x80")), "demo.Reading.device is not valid UTF-8");
    lz_value_t *tags = lz_value_array();
    lz_value_array_append(tags, lz_value_string("ok"));
    lz_value_array_append(tags, lz_value_string("cut \xe2\x82"));
    not_utf8_fails(with_member("tags", tags), "demo.Reading.tags is not valid UTF-8");
    not_utf8_fails(with_member("counts", with_member("k\xc3", lz_value_int(1))),
                   "demo.Reading.CountsEntry.key is not valid UTF-8");
    // Through the codec: nothing is written.
    lz_context_t *ctx = context_with(0);
    const lz_serializer_t *codec = lz_serializer_find(ctx, "reading");
    lz_value_t *value = with_member("sensor_id", lz_value_string("\xc3\xa9t\xc3"));
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz_serializer_encode(codec, value, buf), LZ_ESERIALIZATION);
    LZ_CHECK_INT(lz_buffer_size(buf), 0);
    lz_value_destroy(&value);
    lz_buffer_destroy(&buf);
    lz_context_destroy(&ctx);
    check_round_trip(&demo__reading__descriptor, "{\"sensor_id\":\"h\\u00e9\\u2713\\ud83d\\ude00\"}",
                     "{\"sensor_id\":\"h\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\"}", 0);
}

// codec_encode: text through codec into a new buffer (caller destroys), and
// the code the encode returned at *rc.
static lz_buffer_t *codec_encode(const lz_serializer_t *codec, const char *text, int *rc) {
    lz_value_t *value = json(text);
    lz_buffer_t *buf = lz_buffer_new();
    *rc = lz_serializer_encode(codec, value, buf);
    lz_value_destroy(&value);
    return buf;
}

// codec_round_trip: buf decoded by codec, as JSON text (caller frees).
static char *codec_round_trip(const lz_serializer_t *codec, const lz_buffer_t *buf) {
    lz_value_t *back = NULL;
    LZ_CHECK_INT(lz_serializer_decode(codec, lz_buffer_data(buf), lz_buffer_size(buf), &back), LZ_OK);
    char *text = lz_value_to_json(back);
    lz_value_destroy(&back);
    return text;
}

// The codec builds its message in a stack arena, not with malloc per
// field: the bytes must be those the malloc'ed build gave (pinned from the
// build before the arena, as hex and, for a message past the arena's
// stack block, a size and hash), and a misfit found halfway must fail the
// same and leave nothing behind (ASan's leak check).
LZ_TEST(codec_encodes_the_bytes_it_did_before_the_arena) {
    lz_context_t *ctx = context_with(0);
    const lz_serializer_t *codec = lz_serializer_find(ctx, "reading");
    int rc;
    lz_buffer_t *buf = codec_encode(codec, FULL_READING, &rc);
    LZ_CHECK_INT(rc, LZ_OK);
    char hex[1024] = "";
    for (size_t i = 0; i < lz_buffer_size(buf) && 2 * i + 2 < sizeof hex; i++)
        snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t *)lz_buffer_data(buf))[i]);
    LZ_CHECK_STR(hex, "0a03742d311100000000008035401dcdcccc3d20f9ffffffffffffffff01280530818080808080801038ffffff"
                      "ffffffffffff01412a0000000000000048ffffffff0f500158026204000102ff6a1209cdcccccccc0c4840110000"
                      "000000002740720c01feffffffffffffffff01037a01617a016282010909000000000000f03f8201008a01050a01"
                      "7810018a010e0a017910feffffffffffffffff0192010d0807120909000000000000044092010d08ffffffffffff"
                      "ffffff0112009a010570726f6265");
    char *back = codec_round_trip(codec, buf);
    LZ_CHECK_STR(back, FULL_READING_BACK);
    free(back);
    lz_buffer_destroy(&buf);

    char *big = big_reading("");
    buf = codec_encode(codec, big, &rc);
    LZ_CHECK_INT(rc, LZ_OK);
    LZ_CHECK_INT(lz_buffer_size(buf), 4965);
    LZ_CHECK(fnv1a(lz_buffer_data(buf), lz_buffer_size(buf)) == 0x3d5882716c74d40au);
    back = codec_round_trip(codec, buf);
    lz_buffer_t *again = codec_encode(codec, back, &rc); // the value read back packs to the same bytes
    LZ_CHECK(rc == LZ_OK && lz_buffer_size(again) == lz_buffer_size(buf) &&
             memcmp(lz_buffer_data(again), lz_buffer_data(buf), lz_buffer_size(buf)) == 0);
    free(back);
    free(big);
    lz_buffer_destroy(&again);
    lz_buffer_destroy(&buf);

    // Misfits after the arena has spilled into malloc'ed blocks, and early.
    big = big_reading(",\"level\":\"x\"");
    buf = codec_encode(codec, big, &rc);
    LZ_CHECK_INT(rc, LZ_ESERIALIZATION);
    LZ_CHECK_STR(lz_last_error(), "protobuf: demo.Reading.level needs an integer (got string)");
    LZ_CHECK_INT(lz_buffer_size(buf), 0);
    lz_buffer_destroy(&buf);
    free(big);
    big = big_reading(",\"path\":[{},{\"x\":1}]"); // path named twice: the object keeps the last
    buf = codec_encode(codec, big, &rc);
    LZ_CHECK_INT(rc, LZ_ESERIALIZATION);
    LZ_CHECK_STR(lz_last_error(), "protobuf: demo.Location has no field \"x\"");
    lz_buffer_destroy(&buf);
    free(big);
    buf = codec_encode(codec, "{\"tags\":[\"a\",2]}", &rc);
    LZ_CHECK_INT(rc, LZ_ESERIALIZATION);
    LZ_CHECK_STR(lz_last_error(), "protobuf: demo.Reading.tags needs a string (got int)");
    lz_buffer_destroy(&buf);
    lz_context_destroy(&ctx);
}

// Without the fallback a value that is no Reading is an error; with it
// the value goes as 0xFF + JSON (what the Python LiberZMQ sends), and
// decoding takes that, plain JSON, and protobuf alike.
LZ_TEST(json_fallback_carries_other_values) {
    lz_context_t *strict = context_with(0), *lenient = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_protobuf_register(lenient, "reading", &demo__reading__descriptor, LZ_PROTOBUF_JSON_FALLBACK), 0);
    const lz_serializer_t *s = lz_serializer_find(strict, "reading"), *l = lz_serializer_find(lenient, "reading");
    lz_value_t *envelope = json("{\"type\":\"t\",\"data\":{\"sensor_id\":\"x\"}}"), *back = NULL;
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz_serializer_encode(s, envelope, buf), LZ_ESERIALIZATION);
    LZ_CHECK_INT(lz_serializer_encode(l, envelope, buf), LZ_OK);
    const char *bytes = lz_buffer_data(buf);
    LZ_CHECK(lz_buffer_size(buf) > 1 && (uint8_t)bytes[0] == 0xFF && bytes[1] == '{');
    LZ_CHECK_INT(lz_serializer_decode(l, bytes, lz_buffer_size(buf), &back), LZ_OK);
    LZ_CHECK(lz_value_equal(back, envelope));
    lz_value_destroy(&back);
    LZ_CHECK_INT(lz_serializer_decode(s, bytes, lz_buffer_size(buf), &back), LZ_ESERIALIZATION);
    LZ_CHECK_INT(lz_serializer_decode(l, "[1,2]", 5, &back), LZ_OK);
    LZ_CHECK(lz_value_type(back) == LZ_VALUE_ARRAY);
    lz_value_destroy(&back);
    LZ_CHECK_INT(lz_serializer_decode(l, "\x0a\x05" "ab", 4, &back), LZ_ESERIALIZATION);
    LZ_CHECK(strstr(lz_last_error(), "are not a valid demo.Reading nor JSON") != NULL);
    // A Reading still travels as protobuf.
    lz_buffer_reset(buf);
    lz_value_t *reading = json("{\"level\":1}");
    LZ_CHECK_INT(lz_serializer_encode(l, reading, buf), LZ_OK);
    LZ_CHECK(lz_buffer_size(buf) == 2 && memcmp(lz_buffer_data(buf), "\x20\x01", 2) == 0);
    lz_value_destroy(&reading);
    lz_value_destroy(&envelope);
    lz_buffer_destroy(&buf);
    lz_context_destroy(&strict);
    lz_context_destroy(&lenient);
}

LZ_TEST(patterns_carry_messages) {
    lz_context_t *ctx = context_with(LZ_PROTOBUF_JSON_FALLBACK);
    char endpoint[128];
    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    lz_pub_t *pub = lz_pub_new(ctx, NULL);
    lz_sub_t *sub = lz_sub_new(ctx, NULL);
    LZ_CHECK_INT(lz_node_set_serializer(lz_pub_node(pub), "reading"), LZ_OK);
    LZ_CHECK_INT(lz_node_set_serializer(lz_sub_node(sub), "reading"), LZ_OK);
    LZ_CHECK_INT(lz_node_bind(lz_pub_node(pub), endpoint), LZ_OK);
    LZ_CHECK_INT(lz_node_connect(lz_sub_node(sub), endpoint), LZ_OK);
    LZ_CHECK_INT(lz_sub_subscribe(sub, "sensor."), LZ_OK);
    lz_value_t *sent = json(FULL_READING);
    lz_message_t *msg = NULL;
    for (int i = 0; i < 500 && !msg; i++) { // until the subscription has arrived
        LZ_CHECK_INT(lz_pub_publish(pub, "sensor.t1", sent), LZ_OK);
        msg = lz_sub_recv(sub, 10);
    }
    LZ_CHECK(msg != NULL);
    const lz_value_t *got = lz_message_value(msg);
    LZ_CHECK_STR(lz_value_find_string(got, "unit", ""), "KELVIN");
    LZ_CHECK_INT(lz_value_find_int(got, "count", 0), 9007199254740993LL);
    LZ_CHECK_INT((int)lz_value_size(lz_value_get(got, "stations")), 2);
    // The payload frame is the protobuf encoding itself.
    size_t size;
    const uint8_t *payload = lz_message_payload(msg, &size);
    LZ_CHECK(size > 0 && payload[0] == 0x0a); // field 1, length-delimited: sensor_id
    lz_message_destroy(&msg);

    // Tasks go in the envelope, which the fallback sends as JSON.
    lz_push_t *push = lz_push_new(ctx, NULL);
    lz_pull_t *pull = lz_pull_new(ctx, NULL);
    lz_test_inproc_endpoint(endpoint, sizeof endpoint);
    LZ_CHECK_INT(lz_node_set_serializer(lz_push_node(push), "reading"), LZ_OK);
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "reading"), LZ_OK);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), endpoint), LZ_OK);
    LZ_CHECK_INT(lz_node_connect(lz_push_node(push), endpoint), LZ_OK);
    LZ_CHECK_INT(lz_push_send(push, "calibrate", sent, 0), LZ_OK);
    msg = lz_pull_recv(pull, 5000);
    LZ_CHECK(msg != NULL);
    LZ_CHECK_STR(msg ? lz_message_type(msg) : "", "calibrate");
    LZ_CHECK(msg && lz_value_equal(lz_message_value(msg), sent));
    lz_message_destroy(&msg);
    lz_value_destroy(&sent);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

// A pyzmq peer with protoc's generated Python class reads what we publish
// and publishes a Reading back (tests/interop/protobuf_pubsub.py).
LZ_TEST(pyzmq_protobuf_interop) {
    // The registered name as serialization.default: nodes created after
    // the registration take it.
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=200", "serialization.default=reading");
    LZ_CHECK(lz_pub_new(ctx, NULL) == NULL && lz_last_error_code() == LZ_ECONFIG);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "reading", &demo__reading__descriptor, 0), LZ_OK);
    lz_pub_t *pub = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    lz_sub_t *sub = lz_sub_new(ctx, NULL);
    LZ_CHECK_STR(lz_node_serializer_name(lz_pub_node(pub)), "reading");
    LZ_CHECK_INT(lz_node_bind(lz_sub_node(sub), "tcp://127.0.0.1:*"), LZ_OK);
    LZ_CHECK_INT(lz_sub_subscribe(sub, "sensor.py"), LZ_OK);
    setenv("PYTHONPATH", LZ_BINARY_DIR "/tests/proto", 1);
    pid_t pid = lz_test_spawn_python("protobuf_pubsub.py", lz_node_endpoint(lz_pub_node(pub)),
                                     lz_node_endpoint(lz_sub_node(sub)));
    lz_value_t *sent = json(FULL_READING);
    lz_message_t *msg = NULL;
    for (int64_t end = lz_test_now_ms() + 10000; !msg && lz_test_now_ms() < end;) {
        LZ_CHECK_INT(lz_pub_publish(pub, "sensor.c", sent), LZ_OK);
        msg = lz_sub_recv(sub, 20);
    }
    LZ_CHECK(msg != NULL);
    char *text = msg ? lz_value_to_json(lz_message_value(msg)) : NULL;
    LZ_CHECK_STR(text, "{\"sensor_id\":\"py-7\",\"ratio\":0.25,\"count\":-5,\"serial\":\"18446744073709551614\","
                       "\"unit\":\"CELSIUS\",\"blob\":\"/wA=\",\"where\":{\"lat\":-33.9},\"tags\":[\"\u00e9t\u00e9\"],"
                       "\"counts\":{\"z\":26},\"channel\":3}");
    free(text);
    lz_message_destroy(&msg);
    LZ_CHECK_INT(lz_pub_publish_bytes(pub, "sensor.done", "", 0), LZ_OK); // a Reading with nothing set
    LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);
    lz_value_destroy(&sent);
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST(arguments_are_checked) {
    lz_value_t *value = json("{}"), *out = NULL;
    ProtobufCMessage *message = NULL;
    LZ_CHECK_INT(lz_protobuf_from_value(NULL, value, &message), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_from_value(&demo__reading__descriptor, NULL, &message), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_from_value(&demo__reading__descriptor, value, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_to_value(NULL, 0, &out), LZ_EINVAL);
    Demo__Reading reading = DEMO__READING__INIT;
    LZ_CHECK_INT(lz_protobuf_to_value(&reading.base, 0, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_to_value(&reading.base, LZ_PROTOBUF_JSON_FALLBACK, &out), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_register(NULL, "x", &demo__reading__descriptor, 0), LZ_EINVAL);
    LZ_CHECK_INT(lz_protobuf_to_value(&reading.base, 0, &out), LZ_OK);
    LZ_CHECK(lz_value_type(out) == LZ_VALUE_OBJECT && lz_value_size(out) == 0);
    lz_value_destroy(&out);
    lz_value_destroy(&value);
}

LZ_TEST_MAIN(LZ_CASE(every_field_kind_round_trips), LZ_CASE(bytes_match_protobuf_c_generated_code),
             LZ_CASE(defaults_appear_only_when_asked), LZ_CASE(misfits_are_refused_naming_the_field),
             LZ_CASE(whole_doubles_fill_integer_fields), LZ_CASE(repeated_floats_bytes_and_bool_keys),
             LZ_CASE(bytes_take_url_safe_and_unpadded_base64),
             LZ_CASE(map_fields_decode_in_linear_time_the_last_repeat_winning),
             LZ_CASE(nesting_is_bounded), LZ_CASE(a_built_message_nested_too_deep_is_refused),
             LZ_CASE(nesting_on_the_wire_is_refused_before_unpacking),
             LZ_CASE(negative_zero_is_read_but_not_sent),
             LZ_CASE(codec_registers_and_rejects_bad_input),
             LZ_CASE(codec_encodes_the_bytes_it_did_before_the_arena),
             LZ_CASE(json_fallback_carries_other_values), LZ_CASE(patterns_carry_messages),
             LZ_CASE(pyzmq_protobuf_interop), LZ_CASE(arguments_are_checked),
             LZ_CASE(float_fields_read_shortest_and_encode_again),
             LZ_CASE(strings_that_are_not_utf8_are_refused_when_encoding))
