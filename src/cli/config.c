/* lz config: the configuration a liberzmq program would run with here
 * (defaults < --config FILE or $LIBERZMQ_CONFIG < LIBERZMQ_* variables),
 * each key with where its value came from, secrets hidden: the answer to
 * "why does my service use that timeout?". */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"

static const lz_cli_command_t config_command = {
    .name = "config",
    .usage = "lz config [--config FILE] [--format yaml|json] [KEY...]",
    .help = "Print the configuration a liberzmq program started here would get: the\n"
            "defaults, then --config FILE (or $LIBERZMQ_CONFIG), then the LIBERZMQ_*\n"
            "variables. As YAML (the default), one 'key: value  # source' line per key,\n"
            "the source being default, file PATH or env NAME; as JSON, the sectioned\n"
            "object a config file holds. Given keys, print only their values, one per\n"
            "line: strings bare (as JSON text when they hold a control character, such\n"
            "as a newline), or as JSON text with --format json. Secrets\n"
            "(security.curve_secret_key, security.plain_password, tracing.otlp_headers)\n"
            "print as \"(hidden)\" when set.\n"
            "\nOptions:\n"
            "  --config FILE          the configuration file to read\n"
            "  --format yaml|json     the output form (default yaml)\n"
            "\nExamples:\n"
            "  lz config --config service.yaml\n"
            "  LIBERZMQ_ZMQ__LINGER=0 lz config zmq.linger\n"
            "  lz config --format json > effective.json\n",
    .options = LZ_OPT_CONFIG | LZ_OPT_FORMAT,
    .makes_no_context = true, // it shows values; a plugin registers codecs and hooks
    .max_args = INT_MAX,
};

// section_and_name splits "zmq.linger" into the JSON form's section object
// (root itself for a key without one) and the name inside it.
static lz_value_t *section_and_name(lz_value_t *root, const char *key, const char **name) {
    const char *dot = strchr(key, '.');
    *name = dot ? dot + 1 : key;
    if (!dot) return root;
    char section[64];
    snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
    return lz_value_get(root, section);
}

// key_value finds key (an alias too) in the JSON form; NULL for an unknown key.
static const lz_value_t *key_value(lz_value_t *root, const char *key) {
    const char *name;
    key = lz_config_key_name(key);
    const lz_value_t *section = key ? section_and_name(root, key, &name) : NULL;
    return section ? lz_value_get(section, name) : NULL;
}

// hide_secrets replaces the value of each key that carries a credential (config.h), when set.
static int hide_secrets(lz_value_t *root) {
    for (size_t k = 0; k < lz_config_key_count(); k++) {
        const char *key = lz_config_key_at(k);
        if (!lz_config_key_is_secret(key)) continue;
        const char *name, *value = lz_value_get_string(key_value(root, key), NULL);
        lz_value_t *section = section_and_name(root, key, &name);
        if (value && *value && lz_value_object_set_string(section, name, "(hidden)") != LZ_OK) return LZ_ENOMEM;
    }
    return LZ_OK;
}

// bare_text: value's text to print bare, or NULL when it is not a string,
// or holds a control character: a newline (a LIBERZMQ_* variable may
// carry one) would split its line in two, an escape sequence act on the
// terminal. Such a string prints as JSON text, "\n" and all.
static const char *bare_text(const lz_value_t *value) {
    size_t len = 0;
    const char *text = lz_value_get_string(value, &len);
    for (size_t i = 0; text && i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) return NULL;
    return text;
}

// print_entry prints one line: "KEY: " unless key is NULL, the value as
// JSON text (a string bare when bare, unless bare_text refuses it),
// "  # SOURCE" unless source is NULL. One printf once the text is made: a
// value that cannot be rendered for want of memory leaves no part of its
// line behind.
static int print_entry(const char *key, const lz_value_t *value, bool bare, const char *source) {
    const char *text = bare ? bare_text(value) : NULL;
    char *json = text ? NULL : lz_value_to_json(value);
    if (!text && !json) return lz_last_error_code();
    int printed = printf("%s%s%s%s%s\n", key ? key : "", key ? ": " : "", text ? text : json, source ? "  # " : "",
                         source ? source : "");
    free(json);
    return printed < 0 ? LZ_EIO : LZ_OK;
}

// print_keys prints the values of the keys given, strings bare (for shell
// scripts) unless the form asked for is JSON.
static int print_keys(const lz_cli_opts_t *opts, lz_value_t *root) {
    for (int i = 0; i < opts->arg_count; i++) {
        const lz_value_t *value = key_value(root, opts->args[i]);
        if (!value) return lz_cli_usage_error(opts->cmd, "no configuration key '%s'", opts->args[i]);
    }
    bool bare = strcmp(opts->format, "json") != 0;
    int rc = LZ_OK;
    for (int i = 0; i < opts->arg_count && rc == LZ_OK; i++)
        rc = print_entry(NULL, key_value(root, opts->args[i]), bare, NULL);
    return rc == LZ_OK ? LZ_EXIT_OK : lz_cli_fail(opts, rc, "output");
}

static int print_yaml(const lz_cli_opts_t *opts, const lz_config_t *config, lz_value_t *root) {
    int rc = LZ_OK;
    for (size_t k = 0; k < lz_config_key_count() && rc == LZ_OK; k++) {
        const char *key = lz_config_key_at(k);
        rc = print_entry(key, key_value(root, key), false, lz_config_source(config, key));
    }
    return rc == LZ_OK ? LZ_EXIT_OK : lz_cli_fail(opts, rc, "output");
}

static int print_json(const lz_cli_opts_t *opts, lz_value_t *root) {
    int rc = print_entry(NULL, root, false, NULL);
    return rc == LZ_OK ? LZ_EXIT_OK : lz_cli_fail(opts, rc, "output");
}

static int print_config(const lz_cli_opts_t *opts, const lz_config_t *config) {
    char *json = lz_config_to_json(config);
    lz_value_t *root = json ? lz_value_from_json(json, strlen(json)) : NULL;
    free(json);
    int rc = root ? hide_secrets(root) : lz_last_error_code();
    if (rc != LZ_OK) rc = lz_cli_fail(opts, rc, "configuration");
    else if (opts->arg_count) rc = print_keys(opts, root);
    else if (strcmp(opts->format, "json") == 0) rc = print_json(opts, root);
    else rc = print_yaml(opts, config, root);
    lz_value_destroy(&root);
    return rc;
}

static int config_run(const lz_cli_opts_t *opts) {
    if (opts->format && strcmp(opts->format, "yaml") != 0 && strcmp(opts->format, "json") != 0)
        return lz_cli_usage_error(opts->cmd, "--format is yaml or json, not '%s'", opts->format);
    lz_cli_opts_t with_format = *opts;
    if (!with_format.format) with_format.format = "yaml";
    lz_config_t *config = lz_config_new();
    if (!config) return lz_cli_fail(opts, LZ_ENOMEM, "configuration");
    int rc = lz_cli_load_config(opts, config, false); // what a program gets, not lz's own tool defaults
    if (rc == 0) rc = print_config(&with_format, config);
    lz_config_destroy(&config);
    return rc;
}

int lz_cmd_config(int argc, char **argv) { return lz_cli_main(&config_command, argc, argv, config_run); }
