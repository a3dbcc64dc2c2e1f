/* Prometheus: the context's metrics in the text exposition format 0.0.4,
 * and an HTTP endpoint for them on libmicrohttpd (a server we do not
 * write). A scrape snapshots every node under the context's lock, then
 * renders without it. */
#include "core/prometheus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/error.h"
#include "core/metrics.h"
#include "core/textstream.h"
#include "core/thread.h"
#include "liberzmq/trace.h"
#include "serial/utf8.h"

// HELP texts, in LZ_METRIC_COUNTERS order (checked below).
static const char *const counter_help[] = {
    "Messages handed to libzmq.",
    "Messages read from libzmq, good or not.",
    "Payload bytes sent, all frames.",
    "Payload bytes received, all frames.",
    "Failures of any kind, handler errors included.",
    "Messages that could not be sent (high water mark, timeout, cooldown, peer gone).",
    "Received messages rejected (bad frames, undecodable).",
    "Sends refused by a full high water mark.",
    "Bind attempts that failed.",
    "Requests that ran out of time.",
    "Requests sent again.",
    "Sockets closed and opened again after a failure.",
    "Replies that came after their request was done.",
    "Peers refused or failing the security handshake.",
    "Tasks run again after their handler failed.",
    "Tasks handed to the dead-letter sink after their last failure.",
    "Configuration reloads applied (the context counts them, in the \"(closed)\" series).",
    "Configuration reloads refused (bad file or value); the running configuration stayed.",
    "Live connections cut because a reload's access rules refuse their peer.",
};
#define LZ_ONE(f) +1
_Static_assert(sizeof counter_help / sizeof counter_help[0] == 0 LZ_METRIC_COUNTERS(LZ_ONE),
               "a HELP text for each counter");
#undef LZ_ONE

// label_value writes text as a Prometheus label value: backslash, double
// quote and newline escaped. The format wants UTF-8, and a scraper may
// refuse a page without it, so bytes that are not (a name set from raw
// bytes) become U+FFFD, as they do in JSON log records.
static void label_value(FILE *out, const char *text) {
    const unsigned char *p = (const unsigned char *)text, *end = p + strlen(text);
    for (size_t n; p < end; p += n) {
        n = *p < 0x80 ? 1 : lz__utf8_sequence(p, (size_t)(end - p));
        if (n == 0) fputs("\xEF\xBF\xBD", out), n = 1;
        else if (*p == '\\' || *p == '"') fputc('\\', out), fputc(*p, out);
        else if (*p == '\n') fputs("\\n", out);
        else fwrite(p, 1, n, out);
    }
}

// series writes one sample of family for the node called name (its id
// tells apart nodes of one name).
static void series(FILE *out, const char *family, const char *name, uint64_t id, const char *value) {
    fprintf(out, "%s{node=\"", family);
    label_value(out, name);
    fprintf(out, "\",id=\"%" PRIu64 "\"} %s\n", id, value);
}

static void render(FILE *out, const lz_node_snapshot_t *nodes, size_t count) {
    char family[64], value[32];
    size_t k = 0;
#define LZ_FAMILY(f)                                                                                   \
    snprintf(family, sizeof family, "liberzmq_" #f "_total");                                         \
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", family, counter_help[k++], family);             \
    for (size_t i = 0; i < count; i++) {                                                               \
        snprintf(value, sizeof value, "%" PRIu64, (uint64_t)nodes[i].metrics.f);                        \
        series(out, family, nodes[i].name, nodes[i].id, value);                                        \
    }
    LZ_METRIC_COUNTERS(LZ_FAMILY)
#undef LZ_FAMILY
    fputs("# HELP liberzmq_active_connections Peers connected now.\n"
          "# TYPE liberzmq_active_connections gauge\n", out);
    for (size_t i = 0; i < count; i++) {
        snprintf(value, sizeof value, "%" PRId64, nodes[i].metrics.active_connections);
        series(out, "liberzmq_active_connections", nodes[i].name, nodes[i].id, value);
    }
}

// render_otlp writes the span exporter's counters, when the context runs
// or ran one (a reload may have started or stopped it).
static void render_otlp(FILE *out, lz_context_t *ctx) {
    lz_otlp_stats_t stats;
    if (!lz__context_otlp_stats(ctx, &stats)) return;
    fprintf(out,
            "# HELP liberzmq_otlp_spans_total Spans the OTLP exporter handled: exported (the collector took them), "
            "dropped (its queue was full), failed (their POST failed).\n"
            "# TYPE liberzmq_otlp_spans_total counter\n"
            "liberzmq_otlp_spans_total{outcome=\"exported\"} %" PRIu64 "\n"
            "liberzmq_otlp_spans_total{outcome=\"dropped\"} %" PRIu64 "\n"
            "liberzmq_otlp_spans_total{outcome=\"failed\"} %" PRIu64 "\n"
            "# HELP liberzmq_otlp_posts_failed_total POSTs to the OTLP collector that failed.\n"
            "# TYPE liberzmq_otlp_posts_failed_total counter\n"
            "liberzmq_otlp_posts_failed_total %" PRIu64 "\n",
            stats.spans_exported, stats.spans_dropped, stats.spans_failed, stats.posts_failed);
}

/* ---- extra collectors ------------------------------------------------------ */

struct lz__collector {
    lz__collector_t *next;
    const lz__collector_kind_t *kind;
    char *node;
    uint64_t node_id;
    void *arg;
};

void lz__collectors_init(lz__collectors_t *collectors) {
    pthread_mutex_init(&collectors->lock, NULL);
    collectors->list = NULL;
}

void lz__collectors_fini(lz__collectors_t *collectors) { pthread_mutex_destroy(&collectors->lock); }

lz__collector_t *lz__collector_add(lz_context_t *ctx, const lz__collector_kind_t *kind, const char *node,
                                   uint64_t node_id, void *arg) {
    lz__collector_t *c = calloc(1, sizeof *c);
    char *copy = strdup(node);
    if (!c || !copy) {
        free(c);
        free(copy);
        return lz__fail_null(LZ_ENOMEM, "prometheus: out of memory");
    }
    *c = (lz__collector_t){NULL, kind, copy, node_id, arg};
    lz__collectors_t *reg = lz__context_collectors(ctx);
    pthread_mutex_lock(&reg->lock);
    lz__collector_t **at = &reg->list;
    while (*at) at = &(*at)->next;
    *at = c; // last: series keep the order the collectors came in
    pthread_mutex_unlock(&reg->lock);
    return c;
}

void lz__collector_remove(lz_context_t *ctx, lz__collector_t **collector_p) {
    if (!collector_p || !*collector_p) return;
    lz__collectors_t *reg = lz__context_collectors(ctx);
    pthread_mutex_lock(&reg->lock); // waits for a scrape reading it
    for (lz__collector_t **at = &reg->list; *at; at = &(*at)->next)
        if (*at == *collector_p) {
            *at = (*at)->next;
            break;
        }
    pthread_mutex_unlock(&reg->lock);
    free((*collector_p)->node);
    free(*collector_p);
    *collector_p = NULL;
}

// first_of_kind: whether no collector before c in list is of c's kind.
static bool first_of_kind(const lz__collector_t *list, const lz__collector_t *c) {
    for (; list != c; list = list->next)
        if (list->kind == c->kind) return false;
    return true;
}

// render_kind writes each family of kind once, with a series for every
// collector of kind in list; each collector is read once, so its series
// are of one moment. LZ_ENOMEM when there is no room for the values.
static int render_kind(FILE *out, const lz__collector_t *list, const lz__collector_kind_t *kind) {
    size_t n = 0, families = kind->family_count;
    for (const lz__collector_t *c = list; c; c = c->next) n += c->kind == kind;
    uint64_t *values = calloc(n * families, sizeof *values);
    if (!values) return LZ_ENOMEM;
    size_t k = 0;
    for (const lz__collector_t *c = list; c; c = c->next)
        if (c->kind == kind) kind->read(c->arg, &values[families * k++]);
    for (size_t f = 0; f < families; f++) {
        const lz__family_t *family = &kind->families[f];
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", family->name, family->help, family->name, family->type);
        k = 0;
        for (const lz__collector_t *c = list; c; c = c->next) {
            if (c->kind != kind) continue;
            char value[24];
            snprintf(value, sizeof value, "%" PRIu64, values[families * k++ + f]);
            series(out, family->name, c->node, c->node_id, value);
        }
    }
    free(values);
    return LZ_OK;
}

// render_collectors writes the families of ctx's extra collectors, under
// the registry's lock so none is removed (and freed) while it is read.
static int render_collectors(FILE *out, lz_context_t *ctx) {
    lz__collectors_t *reg = lz__context_collectors(ctx);
    int rc = LZ_OK;
    pthread_mutex_lock(&reg->lock);
    for (const lz__collector_t *c = reg->list; c && rc == LZ_OK; c = c->next)
        if (first_of_kind(reg->list, c)) rc = render_kind(out, reg->list, c->kind);
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

char *lz_context_prometheus(lz_context_t *ctx) {
    if (!ctx) return lz__fail_null(LZ_EINVAL, "prometheus: NULL context");
    lz_node_snapshot_t *nodes = NULL;
    size_t count = 0, len = 0;
    if (lz__context_snapshots(ctx, &nodes, &count) != LZ_OK) return NULL;
    char *text = NULL;
    lz_text_sink_t sink;
    FILE *out = lz__text_open(&sink);
    if (out) {
        render(out, nodes, count);
        render_otlp(out, ctx);
        int rc = render_collectors(out, ctx);
        text = lz__text_close(out, &sink, &len);
        if (rc != LZ_OK) free(text), text = NULL;
    }
    free(nodes);
    return text ? text : lz__fail_null(LZ_ENOMEM, "prometheus: out of memory");
}

/* ---- HTTP -------------------------------------------------------------------- */

struct lz_prometheus {
    lz_context_t *ctx;
    bool holds_ref; // lz_prometheus_new's; a context's own exporter does not
    struct MHD_Daemon *daemon;
    int port;
};

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status, char *body, bool owned,
                               const char *type) {
    struct MHD_Response *response = MHD_create_response_from_buffer(
        strlen(body), body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!response) {
        if (owned) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result on_request(void *self, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **state) {
    (void)version, (void)upload_data, (void)upload_size, (void)state;
    lz_prometheus_t *exporter = self;
    static const char *const plain = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", false, plain);
    if (strcmp(url, "/metrics") != 0) return respond(connection, MHD_HTTP_NOT_FOUND, "try /metrics\n", false, plain);
    char *text = lz_context_prometheus(exporter->ctx);
    if (!text) return respond(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", false, plain);
    return respond(connection, MHD_HTTP_OK, text, true, "text/plain; version=0.0.4; charset=utf-8");
}

// parse_address reads "HOST:PORT" (HOST an IP address, bracketed for IPv6,
// or '*') into a socket address; '*' reads as IPv4's wildcard and sets
// *every (serve_everywhere).
static bool parse_address(const char *address, struct sockaddr_storage *out, bool *every) {
    const char *colon = address ? strrchr(address, ':') : NULL;
    if (!colon || !colon[1]) return false;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] < '0' || colon[1] > '9') return false;
    char host[INET6_ADDRSTRLEN + 2];
    size_t host_len = (size_t)(colon - address);
    if (host_len >= sizeof host) return false;
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    *every = strcmp(host, "*") == 0;
    if (*every || inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        if (*every) v4->sin_addr.s_addr = htonl(INADDR_ANY);
        return true;
    }
    if (host_len < 2 || host[0] != '[' || host[host_len - 1] != ']') return false;
    host[host_len - 1] = '\0';
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1;
}

const char *lz__prometheus_check_address(const char *text) {
    struct sockaddr_storage address;
    bool every;
    return !*text || parse_address(text, &address, &every) ? NULL
                                                           : "HOST:PORT, HOST an IP address ([::1] for IPv6) or *";
}

// Limits on the connections the exporter holds, so that idle or slow ones
// (a scan, a slowloris) cannot take the process's descriptors, which its
// messaging needs, nor every slot a scraper needs. A scraper keeps one
// connection per target, so PER_IP leaves room for several on one host (a
// Prometheus, an agent, a curl) while one address cannot hold more than
// an eighth of CONNECTION_LIMIT; beyond the limit per address a connection
// is closed at once, beyond the total it waits in the listen backlog.
// IDLE_TIMEOUT closes a connection that sends nothing for that long,
// shorter than any usual scrape interval, so between scrapes a kept-alive
// connection is dropped and the next scrape reconnects.
#define CONNECTION_LIMIT 64u
#define PER_IP_CONNECTION_LIMIT 8u
#define IDLE_TIMEOUT_S 5u

// daemon_start serves on bind_to, with flags for its family; NULL on
// failure, *why the errno libmicrohttpd left (bind's, socket's,
// epoll_create's...), or 0.
static struct MHD_Daemon *daemon_start(lz_prometheus_t *exporter, const struct sockaddr_storage *bind_to,
                                       unsigned flags, int *why) {
    // AUTO: epoll or poll(), never select(), which cannot watch a descriptor
    // past 1024 (a server with a thousand peers has them): the daemon would
    // not start, or would accept scrapes and drop them.
    flags |= MHD_USE_AUTO_INTERNAL_THREAD;
    sigset_t caller;
    lz__thread_signals_block(&caller); // its thread inherits our mask
    errno = 0;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, exporter, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)bind_to,
        MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, PER_IP_CONNECTION_LIMIT, MHD_OPTION_END);
    *why = errno;
    lz__thread_signals_restore(&caller);
    return daemon;
}

// serve_everywhere serves '*' on IPv6's wildcard, [::], with IPV6_V6ONLY
// off (MHD_USE_DUAL_STACK), so that IPv4 peers reach it too; on a host
// without IPv6, whose kernel refuses the socket (EAFNOSUPPORT) or the
// address (EADDRNOTAVAIL), on IPv4's, any4.
static struct MHD_Daemon *serve_everywhere(lz_prometheus_t *exporter, const struct sockaddr_storage *any4, int *why) {
    struct sockaddr_storage any6 = {0};
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&any6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = ((const struct sockaddr_in *)any4)->sin_port;
    v6->sin6_addr = in6addr_any;
    struct MHD_Daemon *daemon = daemon_start(exporter, &any6, MHD_USE_DUAL_STACK, why);
    if (daemon || (*why != EAFNOSUPPORT && *why != EADDRNOTAVAIL)) return daemon;
    return daemon_start(exporter, any4, 0, why);
}

lz_prometheus_t *lz__prometheus_start(lz_context_t *ctx, const char *address, bool hold_ref) {
    struct sockaddr_storage bind_to;
    bool every;
    if (!ctx) return lz__fail_null(LZ_EINVAL, "prometheus: NULL context");
    if (!parse_address(address, &bind_to, &every))
        return lz__fail_null(LZ_EINVAL, "prometheus: '%s' is not HOST:PORT (an IP address or *, a port)",
                             address ? address : "(null)");
    lz_prometheus_t *exporter = calloc(1, sizeof *exporter);
    if (!exporter) return lz__fail_null(LZ_ENOMEM, "prometheus: out of memory");
    exporter->ctx = ctx;
    int why;
    exporter->daemon = every ? serve_everywhere(exporter, &bind_to, &why)
                             : daemon_start(exporter, &bind_to, bind_to.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0, &why);
    if (!exporter->daemon) {
        free(exporter);
        if (why == ENOMEM) return lz__fail_null(LZ_ENOMEM, "prometheus: out of memory to serve on %s", address);
        return lz__fail_null(LZ_ECONNECTION, "prometheus: cannot serve on %s: %s", address,
                             why ? strerror(why) : "in use, or not an address here?");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(exporter->daemon, MHD_DAEMON_INFO_BIND_PORT);
    exporter->port = info ? info->port : 0;
    exporter->holds_ref = hold_ref;
    if (hold_ref) lz__context_ref(ctx);
    return exporter;
}

lz_prometheus_t *lz_prometheus_new(lz_context_t *ctx, const char *address) {
    return lz__prometheus_start(ctx, address, true);
}

int lz_prometheus_port(const lz_prometheus_t *exporter) {
    return exporter ? exporter->port : lz__fail(LZ_EINVAL, "prometheus: NULL exporter");
}

void lz_prometheus_destroy(lz_prometheus_t **exporter_p) {
    if (!exporter_p || !*exporter_p) return;
    lz_prometheus_t *exporter = *exporter_p;
    MHD_stop_daemon(exporter->daemon);
    if (exporter->holds_ref) lz__context_unref(exporter->ctx);
    free(exporter);
    *exporter_p = NULL;
}
