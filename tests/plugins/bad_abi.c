/* A broken plugin for test_plugin: built for a plugin ABI that is not
 * this liberzmq's (as one built against other headers would be). */
#include "liberzmq.h"

static int init(lz_plugin_t *plugin) {
    (void)plugin;
    return 0;
}

__attribute__((visibility("default")))
const lz_plugin_descriptor_t lz_plugin_descriptor = {LZ_PLUGIN_ABI_VERSION + 98, "bad_abi", "0.1.0", init, NULL};
