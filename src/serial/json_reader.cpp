/* The JSON reader: simdjson's DOM parser validates the whole document
 * (grammar, UTF-8, depth) into its tape in one pass, then one walk over the
 * tape builds the lz_value_t tree. yajl's token-by-token callbacks cost about
 * five times as much for a small message. Only simdjson's error-code API is
 * used, and lz__json_read is noexcept: nothing can unwind into C. */
#include <fmt/compile.h>
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "serial/json_reader.h"
#include "serial/value.h"

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// A thread keeps its parser (tape, string buffer, structural index, padded
// copy of the input) for documents up to this size: a bigger one gets a
// parser of its own, freed right after, so one large message does not pin
// about 15 times its size to the thread for good.
constexpr size_t keep_capacity = 64 * 1024;
// The first allocation covers typical messages, so growth is rare.
constexpr size_t first_capacity = 4096;

// simdjson's limit is one level off ours, and not for every document: at
// max_depth M it takes M nested containers only when the innermost is
// empty, and M - 1 otherwise. So it is given one more than ours, and the
// walk refuses the one case that lets through (LZ_JSON_MAX_DEPTH + 1
// containers, the innermost empty).
constexpr size_t max_depth = LZ_JSON_MAX_DEPTH + 1;

// simdjson reads up to SIMDJSON_PADDING bytes past the end of its input;
// data from a socket has no such room, so parse() is asked to copy it into
// the parser's own padded buffer (realloc_if_needed), which it keeps for
// the next document. A padded buffer of our own measured the same,
// instruction for instruction, on the task envelope.
struct reader {
    simdjson::dom::parser parser;

    // Sizes the parser for size bytes with our depth limit, doubling: its
    // own ensure_capacity would set simdjson's default depth (1024) and
    // grow to each larger document exactly.
    simdjson::error_code reserve(size_t size) noexcept {
        if (parser.capacity() >= size && parser.max_depth() == max_depth) return simdjson::SUCCESS;
        size_t want = parser.capacity() ? parser.capacity() : first_capacity;
        while (want < size) want *= 2;
        return parser.allocate(want, max_depth);
    }
};

// One per thread, destroyed (buffers freed) when the thread exits.
thread_local reader thread_reader;

// What one walk over the tape needs besides the element.
struct walk {
    // Whether the input holds a backslash at all: without one no key can
    // hold "\u0000", so keys need no scan for a NUL.
    bool escapes;
    // Set when the walk stops at a container past LZ_JSON_MAX_DEPTH
    // (otherwise a stop means out of memory).
    bool too_deep;
};

// build makes the value for e, or NULL when out of memory or too deep.
// Recursion is bounded by the depth limits of simdjson and of the walk.
lz_value_t *build(walk &w, element e, int depth) noexcept;

// scalar makes a node of type; its field is set by the caller. Nodes are
// made through value.c's hidden helpers and filled here directly: the
// public constructors cost a PLT call and their argument checks per node.
inline lz_value_t *scalar(lz_value_type_t type) noexcept { return lz__value_new(type, 0); }

lz_value_t *build_array(walk &w, simdjson::dom::array array, int depth) noexcept {
    if (depth > LZ_JSON_MAX_DEPTH) {
        w.too_deep = true;
        return nullptr;
    }
    lz_value_t *value = scalar(LZ_VALUE_ARRAY);
    if (!value) return nullptr;
    size_t n = array.size();
    if (n && lz__value_reserve(value, n) < 0) {
        lz_value_destroy(&value);
        return nullptr;
    }
    for (element child : array) {
        lz_value_t *item = build(w, child, depth + 1);
        if (!item) {
            lz_value_destroy(&value);
            return nullptr;
        }
        value->u.array.items[value->u.array.len++] = item; // reserved above
    }
    return value;
}

// key_bit picks one of 256 bits for a key, from its length and a few of
// its bytes: a key whose bit is still clear is certainly not a repeat.
inline unsigned key_bit(const char *key, size_t len) noexcept {
    if (len == 0) return 0;
    uint32_t h = static_cast<uint32_t>(len) * 0x9E3779B1u;
    h ^= static_cast<unsigned char>(key[0]) * 0x85EBCA6Bu;
    h ^= static_cast<unsigned char>(key[len - 1]) * 0xC2B2AE35u;
    h ^= static_cast<unsigned char>(key[len / 2]) * 0x27D4EB2Fu;
    return h >> 24;
}

lz_value_t *build_object(walk &w, simdjson::dom::object object, int depth) noexcept {
    if (depth > LZ_JSON_MAX_DEPTH) {
        w.too_deep = true;
        return nullptr;
    }
    lz_value_t *value = scalar(LZ_VALUE_OBJECT);
    if (!value) return nullptr;
    size_t n = object.size();
    if (n && lz__value_reserve(value, n) < 0) {
        lz_value_destroy(&value);
        return nullptr;
    }
    // Keys seen so far, as bits: checking every key against all earlier
    // ones for a repeat cost more than the rest of building the object.
    uint64_t seen[4] = {0, 0, 0, 0};
    for (simdjson::dom::key_value_pair field : object) {
        std::string_view key = field.key;
        size_t len = key.size();
        // Keys are C strings in lz_value_t: one holding "\u0000" ends there.
        if (w.escapes) {
            const void *nul = std::memchr(key.data(), '\0', len);
            if (nul) len = static_cast<size_t>(static_cast<const char *>(nul) - key.data());
        }
        lz_value_t *item = build(w, field.value, depth + 1);
        if (!item) {
            lz_value_destroy(&value);
            return nullptr;
        }
        unsigned bit = key_bit(key.data(), len);
        uint64_t mask = uint64_t(1) << (bit & 63);
        bool maybe_seen = seen[bit >> 6] & mask;
        seen[bit >> 6] |= mask;
        // A repeated key keeps its first place and takes the last value
        // (setn looks for it and replaces); a new one is simply appended.
        int rc = maybe_seen ? lz__value_object_setn(value, key.data(), len, item)
                            : lz__value_object_append(value, key.data(), len, item);
        if (rc < 0) {
            lz_value_destroy(&value);
            return nullptr;
        }
    }
    return value;
}

lz_value_t *number(lz_value_type_t type, int64_t i, double d) noexcept {
    lz_value_t *value = scalar(type);
    if (value && type == LZ_VALUE_INT) value->u.i = i;
    else if (value) value->u.d = d;
    return value;
}

// depth counts the containers e is in plus e itself, if it is one.
lz_value_t *build(walk &w, element e, int depth) noexcept {
    switch (e.type()) {
    case element_type::OBJECT: return build_object(w, e.get_object().value_unsafe(), depth);
    case element_type::ARRAY: return build_array(w, e.get_array().value_unsafe(), depth);
    case element_type::STRING: {
        std::string_view s = e.get_string().value_unsafe();
        return lz__value_blob(LZ_VALUE_STRING, s.data(), s.size());
    }
    case element_type::INT64: return number(LZ_VALUE_INT, e.get_int64().value_unsafe(), 0);
    // simdjson only keeps an integer unsigned when it is past INT64_MAX:
    // such a number reads as the nearest double, as a longer one would.
    case element_type::UINT64:
        return number(LZ_VALUE_DOUBLE, 0, static_cast<double>(e.get_uint64().value_unsafe()));
    case element_type::DOUBLE: return number(LZ_VALUE_DOUBLE, 0, e.get_double().value_unsafe());
    case element_type::BOOL: {
        lz_value_t *value = scalar(LZ_VALUE_BOOL);
        if (value) value->u.b = e.get_bool().value_unsafe();
        return value;
    }
    case element_type::NULL_VALUE: return scalar(LZ_VALUE_NULL);
    }
    return nullptr;
}

// classify sorts simdjson's parse errors into what json.c should do next.
lz_json_read_status_t classify(simdjson::error_code error) noexcept {
    switch (error) {
    case simdjson::SUCCESS: return LZ_JSON_READ_OK;
    // simdjson refuses integers outside [INT64_MIN, UINT64_MAX] and doubles
    // that overflow (and also malformed numbers, which yajl then rejects
    // with its own words); we read such numbers as doubles.
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE:
    // Nothing to do with the input itself.
    case simdjson::CAPACITY:
    case simdjson::MEMALLOC:
    case simdjson::UNSUPPORTED_ARCHITECTURE:
    case simdjson::UNINITIALIZED:
    case simdjson::UNEXPECTED_ERROR: return LZ_JSON_READ_DECLINED;
    default: return LZ_JSON_READ_INVALID;
    }
}

lz_json_read_status_t parse_and_build(reader &r, const void *data, size_t size, lz_value_t **out,
                                      const char **reason) noexcept {
    simdjson::error_code error = r.reserve(size);
    element root;
    if (!data) data = ""; // size is 0: simdjson then says EMPTY
    if (!error) error = r.parser.parse(static_cast<const uint8_t *>(data), size, true).get(root);
    if (error) {
        *reason = simdjson::error_message(error);
        return classify(error);
    }
    walk w = {size && std::memchr(data, '\\', size) != nullptr, false};
    *out = build(w, root, 1);
    if (*out) return LZ_JSON_READ_OK;
    if (!w.too_deep) return LZ_JSON_READ_NOMEM;
    *reason = simdjson::error_message(simdjson::DEPTH_ERROR);
    return LZ_JSON_READ_INVALID;
}

} // namespace

extern "C" lz_json_read_status_t lz__json_read(const void *data, size_t size, lz_value_t **out,
                                               const char **reason) noexcept {
    *out = nullptr;
    *reason = nullptr;
    if (size <= keep_capacity) return parse_and_build(thread_reader, data, size, out, reason);
    reader once;
    return parse_and_build(once, data, size, out, reason);
}

// {fmt}'s shortest round-trip formatting (Dragonbox), through its public
// API: its digits and exponent form ("1e+20", "1e-07") are Python repr's
// already; only integral text needs the ".0" repr adds. The longest text
// (a sign, 17 digits, a point, "e-308") is well within LZ_JSON_DOUBLE_MAX.
extern "C" size_t lz__json_format_double(double d, char *out) noexcept {
    size_t len = fmt::format_to_n(out, LZ_JSON_DOUBLE_MAX - 2, FMT_COMPILE("{}"), d).size;
    if (!std::memchr(out, '.', len) && !std::memchr(out, 'e', len)) {
        std::memcpy(out + len, ".0", 2);
        len += 2;
    }
    return len;
}
