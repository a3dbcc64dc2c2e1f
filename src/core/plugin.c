/* Plugins: shared objects that extend a context at run time (plugin.h,
 * docs/plugins.md). A context keeps the plugins it loaded on a list that
 * only grows: nodes and spans walk it without a lock, and nothing is
 * unloaded before the context is freed, when no node is left to call in.
 * An entry is complete before it is listed and never changes after; a
 * plugin whose init failed is listed once per mapping (its code stays
 * mapped: the init may have left pointers to it), not once per retry. */
#include "core/plugin.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/regular_file.h"
#include "liberzmq.h"

// A codec a plugin registered in its init: handed to the registry once
// init succeeds, so a failed init leaves none behind (the registry
// removes none).
typedef struct codec {
    lz_serializer_ops_t ops; // copied, as the registry copies them
    void *state;
} codec_t;

// A node or span callback a plugin added in its init.
typedef struct watch {
    char *kind; // node callbacks: NULL for every node; span callbacks: NULL
    union {
        lz_plugin_node_fn node;
        lz_span_fn span;
    } fn;
    void *arg;
} watch_t;

struct lz_plugin {
    _Atomic(lz_plugin_t *) next;
    lz_context_t *ctx;
    char *path;
    void *handle; // dlopen's
    const lz_plugin_descriptor_t *descriptor;
    void *data; // lz_plugin_set_data
    bool live;  // init succeeded: listed, called, fini'd
    watch_t *nodes, *spans;
    size_t node_count, span_count;
    codec_t *codecs; // during init only
    size_t codec_count;
};

// Loads are rare: one lock for all contexts makes the duplicate-name check,
// init and the append one step, and lets the append be a plain walk.
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

// The plugin whose init this thread runs, under load_lock: a load it asks
// for would wait for that lock, its own, for ever, so it is refused (as are
// the calls lz__plugins_refuse_in_init guards). Registrations are open to
// that plugin on this thread only (registering).
static _Thread_local const lz_plugin_t *init_running;

static lz_plugin_t *first(lz_plugins_t *plugins) { return atomic_load_explicit(&plugins->head, memory_order_acquire); }

static lz_plugin_t *next(lz_plugin_t *plugin) { return atomic_load_explicit(&plugin->next, memory_order_acquire); }

/* ---- registration, during init ------------------------------------------ */

// registering: the registration calls are for init only, on its thread,
// when the plugin is not yet on the list, so its arrays need no lock. A
// thread init starts could register still after init returns, while nodes
// walk the arrays: it is refused even while init runs.
static int registering(const lz_plugin_t *plugin, bool given, const char *call) {
    if (!plugin || !given) return lz__fail(LZ_EINVAL, "%s: NULL plugin or function", call);
    if (init_running != plugin)
        return lz__fail(LZ_ESTATE, "%s: plugin '%s': only during its init, on the thread running it", call,
                        plugin->descriptor->name);
    return LZ_OK;
}

static int add_watch(lz_plugin_t *plugin, watch_t **list, size_t *count, watch_t watch) {
    watch_t *grown = realloc(*list, (*count + 1) * sizeof *grown);
    if (!grown) {
        free(watch.kind);
        return lz__fail(LZ_ENOMEM, "plugin '%s': out of memory", plugin->descriptor->name);
    }
    *list = grown;
    grown[(*count)++] = watch;
    return LZ_OK;
}

static void free_watches(lz_plugin_t *plugin) {
    for (size_t i = 0; i < plugin->node_count; i++) free(plugin->nodes[i].kind);
    free(plugin->nodes);
    free(plugin->spans);
    plugin->nodes = plugin->spans = NULL;
    plugin->node_count = plugin->span_count = 0;
}

// codec_name_free refuses a codec with no name, encode or decode, or whose
// name the context's registry or the plugin's earlier codecs have, as the
// registry would.
static int codec_name_free(lz_plugin_t *plugin, const lz_serializer_ops_t *ops) {
    if (!ops->name || !*ops->name || !ops->encode || !ops->decode)
        return lz__fail(LZ_EINVAL, "serializer: registration needs a registry and ops with a name, encode and decode");
    bool taken = lz_serializer_find(plugin->ctx, ops->name) != NULL;
    lz__error_clear(); // the miss's detail: not init's reason to fail
    for (size_t i = 0; !taken && i < plugin->codec_count; i++) taken = !strcmp(plugin->codecs[i].ops.name, ops->name);
    return taken ? lz__fail(LZ_ESTATE, "serializer: the name '%s' is already registered", ops->name) : LZ_OK;
}

int lz_plugin_register_serializer(lz_plugin_t *plugin, const lz_serializer_ops_t *ops, void *state) {
    int rc = registering(plugin, ops != NULL, "lz_plugin_register_serializer");
    if (rc == LZ_OK) rc = codec_name_free(plugin, ops);
    codec_t *grown = rc == LZ_OK ? realloc(plugin->codecs, (plugin->codec_count + 1) * sizeof *grown) : NULL;
    if (rc == LZ_OK && !grown) rc = lz__fail(LZ_ENOMEM, "plugin '%s': out of memory", plugin->descriptor->name);
    if (rc != LZ_OK) {
        // The registry would have owned state: a refused one is freed, as
        // lz_serializer_register frees it.
        if (ops && ops->destroy) ops->destroy(state);
        return rc;
    }
    plugin->codecs = grown;
    plugin->codecs[plugin->codec_count++] = (codec_t){*ops, state};
    return LZ_OK;
}

// codecs_drop frees the codecs not handed to the registry, from the first.
static void codecs_drop(lz_plugin_t *plugin, size_t first) {
    for (size_t i = first; i < plugin->codec_count; i++)
        if (plugin->codecs[i].ops.destroy) plugin->codecs[i].ops.destroy(plugin->codecs[i].state);
    free(plugin->codecs);
    plugin->codecs = NULL;
    plugin->codec_count = 0;
}

// codecs_commit hands the codecs of a successful init to the registry. It
// fails only when out of memory or when another thread registered a name
// meanwhile: the codecs handed over before stay registered.
static int codecs_commit(lz_plugin_t *plugin) {
    int rc = LZ_OK;
    size_t i = 0;
    for (; rc == LZ_OK && i < plugin->codec_count; i++) {
        const lz_serializer_ops_t *ops = &plugin->codecs[i].ops;
        rc = lz_serializer_register(plugin->ctx, ops, plugin->codecs[i].state); // which frees a refused state
        if (rc == LZ_OK) lz_plugin_log(plugin, LZ_LOG_DEBUG, "registered serializer '%s'", ops->name);
    }
    codecs_drop(plugin, i); // past the one refused, whose state the registry freed
    return rc;
}

int lz_plugin_on_node(lz_plugin_t *plugin, const char *kind, lz_plugin_node_fn fn, void *arg) {
    int rc = registering(plugin, fn != NULL, "lz_plugin_on_node");
    if (rc != LZ_OK) return rc;
    watch_t watch = {.kind = kind ? strdup(kind) : NULL, .fn.node = fn, .arg = arg};
    if (kind && !watch.kind) return lz__fail(LZ_ENOMEM, "plugin '%s': out of memory", plugin->descriptor->name);
    return add_watch(plugin, &plugin->nodes, &plugin->node_count, watch);
}

int lz_plugin_on_span(lz_plugin_t *plugin, lz_span_fn fn, void *arg) {
    int rc = registering(plugin, fn != NULL, "lz_plugin_on_span");
    return rc != LZ_OK ? rc
                       : add_watch(plugin, &plugin->spans, &plugin->span_count, (watch_t){.fn.span = fn, .arg = arg});
}

void lz_plugin_log(lz_plugin_t *plugin, lz_log_level_t level, const char *format, ...) {
    if (!plugin) return;
    va_list args;
    va_start(args, format);
    lz_logger_vwrite(lz_context_logger(plugin->ctx), level, plugin->descriptor->name, format, args);
    va_end(args);
}

lz_context_t *lz_plugin_context(lz_plugin_t *plugin) { return plugin ? plugin->ctx : NULL; }
void lz_plugin_set_data(lz_plugin_t *plugin, void *data) {
    if (plugin) plugin->data = data;
}
void *lz_plugin_data(const lz_plugin_t *plugin) { return plugin ? plugin->data : NULL; }

/* ---- loading ------------------------------------------------------------- */

// load_failed reports what dlopen or dlsym could not do, in dlerror's
// words: LZ_ENOMEM when it ran out of memory (errno, cleared before the
// call, tells: dlerror's words do not always say so), else LZ_ECONFIG.
static int load_failed(const lz_plugin_t *plugin, const char *what) {
    int code = errno == ENOMEM ? LZ_ENOMEM : LZ_ECONFIG;
    const char *why = dlerror();
    return lz__fail(code, "plugin %s: %s: %s", plugin->path, what, why ? why : "no reason given");
}

// check_same_library: a program linked with the static liberzmq that loads
// a plugin linked with the shared one has two copies of the library; the
// plugin's calls would reach the copy that knows nothing of this context.
// A plugin linked with no liberzmq at all binds to the program's (NULL).
static int check_same_library(const lz_plugin_t *plugin) {
    void *theirs = dlsym(plugin->handle, "lz_context_load_plugin");
    if (!theirs || (uintptr_t)theirs == (uintptr_t)lz_context_load_plugin) return LZ_OK;
    Dl_info info;
    const char *file = dladdr(theirs, &info) && info.dli_fname ? info.dli_fname : "another liberzmq";
    return lz__fail(LZ_ECONFIG,
                    "plugin %s: it links %s, a second copy of liberzmq beside this program's own: "
                    "link the program with the shared liberzmq (docs/plugins.md)",
                    plugin->path, file);
}

static const lz_plugin_t *find_live(lz_plugins_t *plugins, const char *name) {
    for (lz_plugin_t *p = first(plugins); p; p = next(p))
        if (p->live && strcmp(p->descriptor->name, name) == 0) return p;
    return NULL;
}

// check_descriptor reads abi_version before anything else in it: the rest
// of another ABI's descriptor may be laid out otherwise.
static int check_descriptor(lz_plugin_t *plugin) {
    const lz_plugin_descriptor_t *d = plugin->descriptor;
    if (d->abi_version != LZ_PLUGIN_ABI_VERSION)
        return lz__fail(LZ_ECONFIG,
                        "plugin %s: built for plugin ABI %d, this liberzmq has ABI %d: rebuild it "
                        "with liberzmq %s's headers",
                        plugin->path, d->abi_version, LZ_PLUGIN_ABI_VERSION, lz_version());
    if (!d->name || !*d->name || !d->version || !d->init)
        return lz__fail(LZ_ECONFIG, "plugin %s: its descriptor lacks a name, a version or an init function",
                        plugin->path);
    return LZ_OK;
}

// check_unique: a plugin's name is unique among the context's plugins and
// the ones loaded with it, before it in batch.
static int check_unique(const lz_plugin_t *plugin, lz_plugin_t *const *batch, size_t before) {
    const char *name = plugin->descriptor->name;
    const lz_plugin_t *loaded = find_live(lz__context_plugins(plugin->ctx), name);
    for (size_t i = 0; !loaded && i < before; i++)
        if (strcmp(batch[i]->descriptor->name, name) == 0) loaded = batch[i];
    if (loaded)
        return lz__fail(LZ_ESTATE, "plugin %s: a plugin named '%s' is already loaded (from %s)", plugin->path, name,
                        loaded->path);
    return LZ_OK;
}

// check_regular_file refuses a path that names no regular file: dlopen
// would open a FIFO and wait for a writer, for ever, holding load_lock and
// the dynamic loader's own lock (no thread of the process could load a
// library or start a thread meanwhile). Opened without waiting, to look.
// A file swapped for a FIFO after the look still hangs dlopen: this
// catches mistakes; who can swap the file can make us load any code. A
// name without '/' is dlopen's to search for, in the library directories.
static int check_regular_file(const lz_plugin_t *plugin) {
    if (!strchr(plugin->path, '/')) return LZ_OK;
    int fd = lz__open_regular(plugin->path);
    if (fd >= 0) close(fd);
    // Not to be opened at all: dlopen fails the same way, in its words.
    if (fd != LZ_NOT_REGULAR) return LZ_OK;
    return lz__fail(LZ_ECONFIG, "plugin %s: cannot load it: not a regular file", plugin->path);
}

// open_plugin maps the file and finds its descriptor. RTLD_NOW: a missing
// symbol fails here, in words, not in a crash at its first call; and
// RTLD_LOCAL: every plugin's descriptor has the same name.
static int open_plugin(lz_plugin_t *plugin) {
    int rc = check_regular_file(plugin);
    if (rc != LZ_OK) return rc;
    errno = 0;
    plugin->handle = dlopen(plugin->path, RTLD_NOW | RTLD_LOCAL);
    if (!plugin->handle) return load_failed(plugin, "cannot load it");
    dlerror(); // a NULL from dlsym is an error only if dlerror has one
    errno = 0;
    plugin->descriptor = dlsym(plugin->handle, LZ_PLUGIN_SYMBOL);
    if (!plugin->descriptor) return load_failed(plugin, "no " LZ_PLUGIN_SYMBOL " symbol");
    rc = check_same_library(plugin);
    return rc == LZ_OK ? check_descriptor(plugin) : rc;
}

// init_plugin runs the plugin's init, then registers its codecs. A
// failed plugin's callbacks and codecs are dropped (a codec the registry
// refused at the end, out of memory or its name taken meanwhile, fails
// the load without fini: those registered before it stay), but it stays
// mapped (init_all).
static int init_plugin(lz_plugin_t *plugin) {
    const lz_plugin_descriptor_t *d = plugin->descriptor;
    lz__error_clear();
    init_running = plugin;
    int rc = d->init(plugin);
    init_running = NULL;
    if (rc != 0) codecs_drop(plugin, 0);
    int code = rc == 0 ? codecs_commit(plugin) : rc < 0 ? rc : LZ_ECONFIG;
    plugin->live = code == LZ_OK;
    if (plugin->live) {
        lz_plugin_log(plugin, LZ_LOG_DEBUG, "loaded %s %s from %s", d->name, d->version, plugin->path);
        return LZ_OK;
    }
    free_watches(plugin);
    const char *why = *lz_last_error() ? lz_last_error() : lz_strerror(code);
    return lz__fail(code, "plugin %s (%s %s): init failed: %s", plugin->path, d->name, d->version, why);
}

static void append(lz_plugins_t *plugins, lz_plugin_t *plugin) {
    _Atomic(lz_plugin_t *) *link = &plugins->head;
    for (lz_plugin_t *p = first(plugins); p; p = next(p)) link = &p->next;
    atomic_store_explicit(link, plugin, memory_order_release);
}

static void plugin_free(lz_plugin_t *plugin) {
    if (plugin->handle) dlclose(plugin->handle);
    free_watches(plugin);
    codecs_drop(plugin, 0);
    free(plugin->path);
    free(plugin);
}

static lz_plugin_t *plugin_new(lz_context_t *ctx, const char *path) {
    lz_plugin_t *plugin = calloc(1, sizeof *plugin);
    if (plugin && (plugin->path = strdup(path))) {
        plugin->ctx = ctx;
        return plugin;
    }
    free(plugin);
    return lz__fail_null(LZ_ENOMEM, "plugin %s: out of memory", path);
}

// open_all maps and checks every plugin of batch, running no plugin code.
static int open_all(lz_plugin_t *const *batch, size_t count) {
    int rc = LZ_OK;
    for (size_t i = 0; rc == LZ_OK && i < count; i++) {
        rc = open_plugin(batch[i]);
        if (rc == LZ_OK) rc = check_unique(batch[i], batch, i);
    }
    return rc;
}

static bool listed_failed(lz_plugins_t *plugins, const void *handle) {
    for (lz_plugin_t *p = first(plugins); p; p = next(p))
        if (!p->live && p->handle == handle) return true;
    return false;
}

// keep lists a plugin whose init ran: from its init on, its code stays
// mapped until the context goes, since the init may have left pointers to
// it even if it failed. A failed one whose mapping a failed entry holds
// already (a reload retrying it) is freed instead, that entry's dlopen
// keeping the code mapped: retries do not grow the list.
static void keep(lz_plugins_t *plugins, lz_plugin_t *plugin) {
    if (!plugin->live && listed_failed(plugins, plugin->handle)) plugin_free(plugin);
    else append(plugins, plugin);
}

// init_all runs the inits in order and keeps each plugin whose init ran.
// The first failure stops it. Returns how many inits ran in *called.
static int init_all(lz_context_t *ctx, lz_plugin_t *const *batch, size_t count, size_t *called) {
    int rc = LZ_OK;
    for (*called = 0; rc == LZ_OK && *called < count; (*called)++) {
        rc = init_plugin(batch[*called]);
        keep(lz__context_plugins(ctx), batch[*called]);
    }
    return rc;
}

// load_all_locked loads paths into ctx, in order, under load_lock. Every
// one is opened and checked (its file, descriptor, ABI, a unique name)
// before any init runs, so a path that is no plugin changes nothing; only
// an init that fails leaves the plugins loaded before it.
static int load_all_locked(lz_context_t *ctx, const char *const *paths, size_t count) {
    lz_plugin_t **batch = calloc(count ? count : 1, sizeof *batch);
    if (!batch) return lz__fail(LZ_ENOMEM, "plugins: out of memory");
    size_t made = 0, called = 0;
    while (made < count && (batch[made] = plugin_new(ctx, paths[made]))) made++;
    int rc = made < count ? LZ_ENOMEM : open_all(batch, count);
    if (rc == LZ_OK) rc = init_all(ctx, batch, count, &called);
    for (size_t i = called; i < made; i++) plugin_free(batch[i]);
    free(batch);
    return rc;
}

// keep_new drops from paths those a listed plugin of ctx was loaded from,
// and returns how many are left. Any thread (the list only grows); under
// load_lock no other load can list one meanwhile.
static size_t keep_new(lz_context_t *ctx, const char **paths, size_t count) {
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        bool loaded = false;
        for (lz_plugin_t *p = first(lz__context_plugins(ctx)); p && !loaded; p = next(p))
            loaded = p->live && strcmp(p->path, paths[i]) == 0;
        if (!loaded) paths[kept++] = paths[i];
    }
    return kept;
}

int lz__plugins_refuse_in_init(const char *call, const char *what) {
    if (!init_running) return LZ_OK;
    return lz__fail(LZ_ESTATE, "%s: called from the init of plugin '%s': a plugin's init cannot %s", call,
                    init_running->descriptor->name, what);
}

// load_all loads paths into ctx under load_lock; with keep_only_new, only
// those no plugin of ctx was loaded from (keep_new). With nothing to load
// it takes no lock, so a plugin's init may make a context or reload one.
static int load_all(lz_context_t *ctx, const char **paths, size_t count, bool keep_only_new, const char *call) {
    if (keep_only_new) count = keep_new(ctx, paths, count); // and again under the lock, which settles it
    if (count == 0) return LZ_OK;
    int rc = lz__plugins_refuse_in_init(call, "load plugins");
    if (rc != LZ_OK) return rc;
    pthread_mutex_lock(&load_lock); // a path is new until a load under this lock lists it
    if (keep_only_new) count = keep_new(ctx, paths, count);
    rc = load_all_locked(ctx, paths, count);
    pthread_mutex_unlock(&load_lock);
    return rc;
}

int lz_context_load_plugin(lz_context_t *ctx, const char *path) {
    if (!ctx || !path || !*path) return lz__fail(LZ_EINVAL, "lz_context_load_plugin: NULL context or empty path");
    return load_all(ctx, &path, 1, false, "lz_context_load_plugin");
}

/* ---- plugins.load ---------------------------------------------------------- */

// trim cuts the blanks around a list entry, in place.
static char *trim(char *text) {
    while (isspace((unsigned char)*text)) text++;
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1])) text[--len] = '\0';
    return text;
}

// A plugins.load value split into its paths: blanks around each cut,
// empty items left out.
typedef struct path_list {
    char *text; // the copy the paths point into
    const char **paths;
    size_t count;
} path_list_t;

static void path_list_free(path_list_t *list) {
    free(list->text);
    free(list->paths);
    *list = (path_list_t){0};
}

static int path_list_read(path_list_t *list, const lz_config_t *config) {
    const char *value = "";
    lz_config_get_string(config, "plugins.load", &value);
    *list = (path_list_t){.text = strdup(value), .paths = calloc(strlen(value) + 1, sizeof *list->paths)};
    if (!list->text || !list->paths) {
        path_list_free(list);
        return lz__fail(LZ_ENOMEM, "plugins.load: out of memory");
    }
    char *save = NULL;
    for (char *item = strtok_r(list->text, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        const char *path = trim(item);
        if (*path) list->paths[list->count++] = path;
    }
    return LZ_OK;
}

static bool path_list_has(const path_list_t *list, const char *path) {
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->paths[i], path) == 0) return true;
    return false;
}

int lz__plugins_load_config(lz_context_t *ctx) {
    path_list_t list;
    int rc = path_list_read(&list, lz_context_config(ctx));
    if (rc == LZ_OK) rc = load_all(ctx, list.paths, list.count, false, "plugins.load");
    path_list_free(&list);
    return rc;
}

// write_removed writes the paths of before that after lacks to out,
// separated by ", ".
static void write_removed(const path_list_t *before, const path_list_t *after, char *out, size_t size) {
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < before->count && len < size; i++)
        if (!path_list_has(after, before->paths[i]))
            len += (size_t)snprintf(out + len, size - len, "%s%s", len ? ", " : "", before->paths[i]);
}

int lz__plugins_reload(lz_context_t *ctx, const lz_config_t *now, const lz_config_t *next, char *removed, size_t size) {
    path_list_t before = {0}, after = {0};
    int rc = path_list_read(&before, now);
    if (rc == LZ_OK) rc = path_list_read(&after, next);
    if (rc == LZ_OK) {
        write_removed(&before, &after, removed, size);
        rc = load_all(ctx, after.paths, after.count, true, "plugins.load");
    }
    path_list_free(&before);
    path_list_free(&after);
    return rc;
}

size_t lz_context_plugins(lz_context_t *ctx, lz_plugin_info_t *out, size_t max) {
    size_t n = 0;
    for (lz_plugin_t *p = ctx ? first(lz__context_plugins(ctx)) : NULL; p; p = next(p)) {
        if (!p->live) continue;
        if (out && n < max) out[n] = (lz_plugin_info_t){p->descriptor->name, p->descriptor->version, p->path};
        n++;
    }
    return n;
}

/* ---- calls into plugins ---------------------------------------------------- */

static int refused(const lz_plugin_t *plugin, const char *kind, int rc) {
    int code = rc < 0 ? rc : LZ_EVALIDATION;
    const char *why = *lz_last_error() ? lz_last_error() : lz_strerror(code);
    return lz__fail(code, "%s: plugin '%s' refused the node: %s", kind, plugin->descriptor->name, why);
}

int lz__plugins_node_created(lz_context_t *ctx, lz_node_t *node, const char *kind) {
    for (lz_plugin_t *p = first(lz__context_plugins(ctx)); p; p = next(p)) {
        for (size_t i = 0; i < p->node_count; i++) {
            const watch_t *w = &p->nodes[i];
            if (w->kind && strcmp(w->kind, kind) != 0) continue;
            lz__error_clear();
            int rc = w->fn.node(node, kind, w->arg);
            if (rc != 0) return refused(p, kind, rc);
        }
    }
    return LZ_OK;
}

void lz__plugins_report_span(lz_plugins_t *plugins, const lz_span_t *span) {
    for (lz_plugin_t *p = first(plugins); p; p = next(p))
        for (size_t i = 0; i < p->span_count; i++) p->spans[i].fn.span(span, p->spans[i].arg);
}

// reversed turns the list from plugin on around, and returns its new head.
static lz_plugin_t *reversed(lz_plugin_t *plugin) {
    lz_plugin_t *head = NULL;
    while (plugin) {
        lz_plugin_t *rest = atomic_load_explicit(&plugin->next, memory_order_relaxed);
        atomic_store_explicit(&plugin->next, head, memory_order_relaxed);
        head = plugin;
        plugin = rest;
    }
    return head;
}

// The last loaded is finished first: a later plugin may use what an earlier
// one made. Every fini runs before any plugin is unmapped: a fini may call
// into a later plugin's code (a log record reaching the logger callback a
// plugin's init set, even a failed init's). Loops, not a recursion: the
// list may be long.
void lz__plugins_unload(lz_plugins_t *plugins) {
    lz_plugin_t *last = reversed(atomic_exchange(&plugins->head, NULL));
    for (lz_plugin_t *p = last; p; p = atomic_load_explicit(&p->next, memory_order_relaxed))
        if (p->live && p->descriptor->fini) p->descriptor->fini(p);
    while (last) {
        lz_plugin_t *rest = atomic_load_explicit(&last->next, memory_order_relaxed);
        plugin_free(last);
        last = rest;
    }
}
