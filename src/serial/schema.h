/* Internal: a compiled JSON Schema. schema_compile.c turns a schema
 * document into this tree once; schema.c walks it for each value, reading
 * no keyword text. */
#ifndef LZ_SERIAL_SCHEMA_H
#define LZ_SERIAL_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "liberzmq/schema.h"
#include "serial/value.h"

// How deep validations may nest (each subschema applied is one level):
// a $ref cycle that consumes no data would otherwise recurse until the
// stack overflows. Enough for any finite schema on any value the JSON
// reader accepts (127 levels) with room for a few $ref hops per level.
#define LZ_SCHEMA_MAX_DEPTH 256
#define LZ_SCHEMA_MAX_DEPTH_TEXT "256" // for messages

// A validation gives up (an LZ_EVALIDATION abort) past LZ_SCHEMA_MAX_STEPS
// steps, or LZ_SCHEMA_STEPS_PER_VALUE times the steps of one pass over the
// data if that is more (counted once the first budget is spent). A step is
// a subschema applied, or LZ_SCHEMA_BYTES_PER_STEP bytes of a string whose
// length or pattern is checked, or an item uniqueItems compares: two
// branches of anyOf, oneOf or allOf that both recurse into the same value
// take time exponential in the data's depth, which a peer chooses (2^40
// subschemas at 40 levels). Ten million steps take some 50 ms (5 ns each
// on the benchmark's machine).
#define LZ_SCHEMA_MAX_STEPS 10000000
#define LZ_SCHEMA_STEPS_PER_VALUE 256
#define LZ_SCHEMA_BYTES_PER_STEP 8

// A pattern match gives up (an LZ_EVALIDATION abort, "match limit
// exceeded") past this many of PCRE2's backtracking steps: a pattern that
// backtracks without end ("^(a+)+$" on "aaa...ab") then costs about 2 ms
// per string with the JIT, where PCRE2's default limit (10 million) let it
// cost 100 ms, a peer's array of such strings as many times.
#define LZ_SCHEMA_MATCH_LIMIT 1000000
// The JIT's stack for a match that outgrows the 32 KiB PCRE2 gives it (a
// repeated group takes a few bytes per character: "^(?:\\w|-)+$" failed on
// 2000 characters): reserved when a match first needs it, touched only as
// far as used. Enough for some 200 thousand characters.
#define LZ_SCHEMA_JIT_STACK_MAX (8u << 20)

// The JSON types a value can have, as "type" names them. An int is both
// an integer and a number; so is a double with no fractional part.
enum {
    LZ_ST_NULL = 1u << 0,
    LZ_ST_BOOLEAN = 1u << 1,
    LZ_ST_INTEGER = 1u << 2,
    LZ_ST_NUMBER = 1u << 3,
    LZ_ST_STRING = 1u << 4,
    LZ_ST_ARRAY = 1u << 5,
    LZ_ST_OBJECT = 1u << 6
};

// Which numeric bounds a node has (lz_snode_t.num_flags).
enum {
    LZ_SN_MINIMUM = 1u << 0,
    LZ_SN_MAXIMUM = 1u << 1,
    LZ_SN_EXCLUSIVE_MINIMUM = 1u << 2,
    LZ_SN_EXCLUSIVE_MAXIMUM = 1u << 3,
    LZ_SN_MULTIPLE_OF = 1u << 4
};

// Groups of keywords a node has, so validation skips whole groups at once.
enum {
    LZ_SG_GENERIC = 1u << 0, // enum, const
    LZ_SG_NUMBER = 1u << 1,
    LZ_SG_STRING = 1u << 2,
    LZ_SG_ARRAY = 1u << 3,
    LZ_SG_OBJECT = 1u << 4,
    LZ_SG_LOGIC = 1u << 5 // allOf, anyOf, oneOf, not, if
};

// A number from the schema, kept as the document wrote it so comparisons
// with int64 values stay exact.
typedef struct lz_snum {
    bool is_int;
    int64_t i;
    double d;
} lz_snum_t;

typedef struct lz_snode lz_snode_t;

typedef struct lz_snodes {
    lz_snode_t **items;
    size_t len;
} lz_snodes_t;

typedef struct lz_sname {
    char *text;
    size_t len;
} lz_sname_t;

typedef struct lz_snames {
    lz_sname_t *items;
    size_t len;
} lz_snames_t;

typedef struct lz_spattern {
    pcre2_code *code;
    char *source; // for the error message
} lz_spattern_t;

// A property name with its schema: properties (sorted by name for a binary
// search), dependentSchemas.
typedef struct lz_sprop {
    lz_sname_t name;
    lz_snode_t *schema;
} lz_sprop_t;

typedef struct lz_spattern_prop {
    lz_spattern_t pattern;
    lz_snode_t *schema;
} lz_spattern_prop_t;

typedef struct lz_sdepend {
    lz_sname_t name;
    lz_snames_t required;
} lz_sdepend_t;

enum { LZ_SNODE_TRUE, LZ_SNODE_FALSE, LZ_SNODE_SCHEMA };

struct lz_snode {
    unsigned char kind; // LZ_SNODE_*
    bool has_type;      // "type" is there (an empty list allows nothing)
    unsigned types;     // LZ_ST_* bits "type" allows
    unsigned groups;    // LZ_SG_* bits
    lz_snode_t *ref;    // $ref's target, applied beside the other keywords
    // generic
    lz_value_t *enum_values; // a copy of the enum array, or NULL
    lz_value_t *const_value; // a copy of const, or NULL
    // numbers
    unsigned num_flags; // LZ_SN_* bits
    lz_snum_t minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;
    // strings
    size_t min_length, max_length; // 0 and SIZE_MAX when absent
    lz_spattern_t pattern;         // code NULL when absent
    // arrays
    lz_snodes_t prefix_items; // prefixItems (or draft-07 items as an array)
    lz_snode_t *items;        // the rest (or draft-07 additionalItems)
    lz_snode_t *contains;
    size_t min_contains, max_contains; // 1 and SIZE_MAX when absent
    size_t min_items, max_items;
    bool unique_items;
    // objects
    struct {
        lz_sprop_t *items;
        size_t len;
    } properties;
    struct {
        lz_spattern_prop_t *items;
        size_t len;
    } pattern_properties;
    lz_snode_t *additional_properties;
    lz_snode_t *property_names;
    size_t min_properties, max_properties;
    lz_snames_t required;
    struct {
        lz_sdepend_t *items;
        size_t len;
    } dependent_required;
    struct {
        lz_sprop_t *items;
        size_t len;
    } dependent_schemas;
    // logic
    lz_snodes_t all_of, any_of, one_of;
    lz_snode_t *not_schema, *if_schema, *then_schema, *else_schema;
};

struct lz_schema {
    lz_snode_t *root;
    // The match limit, for every pattern's match; NULL without patterns.
    // Read-only, so shared by the validating threads.
    pcre2_match_context *limits;
    // Every node, for destruction: $ref makes the tree a graph.
    lz_snode_t **nodes;
    size_t len, cap;
};

#endif
