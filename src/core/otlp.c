/* OTLP/HTTP export of a context's spans (tracing.otlp_endpoint): OTLP's
 * JSON encoding (https://opentelemetry.io/docs/specs/otlp/) POSTed through
 * libcurl (a client we do not write). The thread that ends a span only
 * copies it into a bounded queue, or drops and counts it when the queue is
 * full: a slow or absent collector never holds up the messaging. One
 * thread of ours posts the queue in batches, when a batch is full or the
 * interval is up, and once more at destroy within a bounded time: a POST
 * runs on a curl multi handle, which destroy wakes to end it at the
 * deadline. A reload swaps another exporter into the context's slot; the
 * old one flushes the same way on its own thread, freed once no span uses
 * it. */
#include "core/otlp.h"

#include <ctype.h>
#include <errno.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/hex.h"
#include "core/log.h"
#include "core/node.h"
#include "core/ratelimit.h"
#include "core/textstream.h"
#include "core/thread.h"
#include "core/trace.h"
#include "liberzmq.h"

#if LIBCURL_VERSION_NUM < 0x074400
#error "liberzmq's OTLP exporter needs libcurl 7.68 or later (curl_multi_poll, curl_multi_wakeup)"
#endif

enum {
    QUEUE_BATCHES = 4,         // the queue holds this many batches
    CONNECT_TIMEOUT_MS = 2000, // a collector that does not answer the connection
    POST_TIMEOUT_MS = 5000,    // one POST, connection included
    FLUSH_MS = 3000,           // what destroy gives the spans still queued
    WARN_EVERY_MS = 60000,     // a warning that keeps coming (a collector down) is logged once a minute
};


struct lz_otlp {
    lz_logger_t *logger; // the context's, which outlives us
    char *service_name;
    char *extra_headers, *ca_file; // tracing.otlp_headers, tracing.otlp_ca_file
    char *url;
    size_t batch;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    // Under lock:
    lz_span_t *queue; // a ring of capacity spans, count of them from head
    size_t capacity, head, count;
    bool stopping;
    bool finished;      // the thread has posted its last batch: a span now is dropped
    lz_rate_limit_t drops; // the full queue's warnings, one a minute (WARN_EVERY_MS)
    lz_otlp_stats_t stats;
    // Set by retire (at destroy, or a reload replacing us), which then wakes
    // multi; read by the POST's wait: when the last flush has run out of
    // time (monotonic ms), 0 before.
    _Atomic int64_t give_up_ms;
    CURLM *multi; // runs our POSTs; curl_multi_wakeup is for any thread
    // The exporter thread's own:
    CURL *curl;
    struct curl_slist *headers;
    lz_span_t *sending;    // the batch being posted
    lz_rate_limit_t failures; // the failed POSTs' warnings, the same
    bool failing;             // the last POST failed
    char curl_error[CURL_ERROR_SIZE];
    // The slot's (lz_otlp_slot_t): spans being handed to us, and the list of
    // exporters a reload replaced, under the slot's lock.
    atomic_int users;
    lz_otlp_t *retired_next;
};

/* ---- the endpoint ------------------------------------------------------------ */

// curl_global_init is not for every thread to call at once on every
// libcurl; we call it once and leave it for the process's exit.
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status = CURLE_FAILED_INIT;
static void curl_init(void) { curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT); }

// tls_available: whether this libcurl speaks https.
static bool tls_available(void) { return (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_SSL) != 0; }

static bool scheme_allowed(const char *scheme) {
    return strcmp(scheme, "http") == 0 || (strcmp(scheme, "https") == 0 && tls_available());
}

// resolve_url parses text with libcurl's URL parser into *resolved, the
// URL to post to (curl_free it): CURLUE_OK, CURLUE_OUT_OF_MEMORY, or
// another code (*resolved NULL) unless text is http(s)://HOST[:PORT][/PATH].
// A URL without a path gets OTLP's /v1/traces, so http://host:4318 works.
static CURLUcode resolve_url(const char *text, char **resolved) {
    *resolved = NULL;
    pthread_once(&curl_once, curl_init);
    CURLU *url = curl_url();
    char *scheme = NULL, *host = NULL, *path = NULL;
    CURLUcode rc = url ? curl_url_set(url, CURLUPART_URL, text, 0) : CURLUE_OUT_OF_MEMORY;
    if (rc == CURLUE_OK) rc = curl_url_get(url, CURLUPART_SCHEME, &scheme, 0);
    if (rc == CURLUE_OK && !scheme_allowed(scheme)) rc = CURLUE_UNSUPPORTED_SCHEME;
    if (rc == CURLUE_OK) rc = curl_url_get(url, CURLUPART_HOST, &host, 0);
    if (rc == CURLUE_OK && !*host) rc = CURLUE_NO_HOST;
    if (rc == CURLUE_OK) rc = curl_url_get(url, CURLUPART_PATH, &path, 0);
    if (rc == CURLUE_OK && strcmp(path, "/") == 0) rc = curl_url_set(url, CURLUPART_PATH, "/v1/traces", 0);
    if (rc == CURLUE_OK) rc = curl_url_get(url, CURLUPART_URL, resolved, 0);
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_url_cleanup(url);
    return rc;
}

const char *lz__otlp_check_endpoint(const char *text) {
    char *url = NULL;
    bool ok = !*text || resolve_url(text, &url) == CURLUE_OK;
    curl_free(url);
    return ok ? NULL : "an http:// or https:// URL of an OTLP/HTTP collector (http://HOST:4318/v1/traces), or \"\"";
}

/* ---- the headers ----------------------------------------------------------------- */

// A header name is an HTTP token (RFC 9110, 5.6.2).
static bool token_char(unsigned char c) { return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c)); }

static void trim(const char **start, const char **end) {
    while (*start < *end && isspace((unsigned char)**start)) (*start)++;
    while (*end > *start && isspace((unsigned char)(*end)[-1])) (*end)--;
}

// unescape percent-decodes [p, end) into out (NULL: only checks), as
// curl_easy_unescape would (a '%' without two hex digits stays as it is),
// and returns the decoded length, or -1 when the value would hold a NUL,
// CR or LF (a header cut short, or another one smuggled in). Allocating
// nothing, the configuration's check cannot fail for want of memory.
static long unescape(const char *p, const char *end, char *out) {
    long n = 0;
    for (; p < end; n++) {
        char c = *p++;
        int high, low;
        if (c == '%' && end - p >= 2 && (high = lz__hex_digit(p[0])) >= 0 && (low = lz__hex_digit(p[1])) >= 0) {
            c = (char)(high << 4 | low);
            p += 2;
        }
        if (c == '\0' || c == '\r' || c == '\n') return -1;
        if (out) out[n] = c;
    }
    return n;
}

// header_line checks the item [start, end) ("name=value") and, when line
// is not NULL, makes it a "name: value" line there (free it). false when
// it is not one, or (*line NULL) out of memory.
static bool header_line(const char *start, const char *end, char **line) {
    const char *equals = memchr(start, '=', (size_t)(end - start));
    if (!equals) return false;
    const char *name_end = equals, *value = equals + 1;
    trim(&start, &name_end);
    trim(&value, &end);
    bool ok = name_end > start && value < end;
    for (const char *p = start; ok && p < name_end; p++) ok = token_char((unsigned char)*p);
    // The exporter's own headers stay its own.
    size_t name_len = (size_t)(name_end - start);
    ok = ok && !(name_len == 12 && strncasecmp(start, "content-type", 12) == 0) &&
         !(name_len == 14 && strncasecmp(start, "content-length", 14) == 0) && unescape(value, end, NULL) >= 0;
    if (!ok || !line) return ok;
    // "name: " and the value, which decoding never makes longer.
    if (!(*line = malloc(name_len + 2 + (size_t)(end - value) + 1))) return false;
    memcpy(*line, start, name_len);
    memcpy(*line + name_len, ": ", 2);
    (*line)[name_len + 2 + unescape(value, end, *line + name_len + 2)] = '\0';
    return true;
}

// add_headers appends text's headers to *list (when list is not NULL);
// false if an item is malformed or memory ran out. Empty items are skipped.
static bool add_headers(const char *text, struct curl_slist **list) {
    for (const char *item = text; *item;) {
        const char *end = item + strcspn(item, ",");
        const char *start = item, *stop = end;
        trim(&start, &stop);
        if (start < stop) {
            char *line = NULL;
            bool ok = header_line(start, stop, list ? &line : NULL);
            struct curl_slist *grown = line ? curl_slist_append(*list, line) : NULL;
            free(line);
            if (!ok || (list && !grown)) return false;
            if (list) *list = grown;
        }
        item = *end ? end + 1 : end;
    }
    return true;
}

const char *lz__otlp_check_headers(const char *text) {
    return add_headers(text, NULL) ? NULL
                                   : "HTTP headers as name=value items separated by commas, values percent-encoded, "
                                     "e.g. \"authorization=Bearer%20abc,x-team=core\" (not content-type or "
                                     "content-length), or \"\"";
}

/* ---- the request body ---------------------------------------------------------- */

typedef struct {
    const char *key, *value;
} attribute_t;

// write_attributes writes OTLP's KeyValue list; empty values are left out.
static void write_attributes(FILE *out, const attribute_t *attributes, size_t count) {
    fputc('[', out);
    for (size_t i = 0, written = 0; i < count; i++) {
        if (!*attributes[i].value) continue;
        if (written++) fputc(',', out);
        fputs("{\"key\":", out);
        lz__json_write_string(out, attributes[i].key);
        fputs(",\"value\":{\"stringValue\":", out);
        lz__json_write_string(out, attributes[i].value);
        fputs("}}", out);
    }
    fputc(']', out);
}

// write_span writes one Span. Ids are our own lower-case hex (trace.c), as
// OTLP's JSON wants them; 64-bit integers go as decimal strings.
static void write_span(FILE *out, const lz_span_t *span) {
    fprintf(out, "{\"traceId\":\"%s\",\"spanId\":\"%s\",", span->trace_id, span->span_id);
    if (span->parent_id[0]) fprintf(out, "\"parentSpanId\":\"%s\",", span->parent_id);
    fputs("\"name\":", out);
    lz__json_write_string(out, span->name);
    fprintf(out, ",\"kind\":%d,\"startTimeUnixNano\":\"%" PRId64 "\",\"endTimeUnixNano\":\"%" PRId64 "\"",
            (int)span->kind, span->start_ns, span->end_ns);
    bool ok = span->status == LZ_OK;
    const attribute_t attributes[] = {
        {"messaging.system", "zeromq"},
        {"messaging.message.id", span->message_id},
        {"liberzmq.node", span->node},
        {"error.type", ok ? "" : lz_error_name(span->status)},
    };
    fputs(",\"attributes\":", out);
    write_attributes(out, attributes, sizeof attributes / sizeof attributes[0]);
    if (ok) {
        fputs(",\"status\":{\"code\":1}}", out);
        return;
    }
    fputs(",\"status\":{\"code\":2,\"message\":", out);
    lz__json_write_string(out, lz_strerror(span->status));
    fputs("}}", out);
}

// write_request writes an ExportTraceServiceRequest of one resource (the
// service) and one scope (liberzmq).
static void write_request(FILE *out, const lz_otlp_t *otlp, size_t count) {
    const attribute_t resource[] = {
        {"service.name", otlp->service_name},
        {"telemetry.sdk.name", "liberzmq"},
        {"telemetry.sdk.version", lz_version()},
    };
    fputs("{\"resourceSpans\":[{\"resource\":{\"attributes\":", out);
    write_attributes(out, resource, sizeof resource / sizeof resource[0]);
    fputs("},\"scopeSpans\":[{\"scope\":{\"name\":\"liberzmq\",\"version\":", out);
    lz__json_write_string(out, lz_version());
    fputs("},\"spans\":[", out);
    for (size_t i = 0; i < count; i++) {
        if (i) fputc(',', out);
        write_span(out, &otlp->sending[i]);
    }
    fputs("]}]}]}", out);
}

/* ---- posting --------------------------------------------------------------------- */

// The collector's answer (an ExportTraceServiceResponse) is not read.
static size_t discard(char *data, size_t size, size_t count, void *self) {
    (void)data, (void)self;
    return size * count;
}

// request_headers: ours ("Expect:", none: no wait for a 100 Continue that
// a collector may never send), then tracing.otlp_headers.
static struct curl_slist *request_headers(const char *extra) {
    struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *both = list ? curl_slist_append(list, "Expect:") : NULL;
    if (both && add_headers(extra, &list)) return list;
    curl_slist_free_all(list);
    return NULL;
}

static bool curl_setup(lz_otlp_t *otlp) {
    otlp->multi = curl_multi_init();
    otlp->curl = curl_easy_init();
    otlp->headers = request_headers(otlp->extra_headers);
    if (!otlp->multi || !otlp->curl || !otlp->headers) return false;
    CURL *c = otlp->curl;
    bool ok = curl_easy_setopt(c, CURLOPT_URL, otlp->url) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK && // no SIGALRM: we are threaded
              curl_easy_setopt(c, CURLOPT_HTTPHEADER, otlp->headers) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_USERAGENT, "liberzmq/" LZ_VERSION_STRING) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ERRORBUFFER, otlp->curl_error) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)POST_TIMEOUT_MS) == CURLE_OK;
    if (ok && *otlp->ca_file) ok = curl_easy_setopt(c, CURLOPT_CAINFO, otlp->ca_file) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075700
    // A lookup that outlives the connect timeout (a DNS server that does not
    // answer) is left to its thread, not joined: else libcurl waits for
    // getaddrinfo (10 s and more) and the flush at destroy overruns its 3 s.
    if (ok) ok = curl_easy_setopt(c, CURLOPT_QUICK_EXIT, 1L) == CURLE_OK;
#endif
    return ok;
}

static const char out_of_time[] = "the flush at destroy ran out of time";

// wait_budget: how long the POST may wait for the collector before we look
// again: until the flush's deadline once there is one (<= 0: it has
// passed), else the POST's own timeout (curl_multi_poll wakes sooner for
// libcurl's timers, which end the POST then).
static int wait_budget(lz_otlp_t *otlp) {
    int64_t give_up = atomic_load(&otlp->give_up_ms);
    int64_t left = give_up ? give_up - lz__now_ms() : POST_TIMEOUT_MS;
    return left < POST_TIMEOUT_MS ? (int)left : POST_TIMEOUT_MS;
}

// outcome reads the result of the transfer that multi has finished.
static const char *outcome(CURLM *multi, CURLcode *result) {
    int left;
    for (CURLMsg *msg; (msg = curl_multi_info_read(multi, &left));) {
        if (msg->msg != CURLMSG_DONE) continue;
        *result = msg->data.result;
        return NULL;
    }
    return "libcurl reported no outcome";
}

// run drives the transfer added to multi until it ends (NULL, its result
// in *result) or the flush's deadline passes (out_of_time); else why not.
// retire's curl_multi_wakeup ends a wait at once for the deadline to count.
static const char *run(lz_otlp_t *otlp, CURLcode *result) {
    for (;;) {
        int running = 0, wait_ms;
        CURLMcode rc = curl_multi_perform(otlp->multi, &running);
        if (rc != CURLM_OK) return curl_multi_strerror(rc);
        if (!running) return outcome(otlp->multi, result);
        if ((wait_ms = wait_budget(otlp)) <= 0) return out_of_time;
        rc = curl_multi_poll(otlp->multi, NULL, 0, wait_ms, NULL);
        if (rc != CURLM_OK) return curl_multi_strerror(rc);
    }
}

// send_body POSTs body; NULL on a 2xx answer, else why not (in why).
static const char *send_body(lz_otlp_t *otlp, const char *body, size_t len, char *why, size_t why_size) {
    if (wait_budget(otlp) <= 0) return out_of_time;
    otlp->curl_error[0] = '\0';
    curl_easy_setopt(otlp->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(otlp->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = CURLE_OK;
    CURLMcode added = curl_multi_add_handle(otlp->multi, otlp->curl);
    if (added != CURLM_OK) return curl_multi_strerror(added);
    const char *left = run(otlp, &rc);
    curl_multi_remove_handle(otlp->multi, otlp->curl); // this ends a POST left under way
    if (left) return left;
    long status = 0;
    curl_easy_getinfo(otlp->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300) return NULL;
    if (rc == CURLE_OK) snprintf(why, why_size, "HTTP status %ld", status);
    else snprintf(why, why_size, "%s", otlp->curl_error[0] ? otlp->curl_error : curl_easy_strerror(rc));
    return why;
}

// warn_turn counts one more warning of limit's kind: whether to log it
// now, *count then how many there were since the last one logged (this
// one included).
static bool warn_turn(lz_rate_limit_t *limit, uint64_t *count) {
    uint64_t skipped;
    if (!lz__rate_limit_turn(limit, WARN_EVERY_MS, &skipped)) return false;
    *count = skipped + 1;
    return true;
}

// note_outcome counts a POST of count spans and logs failures: the first
// of a run, then once a minute while the collector stays unreachable.
static void note_outcome(lz_otlp_t *otlp, size_t count, const char *failure) {
    pthread_mutex_lock(&otlp->lock);
    if (failure) otlp->stats.spans_failed += count, otlp->stats.posts_failed++;
    else otlp->stats.spans_exported += count;
    pthread_mutex_unlock(&otlp->lock);
    if (!failure) {
        if (otlp->failing) LZ_LOG(otlp->logger, LZ_LOG_INFO, "otlp", "%s accepts spans again", otlp->url);
        otlp->failing = false;
        lz__rate_limit_rearm(&otlp->failures); // the next failure is news again
        return;
    }
    otlp->failing = true;
    uint64_t failed;
    if (!warn_turn(&otlp->failures, &failed)) return;
    LZ_LOG(otlp->logger, LZ_LOG_WARNING, "otlp",
           "cannot export %zu spans to %s: %s (%" PRIu64 " failed POSTs since the last such message; "
           "spans are not sent again)", count, otlp->url, failure, failed);
}

static void post(lz_otlp_t *otlp, size_t count) {
    char *body = NULL, why[CURL_ERROR_SIZE + 32];
    size_t len = 0;
    lz_text_sink_t sink;
    FILE *out = lz__text_open(&sink);
    if (out) {
        write_request(out, otlp, count);
        body = lz__text_close(out, &sink, &len);
    }
    note_outcome(otlp, count, body ? send_body(otlp, body, len, why, sizeof why) : "out of memory");
    free(body);
}

/* ---- the queue and the thread ---------------------------------------------------- */

// take moves up to a batch from the queue to sending; under lock.
static size_t take(lz_otlp_t *otlp) {
    size_t count = otlp->count < otlp->batch ? otlp->count : otlp->batch;
    for (size_t i = 0; i < count; i++) otlp->sending[i] = otlp->queue[(otlp->head + i) % otlp->capacity];
    otlp->head = (otlp->head + count) % otlp->capacity;
    otlp->count -= count;
    return count;
}

// exporter_main posts a batch when one is full, when the interval is up
// with spans queued, and at the stop until the queue is empty.
static void *exporter_main(void *self) {
    lz_otlp_t *otlp = self;
    int64_t due = lz__now_ms() + otlp->interval_ms;
    pthread_mutex_lock(&otlp->lock);
    for (;;) {
        while (!otlp->stopping && otlp->count < otlp->batch && lz__now_ms() < due)
            lz__cond_wait_until(&otlp->wake, &otlp->lock, due);
        if (otlp->stopping && otlp->count == 0) break;
        size_t count = take(otlp);
        pthread_mutex_unlock(&otlp->lock);
        if (count) post(otlp, count);
        due = lz__now_ms() + otlp->interval_ms;
        pthread_mutex_lock(&otlp->lock);
    }
    // A span whose thread took the exporter before a reload replaced it may
    // still come: it is dropped and counted, as a full queue's are.
    otlp->finished = true;
    pthread_mutex_unlock(&otlp->lock);
    return NULL;
}

void lz__otlp_enqueue(lz_otlp_t *otlp, const lz_span_t *span) {
    uint64_t dropped = 0;
    pthread_mutex_lock(&otlp->lock);
    bool queued = !otlp->finished && otlp->count < otlp->capacity;
    if (queued) {
        otlp->queue[(otlp->head + otlp->count++) % otlp->capacity] = *span;
        if (otlp->count == otlp->batch) pthread_cond_signal(&otlp->wake);
    } else {
        otlp->stats.spans_dropped++;
    }
    // A full queue refills and overflows again as soon as a POST fails,
    // at once with a collector that refuses: one warning a minute. A span
    // after the last batch says nothing of the collector: not logged.
    bool warn = !queued && !otlp->finished && warn_turn(&otlp->drops, &dropped);
    pthread_mutex_unlock(&otlp->lock);
    if (warn)
        LZ_LOG(otlp->logger, LZ_LOG_WARNING, "otlp",
               "the queue of %zu spans for %s is full (a slow or unreachable collector?): spans are dropped "
               "until it drains (%" PRIu64 " dropped since the last such message)", otlp->capacity, otlp->url,
               dropped);
}

// stats_add adds otlp's counters to *sum.
static void stats_add(lz_otlp_stats_t *sum, lz_otlp_t *otlp) {
    pthread_mutex_lock(&otlp->lock);
    sum->spans_exported += otlp->stats.spans_exported;
    sum->spans_dropped += otlp->stats.spans_dropped;
    sum->spans_failed += otlp->stats.spans_failed;
    sum->posts_failed += otlp->stats.posts_failed;
    pthread_mutex_unlock(&otlp->lock);
}

static void otlp_free(lz_otlp_t *otlp) {
    if (otlp->curl) curl_easy_cleanup(otlp->curl); // out of multi: send_body always removes it
    if (otlp->multi) curl_multi_cleanup(otlp->multi);
    curl_slist_free_all(otlp->headers);
    curl_free(otlp->url);
    free(otlp->service_name);
    free(otlp->extra_headers);
    free(otlp->ca_file);
    free(otlp->queue);
    free(otlp->sending);
    free(otlp);
}

// locks_init sets up the lock and a condition timed on the monotonic clock.
static bool locks_init(lz_otlp_t *otlp) {
    bool ok = lz__cond_init_monotonic(&otlp->wake) == 0;
    if (ok) pthread_mutex_init(&otlp->lock, NULL);
    return ok;
}

lz_otlp_t *lz__otlp_start(const lz_settings_t *settings, lz_logger_t *logger) {
    lz_otlp_t *otlp = calloc(1, sizeof *otlp);
    if (!otlp) return lz__fail_null(LZ_ENOMEM, "otlp: out of memory");
    otlp->logger = logger;
    otlp->service_name = strdup(settings->service_name);
    otlp->extra_headers = strdup(settings->otlp_headers);
    otlp->ca_file = strdup(settings->otlp_ca_file);
    otlp->batch = (size_t)settings->otlp_batch;
    otlp->interval_ms = settings->otlp_interval;
    otlp->capacity = otlp->batch * QUEUE_BATCHES;
    atomic_init(&otlp->give_up_ms, 0);
    atomic_init(&otlp->users, 0);
    CURLUcode url_rc = resolve_url(settings->otlp_endpoint, &otlp->url);
    otlp->queue = calloc(otlp->capacity, sizeof *otlp->queue);
    otlp->sending = calloc(otlp->batch, sizeof *otlp->sending);
    int rc = !otlp->service_name || !otlp->extra_headers || !otlp->ca_file || url_rc == CURLUE_OUT_OF_MEMORY
                 ? lz__fail(LZ_ENOMEM, "otlp: out of memory")
             : !otlp->url ? lz__fail(LZ_ECONFIG, "otlp: '%s' is not an http(s):// URL", settings->otlp_endpoint)
             : *otlp->ca_file && access(otlp->ca_file, R_OK) != 0
                 ? lz__fail(LZ_ECONFIG, "otlp: cannot read tracing.otlp_ca_file '%s': %s", otlp->ca_file,
                            strerror(errno))
             : !otlp->queue || !otlp->sending || curl_init_status != CURLE_OK || !curl_setup(otlp)
                 ? lz__fail(LZ_ENOMEM, "otlp: cannot set up libcurl (out of memory?)")
                 : LZ_OK;
    if (rc == LZ_OK && !locks_init(otlp)) rc = lz__fail(LZ_ENOMEM, "otlp: cannot make a condition variable");
    int err = rc == LZ_OK ? lz__thread_start(&otlp->thread, exporter_main, otlp) : 0;
    if (err) {
        pthread_cond_destroy(&otlp->wake);
        pthread_mutex_destroy(&otlp->lock);
        rc = lz__thread_fail(err, "otlp: exporter");
    }
    if (rc != LZ_OK) {
        otlp_free(otlp);
        return NULL;
    }
    LZ_LOG(logger, LZ_LOG_DEBUG, "otlp", "exporting spans to %s (batches of %zu, every %d ms at most)", otlp->url,
           otlp->batch, otlp->interval_ms);
    return otlp;
}

// retire asks the thread to post what is queued, FLUSH_MS at most, and
// end. A POST under way waits in curl_multi_poll: woken, it heeds the
// deadline from now on (else it would see it at its next wait_budget,
// after its own timeout).
static void retire(lz_otlp_t *otlp) {
    pthread_mutex_lock(&otlp->lock);
    otlp->stopping = true;
    atomic_store(&otlp->give_up_ms, lz__now_ms() + FLUSH_MS);
    pthread_cond_signal(&otlp->wake);
    pthread_mutex_unlock(&otlp->lock);
    curl_multi_wakeup(otlp->multi);
}

// release logs the final counters of an exporter whose thread was joined,
// and frees it.
static void release(lz_otlp_t *otlp) {
    lz_otlp_stats_t stats = otlp->stats;
    LZ_LOG(otlp->logger, LZ_LOG_DEBUG, "otlp",
           "stopped: %" PRIu64 " spans exported, %" PRIu64 " dropped, %" PRIu64 " failed", stats.spans_exported,
           stats.spans_dropped, stats.spans_failed);
    pthread_cond_destroy(&otlp->wake);
    pthread_mutex_destroy(&otlp->lock);
    otlp_free(otlp);
}

void lz__otlp_stop(lz_otlp_t **otlp_p) {
    if (!otlp_p || !*otlp_p) return;
    retire(*otlp_p);
    pthread_join((*otlp_p)->thread, NULL);
    release(*otlp_p);
    *otlp_p = NULL;
}

bool lz__otlp_same(const lz_settings_t *a, const lz_settings_t *b) {
    bool a_on = a->tracing && *a->otlp_endpoint, b_on = b->tracing && *b->otlp_endpoint;
    if (!a_on || !b_on) return a_on == b_on;
    return strcmp(a->otlp_endpoint, b->otlp_endpoint) == 0 && strcmp(a->service_name, b->service_name) == 0 &&
           strcmp(a->otlp_headers, b->otlp_headers) == 0 && strcmp(a->otlp_ca_file, b->otlp_ca_file) == 0 &&
           a->otlp_batch == b->otlp_batch && a->otlp_interval == b->otlp_interval;
}

/* ---- the context's exporter, replaced by reloads ------------------------------- */

void lz__otlp_slot_init(lz_otlp_slot_t *slot) {
    memset(slot, 0, sizeof *slot);
    pthread_mutex_init(&slot->lock, NULL);
    atomic_init(&slot->current, NULL);
}

// ended: the thread has posted its last batch (it returns right after).
static bool ended(lz_otlp_t *otlp) {
    pthread_mutex_lock(&otlp->lock);
    bool finished = otlp->finished;
    pthread_mutex_unlock(&otlp->lock);
    return finished;
}

// reap_locked takes off the retired list the exporters whose thread has
// ended and to which no span is being handed (with wait: all of them,
// waiting for their flush), joins them, counts them in gone, and returns
// them for release_all once the lock is dropped: their last log line may
// reach a callback that reads the counters. A retired exporter gets no new
// user (users grow only under the lock, while it is current), so 0 stays 0.
static lz_otlp_t *reap_locked(lz_otlp_slot_t *slot, bool wait) {
    lz_otlp_t *done = NULL;
    for (lz_otlp_t **link = &slot->retired; *link;) {
        lz_otlp_t *otlp = *link;
        if (!wait && (atomic_load_explicit(&otlp->users, memory_order_acquire) || !ended(otlp))) {
            link = &otlp->retired_next;
            continue;
        }
        *link = otlp->retired_next;
        pthread_join(otlp->thread, NULL); // its counters are final
        stats_add(&slot->gone, otlp);
        otlp->retired_next = done;
        done = otlp;
    }
    return done;
}

static void release_all(lz_otlp_t *done) {
    while (done) {
        lz_otlp_t *otlp = done;
        done = otlp->retired_next;
        release(otlp);
    }
}

void lz__otlp_slot_swap(lz_otlp_slot_t *slot, lz_otlp_t *next) {
    pthread_mutex_lock(&slot->lock);
    lz_otlp_t *old = atomic_load_explicit(&slot->current, memory_order_relaxed);
    atomic_store_explicit(&slot->current, next, memory_order_relaxed);
    slot->ever = slot->ever || next;
    if (old) {
        retire(old);
        old->retired_next = slot->retired;
        slot->retired = old;
    }
    lz_otlp_t *done = reap_locked(slot, false);
    pthread_mutex_unlock(&slot->lock);
    release_all(done);
}

void lz__otlp_slot_enqueue(lz_otlp_slot_t *slot, const lz_span_t *span) {
    if (!atomic_load_explicit(&slot->current, memory_order_relaxed)) return; // no exporter: no lock either
    pthread_mutex_lock(&slot->lock);
    lz_otlp_t *otlp = atomic_load_explicit(&slot->current, memory_order_relaxed);
    if (otlp) atomic_fetch_add_explicit(&otlp->users, 1, memory_order_relaxed);
    pthread_mutex_unlock(&slot->lock);
    if (!otlp) return;
    lz__otlp_enqueue(otlp, span);
    atomic_fetch_sub_explicit(&otlp->users, 1, memory_order_release); // done with it: a reap may free it
}

bool lz__otlp_slot_stats(lz_otlp_slot_t *slot, lz_otlp_stats_t *out) {
    pthread_mutex_lock(&slot->lock);
    *out = slot->gone;
    for (lz_otlp_t *otlp = slot->retired; otlp; otlp = otlp->retired_next) stats_add(out, otlp);
    lz_otlp_t *current = atomic_load_explicit(&slot->current, memory_order_relaxed);
    if (current) stats_add(out, current);
    bool ever = slot->ever;
    pthread_mutex_unlock(&slot->lock);
    return ever;
}

void lz__otlp_slot_fini(lz_otlp_slot_t *slot) {
    lz__otlp_slot_swap(slot, NULL);
    pthread_mutex_lock(&slot->lock);
    lz_otlp_t *done = reap_locked(slot, true);
    pthread_mutex_unlock(&slot->lock);
    release_all(done);
    pthread_mutex_destroy(&slot->lock);
}
