/* JSON Schema validation: walks a compiled schema (serial/schema.h) over a
 * value. The first failure is reported, by the path of the value it is
 * about ("$.user.age") and why. The path is a chain of frames on the C
 * stack and the message is formatted only when something fails, so a valid
 * value costs no string work.
 *
 * Subschemas whose failure is not the value's failure (the branches of
 * anyOf, oneOf, not, if, contains, propertyNames) run quietly: they answer
 * yes or no and report nothing. Running out of depth (a $ref cycle) or of
 * memory aborts the whole validation, quiet or not. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "core/error.h"
#include "serial/schema.h"
#include "serial/utf8.h"

// A step from a value to one of its children: a member (key set) or an
// array element. The root frame has no parent.
typedef struct path {
    const struct path *up;
    const char *key;
    size_t len_or_index; // the key's length, or the element's index
} path_t;

typedef struct vctx {
    int depth;
    uint64_t steps, max_steps; // steps taken (subschemas applied, charge), and how many may be (budget_spent)
    bool budget_grown;
    const lz_value_t *root;    // the value validated
    bool quiet;
    bool aborted;
    int error;                   // the abort's code
    pcre2_match_data *match;     // made on the first pattern, freed at the end
    pcre2_match_context *limits; // the schema's
    pcre2_match_context *grown;  // limits with jit_stack, once a match needed more stack
    pcre2_jit_stack *jit_stack;
} vctx_t;

static bool validate(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx);

// Messages are built out of line (the functions marked so), so that the
// recursive frames of a validation do not carry their buffers.
#define LZ_COLD __attribute__((noinline, cold))

/* ---- reporting ---------------------------------------------------------- */

static bool plain_key(const char *key, size_t len) {
    if (len == 0 || (key[0] >= '0' && key[0] <= '9')) return false;
    for (size_t i = 0; i < len; i++) {
        char ch = key[i];
        if (!(ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return false;
    }
    return true;
}

// string_value is a string value over the len bytes at text, borrowed:
// validation and the JSON writer only read it.
static lz_value_t string_value(const char *text, size_t len) {
    lz_value_t v = {.type = LZ_VALUE_STRING, .borrowed = 1, .unowned = 1};
    v.u.blob.data = text;
    v.u.blob.len = len;
    return v;
}

// write_key writes a member's step: ".name" for a plain identifier, else
// the key as the JSON writer writes a string (quotes, backslashes and
// control characters escaped), in brackets.
static LZ_COLD int write_key(const char *key, size_t len, char *out, size_t size) {
    if (plain_key(key, len)) return snprintf(out, size, ".%.*s", (int)len, key);
    lz_value_t name = string_value(key, len);
    char *json = lz_value_to_json(&name); // NULL for a key that is not UTF-8 (built by hand)
    int w = snprintf(out, size, "[%s]", json ? json : "\"?\"");
    free(json);
    return w;
}

// write_path renders path as "$", "$.a.b", "$.tags[2]" or "$[\"a b\"]";
// returns size or more when it did not fit.
static size_t write_path(const path_t *path, char *out, size_t size) {
    size_t n = path->up ? write_path(path->up, out, size) : (size_t)snprintf(out, size, "$");
    if (n >= size || !path->up) return n;
    int w = path->key ? write_key(path->key, path->len_or_index, out + n, size - n)
                      : snprintf(out + n, size - n, "[%zu]", path->len_or_index);
    return w < 0 ? size : n + (size_t)w;
}

// fail records "<path>: <reason>" unless the validation is quiet, and
// returns false for the caller to pass on.
static LZ_COLD bool fail(vctx_t *ctx, const path_t *path, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static LZ_COLD bool fail(vctx_t *ctx, const path_t *path, const char *format, ...) {
    if (ctx->quiet) return false;
    char where[LZ_DETAIL_MAX / 2], reason[LZ_DETAIL_MAX];
    if (write_path(path, where, sizeof where) >= sizeof where) // cut short: no half character
        where[lz__utf8_prefix(where, strlen(where))] = '\0';
    va_list args;
    va_start(args, format);
    lz__vformat(reason, sizeof reason, format, args);
    va_end(args);
    lz__fail(LZ_EVALIDATION, "%s: %s", where, reason);
    return false;
}

// abort_validation stops everything, quiet or not: what failed is no
// answer about the value. The budget of steps is spent, so each subschema
// the callers would still apply fails at once (give_up).
static LZ_COLD bool abort_validation(vctx_t *ctx, const path_t *path, int code, const char *reason) {
    bool quiet = ctx->quiet;
    ctx->quiet = false;
    fail(ctx, path, "%s", reason);
    lz__fail(code, "%s", lz_last_error()); // the same detail under code
    ctx->quiet = quiet;
    ctx->aborted = true;
    ctx->error = code;
    ctx->max_steps = 0;
    ctx->budget_grown = true;
    return false;
}

// render writes v as JSON, cut short with "..." past size - 4 bytes (at a
// character boundary).
static const char *render(const lz_value_t *v, char *out, size_t size) {
    char *json = lz_value_to_json(v);
    if (!json) return "(a value)";
    size_t len = strlen(json);
    if (len < size) {
        memcpy(out, json, len + 1);
    } else {
        len = lz__utf8_prefix(json, size - 4);
        memcpy(out, json, len);
        memcpy(out + len, "...", 4);
    }
    free(json);
    return out;
}

/* ---- numbers ------------------------------------------------------------- */

static lz_snum_t to_num(const lz_value_t *v) {
    if (v->type == LZ_VALUE_INT) return (lz_snum_t){.is_int = true, .i = v->u.i, .d = (double)v->u.i};
    return (lz_snum_t){.is_int = false, .d = v->u.d};
}

// compare orders two numbers: -1, 0, 1, or 2 when unordered (NaN).
static int compare(lz_snum_t a, lz_snum_t b) {
    if (a.is_int && b.is_int) return a.i < b.i ? -1 : a.i > b.i;
    if (a.is_int) return lz__compare_int_double(a.i, b.d);
    if (b.is_int) {
        int r = lz__compare_int_double(b.i, a.d);
        return r == 2 ? 2 : -r;
    }
    if (isnan(a.d) || isnan(b.d)) return 2;
    return a.d < b.d ? -1 : a.d > b.d;
}

// format_num writes n as short as it reads back.
static const char *format_num(lz_snum_t n, char *out, size_t size) {
    if (n.is_int)
        snprintf(out, size, "%lld", (long long)n.i);
    else if (snprintf(out, size, "%.15g", n.d) > 0 && strtod(out, NULL) != n.d)
        snprintf(out, size, "%.17g", n.d);
    return out;
}

static bool integral(double d) { return isfinite(d) && d == trunc(d); }

// remainder_of is |v| mod m, exactly, for an integral double v: past 2^63,
// |v| is a 63-bit integer times 2^k, and the remainder is doubled k times
// modulo m (without overflow: 2r - m when 2r >= m).
static uint64_t remainder_of(double v, uint64_t m) {
    int e;
    double f = frexp(fabs(v), &e); // |v| = f * 2^e, f in [0.5, 1)
    if (e <= 63) return (uint64_t)fabs(v) % m;
    uint64_t r = (uint64_t)ldexp(f, 63) % m;
    for (e -= 63; e > 0; e--) r = r >= m - r ? r - (m - r) : 2 * r;
    return r;
}

// is_multiple: exact for an integral divisor (multipleOf keeps those below
// 2^63 as integers): a multiple is an integer, and a double one is judged
// by its exact binary value. A fractional divisor (0.01) is itself rounded
// in binary, so the quotient may also be within 4 ulps of a whole number
// (0.0075 / 0.0001 is 75.00000000000001), but never more than a quarter of
// a step off (4 ulps are more past 2^48: 1000000000000000.25 is no multiple
// of 0.5). A quotient past the double range is none.
static bool is_multiple(lz_snum_t v, lz_snum_t m) {
    if (m.is_int) return v.is_int ? v.i % m.i == 0 : integral(v.d) && remainder_of(v.d, (uint64_t)m.i) == 0;
    if (integral(m.d)) // m >= 2^63: no int64 is a multiple but 0 and, of 2^63, -2^63
        return v.is_int ? v.i == 0 || (v.i == INT64_MIN && m.d == 0x1p63) : integral(v.d) && fmod(v.d, m.d) == 0;
    if (fmod(v.d, m.d) == 0) return true; // fmod is exact
    double q = v.d / m.d;
    if (!isfinite(q)) return false;
    return fabs(q - nearbyint(q)) <= fmin(4 * DBL_EPSILON * fabs(q), 0.25);
}

/* ---- type, enum, const ------------------------------------------------- */

static unsigned value_types(const lz_value_t *v) {
    switch ((lz_value_type_t)v->type) {
    case LZ_VALUE_NULL:
        return LZ_ST_NULL;
    case LZ_VALUE_BOOL:
        return LZ_ST_BOOLEAN;
    case LZ_VALUE_INT:
        return LZ_ST_INTEGER | LZ_ST_NUMBER;
    case LZ_VALUE_DOUBLE:
        return LZ_ST_NUMBER | (integral(v->u.d) ? LZ_ST_INTEGER : 0);
    case LZ_VALUE_STRING:
        return LZ_ST_STRING;
    case LZ_VALUE_ARRAY:
        return LZ_ST_ARRAY;
    case LZ_VALUE_OBJECT:
        return LZ_ST_OBJECT;
    case LZ_VALUE_BYTES:
        return 0; // not a JSON type
    }
    return 0;
}

static const char *const type_names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};

static const char *value_type_name(const lz_value_t *v) {
    if (v->type == LZ_VALUE_BYTES) return "bytes";
    unsigned types = value_types(v);
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (types & (1u << i)) return type_names[i];
    return "?";
}

static LZ_COLD bool type_fails(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    char expected[128] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (s->types & (1u << i))
            n += (size_t)snprintf(expected + n, sizeof expected - n, "%s%s", n ? " or " : "", type_names[i]);
    return fail(ctx, path, "expected %s, got %s", n ? expected : "nothing (an empty type list)", value_type_name(v));
}

static bool check_type(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    return (value_types(v) & s->types) || (!ctx->quiet && type_fails(s, v, path, ctx));
}

// value_fails reports "<v> <what> <other>", both rendered as JSON.
static LZ_COLD bool value_fails(const lz_value_t *v, const char *what, const lz_value_t *other, const path_t *path,
                                vctx_t *ctx) {
    char a[96], b[160];
    return fail(ctx, path, "%s %s %s", render(v, a, sizeof a), what, render(other, b, sizeof b));
}

static bool check_generic(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    if (s->const_value && !lz__value_json_equal(v, s->const_value))
        return !ctx->quiet && value_fails(v, "is not the constant", s->const_value, path, ctx);
    if (!s->enum_values) return true;
    for (size_t i = 0; i < s->enum_values->u.array.len; i++)
        if (lz__value_json_equal(v, s->enum_values->u.array.items[i])) return true;
    return !ctx->quiet && value_fails(v, "is not one of the enum values", s->enum_values, path, ctx);
}

/* ---- numbers and strings ------------------------------------------------ */

// bound_fails reports that v is what (less than the minimum...) limit.
static LZ_COLD bool bound_fails(vctx_t *ctx, const path_t *path, lz_snum_t v, lz_snum_t limit, const char *what) {
    char a[40], b[40];
    return ctx->quiet ? false
                      : fail(ctx, path, "%s %s %s", format_num(v, a, sizeof a), what, format_num(limit, b, sizeof b));
}

// check_number: compare gives 2 for a NaN, which fails every bound.
static bool check_number(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    lz_snum_t n = to_num(v);
    unsigned f = s->num_flags;
    int c;
    if ((f & LZ_SN_MINIMUM) && ((c = compare(n, s->minimum)) < 0 || c == 2))
        return bound_fails(ctx, path, n, s->minimum, "is less than the minimum");
    if ((f & LZ_SN_MAXIMUM) && compare(n, s->maximum) > 0)
        return bound_fails(ctx, path, n, s->maximum, "is greater than the maximum");
    if ((f & LZ_SN_EXCLUSIVE_MINIMUM) && compare(n, s->exclusive_minimum) != 1)
        return bound_fails(ctx, path, n, s->exclusive_minimum, "is not greater than the exclusive minimum");
    if ((f & LZ_SN_EXCLUSIVE_MAXIMUM) && compare(n, s->exclusive_maximum) != -1)
        return bound_fails(ctx, path, n, s->exclusive_maximum, "is not less than the exclusive maximum");
    if ((f & LZ_SN_MULTIPLE_OF) && !is_multiple(n, s->multiple_of))
        return bound_fails(ctx, path, n, s->multiple_of, "is not a multiple of");
    return true;
}

// code_points counts UTF-8 characters: every byte but continuation bytes.
static size_t code_points(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

// match_error aborts on a PCRE2 error other than no match (no memory for
// its backtracking, a match or depth limit): no answer about the value.
static LZ_COLD int match_error(const lz_spattern_t *pattern, int rc, const path_t *path, vctx_t *ctx) {
    char reason[LZ_DETAIL_MAX / 2];
    PCRE2_UCHAR message[120];
    pcre2_get_error_message(rc, message, sizeof message);
    lz__format(reason, sizeof reason, "the pattern \"%s\" could not be matched: %s", pattern->source,
               (const char *)message);
    abort_validation(ctx, path, rc == PCRE2_ERROR_NOMEMORY ? LZ_ENOMEM : LZ_EVALIDATION, reason);
    return -1;
}

static LZ_COLD int match_out_of_memory(const path_t *path, vctx_t *ctx) {
    abort_validation(ctx, path, LZ_ENOMEM, "out of memory for a pattern match");
    return -1;
}

// grow_jit_stack gives the validation's matches from now on a JIT stack of
// up to LZ_SCHEMA_JIT_STACK_MAX bytes, in place of PCRE2's 32 KiB, which a
// repeated group over a long string outgrows. False when out of memory.
static LZ_COLD bool grow_jit_stack(vctx_t *ctx) {
    if (!(ctx->jit_stack = pcre2_jit_stack_create(32 * 1024, LZ_SCHEMA_JIT_STACK_MAX, NULL))) return false;
    if (!(ctx->grown = pcre2_match_context_copy(ctx->limits))) return false;
    pcre2_jit_stack_assign(ctx->grown, NULL, ctx->jit_stack);
    return true;
}

static int match_once(const lz_spattern_t *pattern, const char *text, size_t len, vctx_t *ctx) {
    pcre2_match_context *settings = ctx->grown ? ctx->grown : ctx->limits;
    return pcre2_match(pattern->code, (PCRE2_SPTR)text, len, 0, 0, ctx->match, settings);
}

// matches runs pattern over text (a search, not anchored, as JSON Schema
// has it): 1 matched, 0 not, -1 aborted (out of memory, a match limit).
static int matches(const lz_spattern_t *pattern, const char *text, size_t len, const path_t *path, vctx_t *ctx) {
    if (!ctx->match && !(ctx->match = pcre2_match_data_create(1, NULL))) return match_out_of_memory(path, ctx);
    int rc = match_once(pattern, text, len, ctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !ctx->jit_stack) {
        if (!grow_jit_stack(ctx)) return match_out_of_memory(path, ctx);
        rc = match_once(pattern, text, len, ctx);
    }
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return match_error(pattern, rc, path, ctx);
}

static LZ_COLD bool pattern_fails(const lz_value_t *v, const lz_snode_t *s, const path_t *path, vctx_t *ctx) {
    char a[96];
    return fail(ctx, path, "%s does not match the pattern \"%s\"", render(v, a, sizeof a), s->pattern.source);
}

// charge counts work that reads a whole string or array into the budget
// of steps (validate gives up past it), at LZ_SCHEMA_BYTES_PER_STEP bytes
// or one item a step: a subschema applied over and over (two branches
// that recurse into the same value) to a large string would otherwise take
// 100 us per step, not 5 ns.
static inline void charge(vctx_t *ctx, size_t steps) { ctx->steps += steps; }

static bool check_string(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    const char *text = v->u.blob.data;
    size_t len = v->u.blob.len;
    if (s->min_length || s->max_length != SIZE_MAX || s->pattern.code) charge(ctx, len / LZ_SCHEMA_BYTES_PER_STEP);
    if (s->min_length || s->max_length != SIZE_MAX) {
        size_t n = code_points(text, len);
        if (n < s->min_length)
            return fail(ctx, path, "string of %zu characters is shorter than minLength %zu", n, s->min_length);
        if (n > s->max_length)
            return fail(ctx, path, "string of %zu characters is longer than maxLength %zu", n, s->max_length);
    }
    if (!s->pattern.code) return true;
    int m = matches(&s->pattern, text, len, path, ctx);
    if (m != 0) return m > 0;
    return !ctx->quiet && pattern_fails(v, s, path, ctx);
}

/* ---- uniqueItems ------------------------------------------------------- */

// Comparing every pair of items takes time in the square of their number:
// a peer's array of 100 thousand numbers kept a receiver busy for a
// minute. Items that are equal (as JSON: 1 == 1.0, members in any order)
// hash the same, so once sorted by hash only the items of one hash are
// compared. The hash is seeded per process (as value.c's key index is), so
// items cannot be chosen to collide. Short arrays are compared pair by pair.
#define LZ_UNIQUE_SCAN_MAX 16

static uint64_t unique_seed = 0x9E3779B97F4A7C15ull;
static pthread_once_t unique_seed_once = PTHREAD_ONCE_INIT;

static void unique_seed_init(void) {
    const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
    if (random) memcpy(&unique_seed, random + 8, sizeof unique_seed); // the key index takes bytes 0-7
}

// mix is MurmurHash3's finaliser: every bit of h moves every bit.
static uint64_t mix(uint64_t h) {
    h = (h ^ (h >> 33)) * 0xFF51AFD7ED558CCDull;
    h = (h ^ (h >> 33)) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

static uint64_t hash_bytes(uint64_t h, const char *data, size_t len) {
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)data[i]) * 0x100000001B3ull; // FNV-1a
    return mix(h ^ len);
}

// hash_number: an int and a double of the same number (lz__compare_int_double)
// hash the same: an integral double in the int64 range as that int64 (-0.0
// as 0), any other double by its bits (every NaN alike, as equal has it).
static uint64_t hash_number(const lz_value_t *v) {
    if (v->type == LZ_VALUE_INT) return mix(unique_seed ^ (uint64_t)v->u.i);
    double d = isnan(v->u.d) ? NAN : v->u.d;
    if (d >= -0x1p63 && d < 0x1p63 && d == trunc(d)) return mix(unique_seed ^ (uint64_t)(int64_t)d);
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return mix(~unique_seed ^ bits);
}

// hash_value hashes v so that lz__value_json_equal values hash the same:
// arrays item by item in order, objects as a sum over their members. Past
// LZ_VALUE_MAX_DEPTH, where containers are unequal, all hash alike.
static uint64_t hash_value(const lz_value_t *v, int depth) {
    uint64_t h = mix(unique_seed + (uint64_t)v->type);
    switch ((lz_value_type_t)v->type) {
    case LZ_VALUE_NULL:
        return h;
    case LZ_VALUE_BOOL:
        return mix(h + v->u.b);
    case LZ_VALUE_INT:
    case LZ_VALUE_DOUBLE:
        return hash_number(v);
    case LZ_VALUE_STRING:
    case LZ_VALUE_BYTES:
        return hash_bytes(h, v->u.blob.data, v->u.blob.len);
    case LZ_VALUE_ARRAY:
        for (size_t i = 0; depth < LZ_VALUE_MAX_DEPTH && i < v->u.array.len; i++)
            h = mix(h ^ hash_value(v->u.array.items[i], depth + 1));
        return h;
    case LZ_VALUE_OBJECT: {
        uint64_t sum = v->u.object.len;
        for (size_t i = 0; depth < LZ_VALUE_MAX_DEPTH && i < v->u.object.len; i++) {
            const lz_member_t *m = &v->u.object.members[i];
            sum += mix(hash_bytes(unique_seed, lz__member_key(m), m->key_len) ^ hash_value(m->value, depth + 1));
        }
        return mix(h ^ sum);
    }
    }
    return h;
}

// An item's hash and position.
typedef struct hashed {
    uint64_t hash;
    size_t index;
} hashed_t;

static int compare_hashed(const void *a, const void *b) {
    const hashed_t *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

// first_equal finds, among the n items at run's positions (ascending), the
// equal pair whose later item comes first: *first and *second.
static bool first_equal(lz_value_t *const *items, const hashed_t *run, size_t n, size_t *first, size_t *second) {
    for (size_t k = 1; k < n; k++) {
        for (size_t l = 0; l < k; l++) {
            if (!lz__value_json_equal(items[run[k].index], items[run[l].index])) continue;
            *first = run[l].index;
            *second = run[k].index;
            return true;
        }
    }
    return false;
}

// check_unique reports the equal pair whose later item comes first, as
// comparing every pair in order would.
static bool check_unique(const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    lz_value_t *const *items = v->u.array.items;
    size_t n = v->u.array.len, first = SIZE_MAX, second = SIZE_MAX;
    charge(ctx, n);
    hashed_t few[LZ_UNIQUE_SCAN_MAX];
    bool hashing = n > LZ_UNIQUE_SCAN_MAX;
    hashed_t *run = hashing ? malloc(n * sizeof *run) : few;
    if (!run) return abort_validation(ctx, path, LZ_ENOMEM, "out of memory for uniqueItems");
    if (hashing) pthread_once(&unique_seed_once, unique_seed_init);
    for (size_t i = 0; i < n; i++) run[i] = (hashed_t){hashing ? hash_value(items[i], 0) : 0, i};
    if (hashing) qsort(run, n, sizeof *run, compare_hashed);
    for (size_t start = 0, end; start < n; start = end) {
        for (end = start + 1; end < n && run[end].hash == run[start].hash; end++) continue;
        size_t j, i;
        if (first_equal(items, run + start, end - start, &j, &i) && i < second) {
            first = j;
            second = i;
        }
    }
    if (hashing) free(run);
    return second == SIZE_MAX || fail(ctx, path, "items %zu and %zu are equal (uniqueItems)", first, second);
}

/* ---- arrays ------------------------------------------------------------- */

// quietly runs a speculative subschema: a yes or no, nothing reported.
static bool quietly(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    bool quiet = ctx->quiet;
    ctx->quiet = true;
    bool ok = validate(s, v, path, ctx);
    ctx->quiet = quiet;
    return ok;
}

static bool check_contains(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    size_t count = 0;
    for (size_t i = 0; i < v->u.array.len; i++) {
        // Past minContains only a maxContains still needs counting.
        if (count >= s->min_contains && s->max_contains == SIZE_MAX) break;
        path_t item = {path, NULL, i};
        count += quietly(s->contains, v->u.array.items[i], &item, ctx);
        if (ctx->aborted) return false;
    }
    if (count < s->min_contains)
        return s->min_contains == 1 ? fail(ctx, path, "no item matches the contains schema")
                                    : fail(ctx, path, "%zu items match the contains schema, fewer than minContains %zu",
                                           count, s->min_contains);
    if (count > s->max_contains)
        return fail(ctx, path, "%zu items match the contains schema, more than maxContains %zu", count,
                    s->max_contains);
    return true;
}

static bool check_array(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    size_t n = v->u.array.len;
    if (n < s->min_items) return fail(ctx, path, "array of %zu items has fewer than minItems %zu", n, s->min_items);
    if (n > s->max_items) return fail(ctx, path, "array of %zu items has more than maxItems %zu", n, s->max_items);
    for (size_t i = 0; i < n; i++) {
        const lz_snode_t *item = i < s->prefix_items.len ? s->prefix_items.items[i] : s->items;
        if (!item) break;
        path_t at = {path, NULL, i};
        if (!validate(item, v->u.array.items[i], &at, ctx)) return false;
    }
    if (s->unique_items && !check_unique(v, path, ctx)) return false;
    return !s->contains || check_contains(s, v, path, ctx);
}

/* ---- objects ------------------------------------------------------------ */

static const lz_sprop_t *find_property(const lz_snode_t *s, const char *key, size_t len) {
    size_t lo = 0, hi = s->properties.len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lz_sname_t *name = &s->properties.items[mid].name;
        int c = name->len != len ? (name->len < len ? -1 : 1) : memcmp(name->text, key, len);
        if (c == 0) return &s->properties.items[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool check_property_name(const lz_snode_t *s, const char *key, size_t len, const path_t *path, vctx_t *ctx) {
    lz_value_t name = string_value(key, len);
    if (quietly(s->property_names, &name, path, ctx)) return true;
    return !ctx->aborted && fail(ctx, path, "property name '%.*s' does not match propertyNames", (int)len, key);
}

// check_member applies properties, patternProperties and
// additionalProperties to one member.
static bool check_member(const lz_snode_t *s, const lz_member_t *m, const path_t *path, vctx_t *ctx) {
    const char *key = lz__member_key(m);
    path_t at = {path, key, m->key_len};
    if (s->property_names && !check_property_name(s, key, m->key_len, path, ctx)) return false;
    const lz_sprop_t *prop = find_property(s, key, m->key_len);
    if (prop && !validate(prop->schema, m->value, &at, ctx)) return false;
    bool matched = prop != NULL;
    for (size_t i = 0; i < s->pattern_properties.len; i++) {
        const lz_spattern_prop_t *pp = &s->pattern_properties.items[i];
        int hit = matches(&pp->pattern, key, m->key_len, &at, ctx);
        if (hit < 0 || (hit && !validate(pp->schema, m->value, &at, ctx))) return false;
        matched |= hit;
    }
    const lz_snode_t *extra = s->additional_properties;
    if (matched || !extra) return true;
    if (extra->kind == LZ_SNODE_FALSE)
        return fail(ctx, path, "property '%.*s' is not allowed (additionalProperties is false)", (int)m->key_len, key);
    return validate(extra, m->value, &at, ctx);
}

static bool has_member(const lz_value_t *v, const lz_sname_t *name) {
    return lz__value_find_member(v, name->text, name->len) != NULL;
}

static bool check_dependents(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    for (size_t i = 0; i < s->dependent_required.len; i++) {
        const lz_sdepend_t *dep = &s->dependent_required.items[i];
        if (!has_member(v, &dep->name)) continue;
        for (size_t j = 0; j < dep->required.len; j++)
            if (!has_member(v, &dep->required.items[j]))
                return fail(ctx, path, "property '%s' requires property '%s'", dep->name.text,
                            dep->required.items[j].text);
    }
    for (size_t i = 0; i < s->dependent_schemas.len; i++) {
        const lz_sprop_t *dep = &s->dependent_schemas.items[i];
        if (has_member(v, &dep->name) && !validate(dep->schema, v, path, ctx)) return false;
    }
    return true;
}

static bool check_object(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    size_t n = v->u.object.len;
    if (n < s->min_properties)
        return fail(ctx, path, "object of %zu properties has fewer than minProperties %zu", n, s->min_properties);
    if (n > s->max_properties)
        return fail(ctx, path, "object of %zu properties has more than maxProperties %zu", n, s->max_properties);
    for (size_t i = 0; i < s->required.len; i++)
        if (!has_member(v, &s->required.items[i]))
            return fail(ctx, path, "missing required property '%s'", s->required.items[i].text);
    for (size_t i = 0; i < n; i++)
        if (!check_member(s, &v->u.object.members[i], path, ctx)) return false;
    return check_dependents(s, v, path, ctx);
}

/* ---- logic -------------------------------------------------------------- */

static bool check_any_of(const lz_snodes_t *any, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    for (size_t i = 0; i < any->len; i++) {
        if (quietly(any->items[i], v, path, ctx)) return true;
        if (ctx->aborted) return false;
    }
    return fail(ctx, path, "matches none of the anyOf schemas");
}

static bool check_one_of(const lz_snodes_t *one, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < one->len; i++) {
        bool ok = quietly(one->items[i], v, path, ctx);
        if (ctx->aborted) return false;
        if (ok && first != SIZE_MAX)
            return fail(ctx, path, "matches oneOf schemas %zu and %zu; it must match exactly one", first, i);
        if (ok) first = i;
    }
    return first != SIZE_MAX || fail(ctx, path, "matches none of the oneOf schemas");
}

static bool check_logic(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    for (size_t i = 0; i < s->all_of.len; i++)
        if (!validate(s->all_of.items[i], v, path, ctx)) return false;
    if (s->any_of.len && !check_any_of(&s->any_of, v, path, ctx)) return false;
    if (s->one_of.len && !check_one_of(&s->one_of, v, path, ctx)) return false;
    if (s->not_schema) {
        bool ok = quietly(s->not_schema, v, path, ctx);
        if (ctx->aborted) return false;
        if (ok) return fail(ctx, path, "must not match the not schema");
    }
    if (!s->if_schema) return true;
    bool cond = quietly(s->if_schema, v, path, ctx);
    if (ctx->aborted) return false;
    const lz_snode_t *branch = cond ? s->then_schema : s->else_schema;
    return !branch || validate(branch, v, path, ctx);
}

/* ---- the walk ----------------------------------------------------------- */

static bool check_keywords(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    if (s->ref && !validate(s->ref, v, path, ctx)) return false;
    if (s->has_type && !check_type(s, v, path, ctx)) return false;
    unsigned g = s->groups;
    if ((g & LZ_SG_GENERIC) && !check_generic(s, v, path, ctx)) return false;
    switch ((lz_value_type_t)v->type) {
    case LZ_VALUE_INT:
    case LZ_VALUE_DOUBLE:
        if ((g & LZ_SG_NUMBER) && !check_number(s, v, path, ctx)) return false;
        break;
    case LZ_VALUE_STRING:
        if ((g & LZ_SG_STRING) && !check_string(s, v, path, ctx)) return false;
        break;
    case LZ_VALUE_ARRAY:
        if ((g & LZ_SG_ARRAY) && !check_array(s, v, path, ctx)) return false;
        break;
    case LZ_VALUE_OBJECT:
        if ((g & LZ_SG_OBJECT) && !check_object(s, v, path, ctx)) return false;
        break;
    default:
        break;
    }
    return !(g & LZ_SG_LOGIC) || check_logic(s, v, path, ctx);
}

// pass_steps counts the steps one pass over v takes: one per value, and
// one per LZ_SCHEMA_BYTES_PER_STEP bytes of a string (as charge counts them).
static uint64_t pass_steps(const lz_value_t *v, int depth) {
    uint64_t n = 1;
    if (v->type == LZ_VALUE_STRING) return n + v->u.blob.len / LZ_SCHEMA_BYTES_PER_STEP;
    if (depth >= LZ_VALUE_MAX_DEPTH) return n;
    if (v->type == LZ_VALUE_ARRAY)
        for (size_t i = 0; i < v->u.array.len; i++) n += pass_steps(v->u.array.items[i], depth + 1);
    else if (v->type == LZ_VALUE_OBJECT)
        for (size_t i = 0; i < v->u.object.len; i++) n += pass_steps(v->u.object.members[i].value, depth + 1);
    return n;
}

// budget_spent answers, once LZ_SCHEMA_MAX_STEPS steps were taken, whether
// the validation must give up: the first time, the budget grows to
// LZ_SCHEMA_STEPS_PER_VALUE times the steps of one pass over the data
// (pass_steps) if that is more.
static LZ_COLD bool budget_spent(vctx_t *ctx) {
    if (!ctx->budget_grown) {
        ctx->budget_grown = true;
        uint64_t scaled = LZ_SCHEMA_STEPS_PER_VALUE * pass_steps(ctx->root, 0);
        if (scaled > ctx->max_steps) ctx->max_steps = scaled;
    }
    return ctx->steps > ctx->max_steps;
}

// give_up aborts a validation that spent its budget of steps, unless it
// was aborted already (abort_validation spends the budget).
static LZ_COLD bool give_up(vctx_t *ctx, const path_t *path) {
    if (ctx->aborted) return false;
    char reason[160];
    snprintf(reason, sizeof reason,
             "validation gave up after %" PRIu64 " steps (branches that recurse into the same value?)",
             ctx->max_steps);
    return abort_validation(ctx, path, LZ_EVALIDATION, reason);
}

static bool validate(const lz_snode_t *s, const lz_value_t *v, const path_t *path, vctx_t *ctx) {
    if (s->kind == LZ_SNODE_TRUE) return true;
    if (++ctx->steps > ctx->max_steps && budget_spent(ctx)) return give_up(ctx, path);
    if (s->kind == LZ_SNODE_FALSE) return fail(ctx, path, "not allowed here (the schema is false)");
    if (ctx->depth >= LZ_SCHEMA_MAX_DEPTH)
        return abort_validation(ctx, path, LZ_EVALIDATION,
                                "validation nested deeper than " LZ_SCHEMA_MAX_DEPTH_TEXT
                                " levels (a $ref that recurses without end?)");
    ctx->depth++;
    bool ok = check_keywords(s, v, path, ctx);
    ctx->depth--;
    return ok;
}

int lz_schema_validate(const lz_schema_t *schema, const lz_value_t *value) {
    if (!schema || !value) return lz__fail(LZ_EINVAL, "lz_schema_validate: NULL %s", !schema ? "schema" : "value");
    vctx_t ctx = {.limits = schema->limits, .max_steps = LZ_SCHEMA_MAX_STEPS, .root = value};
    path_t root = {NULL, NULL, 0};
    bool ok = validate(schema->root, value, &root, &ctx);
    pcre2_match_data_free(ctx.match);
    pcre2_match_context_free(ctx.grown);
    pcre2_jit_stack_free(ctx.jit_stack);
    if (ok) return LZ_OK;
    return ctx.aborted ? ctx.error : LZ_EVALIDATION;
}
