/* The envelope: what each pattern puts on the wire (docs/protocol.md).
 * Frames follow the Python LiberZMQ byte for byte where it defines them,
 * so Python and C services interoperate; extensions ride as extra keys. */
#include "core/envelope.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/trace.h"
#include "serial/registry.h"
#include "serial/value.h"

/* ---- small shared pieces ------------------------------------------------ */

// Microseconds, like the Python side's timestamps in practice: a whole
// number of microseconds divided once by 10^6 is the double nearest that
// decimal, so the JSON writer prints it exactly without printf.
double lz__now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000) / 1e6;
}

// A per-thread xorshift generator seeded from the kernel: ids must be
// unique, not secret, and getrandom per id would cost a system call. The
// state is initial-exec TLS: the default model for a shared library costs
// two __tls_get_addr calls per id.
static _Thread_local uint64_t random_state __attribute__((tls_model("initial-exec")));
static pthread_once_t reseed_once = PTHREAD_ONCE_INIT;

// A forked child's one thread would go on with its parent's state and
// repeat the parent's ids: it seeds afresh instead.
static void reseed_in_child(void) { random_state = 0; }
static void register_reseed(void) { (void)pthread_atfork(NULL, NULL, reseed_in_child); }

static __attribute__((noinline)) uint64_t random_seed(void) {
    pthread_once(&reseed_once, register_reseed);
    uint64_t seed = 0;
    while (seed == 0)
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
            seed = ((uint64_t)time(NULL) ^ (uint64_t)getpid() << 32) | 1;
    return seed;
}

static inline uint64_t next_random(void) {
    uint64_t state = random_state ? random_state : random_seed();
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    random_state = state;
    return state;
}

uint64_t lz__random64(void) { return next_random(); }

// hex8 writes the 8 hex digits of v, most significant first: the nibbles
// are spread one per byte (and put in memory order) with shifts and masks,
// then made digits by adding '0', plus 39 more where a nibble is above 9
// (nibble + 6 carries into bit 4), all eight at once. A loop per digit cost
// more than the rest of encoding a task.
static void hex8(uint32_t v, char out[8]) {
    uint64_t x = v;
    x = (x | x << 16) & UINT64_C(0x0000FFFF0000FFFF);
    x = (x | x << 8) & UINT64_C(0x00FF00FF00FF00FF);
    x = (x | x << 4) & UINT64_C(0x0F0F0F0F0F0F0F0F); // byte i: nibble i
    x = __builtin_bswap64(x);                          // byte i: nibble 7 - i
    uint64_t above9 = ((x + UINT64_C(0x0606060606060606)) >> 4) & UINT64_C(0x0101010101010101);
    x += UINT64_C(0x3030303030303030) + above9 * ('a' - '0' - 10);
    memcpy(out, &x, 8);
}

void lz__hex64(uint64_t v, char out[16]) {
    hex8((uint32_t)(v >> 32), out);
    hex8((uint32_t)v, out + 8);
}

// uuid4_format writes the 128 bits hi:lo as a UUID v4, its version and
// variant bits set.
static void uuid4_format(uint64_t hi, uint64_t lo, char out[37]) {
    hi = (hi & ~UINT64_C(0xF000)) | UINT64_C(0x4000);           // version 4
    lo = (lo & ~(UINT64_C(0xC) << 60)) | (UINT64_C(0x8) << 60); // variant 10
    char mid[8];
    hex8((uint32_t)(hi >> 32), out); // xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx
    hex8((uint32_t)hi, mid);
    memcpy(out + 9, mid, 4);
    memcpy(out + 14, mid + 4, 4);
    hex8((uint32_t)(lo >> 32), mid);
    memcpy(out + 19, mid, 4);
    memcpy(out + 24, mid + 4, 4);
    hex8((uint32_t)lo, out + 28);
    out[8] = out[13] = out[18] = out[23] = '-';
    out[36] = '\0';
}

void lz__uuid4(char out[37]) {
    uint64_t hi = next_random();
    uuid4_format(hi, next_random(), out);
}

int lz__uuid4_secret(char out[37]) {
    uint64_t bits[2];
    for (size_t got = 0; got < sizeof bits;) { // a signal may cut a read short
        ssize_t n = getrandom((char *)bits + got, sizeof bits - got, 0);
        if (n < 0 && errno != EINTR) return lz__fail(LZ_EIO, "getrandom: %s", strerror(errno));
        if (n > 0) got += (size_t)n;
    }
    uuid4_format(bits[0], bits[1], out);
    return LZ_OK;
}

int lz__topic_refused(void) { return lz__fail(LZ_EPROTOCOL, "topic is not UTF-8 text"); }

// copy_topic makes size bytes at data the message's topic, whatever they are.
static int copy_topic(lz_message_t *msg, const void *data, size_t size) {
    if (size >= sizeof msg->topic_inline) {
        msg->topic = malloc(size + 1);
        if (!msg->topic) {
            msg->topic = msg->topic_inline;
            return lz__fail(LZ_ENOMEM, "message: out of memory");
        }
    }
    memcpy(msg->topic, data, size);
    msg->topic[size] = '\0';
    msg->topic_size = size;
    return LZ_OK;
}

static int set_topic(lz_message_t *msg, const void *data, size_t size) {
    return lz__topic_check(data, size) == LZ_OK ? copy_topic(msg, data, size) : LZ_EPROTOCOL;
}

// take_payload moves frame, of size bytes, into a new message and decodes it
// into *decoded: held by the message (slot, arena) or frozen, which the
// message's owner frees with lz__value_release until the message holds it.
static int take_payload(const lz_serializer_t *serializer, zmq_msg_t *frame, size_t size, lz_message_t **out,
                        lz_value_t **decoded) {
    lz_message_t *msg = lz__message_new();
    if (!msg) return LZ_ENOMEM;
    lz__message_take_payload(msg, frame);
    int rc = lz__serializer_decode_held(serializer, zmq_msg_data(&msg->payload), size, &msg->value_slot,
                                        &msg->arena, decoded);
    if (rc != LZ_OK) {
        lz_message_destroy(&msg);
        return rc;
    }
    *out = msg;
    return LZ_OK;
}

static int fail_message(lz_message_t **msg_p, int rc) {
    lz_message_destroy(msg_p);
    return rc;
}

// The members of a decoded envelope a receiver reads, found in one pass
// over the object (a lookup per field scanned it five times). Keys are
// unique in a decoded object, so the first match is the only one.
typedef struct envelope_fields {
    const lz_value_t *type, *action, *id, *priority, *timestamp;
    size_t data; // the index of "data", or SIZE_MAX
} envelope_fields_t;

// The id keys, read below and written by the envelope kinds further on.
#define TASK_ID_KEY "task_id"
#define REQUEST_ID_KEY "request_id"

// KEY_IS compares with a literal key: memcmp of a constant size is a load
// and a compare, not a call.
#define KEY_IS(key, len, literal) ((len) == sizeof(literal) - 1 && memcmp((key), (literal), sizeof(literal) - 1) == 0)

// scan_envelope finds the fields of value, an object or not (then none);
// ids are "task_id" or "request_id" (the envelope's kind), and a key is
// told by its length first.
static envelope_fields_t scan_envelope(const lz_value_t *value, bool task) {
    envelope_fields_t f = {.data = SIZE_MAX};
    if (lz_value_type(value) != LZ_VALUE_OBJECT) return f;
    for (size_t i = 0; i < value->u.object.len; i++) {
        const lz_member_t *member = &value->u.object.members[i];
        const char *key = lz__member_key(member);
        size_t len = member->key_len;
        if (KEY_IS(key, len, "type")) f.type = member->value;
        else if (KEY_IS(key, len, "data")) f.data = i;
        else if (task ? KEY_IS(key, len, TASK_ID_KEY) : KEY_IS(key, len, REQUEST_ID_KEY)) f.id = member->value;
        else if (KEY_IS(key, len, "priority")) f.priority = member->value;
        else if (KEY_IS(key, len, "timestamp")) f.timestamp = member->value;
        else if (KEY_IS(key, len, "action")) f.action = member->value;
    }
    return f;
}

// lift_envelope keeps object as the message's envelope and makes its member
// "data" (or null) the message's value, and reads the optional fields.
static int lift_envelope(lz_message_t *msg, lz_value_t *object, const envelope_fields_t *f) {
    msg->envelope = object;
    const char *id = lz_value_get_string(f->id, NULL); // values stay put when "data" is taken
    msg->id = id ? id : "";
    msg->priority = lz_value_get_int(f->priority);
    msg->timestamp = lz_value_get_double(f->timestamp);
    msg->value = lz__value_member_take(object, f->data);
    if (!msg->value && !(msg->value = lz__arena_node(&msg->arena, LZ_VALUE_NULL, 0)))
        return lz__fail(LZ_ENOMEM, "message: out of memory");
    return LZ_OK;
}

// set_type sets the message's topic to the string value type, up to a NUL
// it may hold (as a C string reads).
// Its whole length: a type holding a NUL ("add\u0000x") fails the topic
// check, where strlen would have dispatched it as "add".
static int set_type(lz_message_t *msg, const lz_value_t *type) {
    size_t size = 0;
    const char *text = lz_value_get_string(type, &size);
    return set_topic(msg, text, size);
}

/* ---- pub/sub ----------------------------------------------------------- */

int lz__envelope_decode_pub(const lz_serializer_t *serializer, zmq_msg_t *topic, size_t topic_size, bool binary_topic,
                            zmq_msg_t *payload, size_t payload_size, lz_message_t **out) {
    lz_value_t *value = NULL;
    int rc = take_payload(serializer, payload, payload_size, out, &value);
    if (rc != LZ_OK) return rc;
    (*out)->value = value;
    if (!topic) {
        (*out)->topicless = true;
        return LZ_OK;
    }
    const void *text = zmq_msg_data(topic);
    rc = binary_topic ? copy_topic(*out, text, topic_size) : set_topic(*out, text, topic_size);
    return rc == LZ_OK ? LZ_OK : fail_message(out, rc);
}

/* ---- tasks ------------------------------------------------------------- */

// An envelope kind: its keys in wire order (the order the Python LiberZMQ
// writes them, "data" last) and which of them carry what.
typedef struct envelope_kind {
    const char *keys[5];
    size_t count;
    size_t type, timestamp, id, data, priority; // member indexes; priority == count: none
    size_t id_key_len;                          // strlen(keys[id])
} envelope_kind_t;

static const envelope_kind_t task_kind = {
    {"type", "priority", "timestamp", TASK_ID_KEY, "data"}, 5, 0, 2, 3, 4, 1, sizeof TASK_ID_KEY - 1};
static const envelope_kind_t request_kind = {
    {"type", "timestamp", REQUEST_ID_KEY, "data"}, 4, 0, 1, 2, 3, 4, sizeof REQUEST_ID_KEY - 1};

// put adds member (NULL: its constructor failed) under key to *object, or
// destroys the object.
static void put(lz_value_t **object, const char *key, lz_value_t *member) {
    if (!member || lz_value_object_set(*object, key, member) != LZ_OK) lz_value_destroy(object);
}

// envelope_new builds kind's object once: strings borrowed (rebound per
// send), numbers set in place, "data" a null placeholder the caller's value
// is swapped in for while encoding. Senders keep one per thread, so a send
// allocates nothing for its envelope. traceparent (NULL: none), borrowed,
// goes just before "data", where the json codec's text puts it.
static lz_value_t *envelope_new(const envelope_kind_t *kind, const char *traceparent) {
    lz_value_t *object = lz_value_object();
    for (size_t i = 0; object && i < kind->count; i++) {
        if (i == kind->data && traceparent)
            put(&object, "traceparent", lz__value_string_borrowed(traceparent, strlen(traceparent)));
        if (object)
            put(&object, kind->keys[i],
                i == kind->type || i == kind->id ? lz__value_string_borrowed("", 0)
                : i == kind->timestamp            ? lz_value_double(0)
                : i == kind->priority             ? lz_value_int(0)
                                                  : lz_value_null());
    }
    return object;
}

typedef struct envelope_cache {
    lz_value_t *task, *request;
    bool busy; // a codec that sends from inside its encode gets fresh envelopes
} envelope_cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

// The cached envelopes hold only borrowed strings and their own placeholder
// (encode always swaps the caller's data back out), so freeing them at
// thread exit frees nothing of anyone else's.
static void cache_free(void *arg) {
    envelope_cache_t *cache = arg;
    lz_value_destroy(&cache->task);
    lz_value_destroy(&cache->request);
    free(cache);
}

static void cache_key_init(void) { (void)pthread_key_create(&cache_key, cache_free); }

// cached_envelope returns the thread's envelope of kind and marks the cache
// busy, or NULL when it is in use or cannot be made (then the caller builds
// a fresh one).
static lz_value_t *cached_envelope(const envelope_kind_t *kind, envelope_cache_t **cache_out) {
    pthread_once(&cache_once, cache_key_init);
    envelope_cache_t *cache = pthread_getspecific(cache_key);
    if (!cache) {
        cache = calloc(1, sizeof *cache);
        if (!cache || pthread_setspecific(cache_key, cache) != 0) {
            free(cache);
            return NULL;
        }
    }
    if (cache->busy) return NULL;
    lz_value_t **slot = kind == &task_kind ? &cache->task : &cache->request;
    if (!*slot && !(*slot = envelope_new(kind, NULL))) return NULL;
    cache->busy = true;
    *cache_out = cache;
    return *slot;
}

// encode_tree fills kind's envelope with text's fields, lends it the
// caller's data (borrowed, never owned: swapped back out whatever the
// result) and encodes it, for codecs that only encode values.
static int encode_tree(const lz_serializer_t *serializer, const envelope_kind_t *kind,
                       const lz_envelope_text_t *text, lz_buffer_t *out) {
    envelope_cache_t *cache = NULL;
    // A traced send adds a member the cached envelope lacks: it builds its own.
    lz_value_t *object = text->traceparent ? NULL : cached_envelope(kind, &cache);
    lz_value_t *fresh = object ? NULL : envelope_new(kind, text->traceparent);
    if (!object && !(object = fresh)) return lz__fail(LZ_ENOMEM, "envelope: out of memory");
    size_t data_at = lz_value_size(object) - 1; // "data" is last, after any traceparent
    lz__value_rebind(lz_value_at(object, kind->type), text->type, strlen(text->type));
    lz__value_rebind(lz_value_at(object, kind->id), text->id, text->id_len);
    lz__value_set_double(lz_value_at(object, kind->timestamp), text->timestamp);
    lz__value_set_int(lz_value_at(object, kind->priority), text->priority);
    lz_value_t *placeholder =
        text->data ? lz__value_member_swap(object, data_at, (lz_value_t *)text->data) : NULL;
    int rc = lz_serializer_encode(serializer, object, out);
    if (placeholder) lz__value_member_swap(object, data_at, placeholder);
    // The borrowed strings must not outlive this call.
    lz__value_rebind(lz_value_at(object, kind->type), "", 0);
    lz__value_rebind(lz_value_at(object, kind->id), "", 0);
    if (cache) cache->busy = false;
    lz_value_destroy(&fresh);
    return rc;
}

// encode_envelope encodes kind's envelope for a send: as text around the
// data when the codec can (json), else as a value tree.
// id is id_len bytes long (a task's UUID has 36; a request id is measured once).
static int encode_envelope(const lz_serializer_t *serializer, const envelope_kind_t *kind, const char *type,
                           const lz_value_t *data, const char *id, size_t id_len, int priority,
                           const char *traceparent, lz_buffer_t *out) {
    lz_envelope_text_t text = {.type = type, .has_priority = kind->priority < kind->count, .priority = priority,
                               .timestamp = lz__now_seconds(), .id_key = kind->keys[kind->id],
                               .id_key_len = kind->id_key_len, .id = id, .id_len = id_len,
                               .traceparent = traceparent, .data = data};
    int rc = lz__serializer_encode_envelope(serializer, &text, out);
    return rc <= 0 ? rc : encode_tree(serializer, kind, &text, out);
}

int lz__envelope_encode_task(const lz_serializer_t *serializer, const char *type, const lz_value_t *data,
                             int priority, lz_span_t *span, lz_buffer_t *out) {
    char task_id[37];
    lz__uuid4(task_id);
    if (span) lz__span_set_message_id(span, task_id);
    return encode_envelope(serializer, &task_kind, type ? type : "default", data, task_id, sizeof task_id - 1,
                           priority, span ? lz__span_traceparent(span) : NULL, out);
}

int lz__envelope_decode_task(const lz_serializer_t *serializer, zmq_msg_t *frame, size_t size,
                             lz_message_t **out) {
    lz_value_t *value = NULL;
    int rc = take_payload(serializer, frame, size, out, &value);
    if (rc != LZ_OK) return rc;
    lz_message_t *msg = *out;
    if (lz_serializer_flags(serializer) & LZ_SERIALIZER_OPAQUE) {
        msg->value = value; // raw: no envelope, default handler
        return LZ_OK;
    }
    envelope_fields_t f = scan_envelope(value, true);
    if (lz_value_type(f.type) != LZ_VALUE_STRING) {
        // Not a LiberZMQ task (a plain peer's JSON): the whole value is data.
        msg->value = value;
        rc = set_topic(msg, "unknown", 7);
    } else {
        rc = set_type(msg, f.type);
        if (rc == LZ_OK) rc = lift_envelope(msg, value, &f);
        else lz__value_release(&value);
    }
    return rc == LZ_OK ? LZ_OK : fail_message(out, rc);
}

/* ---- request/reply ----------------------------------------------------- */

int lz__envelope_encode_request(const lz_serializer_t *serializer, const char *action, const lz_value_t *data,
                                const char *request_id, lz_span_t *span, lz_buffer_t *out) {
    if (!action || !request_id) return lz__fail(LZ_EINVAL, "envelope: NULL action or request id");
    return encode_envelope(serializer, &request_kind, action, data, request_id, strlen(request_id), 0,
                           span ? lz__span_traceparent(span) : NULL, out);
}

int lz__envelope_decode_request(const lz_serializer_t *serializer, zmq_msg_t *frame, size_t size,
                                lz_message_t **out) {
    lz_value_t *value = NULL;
    int rc = take_payload(serializer, frame, size, out, &value);
    if (rc != LZ_OK) return rc;
    envelope_fields_t f = scan_envelope(value, false);
    const lz_value_t *action = lz_value_type(f.type) == LZ_VALUE_STRING ? f.type : f.action;
    if (lz_value_type(action) != LZ_VALUE_STRING) {
        lz__value_release(&value);
        return fail_message(out, lz__fail(LZ_EPROTOCOL, "request has no \"type\" (action) string"));
    }
    rc = set_type(*out, action);
    if (rc == LZ_OK) rc = lift_envelope(*out, value, &f);
    else lz__value_release(&value);
    return rc == LZ_OK ? LZ_OK : fail_message(out, rc);
}

// The replacement character, which stands for each byte of an error text
// that is not part of a well-formed UTF-8 sequence.
#define REPLACEMENT "\xEF\xBF\xBD"
#define REPLACEMENT_LEN (sizeof REPLACEMENT - 1)

// text_value makes the string value of an error text (a handler's reason,
// a hook's detail, an action) that may not be UTF-8, which the codecs
// refuse to write: the reply would not encode, and the client would get an
// empty frame instead of the error. Such a text is copied with every byte
// that starts no well-formed sequence replaced by U+FFFD.
static lz_value_t *text_value(const char *text) {
    size_t len = strlen(text);
    if (lz__utf8_valid(text, len)) return lz_value_stringn(text, len);
    char *fixed = len <= (SIZE_MAX - 1) / REPLACEMENT_LEN ? malloc(len * REPLACEMENT_LEN + 1) : NULL;
    if (!fixed) return NULL;
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t run = p[i] < 0x80 ? 1 : lz__utf8_sequence(p + i, len - i);
        if (run == 0) {
            memcpy(fixed + n, REPLACEMENT, REPLACEMENT_LEN);
            n += REPLACEMENT_LEN;
            i++;
            continue;
        }
        memcpy(fixed + n, p + i, run);
        n += run;
        i += run;
    }
    lz_value_t *value = lz_value_stringn(fixed, n);
    free(fixed);
    return value;
}

// put_text adds text under key to *object (see text_value), or destroys it.
static void put_text(lz_value_t **object, const char *key, const char *text) {
    if (*object) put(object, key, text_value(text));
}

int lz__envelope_encode_error(const lz_serializer_t *serializer, int code, const char *message,
                              const char *request_type, lz_buffer_t *out) {
    lz_value_t *reply = lz_value_object();
    put_text(&reply, "status", "error");
    put_text(&reply, "message", message ? message : lz_strerror(code));
    put_text(&reply, "request_type", request_type ? request_type : "");
    put_text(&reply, "code", lz_error_name(code));
    put_text(&reply, "error", lz_strerror(code));
    if (!reply) return lz__fail(LZ_ENOMEM, "envelope: out of memory");
    int rc = lz_serializer_encode(serializer, reply, out);
    lz_value_destroy(&reply);
    return rc;
}

bool lz__envelope_is_error(const lz_value_t *reply) {
    const char *status = lz_value_find_string(reply, "status", NULL);
    return status && strcmp(status, "error") == 0;
}
