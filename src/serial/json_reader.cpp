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

// Where a walk makes its nodes: heap_nodes for a value the caller owns
// (value.c's node cache; a failed walk frees what it built), arena_nodes
// for a received message's (its arena; what a failed walk built stays
// there until the message goes). Nodes are made through value.c's hidden
// helpers and filled here directly: the public constructors cost a PLT
// call and their argument checks per node.
struct heap_nodes {
    lz_value_t *node(lz_value_type_t type) noexcept { return lz__value_new(type, 0); }
    lz_value_t *string(std::string_view s) noexcept { return lz__value_blob(LZ_VALUE_STRING, s.data(), s.size()); }
    bool children(lz_value_t *container, size_t n) noexcept { return lz__value_reserve(container, n) == 0; }
    // append and replace take ownership of item (freed on failure).
    bool append(lz_value_t *object, const char *key, size_t len, lz_value_t *item) noexcept {
        return lz__value_object_append(object, key, len, item) == 0;
    }
    bool replace(lz_value_t *object, const char *key, size_t len, lz_value_t *item) noexcept {
        return lz__value_object_setn(object, key, len, item) == 0;
    }
    void drop(lz_value_t *value) noexcept { lz_value_destroy(&value); }
};

struct arena_nodes {
    lz_arena_t *arena;
    lz_value_t *node(lz_value_type_t type) noexcept { return lz__arena_node(arena, type, 0); }
    lz_value_t *string(std::string_view s) noexcept {
        return lz__arena_blob(arena, LZ_VALUE_STRING, s.data(), s.size());
    }
    bool children(lz_value_t *container, size_t n) noexcept { return lz__arena_children(arena, container, n); }
    // The members were sized from simdjson's count, which repeats only
    // lower: an append always has room.
    bool append(lz_value_t *object, const char *key, size_t len, lz_value_t *item) noexcept {
        return lz__arena_append(arena, object, key, len, item);
    }
    // The earlier value stays in the arena, unreachable, until the release.
    bool replace(lz_value_t *object, const char *key, size_t len, lz_value_t *item) noexcept {
        lz_member_t *member = lz__value_find_member(object, key, len);
        if (!member) return append(object, key, len, item);
        member->value = item;
        return true;
    }
    void drop(lz_value_t *) noexcept {}
};

// What one walk over the tape needs.
template <class Nodes> struct walk {
    Nodes nodes;
    // The document simdjson's stage 2 wrote: one word per element (two for
    // a number), its type character in the top byte and an index or offset
    // below (simdjson's doc/tape.md). Read directly: its element API
    // re-derives the type and bounds of every element it is asked about,
    // and cost as much as building our nodes.
    const uint64_t *tape;
    const uint8_t *strings; // each a 32-bit length, the bytes and a NUL
    // Whether the input holds a backslash at all: without one no key can
    // hold "\u0000", so keys need no scan for a NUL.
    bool escapes;
    // Set when the walk stops at a container past LZ_JSON_MAX_DEPTH
    // (otherwise a stop means out of memory).
    bool too_deep;
};

constexpr uint64_t tape_payload = simdjson::internal::JSON_VALUE_MASK;
constexpr uint32_t tape_count = simdjson::internal::JSON_COUNT_MASK;

inline char tape_type(uint64_t word) noexcept { return static_cast<char>(word >> 56); }

// A container's word holds the index just past its closing word.
inline size_t tape_after_container(uint64_t word) noexcept { return static_cast<uint32_t>(word); }

// tape_after returns the index of the element after the one at i.
inline size_t tape_after(const uint64_t *tape, size_t i) noexcept {
    switch (tape_type(tape[i])) {
    case '{':
    case '[': return tape_after_container(tape[i]);
    case 'l':
    case 'u':
    case 'd': return i + 2;
    default: return i + 1;
    }
}

// tape_children returns how many elements (members: key and value) the
// container at i holds: stage 2 counts them, up to a saturated 0xFFFFFF.
inline size_t tape_children(const uint64_t *tape, size_t i, bool object) noexcept {
    size_t n = (tape[i] >> 32) & tape_count;
    if (n < tape_count) return n;
    size_t close = tape_after_container(tape[i]) - 1;
    n = 0;
    for (size_t j = i + 1; j < close; j = tape_after(tape, object ? j + 1 : j)) n++;
    return n;
}

template <class Nodes> std::string_view tape_string(const walk<Nodes> &w, uint64_t word) noexcept {
    const uint8_t *at = w.strings + (word & tape_payload);
    uint32_t len;
    std::memcpy(&len, at, sizeof len);
    return std::string_view(reinterpret_cast<const char *>(at + sizeof len), len);
}

// build makes the value of the element at tape index i and moves i past
// it; NULL when out of memory or too deep. It is inlined into the loops
// over a container's children, so only a child container costs a call;
// recursion is bounded by the depth limits of simdjson and of the walk.
#define LZ_JSON_INLINE inline __attribute__((always_inline))
template <class Nodes> LZ_JSON_INLINE lz_value_t *build(walk<Nodes> &w, size_t &i, int depth) noexcept;

// container makes an array or object node with room for the children of
// the container at i, or NULL (past the depth limit, or out of memory).
template <class Nodes> lz_value_t *container(walk<Nodes> &w, lz_value_type_t type, size_t i, int depth) noexcept {
    if (depth > LZ_JSON_MAX_DEPTH) {
        w.too_deep = true;
        return nullptr;
    }
    lz_value_t *value = w.nodes.node(type);
    size_t n = tape_children(w.tape, i, type == LZ_VALUE_OBJECT);
    if (value && n && !w.nodes.children(value, n)) {
        w.nodes.drop(value);
        return nullptr;
    }
    return value;
}

template <class Nodes> __attribute__((noinline)) lz_value_t *build_array(walk<Nodes> &w, size_t &i, int depth) noexcept {
    lz_value_t *value = container(w, LZ_VALUE_ARRAY, i, depth);
    if (!value) return nullptr;
    size_t close = tape_after_container(w.tape[i]) - 1;
    for (i++; i < close;) {
        lz_value_t *item = build(w, i, depth + 1);
        if (!item) {
            w.nodes.drop(value);
            return nullptr;
        }
        value->u.array.items[value->u.array.len++] = item; // room made above
    }
    i = close + 1;
    return value;
}

// key_bit picks one of 256 bits for a key, from its length and its first
// and last bytes: a key whose bit is still clear is certainly not a repeat.
// (key[0] is the string's NUL when len is 0.)
inline unsigned key_bit(const char *key, size_t len) noexcept {
    uint32_t h = static_cast<uint32_t>(len) * 0x9E3779B1u;
    h ^= static_cast<unsigned char>(key[0]) * 0x85EBCA6Bu;
    h ^= static_cast<unsigned char>(key[len ? len - 1 : 0]) * 0xC2B2AE35u;
    return h >> 24;
}

template <class Nodes> __attribute__((noinline)) lz_value_t *build_object(walk<Nodes> &w, size_t &i, int depth) noexcept {
    lz_value_t *value = container(w, LZ_VALUE_OBJECT, i, depth);
    if (!value) return nullptr;
    size_t close = tape_after_container(w.tape[i]) - 1;
    // Keys seen so far, as bits: checking every key against all earlier
    // ones for a repeat cost more than the rest of building the object.
    uint64_t seen[4] = {0, 0, 0, 0};
    for (i++; i < close;) {
        std::string_view key = tape_string(w, w.tape[i++]);
        size_t len = key.size();
        // Keys are C strings in lz_value_t: one holding "\u0000" ends there.
        if (w.escapes) {
            const void *nul = std::memchr(key.data(), '\0', len);
            if (nul) len = static_cast<size_t>(static_cast<const char *>(nul) - key.data());
        }
        lz_value_t *item = build(w, i, depth + 1);
        if (!item) {
            w.nodes.drop(value);
            return nullptr;
        }
        unsigned bit = key_bit(key.data(), len);
        uint64_t mask = uint64_t(1) << (bit & 63);
        bool maybe_seen = seen[bit >> 6] & mask;
        seen[bit >> 6] |= mask;
        // A repeated key keeps its first place and takes the last value
        // (replace looks for it); a new one is simply appended.
        bool added = maybe_seen ? w.nodes.replace(value, key.data(), len, item)
                                : w.nodes.append(value, key.data(), len, item);
        if (!added) {
            w.nodes.drop(value);
            return nullptr;
        }
    }
    i = close + 1;
    return value;
}

// number makes a number node from the bits after the word at i (an int
// for type 'l', else a double) and moves i past both.
template <class Nodes> LZ_JSON_INLINE lz_value_t *number(walk<Nodes> &w, size_t &i, char type) noexcept {
    uint64_t bits = w.tape[i + 1];
    i += 2;
    lz_value_t *value = w.nodes.node(type == 'l' ? LZ_VALUE_INT : LZ_VALUE_DOUBLE);
    if (!value) return nullptr;
    if (type == 'l') value->u.i = static_cast<int64_t>(bits);
    // simdjson only keeps an integer unsigned when it is past INT64_MAX:
    // such a number reads as the nearest double, as a longer one would.
    else if (type == 'u') value->u.d = static_cast<double>(bits);
    else std::memcpy(&value->u.d, &bits, sizeof value->u.d);
    return value;
}

// depth counts the containers the element is in plus itself, if it is one.
template <class Nodes> LZ_JSON_INLINE lz_value_t *build(walk<Nodes> &w, size_t &i, int depth) noexcept {
    uint64_t word = w.tape[i];
    char type = tape_type(word);
    switch (type) {
    case '{': return build_object(w, i, depth);
    case '[': return build_array(w, i, depth);
    case 'l':
    case 'u':
    case 'd': return number(w, i, type);
    default: break;
    }
    i++;
    switch (type) {
    case '"': return w.nodes.string(tape_string(w, word));
    case 't':
    case 'f': {
        lz_value_t *value = w.nodes.node(LZ_VALUE_BOOL);
        if (value) value->u.b = type == 't';
        return value;
    }
    case 'n': return w.nodes.node(LZ_VALUE_NULL);
    default: return nullptr; // no other word starts a value on a valid tape
    }
}

// walk_tape builds the parsed document's value into *out with nodes.
template <class Nodes>
lz_json_read_status_t walk_tape(Nodes nodes, const simdjson::dom::document &doc, bool escapes, lz_value_t **out,
                                const char **reason) noexcept {
    walk<Nodes> w = {nodes, doc.tape.get(), doc.string_buf.get(), escapes, false};
    size_t i = 1; // after the root word
    *out = build(w, i, 1);
    if (*out) return LZ_JSON_READ_OK;
    if (!w.too_deep) return LZ_JSON_READ_NOMEM;
    *reason = simdjson::error_message(simdjson::DEPTH_ERROR);
    return LZ_JSON_READ_INVALID;
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

lz_json_read_status_t parse_and_build(reader &r, const void *data, size_t size, lz_arena_t *arena, lz_value_t **out,
                                      const char **reason) noexcept {
    simdjson::error_code error = r.reserve(size);
    if (!data) data = ""; // size is 0: simdjson then says EMPTY
    if (!error) error = r.parser.parse(static_cast<const uint8_t *>(data), size, true).error();
    if (error) {
        *reason = simdjson::error_message(error);
        return classify(error);
    }
    bool escapes = size && std::memchr(data, '\\', size) != nullptr;
    return arena ? walk_tape(arena_nodes{arena}, r.parser.doc, escapes, out, reason)
                 : walk_tape(heap_nodes{}, r.parser.doc, escapes, out, reason);
}

} // namespace

extern "C" lz_json_read_status_t lz__json_read(const void *data, size_t size, lz_arena_t *arena, lz_value_t **out,
                                               const char **reason) noexcept {
    *out = nullptr;
    *reason = nullptr;
    if (size <= keep_capacity) return parse_and_build(thread_reader, data, size, arena, out, reason);
    reader once;
    return parse_and_build(once, data, size, arena, out, reason);
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
