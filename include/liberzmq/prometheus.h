/* liberzmq Prometheus exporter: every node's metrics in the Prometheus text
 * format (0.0.4), as a string or served over HTTP at /metrics.
 *
 * Each counter of lz_metrics_t is a counter family named
 * liberzmq_<field>_total (liberzmq_messages_sent_total...), and
 * active_connections the gauge liberzmq_active_connections. Each live node
 * is one series, labelled node="<its name>" (escaped, bytes that are not
 * UTF-8 written as U+FFFD) and id="<a number unique in its context>"; the
 * counters of closed nodes are one more series, node="(closed)" id="0", so
 * sum() over a family is the context's total and never goes down when a
 * node closes. Each lock service adds its
 * liberzmq_lock_* families (lz_lock_service_stats's numbers), labelled
 * node="<its server's name>". docs/metrics.md shows a scrape.
 *
 * The simplest use is configuration: metrics.prometheus_listen
 * ("127.0.0.1:9100") makes the context serve /metrics for its life. */
#ifndef LIBERZMQ_PROMETHEUS_H
#define LIBERZMQ_PROMETHEUS_H

#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_prometheus lz_prometheus_t;

// lz_context_prometheus renders the context's metrics now. Returns a
// NUL-terminated string the caller frees with free(), or NULL (LZ_EINVAL
// for a NULL context, LZ_ENOMEM). Thread safe.
char *lz_context_prometheus(lz_context_t *ctx);

// lz_prometheus_new serves GET /metrics (lz_context_prometheus's text) over
// HTTP on address "HOST:PORT": an IP address ("127.0.0.1", "[::1]") or "*"
// for every address, IPv6's and IPv4's (one socket on [::] that takes
// IPv4 too; IPv4's alone on a host without IPv6), and a port, 0 for a free
// one (lz_prometheus_port tells which); "[::]" is IPv6's alone. Other
// paths are 404 and other methods 405. The server runs on its own thread
// (libmicrohttpd's, with asynchronous signals blocked like every thread of
// ours, waiting with epoll or poll(), so descriptors past 1024 are served)
// and holds a reference on ctx until destroyed. It holds at most 64
// connections, 8 from one IP address (more from it are closed at once; past
// 64 they wait in the listen backlog), and closes a connection idle for 5 s,
// so that idle clients cannot take the process's descriptors.
// Returns NULL with LZ_EINVAL (NULL context, malformed address),
// LZ_ECONNECTION (the address cannot be bound, e.g. in use, or no
// descriptor is left; lz_last_error says which) or LZ_ENOMEM.
lz_prometheus_t *lz_prometheus_new(lz_context_t *ctx, const char *address);

// lz_prometheus_port returns the TCP port served, or a negative lz_error_t
// for NULL. Thread safe.
int lz_prometheus_port(const lz_prometheus_t *exporter);

// lz_prometheus_destroy stops serving (waiting for a scrape in progress),
// frees *exporter_p and sets it to NULL. NULL is a no-op.
void lz_prometheus_destroy(lz_prometheus_t **exporter_p);

#ifdef __cplusplus
}
#endif
#endif
