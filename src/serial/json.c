/* The "json" codec. Decoding hands the bytes to the simdjson reader
 * (json_reader.cpp), which validates and builds lz_value_t nodes in a
 * fraction of yajl's time. yajl's callback parser stays for what simdjson
 * will not read: it gives the error detail (with the byte offset) for
 * rejected input, and the value of integers past 64 bits, which simdjson
 * refuses (doubles past the double range it refuses too, with an offset).
 * Encoding writes compact JSON straight into the caller's lz_buffer_t with
 * our own writer (yajl_gen's per-token callbacks and per-character escaping
 * cost more than the rest of a send).
 * Numbers are formatted and parsed here, in the C locale, so int64 range and
 * double round trips do not depend on yajl. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "core/error.h"
#include "core/hex.h"
#include "serial/base64.h"
#include "serial/json_reader.h"
#include "serial/registry.h"
#include "serial/utf8.h"
#include "serial/value.h"

// LZ_JSON_MAX_DEPTH (json_reader.h) bounds both directions: the writer
// refuses to open container number YAJL_MAX_DEPTH, as yajl_gen did, and both
// readers refuse the same.
_Static_assert(LZ_JSON_MAX_DEPTH == YAJL_MAX_DEPTH - 1, "the writer's depth limit is yajl_gen's");
#define LZ_JSON_DEPTH_TEXT "127"
#define LZ_NUMBER_MAX 64 // longer number text goes through a heap copy

/* ---- number formatting and parsing ---------------------------------- */

// digit_count: how many decimal digits n has (at least 1). bits * 1233 /
// 4096 is floor(log10(2^bits)), one short of the count or exact. The
// table's first entry is 0, not 1, so that 0 (like 1 to 7) counts 1.
static int digit_count(uint64_t n) {
    static const uint64_t pow10[20] = {0ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
                                       10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
                                       100000000000ull, 1000000000000ull, 10000000000000ull,
                                       100000000000000ull, 1000000000000000ull, 10000000000000000ull,
                                       100000000000000000ull, 1000000000000000000ull,
                                       10000000000000000000ull};
    int bits = 64 - __builtin_clzll(n | 1);
    int t = (bits * 1233) >> 12;
    return t + (n >= pow10[t]);
}

// Two decimal digits for each number below 100, for the formatters below.
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

// format_uint writes the decimal digits of n, two per division: a
// microsecond timestamp has 16. Once n fits 32 bits the divisions by 100
// are 32-bit, a multiply and a shift where 64-bit ones also need a
// pre-shift and a mask (every integer an envelope writes fits, and so
// does a timestamp's whole seconds).
static size_t format_uint(uint64_t n, char *out) {
    size_t len = (size_t)digit_count(n);
    char *at = out + len;
    for (; n > UINT32_MAX; n /= 100) {
        at -= 2;
        memcpy(at, digit_pairs + 2 * (n % 100), 2);
    }
    uint32_t m = (uint32_t)n;
    for (; m >= 100; m /= 100) {
        at -= 2;
        memcpy(at, digit_pairs + 2 * (m % 100), 2);
    }
    if (m >= 10) memcpy(at - 2, digit_pairs + 2 * m, 2);
    else at[-1] = (char)('0' + m);
    return len;
}

static size_t format_int(int64_t i, char *out) {
    size_t sign = i < 0;
    if (sign) out[0] = '-';
    uint64_t magnitude = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    return sign + format_uint(magnitude, out + sign);
}

// fraction_digits writes frac (below 10^6) as six digits, leading zeros
// kept, and returns how many are left once trailing zeros are dropped (at
// least one): three table pairs and a byte scan, where dropping zeros by
// dividing cost a division per zero and a memmove call to open the point.
static size_t fraction_digits(uint32_t frac, char *out) {
    memcpy(out, digit_pairs + 2 * (frac / 10000), 2);
    memcpy(out + 2, digit_pairs + 2 * (frac / 100 % 100), 2);
    memcpy(out + 4, digit_pairs + 2 * (frac % 100), 2);
    size_t n = 6;
    while (n > 1 && out[n - 1] == '0') n--;
    return n;
}

// format_decimal handles the common "few decimal places" double without
// the general algorithm. m = round(|d| * 10^6) is tried as the digits: when
// m / 10^6 (one correctly rounded division, as strtod rounds) gives back
// |d|, the text of m with the point moved 6 places reads back as d, and
// dropping trailing zeros leaves the fewest decimals that do. Below 2^33
// (microsecond timestamps until the year 2242) the product is within 1 of
// the exact decimal (half a unit of its rounding plus 10^6 times half an
// ulp of d, 2^-21), so the right integer is m or a neighbour; and an ulp of
// d is under 10^-6 there, so no other text of six decimals or fewer reads
// back as d: this is the shortest. Integral doubles below 10^16 print as
// they are with ".0". Both as Python's repr does: fixed notation from 1e-4
// up to 10^16 (1e15 is "1000000000000000.0"), exponents outside
// (format_double's). Returns 0, having maybe written a sign, otherwise.
static size_t format_decimal(double d, char *out) {
    double a = fabs(d);
    size_t len = 0;
    if (signbit(d)) out[len++] = '-';
    if (a < 1e-4 && a != 0) return 0;
    if (a < 8589934592.0) {
        uint64_t m = (uint64_t)(a * 1e6 + 0.5);
        if ((double)m / 1e6 != a) {
            if ((double)(m + 1) / 1e6 == a) m++;
            else if (m > 0 && (double)(m - 1) / 1e6 == a) m--;
            else return 0;
        }
        uint64_t whole = m / 1000000;
        len += format_uint(whole, out + len);
        out[len++] = '.';
        return len + fraction_digits((uint32_t)(m - whole * 1000000), out + len);
    }
    if (a < 1e16 && a == floor(a)) { // exact integers, 16 digits at most
        len += format_uint((uint64_t)a, out + len);
        memcpy(out + len, ".0", 2);
        return len + 2;
    }
    return 0;
}

// format_double writes text that reads back as exactly d, the way Python's
// repr does: format_decimal's digits when it has them, else {fmt}'s
// shortest round-trip formatter (lz__json_format_double).
static size_t format_double(double d, char *out) {
    size_t len = format_decimal(d, out);
    return len ? len : lz__json_format_double(d, out);
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static double parse_double(const char *text) {
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale ? strtod_l(text, NULL, c_locale) : strtod(text, NULL);
}

// decimal is JSON number text split into an exact mantissa and a power
// of ten; the text is already valid JSON (yajl's lexer checked it).
typedef struct decimal {
    uint64_t mantissa; // exact while digits <= 19
    int digits;        // significant digits
    int exponent;
    bool negative, integral;
} decimal_t;

static decimal_t scan_decimal(const char *text, size_t len) {
    decimal_t d = {.negative = text[0] == '-', .integral = true};
    size_t i = d.negative;
    for (; i < len && text[i] != 'e' && text[i] != 'E'; i++) {
        if (text[i] == '.') {
            d.integral = false;
            continue;
        }
        if ((d.digits || text[i] != '0') && ++d.digits > 19) continue;
        d.mantissa = d.mantissa * 10 + (uint64_t)(text[i] - '0');
        d.exponent -= !d.integral;
    }
    if (i < len) { // e[+-]ddd; huge exponents only need to stay huge
        bool negative = text[++i] == '-';
        i += text[i] == '-' || text[i] == '+';
        int e = 0;
        for (; i < len; i++) e = e < 100000 ? e * 10 + (text[i] - '0') : e;
        d.exponent += negative ? -e : e;
        d.integral = false;
    }
    return d;
}

// number_value makes an int when the text is an integer that fits int64,
// else a double. Clinger's fast path covers most doubles: when the
// mantissa is below 2^53 and |e| <= 22, both it and 10^|e| are exact
// doubles, so one multiply or divide rounds exactly as strtod would
// (a microsecond timestamp has 16 digits, and still fits).
static lz_value_t *number_value(const char *text, size_t len) {
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    decimal_t d = scan_decimal(text, len);
    uint64_t limit = d.negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (d.integral && d.digits <= 19 && d.mantissa <= limit)
        return lz_value_int(d.negative ? (int64_t)(0 - d.mantissa) : (int64_t)d.mantissa);
    if (d.digits <= 19 && d.mantissa <= (UINT64_C(1) << 53) && d.exponent >= -22 && d.exponent <= 22) {
        double x = (double)d.mantissa;
        x = d.exponent < 0 ? x / pow10[-d.exponent] : x * pow10[d.exponent];
        return lz_value_double(d.negative ? -x : x);
    }
    char small[LZ_NUMBER_MAX];
    char *copy = len < sizeof small ? small : malloc(len + 1);
    if (!copy) return lz__fail_null(LZ_ENOMEM, "json: out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    lz_value_t *value = lz_value_double(parse_double(copy));
    if (copy != small) free(copy);
    return value;
}

/* ---- a stack arena for yajl's own allocations ---------------------- */

// yajl allocates its handle, lexer, buffers and state stack for every
// parse; serving them from an arena on the decoder's stack turns about five
// malloc/free pairs per message into pointer bumps. Whatever does not fit
// (long strings with escapes, a long last token) falls back to the heap.
// yajl does not check what the heap gives it (its buffers write through a
// failed realloc's NULL), so a failed allocation never returns to it: it
// jumps back to yajl_run, which reports LZ_ENOMEM.
#define LZ_ARENA_SIZE 4096
#define LZ_ARENA_ALIGN 16

typedef struct arena {
    size_t used;
    jmp_buf *out_of_memory; // where a failed allocation goes while yajl parses
    _Alignas(LZ_ARENA_ALIGN) unsigned char block[LZ_ARENA_SIZE];
} arena_t;

// heap_block passes on what malloc or realloc gave yajl, jumping out when
// that is nothing. Every block yajl holds stays where it was: the caller
// frees them all with the handle.
static void *heap_block(arena_t *a, void *block) {
    if (!block && a->out_of_memory) longjmp(*a->out_of_memory, 1);
    return block;
}

static bool in_arena(const arena_t *a, const void *p) {
    uintptr_t at = (uintptr_t)p, start = (uintptr_t)a->block;
    return at >= start && at < start + LZ_ARENA_SIZE;
}

// Each arena block is preceded by its size, which arena_realloc needs.
static void *arena_malloc(void *ctx, size_t size) {
    arena_t *a = ctx;
    size_t rounded = (size + LZ_ARENA_ALIGN - 1) / LZ_ARENA_ALIGN * LZ_ARENA_ALIGN;
    if (size > LZ_ARENA_SIZE || rounded + LZ_ARENA_ALIGN > LZ_ARENA_SIZE - a->used) return heap_block(a, malloc(size));
    unsigned char *p = a->block + a->used + LZ_ARENA_ALIGN;
    memcpy(p - sizeof(size_t), &rounded, sizeof rounded);
    a->used += rounded + LZ_ARENA_ALIGN;
    return p;
}

static void arena_free(void *ctx, void *p) {
    if (!in_arena(ctx, p)) free(p);
}

static void *arena_realloc(void *ctx, void *p, size_t size) {
    if (!p) return arena_malloc(ctx, size);
    if (!in_arena(ctx, p)) return heap_block(ctx, realloc(p, size));
    size_t old;
    memcpy(&old, (unsigned char *)p - sizeof(size_t), sizeof old);
    if (size <= old) return p;
    void *grown = arena_malloc(ctx, size);
    if (grown) memcpy(grown, p, old);
    return grown;
}

/* ---- the Python LiberZMQ's tagged objects ---------------------------- */

// The Python LiberZMQ's JSON serializer writes what JSON has no type for as
// {"__type__": NAME, "value": V} and reads every such object back. The json
// codec writes bytes so (write_bytes) and reads back the names it has a
// type for: "bytes" from hex, "tuple" and "set" as the array they are
// written as. Other names (datetime, decimal, object) stay objects, so they
// relay unchanged to Python peers.

static bool key_is(const lz_member_t *member, const char *key, size_t len) {
    return member->key_len == len && memcmp(lz__member_key(member), key, len) == 0;
}

static bool text_is(const lz_value_t *value, const char *text, size_t len) {
    return value->type == LZ_VALUE_STRING && value->u.blob.len == len && memcmp(value->u.blob.data, text, len) == 0;
}

#define KEY_IS(member, literal) key_is((member), (literal), sizeof(literal) - 1)
#define TEXT_IS(value, literal) text_is((value), (literal), sizeof(literal) - 1)

// even_hex: whether text is pairs of hex digits (either case), as Python's
// bytes.fromhex reads them (it also skips whitespace, which it never writes).
static bool even_hex(const lz_value_t *text) {
    if (text->type != LZ_VALUE_STRING || text->u.blob.len % 2) return false;
    for (size_t i = 0; i < text->u.blob.len; i++)
        if (lz__hex_digit(text->u.blob.data[i]) < 0) return false;
    return true;
}

// bytes_from_hex makes the bytes value of hex (even_hex), in arena unless
// it is NULL; NULL when out of memory.
static lz_value_t *bytes_from_hex(const lz_value_t *hex, lz_arena_t *arena) {
    size_t len = hex->u.blob.len / 2;
    lz_value_t *bytes = arena ? lz__arena_node(arena, LZ_VALUE_BYTES, len + 1) : lz__value_new(LZ_VALUE_BYTES, len + 1);
    if (!bytes) return NULL;
    char *payload = lz__value_payload(bytes);
    const char *digits = hex->u.blob.data;
    for (size_t i = 0; i < len; i++)
        payload[i] = (char)(lz__hex_digit(digits[2 * i]) << 4 | lz__hex_digit(digits[2 * i + 1]));
    payload[len] = '\0';
    bytes->u.blob.data = payload;
    bytes->u.blob.len = len;
    return bytes;
}

lz_value_t *lz__json_untag(lz_value_t *object, lz_arena_t *arena) {
    const lz_member_t *members = object->u.object.members;
    size_t tag_at = KEY_IS(&members[0], "__type__") ? 0 : 1, value_at = 1 - tag_at;
    if (!KEY_IS(&members[tag_at], "__type__") || !KEY_IS(&members[value_at], "value")) return object;
    const lz_value_t *tag = members[tag_at].value, *value = members[value_at].value;
    lz_value_t *untagged;
    if (value->type == LZ_VALUE_ARRAY && (TEXT_IS(tag, "tuple") || TEXT_IS(tag, "set")))
        untagged = lz__value_member_take(object, value_at);
    else if (TEXT_IS(tag, "bytes") && even_hex(value))
        untagged = bytes_from_hex(value, arena);
    else
        return object;
    lz_value_destroy(&object); // an arena's stays there, unreachable, until the release
    return untagged;
}

/* ---- decoding with yajl: rejected input and out-of-range numbers --- */

// An open container is attached to its parent when it closes, whole: a
// tagged object is then replaced by what it stands for (lz__json_untag).
typedef struct json_level {
    lz_value_t *container;
    size_t key_at, key_len; // its key in the parent object, in json_parse_t's keys
    lz_key_index_t index;   // an object's, once it holds LZ_KEY_SCAN_MAX members
} json_level_t;

typedef struct json_parse {
    lz_value_t *root;
    json_level_t levels[LZ_JSON_MAX_DEPTH]; // the open containers, innermost last
    int depth;
    // The keys of the open containers that are in objects, each
    // NUL-terminated, and after them the pending key, at key_at.
    char *keys;
    size_t key_at, key_len, key_cap;
    char keys_small[64];
    const char *reason; // why a callback stopped the parse
    bool out_of_memory; // the reason was a failed allocation
} json_parse_t;

// out_of_memory stops the parse for want of memory.
static int out_of_memory(json_parse_t *p) {
    p->out_of_memory = true;
    p->reason = "out of memory";
    return 0;
}

// attach hands a new value to the open container, under key when that is
// an object (or makes it the root). Past LZ_KEY_SCAN_MAX members an object
// finds repeated keys through its index (see value.h).
// yajl callbacks return 0 to stop the parse, non-zero to go on.
static int attach(json_parse_t *p, lz_value_t *item, const char *key, size_t key_len) {
    if (!item) return out_of_memory(p);
    if (p->depth == 0) {
        p->root = item;
        return 1;
    }
    json_level_t *parent = &p->levels[p->depth - 1];
    lz_value_t *container = parent->container;
    if (container->type == LZ_VALUE_ARRAY) return lz_value_array_append(container, item) == 0 ? 1 : out_of_memory(p);
    size_t members = container->u.object.len;
    if (members >= LZ_KEY_SCAN_MAX && lz__key_index_reserve(&parent->index, container, members + 1) != LZ_OK) {
        lz_value_destroy(&item);
        return out_of_memory(p);
    }
    return lz__value_object_add(container, &parent->index, key, key_len, item) == 0 ? 1 : out_of_memory(p);
}

// attach_scalar attaches item under the pending key.
static int attach_scalar(json_parse_t *p, lz_value_t *item) {
    return attach(p, item, p->keys + p->key_at, p->key_len);
}

// enter checks that one more container may open.
static int enter(json_parse_t *p) {
    if (p->depth < LZ_JSON_MAX_DEPTH) return 1;
    p->reason = "nesting deeper than " LZ_JSON_DEPTH_TEXT " levels";
    return 0;
}

// open_container keeps the pending key for the container, when it goes in
// an object, until it closes; the container's own keys follow it.
static int open_container(json_parse_t *p, lz_value_t *container) {
    if (!container) return out_of_memory(p);
    if (!enter(p)) {
        lz_value_destroy(&container);
        return 0;
    }
    bool keyed = p->depth > 0 && p->levels[p->depth - 1].container->type == LZ_VALUE_OBJECT;
    json_level_t *level = &p->levels[p->depth++];
    level->container = container;
    level->index = (lz_key_index_t){NULL, 0};
    level->key_at = p->key_at;
    level->key_len = keyed ? p->key_len : 0;
    if (keyed) p->key_at += p->key_len + 1;
    p->key_len = 0;
    return 1;
}

static int close_container(void *ctx) {
    json_parse_t *p = ctx;
    json_level_t *level = &p->levels[--p->depth];
    lz_value_t *value = level->container;
    lz__key_index_fini(&level->index);
    if (value->type == LZ_VALUE_OBJECT && value->u.object.len == 2) value = lz__json_untag(value, NULL);
    p->key_at = level->key_at;
    p->key_len = level->key_len;
    return attach(p, value, p->keys + p->key_at, p->key_len);
}

static int on_null(void *ctx) { return attach_scalar(ctx, lz_value_null()); }
static int on_bool(void *ctx, int b) { return attach_scalar(ctx, lz_value_bool(b)); }

// read_number makes the value of a number's text into *value, or stops the
// parse. A number past the double range would read as an infinity, which
// JSON cannot write back: refused, as the writer refuses infinities.
static int read_number(json_parse_t *p, const char *text, size_t len, lz_value_t **value) {
    *value = number_value(text, len);
    if (!*value) return out_of_memory(p);
    if (lz_value_type(*value) == LZ_VALUE_DOUBLE && !isfinite(lz_value_get_double(*value))) {
        lz_value_destroy(value);
        p->reason = "number out of the double range";
        return 0;
    }
    return 1;
}

static int on_number(void *ctx, const char *text, size_t len) {
    lz_value_t *value;
    return read_number(ctx, text, len, &value) && attach_scalar(ctx, value);
}

// yajl turns a lone low surrogate escape ("\\udc00") into the bytes of a
// surrogate, which are not UTF-8: such a string or key is refused, as
// simdjson refuses it (lone high ones are caught before the parse: see
// lone_surrogate_escape).
static int utf8_text(json_parse_t *p, const unsigned char *s, size_t len, const char *what) {
    if (lz__utf8_valid(s, len)) return 1;
    p->reason = what;
    return 0;
}
#define STRING_NOT_UTF8 "a string is not valid UTF-8 (a lone surrogate escape)"
#define KEY_NOT_UTF8 "a key is not valid UTF-8 (a lone surrogate escape)"

static int on_string(void *ctx, const unsigned char *s, size_t len) {
    return utf8_text(ctx, s, len, STRING_NOT_UTF8) && attach_scalar(ctx, lz_value_stringn((const char *)s, len));
}

static int on_start_map(void *ctx) { return open_container(ctx, lz_value_object()); }
static int on_start_array(void *ctx) { return open_container(ctx, lz_value_array()); }

// on_key writes the key at key_at, after the keys open containers keep.
static int on_key(void *ctx, const unsigned char *key, size_t len) {
    json_parse_t *p = ctx;
    if (!utf8_text(p, key, len, KEY_NOT_UTF8)) return 0;
    if (len >= p->key_cap - p->key_at) {
        size_t cap = p->key_cap * 2 > p->key_at + len + 1 ? p->key_cap * 2 : p->key_at + len + 1;
        char *grown = p->keys == p->keys_small ? malloc(cap) : realloc(p->keys, cap);
        if (!grown) return out_of_memory(p);
        if (p->keys == p->keys_small) memcpy(grown, p->keys_small, p->key_at);
        p->keys = grown;
        p->key_cap = cap;
    }
    char *text = p->keys + p->key_at;
    memcpy(text, key, len);
    text[len] = '\0';
    // Keys are C strings in lz_value_t: one holding "\u0000" ends there.
    const char *nul = memchr(text, '\0', len);
    p->key_len = nul ? (size_t)(nul - text) : len;
    return 1;
}

static const yajl_callbacks parse_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = close_container,
    .yajl_start_array = on_start_array,
    .yajl_end_array = close_container,
};

// The checks alone, building nothing: for rejected input, read again only
// for the error's wording and offset.
static int check_null(void *ctx) {
    (void)ctx;
    return 1;
}

static int check_bool(void *ctx, int b) {
    (void)ctx;
    (void)b;
    return 1;
}

static int check_number(void *ctx, const char *text, size_t len) {
    lz_value_t *value;
    int go_on = read_number(ctx, text, len, &value);
    lz_value_destroy(&value);
    return go_on;
}

static int check_string(void *ctx, const unsigned char *s, size_t len) {
    return utf8_text(ctx, s, len, STRING_NOT_UTF8);
}

static int check_key(void *ctx, const unsigned char *key, size_t len) { return utf8_text(ctx, key, len, KEY_NOT_UTF8); }

static int check_open(void *ctx) {
    json_parse_t *p = ctx;
    if (!enter(p)) return 0;
    p->depth++;
    return 1;
}

static int check_close(void *ctx) {
    ((json_parse_t *)ctx)->depth--;
    return 1;
}

static const yajl_callbacks check_callbacks = {
    .yajl_null = check_null,
    .yajl_boolean = check_bool,
    .yajl_number = check_number,
    .yajl_string = check_string,
    .yajl_start_map = check_open,
    .yajl_map_key = check_key,
    .yajl_end_map = check_close,
    .yajl_start_array = check_open,
    .yajl_end_array = check_close,
};

// parse_failure records why yajl stopped, with the byte offset.
static int parse_failure(yajl_handle h, json_parse_t *p, const void *data, size_t size, size_t at) {
    if (p->reason)
        return lz__fail(p->out_of_memory ? LZ_ENOMEM : LZ_ESERIALIZATION, "json: %s at byte %zu", p->reason, at);
    unsigned char *text = yajl_get_error(h, 0, data, size);
    const char *message = text ? (const char *)text : "parse error";
    if (strncmp(message, "parse error: ", 13) == 0) message += 13;
    int len = (int)strcspn(message, "\n");
    int rc = lz__fail(LZ_ESERIALIZATION, "json: %.*s at byte %zu", len, message, at);
    if (text) yajl_free_error(h, text);
    return rc;
}

// hex4 reads the four hex digits at p (ASCII, as JSON writes them); -1 if
// they are not.
static long hex4(const unsigned char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int digit = lz__hex_digit((char)p[i]);
        if (digit < 0) return -1;
        v = v * 16 + digit;
    }
    return v;
}

// lone_surrogate_escape returns the offset of the first "\\ud800" to
// "\\udbff" escape in the JSON text that no low surrogate escape follows,
// or SIZE_MAX. yajl writes such a lone high surrogate as "?", which
// on_string cannot tell from a real one; simdjson refuses it. Only escapes
// are looked at: a backslash is followed by one escaped character or by u
// and four hex digits.
static size_t lone_surrogate_escape(const unsigned char *p, size_t size) {
    for (size_t i = 0; i + 1 < size; i++) {
        if (p[i] != '\\') continue;
        long high = p[i + 1] == 'u' && i + 6 <= size ? hex4(p + i + 2) : -1;
        if (high >= 0xD800 && high <= 0xDBFF) {
            long low = i + 12 <= size && p[i + 6] == '\\' && p[i + 7] == 'u' ? hex4(p + i + 8) : -1;
            if (low < 0xDC00 || low > 0xDFFF) return i;
        }
        i++; // past the escaped character ("\\\\" included)
    }
    return SIZE_MAX;
}

// yajl_only_space returns the offset of the first vertical tab or form
// feed in the text, or SIZE_MAX. yajl skips them as whitespace; JSON's
// whitespace is space, tab, LF and CR only (RFC 8259), and no string may
// hold a control character unescaped, so a document holding either byte
// anywhere is not JSON.
static size_t yajl_only_space(const void *data, size_t size) {
    const char *tab = memchr(data, '\v', size), *feed = memchr(data, '\f', size);
    const char *first = !tab ? feed : !feed ? tab : tab < feed ? tab : feed;
    return first ? (size_t)(first - (const char *)data) : SIZE_MAX;
}

// unclosed_string returns the offset of the quote that opens a string the
// text never closes, or SIZE_MAX. yajl lets one through after the
// document's value ("1 \"a"): it takes it for trailing text cut short.
static size_t unclosed_string(const unsigned char *p, size_t size) {
    size_t open = SIZE_MAX;
    for (size_t i = 0; i < size; i++) {
        if (open == SIZE_MAX) open = p[i] == '"' ? i : open;
        else if (p[i] == '\\') i++; // past the escaped character
        else if (p[i] == '"') open = SIZE_MAX;
    }
    return open;
}

// lax_spot finds what yajl reads but strict JSON (and simdjson) refuses:
// LZ_ESERIALIZATION with its offset, or 0 when there is none. yajl's
// other checks (UTF-8, depth, numbers past the double range) are strict.
static int lax_spot(const void *data, size_t size) {
    size_t at = yajl_only_space(data, size);
    if (at != SIZE_MAX)
        return lz__fail(LZ_ESERIALIZATION, "json: a vertical tab or form feed (not JSON whitespace) at byte %zu", at);
    at = lone_surrogate_escape(data, size);
    if (at != SIZE_MAX)
        return lz__fail(LZ_ESERIALIZATION, "json: a string holds a lone surrogate escape (not UTF-8) at byte %zu", at);
    at = unclosed_string(data, size);
    if (at != SIZE_MAX) return lz__fail(LZ_ESERIALIZATION, "json: a string is never closed at byte %zu", at);
    return 0;
}

// yajl_run parses data with h, whose allocations come from arena: 0, or
// the error (a failed allocation of yajl's own jumps back here).
static int yajl_run(yajl_handle h, arena_t *arena, json_parse_t *p, const void *data, size_t size) {
    jmp_buf out_of_memory;
    if (setjmp(out_of_memory)) {
        arena->out_of_memory = NULL;
        return lz__fail(LZ_ENOMEM, "json: out of memory");
    }
    arena->out_of_memory = &out_of_memory;
    yajl_status status = yajl_parse(h, data, size);
    // yajl counts the offending byte as consumed.
    size_t consumed = yajl_get_bytes_consumed(h), at = consumed ? consumed - 1 : 0;
    if (status == yajl_status_ok) {
        status = yajl_complete_parse(h);
        at = size;
    }
    arena->out_of_memory = NULL; // yajl_get_error checks its allocation
    return status == yajl_status_ok ? 0 : parse_failure(h, p, data, size, at);
}

// close_all frees the containers still open when a parse stops.
static void close_all(json_parse_t *p) {
    for (; p->depth > 0; p->depth--) {
        json_level_t *level = &p->levels[p->depth - 1];
        lz__key_index_fini(&level->index);
        lz_value_destroy(&level->container);
    }
}

// yajl_decode reads data with yajl into *out, or, when out is NULL, only
// checks it (for the error of rejected input: building its tree could
// take long, and the tree would go unused).
static int yajl_decode(const void *data, size_t size, lz_value_t **out) {
    // Field by field: zeroing the 5 KB container stack (only read below
    // depth) cost more than some whole parses.
    json_parse_t p;
    p.root = NULL;
    p.depth = 0;
    p.keys = p.keys_small;
    p.key_at = p.key_len = 0;
    p.key_cap = sizeof p.keys_small;
    p.reason = NULL;
    p.out_of_memory = false;
    arena_t arena;
    arena.used = 0;
    arena.out_of_memory = NULL;
    yajl_alloc_funcs funcs = {arena_malloc, arena_realloc, arena_free, &arena};
    yajl_handle h = yajl_alloc(out ? &parse_callbacks : &check_callbacks, &funcs, &p);
    if (!h) return lz__fail(LZ_ENOMEM, "json: out of memory");
    int rc = yajl_run(h, &arena, &p, data, size);
    yajl_free(h);
    if (out) close_all(&p);
    if (p.keys != p.keys_small) free(p.keys);
    if (rc < 0) lz_value_destroy(&p.root);
    if (out) *out = p.root;
    return rc;
}

/* ---- decoding ---------------------------------------------------------- */

// read_declined reads with yajl what simdjson declined (numbers it does
// not take), once lax_spot finds nothing yajl alone would let through. The
// tree is on the heap; freeze: frozen for the message that holds it
// (lz__json_decode_held).
static int read_declined(const void *data, size_t size, bool freeze, lz_value_t **out) {
    int rc = lax_spot(data, size);
    if (rc == 0) rc = yajl_decode(data, size, out);
    return rc == 0 && freeze ? lz__value_freeze(out) : rc;
}

// refused words the error for what simdjson refused. Rejected input is
// rare, so it is read a second time, by yajl, only to report where and why
// with the byte offset and wording callers see. Should yajl accept it,
// lax_spot finds why with the offset; simdjson's verdict stands anyway
// (one reader decides what is valid), then in its words alone.
static int refused(const void *data, size_t size, const char *reason) {
    int rc = yajl_decode(data, size, NULL);
    if (rc == 0) rc = lax_spot(data, size);
    return rc == 0 ? lz__fail(LZ_ESERIALIZATION, "json: %s", reason) : rc;
}

// not_read handles what simdjson did not read (status not OK). Out of
// line: the read path keeps no registers for it.
static __attribute__((noinline)) int not_read(lz_json_read_status_t status, const char *reason, const void *data,
                                              size_t size, bool freeze, lz_value_t **out) {
    if (status == LZ_JSON_READ_NOMEM) return lz__fail(LZ_ENOMEM, "json: out of memory");
    return status == LZ_JSON_READ_DECLINED ? read_declined(data, size, freeze, out) : refused(data, size, reason);
}

// json_read is json_decode with the nodes made in arena when it is not
// NULL (what yajl reads is on the heap all the same, frozen when freeze is
// set). Inlined with freeze a constant: simdjson's path is the same either way.
static inline int json_read(lz_arena_t *arena, const void *data, size_t size, bool freeze, lz_value_t **out) {
    const char *reason = NULL;
    lz_json_read_status_t status = lz__json_read(data, size, arena, out, &reason);
    return status == LZ_JSON_READ_OK ? 0 : not_read(status, reason, data, size, freeze, out);
}

static int json_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    (void)state;
    return json_read(NULL, data, size, false, out);
}

int lz__json_decode_in(lz_arena_t *arena, const void *data, size_t size, lz_value_t **out) {
    return json_read(arena, data, size, false, out);
}

int lz__json_decode_held(lz_arena_t *arena, const void *data, size_t size, lz_value_t **out) {
    return json_read(arena, data, size, true, out);
}

/* ---- encoding -------------------------------------------------------- */

// The writer appends compact JSON straight into the caller's buffer: it
// reserves room, writes through a cursor and commits once at the end (or
// when it needs more room), so a small message costs no per-token calls.
// Output is what yajl_gen printed before: no spaces, '/' unescaped, control
// characters as \b \f \n \r \t or \u00XX (upper-case hex), other bytes as
// they are once checked to be UTF-8.
typedef struct json_writer {
    lz_buffer_t *out;
    char *start; // reserved, not yet committed
    char *at;    // next byte to write
    char *end;   // end of the reserved room
    bool bytes_as_base64; // lz_value_to_json's form of bytes (write_bytes)
} json_writer_t;

#define LZ_WRITER_CHUNK 256

// refill commits what is written and reserves room for at least n bytes.
static int refill(json_writer_t *w, size_t n) {
    lz_buffer_commit(w->out, (size_t)(w->at - w->start));
    size_t want = n > LZ_WRITER_CHUNK ? n : LZ_WRITER_CHUNK;
    char *room = lz_buffer_reserve(w->out, want);
    w->start = w->at = w->end = room;
    if (!room) return lz__fail(LZ_ENOMEM, "json: out of memory writing output");
    w->end = room + want;
    return 0;
}

static inline int need(json_writer_t *w, size_t n) {
    return (size_t)(w->end - w->at) >= n ? 0 : refill(w, n);
}

// put is inlined: its callers pass literals, whose copies are then a move
// or two instead of a call to memcpy with the length in a register.
static inline __attribute__((always_inline)) int put(json_writer_t *w, const char *text, size_t len) {
    int rc = need(w, len);
    if (rc == 0) {
        memcpy(w->at, text, len);
        w->at += len;
    }
    return rc;
}

// escape_of: 0 for bytes copied as they are, 1 for bytes that need an
// escape, 2 for the first byte of a multibyte UTF-8 sequence (or garbage).
static const unsigned char escape_of[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

// write_escape writes the escape for byte c (escape_of[c] == 1); at most 6 bytes.
static char *write_escape(char *at, unsigned char c) {
    static const char hex[] = "0123456789ABCDEF";
    static const char short_form[32] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    *at++ = '\\';
    if (c == '"' || c == '\\') {
        *at++ = (char)c;
    } else if (short_form[c]) {
        *at++ = short_form[c];
    } else {
        memcpy(at, "u00", 3);
        at[3] = hex[c >> 4];
        at[4] = hex[c & 15];
        at += 5;
    }
    return at;
}

// special_bits is non-zero when any byte of w needs more than a copy
// (escape_of not 0): a byte below 0x20, '"', '\\' or 0x80 and above, which
// the has-less-than and has-zero byte tricks (exact for the word as a
// whole) tell in a few operations. UUIDs, keys and symbols have none.
static inline uint64_t special_bits(uint64_t w) {
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | w) & highs;
}

// plain_short says whether the len bytes at p (1 to LZ_COPY_SHORT_MAX) are
// all plain (escape_of 0), read as two overlapping words (or half words);
// under 4 bytes, the first, middle and last byte padded with plain 'a's.
static inline __attribute__((always_inline)) bool plain_short(const unsigned char *p, size_t len) {
    if (len >= 8) {
        uint64_t head, tail;
        memcpy(&head, p, 8);
        memcpy(&tail, p + len - 8, 8);
        return !(special_bits(head) | special_bits(tail)); // one branch for both words
    }
    if (len >= 4) {
        uint32_t head, tail;
        memcpy(&head, p, 4);
        memcpy(&tail, p + len - 4, 4);
        return !special_bits(head | (uint64_t)tail << 32);
    }
    uint64_t bytes = p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
    return !special_bits(bytes | UINT64_C(0x6161616161000000));
}

// A block of LZ_PLAIN_BLOCK bytes checked as vectors (SSE2 on x86-64, NEON
// on Arm, through the compiler's generic vectors): a word at a time through
// special_bits, a 4 MiB string took 640 us to write, a tenth of a large
// request/reply round trip (which writes two); as vectors 160 us, about
// what memcpy takes.
#define LZ_PLAIN_BLOCK 64 // four vectors of 16 (copy_blocks)
typedef signed char lz_bytes16 __attribute__((vector_size(16)));

// copy16 copies the 16 bytes at p to out and returns their special ones
// (escape_of not 0) as all-ones bytes. Signed, the bytes from 0x80 up are
// below 0x20 too.
static inline lz_bytes16 copy16(char *out, const unsigned char *p) {
    lz_bytes16 v;
    memcpy(&v, p, 16);
    memcpy(out, &v, 16);
    return (v < 0x20) | (v == '"') | (v == '\\');
}

// copy_blocks copies the whole blocks of plain bytes that lead the len
// bytes at p (len >= LZ_PLAIN_BLOCK) to out and returns how many bytes. A
// block with a special byte is copied too (out has room for len bytes) but
// not counted: the word loop goes over it again. Out of line, so the short
// strings of a small message pay one comparison for it.
static __attribute__((noinline)) size_t copy_blocks(char *out, const unsigned char *p, size_t len) {
    size_t i = 0;
    for (; len - i >= LZ_PLAIN_BLOCK; i += LZ_PLAIN_BLOCK) {
        lz_bytes16 special = copy16(out + i, p + i) | copy16(out + i + 16, p + i + 16) |
                             copy16(out + i + 32, p + i + 32) | copy16(out + i + 48, p + i + 48);
        uint64_t half[2];
        memcpy(half, &special, sizeof half);
        if (half[0] | half[1]) break;
    }
    return i;
}

// copy_plain copies the leading plain bytes (escape_of 0) of the len bytes
// at p to out and returns how many. Long runs go LZ_PLAIN_BLOCK bytes at a
// time (copy_blocks), then words are checked and stored eight bytes at a
// time; the last bytes of a plain string go as one overlapping word (under
// 8 bytes, plain_short's check and lz__copy_short), so plain text costs
// neither a byte loop nor a call to memcpy. At a special byte, the byte
// loop finds which.
static size_t copy_plain(char *out, const unsigned char *p, size_t len) {
    size_t i = 0;
    if (len >= 8) {
        uint64_t w;
        if (len >= LZ_PLAIN_BLOCK) i = copy_blocks(out, p, len);
        for (; len - i > 8; i += 8) {
            memcpy(&w, p + i, 8);
            if (special_bits(w)) goto bytes;
            memcpy(out + i, &w, 8);
        }
        memcpy(&w, p + len - 8, 8);
        if (special_bits(w)) goto bytes;
        memcpy(out + len - 8, &w, 8);
        return len;
    }
    if (len && plain_short(p, len)) {
        lz__copy_short(out, (const char *)p, len);
        return len;
    }
bytes:
    for (; i < len && escape_of[p[i]] == 0; i++) out[i] = (char)p[i];
    return i;
}

// write_string_any writes text as a quoted JSON string, checking that it is
// UTF-8 while copying it; copy_plain copies the runs of plain bytes. The
// room reserved always covers the rest of the text plus the closing quote,
// so only an escape (up to 6 bytes for 1) has to ask for more.
static __attribute__((noinline)) int write_string_any(json_writer_t *w, const char *text, size_t len,
                                                      const char *what) {
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    int rc = need(w, len + 2);
    if (rc < 0) return rc;
    *w->at++ = '"';
    while (p < end) {
        size_t run = copy_plain(w->at, p, (size_t)(end - p));
        w->at += run;
        p += run;
        if (p == end) break;
        if (escape_of[*p] == 2) {
            size_t n = lz__utf8_sequence(p, (size_t)(end - p));
            if (n == 0) return lz__fail(LZ_ESERIALIZATION, "json: %s is not valid UTF-8", what);
            memcpy(w->at, p, n);
            w->at += n;
            p += n;
            continue;
        }
        if ((rc = need(w, (size_t)(end - p) + 6)) < 0) return rc;
        w->at = write_escape(w->at, *p++);
    }
    *w->at++ = '"';
    return 0;
}

// write_string writes text as a quoted JSON string. Keys and short values
// of plain text (most of them) are checked and copied inline; the call to
// write_string_any, with its loop and saved registers, cost about as much
// again as the copy.
static inline __attribute__((always_inline)) int write_string(json_writer_t *w, const char *text, size_t len,
                                                              const char *what) {
    if (len - 1 < LZ_COPY_SHORT_MAX && (size_t)(w->end - w->at) >= LZ_COPY_SHORT_MAX + 2 &&
        plain_short((const unsigned char *)text, len)) {
        w->at[0] = '"';
        lz__copy_short(w->at + 1, text, len);
        w->at[len + 1] = '"';
        w->at += len + 2;
        return 0;
    }
    return write_string_any(w, text, len, what);
}

static int write_double(json_writer_t *w, double d) {
    if (!isfinite(d))
        return lz__fail(LZ_ESERIALIZATION, "json: cannot encode %s (not representable in JSON)",
                        isnan(d) ? "NaN" : "an infinite double");
    int rc = need(w, LZ_JSON_DOUBLE_MAX);
    if (rc == 0) w->at += format_double(d, w->at);
    return rc;
}

static int write_int(json_writer_t *w, int64_t i) {
    int rc = need(w, 24);
    if (rc == 0) w->at += format_int(i, w->at);
    return rc;
}

// write_base64 writes bytes as a base64 string, which needs no escaping.
static int write_base64(json_writer_t *w, const lz_value_t *value) {
    size_t len = lz__base64_encoded_size(value->u.blob.len);
    int rc = need(w, len + 2);
    if (rc < 0) return rc;
    *w->at++ = '"';
    lz__base64_encode(value->u.blob.data, value->u.blob.len, w->at);
    w->at += len;
    *w->at++ = '"';
    return 0;
}

static int too_deep(void) {
    return lz__fail(LZ_ESERIALIZATION, "json: nesting deeper than %d levels", LZ_JSON_MAX_DEPTH);
}

// Bytes travel as the Python LiberZMQ writes them, a tagged object with
// lower-case hex (see lz__json_untag). lz_value_to_json, which shows values
// (lz sub's records show undecodable payloads as base64), writes base64.
// The object is one more level of nesting, which the readers count: at
// depth (the containers around value) LZ_JSON_MAX_DEPTH it is refused, as
// a container there is, so that what is written always reads back.
static int write_bytes(json_writer_t *w, const lz_value_t *value, int depth) {
    static const char head[] = "{\"__type__\":\"bytes\",\"value\":\"";
    if (w->bytes_as_base64) return write_base64(w, value);
    if (depth >= LZ_JSON_MAX_DEPTH) return too_deep();
    const unsigned char *p = (const unsigned char *)value->u.blob.data;
    size_t len = value->u.blob.len;
    if (len > (SIZE_MAX - sizeof head) / 2) return lz__fail(LZ_ENOMEM, "json: %zu bytes is too large", len);
    int rc = need(w, sizeof head - 1 + 2 * len + 2);
    if (rc < 0) return rc;
    memcpy(w->at, head, sizeof head - 1);
    w->at += sizeof head - 1;
    for (size_t i = 0; i < len; i++, w->at += 2) lz__hex_byte(p[i], w->at);
    memcpy(w->at, "\"}", 2);
    w->at += 2;
    return 0;
}

static int write_value(json_writer_t *w, const lz_value_t *value, int depth);

// The walks read the nodes directly (serial/value.h): an accessor call per
// member and per field cost as much as writing the text.
static int write_array(json_writer_t *w, const lz_value_t *array, int depth) {
    int rc = put(w, "[", 1);
    for (size_t i = 0; rc == 0 && i < array->u.array.len; i++) {
        if (i) rc = put(w, ",", 1);
        if (rc == 0) rc = write_value(w, array->u.array.items[i], depth + 1);
    }
    return rc == 0 ? put(w, "]", 1) : rc;
}

static int write_object(json_writer_t *w, const lz_value_t *object, int depth) {
    int rc = put(w, "{", 1);
    for (size_t i = 0; rc == 0 && i < object->u.object.len; i++) {
        const lz_member_t *member = &object->u.object.members[i];
        if (i) rc = put(w, ",", 1);
        if (rc == 0) rc = write_string(w, lz__member_key(member), member->key_len, "a key");
        if (rc == 0) rc = put(w, ":", 1);
        if (rc == 0) rc = write_value(w, member->value, depth + 1);
    }
    return rc == 0 ? put(w, "}", 1) : rc;
}

static int write_value(json_writer_t *w, const lz_value_t *value, int depth) {
    if (!value) return put(w, "null", 4); // lz_value_to_json(NULL), as lz_value_type(NULL) says
    switch ((lz_value_type_t)value->type) {
    case LZ_VALUE_NULL: return put(w, "null", 4);
    case LZ_VALUE_BOOL: return value->u.b ? put(w, "true", 4) : put(w, "false", 5);
    case LZ_VALUE_INT: return write_int(w, value->u.i);
    case LZ_VALUE_DOUBLE: return write_double(w, value->u.d);
    case LZ_VALUE_STRING: return write_string(w, value->u.blob.data, value->u.blob.len, "a string");
    case LZ_VALUE_BYTES: return write_bytes(w, value, depth);
    case LZ_VALUE_ARRAY:
    case LZ_VALUE_OBJECT:
        if (depth >= LZ_JSON_MAX_DEPTH) return too_deep();
        return value->type == LZ_VALUE_ARRAY ? write_array(w, value, depth) : write_object(w, value, depth);
    }
    return lz__fail(LZ_ESERIALIZATION, "json: unknown value type");
}

static int encode_value(const lz_value_t *value, bool bytes_as_base64, lz_buffer_t *out) {
    json_writer_t w = {.out = out, .bytes_as_base64 = bytes_as_base64};
    int rc = refill(&w, 0);
    if (rc == 0) rc = write_value(&w, value, 0);
    if (rc == 0) lz_buffer_commit(out, (size_t)(w.at - w.start));
    return rc;
}

static int json_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    (void)state;
    return encode_value(value, false, out);
}

// put_key writes ,"key": for a key of plain text, len bytes (PUT_KEY
// gives a literal's length, so the envelope's keys need no strlen). Inlined
// and copied with lz__copy, as put is.
static inline __attribute__((always_inline)) int put_key(json_writer_t *w, const char *key, size_t len) {
    int rc = need(w, len + 4);
    if (rc == 0) {
        memcpy(w->at, ",\"", 2);
        lz__copy(w->at + 2, key, len);
        memcpy(w->at + 2 + len, "\":", 2);
        w->at += len + 4;
    }
    return rc;
}
#define PUT_KEY(w, literal) put_key((w), (literal), sizeof(literal) - 1)

// The envelope's fixed parts are written as text around the caller's data,
// the bytes json_encode writes for the envelope as a value tree (its
// members at depth 1), without filling and walking one.
int lz__json_encode_envelope(const lz_envelope_text_t *e, lz_buffer_t *out) {
    json_writer_t w = {.out = out};
    int rc = refill(&w, 0);
    if (rc == 0) rc = put(&w, "{\"type\":", 8);
    if (rc == 0) rc = write_string(&w, e->type, strlen(e->type), "a string");
    if (rc == 0 && e->has_priority) rc = PUT_KEY(&w, "priority");
    if (rc == 0 && e->has_priority) rc = write_int(&w, e->priority);
    if (rc == 0) rc = PUT_KEY(&w, "timestamp");
    if (rc == 0) rc = write_double(&w, e->timestamp);
    if (rc == 0) rc = put_key(&w, e->id_key, e->id_key_len);
    if (rc == 0) rc = write_string(&w, e->id, e->id_len, "a string");
    if (rc == 0 && e->traceparent) rc = PUT_KEY(&w, "traceparent");
    if (rc == 0 && e->traceparent) rc = write_string(&w, e->traceparent, strlen(e->traceparent), "a string");
    if (rc == 0) rc = PUT_KEY(&w, "data");
    if (rc == 0) rc = write_value(&w, e->data, 1);
    if (rc == 0) rc = put(&w, "}", 1);
    if (rc == 0) lz_buffer_commit(out, (size_t)(w.at - w.start));
    return rc;
}

const lz_serializer_ops_t lz__json_ops = {
    .name = "json",
    .content_type = "application/json",
    .flags = 0,
    .encode = json_encode,
    .decode = json_decode,
    .destroy = NULL,
};

/* ---- lz_value_to_json / lz_value_from_json ----------------------------- */

char *lz_value_to_json(const lz_value_t *value) {
    lz_buffer_t *buffer = lz_buffer_new();
    char *text = NULL;
    if (buffer && encode_value(value, true, buffer) == 0) {
        size_t len = lz_buffer_size(buffer);
        text = malloc(len + 1);
        if (text) {
            memcpy(text, lz_buffer_data(buffer), len);
            text[len] = '\0';
        } else {
            lz__fail(LZ_ENOMEM, "json: out of memory");
        }
    }
    lz_buffer_destroy(&buffer);
    return text;
}

lz_value_t *lz_value_from_json(const char *text, size_t len) {
    if (!text && len) return lz__fail_null(LZ_EINVAL, "json: NULL text");
    lz_value_t *value = NULL;
    json_decode(NULL, text ? text : "", len, &value);
    return value;
}
