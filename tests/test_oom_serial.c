/* Out-of-memory sweeps over values and serializers (src/serial): each
 * operation runs with its 1st allocation failing, then its 2nd, and so on
 * (tests/lz_oom.h), once on a warm thread and once with every run on a
 * thread of its own (cold thread-local caches: node lists, the JSON
 * reader, the MessagePack zone). A run where an allocation failed must
 * answer LZ_ENOMEM and leave what it was changing as it was, or give the
 * answer of a run where nothing failed; no run may leak a block. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <protobuf-c/protobuf-c.h>

#include "lz_test.h"
#include "lz_oom.h"

#include "liberzmq/protobuf.h"
#include "serial/registry.h"
#include "serial/value.h"

#define SWEEP_LIMIT 4000
#define LONG_TEXT "a string past the node cache's short payloads, forty-eight bytes and more"
#define PREFIX "prefix:" // what an output buffer holds before an encode

/* ---- PCRE2's JIT, switched off for the validation sweeps --------------- */

// Matching with the JIT allocates nothing; the interpreter allocates its
// backtracking frames, the allocation the validation sweeps need to fail.
static bool jit_off;

int pcre2_jit_compile(pcre2_code *code, uint32_t options) {
    if (jit_off) return PCRE2_ERROR_JIT_BADOPTION; // what a PCRE2 without JIT says
    int (*real)(pcre2_code *, uint32_t);
    void *found = dlsym(RTLD_NEXT, "pcre2_jit_compile_8");
    memcpy(&real, &found, sizeof real); // ISO C has no cast from an object pointer to a function pointer
    return found ? real(code, options) : PCRE2_ERROR_JIT_BADOPTION;
}

/* ---- a protobuf-c message type, as protoc-c would generate it ------------ */

// tests/proto's generated types are linked into test_protobuf alone, so this
// program spells one out:
//     message Item { string name = 1; int64 count = 2; bytes blob = 3;
//                    repeated string tags = 4; Item child = 5;
//                    map<string, int32> counts = 6; repeated double samples = 7; }
typedef struct Item_CountsEntry {
    ProtobufCMessage base;
    char *key;
    int32_t value;
} Item_CountsEntry;

typedef struct Item {
    ProtobufCMessage base;
    char *name;
    int64_t count;
    ProtobufCBinaryData blob;
    size_t n_tags;
    char **tags;
    struct Item *child;
    size_t n_counts;
    Item_CountsEntry **counts;
    size_t n_samples;
    double *samples;
} Item;

static const ProtobufCMessageDescriptor item_descriptor, item_counts_entry_descriptor;

static void item_counts_entry_init(ProtobufCMessage *message) {
    Item_CountsEntry *entry = (Item_CountsEntry *)message;
    *entry = (Item_CountsEntry){PROTOBUF_C_MESSAGE_INIT(&item_counts_entry_descriptor), (char *)protobuf_c_empty_string,
                                0};
}

static void item_init(ProtobufCMessage *message) {
    Item *item = (Item *)message;
    *item = (Item){.base = PROTOBUF_C_MESSAGE_INIT(&item_descriptor), .name = (char *)protobuf_c_empty_string};
}

#define FIELD(name, id, label, type, quantifier, offset, descriptor, default_value, flags)                          \
    {name, id, label, type, quantifier, offset, descriptor, default_value, flags, 0, NULL, NULL}

static const ProtobufCFieldDescriptor item_counts_entry_fields[] = {
    FIELD("key", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, offsetof(Item_CountsEntry, key), NULL,
          &protobuf_c_empty_string, 0),
    FIELD("value", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT32, 0, offsetof(Item_CountsEntry, value), NULL, NULL,
          0),
};
static const unsigned item_counts_entry_by_name[] = {0, 1};
static const ProtobufCIntRange item_counts_entry_ranges[] = {{1, 0}, {0, 2}};
static const ProtobufCMessageDescriptor item_counts_entry_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "oom.Item.CountsEntry", "CountsEntry", "Oom__Item__CountsEntry", "oom",
    sizeof(Item_CountsEntry), 2, item_counts_entry_fields, item_counts_entry_by_name, 1, item_counts_entry_ranges,
    item_counts_entry_init, NULL, NULL, NULL};

static const ProtobufCFieldDescriptor item_fields[] = {
    FIELD("name", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, offsetof(Item, name), NULL,
          &protobuf_c_empty_string, 0),
    FIELD("count", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT64, 0, offsetof(Item, count), NULL, NULL, 0),
    FIELD("blob", 3, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_BYTES, 0, offsetof(Item, blob), NULL, NULL, 0),
    FIELD("tags", 4, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_STRING, offsetof(Item, n_tags), offsetof(Item, tags),
          NULL, &protobuf_c_empty_string, 0),
    FIELD("child", 5, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_MESSAGE, 0, offsetof(Item, child), &item_descriptor,
          NULL, 0),
    FIELD("counts", 6, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_MESSAGE, offsetof(Item, n_counts),
          offsetof(Item, counts), &item_counts_entry_descriptor, NULL, 0),
    FIELD("samples", 7, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_DOUBLE, offsetof(Item, n_samples),
          offsetof(Item, samples), NULL, NULL, PROTOBUF_C_FIELD_FLAG_PACKED),
};
static const unsigned item_by_name[] = {2, 4, 1, 5, 0, 6, 3}; // blob child count counts name samples tags
static const ProtobufCIntRange item_ranges[] = {{1, 0}, {0, 7}};
static const ProtobufCMessageDescriptor item_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "oom.Item", "Item", "Oom__Item", "oom", sizeof(Item), 7, item_fields,
    item_by_name, 1, item_ranges, item_init, NULL, NULL, NULL};

/* ---- the operations swept ------------------------------------------------ */

// What one run works on and leaves behind; teardown frees whatever is set.
typedef struct run_state {
    lz_value_t *value;   // the input, or the container the run changes
    lz_value_t *result;  // a value the run made (a second input for equality)
    lz_buffer_t *buffer; // output, holding PREFIX before the run
    char *text;          // text the run made
    ProtobufCMessage *message;
    lz_schema_t *schema;
    lz_context_t *ctx;
    void *codec_state;   // a custom codec's, until registration takes it
    int answer;          // an answer that is no object (equality)
    bool arena_used;
    lz_arena_t arena;
    lz_value_slot_t slot;
    _Alignas(8) unsigned char block[256];
} run_state_t;

typedef struct op op_t;
struct op {
    const char *name;
    void (*setup)(const op_t *op, run_state_t *s);   // before arming, on the running thread
    int (*run)(const op_t *op, run_state_t *s);      // the operation: its allocations fail
    char *(*show)(const op_t *op, run_state_t *s);   // what the run left, as text
    const char *text;                                // input: JSON text, bytes or a name
    size_t size;
    const lz_serializer_t *serializer;
    const lz_schema_t *schema;
    int expect_rc; // the answer of a run where nothing fails
};

LZ_OOM_TABLE(op_t, run_state_t)

static void teardown(void *arg) {
    run_state_t *s = &((lz_oom_swept_t *)arg)->s;
    lz_value_destroy(&s->value);
    lz_value_destroy(&s->result); // an arena's or slot's value is left to them
    if (s->arena_used) lz__arena_release(&s->arena);
    lz_buffer_destroy(&s->buffer);
    free(s->text);
    if (s->message) protobuf_c_message_free_unpacked(s->message, NULL);
    lz_schema_destroy(&s->schema);
    lz_context_destroy(&s->ctx);
    free(s->codec_state);
}

// sweep_all sweeps each operation on a warm thread (its thread-local
// caches filled by a first run), then with each run on a thread of its
// own, each sweep on a thread of its own, judged against a plain run
// (lz_oom_sweep_t's show): the error of an allocation that failed may
// come with a shorter detail. Its threads gone, thread-local caches and
// all, the blocks live after a sweep are those before it.
static void sweep_all(const op_t *ops, size_t n) {
    for (size_t i = 0; i < n; i++)
        lz_oom_sweep_op(&ops[i], (lz_oom_sweep_t){.teardown = teardown, .own_thread = true, .terse_errors = true,
                                                  .limit = SWEEP_LIMIT, .warm_runs = 1});
}

/* ---- showing what a run left --------------------------------------------- */

static char *show_json(const lz_value_t *value) {
    if (!value) return strdup("(none)");
    char *json = lz_value_to_json(value);
    return json ? json : strdup("(not JSON)");
}

static char *show_value(const op_t *op, run_state_t *s) { return show_json(s->value); }
static char *show_result(const op_t *op, run_state_t *s) { return show_json(s->result); }
static char *show_text(const op_t *op, run_state_t *s) { return strdup(s->text ? s->text : "(none)"); }
static char *show_nothing(const op_t *op, run_state_t *s) { return strdup(""); }

static char *show_answer(const op_t *op, run_state_t *s) {
    char text[16];
    snprintf(text, sizeof text, "%d", s->answer);
    return strdup(text);
}

// show_buffer writes the buffer's bytes in hex (encodings are binary).
static char *show_buffer(const op_t *op, run_state_t *s) {
    size_t size = lz_buffer_size(s->buffer);
    const unsigned char *data = lz_buffer_data(s->buffer);
    char *text = malloc(2 * size + 1);
    for (size_t i = 0; i < size; i++) snprintf(text + 2 * i, 3, "%02x", data[i]);
    text[2 * size] = '\0';
    return text;
}

static char *show_message(const op_t *op, run_state_t *s) {
    lz_value_t *value = NULL;
    if (s->message) LZ_CHECK_INT(lz_protobuf_to_value(s->message, 0, &value), LZ_OK);
    char *text = show_json(value);
    lz_value_destroy(&value);
    return text;
}

// A compiled schema shows as its verdicts on these.
static const char *const probes[] = {
    "{\"id\":\"abc\",\"tags\":[\"x\",\"y\"],\"n\":4,\"kind\":\"a\",\"x_12\":true,\"tree\":{\"children\":[{}]}}",
    "{\"id\":\"abc\",\"tags\":[\"Upper\"]}",
    "{\"id\":\"abc\",\"tags\":[\"x\"],\"kind\":\"c\"}",
    "{\"id\":\"abc\",\"tags\":[\"x\"],\"other\":1}",
    "{\"id\":\"abc\",\"tags\":[\"x\",\"x\"]}",
    "{\"id\":\"abc\",\"tags\":[\"x\"],\"kind\":\"a\"}",
    "{\"tags\":[\"x\"]}",
    "{\"id\":\"abc\",\"tags\":[\"x\"],\"tree\":{\"children\":[{\"children\":3}]}}",
};

static char *show_schema(const op_t *op, run_state_t *s) {
    if (!s->schema) return strdup("(none)");
    char text[4096];
    size_t used = 0;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        lz_value_t *value = lz_value_from_json(probes[i], strlen(probes[i]));
        int rc = lz_schema_validate(s->schema, value);
        used += (size_t)snprintf(text + used, sizeof text - used, "%s %s; ", lz_error_name(rc),
                                 rc ? lz_last_error() : "");
        lz_value_destroy(&value);
    }
    return strdup(text);
}

static char *show_registered(const op_t *op, run_state_t *s) {
    return strdup(lz_serializer_find(s->ctx, op->text) ? "registered" : "missing");
}

/* ---- setups ------------------------------------------------------------- */

static lz_value_t *parse(const char *text, size_t size) {
    lz_value_t *value = lz_value_from_json(text, size);
    LZ_CHECK(value != NULL);
    return value;
}

static void setup_value(const op_t *op, run_state_t *s) { s->value = parse(op->text, op->size); }

static void setup_two_values(const op_t *op, run_state_t *s) {
    setup_value(op, s);
    s->result = parse(op->text, op->size);
}

// add_bytes gives an object a bytes member, which JSON encodes as base64.
static void add_bytes(lz_value_t *value) {
    if (lz_value_type(value) == LZ_VALUE_OBJECT)
        LZ_CHECK_INT(lz_value_object_set(value, "blob", lz_value_bytes(LONG_TEXT, 60)), LZ_OK);
}

static void setup_output(const op_t *op, run_state_t *s) {
    setup_value(op, s);
    add_bytes(s->value);
    s->buffer = lz_buffer_new();
    LZ_CHECK_INT(lz_buffer_append(s->buffer, PREFIX, strlen(PREFIX)), LZ_OK);
}

static void setup_message(const op_t *op, run_state_t *s) {
    setup_value(op, s);
    LZ_CHECK_INT(lz_protobuf_from_value(&item_descriptor, s->value, &s->message), LZ_OK);
}

static void setup_context(const op_t *op, run_state_t *s) {
    s->ctx = lz_context_new(NULL);
    s->codec_state = malloc(64);
    LZ_CHECK(s->ctx && s->codec_state);
}

/* ---- runs ------------------------------------------------------------------ */

// A code for a constructor's NULL: the error it recorded.
static int made(const void *made) { return made ? LZ_OK : lz_last_error_code(); }

// run_constructors makes a value of every kind and gathers them in an array.
static int run_constructors(const op_t *op, run_state_t *s) {
    lz_value_t *items[] = {lz_value_null(), lz_value_bool(true), lz_value_int(-7), lz_value_double(0.5),
                           lz_value_string(LONG_TEXT), lz_value_stringn("a\0b", 3), lz_value_bytes("\x00\xff", 2),
                           lz_value_array(), lz_value_object()};
    size_t n = sizeof items / sizeof items[0];
    int rc = LZ_OK;
    for (size_t i = 0; i < n; i++)
        if (rc == LZ_OK) rc = made(items[i]);
    lz_value_t *array = rc == LZ_OK ? lz_value_array() : NULL;
    if (rc == LZ_OK) rc = made(array);
    for (size_t i = 0; i < n; i++) {
        if (rc == LZ_OK) rc = lz_value_array_append(array, items[i]);
        else lz_value_destroy(&items[i]);
    }
    if (rc == LZ_OK) s->result = array;
    else lz_value_destroy(&array);
    return rc;
}

// The setters, each on the object setup parsed.
static int run_set_long_key(const op_t *op, run_state_t *s) {
    return lz_value_object_set_string(s->value, "a key longer than the inline sixteen bytes", LONG_TEXT);
}
static int run_set_int(const op_t *op, run_state_t *s) { return lz_value_object_set_int(s->value, "k0", 42); }
static int run_set_double(const op_t *op, run_state_t *s) { return lz_value_object_set_double(s->value, "d", 2.5); }
static int run_set_bool(const op_t *op, run_state_t *s) { return lz_value_object_set_bool(s->value, "b", true); }

static int run_set_copy(const op_t *op, run_state_t *s) {
    lz_value_t *copy = lz_value_copy(s->value);
    return copy ? lz_value_object_set(s->value, "copy", copy) : lz_last_error_code();
}

static int run_append(const op_t *op, run_state_t *s) {
    lz_value_t *item = lz_value_string(LONG_TEXT);
    return item ? lz_value_array_append(s->value, item) : lz_last_error_code();
}

static int run_copy(const op_t *op, run_state_t *s) { return made(s->result = lz_value_copy(s->value)); }

static int run_equal(const op_t *op, run_state_t *s) {
    s->answer = lz_value_equal(s->value, s->result);
    return LZ_OK;
}

static int run_to_json(const op_t *op, run_state_t *s) { return made(s->text = lz_value_to_json(s->value)); }

static int run_from_json(const op_t *op, run_state_t *s) {
    return made(s->result = lz_value_from_json(op->text, op->size));
}

static int run_encode(const op_t *op, run_state_t *s) {
    return lz_serializer_encode(op->serializer, s->value, s->buffer);
}

static int run_decode(const op_t *op, run_state_t *s) {
    return lz_serializer_decode(op->serializer, op->text, op->size, &s->result);
}

// run_decode_in decodes as a received message does, into an arena (json)
// or a slot (raw).
static int run_decode_in(const op_t *op, run_state_t *s) {
    lz__arena_init(&s->arena, s->block, sizeof s->block);
    s->arena_used = true;
    return lz__serializer_decode_in(op->serializer, op->text, op->size, &s->slot, &s->arena, &s->result);
}

static int run_encode_envelope(const op_t *op, run_state_t *s) {
    lz_envelope_text_t envelope = {.type = "resize", .has_priority = true, .priority = 3, .timestamp = 1700000000.25,
                                   .id_key = "task_id", .id_key_len = 7, .id = "0c2e-4d4f", .id_len = 9,
                                   .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                   .data = s->value};
    return lz__serializer_encode_envelope(op->serializer, &envelope, s->buffer);
}

static int run_from_value(const op_t *op, run_state_t *s) {
    return lz_protobuf_from_value(&item_descriptor, s->value, &s->message);
}

static int run_to_value(const op_t *op, run_state_t *s) {
    return lz_protobuf_to_value(s->message, LZ_PROTOBUF_DEFAULTS, &s->result);
}

static int run_schema_from_json(const op_t *op, run_state_t *s) {
    return made(s->schema = lz_schema_from_json(op->text, op->size));
}

static int run_schema_new(const op_t *op, run_state_t *s) { return made(s->schema = lz_schema_new(s->value)); }

static int run_validate(const op_t *op, run_state_t *s) { return lz_schema_validate(op->schema, s->value); }

static int custom_encode(void *state, const lz_value_t *value, lz_buffer_t *out) { return LZ_OK; }
static int custom_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    return made(*out = lz_value_null());
}

static int run_register(const op_t *op, run_state_t *s) {
    lz_serializer_ops_t ops = {.name = op->text, .encode = custom_encode, .decode = custom_decode, .destroy = free};
    void *state = s->codec_state;
    s->codec_state = NULL; // the registry's from now on, freed even when refused
    return lz_serializer_register(s->ctx, &ops, state);
}

static int run_protobuf_register(const op_t *op, run_state_t *s) {
    return lz_protobuf_register(s->ctx, op->text, &item_descriptor, LZ_PROTOBUF_JSON_FALLBACK);
}

/* ---- inputs ------------------------------------------------------------- */

// text_t gathers generated input text.
typedef struct text {
    char *data;
    size_t len;
} text_t;

static void add(text_t *t, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void add(text_t *t, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    t->data = realloc(t->data, t->len + (size_t)n + 1);
    va_start(args, format);
    vsnprintf(t->data + t->len, (size_t)n + 1, format, args);
    va_end(args);
    t->len += (size_t)n;
}

// add_members adds n members "<prefix><i>": i, each with a comma before.
static void add_members(text_t *t, const char *prefix, int n) {
    for (int i = 0; i < n; i++) add(t, "%s\"%s%d\":%d", i ? "," : "", prefix, i, i);
}

// add_escaped adds a string's body of n pieces, each with an escape.
static void add_escaped(text_t *t, int n) {
    for (int i = 0; i < n; i++) add(t, "piece %03d\\n", i);
}

// The sample reaches every growth path of the readers and writers: arrays
// past a first child block (32 items), objects past theirs (8 members) and
// past the key index's threshold (64), long keys and strings, escapes,
// multibyte UTF-8, nesting, every scalar kind, output past the JSON
// writer's 256-byte chunks.
static text_t sample_text(void) {
    text_t t = {0};
    add(&t, "{\"id\":\"5d6f1b52-0c2e-4d4f-9a51-3f1c2b7e8a90\",\"n\":-42,\"pi\":3.25,\"ok\":true,\"none\":null,");
    add(&t, "\"a key longer than sixteen bytes\":\"quotes \\\" newline \\n tab \\t \\u00e9 \\u20ac \xf0\x9f\x98\x80 "
            "and more text past forty-eight bytes\",\"items\":[");
    for (int i = 0; i < 300; i++) add(&t, "%s%d", i ? "," : "", i * 7 - 1000);
    add(&t, "],\"nested\":{");
    add_members(&t, "k", 10);
    add(&t, "},\"wide\":{");
    add_members(&t, "m", 100);
    add(&t, "},\"deep\":[[[[[[\"x\",{\"y\":[1.5,-2.5e-8,1e300]}]]]]]],\"text\":\"");
    for (int i = 0; i < 30; i++) add(&t, "plain text %08d ", i);
    add(&t, "\"}");
    return t;
}

// escaped_document holds, between head and tail, a string of escapes long
// enough to grow yajl's buffers and an object past the key index's
// threshold: read by yajl when simdjson declines the document (an integer
// past 64 bits) or rejects it (yajl then words the error).
static text_t escaped_document(const char *head, const char *tail) {
    text_t t = {0};
    add(&t, "%s\"s\":\"", head);
    add_escaped(&t, 300);
    add(&t, "\",\"wide\":{");
    add_members(&t, "m", 80);
    add(&t, "}%s", tail);
    return t;
}

// A top-level integer of 3000 digits: yajl's lexer keeps the token, which
// ends the input, in a buffer of its own; as a double it is infinite.
static text_t long_number_text(void) {
    text_t t = {0};
    add(&t, "1");
    for (int i = 0; i < 300; i++) add(&t, "0000000000");
    return t;
}

// Past the 64 KiB of a thread's small JSON parser: read by its large one.
static text_t large_text(void) {
    text_t t = {0};
    add(&t, "[\"");
    for (int i = 0; i < 7000; i++) add(&t, "0123456789");
    add(&t, "\",{\"k\":1}]");
    return t;
}

#define ITEM_JSON                                                                                                  \
    "{\"name\":\"sensor\",\"count\":\"9007199254740993\",\"blob\":\"aGVsbG8gd29ybGQ=\","                          \
    "\"tags\":[\"t0\",\"t1\",\"t2\",\"t3\",\"t4\",\"t5\",\"t6\",\"t7\",\"t8\",\"t9\"],"                           \
    "\"child\":{\"name\":\"kid\",\"child\":{\"name\":\"grandkid\",\"counts\":{\"x\":1}}},"                          \
    "\"counts\":{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9},"         \
    "\"samples\":[0.5,1.5,2.5,3.5,4.5,5.5,6.5,7.5,8.5,9.5]}"

// A value no Item fits (an unknown field): the codec's JSON fallback.
#define MISFIT_JSON "{\"name\":\"x\",\"unknown\":[1,2,{\"k\":\"v\"}],\"more\":\"" LONG_TEXT "\"}"

#define SCHEMA_JSON                                                                                                \
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","                         \
    "\"$defs\":{\"tag\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\",\"maxLength\":20},"                          \
    "\"node\":{\"type\":\"object\",\"properties\":{\"children\":{\"type\":\"array\","                              \
    "\"items\":{\"$ref\":\"#/$defs/node\"}}}}},"                                                                   \
    "\"required\":[\"id\",\"tags\"],"                                                                             \
    "\"properties\":{\"id\":{\"type\":\"string\",\"minLength\":3},"                                                \
    "\"n\":{\"type\":\"integer\",\"minimum\":-100,\"multipleOf\":2},"                                              \
    "\"tags\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/tag\"},\"uniqueItems\":true,\"minItems\":1},"      \
    "\"kind\":{\"enum\":[\"a\",\"b\",{\"x\":[1,2]}]},\"fixed\":{\"const\":{\"k\":[true,null]}},"                   \
    "\"score\":{\"anyOf\":[{\"type\":\"number\",\"maximum\":10},{\"type\":\"string\"}]},"                          \
    "\"tree\":{\"$ref\":\"#/definitions/later\"}},"                                                              \
    "\"patternProperties\":{\"^x_[0-9]+$\":{\"type\":\"boolean\"}},\"additionalProperties\":false,"                \
    "\"dependentRequired\":{\"n\":[\"id\"]},\"dependencies\":{\"score\":{\"required\":[\"n\"]}},"                  \
    "\"if\":{\"properties\":{\"kind\":{\"const\":\"a\"}}},\"then\":{\"required\":[\"n\"]},"                        \
    "\"not\":{\"required\":[\"forbidden\"]},\"oneOf\":[{\"required\":[\"id\"]},{\"required\":[\"forbidden\"]}],"   \
    "\"allOf\":[{\"$ref\":\"#/$defs/node\"}],\"$comment\":\"later is reached only through a $ref\","               \
    "\"x-defs\":{},\"definitions\":{\"later\":{\"$ref\":\"#/$defs/node\"}}}"

#define OP(name_, setup_, run_, show_) .name = name_, .setup = setup_, .run = run_, .show = show_
#define OP_TEXT(literal) .text = literal, .size = sizeof(literal) - 1

/* ---- the sweeps ------------------------------------------------------------ */

LZ_TEST(oom_values) {
    text_t sample = sample_text();
    const op_t ops[] = {
        {OP("constructors", NULL, run_constructors, show_result)},
        {OP("object_set_grows_with_a_long_key", setup_value, run_set_long_key, show_value),
         OP_TEXT("{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7}")},
        {OP("object_set_replaces", setup_value, run_set_int, show_value), OP_TEXT("{\"k0\":\"old\",\"k1\":1}")},
        {OP("object_set_first_member", setup_value, run_set_double, show_value), OP_TEXT("{}")},
        {OP("object_set_bool", setup_value, run_set_bool, show_value), OP_TEXT("{\"a\":[1,2]}")},
        {OP("object_set_a_copy", setup_value, run_set_copy, show_value), .text = sample.data, .size = sample.len},
        {OP("array_append_grows", setup_value, run_append, show_value),
         OP_TEXT("[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31]")},
        {OP("array_append_first_item", setup_value, run_append, show_value), OP_TEXT("[]")},
        {OP("copy", setup_value, run_copy, show_result), .text = sample.data, .size = sample.len},
        {OP("equal", setup_two_values, run_equal, show_answer), .text = sample.data, .size = sample.len},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
    free(sample.data);
}

LZ_TEST(oom_json) {
    text_t sample = sample_text(), long_number = long_number_text(), large = large_text(),
           declined = escaped_document("{\"big\":123456789012345678901234567890,", ",\"end\":[1,2.5,\"x\",null]}"),
           invalid = escaped_document("{", ",\"x\":[1,2,{\"y\":3}],\"z\":nul}");
    const lz_serializer_t *json = lz_serializer_builtin("json");
    const op_t ops[] = {
        {OP("from_json", NULL, run_from_json, show_result), .text = sample.data, .size = sample.len},
        {OP("from_json_declined_by_simdjson", NULL, run_from_json, show_result), .text = declined.data,
         .size = declined.len},
        {OP("from_json_long_number", NULL, run_from_json, show_result), .text = long_number.data,
         .size = long_number.len, .expect_rc = LZ_ESERIALIZATION},
        {OP("from_json_invalid", NULL, run_from_json, show_result), .text = invalid.data, .size = invalid.len,
         .expect_rc = LZ_ESERIALIZATION},
        {OP("from_json_large", NULL, run_from_json, show_result), .text = large.data, .size = large.len},
        {OP("to_json", setup_value, run_to_json, show_text), .text = sample.data, .size = sample.len},
        {OP("json_encode", setup_output, run_encode, show_buffer), .text = sample.data, .size = sample.len,
         .serializer = json},
        {OP("json_encode_envelope", setup_output, run_encode_envelope, show_buffer), .text = sample.data,
         .size = sample.len, .serializer = json},
        {OP("json_decode", NULL, run_decode, show_result), .text = sample.data, .size = sample.len, .serializer = json},
        {OP("json_decode_in_an_arena", NULL, run_decode_in, show_result), .text = sample.data, .size = sample.len,
         .serializer = json},
        {OP("json_decode_in_an_arena_declined", NULL, run_decode_in, show_result), .text = declined.data,
         .size = declined.len, .serializer = json},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
    free(sample.data);
    free(declined.data);
    free(long_number.data);
    free(invalid.data);
    free(large.data);
}

// encoded: value (JSON text) as serializer encodes it, made before the sweeps.
static lz_buffer_t *encoded(const lz_serializer_t *serializer, const char *text) {
    lz_value_t *value = parse(text, strlen(text));
    add_bytes(value);
    lz_buffer_t *buffer = lz_buffer_new();
    LZ_CHECK_INT(lz_serializer_encode(serializer, value, buffer), LZ_OK);
    lz_value_destroy(&value);
    return buffer;
}

LZ_TEST(oom_msgpack_and_raw) {
    text_t sample = sample_text();
    const lz_serializer_t *msgpack = lz_serializer_builtin("msgpack"), *raw = lz_serializer_builtin("raw");
    lz_buffer_t *packed = encoded(msgpack, sample.data);
    const op_t ops[] = {
        {OP("msgpack_encode", setup_output, run_encode, show_buffer), .text = sample.data, .size = sample.len,
         .serializer = msgpack},
        {OP("msgpack_decode", NULL, run_decode, show_result), .text = lz_buffer_data(packed),
         .size = lz_buffer_size(packed), .serializer = msgpack},
        {OP("raw_encode", setup_output, run_encode, show_buffer),
         OP_TEXT("\"" LONG_TEXT LONG_TEXT LONG_TEXT LONG_TEXT "\""), .serializer = raw},
        {OP("raw_decode", NULL, run_decode, show_result), .text = sample.data, .size = sample.len, .serializer = raw},
        {OP("raw_decode_in_a_slot", NULL, run_decode_in, show_result), .text = sample.data, .size = sample.len,
         .serializer = raw},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
    lz_buffer_destroy(&packed);
    free(sample.data);
}

LZ_TEST(oom_protobuf) {
    lz_context_t *ctx = lz_context_new(NULL);
    LZ_CHECK_INT(lz_protobuf_register(ctx, "item", &item_descriptor, LZ_PROTOBUF_JSON_FALLBACK), LZ_OK);
    const lz_serializer_t *item = lz_serializer_find(ctx, "item");
    lz_buffer_t *message = encoded(item, ITEM_JSON), *fallback = encoded(item, MISFIT_JSON);
    const op_t ops[] = {
        {OP("from_value", setup_value, run_from_value, show_message), OP_TEXT(ITEM_JSON)},
        {OP("to_value", setup_message, run_to_value, show_result), OP_TEXT(ITEM_JSON)},
        {OP("codec_encode", setup_output, run_encode, show_buffer), OP_TEXT(ITEM_JSON), .serializer = item},
        {OP("codec_encode_json_fallback", setup_output, run_encode, show_buffer), OP_TEXT(MISFIT_JSON),
         .serializer = item},
        {OP("codec_decode", NULL, run_decode, show_result), .text = lz_buffer_data(message),
         .size = lz_buffer_size(message), .serializer = item},
        {OP("codec_decode_json_fallback", NULL, run_decode, show_result), .text = lz_buffer_data(fallback),
         .size = lz_buffer_size(fallback), .serializer = item},
        {OP("codec_decode_unmarked_json", NULL, run_decode, show_result), OP_TEXT(MISFIT_JSON), .serializer = item},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
    lz_buffer_destroy(&message);
    lz_buffer_destroy(&fallback);
    lz_context_destroy(&ctx);
}

LZ_TEST(oom_schema) {
    jit_off = true; // the interpreter allocates as it matches (see pcre2_jit_compile above)
    lz_schema_t *schema = lz_schema_from_json(SCHEMA_JSON, strlen(SCHEMA_JSON));
    LZ_CHECK(schema != NULL);
    const op_t ops[] = {
        {OP("schema_from_json", NULL, run_schema_from_json, show_schema), OP_TEXT(SCHEMA_JSON)},
        {OP("schema_new", setup_value, run_schema_new, show_schema), OP_TEXT(SCHEMA_JSON)},
        {OP("validate_valid", setup_value, run_validate, show_nothing), .text = probes[0], .size = strlen(probes[0]),
         .schema = schema},
        {OP("validate_pattern", setup_value, run_validate, show_nothing), .text = probes[1], .size = strlen(probes[1]),
         .schema = schema, .expect_rc = LZ_EVALIDATION},
        {OP("validate_enum", setup_value, run_validate, show_nothing), .text = probes[2], .size = strlen(probes[2]),
         .schema = schema, .expect_rc = LZ_EVALIDATION},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
    jit_off = false;
    const op_t jit_ops[] = {
        {OP("schema_from_json_with_jit", NULL, run_schema_from_json, show_schema), OP_TEXT(SCHEMA_JSON)},
    };
    sweep_all(jit_ops, 1);
    lz_schema_destroy(&schema);
}

LZ_TEST(oom_registry) {
    const op_t ops[] = {
        {OP("serializer_register", setup_context, run_register, show_registered), OP_TEXT("custom")},
        {OP("protobuf_register", setup_context, run_protobuf_register, show_registered), OP_TEXT("item")},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
}

LZ_TEST_MAIN(LZ_CASE(oom_values), LZ_CASE(oom_json), LZ_CASE(oom_msgpack_and_raw), LZ_CASE(oom_protobuf),
             LZ_CASE(oom_schema), LZ_CASE(oom_registry))
