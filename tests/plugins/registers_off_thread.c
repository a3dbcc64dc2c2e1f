/* A plugin for test_plugin whose init has a thread of its own try each
 * registration, and waits for it: each must be refused (only init's own
 * thread registers), else a thread started in init could go on
 * registering after init, while nodes walk the plugin's callbacks. The
 * refusals go to the log; a registration let through fails the load. */
#include <pthread.h>
#include <stdio.h>

#include "liberzmq.h"

static int on_node(lz_node_t *node, const char *kind, void *arg) {
    (void)node;
    (void)kind;
    (void)arg;
    return 0;
}

static void on_span(const lz_span_t *span, void *arg) {
    (void)span;
    (void)arg;
}

static int encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    return lz_serializer_encode(state, value, out);
}

static int decode(void *state, const void *data, size_t size, lz_value_t **out) {
    return lz_serializer_decode(state, data, size, out);
}

static const lz_serializer_ops_t codec = {.name = "off_thread", .encode = encode, .decode = decode};

// What the thread got: each call's code, and its last detail.
typedef struct attempt {
    lz_plugin_t *plugin;
    int node, span, serializer;
    char detail[256];
} attempt_t;

static void *register_all(void *arg) {
    attempt_t *a = arg;
    a->node = lz_plugin_on_node(a->plugin, NULL, on_node, NULL);
    a->span = lz_plugin_on_span(a->plugin, on_span, NULL);
    a->serializer = lz_plugin_register_serializer(a->plugin, &codec, (void *)lz_serializer_builtin("raw"));
    snprintf(a->detail, sizeof a->detail, "%s", lz_last_error());
    return NULL;
}

static int init(lz_plugin_t *plugin) {
    attempt_t a = {.plugin = plugin};
    pthread_t thread;
    if (pthread_create(&thread, NULL, register_all, &a) != 0) return lz_set_error(LZ_ENOMEM, "no thread");
    pthread_join(thread, NULL);
    if (a.node != LZ_ESTATE || a.span != LZ_ESTATE || a.serializer != LZ_ESTATE)
        return lz_set_error(LZ_ECONFIG, "registrations from another thread returned %d, %d and %d", a.node, a.span,
                            a.serializer);
    lz_plugin_log(plugin, LZ_LOG_INFO, "%s", a.detail);
    return 0;
}

LZ_PLUGIN_DEFINE("off_thread", "0.1.0", init, NULL);
