/* The request/reply client (and the engine under lz_dealer_t): one I/O
 * thread owns one DEALER per endpoint, matches replies to requests by their
 * request id, and runs every timer: attempt timeouts, Lazy Pirate retries
 * with backoff, socket rebuilds, failed-endpoint cooldown and ping probes.
 *
 * The direct path (see lend_socket): handing each request to the I/O thread
 * and its reply back costs two thread wake-ups per round trip, more than the
 * network. So while requests flow on a single-endpoint client and nothing
 * else is in flight, the I/O thread lends its socket and all its state to
 * one synchronous caller at a time, which sends and reads as the I/O thread
 * would, with the same functions, waiting in libzmq's blocking receive as a
 * REQ socket does. At the first sign of anything else (another request, the
 * attempt's timeout, a stop) the caller gives the socket and its request
 * back and the usual machinery takes over.
 *
 * A cancellable request (lz__client_request_until) takes the direct path
 * too: there its caller waits in zmq_poll on the socket and the cancel's
 * wakeup; handed to the I/O thread, that thread ends its caller's wait
 * when told of a cancel (end_cancelled_waits). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/delay.h"
#include "core/eintr.h"
#include "core/envelope.h"
#include "core/error.h"
#include "core/extension.h"
#include "core/hooks.h"
#include "core/node.h"
#include "core/spare.h"
#include "core/thread.h"
#include "core/trace.h"
#include "core/wakeup.h"
#include "patterns/client.h"

#define CLIENT_RECV_BATCH 256   // replies read per socket per wakeup
#define CLIENT_POLL_MAX_MS 1000 // the loop wakes at least this often
#define BACKOFF_BASE_MS 25      // first retry waits 12-25 ms, then doubling...
#define BACKOFF_MAX_MS 1000     // ...up to 0.5-1 s
#define PROBE_TIMEOUT_MIN_MS 200
#define LEND_IDLE_MS 10 // a lent socket unused this long goes back to the I/O thread
// A direct caller still waiting looks this often whether to yield. Not
// less than a kernel tick (10 ms at HZ=100, 4 at Debian's 250): a shorter
// timeout ends before the next tick, so each wait has the kernel program a
// timer, which on a virtual machine is an exit to the hypervisor. At 2 ms,
// one round trip in five over ipc took twice as long (pinned, one CPU).
#define DIRECT_SLICE_MS 10
#define ID_LEN 36
#define NEVER INT64_MAX

// A synchronous caller sleeps on this until the I/O thread finishes its call.
// A call the caller finishes itself (it ran the request directly) needs
// neither: the caller cannot be asleep, so the fields are set without the
// lock and finished_here tells the caller not to wait.
typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread; // the caller's
    bool done;
    bool finished_here; // set and read on the caller's thread only
    int status;
    lz_value_t *reply;
} waiter_t;

typedef struct call {
    struct call *prev, *next; // pending list (I/O thread), or submit queue (next only)
    struct call *chain;       // hash bucket chain
    bool in_table;
    char id[ID_LEN + 1];
    size_t hash;                // of id, computed once: linking and unlinking need it
    lz_buffer_t *payload;       // encoded once: a retry resends the same bytes and id
    int64_t deadline;           // the whole request, retries included
    int64_t attempt_deadline;   // the attempt in flight
    int64_t sent_at;            // when the attempt in flight was sent (or held); -1: not in flight
    bool held;                  // libzmq has not taken the attempt in flight: it waits for room (send_held)
    uint64_t rx_at_send;        // the endpoint's rx_count and generation when it was sent
    uint64_t generation_at_send;
    int64_t send_at;            // when a waiting call is (re)sent; NEVER: no endpoint up
    int attempt_ms;
    int retries_left;
    int attempts;
    int endpoint; // of the attempt in flight (-1: none)
    bool probe;
    lz_client_callback_fn callback;
    void *arg;
    waiter_t *waiter;
    const lz_cancel_t *cancel; // ends the waiter's wait (abandon); NULL: it waits to the end
    lz_span_t *span; // the request's CLIENT span, with tracing.enabled (not probes)
} call_t;

typedef struct endpoint {
    lz_node_t *node;
    bool down;
    bool suspect; // an attempt went unanswered with a connection up: its probe decides (judge_endpoint)
    int64_t next_probe;
    call_t *probe;
    uint64_t rx_count;   // messages received on this endpoint, ever
    uint64_t generation; // socket rebuilds of this endpoint
    int rebuild_retry_ms; // wait before trying again after failed rebuilds (0: the last one worked)
    bool wants_room;      // an attempt is held here: the loop polls the socket for room (run_timers clears it)
} endpoint_t;

struct lz_client {
    lz_node_t node; // endpoint 0's socket; the client's public node
    bool envelope, resilient;
    endpoint_t *ep;
    size_t ep_count;
    zmq_pollitem_t *items;
    atomic_int strategy, retries;
    pthread_mutex_t lock; // guards the submit queue, closed, callers and the lending state
    call_t *queue_head, *queue_tail;
    bool closed;
    // Threads inside lz__client_call. A request in flight when the client is
    // destroyed ends LZ_ECLOSED, and its caller still reads the client after
    // it wakes (its error detail, the wakeup it signals after unlocking):
    // destroy frees nothing until the last caller has left (idle).
    int callers;
    pthread_cond_t idle;
    int wake_fd;
    atomic_bool cancels; // a cancel fired since the I/O thread last looked (take_submissions)
    // Lending (lend_socket): while lent the I/O thread touches neither the
    // sockets nor anything it owns; a direct caller owns them all.
    bool lent;           // the I/O thread has lent its socket
    bool direct;         // a caller is using it
    atomic_bool yield;   // the I/O thread asked the direct caller to give it back
    int64_t last_direct; // when the last direct request gave the socket back
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping;
    // Owned by the I/O thread:
    call_t **buckets;
    size_t bucket_count, pending_count;
    call_t pending; // sentinel of the pending list
    int64_t next_timer;
    unsigned rr, seed;
    bool lend_ok; // requests are flowing: lend when idle (cleared when a loan goes unused)
    lz_spare_t spare_call; // the last call finished, for the next request
};

/* ---- calls and the pending table ---------------------------------------- */

static void call_destroy(call_t *call) {
    if (!call) return;
    lz_buffer_destroy(&call->payload);
    free(call);
}

// call_free keeps a finished call as the client's spare (freeing the one
// before): call_alloc hands it to the next request.
static void call_free(lz_client_t *c, call_t *call) {
    free(call->span);
    call->span = NULL;
    call_destroy(lz__spare_put(&c->spare_call, call));
}

// call_alloc returns a zeroed call with an empty payload buffer.
static call_t *call_alloc(lz_client_t *c) {
    call_t *call = lz__spare_take(&c->spare_call);
    if (call) {
        lz_buffer_t *payload = call->payload;
        lz_buffer_reset(payload);
        *call = (call_t){.payload = payload};
        return call;
    }
    if (!(call = calloc(1, sizeof *call))) return NULL;
    if (!(call->payload = lz_buffer_new())) {
        free(call);
        return NULL;
    }
    return call;
}

// hash_id mixes the first and last eight characters of an ID_LEN id. Ours
// are random UUIDs, so those sixteen hex digits spread them well; a hash
// over every byte cost about 150 instructions per request and per reply.
static size_t hash_id(const void *id) {
    uint64_t head, tail;
    memcpy(&head, id, sizeof head);
    memcpy(&tail, (const char *)id + ID_LEN - sizeof tail, sizeof tail);
    uint64_t h = head * 0x9E3779B97F4A7C15ull ^ tail * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ h >> 32);
}

static call_t *table_find(lz_client_t *c, const void *id, size_t len) {
    if (len != ID_LEN) return NULL;
    for (call_t *call = c->buckets[hash_id(id) & (c->bucket_count - 1)]; call; call = call->chain)
        if (memcmp(call->id, id, ID_LEN) == 0) return call;
    return NULL;
}

static void table_link(lz_client_t *c, call_t *call) {
    size_t b = call->hash & (c->bucket_count - 1);
    call->chain = c->buckets[b];
    c->buckets[b] = call;
}

// table_grow doubles the buckets, linking every pending call anew: false
// on ENOMEM, the table then just gets denser.
static bool table_grow(lz_client_t *c) {
    call_t **grown = calloc(c->bucket_count * 2, sizeof *grown);
    if (!grown) return false;
    free(c->buckets);
    c->buckets = grown;
    c->bucket_count *= 2;
    for (call_t *call = c->pending.next; call != &c->pending; call = call->next) table_link(c, call);
    return true;
}

static void table_insert(lz_client_t *c, call_t *call) {
    call->prev = c->pending.prev;
    call->next = &c->pending;
    c->pending.prev->next = call;
    c->pending.prev = call;
    if (++c->pending_count <= c->bucket_count || !table_grow(c)) table_link(c, call);
    call->in_table = true;
}

static void table_remove(lz_client_t *c, call_t *call) {
    if (!call->in_table) return;
    call_t **p = &c->buckets[call->hash & (c->bucket_count - 1)];
    while (*p != call) p = &(*p)->chain;
    *p = call->chain;
    call->prev->next = call->next;
    call->next->prev = call->prev;
    c->pending_count--;
    call->in_table = false;
}

static void note_timer(lz_client_t *c, int64_t when) {
    if (when < c->next_timer) c->next_timer = when;
}

/* ---- endpoints ---------------------------------------------------------- */

static void finish(lz_client_t *c, call_t *call, int status, lz_value_t *reply);

// usable: whether endpoint i may take a request. A suspect one may not: if
// its ping goes unanswered its socket is rebuilt, and the reply to a
// request sent there meanwhile would be lost with it.
static bool usable(const lz_client_t *c, size_t i) { return !c->ep[i].down && !c->ep[i].suspect; }

static bool any_usable(const lz_client_t *c) {
    for (size_t i = 0; i < c->ep_count; i++)
        if (usable(c, i)) return true;
    return false;
}

// eligible: whether endpoint i may take an attempt that should not go to
// avoid (-1: none).
static bool eligible(const lz_client_t *c, size_t i, int avoid) { return usable(c, i) && (int)i != avoid; }

// pick_endpoint picks an endpoint by strategy, other than avoid while
// another is usable: a retry leaves the endpoint whose attempt went
// unanswered even when no cooldown marks it down (FAILOVER would pick the
// same dead first endpoint again). -1 when none is usable.
static int pick_endpoint(lz_client_t *c, int avoid) {
    size_t up = 0;
    for (size_t i = 0; i < c->ep_count; i++) up += eligible(c, i, avoid);
    if (up == 0) return avoid >= 0 && usable(c, (size_t)avoid) ? avoid : -1;
    switch (atomic_load(&c->strategy)) {
    case LZ_STRATEGY_FAILOVER:
        for (size_t i = 0; i < c->ep_count; i++)
            if (eligible(c, i, avoid)) return (int)i;
        break;
    case LZ_STRATEGY_RANDOM: {
        size_t k = (size_t)rand_r(&c->seed) % up;
        for (size_t i = 0; i < c->ep_count; i++)
            if (eligible(c, i, avoid) && k-- == 0) return (int)i;
        break;
    }
    default:
        for (size_t j = 0; j < c->ep_count; j++) {
            size_t i = c->rr++ % c->ep_count;
            if (eligible(c, i, avoid)) return (int)i;
        }
    }
    return -1;
}

static void endpoint_up(lz_client_t *c, size_t e) {
    endpoint_t *ep = &c->ep[e];
    if (!ep->down) return;
    ep->down = false;
    LZ_LOG(c->node.log, LZ_LOG_INFO, c->node.name, "endpoint %zu answers again", e);
    c->next_timer = 0; // send the calls that waited for an endpoint
}

// Failed rebuilds are tried again after a wait that doubles from the first
// to the last of these while they keep failing: soon, since this is not a
// dead peer's cooldown, yet not so often that a process out of descriptors
// fills its log with the same error.
#define REBUILD_RETRY_FIRST_MS 20
#define REBUILD_RETRY_MAX_MS 1000

// rebuild gives the endpoint a fresh socket: whatever the old one queued
// for a dead peer is gone, and nothing stale arrives later (Lazy Pirate).
// If it fails the node has no socket and the endpoint is down until a
// later probe cycle makes one (see send_probe).
static void rebuild(lz_client_t *c, size_t e, int64_t now) {
    endpoint_t *ep = &c->ep[e];
    ep->generation++;
    if (lz__node_rebuild(ep->node) == LZ_OK) {
        ep->rebuild_retry_ms = 0;
        return;
    }
    int wait = ep->rebuild_retry_ms ? 2 * ep->rebuild_retry_ms : REBUILD_RETRY_FIRST_MS;
    ep->rebuild_retry_ms = wait < REBUILD_RETRY_MAX_MS ? wait : REBUILD_RETRY_MAX_MS;
    ep->down = true;
    ep->next_probe = now + ep->rebuild_retry_ms;
    note_timer(c, ep->next_probe);
}

// fail_endpoint: no word from the endpoint since a request that timed out.
// Rebuild its socket, take it out of rotation until a ping probe answers,
// and let the other calls in flight there retry now rather than wait.
static void fail_endpoint(lz_client_t *c, size_t e, int64_t now) {
    endpoint_t *ep = &c->ep[e];
    const lz_node_t *node = ep->node;
    LZ_LOG(c->node.log, LZ_LOG_WARNING, c->node.name, "endpoint %zu (%s) does not answer: rebuilding its socket", e,
           node->attached_count ? node->attached[0] + 1 : "no address");
    ep->suspect = false; // judged: its probe, finished below, must not judge again
    rebuild(c, e, now);
    if (ep->probe) finish(c, ep->probe, LZ_ETIMEOUT, NULL);
    if (c->node.settings->failed_socket_cooldown > 0) {
        ep->down = true;
        ep->next_probe = now;
    }
    for (call_t *call = c->pending.next; call != &c->pending; call = call->next)
        if (call->endpoint == (int)e && call->sent_at >= 0) call->attempt_deadline = now;
    c->next_timer = 0;
}

static void send_probe(lz_client_t *c, size_t e, int64_t now, int timeout_ms);
static void probe_later(lz_client_t *c, size_t e, int64_t now);

// judge_endpoint: call's attempt went unanswered. Silence over a connection
// that is up may be a slow handler rather than a dead peer, and rebuilding
// the socket would lose the reply on its way: a ping decides (a server's
// I/O thread answers it at once however busy its workers are), and only
// its silence fails the endpoint (probe_done). With no connection up there
// is nobody to ask.
static void judge_endpoint(lz_client_t *c, const call_t *call, int64_t now) {
    if (!c->resilient || call->endpoint < 0) return;
    size_t e = (size_t)call->endpoint;
    endpoint_t *ep = &c->ep[e];
    // A reply to anything since, or a rebuild since: the peer is alive but
    // slow, or its failure is already handled.
    if (ep->rx_count != call->rx_at_send || ep->generation != call->generation_at_send) return;
    if (ep->down || atomic_load(&ep->node->socket_connections) == 0) {
        fail_endpoint(c, e, now);
    } else if (!ep->probe) {
        ep->suspect = true;
        send_probe(c, e, now, call->attempt_ms > PROBE_TIMEOUT_MIN_MS ? call->attempt_ms : PROBE_TIMEOUT_MIN_MS);
    }
}

/* ---- sending ------------------------------------------------------------ */

// send_call sends call's frames on node without waiting: LZ_EAGAIN when
// it has no room (no connection up under zmq.immediate, or a full queue).
static int send_call(lz_client_t *c, call_t *call, lz_node_t *node) {
    lz_frame_t frames[3] = {{call->id, ID_LEN}, {"", 0}, {NULL, 0}};
    size_t n = c->envelope ? 3 : 2;
    frames[n - 1] = (lz_frame_t){lz_buffer_data(call->payload), lz_buffer_size(call->payload)};
    // A traced dealer's span travels as a frame after the payload (it has no
    // envelope). Not after an empty one: [request_id, "", frame] would read
    // as a delimited request whose payload is that frame.
    char traceparent[LZ_EXT_TRACEPARENT_SIZE];
    if (call->span && !c->envelope && frames[1].size)
        n += lz__ext_traceparent_frame(node, call->span, traceparent, &frames[2]);
    lz__node_lock(node);
    int rc = lz__node_send_locked(node, frames, n, ZMQ_DONTWAIT); // LZ_ECLOSED after a failed rebuild
    lz__node_unlock(node);
    return rc;
}

// after_send: call's attempt was handed to libzmq (rc LZ_OK), or failed (a lost
// attempt, handled by the timers). LZ_ENOMEM finishes the call (false):
// our own send could not get memory, which says nothing of the endpoint
// and would fail a retry as well, so the request ends at once rather than
// wait out its time as a lost attempt.
static bool after_send(lz_client_t *c, call_t *call, int rc, int64_t now) {
    if (rc == LZ_ENOMEM) {
        finish(c, call, LZ_ENOMEM, NULL);
        return false;
    }
    call->held = false;
    if (call->attempts > 1 && rc == LZ_OK) LZ_COUNT(&c->node, retries); // sent again, not merely planned
    if (rc < 0) call->attempt_deadline = now;
    return true;
}

// start_attempt starts the clock of call's attempt on endpoint e: sent,
// or held until it is (then it starts again, see send_held).
static void start_attempt(lz_client_t *c, call_t *call, int e, int64_t now) {
    call->endpoint = e;
    call->sent_at = now;
    call->rx_at_send = c->ep[e].rx_count;
    call->generation_at_send = c->ep[e].generation;
    call->attempt_deadline = call->retries_left > 0 ? now + call->attempt_ms : call->deadline;
    if (call->attempt_deadline > call->deadline) call->attempt_deadline = call->deadline;
}

// dispatch sends call's next attempt, or plans it; false when it finished
// the call (see after_send). An attempt whose endpoint has no room is held:
// it waits for room there (the loop polls for it, send_held sends it) up
// to the attempt's time, as it would have waited in libzmq's queue.
static bool dispatch(lz_client_t *c, call_t *call, int64_t now) {
    // After an attempt, call->endpoint is the one that did not answer it.
    int e = call->probe ? call->endpoint : pick_endpoint(c, call->attempts > 0 ? call->endpoint : -1);
    if (e < 0) { // every endpoint is down or suspect: wait for a probe to bring one back
        call->sent_at = -1;
        call->send_at = NEVER;
        return true;
    }
    call->attempts++;
    start_attempt(c, call, e, now);
    call->held = true; // until libzmq takes it (after_send)
    int rc = send_call(c, call, c->ep[e].node); // no room: counted in backpressure_events, once per attempt
    if (rc == LZ_EAGAIN) c->ep[e].wants_room = true;
    else if (!after_send(c, call, rc, now)) return false;
    note_timer(c, call->attempt_deadline);
    return true;
}

// has_room: whether node's socket would take a message now, without
// counting a drop as a failed send would (the timers run for other calls
// too). A socket gone (a rebuild that failed): the send says so.
static bool has_room(lz_node_t *node) {
    int events = 0, rc;
    size_t size = sizeof events;
    if (!node->socket) return true;
    lz__node_lock(node);
    LZ_EINTR_RESTART(rc, zmq_getsockopt(node->socket, ZMQ_EVENTS, &events, &size));
    lz__node_unlock(node);
    return rc != 0 || (events & ZMQ_POLLOUT);
}

// send_held sends a held attempt if its endpoint has room now; false when
// it finished the call (see after_send). Sent, it has the whole attempt's
// time for its reply: counted from the hold, a backlog's requests would
// be sent again soon after they went, to a server busy with them already.
static bool send_held(lz_client_t *c, call_t *call, int64_t now) {
    lz_node_t *node = c->ep[call->endpoint].node;
    if (!has_room(node)) return true;
    int rc = send_call(c, call, node);
    if (rc == LZ_EAGAIN) return true;
    if (rc == LZ_OK) start_attempt(c, call, call->endpoint, now);
    return after_send(c, call, rc, now);
}

static int64_t backoff_ms(lz_client_t *c, int attempts) {
    return lz__backoff_ms(attempts, BACKOFF_BASE_MS, BACKOFF_MAX_MS, (uint64_t)rand_r(&c->seed));
}

// attempt_lost: the attempt in flight had no reply in its time. Retry
// (same id, same bytes) after a backoff if allowed and time remains;
// otherwise keep waiting for a late reply until the deadline.
static void attempt_lost(lz_client_t *c, call_t *call, int64_t now) {
    if (call->probe) { // its silence is judged when it ends (probe_done)
        call->attempt_deadline = call->deadline;
        return;
    }
    judge_endpoint(c, call, now);
    int64_t at = now + backoff_ms(c, call->attempts);
    if (call->retries_left > 0 && at < call->deadline) {
        call->retries_left--; // counted in retries when dispatch sends it
        call->sent_at = -1;
        call->held = false; // held there, it goes elsewhere (dispatch) if it can
        call->send_at = at;
    } else {
        call->attempt_deadline = call->deadline;
    }
}

// call_new makes a call; may_retry false makes one that never retries (a
// probe). c->resilient is set once, before the I/O thread starts, and only
// read after: callers' threads read it here while the I/O thread probes.
static call_t *call_new(lz_client_t *c, const char *action, const lz_value_t *data, int timeout_ms,
                        bool may_retry) {
    if (may_retry && lz__hooks_send(&c->node, action ? action : "", data) != LZ_OK) return NULL; // probes skip the hooks
    call_t *call = call_alloc(c);
    if (!call) return lz__fail_null(LZ_ENOMEM, "%s: out of memory", c->node.name);
    lz__uuid4(call->id);
    call->hash = hash_id(call->id);
    // Begun on the caller's thread: a request made in a handler is its span's child.
    if (may_retry && LZ_LIVE(c->node.live, tracing) && (call->span = malloc(sizeof *call->span))) {
        lz__span_begin(call->span, &c->node, LZ_SPAN_CLIENT, action, NULL);
        lz__span_set_message_id(call->span, call->id);
    }
    int rc;
    if (c->envelope) {
        rc = lz__envelope_encode_request(c->node.serializer, action, data, call->id, call->span, call->payload);
    } else {
        rc = lz__node_encode(&c->node, data, call->payload);
    }
    if (rc < 0) {
        call_free(c, call);
        return NULL;
    }
    int timeout = timeout_ms < 0 ? LZ_LIVE(c->node.live, request_timeout) : timeout_ms;
    call->retries_left = may_retry && c->resilient ? atomic_load(&c->retries) : 0;
    call->attempt_ms = timeout / (call->retries_left + 1);
    if (call->attempt_ms < 1) call->attempt_ms = 1;
    call->deadline = lz__now_ms() + timeout;
    call->sent_at = -1;
    call->endpoint = -1;
    return call;
}

// down_probe_timeout: how long a probe of a down endpoint waits, the
// cooldown (at least PROBE_TIMEOUT_MIN_MS) up to zmq.request_timeout.
static int down_probe_timeout(const lz_node_t *node) {
    int cooldown = node->settings->failed_socket_cooldown, limit = LZ_LIVE(node->live, request_timeout);
    int timeout = cooldown < PROBE_TIMEOUT_MIN_MS ? PROBE_TIMEOUT_MIN_MS : cooldown;
    return timeout < limit ? timeout : limit;
}

// send_probe pings endpoint e, waiting up to timeout_ms for the answer.
static void send_probe(lz_client_t *c, size_t e, int64_t now, int timeout_ms) {
    if (!c->ep[e].node->socket) rebuild(c, e, now); // an earlier rebuild failed: try again first
    if (!c->ep[e].node->socket) return;             // and rebuild set when to try next
    call_t *call = call_new(c, "ping", NULL, timeout_ms, false); // a probe never retries
    if (!call) {
        probe_later(c, e, now);
        return;
    }
    call->probe = true;
    call->endpoint = (int)e;
    c->ep[e].probe = call;
    table_insert(c, call);
    dispatch(c, call, now);
}

// probe_later: a probe of endpoint e could not be made or sent for want
// of memory: no verdict, so it is tried again later, as after a failed
// rebuild. Meanwhile the endpoint takes no requests (down), as while its
// probe is out; its answer then brings it back, or its silence fails a
// suspect one.
static void probe_later(lz_client_t *c, size_t e, int64_t now) {
    c->ep[e].down = true;
    c->ep[e].next_probe = now + REBUILD_RETRY_MAX_MS;
    note_timer(c, c->ep[e].next_probe);
}

// probe_done: any answer brings the endpoint back (or clears a suspicion,
// as does anything else heard there since the ping); silence fails a
// suspect endpoint, and means another rebuild and another probe after the
// cooldown for a down one.
static void probe_done(lz_client_t *c, call_t *call, int status) {
    endpoint_t *ep = &c->ep[call->endpoint];
    ep->probe = NULL;
    if (atomic_load(&c->stopping)) return; // ended by shut_down: no rebuild nor probe to plan
    if (status == LZ_ENOMEM && call->held) { // never sent (after_send)
        probe_later(c, (size_t)call->endpoint, lz__now_ms());
        return;
    }
    bool suspect = ep->suspect;
    ep->suspect = false;
    if (suspect) c->next_timer = 0; // send the calls that waited for the verdict
    if (status == LZ_OK || status == LZ_EREMOTE) {
        endpoint_up(c, (size_t)call->endpoint);
    } else if (suspect && status == LZ_ETIMEOUT && (call->sent_at < 0 || ep->rx_count == call->rx_at_send)) {
        fail_endpoint(c, (size_t)call->endpoint, lz__now_ms());
    } else if (ep->down) {
        int64_t now = lz__now_ms();
        if (call->sent_at >= 0 && ep->generation == call->generation_at_send) rebuild(c, (size_t)call->endpoint, now);
        if (ep->node->socket) { // else a failed rebuild has set its own retry
            ep->next_probe = now + c->node.settings->failed_socket_cooldown;
            note_timer(c, ep->next_probe);
        }
    }
}

/* ---- completion ---------------------------------------------------------- */

// deliver hands a waiting caller its outcome (and reply). On the caller's
// own thread (it ran the request directly) the caller cannot be asleep:
// the fields are set without the lock and finished_here says not to wait.
static void deliver(waiter_t *w, int status, lz_value_t *reply) {
    if (pthread_equal(w->thread, pthread_self())) {
        w->status = status;
        w->reply = reply;
        w->done = w->finished_here = true;
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->reply = reply;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock); // w may be gone from here on
}

// run_callback runs call's callback, if any, as the client's (see
// lz__thread_inside): on the I/O thread, or on a direct caller's thread
// that reads a reply to a request handed back before.
static void run_callback(lz_client_t *c, const call_t *call, int status, const lz_value_t *reply) {
    if (!call->callback) return;
    lz_thread_running_t here;
    lz__thread_enter(&here, c);
    call->callback(status, reply, call->arg);
    lz__thread_leave(&here);
}

// finish delivers the outcome exactly once and frees the call; reply is
// handed over (to the waiter) or borrowed by the callback then freed.
static void finish(lz_client_t *c, call_t *call, int status, lz_value_t *reply) {
    table_remove(c, call);
    if (call->probe) {
        probe_done(c, call, status);
        lz_value_destroy(&reply);
    } else {
        if (status == LZ_ETIMEOUT) LZ_COUNT(&c->node, request_timeouts);
        // Ended before the caller learns the outcome, so a span never
        // outlasts the work of the caller that waited for it.
        if (call->span) lz__span_end(call->span, status);
        if (call->waiter) {
            deliver(call->waiter, status, reply);
        } else {
            run_callback(c, call, status, reply);
            lz_value_destroy(&reply);
        }
    }
    call_free(c, call);
}

static bool cancelled(const call_t *call) { return call->waiter && lz__cancel_fired(call->cancel); }

// abandon: call's cancel fired. Its caller returns LZ_ECLOSED now, and the
// request goes on without it as an asynchronous one whose outcome goes to
// the cancel's late callback (a lock's grant then goes back). It is never
// sent again: a copy resent after the caller reacted to the cancel (a
// lock's release of the acquire) would be handled after that reaction. A
// retry planned already does not go: a late reply to the copy sent may
// still come, until the deadline.
static void abandon(call_t *call) {
    waiter_t *w = call->waiter;
    call->retries_left = 0;
    if (call->attempts > 1 && call->held) call->held = false; // a retry waiting for room: dropped, as one planned
    if (call->attempts > 0 && call->sent_at < 0) {
        call->sent_at = lz__now_ms();
        call->attempt_deadline = call->deadline;
    }
    call->callback = call->cancel->late;
    call->arg = call->cancel->late_arg;
    call->waiter = NULL;
    call->cancel = NULL;
    deliver(w, LZ_ECLOSED, NULL);
}

// end_cancelled_waits abandons the pending calls whose cancel fired.
static void end_cancelled_waits(lz_client_t *c) {
    for (call_t *call = c->pending.next; call != &c->pending; call = call->next)
        if (cancelled(call)) abandon(call);
}

/* ---- receiving ---------------------------------------------------------- */

// handle_reply takes [request_id, payload] or [request_id, "", payload].
static void handle_reply(lz_client_t *c, lz_frames_t *f) {
    if (f->total != f->count || f->count < 2 || f->count > 3 || (f->count == 3 && lz__frame_size(f, 1) != 0)) {
        lz__node_drop(&c->node, "reply with %zu frames: expected [request_id, (\"\",) payload]", f->total);
        return;
    }
    call_t *call = table_find(c, lz__frame_data(f, 0), lz__frame_size(f, 0));
    if (!call) { // finished already (timed out, or answered by another attempt) or never ours
        LZ_COUNT(&c->node, late_replies);
        return;
    }
    size_t last = f->count - 1;
    lz_value_t *reply = NULL;
    // An owned value: lz_serializer_decode copies even raw bytes, and the frame is closed after this.
    if (lz_serializer_decode(c->node.serializer, lz__frame_data(f, last), lz__frame_size(f, last), &reply) < 0) {
        int status = lz_last_error_code() == LZ_ENOMEM ? LZ_ENOMEM : LZ_ESERIALIZATION; // the reply may be fine
        lz__node_drop(&c->node, "reply to %s does not decode: %s", call->id, lz_last_error());
        finish(c, call, status, NULL);
        return;
    }
    finish(c, call, c->envelope && lz__envelope_is_error(reply) ? LZ_EREMOTE : LZ_OK, reply);
}

static bool waiter_done(waiter_t *w) {
    if (w->finished_here) return true;
    pthread_mutex_lock(&w->lock);
    bool done = w->done;
    pthread_mutex_unlock(&w->lock);
    return done;
}

// take_reply handles one message received on endpoint e and closes it.
static void take_reply(lz_client_t *c, size_t e, lz_frames_t *f) {
    c->ep[e].rx_count++;
    endpoint_up(c, e); // anything heard on a fresh socket: the peer lives
    handle_reply(c, f);
    lz__frames_close(f);
}

// read_replies reads what endpoint e has queued, up to a batch.
static void read_replies(lz_client_t *c, size_t e) {
    for (int i = 0; i < CLIENT_RECV_BATCH; i++) {
        lz_frames_t f;
        if (lz__node_recv(c->ep[e].node, &f, 0) < 0) return;
        take_reply(c, e, &f);
    }
}

/* ---- the I/O thread ------------------------------------------------------ */

static void run_timers(lz_client_t *c, int64_t now) {
    c->next_timer = NEVER;
    for (size_t i = 0; i < c->ep_count; i++) c->ep[i].wants_room = false; // set again below while held
    bool any_up = any_usable(c);
    call_t *next;
    for (call_t *call = c->pending.next; call != &c->pending; call = next) {
        next = call->next;
        if (now >= call->deadline) {
            if (call->sent_at >= 0 && !call->probe) judge_endpoint(c, call, now);
            next = call->next; // judge_endpoint may finish a probe, never this call
            finish(c, call, LZ_ETIMEOUT, NULL);
            continue;
        }
        if (call->sent_at >= 0 && now >= call->attempt_deadline) attempt_lost(c, call, now);
        next = call->next; // attempt_lost may finish a probe, never this call; dispatch may finish this one
        if (call->held ? !send_held(c, call, now)
                       : call->sent_at < 0 && (now >= call->send_at || (call->send_at == NEVER && any_up)) &&
                             !dispatch(c, call, now))
            continue;
        note_timer(c, call->deadline);
        note_timer(c, call->sent_at >= 0 ? call->attempt_deadline : call->send_at);
        if (call->held) c->ep[call->endpoint].wants_room = true;
    }
    for (size_t i = 0; i < c->ep_count; i++) {
        if (!c->ep[i].down || c->ep[i].probe) continue;
        if (now >= c->ep[i].next_probe) send_probe(c, i, now, down_probe_timeout(&c->node));
        else note_timer(c, c->ep[i].next_probe);
    }
}

// take_submissions takes the calls submitted, and ends the waits a cancel
// ended: of any call when told of a cancel (before the wakeup that brought
// the I/O thread here: one told after brings it here again), and of a
// cancellable call just taken (its cancel may have been told before).
static void take_submissions(lz_client_t *c) {
    bool look = atomic_load(&c->cancels) && atomic_exchange(&c->cancels, false); // no write while none fired
    pthread_mutex_lock(&c->lock);
    call_t *call = c->queue_head;
    c->queue_head = c->queue_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    int64_t now = lz__now_ms();
    if (call) c->lend_ok = true;
    while (call) {
        call_t *next = call->next;
        look |= call->cancel != NULL;
        table_insert(c, call);
        if (dispatch(c, call, now)) note_timer(c, call->deadline);
        call = next;
    }
    if (look) end_cancelled_waits(c);
}

/* ---- lending the socket to a synchronous caller --------------------------- */

// can_lend: one socket, healthy, nothing in flight, and requests have been
// flowing lately (an idle client keeps watching for late replies itself).
static bool can_lend(const lz_client_t *c) {
    return c->lend_ok && c->ep_count == 1 && c->pending_count == 0 && !c->ep[0].down && !c->ep[0].probe &&
           c->ep[0].node->socket;
}

// lend_socket lends the socket if it can, and returns once it is back
// (true), the I/O thread then owning everything again. It takes the socket
// back when someone submits a request, a direct caller hands its request
// back, the client stops, or no direct request ran for LEND_IDLE_MS: then
// late replies are read as they come again, and lending waits for the next
// submitted request.
static bool lend_socket(lz_client_t *c) {
    if (!can_lend(c)) return false;
    pthread_mutex_lock(&c->lock);
    bool lend = !c->queue_head && !c->closed;
    if (lend) {
        c->lent = true;
        c->last_direct = lz__now_ms();
    }
    pthread_mutex_unlock(&c->lock);
    if (!lend) return false;
    for (;;) {
        struct pollfd wake = {c->wake_fd, POLLIN, 0}; // a plain descriptor: poll(2), no zmq_poll passes
        if (poll(&wake, 1, LEND_IDLE_MS) > 0) lz__wakeup_drain(c->wake_fd);
        pthread_mutex_lock(&c->lock);
        // pending_count is read only when no caller holds the loan (borrow too).
        bool wanted = atomic_load(&c->stopping) || c->queue_head || (!c->direct && c->pending_count > 0);
        bool unused = !c->direct && lz__now_ms() - c->last_direct >= LEND_IDLE_MS;
        if (!c->direct && (wanted || unused)) {
            c->lent = false;
            pthread_mutex_unlock(&c->lock);
            if (!wanted) c->lend_ok = false;
            return true;
        }
        if (c->direct && wanted) atomic_store(&c->yield, true); // seen within DIRECT_SLICE_MS
        pthread_mutex_unlock(&c->lock);
    }
}

// borrow takes the lent socket for the caller's request, if it is lent and
// free: nothing queued, and nothing pending either. A request the last
// direct caller handed back (its attempt timed out) is pending until the
// I/O thread takes the socket back, which it does not ask of a caller
// holding the loan: borrowed meanwhile, the socket would keep that request
// waiting past its timeout for as long as the new caller's attempt lasts.
// pending_count is not the I/O thread's to change while the socket is lent,
// and the last direct caller's changes came before its unlock of c->lock.
static bool borrow(lz_client_t *c) {
    pthread_mutex_lock(&c->lock);
    bool ok = c->lent && !c->direct && !c->closed && !c->queue_head && c->pending_count == 0;
    if (ok) c->direct = true;
    pthread_mutex_unlock(&c->lock);
    return ok;
}

// direct_recv receives on the lent socket. A cancellable call's wait also
// ends when its cancel fires (LZ_ETIMEOUT: the caller then looks).
static int direct_recv(lz_client_t *c, const call_t *call, lz_frames_t *f, int timeout_ms) {
    lz_node_t *node = c->ep[0].node;
    if (!call->cancel) return lz__node_recv(node, f, timeout_ms);
    zmq_pollitem_t items[2] = {{node->socket, -1, ZMQ_POLLIN, 0}, {NULL, call->cancel->wake_fd, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 2, timeout_ms) < 0 && zmq_errno() == ETERM)
        return lz__fail(LZ_ECLOSED, "%s: context terminated", node->name);
    return items[0].revents ? lz__node_recv(node, f, 0) : LZ_ETIMEOUT;
}

// direct_wait: the direct caller waits for its reply as a REQ socket does,
// in libzmq's blocking receive (no zmq_poll around it: that would add a
// descriptor look-up and an event read on each side of its poll; a
// cancellable call needs one), in slices of DIRECT_SLICE_MS so a request
// to yield is seen within one. Returns true once the call is done (and
// freed); false when it must be handed back: its attempt timed out, the
// I/O thread wants the socket, its cancel fired, or the context is ending.
static bool direct_wait(lz_client_t *c, call_t *call) {
    waiter_t *w = call->waiter;
    for (int64_t now = call->sent_at; call->sent_at >= 0 && now < call->attempt_deadline; now = lz__now_ms()) {
        if (atomic_load_explicit(&c->yield, memory_order_relaxed) || cancelled(call)) return false;
        int64_t left = call->attempt_deadline - now;
        lz_frames_t f;
        int rc = direct_recv(c, call, &f, left < DIRECT_SLICE_MS ? (int)left : DIRECT_SLICE_MS);
        if (rc == LZ_ETIMEOUT) continue;
        if (rc < 0) return false;
        take_reply(c, 0, &f); // a late reply to an earlier request, or ours
        if (waiter_done(w)) return true;
    }
    return false;
}

// run_direct: the caller does the I/O thread's work for its own request
// until it ends or its attempt times out or the I/O thread wants the socket
// back. An unfinished request stays in the pending table and is handed back
// as it stands (sent, or waiting to be), so timeouts, retries, rebuilds and
// late replies go on exactly as if the I/O thread had sent it.
static void run_direct(lz_client_t *c, call_t *call) {
    int64_t now = lz__now_ms();
    table_insert(c, call);
    bool done = !dispatch(c, call, now) || (!call->held && direct_wait(c, call));
    if (!done && cancelled(call)) abandon(call); // handed back to go on without its caller
    if (!done) c->next_timer = 0; // the I/O thread looks at the handed-back request at once
    pthread_mutex_lock(&c->lock);
    c->direct = false;
    c->last_direct = lz__now_ms();
    atomic_store(&c->yield, false); // asked of this caller only
    bool wake = !done || c->queue_head || atomic_load(&c->stopping);
    pthread_mutex_unlock(&c->lock);
    if (wake) lz__wakeup_signal(c->wake_fd);
}

// shut_down: every call still queued or pending completes with LZ_ECLOSED.
static void shut_down(lz_client_t *c) {
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    call_t *call = c->queue_head;
    c->queue_head = c->queue_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (call) {
        call_t *next = call->next;
        finish(c, call, LZ_ECLOSED, NULL);
        call = next;
    }
    while (c->pending.next != &c->pending) finish(c, c->pending.next, LZ_ECLOSED, NULL);
}

// The whole I/O thread is the client's (lz__thread_inside): what runs on
// it may neither wait for a request nor destroy the client.
static void *client_loop(void *arg) {
    lz_client_t *c = arg;
    lz_thread_running_t here;
    lz__thread_enter(&here, c);
    while (!atomic_load(&c->stopping)) {
        if (lend_socket(c)) { // its wakeup is consumed: take what was submitted meanwhile
            take_submissions(c);
            continue;
        }
        int64_t wait = c->next_timer - lz__now_ms();
        if (wait < 0) wait = 0;
        if (wait > CLIENT_POLL_MAX_MS) wait = CLIENT_POLL_MAX_MS;
        c->items[0] = (zmq_pollitem_t){NULL, c->wake_fd, ZMQ_POLLIN, 0};
        for (size_t i = 0; i < c->ep_count; i++) { // a socket whose rebuild failed is NULL: skipped
            void *socket = c->ep[i].node->socket;
            short events = socket ? ZMQ_POLLIN | (c->ep[i].wants_room ? ZMQ_POLLOUT : 0) : 0;
            c->items[i + 1] = (zmq_pollitem_t){socket, -1, events, 0};
        }
        int n = zmq_poll(c->items, (int)c->ep_count + 1, (long)wait);
        if (n < 0 && zmq_errno() == ETERM) break;
        if (n > 0 && c->items[0].revents) {
            lz__wakeup_drain(c->wake_fd);
            take_submissions(c);
        }
        for (size_t i = 0; n > 0 && i < c->ep_count; i++) {
            if (c->items[i + 1].revents & ZMQ_POLLIN) read_replies(c, i);
            if (c->items[i + 1].revents & ZMQ_POLLOUT) c->next_timer = 0; // room for the attempts held there
        }
        int64_t now = lz__now_ms();
        if (now >= c->next_timer) run_timers(c, now);
    }
    shut_down(c);
    lz__thread_leave(&here);
    return NULL;
}

/* ---- construction -------------------------------------------------------- */

// count_entries: the entries of an endpoint list (not NULL), empty ones
// skipped, as lz__node_attach's strtok_r does.
static size_t count_entries(const char *endpoints) {
    size_t n = 0;
    for (const char *p = endpoints; *p; p++) n += *p != ',' && (p == endpoints || p[-1] == ',');
    return n;
}

bool lz__client_endpoints_given(const char *endpoints) { return endpoints && count_entries(endpoints) > 0; }

// open_endpoint makes endpoint i's socket; the routing id must be set
// before the socket connects, so endpoints are attached after it.
static int open_endpoint(lz_client_t *c, lz_context_t *ctx, size_t i, const char *entry,
                         const lz_engine_options_t *o) {
    lz_node_t *node = i == 0 ? &c->node : calloc(1, sizeof *node);
    if (!node) return lz__fail(LZ_ENOMEM, "%s: out of memory", o->name);
    int rc = lz__node_init(node, ctx, ZMQ_DEALER, o->name, '>', NULL);
    if (rc < 0) {
        if (i > 0) free(node);
        return rc;
    }
    c->ep[i].node = node;
    if (i > 0) lz__node_share_counters(node, &c->node);
    if (o->identity && zmq_setsockopt(node->socket, ZMQ_ROUTING_ID, o->identity, strlen(o->identity)) != 0)
        return lz__fail_zmq("dealer identity");
    rc = lz__node_attach(node, entry);
    node->thread_owned = true; // the client's I/O thread polls and reads it without the lock
    return rc;
}

static int open_endpoints(lz_client_t *c, lz_context_t *ctx, const char *endpoints,
                          const lz_engine_options_t *o) {
    if (c->ep_count == 1) return open_endpoint(c, ctx, 0, endpoints, o);
    char *copy = strdup(endpoints);
    if (!copy) return lz__fail(LZ_ENOMEM, "%s: out of memory", o->name);
    char *save = NULL, *entry = strtok_r(copy, ",", &save);
    int rc = LZ_OK;
    for (size_t i = 0; rc == LZ_OK && i < c->ep_count; i++, entry = strtok_r(NULL, ",", &save))
        rc = open_endpoint(c, ctx, i, entry, o); // count_entries counted the entries strtok_r returns
    free(copy);
    return rc;
}

static void close_endpoints(lz_client_t *c) {
    for (size_t i = c->ep_count; i-- > 0;) {
        if (!c->ep[i].node) continue;
        lz__node_close(c->ep[i].node);
        if (i > 0) free(c->ep[i].node);
    }
}

static void client_free(lz_client_t *c) {
    if (c->ep) close_endpoints(c);
    free(c->ep);
    free(c->items);
    free(c->buckets);
    lz__wakeup_close(&c->wake_fd);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->lock);
    call_destroy(lz__spare_take(&c->spare_call));
    free(c);
}

lz_client_t *lz__client_open(lz_context_t *ctx, const char *endpoints, const lz_engine_options_t *o) {
    if (!ctx) return lz__fail_null(LZ_EINVAL, "%s: ctx is NULL", o->name);
    if (!lz__client_endpoints_given(endpoints)) // its sockets are its I/O thread's: none can be added later
        return lz__fail_null(LZ_EINVAL, "%s: no endpoint: give at least one when creating it", o->name);
    lz_client_t *c = calloc(1, sizeof *c);
    if (!c) return lz__fail_null(LZ_ENOMEM, "%s: out of memory", o->name);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->wake_fd = lz__wakeup_open();
    c->envelope = o->envelope;
    c->resilient = o->resilient;
    c->pending.next = c->pending.prev = &c->pending;
    c->next_timer = NEVER;
    c->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)c;
    c->ep_count = o->resilient ? count_entries(endpoints) : 1; // one socket per entry, else one for all
    c->bucket_count = 64;
    c->ep = calloc(c->ep_count, sizeof *c->ep);
    c->items = calloc(c->ep_count + 1, sizeof *c->items);
    c->buckets = calloc(c->bucket_count, sizeof *c->buckets);
    int rc = c->wake_fd < 0 ? lz__fail(LZ_EIO, "%s: eventfd: %s", o->name, strerror(errno))
             : (!c->ep || !c->items || !c->buckets) ? lz__fail(LZ_ENOMEM, "%s: out of memory", o->name)
                                                     : open_endpoints(c, ctx, endpoints, o);
    if (rc == LZ_OK) {
        atomic_store(&c->retries, o->resilient ? LZ_LIVE(c->node.live, request_retries) : 0);
        int err = lz__thread_start(&c->thread, client_loop, c);
        if (err) rc = lz__thread_fail(err, o->name);
    }
    if (rc != LZ_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", lz_last_error());
        client_free(c);
        return lz__fail_null(rc, "%s", detail);
    }
    c->thread_started = true;
    return c;
}

/* ---- calls from the user's threads -------------------------------------- */

static int submit(lz_client_t *c, call_t *call) {
    pthread_mutex_lock(&c->lock);
    bool closed = c->closed;
    if (!closed) {
        if (c->queue_tail) c->queue_tail->next = call;
        else c->queue_head = call;
        c->queue_tail = call;
    }
    pthread_mutex_unlock(&c->lock);
    if (closed) {
        call_free(c, call);
        return lz__fail(LZ_ECLOSED, "%s: closed", c->node.name);
    }
    lz__wakeup_signal(c->wake_fd);
    return LZ_OK;
}

// explain sets the waiting caller's error detail from the outcome.
static int explain(lz_client_t *c, int status, const char *action, const lz_value_t *reply) {
    const char *what = action ? action : "request";
    switch (status) {
    case LZ_OK: return LZ_OK;
    case LZ_ETIMEOUT: return lz__fail(status, "%s: '%s' got no reply in time", c->node.name, what);
    case LZ_EREMOTE:
        return lz__fail(status, "%s: '%s' failed on the server: %s (%s)", c->node.name, what,
                        lz_value_find_string(reply, "message", "error reply"),
                        lz_value_find_string(reply, "code", "no code"));
    case LZ_ESERIALIZATION: return lz__fail(status, "%s: the reply to '%s' does not decode", c->node.name, what);
    case LZ_ENOMEM:
        return lz__fail(status, "%s: '%s': out of memory to send it or to read its reply", c->node.name, what);
    default: return lz__fail(status, "%s: '%s': %s", c->node.name, what, lz_strerror(status));
    }
}

static int wait_for(lz_client_t *c, call_t *call, const char *action, lz_value_t **reply) {
    waiter_t w = {.done = false, .thread = pthread_self()};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    call->waiter = &w;
    int rc = LZ_OK;
    if (borrow(c)) run_direct(c, call);
    else rc = submit(c, call);
    if (rc == LZ_OK) {
        if (!w.finished_here) {
            pthread_mutex_lock(&w.lock);
            while (!w.done) pthread_cond_wait(&w.cond, &w.lock);
            pthread_mutex_unlock(&w.lock);
        }
        rc = explain(c, w.status, action, w.reply);
        if (reply && (rc == LZ_OK || rc == LZ_EREMOTE)) *reply = w.reply;
        else lz_value_destroy(&w.reply);
    }
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return rc;
}

// enter counts the calling thread in (callers), or refuses it LZ_ECLOSED
// once the client is being destroyed.
static int enter(lz_client_t *c) {
    pthread_mutex_lock(&c->lock);
    bool open = !c->closed && !atomic_load(&c->stopping);
    // Refused, the caller may not touch c once it is unlocked: the detail is written now.
    int rc = open ? LZ_OK : lz__fail(LZ_ECLOSED, "%s: closed", c->node.name);
    if (open) c->callers++;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

// leave counts the calling thread out: the last access to c.
static void leave(lz_client_t *c) {
    pthread_mutex_lock(&c->lock);
    if (--c->callers == 0) pthread_cond_signal(&c->idle); // destroy alone waits on it
    pthread_mutex_unlock(&c->lock);
}

static int call_entered(lz_client_t *c, const char *action, const lz_value_t *data, int timeout_ms,
                        lz_client_callback_fn callback, void *arg, lz_value_t **reply, char *request_id_out,
                        const lz_cancel_t *cancel) {
    call_t *call = call_new(c, action, data, timeout_ms, true);
    if (!call) return lz_last_error_code();
    if (request_id_out) memcpy(request_id_out, call->id, ID_LEN + 1);
    call->cancel = cancel;
    if (!callback) return wait_for(c, call, action, reply);
    call->callback = callback;
    call->arg = arg;
    return submit(c, call);
}

// client_call is lz__client_call; a waiting one ends when cancel fires (NULL: never).
static int client_call(lz_client_t *c, const char *action, const lz_value_t *data, int timeout_ms,
                       lz_client_callback_fn callback, void *arg, lz_value_t **reply, char *request_id_out,
                       const lz_cancel_t *cancel) {
    if (reply) *reply = NULL;
    if (timeout_ms < -1) return lz__timeout_check(timeout_ms, c->node.name);
    if (!c->thread_started) return lz__fail(LZ_ECLOSED, "%s: closed", c->node.name);
    if (lz__cancel_fired(cancel)) return lz__fail(LZ_ECLOSED, "%s: cancelled before it was sent", c->node.name);
    if (!callback && lz__thread_inside(c))
        return lz__fail(LZ_ESTATE, "%s: a synchronous request from a completion callback would wait forever",
                        c->node.name);
    int rc = enter(c);
    if (rc != LZ_OK) return rc;
    rc = call_entered(c, action, data, timeout_ms, callback, arg, reply, request_id_out, cancel);
    leave(c);
    return rc;
}

int lz__client_call(lz_client_t *c, const char *action, const lz_value_t *data, int timeout_ms,
                    lz_client_callback_fn callback, void *arg, lz_value_t **reply, char *request_id_out) {
    return client_call(c, action, data, timeout_ms, callback, arg, reply, request_id_out, NULL);
}

/* ---- cancels ------------------------------------------------------------- */

int lz__cancel_init(lz_cancel_t *cancel, lz_client_callback_fn late, void *late_arg) {
    atomic_init(&cancel->fired, false);
    cancel->late = late;
    cancel->late_arg = late_arg;
    cancel->wake_fd = lz__wakeup_open();
    return cancel->wake_fd < 0 ? lz__fail(LZ_EIO, "cancel: eventfd: %s", strerror(errno)) : LZ_OK;
}

void lz__cancel_close(lz_cancel_t *cancel) { lz__wakeup_close(&cancel->wake_fd); }

bool lz__cancel_fired(const lz_cancel_t *cancel) { return cancel && atomic_load(&cancel->fired); }

void lz__cancel_pause(const lz_cancel_t *cancel, int64_t ms) {
    struct pollfd wake = {cancel->wake_fd, POLLIN, 0}; // never drained: readable for good once fired
    for (int64_t due = lz__now_ms() + ms, left = ms; left > 0 && !lz__cancel_fired(cancel); left = due - lz__now_ms())
        poll(&wake, 1, left < INT32_MAX ? (int)left : INT32_MAX);
}

void lz__client_cancel(lz_client_t *c, lz_cancel_t *cancel) {
    atomic_store(&cancel->fired, true);
    lz__wakeup_signal(cancel->wake_fd); // a caller on the lent socket
    atomic_store(&c->cancels, true);
    lz__wakeup_signal(c->wake_fd); // the I/O thread, for a call in its hands (take_submissions)
}

/* ---- the public client API ------------------------------------------------ */

lz_client_t *lz_client_new(lz_context_t *ctx, const char *endpoints) {
    static const lz_engine_options_t options = {.envelope = true, .resilient = true, .name = "client"};
    return lz__client_open(ctx, endpoints, &options);
}

void lz__client_destroy(lz_client_t **client_p, const char *fn) {
    if (!client_p || !*client_p) return;
    lz_client_t *c = *client_p;
    if (lz__node_refuse_destroy(&c->node, c, fn, "completion callback") != LZ_OK) return;
    atomic_store(&c->stopping, true);
    lz__wakeup_signal(c->wake_fd);
    pthread_join(c->thread, NULL); // its shut_down ended every call in flight: their callers are leaving
    pthread_mutex_lock(&c->lock);
    while (c->callers > 0) pthread_cond_wait(&c->idle, &c->lock);
    pthread_mutex_unlock(&c->lock);
    client_free(c);
    *client_p = NULL;
}

void lz_client_destroy(lz_client_t **client_p) { lz__client_destroy(client_p, "lz_client_destroy"); }

lz_node_t *lz_client_node(lz_client_t *client) { return client ? &client->node : NULL; }

int lz_client_set_strategy(lz_client_t *client, lz_strategy_t strategy) {
    if (!client || strategy < LZ_STRATEGY_ROUND_ROBIN || strategy > LZ_STRATEGY_FAILOVER)
        return lz__fail(LZ_EINVAL, "lz_client_set_strategy: bad client or strategy");
    atomic_store(&client->strategy, (int)strategy);
    return LZ_OK;
}

int lz_client_set_retries(lz_client_t *client, int retries) {
    if (!client || retries < 0 || retries > LZ_CLIENT_RETRIES_MAX)
        return lz__fail(LZ_EINVAL, "lz_client_set_retries: bad client or count (0 to %d)", LZ_CLIENT_RETRIES_MAX);
    if (!client->resilient) return lz__fail(LZ_ESTATE, "%s: never retries", client->node.name);
    atomic_store(&client->retries, retries);
    return LZ_OK;
}

int lz__client_request_until(lz_client_t *client, const char *action, const lz_value_t *data, lz_value_t **reply,
                             int timeout_ms, const lz_cancel_t *cancel) {
    if (reply) *reply = NULL;
    if (!client || !action) return lz__fail(LZ_EINVAL, "lz_client_request: NULL client or action");
    return client_call(client, action, data, timeout_ms, NULL, NULL, reply, NULL, cancel);
}

int lz_client_request(lz_client_t *client, const char *action, const lz_value_t *data, lz_value_t **reply,
                      int timeout_ms) {
    return lz__client_request_until(client, action, data, reply, timeout_ms, NULL);
}

int lz_client_request_async(lz_client_t *client, const char *action, const lz_value_t *data, int timeout_ms,
                            lz_client_callback_fn callback, void *arg) {
    if (!client || !action || !callback)
        return lz__fail(LZ_EINVAL, "lz_client_request_async: NULL client, action or callback");
    return lz__client_call(client, action, data, timeout_ms, callback, arg, NULL, NULL);
}
