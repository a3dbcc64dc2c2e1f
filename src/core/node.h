/* Internal: the part every pattern object shares. One place sets a socket up
 * from the configuration, binds and connects, sends and receives frames
 * under the node's lock, and counts everything in the node's metrics. */
#ifndef LZ_CORE_NODE_H
#define LZ_CORE_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#include "core/bias.h"
#include "core/copy.h"
#include "core/context.h"
#include "core/ratelimit.h"
#include "core/revoke.h"
#include "core/security.h"
#include "liberzmq/log.h"
#include "liberzmq/node.h"
#include "liberzmq/serializer.h"

// Counters are atomics so handler threads, senders and metric readers
// never take the socket lock to count.
typedef struct lz_counters {
    atomic_uint_fast64_t messages_sent, messages_received, bytes_sent, bytes_received;
    atomic_uint_fast64_t errors, outbound_dropped, inbound_dropped, backpressure_events;
    atomic_uint_fast64_t failed_bind_count, request_timeouts, retries, socket_rebuilds;
    atomic_uint_fast64_t late_replies, handshake_failures, task_retries, dead_letters;
    atomic_uint_fast64_t config_reloads, config_reload_errors; // always 0: the context counts these
    atomic_uint_fast64_t connections_cut;
    atomic_int_fast64_t active_connections;
} lz_counters_t;

#define LZ_COUNT(node, field) atomic_fetch_add_explicit(&(node)->counters->field, 1, memory_order_relaxed)
#define LZ_COUNT_N(node, field, n) atomic_fetch_add_explicit(&(node)->counters->field, (n), memory_order_relaxed)

// LZ_COUNT_OWNED_N is for a counter only one thread at a time updates (its
// updates all happen under one lock, or on one thread): a plain load and
// store, no lock-prefixed read-modify-write, which on the per-message path
// costs as much as the rest of our bookkeeping. Readers still see a whole
// value since the counter stays an atomic. Anything else counts with
// LZ_COUNT; lz__node_counts_alone tells which applies to a node's traffic
// counters.
#define LZ_COUNT_OWNED_N(node, field, n)                                                                  \
    atomic_store_explicit(&(node)->counters->field,                                                      \
                          atomic_load_explicit(&(node)->counters->field, memory_order_relaxed) + (n),    \
                          memory_order_relaxed)

// The monitor events of a failed security handshake (libzmq 4.3).
#define LZ_HANDSHAKE_FAILURES                                                                       \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |                   \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

// A warning logged at most once a second, and what it counts.
typedef struct lz_log_limit {
    lz_rate_limit_t rate;
    const char *noun; // "drop(s)": what the summary counts
} lz_log_limit_t;

#define LZ_NODE_ENDPOINT_MAX 256
#define LZ_NODE_NAME_MAX 64

struct lz_node {
    lz_context_t *ctx;
    const lz_settings_t *settings;  // the context's, read-only
    lz_live_t *live;                // the context's settings a reload changes (LZ_LIVE)
    lz_logger_t *log;               // the context's
    void *socket;                   // libzmq socket; guarded by lock
    int zmq_type;
    int recv_timeout;               // the socket's ZMQ_RCVTIMEO, so it is set only on change
    int socket_fd;                  // the socket's ZMQ_FD, looked up on the first wait (-1 until then); under lock
    int wake_fd[2];                 // wakeups ending lz__node_wait, by kind (opened on first use, else -1); under lock
    int waiting[2];                 // threads inside lz__node_wait, by kind, between its unlock and relock; under lock
    bool sends_wait;                // a send may wait for room (see lz__node_set_send_wait); under lock
    char default_side;              // '@' bind or '>' connect
    lz_bias_t lock;                 // libzmq sockets are not thread safe (see bias.h)
    const lz_serializer_t *serializer;
    lz_counters_t *counters;        // own_counters, or an owner node's (see lz__node_share_counters)
    lz_counters_t own_counters;
    bool counters_shared;           // other nodes count into own_counters (set up before any traffic)
    bool attached_to_context;
    bool thread_owned;              // a thread uses the socket without the lock: no bind/connect after
    atomic_int_fast64_t socket_connections; // this socket's share of active_connections
    lz_log_limit_t drop_log;        // drop warnings, at most one a second
    lz_log_limit_t handshake_log;   // failed handshake warnings, the same
    char name[LZ_NODE_NAME_MAX];
    char endpoint[LZ_NODE_ENDPOINT_MAX]; // last bound, resolved
    char **attached;                // every "@url"/">url" applied, for rebuilds
    size_t attached_count;
    char monitor_endpoint[64];      // inproc address of this socket's monitor
    lz_node_security_t security;    // CURVE or ZAP, settled by the first endpoint
    lz_conns_t conns;               // connections, when the ZAP handler guards the socket (revoke.h)
    lz_node_t *next, *prev;         // the context's list of nodes
    uint64_t id;                    // unique in the context (exporters' label)
    struct lz_hooks *hooks;         // lz_node_on_send / lz_node_on_receive (core/hooks.h); NULL: none
};

// lz__node_init makes the socket (type zmq_type) with every option from the
// context's settings, registers the node with the context and its monitor,
// then applies endpoints (see node.h). name is the pattern ("pub"). On
// failure everything is undone and a negative lz_error_t returned.
int lz__node_init(lz_node_t *node, lz_context_t *ctx, int zmq_type, const char *name,
                  char default_side, const char *endpoints);

// lz__node_close folds the counters into the context, closes the socket
// (bounded by zmq.linger), its inproc names free for another socket when
// it returns, and drops the context reference. Idempotent.
void lz__node_close(lz_node_t *node);

// lz__node_share_counters makes node count into owner's counters, so an
// object made of several sockets (a client with one per endpoint) reports
// as one node. owner must be closed after node. The context sums only
// counter owners, so nothing is counted twice.
void lz__node_share_counters(lz_node_t *node, lz_node_t *owner);

// lz__node_counts_alone: true when only this node counts into its counters,
// so the traffic counters (messages/bytes sent under the node lock,
// received by the one reader) have a single updater at a time.
static inline bool lz__node_counts_alone(const lz_node_t *node) {
    return node->counters == &node->own_counters && !node->counters_shared;
}

// lz__node_connection_event records a peer connecting (+1) or leaving (-1),
// as the context's monitor sees it.
void lz__node_connection_event(lz_node_t *node, int delta);

// lz__node_handshake_failed counts and logs (at most once a second) a
// peer's failed handshake: a ZMQ_EVENT_HANDSHAKE_FAILED_* event and its
// value, on endpoint.
void lz__node_handshake_failed(lz_node_t *node, int event, unsigned value, const char *endpoint);

// lz__node_attach applies one endpoint list ("@a,>b,c") with default_side
// for entries without a prefix, in order, up to the first that fails,
// whose error it returns: the entries before it stay attached (and are
// remembered for rebuilds), for the caller to keep or to close the node,
// as a failed constructor does (lz__node_close frees inproc names at once).
int lz__node_attach(lz_node_t *node, const char *endpoints);

// lz__now_ms: the monotonic clock in milliseconds, for deadlines.
int64_t lz__now_ms(void);

// lz__timeout_check: LZ_OK for a timeout a public call takes: -1 (its
// default: no limit, or zmq.request_timeout), 0 or a count of
// milliseconds. Below -1 it fails LZ_EINVAL naming who: taken as -1, a
// slip such as a deadline already past computed as a negative wait would
// wait forever.
int lz__timeout_check(int timeout_ms, const char *who);

// lz__deadline_ms: when a wait of timeout_ms that starts now ends (0 when
// timeout_ms is not positive: no deadline). lz__ms_left: what is left of
// such a wait at its deadline, so a loop that drops what it receives still
// returns in time; timeout_ms itself when not positive (-1 waits on, 0
// stays a look without waiting).
static inline int64_t lz__deadline_ms(int timeout_ms) { return timeout_ms > 0 ? lz__now_ms() + timeout_ms : 0; }
static inline int lz__ms_left(int64_t deadline, int timeout_ms) {
    if (timeout_ms <= 0) return timeout_ms;
    int64_t left = deadline - lz__now_ms();
    return left > 0 ? (int)left : 0;
}

// lz__inproc_endpoint writes "inproc://lz-<what>-<n>" into buf, n a serial
// number never used before in this process. libzmq releases an inproc name
// only when the closed socket is reaped, in the background, so a name made
// again (from an address that malloc recycled, say) could still be taken.
void lz__inproc_endpoint(char *buf, size_t size, const char *what);

// lz__node_rebuild closes the socket and makes a fresh one with the same
// options and endpoints (Lazy Pirate). Counts socket_rebuilds. When the
// socket or any of its binds and connects fails, the node is left with no
// socket (node->socket NULL) and the error is returned. Caller holds no
// lock; the node's lock is taken inside.
int lz__node_rebuild(lz_node_t *node);

// A frame to send: a pointer and a size, sent as a copy.
typedef struct lz_frame {
    const void *data;
    size_t size;
} lz_frame_t;

// lz__node_send sends frames (1 to LZ_MAX_FRAMES) as one multipart message
// under the node's lock, waiting up to zmq.send_timeout while every peer's
// queue is full (outside the lock: lz__node_wait). The message goes whole
// or not at all: every frame is copied for libzmq before the first is
// sent, so a copy that fails (LZ_ENOMEM) sends nothing. Counts
// messages_sent and bytes_sent, or on a full high water mark
// outbound_dropped + backpressure_events and returns LZ_EAGAIN; other
// failures count outbound_dropped (and errors, but for LZ_EUNREACHABLE).
int lz__node_send(lz_node_t *node, const lz_frame_t *frames, size_t count);

// lz__node_send_one is lz__node_send for one frame (a task, a pair
// message): the per-message path without the multipart loop, counting and
// failing exactly as lz__node_send does.
int lz__node_send_one(lz_node_t *node, const void *data, size_t size);

// lz__node_send_locked: the same for a caller already holding node->lock
// (sending several messages, or a socket only one thread uses), which a
// wait for room releases meanwhile; flags ZMQ_DONTWAIT: no wait, LZ_EAGAIN
// at once (then the caller may hold the socket without the lock).
int lz__node_send_locked(lz_node_t *node, const lz_frame_t *frames, size_t count, int flags);

// lz__node_send_parts_locked sends parts, then data as the last frame, for
// a caller holding node->lock, waiting for room as lz__node_send_locked.
// The parts' content goes to libzmq without a copy (zmq_msg_send), so each
// sent part is left empty; a part not sent (the send failed) keeps its
// content, and the caller closes them all. data's copy is made before the
// first part goes, as lz__node_send's frames are.
int lz__node_send_parts_locked(lz_node_t *node, zmq_msg_t *parts, size_t count, const void *data, size_t size);

// A received multipart message, its frames kept as zmq_msg_t so payloads
// are read in place (no copy).
#define LZ_MAX_FRAMES 8
typedef struct lz_frames {
    zmq_msg_t part[LZ_MAX_FRAMES];
    size_t size[LZ_MAX_FRAMES]; // each kept part's size, from the receive
    size_t count;      // frames kept (at most LZ_MAX_FRAMES)
    size_t total;      // frames the message had (more are discarded)
    size_t bytes;      // total payload bytes
    unsigned settled;  // bit i: part i needs no release now: a decoder moved
                       // it out (it is empty), or it is small and the next
                       // receive into the slot frees it (see
                       // lz__frames_release); cleared by each receive
} lz_frames_t;

// lz__node_recv reads one whole multipart message into *frames, waiting up
// to timeout_ms (-1 forever, 0 not at all). Frames past LZ_MAX_FRAMES are
// drained and dropped (frames->total tells). Counts messages_received and
// bytes_received. Returns 0, LZ_ETIMEOUT, LZ_ECLOSED or another error. The
// caller owns the socket for reading (one reader thread) and must call
// lz__frames_close after.
int lz__node_recv(lz_node_t *node, lz_frames_t *frames, int timeout_ms);
void lz__frames_close(lz_frames_t *frames);

// Slots for lz__node_recv_burst keep every part initialised between
// messages, so each receive skips a zmq_msg_init and each release a
// zmq_msg_close. lz__frames_ready initialises a slot; lz__frames_release
// empties the parts a message left, except settled ones, keeping them
// initialised for the next receive;
// lz__frames_fini closes every part when the slot goes away.
void lz__frames_ready(lz_frames_t *frames);
void lz__frames_release_slow(lz_frames_t *frames);
void lz__frames_fini(lz_frames_t *frames);
// Inline for the common case, every part settled: nothing to free now.
static inline void lz__frames_release(lz_frames_t *frames) {
    if (frames->settled == (1u << frames->count) - 1u) frames->count = 0;
    else lz__frames_release_slow(frames);
}

// lz__node_recv_burst reads up to max whole messages into frames[0..max),
// slots made with lz__frames_ready: the first as lz__node_recv does
// (waiting up to timeout_ms), the rest only while they are already
// waiting, so one lock round trip serves a burst. The caller holds
// node->lock and is the only reader. Counts as lz__node_recv. Returns how
// many were read (at least 1) or the first message's error; each frames[i]
// read needs lz__frames_release (not lz__frames_close). With
// timeout_ms 0 and nothing waiting it returns LZ_ETIMEOUT without setting
// the last error: a poll that finds nothing is the common case, not a failure.
int lz__node_recv_burst(lz_node_t *node, lz_frames_t *frames, size_t max, int timeout_ms);

// Waiting outside the lock. A thread that must wait for the socket (a
// receive with nothing to read, a send with every peer's queue full) must
// not wait holding node->lock: another thread's send, receive or
// subscription would wait with it, up to the whole timeout. lz__node_wait
// is called holding the lock, right after libzmq processed all its pending
// commands and found the socket not ready for kind (a receive that found
// nothing does; a send does not, see the send functions), so libzmq will
// signal ZMQ_FD on news. It releases the lock, sleeps in poll(2) on ZMQ_FD
// and the node's wakeup for kind for up to timeout_ms (-1: no limit) and
// takes the lock again; the caller then tries again, and may find the
// socket still not ready (a wake-up only says "look"). Whoever holds the
// lock meanwhile may process libzmq's commands (any send or receive may)
// and so take the signal meant for a waiter: which is why every holder
// releases the lock with lz__node_unlock, which then signals the wakeup of
// each kind that waits and whose event (ZMQ_POLLIN, ZMQ_POLLOUT) is there.
// Without a wakeup (no descriptor left) the wait looks again every 50 ms.
typedef enum lz_wait_kind { LZ_WAIT_RECV = 0, LZ_WAIT_SEND = 1 } lz_wait_kind_t;
void lz__node_wait(lz_node_t *node, int timeout_ms, lz_wait_kind_t kind);
void lz__node_wake_if_ready(lz_node_t *node);
static inline void lz__node_lock(lz_node_t *node) { lz__bias_lock(&node->lock); }
static inline void lz__node_unlock(lz_node_t *node) {
    if (node->waiting[LZ_WAIT_RECV] | node->waiting[LZ_WAIT_SEND]) lz__node_wake_if_ready(node);
    lz__bias_unlock(&node->lock);
}

// lz__node_set_send_wait(node, false) makes every send on node that waits
// for room give up at once, and later ones not wait: LZ_EAGAIN, counted in
// backpressure_events and outbound_dropped. For a stop: a server's workers
// replying to a client that reads nothing would hold the stop for up to
// zmq.send_timeout a reply. true (the default) restores waiting. Takes the
// lock.
void lz__node_set_send_wait(lz_node_t *node, bool wait);

// lz__node_wake ends every receive's lz__node_wait at once, for a stop:
// set the stop flag first, which the waiters look at when they wake.
// Takes the lock.
void lz__node_wake(lz_node_t *node);

// A taker consumes one received multipart message into out: the
// dispatcher's decoder makes it a message (out is an lz_message_t **), the
// *_recv_bytes calls copy its bytes into the caller's buffers, the pair
// and the router make their own objects. It returns LZ_OK, or an error
// after which the receiver counts and drops the message (the taker's
// lz_last_error() detail is logged), or LZ__TAKE_DROPPED when it has
// dropped the message itself (a receive hook refused it: lz__hooks_admit). It may move parts out or mark the
// parts it leaves for the slot's next receive settled (see lz_frames_t).
#define LZ__TAKE_DROPPED 1
typedef int (*lz_take_fn)(lz_node_t *node, lz_frames_t *frames, void *out);

// lz__node_skip_refused counts and logs a message that a taker refused
// with rc (LZ__TAKE_DROPPED: counted already) as dropped, and tells whether
// the receive goes on to the next message: it does past a malformed one,
// not past one the taker had no memory for, whose LZ_ENOMEM the receive
// returns at once (the message counted, not lost in silence, and the
// caller not kept waiting for another while memory is short).
// Cold and out of line: inlined, it cost every receive's loop two
// instructions (callgrind), for a branch taken only by refused messages.
__attribute__((cold, noinline)) bool lz__node_skip_refused(lz_node_t *node, int rc);

// lz__node_take receives with lz__node_recv_shared, one message at a time,
// until take accepts one (LZ_OK) or timeout_ms passes (LZ_ETIMEOUT),
// counting and dropping what it refuses without restarting the wait, so a
// stream of bad messages cannot hold it past timeout_ms. LZ_ECLOSED when
// *stopping (may be NULL) turns true; LZ_ENOMEM as lz__node_skip_refused
// says; other receive errors as they come.
int lz__node_take(lz_node_t *node, int timeout_ms, const atomic_bool *stopping, lz_take_fn take, void *out);

// lz__node_recv_shared is lz__node_recv_burst for a caller not holding
// node->lock: it holds the lock only to receive (looking once without
// waiting first) and waits in lz__node_wait, so another thread's send or
// subscription on the socket never waits for it. Gives up with LZ_ECLOSED
// when *stopping (may be NULL) turns true (see lz__node_wake). Only when it
// must wait does it note the time in *wait_start (may be NULL; set when 0),
// so the busy path never reads the clock.
int lz__node_recv_shared(lz_node_t *node, lz_frames_t *frames, size_t max, int timeout_ms, const atomic_bool *stopping,
                         int64_t *wait_start);

static inline const void *lz__frame_data(const lz_frames_t *f, size_t i) {
    return zmq_msg_data((zmq_msg_t *)&f->part[i]);
}
// The size as received: a field, where zmq_msg_size is a call through the
// PLT. A part a decoder has moved out keeps its old size here.
static inline size_t lz__frame_size(const lz_frames_t *f, size_t i) { return f->size[i]; }

// libzmq 4.3 keeps a message of up to 33 bytes inside its zmq_msg_t (a
// "very small message" on 64-bit): closing one frees nothing.
#define LZ_ZMQ_VSM_MAX 33

// lz__frames_copy copies part i into dst, at most capacity bytes, and
// returns the part's full size. lz__frames_settle_small marks part i
// settled when it is small enough to live inside its zmq_msg_t (nothing to
// free: the slot's next receive overwrites it), as lz__frames_copy does; a
// larger one is released with the slot as usual.
static inline void lz__frames_settle_small(lz_frames_t *f, size_t i) {
    if (f->size[i] <= LZ_ZMQ_VSM_MAX) f->settled |= 1u << i;
}
static inline size_t lz__frames_copy(lz_frames_t *f, size_t i, void *dst, size_t capacity) {
    size_t size = f->size[i];
    if (size && capacity) lz__copy(dst, lz__frame_data(f, i), size < capacity ? size : capacity);
    lz__frames_settle_small(f, i);
    return size;
}

// lz__msg_text copies a frame into buf as a string (cut to size - 1
// bytes), for frames of text: ZAP fields, monitor event endpoints.
static inline void lz__msg_text(zmq_msg_t *frame, char *buf, size_t size) {
    size_t n = zmq_msg_size(frame) < size - 1 ? zmq_msg_size(frame) : size - 1;
    memcpy(buf, zmq_msg_data(frame), n);
    buf[n] = '\0';
}

// lz__msg_move_to_empty is zmq_msg_move into a message that holds nothing,
// spelled out: libzmq's msg_t::move closes the target, copies the struct
// and initialises the source (a msg_t has no pointer into itself; shared
// content is counted where it lives, not in the struct). Done here it
// costs a copy and one call, where init + move cost two calls and their
// validity checks on every message received.
static inline void lz__msg_move_to_empty(zmq_msg_t *to, zmq_msg_t *from) {
    memcpy(to, from, sizeof *to);
    zmq_msg_init(from);
}

// lz__node_drop counts an inbound message we reject (inbound_dropped) and
// logs why at WARNING, at most once per second per node (the next record,
// or one at lz__node_close, says how many were not logged): a peer sending
// garbage must not flood the log. Every drop is counted. Returns
// LZ_EPROTOCOL for convenience.
int lz__node_drop(lz_node_t *node, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// lz__node_log_drop logs a message we could not deliver, as lz__node_drop
// does (WARNING, at most once per second per node), counting nothing: for
// a drop already counted where it happened (outbound_dropped).
void lz__node_log_drop(lz_node_t *node, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// lz__node_error counts an error and logs it at ERROR; returns code.
int lz__node_error(lz_node_t *node, int code, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// lz__node_refuse_destroy refuses a destroy (fn) called on a thread that
// runs one of owner's callbacks (lz__thread_inside, core/thread.h: callback
// names them, "handler"): it would wait for that very thread, or free what
// the callback's caller still uses. Refused: LZ_ESTATE, counted and logged
// on node; else LZ_OK.
int lz__node_refuse_destroy(lz_node_t *node, const void *owner, const char *fn, const char *callback);

// lz__node_encode encodes value with node's serializer into out, NULL as
// null: the null is a node of its own, not allocated, so a send of NULL
// fails for want of memory only as any other value's does.
int lz__node_encode(const lz_node_t *node, const lz_value_t *value, lz_buffer_t *out);

// lz__node_snapshot reads the counters into a public struct.
void lz__node_snapshot(const lz_node_t *node, lz_metrics_t *out);


#endif
