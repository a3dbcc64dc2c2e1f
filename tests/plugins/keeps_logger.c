/* A plugin for test_plugin whose init sends the context's log to a
 * callback of its own, then fails: it stays mapped until the context is
 * destroyed (docs/plugins.md), and the fini of a plugin loaded before it
 * logs through that callback. Its records go to LZ_TEST_KEPT_LOG, a file
 * the test reads. */
#include <stdio.h>
#include <stdlib.h>

#include "liberzmq.h"

static void to_file(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level;
    (void)arg;
    const char *path = getenv("LZ_TEST_KEPT_LOG");
    FILE *file = path ? fopen(path, "a") : NULL;
    if (!file) return;
    fprintf(file, "%s: %s\n", component, message);
    fclose(file);
}

static int init(lz_plugin_t *plugin) {
    lz_logger_to_callback(lz_context_logger(lz_plugin_context(plugin)), to_file, NULL);
    return lz_set_error(LZ_ECONFIG, "no licence key");
}

LZ_PLUGIN_DEFINE("keeps_logger", "0.1.0", init, NULL);
