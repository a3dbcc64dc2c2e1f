/* liberzmq context: owns the libzmq context, the configuration, the logger,
 * the metrics of its nodes and the serializer registry. Create one per
 * process (or per isolated component) and share it between threads.
 *
 * Threads: a context runs one connection monitor thread (and, while it
 * watches a configuration file, lz_context_watch, a watcher thread); started
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
// the LIBERZMQ_* environment (neither in a setuid, setgid or capability
// program: lz_config_load_env). Returns NULL with LZ_ECONFIG (bad config),
// LZ_ECONNECTION (metrics.prometheus_listen cannot be served: its port is
// in use, or the address is not this host's), LZ_EZMQ or LZ_ENOMEM, and
// the detail in lz_last_error(). The context
// opens two libzmq sockets of its own (its connection monitor's) and each
// node three: with zmq.max_sockets below 2 it fails with LZ_EZMQ ("context:
// cannot open the connection monitor's 2 sockets (zmq.max_sockets is 1):
// Too many open files"). Once the application shuts the libzmq context
// down (zmq_ctx_shutdown on lz_context_zmq), nodes made afterwards fail with
// LZ_ECLOSED ("Context was terminated"); should the monitor thread stop for
// another reason, with LZ_ESTATE. Either way the context still ends.
lz_context_t *lz_context_new(const lz_config_t *config);

// lz_context_destroy stops its file watcher (lz_context_watch), releases
// the caller's reference and sets *ctx_p to NULL. Nodes still open keep the context alive until they are destroyed,
// so destroying in any order is safe; the libzmq context terminates with
// the last node, bounded by each socket's linger (zmq.linger), never
// waiting forever on a dead peer.
// From a log record the watcher's own thread writes (a log callback,
// lz_logger_to_callback, reacting to a reload it logged), it returns at
// once: the watcher stops after the record, and its thread releases the
// reference as it ends (the reload writing the record still uses the
// context), ending the context if that was the last. From a log record of
// an lz_context_reload or lz_context_watch of the same context on the
// calling thread (where stopping the watcher would wait for a lock that
// call holds, and the call still uses the context), it sets *ctx_p to
// NULL and the destroy is finished as that call returns.
void lz_context_destroy(lz_context_t **ctx_p);

// lz_context_config returns the context's configuration in force,
// read-only, valid while the context lives: after a reload it returns the
// new one, and the one it replaced stays valid (a context keeps them all
// until it ends, so reload only when something changed). Thread safe.
const lz_config_t *lz_context_config(const lz_context_t *ctx);

// lz_context_reload applies config (read, not kept: the context copies it)
// to the running context, all of it or nothing. Only the live keys change
// (docs/configuration.md, "Reloading": logging.* and debug, the
// security.* access rules, tracing.* (a new OTLP exporter replaces the
// old, which flushes on its own thread), tasks.*, zmq.request_timeout and
// request_retries, plugins.load's added paths); a new access policy
// governs the connections and ZAP requests that come after, and with
// security.cut_revoked (the default) the live connections it refuses are
// cut before the reload returns. Every other key whose value differs is not applied, nor
// is a path taken out of plugins.load (a plugin is never unloaded): a
// warning per key says a restart is needed.
// Returns 0 when every change was applied; a positive count of the keys
// that need a restart (the others were applied), named in lz_last_error()
// ("config: reload from ...: restart needed to apply zmq.linger, ...");
// or a negative error with nothing changed (what it had prepared, a ZAP
// handler for new access rules, a new log file, is taken back):
// LZ_ECONFIG (the detail names the key: an inconsistent pair, an unreadable
// security.authorized_keys_file, a logging.file_path that cannot be
// opened, an unreadable tracing.otlp_ca_file...; or a plugin that cannot
// be loaded, naming its path), LZ_ENOMEM, LZ_EZMQ (the ZAP handler could
// not be bound), LZ_EINVAL (NULL argument), LZ_ESTATE (called from a
// plugin's init, which runs under a lock a reload adding a plugin waits
// for: docs/plugins.md; or from a log record a reload of the same context
// writes while it holds its reload lock: the judgement of new access
// rules, a plugin's init); a plugin whose init fails returns init's code,
// the plugins loaded before it in the same reload staying loaded. Each
// call but LZ_EINVAL's and LZ_ESTATE's is counted in the context's
// config_reloads or config_reload_errors and logged.
// Thread safe: reloads run one at a time, beside any traffic.
int lz_context_reload(lz_context_t *ctx, const lz_config_t *config);

// lz_context_watch reloads the context from the YAML or JSON file at path
// now, then again each time the file changes, until the next call or
// lz_context_destroy (which stops and joins the watcher). The
// configuration is rebuilt as lz_context_new builds it: defaults < file <
// LIBERZMQ_* environment < values the current configuration got through
// lz_config_set*, so environment and API overrides stay on top. The
// file's directory is watched (inotify): a file replaced by rename, as
// editors and deployments do, is seen, and so is a touch (which also reads
// security.authorized_keys_file again). Symbolic links on the way are
// followed anew after each change: the directories of the links and of the
// file they lead to are watched too, so a link switched to another
// release is seen. One of those directories deleted or renamed away (a
// deployment replacing the whole directory) is followed: its nearest
// existing ancestor is watched until it is back, and the file is then
// read if it changed (directories above are not watched: a parent
// replaced by another is seen at the next change in the old directory).
// A change that does not load (bad
// YAML, a bad value, a path that is now a FIFO, a directory or a device:
// lz_config_load_file) is logged at ERROR, counted in config_reload_errors,
// and the running configuration stays. path NULL stops watching.
// Returns what lz_context_reload returns for the first reload (no watcher
// is left after an error), or, nothing reloaded, LZ_EIO (inotify) /
// LZ_ENOMEM or LZ_EIO (the watcher's thread cannot start: it is started
// before the first reload) / LZ_ECONFIG (no such directory) / LZ_ESTATE
// (called from a plugin's init, as lz_context_reload). One file per
// context: a new call replaces the last (stopped first, even if the new
// one then fails).
// Thread safe. The watcher runs on a thread of its own. From a log record
// that thread writes (a log callback, lz_logger_to_callback, reacting to a
// reload it logged): path NULL asks the watcher to stop and returns LZ_OK
// at once (its thread ends after the record; the next call or
// lz_context_destroy frees it); another path is watched instead, by the
// same thread, read at once, and that first reload's result returned as
// above. LZ_ESTATE, nothing changed, from a log record written while a
// reload of the context holds it (the judgement of new access rules, a
// plugin's init: a reload must wait for it), or written by this call's own
// first reload on the caller's thread: call it once that returns. A
// record one watcher writes may stop or replace another context's watcher
// (the call waits for that watcher's thread), but not while that watcher's
// records do the same to this one's: each would wait for the other.
int lz_context_watch(lz_context_t *ctx, const char *path);

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
