/* Internal: the OTLP/HTTP exporter a context starts itself from
 * tracing.otlp_endpoint (with tracing.enabled), the slot through which a
 * reload replaces it while spans go on ending, and the keys' checks. */
#ifndef LZ_CORE_OTLP_H
#define LZ_CORE_OTLP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/context.h"
#include "liberzmq/log.h"
#include "liberzmq/trace.h"

typedef struct lz_otlp lz_otlp_t;

// lz__otlp_start starts the exporter for settings' otlp_endpoint,
// service_name, otlp_batch, otlp_interval, otlp_headers and otlp_ca_file
// (copied), logging to logger, which must outlive it (the context's own).
// NULL with the error set on failure: LZ_ECONFIG (a bad URL, an unreadable
// CA file, naming it), LZ_ENOMEM, LZ_EIO (no thread).
lz_otlp_t *lz__otlp_start(const lz_settings_t *settings, lz_logger_t *logger);

// lz__otlp_enqueue copies span into the queue for the exporter's thread,
// or drops and counts it when the queue is full: it never waits for the
// collector. Thread safe.
void lz__otlp_enqueue(lz_otlp_t *otlp, const lz_span_t *span);

// lz__otlp_stop posts what is queued, giving it a few seconds at most,
// stops the thread and frees the exporter; NULL is a no-op.
void lz__otlp_stop(lz_otlp_t **otlp_p);

// lz__otlp_same: whether settings a and b make the same exporter: both
// none (no endpoint, or tracing.enabled off), or the same endpoint, service
// name, batch, interval, headers and CA file.
bool lz__otlp_same(const lz_settings_t *a, const lz_settings_t *b);

// A context's exporter slot. Threads ending spans take the current
// exporter from it (a reference, counted in the exporter's users, held
// only while the span is queued); a reload swaps in another. The one
// replaced posts what it has queued on its own thread, by the flush at
// destroy's rules, and is freed once its thread has ended and no span is
// being handed to it: by a later swap, or at lz__otlp_slot_fini.
typedef struct lz_otlp_slot {
    pthread_mutex_t lock;
    _Atomic(lz_otlp_t *) current; // stored under lock; read without it only to see NULL
    lz_otlp_t *retired;           // replaced, still flushing or in use; under lock
    lz_otlp_stats_t gone;         // the counters of the retired ones freed; under lock
    bool ever;                    // an exporter ran in this slot; under lock
} lz_otlp_slot_t;

void lz__otlp_slot_init(lz_otlp_slot_t *slot);

// lz__otlp_slot_swap makes next (taken; NULL for none) the exporter spans
// go to from now on, and retires the one it replaces. It does not wait for
// a collector. Thread safe.
void lz__otlp_slot_swap(lz_otlp_slot_t *slot, lz_otlp_t *next);

// lz__otlp_slot_enqueue queues span for the current exporter, if any (one
// relaxed load when there is none). Thread safe.
void lz__otlp_slot_enqueue(lz_otlp_slot_t *slot, const lz_span_t *span);

// lz__otlp_slot_stats sums the counters of every exporter the slot has
// had; false (and zeros) when it never had one. Thread safe.
bool lz__otlp_slot_stats(lz_otlp_slot_t *slot, lz_otlp_stats_t *out);

// lz__otlp_slot_fini stops every exporter, waiting for each one's flush
// (a few seconds at most, the flushes running at once), and frees them.
// No span may end meanwhile.
void lz__otlp_slot_fini(lz_otlp_slot_t *slot);

// lz__otlp_check_endpoint: NULL when text is "" or an http:// or https://
// URL (https only when libcurl has TLS), else what is expected (a
// configuration validator).
const char *lz__otlp_check_endpoint(const char *text);

// lz__otlp_check_headers: NULL when text is a list of HTTP headers in
// OTEL_EXPORTER_OTLP_HEADERS' form ("name=value,name2=value2", values
// percent-encoded), else what is expected.
const char *lz__otlp_check_headers(const char *text);

#endif
