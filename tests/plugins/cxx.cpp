// A plugin for test_plugin written in C++: the public headers and
// LZ_PLUGIN_DEFINE compile there without a warning (-Werror), and the
// descriptor is exported under hidden visibility (tests/CMakeLists.txt).
#include "liberzmq.h"

static int init(lz_plugin_t *plugin) {
    lz_plugin_log(plugin, LZ_LOG_DEBUG, "a C++ plugin");
    return 0;
}

LZ_PLUGIN_DEFINE("cxx", "0.1.0", init, nullptr);
