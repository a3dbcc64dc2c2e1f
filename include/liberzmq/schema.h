/* liberzmq JSON Schema: checks values against a schema, so a node can
 * refuse a malformed message with an error that says what is wrong.
 *
 * A schema is a JSON Schema document (draft 2020-12; draft-07 documents
 * read too), compiled once into a read-only tree:
 *
 *     lz_schema_t *s = lz_schema_from_json(text, strlen(text));
 *     if (lz_schema_validate(s, value) != LZ_OK)
 *         fprintf(stderr, "%s\n", lz_last_error()); // "$.user.age: -1 is less than the minimum 0"
 *     lz_schema_destroy(&s);
 *
 * Supported: boolean schemas, type, enum, const, the numeric, string,
 * array and object keywords, allOf/anyOf/oneOf/not, if/then/else,
 * dependentRequired/dependentSchemas (and draft-07 dependencies), $defs
 * (definitions) and $ref to JSON pointers inside the same document,
 * recursion included. "format", annotations and unknown keywords are
 * ignored. Not supported, refused when the schema is compiled: $ref to
 * another document (a URL) or to an $anchor, $dynamicRef/$recursiveRef, and
 * a $ref inside a subschema that has an $id of its own. Byte strings
 * (LZ_VALUE_BYTES) are not a JSON type: they fail every "type" and are only
 * equal to the same bytes. docs/schema.md has the details. */
#ifndef LIBERZMQ_SCHEMA_H
#define LIBERZMQ_SCHEMA_H

#include <stddef.h>

#include "node.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_schema lz_schema_t;

// lz_schema_new compiles schema (a JSON Schema document as a value: an
// object or a boolean). The value is not kept: what validation needs is
// copied, so the caller may destroy it right away. Returns a new schema
// owned by the caller (lz_schema_destroy), or NULL with LZ_EINVAL (schema
// NULL, or malformed: a detail names the keyword and its JSON pointer, as
// in `schema #/properties/age/minimum: minimum must be a number, got
// string`; a bad regex, an unresolvable or unsupported $ref likewise) or
// LZ_ENOMEM. Thread safe.
lz_schema_t *lz_schema_new(const lz_value_t *schema);

// lz_schema_from_json is lz_schema_new on JSON text of len bytes. NULL
// with LZ_ESERIALIZATION for text that is not JSON (the detail names the
// offset), LZ_EINVAL for text NULL or a malformed schema, or LZ_ENOMEM.
lz_schema_t *lz_schema_from_json(const char *text, size_t len);

// lz_schema_destroy frees *schema_p and sets it to NULL; NULL and a NULL
// *schema_p are no-ops. No validation may be running on it.
void lz_schema_destroy(lz_schema_t **schema_p);

// lz_schema_validate checks value against schema. Returns LZ_OK when it
// conforms; LZ_EVALIDATION when not, with lz_last_error() naming the first
// failure by its path in the value and the reason:
//     $: missing required property 'email'
//     $.tags[2]: expected string, got integer
//     $.user.age: -1 is less than the minimum 0
//     $["a \"b\""]: expected string, got integer
// (a key that is no identifier is written as JSON writes a string).
// A validation nested deeper than 256 levels (a recursive $ref that does
// not end) also fails with LZ_EVALIDATION, never by overflowing the stack,
// and so does a pattern match past PCRE2's match limit (a million
// backtracking steps: "the pattern ... could not be matched: match limit
// exceeded"), where the validation stops, and so does one past 10 million
// steps, or 256 times one pass over value if that is more ("validation gave
// up after N steps": a step is a subschema applied or 8 bytes of a string
// checked; branches that recurse into the same value take time exponential
// in its depth; docs/schema.md).
// LZ_EINVAL for NULL arguments, LZ_ENOMEM when a pattern's match data
// cannot be allocated or its match runs out of memory. Valid values cost no string formatting. Thread
// safe: a compiled schema is read-only, so any number of threads may
// validate with it at once.
int lz_schema_validate(const lz_schema_t *schema, const lz_value_t *value);

// lz_node_set_schema makes node check every value it sends and every
// message it receives under key against schema: the topic of a publisher
// or subscriber, the task type of a pusher or puller, the action of a
// client or server (key NULL: every key without a schema of its own, and a
// pair's messages). A value that does not conform is refused as a node
// hook refuses it (node.h, docs/hooks.md): the send returns LZ_EVALIDATION
// with the detail "<node>: '<key>' refused: <validation detail>"; a
// received message is dropped and counted in inbound_dropped; a request is
// answered with an LZ_EVALIDATION error reply carrying the detail. What
// is checked is the data (lz_message_value), not the envelope. Setting a
// key again replaces its schema. schema is borrowed: it must outlive the
// node. Set schemas before the node carries traffic, like hooks. LZ_EINVAL
// for a NULL node or schema, LZ_ENOMEM.
int lz_node_set_schema(lz_node_t *node, const char *key, const lz_schema_t *schema);

#ifdef __cplusplus
}
#endif
#endif
