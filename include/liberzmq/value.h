/* liberzmq dynamic values: what a message carries once decoded.
 *
 * A value is null, a boolean, a 64-bit integer, a double, a UTF-8 string,
 * a byte string, an array or an object (string keys, insertion order kept).
 * Containers own their children. Values are not locked: build or read one
 * value from one thread at a time; reading a value concurrently is safe. */
#ifndef LIBERZMQ_VALUE_H
#define LIBERZMQ_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lz_value_type {
    LZ_VALUE_NULL = 0,
    LZ_VALUE_BOOL,
    LZ_VALUE_INT,
    LZ_VALUE_DOUBLE,
    LZ_VALUE_STRING,
    LZ_VALUE_BYTES,
    LZ_VALUE_ARRAY,
    LZ_VALUE_OBJECT
} lz_value_type_t;

typedef struct lz_value lz_value_t;

// Constructors. Each returns a new value owned by the caller (free with
// lz_value_destroy, or hand it to a container), or NULL when out of memory.
// Strings and bytes are copied. lz_value_string(NULL) is NULL (LZ_EINVAL).
lz_value_t *lz_value_null(void);
lz_value_t *lz_value_bool(bool b);
lz_value_t *lz_value_int(int64_t i);
lz_value_t *lz_value_double(double d);
lz_value_t *lz_value_string(const char *s);
lz_value_t *lz_value_stringn(const char *s, size_t len);
lz_value_t *lz_value_bytes(const void *data, size_t size);
lz_value_t *lz_value_array(void);
lz_value_t *lz_value_object(void);

// How deeply lz_value_copy and lz_value_equal follow containers inside
// containers (every codec refuses far less: JSON 127 levels, MessagePack 32).
#define LZ_VALUE_MAX_DEPTH 1000

// lz_value_destroy frees *value_p with all its children and sets it to NULL,
// however deeply they nest (it does not recurse). A received message's
// value (lz_message_value) and every value in it belong to the message:
// destroying one only sets *value_p to NULL.
void lz_value_destroy(lz_value_t **value_p);

// lz_value_copy returns a deep copy, or NULL: LZ_ENOMEM, or LZ_EINVAL when
// value is NULL or nests containers more than LZ_VALUE_MAX_DEPTH deep.
lz_value_t *lz_value_copy(const lz_value_t *value);

// lz_value_array_append takes ownership of item (even on failure, when it
// is freed) and appends it. LZ_EINVAL if array is not an array, or is part
// of a received message's value (read-only; see lz_message_value). A value
// belongs to one container at most, and never to itself or its children:
// item == array is refused with LZ_EINVAL and nothing is freed; deeper
// cycles are the caller's to avoid.
int lz_value_array_append(lz_value_t *array, lz_value_t *item);

// lz_value_object_set takes ownership of item (even on failure) and stores
// it under key (copied), replacing and freeing any previous value there.
// LZ_EINVAL if object is not an object, or is part of a received message's
// value (read-only). Refused with LZ_EINVAL, freeing nothing: item ==
// object, and the item already stored under key (as lz_value_get gives
// it). Looking for the key scans the members: build large objects once,
// not key by key in a loop over thousands of keys.
int lz_value_object_set(lz_value_t *object, const char *key, lz_value_t *item);

// Shorthands for lz_value_object_set with a scalar.
int lz_value_object_set_string(lz_value_t *object, const char *key, const char *s);
int lz_value_object_set_int(lz_value_t *object, const char *key, int64_t i);
int lz_value_object_set_double(lz_value_t *object, const char *key, double d);
int lz_value_object_set_bool(lz_value_t *object, const char *key, bool b);

// lz_value_type returns the type; a NULL value reads as LZ_VALUE_NULL.
lz_value_type_t lz_value_type(const lz_value_t *value);

// lz_value_type_name returns "null", "bool", "int", "double", "string",
// "bytes", "array" or "object".
const char *lz_value_type_name(lz_value_type_t type);

// Scalar readers. Each returns the value when the type fits and 0 / false /
// NULL otherwise; lz_value_get_double also reads integers.
bool lz_value_get_bool(const lz_value_t *value);
int64_t lz_value_get_int(const lz_value_t *value);
double lz_value_get_double(const lz_value_t *value);
// lz_value_get_string returns a string's NUL-terminated text (owned by the
// value) and its length in *len when len is not NULL; NULL for other types.
const char *lz_value_get_string(const lz_value_t *value, size_t *len);
// lz_value_get_bytes returns the bytes of a bytes or string value.
const void *lz_value_get_bytes(const lz_value_t *value, size_t *size);

// lz_value_size: elements of an array, members of an object, else 0.
size_t lz_value_size(const lz_value_t *value);
// lz_value_at: the index-th element of an array or member value of an
// object, NULL past the end. Borrowed: owned by the container.
lz_value_t *lz_value_at(const lz_value_t *value, size_t index);
// lz_value_key_at: the index-th key of an object, NULL otherwise. Borrowed.
const char *lz_value_key_at(const lz_value_t *value, size_t index);
// lz_value_get: the member of object under key, NULL if absent. Borrowed.
lz_value_t *lz_value_get(const lz_value_t *object, const char *key);

// Lookups with a fallback, for handler code: the member's value when present
// and of a fitting type, else fallback.
const char *lz_value_find_string(const lz_value_t *object, const char *key, const char *fallback);
int64_t lz_value_find_int(const lz_value_t *object, const char *key, int64_t fallback);
double lz_value_find_double(const lz_value_t *object, const char *key, double fallback);

// lz_value_equal: deep equality (an int and a double of the same number
// are not equal; object member order does not matter). Containers nested
// past LZ_VALUE_MAX_DEPTH are unequal unless they are the same value.
bool lz_value_equal(const lz_value_t *a, const lz_value_t *b);

// lz_value_to_json renders value as compact JSON (bytes as a base64
// string). Returns a string the caller frees with free(), NULL on error
// (a NaN or infinite double is LZ_ESERIALIZATION).
char *lz_value_to_json(const lz_value_t *value);

// lz_value_from_json parses JSON text of len bytes. Returns a new value or
// NULL with LZ_ESERIALIZATION and a detail naming the offset of the error.
lz_value_t *lz_value_from_json(const char *text, size_t len);

#ifdef __cplusplus
}
#endif
#endif
