/* YAML 1.1 scalars as PyYAML's safe_load reads them, the patterns of its
 * resolver (yaml/resolver.py, PyYAML 6.0) matched by hand and the values
 * built as its constructor (yaml/constructor.py) builds them. Text it
 * would build a value from differently is refused. Nothing here allocates,
 * so nothing can fail: glibc's regex functions allocate, and out of memory
 * its regcomp (2.36) frees a block twice, and a failed regexec looks like
 * no match (010 would be read as text, then as 10, not 8). */
#include "core/yaml_scalar.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/hex.h"

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"
#define DIGITS "0123456789"

static bool digit(char c) { return c >= '0' && c <= '9'; }

// skip passes the characters of set at p, as a pattern's [set]* does.
static const char *skip(const char *p, const char *set) { return p + strspn(p, set); }

// sign passes [-+]?.
static const char *sign(const char *p) { return p + (*p == '-' || *p == '+'); }

// digits passes exactly n digits, NULL when they are not there.
static const char *digits(const char *p, int n) {
    for (int i = 0; i < n; i++)
        if (!digit(p[i])) return NULL;
    return p + n;
}

// one_or_two passes [0-9][0-9]?, NULL without a first digit.
static const char *one_or_two(const char *p) { return !digit(*p) ? NULL : p + 1 + digit(p[1]); }

// some passes [set]+, NULL without one.
static const char *some(const char *p, const char *set) { return *p && strchr(set, *p) ? skip(p, set) : NULL; }

// one_of tells whether text is one of words (NULL-terminated).
static bool one_of(const char *text, const char *const *words) {
    for (; *words; words++)
        if (strcmp(text, *words) == 0) return true;
    return false;
}

// sexagesimal passes (:[0-5]?[0-9])+, NULL without one part. Taking two
// digits when they are there is the only way a match can go on: a part is
// followed by ':', '.' or the end, never by a digit.
static const char *sexagesimal(const char *p) {
    const char *start = p;
    while (*p == ':' && digit(p[1])) p += p[1] <= '5' && digit(p[2]) ? 3 : 2;
    return p > start ? p : NULL;
}

// exponent passes ([eE][-+][0-9]+)?.
static const char *exponent(const char *p) {
    bool there = (*p == 'e' || *p == 'E') && (p[1] == '-' || p[1] == '+') && digit(p[2]);
    return there ? skip(p + 2, DIGITS) : p;
}

// ends: p, where a pattern's last part ended, is the end of the text ($).
static bool ends(const char *p) { return p && !*p; }

static bool bool_match(const char *text) {
    static const char *const words[] = {"yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false",
                                        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", NULL};
    return one_of(text, words);
}

//   [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?  |  \.[0-9][0-9_]*([eE][-+][0-9]+)?
// | [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*  |  [-+]?\.(inf|Inf|INF)  |  \.(nan|NaN|NAN)
static bool float_match(const char *text) {
    static const char *const infinities[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *p = sign(text);
    if (digit(*p)) {
        p = skip(p, DIGITS "_");
        const char *parts = sexagesimal(p);
        if (parts) return *parts == '.' && ends(skip(parts + 1, DIGITS "_"));
        return *p == '.' && ends(exponent(skip(p + 1, DIGITS "_")));
    }
    if (*text == '.' && digit(text[1])) return ends(exponent(skip(text + 1, DIGITS "_")));
    return one_of(p, infinities) || one_of(text, nans);
}

//   [-+]?0b[0-1_]+  |  [-+]?0[0-7_]+  |  [-+]?(0|[1-9][0-9_]*)  |  [-+]?0x[0-9a-fA-F_]+
// | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+
static bool int_match(const char *text) {
    const char *p = sign(text);
    if (p[0] == '0' && p[1] == 'b') return ends(some(p + 2, "01_"));
    if (p[0] == '0' && p[1] == 'x') return ends(some(p + 2, DIGITS "abcdefABCDEF_"));
    if (p[0] == '0') return !p[1] || ends(some(p + 1, "01234567_"));
    if (!digit(*p)) return false;
    p = skip(p, DIGITS "_");
    return !*p || ends(sexagesimal(p));
}

static bool merge_match(const char *text) { return strcmp(text, "<<") == 0; }

static bool null_match(const char *text) {
    static const char *const words[] = {"", "~", "null", "Null", "NULL", NULL};
    return one_of(text, words);
}

// [ \t]*(Z|[-+][0-9][0-9]?(:[0-9]{2})?), a time's zone; NULL when it is not one.
static const char *time_zone(const char *p) {
    p = skip(p, " \t");
    if (*p == 'Z') return p + 1;
    p = *p == '-' || *p == '+' ? one_or_two(p + 1) : NULL;
    return p && *p == ':' && digits(p + 1, 2) ? p + 3 : p;
}

//   [0-9]{4}-[0-9]{2}-[0-9]{2}
// | [0-9]{4}-[0-9][0-9]?-[0-9][0-9]?([Tt]|[ \t]+)[0-9][0-9]?:[0-9]{2}:[0-9]{2}(\.[0-9]*)?
//     ([ \t]*(Z|[-+][0-9][0-9]?(:[0-9]{2})?))?
static bool date_match(const char *text) {
    const char *p = digits(text, 4);
    p = p && *p == '-' ? one_or_two(p + 1) : NULL;
    p = p && *p == '-' ? one_or_two(p + 1) : NULL;
    if (!p) return false;
    if (!*p) return p - text == 10; // the date alone takes two digits each
    p = *p == 'T' || *p == 't' ? p + 1 : *p == ' ' || *p == '\t' ? skip(p, " \t") : NULL;
    p = p ? one_or_two(p) : NULL;
    p = p && *p == ':' ? digits(p + 1, 2) : NULL;
    p = p && *p == ':' ? digits(p + 1, 2) : NULL;
    if (p && *p == '.') p = skip(p + 1, DIGITS);
    return p && (!*p || ends(time_zone(p)));
}

static bool value_match(const char *text) { return strcmp(text, "=") == 0; }

// PyYAML's implicit resolvers, in its order: a plain scalar takes the type
// of the first whose pattern matches its whole text, a string if none does.
// refusal: safe_load has no constructor for what the pattern resolves to.
static const struct {
    lz_yaml_type_t type;
    bool (*match)(const char *text);
    const char *refusal;
} implicit[] = {
    {LZ_YAML_BOOL, bool_match, NULL},
    {LZ_YAML_FLOAT, float_match, NULL},
    {LZ_YAML_INT, int_match, NULL},
    {LZ_YAML_REFUSED, merge_match, "YAML's merge key <<, not a value"},
    {LZ_YAML_NULL, null_match, NULL},
    {LZ_YAML_DATE, date_match, NULL},
    {LZ_YAML_REFUSED, value_match, "YAML's value key =, not a value"},
};

#define IMPLICIT_COUNT (sizeof implicit / sizeof implicit[0])

void lz__yaml_tag_refusal(const char *tag, char *why, size_t size) {
    bool core = strncmp(tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) == 0;
    snprintf(why, size, "unsupported YAML tag %s%.40s", core ? "!!" : "", core ? tag + strlen(YAML_TAG_PREFIX) : tag);
}

// mul_add sets *value to *value * base + digit; false when that overflows.
static bool mul_add(uint64_t *value, uint64_t base, uint64_t digit) {
    if (*value > (UINT64_MAX - digit) / base) return false;
    *value = *value * base + digit;
    return true;
}

static uint64_t digit_value(char c) { return (uint64_t)lz__hex_digit(c); } // a digit: the pattern matched

// int_build builds text, which the int pattern matched, as PyYAML's
// construct_yaml_int does: '_' dropped, 0b binary, 0x hex, another leading
// 0 octal, parts joined by ':' base 60 (1:30 is 90), else decimal.
static void int_build(const char *text, lz_yaml_scalar_t *out) {
    const char *p = text + (*text == '-' || *text == '+');
    int base = strchr(p, ':') ? 60 : p[0] != '0' ? 10 : p[1] == 'b' ? 2 : p[1] == 'x' ? 16 : 8;
    if (base == 2 || base == 16) p += 2;
    uint64_t total = 0, part = 0;
    bool fits = true, digits = false;
    for (; *p; p++) {
        if (*p == '_') continue;
        if (*p == ':') {
            fits = fits && mul_add(&total, 60, part);
            part = 0;
            continue;
        }
        fits = fits && mul_add(&part, base == 60 ? 10 : (uint64_t)base, digit_value(*p));
        digits = true;
    }
    if (base == 60) fits = fits && mul_add(&total, 60, part);
    else total = part;
    if (!digits) { // "0b_": Python's int() fails on the empty rest
        out->type = LZ_YAML_REFUSED;
        snprintf(out->what, sizeof out->what, "no digits after its 0b or 0x, which safe_load refuses");
        return;
    }
    bool negative = *text == '-';
    out->type = LZ_YAML_INT;
    out->too_big = !fits || total > (uint64_t)INT64_MAX + negative;
    out->i = out->too_big ? 0 : negative ? (int64_t)(0 - total) : (int64_t)total;
}

// A float's digits read as a whole number: those left of its point, and
// whether one right of it is not 0.
typedef struct {
    uint64_t value;  // the digits kept so far
    bool overflow;   // value lost a digit it needed
    bool fraction;   // a digit dropped (past the point) was not 0
} whole_t;

// whole_digit takes one more digit of the number, kept when it is left of
// the point (keep > 0, counting down) and only checked for 0 past it.
static void whole_digit(whole_t *w, char c, int64_t *keep) {
    if (*keep > 0) {
        if (!mul_add(&w->value, 10, digit_value(c))) w->overflow = true;
        (*keep)--;
    } else if (c != '0') {
        w->fraction = true;
    }
}

// exponent_value reads [eE][-+]?[0-9]+ at p (a float's exponent, as
// Python's float() takes it), clamped far past any integer a key takes;
// NULL when what is at p is not one.
static const char *exponent_value(const char *p, int64_t *exp) {
    *exp = 0;
    if (*p != 'e' && *p != 'E') return p;
    bool negative = p[1] == '-';
    p += 1 + (p[1] == '-' || p[1] == '+');
    if (!digit(*p)) return NULL;
    for (; digit(*p); p++)
        if (*exp < 1000) *exp = *exp * 10 + (*p - '0');
    if (negative) *exp = -*exp;
    return p;
}

// sexagesimal_whole reads a base-60 float (1:30.0, or !!float 1:30): whole
// when the last part's fraction is all zeros (or absent), the parts before
// its point then read as construct_yaml_int reads a base-60 integer.
static void sexagesimal_whole(const char *text, const char *point, lz_yaml_scalar_t *out) {
    char head[64];
    size_t n = (size_t)(point - text);
    const char *digits_start = sign(text);
    if ((*point != '.' && *point != '\0') || n >= sizeof head ||
        strspn(digits_start, DIGITS "_:") != (size_t)(point - digits_start))
        return;
    if (*point == '.' && point[1 + strspn(point + 1, "0_")] != '\0') return;
    memcpy(head, text, n);
    head[n] = '\0';
    lz_yaml_scalar_t whole;
    int_build(head, &whole);
    out->whole = whole.type == LZ_YAML_INT;
    out->i = whole.i;
    out->too_big = whole.too_big;
}

// float_build reads a float's text as construct_yaml_float does, far enough
// to tell whether it is a whole number (5.0, 1.0e+3, 1_0.0, 1:30.0) and
// which: pydantic takes such a float for an integer, and 0.0 and 1.0 for a
// boolean. The decimal text is read exactly, so a fraction too small for a
// double to keep (1.00000000000000001) is a fraction here, and refused
// where Python would round it away. Infinities and NaN are not whole.
static void float_build(const char *text, lz_yaml_scalar_t *out) {
    out->type = LZ_YAML_FLOAT;
    const char *p = sign(text);
    const char *point = p + strcspn(p, ".eE");
    if (strchr(text, ':')) {
        sexagesimal_whole(text, point, out);
        return;
    }
    const char *mantissa_end = p + strspn(p, DIGITS "_");
    if (*mantissa_end == '.') mantissa_end += 1 + strspn(mantissa_end + 1, DIGITS "_");
    int64_t exp;
    const char *end = exponent_value(mantissa_end, &exp);
    bool any_digit = strcspn(p, DIGITS) < (size_t)(mantissa_end - p);
    if (!end || *end || !any_digit) return; // .inf, .nan, or not a number Python's float() reads
    int64_t keep = exp;
    for (const char *q = p; q < point; q++) keep += digit(*q);
    whole_t w = {0};
    for (const char *q = p; q < mantissa_end; q++)
        if (digit(*q)) whole_digit(&w, *q, &keep);
    if (w.fraction) return;
    for (; keep > 0 && !w.overflow; keep--) // 1.5e+3: zeros past the last digit
        if (!mul_add(&w.value, 10, 0)) w.overflow = true;
    bool negative = *text == '-';
    out->whole = true;
    out->too_big = w.overflow || w.value > (uint64_t)INT64_MAX + negative;
    out->i = out->too_big ? 0 : negative ? (int64_t)(0 - w.value) : (int64_t)w.value;
}

// bool_build reads text as construct_yaml_bool does (its words in any case);
// false when it is none of them.
static bool bool_build(const char *text, int64_t *out) {
    static const char *const words[] = {"no", "yes", "false", "true", "off", "on"}; // odd index: true
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(text, words[i]) != 0) continue;
        *out = (int64_t)(i % 2);
        return true;
    }
    return false;
}

// resolve_plain reads text as safe_load reads a plain scalar.
static void resolve_plain(const char *text, lz_yaml_scalar_t *out) {
    size_t n = 0;
    while (n < IMPLICIT_COUNT && !implicit[n].match(text)) n++;
    out->type = n < IMPLICIT_COUNT ? implicit[n].type : LZ_YAML_STRING;
    if (out->type == LZ_YAML_REFUSED) snprintf(out->what, sizeof out->what, "%s", implicit[n].refusal);
    if (out->type == LZ_YAML_BOOL) bool_build(text, &out->i);
    if (out->type == LZ_YAML_INT) int_build(text, out);
    if (out->type == LZ_YAML_FLOAT) float_build(text, out);
}

// resolve_tagged builds text as safe_load builds a scalar with tag, one of
// the core tags (yaml.org's) or another. Where safe_load would call
// Python's int() on text the int pattern does not match (!!int " 5",
// !!int "1:70"), the text is refused rather than read some other way.
static void resolve_tagged(const char *text, const char *tag, lz_yaml_scalar_t *out) {
    const char *core = strncmp(tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) == 0 ? tag + strlen(YAML_TAG_PREFIX)
                                                                                    : "";
    if (strcmp(core, "str") == 0) {
        out->type = LZ_YAML_STRING;
    } else if (strcmp(core, "null") == 0) {
        out->type = LZ_YAML_NULL; // whatever the text: "!!null x" is null too
    } else if (strcmp(core, "float") == 0) {
        float_build(text, out);
    } else if (strcmp(core, "bool") == 0) {
        out->type = bool_build(text, &out->i) ? LZ_YAML_BOOL : LZ_YAML_REFUSED;
        if (out->type == LZ_YAML_REFUSED)
            snprintf(out->what, sizeof out->what, "not a boolean for its !!bool tag (yes, no, true, false, on, off)");
    } else if (strcmp(core, "int") == 0) {
        resolve_plain(text, out);
        if (out->type != LZ_YAML_INT) {
            out->type = LZ_YAML_REFUSED;
            snprintf(out->what, sizeof out->what, "not a YAML 1.1 integer for its !!int tag");
        }
    } else {
        out->type = LZ_YAML_REFUSED; // a tag safe_load refuses, or builds what no key takes (!!binary)
        lz__yaml_tag_refusal(tag, out->what, sizeof out->what);
    }
}

static const char *type_name(lz_yaml_type_t type) {
    switch (type) {
    case LZ_YAML_NULL: return "null";
    case LZ_YAML_BOOL: return "a boolean";
    case LZ_YAML_INT: return "an integer";
    case LZ_YAML_FLOAT: return "a float";
    case LZ_YAML_DATE: return "a date";
    default: return "a string";
    }
}

void lz__yaml_scalar_read(const char *text, const char *tag, bool plain, lz_yaml_scalar_t *out) {
    *out = (lz_yaml_scalar_t){.type = LZ_YAML_STRING};
    // PyYAML resolves the text of a scalar tagged "!" as if it were plain,
    // quoted or not (! "5" is 5), but its patterns' $ also matches before a
    // last line break: text ending in one would be matched as one thing and
    // built as another.
    if (tag && strcmp(tag, "!") == 0) {
        size_t len = strlen(text);
        if (len > 0 && text[len - 1] == '\n') {
            out->type = LZ_YAML_REFUSED;
            snprintf(out->what, sizeof out->what, "the non-specific tag ! on text ending in a line break");
            return;
        }
        tag = NULL;
        plain = true;
    }
    if (tag) resolve_tagged(text, tag, out);
    else if (plain) resolve_plain(text, out);
    if (out->type != LZ_YAML_REFUSED) snprintf(out->what, sizeof out->what, "%s", type_name(out->type));
}
