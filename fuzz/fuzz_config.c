/* Configuration files (lz_config_load_file, YAML or JSON in the Python
 * LiberZMQ's layout; LIBERZMQ_CONFIG names one for every context) on
 * arbitrary text. A file that loads must give settings a context can read,
 * and lz_config_to_json must write JSON that loads back as the same
 * configuration (as tests/test_config.c holds on its damaged files).
 * There is no entry point from memory, so the input goes into an in-memory
 * file (memfd), made once per run and rewritten per input, read through
 * its /proc/self/fd path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/context.h"
#include "core/log.h"
#include "fuzz_common.h"

// config_file_path returns the path of the run's one file, holding size
// bytes of text from now on.
static const char *config_file_path(const void *text, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("lz-fuzz-config", MFD_CLOEXEC);
        fuzz_require(fd >= 0, "an in-memory file can be made (memfd_create)");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    fuzz_require(ftruncate(fd, 0) == 0, "the in-memory file can be emptied");
    fuzz_require(size == 0 || pwrite(fd, text, size, 0) == (ssize_t)size, "the in-memory file can be written");
    return path;
}

// load_text loads text as a configuration file into a fresh configuration;
// NULL when the load fails (which must leave config as it was, unchanged).
static lz_config_t *load_text(const void *text, size_t size) {
    lz_config_t *config = lz_config_new();
    fuzz_require(config != NULL, "a configuration can be made");
    char *before = lz_config_to_json(config);
    int rc = lz_config_load_file(config, config_file_path(text, size));
    if (rc != LZ_OK) {
        fuzz_require(rc == LZ_ECONFIG, "a bad file is LZ_ECONFIG");
        char *after = lz_config_to_json(config);
        fuzz_require(after && strcmp(before, after) == 0, "a failed load leaves the configuration unchanged");
        free(after);
        lz_config_destroy(&config);
    }
    free(before);
    return config;
}

// check_settings reads what a context and its logger read: either may
// refuse a combination of keys (LZ_ECONFIG), never crash on one.
static void check_settings(const lz_config_t *config) {
    lz_settings_t settings;
    lz_log_settings_t log_settings;
    int rc = lz__settings_read(config, &settings);
    fuzz_require(rc == LZ_OK || rc == LZ_ECONFIG, "context settings are read or refused");
    rc = lz__log_settings_read(config, &log_settings);
    fuzz_require(rc == LZ_OK || rc == LZ_ECONFIG, "log settings are read or refused");
}

// check_json_reloads: lz_config_to_json's text is JSON, and loads back as
// a configuration that writes the same text.
static void check_json_reloads(const lz_config_t *config) {
    char *json = lz_config_to_json(config);
    fuzz_require(json != NULL, "a configuration writes as JSON");
    lz_value_t *parsed = lz_value_from_json(json, strlen(json));
    fuzz_require(lz_value_type(parsed) == LZ_VALUE_OBJECT, "lz_config_to_json writes a JSON object");
    lz_config_t *reloaded = load_text(json, strlen(json));
    fuzz_require(reloaded != NULL, "lz_config_to_json's text loads as a configuration file");
    char *json_again = lz_config_to_json(reloaded);
    fuzz_require(json_again && strcmp(json, json_again) == 0, "the reloaded configuration is the same");
    free(json_again);
    lz_config_destroy(&reloaded);
    lz_value_destroy(&parsed);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lz_config_t *config = load_text(data, size);
    if (config) {
        check_settings(config);
        check_json_reloads(config);
        lz_config_destroy(&config);
    }
    return 0;
}
