/* The node: socket set-up from the configuration, bind/connect, and framed
 * send/receive with metrics. Every pattern is a node plus its own logic, so
 * these rules live here once. */
#include "core/node.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/eintr.h"
#include "core/error.h"
#include "core/hooks.h"
#include "core/metrics.h"
#include "core/plugin.h"
#include "core/sendbuf.h"
#include "core/sockopt.h"
#include "core/thread.h"
#include "core/trace.h"
#include "core/wakeup.h"
#include "serial/registry.h"
#include "serial/value.h"

/* ---- socket set-up ------------------------------------------------------ */

static int apply_options(lz_node_t *node, void *socket) {
    const lz_settings_t *s = node->settings;
    int64_t max_size = s->max_message_size;
    int rc = lz__sockopt_int(socket, ZMQ_LINGER, s->linger) | lz__sockopt_int(socket, ZMQ_SNDHWM, s->hwm_outbound) |
             lz__sockopt_int(socket, ZMQ_RCVHWM, s->hwm_inbound) |
             lz__sockopt_int(socket, ZMQ_SNDTIMEO, s->send_timeout) |
             lz__sockopt_int(socket, ZMQ_RECONNECT_IVL, s->reconnect_interval) |
             lz__sockopt_int(socket, ZMQ_RECONNECT_IVL_MAX, s->reconnect_interval_max) |
             zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (s->heartbeat_interval > 0)
        rc |= lz__sockopt_int(socket, ZMQ_HEARTBEAT_IVL, s->heartbeat_interval) |
              lz__sockopt_int(socket, ZMQ_HEARTBEAT_TIMEOUT, s->heartbeat_interval * 3);
    if (s->immediate) rc |= lz__sockopt_int(socket, ZMQ_IMMEDIATE, 1);
    if (node->zmq_type == ZMQ_XPUB) rc |= lz__sockopt_int(socket, ZMQ_XPUB_NODROP, 1);
    if (node->zmq_type == ZMQ_ROUTER) rc |= lz__sockopt_int(socket, ZMQ_ROUTER_MANDATORY, 1);
    return rc == 0 ? LZ_OK : lz__fail_zmq("node: setting socket options");
}

int64_t lz__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lz__inproc_endpoint(char *buf, size_t size, const char *what) {
    static atomic_uint_fast64_t serial;
    snprintf(buf, size, "inproc://lz-%s-%llu", what, (unsigned long long)atomic_fetch_add(&serial, 1));
}

// open_socket makes the libzmq socket and hooks it to the context monitor,
// under a fresh monitor name for each socket (see lz__inproc_endpoint).
static int open_socket(lz_node_t *node) {
    lz__inproc_endpoint(node->monitor_endpoint, sizeof node->monitor_endpoint, "monitor");
    void *socket = zmq_socket(lz_context_zmq(node->ctx), node->zmq_type);
    if (!socket) return lz__fail_zmq("node: zmq_socket");
    int rc = apply_options(node, socket), monitored = 0;
    if (rc == LZ_OK) rc = lz__security_apply(&node->security, socket); // a rebuild keeps its mode
    if (rc == LZ_OK)
        LZ_EINTR_RESTART(monitored, zmq_socket_monitor(socket, node->monitor_endpoint,
                                                       ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED |
                                                           ZMQ_EVENT_DISCONNECTED | LZ_HANDSHAKE_FAILURES));
    if (monitored != 0) rc = lz__fail_zmq("node: zmq_socket_monitor");
    node->socket = socket;
    node->recv_timeout = -1; // libzmq's default ZMQ_RCVTIMEO
    node->socket_fd = -1;    // looked up when first waited on
    if (rc == LZ_OK) rc = lz__context_monitor_add(node->ctx, node);
    if (rc != LZ_OK) {
        zmq_close(socket);
        node->socket = NULL;
    }
    return rc;
}

// unbind_inproc gives back the socket's inproc names: after zmq_close
// libzmq frees them only when its reaper thread ends the socket, so a node
// made again at once under a name (a restart, a constructor retried after
// a later endpoint failed) would find it taken, where zmq_unbind frees it
// before returning. Pipes already connected stay, with their messages.
// Other transports are left to zmq_close: an unbind would only start on
// libzmq's threads what the close starts there, and a disconnect would drop
// messages queued for the peer, which zmq.linger lets a close still send.
static void unbind_inproc(lz_node_t *node) {
    for (size_t i = 0; i < node->attached_count; i++) {
        const char *entry = node->attached[i];
        int rc;
        if (entry[0] == '@' && strncmp(entry + 1, "inproc://", 9) == 0)
            LZ_EINTR_RESTART(rc, zmq_unbind(node->socket, entry + 1));
    }
}

// close_socket stops libzmq's monitor before our reader goes away: libzmq
// sends events blocking, and with no reader its I/O thread would wait
// forever while holding the lock zmq_socket_monitor(NULL) needs.
static void close_socket(lz_node_t *node) {
    if (!node->socket) return;
    zmq_socket_monitor(node->socket, NULL, 0);
    lz__context_monitor_remove(node->ctx, node);
    unbind_inproc(node);
    zmq_close(node->socket);
    node->socket = NULL;
    lz__conns_forget(&node->conns); // their descriptors are libzmq's to close now
    // The monitor is stopped, so no disconnect events will come: take this
    // socket's connections out of the count ourselves.
    atomic_fetch_sub(&node->counters->active_connections, atomic_exchange(&node->socket_connections, 0));
}

void lz__node_connection_event(lz_node_t *node, int delta) {
    atomic_fetch_add(&node->socket_connections, delta);
    atomic_fetch_add(&node->counters->active_connections, delta);
}

// secure_for settles the node's security with its first endpoint's side and
// sets the socket up for it (lock held). A first endpoint that fails takes
// it back (unsettle).
static int secure_for(lz_node_t *node, char side) {
    bool first = node->security.mode == LZ_SECURE_UNSET;
    int rc = lz__context_security_settle(node->ctx, &node->security, side, node->name);
    if (rc == LZ_OK && first) rc = lz__security_apply(&node->security, node->socket);
    if (rc == LZ_OK && first) lz__conns_guard(&node->conns, node->security.mode, node->settings->hwm_inbound);
    // The handler gives its messages their client's key, user name or
    // principal (lz_message_peer_key, lz_message_peer_user), and checks passwords.
    if (rc == LZ_OK && first && lz__security_mode_server(node->security.mode)) rc = lz__context_zap(node->ctx);
    return rc;
}

// unsettle takes back what secure_for did for a first endpoint that failed,
// before being the node's security as it was then (its own keys): with no
// endpoint, the node may still take keys and either side, and its next
// endpoint settles it anew, starting the ZAP handler if this one could not.
// A handler this one started stays, the context's. Lock held.
static void unsettle(lz_node_t *node, const lz_node_security_t *before) {
    node->security = *before;
    lz__security_unapply(node->socket);
    lz__conns_disarm(&node->conns);
}

/* ---- endpoints ---------------------------------------------------------- */

// entry_for makes the record of an endpoint ("@url" or ">url") with room
// for it in node->attached, before it is applied: once the socket is bound
// or connected, failing to remember it would leave an endpoint that a
// rebuild drops and that a bind tried again finds taken. NULL when out of
// memory.
static char *entry_for(lz_node_t *node, char side, const char *url) {
    char **grown = realloc(node->attached, (node->attached_count + 1) * sizeof *grown);
    if (!grown) return lz__fail_null(LZ_ENOMEM, "%s: out of memory", node->name);
    node->attached = grown;
    size_t len = strlen(url);
    char *entry = malloc(len + 2);
    if (!entry) return lz__fail_null(LZ_ENOMEM, "%s: out of memory", node->name);
    entry[0] = side;
    memcpy(entry + 1, url, len + 1);
    return entry;
}

// endpoint_failure reports a failed bind or connect: a malformed URL is the
// caller's mistake (LZ_EINVAL), anything else a connection problem.
static int endpoint_failure(lz_node_t *node, const char *verb, const char *url, int err) {
    int code = lz__zmq_error_code(err) == LZ_EINVAL ? LZ_EINVAL : LZ_ECONNECTION;
    // libzmq binds tcp to an address or an interface, never resolving a
    // name, so "localhost" is an unknown interface: say what it takes.
    const char *hint = err == ENODEV && strncmp(url, "tcp://", 6) == 0
                           ? " (a tcp bind takes an IP address, an interface name such as lo, or *: not a host name)"
                           : "";
    LZ_LOG(node->log, LZ_LOG_ERROR, node->name, "%s %s failed: %s%s", verb, url, zmq_strerror(err), hint);
    return lz__fail(code, "%s: %s %s: %s%s", node->name, verb, url, zmq_strerror(err), hint);
}

// apply_endpoint binds or connects one URL on the current socket (lock held).
static int apply_endpoint(lz_node_t *node, char side, const char *url) {
    int rc;
    if (side == '@') {
        LZ_EINTR_RESTART(rc, zmq_bind(node->socket, url));
        if (rc != 0) {
            LZ_COUNT(node, failed_bind_count);
            return endpoint_failure(node, "bind", url, zmq_errno());
        }
        size_t size = sizeof node->endpoint;
        zmq_getsockopt(node->socket, ZMQ_LAST_ENDPOINT, node->endpoint, &size);
        return LZ_OK;
    }
    LZ_EINTR_RESTART(rc, zmq_connect(node->socket, url));
    return rc == 0 ? LZ_OK : endpoint_failure(node, "connect", url, zmq_errno());
}

// A tcp address is [SOURCE;]HOST:PORT, PORT being '*' (any free port) or
// 0 to 65535, HOST not empty and bracketed whole or not at all ("[::1]").
// libzmq would take "99999" or "[::1:5555" for a connect and only ever fail
// to reach it: a caller would see nothing but timeouts.
static bool valid_tcp_address(const char *address) {
    const char *host = strrchr(address, ';');
    host = host ? host + 1 : address;
    const char *colon = strrchr(host, ':');
    if (!colon || colon == host || colon[1] == '\0') return false;
    bool bracketed = host[0] == '[';
    if (bracketed != (colon[-1] == ']')) return false;
    size_t inner = (size_t)(colon - host) - 2 * (size_t)bracketed; // HOST's length inside brackets
    if (inner == 0 || memchr(host + bracketed, '[', inner) || memchr(host + bracketed, ']', inner)) return false;
    if (strcmp(colon + 1, "*") == 0) return true;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (!isdigit((unsigned char)*p) || (port = port * 10 + (*p - '0')) > 65535) return false;
    }
    return true;
}

// plain_exposed: binding url makes a PLAIN server whose passwords cross a
// network in clear.
static bool plain_exposed(const lz_node_security_t *security, char side, const char *url) {
    return side == '@' && security->mode == LZ_SECURE_PLAIN_SERVER && lz__security_plain_exposed(url);
}

static int attach_one(lz_node_t *node, char side, const char *url) {
    if (!url || !*url) return lz__fail(LZ_EINVAL, "%s: empty endpoint", node->name);
    if (strncmp(url, "tcp://", 6) == 0 && !valid_tcp_address(url + 6))
        return lz__fail(LZ_EINVAL, "%s: %s is not tcp://HOST:PORT (PORT 0 to 65535 or *, an IPv6 HOST in brackets)",
                        node->name, url);
    if (node->thread_owned)
        return lz__fail(LZ_ESTATE, "%s: its socket is run by its own thread: give every endpoint when creating it",
                        node->name);
    lz__node_lock(node); // rebuilds read node->attached under it
    bool first = node->security.mode == LZ_SECURE_UNSET;
    lz_node_security_t before;
    if (first) before = node->security;
    char *entry = entry_for(node, side, url);
    int rc = entry ? secure_for(node, side) : LZ_ENOMEM;
    if (rc == LZ_OK) rc = apply_endpoint(node, side, url);
    if (rc == LZ_OK) node->attached[node->attached_count++] = entry;
    else free(entry);
    if (rc != LZ_OK && first) unsettle(node, &before);
    if (first) explicit_bzero(&before, sizeof before); // its own secret key's copy
    lz_context_warning_t warning = rc != LZ_OK                           ? LZ_WARNING_COUNT
                                   : plain_exposed(&node->security, side, url) ? LZ_WARNING_PLAIN_EXPOSED
                                   : lz__security_gssapi_leaks(&node->security) ? LZ_WARNING_GSSAPI_LEAK
                                                                              : LZ_WARNING_COUNT;
    lz__node_unlock(node);
    if (warning != LZ_WARNING_COUNT) lz__context_warn_once(node->ctx, warning, node->name, url);
    if (rc == LZ_OK)
        LZ_LOG(node->log, LZ_LOG_DEBUG, node->name, "%s %s", side == '@' ? "bound" : "connected", url);
    return rc;
}

int lz__node_attach(lz_node_t *node, const char *endpoints) {
    if (!endpoints) return LZ_OK;
    char *copy = strdup(endpoints);
    if (!copy) return lz__fail(LZ_ENOMEM, "node: out of memory");
    int rc = LZ_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && rc == LZ_OK; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ') item++;
        char side = node->default_side;
        if (*item == '@' || *item == '>') side = *item++;
        rc = attach_one(node, side, item);
    }
    free(copy);
    return rc;
}

int lz_node_bind(lz_node_t *node, const char *url) {
    if (!node) return lz__fail(LZ_EINVAL, "bind: NULL node");
    return attach_one(node, '@', url);
}

int lz_node_connect(lz_node_t *node, const char *url) {
    if (!node) return lz__fail(LZ_EINVAL, "connect: NULL node");
    return attach_one(node, '>', url);
}

const char *lz_node_endpoint(lz_node_t *node) { return node ? node->endpoint : ""; }

/* ---- life cycle --------------------------------------------------------- */

int lz__node_init(lz_node_t *node, lz_context_t *ctx, int zmq_type, const char *name, char default_side,
                  const char *endpoints) {
    if (!ctx) return lz__fail(LZ_EINVAL, "%s: NULL context", name);
    memset(node, 0, sizeof *node);
    // Found before the node names its context: a node left with ctx NULL
    // is one lz__node_close skips, holding no reference to drop.
    const lz_serializer_t *serializer =
        lz__registry_find(lz__context_registry(ctx), lz__context_settings(ctx)->default_serializer);
    if (!serializer) return lz__fail(LZ_ECONFIG, "%s: serialization.default: %s", name, lz_last_error());
    node->ctx = ctx;
    node->serializer = serializer;
    node->settings = lz__context_settings(ctx);
    node->live = lz__context_live(ctx);
    node->log = lz_context_logger(ctx);
    node->zmq_type = zmq_type;
    node->default_side = default_side;
    node->counters = &node->own_counters;
    node->socket_fd = node->wake_fd[LZ_WAIT_RECV] = node->wake_fd[LZ_WAIT_SEND] = -1;
    node->sends_wait = true;
    node->drop_log.noun = "drop(s)";
    node->handshake_log.noun = "failed handshake(s)";
    snprintf(node->name, sizeof node->name, "%s", name);
    lz__bias_init(&node->lock);
    lz__conns_init(&node->conns);
    lz__context_ref(ctx);
    // Attached before anything can fail, so a failed bind still counts in
    // the context's failed_bind_count after this node is gone.
    lz__context_attach(ctx, node);
    node->attached_to_context = true;
    int rc = open_socket(node);
    if (rc == LZ_OK) rc = lz__node_attach(node, endpoints);
    if (rc == LZ_OK) rc = lz__plugins_node_created(ctx, node, name);
    if (rc != LZ_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", lz_last_error());
        lz__node_close(node);
        return lz__fail(rc, "%s", detail);
    }
    return LZ_OK;
}

static void forget_endpoints(lz_node_t *node) {
    for (size_t i = 0; i < node->attached_count; i++) free(node->attached[i]);
    free(node->attached);
    node->attached = NULL;
    node->attached_count = 0;
}

// report_unlogged: the warnings after the last logged one would otherwise
// wait for a turn that never comes; say how many there were.
static void report_unlogged(lz_node_t *node, lz_log_limit_t *limit) {
    uint64_t skipped = lz__rate_limit_take_skipped(&limit->rate);
    if (skipped && LZ_LOG_WARNING >= lz_logger_level(node->log))
        lz_logger_write(node->log, LZ_LOG_WARNING, node->name, "%llu more %s not logged", (unsigned long long)skipped,
                        limit->noun);
}

void lz__node_close(lz_node_t *node) {
    if (!node || !node->ctx) return;
    lz_context_t *ctx = node->ctx;
    report_unlogged(node, &node->drop_log);
    report_unlogged(node, &node->handshake_log);
    close_socket(node);
    if (node->attached_to_context) lz__context_detach(ctx, node);
    node->attached_to_context = false;
    forget_endpoints(node);
    lz__wakeup_close(&node->wake_fd[LZ_WAIT_RECV]);
    lz__wakeup_close(&node->wake_fd[LZ_WAIT_SEND]);
    lz__bias_fini(&node->lock);
    lz__conns_fini(&node->conns);
    lz__hooks_free(node);
    // Not to linger in freed memory (libzmq keeps its own copies).
    explicit_bzero(node->security.secret_key, sizeof node->security.secret_key);
    explicit_bzero(node->security.plain_password, sizeof node->security.plain_password);
    node->ctx = NULL;
    lz__context_unref(ctx);
}

int lz__node_rebuild(lz_node_t *node) {
    lz__node_lock(node);
    close_socket(node);
    int rc = open_socket(node);
    for (size_t i = 0; rc == LZ_OK && i < node->attached_count; i++)
        rc = apply_endpoint(node, node->attached[i][0], node->attached[i] + 1);
    // A socket missing one of its endpoints would look usable yet never
    // reach that peer: none at all tells the caller to try again.
    if (rc != LZ_OK) close_socket(node);
    lz__node_unlock(node);
    LZ_COUNT(node, socket_rebuilds);
    if (rc != LZ_OK) return lz__node_error(node, rc, "socket rebuild failed: %s", lz_last_error());
    LZ_LOG(node->log, LZ_LOG_INFO, node->name, "socket rebuilt");
    return LZ_OK;
}

/* ---- naming, serializer, metrics --------------------------------------- */

int lz_node_set_serializer(lz_node_t *node, const char *name) {
    if (!node || !name) return lz__fail(LZ_EINVAL, "set_serializer: NULL argument");
    const lz_serializer_t *s = lz__registry_find(lz__context_registry(node->ctx), name);
    if (!s) return lz_last_error_code();
    node->serializer = s;
    return LZ_OK;
}

const char *lz_node_serializer_name(const lz_node_t *node) {
    return node ? lz_serializer_name(node->serializer) : "";
}

int lz_node_set_name(lz_node_t *node, const char *name) {
    if (!node || !name) return lz__fail(LZ_EINVAL, "set_name: NULL argument");
    lz__copy_text(node->name, sizeof node->name, name);
    return LZ_OK;
}

const char *lz_node_name(const lz_node_t *node) { return node ? node->name : ""; }

int lz__node_encode(const lz_node_t *node, const lz_value_t *value, lz_buffer_t *out) {
    return lz_serializer_encode(node->serializer, value ? value : &lz__value_null_constant, out);
}

void lz__node_share_counters(lz_node_t *node, lz_node_t *owner) {
    // Under the context's lock: node is already on the context's list, and
    // lz_context_metrics (any thread) reads its counters pointer there.
    lz__context_share_counters(node->ctx, node, owner);
}

void lz__node_snapshot(const lz_node_t *node, lz_metrics_t *out) {
    lz_counters_t *c = node->counters;
#define LZ_READ(f) out->f = atomic_load_explicit(&c->f, memory_order_relaxed);
    LZ_METRIC_COUNTERS(LZ_READ)
#undef LZ_READ
    out->active_connections = atomic_load_explicit(&c->active_connections, memory_order_relaxed);
}

int lz_node_metrics(const lz_node_t *node, lz_metrics_t *out) {
    if (!node || !out) return lz__fail(LZ_EINVAL, "node_metrics: NULL argument");
    lz__node_snapshot(node, out);
    return LZ_OK;
}

void *lz_node_zmq_socket(lz_node_t *node) { return node ? node->socket : NULL; }

/* ---- counting helpers --------------------------------------------------- */

static void log_counted(lz_node_t *node, lz_log_level_t level, const char *format, va_list args) {
    if (level >= lz_logger_level(node->log)) lz_logger_vwrite(node->log, level, node->name, format, args);
}

static void log_limited(lz_node_t *node, lz_log_limit_t *limit, const char *format, va_list args) {
    uint64_t skipped = 0;
    if (LZ_LOG_WARNING < lz_logger_level(node->log) || !lz__rate_limit_turn(&limit->rate, 1000, &skipped)) return;
    char reason[512];
    vsnprintf(reason, sizeof reason, format, args);
    if (skipped)
        lz_logger_write(node->log, LZ_LOG_WARNING, node->name, "%s (and %llu more %s not logged)", reason,
                        (unsigned long long)skipped, limit->noun);
    else
        lz_logger_write(node->log, LZ_LOG_WARNING, node->name, "%s", reason);
}

int lz__node_drop(lz_node_t *node, const char *format, ...) {
    LZ_COUNT(node, inbound_dropped);
    va_list args;
    va_start(args, format);
    log_limited(node, &node->drop_log, format, args);
    va_end(args);
    return LZ_EPROTOCOL;
}

void lz__node_log_drop(lz_node_t *node, const char *format, ...) {
    va_list args;
    va_start(args, format);
    log_limited(node, &node->drop_log, format, args);
    va_end(args);
}

static void warn_limited(lz_node_t *node, lz_log_limit_t *limit, const char *format, ...) {
    va_list args;
    va_start(args, format);
    log_limited(node, limit, format, args);
    va_end(args);
}

void lz__node_handshake_failed(lz_node_t *node, int event, unsigned value, const char *endpoint) {
    LZ_COUNT(node, handshake_failures);
    char reason[128];
    warn_limited(node, &node->handshake_log, "handshake with a peer on %s failed: %s", endpoint,
                 lz__security_handshake_reason(event, value, reason, sizeof reason));
}

int lz__node_error(lz_node_t *node, int code, const char *format, ...) {
    LZ_COUNT(node, errors);
    va_list args;
    va_start(args, format);
    log_counted(node, LZ_LOG_ERROR, format, args);
    va_end(args);
    return code;
}

int lz__node_refuse_destroy(lz_node_t *node, const void *owner, const char *fn, const char *callback) {
    if (!lz__thread_inside(owner)) return LZ_OK;
    int rc = lz__fail(LZ_ESTATE, "%s: called from its own %s; destroy it from another thread", fn, callback);
    return lz__node_error(node, rc, "%s", lz_last_error());
}

/* ---- send and receive --------------------------------------------------- */

// A burst stops reading ahead once it holds this many payload bytes. A
// look ahead that finds the queue empty costs libzmq a poll and a getpid:
// next to a message of a few kilobytes, which a reader that keeps up
// finds alone in its queue, that cost is not worth the lock round trip a
// look may save (4 KiB over tcp and ipc, six alternating pairs each:
// 1.01-1.05x the throughput with the limit at 2 KiB instead of 16 KiB;
// 256 B unchanged).
#define LZ_BURST_BYTES 2048

// count_traffic adds n messages of bytes in all to a pair of traffic
// counters. Senders count under the node lock and receivers on the one
// reader, so a node that counts alone needs no lock-prefixed update (see
// LZ_COUNT_OWNED_N).
#define count_traffic(node, messages, bytes_field, n, bytes)                                              \
    do {                                                                                                 \
        if (lz__node_counts_alone(node)) {                                                               \
            LZ_COUNT_OWNED_N(node, messages, (n));                                                       \
            LZ_COUNT_OWNED_N(node, bytes_field, (bytes));                                                \
        } else {                                                                                         \
            LZ_COUNT_N(node, messages, (n));                                                             \
            LZ_COUNT_N(node, bytes_field, (bytes));                                                      \
        }                                                                                                \
    } while (0)

// send_failed counts and reports a failed zmq_send (err from zmq_errno).
static int send_failed(lz_node_t *node, int err) {
    if (err == EAGAIN) {
        LZ_COUNT(node, backpressure_events);
        LZ_COUNT(node, outbound_dropped);
        if (!node->sends_wait) return lz__fail(LZ_EAGAIN, "%s: send: stopping, and no peer had room", node->name);
        // libzmq says EAGAIN both when every peer's queue is full and when
        // there is no peer to queue for (nothing connected, or zmq.immediate
        // and no connection up).
        return lz__fail(LZ_EAGAIN, "%s: send: no peer took the message within %d ms (none connected, or every "
                        "queue at its high water mark)", node->name, node->settings->send_timeout);
    }
    LZ_COUNT(node, outbound_dropped);
    // A ROUTER's peer that is gone (ROUTER_MANDATORY): the caller's to
    // handle or report, as a full queue is; not an error of this node.
    if (err == EHOSTUNREACH)
        return lz__fail(LZ_EUNREACHABLE, "%s: send: no connected peer has that identity", node->name);
    errno = err;
    int code = lz__fail_zmq("send");
    return lz__node_error(node, code, "send failed: %s", zmq_strerror(err));
}

// A send waits for room outside the lock (lz__node_wait), not inside libzmq
// (ZMQ_SNDTIMEO), so a full peer does not lock every other user out of the
// socket for up to zmq.send_timeout. Each try is a send with ZMQ_DONTWAIT,
// which processes libzmq's pending commands only now and then: after a
// failed one, ZMQ_EVENTS processes them in full and the send is tried
// again at once (room may have come meanwhile), and only a second failure
// waits, when ZMQ_FD will signal what comes next. libzmq's own blocking
// send also waits for its next command, not for ZMQ_POLLOUT: a ROUTER
// reports POLLOUT while any peer has room, not the one addressed.
typedef struct send_wait {
    int64_t deadline; // zmq.send_timeout from the first wait
    bool looked;      // ZMQ_EVENTS ran since the last try
} send_wait_t;

// send_again: after a try failed with err (never EINTR: a try restarts
// that on the frame it hit), whether to try again (having looked or
// waited), or let the failure stand (not a full queue, a caller that will
// not wait, or zmq.send_timeout passed).
static __attribute__((noinline)) bool send_again(lz_node_t *node, int err, int flags, send_wait_t *w) {
    if (err != EAGAIN || (flags & ZMQ_DONTWAIT) || node->settings->send_timeout == 0) return false;
    if (!w->looked) {
        int events, rc;
        size_t size = sizeof events;
        LZ_EINTR_RESTART(rc, zmq_getsockopt(node->socket, ZMQ_EVENTS, &events, &size)); // it too reads the mailbox
        w->looked = rc == 0;
        return w->looked;
    }
    if (!node->sends_wait) return false;
    int timeout = node->settings->send_timeout;
    if (w->deadline == 0) w->deadline = lz__deadline_ms(timeout);
    int left = lz__ms_left(w->deadline, timeout);
    if (left == 0) return false;
    lz__node_wait(node, left, LZ_WAIT_SEND);
    w->looked = false;
    return true;
}

// A send's content, for its tries: frames, or parts (moved into libzmq
// when sent) and then data. A part not sent keeps its content.
typedef struct frame_list {
    const lz_frame_t *frames;
    size_t count;
} frame_list_t;

typedef struct part_list {
    zmq_msg_t *parts;
    size_t count;
    const void *data;
    size_t size;
} part_list_t;

// close_unsent closes a frame made and not sent, keeping errno.
static void close_unsent(zmq_msg_t *frame) {
    int err = errno;
    zmq_msg_close(frame);
    errno = err;
}

// try_made is try_frames for frames[0..last], last at least 1: 0, or -1
// with zmq_errno(). Once libzmq has taken a frame with ZMQ_SNDMORE, the
// message is whole only when its last frame follows: a later frame that
// then failed would leave the first ones queued, to go out glued to the
// next message (a subscriber would read it under the previous topic). So
// every frame after the first that needs an allocation (over
// LZ_ZMQ_VSM_MAX bytes, more than a zmq_msg_t holds) is made before the
// first is sent, and then only the first can fail: libzmq counts whole
// messages against the high water mark, so it refuses a message at its
// first frame or not at all.
static inline __attribute__((always_inline)) int try_made(lz_node_t *node, const lz_frame_t *frames, size_t last,
                                                          int flags) {
    if (last >= LZ_MAX_FRAMES) {
        errno = EINVAL;
        return -1;
    }
    zmq_msg_t made[LZ_MAX_FRAMES]; // [i]: frames[i] when over LZ_ZMQ_VSM_MAX, for i in 1 .. built - 1
    size_t built = 1, sent = 0;
    while (built <= last && (frames[built].size <= LZ_ZMQ_VSM_MAX ||
                             lz__sendbuf_build(&made[built], frames[built].data, frames[built].size) == 0))
        built++;
    int rc = -1;
    if (built > last)
        LZ_EINTR_RESTART(rc, lz__sendbuf_send(node->socket, frames[0].data, frames[0].size, ZMQ_SNDMORE | flags));
    while (rc >= 0 && ++sent <= last) {
        int more = (sent < last ? ZMQ_SNDMORE : 0) | flags;
        if (frames[sent].size > LZ_ZMQ_VSM_MAX)
            LZ_EINTR_RESTART(rc, zmq_msg_send(&made[sent], node->socket, more));
        else
            LZ_EINTR_RESTART(rc, zmq_send(node->socket, frames[sent].data, frames[sent].size, more));
    }
    for (size_t i = sent ? sent : 1; i < built; i++) // those made and not sent
        if (frames[i].size > LZ_ZMQ_VSM_MAX) close_unsent(&made[i]);
    return rc < 0 ? -1 : 0;
}

// try_frames and try_parts try their content once: 0, or -1 with zmq_errno()
// (nothing sent when the first frame fails). A failed try is tried again
// from the first frame, so a signal is restarted on the frame it hit (see
// eintr.h): tried again whole, the frames already sent would go twice, and
// parts already moved into libzmq would go empty.
static inline __attribute__((always_inline)) int try_frames(lz_node_t *node, const void *content, int flags) {
    const frame_list_t *list = content;
    const lz_frame_t *frames = list->frames;
    flags |= ZMQ_DONTWAIT;
    if (list->count > 1) return try_made(node, frames, list->count - 1, flags);
    int rc;
    LZ_EINTR_RESTART(rc, lz__sendbuf_send(node->socket, frames[0].data, frames[0].size, flags));
    return rc < 0 ? -1 : 0;
}

static inline __attribute__((always_inline)) int try_parts(lz_node_t *node, const void *content, int flags) {
    const part_list_t *list = content;
    zmq_msg_t data; // made first, as try_made's frames are
    if (lz__sendbuf_build(&data, list->data, list->size) != 0) return -1;
    flags |= ZMQ_DONTWAIT;
    int rc = 0;
    for (size_t i = 0; rc >= 0 && i < list->count; i++)
        LZ_EINTR_RESTART(rc, zmq_msg_send(&list->parts[i], node->socket, ZMQ_SNDMORE | flags));
    if (rc >= 0) LZ_EINTR_RESTART(rc, zmq_msg_send(&data, node->socket, flags));
    if (rc < 0) close_unsent(&data);
    return rc < 0 ? -1 : 0;
}

// send_tries sends content (bytes in all) for a caller holding the lock,
// trying again while send_again says so, and counts the outcome. Inlined
// with its try function at each caller: the usual send is one try, and a
// call through a pointer and the loop's bookkeeping measured 110
// instructions a pub/sub message.
static inline __attribute__((always_inline)) int send_tries(lz_node_t *node,
                                                            int (*try_once)(lz_node_t *, const void *, int),
                                                            const void *content, size_t bytes, int flags) {
    for (send_wait_t w = {0, false}; !node->socket || try_once(node, content, flags) < 0;) {
        if (!node->socket) return lz__fail(LZ_ECLOSED, "%s: closed", node->name); // a rebuild failed meanwhile
        int err = zmq_errno();
        if (!send_again(node, err, flags, &w)) return send_failed(node, err);
    }
    count_traffic(node, messages_sent, bytes_sent, 1, bytes);
    return LZ_OK;
}

int lz__node_send_locked(lz_node_t *node, const lz_frame_t *frames, size_t count, int flags) {
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++) bytes += frames[i].size;
    return send_tries(node, try_frames, &(frame_list_t){frames, count}, bytes, flags);
}

int lz__node_send_parts_locked(lz_node_t *node, zmq_msg_t *parts, size_t count, const void *data, size_t size) {
    size_t bytes = size;
    for (size_t i = 0; i < count; i++) bytes += zmq_msg_size(&parts[i]); // before sending empties them
    return send_tries(node, try_parts, &(part_list_t){parts, count, data, size}, bytes, 0);
}

int lz__node_send(lz_node_t *node, const lz_frame_t *frames, size_t count) {
    lz__node_lock(node);
    int rc = lz__node_send_locked(node, frames, count, 0);
    lz__node_unlock(node);
    return rc;
}

int lz__node_send_one(lz_node_t *node, const void *data, size_t size) {
    lz__node_lock(node);
    // One frame, known here: the try compiles to one send, no loop.
    int rc = send_tries(node, try_frames, &(frame_list_t){&(lz_frame_t){data, size}, 1}, size, 0);
    lz__node_unlock(node);
    return rc;
}

// use_recv_timeout makes the socket's blocking receive wait timeout_ms
// (-1: forever), setting ZMQ_RCVTIMEO only when it changes.
static int use_recv_timeout(lz_node_t *node, int timeout_ms) {
    if (node->recv_timeout == timeout_ms) return LZ_OK;
    if (lz__sockopt_int(node->socket, ZMQ_RCVTIMEO, timeout_ms) != 0) return lz__fail_zmq("setsockopt ZMQ_RCVTIMEO");
    node->recv_timeout = timeout_ms;
    return LZ_OK;
}

// frame_size is the size of a frame zmq_msg_recv just returned `received`
// for: that count, unless capped at INT_MAX.
static size_t frame_size(zmq_msg_t *frame, int received) {
    return received < INT_MAX ? (size_t)received : zmq_msg_size(frame);
}

// recv_rest reads the remaining frames of a message whose first frame is
// in; frames past LZ_MAX_FRAMES are read and discarded so the next receive
// starts on a message boundary. ready: the parts are initialised slots (see
// lz__frames_ready), which zmq_msg_recv refills in place and which stay
// initialised when a receive fails.
static void recv_rest(lz_node_t *node, lz_frames_t *frames, bool ready) {
    for (int more = 1; more;) {
        zmq_msg_t extra;
        zmq_msg_t *part = frames->count < LZ_MAX_FRAMES ? &frames->part[frames->count] : &extra;
        bool owned = part == &extra || !ready; // initialised here, so closed here on failure
        if (owned) zmq_msg_init(part);
        // The rest of a message is already here, but libzmq looks at its
        // mailbox every hundredth receive: a signal there must not cut the
        // message, leaving its tail to pass for the next one (see eintr.h).
        int received;
        LZ_EINTR_RESTART(received, zmq_msg_recv(part, node->socket, 0));
        if (received < 0) {
            if (owned) zmq_msg_close(part);
            break;
        }
        size_t size = frame_size(part, received);
        frames->total++;
        frames->bytes += size;
        more = zmq_msg_more(part);
        if (part == &extra) zmq_msg_close(part);
        else frames->size[frames->count++] = size;
    }
}

// recv_one reads one whole message into frames without counting it.
// quiet: with nothing waiting and timeout_ms 0, return LZ_ETIMEOUT without
// formatting a last error (the expected end of every burst). ready: the
// parts are initialised slots. zmq_msg_recv frees what a message held
// before refilling it, and a failed receive leaves it a valid empty
// message, so a slot needs no init before nor close after: that pair per
// message is what keeping the burst's slots initialised saves.
static inline __attribute__((always_inline)) int recv_one(lz_node_t *node, lz_frames_t *frames, int timeout_ms,
                                                          bool quiet, bool ready) {
    frames->count = frames->total = frames->bytes = 0;
    frames->settled = 0;
    zmq_msg_t *first = &frames->part[0];
    if (!ready) zmq_msg_init(first);
    // A wait happens inside libzmq's blocking receive, as a plain libzmq
    // reader's does: it takes a queued message without a system call and
    // otherwise waits on the socket's mailbox once. A non-blocking try
    // first would cost a poll and a getpid on every wait, and zmq_poll
    // adds a descriptor look-up and an event read on each side of its own.
    int size = -1, rc = timeout_ms == 0 ? LZ_OK : use_recv_timeout(node, timeout_ms);
    int flags = timeout_ms == 0 ? ZMQ_DONTWAIT : 0;
    if (rc == LZ_OK) LZ_EINTR_RESTART(size, zmq_msg_recv(first, node->socket, flags));
    if (rc == LZ_OK && size < 0) {
        int err = zmq_errno();
        // libzmq processed its commands and found no message: what the
        // connections that ended left has all been read (revoke.c's top).
        if (err == EAGAIN && lz__conns_looking(&node->conns)) lz__conns_drained(&node->conns);
        if (err == EAGAIN && timeout_ms == 0)
            rc = quiet ? LZ_ETIMEOUT : lz__fail(LZ_ETIMEOUT, "%s: no message", node->name);
        else if (err == EAGAIN)
            rc = lz__fail(LZ_ETIMEOUT, "%s: no message within %d ms", node->name, timeout_ms);
        else
            rc = err == ETERM ? lz__fail(LZ_ECLOSED, "%s: context terminated", node->name) : lz__fail_zmq("recv");
    }
    if (rc != LZ_OK) {
        if (!ready) zmq_msg_close(first);
        return rc;
    }
    frames->count = frames->total = 1;
    frames->bytes = frames->size[0] = frame_size(first, size);
    if (zmq_msg_more(first)) recv_rest(node, frames, ready);
    return LZ_OK;
}

// recv_message is recv_one but for the messages a cut connection left
// queued, which it drops (lz__conns_look) and receives again: at most what
// that connection could queue, so a wait ends within a few timeouts. The
// test costs one load while no connection of a guarded socket needs a look.
static inline __attribute__((always_inline)) int recv_message(lz_node_t *node, lz_frames_t *frames, int timeout_ms,
                                                              bool quiet, bool ready) {
    int rc;
    while ((rc = recv_one(node, frames, timeout_ms, quiet, ready)) == LZ_OK && lz__conns_looking(&node->conns) &&
           lz__conns_look(node, &frames->part[0])) {
        if (ready) lz__frames_release(frames);
        else lz__frames_close(frames);
    }
    return rc;
}

int lz__node_recv(lz_node_t *node, lz_frames_t *frames, int timeout_ms) {
    int rc = recv_message(node, frames, timeout_ms, false, false);
    if (rc == LZ_OK) count_traffic(node, messages_received, bytes_received, 1, frames->bytes);
    return rc;
}

int lz__node_recv_burst(lz_node_t *node, lz_frames_t *frames, size_t max, int timeout_ms) {
    int rc = recv_message(node, &frames[0], timeout_ms, timeout_ms == 0, true);
    if (rc != LZ_OK) return rc;
    size_t n = 1, bytes = frames[0].bytes;
    // The rest only while already queued, and only while small: the burst
    // saves a lock round trip per message, which matters for small ones,
    // while large ones held ahead would only push each other out of the
    // cache before the reader gets to them. A failure here (EAGAIN, or a
    // closing context) ends the burst; the next receive reports it.
    while (n < max && bytes < LZ_BURST_BYTES && recv_message(node, &frames[n], 0, true, true) == LZ_OK)
        bytes += frames[n++].bytes;
    count_traffic(node, messages_received, bytes_received, n, bytes);
    return (int)n;
}

/* ---- waiting outside the lock ------------------------------------------- */

// Without a wakeup or ZMQ_FD (out of descriptors) a waiter cannot be told
// that another thread took its signal: it looks again this often.
#define LZ_WAIT_UNWOKEN_MS 50

// socket_fd: the socket's ZMQ_FD, looked up once per socket (-1 if libzmq
// will not say). Caller holds node->lock.
static int socket_fd(lz_node_t *node) {
    if (node->socket_fd < 0) {
        size_t size = sizeof node->socket_fd;
        if (zmq_getsockopt(node->socket, ZMQ_FD, &node->socket_fd, &size) != 0) node->socket_fd = -1;
    }
    return node->socket_fd;
}

void lz__node_wait(lz_node_t *node, int timeout_ms, lz_wait_kind_t kind) {
    // This thread's look may have taken the signal a waiter of the other
    // kind was sleeping on: it is told, as on any release of the lock.
    if (node->waiting[!kind]) lz__node_wake_if_ready(node);
    int *wake_fd = &node->wake_fd[kind];
    if (*wake_fd < 0) *wake_fd = lz__wakeup_open();
    struct pollfd fds[2] = {{socket_fd(node), POLLIN, 0}, {*wake_fd, POLLIN, 0}};
    if ((fds[0].fd < 0 || fds[1].fd < 0) && (timeout_ms < 0 || timeout_ms > LZ_WAIT_UNWOKEN_MS))
        timeout_ms = LZ_WAIT_UNWOKEN_MS;
    node->waiting[kind]++;
    lz__bias_unlock(&node->lock);
    // poll(2) skips a negative descriptor. The socket lives on while we
    // wait: a node is closed only after its users are done.
    if (poll(fds, 2, timeout_ms) > 0 && fds[1].revents) lz__wakeup_drain(fds[1].fd);
    lz__bias_lock(&node->lock);
    node->waiting[kind]--;
}

// wake signals kind's wakeup, if its waiters made one.
static void wake(lz_node_t *node, lz_wait_kind_t kind) {
    if (node->wake_fd[kind] >= 0) lz__wakeup_signal(node->wake_fd[kind]);
}

void lz__node_wake_if_ready(lz_node_t *node) {
    int events = 0;
    size_t size = sizeof events;
    // ZMQ_EVENTS processes the commands still pending, so it also sees
    // what arrived with the signal this holder took. A socket gone (a
    // rebuild that failed) or unreadable state: the waiters look for themselves.
    if (!node->socket || zmq_getsockopt(node->socket, ZMQ_EVENTS, &events, &size) != 0)
        events = ZMQ_POLLIN | ZMQ_POLLOUT;
    if ((events & ZMQ_POLLIN) && node->waiting[LZ_WAIT_RECV]) wake(node, LZ_WAIT_RECV);
    // Sends that may not wait pass the wake-up on, each one to the next, as
    // they fail and release the lock: one signal may end only one poll.
    if (((events & ZMQ_POLLOUT) || !node->sends_wait) && node->waiting[LZ_WAIT_SEND]) wake(node, LZ_WAIT_SEND);
}

void lz__node_set_send_wait(lz_node_t *node, bool wait) {
    lz__node_lock(node);
    node->sends_wait = wait;
    if (!wait) wake(node, LZ_WAIT_SEND);
    lz__node_unlock(node);
}

void lz__node_wake(lz_node_t *node) {
    lz__node_lock(node);
    wake(node, LZ_WAIT_RECV);
    lz__node_unlock(node);
}

int lz__node_recv_shared(lz_node_t *node, lz_frames_t *frames, size_t max, int timeout_ms, const atomic_bool *stopping,
                         int64_t *wait_start) {
    int64_t deadline = 0;
    bool waited = false;
    int rc;
    lz__node_lock(node);
    for (;;) {
        rc = node->socket ? lz__node_recv_burst(node, frames, max, 0) : lz__fail(LZ_ECLOSED, "%s: closed", node->name);
        if (rc != LZ_ETIMEOUT) break;
        if (stopping && atomic_load(stopping)) {
            // One wake-up ends one waiter's wait: pass the stop on to the next.
            if (node->waiting[LZ_WAIT_RECV]) wake(node, LZ_WAIT_RECV);
            rc = lz__fail(LZ_ECLOSED, "%s: stopping", node->name);
            break;
        }
        if (!waited && timeout_ms != 0) {
            int64_t now = lz__now_ms();
            if (wait_start && *wait_start == 0) *wait_start = now;
            deadline = timeout_ms > 0 ? now + timeout_ms : 0;
            waited = true;
        }
        int left = lz__ms_left(deadline, timeout_ms);
        if (left == 0) {
            rc = lz__fail(LZ_ETIMEOUT, "%s: no message within %d ms", node->name, timeout_ms);
            break;
        }
        lz__node_wait(node, left, LZ_WAIT_RECV);
    }
    lz__node_unlock(node);
    return rc;
}

bool lz__node_skip_refused(lz_node_t *node, int rc) {
    if (rc == LZ__TAKE_DROPPED) return true;
    bool malformed = rc != LZ_ENOMEM;
    lz__node_drop(node, "dropped a %smessage: %s", malformed ? "malformed " : "", lz_last_error());
    return malformed;
}

int lz__timeout_check(int timeout_ms, const char *who) {
    if (timeout_ms >= -1) return LZ_OK;
    return lz__fail(LZ_EINVAL, "%s: timeout %d ms: give -1 (the default), 0 or more", who, timeout_ms);
}

int lz__node_take(lz_node_t *node, int timeout_ms, const atomic_bool *stopping, lz_take_fn take, void *out) {
    if (timeout_ms < -1) return lz__timeout_check(timeout_ms, node->name);
    int64_t deadline = lz__deadline_ms(timeout_ms);
    lz_frames_t frames;
    lz__frames_ready(&frames);
    int rc;
    while ((rc = lz__node_recv_shared(node, &frames, 1, timeout_ms, stopping, NULL)) >= 0) {
        rc = take(node, &frames, out);
        lz__frames_release(&frames);
        if (rc == LZ_OK || !lz__node_skip_refused(node, rc)) break;
        timeout_ms = lz__ms_left(deadline, timeout_ms);
    }
    lz__frames_fini(&frames);
    return rc;
}

void lz__frames_close(lz_frames_t *frames) {
    for (size_t i = 0; i < frames->count; i++) zmq_msg_close(&frames->part[i]);
    frames->count = 0;
}

void lz__frames_ready(lz_frames_t *frames) {
    for (size_t i = 0; i < LZ_MAX_FRAMES; i++) zmq_msg_init(&frames->part[i]);
    frames->count = frames->total = frames->bytes = 0;
    frames->settled = 0;
}

void lz__frames_release_slow(lz_frames_t *frames) {
    // A settled part is empty or small (the next receive frees it): no
    // libzmq call for it. What any other part still
    // holds is freed now, not when the slot is next refilled, so an idle
    // reader keeps no large frame alive.
    for (size_t i = 0; i < frames->count; i++) {
        if (frames->settled & (1u << i)) continue;
        zmq_msg_close(&frames->part[i]);
        zmq_msg_init(&frames->part[i]);
    }
    frames->count = 0;
}

void lz__frames_fini(lz_frames_t *frames) {
    for (size_t i = 0; i < LZ_MAX_FRAMES; i++) zmq_msg_close(&frames->part[i]);
    frames->count = 0;
}
