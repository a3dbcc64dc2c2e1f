/* Received messages: construction, accessors and destruction. The payload
 * frame is moved in from the receive, so raw payloads are never copied.
 *
 * Each thread keeps a short list of freed messages: at high rates a message
 * lives for microseconds, and recycling it costs a few stores where calloc
 * (which glibc serves without its per-thread cache) and free cost hundreds
 * of instructions. A message freed on another thread (a pool worker) goes to
 * that thread's list; the cap keeps each list's memory small and bounded. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/node.h"
#include "core/security.h"
#include "core/thread_object.h"
#include "serial/registry.h"

#define LZ_MESSAGE_CACHE_MAX 32

typedef struct message_cache {
    lz_message_t *head; // linked through the first bytes of each free message
    unsigned count;
} message_cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
// The calling thread's list, for the per-message path: one TLS read instead
// of pthread_once + pthread_getspecific. The key remains so the list is
// freed when the thread exits.
static _Thread_local message_cache_t *thread_list __attribute__((tls_model("initial-exec")));

// A free message on a thread's list keeps the next one in its first bytes.
typedef struct free_link {
    lz_message_t *next;
} free_link_t;

static inline lz_message_t *next_free(const lz_message_t *msg) {
    free_link_t link;
    memcpy(&link, msg, sizeof link);
    return link.next;
}

static inline void set_next_free(lz_message_t *msg, lz_message_t *next) {
    free_link_t link = {next};
    memcpy(msg, &link, sizeof link);
}

static void cache_free(void *arg) {
    message_cache_t *cache = arg;
    // Runs on the exiting thread: later messages it frees go to malloc's free
    // (or a fresh list, which the key frees again) instead of this one.
    if (thread_list == cache) thread_list = NULL;
    while (cache->head) {
        lz_message_t *next = next_free(cache->head);
        free(cache->head);
        cache->head = next;
    }
    free(cache);
}

static void cache_key_init(void) { (void)pthread_key_create(&cache_key, cache_free); }

// make_cache makes the calling thread's list on first use; NULL (no
// recycling, plain malloc/free) when that fails.
static message_cache_t *make_cache(void) {
    return thread_list = lz__thread_object_new(&cache_once, cache_key_init, &cache_key, sizeof(message_cache_t));
}

static inline message_cache_t *thread_cache(void) {
    message_cache_t *cache = thread_list;
    return cache ? cache : make_cache();
}

lz_message_t *lz__message_new(void) {
    message_cache_t *cache = thread_cache();
    lz_message_t *msg;
    if (cache && cache->head) {
        msg = cache->head;
        cache->head = next_free(msg);
        cache->count--;
    } else {
        msg = malloc(sizeof *msg);
        if (!msg) return lz__fail_null(LZ_ENOMEM, "message: out of memory");
    }
    // Every field but the buffers (topic_inline, payload: written before
    // they are read, as has_payload and topic say) starts empty.
    msg->topic = msg->topic_inline;
    msg->topic_inline[0] = '\0';
    msg->topic_size = 0;
    msg->topicless = false;
    msg->value = NULL;
    msg->envelope = NULL;
    msg->id = "";
    msg->priority = 0;
    msg->timestamp = 0;
    msg->retries = 0;
    msg->has_payload = false;
    lz__arena_init(&msg->arena, msg->arena_block, sizeof msg->arena_block);
    return msg;
}

void lz__message_take_payload(lz_message_t *msg, zmq_msg_t *frame) {
    lz__msg_move_to_empty(&msg->payload, frame); // payload holds nothing yet
    msg->has_payload = true;
}

lz_message_t *lz__message_decode(const lz_serializer_t *serializer, zmq_msg_t *frame, size_t size) {
    lz_message_t *msg = lz__message_new();
    if (!msg) return NULL;
    lz__message_take_payload(msg, frame);
    // As subscribers and pullers decode: raw borrows the frame the message
    // keeps, JSON builds in the message's arena, other trees are frozen
    // (values are read-only to callers).
    if (lz__serializer_decode_held(serializer, zmq_msg_data(&msg->payload), size, &msg->value_slot, &msg->arena,
                                   &msg->value) < 0)
        lz_message_destroy(&msg);
    return msg;
}

// free_owned frees a value the message owns, frozen or not; a held one (in
// value_slot or the arena) goes with them, so the call is skipped.
static inline void free_owned(lz_value_t *value) {
    if (value && !(value->unowned & LZ_NODE_HELD)) lz__value_release(&value);
}

void lz_message_destroy(lz_message_t **msg_p) {
    lz_message_t *msg = msg_p ? *msg_p : NULL;
    if (!msg) return;
    free_owned(msg->value);
    free_owned(msg->envelope);
    lz__arena_release(&msg->arena); // a decoded tree, all at once
    if (msg->topic != msg->topic_inline) free(msg->topic);
    if (msg->has_payload) zmq_msg_close(&msg->payload);
    *msg_p = NULL;
    message_cache_t *cache = thread_cache();
    if (cache && cache->count < LZ_MESSAGE_CACHE_MAX) {
        set_next_free(msg, cache->head);
        cache->head = msg;
        cache->count++;
        return;
    }
    free(msg);
}

const char *lz_message_topic(const lz_message_t *msg) { return msg ? msg->topic : ""; }
const char *lz_message_type(const lz_message_t *msg) { return lz_message_topic(msg); }
bool lz_message_has_topic(const lz_message_t *msg) { return msg && !msg->topicless; }

const void *lz_message_topic_bytes(const lz_message_t *msg, size_t *size) {
    if (size) *size = msg ? msg->topic_size : 0;
    return msg ? msg->topic : "";
}
const lz_value_t *lz_message_envelope(const lz_message_t *msg) { return msg ? msg->envelope : NULL; }
const char *lz_message_id(const lz_message_t *msg) { return msg ? msg->id : ""; }
int64_t lz_message_priority(const lz_message_t *msg) { return msg ? msg->priority : 0; }
double lz_message_timestamp(const lz_message_t *msg) { return msg ? msg->timestamp : 0; }
int lz_message_attempt(const lz_message_t *msg) { return msg ? msg->retries + 1 : 0; }

const lz_value_t *lz_message_value(const lz_message_t *msg) { return msg ? msg->value : NULL; }

// vouched_user: the ZAP handler's user id for msg's sender (the client's
// CURVE key, PLAIN user name or GSSAPI principal) and the mechanism it
// admitted it by; NULL when it judged no such peer. A peer's own metadata
// may name a "User-Id" too: without the handler's word it counts for nothing.
static const char *vouched_user(const lz_message_t *msg, const char **mechanism) {
    if (!msg || !msg->has_payload || !(*mechanism = lz__security_vouched(&msg->payload))) return NULL;
    // libzmq gives every frame of a connection that connection's properties.
    const char *user = zmq_msg_gets((zmq_msg_t *)&msg->payload, "User-Id");
    return user && *user ? user : NULL;
}

const char *lz_message_peer_user(const lz_message_t *msg) {
    const char *mechanism;
    return vouched_user(msg, &mechanism);
}

const char *lz_message_peer_key(const lz_message_t *msg) {
    const char *mechanism, *user = vouched_user(msg, &mechanism);
    return user && strcmp(mechanism, "CURVE") == 0 ? user : NULL;
}

const void *lz_message_payload(const lz_message_t *msg, size_t *size) {
    if (!msg || !msg->has_payload) {
        if (size) *size = 0;
        return NULL;
    }
    if (size) *size = zmq_msg_size((zmq_msg_t *)&msg->payload);
    return zmq_msg_data((zmq_msg_t *)&msg->payload);
}
