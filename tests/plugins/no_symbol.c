/* A broken plugin for test_plugin: it exports no lz_plugin_descriptor. */
#include "liberzmq.h"

int lz_plugin_init(lz_plugin_t *plugin);
int lz_plugin_init(lz_plugin_t *plugin) {
    (void)plugin;
    return 0;
}
