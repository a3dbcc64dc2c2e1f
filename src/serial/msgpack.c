/* The "msgpack" codec on msgpack-c: a msgpack_packer whose write callback
 * appends to the caller's lz_buffer_t, and msgpack_unpack_next into a zone
 * whose object tree is then converted to lz_value_t. Strings travel as str,
 * bytes as bin, so Python's msgpack (raw=False) sees str and bytes again. */
#include <msgpack.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "serial/registry.h"
#include "serial/utf8.h"
#include "serial/value.h"

// libmsgpackc was built with MSGPACK_EMBED_STACK_SIZE 32: its unpacker
// holds at most 32 open containers. Refusing to encode deeper keeps every
// encoding decodable (tests/test_serializer.c checks the boundary).
#define LZ_MSGPACK_MAX_DEPTH 32

/* ---- encoding -------------------------------------------------------- */

static int on_write(void *data, const char *buf, size_t len) {
    return lz_buffer_append(data, buf, len) < 0 ? -1 : 0;
}

// packed turns what a msgpack_pack_* call returned (on_write's -1, or
// another nonzero value, when the buffer could not grow) into 0 or the
// error lz_buffer_append recorded.
static int packed(int rc) { return rc == 0 ? 0 : lz_last_error_code(); }

// fits_header refuses what msgpack-c would encode with a wrong length: it
// stores every str, bin, array and map length as 32 bits, silently cut.
static int fits_header(size_t n, const char *what, const char *unit) {
    if (n <= UINT32_MAX) return 0;
    return lz__fail(LZ_ESERIALIZATION, "msgpack: %s of %zu %s is over the format's limit of %" PRIu32, what, n,
                    unit, UINT32_MAX);
}

// pack_text packs a string or a key (what names it). Every str is UTF-8
// (the format's rule, and our own decoder refuses anything else), so text
// that is not is refused here, as the JSON writer refuses it, rather than
// by every reader.
static int pack_text(msgpack_packer *pk, const char *text, size_t len, const char *what) {
    int rc = fits_header(len, what, "bytes");
    if (rc) return rc;
    if (!lz__utf8_valid(text, len)) return lz__fail(LZ_ESERIALIZATION, "msgpack: %s is not valid UTF-8", what);
    rc = packed(msgpack_pack_str(pk, len));
    return rc ? rc : packed(msgpack_pack_str_body(pk, text, len));
}

static int pack_value(msgpack_packer *pk, const lz_value_t *value, int depth);

static int pack_blob(msgpack_packer *pk, const lz_value_t *value) {
    size_t size;
    const void *data = lz_value_get_bytes(value, &size);
    if (lz_value_type(value) == LZ_VALUE_STRING) return pack_text(pk, data, size, "a string");
    int rc = fits_header(size, "a bytes value", "bytes");
    if (rc == 0) rc = packed(msgpack_pack_bin(pk, size));
    return rc ? rc : packed(msgpack_pack_bin_body(pk, data, size));
}

static int pack_container(msgpack_packer *pk, const lz_value_t *value, int depth) {
    if (depth >= LZ_MSGPACK_MAX_DEPTH)
        return lz__fail(LZ_ESERIALIZATION, "msgpack: nesting deeper than %d levels", LZ_MSGPACK_MAX_DEPTH);
    bool object = lz_value_type(value) == LZ_VALUE_OBJECT;
    size_t n = lz_value_size(value);
    int rc = fits_header(n, object ? "a map" : "an array", object ? "entries" : "items");
    if (rc == 0) rc = packed(object ? msgpack_pack_map(pk, n) : msgpack_pack_array(pk, n));
    for (size_t i = 0; rc == 0 && i < n; i++) { // the nodes read directly: this walk is per message
        const lz_member_t *member = object ? &value->u.object.members[i] : NULL;
        if (member) rc = pack_text(pk, lz__member_key(member), member->key_len, "a key");
        if (rc == 0) rc = pack_value(pk, member ? member->value : value->u.array.items[i], depth + 1);
    }
    return rc;
}

// pack_value returns 0 or a negative lz_error_t it recorded (LZ_ENOMEM
// when the buffer could not grow, recorded by lz_buffer_append).
static int pack_value(msgpack_packer *pk, const lz_value_t *value, int depth) {
    switch (lz_value_type(value)) {
    case LZ_VALUE_NULL: return packed(msgpack_pack_nil(pk));
    case LZ_VALUE_BOOL: return packed(lz_value_get_bool(value) ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    case LZ_VALUE_INT: return packed(msgpack_pack_int64(pk, lz_value_get_int(value)));
    case LZ_VALUE_DOUBLE: return packed(msgpack_pack_double(pk, lz_value_get_double(value)));
    case LZ_VALUE_STRING:
    case LZ_VALUE_BYTES: return pack_blob(pk, value);
    case LZ_VALUE_ARRAY:
    case LZ_VALUE_OBJECT: return pack_container(pk, value, depth);
    }
    return lz__fail(LZ_ESERIALIZATION, "msgpack: unknown value type");
}

static int msgpack_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, on_write);
    return pack_value(&pk, value, 0);
}

/* ---- decoding -------------------------------------------------------- */

static lz_value_t *convert(const msgpack_object *o);

static lz_value_t *convert_array(const msgpack_object_array *a) {
    lz_value_t *array = lz_value_array();
    for (uint32_t i = 0; array && i < a->size; i++) {
        lz_value_t *item = convert(&a->ptr[i]);
        if (!item || lz_value_array_append(array, item) < 0) lz_value_destroy(&array);
    }
    return array;
}

// Map keys become C strings, so they must be text without NUL bytes.
// A repeated key keeps its first place and takes the last value, as in
// JSON; a large map finds repeats through a key index (see value.h).
static lz_value_t *convert_map(const msgpack_object_map *m) {
    lz_value_t *object = lz_value_object();
    lz_key_index_t index = {NULL, 0};
    if (object && m->size > LZ_KEY_SCAN_MAX && lz__key_index_init(&index, m->size) != LZ_OK) lz_value_destroy(&object);
    for (uint32_t i = 0; object && i < m->size; i++) {
        const msgpack_object *key = &m->ptr[i].key;
        // msgpack-c leaves an empty str without a pointer; "" is a key.
        const char *name = key->type == MSGPACK_OBJECT_STR && key->via.str.size ? key->via.str.ptr : "";
        if (key->type != MSGPACK_OBJECT_STR || memchr(name, '\0', key->via.str.size) ||
            !lz__utf8_valid(name, key->via.str.size)) {
            lz_value_destroy(&object);
            lz__key_index_fini(&index);
            return lz__fail_null(LZ_ESERIALIZATION, "msgpack: map key %u is not a text string", i);
        }
        lz_value_t *item = convert(&m->ptr[i].val);
        if (!item || lz__value_object_add(object, &index, name, key->via.str.size, item) < 0)
            lz_value_destroy(&object);
    }
    lz__key_index_fini(&index);
    return object;
}

static lz_value_t *convert(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return lz_value_null();
    case MSGPACK_OBJECT_BOOLEAN: return lz_value_bool(o->via.boolean);
    // Beyond int64 a uint64 keeps its magnitude as a double, as JSON does.
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > INT64_MAX ? lz_value_double((double)o->via.u64) : lz_value_int((int64_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return lz_value_int(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return lz_value_double(o->via.f64);
    case MSGPACK_OBJECT_STR:
        if (!lz__utf8_valid(o->via.str.ptr, o->via.str.size))
            return lz__fail_null(LZ_ESERIALIZATION, "msgpack: str is not valid UTF-8");
        return lz_value_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return lz_value_bytes(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: return convert_array(&o->via.array);
    case MSGPACK_OBJECT_MAP: return convert_map(&o->via.map);
    case MSGPACK_OBJECT_EXT: break;
    }
    return lz__fail_null(LZ_ESERIALIZATION, "msgpack: unsupported type %d (ext types are not values)", (int)o->type);
}

static int unpack_failure(msgpack_unpack_return ret, size_t off, size_t size) {
    if (ret == MSGPACK_UNPACK_SUCCESS || ret == MSGPACK_UNPACK_EXTRA_BYTES)
        return lz__fail(LZ_ESERIALIZATION, "msgpack: trailing data at byte %zu of %zu", off, size);
    if (ret == MSGPACK_UNPACK_CONTINUE)
        return lz__fail(LZ_ESERIALIZATION, "msgpack: truncated input at byte %zu", size);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR) // the nesting was checked (check_shape)
        return lz__fail(LZ_ENOMEM, "msgpack: out of memory unpacking %zu bytes", size);
    return lz__fail(LZ_ESERIALIZATION, "msgpack: invalid data near byte %zu", off);
}

static pthread_key_t zone_key;
static pthread_once_t zone_once = PTHREAD_ONCE_INIT;

static void zone_release(void *zone) { msgpack_zone_free(zone); }
static void zone_key_init(void) { (void)pthread_key_create(&zone_key, zone_release); }

// thread_zone returns this thread's unpack zone. A fresh zone costs an 8 KiB
// malloc, more than unpacking a small message, so each thread keeps one and
// clears it after every decode (freed by the key's destructor at exit).
static msgpack_zone *thread_zone(void) {
    pthread_once(&zone_once, zone_key_init);
    msgpack_zone *zone = pthread_getspecific(zone_key);
    if (zone) return zone;
    zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    if (zone && pthread_setspecific(zone_key, zone) != 0) {
        msgpack_zone_free(zone);
        zone = NULL;
    }
    return zone;
}

// The shape of the headers 0xc0-0xdf (the others are fixint, fixmap,
// fixarray and fixstr): header bytes, then for sized ones the length (or
// count) as that many big-endian bytes at offset 1.
typedef enum { FIXED, SIZED, ARRAY, MAP, RESERVED } header_kind_t;
typedef struct header_shape {
    uint8_t head, length_bytes, kind;
} header_shape_t;
static const header_shape_t headers[32] = {
    {1, 0, FIXED},  {0, 0, RESERVED}, {1, 0, FIXED},  {1, 0, FIXED},  // nil, (c1), false, true
    {2, 1, SIZED},  {3, 2, SIZED},    {5, 4, SIZED},                  // bin 8/16/32
    {3, 1, SIZED},  {4, 2, SIZED},    {6, 4, SIZED},                  // ext 8/16/32 (+ type byte)
    {5, 0, FIXED},  {9, 0, FIXED},                                    // float 32/64
    {2, 0, FIXED},  {3, 0, FIXED},    {5, 0, FIXED},  {9, 0, FIXED},  // uint 8-64
    {2, 0, FIXED},  {3, 0, FIXED},    {5, 0, FIXED},  {9, 0, FIXED},  // int 8-64
    {3, 0, FIXED},  {4, 0, FIXED},    {6, 0, FIXED},  {10, 0, FIXED}, {18, 0, FIXED}, // fixext 1-16
    {2, 1, SIZED},  {3, 2, SIZED},    {5, 4, SIZED},                  // str 8/16/32
    {3, 2, ARRAY},  {5, 4, ARRAY},    {3, 2, MAP},    {5, 4, MAP},    // array, map 16/32
};

static uint64_t big_endian(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

// A value's header: its bytes, the bytes of its body, and how many values
// follow it as its elements (a map's keys and values both count).
typedef struct header {
    uint64_t head, body, values;
    bool container;
} header_t;

// read_header reads the header at data[at] (size bytes in all); false for
// what it cannot size (the reserved byte, a header cut short).
static bool read_header(const uint8_t *data, size_t at, size_t size, header_t *h) {
    uint8_t b = data[at];
    *h = (header_t){.head = 1, .container = (b >= 0x80 && b <= 0x9f)};
    if (b >= 0x80 && b <= 0x8f) h->values = 2u * (b & 0x0fu);
    else if (b >= 0x90 && b <= 0x9f) h->values = b & 0x0fu;
    else if (b >= 0xa0 && b <= 0xbf) h->body = b & 0x1fu;
    if (b < 0xc0 || b > 0xdf) return true;
    const header_shape_t *shape = &headers[b - 0xc0];
    h->head = shape->head;
    if (shape->kind == RESERVED || at + h->head > size) return false;
    uint64_t length = big_endian(data + at + 1, shape->length_bytes);
    h->container = shape->kind == ARRAY || shape->kind == MAP;
    if (shape->kind == SIZED) h->body = length;
    else h->values = shape->kind == MAP ? 2 * length : shape->kind == ARRAY ? length : 0;
    return true;
}

// check_shape refuses input whose containers declare more values than the
// bytes left could hold (each takes one byte at least): msgpack-c
// allocates a container's declared size before reading what is in it, and
// a 5-byte array32 header asks for 96 GiB. It also refuses containers
// nested deeper than msgpack-c unpacks (it says "out of memory" for that,
// which then means memory alone). This walk reads headers and lengths
// only; what it cannot size is left for msgpack-c to report in its own
// words.
static int check_shape(const uint8_t *data, size_t size) {
    uint64_t pending = 1;                   // values still to come
    uint64_t left[LZ_MSGPACK_MAX_DEPTH];    // of each open container's, innermost last
    int depth = 0;
    for (size_t at = 0; pending && at < size; pending--) {
        header_t h;
        if (!read_header(data, at, size, &h) || h.head + h.body > size - at) return 0;
        if (h.container && depth == LZ_MSGPACK_MAX_DEPTH)
            return lz__fail(LZ_ESERIALIZATION, "msgpack: nesting deeper than %d levels at byte %zu",
                            LZ_MSGPACK_MAX_DEPTH, at);
        at += h.head + h.body;
        pending += h.values;
        if (pending - 1 > size - at)
            return lz__fail(LZ_ESERIALIZATION,
                            "msgpack: truncated input: %" PRIu64 " values declared by byte %zu, %zu bytes left",
                            pending - 1, at, size - at);
        if (depth) left[depth - 1]--;
        if (h.values) left[depth++] = h.values;
        while (depth && !left[depth - 1]) depth--;
    }
    return 0;
}

static int msgpack_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    *out = NULL;
    if (check_shape(data, size) != 0) return LZ_ESERIALIZATION;
    msgpack_zone *zone = thread_zone();
    if (!zone) return lz__fail(LZ_ENOMEM, "msgpack: cannot allocate an unpack zone");
    msgpack_object object;
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack(data, size, &off, zone, &object);
    int rc = 0;
    if (ret != MSGPACK_UNPACK_SUCCESS) rc = unpack_failure(ret, off, size);
    else if (!(*out = convert(&object))) rc = lz_last_error_code();
    msgpack_zone_clear(zone);
    return rc;
}

const lz_serializer_ops_t lz__msgpack_ops = {
    .name = "msgpack",
    .content_type = "application/msgpack",
    .flags = 0,
    .encode = msgpack_encode,
    .decode = msgpack_decode,
    .destroy = NULL,
};
