/* Internal value helpers the codecs and envelopes share. */
#ifndef LZ_SERIAL_VALUE_H
#define LZ_SERIAL_VALUE_H

#include <stdint.h>

#include "liberzmq/value.h"

// json_reader.cpp (C++) builds values through these helpers too.
#ifdef __cplusplus
extern "C" {
#endif

// Internal functions no test or program outside the library calls are
// hidden: a call to them is direct, where an exported one goes through the
// PLT (the library is built without -fno-semantic-interposition).
#define LZ_HIDDEN __attribute__((visibility("hidden")))

// The node layout, shared with the codecs so their per-message walks read
// and build nodes directly instead of through a call per field.

// Keys up to this length minus one live inside the member itself; envelope
// keys ("request_id", "traceparent") and typical field names fit.
#define LZ_KEY_INLINE 16

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
    // A borrowed string or bytes value points at memory someone else owns
    // (the raw codec's zero-copy decode, the envelope cache): the node must
    // never free or copy into it.
    unsigned char borrowed;
    // A node built in an lz_value_slot_t is not freed with the value.
    unsigned char in_slot;
    union {
        bool b;
        int64_t i;
        double d;
        struct { const char *data; size_t len; } blob;
        struct { lz_value_t **items; size_t len, cap; } array;
        struct { lz_member_t *members; size_t len, cap; } object;
    } u;
    // An owned string's or bytes' content follows the node in its block,
    // NUL-terminated (lz__value_payload).
};

static inline char *lz__value_payload(lz_value_t *value) { return (char *)(value + 1); }

static inline const char *lz__member_key(const lz_member_t *member) {
    return member->key_len < LZ_KEY_INLINE ? member->key.small : member->key.heap;
}

// lz__value_new returns a zeroed node of type with payload bytes of room
// after it (for a string's or bytes' content), from the thread's node cache.
LZ_HIDDEN lz_value_t *lz__value_new(lz_value_type_t type, size_t payload);

// lz__value_blob makes an owned string or bytes value holding a copy of data.
LZ_HIDDEN lz_value_t *lz__value_blob(lz_value_type_t type, const void *data, size_t len);

// Room for one value node inside another structure, so a message's raw
// payload value needs no allocation of its own (value.c checks the size).
#define LZ_VALUE_SLOT_SIZE 32
typedef union lz_value_slot {
    void *align_pointer;
    int64_t align_int;
    double align_double;
    unsigned char bytes[LZ_VALUE_SLOT_SIZE];
} lz_value_slot_t;

// lz__value_bytes_borrowed makes a bytes value that points at data without
// copying (the raw codec's zero-copy decode); data must outlive the value.
lz_value_t *lz__value_bytes_borrowed(const void *data, size_t size);

// lz__value_bytes_borrowed_in is lz__value_bytes_borrowed built in slot:
// lz_value_destroy then leaves the memory alone. slot must outlive the value.
lz_value_t *lz__value_bytes_borrowed_in(lz_value_slot_t *slot, const void *data, size_t size);

// lz__value_string_borrowed makes a string value that points at s (len
// bytes, NUL-terminated) without copying; s must outlive the value or be
// replaced first with lz__value_rebind.
lz_value_t *lz__value_string_borrowed(const char *s, size_t len);

// In-place updates for values a sender keeps and re-encodes (the envelope
// cache): rebind points a borrowed string or bytes value at new data; the
// setters change an int's or a double's number. Wrong types are left alone.
void lz__value_rebind(lz_value_t *value, const void *data, size_t len);
void lz__value_set_int(lz_value_t *value, int64_t i);
void lz__value_set_double(lz_value_t *value, double d);

// lz__value_member_swap stores item as the index-th member's value of
// object and returns the value that was there, which is not freed: lets an
// envelope lend the caller's data to an encode and take it back. NULL (and
// nothing changes) when object has no such member.
lz_value_t *lz__value_member_swap(lz_value_t *object, size_t index, lz_value_t *item);

// lz__value_object_setn is lz_value_object_set with the key's length
// given (a decoder has it), so the key needs no strlen.
LZ_HIDDEN int lz__value_object_setn(lz_value_t *object, const char *key, size_t len, lz_value_t *item);

// lz__value_object_append adds item under key (len bytes, no NUL inside)
// as the last member without looking for an earlier member under the same
// key: for a decoder that already knows the key is new. object must be an
// object. Takes ownership of item (freed on failure).
LZ_HIDDEN int lz__value_object_append(lz_value_t *object, const char *key, size_t len, lz_value_t *item);

// lz__value_reserve makes room for n elements (an array) or members (an
// object, which container must otherwise be), so a decoder that knows the
// count allocates once instead of growing.
LZ_HIDDEN int lz__value_reserve(lz_value_t *container, size_t n);

// lz__value_object_take detaches and returns the member under key (the
// caller owns it), or NULL; lets envelopes lift "data" out without a copy.
lz_value_t *lz__value_object_take(lz_value_t *object, const char *key);
// lz__value_member_take is the same for the index-th member.
LZ_HIDDEN lz_value_t *lz__value_member_take(lz_value_t *object, size_t index);

#ifdef __cplusplus
}
#endif
#endif
