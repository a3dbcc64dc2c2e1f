/* Internal: the Prometheus exporter a context starts itself from
 * metrics.prometheus_listen, that key's check, and the context's registry
 * of extra collectors (parts of the library that are not nodes, such as a
 * lock service, adding their own families to the scrape). */
#ifndef LZ_CORE_PROMETHEUS_H
#define LZ_CORE_PROMETHEUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/context.h"
#include "liberzmq/prometheus.h"

// lz__prometheus_start is lz_prometheus_new; hold_ref false is for the
// context's own exporter, which the context stops before it goes.
lz_prometheus_t *lz__prometheus_start(lz_context_t *ctx, const char *address, bool hold_ref);

// lz__prometheus_check_address: NULL when text is "" or HOST:PORT, else
// what is expected (a configuration validator).
const char *lz__prometheus_check_address(const char *text);

/* ---- extra collectors ------------------------------------------------------ */

// A family a kind of collector adds: its full name, "counter" or "gauge",
// and its HELP text.
typedef struct lz__family {
    const char *name, *type, *help;
} lz__family_t;

// A kind of collector: its families, and read, which fills values (one
// per family, in order) with one collector's numbers now. read runs under
// the registry's lock, so it must not add or remove collectors.
typedef struct lz__collector_kind {
    const lz__family_t *families;
    size_t family_count;
    void (*read)(void *arg, uint64_t *values);
} lz__collector_kind_t;

typedef struct lz__collector lz__collector_t;

// The registry a context owns. Its lock is held while a scrape reads the
// collectors and while one is removed, so a removed collector's arg is
// never read again once lz__collector_remove returns.
typedef struct lz__collectors {
    pthread_mutex_t lock;
    lz__collector_t *list; // in the order added
} lz__collectors_t;

void lz__collectors_init(lz__collectors_t *collectors);
// lz__collectors_fini frees the registry; every collector must be removed.
void lz__collectors_fini(lz__collectors_t *collectors);

// lz__collector_add puts arg in ctx's scrape as one series of each family
// of kind (static), labelled node="<node, copied>",id="<node_id>" as the
// node families are (so same-named nodes stay apart). Returns the handle for
// lz__collector_remove, or NULL (LZ_ENOMEM). Thread safe.
lz__collector_t *lz__collector_add(lz_context_t *ctx, const lz__collector_kind_t *kind, const char *node,
                                   uint64_t node_id, void *arg);

// lz__collector_remove takes *collector_p out of ctx's scrape, waiting for
// a scrape that reads it, frees it and sets *collector_p to NULL. NULL
// and *NULL are no-ops. Thread safe.
void lz__collector_remove(lz_context_t *ctx, lz__collector_t **collector_p);

// lz__context_collectors: ctx's registry (context.c).
lz__collectors_t *lz__context_collectors(lz_context_t *ctx);

#endif
