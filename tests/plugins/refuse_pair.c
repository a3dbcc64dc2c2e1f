/* A plugin for test_plugin: refuses every pair node (a node callback for
 * one kind), and tries a registration outside init, which must fail. */
#include "liberzmq.h"

static int refuse(lz_node_t *node, const char *kind, void *arg) {
    (void)node;
    (void)kind;
    (void)arg;
    return lz_set_error(LZ_EVALIDATION, "pairs are not allowed here");
}

static void no_span(const lz_span_t *span, void *arg) {
    (void)span;
    (void)arg;
}

// late is called for every pub: registering now is too late, and the
// refusal's detail goes to the log, where the test reads it.
static int late(lz_node_t *node, const char *kind, void *arg) {
    lz_plugin_t *plugin = arg;
    (void)node;
    (void)kind;
    if (lz_plugin_on_span(plugin, no_span, NULL) != LZ_OK) lz_plugin_log(plugin, LZ_LOG_WARNING, "%s", lz_last_error());
    return 0;
}

static int init(lz_plugin_t *plugin) {
    int rc = lz_plugin_on_node(plugin, "pair", refuse, NULL);
    return rc == LZ_OK ? lz_plugin_on_node(plugin, "pub", late, plugin) : rc;
}

LZ_PLUGIN_DEFINE("refuse_pair", "0.1.0", init, NULL);
