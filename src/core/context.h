/* Internal view of the context: the settings every node reads, reference
 * counting by nodes, and the registries it owns. */
#ifndef LZ_CORE_CONTEXT_H
#define LZ_CORE_CONTEXT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "liberzmq/context.h"
#include "liberzmq/serializer.h"
#include "liberzmq/trace.h"

typedef struct lz_node lz_node_t;
typedef struct lz_registry lz_registry_t;

// The configuration read once into plain fields when the context is made,
// so hot paths never look keys up. These fields never change afterwards: a
// reload (lz_context_reload) changes only the live keys, which hot paths
// read from lz_live_t below; the fields marked "initial" here are their
// values at creation. Times are milliseconds; -1 means "no limit" where
// libzmq allows it.
typedef struct lz_settings {
    int io_threads;
    int max_sockets;
    int linger;
    int hwm_outbound;
    int hwm_inbound;
    int send_timeout;
    int receive_timeout;
    int request_timeout;            // initial: read LZ_LIVE(live, request_timeout)
    int request_retries;            // initial
    int failed_socket_cooldown;
    int handler_max_concurrency;
    int reconnect_interval;
    int reconnect_interval_max;
    int heartbeat_interval;
    bool immediate; // ZMQ_IMMEDIATE: queue only to connections that are up
    int64_t max_message_size;
    const char *default_serializer; // owned by the context's config
    const char *prometheus_listen;  // "" or HOST:PORT; owned by the context's config
    bool tracing;                   // initial tracing.enabled: spans and traceparent (core/trace.h)
    bool tracing_log;               // initial tracing.log: each span also logged
    bool tracing_extension_frames;  // initial tracing.extension_frames: traceparent frames (core/extension.h)
    // The exporter's (otlp.h), initial: a reload replaces the exporter.
    const char *otlp_endpoint;      // tracing.otlp_endpoint: "" or an http(s):// URL; owned by the context's config
    const char *service_name;       // tracing.service_name; owned by the context's config
    int otlp_batch;                 // tracing.otlp_batch: spans per POST at most
    int otlp_interval;              // tracing.otlp_interval: ms a queued span waits at most
    const char *otlp_headers;       // tracing.otlp_headers: "name=value,..."; owned by the context's config
    const char *otlp_ca_file;       // tracing.otlp_ca_file: "" (the system's CAs) or a PEM file
    int task_max_retries;           // initial tasks.max_retries: a puller's default (pushpull.h)
    int task_retry_delay;           // initial tasks.retry_delay, ms
} lz_settings_t;

// The settings a reload changes on a running context. Other threads read
// them on hot paths while a reload stores them, so each is an atomic, read
// with LZ_LIVE (relaxed: each is a value on its own, guarding no other
// data). Nodes keep a pointer to their context's (lz_node_t.live).
typedef struct lz_live {
    atomic_bool tracing, tracing_log, tracing_extension_frames;
    atomic_int request_timeout;  // per request, existing clients too
    atomic_int request_retries;  // clients made afterwards
    atomic_int task_max_retries; // pullers made afterwards
    atomic_int task_retry_delay;
} lz_live_t;

#define LZ_LIVE(live, field) atomic_load_explicit(&(live)->field, memory_order_relaxed)

// lz__settings_read fills *out from config; LZ_ECONFIG on an inconsistent
// combination. Implemented in config.c next to the key table.
int lz__settings_read(const lz_config_t *config, lz_settings_t *out);

// lz__config_live_merge returns a copy of next in which every key that
// cannot change on a running context keeps current's value, for a reload
// to apply as a whole. Each such key whose value differs is named to
// restart(name, arg); *changed counts the live keys that differ in value
// or in the source that set them (debug and the default log target depend
// on it). NULL when out of memory. In config.c, which knows which keys are
// live.
lz_config_t *lz__config_live_merge(const lz_config_t *current, const lz_config_t *next,
                                   void (*restart)(const char *name, void *arg), void *arg, size_t *changed);
// lz__config_keep_api stores into config every value that current got
// through the API (lz_config_set*), so a configuration rebuilt from file
// and environment keeps them on top, as the first one had them.
int lz__config_keep_api(lz_config_t *config, const lz_config_t *current);

const lz_settings_t *lz__context_settings(const lz_context_t *ctx);
lz_live_t *lz__context_live(lz_context_t *ctx);
lz_registry_t *lz__context_registry(lz_context_t *ctx);
// lz__context_security_settle runs lz__security_settle on the context's
// security policy under the lock a reload swaps the policy under.
typedef struct lz_node_security lz_node_security_t;
int lz__context_security_settle(lz_context_t *ctx, lz_node_security_t *node, char side, const char *name);

// lz__context_otlp_stats is lz_context_otlp_stats (the counters summed
// over every exporter the context has had, reloads included); false when
// it never had one. Thread safe.
bool lz__context_otlp_stats(lz_context_t *ctx, lz_otlp_stats_t *out);

// lz__context_policy returns a reference on the security policy in force
// (taken under the lock a reload swaps it under), for the caller to drop
// with lz__security_destroy. Any thread.
typedef struct lz_security lz_security_t;
lz_security_t *lz__context_policy(lz_context_t *ctx);

// lz__context_reload_from is lz_context_reload with origin ("file PATH",
// "lz_context_reload") named in its log lines; the watcher's path.
int lz__context_reload_from(lz_context_t *ctx, const lz_config_t *config, const char *origin);
// lz__context_reload_failed counts a refused reload in
// config_reload_errors and logs why (the thread's last error): for one
// that could not even be tried too (its file did not load).
void lz__context_reload_failed(lz_context_t *ctx, const char *origin);

// Nodes hold a reference on their context, so the zmq context outlives
// every socket made in it (see lz_context_destroy).
void lz__context_ref(lz_context_t *ctx);
void lz__context_unref(lz_context_t *ctx);

// Nodes register so that context metrics sum them; a node detaching folds
// its final counters into the context's retired total.
void lz__context_attach(lz_context_t *ctx, lz_node_t *node);
void lz__context_detach(lz_context_t *ctx, lz_node_t *node);
// lz__context_share_counters points node's counters at owner's (see
// lz__node_share_counters) under the lock that lz_context_metrics reads
// them under: node is on the context's list from lz__node_init on.
void lz__context_share_counters(lz_context_t *ctx, lz_node_t *node, lz_node_t *owner);

// One node's metrics at a moment, for exporters.
typedef struct lz_node_snapshot {
    char name[64];
    uint64_t id; // unique in the context; 0 for the closed nodes' total
    lz_metrics_t metrics;
} lz_node_snapshot_t;

// lz__context_snapshots takes every counting node's metrics (the nodes of
// a client count as one) and, last, the closed nodes' total named
// "(closed)", at one moment. *out is the caller's to free.
int lz__context_snapshots(lz_context_t *ctx, lz_node_snapshot_t **out, size_t *count);

// The context's socket monitor: one thread per context reads libzmq
// monitor events for all its nodes and keeps active_connections true.
int lz__context_monitor_add(lz_context_t *ctx, lz_node_t *node);
void lz__context_monitor_remove(lz_context_t *ctx, lz_node_t *node);
// lz__context_zap makes sure the context answers ZAP requests (its ZAP
// handler's threads serve them, zap.h): at creation when the policy has
// rules, or when a node first becomes a CURVE or PLAIN server; and for
// good, even if a reload started it and is then refused. Idempotent.
int lz__context_zap(lz_context_t *ctx);

// The warnings a context logs once, however many nodes earn them.
typedef enum {
    LZ_WARNING_PLAIN_EXPOSED, // a PLAIN server bound where passwords cross a network in clear
    LZ_WARNING_GSSAPI_LEAK,   // an encrypted GSSAPI node on a libzmq that leaks each message
    LZ_WARNING_COUNT
} lz_context_warning_t;

// lz__context_warn_once logs warning which, about node name and its
// endpoint url, the first time a node of ctx earns it.
void lz__context_warn_once(lz_context_t *ctx, lz_context_warning_t which, const char *name, const char *url);

#endif
