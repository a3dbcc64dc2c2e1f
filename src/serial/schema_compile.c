/* JSON Schema compilation: a schema document (a value) becomes a tree of
 * lz_snode_t (serial/schema.h) once, so validation reads no keyword text.
 * Every keyword's value is checked here: a malformed schema is refused
 * with the keyword's JSON pointer instead of misbehaving later.
 *
 * $ref holds JSON pointers into the same document. Each subschema is
 * compiled once, found again by the address of its value in the document
 * (a small hash map), so two paths to one subschema share a node and a
 * recursive schema becomes a cycle in the graph. A $ref whose target has
 * not been compiled yet gets an empty node that is filled from a work list
 * after the walk, so reference chains never deepen the C stack. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hex.h"
#include "serial/schema.h"
#include "serial/utf8.h"

// Deeper schema documents are refused: compiling recurses along them.
#define LZ_SCHEMA_MAX_NESTING 128

typedef struct pending {
    lz_snode_t *node;
    const lz_value_t *source;
    char *pointer; // the $ref's pointer, for error messages
} pending_t;

typedef struct seen {
    const lz_value_t *source;
    lz_snode_t *node;
} seen_t;

typedef struct compiler {
    lz_schema_t *schema;
    const lz_value_t *root;
    // draft-04 to draft-07 documents ($schema says so): a $ref there
    // replaces its siblings instead of joining them.
    bool legacy;
    int nesting;
    int in_resource;              // inside subschemas with an $id of their own
    pcre2_compile_context *regex; // made on the first pattern

    struct {
        seen_t *slots;
        size_t mask, len;
    } seen; // source -> node
    struct {
        pending_t *items;
        size_t len, cap;
    } pending;
    struct {
        char *text;
        size_t len, cap;
    } pointer; // where we are, escaped
} compiler_t;

/* ---- errors and the current JSON pointer ------------------------------ */

static bool fail(compiler_t *c, const char *format, ...) __attribute__((format(printf, 2, 3)));
static bool fail(compiler_t *c, const char *format, ...) {
    char detail[LZ_DETAIL_MAX];
    va_list args;
    va_start(args, format);
    lz__vformat(detail, sizeof detail, format, args);
    va_end(args);
    // The pointer takes half the detail at most, as a validation's path
    // does: one as deep as the nesting limit (or with long keys) filled it
    // whole, and the detail never said what was wrong.
    const char *at = c->pointer.text ? c->pointer.text : "";
    int shown = (int)lz__utf8_prefix(at, strnlen(at, LZ_DETAIL_MAX / 2));
    lz__fail(LZ_EINVAL, "schema #%.*s: %s", shown, at, detail);
    return false;
}

static bool out_of_memory(void) {
    lz__fail(LZ_ENOMEM, "schema: out of memory");
    return false;
}

static bool grow(void **items, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need) n *= 2;
    void *p = realloc(*items, n * size);
    if (!p) return out_of_memory();
    *items = p;
    *cap = n;
    return true;
}

// push appends "/" and key (len bytes, escaped as RFC 6901 says) to the
// current pointer and returns the length to pop back to; SIZE_MAX when out
// of memory.
static size_t push(compiler_t *c, const char *key, size_t len) {
    size_t mark = c->pointer.len;
    if (!grow((void **)&c->pointer.text, &c->pointer.cap, mark + 2 * len + 2, 1)) return SIZE_MAX;
    char *at = c->pointer.text + mark;
    *at++ = '/';
    for (size_t i = 0; i < len; i++) {
        if (key[i] == '~' || key[i] == '/') {
            *at++ = '~';
            *at++ = key[i] == '~' ? '0' : '1';
        } else {
            *at++ = key[i];
        }
    }
    *at = '\0';
    c->pointer.len = (size_t)(at - c->pointer.text);
    return mark;
}

static size_t push_index(compiler_t *c, size_t index) {
    char text[24];
    return push(c, text, (size_t)snprintf(text, sizeof text, "%zu", index));
}

static void pop(compiler_t *c, size_t mark) {
    c->pointer.len = mark;
    c->pointer.text[mark] = '\0';
}

// A JSON type name for messages about the schema itself.
static const char *kind(const lz_value_t *v) {
    switch (lz_value_type(v)) {
    case LZ_VALUE_NULL:
        return "null";
    case LZ_VALUE_BOOL:
        return "boolean";
    case LZ_VALUE_INT:
    case LZ_VALUE_DOUBLE:
        return "number";
    case LZ_VALUE_STRING:
        return "string";
    case LZ_VALUE_BYTES:
        return "bytes";
    case LZ_VALUE_ARRAY:
        return "array";
    case LZ_VALUE_OBJECT:
        return "object";
    }
    return "value";
}

/* ---- nodes and the source -> node map ---------------------------------- */

static size_t hash_pointer(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return (size_t)(x ^ (x >> 33));
}

static bool seen_grow(compiler_t *c) {
    size_t cap = c->seen.slots ? (c->seen.mask + 1) * 2 : 64;
    seen_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return out_of_memory();
    for (size_t i = 0; c->seen.slots && i <= c->seen.mask; i++) {
        if (!c->seen.slots[i].source) continue;
        size_t at = hash_pointer(c->seen.slots[i].source) & (cap - 1);
        while (slots[at].source) at = (at + 1) & (cap - 1);
        slots[at] = c->seen.slots[i];
    }
    free(c->seen.slots);
    c->seen.slots = slots;
    c->seen.mask = cap - 1;
    return true;
}

static seen_t *seen_slot(const compiler_t *c, const lz_value_t *source) {
    size_t at = hash_pointer(source) & c->seen.mask;
    while (c->seen.slots[at].source && c->seen.slots[at].source != source) at = (at + 1) & c->seen.mask;
    return &c->seen.slots[at];
}

static lz_snode_t *seen_find(const compiler_t *c, const lz_value_t *source) {
    return c->seen.slots ? seen_slot(c, source)->node : NULL;
}

// new_node makes a node for source (NULL: not findable again) owned by the
// schema, with every bound at its "absent" value.
static lz_snode_t *new_node(compiler_t *c, const lz_value_t *source, unsigned char node_kind) {
    lz_schema_t *s = c->schema;
    if (!grow((void **)&s->nodes, &s->cap, s->len + 1, sizeof *s->nodes)) return NULL;
    if (source && 2 * (c->seen.len + 1) > (c->seen.slots ? c->seen.mask + 1 : 0) && !seen_grow(c)) return NULL;
    lz_snode_t *node = calloc(1, sizeof *node);
    if (!node) return out_of_memory(), NULL;
    node->kind = node_kind;
    node->max_length = node->max_items = node->max_properties = node->max_contains = SIZE_MAX;
    node->min_contains = 1;
    s->nodes[s->len++] = node;
    if (source) {
        seen_t *slot = seen_slot(c, source);
        slot->source = source;
        slot->node = node;
        c->seen.len++;
    }
    return node;
}

static void free_names(lz_snames_t *names) {
    for (size_t i = 0; i < names->len; i++) free(names->items[i].text);
    free(names->items);
}

static void free_pattern(lz_spattern_t *pattern) {
    pcre2_code_free(pattern->code);
    free(pattern->source);
}

static void free_node(lz_snode_t *n) {
    lz_value_destroy(&n->enum_values);
    lz_value_destroy(&n->const_value);
    free_pattern(&n->pattern);
    free(n->prefix_items.items);
    for (size_t i = 0; i < n->properties.len; i++) free(n->properties.items[i].name.text);
    free(n->properties.items);
    for (size_t i = 0; i < n->pattern_properties.len; i++) free_pattern(&n->pattern_properties.items[i].pattern);
    free(n->pattern_properties.items);
    free_names(&n->required);
    for (size_t i = 0; i < n->dependent_required.len; i++) {
        free(n->dependent_required.items[i].name.text);
        free_names(&n->dependent_required.items[i].required);
    }
    free(n->dependent_required.items);
    for (size_t i = 0; i < n->dependent_schemas.len; i++) free(n->dependent_schemas.items[i].name.text);
    free(n->dependent_schemas.items);
    free(n->all_of.items);
    free(n->any_of.items);
    free(n->one_of.items);
    free(n);
}

/* ---- keyword values ----------------------------------------------------- */

static bool compile_schema(compiler_t *c, const lz_value_t *v, lz_snode_t **out);

static bool copy_name(const char *text, size_t len, lz_sname_t *out) {
    if (!(out->text = malloc(len + 1))) return out_of_memory();
    memcpy(out->text, text, len);
    out->text[len] = '\0';
    out->len = len;
    return true;
}

static bool get_number(compiler_t *c, const char *keyword, const lz_value_t *v, lz_snum_t *out) {
    if (v->type == LZ_VALUE_INT) {
        *out = (lz_snum_t){.is_int = true, .i = v->u.i, .d = (double)v->u.i};
        return true;
    }
    if (v->type != LZ_VALUE_DOUBLE || !isfinite(v->u.d))
        return fail(c, "%s must be a number, got %s", keyword, kind(v));
    *out = (lz_snum_t){.is_int = false, .d = v->u.d};
    return true;
}

// get_count reads a non-negative integer; 2.0 counts as 2, as the
// specification's integers are mathematical.
static bool get_count(compiler_t *c, const char *keyword, const lz_value_t *v, size_t *out) {
    if (v->type == LZ_VALUE_INT && v->u.i >= 0) {
        *out = (size_t)v->u.i;
        return true;
    }
    if (v->type == LZ_VALUE_DOUBLE && v->u.d >= 0 && v->u.d < 0x1p63 && v->u.d == trunc(v->u.d)) {
        *out = (size_t)v->u.d;
        return true;
    }
    return fail(c, "%s must be a non-negative integer, got %s", keyword, kind(v));
}

static bool get_string(compiler_t *c, const char *keyword, const lz_value_t *v) {
    return v->type == LZ_VALUE_STRING || fail(c, "%s must be a string, got %s", keyword, kind(v));
}

// get_names reads an array of distinct strings (required, dependentRequired).
// A name ends at a "\u0000", as an object key does when the JSON reader
// reads it: {"a\u0000b": 1} has a member "a", which required ["a\u0000b"]
// then names, as properties {"a\u0000b": ...} does.
static bool get_names(compiler_t *c, const char *keyword, const lz_value_t *v, lz_snames_t *out) {
    if (v->type != LZ_VALUE_ARRAY) return fail(c, "%s must be an array of strings, got %s", keyword, kind(v));
    size_t n = v->u.array.len;
    if (n && !(out->items = calloc(n, sizeof *out->items))) return out_of_memory();
    for (size_t i = 0; i < n; i++) {
        const lz_value_t *name = v->u.array.items[i];
        if (name->type != LZ_VALUE_STRING)
            return fail(c, "%s must be an array of strings, item %zu is %s", keyword, i, kind(name));
        const char *text = name->u.blob.data;
        if (!copy_name(text, strnlen(text, name->u.blob.len), &out->items[out->len++])) return false;
    }
    return true;
}

// check_schema compiles v for its errors alone: a keyword the document has
// but that does not apply is still checked, its node linked nowhere.
static bool check_schema(compiler_t *c, const lz_value_t *v) {
    lz_snode_t *unused;
    return compile_schema(c, v, &unused);
}

// get_schemas compiles a non-empty array of schemas (allOf, anyOf, oneOf,
// prefixItems, draft-07 items).
static bool get_schemas(compiler_t *c, const char *keyword, const lz_value_t *v, lz_snodes_t *out) {
    if (v->type != LZ_VALUE_ARRAY || v->u.array.len == 0)
        return fail(c, "%s must be a non-empty array of schemas", keyword);
    if (!(out->items = calloc(v->u.array.len, sizeof *out->items))) return out_of_memory();
    for (size_t i = 0; i < v->u.array.len; i++) {
        size_t mark = push_index(c, i);
        if (mark == SIZE_MAX) return false;
        bool ok = compile_schema(c, v->u.array.items[i], &out->items[i]);
        pop(c, mark);
        if (!ok) return false;
        out->len++;
    }
    return true;
}

// get_pattern compiles a regular expression once, with PCRE2: UTF-8
// aware, "$" only at the very end (as in ECMA-262, where it does not match
// before a final newline), ECMA-262's \uXXXX, \u{...}, two-digit \xXX and
// empty classes ([] matches nothing, [^] anything), invalid UTF-8 in a
// subject simply not matching. JIT where the platform has it; the
// interpreter otherwise.
static bool get_pattern(compiler_t *c, const char *source, size_t len, lz_spattern_t *out) {
    if (!c->regex) {
        if (!(c->regex = pcre2_compile_context_create(NULL))) return out_of_memory();
        pcre2_set_compile_extra_options(c->regex, PCRE2_EXTRA_ALT_BSUX);
        if (!(c->schema->limits = pcre2_match_context_create(NULL))) return out_of_memory();
        pcre2_set_match_limit(c->schema->limits, LZ_SCHEMA_MATCH_LIMIT);
    }
    int code;
    PCRE2_SIZE offset;
    uint32_t options =
        PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_BSUX | PCRE2_ALLOW_EMPTY_CLASS;
    out->code = pcre2_compile((PCRE2_SPTR)source, len, options, &code, &offset, c->regex);
    if (!out->code && code == PCRE2_ERROR_HEAP_FAILED) return out_of_memory();
    if (!out->code) {
        PCRE2_UCHAR message[160];
        pcre2_get_error_message(code, message, sizeof message);
        return fail(c, "bad regular expression \"%s\": %s at offset %zu", source, (const char *)message,
                    (size_t)offset);
    }
    pcre2_jit_compile(out->code, PCRE2_JIT_COMPLETE);
    if (!(out->source = strdup(source))) return out_of_memory();
    return true;
}

static int compare_props(const void *a, const void *b) {
    const lz_sname_t *x = &((const lz_sprop_t *)a)->name, *y = &((const lz_sprop_t *)b)->name;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->text, y->text, x->len);
}

// get_props compiles an object of schemas by member name (properties,
// dependentSchemas), appending to what *items already holds.
static bool get_props(compiler_t *c, const char *keyword, const lz_value_t *v, lz_sprop_t **items, size_t *len) {
    if (v->type != LZ_VALUE_OBJECT) return fail(c, "%s must be an object of schemas, got %s", keyword, kind(v));
    lz_sprop_t *grown = realloc(*items, (*len + v->u.object.len + 1) * sizeof *grown);
    if (!grown) return out_of_memory();
    *items = grown;
    for (size_t i = 0; i < v->u.object.len; i++) {
        const lz_member_t *m = &v->u.object.members[i];
        lz_sprop_t *prop = &grown[*len];
        if (!copy_name(lz__member_key(m), m->key_len, &prop->name)) return false;
        (*len)++;
        size_t mark = push(c, lz__member_key(m), m->key_len);
        if (mark == SIZE_MAX) return false;
        bool ok = compile_schema(c, m->value, &prop->schema);
        pop(c, mark);
        if (!ok) return false;
    }
    return true;
}

/* ---- keywords ------------------------------------------------------------ */

// Each keyword has a compiler, found by name in the table at the end: v is
// the keyword's value, parent the schema object holding it. The generic
// compilers (a count, a bound, a subschema, a list of them) store into the
// node's field at kw->field, so that one function serves many keywords.
typedef struct keyword keyword_t;
typedef bool (*keyword_fn)(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                           const keyword_t *kw);
struct keyword {
    const char *name;
    keyword_fn fn;
    unsigned group; // LZ_SG_* the keyword belongs to
    size_t field;   // offsetof the node's field, for the generic compilers
    unsigned flag;  // LZ_SN_* for a numeric bound
};

static void *field_of(lz_snode_t *node, const keyword_t *kw) { return (char *)node + kw->field; }

static bool kw_count(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                     const keyword_t *kw) {
    return get_count(c, kw->name, v, field_of(node, kw));
}

static bool kw_bound(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                     const keyword_t *kw) {
    node->num_flags |= kw->flag;
    return get_number(c, kw->name, v, field_of(node, kw));
}

static bool kw_schema(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                      const keyword_t *kw) {
    return compile_schema(c, v, field_of(node, kw));
}

static bool kw_schemas(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                       const keyword_t *kw) {
    return get_schemas(c, kw->name, v, field_of(node, kw));
}

static bool kw_unsupported(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                           const keyword_t *kw) {
    return fail(c, "%s is not supported (see docs/schema.md)", kw->name);
}

/* ---- $ref ------------------------------------------------------------- */

// percent_decode undoes the URI escaping of a fragment ("%25" -> "%") into
// out (room for len + 1 bytes); false on a broken escape.
static bool percent_decode(const char *text, size_t len, char *out, size_t *out_len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '%') {
            out[n++] = text[i];
            continue;
        }
        int hi = i + 2 < len ? lz__hex_digit(text[i + 1]) : -1, lo = hi >= 0 ? lz__hex_digit(text[i + 2]) : -1;
        if (lo < 0) return false;
        out[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[n] = '\0';
    *out_len = n;
    return true;
}

// has_own_id: a subschema with an $id of its own starts a new resource,
// whose "#/..." pointers would be relative to it, not to our root.
static bool has_own_id(const lz_value_t *v) {
    const lz_value_t *id = v->type == LZ_VALUE_OBJECT ? lz_value_get(v, "$id") : NULL;
    return id && id->type == LZ_VALUE_STRING && id->u.blob.len && id->u.blob.data[0] != '#';
}

// step follows one unescaped pointer token (len bytes at token) from at.
static const lz_value_t *step(const lz_value_t *at, const char *token, size_t len) {
    if (at->type == LZ_VALUE_OBJECT) {
        const lz_member_t *m = lz__value_find_member(at, token, len);
        return m ? m->value : NULL;
    }
    if (at->type != LZ_VALUE_ARRAY || len == 0 || len > 18 || (len > 1 && token[0] == '0')) return NULL;
    size_t index = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] < '0' || token[i] > '9') return NULL;
        index = index * 10 + (size_t)(token[i] - '0');
    }
    return index < at->u.array.len ? at->u.array.items[index] : NULL;
}

// resolve walks the JSON pointer (percent-decoded, still ~-escaped) from
// the root. *in_resource tells whether it passed through a subschema with
// its own $id.
static const lz_value_t *resolve(const compiler_t *c, char *pointer, bool *in_resource) {
    const lz_value_t *at = c->root;
    *in_resource = false;
    for (char *p = pointer; at && *p == '/';) {
        char *token = ++p, *w = token;
        for (; *p && *p != '/'; p++) {
            if (*p == '~' && (p[1] == '0' || p[1] == '1'))
                *w++ = *++p == '0' ? '~' : '/';
            else if (*p == '~')
                return NULL;
            else
                *w++ = *p;
        }
        if (at != c->root && has_own_id(at)) *in_resource = true;
        at = step(at, token, (size_t)(w - token));
    }
    return at;
}

// target_node returns the node for a $ref's target: the one already made
// for that subschema, or a new one compiled later from the work list.
static bool target_node(compiler_t *c, const lz_value_t *target, const char *pointer, lz_snode_t **out) {
    if ((*out = seen_find(c, target))) return true;
    if (target->type == LZ_VALUE_BOOL)
        return (*out = new_node(c, NULL, target->u.b ? LZ_SNODE_TRUE : LZ_SNODE_FALSE)) != NULL;
    if (!(*out = new_node(c, target, LZ_SNODE_SCHEMA))) return false;
    if (!grow((void **)&c->pending.items, &c->pending.cap, c->pending.len + 1, sizeof *c->pending.items)) return false;
    char *copy = strdup(pointer);
    if (!copy) return out_of_memory();
    c->pending.items[c->pending.len++] = (pending_t){*out, target, copy};
    return true;
}

static bool kw_ref(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                   const keyword_t *kw) {
    if (!get_string(c, "$ref", v)) return false;
    const char *text = v->u.blob.data;
    if (text[0] != '#')
        return fail(c, "$ref \"%s\" is not supported: only JSON pointers into the same document (\"#\", \"#/...\")",
                    text);
    if (text[1] && text[1] != '/')
        return fail(c, "$ref \"%s\" to an anchor is not supported: use a JSON pointer (\"#/$defs/...\")", text);
    if (c->in_resource) return fail(c, "$ref \"%s\" inside a subschema with its own $id is not supported", text);
    char *pointer = malloc(v->u.blob.len + 1);
    if (!pointer) return out_of_memory();
    size_t len;
    bool in_resource = false;
    const lz_value_t *target = NULL;
    if (percent_decode(text + 1, v->u.blob.len - 1, pointer, &len) && strlen(pointer) == len) {
        char *walk = strdup(pointer);
        if (!walk) return free(pointer), out_of_memory();
        target = resolve(c, walk, &in_resource);
        free(walk);
    }
    bool ok;
    if (!target)
        ok = fail(c, "cannot resolve $ref \"%s\"", text);
    else if (in_resource)
        ok = fail(c, "$ref \"%s\" into a subschema with its own $id is not supported", text);
    else if (target->type != LZ_VALUE_OBJECT && target->type != LZ_VALUE_BOOL)
        ok = fail(c, "$ref \"%s\" points at %s, not a schema", text, kind(target));
    else
        ok = target_node(c, target, pointer, &node->ref);
    free(pointer);
    return ok;
}

// $defs and definitions are compiled whole, used or not, so that a
// malformed definition is refused with the rest of the schema.
static bool kw_defs(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                    const keyword_t *kw) {
    lz_sprop_t *defs = NULL;
    size_t len = 0;
    bool ok = get_props(c, kw->name, v, &defs, &len);
    for (size_t i = 0; i < len; i++) free(defs[i].name.text);
    free(defs);
    return ok;
}

/* ---- generic keywords ------------------------------------------------- */

static bool type_bit(const lz_value_t *name, unsigned *types) {
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"null", LZ_ST_NULL},     {"boolean", LZ_ST_BOOLEAN}, {"integer", LZ_ST_INTEGER},
                 {"number", LZ_ST_NUMBER}, {"string", LZ_ST_STRING},   {"array", LZ_ST_ARRAY},
                 {"object", LZ_ST_OBJECT}};
    if (name->type != LZ_VALUE_STRING) return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        // By length too: "string\u0000x" is no type name.
        if (name->u.blob.len == strlen(names[i].name) && strcmp(name->u.blob.data, names[i].name) == 0) {
            *types |= names[i].bit;
            return true;
        }
    }
    return false;
}

static bool kw_type(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                    const keyword_t *kw) {
    node->has_type = true;
    bool list = v->type == LZ_VALUE_ARRAY;
    size_t n = list ? v->u.array.len : 1;
    for (size_t i = 0; i < n; i++) {
        if (!type_bit(list ? v->u.array.items[i] : v, &node->types))
            return fail(c, "type must be a type name (null, boolean, integer, number, string, array, object) "
                           "or an array of them");
    }
    return true;
}

static bool kw_enum(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                    const keyword_t *kw) {
    if (v->type != LZ_VALUE_ARRAY) return fail(c, "enum must be an array, got %s", kind(v));
    return (node->enum_values = lz_value_copy(v)) || out_of_memory();
}

static bool kw_const(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                     const keyword_t *kw) {
    return (node->const_value = lz_value_copy(v)) || out_of_memory();
}

/* ---- numbers and strings ------------------------------------------------ */

// multipleOf keeps an integral divisor as an integer when it fits, so that
// integer values are checked exactly (2.0 divides 2^62 + 2).
static bool kw_multiple_of(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                           const keyword_t *kw) {
    lz_snum_t *m = &node->multiple_of;
    if (!kw_bound(c, node, v, parent, kw)) return false;
    if (m->d <= 0) return fail(c, "multipleOf must be greater than 0");
    if (!m->is_int && m->d < 0x1p63 && m->d == trunc(m->d))
        *m = (lz_snum_t){.is_int = true, .i = (int64_t)m->d, .d = m->d};
    return true;
}

static bool kw_pattern(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                       const keyword_t *kw) {
    return get_string(c, "pattern", v) && get_pattern(c, v->u.blob.data, v->u.blob.len, &node->pattern);
}

/* ---- arrays ------------------------------------------------------------- */

// items: a schema for the items after prefixItems (2020-12), or, as an
// array, draft-07's tuple form: the schemas by position (prefixItems wins
// when both are there: the array is then checked, not applied).
static bool kw_items(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                     const keyword_t *kw) {
    if (v->type != LZ_VALUE_ARRAY) return compile_schema(c, v, &node->items);
    if (!lz_value_get(parent, "prefixItems")) return get_schemas(c, "items", v, &node->prefix_items);
    lz_snodes_t unused = {0};
    bool ok = get_schemas(c, "items", v, &unused);
    free(unused.items);
    return ok;
}

// additionalItems (draft-07): the items after a tuple-form items; beside a
// schema-form items (or none, or prefixItems) it does not apply, as the
// draft says, and is only checked.
static bool kw_additional_items(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                                const keyword_t *kw) {
    const lz_value_t *items = lz_value_get(parent, "items");
    if (!items || items->type != LZ_VALUE_ARRAY || lz_value_get(parent, "prefixItems")) return check_schema(c, v);
    return compile_schema(c, v, &node->items);
}

static bool kw_unique_items(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                            const keyword_t *kw) {
    if (v->type != LZ_VALUE_BOOL) return fail(c, "uniqueItems must be a boolean, got %s", kind(v));
    node->unique_items = v->u.b;
    return true;
}

/* ---- objects ------------------------------------------------------------ */

static bool kw_properties(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                          const keyword_t *kw) {
    if (!get_props(c, "properties", v, &node->properties.items, &node->properties.len)) return false;
    // Sorted by (length, bytes) for the binary search in schema.c.
    if (node->properties.len)
        qsort(node->properties.items, node->properties.len, sizeof *node->properties.items, compare_props);
    return true;
}

static bool kw_pattern_properties(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                                  const keyword_t *kw) {
    if (v->type != LZ_VALUE_OBJECT) return fail(c, "patternProperties must be an object, got %s", kind(v));
    size_t n = v->u.object.len;
    if (n && !(node->pattern_properties.items = calloc(n, sizeof *node->pattern_properties.items)))
        return out_of_memory();
    for (size_t i = 0; i < n; i++) {
        const lz_member_t *m = &v->u.object.members[i];
        lz_spattern_prop_t *prop = &node->pattern_properties.items[node->pattern_properties.len++];
        size_t mark = push(c, lz__member_key(m), m->key_len);
        if (mark == SIZE_MAX) return false;
        bool ok =
            get_pattern(c, lz__member_key(m), m->key_len, &prop->pattern) && compile_schema(c, m->value, &prop->schema);
        pop(c, mark);
        if (!ok) return false;
    }
    return true;
}

static bool kw_required(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                        const keyword_t *kw) {
    return get_names(c, "required", v, &node->required);
}

// add_dependent_required appends name -> names (an array of strings).
static bool add_dependent_required(compiler_t *c, lz_snode_t *node, const char *keyword, const lz_member_t *m) {
    lz_sdepend_t *grown = realloc(node->dependent_required.items, (node->dependent_required.len + 1) * sizeof *grown);
    if (!grown) return out_of_memory();
    node->dependent_required.items = grown;
    lz_sdepend_t *dep = &grown[node->dependent_required.len];
    *dep = (lz_sdepend_t){0};
    if (!copy_name(lz__member_key(m), m->key_len, &dep->name)) return false;
    node->dependent_required.len++;
    size_t mark = push(c, lz__member_key(m), m->key_len);
    if (mark == SIZE_MAX) return false;
    bool ok = get_names(c, keyword, m->value, &dep->required);
    pop(c, mark);
    return ok;
}

static bool kw_dependent_required(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                                  const keyword_t *kw) {
    if (v->type != LZ_VALUE_OBJECT) return fail(c, "dependentRequired must be an object, got %s", kind(v));
    for (size_t i = 0; i < v->u.object.len; i++)
        if (!add_dependent_required(c, node, "dependentRequired", &v->u.object.members[i])) return false;
    return true;
}

static bool kw_dependent_schemas(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                                 const keyword_t *kw) {
    return get_props(c, "dependentSchemas", v, &node->dependent_schemas.items, &node->dependent_schemas.len);
}

// dependencies (draft-07): an array is dependentRequired, a schema
// dependentSchemas.
static bool kw_dependencies(compiler_t *c, lz_snode_t *node, const lz_value_t *v, const lz_value_t *parent,
                            const keyword_t *kw) {
    if (v->type != LZ_VALUE_OBJECT) return fail(c, "dependencies must be an object, got %s", kind(v));
    for (size_t i = 0; i < v->u.object.len; i++) {
        const lz_member_t *m = &v->u.object.members[i];
        if (m->value->type == LZ_VALUE_ARRAY) {
            if (!add_dependent_required(c, node, "dependencies", m)) return false;
            continue;
        }
        // One member at a time through get_props, which appends.
        lz_value_t one = {.type = LZ_VALUE_OBJECT, .unowned = 1};
        one.u.object.members = (lz_member_t *)m;
        one.u.object.len = one.u.object.cap = 1;
        if (!get_props(c, "dependencies", &one, &node->dependent_schemas.items, &node->dependent_schemas.len))
            return false;
    }
    return true;
}

/* ---- the keyword table and the walk ----------------------------------- */

#define AT(f) offsetof(lz_snode_t, f)
static const keyword_t keywords[] = {
    {"$ref", kw_ref, 0, 0, 0},
    {"$dynamicRef", kw_unsupported, 0, 0, 0},
    {"$recursiveRef", kw_unsupported, 0, 0, 0},
    {"$defs", kw_defs, 0, 0, 0},
    {"definitions", kw_defs, 0, 0, 0},
    {"type", kw_type, 0, 0, 0},
    {"enum", kw_enum, LZ_SG_GENERIC, 0, 0},
    {"const", kw_const, LZ_SG_GENERIC, 0, 0},
    {"minimum", kw_bound, LZ_SG_NUMBER, AT(minimum), LZ_SN_MINIMUM},
    {"maximum", kw_bound, LZ_SG_NUMBER, AT(maximum), LZ_SN_MAXIMUM},
    {"exclusiveMinimum", kw_bound, LZ_SG_NUMBER, AT(exclusive_minimum), LZ_SN_EXCLUSIVE_MINIMUM},
    {"exclusiveMaximum", kw_bound, LZ_SG_NUMBER, AT(exclusive_maximum), LZ_SN_EXCLUSIVE_MAXIMUM},
    {"multipleOf", kw_multiple_of, LZ_SG_NUMBER, AT(multiple_of), LZ_SN_MULTIPLE_OF},
    {"minLength", kw_count, LZ_SG_STRING, AT(min_length), 0},
    {"maxLength", kw_count, LZ_SG_STRING, AT(max_length), 0},
    {"pattern", kw_pattern, LZ_SG_STRING, 0, 0},
    {"prefixItems", kw_schemas, LZ_SG_ARRAY, AT(prefix_items), 0},
    {"items", kw_items, LZ_SG_ARRAY, 0, 0},
    {"additionalItems", kw_additional_items, LZ_SG_ARRAY, 0, 0},
    {"contains", kw_schema, LZ_SG_ARRAY, AT(contains), 0},
    {"minContains", kw_count, 0, AT(min_contains), 0}, // count only beside contains
    {"maxContains", kw_count, 0, AT(max_contains), 0},
    {"minItems", kw_count, LZ_SG_ARRAY, AT(min_items), 0},
    {"maxItems", kw_count, LZ_SG_ARRAY, AT(max_items), 0},
    {"uniqueItems", kw_unique_items, LZ_SG_ARRAY, 0, 0},
    {"properties", kw_properties, LZ_SG_OBJECT, 0, 0},
    {"patternProperties", kw_pattern_properties, LZ_SG_OBJECT, 0, 0},
    {"additionalProperties", kw_schema, LZ_SG_OBJECT, AT(additional_properties), 0},
    {"propertyNames", kw_schema, LZ_SG_OBJECT, AT(property_names), 0},
    {"minProperties", kw_count, LZ_SG_OBJECT, AT(min_properties), 0},
    {"maxProperties", kw_count, LZ_SG_OBJECT, AT(max_properties), 0},
    {"required", kw_required, LZ_SG_OBJECT, 0, 0},
    {"dependentRequired", kw_dependent_required, LZ_SG_OBJECT, 0, 0},
    {"dependentSchemas", kw_dependent_schemas, LZ_SG_OBJECT, 0, 0},
    {"dependencies", kw_dependencies, LZ_SG_OBJECT, 0, 0},
    {"allOf", kw_schemas, LZ_SG_LOGIC, AT(all_of), 0},
    {"anyOf", kw_schemas, LZ_SG_LOGIC, AT(any_of), 0},
    {"oneOf", kw_schemas, LZ_SG_LOGIC, AT(one_of), 0},
    {"not", kw_schema, LZ_SG_LOGIC, AT(not_schema), 0},
    {"if", kw_schema, LZ_SG_LOGIC, AT(if_schema), 0},
    {"then", kw_schema, 0, AT(then_schema), 0}, // then and else count only beside if
    {"else", kw_schema, 0, AT(else_schema), 0},
};
#undef AT

static const keyword_t *find_keyword(const char *name) {
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strcmp(keywords[i].name, name) == 0) return &keywords[i];
    return NULL; // unknown keywords, format and annotations are ignored
}

// fill_keywords compiles the keywords of the schema object v into node.
static bool fill_keywords(compiler_t *c, lz_snode_t *node, const lz_value_t *v) {
    // A legacy $ref stands alone: its siblings go to a node linked nowhere,
    // checked but not applied.
    lz_snode_t *ignored = NULL;
    if (c->legacy && lz_value_get(v, "$ref") && !(ignored = new_node(c, NULL, LZ_SNODE_SCHEMA))) return false;
    for (size_t i = 0; i < v->u.object.len; i++) {
        const lz_member_t *m = &v->u.object.members[i];
        const keyword_t *kw = find_keyword(lz__member_key(m));
        if (!kw) continue;
        lz_snode_t *into = ignored && kw->fn != kw_ref ? ignored : node;
        size_t mark = push(c, lz__member_key(m), m->key_len);
        if (mark == SIZE_MAX) return false;
        into->groups |= kw->group;
        bool ok = kw->fn(c, into, m->value, v, kw);
        pop(c, mark);
        if (!ok) return false;
    }
    return true;
}

// fill is fill_keywords, noting whether v starts an embedded resource
// (an $id of its own), inside which $ref is refused.
static bool fill(compiler_t *c, lz_snode_t *node, const lz_value_t *v) {
    int resource = v != c->root && has_own_id(v);
    c->in_resource += resource;
    bool ok = fill_keywords(c, node, v);
    c->in_resource -= resource;
    return ok;
}

static bool compile_schema(compiler_t *c, const lz_value_t *v, lz_snode_t **out) {
    if ((*out = seen_find(c, v))) return true;
    if (v->type == LZ_VALUE_BOOL) return (*out = new_node(c, v, v->u.b ? LZ_SNODE_TRUE : LZ_SNODE_FALSE)) != NULL;
    if (v->type != LZ_VALUE_OBJECT) return fail(c, "a schema must be an object or a boolean, got %s", kind(v));
    if (c->nesting >= LZ_SCHEMA_MAX_NESTING)
        return fail(c, "schema nested deeper than %d levels", LZ_SCHEMA_MAX_NESTING);
    if (!(*out = new_node(c, v, LZ_SNODE_SCHEMA))) return false;
    c->nesting++;
    bool ok = fill(c, *out, v);
    c->nesting--;
    return ok;
}

/* ---- the public constructors ------------------------------------------ */

// is_legacy: the document says it is draft-04, -06 or -07 (or older), whose
// $ref replaces its siblings.
static bool is_legacy(const lz_value_t *root) {
    const char *uri = lz_value_find_string(root, "$schema", "");
    return strstr(uri, "json-schema.org/draft-0") != NULL;
}

// compile_pending fills the nodes $refs made for subschemas the walk had
// not reached, each from its $ref's pointer; filling may add more.
static bool compile_pending(compiler_t *c) {
    for (size_t i = 0; i < c->pending.len; i++) {
        pending_t *p = &c->pending.items[i];
        size_t len = strlen(p->pointer);
        if (!grow((void **)&c->pointer.text, &c->pointer.cap, len + 1, 1)) return false;
        memcpy(c->pointer.text, p->pointer, len + 1);
        c->pointer.len = len;
        if (!fill(c, p->node, p->source)) return false;
    }
    return true;
}

static void compiler_fini(compiler_t *c) {
    for (size_t i = 0; i < c->pending.len; i++) free(c->pending.items[i].pointer);
    free(c->pending.items);
    free(c->seen.slots);
    free(c->pointer.text);
    pcre2_compile_context_free(c->regex);
}

lz_schema_t *lz_schema_new(const lz_value_t *schema) {
    if (!schema) return lz__fail_null(LZ_EINVAL, "lz_schema_new: NULL schema");
    lz_schema_t *s = calloc(1, sizeof *s);
    if (!s) return lz__fail_null(LZ_ENOMEM, "schema: out of memory");
    compiler_t c = {.schema = s, .root = schema, .legacy = is_legacy(schema)};
    bool ok = grow((void **)&c.pointer.text, &c.pointer.cap, 1, 1);
    if (ok) c.pointer.text[0] = '\0';
    ok = ok && compile_schema(&c, schema, &s->root) && compile_pending(&c);
    compiler_fini(&c);
    if (!ok) lz_schema_destroy(&s);
    return s;
}

lz_schema_t *lz_schema_from_json(const char *text, size_t len) {
    if (!text) return lz__fail_null(LZ_EINVAL, "lz_schema_from_json: NULL text");
    lz_value_t *document = lz_value_from_json(text, len);
    if (!document) return NULL; // LZ_ESERIALIZATION with the offset, or LZ_ENOMEM
    lz_schema_t *s = lz_schema_new(document);
    lz_value_destroy(&document);
    return s;
}

void lz_schema_destroy(lz_schema_t **schema_p) {
    if (!schema_p || !*schema_p) return;
    lz_schema_t *s = *schema_p;
    for (size_t i = 0; i < s->len; i++) free_node(s->nodes[i]);
    free(s->nodes);
    pcre2_match_context_free(s->limits);
    free(s);
    *schema_p = NULL;
}
