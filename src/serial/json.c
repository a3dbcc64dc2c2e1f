/* The "json" codec on yajl. Decoding drives yajl's callback parser and
 * builds lz_value_t nodes as tokens arrive (no intermediate tree); encoding
 * drives a per-thread cached yajl_gen whose print callback appends straight
 * to the caller's lz_buffer_t. Numbers are formatted and parsed here, in the
 * C locale, so int64 range and double round trips do not depend on yajl. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "core/error.h"
#include "serial/base64.h"
#include "serial/registry.h"
#include "serial/value.h"

// Hostile input must not be able to nest deep enough to exhaust the stack
// of the recursive walks (destroy, copy, encode) that later touch the value.
// yajl_gen refuses to open container number YAJL_MAX_DEPTH (128), so 127 is
// also the most that can be encoded: decode accepts exactly what encodes.
#define LZ_JSON_MAX_DEPTH (YAJL_MAX_DEPTH - 1)
#define LZ_JSON_DEPTH_TEXT "127"
#define LZ_NUMBER_MAX 64 // longer number text goes through a heap copy

/* ---- number formatting and parsing ---------------------------------- */

// format_uint writes the decimal digits of n, at least min_digits of them.
static size_t format_uint(uint64_t n, int min_digits, char *out) {
    char tmp[24];
    int len = 0;
    do {
        tmp[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n || len < min_digits);
    for (int i = 0; i < len; i++) out[i] = tmp[len - 1 - i];
    return (size_t)len;
}

static size_t format_int(int64_t i, char *out) {
    size_t sign = i < 0;
    if (sign) out[0] = '-';
    uint64_t magnitude = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    return sign + format_uint(magnitude, 1, out + sign);
}

// format_decimal handles the common "few decimal places" double without
// printf: when d == m / 10^k exactly for an integer m < 2^53, the text of m
// with the point moved k places parses back (correctly rounded) to d.
static size_t format_decimal(double d, char *out) {
    double scale = 1;
    for (int k = 0; k <= 6; k++, scale *= 10) {
        double m = fabs(d) * scale;
        if (m >= 9007199254740992.0 || m != floor(m) || m / scale != fabs(d)) continue;
        size_t len = 0;
        if (signbit(d)) out[len++] = '-';
        char digits[24];
        size_t n = format_uint((uint64_t)m, k + 1, digits);
        memcpy(out + len, digits, n - (size_t)k);
        len += n - (size_t)k;
        out[len++] = '.';
        if (k == 0) out[len++] = '0';
        memcpy(out + len, digits + n - k, (size_t)k);
        return len + (size_t)k;
    }
    return 0;
}

// format_double writes the shortest of %.15g..%.17g that reads back as d,
// with ".0" added to integral text so the peer still sees a float.
static size_t format_double(double d, char *out, size_t size) {
    size_t len = format_decimal(d, out);
    if (len) return len;
    for (int precision = 15; precision <= 17; precision++) {
        len = (size_t)snprintf(out, size, "%.*g", precision, d);
        if (strtod(out, NULL) == d) break;
    }
    char *comma = strchr(out, ','); // a process locale may print a decimal comma
    if (comma) *comma = '.';
    if (strspn(out, "-0123456789") == len) {
        memcpy(out + len, ".0", 3);
        len += 2;
    }
    return len;
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
// else a double. Clinger's fast path covers most doubles: with at most 15
// significant digits the mantissa and 10^|e| <= 10^22 are exact doubles, so
// one multiply or divide rounds exactly as strtod would.
static lz_value_t *number_value(const char *text, size_t len) {
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    decimal_t d = scan_decimal(text, len);
    uint64_t limit = d.negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (d.integral && d.digits <= 19 && d.mantissa <= limit)
        return lz_value_int(d.negative ? (int64_t)(0 - d.mantissa) : (int64_t)d.mantissa);
    if (d.digits <= 15 && d.exponent >= -22 && d.exponent <= 22) {
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
// (long strings with escapes, deep nesting) falls back to the heap.
#define LZ_ARENA_SIZE 4096
#define LZ_ARENA_ALIGN 16

typedef struct arena {
    size_t used;
    _Alignas(LZ_ARENA_ALIGN) unsigned char block[LZ_ARENA_SIZE];
} arena_t;

static bool in_arena(const arena_t *a, const void *p) {
    uintptr_t at = (uintptr_t)p, start = (uintptr_t)a->block;
    return at >= start && at < start + LZ_ARENA_SIZE;
}

// Each arena block is preceded by its size, which arena_realloc needs.
static void *arena_malloc(void *ctx, size_t size) {
    arena_t *a = ctx;
    size_t rounded = (size + LZ_ARENA_ALIGN - 1) / LZ_ARENA_ALIGN * LZ_ARENA_ALIGN;
    if (size > LZ_ARENA_SIZE || rounded + LZ_ARENA_ALIGN > LZ_ARENA_SIZE - a->used) return malloc(size);
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
    if (!in_arena(ctx, p)) return realloc(p, size);
    size_t old;
    memcpy(&old, (unsigned char *)p - sizeof(size_t), sizeof old);
    if (size <= old) return p;
    void *grown = arena_malloc(ctx, size);
    if (grown) memcpy(grown, p, old);
    return grown;
}

/* ---- decoding -------------------------------------------------------- */

typedef struct json_parse {
    lz_value_t *root;
    lz_value_t *stack[LZ_JSON_MAX_DEPTH]; // the open containers, innermost last
    int depth;
    char *key; // the pending object key, NUL-terminated
    size_t key_cap;
    char key_small[64];
    const char *reason; // why a callback stopped the parse
} json_parse_t;

// attach hands a new value to the open container (or makes it the root).
// yajl callbacks return 0 to stop the parse, non-zero to go on.
static int attach(json_parse_t *p, lz_value_t *item) {
    if (!item) {
        p->reason = "out of memory";
        return 0;
    }
    if (p->depth == 0) {
        p->root = item;
        return 1;
    }
    lz_value_t *parent = p->stack[p->depth - 1];
    int rc = lz_value_type(parent) == LZ_VALUE_ARRAY ? lz_value_array_append(parent, item)
                                                     : lz_value_object_set(parent, p->key, item);
    if (rc < 0) p->reason = "out of memory";
    return rc == 0;
}

static int open_container(json_parse_t *p, lz_value_t *container) {
    if (p->depth == LZ_JSON_MAX_DEPTH) {
        lz_value_destroy(&container);
        p->reason = "nesting deeper than " LZ_JSON_DEPTH_TEXT " levels";
        return 0;
    }
    if (!attach(p, container)) return 0;
    p->stack[p->depth++] = container;
    return 1;
}

static int on_null(void *ctx) { return attach(ctx, lz_value_null()); }
static int on_bool(void *ctx, int b) { return attach(ctx, lz_value_bool(b)); }

static int on_number(void *ctx, const char *text, size_t len) {
    return attach(ctx, number_value(text, len));
}

static int on_string(void *ctx, const unsigned char *s, size_t len) {
    return attach(ctx, lz_value_stringn((const char *)s, len));
}

static int on_start_map(void *ctx) { return open_container(ctx, lz_value_object()); }
static int on_start_array(void *ctx) { return open_container(ctx, lz_value_array()); }

static int on_end(void *ctx) {
    ((json_parse_t *)ctx)->depth--;
    return 1;
}

static int on_key(void *ctx, const unsigned char *key, size_t len) {
    json_parse_t *p = ctx;
    if (len >= p->key_cap) {
        char *grown = realloc(p->key == p->key_small ? NULL : p->key, len + 1);
        if (!grown) {
            p->reason = "out of memory";
            return 0;
        }
        p->key = grown;
        p->key_cap = len + 1;
    }
    memcpy(p->key, key, len);
    p->key[len] = '\0';
    return 1;
}

static const yajl_callbacks parse_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

// parse_failure records why yajl stopped, with the byte offset.
static int parse_failure(yajl_handle h, json_parse_t *p, const void *data, size_t size, size_t at) {
    if (p->reason) return lz__fail(LZ_ESERIALIZATION, "json: %s at byte %zu", p->reason, at);
    unsigned char *text = yajl_get_error(h, 0, data, size);
    const char *message = text ? (const char *)text : "parse error";
    if (strncmp(message, "parse error: ", 13) == 0) message += 13;
    int len = (int)strcspn(message, "\n");
    int rc = lz__fail(LZ_ESERIALIZATION, "json: %.*s at byte %zu", len, message, at);
    if (text) yajl_free_error(h, text);
    return rc;
}

static int json_decode(void *state, const void *data, size_t size, lz_value_t **out) {
    json_parse_t p = {.key_cap = sizeof p.key_small};
    p.key = p.key_small;
    p.key[0] = '\0';
    arena_t arena;
    arena.used = 0;
    yajl_alloc_funcs funcs = {arena_malloc, arena_realloc, arena_free, &arena};
    yajl_handle h = yajl_alloc(&parse_callbacks, &funcs, &p);
    if (!h) return lz__fail(LZ_ENOMEM, "json: out of memory");
    int rc = 0;
    // yajl counts the offending byte as consumed.
    if (yajl_parse(h, data, size) != yajl_status_ok) {
        size_t consumed = yajl_get_bytes_consumed(h);
        rc = parse_failure(h, &p, data, size, consumed ? consumed - 1 : 0);
    } else if (yajl_complete_parse(h) != yajl_status_ok) {
        rc = parse_failure(h, &p, data, size, size);
    }
    yajl_free(h);
    if (p.key != p.key_small) free(p.key);
    if (rc < 0) lz_value_destroy(&p.root);
    *out = p.root;
    return rc;
}

/* ---- encoding -------------------------------------------------------- */

// yajl prints every token in small pieces (a quote, a key, a colon...), so
// they are gathered in stage and reach the buffer in one append per message.
typedef struct json_gen {
    yajl_gen gen;
    lz_buffer_t *out;
    bool out_of_memory;
    size_t staged;
    char stage[2048];
} json_gen_t;

static pthread_key_t gen_key;
static pthread_once_t gen_once = PTHREAD_ONCE_INIT;

static void gen_free(void *arg) {
    json_gen_t *j = arg;
    yajl_gen_free(j->gen);
    free(j);
}

static void gen_key_init(void) { (void)pthread_key_create(&gen_key, gen_free); }

static void flush(json_gen_t *j) {
    if (j->staged && lz_buffer_append(j->out, j->stage, j->staged) < 0) j->out_of_memory = true;
    j->staged = 0;
}

static void on_print(void *ctx, const char *s, size_t len) {
    json_gen_t *j = ctx;
    if (len > sizeof j->stage - j->staged) {
        flush(j);
        if (len > sizeof j->stage) {
            if (lz_buffer_append(j->out, s, len) < 0) j->out_of_memory = true;
            return;
        }
    }
    memcpy(j->stage + j->staged, s, len);
    j->staged += len;
}

// thread_gen returns this thread's generator: yajl_gen_alloc and its
// configuration cost more than encoding a small message, so each thread
// keeps one (freed by the key's destructor when the thread exits).
static json_gen_t *thread_gen(void) {
    pthread_once(&gen_once, gen_key_init);
    json_gen_t *j = pthread_getspecific(gen_key);
    if (j) return j;
    j = calloc(1, sizeof *j);
    if (j) j->gen = yajl_gen_alloc(NULL);
    if (!j || !j->gen || !yajl_gen_config(j->gen, yajl_gen_print_callback, on_print, j) ||
        !yajl_gen_config(j->gen, yajl_gen_validate_utf8, 1) || pthread_setspecific(gen_key, j) != 0) {
        if (j && j->gen) yajl_gen_free(j->gen);
        free(j);
        return NULL;
    }
    return j;
}

static int gen_status(yajl_gen_status status, const char *what) {
    if (status == yajl_gen_status_ok) return 0;
    if (status == yajl_gen_invalid_string)
        return lz__fail(LZ_ESERIALIZATION, "json: %s is not valid UTF-8", what);
    return lz__fail(LZ_ESERIALIZATION, "json: cannot encode %s (yajl status %d)", what, (int)status);
}

static int encode_double(yajl_gen g, double d) {
    if (!isfinite(d))
        return lz__fail(LZ_ESERIALIZATION, "json: cannot encode %s (not representable in JSON)",
                        isnan(d) ? "NaN" : "an infinite double");
    char text[40];
    return gen_status(yajl_gen_number(g, text, format_double(d, text, sizeof text)), "a double");
}

static int encode_int(yajl_gen g, int64_t i) {
    char text[24];
    return gen_status(yajl_gen_number(g, text, format_int(i, text)), "an integer");
}

static int encode_bytes(yajl_gen g, const lz_value_t *value) {
    size_t size;
    const void *data = lz_value_get_bytes(value, &size);
    char small[256];
    size_t len = lz__base64_encoded_size(size);
    char *text = len <= sizeof small ? small : malloc(len);
    if (!text) return lz__fail(LZ_ENOMEM, "json: out of memory encoding %zu bytes", size);
    lz__base64_encode(data, size, text);
    int rc = gen_status(yajl_gen_string(g, (const unsigned char *)text, len), "bytes");
    if (text != small) free(text);
    return rc;
}

static int encode_value(yajl_gen g, const lz_value_t *value, int depth);

static int encode_container(yajl_gen g, const lz_value_t *value, int depth) {
    bool object = lz_value_type(value) == LZ_VALUE_OBJECT;
    if (depth >= LZ_JSON_MAX_DEPTH)
        return lz__fail(LZ_ESERIALIZATION, "json: nesting deeper than %d levels", LZ_JSON_MAX_DEPTH);
    int rc = gen_status(object ? yajl_gen_map_open(g) : yajl_gen_array_open(g), "a container");
    size_t n = lz_value_size(value);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (object) {
            const char *key = lz_value_key_at(value, i);
            rc = gen_status(yajl_gen_string(g, (const unsigned char *)key, strlen(key)), "a key");
        }
        if (rc == 0) rc = encode_value(g, lz_value_at(value, i), depth + 1);
    }
    if (rc == 0) rc = gen_status(object ? yajl_gen_map_close(g) : yajl_gen_array_close(g), "a container");
    return rc;
}

static int encode_value(yajl_gen g, const lz_value_t *value, int depth) {
    size_t len;
    const char *s;
    switch (lz_value_type(value)) {
    case LZ_VALUE_NULL: return gen_status(yajl_gen_null(g), "null");
    case LZ_VALUE_BOOL: return gen_status(yajl_gen_bool(g, lz_value_get_bool(value)), "a bool");
    case LZ_VALUE_INT: return encode_int(g, lz_value_get_int(value));
    case LZ_VALUE_DOUBLE: return encode_double(g, lz_value_get_double(value));
    case LZ_VALUE_STRING:
        s = lz_value_get_string(value, &len);
        return gen_status(yajl_gen_string(g, (const unsigned char *)s, len), "a string");
    case LZ_VALUE_BYTES: return encode_bytes(g, value);
    case LZ_VALUE_ARRAY:
    case LZ_VALUE_OBJECT: return encode_container(g, value, depth);
    }
    return lz__fail(LZ_ESERIALIZATION, "json: unknown value type");
}

static int json_encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    json_gen_t *j = thread_gen();
    if (!j) return lz__fail(LZ_ENOMEM, "json: cannot allocate a generator");
    yajl_gen_reset(j->gen, NULL); // a failed encode may have left it mid-value
    j->out = out;
    j->out_of_memory = false;
    j->staged = 0;
    int rc = encode_value(j->gen, value, 0);
    if (rc == 0) flush(j);
    j->out = NULL;
    if (rc == 0 && j->out_of_memory) rc = lz__fail(LZ_ENOMEM, "json: out of memory writing output");
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
    if (buffer && json_encode(NULL, value, buffer) == 0) {
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
