/* Internal: the Prometheus exporter a context starts itself from
 * metrics.prometheus_listen, and that key's check. */
#ifndef LZ_CORE_PROMETHEUS_H
#define LZ_CORE_PROMETHEUS_H

#include <stdbool.h>

#include "core/context.h"
#include "liberzmq/prometheus.h"

// lz__prometheus_start is lz_prometheus_new; hold_ref false is for the
// context's own exporter, which the context stops before it goes.
lz_prometheus_t *lz__prometheus_start(lz_context_t *ctx, const char *address, bool hold_ref);

// lz__prometheus_check_address: NULL when text is "" or HOST:PORT, else
// what is expected (a configuration validator).
const char *lz__prometheus_check_address(const char *text);

#endif
