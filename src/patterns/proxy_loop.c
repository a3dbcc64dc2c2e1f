/* The proxy's loop: what libzmq's zmq_proxy_steerable does (bursts of
 * whole messages each way, a capture copy of every frame, the PAUSE,
 * RESUME, STATISTICS and TERMINATE commands), written out so that a guarded
 * socket's messages pass lz__conns_look: the proxy learns who is behind
 * each connection, and a revoking reload cuts only the peers it refuses
 * and drops what they left queued. Two things differ from libzmq's, both
 * for the proxy's owner: a destination with no room (a queue whose servers
 * are all gone or full, a subscriber behind XPUB_NODROP that reads slowly)
 * holds up only that way, and commands are still answered meanwhile,
 * where libzmq's proxy stops in a blocking send; and a signal restarts the
 * call it interrupted instead of ending the proxy. */
#include "patterns/proxy_loop.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/eintr.h"
#include "core/revoke.h"
#include "core/sockopt.h"

// Whole messages moved one way before the other way and the commands get
// a turn: libzmq's proxy_burst_size.
#define LZ_PROXY_BURST 1000

// How long a held message's send waits for room before the loop looks at
// the commands and the other way again. The send wakes as soon as there
// is room; this only bounds how late a command is answered meanwhile.
#define LZ_PROXY_HOLD_MS 50

typedef struct side_stats {
    uint64_t messages_in, bytes_in, messages_out, bytes_out;
} side_stats_t;

// One way through the proxy.
typedef struct direction {
    void *from, *to;
    lz_node_t *from_node;        // for its revocation table
    lz_proxy_topics_t *upstream; // a forwarder's way up: the topics subscribed there; else NULL
    side_stats_t *from_stats, *to_stats;
    zmq_msg_t first; // a message's first frame, taken from `from`, waiting for room in `to`
    bool holding;
} direction_t;

typedef struct loop {
    direction_t ways[2]; // out of the frontend, out of the backend
    side_stats_t stats[2];
    void *capture, *control;
    bool paused;
} loop_t;

_Static_assert(sizeof(side_stats_t[2]) == 8 * sizeof(uint64_t), "STATISTICS answers eight counters");

/* ---- a forwarder's subscriptions upstream -------------------------------- */

// topic_cmp orders topics as memcmp does, a prefix first.
static int topic_cmp(const lz_proxy_topic_t *t, const unsigned char *bytes, size_t size) {
    int c = memcmp(t->bytes, bytes, t->size < size ? t->size : size);
    return c ? c : (t->size > size) - (t->size < size);
}

// topics_find: whether the topic is in set; *at is its index, or where it would go.
static bool topics_find(const lz_proxy_topics_t *set, const unsigned char *bytes, size_t size, size_t *at) {
    size_t low = 0, high = set->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int c = topic_cmp(&set->items[mid], bytes, size);
        if (c == 0) {
            *at = mid;
            return true;
        }
        if (c < 0) low = mid + 1;
        else high = mid;
    }
    *at = low;
    return false;
}

// topics_insert puts the topic at index at (topics_find's). false when out of memory.
static bool topics_insert(lz_proxy_topics_t *set, size_t at, const unsigned char *bytes, size_t size) {
    if (set->count == set->capacity) {
        size_t capacity = set->capacity ? 2 * set->capacity : 16;
        lz_proxy_topic_t *grown = realloc(set->items, capacity * sizeof *grown);
        if (!grown) return false;
        set->items = grown;
        set->capacity = capacity;
    }
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy) return false;
    if (size) memcpy(copy, bytes, size);
    memmove(&set->items[at + 1], &set->items[at], (set->count - at) * sizeof *set->items);
    set->items[at] = (lz_proxy_topic_t){copy, size};
    set->count++;
    return true;
}

static void topics_remove(lz_proxy_topics_t *set, size_t at) {
    free(set->items[at].bytes);
    set->count--;
    memmove(&set->items[at], &set->items[at + 1], (set->count - at) * sizeof *set->items);
}

// passes_up decides whether msg, a first frame a forwarder read from its
// XPUB, goes up to its XSUB. The XPUB (XPUB_VERBOSE, proxy.c) hands on
// every subscribe, a topic's second subscriber's and a subscriber's repeats
// too, so that the revocation table sees each subscriber's; its unsubscribe
// for a topic comes once, when the topic's last subscriber drops it or
// leaves (libzmq 4.3.4). The XSUB counts the subscribes it is sent and
// unsubscribes upstream only when the count is back at 0, so each topic
// goes up once, at its first subscribe, and leaves at that unsubscribe, as
// libzmq's proxy (a plain XPUB) sends them. A subscribe the set has no
// memory for goes up all the same (the subscriber's messages come; the
// topic may stay upstream when it leaves). Other messages pass.
static bool passes_up(lz_proxy_topics_t *upstream, zmq_msg_t *msg) {
    const unsigned char *data = zmq_msg_data(msg);
    size_t size = zmq_msg_size(msg), at;
    if (zmq_msg_more(msg) || size == 0 || data[0] > 1) return true; // not a subscription notice
    bool known = topics_find(upstream, data + 1, size - 1, &at);
    if (data[0] == 0) {
        if (known) topics_remove(upstream, at);
        return known;
    }
    if (!known) topics_insert(upstream, at, data + 1, size - 1);
    return !known;
}

/* ---- moving messages ---------------------------------------------------- */

// send_frame sends msg (its contents move) with flags, and a copy to the
// capture socket once it has gone. -1 as zmq_msg_send, msg still held.
static int send_frame(void *to, void *capture, zmq_msg_t *msg, int flags) {
    int more = zmq_msg_more(msg) ? ZMQ_SNDMORE : 0;
    zmq_msg_t copy;
    if (capture) {
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, msg);
    }
    int rc;
    LZ_EINTR_RESTART(rc, zmq_msg_send(msg, to, flags | more));
    if (capture) {
        int captured; // a PUB never waits; a failure there loses only the copy
        if (rc >= 0) LZ_EINTR_RESTART(captured, zmq_msg_send(&copy, capture, more));
        zmq_msg_close(&copy);
    }
    return rc;
}

// none_taken answers a receive that failed: 0 when nothing was queued,
// which a guarded side's table is told (revoke.h), -1 on a libzmq failure.
// Out of line: inlined, its code cost every message an instruction.
static __attribute__((noinline)) int none_taken(direction_t *d) {
    if (zmq_errno() != EAGAIN) return -1;
    if (lz__conns_looking(&d->from_node->conns)) lz__conns_drained(&d->from_node->conns);
    return 0;
}

// take_first receives the next message's first frame into d->first: 1, or
// 0 when none is queued. A message from a sender the policy now refuses
// (revoke.h), and a forwarder's subscription notice that is not to go up
// (passes_up), is dropped whole on the way. -1 on a libzmq failure.
static int take_first(direction_t *d) {
    for (;;) {
        int rc;
        LZ_EINTR_RESTART(rc, zmq_msg_recv(&d->first, d->from, ZMQ_DONTWAIT));
        if (rc < 0) return none_taken(d);
        bool refused = lz__conns_looking(&d->from_node->conns) && lz__conns_look(d->from_node, &d->first);
        if (!refused && (!d->upstream || passes_up(d->upstream, &d->first))) return 1;
        while (rc >= 0 && zmq_msg_more(&d->first)) LZ_EINTR_RESTART(rc, zmq_msg_recv(&d->first, d->from, 0));
        if (rc < 0) return -1;
    }
}

// forward_rest moves the frames after a message's first. libzmq queues a
// message whole and takes it whole, so each is there and `to`, which took
// the first, takes them without waiting. Adds their sizes to *bytes.
static int forward_rest(direction_t *d, void *capture, size_t *bytes) {
    zmq_msg_t part;
    zmq_msg_init(&part);
    int rc = 0, more = 1;
    while (rc >= 0 && more) {
        LZ_EINTR_RESTART(rc, zmq_msg_recv(&part, d->from, 0));
        if (rc < 0) break;
        *bytes += zmq_msg_size(&part);
        more = zmq_msg_more(&part);
        rc = send_frame(d->to, capture, &part, 0);
    }
    zmq_msg_close(&part);
    return rc < 0 ? -1 : 0;
}

// send_held sends d's first frame and the rest of its message. With
// flags ZMQ_DONTWAIT, or after LZ_PROXY_HOLD_MS, a `to` with no room
// leaves it held: 0. 1 when the message went, -1 on a libzmq failure.
static int send_held(loop_t *loop, direction_t *d, int flags) {
    size_t bytes = zmq_msg_size(&d->first);
    bool more = zmq_msg_more(&d->first);
    if (send_frame(d->to, loop->capture, &d->first, flags) < 0) {
        d->holding = true;
        return zmq_errno() == EAGAIN ? 0 : -1;
    }
    d->holding = false;
    if (more && forward_rest(d, loop->capture, &bytes) < 0) return -1;
    d->from_stats->messages_in++; // a multipart message counts once, as libzmq counts it
    d->from_stats->bytes_in += bytes;
    d->to_stats->messages_out++;
    d->to_stats->bytes_out += bytes;
    return 1;
}

// pump moves up to a burst of queued messages one way.
static int pump(loop_t *loop, direction_t *d) {
    int rc = 1;
    for (int i = 0; i < LZ_PROXY_BURST && rc > 0; i++) {
        rc = take_first(d);
        if (rc > 0) rc = send_held(loop, d, ZMQ_DONTWAIT);
    }
    return rc < 0 ? -1 : 0;
}

/* ---- commands ----------------------------------------------------------- */

static int answer_statistics(loop_t *loop) {
    const uint64_t *values = (const uint64_t *)loop->stats;
    int rc = 0;
    for (int i = 0; i < 8 && rc >= 0; i++)
        LZ_EINTR_RESTART(rc, zmq_send(loop->control, &values[i], sizeof values[i], i < 7 ? ZMQ_SNDMORE : 0));
    return rc < 0 ? -1 : 1;
}

static bool is_verb(const char *verb, const char *got, int size) {
    return size == (int)strlen(verb) && memcmp(got, verb, (size_t)size) == 0;
}

// obey acts on the command waiting on control: 1 to go on, 0 on TERMINATE,
// -1 on a libzmq failure. Only our own proxy.c sends commands; anything
// else is ignored.
static int obey(loop_t *loop) {
    char verb[16];
    int size;
    LZ_EINTR_RESTART(size, zmq_recv(loop->control, verb, sizeof verb, ZMQ_DONTWAIT));
    if (size < 0) return zmq_errno() == EAGAIN ? 1 : -1;
    if (is_verb("TERMINATE", verb, size)) return 0;
    if (is_verb("STATISTICS", verb, size)) return answer_statistics(loop);
    if (is_verb("PAUSE", verb, size)) loop->paused = true;
    if (is_verb("RESUME", verb, size)) loop->paused = false;
    return 1;
}

/* ---- the loop ----------------------------------------------------------- */

// turn waits for work (not at all while a message is held) and does it:
// 1 to go on, 0 after TERMINATE, -1 on a libzmq failure.
static int turn(loop_t *loop) {
    bool held = !loop->paused && (loop->ways[0].holding || loop->ways[1].holding);
    zmq_pollitem_t items[3] = {
        {loop->ways[0].from, 0, 0, 0}, {loop->ways[1].from, 0, 0, 0}, {loop->control, 0, ZMQ_POLLIN, 0}};
    for (int side = 0; side < 2; side++)
        if (!loop->paused && !loop->ways[side].holding) items[side].events = ZMQ_POLLIN;
    int rc = zmq_poll(items, 3, held ? 0 : -1);
    if (rc < 0) return zmq_errno() == EINTR ? 1 : -1;
    if (items[2].revents && (rc = obey(loop)) <= 0) return rc;
    for (int side = 0; side < 2 && !loop->paused; side++) {
        direction_t *d = &loop->ways[side];
        if (d->holding) rc = send_held(loop, d, 0); // waits up to LZ_PROXY_HOLD_MS for room
        else if (items[side].revents & ZMQ_POLLIN) rc = pump(loop, d);
        if (rc < 0) return -1;
    }
    return 1;
}

void lz__proxy_held_init(lz_proxy_held_t *held) {
    for (int side = 0; side < 2; side++) {
        zmq_msg_init(&held->first[side]);
        held->holding[side] = false;
    }
    held->upstream = (lz_proxy_topics_t){NULL, 0, 0};
}

void lz__proxy_held_close(lz_proxy_held_t *held) {
    for (int side = 0; side < 2; side++) zmq_msg_close(&held->first[side]);
    for (size_t i = 0; i < held->upstream.count; i++) free(held->upstream.items[i].bytes);
    free(held->upstream.items);
    held->upstream = (lz_proxy_topics_t){NULL, 0, 0};
}

int lz__proxy_loop(lz_node_t *frontend, lz_node_t *backend, void *capture, void *control, lz_proxy_held_t *held) {
    loop_t loop = {.capture = capture, .control = control};
    lz_node_t *nodes[2] = {frontend, backend};
    for (int side = 0; side < 2; side++) {
        direction_t *d = &loop.ways[side];
        *d = (direction_t){.from = nodes[side]->socket, .to = nodes[!side]->socket, .from_node = nodes[side],
                           .from_stats = &loop.stats[side], .to_stats = &loop.stats[!side],
                           .holding = held->holding[side]};
        if (nodes[side]->zmq_type == ZMQ_XPUB) d->upstream = &held->upstream; // a forwarder's way up
        zmq_msg_init(&d->first);
        zmq_msg_move(&d->first, &held->first[side]);
        lz__sockopt_int(d->to, ZMQ_SNDTIMEO, LZ_PROXY_HOLD_MS);
    }
    int rc;
    do rc = turn(&loop);
    while (rc > 0);
    if (rc < 0 && zmq_errno() == ETERM) rc = 0; // the context is ending: so is the proxy
    for (int side = 0; side < 2; side++) {
        held->holding[side] = loop.ways[side].holding;
        zmq_msg_move(&held->first[side], &loop.ways[side].first);
        zmq_msg_close(&loop.ways[side].first);
    }
    return rc;
}
