/* liberzmq context: owns the libzmq context, the configuration, the logger,
 * the metrics of its nodes and the serializer registry. Create one per
 * process (or per isolated component) and share it between threads.
 *
 * Threads: a context runs one connection monitor thread; started
 * subscribers, pullers, servers and dealers, clients and proxies run their
 * own (see each header). Like libzmq's I/O threads, every thread liberzmq
 * starts blocks asynchronous signals (SIGINT, SIGTERM, SIGUSR1, SIGCHLD...),
 * so the process's handlers run on the application's threads only and never
 * interrupt a handler or a receive of ours; faults (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGTRAP, SIGABRT, SIGSYS) and a profiler's SIGPROF are not
 * blocked (a proxy's thread blocks SIGPROF too). A signal caught on your
 * own thread during a liberzmq call does not make it fail: the libzmq
 * calls it interrupts are restarted. Handlers you register
 * (lz_sub_on, lz_pull_on, lz_server_on...) run on those threads with that
 * mask. */
#ifndef LIBERZMQ_CONTEXT_H
#define LIBERZMQ_CONTEXT_H

#include "config.h"
#include "log.h"
#include "metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_context lz_context_t;

// lz_context_new creates a context from a copy of config. With config NULL
// it reads the defaults, then the file named by LIBERZMQ_CONFIG if set, then
// the LIBERZMQ_* environment. Returns NULL with LZ_ECONFIG (bad config),
// LZ_EZMQ or LZ_ENOMEM, and the detail in lz_last_error().
lz_context_t *lz_context_new(const lz_config_t *config);

// lz_context_destroy releases the caller's reference and sets *ctx_p to
// NULL. Nodes still open keep the context alive until they are destroyed,
// so destroying in any order is safe; the libzmq context terminates with
// the last node, bounded by each socket's linger (zmq.linger), never
// waiting forever on a dead peer.
void lz_context_destroy(lz_context_t **ctx_p);

// lz_context_config returns the context's configuration, read-only,
// valid while the context lives. Thread safe to read.
const lz_config_t *lz_context_config(const lz_context_t *ctx);

// lz_context_logger returns the context's logger (configured from
// logging.*). Borrowed; its setters are thread safe.
lz_logger_t *lz_context_logger(lz_context_t *ctx);

// lz_context_metrics fills *out with the sum over every node the context
// has had (live ones now, closed ones as they were at close). Thread safe.
int lz_context_metrics(lz_context_t *ctx, lz_metrics_t *out);

// lz_context_zmq returns the underlying libzmq context for code that needs
// plain sockets next to liberzmq ones. Do not terminate it.
void *lz_context_zmq(lz_context_t *ctx);

#ifdef __cplusplus
}
#endif
#endif
