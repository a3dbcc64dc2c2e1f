/* A plugin for test_plugin whose init calls back into liberzmq, as
 * docs/plugins.md allows: it makes a context of its own, and asks for a
 * reload of the context it extends, a watch and loads, which are refused
 * (the process-wide load lock is held while init runs, and a reload takes
 * it). Anything else refuses the plugin, saying what went otherwise; the
 * refusals' details go to the log. */
#include "liberzmq.h"

// helper_context makes a context of plugins_load's plugins.load and
// destroys it: LZ_OK, or lz_context_new's code.
static int helper_context(const char *plugins_load) {
    lz_config_t *config = lz_config_new();
    int rc = config ? lz_config_set(config, "plugins.load", plugins_load) : LZ_ENOMEM;
    lz_context_t *helper = rc == LZ_OK ? lz_context_new(config) : NULL;
    if (rc == LZ_OK && !helper) rc = lz_last_error_code();
    lz_context_destroy(&helper);
    lz_config_destroy(&config);
    return rc;
}

static int init(lz_plugin_t *plugin) {
    lz_context_t *ctx = lz_plugin_context(plugin);
    if (helper_context("") != LZ_OK) return lz_set_error(LZ_ECONFIG, "a context without plugins: %s", lz_last_error());
    if (lz_context_reload(ctx, lz_context_config(ctx)) != LZ_ESTATE)
        return lz_set_error(LZ_ECONFIG, "lz_context_reload was not refused: %s", lz_last_error());
    lz_plugin_log(plugin, LZ_LOG_INFO, "%s", lz_last_error());
    if (lz_context_watch(ctx, NULL) != LZ_ESTATE)
        return lz_set_error(LZ_ECONFIG, "lz_context_watch was not refused: %s", lz_last_error());
    lz_plugin_log(plugin, LZ_LOG_INFO, "%s", lz_last_error());
    if (lz_context_load_plugin(ctx, "nested.so") != LZ_ESTATE)
        return lz_set_error(LZ_ECONFIG, "lz_context_load_plugin was not refused: %s", lz_last_error());
    lz_plugin_log(plugin, LZ_LOG_INFO, "%s", lz_last_error());
    if (helper_context("nested.so") != LZ_ESTATE)
        return lz_set_error(LZ_ECONFIG, "a context with plugins was not refused: %s", lz_last_error());
    lz_plugin_log(plugin, LZ_LOG_INFO, "%s", lz_last_error());
    return 0;
}

LZ_PLUGIN_DEFINE("calls_back", "0.1.0", init, NULL);
