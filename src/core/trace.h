/* Internal: spans and W3C trace context (include/liberzmq/trace.h). A
 * span lives where the work it times lives (a client's call, a server's
 * job, a send's stack frame) and is reported to the context's sinks when
 * it ends. With tracing off, lz__span_begin leaves the span inactive and
 * everything else does nothing: one flag test on each path. */
#ifndef LZ_CORE_TRACE_H
#define LZ_CORE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "core/node.h"
#include "liberzmq/log.h"
#include "liberzmq/message.h"
#include "liberzmq/trace.h"

#define LZ_TRACEPARENT_LEN 55 // "00-" + 32 + "-" + 16 + "-01"

struct lz_span {
    bool active;
    lz_span_kind_t kind;
    int status;
    int64_t start_ns, end_ns; // wall clock; end_ns is start_ns plus the monotonic clock's duration
    int64_t start_mono_ns;    // the monotonic clock at start_ns
    lz_context_t *ctx;
    char name[64];
    char node[64];
    char message_id[40];
    char trace_id[33];
    char parent_id[17];
    // The span's own traceparent, which holds its span id at [36, 52).
    char traceparent[LZ_TRACEPARENT_LEN + 1];
    char span_id[17];
};

// lz__traceparent_check returns NULL for a usable traceparent (NUL-
// terminated), else why not: the one validator of incoming traceparents,
// envelope keys and extension frames alike.
const char *lz__traceparent_check(const char *text);

// lz__span_begin starts span for node's work named name (cut to 63 bytes
// by lz__copy_text), a child of remote (an incoming traceparent; NULL or
// malformed: none), else of the calling thread's current span, else of
// what it adopted, else the first of a new trace. Inactive unless node's context
// has tracing.enabled, which costs the untraced path one test.
void lz__span_start(lz_span_t *span, const lz_node_t *node, lz_span_kind_t kind, const char *name,
                    const char *remote);
static inline void lz__span_begin(lz_span_t *span, const lz_node_t *node, lz_span_kind_t kind, const char *name,
                                  const char *remote) {
    span->active = LZ_LIVE(node->live, tracing);
    if (span->active) lz__span_start(span, node, kind, name, remote);
}

// lz__span_begin_message is lz__span_begin for a received message: named
// by its topic, task type or action, with its id, and a child of the
// traceparent its envelope carries.
void lz__span_start_message(lz_span_t *span, const lz_node_t *node, lz_span_kind_t kind, const lz_message_t *msg);
static inline void lz__span_begin_message(lz_span_t *span, const lz_node_t *node, lz_span_kind_t kind,
                                          const lz_message_t *msg) {
    span->active = LZ_LIVE(node->live, tracing);
    if (span->active) lz__span_start_message(span, node, kind, msg);
}

// lz__span_traceparent: the traceparent to send for span, NULL if inactive.
static inline const char *lz__span_traceparent(const lz_span_t *span) {
    return span->active ? span->traceparent : (const char *)0;
}

// lz__span_set_message_id records the request or task id (truncated).
void lz__span_set_message_id(lz_span_t *span, const char *id);

// lz__span_end stamps the end and status and reports the span to its
// context's sinks, once; an inactive span is left alone.
void lz__span_finish(lz_span_t *span, int status);
static inline void lz__span_end(lz_span_t *span, int status) {
    if (span->active) lz__span_finish(span, status);
}

// lz__trace_enter makes an active span the calling thread's current span
// (while its handler runs) and returns the one it replaces, which
// lz__trace_leave(span, previous) puts back.
const lz_span_t *lz__trace_swap(const lz_span_t *span);
static inline const lz_span_t *lz__trace_enter(const lz_span_t *span) {
    return span->active ? lz__trace_swap(span) : (const lz_span_t *)0;
}
static inline void lz__trace_leave(const lz_span_t *span, const lz_span_t *previous) {
    if (span->active) lz__trace_swap(previous);
}

// lz__span_log writes span as one INFO record of component "trace".
void lz__span_log(lz_logger_t *logger, const lz_span_t *span);

// lz__context_report_span (context.c) hands span to the context's span
// function and log sink.
void lz__context_report_span(lz_context_t *ctx, const lz_span_t *span);

#endif
