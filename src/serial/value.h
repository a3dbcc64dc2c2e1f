/* Internal value helpers the codecs and envelopes share. */
#ifndef LZ_SERIAL_VALUE_H
#define LZ_SERIAL_VALUE_H

#include <stdint.h>
#include <string.h>

#include "core/copy.h"
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
    // (a received raw payload, the envelope cache): the node must
    // never free or copy into it.
    unsigned char borrowed;
    // Not the caller's to change or free (0: it is), and so are its
    // children: lz_value_destroy leaves it alone, and the public setters
    // refuse it. LZ_NODE_HELD or LZ_NODE_FROZEN, which say who frees it.
    unsigned char unowned;
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

// The node lives in memory something else owns and frees (an
// lz_value_slot_t, a message's arena, a constant).
#define LZ_NODE_HELD 1
// The node is part of a received message's tree that a decoder built on
// the heap (msgpack, a custom codec, the JSON reader's yajl fallback),
// marked by lz__value_freeze: read-only to callers as a held one is, and
// freed by the message (lz__value_release).
#define LZ_NODE_FROZEN 2

static inline char *lz__value_payload(lz_value_t *value) { return (char *)(value + 1); }

static inline const char *lz__member_key(const lz_member_t *member) {
    return member->key_len < LZ_KEY_INLINE ? member->key.small : member->key.heap;
}

/* ---- arenas --------------------------------------------------------- */

// An arena holds a whole decoded tree for a received message: nodes, child
// arrays, keys and string contents are carved from its blocks by bumping a
// cursor, and all of it goes at once (lz__arena_release) without a walk
// over the tree. Its nodes are unowned. The first block is the caller's
// (a message keeps one inside itself); more are malloc'ed and chained.
typedef struct lz_arena {
    char *at, *end;  // the current block's free room
    void *chunks;    // malloc'ed blocks, chained through their first bytes
} lz_arena_t;

// Under AddressSanitizer every allocation from an arena is its own malloc
// (chained, freed on release), so ASan still sees overflows past a node
// and any use of a message's value after the message is destroyed.
#if defined(__SANITIZE_ADDRESS__)
#define LZ_ARENA_BUMP 0
#else
#define LZ_ARENA_BUMP 1
#endif

// lz__arena_more is lz__arena_alloc when the current block is full (or
// under ASan): NULL when out of memory.
LZ_HIDDEN void *lz__arena_more(lz_arena_t *arena, size_t size);
// lz__arena_free_chunks frees what lz__arena_more allocated.
LZ_HIDDEN void lz__arena_free_chunks(lz_arena_t *arena);

// lz__arena_init starts arena empty on block (size bytes, 8-aligned).
static inline void lz__arena_init(lz_arena_t *arena, void *block, size_t size) {
    arena->at = LZ_ARENA_BUMP ? (char *)block : NULL;
    arena->end = LZ_ARENA_BUMP ? arena->at + (size & ~(size_t)7) : NULL;
    arena->chunks = NULL;
}

// lz__arena_alloc returns size bytes, 8-aligned, valid until the release.
// The block's room stays a multiple of 8, so rounding up cannot pass it.
static inline void *lz__arena_alloc(lz_arena_t *arena, size_t size) {
    if (size > (size_t)(arena->end - arena->at)) return lz__arena_more(arena, size);
    void *p = arena->at;
    arena->at += (size + 7) & ~(size_t)7;
    return p;
}

// lz__arena_release frees everything allocated from arena but its first
// block; arena must be initialised again before further use.
static inline void lz__arena_release(lz_arena_t *arena) {
    if (arena->chunks) lz__arena_free_chunks(arena);
}

// lz__arena_node returns a zeroed unowned node of type from arena, with
// payload bytes of room after it (lz__value_payload), or NULL.
static inline lz_value_t *lz__arena_node(lz_arena_t *arena, lz_value_type_t type, size_t payload) {
    if (payload > SIZE_MAX / 2) return NULL;
    lz_value_t *value = (lz_value_t *)lz__arena_alloc(arena, sizeof *value + payload);
    if (!value) return NULL;
    memset(value, 0, sizeof *value);
    value->type = (unsigned char)type;
    value->unowned = LZ_NODE_HELD;
    return value;
}

// lz__arena_blob is lz__value_blob in arena.
static inline lz_value_t *lz__arena_blob(lz_arena_t *arena, lz_value_type_t type, const void *data, size_t len) {
    lz_value_t *value = lz__arena_node(arena, type, len + 1);
    if (!value) return NULL;
    char *payload = lz__value_payload(value);
    lz__copy(payload, data, len);
    payload[len] = '\0';
    value->u.blob.data = payload;
    value->u.blob.len = len;
    return value;
}

// lz__arena_children gives container (an arena array or object, empty)
// room for exactly n elements or members, from arena; false when out of
// memory. A decoder knows n before it builds the children.
static inline bool lz__arena_children(lz_arena_t *arena, lz_value_t *container, size_t n) {
    bool array = container->type == LZ_VALUE_ARRAY;
    size_t elem = array ? sizeof(lz_value_t *) : sizeof(lz_member_t);
    if (n > SIZE_MAX / 2 / elem) return false;
    void *items = lz__arena_alloc(arena, n * elem);
    if (!items) return false;
    if (array) {
        container->u.array.items = (lz_value_t **)items;
        container->u.array.cap = n;
    } else {
        container->u.object.members = (lz_member_t *)items;
        container->u.object.cap = n;
    }
    return true;
}

// lz__arena_append adds item under key (len bytes, no NUL inside) as the
// last member of object, an arena object with room left (children); a
// long key is copied into arena. false when out of memory.
static inline bool lz__arena_append(lz_arena_t *arena, lz_value_t *object, const char *key, size_t len,
                                    lz_value_t *item) {
    lz_member_t *member = &object->u.object.members[object->u.object.len];
    char *text = member->key.small;
    if (len < LZ_KEY_INLINE) {
        lz__copy_short(text, key, len);
    } else {
        if (!(text = member->key.heap = (char *)lz__arena_alloc(arena, len + 1))) return false;
        memcpy(text, key, len);
    }
    text[len] = '\0';
    member->key_len = len;
    member->value = item;
    object->u.object.len++;
    return true;
}

// lz__value_find_member returns object's member under key (len bytes), or
// NULL (also when object is not an object).
LZ_HIDDEN lz_member_t *lz__value_find_member(const lz_value_t *object, const char *key, size_t len);

// A decoder filling an object with more than LZ_KEY_SCAN_MAX members finds
// repeated keys through a key index: scanning the members for each key
// would cost time in the square of the object's size, so a large object
// (one sent to tie a reader up, say) would stall it for minutes. The index
// holds member positions by key in an open addressing table, its hash
// seeded from the kernel's per-process random bytes (AT_RANDOM) so keys
// cannot be chosen to collide.
#define LZ_KEY_SCAN_MAX 64
typedef struct lz_key_index {
    uint32_t *slots; // member position + 1; 0 is empty
    size_t mask;
} lz_key_index_t;

// lz__key_index_init makes room for members keys: LZ_OK or LZ_ENOMEM.
LZ_HIDDEN int lz__key_index_init(lz_key_index_t *index, size_t members);
// lz__key_index_find_or_add returns the position of object's earlier member
// under key (len bytes), or SIZE_MAX after noting that key will be at
// position (the next member appended).
LZ_HIDDEN size_t lz__key_index_find_or_add(lz_key_index_t *index, const lz_value_t *object, const char *key,
                                           size_t len, size_t position);
LZ_HIDDEN void lz__key_index_fini(lz_key_index_t *index);
// lz__key_index_reserve makes index (inactive, or object's) hold object's
// members and room for members keys in all, rebuilding it twice as large
// when it has too little: for a decoder that does not know an object's
// size before its end (yajl's). LZ_OK or LZ_ENOMEM (index unchanged).
LZ_HIDDEN int lz__key_index_reserve(lz_key_index_t *index, const lz_value_t *object, size_t members);

// lz__value_object_add adds item under key (len bytes) to object, a heap
// object: a repeated key keeps its first place and takes item (the earlier
// value is freed), a new one is appended. index: NULL, or the object's key
// index (see above). Takes ownership of item (freed on failure).
LZ_HIDDEN int lz__value_object_add(lz_value_t *object, lz_key_index_t *index, const char *key, size_t len,
                                   lz_value_t *item);

// lz__value_null_constant is a null that is no allocation: read only,
// never freed (unowned), for "no value" where a value is needed (a send of
// NULL encodes null), so that needs no memory.
LZ_HIDDEN extern const lz_value_t lz__value_null_constant;

/* ---- heap nodes ------------------------------------------------------ */

// lz__value_new returns a zeroed node of type with payload bytes of room
// after it (for a string's or bytes' content), from the thread's node cache.
LZ_HIDDEN lz_value_t *lz__value_new(lz_value_type_t type, size_t payload);

// lz__value_blob makes an owned string or bytes value holding a copy of data.
LZ_HIDDEN lz_value_t *lz__value_blob(lz_value_type_t type, const void *data, size_t len);

// lz__value_freeze makes *value_p, a tree a decoder just built on the heap
// for a received message, read-only to callers: every node of it not held
// (LZ_NODE_HELD) becomes LZ_NODE_FROZEN. It walks the tree once, without
// recursion. LZ_OK, or LZ_ENOMEM (for the walk's stack, past 32 levels):
// then the tree is freed and *value_p is NULL.
LZ_HIDDEN int lz__value_freeze(lz_value_t **value_p);

// lz__value_release is lz_value_destroy for the message that holds a
// frozen tree (or one it owns outright): it frees the frozen nodes too,
// and still leaves held ones alone. Sets *value_p to NULL.
LZ_HIDDEN void lz__value_release(lz_value_t **value_p);

// Room for one value node inside another structure, so a message's raw
// payload value needs no allocation of its own (value.c checks the size).
#define LZ_VALUE_SLOT_SIZE 32
typedef union lz_value_slot {
    void *align_pointer;
    int64_t align_int;
    double align_double;
    unsigned char bytes[LZ_VALUE_SLOT_SIZE];
} lz_value_slot_t;

// lz__value_bytes_borrowed_in makes a bytes value in slot that points at
// data without copying (a received message's raw payload), unowned:
// lz_value_destroy leaves it alone. slot and data must outlive the value.
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

// lz__compare_int_double orders i against d exactly (converting i to a
// double would round past 2^53): -1, 0 or 1, and 2 when d is NaN.
LZ_HIDDEN int lz__compare_int_double(int64_t i, double d);

// lz__value_json_equal is lz_value_equal with JSON's number equality, as
// JSON Schema's enum, const and uniqueItems have it: an int and a double
// of the same number are equal (1 == 1.0). Bytes equal only bytes.
LZ_HIDDEN bool lz__value_json_equal(const lz_value_t *a, const lz_value_t *b);

// lz__value_member_take detaches and returns the index-th member's value
// (the caller owns it), or NULL past the end or for a non-object; the
// others keep their order. Lets envelopes lift "data" out without a copy.
LZ_HIDDEN lz_value_t *lz__value_member_take(lz_value_t *object, size_t index);

#ifdef __cplusplus
}
#endif
#endif
