/* A plugin for test_plugin whose init fails after registering a codec and
 * a node callback: both are dropped, so a retry fails the same way. */
#include "liberzmq.h"

static int encode(void *state, const lz_value_t *value, lz_buffer_t *out) {
    return lz_serializer_encode(state, value, out);
}

static int decode(void *state, const void *data, size_t size, lz_value_t **out) {
    return lz_serializer_decode(state, data, size, out);
}

static const lz_serializer_ops_t leftover_ops = {.name = "leftover", .encode = encode, .decode = decode};

static int refuse_all(lz_node_t *node, const char *kind, void *arg) {
    (void)node;
    (void)kind;
    (void)arg;
    return lz_set_error(LZ_ESTATE, "a failed plugin's callback ran");
}

static int init(lz_plugin_t *plugin) {
    int rc = lz_plugin_register_serializer(plugin, &leftover_ops, (void *)lz_serializer_builtin("raw"));
    if (rc == LZ_OK) rc = lz_plugin_on_node(plugin, NULL, refuse_all, NULL);
    return rc == LZ_OK ? lz_set_error(LZ_ECONFIG, "no licence key") : rc;
}

LZ_PLUGIN_DEFINE("init_fails", "0.1.0", init, NULL);
