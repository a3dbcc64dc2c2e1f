/* Internal: YAML scalars read as the Python LiberZMQ reads them. PyYAML's
 * safe_load (YAML 1.1) resolves a plain scalar by its text (010 is 8, yes
 * is true, 1e3 a string) and builds a tagged one by its tag; libyaml only
 * parses, and leaves both to us (config.c, docs/configuration.md). */
#ifndef LZ_CORE_YAML_SCALAR_H
#define LZ_CORE_YAML_SCALAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// What safe_load makes of a scalar.
typedef enum {
    LZ_YAML_NULL,
    LZ_YAML_BOOL,
    LZ_YAML_INT,
    LZ_YAML_FLOAT,
    LZ_YAML_STRING,
    LZ_YAML_DATE,    // 2024-01-01, 2024-01-01 12:00:00
    LZ_YAML_REFUSED, // safe_load raises, or makes what no key takes: !foo, !!int abc, 0b_, <<, !!binary
} lz_yaml_type_t;

typedef struct {
    lz_yaml_type_t type;
    int64_t i;     // BOOL (0 or 1), INT, and a whole FLOAT
    bool whole;    // a FLOAT with no fraction (5.0, 1.0e+3): i holds it, as pydantic takes it for an integer
    bool too_big;  // an INT or whole FLOAT past int64_t; i is then 0
    char what[96]; // for error details: "an integer", "a string"..., or why it is REFUSED
} lz_yaml_scalar_t;

// lz__yaml_scalar_read tells what safe_load makes of the scalar text:
// tag is its explicit tag as libyaml expands it ("tag:yaml.org,2002:int",
// "!" the non-specific one, "!foo"), NULL when it has none; plain says the
// scalar is plain (neither quoted nor a block). It allocates nothing, so
// cannot fail. Thread safe.
void lz__yaml_scalar_read(const char *text, const char *tag, bool plain, lz_yaml_scalar_t *out);

// lz__yaml_tag_refusal writes why a node with tag is refused ("unsupported
// YAML tag !!set") into why, the tag written short (!! for tag:yaml.org,2002:).
void lz__yaml_tag_refusal(const char *tag, char *why, size_t size);

#endif
