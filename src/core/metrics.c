/* Metric snapshots: summing and rendering as JSON. Counting itself is in
 * node.h (atomic counters per node). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"
#include "core/metrics.h"
#include "liberzmq/metrics.h"

void lz_metrics_add(lz_metrics_t *a, const lz_metrics_t *b) {
    if (!a || !b) return;
#define LZ_ADD(f) a->f += b->f;
    LZ_METRIC_COUNTERS(LZ_ADD)
#undef LZ_ADD
    a->active_connections += b->active_connections;
}

// append writes at buf+len when there is room and always advances len, so
// the result reports the full length like snprintf does.
static void append(char *buf, size_t size, size_t *len, const char *format, ...) {
    va_list args;
    va_start(args, format);
    size_t room = *len < size ? size - *len : 0;
    int n = vsnprintf(room ? buf + *len : NULL, room, format, args);
    va_end(args);
    if (n > 0) *len += (size_t)n;
}

int lz_metrics_to_json(const lz_metrics_t *m, char *buf, size_t size) {
    if (!m || (!buf && size)) return lz__fail(LZ_EINVAL, "metrics: NULL argument");
    size_t len = 0;
#define LZ_JSON(f) append(buf, size, &len, "%s\"" #f "\":%" PRIu64, len ? "," : "{", (uint64_t)m->f);
    LZ_METRIC_COUNTERS(LZ_JSON)
#undef LZ_JSON
    append(buf, size, &len, ",\"active_connections\":%" PRId64 "}", m->active_connections);
    return (int)len;
}
