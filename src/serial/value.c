/* Dynamic values. Each node is one allocation: a string's or bytes' payload
 * lives in the same block as its node, containers hold growable arrays of
 * child pointers (so borrowed children stay put while siblings are added),
 * and short object keys are stored inside the member array itself. A
 * received message's tree lives in an arena instead (value.h), freed with
 * the message as a whole, or, when a decoder built it on the heap, is
 * frozen: read-only to callers, freed by the message. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "core/error.h"
#include "serial/value.h"

_Static_assert(sizeof(lz_value_t) <= sizeof(lz_value_slot_t), "lz_value_slot_t too small for a value node");
_Static_assert(LZ_KEY_INLINE <= LZ_COPY_SHORT_MAX, "lz__arena_append copies inline keys with lz__copy_short");

/* ---- node allocation ---------------------------------------------------- */

// Each thread keeps short lists of freed blocks in three sizes: a bare
// node, a node with room for a short string (symbols, types, UUIDs), and a
// container's first child array (LZ_ITEMS_BLOCK bytes). Decoding a message
// makes a dozen nodes and two member arrays and frees them right after; glibc's
// per-thread cache holds only seven blocks of a size, so most of those
// frees took its slow path. The caps bound what a thread keeps. Under
// AddressSanitizer nodes go straight to malloc/free, so it still sees every
// use after free.
#if defined(__SANITIZE_ADDRESS__)
#define LZ_NODE_CACHE 0
#else
#define LZ_NODE_CACHE 1
#endif
#define LZ_NODE_SHORT_PAYLOAD 48
#define LZ_NODE_CACHE_MAX 128
#define LZ_CLASSES 3
// A container's first child array: 8 members or 32 items (the envelopes on
// the wire have five members).
#define LZ_ITEMS_BLOCK 256
#define LZ_ITEMS_CLASS 2

static const size_t class_size[LZ_CLASSES] = {sizeof(lz_value_t), sizeof(lz_value_t) + LZ_NODE_SHORT_PAYLOAD,
                                              LZ_ITEMS_BLOCK};

typedef struct node_cache {
    void *head[LZ_CLASSES]; // linked through each free block's first bytes
    unsigned count[LZ_CLASSES];
} node_cache_t;

// The key frees a thread's lists when it exits; the thread-local pointer
// is the fast way to them (pthread_once plus pthread_getspecific on every
// node cost more than the allocation they save). It is initial-exec: in a
// shared library the default model calls __tls_get_addr on every node
// allocated and freed (a tenth of a decode's own work); eight bytes of
// static TLS are well within what glibc keeps spare for a dlopen()ed
// library using this model.
static pthread_key_t node_key;
static pthread_once_t node_once = PTHREAD_ONCE_INIT;
static _Thread_local node_cache_t *thread_node_cache __attribute__((tls_model("initial-exec")));

static void node_cache_free(void *arg) {
    node_cache_t *cache = arg;
    thread_node_cache = NULL; // a later destructor freeing values starts afresh
    for (int c = 0; c < LZ_CLASSES; c++) {
        while (cache->head[c]) {
            void *next;
            memcpy(&next, cache->head[c], sizeof next);
            free(cache->head[c]);
            cache->head[c] = next;
        }
    }
    free(cache);
}

static void node_key_init(void) { (void)pthread_key_create(&node_key, node_cache_free); }

// thread_nodes returns the thread's lists (NULL: allocate plainly).
static node_cache_t *thread_nodes(void) {
    if (!LZ_NODE_CACHE || thread_node_cache) return thread_node_cache;
    pthread_once(&node_once, node_key_init);
    node_cache_t *cache = calloc(1, sizeof *cache);
    if (cache && pthread_setspecific(node_key, cache) != 0) {
        free(cache);
        cache = NULL;
    }
    return thread_node_cache = cache;
}

// node_class: which list a node of size bytes belongs to, or -1.
static int node_class(size_t size) {
    return size <= class_size[0] ? 0 : size <= class_size[1] ? 1 : -1;
}

// block_alloc returns a block of class c's full size (so it can be cached
// when freed), from the thread's list when it has one.
static void *block_alloc(int c) {
    node_cache_t *cache = thread_nodes();
    if (cache && cache->head[c]) {
        void *block = cache->head[c];
        memcpy(&cache->head[c], block, sizeof block);
        cache->count[c]--;
        return block;
    }
    return malloc(class_size[c]);
}

// block_release keeps a block of class c (malloc'ed, at least its size) for
// the thread, or frees it when the list is full.
static void block_release(int c, void *block) {
    node_cache_t *cache = thread_nodes();
    if (cache && cache->count[c] < LZ_NODE_CACHE_MAX) {
        memcpy(block, &cache->head[c], sizeof cache->head[c]);
        cache->head[c] = block;
        cache->count[c]++;
        return;
    }
    free(block);
}

static void *node_alloc(size_t size) {
    int c = node_class(size);
    return c < 0 ? malloc(size) : block_alloc(c);
}

// node_release frees a node's own block (children are freed by the caller).
static void node_release(lz_value_t *value) {
    bool owned_blob = (value->type == LZ_VALUE_STRING || value->type == LZ_VALUE_BYTES) && !value->borrowed;
    int c = node_class(sizeof *value + (owned_blob ? value->u.blob.len + 1 : 0));
    if (c < 0) free(value);
    else block_release(c, value);
}

// items_resize gives a container's child array (items, cap elements of
// elem_size) room for want elements, at least: the first array comes from
// the thread's list, a bigger one from realloc (the listed blocks are
// malloc'ed, so realloc takes them too).
static int items_resize(void **items, size_t *cap, size_t want, size_t elem_size) {
    if (want > SIZE_MAX / elem_size) return lz__fail(LZ_ENOMEM, "value: container too large");
    bool first = !*items && want * elem_size <= LZ_ITEMS_BLOCK;
    void *grown = first ? block_alloc(LZ_ITEMS_CLASS) : realloc(*items, want * elem_size);
    if (!grown) return lz__fail(LZ_ENOMEM, "value: out of memory growing a container");
    *items = grown;
    *cap = first ? LZ_ITEMS_BLOCK / elem_size : want;
    return 0;
}

// items_free frees a child array; one of exactly LZ_ITEMS_BLOCK bytes goes
// back to the thread's list.
static void items_free(void *items, size_t cap, size_t elem_size) {
    if (items && cap * elem_size == LZ_ITEMS_BLOCK) block_release(LZ_ITEMS_CLASS, items);
    else free(items);
}

/* ---- arenas ------------------------------------------------------------ */

// Blocks an arena takes past its first: big enough that a large document
// needs few; a request of more than a quarter of one gets a block of its
// own, so the room left in the current block still serves what follows.
#define LZ_ARENA_CHUNK 8192

void *lz__arena_more(lz_arena_t *arena, size_t size) {
    if (size > SIZE_MAX / 2) return NULL;
    size = (size + 7) & ~(size_t)7;
    bool own = !LZ_ARENA_BUMP || size > LZ_ARENA_CHUNK / 4;
    size_t room = own ? size : LZ_ARENA_CHUNK - sizeof(void *);
    void **chunk = malloc(sizeof(void *) + room);
    if (!chunk) return NULL;
    *chunk = arena->chunks;
    arena->chunks = chunk;
    char *p = (char *)(chunk + 1);
    if (!own) {
        arena->at = p + size;
        arena->end = p + room;
    }
    return p;
}

void lz__arena_free_chunks(lz_arena_t *arena) {
    while (arena->chunks) {
        void *next = *(void **)arena->chunks;
        free(arena->chunks);
        arena->chunks = next;
    }
}

/* ---- heap nodes --------------------------------------------------------- */

lz_value_t *lz__value_new(lz_value_type_t type, size_t payload) {
    if (payload > SIZE_MAX - sizeof(lz_value_t))
        return lz__fail_null(LZ_ENOMEM, "value: %zu bytes is too large", payload);
    lz_value_t *value = node_alloc(sizeof *value + payload);
    if (!value) return lz__fail_null(LZ_ENOMEM, "value: out of memory");
    memset(value, 0, sizeof *value);
    value->type = (unsigned char)type;
    return value;
}

lz_value_t *lz__value_blob(lz_value_type_t type, const void *data, size_t len) {
    if (!data && len) return lz__fail_null(LZ_EINVAL, "value: NULL data of %zu bytes", len);
    if (len == SIZE_MAX) return lz__fail_null(LZ_ENOMEM, "value: string too large");
    lz_value_t *value = lz__value_new(type, len + 1);
    if (!value) return NULL;
    char *payload = lz__value_payload(value);
    lz__copy(payload, data, len); // short strings without a memcpy call
    payload[len] = '\0';
    value->u.blob.data = payload;
    value->u.blob.len = len;
    return value;
}

const lz_value_t lz__value_null_constant = {.type = LZ_VALUE_NULL, .unowned = LZ_NODE_HELD};

lz_value_t *lz_value_null(void) { return lz__value_new(LZ_VALUE_NULL, 0); }

// The scalar constructors, for the public ones and the setters (a call to
// an exported function goes through the PLT).
static lz_value_t *bool_new(bool b) {
    lz_value_t *value = lz__value_new(LZ_VALUE_BOOL, 0);
    if (value) value->u.b = b;
    return value;
}

static lz_value_t *int_new(int64_t i) {
    lz_value_t *value = lz__value_new(LZ_VALUE_INT, 0);
    if (value) value->u.i = i;
    return value;
}

static lz_value_t *double_new(double d) {
    lz_value_t *value = lz__value_new(LZ_VALUE_DOUBLE, 0);
    if (value) value->u.d = d;
    return value;
}

lz_value_t *lz_value_bool(bool b) { return bool_new(b); }

lz_value_t *lz_value_int(int64_t i) { return int_new(i); }

lz_value_t *lz_value_double(double d) { return double_new(d); }

lz_value_t *lz_value_string(const char *s) {
    if (!s) return lz__fail_null(LZ_EINVAL, "value: NULL string");
    return lz__value_blob(LZ_VALUE_STRING, s, strlen(s));
}

lz_value_t *lz_value_stringn(const char *s, size_t len) {
    return lz__value_blob(LZ_VALUE_STRING, s, len);
}

lz_value_t *lz_value_bytes(const void *data, size_t size) {
    return lz__value_blob(LZ_VALUE_BYTES, data, size);
}

lz_value_t *lz_value_array(void) { return lz__value_new(LZ_VALUE_ARRAY, 0); }

lz_value_t *lz_value_object(void) { return lz__value_new(LZ_VALUE_OBJECT, 0); }

// borrow points value (a fresh node) at data someone else owns.
static lz_value_t *borrow(lz_value_t *value, lz_value_type_t type, const void *data, size_t size) {
    value->type = (unsigned char)type;
    value->borrowed = 1;
    value->u.blob.data = data ? data : "";
    value->u.blob.len = size;
    return value;
}

lz_value_t *lz__value_bytes_borrowed_in(lz_value_slot_t *slot, const void *data, size_t size) {
    if (!data && size) return lz__fail_null(LZ_EINVAL, "value: NULL data of %zu bytes", size);
    lz_value_t *value = (lz_value_t *)slot->bytes;
    memset(value, 0, sizeof *value);
    value->unowned = LZ_NODE_HELD;
    return borrow(value, LZ_VALUE_BYTES, data, size);
}

lz_value_t *lz__value_string_borrowed(const char *s, size_t len) {
    if (!s) return lz__fail_null(LZ_EINVAL, "value: NULL string");
    lz_value_t *value = lz__value_new(LZ_VALUE_STRING, 0);
    return value ? borrow(value, LZ_VALUE_STRING, s, len) : NULL;
}

void lz__value_rebind(lz_value_t *value, const void *data, size_t len) {
    if (value && value->borrowed) borrow(value, (lz_value_type_t)value->type, data, len);
}

void lz__value_set_int(lz_value_t *value, int64_t i) {
    if (value && value->type == LZ_VALUE_INT) value->u.i = i;
}

void lz__value_set_double(lz_value_t *value, double d) {
    if (value && value->type == LZ_VALUE_DOUBLE) value->u.d = d;
}

static void member_free_key(lz_member_t *member) {
    if (member->key_len >= LZ_KEY_INLINE) free(member->key.heap);
}

// node_free frees a value whose children are gone: its child array and node.
static void node_free(lz_value_t *value) {
    if (value->type == LZ_VALUE_ARRAY) items_free(value->u.array.items, value->u.array.cap, sizeof(lz_value_t *));
    else if (value->type == LZ_VALUE_OBJECT)
        items_free(value->u.object.members, value->u.object.cap, sizeof(lz_member_t));
    node_release(value);
}

// The frees below take spared: the unowned kinds (value.h) they leave
// alone, children and all. A caller's destroy spares both; the message
// holding a frozen tree frees it sparing only held nodes.
#define SPARE_ALL (LZ_NODE_HELD | LZ_NODE_FROZEN)

// has_children: value is ours to free and has children to free first.
static bool has_children(const lz_value_t *value, unsigned spared) {
    return value && !(value->unowned & spared) &&
           ((value->type == LZ_VALUE_ARRAY && value->u.array.len) ||
            (value->type == LZ_VALUE_OBJECT && value->u.object.len));
}

// leaf_free frees a child without children of its own (NULL, or a spared
// one, is left alone).
static void leaf_free(lz_value_t *value, unsigned spared) {
    if (value && !(value->unowned & spared)) node_free(value);
}

// pop_leaves frees container's children from the last one back until one
// has children of its own, and returns where that one is (NULL: none left).
static lz_value_t **pop_leaves(lz_value_t *container, unsigned spared) {
    if (container->type == LZ_VALUE_ARRAY) {
        for (; container->u.array.len; container->u.array.len--) {
            lz_value_t **slot = &container->u.array.items[container->u.array.len - 1];
            if (has_children(*slot, spared)) return slot;
            leaf_free(*slot, spared);
        }
    } else if (container->type == LZ_VALUE_OBJECT) {
        for (; container->u.object.len; container->u.object.len--) {
            lz_member_t *member = &container->u.object.members[container->u.object.len - 1];
            if (has_children(member->value, spared)) return &member->value;
            member_free_key(member);
            leaf_free(member->value, spared);
        }
    }
    return NULL;
}

// up_from returns what container's last child's slot holds (the way back
// up, see value_free) and drops that child, freed already.
static lz_value_t *up_from(lz_value_t *container) {
    if (container->type == LZ_VALUE_ARRAY) return container->u.array.items[--container->u.array.len];
    lz_member_t *member = &container->u.object.members[--container->u.object.len];
    member_free_key(member);
    return member->value;
}

// value_free_sparing frees value and its children without recursion,
// since a chain built through the API may be deeper than any stack, and
// without allocating: going down into a container's last child it stores
// the way back up in that child's slot (pointer reversal), and going up it
// takes it from there again.
static void value_free_sparing(lz_value_t *value, unsigned spared) {
    if (!value || (value->unowned & spared)) return; // its owner frees it, children and all
    lz_value_t *up = NULL; // the container value is the last child of
    for (;;) {
        lz_value_t **slot = pop_leaves(value, spared);
        if (slot) {
            lz_value_t *child = *slot;
            *slot = up;
            up = value;
            value = child;
            continue;
        }
        node_free(value);
        if (!up) return;
        value = up;
        up = up_from(value);
    }
}

// value_free is the caller's free: every unowned node is spared.
static void value_free(lz_value_t *value) { value_free_sparing(value, SPARE_ALL); }

void lz_value_destroy(lz_value_t **value_p) {
    if (!value_p) return;
    value_free(*value_p);
    *value_p = NULL;
}

void lz__value_release(lz_value_t **value_p) {
    value_free_sparing(*value_p, LZ_NODE_HELD);
    *value_p = NULL;
}

/* ---- freezing a received tree ------------------------------------------- */

// Where the freeze walk goes back up to: a container and its next child.
typedef struct freeze_frame {
    lz_value_t *container;
    size_t next;
} freeze_frame_t;

#define LZ_FREEZE_STACK 32 // frames on the C stack: msgpack nests at most this deep

// freeze_node marks value frozen, unless it is NULL or held (then its
// owner's, children and all), and tells whether the walk goes into it.
static inline bool freeze_node(lz_value_t *value) {
    if (!value || value->unowned) return false;
    value->unowned = LZ_NODE_FROZEN;
    return (value->type == LZ_VALUE_ARRAY && value->u.array.len) ||
           (value->type == LZ_VALUE_OBJECT && value->u.object.len);
}

// freeze_children marks container's children from *at on, up to the first
// that has children of its own: that one is returned (*at its index) for
// the walk to go into; NULL once all are marked.
static lz_value_t *freeze_children(lz_value_t *container, size_t *at) {
    if (container->type == LZ_VALUE_ARRAY) {
        for (size_t i = *at; i < container->u.array.len; i++)
            if (freeze_node(container->u.array.items[i])) return *at = i, container->u.array.items[i];
    } else {
        for (size_t i = *at; i < container->u.object.len; i++)
            if (freeze_node(container->u.object.members[i].value))
                return *at = i, container->u.object.members[i].value;
    }
    return NULL;
}

// grow_frames doubles the walk's stack, onto the heap past LZ_FREEZE_STACK
// levels (a custom codec's tree may nest deeper than any codec's limit).
static __attribute__((noinline)) int grow_frames(freeze_frame_t **stack, size_t *cap, const freeze_frame_t *small) {
    freeze_frame_t *grown = *cap <= SIZE_MAX / 2 / sizeof **stack ? malloc(*cap * 2 * sizeof **stack) : NULL;
    if (!grown) return lz__fail(LZ_ENOMEM, "value: out of memory marking a received value read-only");
    memcpy(grown, *stack, *cap * sizeof **stack);
    if (*stack != small) free(*stack);
    *stack = grown;
    *cap *= 2;
    return LZ_OK;
}

int lz__value_freeze(lz_value_t **value_p) {
    freeze_frame_t small[LZ_FREEZE_STACK], *stack = small;
    size_t depth = 0, cap = LZ_FREEZE_STACK, at = 0;
    lz_value_t *container = *value_p; // frozen, with children from at on to mark
    int rc = LZ_OK;
    if (!freeze_node(container)) return LZ_OK;
    for (;;) {
        lz_value_t *child = freeze_children(container, &at);
        if (child) { // go into child, and on from the next one after it
            if (depth == cap && (rc = grow_frames(&stack, &cap, small)) != LZ_OK) break;
            stack[depth++] = (freeze_frame_t){container, at + 1};
            container = child;
            at = 0;
        } else if (depth) {
            container = stack[--depth].container;
            at = stack[depth].next;
        } else {
            break;
        }
    }
    if (stack != small) free(stack);
    if (rc != LZ_OK) lz__value_release(value_p); // frozen or not, its nodes are the message's
    return rc;
}

// read_only refuses a change to an unowned container: a received
// message's value, which users may only read (its arrays are exactly sized
// in the message's arena and cannot grow; a frozen tree's the message frees).
static int read_only(void) { return lz__fail(LZ_EINVAL, "value: a received message's value is read-only"); }

// grow makes room for one more element in a container's array.
static int grow(void **items, size_t *cap, size_t len, size_t elem_size) {
    if (len < *cap) return 0;
    return items_resize(items, cap, *cap ? *cap * 2 : 1, elem_size);
}

int lz_value_array_append(lz_value_t *array, lz_value_t *item) {
    int rc = 0;
    // Not freed: the caller still holds it, as the array.
    if (item && item == array) return lz__fail(LZ_EINVAL, "value: an array cannot hold itself");
    if (!item) rc = lz__fail(LZ_EINVAL, "value: NULL item");
    else if (!array || array->type != LZ_VALUE_ARRAY)
        rc = lz__fail(LZ_EINVAL, "value: append to a %s, not an array",
                      lz_value_type_name(lz_value_type(array)));
    else if (array->unowned) rc = read_only();
    else rc = grow((void **)&array->u.array.items, &array->u.array.cap, array->u.array.len,
                   sizeof(lz_value_t *));
    if (rc < 0) {
        value_free(item);
        return rc;
    }
    array->u.array.items[array->u.array.len++] = item;
    return 0;
}

// lz__value_find_member: linear, since objects on the
// wire are small, and a scan over a packed array beats hashing them.
lz_member_t *lz__value_find_member(const lz_value_t *object, const char *key, size_t len) {
    if (!object || object->type != LZ_VALUE_OBJECT || !key) return NULL;
    for (size_t i = 0; i < object->u.object.len; i++) {
        lz_member_t *member = &object->u.object.members[i];
        if (member->key_len == len && memcmp(lz__member_key(member), key, len) == 0) return member;
    }
    return NULL;
}

/* ---- key index ---------------------------------------------------------- */

static uint64_t key_seed_value = 0x9E3779B97F4A7C15ull;
static pthread_once_t key_seed_once = PTHREAD_ONCE_INIT;

static void key_seed_init(void) {
    const void *random = (const void *)getauxval(AT_RANDOM);
    if (random) memcpy(&key_seed_value, random, sizeof key_seed_value);
}

static uint64_t key_hash(const char *key, size_t len) {
    uint64_t h = key_seed_value ^ (len * 0xC2B2AE3D27D4EB4Full);
    for (; len >= 8; key += 8, len -= 8) {
        uint64_t word;
        memcpy(&word, key, 8);
        h = (h ^ word) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, key, len);
    // A multiply moves bits only upwards, and the index takes the low bits:
    // MurmurHash3's finaliser brings every bit, the tail's last bytes too,
    // down to them.
    h ^= tail;
    h = (h ^ (h >> 33)) * 0xFF51AFD7ED558CCDull;
    h = (h ^ (h >> 33)) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

int lz__key_index_init(lz_key_index_t *index, size_t members) {
    pthread_once(&key_seed_once, key_seed_init);
    size_t cap = 128;
    while (cap < members * 2 && cap <= UINT32_MAX) cap *= 2; // at most half full
    index->slots = members <= UINT32_MAX / 2 ? calloc(cap, sizeof *index->slots) : NULL;
    index->mask = cap - 1;
    return index->slots ? LZ_OK : lz__fail(LZ_ENOMEM, "value: out of memory indexing %zu keys", members);
}

size_t lz__key_index_find_or_add(lz_key_index_t *index, const lz_value_t *object, const char *key, size_t len,
                                 size_t position) {
    for (size_t i = key_hash(key, len) & index->mask;; i = (i + 1) & index->mask) {
        uint32_t slot = index->slots[i];
        if (slot == 0) {
            index->slots[i] = (uint32_t)(position + 1);
            return SIZE_MAX;
        }
        const lz_member_t *member = &object->u.object.members[slot - 1];
        if (member->key_len == len && memcmp(lz__member_key(member), key, len) == 0) return slot - 1;
    }
}

void lz__key_index_fini(lz_key_index_t *index) {
    free(index->slots);
    index->slots = NULL;
}

int lz__key_index_reserve(lz_key_index_t *index, const lz_value_t *object, size_t members) {
    if (index->slots && members <= (index->mask + 1) / 2) return LZ_OK; // at most half full
    lz_key_index_t grown;
    int rc = lz__key_index_init(&grown, members * 2);
    if (rc != LZ_OK) return rc;
    for (size_t i = 0; i < object->u.object.len; i++) {
        const lz_member_t *member = &object->u.object.members[i];
        (void)lz__key_index_find_or_add(&grown, object, lz__member_key(member), member->key_len, i);
    }
    lz__key_index_fini(index);
    *index = grown;
    return LZ_OK;
}

int lz__value_object_add(lz_value_t *object, lz_key_index_t *index, const char *key, size_t len, lz_value_t *item) {
    if (!index || !index->slots) return lz__value_object_setn(object, key, len, item);
    size_t earlier = lz__key_index_find_or_add(index, object, key, len, object->u.object.len);
    if (earlier == SIZE_MAX) return lz__value_object_append(object, key, len, item);
    lz_member_t *member = &object->u.object.members[earlier];
    lz_value_destroy(&member->value);
    member->value = item;
    return LZ_OK;
}

static int member_init_key(lz_member_t *member, const char *key, size_t len) {
    member->key_len = len;
    char *text = member->key.small;
    if (len >= LZ_KEY_INLINE) {
        text = member->key.heap = malloc(len + 1);
        if (!text) return lz__fail(LZ_ENOMEM, "value: out of memory copying a key");
    }
    lz__copy(text, key, len); // keys are short: no memcpy call
    text[len] = '\0';
    return 0;
}

// object_add takes ownership of item (freed on failure) unless key holds
// item already: storing it again would free it first.
static int object_add(lz_value_t *object, const char *key, size_t len, lz_value_t *item) {
    lz_member_t *member = lz__value_find_member(object, key, len);
    if (member && member->value == item)
        return lz__fail(LZ_EINVAL, "value: set '%.*s' to the value it holds already", (int)len, key);
    if (member) { // a repeated key replaces, as in Python dicts and JSON.parse
        value_free(member->value);
        member->value = item;
        return 0;
    }
    int rc = grow((void **)&object->u.object.members, &object->u.object.cap,
                  object->u.object.len, sizeof(lz_member_t));
    if (rc == 0) rc = member_init_key(&object->u.object.members[object->u.object.len], key, len);
    if (rc < 0) {
        value_free(item);
        return rc;
    }
    object->u.object.members[object->u.object.len++].value = item;
    return 0;
}

// object_append_slow is lz__value_object_append when the members array is
// full or the key needs its own block; kept apart so the common case saves
// and restores no registers for it.
static __attribute__((noinline)) int object_append_slow(lz_value_t *object, const char *key, size_t len,
                                                        lz_value_t *item) {
    int rc = grow((void **)&object->u.object.members, &object->u.object.cap, object->u.object.len,
                  sizeof(lz_member_t));
    if (rc == 0) rc = member_init_key(&object->u.object.members[object->u.object.len], key, len);
    if (rc < 0) {
        value_free(item);
        return rc;
    }
    object->u.object.members[object->u.object.len++].value = item;
    return 0;
}

int lz__value_object_append(lz_value_t *object, const char *key, size_t len, lz_value_t *item) {
    if (object->u.object.len == object->u.object.cap || len >= LZ_KEY_INLINE)
        return object_append_slow(object, key, len, item);
    lz_member_t *member = &object->u.object.members[object->u.object.len++];
    member->key_len = len;
    lz__copy_short(member->key.small, key, len);
    member->key.small[len] = '\0';
    member->value = item;
    return 0;
}

int lz__value_reserve(lz_value_t *container, size_t n) {
    size_t elem_size, *cap;
    void **items;
    if (container->type == LZ_VALUE_ARRAY) {
        items = (void **)&container->u.array.items;
        cap = &container->u.array.cap;
        elem_size = sizeof(lz_value_t *);
    } else {
        items = (void **)&container->u.object.members;
        cap = &container->u.object.cap;
        elem_size = sizeof(lz_member_t);
    }
    return n <= *cap ? 0 : items_resize(items, cap, n, elem_size);
}

// object_set is lz_value_object_set; the public setters call it directly
// (a call to an exported function goes through the PLT).
static int object_set(lz_value_t *object, const char *key, size_t len, lz_value_t *item) {
    int rc = 0;
    // Not freed: the caller still holds it, as the object.
    if (item && item == object) return lz__fail(LZ_EINVAL, "value: an object cannot hold itself");
    if (!item || !key) rc = lz__fail(LZ_EINVAL, "value: NULL %s", key ? "item" : "key");
    else if (!object || object->type != LZ_VALUE_OBJECT)
        rc = lz__fail(LZ_EINVAL, "value: set '%s' on a %s, not an object", key,
                      lz_value_type_name(lz_value_type(object)));
    else if (object->unowned) rc = read_only();
    else return object_add(object, key, len, item);
    value_free(item);
    return rc;
}

int lz_value_object_set(lz_value_t *object, const char *key, lz_value_t *item) {
    return object_set(object, key, key ? strlen(key) : 0, item);
}

int lz__value_object_setn(lz_value_t *object, const char *key, size_t len, lz_value_t *item) {
    return object_set(object, key, len, item);
}

// A NULL item means its constructor failed and already set the detail.
static int set_made(lz_value_t *object, const char *key, lz_value_t *item) {
    return item ? object_set(object, key, key ? strlen(key) : 0, item) : lz_last_error_code();
}

int lz_value_object_set_string(lz_value_t *object, const char *key, const char *s) {
    return set_made(object, key, s ? lz__value_blob(LZ_VALUE_STRING, s, strlen(s)) : lz_value_string(s));
}

int lz_value_object_set_int(lz_value_t *object, const char *key, int64_t i) {
    return set_made(object, key, int_new(i));
}

int lz_value_object_set_double(lz_value_t *object, const char *key, double d) {
    return set_made(object, key, double_new(d));
}

int lz_value_object_set_bool(lz_value_t *object, const char *key, bool b) {
    return set_made(object, key, bool_new(b));
}

lz_value_t *lz__value_member_take(lz_value_t *object, size_t index) {
    if (lz_value_type(object) != LZ_VALUE_OBJECT || index >= object->u.object.len) return NULL;
    lz_member_t *member = &object->u.object.members[index];
    lz_value_t *taken = member->value;
    if (!(object->unowned & LZ_NODE_HELD)) member_free_key(member); // an arena's key goes with the arena
    lz_member_t *end = object->u.object.members + object->u.object.len;
    memmove(member, member + 1, (size_t)(end - member - 1) * sizeof *member); // keep order
    object->u.object.len--;
    return taken;
}

lz_value_t *lz__value_member_swap(lz_value_t *object, size_t index, lz_value_t *item) {
    if (lz_value_type(object) != LZ_VALUE_OBJECT || index >= object->u.object.len) return NULL;
    lz_value_t *previous = object->u.object.members[index].value;
    object->u.object.members[index].value = item;
    return previous;
}

static lz_value_t *copy(const lz_value_t *value, int depth);

// container_copy returns an empty container of value's type with room for
// all of value's children, or NULL; depth: the containers around value.
static lz_value_t *container_copy(const lz_value_t *value, int depth) {
    if (depth >= LZ_VALUE_MAX_DEPTH)
        return lz__fail_null(LZ_EINVAL, "value: copy of a value nested deeper than %d levels", LZ_VALUE_MAX_DEPTH);
    lz_value_t *container = lz__value_new((lz_value_type_t)value->type, 0);
    if (container && lz__value_reserve(container, lz_value_size(value)) < 0) lz_value_destroy(&container);
    return container;
}

static lz_value_t *copy_array(const lz_value_t *value, int depth) {
    lz_value_t *array = container_copy(value, depth);
    for (size_t i = 0; array && i < value->u.array.len; i++) {
        lz_value_t *item = copy(value->u.array.items[i], depth + 1);
        if (!item) lz_value_destroy(&array);
        else array->u.array.items[array->u.array.len++] = item; // reserved
    }
    return array;
}

// copy_object appends without looking for repeats: the source's keys are
// distinct already, and looking would take time in the square of its size.
static lz_value_t *copy_object(const lz_value_t *value, int depth) {
    lz_value_t *object = container_copy(value, depth);
    for (size_t i = 0; object && i < value->u.object.len; i++) {
        const lz_member_t *member = &value->u.object.members[i];
        lz_value_t *item = copy(member->value, depth + 1);
        if (!item || lz__value_object_append(object, lz__member_key(member), member->key_len, item) < 0)
            lz_value_destroy(&object);
    }
    return object;
}

lz_value_t *lz_value_copy(const lz_value_t *value) { return copy(value, 0); }

// copy is lz_value_copy; depth: the containers around value.
static lz_value_t *copy(const lz_value_t *value, int depth) {
    if (!value) return lz__fail_null(LZ_EINVAL, "value: copy of NULL");
    switch ((lz_value_type_t)value->type) {
    case LZ_VALUE_BOOL: return bool_new(value->u.b);
    case LZ_VALUE_INT: return int_new(value->u.i);
    case LZ_VALUE_DOUBLE: return double_new(value->u.d);
    // A copy owns its bytes even when the original borrowed them.
    case LZ_VALUE_STRING:
    case LZ_VALUE_BYTES:
        return lz__value_blob((lz_value_type_t)value->type, value->u.blob.data, value->u.blob.len);
    case LZ_VALUE_ARRAY: return copy_array(value, depth);
    case LZ_VALUE_OBJECT: return copy_object(value, depth);
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
    return lz__member_key(&value->u.object.members[index]);
}

// get is lz_value_get, for the finders below without a PLT call.
static lz_value_t *get(const lz_value_t *object, const char *key) {
    lz_member_t *member = lz__value_find_member(object, key, key ? strlen(key) : 0);
    return member ? member->value : NULL;
}

lz_value_t *lz_value_get(const lz_value_t *object, const char *key) { return get(object, key); }

const char *lz_value_find_string(const lz_value_t *object, const char *key, const char *fallback) {
    const lz_value_t *value = get(object, key);
    return value && value->type == LZ_VALUE_STRING ? value->u.blob.data : fallback;
}

int64_t lz_value_find_int(const lz_value_t *object, const char *key, int64_t fallback) {
    const lz_value_t *value = get(object, key);
    return value && value->type == LZ_VALUE_INT ? value->u.i : fallback;
}

double lz_value_find_double(const lz_value_t *object, const char *key, double fallback) {
    const lz_value_t *value = get(object, key);
    if (!value) return fallback;
    return value->type == LZ_VALUE_DOUBLE ? value->u.d : value->type == LZ_VALUE_INT ? (double)value->u.i : fallback;
}

int lz__compare_int_double(int64_t i, double d) {
    if (isnan(d)) return 2;
    if (d >= 0x1p63) return -1;
    if (d < -0x1p63) return 1;
    int64_t t = (int64_t)d; // d truncated, in range
    if (i != t) return i < t ? -1 : 1;
    double frac = d - (double)t; // exact: d and t share their integral part
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static bool equal(const lz_value_t *a, const lz_value_t *b, bool json, int depth);

// counterpart: b's member under member's key, or NULL. index: NULL, or b's
// key index holding all its keys. A key b lacks is added to the index,
// which the caller then drops, as the objects differ.
static const lz_member_t *counterpart(const lz_value_t *b, lz_key_index_t *index, const lz_member_t *member) {
    const char *key = lz__member_key(member);
    if (!index) return lz__value_find_member(b, key, member->key_len);
    size_t at = lz__key_index_find_or_add(index, b, key, member->key_len, b->u.object.len);
    return at == SIZE_MAX ? NULL : &b->u.object.members[at];
}

// objects_equal compares objects of as many members. Past LZ_KEY_SCAN_MAX
// members it finds a's keys in b through a key index: one scan of b per
// key would take time in the square of their size (minutes for 200k keys).
// Without memory for the index it scans.
static bool objects_equal(const lz_value_t *a, const lz_value_t *b, bool json, int depth) {
    size_t n = b->u.object.len;
    lz_key_index_t index = {NULL, 0};
    bool indexed = n > LZ_KEY_SCAN_MAX && lz__key_index_init(&index, n) == LZ_OK;
    for (size_t i = 0; indexed && i < n; i++) {
        const lz_member_t *member = &b->u.object.members[i];
        (void)lz__key_index_find_or_add(&index, b, lz__member_key(member), member->key_len, i);
    }
    bool same = true;
    for (size_t i = 0; same && i < a->u.object.len; i++) {
        const lz_member_t *member = &a->u.object.members[i];
        const lz_member_t *other = counterpart(b, indexed ? &index : NULL, member);
        same = other && equal(member->value, other->value, json, depth + 1);
    }
    lz__key_index_fini(&index);
    return same;
}

// numbers_equal: an int and a double of the same number (JSON's equality).
static bool numbers_equal(const lz_value_t *a, const lz_value_t *b) {
    if (a->type == LZ_VALUE_DOUBLE) {
        const lz_value_t *t = a;
        a = b;
        b = t;
    }
    return lz__compare_int_double(a->u.i, b->u.d) == 0;
}

// equal is deep equality; json: an int equals a double of the same number;
// depth: the containers around a and b.
static bool equal(const lz_value_t *a, const lz_value_t *b, bool json, int depth) {
    if (a == b) return true; // a value equals itself, even one too deep to compare
    lz_value_type_t ta = lz_value_type(a), tb = lz_value_type(b);
    if (json && a && b && ta != tb && (ta == LZ_VALUE_INT || ta == LZ_VALUE_DOUBLE) &&
        (tb == LZ_VALUE_INT || tb == LZ_VALUE_DOUBLE))
        return numbers_equal(a, b);
    if (ta != tb) return false;
    if (!a || !b) return !a && !b; // NULL only equals NULL, not a null value
    switch (ta) {
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
        if (a->u.array.len != b->u.array.len || depth >= LZ_VALUE_MAX_DEPTH) return false;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!equal(a->u.array.items[i], b->u.array.items[i], json, depth + 1)) return false;
        return true;
    case LZ_VALUE_OBJECT:
        return a->u.object.len == b->u.object.len && depth < LZ_VALUE_MAX_DEPTH && objects_equal(a, b, json, depth);
    }
    return false;
}

bool lz_value_equal(const lz_value_t *a, const lz_value_t *b) { return equal(a, b, false, 0); }

bool lz__value_json_equal(const lz_value_t *a, const lz_value_t *b) { return equal(a, b, true, 0); }
