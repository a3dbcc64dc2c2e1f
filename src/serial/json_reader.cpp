/* The JSON reader: simdjson's DOM parser validates the whole document
 * (grammar, UTF-8, depth) in one pass, then one walk over its elements
 * builds the lz_value_t tree. yajl's token-by-token callbacks cost about
 * five times as much for a small message. Only simdjson's public DOM API
 * (no internal namespace, no private members: they may change in any
 * release) and its error-code API are used, and lz__json_read is
 * noexcept: nothing can unwind into C. */
#include <fmt/compile.h>
#include <simdjson.h>

#include <pthread.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

#include "serial/json_reader.h"
#include "serial/value.h"

namespace {

// A thread keeps its parser (tape, string buffer, structural index, padded
// copy of the input) for documents up to this size.
constexpr size_t keep_capacity = 64 * 1024;
// The first allocation covers typical messages, so growth is rare.
constexpr size_t first_capacity = 4096;

// A larger document is read with a second parser, which the thread keeps
// for the next large one: made afresh for each, its buffers were fresh pages
// every time, and the page faults and copies into them cost more than the
// parse (a 4 MiB request/reply round trip spent a quarter of its time
// faulting; docs/performance.md, session 39). What it holds is what its
// largest document touched: the padded copy (the document's size), the
// string buffer (its strings' bytes), and 12 bytes per structural character
// in the tape and index (about twice a string-heavy document's size; up to
// about 7 times for one of nothing but small numbers); the rest is reserved,
// never touched. simdjson sizes the tape, string buffer and padded copy to
// each new largest document, so only a new largest one allocates. Bounded:
// - a document over large_keep_max is read with a parser of its own,
//   freed right after (the kept one stays as it was);
// - a thread back to small documents lets it go after large_idle_documents
//   of them in a row.
// A thread that reads nothing more keeps it until it exits.
constexpr size_t large_keep_max = 8 * 1024 * 1024;
constexpr unsigned large_idle_documents = 256;

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
struct parser_for {
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

// A thread's parsers: the small one, and the large one while kept.
struct reader {
    parser_for small;
    parser_for *large = nullptr;
    unsigned small_run = 0; // small documents read since the last large one
    ~reader() { delete large; }
};

// One per thread, freed when the thread exits by a pthread key's
// destructor. Not a C++ thread_local with a destructor: glibc registers
// that destructor on the thread's first use with an allocation, and
// aborts the process when the allocation fails; a failed
// pthread_setspecific only costs the thread its reader. It is reached
// through initial-exec pointers, which cost no __tls_get_addr call per
// message in a shared library: thread_reader only while the thread keeps
// no large parser, so that a small document's one test is the one it
// always had; held_reader always (read_other: the first document, a large
// one, and small ones while a large parser is kept).
thread_local reader *thread_reader __attribute__((tls_model("initial-exec"))) = nullptr;
thread_local reader *held_reader __attribute__((tls_model("initial-exec"))) = nullptr;

pthread_key_t reader_key;
bool reader_key_made;
pthread_once_t reader_key_once = PTHREAD_ONCE_INIT;

void free_reader(void *r) {
    thread_reader = held_reader = nullptr;
    delete static_cast<reader *>(r);
}

void make_reader_key() { reader_key_made = pthread_key_create(&reader_key, free_reader) == 0; }

// make_thread_reader makes the thread's reader on its first document;
// nullptr when out of memory (the caller then reads with one of its own).
reader *make_thread_reader() noexcept {
    pthread_once(&reader_key_once, make_reader_key);
    reader *r = reader_key_made ? new (std::nothrow) reader : nullptr;
    if (r && pthread_setspecific(reader_key, r) != 0) {
        delete r;
        r = nullptr;
    }
    return thread_reader = held_reader = r;
}

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
    bool add(lz_value_t *object, lz_key_index_t *index, const char *key, size_t len, lz_value_t *item) noexcept {
        return lz__value_object_add(object, index, key, len, item) == 0;
    }
    void drop(lz_value_t *value) noexcept { lz_value_destroy(&value); }
    lz_value_t *untag(lz_value_t *object) noexcept { return lz__json_untag(object, nullptr); }
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
    // With an index (a large object): the earlier value stays in the arena.
    bool add(lz_value_t *object, lz_key_index_t *index, const char *key, size_t len, lz_value_t *item) noexcept {
        size_t earlier = lz__key_index_find_or_add(index, object, key, len, object->u.object.len);
        if (earlier == SIZE_MAX) return append(object, key, len, item);
        object->u.object.members[earlier].value = item;
        return true;
    }
    void drop(lz_value_t *) noexcept {}
    lz_value_t *untag(lz_value_t *object) noexcept { return lz__json_untag(object, arena); }
};

using simdjson::dom::element;
using simdjson::dom::element_type;

// What one walk over the document needs besides the element.
template <class Nodes> struct walk {
    Nodes nodes;
    // Whether the input holds a backslash at all: without one no key can
    // hold "\u0000", so keys need no scan for a NUL.
    bool escapes;
    // Set when the walk stops at a container past LZ_JSON_MAX_DEPTH
    // (otherwise a stop means out of memory).
    bool too_deep;
};

// simdjson's size() of an array or object is exact below this value, and
// means "this many or more" at it (its documented saturation).
constexpr size_t size_saturated = 0xFFFFFF;

// exact_size returns how many elements (an array) or members (an object)
// container holds, counting them when simdjson's size() saturates, so the
// child array is made once at its exact size.
template <class Container> size_t exact_size(const Container &container) noexcept {
    size_t n = container.size();
    if (n < size_saturated) return n;
    n = 0;
    for (auto it = container.begin(), end = container.end(); it != end; ++it) n++;
    return n;
}

// build makes the value of e; NULL when out of memory or too deep. It is
// inlined into the loops over a container's children, so only a child
// container costs a call; recursion is bounded by the depth limits of
// simdjson and of the walk.
#define LZ_JSON_INLINE inline __attribute__((always_inline))
template <class Nodes> LZ_JSON_INLINE lz_value_t *build(walk<Nodes> &w, element e, int depth) noexcept;

// container makes an array or object node with room for n children, or
// NULL (past the depth limit, or out of memory). Inlined: a call for each
// container measured 45 instructions a task message.
template <class Nodes>
LZ_JSON_INLINE lz_value_t *container(walk<Nodes> &w, lz_value_type_t type, size_t n, int depth) noexcept {
    if (depth > LZ_JSON_MAX_DEPTH) {
        w.too_deep = true;
        return nullptr;
    }
    lz_value_t *value = w.nodes.node(type);
    if (value && n && !w.nodes.children(value, n)) {
        w.nodes.drop(value);
        return nullptr;
    }
    return value;
}

template <class Nodes>
__attribute__((noinline)) lz_value_t *build_array(walk<Nodes> &w, simdjson::dom::array array, int depth) noexcept {
    lz_value_t *value = container(w, LZ_VALUE_ARRAY, exact_size(array), depth);
    if (!value) return nullptr;
    for (auto it = array.begin(), end = array.end(); it != end;) {
        element child = *it;
        // Stepping past the child before building it lets the compiler
        // reuse what it read of the document: once a node is written it
        // must assume the document changed, and read it all again.
        ++it;
        lz_value_t *item = build(w, child, depth + 1);
        if (!item) {
            w.nodes.drop(value);
            return nullptr;
        }
        value->u.array.items[value->u.array.len++] = item; // room made above
    }
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

// key_index owns an lz_key_index_t (see value.h) for one large object.
struct key_index {
    lz_key_index_t index{nullptr, 0};
    key_index() noexcept = default;
    key_index(const key_index &) = delete;
    key_index &operator=(const key_index &) = delete;
    // Only a large object has one: the others skip a call to free(NULL).
    ~key_index() {
        if (active()) lz__key_index_fini(&index);
    }
    bool active() const noexcept { return index.slots != nullptr; }
};

template <class Nodes>
__attribute__((noinline)) lz_value_t *build_object(walk<Nodes> &w, simdjson::dom::object object, int depth) noexcept {
    size_t members = exact_size(object);
    lz_value_t *value = container(w, LZ_VALUE_OBJECT, members, depth);
    if (!value) return nullptr;
    key_index index;
    if (members > LZ_KEY_SCAN_MAX && lz__key_index_init(&index.index, members) != 0) {
        w.nodes.drop(value);
        return nullptr;
    }
    // Keys seen so far, as bits: checking every key against all earlier
    // ones for a repeat cost more than the rest of building the object.
    uint64_t seen[4] = {0, 0, 0, 0};
    for (auto it = object.begin(), end = object.end(); it != end;) {
        const char *key = it.key_c_str();
        size_t len = it.key_length();
        element child = it.value();
        ++it; // before building the child, as in build_array
        // Keys are C strings in lz_value_t: one holding "\u0000" ends there.
        if (w.escapes) {
            const void *nul = std::memchr(key, '\0', len);
            if (nul) len = static_cast<size_t>(static_cast<const char *>(nul) - key);
        }
        lz_value_t *item = build(w, child, depth + 1);
        if (!item) {
            w.nodes.drop(value);
            return nullptr;
        }
        // A repeated key keeps its first place and takes the last value; a
        // new one is simply appended.
        bool added;
        if (index.active()) {
            added = w.nodes.add(value, &index.index, key, len, item);
        } else {
            unsigned bit = key_bit(key, len);
            uint64_t mask = uint64_t(1) << (bit & 63);
            bool maybe_seen = seen[bit >> 6] & mask;
            seen[bit >> 6] |= mask;
            added = maybe_seen ? w.nodes.replace(value, key, len, item) : w.nodes.append(value, key, len, item);
        }
        if (!added) {
            w.nodes.drop(value);
            return nullptr;
        }
    }
    // Only an object of two members can be a tagged one (a repeated key
    // counts once, as in the Python dict its object hook sees).
    return value->u.object.len == 2 ? w.nodes.untag(value) : value;
}

// number makes a node of type (an int or a double) holding n. The number
// is read from the document before the node is made: the compiler cannot
// know that filling a node leaves the document alone, and would read it
// again.
template <class Nodes, class Number>
LZ_JSON_INLINE lz_value_t *number(walk<Nodes> &w, lz_value_type_t type, Number n) noexcept {
    lz_value_t *value = w.nodes.node(type);
    if (!value) return nullptr;
    if (type == LZ_VALUE_INT) value->u.i = static_cast<int64_t>(n);
    else value->u.d = static_cast<double>(n);
    return value;
}

// depth counts the containers e is in plus e itself, if it is one. The
// type() switch already checked each get_*'s type, so value_unsafe().
template <class Nodes> LZ_JSON_INLINE lz_value_t *build(walk<Nodes> &w, element e, int depth) noexcept {
    switch (e.type()) {
    case element_type::OBJECT: return build_object(w, e.get_object().value_unsafe(), depth);
    case element_type::ARRAY: return build_array(w, e.get_array().value_unsafe(), depth);
    case element_type::STRING: return w.nodes.string(e.get_string().value_unsafe());
    case element_type::INT64: return number(w, LZ_VALUE_INT, e.get_int64().value_unsafe());
    // simdjson only keeps an integer unsigned when it is past INT64_MAX:
    // such a number reads as the nearest double, as a longer one would.
    case element_type::UINT64: return number(w, LZ_VALUE_DOUBLE, e.get_uint64().value_unsafe());
    case element_type::DOUBLE: return number(w, LZ_VALUE_DOUBLE, e.get_double().value_unsafe());
    case element_type::BOOL: {
        bool b = e.get_bool().value_unsafe();
        lz_value_t *value = w.nodes.node(LZ_VALUE_BOOL);
        if (value) value->u.b = b;
        return value;
    }
    case element_type::NULL_VALUE: return w.nodes.node(LZ_VALUE_NULL);
    }
    return nullptr; // no other type exists
}

// build_root builds the parsed document's value (root) into *out with nodes.
template <class Nodes>
lz_json_read_status_t build_root(Nodes nodes, element root, bool escapes, lz_value_t **out,
                                 const char **reason) noexcept {
    walk<Nodes> w = {nodes, escapes, false};
    *out = build(w, root, 1);
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
    // with its own words); yajl reads such integers as doubles, and refuses
    // the overflowing doubles with the byte offset (json.c, on_number).
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

lz_json_read_status_t parse_and_build(parser_for &r, const void *data, size_t size, lz_arena_t *arena,
                                      lz_value_t **out, const char **reason) noexcept {
    simdjson::error_code error = r.reserve(size);
    element root;
    if (!data) data = ""; // size is 0: simdjson then says EMPTY
    if (!error) error = r.parser.parse(static_cast<const uint8_t *>(data), size, true).get(root);
    if (error) {
        *reason = simdjson::error_message(error);
        return classify(error);
    }
    bool escapes = size && std::memchr(data, '\\', size) != nullptr;
    return arena ? build_root(arena_nodes{arena}, root, escapes, out, reason)
                 : build_root(heap_nodes{}, root, escapes, out, reason);
}

// read_large reads a document over keep_capacity with r's large parser,
// made on the first one; a document over large_keep_max, or one the thread
// has no memory to keep a parser for, with a parser of its own.
lz_json_read_status_t read_large(reader &r, const void *data, size_t size, lz_arena_t *arena, lz_value_t **out,
                                 const char **reason) noexcept {
    if (size <= large_keep_max && (r.large || (r.large = new (std::nothrow) parser_for))) {
        thread_reader = nullptr; // small documents now count towards letting it go
        r.small_run = 0;
        return parse_and_build(*r.large, data, size, arena, out, reason);
    }
    parser_for once;
    return parse_and_build(once, data, size, arena, out, reason);
}

// read_other reads what the small path does not: the thread's first
// document, a large one, and small ones while a large parser is kept,
// which it lets go after large_idle_documents of them in a row.
__attribute__((noinline)) lz_json_read_status_t read_other(const void *data, size_t size, lz_arena_t *arena,
                                                           lz_value_t **out, const char **reason) noexcept {
    reader *r = held_reader ? held_reader : make_thread_reader();
    if (!r) {
        parser_for once; // no memory for the thread's reader
        return parse_and_build(once, data, size, arena, out, reason);
    }
    if (size > keep_capacity) return read_large(*r, data, size, arena, out, reason);
    if (r->large && ++r->small_run >= large_idle_documents) {
        delete r->large;
        r->large = nullptr;
        thread_reader = r;
    }
    return parse_and_build(r->small, data, size, arena, out, reason);
}

} // namespace

extern "C" lz_json_read_status_t lz__json_read(const void *data, size_t size, lz_arena_t *arena, lz_value_t **out,
                                               const char **reason) noexcept {
    *out = nullptr;
    *reason = nullptr;
    reader *kept = size <= keep_capacity ? thread_reader : nullptr;
    if (kept) return parse_and_build(kept->small, data, size, arena, out, reason);
    return read_other(data, size, arena, out, reason);
}

extern "C" size_t lz__json_reader_large_capacity(void) noexcept {
    reader *r = held_reader;
    return r && r->large ? r->large->parser.capacity() : 0;
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
