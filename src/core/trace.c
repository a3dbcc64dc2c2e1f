/* Spans and W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * ids, the traceparent text, the thread's current span, and the public
 * readers. Reporting a finished span is the context's (context.c). */
#include <string.h>
#include <time.h>

#include "core/context.h"
#include "core/envelope.h"
#include "core/error.h"
#include "core/node.h"
#include "core/trace.h"
#include "liberzmq/log.h"

// The span whose handler runs on this thread, and the parent a thread
// adopted (lz_trace_adopt) for spans it starts outside handlers.
static _Thread_local const lz_span_t *current;
static _Thread_local char adopted[LZ_TRACEPARENT_LEN + 1];

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// random_hex writes 16 hex digits of a random, nonzero 64-bit number.
static void random_hex(char out[16]) {
    uint64_t v;
    do v = lz__random64();
    while (v == 0);
    lz__hex64(v, out);
}

static bool hex_field(const char *text, size_t len, bool nonzero) {
    bool zero = true;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        zero = zero && c == '0';
    }
    return !(nonzero && zero);
}

// A later version may append fields after a '-': its first 55 characters
// still read as version 00's.
const char *lz__traceparent_check(const char *text) {
    size_t len = strlen(text);
    if (len < LZ_TRACEPARENT_LEN || (len > LZ_TRACEPARENT_LEN && text[LZ_TRACEPARENT_LEN] != '-'))
        return "a traceparent is 55 characters: 00-<32 hex>-<16 hex>-<2 hex>";
    if (text[2] != '-' || text[35] != '-' || text[52] != '-') return "the fields are separated by '-'";
    if (!hex_field(text, 2, false) || !memcmp(text, "ff", 2)) return "the version is 2 lower-case hex digits, not ff";
    if (!memcmp(text, "00", 2) && len != LZ_TRACEPARENT_LEN) return "version 00 has exactly 55 characters";
    if (!hex_field(text + 3, 32, true)) return "the trace id is 32 lower-case hex digits, not all zero";
    if (!hex_field(text + 36, 16, true)) return "the parent id is 16 lower-case hex digits, not all zero";
    if (!hex_field(text + 53, 2, false)) return "the flags are 2 lower-case hex digits";
    return NULL;
}

// parent_of picks the span's parent traceparent, or NULL for a new trace.
static const char *parent_of(const char *remote) {
    if (remote && !lz__traceparent_check(remote)) return remote;
    if (current) return current->traceparent;
    return adopted[0] ? adopted : NULL;
}

void lz__span_start(lz_span_t *span, const lz_node_t *node, lz_span_kind_t kind, const char *name,
                    const char *remote) {
    span->kind = kind;
    span->status = LZ_OK;
    span->ctx = node->ctx;
    span->start_ns = clock_ns(CLOCK_REALTIME);
    span->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
    span->end_ns = 0;
    span->message_id[0] = '\0';
    lz__copy_text(span->name, sizeof span->name, name);
    lz__copy_text(span->node, sizeof span->node, node->name);
    const char *parent = parent_of(remote);
    char *tp = span->traceparent; // 00-<trace id>-<span id>-01
    memcpy(tp, "00-", 3);
    if (parent) {
        memcpy(tp + 3, parent + 3, 32);
        memcpy(span->parent_id, parent + 36, 16);
        span->parent_id[16] = '\0';
    } else {
        random_hex(tp + 3);
        random_hex(tp + 19);
        span->parent_id[0] = '\0';
    }
    tp[35] = '-';
    random_hex(tp + 36);
    memcpy(tp + 52, "-01", 4); // sampled: we record every span
    memcpy(span->trace_id, tp + 3, 32);
    span->trace_id[32] = '\0';
    memcpy(span->span_id, tp + 36, 16);
    span->span_id[16] = '\0';
}

void lz__span_set_message_id(lz_span_t *span, const char *id) {
    if (span->active) lz__copy_text(span->message_id, sizeof span->message_id, id);
}

// A span starts at a wall-clock time (exporters need epoch times) and
// lasts what the monotonic clock measured: a step of the wall clock
// meanwhile (NTP, an operator) cannot make it end before it started.
void lz__span_finish(lz_span_t *span, int status) {
    span->end_ns = span->start_ns + (clock_ns(CLOCK_MONOTONIC) - span->start_mono_ns);
    span->status = status;
    lz__context_report_span(span->ctx, span);
    span->active = false; // reported once
}

void lz__span_start_message(lz_span_t *span, const lz_node_t *node, lz_span_kind_t kind, const lz_message_t *msg) {
    const char *remote = lz_value_find_string(lz_message_envelope(msg), "traceparent", NULL);
    lz__span_start(span, node, kind, lz_message_topic(msg), remote);
    lz__span_set_message_id(span, lz_message_id(msg));
}

const lz_span_t *lz__trace_swap(const lz_span_t *span) {
    const lz_span_t *previous = current;
    current = span;
    return previous;
}

static const char *kind_name(lz_span_kind_t kind) {
    static const char *const names[] = {"internal", "server", "client", "producer", "consumer"};
    return kind >= LZ_SPAN_INTERNAL && kind <= LZ_SPAN_CONSUMER ? names[kind - 1] : "internal";
}

void lz__span_log(lz_logger_t *logger, const lz_span_t *span) {
    lz_logger_write(logger, LZ_LOG_INFO, "trace",
                    "span %s %s trace_id=%s span_id=%s parent_id=%s node=%s id=%s duration_us=%lld status=%s",
                    kind_name(span->kind), span->name, span->trace_id, span->span_id,
                    span->parent_id[0] ? span->parent_id : "-", span->node, span->message_id[0] ? span->message_id : "-",
                    (long long)((span->end_ns - span->start_ns) / 1000),
                    span->status == LZ_OK ? "ok" : lz_error_name(span->status));
}

/* ---- public ---------------------------------------------------------------- */

const char *lz_trace_current(void) {
    if (current) return current->traceparent;
    return adopted[0] ? adopted : NULL;
}

int lz_trace_adopt(const char *traceparent) {
    if (!traceparent) {
        adopted[0] = '\0';
        return LZ_OK;
    }
    const char *why = lz__traceparent_check(traceparent);
    if (why) return lz__fail(LZ_EINVAL, "lz_trace_adopt: \"%.60s\": %s", traceparent, why);
    memcpy(adopted, traceparent, LZ_TRACEPARENT_LEN);
    adopted[LZ_TRACEPARENT_LEN] = '\0';
    return LZ_OK;
}

const char *lz_span_name(const lz_span_t *span) { return span ? span->name : ""; }
lz_span_kind_t lz_span_kind(const lz_span_t *span) { return span ? span->kind : LZ_SPAN_INTERNAL; }
const char *lz_span_trace_id(const lz_span_t *span) { return span ? span->trace_id : ""; }
const char *lz_span_id(const lz_span_t *span) { return span ? span->span_id : ""; }
const char *lz_span_parent_id(const lz_span_t *span) { return span ? span->parent_id : ""; }
const char *lz_span_traceparent(const lz_span_t *span) { return span ? span->traceparent : ""; }
const char *lz_span_node(const lz_span_t *span) { return span ? span->node : ""; }
const char *lz_span_message_id(const lz_span_t *span) { return span ? span->message_id : ""; }
int64_t lz_span_start_ns(const lz_span_t *span) { return span ? span->start_ns : 0; }
int64_t lz_span_end_ns(const lz_span_t *span) { return span ? span->end_ns : 0; }
int lz_span_status(const lz_span_t *span) { return span ? span->status : LZ_OK; }
