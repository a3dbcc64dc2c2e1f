/* liberzmq tracing: W3C Trace Context across services, spans reported to you.
 *
 * With tracing.enabled, every request a client sends and every task a
 * pusher sends carries a "traceparent" key in its envelope
 * ("00-<trace id>-<span id>-01", https://www.w3.org/TR/trace-context/),
 * every message a publisher sends and every request a dealer sends carries
 * it in a "traceparent=..." frame after the payload (unless
 * tracing.extension_frames is off), and every node records a span for what
 * it does: the client's or dealer's request (CLIENT, from the call to its
 * outcome, retries included), the server's or router's handling (SERVER),
 * the pusher's or publisher's send (PRODUCER), a puller's or a
 * subscriber's handler (CONSUMER). A span started under another one, a
 * request made from inside a handler for one, belongs to the same trace as
 * its child; an incoming traceparent (from a Python service, or any
 * W3C-speaking peer) makes the receiving span its child.
 *
 * Finished spans go to the function set with lz_context_on_span (to feed
 * an OpenTelemetry SDK, a file, a test), with tracing.log to the context's
 * logger (component "trace", one INFO record per span), and with
 * tracing.otlp_endpoint to an OpenTelemetry collector over OTLP/HTTP (JSON),
 * posted in batches by a thread of the context's (docs/tracing.md). */
#ifndef LIBERZMQ_TRACE_H
#define LIBERZMQ_TRACE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_context lz_context_t;

// A finished span, read-only, valid during the lz_span_fn call only.
typedef struct lz_span lz_span_t;

// Span kinds, numbered as OpenTelemetry's (OTLP) SpanKind.
typedef enum lz_span_kind {
    LZ_SPAN_INTERNAL = 1,
    LZ_SPAN_SERVER = 2,   // a server handling a request
    LZ_SPAN_CLIENT = 3,   // a client's request, until its reply or failure
    LZ_SPAN_PRODUCER = 4, // a task sent
    LZ_SPAN_CONSUMER = 5  // a task's or a published message's handler
} lz_span_kind_t;

// lz_span_fn receives each span as it ends, on the thread that ended it
// (a client's I/O thread, a worker, the caller's): keep it short, and
// thread safe when several nodes or workers report at once.
typedef void (*lz_span_fn)(const lz_span_t *span, void *arg);

// lz_context_on_span sets the function (NULL: none) that receives every span
// the context's nodes finish; arg is passed along, not owned. Spans exist
// only with tracing.enabled. LZ_EINVAL if ctx is NULL. Thread safe: a span
// finishing meanwhile goes to the old function or the new one, and when it
// returns, the old function is running on no other thread and will not be
// called again, so its arg may be freed. For that it waits for the calls
// in progress to return: the span function must not wait for a thread that
// is calling lz_context_on_span. Called from inside the span function, it
// does not wait for the call it is in (on the same thread, still running
// the old function when it returns: the guarantee covers other threads
// only), nor for other threads' calls that are themselves inside
// lz_context_on_span.
int lz_context_on_span(lz_context_t *ctx, lz_span_fn fn, void *arg);

// Span fields. Strings are borrowed from the span. A NULL span reads as
// empty ("" / 0). The name, node and message id keep up to 63, 63 and 39
// bytes, cut between characters (UTF-8 in, UTF-8 out).
// The operation: the request's action, the task's type, the message's topic.
const char *lz_span_name(const lz_span_t *span);
lz_span_kind_t lz_span_kind(const lz_span_t *span);
const char *lz_span_trace_id(const lz_span_t *span);  // 32 lowercase hex digits
const char *lz_span_id(const lz_span_t *span);        // 16 lowercase hex digits
const char *lz_span_parent_id(const lz_span_t *span); // 16 hex digits, "" for a trace's first span
// lz_span_traceparent: "00-<trace id>-<span id>-01", as sent on the wire.
const char *lz_span_traceparent(const lz_span_t *span);
const char *lz_span_node(const lz_span_t *span);       // the node's name (lz_node_set_name)
const char *lz_span_message_id(const lz_span_t *span); // request_id or task_id, "" when none
int64_t lz_span_start_ns(const lz_span_t *span);       // wall clock, ns since the Unix epoch
// lz_span_end_ns: the start plus the duration the monotonic clock measured,
// so never before the start, even if the wall clock stepped meanwhile.
int64_t lz_span_end_ns(const lz_span_t *span);
// lz_span_status: LZ_OK, or the error the operation ended with (the
// request's LZ_ETIMEOUT or LZ_EREMOTE, the handler's failure...).
int lz_span_status(const lz_span_t *span);

// What the context's OTLP exporter (tracing.otlp_endpoint) has done so far.
typedef struct lz_otlp_stats {
    uint64_t spans_exported; // in POSTs the collector accepted (HTTP 2xx)
    uint64_t spans_dropped;  // turned away by a full queue, never posted
    uint64_t spans_failed;   // in POSTs that failed or whose body could not be built (out of memory),
                             // or still queued when the flush at destroy ran out of time
    uint64_t posts_failed;   // POSTs that failed (no connection, a timeout, a status other than 2xx),
                             // batches whose body could not be built (never posted cut short),
                             // and batches the flush at destroy had no time left for
} lz_otlp_stats_t;

// lz_context_otlp_stats copies the exporter's counters into *out, summed
// over every exporter the context has had (a reload that changes
// tracing.otlp_* replaces it); all zero when it never had one. Failed
// POSTs are not retried: their spans count as failed. LZ_EINVAL if ctx or
// out is NULL. Thread safe.
int lz_context_otlp_stats(lz_context_t *ctx, lz_otlp_stats_t *out);

// lz_trace_current returns the traceparent of the span the calling thread
// is inside (while a liberzmq handler runs on it, or what lz_trace_adopt
// set), to pass on to other systems; NULL when none. Borrowed: valid until
// that span ends or the thread adopts another. Thread-local.
const char *lz_trace_current(void);

// lz_trace_adopt makes traceparent (a W3C traceparent header, version 00)
// the parent of the spans the calling thread starts from now on outside
// handlers, continuing a trace that came from elsewhere (an HTTP request's
// header); NULL forgets it. LZ_EINVAL (with the reason) for a malformed
// value: wrong length or separators, upper-case or non-hex digits, an
// all-zero trace or parent id, version ff. Thread-local.
int lz_trace_adopt(const char *traceparent);

#ifdef __cplusplus
}
#endif
#endif
