/* Publish/subscribe. The publisher is an XPUB with XPUB_NODROP so a full
 * subscriber queue is reported (LZ_EAGAIN, counted) instead of dropped in
 * silence as a plain PUB would; the subscriber is a SUB behind a dispatcher. */
#include <stdlib.h>
#include <string.h>

#include "core/dispatch.h"
#include "core/envelope.h"
#include "core/error.h"
#include "core/extension.h"
#include "core/hooks.h"
#include "core/node.h"
#include "core/scratch.h"
#include "core/sockopt.h"
#include "patterns/pubsub.h"

// XPUB queues subscription notices for us to read; reading them now and
// then keeps that queue short without a receive on every publish.
#define LZ_DRAIN_EVERY 1024

struct lz_pub {
    lz_node_t node;
    unsigned sends_since_drain; // guarded by node.lock
};

struct lz_sub {
    lz_node_t node; // first: the decoders below are given the node
    lz_dispatcher_t dispatcher;
    unsigned accepts; // lz_sub_accept's LZ_SUB_* bits; atomic: receivers read it unlocked
};

/* ---- publisher ---------------------------------------------------------- */

lz_pub_t *lz_pub_new(lz_context_t *ctx, const char *endpoints) {
    lz_pub_t *pub = calloc(1, sizeof *pub);
    if (!pub) return lz__fail_null(LZ_ENOMEM, "pub: out of memory");
    int rc = lz__node_init(&pub->node, ctx, ZMQ_XPUB, "pub", '@', endpoints);
    if (rc != LZ_OK) {
        free(pub);
        return NULL;
    }
    // Every subscriber's notices, not only a topic's first: each one tells
    // who sent it (drain_subscriptions). A subscriber that came before this
    // goes unknown until its next notice, at worst cut by a revocation
    // and back at once. Set on every publisher, guarded or not: whether it
    // will be guarded is settled only at its first endpoint, inside
    // lz__node_init, and an unguarded one only reads and drops a few more
    // notices at subscribe time (no cost a benchmark sees).
    lz__node_lock(&pub->node);
    lz__sockopt_int(pub->node.socket, ZMQ_XPUB_VERBOSE, 1);
    lz__node_unlock(&pub->node);
    return pub;
}

void lz_pub_destroy(lz_pub_t **pub_p) {
    if (!pub_p || !*pub_p) return;
    lz__node_close(&(*pub_p)->node);
    free(*pub_p);
    *pub_p = NULL;
}

lz_node_t *lz_pub_node(lz_pub_t *pub) { return pub ? &pub->node : NULL; }

// drain_subscriptions reads the subscription notices queued. While a
// guarded publisher has subscribers it does not know yet, each notice is
// looked at: the one a subscriber sends when it connects says who it is
// (revoke.h), and finding none queued tells the table so. Out of line: one
// publish in LZ_DRAIN_EVERY comes here unguarded, and inlined its code
// cost every publish an instruction (register pressure, callgrind).
static __attribute__((noinline)) void drain_subscriptions(lz_pub_t *pub) {
    zmq_msg_t notice;
    zmq_msg_init(&notice);
    while (zmq_msg_recv(&notice, pub->node.socket, ZMQ_DONTWAIT) >= 0)
        if (lz__conns_looking(&pub->node.conns)) lz__conns_look(&pub->node, &notice);
    if (lz__conns_looking(&pub->node.conns) && zmq_errno() == EAGAIN) lz__conns_drained(&pub->node.conns);
    zmq_msg_close(&notice);
    pub->sends_since_drain = 0;
}

// refuse_topic fails a publish whose topic is not UTF-8 text: every
// liberzmq subscriber (docs/protocol.md section 2) would drop it, counted
// on its side only, and the publisher's caller would never learn. Out of
// line and cold, so that the check costs the publish only its test.
static __attribute__((noinline, cold)) int refuse_topic(void) {
    return lz__fail(LZ_EINVAL, "pub: topic is not UTF-8 text");
}

// topic_text: topic's size bytes are UTF-8 text (a C string holds no NUL).
// Inline: a short ASCII topic is proved in a word or two (lz__text_span).
static inline __attribute__((always_inline)) bool topic_text(const char *topic, size_t size) {
    return __builtin_expect(lz__topic_text(topic, size), 1);
}

// publish_frames sends [topic, payload] (topic of topic_size bytes), and
// after them the traceparent frame of span when span is given, active, and
// extension frames are on. flags: 0, or ZMQ_DONTWAIT not to wait for room.
static int publish_frames(lz_pub_t *pub, const char *topic, size_t topic_size, const void *data, size_t size,
                          const lz_span_t *span, int flags) {
    lz_frame_t frames[3]; // the third written only for a traced send
    frames[0] = (lz_frame_t){topic, topic_size};
    frames[1] = (lz_frame_t){data, size};
    char traceparent[LZ_EXT_TRACEPARENT_SIZE];
    size_t count = 2 + (span ? lz__ext_traceparent_frame(&pub->node, span, traceparent, &frames[2]) : 0);
    lz__node_lock(&pub->node);
    int rc = lz__node_send_locked(&pub->node, frames, count, flags);
    if (rc == LZ_EAGAIN || ++pub->sends_since_drain >= LZ_DRAIN_EVERY || lz__conns_looking(&pub->node.conns))
        drain_subscriptions(pub);
    lz__node_unlock(&pub->node);
    return rc;
}

// publish_value runs the send hooks, encodes value and publishes it.
static int publish_value(lz_pub_t *pub, const char *topic, size_t topic_size, const lz_value_t *value,
                         const lz_span_t *span, int flags) {
    int rc = lz__hooks_send(&pub->node, topic, value);
    if (rc != LZ_OK) return rc;
    lz_buffer_t *buffer = lz__scratch_buffer();
    if (!buffer) return lz__fail(LZ_ENOMEM, "pub: out of memory");
    rc = lz_serializer_encode(pub->node.serializer, value, buffer);
    if (rc != LZ_OK) return lz__node_error(&pub->node, rc, "cannot encode for '%s': %s", topic, lz_last_error());
    return publish_frames(pub, topic, topic_size, lz_buffer_data(buffer), lz_buffer_size(buffer), span, flags);
}

// Each publish tests tracing.enabled once; untraced, it is the plain send
// that is benchmarked against raw libzmq, with no span on its stack. A
// traced one runs inside its PRODUCER span, named by the topic, a child of
// the thread's current (or adopted) span as lz_push_send's is.
int lz_pub_publish_bytes(lz_pub_t *pub, const char *topic, const void *data, size_t size) {
    if (!pub || !topic || (!data && size)) return lz__fail(LZ_EINVAL, "pub: NULL argument");
    size_t topic_size = strlen(topic);
    if (!topic_text(topic, topic_size)) return refuse_topic();
    if (__builtin_expect(!LZ_LIVE(pub->node.live, tracing), 1))
        return publish_frames(pub, topic, topic_size, data, size, NULL, 0);
    lz_span_t span;
    lz__span_begin(&span, &pub->node, LZ_SPAN_PRODUCER, topic, NULL);
    int rc = publish_frames(pub, topic, topic_size, data, size, &span, 0);
    lz__span_end(&span, rc);
    return rc;
}

// publish is lz_pub_publish with send flags (0, or ZMQ_DONTWAIT).
static inline __attribute__((always_inline)) int publish(lz_pub_t *pub, const char *topic, const lz_value_t *value,
                                                         int flags) {
    if (!pub || !topic) return lz__fail(LZ_EINVAL, "pub: NULL argument");
    size_t topic_size = strlen(topic);
    if (!topic_text(topic, topic_size)) return refuse_topic(); // before the hooks see it
    if (__builtin_expect(!LZ_LIVE(pub->node.live, tracing), 1))
        return publish_value(pub, topic, topic_size, value, NULL, flags);
    lz_span_t span;
    lz__span_begin(&span, &pub->node, LZ_SPAN_PRODUCER, topic, NULL);
    int rc = publish_value(pub, topic, topic_size, value, &span, flags);
    lz__span_end(&span, rc);
    return rc;
}

int lz_pub_publish(lz_pub_t *pub, const char *topic, const lz_value_t *value) { return publish(pub, topic, value, 0); }

int lz__pub_publish_now(lz_pub_t *pub, const char *topic, const lz_value_t *value) {
    return publish(pub, topic, value, ZMQ_DONTWAIT);
}

/* ---- subscriber --------------------------------------------------------- */

// accepts: the subscriber's LZ_SUB_* bits, for its decoders (given its node).
static unsigned accepts(lz_node_t *node) {
    return __atomic_load_n(&((const lz_sub_t *)node)->accepts, __ATOMIC_RELAXED);
}

// one_frame_taken, for a message of fewer than two frames: LZ_OK when it
// is one frame and the subscriber takes those (LZ_SUB_SINGLE_FRAME), else
// LZ_EPROTOCOL with the detail set.
static int one_frame_taken(lz_node_t *node, const lz_frames_t *frames) {
    if (frames->total == 1 && (accepts(node) & LZ_SUB_SINGLE_FRAME)) return LZ_OK;
    return lz__fail(LZ_EPROTOCOL, "expected [topic, payload], got %zu frame(s)", frames->total);
}

// decode_pub, the subscriber's decoder (see lz_take_fn; out is an
// lz_message_t **), takes [topic, payload, extension frames...]: a
// traceparent frame becomes the message's envelope's traceparent (the
// handler's span continues it), other extension frames are ignored so later
// protocol additions do not break older subscribers. Plain publishers'
// forms are taken as lz_sub_accept says.
static int decode_pub(lz_node_t *node, lz_frames_t *frames, void *out) {
    lz_message_t **msg = out;
    if (__builtin_expect(frames->total < 2, 0)) { // a one-frame message, if taken: no topic
        if (one_frame_taken(node, frames) != LZ_OK) return LZ_EPROTOCOL;
        int rc = lz__envelope_decode_pub(node->serializer, NULL, 0, false, &frames->part[0],
                                         lz__frame_size(frames, 0), msg);
        if (rc == LZ_OK) frames->settled |= 1u;
        return rc;
    }
    int rc = lz__envelope_decode_pub(node->serializer, &frames->part[0], lz__frame_size(frames, 0),
                                     accepts(node) & LZ_SUB_BINARY_TOPIC, &frames->part[1], lz__frame_size(frames, 1),
                                     msg);
    // A decoded message took the payload frame. Its topic was copied out;
    // when short (it fit inline) the topic frame is left for the slot's
    // next receive to free, which saves a close and an init per message.
    if (rc == LZ_OK) frames->settled |= 1u << 1 | ((*msg)->topic == (*msg)->topic_inline ? 1u : 0u);
    if (rc == LZ_OK && (rc = lz__ext_read(*msg, frames, 2)) != LZ_OK) lz_message_destroy(msg);
    return rc;
}

lz_sub_t *lz_sub_new(lz_context_t *ctx, const char *endpoints) {
    lz_sub_t *sub = calloc(1, sizeof *sub);
    if (!sub) return lz__fail_null(LZ_ENOMEM, "sub: out of memory");
    if (lz__node_init(&sub->node, ctx, ZMQ_SUB, "sub", '>', endpoints) != LZ_OK) {
        free(sub);
        return NULL;
    }
    lz__dispatcher_init(&sub->dispatcher, &sub->node, decode_pub, true);
    return sub;
}

void lz_sub_destroy(lz_sub_t **sub_p) {
    if (!sub_p || !*sub_p) return;
    if (lz__dispatcher_may_destroy(&(*sub_p)->dispatcher, "lz_sub_destroy") != LZ_OK) return;
    lz__dispatcher_fini(&(*sub_p)->dispatcher);
    lz__node_close(&(*sub_p)->node);
    free(*sub_p);
    *sub_p = NULL;
}

lz_node_t *lz_sub_node(lz_sub_t *sub) { return sub ? &sub->node : NULL; }

static int set_filter(lz_sub_t *sub, int option, const char *prefix) {
    if (!sub || !prefix) return lz__fail(LZ_EINVAL, "sub: NULL argument");
    lz__node_lock(&sub->node);
    int rc = zmq_setsockopt(sub->node.socket, option, prefix, strlen(prefix)) == 0
                 ? LZ_OK
                 : lz__fail_zmq(option == ZMQ_SUBSCRIBE ? "subscribe" : "unsubscribe");
    lz__node_unlock(&sub->node);
    return rc;
}

int lz_sub_subscribe(lz_sub_t *sub, const char *prefix) { return set_filter(sub, ZMQ_SUBSCRIBE, prefix); }
int lz_sub_unsubscribe(lz_sub_t *sub, const char *prefix) { return set_filter(sub, ZMQ_UNSUBSCRIBE, prefix); }

int lz_sub_accept(lz_sub_t *sub, unsigned what) {
    if (!sub) return lz__fail(LZ_EINVAL, "sub: NULL subscriber");
    if (what & ~(unsigned)(LZ_SUB_SINGLE_FRAME | LZ_SUB_BINARY_TOPIC))
        return lz__fail(LZ_EINVAL, "sub: unknown accept bits 0x%x", what);
    __atomic_store_n(&sub->accepts, what, __ATOMIC_RELAXED);
    return LZ_OK;
}

// A prefix registered again only gets its new handler: libzmq counts a
// SUB's subscriptions, so subscribing it again would take two
// lz_sub_unsubscribe calls to drop it.
int lz_sub_on(lz_sub_t *sub, const char *prefix, lz_handler_fn handler, void *arg) {
    if (!sub || !prefix) return lz__fail(LZ_EINVAL, "sub: NULL argument");
    bool replaced = false;
    int rc = lz__dispatcher_on(&sub->dispatcher, prefix, handler, arg, &replaced);
    return rc == LZ_OK && !replaced ? lz_sub_subscribe(sub, prefix) : rc;
}

// The default handler subscribes to nothing: it takes what the prefixes
// subscribed elsewhere bring in and no handler matches.
int lz_sub_on_default(lz_sub_t *sub, lz_handler_fn handler, void *arg) {
    if (!sub) return lz__fail(LZ_EINVAL, "sub: NULL subscriber");
    return lz__dispatcher_on(&sub->dispatcher, NULL, handler, arg, NULL);
}

int lz_sub_start(lz_sub_t *sub) {
    if (!sub) return lz__fail(LZ_EINVAL, "sub: NULL subscriber");
    return lz__dispatcher_start(&sub->dispatcher, sub->node.settings->handler_max_concurrency);
}

int lz_sub_stop(lz_sub_t *sub) { return sub ? lz__dispatcher_stop(&sub->dispatcher) : LZ_OK; }

int lz_sub_fd(lz_sub_t *sub, int *fd) {
    return sub ? lz__dispatcher_fd(&sub->dispatcher, fd) : lz__fail(LZ_EINVAL, "sub: NULL subscriber");
}

int lz_sub_dispatch(lz_sub_t *sub, int timeout_ms) {
    return sub ? lz__dispatcher_dispatch(&sub->dispatcher, timeout_ms) : lz__fail(LZ_EINVAL, "sub: NULL subscriber");
}

lz_message_t *lz_sub_recv(lz_sub_t *sub, int timeout_ms) {
    return sub ? lz__dispatcher_recv(&sub->dispatcher, timeout_ms) : lz__fail_null(LZ_EINVAL, "sub: NULL subscriber");
}

// Where lz_sub_recv_bytes wants a message's topic and payload, and how
// long each was.
typedef struct pub_bytes {
    char *topic;
    size_t topic_capacity, topic_size;
    void *data;
    size_t capacity, size;
} pub_bytes_t;

// give_bytes copies topic and part payload of frames out to pub. Inlined
// into each caller below, so the usual one gets its constants.
static inline __attribute__((always_inline)) void give_bytes(pub_bytes_t *pub, lz_frames_t *frames,
                                                             const char *topic, size_t topic_size, size_t payload) {
    size_t room = pub->topic_capacity - 1, copied = topic_size < room ? topic_size : room; // and the NUL
    lz__copy(pub->topic, topic, copied);
    pub->topic[copied] = '\0';
    pub->topic_size = topic_size;
    pub->size = lz__frames_copy(frames, payload, pub->data, pub->capacity);
}

// take_pub_bytes accepts what decode_pub does: [topic, payload, extension
// frames...] with a text topic, and the forms lz_sub_accept allows.
static int take_pub_bytes(lz_node_t *node, lz_frames_t *frames, void *out) {
    if (__builtin_expect(frames->total < 2, 0)) { // a one-frame message, if taken: no topic
        if (one_frame_taken(node, frames) != LZ_OK) return LZ_EPROTOCOL;
        give_bytes(out, frames, "", 0, 0);
        return LZ_OK;
    }
    size_t topic_size = lz__frame_size(frames, 0);
    const char *topic = lz__frame_data(frames, 0);
    if (!lz__topic_text(topic, topic_size) && !(accepts(node) & LZ_SUB_BINARY_TOPIC)) return lz__topic_refused();
    lz__frames_settle_small(frames, 0);
    give_bytes(out, frames, topic, topic_size, 1);
    return LZ_OK;
}

int lz_sub_recv_bytes(lz_sub_t *sub, char *topic, size_t *topic_size, void *data, size_t *size, int timeout_ms) {
    if (!sub || !topic || !topic_size || !*topic_size || !size || (!data && *size))
        return lz__fail(LZ_EINVAL, "sub: NULL argument or no room for the topic");
    pub_bytes_t pub = {topic, *topic_size, 0, data, *size, 0};
    int rc = lz__dispatcher_take(&sub->dispatcher, timeout_ms, take_pub_bytes, &pub);
    if (rc == LZ_OK) {
        *topic_size = pub.topic_size;
        *size = pub.size;
    }
    return rc;
}
