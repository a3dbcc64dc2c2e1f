/* Internal: the OTLP/HTTP exporter a context starts itself from
 * tracing.otlp_endpoint (with tracing.enabled), and that key's check. */
#ifndef LZ_CORE_OTLP_H
#define LZ_CORE_OTLP_H

#include "core/context.h"
#include "liberzmq/log.h"
#include "liberzmq/trace.h"

typedef struct lz_otlp lz_otlp_t;

// lz__otlp_start starts the exporter for settings' otlp_endpoint,
// service_name, otlp_batch and otlp_interval, logging to logger; both must
// outlive it (the context's own). NULL with the error set on failure.
lz_otlp_t *lz__otlp_start(const lz_settings_t *settings, lz_logger_t *logger);

// lz__otlp_enqueue copies span into the queue for the exporter's thread,
// or drops and counts it when the queue is full: it never waits for the
// collector. Thread safe.
void lz__otlp_enqueue(lz_otlp_t *otlp, const lz_span_t *span);

// lz__otlp_stats copies the counters (all zero for a NULL exporter).
void lz__otlp_stats(lz_otlp_t *otlp, lz_otlp_stats_t *out);

// lz__otlp_stop posts what is queued, giving it a few seconds at most,
// stops the thread and frees the exporter; NULL is a no-op.
void lz__otlp_stop(lz_otlp_t **otlp_p);

// lz__otlp_check_endpoint: NULL when text is "" or an http:// or https://
// URL (https only when libcurl has TLS), else what is expected (a
// configuration validator).
const char *lz__otlp_check_endpoint(const char *text);

// lz__otlp_check_headers: NULL when text is a list of HTTP headers in
// OTEL_EXPORTER_OTLP_HEADERS' form ("name=value,name2=value2", values
// percent-encoded), else what is expected.
const char *lz__otlp_check_headers(const char *text);

#endif
