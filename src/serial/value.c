/* Dynamic values. Each node is one allocation: a string's or bytes' payload
 * lives in the same block as its node, containers hold growable arrays of
 * child pointers (so borrowed children stay put while siblings are added),
 * and short object keys are stored inside the member array itself. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "serial/value.h"

// Keys up to this length minus one avoid their own allocation; envelope
// keys ("request_id", "traceparent") and typical field names fit.
#define LZ_KEY_INLINE 16
#define LZ_CONTAINER_MIN 4

typedef struct lz_member {
    lz_value_t *value;
    size_t key_len;
    union {
        char *heap;
        char small[LZ_KEY_INLINE];
    } key;
} lz_member_t;

struct lz_value {
    unsigned char type;
    // A borrowed bytes value points at memory someone else owns (the raw
    // codec's zero-copy decode): the node must never free or copy into it.
    unsigned char borrowed;
    union {
        bool b;
        int64_t i;
        double d;
        struct { const char *data; size_t len; } blob;
        struct { lz_value_t **items; size_t len, cap; } array;
        struct { lz_member_t *members; size_t len, cap; } object;
    } u;
    char payload[]; // string/bytes content, NUL-terminated, when owned
};

static lz_value_t *node_new(lz_value_type_t type, size_t payload) {
    if (payload > SIZE_MAX - sizeof(lz_value_t))
        return lz__fail_null(LZ_ENOMEM, "value: %zu bytes is too large", payload);
    lz_value_t *value = malloc(sizeof *value + payload);
    if (!value) return lz__fail_null(LZ_ENOMEM, "value: out of memory");
    memset(value, 0, sizeof *value);
    value->type = (unsigned char)type;
    return value;
}

static lz_value_t *blob_new(lz_value_type_t type, const void *data, size_t len) {
    if (!data && len) return lz__fail_null(LZ_EINVAL, "value: NULL data of %zu bytes", len);
    if (len == SIZE_MAX) return lz__fail_null(LZ_ENOMEM, "value: string too large");
    lz_value_t *value = node_new(type, len + 1);
    if (!value) return NULL;
    if (len) memcpy(value->payload, data, len);
    value->payload[len] = '\0';
    value->u.blob.data = value->payload;
    value->u.blob.len = len;
    return value;
}

lz_value_t *lz_value_null(void) { return node_new(LZ_VALUE_NULL, 0); }

lz_value_t *lz_value_bool(bool b) {
    lz_value_t *value = node_new(LZ_VALUE_BOOL, 0);
    if (value) value->u.b = b;
    return value;
}

lz_value_t *lz_value_int(int64_t i) {
    lz_value_t *value = node_new(LZ_VALUE_INT, 0);
    if (value) value->u.i = i;
    return value;
}

lz_value_t *lz_value_double(double d) {
    lz_value_t *value = node_new(LZ_VALUE_DOUBLE, 0);
    if (value) value->u.d = d;
    return value;
}

lz_value_t *lz_value_string(const char *s) {
    if (!s) return lz__fail_null(LZ_EINVAL, "value: NULL string");
    return blob_new(LZ_VALUE_STRING, s, strlen(s));
}

lz_value_t *lz_value_stringn(const char *s, size_t len) {
    return blob_new(LZ_VALUE_STRING, s, len);
}

lz_value_t *lz_value_bytes(const void *data, size_t size) {
    return blob_new(LZ_VALUE_BYTES, data, size);
}

lz_value_t *lz_value_array(void) { return node_new(LZ_VALUE_ARRAY, 0); }

lz_value_t *lz_value_object(void) { return node_new(LZ_VALUE_OBJECT, 0); }

lz_value_t *lz__value_bytes_borrowed(const void *data, size_t size) {
    if (!data && size) return lz__fail_null(LZ_EINVAL, "value: NULL data of %zu bytes", size);
    lz_value_t *value = node_new(LZ_VALUE_BYTES, 0);
    if (!value) return NULL;
    value->borrowed = 1;
    value->u.blob.data = data ? data : "";
    value->u.blob.len = size;
    return value;
}

static const char *member_key(const lz_member_t *member) {
    return member->key_len < LZ_KEY_INLINE ? member->key.small : member->key.heap;
}

static void member_free_key(lz_member_t *member) {
    if (member->key_len >= LZ_KEY_INLINE) free(member->key.heap);
}

static void value_free(lz_value_t *value) {
    if (!value) return;
    if (value->type == LZ_VALUE_ARRAY) {
        for (size_t i = 0; i < value->u.array.len; i++) value_free(value->u.array.items[i]);
        free(value->u.array.items);
    } else if (value->type == LZ_VALUE_OBJECT) {
        for (size_t i = 0; i < value->u.object.len; i++) {
            member_free_key(&value->u.object.members[i]);
            value_free(value->u.object.members[i].value);
        }
        free(value->u.object.members);
    }
    free(value);
}

void lz_value_destroy(lz_value_t **value_p) {
    if (!value_p) return;
    value_free(*value_p);
    *value_p = NULL;
}

// grow makes room for one more element in a container's array.
static int grow(void **items, size_t *cap, size_t len, size_t elem_size) {
    if (len < *cap) return 0;
    size_t new_cap = *cap ? *cap * 2 : LZ_CONTAINER_MIN;
    if (new_cap > SIZE_MAX / elem_size) return lz__fail(LZ_ENOMEM, "value: container too large");
    void *grown = realloc(*items, new_cap * elem_size);
    if (!grown) return lz__fail(LZ_ENOMEM, "value: out of memory growing a container");
    *items = grown;
    *cap = new_cap;
    return 0;
}

int lz_value_array_append(lz_value_t *array, lz_value_t *item) {
    int rc = 0;
    if (!item) rc = lz__fail(LZ_EINVAL, "value: NULL item");
    else if (!array || array->type != LZ_VALUE_ARRAY)
        rc = lz__fail(LZ_EINVAL, "value: append to a %s, not an array",
                      lz_value_type_name(lz_value_type(array)));
    else rc = grow((void **)&array->u.array.items, &array->u.array.cap, array->u.array.len,
                   sizeof(lz_value_t *));
    if (rc < 0) {
        value_free(item);
        return rc;
    }
    array->u.array.items[array->u.array.len++] = item;
    return 0;
}

// find_member returns the member under key, or NULL. Linear: objects on the
// wire are small, and a scan over a packed array beats hashing them.
static lz_member_t *find_member(const lz_value_t *object, const char *key, size_t len) {
    if (!object || object->type != LZ_VALUE_OBJECT || !key) return NULL;
    for (size_t i = 0; i < object->u.object.len; i++) {
        lz_member_t *member = &object->u.object.members[i];
        if (member->key_len == len && memcmp(member_key(member), key, len) == 0) return member;
    }
    return NULL;
}

static int member_init_key(lz_member_t *member, const char *key, size_t len) {
    member->key_len = len;
    char *text = member->key.small;
    if (len >= LZ_KEY_INLINE) {
        text = member->key.heap = malloc(len + 1);
        if (!text) return lz__fail(LZ_ENOMEM, "value: out of memory copying a key");
    }
    memcpy(text, key, len);
    text[len] = '\0';
    return 0;
}

static int object_add(lz_value_t *object, const char *key, size_t len, lz_value_t *item) {
    lz_member_t *member = find_member(object, key, len);
    if (member) { // a repeated key replaces, as in Python dicts and JSON.parse
        value_free(member->value);
        member->value = item;
        return 0;
    }
    int rc = grow((void **)&object->u.object.members, &object->u.object.cap,
                  object->u.object.len, sizeof(lz_member_t));
    if (rc == 0) rc = member_init_key(&object->u.object.members[object->u.object.len], key, len);
    if (rc < 0) return rc;
    object->u.object.members[object->u.object.len++].value = item;
    return 0;
}

int lz_value_object_set(lz_value_t *object, const char *key, lz_value_t *item) {
    int rc = 0;
    if (!item || !key) rc = lz__fail(LZ_EINVAL, "value: NULL %s", key ? "item" : "key");
    else if (!object || object->type != LZ_VALUE_OBJECT)
        rc = lz__fail(LZ_EINVAL, "value: set '%s' on a %s, not an object", key,
                      lz_value_type_name(lz_value_type(object)));
    else rc = object_add(object, key, strlen(key), item);
    if (rc < 0) value_free(item);
    return rc;
}

// A NULL item means its constructor failed and already set the detail.
static int set_made(lz_value_t *object, const char *key, lz_value_t *item) {
    return item ? lz_value_object_set(object, key, item) : lz_last_error_code();
}

int lz_value_object_set_string(lz_value_t *object, const char *key, const char *s) {
    return set_made(object, key, lz_value_string(s));
}

int lz_value_object_set_int(lz_value_t *object, const char *key, int64_t i) {
    return set_made(object, key, lz_value_int(i));
}

int lz_value_object_set_double(lz_value_t *object, const char *key, double d) {
    return set_made(object, key, lz_value_double(d));
}

int lz_value_object_set_bool(lz_value_t *object, const char *key, bool b) {
    return set_made(object, key, lz_value_bool(b));
}

lz_value_t *lz__value_object_take(lz_value_t *object, const char *key) {
    lz_member_t *member = find_member(object, key, key ? strlen(key) : 0);
    if (!member) return NULL;
    lz_value_t *taken = member->value;
    member_free_key(member);
    lz_member_t *end = object->u.object.members + object->u.object.len;
    memmove(member, member + 1, (size_t)(end - member - 1) * sizeof *member); // keep order
    object->u.object.len--;
    return taken;
}

static lz_value_t *copy_array(const lz_value_t *value) {
    lz_value_t *copy = lz_value_array();
    for (size_t i = 0; copy && i < value->u.array.len; i++) {
        lz_value_t *item = lz_value_copy(value->u.array.items[i]);
        if (!item || lz_value_array_append(copy, item) < 0) lz_value_destroy(&copy);
    }
    return copy;
}

static lz_value_t *copy_object(const lz_value_t *value) {
    lz_value_t *copy = lz_value_object();
    for (size_t i = 0; copy && i < value->u.object.len; i++) {
        const lz_member_t *member = &value->u.object.members[i];
        lz_value_t *item = lz_value_copy(member->value);
        if (!item || object_add(copy, member_key(member), member->key_len, item) < 0) {
            value_free(item);
            lz_value_destroy(&copy);
        }
    }
    return copy;
}

lz_value_t *lz_value_copy(const lz_value_t *value) {
    if (!value) return lz__fail_null(LZ_EINVAL, "value: copy of NULL");
    switch ((lz_value_type_t)value->type) {
    case LZ_VALUE_BOOL: return lz_value_bool(value->u.b);
    case LZ_VALUE_INT: return lz_value_int(value->u.i);
    case LZ_VALUE_DOUBLE: return lz_value_double(value->u.d);
    // A copy owns its bytes even when the original borrowed them.
    case LZ_VALUE_STRING:
    case LZ_VALUE_BYTES:
        return blob_new((lz_value_type_t)value->type, value->u.blob.data, value->u.blob.len);
    case LZ_VALUE_ARRAY: return copy_array(value);
    case LZ_VALUE_OBJECT: return copy_object(value);
    case LZ_VALUE_NULL: break;
    }
    return lz_value_null();
}

lz_value_type_t lz_value_type(const lz_value_t *value) {
    return value ? (lz_value_type_t)value->type : LZ_VALUE_NULL;
}

const char *lz_value_type_name(lz_value_type_t type) {
    static const char *const names[] = {"null", "bool", "int", "double",
                                        "string", "bytes", "array", "object"};
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

bool lz_value_get_bool(const lz_value_t *value) {
    return value && value->type == LZ_VALUE_BOOL && value->u.b;
}

int64_t lz_value_get_int(const lz_value_t *value) {
    return value && value->type == LZ_VALUE_INT ? value->u.i : 0;
}

double lz_value_get_double(const lz_value_t *value) {
    if (!value) return 0;
    if (value->type == LZ_VALUE_DOUBLE) return value->u.d;
    return value->type == LZ_VALUE_INT ? (double)value->u.i : 0;
}

const char *lz_value_get_string(const lz_value_t *value, size_t *len) {
    bool fits = value && value->type == LZ_VALUE_STRING;
    if (len) *len = fits ? value->u.blob.len : 0;
    return fits ? value->u.blob.data : NULL;
}

const void *lz_value_get_bytes(const lz_value_t *value, size_t *size) {
    bool fits = value && (value->type == LZ_VALUE_BYTES || value->type == LZ_VALUE_STRING);
    if (size) *size = fits ? value->u.blob.len : 0;
    return fits ? value->u.blob.data : NULL;
}

size_t lz_value_size(const lz_value_t *value) {
    if (!value) return 0;
    if (value->type == LZ_VALUE_ARRAY) return value->u.array.len;
    return value->type == LZ_VALUE_OBJECT ? value->u.object.len : 0;
}

lz_value_t *lz_value_at(const lz_value_t *value, size_t index) {
    if (index >= lz_value_size(value)) return NULL;
    if (value->type == LZ_VALUE_ARRAY) return value->u.array.items[index];
    return value->u.object.members[index].value;
}

const char *lz_value_key_at(const lz_value_t *value, size_t index) {
    if (lz_value_type(value) != LZ_VALUE_OBJECT || index >= value->u.object.len) return NULL;
    return member_key(&value->u.object.members[index]);
}

lz_value_t *lz_value_get(const lz_value_t *object, const char *key) {
    lz_member_t *member = find_member(object, key, key ? strlen(key) : 0);
    return member ? member->value : NULL;
}

const char *lz_value_find_string(const lz_value_t *object, const char *key, const char *fallback) {
    const char *s = lz_value_get_string(lz_value_get(object, key), NULL);
    return s ? s : fallback;
}

int64_t lz_value_find_int(const lz_value_t *object, const char *key, int64_t fallback) {
    const lz_value_t *value = lz_value_get(object, key);
    return lz_value_type(value) == LZ_VALUE_INT ? value->u.i : fallback;
}

double lz_value_find_double(const lz_value_t *object, const char *key, double fallback) {
    const lz_value_t *value = lz_value_get(object, key);
    lz_value_type_t type = lz_value_type(value);
    return type == LZ_VALUE_DOUBLE || type == LZ_VALUE_INT ? lz_value_get_double(value) : fallback;
}

static bool objects_equal(const lz_value_t *a, const lz_value_t *b) {
    for (size_t i = 0; i < a->u.object.len; i++) {
        const lz_member_t *member = &a->u.object.members[i];
        const lz_member_t *other = find_member(b, member_key(member), member->key_len);
        if (!other || !lz_value_equal(member->value, other->value)) return false;
    }
    return true;
}

bool lz_value_equal(const lz_value_t *a, const lz_value_t *b) {
    if (lz_value_type(a) != lz_value_type(b)) return false;
    if (!a || !b) return !a && !b; // NULL only equals NULL, not a null value
    switch ((lz_value_type_t)a->type) {
    case LZ_VALUE_NULL: return true;
    case LZ_VALUE_BOOL: return a->u.b == b->u.b;
    case LZ_VALUE_INT: return a->u.i == b->u.i;
    // NaN equals NaN here, so a value always equals its own copy.
    case LZ_VALUE_DOUBLE: return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
    case LZ_VALUE_STRING:
    case LZ_VALUE_BYTES:
        return a->u.blob.len == b->u.blob.len &&
               (a->u.blob.len == 0 || memcmp(a->u.blob.data, b->u.blob.data, a->u.blob.len) == 0);
    case LZ_VALUE_ARRAY:
        if (a->u.array.len != b->u.array.len) return false;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!lz_value_equal(a->u.array.items[i], b->u.array.items[i])) return false;
        return true;
    case LZ_VALUE_OBJECT:
        return a->u.object.len == b->u.object.len && objects_equal(a, b);
    }
    return false;
}
