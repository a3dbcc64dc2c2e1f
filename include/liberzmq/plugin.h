/* liberzmq plugins: shared objects (.so) that extend a context at run time
 * with serializers, node hooks and span callbacks, loaded by path
 * (lz_context_load_plugin) or from the configuration (plugins.load).
 * docs/plugins.md has the rules, the lifecycle and a complete example. */
#ifndef LIBERZMQ_PLUGIN_H
#define LIBERZMQ_PLUGIN_H

#include <stddef.h>

#include "context.h"
#include "log.h"
#include "node.h"
#include "serializer.h"
#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

// The plugin ABI this header describes: the descriptor's layout and the
// lz_plugin_* calls. It changes only when a plugin built against an older
// header would misbehave; a plugin built for another one is refused.
#define LZ_PLUGIN_ABI_VERSION 1

// The one symbol a plugin exports: its descriptor (LZ_PLUGIN_DEFINE).
#define LZ_PLUGIN_SYMBOL "lz_plugin_descriptor"

// A loaded plugin, as its code sees it. Owned by the context.
typedef struct lz_plugin lz_plugin_t;

// What a plugin is. abi_version comes first in every ABI version, so the
// loader can read it before trusting the rest of the layout.
typedef struct lz_plugin_descriptor {
    int abi_version;     // LZ_PLUGIN_ABI_VERSION as the plugin was built
    const char *name;    // unique among a context's plugins, e.g. "rot13"
    const char *version; // the plugin's own version, e.g. "1.0.0"
    // init registers what the plugin adds (lz_plugin_register_serializer,
    // lz_plugin_on_node, lz_plugin_on_span). It may call public functions
    // that neither make nodes nor load plugins (a load from init fails
    // with LZ_ESTATE: docs/plugins.md). It returns 0, or non-zero to
    // refuse loading: a negative lz_error_t, or any positive number for
    // LZ_ECONFIG; lz_set_error says why. A failed init frees what it made
    // and leaves no pointer to plugin behind: no fini follows, and plugin
    // may be freed.
    int (*init)(lz_plugin_t *plugin);
    // fini (may be NULL) frees what init made, when the context is
    // destroyed: after every node is closed and the context's serializers
    // (the plugin's too) are destroyed, before the plugin is unloaded.
    void (*fini)(lz_plugin_t *plugin);
} lz_plugin_descriptor_t;

// LZ_PLUGIN_DEFINE defines a plugin's descriptor, once in the plugin (C or
// C++, at file scope):
//   LZ_PLUGIN_DEFINE("rot13", "1.0.0", rot13_init, NULL);
// The visibility is on the declaration only: the definition inherits it,
// and g++ ignores it there, with a warning.
#define LZ_PLUGIN_DEFINE(name, version, init, fini)                                                                    \
    __attribute__((visibility("default"))) extern const lz_plugin_descriptor_t lz_plugin_descriptor;                   \
    const lz_plugin_descriptor_t lz_plugin_descriptor = {LZ_PLUGIN_ABI_VERSION, name, version, init, fini}

/* ---- the host's side --------------------------------------------------- */

// lz_context_load_plugin loads the shared object at path (as dlopen(3)
// finds it: a path without '/' is searched for), checks its descriptor and
// calls its init. What init registers applies from then on: nodes made
// before the call get no node callback. A plugin stays loaded until the
// context is destroyed (nodes hold the context, so that is after the last
// node is closed). Errors, each with a detail naming path: LZ_ECONFIG when
// the file cannot be loaded (missing, unresolved symbols: dlerror's text;
// a path with '/' that names no regular file, a FIFO say, is refused
// before dlopen, which would wait on it for ever: "not a regular file"),
// has no LZ_PLUGIN_SYMBOL, was built for another LZ_PLUGIN_ABI_VERSION, or
// links a second copy of liberzmq (a program linked with the static
// library: docs/plugins.md); LZ_ESTATE when a plugin of that name is
// already loaded, or when called from a plugin's init (which runs under
// the process-wide lock that serialises loads); init's code when it
// refuses ("init failed: <why>"); LZ_EINVAL for a NULL context or an
// empty path. Thread safe.
int lz_context_load_plugin(lz_context_t *ctx, const char *path);

// A loaded plugin, as lz_context_plugins lists it. The strings are
// borrowed: valid while the context lives.
typedef struct lz_plugin_info {
    const char *name;
    const char *version;
    const char *path; // as given to lz_context_load_plugin or in plugins.load
} lz_plugin_info_t;

// lz_context_plugins stores up to max of the context's loaded plugins in
// out, in load order, and returns how many are loaded (which may be more
// than max: call with max 0 to count). A plugin whose init failed is not
// listed. 0 for a NULL context. Thread safe.
size_t lz_context_plugins(lz_context_t *ctx, lz_plugin_info_t *out, size_t max);

/* ---- the plugin's side ------------------------------------------------- */

// The registration calls below work only during the plugin's init, on the
// thread that runs it; elsewhere they fail with LZ_ESTATE. The rest work
// at any time. NULL plugin or function: LZ_EINVAL.

// lz_plugin_register_serializer registers a codec in the context's
// registry, as lz_serializer_register does (ops copied; state: owned by
// liberzmq from the call on; ops->name and content_type may be literals of
// the plugin, which stays loaded while the registry lives), once init
// returns 0: during init, lz_serializer_find does not find it yet. When
// init fails, the codec is dropped (ops->destroy(state)), so a retry
// finds its name free. LZ_ESTATE also when the name is taken; LZ_EINVAL
// for ops without a name, encode or decode; LZ_ENOMEM. Should the registry
// refuse it when init returns (out of memory, or the name registered by
// another thread meanwhile), the load fails with that error and no fini
// runs; codecs handed over before it stay registered.
int lz_plugin_register_serializer(lz_plugin_t *plugin, const lz_serializer_ops_t *ops, void *state);

// lz_plugin_node_fn is called for each node made in the context after the
// plugin was loaded, on the thread making it, once the node is bound or
// connected and before its constructor returns: the moment to add hooks
// (lz_node_on_send, lz_node_on_receive), set its serializer or name. kind
// is the pattern's name: "pub", "sub", "push", "pull", "server", "client",
// "dealer", "router", "pair", or a proxy's "forwarder-in",
// "forwarder-out", "queue-in", "queue-out", "proxy-capture". A client
// with several endpoints has a node per endpoint, each seen. It must not close the node nor make
// others. Non-zero refuses the node: its constructor fails with the code
// (a negative lz_error_t, or LZ_EVALIDATION for a positive number) and the
// detail "<kind>: plugin '<name>' refused the node: <why>".
typedef int (*lz_plugin_node_fn)(lz_node_t *node, const char *kind, void *arg);

// lz_plugin_on_node adds a node callback for nodes of kind (copied), or for
// every node when kind is NULL. Callbacks run in load order, then in the
// order added. arg is passed along, not owned. LZ_ENOMEM.
int lz_plugin_on_node(lz_plugin_t *plugin, const char *kind, lz_plugin_node_fn fn, void *arg);

// lz_plugin_on_span adds a function that receives every span the context
// ends (trace.h: tracing.enabled), besides lz_context_on_span's. Same
// rules as lz_span_fn: called on the thread ending the span, so thread
// safe, and quick. LZ_ENOMEM.
int lz_plugin_on_span(lz_plugin_t *plugin, lz_span_fn fn, void *arg);

// lz_plugin_log writes one record to the context's log, with the plugin's
// name as the component. Thread safe.
void lz_plugin_log(lz_plugin_t *plugin, lz_log_level_t level, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// lz_plugin_context returns the context the plugin extends (for
// lz_context_config and the like). It must not be destroyed by the plugin,
// nor nodes made in it from init or fini: a node holds the context, which
// would then never be freed. Thread safe.
lz_context_t *lz_plugin_context(lz_plugin_t *plugin);

// lz_plugin_set_data keeps one pointer for the plugin (not owned: fini
// frees it); lz_plugin_data returns it (NULL until set). A plugin loaded
// into several contexts has one lz_plugin_t, so one pointer, per context.
// Set it in init; read it anywhere.
void lz_plugin_set_data(lz_plugin_t *plugin, void *data);
void *lz_plugin_data(const lz_plugin_t *plugin);

#ifdef __cplusplus
}
#endif
#endif
