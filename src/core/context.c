/* The context: owns the libzmq context, configuration, logger, serializer
 * registry and the metrics of its nodes. Nodes hold references, so the
 * libzmq context terminates only after the last socket is closed. One
 * monitor thread per context reads every node's libzmq socket events; the
 * ZAP handler (zap.c), when wanted, answers ZAP requests on threads of its
 * own. A reload swaps the live part of the configuration
 * (lz_context_reload); a watcher (watch.c) reloads from a file. */
#include "core/context.h"
#include "core/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "core/answer.h"
#include "core/eintr.h"
#include "core/error.h"
#include "core/log.h"
#include "core/node.h"
#include "core/otlp.h"
#include "core/plugin.h"
#include "core/prometheus.h"
#include "core/secure_env.h"
#include "core/security.h"
#include "core/sockopt.h"
#include "core/thread.h"
#include "core/watch.h"
#include "core/zap.h"
#include "serial/registry.h"

typedef struct monitor_entry {
    lz_node_t *node;
    void *pair; // connected to the node's monitor endpoint
} monitor_entry_t;

typedef struct monitor {
    pthread_t thread;
    bool running;         // the thread was started: it is joined
    atomic_bool stopped;  // the thread left its loop: no request is answered any more
    pthread_mutex_t lock; // serialises requests on control
    void *control;        // our end of the control pipe
    void *inbox;          // the thread's end, bound before it starts; it closes it
    char endpoint[64];
    // Owned by the monitor thread only:
    monitor_entry_t *entries;
    zmq_pollitem_t *items; // inbox's, then one per entry: grown with entries, so the loop allocates nothing
    size_t count, capacity;
} monitor_t;

// The span function and its calls in progress, so that lz_context_on_span
// returns only once the function it replaced has returned everywhere (its
// arg may be freed next). A call counts under the parity of the function
// it began with; a swap flips the parity and waits for the old one to
// drain, so calls of the new function, however many, never hold it up.
// Swaps take turns: each waits for one parity only.
typedef struct span_slot {
    lz_span_fn fn; // under the context's lock, as are arg and parity
    void *arg;
    unsigned parity;
    atomic_uint calls[2];  // raised under the lock, lowered after the call without it
    atomic_bool swapping;  // a swap is under way: the call that drains a parity wakes it
    pthread_cond_t turn;   // with the context's lock: a parity drained, a swap ended
} span_slot_t;

// A call of a span function on this thread. A swap made from inside one
// would wait for itself: it stops counting this thread's calls instead.
typedef struct span_call {
    const lz_context_t *ctx;
    unsigned parity;
    bool counted; // in ctx's calls[parity]
    struct span_call *outer;
} span_call_t;

static _Thread_local span_call_t *span_calls_here __attribute__((tls_model("initial-exec"))); // innermost first

struct lz_context {
    void *zmq;
    // The configuration in force: a reload swaps it. The ones it replaced
    // stay until the context ends, since pointers into them may still be
    // read (lz_context_config's callers, settings' strings).
    _Atomic(lz_config_t *) config;
    lz_config_t **old_configs; // under reload_lock
    size_t old_config_count;
    lz_settings_t settings;
    lz_live_t live;
    lz_logger_t *logger;
    lz_registry_t *registry;
    lz_security_t *security; // under policy_lock: the ZAP handler and node setup read it, a reload swaps it
    pthread_mutex_t policy_lock;
    lz_zap_t *zap;            // the ZAP handler, when wanted; under zap_lock
    bool zap_kept;            // a node or the policy in force wants it: only a reload's own start is undone
    pthread_mutex_t zap_lock; // starts it once
    pthread_mutex_t reload_lock; // one reload at a time (API calls, the watcher)
    pthread_mutex_t watch_lock;  // guards watch; never taken by the watcher's thread, so a stop can join it
    lz_watch_t *watch;           // read by its own thread without the lock: changed only once that thread ends
    atomic_int refs;
    lz_context_t *deferred_next; // in its thread's deferred_destroys (lz_context_destroy)
    pthread_mutex_t lock; // guards nodes and retired
    lz_node_t *nodes;
    uint64_t node_ids; // the last id given
    lz_metrics_t retired;
    lz_prometheus_t *exporter; // from metrics.prometheus_listen
    lz_otlp_slot_t otlp;       // from tracing.otlp_endpoint; a reload replaces the exporter
    atomic_flag warned[LZ_WARNING_COUNT]; // lz__context_warn_once said each once
    span_slot_t span; // lz_context_on_span's function
    monitor_t monitor;
    lz_plugins_t plugins; // plugins.load, lz_context_load_plugin
    lz__collectors_t collectors; // extra families of the Prometheus scrape (lock services)
};

enum { MONITOR_ADD = 1, MONITOR_REMOVE = 2, MONITOR_STOP = 3, MONITOR_JUDGE = 4 };
// MONITOR_JUDGE: judge the live connections again by policies[0], the
// policy just installed, which replaced policies[1] (revoke.h).
typedef struct {
    int op;
    lz_node_t *node;
    const lz_security_t *policies[2];
} monitor_request_t;

/* ---- monitor thread ---------------------------------------------------- */

// How long a request's answer is waited for before the thread is looked at:
// a live one answers in microseconds, a stopped one never.
#define MONITOR_WAIT_SLICE_MS 100

// monitor_grow makes room for one more entry, and its poll item.
static int monitor_grow(monitor_t *mon) {
    if (mon->count < mon->capacity) return LZ_OK;
    size_t cap = mon->capacity ? mon->capacity * 2 : 8;
    monitor_entry_t *entries = realloc(mon->entries, cap * sizeof *entries);
    if (entries) mon->entries = entries;
    zmq_pollitem_t *items = entries ? realloc(mon->items, (cap + 1) * sizeof *items) : NULL;
    if (!items) return LZ_ENOMEM;
    mon->items = items;
    mon->capacity = cap;
    return LZ_OK;
}

static int monitor_entry_add(monitor_t *mon, void *zmq, lz_node_t *node) {
    if (monitor_grow(mon) != LZ_OK) return LZ_ENOMEM;
    void *pair = zmq_socket(zmq, ZMQ_PAIR);
    if (!pair) return LZ_EZMQ;
    lz__sockopt_int(pair, ZMQ_LINGER, 0);
    int rc;
    LZ_EINTR_RESTART(rc, zmq_connect(pair, node->monitor_endpoint));
    if (rc != 0) {
        zmq_close(pair);
        return LZ_EZMQ;
    }
    mon->entries[mon->count++] = (monitor_entry_t){node, pair};
    return LZ_OK;
}

static void monitor_entry_remove(monitor_t *mon, lz_node_t *node) {
    for (size_t i = 0; i < mon->count; i++) {
        if (mon->entries[i].node != node) continue;
        zmq_close(mon->entries[i].pair);
        mon->entries[i] = mon->entries[--mon->count];
        return;
    }
}

// A libzmq monitor event is [6 bytes: uint16 event, uint32 value][endpoint].
// Returns whether there was one to read.
static bool monitor_read_event(monitor_entry_t *entry) {
    zmq_msg_t head, addr;
    zmq_msg_init(&head);
    zmq_msg_init(&addr);
    int rc;
    bool got = zmq_msg_recv(&head, entry->pair, ZMQ_DONTWAIT) >= 0;
    if (got && zmq_msg_more(&head)) LZ_EINTR_RESTART(rc, zmq_msg_recv(&addr, entry->pair, 0));
    if (zmq_msg_size(&head) >= 2) {
        uint16_t event;
        uint32_t value = 0;
        memcpy(&event, zmq_msg_data(&head), sizeof event);
        if (zmq_msg_size(&head) >= 6) memcpy(&value, (char *)zmq_msg_data(&head) + 2, sizeof value);
        int delta = event == ZMQ_EVENT_CONNECTED || event == ZMQ_EVENT_ACCEPTED ? 1
                    : event == ZMQ_EVENT_DISCONNECTED                          ? -1
                                                                               : 0;
        if (event & LZ_HANDSHAKE_FAILURES) {
            char endpoint[LZ_NODE_ENDPOINT_MAX];
            lz__msg_text(&addr, endpoint, sizeof endpoint);
            lz__node_handshake_failed(entry->node, event, value, endpoint);
        }
        // These events' value is the connection's descriptor. A connection
        // the socket made is judged at a reload as an accepted one is: the
        // ZAP handler judged its handshake too (revoke.h).
        if (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_CONNECTED)
            lz__conns_opened(&entry->node->conns, (int)value);
        if (event == ZMQ_EVENT_DISCONNECTED) lz__conns_disconnected(&entry->node->conns, (int)value);
        // Under the lock lz__context_share_counters takes: a multi-endpoint
        // client points a node at its owner's counters before connecting,
        // and the event that follows reaches us through libzmq's pipe,
        // an ordering ThreadSanitizer cannot see. Events are rare.
        if (delta) {
            pthread_mutex_lock(&entry->node->ctx->lock);
            lz__node_connection_event(entry->node, delta);
            pthread_mutex_unlock(&entry->node->ctx->lock);
        }
    }
    zmq_msg_close(&head);
    zmq_msg_close(&addr);
    return got;
}

// Events read from one socket before its connections are judged, at most:
// a storm of connections must not hold a reload up for ever.
#define MONITOR_JUDGE_EVENTS 4096

// monitor_judge judges every node's live connections again (revoke.h),
// each after reading the events its socket sent so far: a connection
// accepted before the new policy came, whose handshake the old one judged,
// is then in the table to be judged too. Returns how many were cut.
// policy_handoff orders a thread's use of the policies a MONITOR_JUDGE
// hands over against the other side's, for ThreadSanitizer: the request
// and its answer go through libzmq's pipe, whose ordering it cannot see.
// Each policy was installed under policy_lock after it was built, and the
// reload frees the old one only after this answer. Only taken and left:
// the receive path takes it inside a node's connection lock
// (lz__conns_look), which lz__conns_judge takes.
static void policy_handoff(lz_context_t *ctx) {
    pthread_mutex_lock(&ctx->policy_lock);
    pthread_mutex_unlock(&ctx->policy_lock);
}

static int monitor_judge(lz_context_t *ctx, const lz_security_t *now, const lz_security_t *before) {
    monitor_t *mon = &ctx->monitor;
    policy_handoff(ctx);
    size_t cut = 0;
    for (size_t i = 0; i < mon->count; i++) {
        for (int n = 0; n < MONITOR_JUDGE_EVENTS && monitor_read_event(&mon->entries[i]); n++) {
        }
        cut += lz__conns_judge(mon->entries[i].node, now, before);
    }
    policy_handoff(ctx);
    return cut > INT_MAX ? INT_MAX : (int)cut;
}

static bool monitor_serve_request(lz_context_t *ctx, void *control) {
    monitor_t *mon = &ctx->monitor;
    void *zmq = ctx->zmq;
    monitor_request_t req;
    int rc;
    LZ_EINTR_RESTART(rc, zmq_recv(control, &req, sizeof req, 0));
    if (rc != (int)sizeof req) return true;
    int status = LZ_OK;
    if (req.op == MONITOR_ADD) status = monitor_entry_add(mon, zmq, req.node);
    else if (req.op == MONITOR_REMOVE) monitor_entry_remove(mon, req.node);
    else if (req.op == MONITOR_JUDGE) status = monitor_judge(ctx, req.policies[0], req.policies[1]);
    LZ_EINTR_RESTART(rc, zmq_send(control, &status, sizeof status, 0));
    return req.op != MONITOR_STOP;
}

// monitor_main serves requests and reads events until MONITOR_STOP. Its
// poll items grow with the entries (an ADD that finds no memory is
// refused), so only zmq_poll can end it otherwise: ETERM, when the
// application shut the libzmq context down (zmq_ctx_shutdown). Requests
// then fail at once (monitor_send), and the nodes' events go unread.
static void *monitor_main(void *self) {
    lz_context_t *ctx = self;
    monitor_t *mon = &ctx->monitor;
    int rc = 0;
    for (bool go = true; go;) {
        zmq_pollitem_t *items = mon->items;
        items[0] = (zmq_pollitem_t){mon->inbox, 0, ZMQ_POLLIN, 0};
        for (size_t i = 0; i < mon->count; i++) items[i + 1] = (zmq_pollitem_t){mon->entries[i].pair, 0, ZMQ_POLLIN, 0};
        size_t polled = mon->count;
        LZ_EINTR_RESTART(rc, zmq_poll(items, (int)polled + 1, -1));
        if (rc < 0) break;
        for (size_t i = 0; i < polled && i < mon->count; i++)
            if (items[i + 1].revents & ZMQ_POLLIN) monitor_read_event(&mon->entries[i]);
        if (items[0].revents & ZMQ_POLLIN) go = monitor_serve_request(ctx, mon->inbox);
    }
    if (rc < 0)
        LZ_LOG(ctx->logger, LZ_LOG_ERROR, "context", "connection monitor stopped: zmq_poll: %s: connection events "
               "are no longer counted and nodes cannot be made", zmq_strerror(zmq_errno()));
    atomic_store(&mon->stopped, true);
    for (size_t i = 0; i < mon->count; i++) zmq_close(mon->entries[i].pair);
    mon->count = 0;
    zmq_close(mon->inbox);
    return NULL;
}

// monitor_answer waits for the answer to the request just sent: its status,
// or LZ_ESTATE once the thread has stopped without giving one.
static int monitor_answer(monitor_t *mon) {
    int status;
    int got = lz__receive_answer(mon->control, &status, sizeof status, &mon->stopped, -1);
    if (got == (int)sizeof status) return status;
    return got == LZ_ECLOSED ? LZ_ESTATE : LZ_EZMQ;
}

// monitor_send asks the monitor thread and returns its answer. It does not
// wait when the thread has stopped: the send would find no peer, and the
// answer would never come.
static int monitor_send(lz_context_t *ctx, monitor_request_t req) {
    monitor_t *mon = &ctx->monitor;
    int status = LZ_ESTATE, rc = -1;
    pthread_mutex_lock(&mon->lock);
    if (!atomic_load(&mon->stopped)) LZ_EINTR_RESTART(rc, zmq_send(mon->control, &req, sizeof req, ZMQ_DONTWAIT));
    if (rc == (int)sizeof req) status = monitor_answer(mon);
    else if (!atomic_load(&mon->stopped)) status = LZ_EZMQ;
    pthread_mutex_unlock(&mon->lock);
    return status;
}

static int monitor_request(lz_context_t *ctx, int op, lz_node_t *node) {
    return monitor_send(ctx, (monitor_request_t){.op = op, .node = node});
}

// monitor_open makes both ends of the control pipe here, so a failure is
// lz_context_new's (the thread's end changes threads once, at its start,
// which libzmq allows across a full barrier such as pthread_create).
static int monitor_open(lz_context_t *ctx) {
    monitor_t *mon = &ctx->monitor;
    snprintf(mon->endpoint, sizeof mon->endpoint, "inproc://lz-monitor-control");
    // The context's first socket starts libzmq's threads. They inherit
    // this thread's mask until their routine blocks every signal, and one
    // slow to be scheduled could run the application's signal handler
    // meanwhile (test_thread saw it in CI, under load): block here too.
    sigset_t caller;
    lz__thread_signals_block(&caller);
    mon->control = zmq_socket(ctx->zmq, ZMQ_PAIR);
    mon->inbox = mon->control ? zmq_socket(ctx->zmq, ZMQ_PAIR) : NULL;
    int err = zmq_errno();
    lz__thread_signals_restore(&caller);
    if (!mon->inbox)
        return lz__fail(lz__zmq_error_code(err), "context: cannot open the connection monitor's 2 sockets "
                        "(zmq.max_sockets is %d): %s", ctx->settings.max_sockets, zmq_strerror(err));
    int rc;
    LZ_EINTR_RESTART(rc, zmq_bind(mon->inbox, mon->endpoint));
    if (rc == 0) LZ_EINTR_RESTART(rc, zmq_connect(mon->control, mon->endpoint));
    if (rc == 0) rc = lz__sockopt_int(mon->control, ZMQ_RCVTIMEO, MONITOR_WAIT_SLICE_MS);
    if (rc != 0) return lz__fail_zmq("context: connection monitor's control pipe");
    return monitor_grow(mon) == LZ_OK ? LZ_OK : lz__fail(LZ_ENOMEM, "context: out of memory");
}

// monitor_release frees what the thread leaves: all of it if it never ran.
static void monitor_release(monitor_t *mon) {
    if (mon->inbox && !mon->running) zmq_close(mon->inbox);
    if (mon->control) zmq_close(mon->control);
    free(mon->entries);
    free(mon->items);
    mon->control = mon->inbox = NULL;
    mon->entries = NULL;
    mon->items = NULL;
}

static int monitor_start(lz_context_t *ctx) {
    monitor_t *mon = &ctx->monitor;
    int rc = monitor_open(ctx);
    int err = rc == LZ_OK ? lz__thread_start(&mon->thread, monitor_main, ctx) : 0;
    if (err) rc = lz__thread_fail(err, "context: monitor");
    if (rc != LZ_OK) {
        monitor_release(mon);
        return rc;
    }
    mon->running = true;
    // Before any node exists, so no handshake goes unanswered.
    return lz__security_wants_zap(ctx->security) ? lz__context_zap(ctx) : LZ_OK;
}

static void monitor_stop(lz_context_t *ctx) {
    monitor_t *mon = &ctx->monitor;
    if (mon->running) {
        monitor_request(ctx, MONITOR_STOP, NULL);
        pthread_join(mon->thread, NULL);
    }
    monitor_release(mon);
    mon->running = false;
}

int lz__context_monitor_add(lz_context_t *ctx, lz_node_t *node) {
    int status = monitor_request(ctx, MONITOR_ADD, node);
    return status == LZ_OK ? LZ_OK
                           : lz__fail(status, "context: cannot monitor socket %s%s", node->name,
                                      status == LZ_ESTATE ? ": the connection monitor has stopped (see the log)" : "");
}

void lz__context_monitor_remove(lz_context_t *ctx, lz_node_t *node) {
    monitor_request(ctx, MONITOR_REMOVE, node);
}

lz_security_t *lz__context_policy(lz_context_t *ctx) {
    pthread_mutex_lock(&ctx->policy_lock); // a reload may be swapping it
    lz_security_t *policy = lz__security_ref(ctx->security);
    pthread_mutex_unlock(&ctx->policy_lock);
    return policy;
}

// context_policy gives the ZAP handler a reference on the policy in force.
static lz_security_t *context_policy(void *arg) { return lz__context_policy(arg); }

// zap_run starts the ZAP handler unless it runs; *started says whether
// this call started it. keep: the caller wants it for good (a node, the
// policy in force); a reload's start is kept only by its commit, so a
// refused reload can stop it again (zap_undo).
static int zap_run(lz_context_t *ctx, bool keep, bool *started) {
    pthread_mutex_lock(&ctx->zap_lock);
    *started = !ctx->zap;
    if (!ctx->zap) ctx->zap = lz__zap_start(ctx->zmq, context_policy, ctx, ctx->logger);
    *started = *started && ctx->zap;
    ctx->zap_kept = ctx->zap_kept || (keep && ctx->zap);
    int status = ctx->zap ? LZ_OK : lz_last_error_code();
    pthread_mutex_unlock(&ctx->zap_lock);
    return status == LZ_OK ? LZ_OK
                           : lz__fail(status, "context: cannot start the ZAP handler (inproc://zeromq.zap.01): %s%s",
                                      lz_last_error(), status == LZ_EZMQ ? " (does another handler run in this "
                                                                          "libzmq context?)" : "");
}

int lz__context_zap(lz_context_t *ctx) {
    bool started;
    return zap_run(ctx, true, &started);
}

// zap_keep keeps the handler a reload started, once it is committed.
static void zap_keep(lz_context_t *ctx) {
    pthread_mutex_lock(&ctx->zap_lock);
    ctx->zap_kept = true;
    pthread_mutex_unlock(&ctx->zap_lock);
}

// zap_undo stops the handler a refused reload started, unless a node made
// meanwhile wants it: the application may bind a handler of its own
// again. Under zap_lock, so no node starts another while this one unbinds.
static void zap_undo(lz_context_t *ctx) {
    pthread_mutex_lock(&ctx->zap_lock);
    if (!ctx->zap_kept) lz__zap_stop(&ctx->zap);
    pthread_mutex_unlock(&ctx->zap_lock);
}

// What each once-a-context warning says after "<node>: ".
static const char *const warnings[LZ_WARNING_COUNT] = {
    [LZ_WARNING_PLAIN_EXPOSED] = "PLAIN server bound on %s: user names and passwords cross the network in clear "
                                 "(use CURVE between hosts, or PLAIN over ipc or loopback only; docs/security.md)",
    [LZ_WARNING_GSSAPI_LEAK] = "encrypted GSSAPI on %s: this libzmq leaks each encrypted message's plaintext copy "
                               "(zeromq/libzmq#4856); a busy node grows without bound (use CURVE, or "
                               "security.gssapi_plaintext on a trusted network; docs/security.md)",
};

void lz__context_warn_once(lz_context_t *ctx, lz_context_warning_t which, const char *name, const char *url) {
    if (atomic_flag_test_and_set(&ctx->warned[which])) return;
    char format[320];
    snprintf(format, sizeof format, "%%s: %s", warnings[which]);
    LZ_LOG(ctx->logger, LZ_LOG_WARNING, "security", format, name, url);
}

/* ---- context ----------------------------------------------------------- */

static lz_config_t *config_from_environment(void) {
    lz_config_t *config = lz_config_new();
    if (!config) return lz__fail_null(LZ_ENOMEM, "context: out of memory");
    const char *file = lz__environment_config_file();
    if ((file && lz_config_load_file(config, file) != LZ_OK) || lz_config_load_env(config) != LZ_OK) {
        lz_config_destroy(&config);
        return NULL; // the loader's detail stands
    }
    return config;
}

static int security_open(lz_context_t *ctx) {
    lz_security_settings_t settings;
    int rc = lz__security_settings_read(ctx->config, &settings);
    return rc == LZ_OK ? lz__security_new(&settings, &ctx->security) : rc;
}

static int zmq_context_open(lz_context_t *ctx) {
    ctx->zmq = zmq_ctx_new();
    if (!ctx->zmq) return lz__fail_zmq("context: zmq_ctx_new");
    if (zmq_ctx_set(ctx->zmq, ZMQ_IO_THREADS, ctx->settings.io_threads) != 0 ||
        zmq_ctx_set(ctx->zmq, ZMQ_MAX_SOCKETS, ctx->settings.max_sockets) != 0)
        return lz__fail_zmq("context: zmq_ctx_set");
    return LZ_OK;
}

// live_store publishes the live settings to the threads that read them.
static void live_store(lz_live_t *live, const lz_settings_t *s) {
    atomic_store_explicit(&live->tracing, s->tracing, memory_order_relaxed);
    atomic_store_explicit(&live->tracing_log, s->tracing_log, memory_order_relaxed);
    atomic_store_explicit(&live->tracing_extension_frames, s->tracing_extension_frames, memory_order_relaxed);
    atomic_store_explicit(&live->request_timeout, s->request_timeout, memory_order_relaxed);
    atomic_store_explicit(&live->request_retries, s->request_retries, memory_order_relaxed);
    atomic_store_explicit(&live->task_max_retries, s->task_max_retries, memory_order_relaxed);
    atomic_store_explicit(&live->task_retry_delay, s->task_retry_delay, memory_order_relaxed);
}

static void context_unwatch(lz_context_t *ctx) {
    pthread_mutex_lock(&ctx->watch_lock);
    lz__watch_stop(&ctx->watch);
    pthread_mutex_unlock(&ctx->watch_lock);
}

static void context_free(lz_context_t *ctx) {
    // The exporter first: a scrape it is serving reads the nodes' list, the
    // span exporter's counters and the collectors, all torn down below.
    lz_prometheus_destroy(&ctx->exporter);
    lz__watch_stop(&ctx->watch);
    lz__otlp_slot_fini(&ctx->otlp); // no node is left to end a span
    monitor_stop(ctx);
    lz__zap_stop(&ctx->zap); // its socket closed before the libzmq context ends
    // A signal (a second Ctrl-C) ends the wait with EINTR, to be restarted
    // (zmq_ctx_term(3)): given up, libzmq's threads would outlive the
    // context, and a leak checker at exit would wait on them for ever.
    int rc;
    if (ctx->zmq) LZ_EINTR_RESTART(rc, zmq_ctx_term(ctx->zmq));
    lz__registry_destroy(&ctx->registry);
    lz__plugins_unload(&ctx->plugins); // after the registry: its codecs may be plugin code
    lz__security_destroy(&ctx->security);
    lz_logger_destroy(&ctx->logger);
    lz_config_t *config = ctx->config;
    lz_config_destroy(&config);
    for (size_t i = 0; i < ctx->old_config_count; i++) lz_config_destroy(&ctx->old_configs[i]);
    free(ctx->old_configs);
    pthread_mutex_destroy(&ctx->lock);
    pthread_mutex_destroy(&ctx->policy_lock);
    pthread_mutex_destroy(&ctx->zap_lock);
    pthread_mutex_destroy(&ctx->reload_lock);
    // A watcher's thread that ends the context (a destroy from its log
    // record) never takes watch_lock, and learnt of what it logged through
    // inotify: taking it once orders the last lz_context_watch's unlock
    // before this destroy where ThreadSanitizer can see it.
    pthread_mutex_lock(&ctx->watch_lock);
    pthread_mutex_unlock(&ctx->watch_lock);
    pthread_mutex_destroy(&ctx->watch_lock);
    pthread_mutex_destroy(&ctx->monitor.lock);
    pthread_cond_destroy(&ctx->span.turn);
    lz__collectors_fini(&ctx->collectors);
    free(ctx);
}

// otlp_for starts the span exporter settings ask for into *out (NULL for
// none); an endpoint without tracing.enabled has no spans to send, and says so.
static int otlp_for(lz_context_t *ctx, const lz_settings_t *settings, lz_otlp_t **out) {
    *out = NULL;
    if (!*settings->otlp_endpoint) return LZ_OK;
    if (!settings->tracing) {
        LZ_LOG(ctx->logger, LZ_LOG_WARNING, "context",
               "tracing.otlp_endpoint is set but tracing.enabled is not: no spans to export");
        return LZ_OK;
    }
    *out = lz__otlp_start(settings, ctx->logger);
    return *out ? LZ_OK : lz_last_error_code();
}

static int otlp_start(lz_context_t *ctx) {
    lz_otlp_t *otlp;
    int rc = otlp_for(ctx, &ctx->settings, &otlp);
    lz__otlp_slot_swap(&ctx->otlp, otlp);
    return rc;
}

lz_context_t *lz_context_new(const lz_config_t *config) {
    lz_context_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return lz__fail_null(LZ_ENOMEM, "context: out of memory");
    pthread_mutex_init(&ctx->lock, NULL);
    pthread_mutex_init(&ctx->policy_lock, NULL);
    pthread_mutex_init(&ctx->zap_lock, NULL);
    pthread_mutex_init(&ctx->reload_lock, NULL);
    pthread_mutex_init(&ctx->watch_lock, NULL);
    pthread_mutex_init(&ctx->monitor.lock, NULL);
    pthread_cond_init(&ctx->span.turn, NULL);
    lz__collectors_init(&ctx->collectors);
    lz__otlp_slot_init(&ctx->otlp);
    atomic_init(&ctx->refs, 1);
    for (int i = 0; i < LZ_WARNING_COUNT; i++) atomic_flag_clear(&ctx->warned[i]);
    ctx->config = config ? lz_config_dup(config) : config_from_environment();
    int rc = ctx->config ? lz__settings_read(ctx->config, &ctx->settings) : lz_last_error_code();
    if (rc == LZ_OK) {
        live_store(&ctx->live, &ctx->settings);
        ctx->logger = lz_logger_new();
        ctx->registry = lz__registry_new();
        rc = ctx->logger && ctx->registry ? lz__logger_configure(ctx->logger, ctx->config)
                                          : lz__fail(LZ_ENOMEM, "context: out of memory");
    }
    if (rc == LZ_OK) rc = security_open(ctx);
    if (rc == LZ_OK) rc = zmq_context_open(ctx);
    if (rc == LZ_OK) rc = monitor_start(ctx);
    if (rc == LZ_OK && *ctx->settings.prometheus_listen &&
        !(ctx->exporter = lz__prometheus_start(ctx, ctx->settings.prometheus_listen, false)))
        rc = lz_last_error_code();
    if (rc == LZ_OK) rc = otlp_start(ctx);
    if (rc == LZ_OK) rc = lz__plugins_load_config(ctx);
    if (rc != LZ_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", lz_last_error());
        context_free(ctx);
        return lz__fail_null(rc ? rc : LZ_ECONFIG, "%s", detail);
    }
    LZ_LOG(ctx->logger, LZ_LOG_DEBUG, "context", "created (io_threads=%d, serializer=%s)",
           ctx->settings.io_threads, ctx->settings.default_serializer);
    return ctx;
}

void lz__context_ref(lz_context_t *ctx) { atomic_fetch_add(&ctx->refs, 1); }

void lz__context_unref(lz_context_t *ctx) {
    if (ctx && atomic_fetch_sub(&ctx->refs, 1) == 1) context_free(ctx);
}

// The contexts whose destroy this thread deferred: it came from a log
// record of an lz_context_reload or lz_context_watch of the same context
// this thread runs. Stopping the watcher there waits for a lock the call
// holds (or for a watcher waiting for it), and the call still uses the
// context: the outermost such call finishes the destroy as it returns
// (finish_deferred_destroy).
static _Thread_local lz_context_t *deferred_destroys;

// in_context_call marks the thread, for the length of an application call
// on ctx that may write log records (lz_context_reload, lz_context_watch).
static void in_context_call(lz_thread_running_t *here, const lz_context_t *ctx) {
    lz__thread_enter(here, &ctx->refs);
}

// context_release is lz_context_destroy's work once it may be done here.
static void context_release(lz_context_t *ctx) {
    // From a log record on the watcher's own thread, which cannot be joined
    // from here, and whose reload still uses the context: the watcher ends
    // after the record and drops the reference then. ctx->watch is that
    // watcher until its thread ends.
    if (lz__thread_inside(ctx)) {
        lz__watch_release(ctx->watch);
        return;
    }
    // The application is done with the context: nobody wants its reloads,
    // even while nodes still open keep it alive.
    context_unwatch(ctx);
    lz__context_unref(ctx);
}

// finish_deferred_destroy ends the call in_context_call marked, and
// finishes a destroy of ctx one of its log records asked for, unless an
// outer call on ctx will.
static void finish_deferred_destroy(lz_thread_running_t *here, lz_context_t *ctx) {
    lz__thread_leave(here);
    if (lz__thread_inside(&ctx->refs)) return;
    for (lz_context_t **at = &deferred_destroys; *at; at = &(*at)->deferred_next) {
        if (*at != ctx) continue;
        *at = ctx->deferred_next;
        context_release(ctx);
        return;
    }
}

void lz_context_destroy(lz_context_t **ctx_p) {
    if (!ctx_p || !*ctx_p) return;
    lz_context_t *ctx = *ctx_p;
    *ctx_p = NULL;
    if (lz__thread_inside(&ctx->refs)) { // see deferred_destroys
        for (const lz_context_t *c = deferred_destroys; c; c = c->deferred_next)
            if (c == ctx) return; // destroyed twice: the caller's error, but the list stays whole
        ctx->deferred_next = deferred_destroys;
        deferred_destroys = ctx;
        return;
    }
    context_release(ctx);
}

const lz_config_t *lz_context_config(const lz_context_t *ctx) { return ctx ? ctx->config : NULL; }
lz_logger_t *lz_context_logger(lz_context_t *ctx) { return ctx ? ctx->logger : NULL; }
void *lz_context_zmq(lz_context_t *ctx) { return ctx ? ctx->zmq : NULL; }
const lz_settings_t *lz__context_settings(const lz_context_t *ctx) { return &ctx->settings; }
lz_live_t *lz__context_live(lz_context_t *ctx) { return &ctx->live; }
lz_registry_t *lz__context_registry(lz_context_t *ctx) { return ctx->registry; }
lz__collectors_t *lz__context_collectors(lz_context_t *ctx) { return &ctx->collectors; }

int lz__context_security_settle(lz_context_t *ctx, lz_node_security_t *node, char side, const char *name) {
    pthread_mutex_lock(&ctx->policy_lock);
    int rc = lz__security_settle(ctx->security, node, side, name);
    pthread_mutex_unlock(&ctx->policy_lock);
    return rc;
}

lz_plugins_t *lz__context_plugins(lz_context_t *ctx) { return &ctx->plugins; }

// span_call_uncount takes a call off its parity's count; true when that
// drained it while a swap is under way, which must then be woken (seq_cst:
// either the swap sees the count at zero or the call sees the swap).
static bool span_call_uncount(span_slot_t *slot, unsigned parity) {
    return atomic_fetch_sub(&slot->calls[parity], 1) == 1 && atomic_load(&slot->swapping);
}

// span_calls_give_up stops counting this thread's calls of ctx's span
// functions, the swap it makes from inside one being unable to wait for
// them. Under ctx->lock.
static void span_calls_give_up(lz_context_t *ctx) {
    for (span_call_t *call = span_calls_here; call; call = call->outer) {
        if (call->ctx != ctx || !call->counted) continue;
        call->counted = false;
        if (span_call_uncount(&ctx->span, call->parity)) pthread_cond_broadcast(&ctx->span.turn);
    }
}

int lz_context_on_span(lz_context_t *ctx, lz_span_fn fn, void *arg) {
    if (!ctx) return lz__fail(LZ_EINVAL, "lz_context_on_span: NULL context");
    span_slot_t *slot = &ctx->span;
    pthread_mutex_lock(&ctx->lock);
    span_calls_give_up(ctx);
    while (atomic_load(&slot->swapping)) pthread_cond_wait(&slot->turn, &ctx->lock);
    slot->fn = fn;
    slot->arg = arg;
    unsigned old = slot->parity;
    slot->parity ^= 1;
    atomic_store(&slot->swapping, true);
    while (atomic_load(&slot->calls[old]) > 0) pthread_cond_wait(&slot->turn, &ctx->lock);
    atomic_store(&slot->swapping, false);
    pthread_cond_broadcast(&slot->turn); // the next swap's turn
    pthread_mutex_unlock(&ctx->lock);
    return LZ_OK;
}

// span_fn_call calls the span function, if any, counted as in progress.
static void span_fn_call(lz_context_t *ctx, const lz_span_t *span) {
    span_slot_t *slot = &ctx->span;
    pthread_mutex_lock(&ctx->lock);
    lz_span_fn fn = slot->fn;
    void *arg = slot->arg;
    span_call_t call = {ctx, slot->parity, fn != NULL, span_calls_here};
    if (fn) atomic_fetch_add(&slot->calls[call.parity], 1);
    pthread_mutex_unlock(&ctx->lock);
    if (!fn) return;
    span_calls_here = &call;
    fn(span, arg);
    span_calls_here = call.outer;
    if (call.counted && span_call_uncount(slot, call.parity)) {
        pthread_mutex_lock(&ctx->lock);
        pthread_cond_broadcast(&slot->turn);
        pthread_mutex_unlock(&ctx->lock);
    }
}

void lz__context_report_span(lz_context_t *ctx, const lz_span_t *span) {
    span_fn_call(ctx, span);
    lz__plugins_report_span(&ctx->plugins, span);
    if (LZ_LIVE(&ctx->live, tracing_log)) lz__span_log(ctx->logger, span);
    lz__otlp_slot_enqueue(&ctx->otlp, span);
}

bool lz__context_otlp_stats(lz_context_t *ctx, lz_otlp_stats_t *out) { return lz__otlp_slot_stats(&ctx->otlp, out); }

int lz_context_otlp_stats(lz_context_t *ctx, lz_otlp_stats_t *out) {
    if (!ctx || !out) return lz__fail(LZ_EINVAL, "lz_context_otlp_stats: NULL argument");
    lz__context_otlp_stats(ctx, out);
    return LZ_OK;
}

void lz__context_attach(lz_context_t *ctx, lz_node_t *node) {
    pthread_mutex_lock(&ctx->lock);
    node->id = ++ctx->node_ids;
    node->prev = NULL;
    node->next = ctx->nodes;
    if (ctx->nodes) ctx->nodes->prev = node;
    ctx->nodes = node;
    pthread_mutex_unlock(&ctx->lock);
}

// counts_own: a node sharing another's counters is summed through its owner.
static bool counts_own(const lz_node_t *node) { return node->counters == &node->own_counters; }

void lz__context_detach(lz_context_t *ctx, lz_node_t *node) {
    lz_metrics_t final = {0};
    if (counts_own(node)) lz__node_snapshot(node, &final);
    final.active_connections = 0; // a closed node holds no connections
    pthread_mutex_lock(&ctx->lock);
    if (node->prev) node->prev->next = node->next;
    else ctx->nodes = node->next;
    if (node->next) node->next->prev = node->prev;
    lz_metrics_add(&ctx->retired, &final);
    pthread_mutex_unlock(&ctx->lock);
}

void lz__context_share_counters(lz_context_t *ctx, lz_node_t *node, lz_node_t *owner) {
    pthread_mutex_lock(&ctx->lock);
    owner->counters_shared = true; // several locks now guard one set of counters: count with RMW
    node->counters = owner->counters;
    pthread_mutex_unlock(&ctx->lock);
}

int lz_context_metrics(lz_context_t *ctx, lz_metrics_t *out) {
    if (!ctx || !out) return lz__fail(LZ_EINVAL, "context_metrics: NULL argument");
    pthread_mutex_lock(&ctx->lock);
    *out = ctx->retired;
    for (lz_node_t *n = ctx->nodes; n; n = n->next) {
        if (!counts_own(n)) continue;
        lz_metrics_t m;
        lz__node_snapshot(n, &m);
        lz_metrics_add(out, &m);
    }
    pthread_mutex_unlock(&ctx->lock);
    return LZ_OK;
}

int lz__context_snapshots(lz_context_t *ctx, lz_node_snapshot_t **out, size_t *count) {
    pthread_mutex_lock(&ctx->lock);
    size_t owners = 0;
    for (lz_node_t *node = ctx->nodes; node; node = node->next) owners += counts_own(node);
    lz_node_snapshot_t *snaps = malloc((owners + 1) * sizeof *snaps);
    size_t n = 0;
    for (lz_node_t *node = ctx->nodes; snaps && node; node = node->next) {
        if (!counts_own(node)) continue;
        lz__copy_text(snaps[n].name, sizeof snaps[n].name, node->name);
        snaps[n].id = node->id;
        lz__node_snapshot(node, &snaps[n++].metrics);
    }
    if (snaps) snaps[n++] = (lz_node_snapshot_t){.name = "(closed)", .id = 0, .metrics = ctx->retired};
    pthread_mutex_unlock(&ctx->lock);
    if (!snaps) return lz__fail(LZ_ENOMEM, "context: out of memory");
    *out = snaps;
    *count = n;
    return LZ_OK;
}

/* ---- reload ------------------------------------------------------------ */

// A reload in the making: everything that can fail is prepared here, so
// the commit that follows cannot fail halfway.
typedef struct reload {
    lz_config_t *merged;    // the next configuration, keys that need a restart kept as they are
    lz_settings_t settings, now; // merged's, for the live values; the running configuration's
    lz_log_settings_t log, log_now;
    lz_log_switch_t *log_switch; // the logger's next target, opened, when the reload moves it
    bool log_file_made;     // log_switch's file did not exist before: removed again if the reload is refused
    struct stat log_file;   // that file, as made
    lz_security_t *policy;  // merged's; after the commit, the one it replaced
    lz_otlp_t *otlp;        // the next span exporter (NULL: none), when otlp_swap
    bool otlp_swap;
    bool zap_started;       // this reload started the ZAP handler: stopped again if it is refused
    const char **restarts;  // keys changed that need a restart (static names)
    size_t restart_count, changed;
    char plugins_removed[LZ_DETAIL_MAX]; // paths plugins.load no longer lists: they stay loaded
    bool out_of_memory;
} reload_t;

static void restart_add(const char *name, void *arg) {
    reload_t *r = arg;
    const char **grown = realloc(r->restarts, (r->restart_count + 1) * sizeof *grown);
    if (!grown) {
        r->out_of_memory = true;
        return;
    }
    r->restarts = grown;
    r->restarts[r->restart_count++] = name;
}

static int reload_policy(lz_security_t **out, const lz_config_t *config) {
    lz_security_settings_t settings;
    int rc = lz__security_settings_read(config, &settings);
    return rc == LZ_OK ? lz__security_new(&settings, out) : rc;
}

// reload_log_target opens the logger's next target when the reload moves
// it: a file that cannot be opened refuses the reload, naming the key. A
// file it makes is noted, for a refused reload to take back.
static int reload_log_target(reload_t *r) {
    if (lz__log_target_same(&r->log, &r->log_now)) return LZ_OK;
    struct stat st;
    bool to_make = r->log.target == LZ_LOG_TARGET_FILE && stat(r->log.file_path, &st) != 0 && errno == ENOENT;
    r->log_switch = lz__log_switch_open(&r->log);
    r->log_file_made = r->log_switch && to_make && stat(r->log.file_path, &r->log_file) == 0;
    if (r->log_switch) return LZ_OK;
    int code = lz_last_error_code() == LZ_ENOMEM ? LZ_ENOMEM : LZ_ECONFIG;
    char why[LZ_DETAIL_MAX];
    snprintf(why, sizeof why, "%s", lz_last_error());
    return lz__fail(code, "config: logging.file_path: %s", why);
}

// reload_otlp starts the next span exporter when the reload changes what
// it would be (none included), before the commit: a CA file that cannot be
// read refuses the reload.
static int reload_otlp(lz_context_t *ctx, reload_t *r) {
    if (lz__otlp_same(&r->settings, &r->now)) return LZ_OK;
    r->otlp_swap = true;
    return otlp_for(ctx, &r->settings, &r->otlp);
}

// reload_log_unmake removes the file a refused reload made for the log,
// if it is still that file and nobody wrote to it: the reload never
// happened, so neither did the file.
static void reload_log_unmake(const reload_t *r) {
    struct stat st;
    if (r->log_file_made && stat(r->log.file_path, &st) == 0 && st.st_dev == r->log_file.st_dev &&
        st.st_ino == r->log_file.st_ino && st.st_size == 0)
        unlink(r->log.file_path);
}

// reload_open prepares what replaces a part of the running context: the
// log target, the span exporter, the ZAP handler a policy with rules
// needs (bound now, since binding may fail; it serves the old policy until
// the commit), and last the plugins plugins.load adds, since a plugin
// loaded cannot be unloaded if something later failed. The handler and
// the log file can be taken back (reload_undo).
static int reload_open(lz_context_t *ctx, reload_t *r) {
    int rc = lz__settings_read(ctx->config, &r->now);
    if (rc == LZ_OK) rc = reload_log_target(r);
    if (rc == LZ_OK) rc = reload_otlp(ctx, r);
    if (rc == LZ_OK && lz__security_wants_zap(r->policy)) rc = zap_run(ctx, false, &r->zap_started);
    if (rc == LZ_OK)
        rc = lz__plugins_reload(ctx, ctx->config, r->merged, r->plugins_removed, sizeof r->plugins_removed);
    return rc;
}

// reload_check_next checks next whole, restart-only keys included: they
// must still be valid and agree (a CURVE server key with a PLAIN user),
// or the restart would fail.
static int reload_check_next(const lz_config_t *next, reload_t *r) {
    lz_settings_t checked;
    lz_security_t *policy = NULL;
    int rc = lz__settings_read(next, &checked);
    if (rc == LZ_OK) rc = lz__log_settings_read(next, &r->log);
    if (rc == LZ_OK) rc = reload_policy(&policy, next);
    lz__security_destroy(&policy);
    return rc;
}

// reload_prepare checks next, then builds what merged needs. The policy is
// built on every reload: security.authorized_keys_file is read again even
// when its path did not change.
static int reload_prepare(lz_context_t *ctx, const lz_config_t *next, reload_t *r) {
    int rc = reload_check_next(next, r);
    if (rc != LZ_OK) return rc;
    r->merged = lz__config_live_merge(ctx->config, next, restart_add, r, &r->changed);
    if (!r->merged || r->out_of_memory) return lz__fail(LZ_ENOMEM, "config: out of memory for a reload");
    rc = lz__settings_read(r->merged, &r->settings);
    if (rc == LZ_OK) rc = lz__log_settings_read(r->merged, &r->log);
    if (rc == LZ_OK) rc = lz__log_settings_read(ctx->config, &r->log_now);
    if (rc == LZ_OK) rc = reload_policy(&r->policy, r->merged);
    lz_config_t **grown = rc == LZ_OK ? realloc(ctx->old_configs, (ctx->old_config_count + 1) * sizeof *grown) : NULL;
    if (rc == LZ_OK && !grown) return lz__fail(LZ_ENOMEM, "config: out of memory for a reload");
    if (grown) ctx->old_configs = grown;
    return rc == LZ_OK ? reload_open(ctx, r) : rc;
}

// reload_logger changes only what the reload changed, so a level, format
// or target the application set itself (lz_logger_set_level,
// lz_logger_to_callback) outlives other reloads.
static void reload_logger(lz_logger_t *logger, reload_t *r) {
    const lz_log_settings_t *next = &r->log, *now = &r->log_now;
    if (next->max_file_size != now->max_file_size || next->backup_count != now->backup_count)
        lz__logger_set_rotation(logger, next->max_file_size, next->backup_count);
    if (r->log_switch) lz__log_switch_commit(logger, &r->log_switch);
    if (next->level != now->level) lz_logger_set_level(logger, next->level);
    if (next->format != now->format) lz_logger_set_format(logger, next->format);
}

static void reload_commit(lz_context_t *ctx, reload_t *r) {
    if (r->zap_started) zap_keep(ctx);
    pthread_mutex_lock(&ctx->policy_lock);
    lz_security_t *old = ctx->security;
    ctx->security = r->policy;
    pthread_mutex_unlock(&ctx->policy_lock);
    r->policy = old; // dropped with the reload; a ZAP request judged by it holds it until answered
    live_store(&ctx->live, &r->settings);
    reload_logger(ctx->logger, r);
    if (r->otlp_swap) lz__otlp_slot_swap(&ctx->otlp, r->otlp); // the old one flushes on its own thread
    r->otlp = NULL;
    if (!r->changed) return; // same values: kept, so a watcher's touches do not pile configurations up
    ctx->old_configs[ctx->old_config_count++] = ctx->config;
    ctx->config = r->merged;
    r->merged = NULL;
}

// reload_judge cuts the live connections the new policy refuses, when it
// may refuse someone the one it replaced (r->policy now) admitted. Under
// reload_lock, so the policy in force stays the one judged by.
static void reload_judge(lz_context_t *ctx, const reload_t *r, const char *origin) {
    if (!lz__security_may_revoke(r->policy, ctx->security)) return;
    int cut = monitor_send(ctx, (monitor_request_t){.op = MONITOR_JUDGE, .policies = {ctx->security, r->policy}});
    policy_handoff(ctx); // r->policy is freed next
    if (cut < 0)
        LZ_LOG(ctx->logger, LZ_LOG_ERROR, "config", "reload from %s changed the access rules, but the live "
               "connections were not judged again: the connection monitor has stopped", origin);
    else
        LZ_LOG(ctx->logger, cut > 0 ? LZ_LOG_WARNING : LZ_LOG_INFO, "config",
               "reload from %s changed the access rules: %d live connection(s) cut", origin, cut);
}

// reload_undo takes back what a refused reload made outside itself: the
// ZAP handler it started, the log file it created. Under reload_lock, so
// the next reload finds them as they were.
static void reload_undo(lz_context_t *ctx, reload_t *r) {
    if (r->zap_started) zap_undo(ctx);
    if (r->log_switch) {
        lz__log_switch_discard(&r->log_switch);
        reload_log_unmake(r);
    }
}

static void reload_free(reload_t *r) {
    lz__log_switch_discard(&r->log_switch);
    lz__otlp_stop(&r->otlp); // started for a reload refused: nothing queued
    lz_config_destroy(&r->merged);
    lz__security_destroy(&r->policy);
    free(r->restarts);
}

static void count_reload(lz_context_t *ctx, bool ok) {
    pthread_mutex_lock(&ctx->lock);
    if (ok) ctx->retired.config_reloads++;
    else ctx->retired.config_reload_errors++;
    pthread_mutex_unlock(&ctx->lock);
}

// Logged before it is counted: whoever sees the count (a test, a metrics
// scrape) finds the reason in the log already.
void lz__context_reload_failed(lz_context_t *ctx, const char *origin) {
    LZ_LOG(ctx->logger, LZ_LOG_ERROR, "config", "reload from %s refused, the running configuration stays: %s", origin,
           lz_last_error());
    count_reload(ctx, false);
}

// reload_report logs the outcome and returns what lz_context_reload does:
// the count of keys that need a restart, named in lz_last_error() too.
static int reload_report(lz_context_t *ctx, const reload_t *r, const char *origin) {
    char names[LZ_DETAIL_MAX] = "";
    size_t len = 0, restarts = r->restart_count + (*r->plugins_removed != '\0');
    for (size_t i = 0; i < r->restart_count; i++) {
        LZ_LOG(ctx->logger, LZ_LOG_WARNING, "config", "reload from %s: %s changed but needs a restart: "
               "the running value stays", origin, r->restarts[i]);
        if (len < sizeof names)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", r->restarts[i]);
    }
    if (*r->plugins_removed) {
        LZ_LOG(ctx->logger, LZ_LOG_WARNING, "config", "reload from %s: plugins.load no longer lists %s: a plugin "
               "cannot be unloaded while its code may be in use, so it stays loaded until a restart", origin,
               r->plugins_removed);
        if (len < sizeof names) snprintf(names + len, sizeof names - len, "%splugins.load", len ? ", " : "");
    }
    LZ_LOG(ctx->logger, LZ_LOG_INFO, "config", "reloaded from %s: %zu live key(s) changed, %zu need a restart",
           origin, r->changed, restarts);
    if (!restarts) return LZ_OK;
    lz__fail(LZ_OK, "config: reload from %s: restart needed to apply %s", origin, names); // a note, not a failure
    return (int)restarts;
}

// refuse_in_reload refuses a reload or a watch called from a log record a
// reload of ctx writes while it holds reload_lock (the access rules'
// judgement, a plugin's init): on that thread, it would wait for the lock
// for ever, or join a watcher waiting for it.
static int refuse_in_reload(const lz_context_t *ctx, const char *call) {
    if (!lz__thread_inside(&ctx->reload_lock)) return LZ_OK;
    return lz__fail(LZ_ESTATE, "%s: called from a log record of a reload of the same context in progress; call it "
                    "once that reload is done", call);
}

int lz__context_reload_from(lz_context_t *ctx, const lz_config_t *config, const char *origin) {
    reload_t r = {0};
    lz_thread_running_t here;
    pthread_mutex_lock(&ctx->reload_lock);
    lz__thread_enter(&here, &ctx->reload_lock);
    int rc = reload_prepare(ctx, config, &r);
    if (rc == LZ_OK) reload_commit(ctx, &r);
    if (rc == LZ_OK) reload_judge(ctx, &r, origin);
    else reload_undo(ctx, &r);
    lz__thread_leave(&here);
    pthread_mutex_unlock(&ctx->reload_lock);
    if (rc == LZ_OK) {
        rc = reload_report(ctx, &r, origin); // logged before it is counted, as a failure is
        count_reload(ctx, true);
    } else {
        lz__context_reload_failed(ctx, origin);
    }
    reload_free(&r);
    return rc;
}

int lz_context_reload(lz_context_t *ctx, const lz_config_t *config) {
    if (!ctx || !config) return lz__fail(LZ_EINVAL, "lz_context_reload: NULL argument");
    int rc = lz__plugins_refuse_in_init("lz_context_reload", "reload a context");
    if (rc == LZ_OK) rc = refuse_in_reload(ctx, "lz_context_reload");
    if (rc != LZ_OK) return rc;
    lz_thread_running_t here;
    in_context_call(&here, ctx);
    rc = lz__context_reload_from(ctx, config, "lz_context_reload");
    finish_deferred_destroy(&here, ctx);
    return rc;
}

int lz_context_watch(lz_context_t *ctx, const char *path) {
    if (!ctx) return lz__fail(LZ_EINVAL, "lz_context_watch: NULL context");
    // It reloads at once, and stopping a watcher joins its reload.
    int rc = lz__plugins_refuse_in_init("lz_context_watch", "watch a configuration file");
    if (rc == LZ_OK) rc = refuse_in_reload(ctx, "lz_context_watch");
    if (rc == LZ_OK && lz__thread_inside(&ctx->watch_lock)) // it would wait for the lock this thread holds
        rc = lz__fail(LZ_ESTATE, "lz_context_watch: called from a log record of the first reload of a "
                      "lz_context_watch of the same context; call it once that call returns");
    if (rc != LZ_OK) return rc;
    // From a log record on the watcher's own thread, which cannot be joined
    // from here: the watcher watches path instead, or ends after the record.
    if (lz__thread_inside(ctx)) return lz__watch_retarget(ctx->watch, path);
    lz_thread_running_t call, here;
    in_context_call(&call, ctx);
    pthread_mutex_lock(&ctx->watch_lock);
    lz__thread_enter(&here, &ctx->watch_lock); // the first reload's records run on this thread
    lz__watch_stop(&ctx->watch);
    rc = path ? lz__watch_start(ctx, path, &ctx->watch) : LZ_OK;
    lz__thread_leave(&here);
    pthread_mutex_unlock(&ctx->watch_lock);
    finish_deferred_destroy(&call, ctx);
    return rc;
}
