/* Dynamic values and the byte buffer: construction, access, ownership
 * (items are taken even on failure), copy/equal semantics, the borrowed
 * bytes of zero-copy decoding, and buffer growth. */
#include <math.h>

#include "lz_test.h"
#include "serial/value.h"

LZ_TEST(scalars_read_back_and_mismatched_reads_give_zero) {
    lz_value_t *n = lz_value_null(), *b = lz_value_bool(true), *i = lz_value_int(INT64_MIN),
               *d = lz_value_double(2.5), *s = lz_value_string("héllo"), *y = lz_value_bytes("a\0b", 3);
    LZ_CHECK_INT(lz_value_type(n), LZ_VALUE_NULL);
    LZ_CHECK(lz_value_get_bool(b));
    LZ_CHECK(lz_value_get_int(i) == INT64_MIN);
    LZ_CHECK(lz_value_get_double(d) == 2.5);
    LZ_CHECK(lz_value_get_double(i) == (double)INT64_MIN); // ints read as doubles too
    size_t len = 0;
    LZ_CHECK_STR(lz_value_get_string(s, &len), "héllo");
    LZ_CHECK_INT(len, 6);
    const char *bytes = lz_value_get_bytes(y, &len);
    LZ_CHECK_INT(len, 3);
    LZ_CHECK(bytes && memcmp(bytes, "a\0b", 3) == 0);
    LZ_CHECK(lz_value_get_bytes(s, &len) != NULL); // a string's bytes are readable
    // Wrong-type reads fall back to zero values instead of failing.
    LZ_CHECK(!lz_value_get_bool(i));
    LZ_CHECK_INT(lz_value_get_int(d), 0);
    LZ_CHECK(lz_value_get_string(y, &len) == NULL);
    LZ_CHECK_INT(len, 0);
    LZ_CHECK(lz_value_get_double(s) == 0);
    LZ_CHECK_INT(lz_value_type(NULL), LZ_VALUE_NULL);
    LZ_CHECK_STR(lz_value_type_name(LZ_VALUE_BYTES), "bytes");
    LZ_CHECK_STR(lz_value_type_name(LZ_VALUE_OBJECT), "object");
    lz_value_destroy(&n), lz_value_destroy(&b), lz_value_destroy(&i);
    lz_value_destroy(&d), lz_value_destroy(&s), lz_value_destroy(&y);
    LZ_CHECK(s == NULL);
    lz_value_destroy(&s); // destroying twice is a no-op
}

LZ_TEST(strings_keep_embedded_nul_and_null_is_rejected) {
    lz_value_t *s = lz_value_stringn("a\0b", 3);
    size_t len;
    const char *text = lz_value_get_string(s, &len);
    LZ_CHECK_INT(len, 3);
    LZ_CHECK(text && text[3] == '\0' && text[1] == '\0');
    lz_value_destroy(&s);
    LZ_CHECK(lz_value_string(NULL) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    lz_value_t *empty = lz_value_bytes(NULL, 0);
    LZ_CHECK(empty && lz_value_get_bytes(empty, &len) && len == 0);
    lz_value_destroy(&empty);
}

LZ_TEST(objects_keep_order_replace_and_look_up) {
    lz_value_t *o = lz_value_object();
    LZ_CHECK_INT(lz_value_object_set_string(o, "symbol", "BTC"), 0);
    LZ_CHECK_INT(lz_value_object_set_double(o, "price", 43210.5), 0);
    LZ_CHECK_INT(lz_value_object_set_int(o, "a_key_longer_than_sixteen_bytes", 7), 0);
    LZ_CHECK_INT(lz_value_object_set_bool(o, "ok", true), 0);
    LZ_CHECK_INT(lz_value_object_set_int(o, "price", 1), 0); // replaces in place
    LZ_CHECK_INT(lz_value_size(o), 4);
    LZ_CHECK_STR(lz_value_key_at(o, 0), "symbol");
    LZ_CHECK_STR(lz_value_key_at(o, 1), "price");
    LZ_CHECK_STR(lz_value_key_at(o, 2), "a_key_longer_than_sixteen_bytes");
    LZ_CHECK(lz_value_key_at(o, 4) == NULL);
    LZ_CHECK(lz_value_at(o, 4) == NULL);
    LZ_CHECK_INT(lz_value_get_int(lz_value_at(o, 1)), 1);
    LZ_CHECK_INT(lz_value_get_int(lz_value_get(o, "a_key_longer_than_sixteen_bytes")), 7);
    LZ_CHECK(lz_value_get(o, "missing") == NULL);
    LZ_CHECK_STR(lz_value_find_string(o, "symbol", "x"), "BTC");
    LZ_CHECK_STR(lz_value_find_string(o, "price", "x"), "x"); // wrong type
    LZ_CHECK_INT(lz_value_find_int(o, "price", -1), 1);
    LZ_CHECK_INT(lz_value_find_int(o, "symbol", -1), -1);
    LZ_CHECK(lz_value_find_double(o, "price", -1) == 1.0); // an int fits a double
    LZ_CHECK(lz_value_find_double(o, "nope", -1) == -1.0);
    LZ_CHECK(lz_value_find_int(NULL, "x", 5) == 5);
    lz_value_destroy(&o);
}

LZ_TEST(borrowed_children_stay_valid_while_the_container_grows) {
    lz_value_t *a = lz_value_array();
    lz_value_array_append(a, lz_value_string("first"));
    lz_value_t *first = lz_value_at(a, 0);
    for (int i = 0; i < 1000; i++) lz_value_array_append(a, lz_value_int(i));
    LZ_CHECK(lz_value_at(a, 0) == first);
    LZ_CHECK_STR(lz_value_get_string(first, NULL), "first");
    LZ_CHECK_INT(lz_value_size(a), 1001);
    LZ_CHECK_INT(lz_value_get_int(lz_value_at(a, 1000)), 999);
    lz_value_destroy(&a);
}

LZ_TEST(containers_take_items_even_when_they_refuse_them) {
    lz_value_t *s = lz_value_string("not a container");
    // Each refused item is freed by the call: ASan's leak check proves it.
    LZ_CHECK_INT(lz_value_array_append(s, lz_value_int(1)), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_object_set(s, "k", lz_value_int(1)), LZ_EINVAL);
    lz_value_t *o = lz_value_object();
    LZ_CHECK_INT(lz_value_object_set(o, NULL, lz_value_int(1)), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_object_set(o, "k", NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_array_append(NULL, lz_value_int(1)), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_object_set_string(o, "k", NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_size(o), 0);
    lz_value_destroy(&s);
    lz_value_destroy(&o);
}

// A value may hold itself only by mistake: the cheap cases are refused,
// and nothing is freed, as the caller still holds the item (ASan: storing
// the value a key holds again once freed it and kept it).
LZ_TEST(a_container_refuses_itself_and_the_item_it_holds) {
    lz_value_t *a = lz_value_array();
    LZ_CHECK_INT(lz_value_array_append(a, a), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_size(a), 0);
    lz_value_t *o = lz_value_object();
    LZ_CHECK_INT(lz_value_object_set(o, "self", o), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_size(o), 0);
    LZ_CHECK_INT(lz_value_object_set_string(o, "k", "a string long enough for its own block"), 0);
    lz_value_t *held = lz_value_get(o, "k");
    LZ_CHECK_INT(lz_value_object_set(o, "k", held), LZ_EINVAL);
    LZ_CHECK(lz_value_get(o, "k") == held);
    LZ_CHECK_STR(lz_value_get_string(held, NULL), "a string long enough for its own block");
    // The same item under another key is two owners: not detected, and so
    // not tried here. A container may still hold a copy of itself.
    LZ_CHECK_INT(lz_value_array_append(a, lz_value_copy(a)), 0);
    LZ_CHECK_INT(lz_value_object_set(o, "copy", lz_value_copy(o)), 0);
    LZ_CHECK_INT(lz_value_size(lz_value_get(o, "copy")), 1);
    lz_value_destroy(&a), lz_value_destroy(&o);
}

// chain nests levels containers, arrays and objects by turns; every
// hundredth has a scalar and a string under a long key beside the next.
static lz_value_t *chain(long levels) {
    lz_value_t *root = lz_value_array(), *at = root;
    for (long i = 1; i < levels; i++) {
        lz_value_t *next = i % 2 ? lz_value_object() : lz_value_array();
        bool siblings = i % 100 < 2;
        if (lz_value_type(at) == LZ_VALUE_ARRAY) {
            if (siblings) lz_value_array_append(at, lz_value_int(i));
            lz_value_array_append(at, next);
        } else {
            if (siblings) lz_value_object_set_string(at, "a key past the inline length", "text");
            lz_value_object_set(at, "next", next);
        }
        at = next;
    }
    return root;
}

// Deep enough to overflow an 8 MB stack one frame per level.
#define DEEP_LEVELS 500000

// Destroying is not recursive, so a chain built through the API is freed
// however deep (this one overflowed 8 MB of stack); copy and equal stop at
// LZ_VALUE_MAX_DEPTH instead of overflowing.
LZ_TEST(deep_values_free_and_copy_and_compare_within_bounds) {
    lz_value_t *deep = chain(DEEP_LEVELS), *other = chain(LZ_VALUE_MAX_DEPTH + 10);
    LZ_CHECK(lz_value_copy(deep) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EINVAL);
    LZ_CHECK(strstr(lz_last_error(), "deeper than 1000 levels") != NULL);
    LZ_CHECK(!lz_value_equal(deep, other));
    LZ_CHECK(lz_value_equal(deep, deep));
    lz_value_destroy(&deep), lz_value_destroy(&other);
    LZ_CHECK(deep == NULL);

    lz_value_t *max = chain(LZ_VALUE_MAX_DEPTH), *copy = lz_value_copy(max);
    LZ_CHECK(copy != NULL && lz_value_equal(max, copy));
    lz_value_t *over = lz_value_array();
    lz_value_array_append(over, max);
    LZ_CHECK(lz_value_copy(over) == NULL);
    lz_value_destroy(&over), lz_value_destroy(&copy);
}

// object_of makes an object of n members "key00000000": 0 ... in order.
static lz_value_t *object_of(long n) {
    lz_value_t *o = lz_value_object();
    char key[32];
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof key, "key%08ld", i);
        lz__value_object_append(o, key, strlen(key), lz_value_int(i));
    }
    return o;
}

// Copying and comparing take time in proportion to an object's size: a
// received 200k-key object once took 87 s to copy and 73 s to compare.
LZ_TEST(large_objects_copy_and_compare_in_linear_time) {
    lz_value_t *big = object_of(200000);
    int64_t start = lz_test_now_ms();
    lz_value_t *copy = lz_value_copy(big);
    LZ_CHECK(copy != NULL && lz_value_equal(big, copy));
    LZ_CHECK_INT(lz_value_size(copy), 200000);
    LZ_CHECK_STR(lz_value_key_at(copy, 199999), "key00199999");
    LZ_CHECK(lz_test_now_ms() - start < 5000 * lz_test_slowdown());
    // Unequal by a value, by a key, and equal in another order.
    lz_value_object_set_int(copy, "key00100000", -1);
    LZ_CHECK(!lz_value_equal(big, copy));
    lz_value_t *renamed = object_of(199999);
    lz_value_object_set_int(renamed, "key99999999", 199999);
    LZ_CHECK(!lz_value_equal(big, renamed) && !lz_value_equal(renamed, big));
    lz_value_t *backwards = lz_value_object();
    for (size_t i = lz_value_size(big); i-- > 0;) {
        const char *key = lz_value_key_at(big, i);
        lz__value_object_append(backwards, key, strlen(key), lz_value_copy(lz_value_at(big, i)));
    }
    LZ_CHECK(lz_value_equal(big, backwards) && lz_value_equal(backwards, big));
    lz_value_destroy(&big), lz_value_destroy(&copy), lz_value_destroy(&renamed), lz_value_destroy(&backwards);
}

LZ_TEST(take_detaches_a_member_and_keeps_the_others_in_order) {
    lz_value_t *o = lz_value_object();
    lz_value_object_set_string(o, "type", "task");
    lz_value_object_set(o, "data", lz_value_array());
    lz_value_object_set_int(o, "a_long_key_on_the_heap_here", 3);
    lz_value_t *data = lz__value_member_take(o, 1);
    LZ_CHECK_INT(lz_value_type(data), LZ_VALUE_ARRAY);
    LZ_CHECK_INT(lz_value_size(o), 2);
    LZ_CHECK_STR(lz_value_key_at(o, 1), "a_long_key_on_the_heap_here");
    LZ_CHECK(lz_value_get(o, "data") == NULL);
    LZ_CHECK(lz__value_member_take(o, 2) == NULL); // past the end
    LZ_CHECK(lz__value_member_take(data, 0) == NULL); // not an object
    lz_value_destroy(&data);
    lz_value_destroy(&o);
}

static lz_value_t *sample(void) {
    lz_value_t *o = lz_value_object();
    lz_value_object_set_string(o, "s", "text");
    lz_value_object_set_int(o, "i", 42);
    lz_value_object_set_double(o, "d", 0.25);
    lz_value_object_set(o, "n", lz_value_null());
    lz_value_object_set(o, "b", lz_value_bytes("\x00\xff", 2));
    lz_value_t *a = lz_value_array();
    lz_value_array_append(a, lz_value_bool(false));
    lz_value_array_append(a, lz_value_object());
    lz_value_object_set(o, "a", a);
    return o;
}

LZ_TEST(copy_is_deep_and_equal_ignores_member_order) {
    lz_value_t *o = sample(), *copy = lz_value_copy(o);
    LZ_CHECK(copy != o && lz_value_equal(o, copy));
    LZ_CHECK(lz_value_get(copy, "a") != lz_value_get(o, "a"));
    lz_value_object_set_int(copy, "i", 43);
    LZ_CHECK(!lz_value_equal(o, copy));
    lz_value_destroy(&copy);

    lz_value_t *x = lz_value_object(), *y = lz_value_object();
    lz_value_object_set_int(x, "p", 1), lz_value_object_set_int(x, "q", 2);
    lz_value_object_set_int(y, "q", 2), lz_value_object_set_int(y, "p", 1);
    LZ_CHECK(lz_value_equal(x, y));
    lz_value_object_set_int(y, "r", 3);
    LZ_CHECK(!lz_value_equal(x, y));
    lz_value_destroy(&x), lz_value_destroy(&y);

    lz_value_t *i = lz_value_int(1), *d = lz_value_double(1.0), *nan = lz_value_double(NAN);
    LZ_CHECK(!lz_value_equal(i, d)); // an int and a double are different values
    LZ_CHECK(lz_value_equal(nan, nan));
    lz_value_t *s = lz_value_string("ab"), *b = lz_value_bytes("ab", 2);
    LZ_CHECK(!lz_value_equal(s, b));
    LZ_CHECK(!lz_value_equal(s, NULL));
    LZ_CHECK(lz_value_equal(NULL, NULL));
    LZ_CHECK(lz_value_copy(NULL) == NULL);
    lz_value_destroy(&i), lz_value_destroy(&d), lz_value_destroy(&nan);
    lz_value_destroy(&s), lz_value_destroy(&b), lz_value_destroy(&o);
}

LZ_TEST(borrowed_bytes_point_at_the_source_and_copies_own_theirs) {
    char frame[] = "zero copy payload";
    lz_value_slot_t slot;
    lz_value_t *v = lz__value_bytes_borrowed_in(&slot, frame, sizeof frame - 1);
    size_t size;
    LZ_CHECK(lz_value_get_bytes(v, &size) == frame);
    LZ_CHECK_INT(size, sizeof frame - 1);
    lz_value_t *copy = lz_value_copy(v);
    LZ_CHECK(lz_value_get_bytes(copy, NULL) != frame);
    LZ_CHECK(lz_value_equal(v, copy));
    frame[0] = 'Z';
    LZ_CHECK(((const char *)lz_value_get_bytes(copy, NULL))[0] == 'z');
    lz_value_destroy(&v); // must not free frame or slot (both on the stack)
    lz_value_destroy(&copy);
}

LZ_TEST(json_helpers_render_and_parse) {
    lz_value_t *o = lz_value_object();
    lz_value_object_set_string(o, "symbol", "BTC");
    lz_value_object_set_double(o, "price", 43210.5);
    lz_value_object_set_int(o, "seq", -7);
    char *text = lz_value_to_json(o);
    LZ_CHECK_STR(text, "{\"symbol\":\"BTC\",\"price\":43210.5,\"seq\":-7}");
    lz_value_t *back = text ? lz_value_from_json(text, strlen(text)) : NULL;
    LZ_CHECK(lz_value_equal(o, back));
    free(text);
    lz_value_destroy(&back), lz_value_destroy(&o);
    LZ_CHECK(lz_value_from_json("{", 1) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESERIALIZATION);
    lz_value_t *nan = lz_value_double(NAN);
    LZ_CHECK(lz_value_to_json(nan) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESERIALIZATION);
    lz_value_destroy(&nan);
}

/* ---- objects with many long keys ------------------------------------------ */

// Keys of 8 to 40 bytes, six of each length. They all share one long
// prefix, those of one length differ only in their last byte, and the
// lengths give the key hash every tail (0 to 7 bytes after whole words).
#define LONG_KEY_MIN 8
#define LONG_KEY_MAX 40
#define KEYS_PER_LENGTH 6
#define LONG_KEYS ((LONG_KEY_MAX - LONG_KEY_MIN + 1) * KEYS_PER_LENGTH)

// long_key writes key number k (0 to LONG_KEYS - 1) into out, which has
// room for LONG_KEY_MAX + 1 bytes.
static const char *long_key(char *out, int k) {
    static const char prefix[] = "a-member-name-with-a-long-shared-prefix-";
    _Static_assert(sizeof prefix - 1 >= LONG_KEY_MAX - 1, "the prefix fills every key but its last byte");
    size_t len = LONG_KEY_MIN + (size_t)(k / KEYS_PER_LENGTH);
    memcpy(out, prefix, len - 1);
    out[len - 1] = (char)('a' + k % KEYS_PER_LENGTH);
    out[len] = '\0';
    return out;
}

// The document: every long key, then every third one again, then every
// ninth a third time, each round with new values (round * 1000 + k). With
// more than 64 members, decoders find the repeats through the key index.
static const int long_key_rounds[] = {1, 3, 9}; // each round's step through the keys

static int64_t last_value(int k) { return k % 9 == 0 ? 2000 + k : k % 3 == 0 ? 1000 + k : k; }

// long_keys_document writes the document as JSON text or as one msgpack
// map (map 16 of str 8 keys and uint 16 values).
static lz_buffer_t *long_keys_document(bool msgpack) {
    int members = 0;
    for (int r = 0; r < 3; r++) members += (LONG_KEYS + long_key_rounds[r] - 1) / long_key_rounds[r];
    lz_buffer_t *buf = lz_buffer_new();
    const unsigned char map16[] = {0xde, (unsigned char)(members >> 8), (unsigned char)members};
    LZ_CHECK_INT(msgpack ? lz_buffer_append(buf, map16, 3) : lz_buffer_append(buf, "{", 1), 0);
    char key[LONG_KEY_MAX + 1], json[LONG_KEY_MAX + 16];
    for (int r = 0, first = 1; r < 3; r++) {
        for (int k = 0; k < LONG_KEYS; k += long_key_rounds[r], first = 0) {
            int value = r * 1000 + k;
            size_t len = strlen(long_key(key, k));
            if (msgpack) {
                const unsigned char str8[] = {0xd9, (unsigned char)len};
                const unsigned char uint16[] = {0xcd, (unsigned char)(value >> 8), (unsigned char)value};
                lz_buffer_append(buf, str8, 2), lz_buffer_append(buf, key, len), lz_buffer_append(buf, uint16, 3);
            } else {
                int n = snprintf(json, sizeof json, "%s\"%s\":%d", first ? "" : ",", key, value);
                lz_buffer_append(buf, json, (size_t)n);
            }
        }
    }
    if (!msgpack) lz_buffer_append(buf, "}", 1);
    return buf;
}

// check_long_keys: each key once, in its first place, with its last value;
// the key one last byte away from each is absent.
static void check_long_keys(const lz_value_t *object, const char *codec) {
    LZ_CHECK_INT(lz_value_type(object), LZ_VALUE_OBJECT);
    LZ_CHECK_INT(lz_value_size(object), LONG_KEYS);
    int wrong = 0;
    for (int k = 0; k < LONG_KEYS; k++) {
        char key[LONG_KEY_MAX + 1];
        const char *at = lz_value_key_at(object, (size_t)k);
        bool right = at && strcmp(at, long_key(key, k)) == 0 && lz_value_find_int(object, key, -1) == last_value(k);
        key[strlen(key) - 1] = 'z';
        right = right && lz_value_get(object, key) == NULL;
        if (!right && wrong++ < 3)
            printf("  %s: member %d is \"%s\"; \"%s\" holds %lld, expected %lld\n", codec, k, at ? at : "(none)",
                   long_key(key, k), (long long)lz_value_find_int(object, key, -1), (long long)last_value(k));
    }
    LZ_CHECK_INT(wrong, 0);
}

// An object of 198 long keys with repeats, decoded from JSON and msgpack:
// a repeated key keeps its first place and takes its last value
// (docs/protocol.md, section 7), and every key is found.
LZ_TEST(many_long_keys_decode_with_repeats_merged) {
    lz_buffer_t *json = long_keys_document(false), *msgpack = long_keys_document(true);
    lz_value_t *from_json = lz_value_from_json(lz_buffer_data(json), lz_buffer_size(json)), *from_msgpack = NULL;
    LZ_CHECK_INT(lz_serializer_decode(lz_serializer_builtin("msgpack"), lz_buffer_data(msgpack),
                                      lz_buffer_size(msgpack), &from_msgpack), LZ_OK);
    check_long_keys(from_json, "json");
    check_long_keys(from_msgpack, "msgpack");
    LZ_CHECK(lz_value_equal(from_json, from_msgpack));
    // Setting an existing long key replaces its value in place; a key one
    // byte away is a new member.
    char key[LONG_KEY_MAX + 1];
    LZ_CHECK_INT(lz_value_object_set_int(from_json, long_key(key, LONG_KEYS - 1), -7), 0);
    LZ_CHECK_INT(lz_value_size(from_json), LONG_KEYS);
    LZ_CHECK_INT(lz_value_find_int(from_json, key, 0), -7);
    LZ_CHECK_STR(lz_value_key_at(from_json, LONG_KEYS - 1), key);
    key[strlen(key) - 1] = 'z';
    LZ_CHECK_INT(lz_value_object_set_int(from_json, key, 8), 0);
    LZ_CHECK_INT(lz_value_size(from_json), LONG_KEYS + 1);
    LZ_CHECK_INT(lz_value_find_int(from_json, key, 0), 8);
    lz_value_destroy(&from_json), lz_value_destroy(&from_msgpack);
    lz_buffer_destroy(&json), lz_buffer_destroy(&msgpack);
}

// longest_run puts count keys of len bytes (LONG_KEY_MIN to LONG_KEY_MAX)
// that differ only in their last byte into a key index, and returns the
// longest run of occupied slots it then has.
static size_t longest_run(size_t len, int count) {
    char key[LONG_KEY_MAX + 1];
    long_key(key, (int)(len - LONG_KEY_MIN) * KEYS_PER_LENGTH);
    lz_value_t *object = lz_value_object();
    lz_key_index_t index;
    size_t longest = 0;
    LZ_CHECK_INT(lz__key_index_init(&index, (size_t)count), LZ_OK);
    for (int i = 0; index.slots && i < count; i++) {
        key[len - 1] = (char)(0x30 + i);
        LZ_CHECK_INT(lz__value_object_add(object, &index, key, len, lz_value_int(i)), 0);
    }
    for (size_t i = 0, run = 0; index.slots && i <= 2 * index.mask; i++) { // twice round: a run may wrap
        run = index.slots[i & index.mask] ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    LZ_CHECK_INT(lz_value_size(object), count);
    lz__key_index_fini(&index);
    lz_value_destroy(&object);
    return longest;
}

// The key index spreads keys that differ only in their last byte, at every
// length and so at every place in a word (198 keys in 512 slots leave runs
// of a few slots). A hash that lost part of a word or of the tail would
// pile them into one run, and decoding a large object would take time in
// the square of its size again.
LZ_TEST(long_keys_spread_over_the_key_index) {
    for (size_t len = LONG_KEY_MIN; len <= LONG_KEY_MAX; len++) {
        size_t run = longest_run(len, LONG_KEYS);
        if (run >= 40) fprintf(stderr, "keys of %zu bytes: a run of %zu slots\n", len, run);
        LZ_CHECK(run < 40);
    }
}

LZ_TEST(buffer_grows_keeps_content_and_reuses_memory) {
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz_buffer_size(buf), 0);
    LZ_CHECK(lz_buffer_reserve(buf, 0) != NULL); // a real address even for nothing
    unsigned char chunk[1000];
    for (int i = 0; i < 1000; i++) {
        memset(chunk, i & 0xff, sizeof chunk);
        LZ_CHECK_INT(lz_buffer_append(buf, chunk, (size_t)(i % 7) * 100 + 1), 0);
    }
    size_t expect = 0;
    for (int i = 0; i < 1000; i++) expect += (size_t)(i % 7) * 100 + 1;
    LZ_CHECK_INT(lz_buffer_size(buf), expect);
    const unsigned char *data = lz_buffer_data(buf);
    LZ_CHECK(data[0] == 0 && data[1] == 1 && data[expect - 1] == (999 & 0xff));
    lz_buffer_reset(buf);
    LZ_CHECK_INT(lz_buffer_size(buf), 0);
    char *at = lz_buffer_reserve(buf, 10);
    LZ_CHECK(at == (const void *)data); // reset kept the block
    memcpy(at, "0123456789", 10);
    lz_buffer_commit(buf, 4);
    lz_buffer_commit(buf, (size_t)1 << 40); // over-commit is ignored
    LZ_CHECK_INT(lz_buffer_size(buf), 4);
    LZ_CHECK(memcmp(lz_buffer_data(buf), "0123", 4) == 0);
    LZ_CHECK_INT(lz_buffer_append(buf, NULL, 3), LZ_EINVAL);
    LZ_CHECK_INT(lz_buffer_append(NULL, "x", 1), LZ_EINVAL);
    LZ_CHECK(lz_buffer_reserve(buf, SIZE_MAX) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ENOMEM);
    lz_buffer_destroy(&buf);
    LZ_CHECK(buf == NULL);
    lz_buffer_destroy(&buf);
}

// Appending the buffer's own bytes while it grows read them from the block
// realloc had just freed (ASan saw it).
LZ_TEST(buffer_appends_its_own_bytes_while_it_grows) {
    lz_buffer_t *buf = lz_buffer_new();
    LZ_CHECK_INT(lz_buffer_append(buf, "0123456789abcdef", 16), 0);
    for (int i = 0; i < 10; i++) { // doubles past the first 256-byte block each time
        size_t size = lz_buffer_size(buf);
        LZ_CHECK_INT(lz_buffer_append(buf, lz_buffer_data(buf), size), 0);
        LZ_CHECK_INT(lz_buffer_size(buf), 2 * size);
    }
    LZ_CHECK_INT(lz_buffer_append(buf, (const char *)lz_buffer_data(buf) + 3, 5), 0); // a part, from inside
    const char *data = lz_buffer_data(buf);
    size_t size = lz_buffer_size(buf);
    LZ_CHECK_INT(size, 16 * 1024 + 5);
    bool same = true;
    for (size_t i = 0; i + 5 < size; i++) same = same && data[i] == "0123456789abcdef"[i % 16];
    LZ_CHECK(same && memcmp(data + size - 5, "34567", 5) == 0);
    lz_buffer_destroy(&buf);
}

// A frozen tree (a received message's, built on the heap) is read-only
// to callers at every depth, past the freeze's first stack of 32 levels
// too; lz_value_destroy leaves it and any node in it alone, and so does a
// caller's container that was handed one. lz__value_release, the
// message's, frees it whole (ASan's leak check) but not a held node in it.
LZ_TEST(a_frozen_tree_is_read_only_and_only_its_release_frees_it) {
    lz_value_t *root = lz_value_object(), *chain = lz_value_array(), *inner = chain;
    for (int i = 0; i < 100; i++) {
        lz_value_t *next = lz_value_array();
        lz_value_array_append(inner, next);
        inner = next;
    }
    lz_value_object_set(root, "chain", chain);
    lz_value_object_set_string(root, "a_key_longer_than_sixteen_bytes", "x");
    lz_value_slot_t slot;
    lz_value_t *held = lz__value_bytes_borrowed_in(&slot, "abc", 3);
    lz_value_object_set(root, "held", held);
    LZ_CHECK_INT(lz__value_freeze(&root), LZ_OK);
    LZ_CHECK_INT(lz_value_object_set_int(root, "x", 1), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_array_append(chain, lz_value_null()), LZ_EINVAL);
    LZ_CHECK_INT(lz_value_array_append(inner, lz_value_null()), LZ_EINVAL);
    LZ_CHECK(held->unowned == LZ_NODE_HELD); // still its owner's
    lz_value_t *alias = root, *middle = lz_value_at(chain, 0);
    lz_value_destroy(&alias);
    lz_value_destroy(&middle);
    lz_value_destroy(&inner);
    LZ_CHECK(!alias && !middle && !inner);
    lz_value_t *mine = lz_value_array();
    LZ_CHECK_INT(lz_value_array_append(mine, lz_value_get(root, "chain")), LZ_OK); // a careless caller
    lz_value_destroy(&mine);
    LZ_CHECK_INT(lz_value_size(lz_value_get(root, "chain")), 1);
    LZ_CHECK_STR(lz_value_find_string(root, "a_key_longer_than_sixteen_bytes", ""), "x");
    lz__value_release(&root);
    LZ_CHECK(root == NULL);
    size_t size = 0;
    LZ_CHECK(lz_value_get_bytes(held, &size) && size == 3);
}

LZ_TEST_MAIN(LZ_CASE(scalars_read_back_and_mismatched_reads_give_zero),
             LZ_CASE(strings_keep_embedded_nul_and_null_is_rejected),
             LZ_CASE(objects_keep_order_replace_and_look_up),
             LZ_CASE(borrowed_children_stay_valid_while_the_container_grows),
             LZ_CASE(containers_take_items_even_when_they_refuse_them),
             LZ_CASE(a_container_refuses_itself_and_the_item_it_holds),
             LZ_CASE(deep_values_free_and_copy_and_compare_within_bounds),
             LZ_CASE(large_objects_copy_and_compare_in_linear_time),
             LZ_CASE(take_detaches_a_member_and_keeps_the_others_in_order),
             LZ_CASE(copy_is_deep_and_equal_ignores_member_order),
             LZ_CASE(borrowed_bytes_point_at_the_source_and_copies_own_theirs),
             LZ_CASE(json_helpers_render_and_parse),
             LZ_CASE(many_long_keys_decode_with_repeats_merged), LZ_CASE(long_keys_spread_over_the_key_index),
             LZ_CASE(buffer_grows_keeps_content_and_reuses_memory),
             LZ_CASE(buffer_appends_its_own_bytes_while_it_grows),
             LZ_CASE(a_frozen_tree_is_read_only_and_only_its_release_frees_it))
