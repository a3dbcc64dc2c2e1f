/* The OTLP/HTTP span exporter (src/core/otlp.c) against a tiny collector
 * served here by libmicrohttpd on 127.0.0.1: the JSON a request/reply
 * round trip sends (read back with liberzmq's own JSON decoder), a
 * collector that refuses connections (a full queue under load warns once),
 * one that accepts and never answers (a full queue drops, destroy still
 * ends when the flush's 3 s are up), the flush at destroy, destroy bounded
 * while a DNS lookup hangs, endpoints refused by the configuration, and
 * reloads that move the spans to another collector while threads end
 * spans. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "lz_test.h"

/* ---- the collector -------------------------------------------------------- */

#define MAX_POSTS 256 // room for the reload stress test's posts (a few dozen)

typedef struct collector {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    int posts;
    char *bodies[MAX_POSTS];
    char path[64], method[16], content_type[64]; // of the last POST
    char authorization[64], team[64];            // its headers of these names, "" when absent
} collector_t;

typedef struct upload {
    char *data;
    size_t len;
} upload_t;

static void append(upload_t *up, const char *data, size_t size) {
    char *grown = realloc(up->data, up->len + size + 1);
    LZ_CHECK(grown != NULL);
    if (!grown) return;
    memcpy(grown + up->len, data, size);
    up->len += size;
    grown[up->len] = '\0';
    up->data = grown;
}

// keep stores a finished upload's body (taking it) and what it came with.
static void keep(collector_t *col, struct MHD_Connection *connection, const char *url, const char *method,
                 upload_t *up) {
    const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *authorization = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Authorization");
    const char *team = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Team");
    pthread_mutex_lock(&col->lock);
    if (col->posts < MAX_POSTS) {
        col->bodies[col->posts++] = up->data ? up->data : strdup("");
        up->data = NULL;
    }
    snprintf(col->path, sizeof col->path, "%s", url);
    snprintf(col->method, sizeof col->method, "%s", method);
    snprintf(col->content_type, sizeof col->content_type, "%s", type ? type : "");
    snprintf(col->authorization, sizeof col->authorization, "%s", authorization ? authorization : "");
    snprintf(col->team, sizeof col->team, "%s", team ? team : "");
    pthread_mutex_unlock(&col->lock);
}

// on_request gathers the body over MHD's calls, then answers {} (an
// ExportTraceServiceResponse with nothing rejected).
static enum MHD_Result on_request(void *self, struct MHD_Connection *connection, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **state) {
    (void)version;
    upload_t *up = *state;
    if (!up) return (*state = calloc(1, sizeof *up)) ? MHD_YES : MHD_NO;
    if (*size) {
        append(up, data, *size);
        *size = 0;
        return MHD_YES;
    }
    keep(self, connection, url, method, up);
    static char answer[] = "{}";
    struct MHD_Response *response = MHD_create_response_from_buffer(2, answer, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return rc;
}

static void on_completed(void *self, struct MHD_Connection *connection, void **state,
                         enum MHD_RequestTerminationCode code) {
    (void)self, (void)connection, (void)code;
    upload_t *up = *state;
    if (up) free(up->data), free(up);
    *state = NULL;
}

// The https collector's certificate (self-signed, for 127.0.0.1) and key.
#define TLS_CERT LZ_TEST_TLS_DIR "/collector_cert.pem"
#define TLS_KEY LZ_TEST_TLS_DIR "/collector_key.pem"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    char *text = f ? calloc(1, 8192) : NULL;
    if (text && fread(text, 1, 8191, f) == 0) text[0] = '\0';
    if (f) fclose(f);
    LZ_CHECK(text && text[0]);
    return text;
}

// collector_start serves http, or https with the test certificate.
static void collector_start_tls(collector_t *col, bool tls) {
    memset(col, 0, sizeof *col);
    pthread_mutex_init(&col->lock, NULL);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = 0};
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char *cert = tls ? read_file(TLS_CERT) : NULL, *key = tls ? read_file(TLS_KEY) : NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (tls ? MHD_USE_TLS : 0);
    // MHD takes options it does not know as the end: the TLS pair goes last.
    col->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, col, MHD_OPTION_SOCK_ADDR,
                                   (struct sockaddr *)&at, MHD_OPTION_NOTIFY_COMPLETED, on_completed, col,
                                   MHD_OPTION_CONNECTION_TIMEOUT, 10u, tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
                                   cert, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    free(cert);
    free(key);
    LZ_CHECK(col->daemon != NULL);
    const union MHD_DaemonInfo *info = col->daemon ? MHD_get_daemon_info(col->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    col->port = info ? info->port : 0;
    LZ_CHECK(col->port > 0);
}

static void collector_start(collector_t *col) { collector_start_tls(col, false); }

static void collector_stop(collector_t *col) {
    if (col->daemon) MHD_stop_daemon(col->daemon);
    for (int i = 0; i < col->posts; i++) free(col->bodies[i]);
    pthread_mutex_destroy(&col->lock);
}

static int collector_posts(collector_t *col) {
    pthread_mutex_lock(&col->lock);
    int n = col->posts;
    pthread_mutex_unlock(&col->lock);
    return n;
}

/* ---- reading what it received ---------------------------------------------- */

static lz_value_t *path_get(const lz_value_t *v, const char *key, size_t index) {
    return lz_value_at(lz_value_get(v, key), index);
}

// attribute finds key's stringValue in an OTLP attribute list; NULL if absent.
static const char *attribute(const lz_value_t *owner, const char *key) {
    const lz_value_t *list = lz_value_get(owner, "attributes");
    for (size_t i = 0; i < lz_value_size(list); i++) {
        const lz_value_t *kv = lz_value_at(list, i);
        if (strcmp(lz_value_find_string(kv, "key", ""), key) == 0)
            return lz_value_find_string(lz_value_get(kv, "value"), "stringValue", NULL);
    }
    return NULL;
}

// check_request checks one ExportTraceServiceRequest's frame: one resource
// named service, one scope (liberzmq at its version), some spans.
static void check_request(const lz_value_t *request, const char *service) {
    LZ_CHECK_INT(lz_value_size(lz_value_get(request, "resourceSpans")), 1);
    const lz_value_t *resource_spans = path_get(request, "resourceSpans", 0);
    const char *name = attribute(lz_value_get(resource_spans, "resource"), "service.name");
    LZ_CHECK_STR(name, service);
    LZ_CHECK_INT(lz_value_size(lz_value_get(resource_spans, "scopeSpans")), 1);
    const lz_value_t *scope = lz_value_get(path_get(resource_spans, "scopeSpans", 0), "scope");
    LZ_CHECK_STR(lz_value_find_string(scope, "name", ""), "liberzmq");
    LZ_CHECK_STR(lz_value_find_string(scope, "version", ""), lz_version());
    LZ_CHECK(lz_value_size(lz_value_get(path_get(resource_spans, "scopeSpans", 0), "spans")) > 0);
}

// received_spans parses every POST so far (each checked by check_request
// when service is given) and returns all their spans in one array.
static lz_value_t *received_spans(collector_t *col, const char *service) {
    lz_value_t *all = lz_value_array();
    pthread_mutex_lock(&col->lock);
    for (int i = 0; i < col->posts; i++) {
        lz_value_t *request = lz_value_from_json(col->bodies[i], strlen(col->bodies[i]));
        LZ_CHECK(request != NULL);
        if (service) check_request(request, service);
        const lz_value_t *scope_spans = path_get(path_get(request, "resourceSpans", 0), "scopeSpans", 0);
        const lz_value_t *spans = lz_value_get(scope_spans, "spans");
        for (size_t s = 0; s < lz_value_size(spans); s++)
            lz_value_array_append(all, lz_value_copy(lz_value_at(spans, s)));
        lz_value_destroy(&request);
    }
    pthread_mutex_unlock(&col->lock);
    return all;
}

static size_t received_count(collector_t *col) {
    lz_value_t *all = received_spans(col, NULL);
    size_t n = lz_value_size(all);
    lz_value_destroy(&all);
    return n;
}

static const lz_value_t *find_span(const lz_value_t *spans, int kind, const char *name) {
    for (size_t i = 0; i < lz_value_size(spans); i++) {
        const lz_value_t *span = lz_value_at(spans, i);
        if (lz_value_find_int(span, "kind", 0) == kind && strcmp(lz_value_find_string(span, "name", ""), name) == 0)
            return span;
    }
    fprintf(stderr, "  no span of kind %d named %s\n", kind, name);
    return NULL;
}

static bool is_hex(const char *text, size_t len) {
    if (!text || strlen(text) != len) return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", text[i])) return false;
    return true;
}

// nanos reads a uint64 as OTLP's JSON writes it: a string of digits.
static long long nanos(const lz_value_t *span, const char *key) {
    const char *text = lz_value_find_string(span, key, "");
    bool digits = *text && strlen(text) <= 19 && strspn(text, "0123456789") == strlen(text);
    LZ_CHECK(digits);
    return digits ? atoll(text) : -1;
}

// check_span: ids, times and the attributes every span carries.
static void check_span(const lz_value_t *span, const char *node) {
    LZ_CHECK(is_hex(lz_value_find_string(span, "traceId", NULL), 32));
    LZ_CHECK(is_hex(lz_value_find_string(span, "spanId", NULL), 16));
    long long start = nanos(span, "startTimeUnixNano"), end = nanos(span, "endTimeUnixNano");
    LZ_CHECK(start > 1600000000LL * 1000000000LL && end >= start);
    LZ_CHECK_STR(attribute(span, "messaging.system"), "zeromq");
    LZ_CHECK_STR(attribute(span, "liberzmq.node"), node);
    LZ_CHECK(attribute(span, "messaging.message.id") && strlen(attribute(span, "messaging.message.id")) == 36);
}

static void check_failed(const lz_value_t *span, int code) {
    const lz_value_t *status = lz_value_get(span, "status");
    LZ_CHECK_INT(lz_value_find_int(status, "code", 0), 2);
    LZ_CHECK_STR(lz_value_find_string(status, "message", ""), lz_strerror(code));
    LZ_CHECK_STR(attribute(span, "error.type"), lz_error_name(code));
}

/* ---- the library's side ------------------------------------------------------ */

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int callback_spans, full_warnings, post_warnings;

static void on_span(const lz_span_t *span, void *arg) {
    (void)span, (void)arg;
    pthread_mutex_lock(&seen_lock);
    callback_spans++;
    pthread_mutex_unlock(&seen_lock);
}

static void on_log(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)arg;
    if (level != LZ_LOG_WARNING || strcmp(component, "otlp") != 0) return;
    pthread_mutex_lock(&seen_lock);
    full_warnings += strstr(message, "is full") != NULL;
    post_warnings += strstr(message, "cannot export") != NULL;
    pthread_mutex_unlock(&seen_lock);
}

static int seen(int *counter) {
    pthread_mutex_lock(&seen_lock);
    int n = *counter;
    pthread_mutex_unlock(&seen_lock);
    return n;
}

// exporting_context_with: tracing on, spans to endpoint, the callback and
// the log watched too; extra settings ("key=value") when not NULL.
static lz_context_t *exporting_context_with(const char *endpoint, const char *batch, const char *interval,
                                            const char *extra, const char *extra2) {
    char url[128], batch_key[64], interval_key[64];
    snprintf(url, sizeof url, "tracing.otlp_endpoint=%s", endpoint);
    snprintf(batch_key, sizeof batch_key, "tracing.otlp_batch=%s", batch);
    snprintf(interval_key, sizeof interval_key, "tracing.otlp_interval=%s", interval);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_retries=0", "tracing.enabled=true",
                                        "tracing.service_name=billing \"eu\"", url, batch_key, interval_key, extra,
                                        extra2);
    pthread_mutex_lock(&seen_lock);
    callback_spans = full_warnings = post_warnings = 0;
    pthread_mutex_unlock(&seen_lock);
    LZ_CHECK_INT(lz_context_on_span(ctx, on_span, NULL), LZ_OK);
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), on_log, NULL), LZ_OK);
    return ctx;
}

static lz_context_t *exporting_context(const char *endpoint, const char *batch, const char *interval) {
    return exporting_context_with(endpoint, batch, interval, NULL, NULL);
}

static lz_otlp_stats_t stats_of(lz_context_t *ctx) {
    lz_otlp_stats_t stats;
    memset(&stats, 0xff, sizeof stats);
    LZ_CHECK_INT(lz_context_otlp_stats(ctx, &stats), LZ_OK);
    return stats;
}

// accounted: the spans counted one way or another (queued ones are not).
static uint64_t accounted(lz_context_t *ctx) {
    lz_otlp_stats_t stats = stats_of(ctx);
    return stats.spans_exported + stats.spans_dropped + stats.spans_failed;
}

static int twice(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    *reply = lz_value_int(2 * lz_value_get_int(lz_message_value(request)));
    return 0;
}

// round_trips makes one request that works ("double") and one the server
// does not know ("nope"), each answered at once.
static void round_trips(lz_context_t *ctx) {
    lz_server_t *server = lz_server_new(ctx, "tcp://127.0.0.1:*");
    lz_node_set_name(lz_server_node(server), "doubler");
    lz_server_on(server, "double", twice, NULL);
    LZ_CHECK_INT(lz_server_start(server), LZ_OK);
    lz_client_t *client = lz_client_new(ctx, lz_node_endpoint(lz_server_node(server)));
    lz_node_set_name(lz_client_node(client), "asker");
    lz_value_t *data = lz_value_int(21), *reply = NULL;
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(lz_client_request(client, "double", data, &reply, 5000), LZ_OK);
    LZ_CHECK_INT(lz_value_get_int(reply), 42);
    lz_value_destroy(&reply);
    LZ_CHECK_INT(lz_client_request(client, "nope", NULL, &reply, 5000), LZ_EREMOTE);
    LZ_CHECK(lz_test_now_ms() - t0 < 2000 * LZ_TEST_SLOWDOWN); // whatever the collector does
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    lz_client_destroy(&client);
    lz_server_destroy(&server); // its spans end before it is gone
}

// push_tasks sends n tasks to a puller nobody serves: n PRODUCER spans.
static void push_tasks(lz_context_t *ctx, int n) {
    char endpoint[128];
    lz_pull_t *pull = lz_pull_new(ctx, NULL);
    lz_push_t *push = lz_push_new(ctx, NULL);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), lz_test_inproc_endpoint(endpoint, sizeof endpoint)), LZ_OK);
    LZ_CHECK_INT(lz_node_connect(lz_push_node(push), endpoint), LZ_OK);
    lz_value_t *data = lz_value_int(1);
    for (int i = 0; i < n; i++) LZ_CHECK_INT(lz_push_send(push, "job", data, 0), LZ_OK);
    lz_value_destroy(&data);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
}

// dead_port: a loopback port bound (so nobody else takes it) and, unless
// listening, refusing every connection; close the socket after.
static int dead_port(int *fd, bool listening) {
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_port = 0};
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof at;
    LZ_CHECK_INT(bind(*fd, (struct sockaddr *)&at, sizeof at), 0);
    if (listening) LZ_CHECK_INT(listen(*fd, 16), 0);
    LZ_CHECK_INT(getsockname(*fd, (struct sockaddr *)&at, &len), 0);
    return ntohs(at.sin_port);
}

/* ---- the cases ------------------------------------------------------------------- */

LZ_TEST(a_round_trip_reaches_the_collector_as_otlp_json) {
    collector_t col;
    collector_start(&col);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", col.port); // no path: /v1/traces
    lz_context_t *ctx = exporting_context(endpoint, "512", "20");
    round_trips(ctx);
    LZ_TEST_WAIT_UNTIL(received_count(&col) >= 4, 5000 * LZ_TEST_SLOWDOWN);
    lz_value_t *spans = received_spans(&col, "billing \"eu\"");
    LZ_CHECK_INT(lz_value_size(spans), 4);
    pthread_mutex_lock(&col.lock);
    LZ_CHECK_STR(col.path, "/v1/traces");
    LZ_CHECK_STR(col.method, "POST");
    LZ_CHECK_STR(col.content_type, "application/json");
    pthread_mutex_unlock(&col.lock);

    const lz_value_t *call = find_span(spans, 3, "double"), *served = find_span(spans, 2, "double");
    LZ_CHECK(call && served);
    if (call && served) {
        check_span(call, "asker");
        check_span(served, "doubler");
        LZ_CHECK(lz_value_get(call, "parentSpanId") == NULL); // the trace's first span
        LZ_CHECK_STR(lz_value_find_string(served, "traceId", ""), lz_value_find_string(call, "traceId", "-"));
        LZ_CHECK_STR(lz_value_find_string(served, "parentSpanId", ""), lz_value_find_string(call, "spanId", "-"));
        LZ_CHECK_STR(attribute(served, "messaging.message.id"), attribute(call, "messaging.message.id"));
        LZ_CHECK_INT(lz_value_find_int(lz_value_get(call, "status"), "code", 0), 1);
        LZ_CHECK(lz_value_get(lz_value_get(call, "status"), "message") == NULL);
        LZ_CHECK(attribute(call, "error.type") == NULL);
        LZ_CHECK(nanos(call, "startTimeUnixNano") <= nanos(served, "startTimeUnixNano"));
    }
    const lz_value_t *refused = find_span(spans, 3, "nope"), *unknown = find_span(spans, 2, "nope");
    LZ_CHECK(refused && unknown);
    if (refused && unknown) {
        check_span(refused, "asker");
        check_failed(refused, LZ_EREMOTE);
        check_failed(unknown, LZ_ENOTFOUND);
    }
    lz_value_destroy(&spans);
    LZ_TEST_WAIT_UNTIL(stats_of(ctx).spans_exported >= 4, 2000); // counted once curl has the answer
    lz_otlp_stats_t stats = stats_of(ctx);
    LZ_CHECK(stats.spans_exported == 4 && stats.spans_dropped == 0);
    LZ_CHECK(stats.spans_failed == 0 && stats.posts_failed == 0);
    LZ_CHECK_INT(seen(&callback_spans), 4); // lz_context_on_span still gets them
    char *text = lz_context_prometheus(ctx);
    LZ_CHECK(text && strstr(text, "\n# TYPE liberzmq_otlp_spans_total counter\n"
                                  "liberzmq_otlp_spans_total{outcome=\"exported\"} 4\n"
                                  "liberzmq_otlp_spans_total{outcome=\"dropped\"} 0\n"
                                  "liberzmq_otlp_spans_total{outcome=\"failed\"} 0\n"));
    LZ_CHECK(text && strstr(text, "\nliberzmq_otlp_posts_failed_total 0\n"));
    free(text);
    lz_context_destroy(&ctx);
    collector_stop(&col);
}

LZ_TEST(a_collector_that_refuses_costs_a_count_not_a_wait) {
    int fd;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/v1/traces", dead_port(&fd, false));
    lz_context_t *ctx = exporting_context(endpoint, "512", "20");
    round_trips(ctx); // checks the requests were not held up
    LZ_TEST_WAIT_UNTIL(stats_of(ctx).spans_failed >= 4, 5000 * LZ_TEST_SLOWDOWN);
    lz_otlp_stats_t stats = stats_of(ctx);
    LZ_CHECK(stats.spans_failed == 4 && stats.posts_failed >= 1 && stats.spans_exported == 0);
    LZ_TEST_WAIT_UNTIL(seen(&post_warnings) > 0, 2000); // logged just after the count
    LZ_CHECK_INT(seen(&post_warnings), 1);              // once, however many POSTs failed
    int64_t t0 = lz_test_now_ms();
    lz_context_destroy(&ctx);
    LZ_CHECK(lz_test_now_ms() - t0 < 1000 * LZ_TEST_SLOWDOWN);
    close(fd);
}

LZ_TEST(a_collector_that_never_answers_fills_the_queue_and_destroy_is_bounded) {
    int fd;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/v1/traces", dead_port(&fd, true));
    lz_context_t *ctx = exporting_context(endpoint, "1", "10"); // a queue of 4 spans
    push_tasks(ctx, 1);
    lz_test_sleep_ms(300 * LZ_TEST_SLOWDOWN); // its POST is under way, waiting for an answer
    push_tasks(ctx, 29);
    lz_otlp_stats_t stats = stats_of(ctx);
    LZ_CHECK(stats.spans_dropped == 25 && stats.spans_exported == 0);
    LZ_CHECK_INT(seen(&full_warnings), 1); // one burst, one warning
    LZ_CHECK_INT(seen(&callback_spans), 30);
    int64_t t0 = lz_test_now_ms();
    lz_context_destroy(&ctx); // the POST under way is abandoned when the flush's 3 s are up
    int64_t took = lz_test_now_ms() - t0;
    // Not a second later (before: when curl's progress callback, called
    // about once a second while it waits, next saw the deadline).
    LZ_CHECK(took >= 2900 && took < 3000 + 500 * LZ_TEST_SLOWDOWN);
    if (took >= 3000 + 500 * LZ_TEST_SLOWDOWN) fprintf(stderr, "  destroy took %lld ms\n", (long long)took);
    close(fd);
}

// A collector that refuses connections fails each POST at once, freeing
// room in the queue: spans ended faster than that are dropped in many
// short runs. They are all counted, and the warning comes at most once a
// minute (before: once per run, hundreds a second).
LZ_TEST(a_refusing_collector_under_load_warns_of_a_full_queue_once) {
    int fd;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/v1/traces", dead_port(&fd, false));
    lz_context_t *ctx = exporting_context(endpoint, "16", "1000"); // a queue of 64 spans
    lz_pub_t *pub = lz_pub_new(ctx, NULL); // no subscriber: a PRODUCER span a call, at once
    lz_value_t *data = lz_value_int(1);
    int published = 0;
    for (int64_t t0 = lz_test_now_ms(); lz_test_now_ms() - t0 < 1500;) {
        LZ_CHECK_INT(lz_pub_publish(pub, "t", data), LZ_OK);
        published++;
    }
    lz_value_destroy(&data);
    lz_pub_destroy(&pub);
    LZ_TEST_WAIT_UNTIL(accounted(ctx) == (uint64_t)published, 5000 * LZ_TEST_SLOWDOWN); // the queue drained
    lz_otlp_stats_t stats = stats_of(ctx);
    LZ_CHECK_INT(stats.spans_exported + stats.spans_dropped + stats.spans_failed, published);
    LZ_CHECK(stats.spans_dropped > 0 && stats.posts_failed > 1);
    char *text = lz_context_prometheus(ctx), line[96];
    snprintf(line, sizeof line, "\nliberzmq_otlp_spans_total{outcome=\"dropped\"} %llu\n",
             (unsigned long long)stats.spans_dropped);
    LZ_CHECK(text && strstr(text, line));
    free(text);
    LZ_CHECK_INT(seen(&full_warnings), 1);
    LZ_CHECK_INT(seen(&post_warnings), 1);
    if (seen(&full_warnings) != 1)
        fprintf(stderr, "  %d queue-full warnings, %llu spans dropped of %d\n", seen(&full_warnings),
                (unsigned long long)stats.spans_dropped, published);
    lz_context_destroy(&ctx);
    close(fd);
}

// A name server that never answers: getaddrinfo, which libcurl's resolver
// thread calls, waits for DEAF_NAME until released (or DEAF_FOR_MS pass);
// any other name is looked up as usual.
#define DEAF_NAME "collector.deaf-dns.test"
#define DEAF_FOR_MS 15000
static atomic_int deaf_lookups, deaf_answered;
static atomic_bool deaf_released;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    if (!node || strcmp(node, DEAF_NAME) != 0) {
        int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
        lz_test_next_function(&real, "getaddrinfo");
        return real(node, service, hints, res);
    }
    atomic_fetch_add(&deaf_lookups, 1);
    LZ_TEST_WAIT_UNTIL(atomic_load(&deaf_released), DEAF_FOR_MS);
    atomic_fetch_add(&deaf_answered, 1);
    return EAI_AGAIN;
}

// With a lookup of the collector's name hanging, lz_context_destroy still
// ends within its flush's 3 s: libcurl leaves the lookup to its thread
// (CURLOPT_QUICK_EXIT) where it waited for it to finish (before: as long
// as the name server took, DEAF_FOR_MS here).
LZ_TEST(destroy_is_bounded_while_dns_does_not_answer) {
    setenv("no_proxy", "*", 1); // so that the collector's name is the one looked up
    lz_context_t *ctx = exporting_context("http://" DEAF_NAME ":4318/v1/traces", "1", "10");
    push_tasks(ctx, 1);
    LZ_TEST_WAIT_UNTIL(atomic_load(&deaf_lookups) > 0, 3000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(atomic_load(&deaf_lookups) > 0);
    int64_t t0 = lz_test_now_ms();
    lz_context_destroy(&ctx);
    int64_t took = lz_test_now_ms() - t0;
    LZ_CHECK(took < 4500 * LZ_TEST_SLOWDOWN);
    if (took >= 4500 * LZ_TEST_SLOWDOWN) fprintf(stderr, "  destroy took %lld ms\n", (long long)took);
    atomic_store(&deaf_released, true); // the lookups left behind end before the program does
    LZ_TEST_WAIT_UNTIL(atomic_load(&deaf_answered) == atomic_load(&deaf_lookups), 5000);
    unsetenv("no_proxy");
}

LZ_TEST(destroy_flushes_the_queued_spans) {
    collector_t col;
    collector_start(&col);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/v1/traces", col.port);
    lz_context_t *ctx = exporting_context(endpoint, "512", "3600000"); // nothing posted before destroy
    push_tasks(ctx, 5);
    lz_test_sleep_ms(100);
    LZ_CHECK_INT(collector_posts(&col), 0);
    int64_t t0 = lz_test_now_ms();
    lz_context_destroy(&ctx);
    LZ_CHECK(lz_test_now_ms() - t0 < 2000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(collector_posts(&col), 1);
    lz_value_t *spans = received_spans(&col, "billing \"eu\"");
    LZ_CHECK_INT(lz_value_size(spans), 5);
    for (size_t i = 0; i < lz_value_size(spans); i++) {
        LZ_CHECK_INT(lz_value_find_int(lz_value_at(spans, i), "kind", 0), 4); // PRODUCER
        LZ_CHECK_STR(lz_value_find_string(lz_value_at(spans, i), "name", ""), "job");
    }
    lz_value_destroy(&spans);
    collector_stop(&col);
}

LZ_TEST(endpoints_that_are_not_http_urls_are_refused) {
    static const char *const bad[] = {"127.0.0.1:4318", "localhost:4318", "ftp://collector/v1/traces", "http://",
                                      "https://", "http://exa mple:4318"};
    lz_config_t *config = lz_config_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LZ_CHECK_INT(lz_config_set(config, "tracing.otlp_endpoint", bad[i]), LZ_ECONFIG);
        LZ_CHECK(strstr(lz_last_error(), "tracing.otlp_endpoint") && strstr(lz_last_error(), "http://"));
    }
    static const char *const good[] = {"", "http://127.0.0.1:4318", "http://collector:4318/v1/traces",
                                       "http://[::1]:4318/otlp/v1/traces", "https://collector:4318"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        LZ_CHECK_INT(lz_config_set(config, "tracing.otlp_endpoint", good[i]), LZ_OK);
    lz_config_destroy(&config);

    // From the environment, the context itself is refused.
    setenv("LIBERZMQ_TRACING__ENABLED", "1", 1);
    setenv("LIBERZMQ_TRACING__OTLP_ENDPOINT", "collector:4318", 1);
    lz_context_t *ctx = lz_context_new(NULL);
    LZ_CHECK(ctx == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "LIBERZMQ_TRACING__OTLP_ENDPOINT") != NULL);
    unsetenv("LIBERZMQ_TRACING__OTLP_ENDPOINT");
    unsetenv("LIBERZMQ_TRACING__ENABLED");
    lz_context_destroy(&ctx);

    // An endpoint without tracing.enabled exports nothing.
    ctx = LZ_TEST_CONTEXT("tracing.otlp_endpoint=http://127.0.0.1:9/v1/traces", "logging.target=none");
    lz_otlp_stats_t stats = stats_of(ctx);
    LZ_CHECK(stats.spans_exported == 0 && stats.spans_dropped == 0);
    LZ_CHECK(stats.spans_failed == 0 && stats.posts_failed == 0);
    LZ_CHECK_INT(lz_context_otlp_stats(NULL, &stats), LZ_EINVAL);
    LZ_CHECK_INT(lz_context_otlp_stats(ctx, NULL), LZ_EINVAL);
    lz_context_destroy(&ctx);
}

LZ_TEST(https_and_headers_reach_the_collector) {
    collector_t col;
    collector_start_tls(&col, true);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "https://127.0.0.1:%d", col.port);
    // A comma inside a value is percent-encoded; blanks around items go.
    lz_context_t *ctx = exporting_context_with(endpoint, "512", "20", "tracing.otlp_ca_file=" TLS_CERT,
                                               "tracing.otlp_headers=authorization=Bearer%20t0ken%2C1 , x-team = core ,");
    round_trips(ctx);
    LZ_TEST_WAIT_UNTIL(received_count(&col) >= 4, 5000 * LZ_TEST_SLOWDOWN);
    lz_value_t *spans = received_spans(&col, "billing \"eu\"");
    LZ_CHECK_INT(lz_value_size(spans), 4);
    lz_value_destroy(&spans);
    pthread_mutex_lock(&col.lock);
    LZ_CHECK_STR(col.path, "/v1/traces");
    LZ_CHECK_STR(col.content_type, "application/json");
    LZ_CHECK_STR(col.authorization, "Bearer t0ken,1");
    LZ_CHECK_STR(col.team, "core");
    pthread_mutex_unlock(&col.lock);
    lz_context_destroy(&ctx);

    // Without the CA file the system's CAs do not know the collector: its
    // certificate is refused, and the spans counted, not sent.
    ctx = exporting_context(endpoint, "512", "20");
    round_trips(ctx);
    LZ_TEST_WAIT_UNTIL(stats_of(ctx).spans_failed >= 4, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(stats_of(ctx).spans_exported == 0);
    lz_context_destroy(&ctx);
    LZ_CHECK_INT(received_count(&col), 4);
    collector_stop(&col);
}

LZ_TEST(headers_and_ca_files_are_checked) {
    static const char *const bad[] = {"novalue", "=x", "a b=c", "x=", "x=a%0Ab", "x=a%00b", "Content-Type=text/plain",
                                      "content-length=3", "a=b,c"};
    lz_config_t *config = lz_config_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LZ_CHECK_INT(lz_config_set(config, "tracing.otlp_headers", bad[i]), LZ_ECONFIG);
        LZ_CHECK(strstr(lz_last_error(), "tracing.otlp_headers") && strstr(lz_last_error(), "name=value"));
    }
    static const char *const good[] = {"", "a=b", " a = b , c=d%20e ,", ",,", "api-key=x=y"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        LZ_CHECK_INT(lz_config_set(config, "tracing.otlp_headers", good[i]), LZ_OK);
    LZ_CHECK_INT(lz_config_set(config, "tracing.enabled", "true"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(config, "logging.target", "none"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(config, "tracing.otlp_endpoint", "https://127.0.0.1:9"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(config, "tracing.otlp_ca_file", "/nonexistent/ca.pem"), LZ_OK);
    lz_context_t *ctx = lz_context_new(config);
    LZ_CHECK(ctx == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK_STR(lz_last_error(),
                 "otlp: cannot read tracing.otlp_ca_file '/nonexistent/ca.pem': No such file or directory");
    lz_context_destroy(&ctx);
    lz_config_destroy(&config);
}

/* ---- reloads ------------------------------------------------------------------- */

// reload_to reloads ctx with exporting_context's settings but endpoint
// ("" for none), service ("tracing.service_name=...") and interval, and
// extra ("key=value") when not NULL.
static int reload_to(lz_context_t *ctx, const char *endpoint, const char *service, const char *interval,
                     const char *extra) {
    char url[128], interval_key[64];
    snprintf(url, sizeof url, "tracing.otlp_endpoint=%s", endpoint);
    snprintf(interval_key, sizeof interval_key, "tracing.otlp_interval=%s", interval);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "zmq.request_retries=0", "tracing.enabled=true", service, url,
                                      "tracing.otlp_batch=512", interval_key, extra);
    int rc = lz_context_reload(ctx, cfg);
    lz_config_destroy(&cfg);
    return rc;
}

// collectors_start starts collectors a and b, their URLs into at_a and at_b (64 bytes).
static void collectors_start(collector_t *a, char *at_a, collector_t *b, char *at_b) {
    collector_start(a);
    collector_start(b);
    snprintf(at_a, 64, "http://127.0.0.1:%d", a->port);
    snprintf(at_b, 64, "http://127.0.0.1:%d", b->port);
}

static void check_service(collector_t *col, const char *service, size_t spans) {
    lz_value_t *received = received_spans(col, service);
    LZ_CHECK_INT(lz_value_size(received), spans);
    lz_value_destroy(&received);
}

LZ_TEST(a_reload_moves_the_spans_to_another_collector) {
    collector_t a, b;
    char at_a[64], at_b[64];
    collectors_start(&a, at_a, &b, at_b);
    lz_context_t *ctx = exporting_context(at_a, "512", "3600000"); // A's spans wait in its queue
    push_tasks(ctx, 3);
    LZ_CHECK_INT(collector_posts(&a), 0);

    // The spans queued for A still reach A, under the old service name;
    // those that end after the reload go to B under the new one.
    int64_t t0 = lz_test_now_ms();
    LZ_CHECK_INT(reload_to(ctx, at_b, "tracing.service_name=shipping", "20", NULL), LZ_OK);
    LZ_CHECK(lz_test_now_ms() - t0 < 1000 * LZ_TEST_SLOWDOWN);
    push_tasks(ctx, 2);
    LZ_TEST_WAIT_UNTIL(received_count(&a) == 3 && received_count(&b) == 2, 5000 * LZ_TEST_SLOWDOWN);
    check_service(&a, "billing \"eu\"", 3);
    check_service(&b, "shipping", 2);
    LZ_TEST_WAIT_UNTIL(stats_of(ctx).spans_exported == 5, 2000 * LZ_TEST_SLOWDOWN);
    lz_otlp_stats_t stats = stats_of(ctx); // the context's, summed over its exporters
    LZ_CHECK(stats.spans_exported == 5 && stats.spans_dropped == 0 && stats.spans_failed == 0);

    // Off by a reload: the spans go nowhere. On again: to A.
    LZ_CHECK_INT(reload_to(ctx, "", "tracing.service_name=shipping", "20", NULL), LZ_OK);
    push_tasks(ctx, 1);
    lz_test_sleep_ms(100);
    LZ_CHECK(received_count(&a) == 3 && received_count(&b) == 2);
    LZ_CHECK_INT(reload_to(ctx, at_a, "tracing.service_name=again", "20", NULL), LZ_OK);
    push_tasks(ctx, 1);
    LZ_TEST_WAIT_UNTIL(received_count(&a) == 4, 5000 * LZ_TEST_SLOWDOWN);

    // A CA file that cannot be read refuses the reload whole: A keeps the spans.
    LZ_CHECK_INT(reload_to(ctx, "https://127.0.0.1:9", "tracing.service_name=again", "20",
                           "tracing.otlp_ca_file=/nonexistent/ca.pem"), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "tracing.otlp_ca_file") != NULL);
    push_tasks(ctx, 1);
    LZ_TEST_WAIT_UNTIL(received_count(&a) == 5, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(received_count(&a), 5);
    LZ_TEST_WAIT_UNTIL(stats_of(ctx).spans_exported == 7, 2000 * LZ_TEST_SLOWDOWN);
    char *text = lz_context_prometheus(ctx);
    LZ_CHECK(text && strstr(text, "liberzmq_otlp_spans_total{outcome=\"exported\"} 7\n"));
    free(text);
    lz_context_destroy(&ctx);
    collector_stop(&a);
    collector_stop(&b);
}

typedef struct {
    lz_context_t *ctx;
    atomic_bool *stop;
    char endpoint[128]; // its own, named before the threads start
} span_maker_t;

// make_spans sends tasks to a puller nobody serves, a PRODUCER span each,
// until stopped (or a few hundred: under the queue's high water mark).
static void *make_spans(void *arg) {
    span_maker_t *m = arg;
    lz_pull_t *pull = lz_pull_new(m->ctx, NULL);
    lz_push_t *push = lz_push_new(m->ctx, NULL);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), m->endpoint), LZ_OK);
    LZ_CHECK_INT(lz_node_connect(lz_push_node(push), m->endpoint), LZ_OK);
    lz_value_t *data = lz_value_int(1);
    for (int sent = 0; sent < 400 && !atomic_load(m->stop); sent++) {
        LZ_CHECK_INT(lz_push_send(push, "job", data, 0), LZ_OK);
        if (sent % 5 == 0) lz_test_sleep_ms(1); // spread over the reloads
    }
    lz_value_destroy(&data);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    return NULL;
}

LZ_TEST(reloads_flip_the_exporter_while_threads_end_spans) {
    collector_t a, b;
    char at_a[64], at_b[64];
    collectors_start(&a, at_a, &b, at_b);
    lz_context_t *ctx = exporting_context(at_a, "512", "10");
    atomic_bool stop = false;
    span_maker_t makers[3];
    pthread_t threads[3];
    for (int t = 0; t < 3; t++) {
        makers[t] = (span_maker_t){.ctx = ctx, .stop = &stop};
        lz_test_inproc_endpoint(makers[t].endpoint, sizeof makers[t].endpoint);
        LZ_CHECK_INT(pthread_create(&threads[t], NULL, make_spans, &makers[t]), 0);
    }
    for (int i = 0; i < 24; i++) {
        const char *service = i % 3 ? "tracing.service_name=billing" : "tracing.service_name=other";
        LZ_CHECK_INT(reload_to(ctx, i % 2 ? at_a : at_b, service, "10", NULL), LZ_OK);
        lz_test_sleep_ms(3);
    }
    atomic_store(&stop, true);
    for (int t = 0; t < 3; t++) pthread_join(threads[t], NULL);
    // Every span ended went to one exporter or another and is counted
    // there: posted (and received), or dropped; none lost in a swap.
    uint64_t ended = (uint64_t)seen(&callback_spans);
    LZ_TEST_WAIT_UNTIL(accounted(ctx) == ended, 10000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK_INT(accounted(ctx), ended);
    lz_otlp_stats_t stats = stats_of(ctx);
    LZ_CHECK(stats.spans_exported > 0 && stats.spans_failed == 0);
    LZ_TEST_WAIT_UNTIL(received_count(&a) + received_count(&b) == stats.spans_exported, 2000);
    LZ_CHECK_INT(received_count(&a) + received_count(&b), stats.spans_exported);
    lz_context_destroy(&ctx);
    collector_stop(&a);
    collector_stop(&b);
}

LZ_TEST_MAIN(LZ_CASE(a_round_trip_reaches_the_collector_as_otlp_json),
             LZ_CASE(a_collector_that_refuses_costs_a_count_not_a_wait),
             LZ_CASE(a_collector_that_never_answers_fills_the_queue_and_destroy_is_bounded),
             LZ_CASE(a_refusing_collector_under_load_warns_of_a_full_queue_once),
             LZ_CASE(destroy_flushes_the_queued_spans), LZ_CASE(destroy_is_bounded_while_dns_does_not_answer),
             LZ_CASE(endpoints_that_are_not_http_urls_are_refused),
             LZ_CASE(https_and_headers_reach_the_collector), LZ_CASE(headers_and_ca_files_are_checked),
             LZ_CASE(a_reload_moves_the_spans_to_another_collector),
             LZ_CASE(reloads_flip_the_exporter_while_threads_end_spans))
