/* Protocol Buffers on protobuf-c: values become messages through the
 * generated descriptor (field offsets, types, labels), and protobuf-c packs
 * and unpacks them. Messages are built through a ProtobufCAllocator, the way
 * protobuf_c_message_unpack builds them (defaults left in place): malloc for
 * lz_protobuf_from_value, so protobuf_c_message_free_unpacked frees them
 * whole, half-built ones too; a stack arena for the codec, dropped whole. */
#include <protobuf-c/protobuf-c.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "liberzmq/protobuf.h"
#include "serial/base64.h"
#include "serial/registry.h"
#include "serial/utf8.h"

// A recursive message type could nest without end: protobuf's own
// libraries stop at 100 levels.
#define MAX_DEPTH 100
// The byte before a JSON fallback payload (the Python LiberZMQ's marker).
#define JSON_MARK 0xFF

#define MEMBER(type, message, offset) (*(type *)((char *)(message) + (offset)))

typedef const ProtobufCFieldDescriptor field_t;

/* ---- descriptors ------------------------------------------------------ */

static const char *message_name(const ProtobufCMessage *message) {
    return message->descriptor->name;
}

// camel_matches: key is the lowerCamelCase JSON name of the .proto name
// (underscores dropped, each letter after one upper-cased).
static bool camel_matches(const char *name, const char *key) {
    bool upper = false;
    for (; *name; name++) {
        if (*name == '_') {
            upper = true;
            continue;
        }
        char c = upper && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
        upper = false;
        if (*key++ != c) return false;
    }
    return *key == '\0';
}

static field_t *find_field(const ProtobufCMessageDescriptor *descriptor, const char *key) {
    field_t *field = protobuf_c_message_descriptor_get_field_by_name(descriptor, key);
    for (unsigned i = 0; !field && i < descriptor->n_fields; i++)
        if (camel_matches(descriptor->fields[i].name, key)) field = &descriptor->fields[i];
    return field;
}

// is_map: protoc writes map<K, V> name as a repeated NameEntry message of
// fields key = 1 and value = 2 (the same bytes on the wire).
static bool is_map(field_t *field) {
    if (field->label != PROTOBUF_C_LABEL_REPEATED || field->type != PROTOBUF_C_TYPE_MESSAGE) return false;
    const ProtobufCMessageDescriptor *entry = field->descriptor;
    size_t len = strlen(entry->short_name);
    return entry->n_fields == 2 && entry->fields[0].id == 1 && !strcmp(entry->fields[0].name, "key") &&
           entry->fields[1].id == 2 && !strcmp(entry->fields[1].name, "value") && len > 5 &&
           !strcmp(entry->short_name + len - 5, "Entry");
}

// element_size: bytes of one value of field's type in the C structure.
static size_t element_size(field_t *field) {
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

// check_descriptor: LZ_EINVAL, in caller's name, unless descriptor is a
// protobuf-c message descriptor.
static int check_descriptor(const ProtobufCMessageDescriptor *descriptor, const char *caller) {
    if (descriptor->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) return 0;
    return lz__fail(LZ_EINVAL, "%s: not a protobuf-c message descriptor", caller);
}

/* ---- allocation ---------------------------------------------------------- */

// What lz_protobuf_from_value hands out is freed by
// protobuf_c_message_free_unpacked(message, NULL), whose default allocator
// is malloc and free.
static void *heap_alloc(void *data, size_t size) { return (void)data, malloc(size ? size : 1); }
static void heap_free(void *data, void *pointer) { (void)data, free(pointer); }
static ProtobufCAllocator heap = {.alloc = heap_alloc, .free = heap_free};

// A message the codec packs or unpacks lives only for that call: protobuf-c
// and the builder here carve it from an arena on the stack (the bigger
// blocks malloc'ed), freed at once instead of walked by
// protobuf_c_message_free_unpacked.
typedef struct scratch {
    _Alignas(8) unsigned char block[2048];
    lz_arena_t arena;
    ProtobufCAllocator allocator;
    // An allocation failed: protobuf_c_message_unpack says NULL for that
    // as for malformed bytes, and only this tells them apart.
    bool out_of_memory;
} scratch_t;

static void *arena_alloc(void *data, size_t size) {
    scratch_t *scratch = data;
    void *block = lz__arena_alloc(&scratch->arena, size ? size : 1);
    if (!block) scratch->out_of_memory = true;
    return block;
}
static void arena_free(void *data, void *pointer) { (void)data, (void)pointer; }

static ProtobufCAllocator *scratch_init(scratch_t *scratch) {
    lz__arena_init(&scratch->arena, scratch->block, sizeof scratch->block);
    scratch->out_of_memory = false;
    scratch->allocator = (ProtobufCAllocator){.alloc = arena_alloc, .free = arena_free, .allocator_data = scratch};
    return &scratch->allocator;
}

static void scratch_release(scratch_t *scratch) { lz__arena_release(&scratch->arena); }

// zalloc: count elements of size bytes, zeroed (so a half-filled array or
// message frees as nothing where it was not filled).
static void *zalloc(ProtobufCAllocator *allocator, size_t count, size_t size) {
    void *p = count <= SIZE_MAX / size ? allocator->alloc(allocator->allocator_data, count * size) : NULL;
    if (!p) return lz__fail_null(LZ_ENOMEM, "protobuf: out of memory");
    return memset(p, 0, count * size);
}

static ProtobufCMessage *message_new(const ProtobufCMessageDescriptor *descriptor, ProtobufCAllocator *allocator) {
    ProtobufCMessage *message = zalloc(allocator, 1, descriptor->sizeof_message);
    if (message) descriptor->message_init(message); // the descriptor and every default
    return message;
}

/* ---- values to messages ------------------------------------------------ */

static int fill_message(ProtobufCMessage *message, const lz_value_t *object, ProtobufCAllocator *allocator,
                        int depth);

static int misfit(const ProtobufCMessage *message, field_t *field, const char *why, const lz_value_t *value) {
    return lz__fail(LZ_ESERIALIZATION, "protobuf: %s.%s %s (got %s)", message_name(message), field->name, why,
                    lz_value_type_name(lz_value_type(value)));
}

// parse_integer reads an int, a double with no fraction, or a decimal
// string (how JSON carries 64-bit numbers) as a sign and a magnitude, so
// that the whole of both int64 and uint64 fits. Returns 0, 1 for a value
// that is no integer, 2 for one beyond 64 bits.
static int parse_integer(const lz_value_t *value, bool *negative, uint64_t *magnitude) {
    const char *text = lz_value_get_string(value, NULL);
    int64_t v = 0;
    if (text) {
        // strto(u)ll would also skip leading white space and take a '+'.
        if (*text != '-' && (*text < '0' || *text > '9')) return 1;
        char *end;
        errno = 0;
        *negative = *text == '-';
        if (*negative) v = strtoll(text, &end, 10);
        else *magnitude = strtoull(text, &end, 10);
        if (*end) return 1;
        if (errno) return 2;
        if (!*negative) return 0;
    } else if (lz_value_type(value) == LZ_VALUE_INT) {
        v = lz_value_get_int(value);
    } else if (lz_value_type(value) == LZ_VALUE_DOUBLE) {
        double d = lz_value_get_double(value);
        if (d != trunc(d) || isnan(d)) return 1;
        if (d < -0x1p63 || d >= 0x1p64) return 2;
        if (d >= 0) return *negative = false, *magnitude = (uint64_t)d, 0;
        v = (int64_t)d;
    } else {
        return 1;
    }
    *negative = v < 0;
    *magnitude = *negative ? 0 - (uint64_t)v : (uint64_t)v;
    return 0;
}

// read_integer reads an integer field's value within [min, max] into
// *out, or for an unsigned field (unsigned_out set, min 0) *unsigned_out.
static int read_integer(const ProtobufCMessage *message, field_t *field, const lz_value_t *value, int64_t min,
                        uint64_t max, int64_t *out, uint64_t *unsigned_out) {
    bool negative = false;
    uint64_t magnitude = 0;
    int rc = parse_integer(value, &negative, &magnitude);
    if (rc == 1) return misfit(message, field, "needs an integer", value);
    if (rc == 2 || (negative ? magnitude > 0 - (uint64_t)min : magnitude > max))
        return misfit(message, field, "is out of range", value);
    if (unsigned_out) *unsigned_out = magnitude;
    else *out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return 0;
}

static int read_number(const ProtobufCMessage *message, field_t *field, const lz_value_t *value, double *out) {
    const char *text = lz_value_get_string(value, NULL);
    if (text && (!strcmp(text, "NaN") || !strcmp(text, "Infinity") || !strcmp(text, "-Infinity")))
        return *out = text[0] == 'N' ? NAN : text[0] == '-' ? -INFINITY : INFINITY, 0;
    lz_value_type_t type = lz_value_type(value);
    if (type != LZ_VALUE_INT && type != LZ_VALUE_DOUBLE) return misfit(message, field, "needs a number", value);
    *out = lz_value_get_double(value);
    // Only a number that rounds to an infinity is too large: the shortest
    // text of FLT_MAX (3.4028235e+38, as a float field decodes) is a
    // double just above it, which rounds to it.
    if (field->type == PROTOBUF_C_TYPE_FLOAT && isfinite(*out) && isinf((float)*out))
        return misfit(message, field, "is too large for a float", value);
    return 0;
}

static int store_string(const ProtobufCMessage *message, field_t *field, const lz_value_t *value, char **slot,
                        ProtobufCAllocator *allocator) {
    size_t len;
    const char *text = lz_value_get_string(value, &len);
    if (!text) return misfit(message, field, "needs a string", value);
    if (memchr(text, '\0', len)) return misfit(message, field, "cannot hold a NUL character", value);
    // protobuf's string fields are UTF-8: its parsers (this codec's decode,
    // Python's ParseFromString) refuse the message otherwise.
    if (!lz__utf8_valid(text, len)) return misfit(message, field, "is not valid UTF-8", value);
    if (!(*slot = allocator->alloc(allocator->allocator_data, len + 1)))
        return lz__fail(LZ_ENOMEM, "protobuf: out of memory");
    memcpy(*slot, text, len + 1);
    return 0;
}

// store_bytes takes a bytes value, or a string as base64 (the JSON form:
// standard or URL-safe, padded or not, as protobuf's JSON parsers take it).
static int store_bytes(const ProtobufCMessage *message, field_t *field, const lz_value_t *value,
                       ProtobufCBinaryData *slot, ProtobufCAllocator *allocator) {
    size_t size;
    const void *data = lz_value_get_bytes(value, &size);
    bool base64 = lz_value_type(value) == LZ_VALUE_STRING;
    if (!data) return misfit(message, field, "needs bytes or a base64 string", value);
    uint8_t *copy = allocator->alloc(allocator->allocator_data, size ? size : 1);
    if (!copy) return lz__fail(LZ_ENOMEM, "protobuf: out of memory");
    long n = base64 ? lz__base64_decode_lenient(data, size, copy) : (long)size;
    if (n < 0) {
        allocator->free(allocator->allocator_data, copy);
        return misfit(message, field, "needs bytes or a base64 string", value);
    }
    if (!base64) memcpy(copy, data, size);
    *slot = (ProtobufCBinaryData){.len = (size_t)n, .data = copy};
    return 0;
}

static int store_enum(const ProtobufCMessage *message, field_t *field, const lz_value_t *value, int *slot) {
    const char *name = lz_value_get_string(value, NULL);
    if (!name) {
        int64_t number;
        int rc = read_integer(message, field, value, INT32_MIN, INT32_MAX, &number, NULL);
        return rc ? rc : (*slot = (int)number, 0);
    }
    const ProtobufCEnumValue *known = protobuf_c_enum_descriptor_get_value_by_name(field->descriptor, name);
    if (!known)
        return lz__fail(LZ_ESERIALIZATION, "protobuf: %s.%s: %s has no value \"%s\"", message_name(message),
                        field->name, ((const ProtobufCEnumDescriptor *)field->descriptor)->name, name);
    *slot = known->value;
    return 0;
}

static int store_message(field_t *field, const lz_value_t *value, ProtobufCMessage **slot,
                         ProtobufCAllocator *allocator, int depth) {
    if (depth + 1 >= MAX_DEPTH)
        return lz__fail(LZ_ESERIALIZATION, "protobuf: nesting deeper than %d levels", MAX_DEPTH);
    // In place before it is filled: freeing the parent frees it too.
    if (!(*slot = message_new(field->descriptor, allocator))) return LZ_ENOMEM;
    return fill_message(*slot, value, allocator, depth + 1);
}

// store_value writes value as one element of field's type at slot.
static int store_value(const ProtobufCMessage *message, field_t *field, const lz_value_t *value, void *slot,
                       ProtobufCAllocator *allocator, int depth) {
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    int rc;
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        rc = read_integer(message, field, value, INT32_MIN, INT32_MAX, &i, NULL);
        return rc ? rc : (*(int32_t *)slot = (int32_t)i, 0);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        rc = read_integer(message, field, value, INT64_MIN, INT64_MAX, &i, NULL);
        return rc ? rc : (*(int64_t *)slot = i, 0);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        rc = read_integer(message, field, value, 0, UINT32_MAX, NULL, &u);
        return rc ? rc : (*(uint32_t *)slot = (uint32_t)u, 0);
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        rc = read_integer(message, field, value, 0, UINT64_MAX, NULL, &u);
        return rc ? rc : (*(uint64_t *)slot = u, 0);
    case PROTOBUF_C_TYPE_FLOAT:
        rc = read_number(message, field, value, &d);
        return rc ? rc : (*(float *)slot = (float)d, 0);
    case PROTOBUF_C_TYPE_DOUBLE:
        rc = read_number(message, field, value, &d);
        return rc ? rc : (*(double *)slot = d, 0);
    case PROTOBUF_C_TYPE_BOOL:
        if (lz_value_type(value) != LZ_VALUE_BOOL) return misfit(message, field, "needs a boolean", value);
        return *(protobuf_c_boolean *)slot = lz_value_get_bool(value), 0;
    case PROTOBUF_C_TYPE_ENUM: return store_enum(message, field, value, slot);
    case PROTOBUF_C_TYPE_STRING: return store_string(message, field, value, slot, allocator);
    case PROTOBUF_C_TYPE_BYTES: return store_bytes(message, field, value, slot, allocator);
    case PROTOBUF_C_TYPE_MESSAGE: return store_message(field, value, slot, allocator, depth);
    }
    return misfit(message, field, "has a type protobuf-c does not know", value);
}

// store_map_entry fills entry from one member of a map field's object: the
// key arrives as text, so integer keys read as decimal strings and bool
// keys as "true" / "false".
static int store_map_entry(ProtobufCMessage *entry, const char *key, const lz_value_t *value,
                           ProtobufCAllocator *allocator, int depth) {
    field_t *key_field = &entry->descriptor->fields[0], *value_field = &entry->descriptor->fields[1];
    lz_value_t *key_value = key_field->type == PROTOBUF_C_TYPE_BOOL && (!strcmp(key, "true") || !strcmp(key, "false"))
                                ? lz_value_bool(key[0] == 't')
                                : lz_value_string(key);
    if (!key_value) return LZ_ENOMEM;
    int rc = store_value(entry, key_field, key_value, (char *)entry + key_field->offset, allocator, depth);
    lz_value_destroy(&key_value);
    if (rc) return rc;
    if (lz_value_type(value) == LZ_VALUE_NULL) return 0;
    return store_value(entry, value_field, value, (char *)entry + value_field->offset, allocator, depth);
}

// store_repeated fills a repeated field from an array (a map field from an
// object), counting each element as it is tried so that a failure part way
// leaves a message protobuf_c_message_free_unpacked frees exactly.
static int store_repeated(ProtobufCMessage *message, field_t *field, const lz_value_t *value,
                          ProtobufCAllocator *allocator, int depth) {
    bool map = is_map(field);
    if (lz_value_type(value) != (map ? LZ_VALUE_OBJECT : LZ_VALUE_ARRAY))
        return misfit(message, field, map ? "needs an object (a map field)" : "needs an array (a repeated field)",
                      value);
    size_t n = lz_value_size(value), size = element_size(field);
    size_t *count = &MEMBER(size_t, message, field->quantifier_offset);
    void **array = &MEMBER(void *, message, field->offset);
    if (n == 0) return 0;
    if (!(*array = zalloc(allocator, n, size))) return LZ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const lz_value_t *item = lz_value_at(value, i);
        void *slot = (char *)*array + i * size;
        int rc;
        if (map) {
            ProtobufCMessage **entry = slot;
            rc = (*entry = message_new(field->descriptor, allocator))
                     ? store_map_entry(*entry, lz_value_key_at(value, i), item, allocator, depth + 1)
                     : LZ_ENOMEM;
        } else {
            rc = lz_value_type(item) == LZ_VALUE_NULL ? misfit(message, field, "cannot hold null elements", item)
                                                      : store_value(message, field, item, slot, allocator, depth);
        }
        ++*count; // a failed element holds NULL or zeros, which free as nothing
        if (rc) return rc;
    }
    return 0;
}

// store_field sets one field, and what says it is present: the oneof case
// or the has_ flag (optional strings and messages have none: their pointer
// is the presence).
static int store_field(ProtobufCMessage *message, field_t *field, const lz_value_t *value,
                       ProtobufCAllocator *allocator, int depth) {
    if (field->label == PROTOBUF_C_LABEL_REPEATED) return store_repeated(message, field, value, allocator, depth);
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *chosen = &MEMBER(uint32_t, message, field->quantifier_offset);
        if (*chosen != 0 && *chosen != field->id)
            return lz__fail(LZ_ESERIALIZATION, "protobuf: %s.%s: another field of its oneof is already set",
                            message_name(message), field->name);
        // The pointer a string, bytes or message member already holds is a
        // default, not ours: the union member starts out empty.
        if (field->type >= PROTOBUF_C_TYPE_STRING) memset((char *)message + field->offset, 0, element_size(field));
        *chosen = field->id;
    } else if (field->label == PROTOBUF_C_LABEL_OPTIONAL && field->type != PROTOBUF_C_TYPE_STRING &&
               field->type != PROTOBUF_C_TYPE_MESSAGE) {
        MEMBER(protobuf_c_boolean, message, field->quantifier_offset) = 1;
    }
    return store_value(message, field, value, (char *)message + field->offset, allocator, depth);
}

static int check_required(const ProtobufCMessage *message, const lz_value_t *object) {
    const ProtobufCMessageDescriptor *descriptor = message->descriptor;
    for (unsigned i = 0; i < descriptor->n_fields; i++) {
        field_t *field = &descriptor->fields[i];
        if (field->label != PROTOBUF_C_LABEL_REQUIRED) continue;
        bool given = false;
        for (size_t k = 0; k < lz_value_size(object) && !given; k++)
            given = find_field(descriptor, lz_value_key_at(object, k)) == field &&
                    lz_value_type(lz_value_at(object, k)) != LZ_VALUE_NULL;
        if (!given)
            return lz__fail(LZ_ESERIALIZATION, "protobuf: %s: required field %s is missing", descriptor->name,
                            field->name);
    }
    return 0;
}

static int fill_message(ProtobufCMessage *message, const lz_value_t *object, ProtobufCAllocator *allocator,
                        int depth) {
    if (lz_value_type(object) != LZ_VALUE_OBJECT)
        return lz__fail(LZ_ESERIALIZATION, "protobuf: %s needs an object (got %s)", message_name(message),
                        lz_value_type_name(lz_value_type(object)));
    for (size_t i = 0; i < lz_value_size(object); i++) {
        const char *key = lz_value_key_at(object, i);
        const lz_value_t *value = lz_value_at(object, i);
        field_t *field = find_field(message->descriptor, key);
        if (!field)
            return lz__fail(LZ_ESERIALIZATION, "protobuf: %s has no field \"%s\"", message_name(message), key);
        if (lz_value_type(value) == LZ_VALUE_NULL) continue; // null: left unset, as in proto3 JSON
        // Keys are unique, so only a JSON name beside its .proto name can
        // name a field twice.
        if (strcmp(key, field->name) && lz_value_type(lz_value_get(object, field->name)) != LZ_VALUE_NULL)
            return lz__fail(LZ_ESERIALIZATION, "protobuf: %s.%s is given twice (as %s too)", message_name(message),
                            field->name, key);
        int rc = store_field(message, field, value, allocator, depth);
        if (rc) return rc;
    }
    return check_required(message, object);
}

// build_message: value as a new message of descriptor's type from
// allocator, at *out even when filling it fails part way (for the caller to
// free or drop).
static int build_message(const ProtobufCMessageDescriptor *descriptor, const lz_value_t *value,
                         ProtobufCAllocator *allocator, ProtobufCMessage **out) {
    if (!(*out = message_new(descriptor, allocator))) return LZ_ENOMEM;
    return fill_message(*out, value, allocator, 0);
}

int lz_protobuf_from_value(const ProtobufCMessageDescriptor *descriptor, const lz_value_t *value,
                           ProtobufCMessage **out) {
    if (out) *out = NULL;
    if (!descriptor || !value || !out)
        return lz__fail(LZ_EINVAL, "lz_protobuf_from_value: descriptor, value and out are required");
    int rc = check_descriptor(descriptor, "lz_protobuf_from_value");
    if (rc) return rc;
    ProtobufCMessage *message;
    rc = build_message(descriptor, value, &heap, &message);
    if (rc) {
        if (message) protobuf_c_message_free_unpacked(message, &heap);
        return rc;
    }
    *out = message;
    return 0;
}

/* ---- messages to values ------------------------------------------------ */

static lz_value_t *message_value(const ProtobufCMessage *message, unsigned flags, int depth);

// shortest_float: the double with the fewest digits that reads back as f,
// so a float 0.1 reads 0.1 and not 0.10000000149011612, as Python's
// MessageToDict shows it. Every float reads back from 9 digits.
static double shortest_float(float f) {
    char text[32];
    for (int digits = 6; isfinite(f) && digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        if (strtof(text, NULL) == f) return strtod(text, NULL);
    }
    return f;
}

static lz_value_t *enum_value(field_t *field, int number) {
    const ProtobufCEnumValue *known = protobuf_c_enum_descriptor_get_value(field->descriptor, number);
    return known ? lz_value_string(known->name) : lz_value_int(number);
}

static lz_value_t *string_value(const char *text) {
    size_t len = strlen(text);
    if (!lz__utf8_valid(text, len)) return lz__fail_null(LZ_ESERIALIZATION, "protobuf: a string field is not UTF-8");
    return lz_value_stringn(text, len);
}

static lz_value_t *unsigned_value(uint64_t u) {
    if (u <= INT64_MAX) return lz_value_int((int64_t)u);
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, u);
    return lz_value_string(text);
}

// empty_message_value: the value of an unset message of field's type, which
// a map entry without its value holds: protobuf reads it as the type's
// empty message, so under LZ_PROTOBUF_DEFAULTS its fields appear too, as
// when a peer sends the empty message itself.
static lz_value_t *empty_message_value(field_t *field, unsigned flags, int depth) {
    const ProtobufCMessageDescriptor *descriptor = field->descriptor;
    ProtobufCMessage *empty = malloc(descriptor->sizeof_message);
    if (!empty) return lz__fail_null(LZ_ENOMEM, "protobuf: out of memory");
    descriptor->message_init(empty);
    lz_value_t *value = message_value(empty, flags, depth + 1);
    free(empty);
    return value;
}

// element_value reads one element of field's type at slot.
static lz_value_t *element_value(field_t *field, const void *slot, unsigned flags, int depth) {
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        return lz_value_int(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        return lz_value_int(*(const int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: return lz_value_int(*(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return unsigned_value(*(const uint64_t *)slot);
    case PROTOBUF_C_TYPE_FLOAT: return lz_value_double(shortest_float(*(const float *)slot));
    case PROTOBUF_C_TYPE_DOUBLE: return lz_value_double(*(const double *)slot);
    case PROTOBUF_C_TYPE_BOOL: return lz_value_bool(*(const protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM: return enum_value(field, *(const int *)slot);
    case PROTOBUF_C_TYPE_STRING: return string_value(*(char *const *)slot ? *(char *const *)slot : "");
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bytes = slot;
        return lz_value_bytes(bytes->data ? (const void *)bytes->data : "", bytes->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        return sub ? message_value(sub, flags, depth + 1) : empty_message_value(field, flags, depth);
    }
    }
    return lz__fail_null(LZ_ESERIALIZATION, "protobuf: field %s has a type protobuf-c does not know", field->name);
}

// map_key: a map entry's key as object keys are, text (JSON's rule).
static lz_value_t *map_key(const ProtobufCMessage *entry) {
    field_t *field = &entry->descriptor->fields[0];
    const void *slot = (const char *)entry + field->offset;
    if (field->type == PROTOBUF_C_TYPE_STRING) return element_value(field, slot, 0, 0);
    if (field->type == PROTOBUF_C_TYPE_BOOL) return lz_value_string(*(const protobuf_c_boolean *)slot ? "true" : "false");
    lz_value_t *number = element_value(field, slot, 0, 0);
    if (!number || lz_value_type(number) == LZ_VALUE_STRING) return number;
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, lz_value_get_int(number));
    lz_value_destroy(&number);
    return lz_value_string(text);
}

static int add_map_entry(lz_value_t *object, lz_key_index_t *index, const ProtobufCMessage *entry, unsigned flags,
                         int depth) {
    field_t *value_field = &entry->descriptor->fields[1];
    lz_value_t *key = map_key(entry);
    lz_value_t *value = key ? element_value(value_field, (const char *)entry + value_field->offset, flags, depth) : NULL;
    size_t len = 0;
    const char *text = lz_value_get_string(key, &len);
    int rc = value ? lz__value_object_add(object, index, text, len, value) : lz_last_error_code();
    lz_value_destroy(&key);
    return rc;
}

// map_value: a map field as an object. A key repeated on the wire keeps its
// first place and takes the last value (protobuf's last one wins); a large
// map finds repeats through a key index (see value.h).
static lz_value_t *map_value(const ProtobufCMessage *message, field_t *field, unsigned flags, int depth) {
    size_t n = MEMBER(size_t, message, field->quantifier_offset);
    ProtobufCMessage *const *entries = MEMBER(ProtobufCMessage *const *, message, field->offset);
    lz_value_t *object = lz_value_object();
    lz_key_index_t index = {NULL, 0};
    if (object && n > LZ_KEY_SCAN_MAX && lz__key_index_init(&index, n) != LZ_OK) lz_value_destroy(&object);
    for (size_t i = 0; object && i < n; i++)
        if (add_map_entry(object, &index, entries[i], flags, depth + 1)) lz_value_destroy(&object);
    lz__key_index_fini(&index);
    return object;
}

static lz_value_t *repeated_value(const ProtobufCMessage *message, field_t *field, unsigned flags, int depth) {
    if (is_map(field)) return map_value(message, field, flags, depth);
    size_t n = MEMBER(size_t, message, field->quantifier_offset), size = element_size(field);
    const char *array = MEMBER(const char *, message, field->offset);
    lz_value_t *list = lz_value_array();
    for (size_t i = 0; list && i < n; i++) {
        lz_value_t *item = element_value(field, array + i * size, flags, depth);
        if (!item || lz_value_array_append(list, item)) lz_value_destroy(&list);
    }
    return list;
}

// is_default: a field without presence holds its type's zero value.
static bool is_default(field_t *field, const void *slot) {
    switch (field->type) {
    case PROTOBUF_C_TYPE_STRING: return !*(char *const *)slot || !**(char *const *)slot;
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(void *const *)slot == NULL;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)slot == 0 && !signbit(*(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)slot == 0 && !signbit(*(const double *)slot);
    default: {
        static const char zero[8];
        return !memcmp(slot, zero, element_size(field));
    }
    }
}

// is_present: what protobuf would send, or with LZ_PROTOBUF_DEFAULTS what
// Python's including_default_value_fields shows too.
static bool is_present(const ProtobufCMessage *message, field_t *field, unsigned flags) {
    const void *slot = (const char *)message + field->offset;
    bool defaults = flags & LZ_PROTOBUF_DEFAULTS;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return MEMBER(uint32_t, message, field->quantifier_offset) == field->id;
    if (field->label == PROTOBUF_C_LABEL_REPEATED) return defaults || MEMBER(size_t, message, field->quantifier_offset);
    if (field->type == PROTOBUF_C_TYPE_MESSAGE) return *(void *const *)slot != NULL;
    switch (field->label) {
    case PROTOBUF_C_LABEL_REQUIRED: return true;
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (defaults) return true;
        if (field->type == PROTOBUF_C_TYPE_STRING)
            return *(char *const *)slot && *(char *const *)slot != field->default_value;
        return MEMBER(protobuf_c_boolean, message, field->quantifier_offset);
    default: return defaults || !is_default(field, slot);
    }
}

static lz_value_t *message_value(const ProtobufCMessage *message, unsigned flags, int depth) {
    if (depth >= MAX_DEPTH) return lz__fail_null(LZ_ESERIALIZATION, "protobuf: nesting deeper than %d levels", MAX_DEPTH);
    const ProtobufCMessageDescriptor *descriptor = message->descriptor;
    lz_value_t *object = lz_value_object();
    for (unsigned i = 0; object && i < descriptor->n_fields; i++) {
        field_t *field = &descriptor->fields[i];
        if (!is_present(message, field, flags)) continue;
        lz_value_t *value = field->label == PROTOBUF_C_LABEL_REPEATED
                                ? repeated_value(message, field, flags, depth)
                                : element_value(field, (const char *)message + field->offset, flags, depth);
        if (!value || lz_value_object_set(object, field->name, value)) lz_value_destroy(&object);
    }
    return object;
}

int lz_protobuf_to_value(const ProtobufCMessage *message, unsigned flags, lz_value_t **out) {
    if (out) *out = NULL;
    if (!message || !out) return lz__fail(LZ_EINVAL, "lz_protobuf_to_value: message and out are required");
    if (flags & ~(unsigned)LZ_PROTOBUF_DEFAULTS)
        return lz__fail(LZ_EINVAL, "lz_protobuf_to_value: unknown flags 0x%x", flags);
    *out = message_value(message, flags, 0);
    return *out ? 0 : lz_last_error_code();
}

/* ---- the codec ----------------------------------------------------------- */

typedef struct codec {
    const ProtobufCMessageDescriptor *descriptor;
    unsigned flags;
    char name[]; // ops.name points here
} codec_t;

static int pack(const ProtobufCMessage *message, lz_buffer_t *out) {
    if (!protobuf_c_message_check(message))
        return lz__fail(LZ_ESERIALIZATION, "protobuf: %s is incomplete", message_name(message));
    size_t size = protobuf_c_message_get_packed_size(message);
    uint8_t *at = lz_buffer_reserve(out, size);
    if (!at) return lz_last_error_code();
    lz_buffer_commit(out, protobuf_c_message_pack(message, at));
    return 0;
}

// json_fallback: value as the JSON fallback frame, the mark and the JSON.
static int json_fallback(const lz_value_t *value, lz_buffer_t *out) {
    static const uint8_t mark = JSON_MARK;
    int rc = lz_buffer_append(out, &mark, 1);
    return rc ? rc : lz__json_ops.encode(NULL, value, out);
}

static int protobuf_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    const codec_t *codec = state;
    scratch_t scratch;
    ProtobufCMessage *message;
    int rc = build_message(codec->descriptor, value, scratch_init(&scratch), &message);
    bool fits = rc == 0; // a message that packs incomplete is no fallback case
    if (fits) rc = pack(message, out);
    scratch_release(&scratch); // the message, whole or half-built
    if (fits || rc != LZ_ESERIALIZATION || !(codec->flags & LZ_PROTOBUF_JSON_FALLBACK)) return rc;
    return json_fallback(value, out);
}

/* ---- the wire, read before protobuf-c ------------------------------------ */

// A received message is read first as protobuf-c will read it, tags and
// lengths only, following each field of message type (a map entry is one
// too) into its bytes, for what protobuf-c would get wrong:
// - nesting: protobuf-c unpacks a nested message by recursion, with no
//   limit of its own (60 KB of a recursive type's fields nested in one
//   another, from any peer, overflowed the stack), so a message nested
//   MAX_DEPTH deep is refused, as message_value refuses a built one;
// - a NUL in a string field: protobuf-c keeps strings NUL-terminated, so
//   "a\0b" would read as "a" in silence (encoding refuses such a string
//   with the same words).
typedef enum { WIRE_OK, WIRE_REFUSED, WIRE_MALFORMED } wire_t;

// read_varint reads a base-128 varint of at most ten bytes at *at (bits
// past 64 dropped, as protobuf-c drops them).
static bool read_varint(const uint8_t **at, const uint8_t *end, uint64_t *out) {
    uint64_t value = 0;
    for (unsigned i = 0; i < 10 && *at < end; i++) {
        uint8_t byte = *(*at)++;
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = value;
            return true;
        }
    }
    return false;
}

// skip_field steps *at past the value of a field of wire_type, leaving
// *len at the length of a length-delimited one. Groups (wire types 3 and
// 4) are malformed here as they are to protobuf-c 1.4, which does not read
// them: this pass must call no message malformed that protobuf-c reads
// (fuzz/fuzz_protobuf.c checks it).
static bool skip_field(const uint8_t **at, const uint8_t *end, unsigned wire_type, uint64_t *len) {
    uint64_t ignored;
    switch (wire_type) {
    case PROTOBUF_C_WIRE_TYPE_VARINT: return read_varint(at, end, &ignored);
    case PROTOBUF_C_WIRE_TYPE_64BIT: *len = 8; break;
    case PROTOBUF_C_WIRE_TYPE_32BIT: *len = 4; break;
    case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
        if (!read_varint(at, end, len)) return false;
        break;
    default: return false;
    }
    if (*len > (uint64_t)(end - *at)) return false;
    *at += *len;
    return true;
}

// read_fields reads the fields of a message of type descriptor, at depth
// (the top is 0), in [at, end). WIRE_REFUSED sets the error. WIRE_MALFORMED
// is only ever bytes protobuf-c refuses too; where this reading is laxer
// (tags of more than five bytes), protobuf-c refuses the message's fields
// before it unpacks any of them.
static wire_t read_fields(const ProtobufCMessageDescriptor *descriptor, const uint8_t *at, const uint8_t *end,
                          int depth) {
    if (depth >= MAX_DEPTH) {
        lz__fail(LZ_ESERIALIZATION, "protobuf: nesting deeper than %d levels", MAX_DEPTH);
        return WIRE_REFUSED;
    }
    while (at < end) {
        uint64_t tag, len = 0;
        if (!read_varint(&at, end, &tag) || !skip_field(&at, end, (unsigned)(tag & 7), &len)) return WIRE_MALFORMED;
        if ((tag & 7) != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || tag >> 3 > UINT32_MAX) continue;
        field_t *field = protobuf_c_message_descriptor_get_field(descriptor, (unsigned)(tag >> 3));
        const uint8_t *bytes = at - len;
        if (field && field->type == PROTOBUF_C_TYPE_STRING && memchr(bytes, '\0', len)) {
            lz__fail(LZ_ESERIALIZATION, "protobuf: %s.%s cannot hold a NUL character", descriptor->name, field->name);
            return WIRE_REFUSED;
        }
        if (!field || field->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        wire_t inner = read_fields(field->descriptor, bytes, at, depth + 1);
        if (inner != WIRE_OK) return inner;
    }
    return WIRE_OK;
}

/* ---- the codec, decoding ------------------------------------------------ */

static int protobuf_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    const codec_t *codec = state;
    bool fallback = codec->flags & LZ_PROTOBUF_JSON_FALLBACK;
    if (fallback && size > 0 && *(const uint8_t *)data == JSON_MARK)
        return lz__json_ops.decode(NULL, (const char *)data + 1, size - 1, out);
    const uint8_t *bytes = data;
    wire_t wire = read_fields(codec->descriptor, bytes, bytes + size, 0);
    if (wire == WIRE_REFUSED) return LZ_ESERIALIZATION;
    scratch_t scratch;
    ProtobufCAllocator *allocator = scratch_init(&scratch);
    ProtobufCMessage *message =
        wire == WIRE_OK ? protobuf_c_message_unpack(codec->descriptor, allocator, size, data) : NULL;
    int rc = message ? lz_protobuf_to_value(message, codec->flags & LZ_PROTOBUF_DEFAULTS, out) : LZ_ESERIALIZATION;
    bool out_of_memory = scratch.out_of_memory;
    scratch_release(&scratch);
    if (message) return rc;
    if (out_of_memory) return lz__fail(LZ_ENOMEM, "protobuf: out of memory unpacking a %s", codec->descriptor->name);
    // Python's fallback reads JSON without the mark too.
    if (fallback && (rc = lz__json_ops.decode(NULL, data, size, out)) != LZ_ESERIALIZATION) return rc;
    return lz__fail(LZ_ESERIALIZATION, "protobuf: %zu bytes are not a valid %s%s", size, codec->descriptor->name,
                    fallback ? " nor JSON" : "");
}

int lz_protobuf_register(lz_context_t *ctx, const char *name, const ProtobufCMessageDescriptor *descriptor,
                         unsigned flags) {
    if (!ctx || !name || !*name || !descriptor)
        return lz__fail(LZ_EINVAL, "lz_protobuf_register: ctx, a name and a descriptor are required");
    int rc = check_descriptor(descriptor, "lz_protobuf_register");
    if (rc) return rc;
    if (flags & ~(unsigned)(LZ_PROTOBUF_JSON_FALLBACK | LZ_PROTOBUF_DEFAULTS))
        return lz__fail(LZ_EINVAL, "lz_protobuf_register: unknown flags 0x%x", flags);
    size_t len = strlen(name);
    codec_t *codec = malloc(sizeof *codec + len + 1);
    if (!codec) return lz__fail(LZ_ENOMEM, "lz_protobuf_register: out of memory");
    codec->descriptor = descriptor;
    codec->flags = flags;
    memcpy(codec->name, name, len + 1);
    lz_serializer_ops_t ops = {
        .name = codec->name,
        .content_type = "application/x-protobuf",
        .encode = protobuf_encode,
        .decode = protobuf_decode,
        .destroy = free,
    };
    return lz_serializer_register(ctx, &ops, codec);
}
