/* Internal: the JSON reader on simdjson (json_reader.cpp), behind a C
 * interface so json.c stays C. It only reads valid input fast; json.c keeps
 * the policy for everything else (see lz__json_read's statuses). */
#ifndef LZ_SERIAL_JSON_READER_H
#define LZ_SERIAL_JSON_READER_H

#include <stddef.h>

#include "serial/value.h"

#ifdef __cplusplus
// C++ must not unwind into C callers: a stray exception ends the process.
#define LZ_JSON_NOEXCEPT noexcept
extern "C" {
#else
#define LZ_JSON_NOEXCEPT
#endif

// Deepest nesting decode accepts: the writer refuses to open container
// number 128 (yajl_gen's YAJL_MAX_DEPTH; the object a bytes value is
// written as counts), so decode accepts exactly what encode can write,
// and the recursive walks over a decoded value (destroy, copy, encode)
// stay within a small stack.
#define LZ_JSON_MAX_DEPTH 127

typedef enum lz_json_read_status {
    LZ_JSON_READ_OK = 0,   // *out holds the document
    LZ_JSON_READ_INVALID,  // not JSON we accept; *reason is simdjson's text
    LZ_JSON_READ_DECLINED, // maybe valid, but simdjson cannot give its value
                           // (an integer past 64 bits, a number past double
                           // range, a document past its capacity, no memory
                           // for its own buffers): read it another way
    LZ_JSON_READ_NOMEM     // out of memory building the value
} lz_json_read_status_t;

// lz__json_read parses size bytes of data as one JSON document (nothing but
// whitespace after it, at most LZ_JSON_MAX_DEPTH containers deep) into a
// new value in *out: the caller's (lz_value_destroy) when arena is NULL,
// else made in arena (unowned, freed with it; a failed read may leave
// nodes there). Integers that fit int64 become ints, every other
// number a double; strings are checked to be UTF-8; a repeated key keeps
// its first place and its last value; a key holding "\u0000" ends there
// (keys are C strings); an object that is one of the Python LiberZMQ's
// tagged forms becomes what it stands for (lz__json_untag). *out is NULL
// unless LZ_JSON_READ_OK. Sets no error
// detail: the caller words it. Each thread keeps one parser, reused, so a
// small document costs no allocation in the parser after the first. A
// document over 64 KiB (and up to 8 MiB) is read with a second parser the
// thread keeps for the next large one, until it has read 256 small
// documents in a row or exits (json_reader.cpp says what that holds).
lz_json_read_status_t lz__json_read(const void *data, size_t size, lz_arena_t *arena, lz_value_t **out,
                                    const char **reason) LZ_JSON_NOEXCEPT;

// lz__json_reader_large_capacity: the capacity in bytes of the large parser
// the calling thread keeps, 0 when it keeps none. For tests.
LZ_HIDDEN size_t lz__json_reader_large_capacity(void) LZ_JSON_NOEXCEPT;

// lz__json_untag takes object, a decoded object of exactly two members, and
// returns what it stands for when it is one of the Python LiberZMQ's tagged
// objects that liberzmq has a type for: {"__type__": "bytes", "value": HEX}
// (an even number of hex digits, either case) a new bytes value, "tuple" or
// "set" with an array value that array; object freed. Anything else is
// returned as it is. The new bytes value is made in arena unless it is
// NULL (then an arena's object stays there). NULL when out of memory
// (object freed). Shared by the simdjson and the yajl reader (json.c).
LZ_HIDDEN lz_value_t *lz__json_untag(lz_value_t *object, lz_arena_t *arena) LZ_JSON_NOEXCEPT;

// lz__json_format_double writes finite d as the shortest text that reads
// back as exactly d, in Python's repr form (what repr(d) prints), at most
// LZ_JSON_DOUBLE_MAX bytes, no NUL; returns the length.
#define LZ_JSON_DOUBLE_MAX 32
LZ_HIDDEN size_t lz__json_format_double(double d, char *out) LZ_JSON_NOEXCEPT;

#ifdef __cplusplus
}
#endif
#endif
