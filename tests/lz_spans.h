/* A span recorder shared by the tracing tests: lz_context_on_span(ctx,
 * on_span, NULL) copies each span that ends into seen[], under seen_lock
 * (spans end on handler, I/O and test threads alike). */
#ifndef LZ_SPANS_H
#define LZ_SPANS_H

#include <pthread.h>

#include "lz_test.h"

#define MAX_SPANS 256

typedef struct seen_span {
    char name[64], trace_id[33], span_id[17], parent_id[17], traceparent[56], node[64], id[40];
    lz_span_kind_t kind;
    int status;
    int64_t start_ns, end_ns;
} seen_span_t;

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static seen_span_t seen[MAX_SPANS];
static int seen_count;

static void on_span(const lz_span_t *span, void *arg) {
    (void)arg;
    pthread_mutex_lock(&seen_lock);
    if (seen_count < MAX_SPANS) {
        seen_span_t *s = &seen[seen_count++];
        snprintf(s->name, sizeof s->name, "%s", lz_span_name(span));
        snprintf(s->trace_id, sizeof s->trace_id, "%s", lz_span_trace_id(span));
        snprintf(s->span_id, sizeof s->span_id, "%s", lz_span_id(span));
        snprintf(s->parent_id, sizeof s->parent_id, "%s", lz_span_parent_id(span));
        snprintf(s->traceparent, sizeof s->traceparent, "%s", lz_span_traceparent(span));
        snprintf(s->node, sizeof s->node, "%s", lz_span_node(span));
        snprintf(s->id, sizeof s->id, "%s", lz_span_message_id(span));
        s->kind = lz_span_kind(span);
        s->status = lz_span_status(span);
        s->start_ns = lz_span_start_ns(span);
        s->end_ns = lz_span_end_ns(span);
    }
    pthread_mutex_unlock(&seen_lock);
}

static inline int span_count(void) {
    pthread_mutex_lock(&seen_lock);
    int n = seen_count;
    pthread_mutex_unlock(&seen_lock);
    return n;
}

// forget_spans empties the record, for a test's next context.
static inline void forget_spans(void) {
    pthread_mutex_lock(&seen_lock);
    seen_count = 0;
    pthread_mutex_unlock(&seen_lock);
}

// check_child checks that child is parent's child in parent's trace.
static inline void check_child(const seen_span_t *child, const seen_span_t *parent) {
    LZ_CHECK(child && parent);
    if (!child || !parent) return;
    LZ_CHECK_STR(child->trace_id, parent->trace_id);
    LZ_CHECK_STR(child->parent_id, parent->span_id);
}

#endif
