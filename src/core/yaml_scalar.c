/* YAML 1.1 scalars as PyYAML's safe_load reads them, the patterns copied
 * from its resolver (yaml/resolver.py, PyYAML 6.0) into POSIX extended
 * expressions and the values built as its constructor (yaml/constructor.py)
 * builds them. Text it would build a value from differently is refused. */
#include "core/yaml_scalar.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

// PyYAML's implicit resolvers, in its order: a plain scalar takes the type
// of the first whose pattern matches its whole text, a string if none does.
// refusal: safe_load has no constructor for what the pattern resolves to.
static const struct {
    lz_yaml_type_t type;
    const char *pattern;
    const char *refusal;
} implicit[] = {
    {LZ_YAML_BOOL, "^(yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$", NULL},
    {LZ_YAML_FLOAT,
     "^([-+]?[0-9][0-9_]*\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9][0-9_]*([eE][-+][0-9]+)?"
     "|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN))$",
     NULL},
    {LZ_YAML_INT,
     "^([-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+)$",
     NULL},
    {LZ_YAML_REFUSED, "^<<$", "YAML's merge key <<, not a value"},
    {LZ_YAML_NULL, "^(~|null|Null|NULL)?$", NULL},
    {LZ_YAML_DATE,
     "^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9][0-9]?-[0-9][0-9]?([Tt]|[ \t]+)[0-9][0-9]?:[0-9]{2}:[0-9]{2}"
     "(\\.[0-9]*)?([ \t]*(Z|[-+][0-9][0-9]?(:[0-9]{2})?))?)$",
     NULL},
    {LZ_YAML_REFUSED, "^=$", "YAML's value key =, not a value"},
};

#define IMPLICIT_COUNT (sizeof implicit / sizeof implicit[0])

struct lz_yaml_resolver {
    regex_t compiled[IMPLICIT_COUNT];
};

lz_yaml_resolver_t *lz__yaml_resolver_new(void) {
    lz_yaml_resolver_t *resolver = malloc(sizeof *resolver);
    size_t n = 0;
    while (resolver && n < IMPLICIT_COUNT && regcomp(&resolver->compiled[n], implicit[n].pattern,
                                                     REG_EXTENDED | REG_NOSUB) == 0)
        n++;
    if (resolver && n == IMPLICIT_COUNT) return resolver;
    while (n > 0) regfree(&resolver->compiled[--n]);
    free(resolver);
    return lz__fail_null(LZ_ENOMEM, "config: out of memory"); // the patterns are valid: only memory lacks
}

void lz__yaml_resolver_destroy(lz_yaml_resolver_t **resolver_p) {
    if (!resolver_p || !*resolver_p) return;
    for (size_t n = 0; n < IMPLICIT_COUNT; n++) regfree(&(*resolver_p)->compiled[n]);
    free(*resolver_p);
    *resolver_p = NULL;
}

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

static uint64_t digit_value(char c) {
    return c >= '0' && c <= '9' ? (uint64_t)(c - '0') : (uint64_t)((c | 0x20) - 'a' + 10);
}

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
static void resolve_plain(const lz_yaml_resolver_t *resolver, const char *text, lz_yaml_scalar_t *out) {
    size_t n = 0;
    while (n < IMPLICIT_COUNT && regexec(&resolver->compiled[n], text, 0, NULL, 0) != 0) n++;
    out->type = n < IMPLICIT_COUNT ? implicit[n].type : LZ_YAML_STRING;
    if (out->type == LZ_YAML_REFUSED) snprintf(out->what, sizeof out->what, "%s", implicit[n].refusal);
    if (out->type == LZ_YAML_BOOL) bool_build(text, &out->i);
    if (out->type == LZ_YAML_INT) int_build(text, out);
}

// resolve_tagged builds text as safe_load builds a scalar with tag, one of
// the core tags (yaml.org's) or another. Where safe_load would call
// Python's int() on text the int pattern does not match (!!int " 5",
// !!int "1:70"), the text is refused rather than read some other way.
static void resolve_tagged(const lz_yaml_resolver_t *resolver, const char *text, const char *tag,
                           lz_yaml_scalar_t *out) {
    const char *core = strncmp(tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) == 0 ? tag + strlen(YAML_TAG_PREFIX)
                                                                                    : "";
    if (strcmp(core, "str") == 0) {
        out->type = LZ_YAML_STRING;
    } else if (strcmp(core, "null") == 0) {
        out->type = LZ_YAML_NULL; // whatever the text: "!!null x" is null too
    } else if (strcmp(core, "float") == 0) {
        out->type = LZ_YAML_FLOAT;
    } else if (strcmp(core, "bool") == 0) {
        out->type = bool_build(text, &out->i) ? LZ_YAML_BOOL : LZ_YAML_REFUSED;
        if (out->type == LZ_YAML_REFUSED)
            snprintf(out->what, sizeof out->what, "not a boolean for its !!bool tag (yes, no, true, false, on, off)");
    } else if (strcmp(core, "int") == 0) {
        resolve_plain(resolver, text, out);
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

void lz__yaml_scalar_read(const lz_yaml_resolver_t *resolver, const char *text, const char *tag, bool plain,
                          lz_yaml_scalar_t *out) {
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
    if (tag) resolve_tagged(resolver, text, tag, out);
    else if (plain) resolve_plain(resolver, text, out);
    if (out->type != LZ_YAML_REFUSED) snprintf(out->what, sizeof out->what, "%s", type_name(out->type));
}
