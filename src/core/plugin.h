/* Internal: the plugins a context loaded (liberzmq/plugin.h): the list it
 * owns, and the calls its constructor, nodes, spans and destructor make
 * into them. */
#ifndef LZ_CORE_PLUGIN_H
#define LZ_CORE_PLUGIN_H

#include "liberzmq/plugin.h"

// A context's plugins, in load order. Append-only until the context is
// freed, so nodes and spans walk it without a lock.
typedef struct lz_plugins {
    _Atomic(lz_plugin_t *) head;
} lz_plugins_t;

// lz__context_plugins returns ctx's list (context.c).
lz_plugins_t *lz__context_plugins(lz_context_t *ctx);

// lz__plugins_load_config loads each path of the context's plugins.load
// key, in order, with lz_context_load_plugin's codes and details. Every
// path is opened and checked before any init runs, so one that is no
// plugin (or a duplicate name) loads none; an init that fails stops the
// rest, and the plugins loaded before it stay (they cannot be unloaded).
int lz__plugins_load_config(lz_context_t *ctx);

// lz__plugins_reload loads, as lz__plugins_load_config does, the paths of
// next's plugins.load that no plugin of ctx was loaded from (the same
// path, as written: plugins.load's, lz_context_load_plugin's). The paths
// of now's plugins.load that next's lacks are written to removed (size
// bytes, ", " between them; "" for none): they stay loaded. Errors as
// lz__plugins_load_config's. Thread safe.
int lz__plugins_reload(lz_context_t *ctx, const lz_config_t *now, const lz_config_t *next, char *removed,
                       size_t size);

// lz__plugins_refuse_in_init refuses call when this thread runs a
// plugin's init: LZ_ESTATE, the detail naming the plugin and saying it
// cannot do what (a phrase: "load plugins"); LZ_OK otherwise. Init runs
// under the process-wide load lock, which a load takes and a reload takes
// after its context's reload lock: a load or a reload asked for from init
// would wait for this thread (a reload of the context whose reload runs
// the init) or for a thread that waits for it (any reload adding a plugin).
int lz__plugins_refuse_in_init(const char *call, const char *what);

// lz__plugins_node_created runs the plugins' node callbacks for kind on a
// node lz__node_init has just made: LZ_OK, or the refusal's code and
// detail. With no plugin loaded it costs one atomic load.
int lz__plugins_node_created(lz_context_t *ctx, lz_node_t *node, const char *kind);

// lz__plugins_report_span hands span to the plugins' span callbacks.
void lz__plugins_report_span(lz_plugins_t *plugins, const lz_span_t *span);

// lz__plugins_unload calls each plugin's fini, last loaded first, then
// unloads them all (a fini may call into any plugin's code). Only when no
// node is left and the context's registry (whose codecs may be plugin
// code) is destroyed.
void lz__plugins_unload(lz_plugins_t *plugins);

#endif
