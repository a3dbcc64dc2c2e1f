/* The lz tool's shared plumbing: one table-driven option parser for every
 * subcommand, configuration and context setup, stdin lines to messages,
 * messages to JSON lines, and library errors to exit codes. */
#include "cli/options.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cli/number.h"
#include "core/secure_env.h"
#include "serial/utf8.h"

// A stream sender keeps queued messages this long at exit unless the
// configuration says otherwise, so "exits once flushed" holds.
#define LZ_CLI_FLUSH_LINGER_MS 2000

typedef struct lz_cli_option {
    const char *name;
    unsigned bit;
    const char *metavar; // NULL: a flag without value
} lz_cli_option_t;

static const lz_cli_option_t lz_cli_options[] = {
    {"bind", LZ_OPT_BIND, "URL"},       {"connect", LZ_OPT_CONNECT, "URL"},
    {"topic", LZ_OPT_TOPIC, "T"},       {"type", LZ_OPT_TYPE, "T"},
    {"raw", LZ_OPT_RAW, NULL},          {"format", LZ_OPT_FORMAT, "NAME"},
    {"count", LZ_OPT_COUNT, "N"},       {"timeout", LZ_OPT_TIMEOUT, "T"},
    {"retries", LZ_OPT_RETRIES, "N"},   {"strategy", LZ_OPT_STRATEGY, "S"},
    {"settle", LZ_OPT_SETTLE, "MS"},    {"echo", LZ_OPT_ECHO, NULL},
    {"exec", LZ_OPT_EXEC, "CMD"},       {"frontend", LZ_OPT_FRONTEND, "URL"},
    {"backend", LZ_OPT_BACKEND, "URL"}, {"capture", LZ_OPT_CAPTURE, "URL"},
    {"config", LZ_OPT_CONFIG, "FILE"},   {"schema", LZ_OPT_SCHEMA, "FILE"},
    {"plugin", LZ_OPT_PLUGIN, "PATH"},   {"wait", LZ_OPT_WAIT, "MS"},
    {"ttl", LZ_OPT_TTL, "MS"},           {"locks", LZ_OPT_LOCKS, NULL},
};

// Options that may be given several times; the others only once.
#define LZ_CLI_REPEATABLE (LZ_OPT_BIND | LZ_OPT_CONNECT | LZ_OPT_TOPIC | LZ_OPT_PLUGIN)

// print_line writes one diagnostic line: control characters from odd
// arguments (a newline in a URL...) must not split it.
static void print_line(const char *text) {
    char line[1024];
    snprintf(line, sizeof line, "%s", text);
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "%s\n", line);
}

// The command this process runs (one per process), for diagnostics from
// code that has no options at hand.
static const lz_cli_command_t *current_command;

// The --schema of this process (one command per process); nodes borrow it
// until lz_cli_main ends.
static lz_schema_t *cli_schema;

void lz_cli_errorf(const char *format, ...) {
    char message[768], line[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    snprintf(line, sizeof line, "lz %s: %s", current_command ? current_command->name : "", message);
    print_line(line);
}

int lz_cli_usage_error(const lz_cli_command_t *cmd, const char *format, ...) {
    char message[512], line[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    snprintf(line, sizeof line, "lz %s: %s (usage: %s; see 'lz %s --help')", cmd->name, message, cmd->usage,
             cmd->name);
    print_line(line);
    return LZ_EXIT_USAGE;
}

// accepted_options: cmd's LZ_OPT_* bits, with --plugin wherever --config
// shapes a context (lz config makes none: a plugin would load into nothing).
static unsigned accepted_options(const lz_cli_command_t *cmd) {
    bool plugins = (cmd->options & LZ_OPT_CONFIG) && !cmd->makes_no_context;
    return cmd->options | (plugins ? LZ_OPT_PLUGIN : 0);
}

static void print_help(const lz_cli_command_t *cmd) {
    printf("usage: %s\n\n%s\nCommon options:\n", cmd->usage, cmd->help);
    if (cmd->options & LZ_OPT_CONFIG)
        printf("  --config FILE     configuration file (YAML or JSON, as the library's;\n"
               "                    default $LIBERZMQ_CONFIG); LIBERZMQ_* variables override it\n");
    if (cmd->watches_config)
        printf("                    followed while running: a change reloads its live keys\n"
               "                    (docs/configuration.md, Reloading)\n");
    if (accepted_options(cmd) & LZ_OPT_PLUGIN)
        printf("  --plugin PATH     load the plugin at PATH (docs/plugins.md), after those of\n"
               "                    plugins.load; repeatable\n");
    if (cmd->options & LZ_OPT_SCHEMA)
        printf("  --schema FILE     a JSON Schema every message must match (docs/schema.md):\n"
               "                    %s\n", cmd->schema_help);
    printf("  --help            this help\n\n");
    lz_cli_print_exit_codes(stdout, cmd->exits);
}

void lz_cli_print_exit_codes(FILE *out, unsigned exits) {
    static const struct {
        unsigned bit;
        const char *text;
    } extra[] = {
        {LZ_CLI_EXITS_TIMEOUT, "3 timeout"},
        {LZ_CLI_EXITS_REMOTE, "4 error reply"},
        {LZ_CLI_EXITS_ENDPOINT, "5 bind/connect failed"},
        {LZ_CLI_EXITS_LOCK, "6 lock lost"},
        {0, "7 out of memory"}, // any command
        {LZ_CLI_EXITS_LOCK, "otherwise the exit status of lz lock's CMD"}, // lz --help lists it too
    };
    char text[256] = "Exit codes: 0 ok, 1 runtime failure, 2 bad usage";
    size_t len = strlen(text), column = len;
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        if (extra[i].bit && !(exits & extra[i].bit)) continue;
        size_t need = strlen(extra[i].text) + 2; // ", " before it, or the indent after a wrap
        bool wrap = column + need > 76;
        len += (size_t)snprintf(text + len, sizeof text - len, wrap ? ",\n  %s" : ", %s", extra[i].text);
        column = wrap ? need : column + need;
    }
    fprintf(out, "%s.\n", text);
}

static const lz_cli_option_t *find_option(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof lz_cli_options / sizeof lz_cli_options[0]; i++)
        if (strlen(lz_cli_options[i].name) == len && strncmp(lz_cli_options[i].name, name, len) == 0)
            return &lz_cli_options[i];
    return NULL;
}

// A lone "-" and negative numbers ("-5", a JSON argument) are not options.
static bool is_option(const char *arg) {
    return arg[0] == '-' && arg[1] != '\0' && !isdigit((unsigned char)arg[1]);
}

// parse_timeout reads a positive decimal number of unit_ms milliseconds
// (fractions allowed) into whole milliseconds.
static bool parse_timeout(const char *text, int unit_ms, int *out) {
    if (!lz_cli_is_decimal(text)) return false;
    errno = 0;
    double v = strtod(text, NULL);
    if (errno || v <= 0 || v * unit_ms > INT_MAX) return false;
    double ms = v * unit_ms;
    *out = (int)ms;
    if (*out == 0 && ms > 0) *out = 1;
    return true;
}

// A URL is scheme://address; commas would split the endpoint list. What
// an address must be is the library's to say (lz_cli_fail_node).
static bool valid_url(const char *url) {
    const char *sep = strstr(url, "://");
    if (!sep || sep == url || sep[3] == '\0' || strchr(url, ',')) return false;
    for (const char *p = url; p < sep; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-') return false;
    return true;
}

// An endpoint spec is a URL with an optional '@' (bind) or '>' (connect).
static bool valid_spec(const char *spec) {
    return valid_url(spec + (spec[0] == '@' || spec[0] == '>'));
}

static int add_endpoint(lz_cli_opts_t *opts, char side, const char *url) {
    if (!valid_url(url))
        return lz_cli_usage_error(opts->cmd, "bad endpoint '%s' (expected tcp://HOST:PORT, ipc://PATH or inproc://NAME)", url);
    size_t old = opts->endpoints ? strlen(opts->endpoints) : 0, len = strlen(url);
    char *list = realloc(opts->endpoints, old + len + 3);
    if (!list) return lz_cli_fail(opts, LZ_ENOMEM, "endpoints");
    char *end = list + old;
    if (old) *end++ = ',';
    *end++ = side;
    memcpy(end, url, len + 1);
    opts->endpoints = list;
    opts->endpoint_count++;
    return LZ_CLI_CONTINUE;
}

// bad_value refuses value, saying what opt takes.
static int bad_value(const lz_cli_opts_t *opts, const lz_cli_option_t *opt, const char *value, const char *takes) {
    return lz_cli_usage_error(opts->cmd, "bad value '%s' for --%s: %s", value, opt->name, takes);
}

// store_range reads value, a whole number from min to max, into *out;
// a refusal names the range and unit ("0 to 600000 ms").
static int store_range(const lz_cli_opts_t *opts, const lz_cli_option_t *opt, const char *value, long min, long max,
                       const char *unit, int *out) {
    long n;
    if (lz_cli_parse_long(value, min, max, &n)) {
        *out = (int)n;
        return LZ_CLI_CONTINUE;
    }
    char takes[64];
    snprintf(takes, sizeof takes, "%ld to %ld%s", min, max, unit);
    return bad_value(opts, opt, value, takes);
}

static int bad_text(const lz_cli_opts_t *opts, const lz_cli_option_t *opt) {
    return lz_cli_usage_error(opts->cmd, "--%s must be UTF-8 text", opt->name);
}

static int store_spec(lz_cli_opts_t *opts, const lz_cli_option_t *opt, const char *value, const char **field) {
    if (!valid_spec(value)) return lz_cli_usage_error(opts->cmd, "bad endpoint '%s' for --%s", value, opt->name);
    *field = value;
    return LZ_CLI_CONTINUE;
}

// store_option records one option; returns LZ_CLI_CONTINUE or an exit code.
static int store_option(lz_cli_opts_t *opts, const lz_cli_option_t *opt, const char *value) {
    long n;
    switch (opt->bit) {
    case LZ_OPT_BIND: return add_endpoint(opts, '@', value);
    case LZ_OPT_CONNECT: return add_endpoint(opts, '>', value);
    case LZ_OPT_TOPIC:
        if (!lz__utf8_valid(value, strlen(value))) return bad_text(opts, opt);
        opts->topics[opts->topic_count++] = value;
        break;
    case LZ_OPT_TYPE:
        if (!lz__utf8_valid(value, strlen(value))) return bad_text(opts, opt);
        opts->type = value;
        break;
    case LZ_OPT_RAW: opts->raw = true; break;
    case LZ_OPT_FORMAT: opts->format = value; break;
    case LZ_OPT_CONFIG:
        if (!*value) return bad_value(opts, opt, value, "a file name");
        opts->config = value;
        break;
    case LZ_OPT_SCHEMA:
        if (!*value) return bad_value(opts, opt, value, "a file name");
        opts->schema = value;
        break;
    case LZ_OPT_PLUGIN:
        if (!*value) return bad_value(opts, opt, value, "a file name");
        opts->plugins[opts->plugin_count++] = value;
        break;
    case LZ_OPT_STRATEGY: opts->strategy = value; break;
    case LZ_OPT_ECHO: opts->echo = true; break;
    case LZ_OPT_EXEC: opts->exec = value; break;
    case LZ_OPT_FRONTEND: return store_spec(opts, opt, value, &opts->frontend);
    case LZ_OPT_BACKEND: return store_spec(opts, opt, value, &opts->backend);
    case LZ_OPT_CAPTURE: return store_spec(opts, opt, value, &opts->capture);
    case LZ_OPT_COUNT:
        if (!lz_cli_parse_long(value, 1, LONG_MAX, &opts->count)) return bad_value(opts, opt, value, "1 or more");
        break;
    case LZ_OPT_RETRIES: return store_range(opts, opt, value, 0, LZ_CLIENT_RETRIES_MAX, "", &opts->retries);
    case LZ_OPT_WAIT:
        if (!lz_cli_parse_long(value, 0, INT_MAX, &n)) return bad_value(opts, opt, value, "0 or more ms");
        opts->wait_ms = (int)n;
        break;
    case LZ_OPT_TTL: return store_range(opts, opt, value, 1, (long)LZ_LOCK_TIMEOUT_MAX * 1000, " ms", &opts->ttl_ms);
    case LZ_OPT_LOCKS: opts->locks = true; break;
    case LZ_OPT_SETTLE: return store_range(opts, opt, value, 0, 600000, " ms", &opts->settle_ms);
    case LZ_OPT_TIMEOUT:
        if (!parse_timeout(value, opts->cmd->timeout_unit_ms, &opts->timeout_ms))
            return bad_value(opts, opt, value,
                             opts->cmd->timeout_unit_ms == 1000 ? "seconds above 0 (fractions allowed, 0.5)"
                                                                 : "milliseconds above 0");
        break;
    default: break;
    }
    return LZ_CLI_CONTINUE;
}

// parse_one handles argv[*i] (an option), consuming its value if separate.
static int parse_one(lz_cli_opts_t *opts, int argc, char **argv, int *i, unsigned *seen) {
    const char *arg = argv[*i];
    const char *name = arg + (arg[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const lz_cli_option_t *opt = arg[1] == '-' ? find_option(name, len) : NULL;
    if (!opt || !(accepted_options(opts->cmd) & opt->bit))
        return lz_cli_usage_error(opts->cmd, "unknown option '%.*s'", (int)(name - arg + len), arg);
    if ((*seen & opt->bit) && !(opt->bit & LZ_CLI_REPEATABLE))
        return lz_cli_usage_error(opts->cmd, "option --%s given twice", opt->name);
    *seen |= opt->bit;
    const char *value = NULL;
    if (opt->metavar && eq) value = eq + 1;
    else if (opt->metavar && *i + 1 < argc) value = argv[++*i];
    else if (opt->metavar) return lz_cli_usage_error(opts->cmd, "option --%s needs a value %s", opt->name, opt->metavar);
    else if (eq) return lz_cli_usage_error(opts->cmd, "option --%s takes no value", opt->name);
    return store_option(opts, opt, value);
}

// starts_command: whether the positional argument at index (0-based) and
// all after it belong to a command cmd runs (lz lock's CMD [ARG]...).
static bool starts_command(const lz_cli_command_t *cmd, int index) {
    return cmd->command_arg > 0 && index >= cmd->command_arg;
}

// takes_value: whether the option arg takes the next argument as its value.
static bool takes_value(const char *arg) {
    if (arg[1] != '-' || strchr(arg, '=')) return false;
    const lz_cli_option_t *opt = find_option(arg + 2, strlen(arg + 2));
    return opt && opt->metavar;
}

// wants_help looks for --help or -h where lz_cli_parse reads options, so
// that it works even next to a bad option: not in an option's value (--topic
// -h), after "--", or in the command line of a command (lz lock NAME du -h).
static bool wants_help(const lz_cli_command_t *cmd, int argc, char **argv) {
    int args = 0;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (!is_option(argv[i])) {
            if (starts_command(cmd, args++)) break;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return true;
        } else if (takes_value(argv[i])) {
            i++;
        }
    }
    return false;
}

static int check_counts(const lz_cli_opts_t *opts) {
    const lz_cli_command_t *cmd = opts->cmd;
    if (opts->arg_count < cmd->min_args)
        return lz_cli_usage_error(cmd, "missing argument");
    if (opts->arg_count > cmd->max_args)
        return lz_cli_usage_error(cmd, "unexpected argument '%s'", opts->args[cmd->max_args]);
    if (cmd->needs_endpoints && opts->endpoint_count == 0)
        return lz_cli_usage_error(cmd, "no endpoint: give --bind URL or --connect URL");
    return LZ_CLI_CONTINUE;
}

// receiver_raw: a receiver's --raw is --format raw (a sender's sends its
// lines untouched, whatever the format).
static int receiver_raw(lz_cli_opts_t *opts) {
    if (!opts->raw || !opts->cmd->reports_drops) return LZ_CLI_CONTINUE;
    if (opts->format && strcmp(opts->format, "raw") != 0)
        return lz_cli_usage_error(opts->cmd, "--raw is --format raw: not with --format %s", opts->format);
    opts->format = "raw";
    return LZ_CLI_CONTINUE;
}

int lz_cli_parse(const lz_cli_command_t *cmd, int argc, char **argv, lz_cli_opts_t *opts) {
    memset(opts, 0, sizeof *opts);
    opts->cmd = cmd;
    opts->timeout_ms = -1;
    opts->retries = -1;
    opts->wait_ms = -1;
    opts->settle_ms = cmd->default_settle_ms;
    if (wants_help(cmd, argc, argv)) {
        print_help(cmd);
        return LZ_EXIT_OK;
    }
    opts->topics = calloc((size_t)argc + 1, sizeof *opts->topics);
    opts->plugins = calloc((size_t)argc + 1, sizeof *opts->plugins);
    opts->args = calloc((size_t)argc + 1, sizeof *opts->args);
    if (!opts->topics || !opts->plugins || !opts->args) return lz_cli_fail(opts, LZ_ENOMEM, "arguments");
    unsigned seen = 0;
    bool options_done = false;
    int rc = LZ_CLI_CONTINUE;
    for (int i = 1; i < argc && rc == LZ_CLI_CONTINUE; i++) {
        if (!options_done && strcmp(argv[i], "--") == 0) options_done = true;
        else if (options_done || !is_option(argv[i])) {
            options_done |= starts_command(cmd, opts->arg_count);
            opts->args[opts->arg_count++] = argv[i];
        } else {
            rc = parse_one(opts, argc, argv, &i, &seen);
        }
    }
    if (rc == LZ_CLI_CONTINUE) rc = check_counts(opts);
    return rc == LZ_CLI_CONTINUE ? receiver_raw(opts) : rc;
}

void lz_cli_opts_free(lz_cli_opts_t *opts) {
    free(opts->endpoints);
    free(opts->topics);
    free(opts->plugins);
    free(opts->args);
    memset(opts, 0, sizeof *opts);
}

int lz_cli_main(const lz_cli_command_t *cmd, int argc, char **argv, lz_cli_run_fn run) {
    lz_cli_opts_t opts;
    current_command = cmd;
    int rc = lz_cli_parse(cmd, argc, argv, &opts);
    if (rc == LZ_CLI_CONTINUE) rc = run(&opts);
    lz_schema_destroy(&cli_schema); // run has closed the nodes that borrowed it
    lz_cli_opts_free(&opts);
    return rc;
}

int lz_cli_exit_code(int err) {
    switch (err) {
    case LZ_OK: return LZ_EXIT_OK;
    case LZ_EINVAL: return LZ_EXIT_USAGE;
    case LZ_ETIMEOUT:
    case LZ_EAGAIN: return LZ_EXIT_TIMEOUT;
    case LZ_EREMOTE: return LZ_EXIT_REMOTE;
    case LZ_ECONNECTION:
    case LZ_EUNREACHABLE: return LZ_EXIT_CONNECTION;
    case LZ_ENOMEM: return LZ_EXIT_NOMEM;
    default: return LZ_EXIT_FAILURE;
    }
}

int lz_cli_fail(const lz_cli_opts_t *opts, int err, const char *what) {
    // The thread's detail belongs to err only if it was the last failure.
    const char *detail = lz_last_error();
    if (lz_last_error_code() != err || !detail || !*detail) detail = lz_strerror(err);
    // Exit 7 always says why, even when the detail names only what failed for it.
    bool unsaid = err == LZ_ENOMEM && !strstr(detail, lz_strerror(LZ_ENOMEM));
    char line[1024];
    snprintf(line, sizeof line, "lz %s: %s: %s%s%s", opts->cmd->name, what, unsaid ? lz_strerror(LZ_ENOMEM) : "",
             unsaid ? ": " : "", detail);
    print_line(line);
    return lz_cli_exit_code(err);
}

const char *lz_cli_endpoint_urls(const lz_cli_opts_t *opts, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = '\0';
    for (const char *spec = opts->endpoints; spec && *spec && len < size;) {
        size_t n = strcspn(++spec, ","); // past the '@' or '>' add_endpoint put first
        len += (size_t)snprintf(buf + len, size - len, "%s%.*s", len ? ", " : "", (int)n, spec);
        spec += n + (spec[n] == ',');
    }
    return buf;
}

int lz_cli_fail_node(const lz_cli_opts_t *opts) {
    int err = lz_last_error_code();
    // A URL libzmq refused itself (unknown transport, bad address), or
    // another argument the constructor refused (lz lock's name): the
    // detail says which.
    if (err == LZ_EINVAL) return lz_cli_usage_error(opts->cmd, "bad argument: %s", lz_last_error());
    return lz_cli_fail(opts, err, err == LZ_ECONFIG || err == LZ_ENOTFOUND ? "configuration" : "endpoints");
}

static bool is_default(const lz_config_t *config, const char *key) {
    const char *source = lz_config_source(config, key);
    return source && strcmp(source, "default") == 0;
}

// Whether tool_defaults took the library's log over (nobody configured it).
static bool log_taken_over;

// tool_defaults adapts defaults nobody configured to a command-line tool:
// - zmq.immediate, for a sender whose messages each need a taker: a task
//   sent towards a puller that never comes would otherwise wait in its
//   connection's queue and be dropped at exit, after exit code 0.
// - zmq.linger: a stream sender keeps queued messages long enough to leave
//   ("exits once flushed"); a receiver has nothing worth waiting for.
// - logging.level: off while the nodes are made, since lz reports a failed
//   bind or connect itself; then a receiver's warnings (a dropped message)
//   come back as lz lines (lz_cli_node_setup).
//   LIBERZMQ_LOGGING__LEVEL or LIBERZMQ_DEBUG bring the library's own log.
static int tool_defaults(lz_config_t *config, const lz_cli_command_t *cmd) {
    bool flush = cmd->flush_on_exit;
    int64_t linger = 0;
    int err = 0;
    log_taken_over = is_default(config, "logging.level") && is_default(config, "debug");
    if (log_taken_over) err = lz_config_set(config, "logging.level", "off");
    if (!err && cmd->needs_peer && is_default(config, "zmq.immediate"))
        err = lz_config_set_bool(config, "zmq.immediate", true);
    if (err || !is_default(config, "zmq.linger")) return err;
    if (flush && lz_config_get_int(config, "zmq.linger", &linger) == 0 &&
        (linger < 0 || linger >= LZ_CLI_FLUSH_LINGER_MS))
        return 0;
    return lz_config_set_int(config, "zmq.linger", flush ? LZ_CLI_FLUSH_LINGER_MS : 0);
}

static const char *config_file(const lz_cli_opts_t *opts) {
    const char *file = opts->config ? opts->config : lz__environment_config_file();
    return file && *file ? file : NULL;
}

int lz_cli_load_config(const lz_cli_opts_t *opts, lz_config_t *config, bool as_tool) {
    const char *file = config_file(opts);
    int err;
    if (file && (err = lz_config_load_file(config, file)) != 0)
        return lz_cli_fail(opts, err, "configuration");
    if ((err = lz_config_load_env(config)) != 0) return lz_cli_fail(opts, err, "environment");
    if (as_tool && (err = tool_defaults(config, opts->cmd)) != 0)
        return lz_cli_fail(opts, err, "configuration");
    return 0;
}

int lz_cli_open(const lz_cli_opts_t *opts, lz_context_t **ctx) {
    *ctx = NULL;
    lz_config_t *config = lz_config_new();
    if (!config) return lz_cli_fail(opts, LZ_ENOMEM, "configuration");
    int rc = lz_cli_load_config(opts, config, true);
    if (rc == 0 && !(*ctx = lz_context_new(config)))
        rc = lz_cli_fail(opts, lz_last_error_code(), "context");
    for (size_t i = 0; rc == 0 && i < opts->plugin_count; i++)
        if (lz_context_load_plugin(*ctx, opts->plugins[i]) != LZ_OK)
            rc = lz_cli_fail(opts, lz_last_error_code(), "--plugin");
    if (rc != 0) lz_context_destroy(ctx);
    lz_config_destroy(&config);
    // The tool's own defaults (tool_defaults) are API values: reloads keep them.
    const char *file = config_file(opts);
    if (rc == 0 && opts->cmd->watches_config && file && lz_context_watch(*ctx, file) < 0)
        rc = lz_cli_fail(opts, lz_last_error_code(), "configuration");
    return rc;
}

// tool_log prints a library record as one lz diagnostic line, "lz CMD:"
// standing for the node's name where the record starts with it.
static void tool_log(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level;
    (void)arg;
    size_t len = strlen(component);
    if (strncmp(message, component, len) == 0 && strncmp(message + len, ": ", 2) == 0) message += len + 2;
    lz_cli_errorf("%s", message);
}

// take_log_over shows a receiver the library's warnings and errors
// (nothing received is dropped without a word) once lz has made its nodes.
// A sender or req reports its own failures; the rest would be noise there.
static int take_log_over(const lz_cli_command_t *cmd, lz_context_t *ctx) {
    if (!log_taken_over || !cmd->reports_drops) return 0;
    lz_logger_t *log = lz_context_logger(ctx);
    int err = lz_logger_to_callback(log, tool_log, NULL);
    if (!err) lz_logger_set_level(log, LZ_LOG_WARNING);
    return err;
}

// A schema file larger than this is surely not one.
#define LZ_CLI_SCHEMA_MAX ((size_t)16 << 20)

int lz_cli_read_all(FILE *in, const char *what, size_t max, lz_buffer_t *out) {
    enum { CHUNK = 65536 };
    for (size_t n = CHUNK; n == CHUNK;) {
        void *room = lz_buffer_reserve(out, CHUNK);
        if (!room) return LZ_ENOMEM;
        n = fread(room, 1, CHUNK, in);
        lz_buffer_commit(out, n);
        if (lz_buffer_size(out) > max) {
            lz_cli_errorf("%s: longer than %zu bytes", what, max);
            return LZ_EIO;
        }
    }
    if (!ferror(in)) return 0;
    lz_cli_errorf("%s: %s", what, strerror(errno));
    return LZ_EIO;
}

// load_schema compiles the --schema file into cli_schema.
static int load_schema(const lz_cli_opts_t *opts) {
    char what[1024];
    snprintf(what, sizeof what, "schema %s", opts->schema);
    FILE *file = fopen(opts->schema, "rb");
    if (!file && errno == ENOMEM) return lz_cli_fail(opts, LZ_ENOMEM, what); // fopen allocates: not a bad file
    if (!file) {
        lz_cli_errorf("%s: %s", what, strerror(errno));
        return LZ_EXIT_FAILURE;
    }
    lz_buffer_t *text = lz_buffer_new();
    int err = text ? lz_cli_read_all(file, what, LZ_CLI_SCHEMA_MAX, text) : LZ_ENOMEM;
    fclose(file);
    if (!err && !(cli_schema = lz_schema_from_json(lz_buffer_data(text), lz_buffer_size(text))))
        err = lz_last_error_code();
    lz_buffer_destroy(&text);
    if (err == LZ_EIO) return LZ_EXIT_FAILURE; // reported by lz_cli_read_all
    int rc = err ? lz_cli_fail(opts, err, what) : LZ_EXIT_OK;
    // A file that is not a schema is a runtime failure (exit 1), whatever the library calls it.
    return rc == LZ_EXIT_OK || err == LZ_ENOMEM ? rc : LZ_EXIT_FAILURE;
}

/* A tool for looking at traffic shows what it cannot read instead of
 * dropping it. The tolerant codec wraps the --format codec; bytes that do
 * not decode become a bytes value, which the record shows as base64 (and
 * the library hands a puller as a task of type "unknown"). */
static int tolerant_encode(void *inner, const lz_value_t *value, lz_buffer_t *out) {
    return lz_serializer_encode(inner, value, out);
}

static int tolerant_decode(void *inner, const void *data, size_t size, lz_value_t **out) {
    int err = lz_serializer_decode(inner, data, size, out);
    if (err == 0 || err == LZ_ENOMEM) return err; // memory short: the frame is not therefore undecodable
    *out = lz_value_bytes(data, size);
    return *out ? 0 : LZ_ENOMEM;
}

int lz_cli_use_tolerant_codec(const lz_cli_opts_t *opts, lz_context_t *ctx, lz_node_t *node,
                              const lz_serializer_t *inner) {
    const lz_serializer_ops_t ops = {
        .name = "lz-tolerant",
        .content_type = lz_serializer_content_type(inner),
        .encode = tolerant_encode,
        .decode = tolerant_decode,
    };
    int err = lz_serializer_register(ctx, &ops, (void *)inner);
    if (!err) err = lz_node_set_serializer(node, ops.name);
    return err ? lz_cli_fail(opts, err, "format") : 0;
}

int lz_cli_node_setup(const lz_cli_opts_t *opts, lz_context_t *ctx, lz_node_t *node,
                      const lz_serializer_t **serializer) {
    if (opts->format && !lz_serializer_find(ctx, opts->format))
        return lz_cli_usage_error(opts->cmd, "unknown format '%s' (json, msgpack, raw or a registered codec)",
                                  opts->format);
    int err = opts->format ? lz_node_set_serializer(node, opts->format) : 0;
    if (err) return lz_cli_fail(opts, err, "format");
    const lz_serializer_t *found = lz_serializer_find(ctx, lz_node_serializer_name(node));
    if (!found) return lz_cli_fail(opts, lz_last_error_code(), "format");
    if (opts->cmd->needs_envelope && (lz_serializer_flags(found) & LZ_SERIALIZER_OPAQUE))
        return lz_cli_usage_error(opts->cmd, "format '%s' carries no action: requests need json, msgpack or another "
                                             "codec with an envelope", lz_serializer_name(found));
    if (opts->schema && opts->cmd->reports_drops && (lz_serializer_flags(found) & LZ_SERIALIZER_OPAQUE))
        return lz_cli_usage_error(opts->cmd, "--schema checks decoded data: not with format '%s' (--raw)",
                                  lz_serializer_name(found));
    if ((err = take_log_over(opts->cmd, ctx)) != 0) return lz_cli_fail(opts, err, "logging");
    if (opts->schema && !cli_schema && (err = load_schema(opts)) != 0) return err;
    if (cli_schema && (err = lz_node_set_schema(node, NULL, cli_schema)) != 0) return lz_cli_fail(opts, err, "schema");
    if (serializer) *serializer = found;
    lz_cli_say_bound(node, opts->endpoints, "");
    return 0;
}

// chosen_by_libzmq: whether binding url (len bytes) leaves libzmq to
// choose the address: a tcp port * or 0, or ipc://* (a fresh path).
static bool chosen_by_libzmq(const char *url, size_t len) {
    if (len == 7 && memcmp(url, "ipc://*", 7) == 0) return true;
    if (len < 8 || memcmp(url, "tcp://", 6) != 0) return false;
    size_t port = len; // where the port starts, after the last ':'
    while (port > 6 && url[port - 1] != ':') port--;
    return port > 6 && len - port == 1 && (url[port] == '*' || url[port] == '0');
}

void lz_cli_say_bound(lz_node_t *node, const char *endpoints, const char *role) {
    const char *last = NULL; // the last URL bound
    size_t last_len = 0;
    for (const char *item = endpoints; item && *item;) {
        size_t n = strcspn(item, ","), marked = item[0] == '@' || item[0] == '>';
        if (item[0] != '>') {
            if (last && chosen_by_libzmq(last, last_len))
                lz_cli_errorf("the address libzmq chose for %.*s cannot be told: give it as the last --bind",
                              (int)last_len, last);
            last = item + marked;
            last_len = n - marked;
        }
        item += n + (item[n] == ',');
    }
    if (last && chosen_by_libzmq(last, last_len)) lz_cli_errorf("bound %s%s", lz_node_endpoint(node), role);
}

// The stop signals this process blocked (one command per process), for
// output to a blocked standard output, which must not outlast them.
static sigset_t blocked_stops;
static bool stops_blocked;

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define STOP_SIGNAL_COUNT (sizeof stop_signals / sizeof stop_signals[0])

// The stop signals lz was started with ignored (lz_cli_note_ignored_signals).
static sigset_t ignored_stops;

void lz_cli_note_ignored_signals(void) {
    sigemptyset(&ignored_stops);
    for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++) {
        struct sigaction action;
        if (sigaction(stop_signals[i], NULL, &action) == 0 && action.sa_handler == SIG_IGN)
            sigaddset(&ignored_stops, stop_signals[i]);
    }
}

void lz_cli_stop_signals(sigset_t *stop) {
    sigemptyset(stop);
    for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++)
        if (!sigismember(&ignored_stops, stop_signals[i])) sigaddset(stop, stop_signals[i]);
}

void lz_cli_block_stop_signals(sigset_t *stop) {
    lz_cli_stop_signals(stop);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
    blocked_stops = *stop;
    stops_blocked = true;
}

// stop_pending takes a pending stop signal (they are blocked in every
// thread, lz_cli_block_stop_signals): whether there was one.
static bool stop_pending(const sigset_t *stop) {
    const struct timespec now = {0, 0};
    return sigtimedwait(stop, NULL, &now) > 0;
}

int64_t lz_cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lz_cli_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

lz_value_t *lz_cli_value_from_text(const char *text, size_t len) {
    lz_value_t *value = lz_value_from_json(text, len);
    // JSON text that could not be parsed for want of memory is not a string.
    if (value || lz_last_error_code() == LZ_ENOMEM) return value;
    return lz__utf8_valid(text, len) ? lz_value_stringn(text, len) : lz_value_bytes(text, len);
}

lz_value_t *lz_cli_value_from_output(const char *text, size_t len) {
    while (len > 0 && memchr(" \t\r\n", text[len - 1], 4)) len--;
    return len ? lz_cli_value_from_text(text, len) : lz_value_null();
}

// line_length drops the newline (and a CR before it unless raw).
static size_t line_length(const char *line, size_t len, bool raw) {
    if (len > 0 && line[len - 1] == '\n') len--;
    if (!raw && len > 0 && line[len - 1] == '\r') len--;
    return len;
}

// send_line sends one line; a failure is reported and returned.
static int send_line(const lz_cli_opts_t *opts, bool raw, const char *line, size_t len, long lineno,
                     lz_cli_send_fn send, void *arg) {
    int err;
    if (raw) {
        err = send(arg, NULL, line, len);
    } else {
        lz_value_t *value = lz_cli_value_from_text(line, len);
        err = value ? send(arg, value, NULL, 0) : LZ_ENOMEM;
        lz_value_destroy(&value);
    }
    if (err) {
        char what[48];
        snprintf(what, sizeof what, "line %ld", lineno);
        lz_cli_fail(opts, err, what);
    }
    return err;
}

// read_line reads the next line of in, its newline included, into *line
// (grown as needed, NUL-terminated) and returns its length: -1 at the end
// of input or on a read error, LZ_ENOMEM when memory runs out. A line
// longer than LZ_CLI_LINE_MAX is read to its end but not kept (*too_long,
// and 0 returned): input with no newline at all (a binary file, /dev/zero)
// would otherwise take every byte of memory. Only one thread reads in.
static ssize_t read_line(FILE *in, char **line, size_t *cap, bool *too_long) {
    size_t len = 0, total = 0;
    int c = EOF;
    while ((c = getc_unlocked(in)) != EOF) {
        if (++total <= LZ_CLI_LINE_MAX) {
            if (len + 2 > *cap) {
                size_t want = *cap ? 2 * *cap : 4096;
                char *grown = realloc(*line, want);
                if (!grown) return LZ_ENOMEM;
                *line = grown;
                *cap = want;
            }
            (*line)[len++] = (char)c;
        }
        if (c == '\n') break;
    }
    if (total == 0) return -1;
    *too_long = total > LZ_CLI_LINE_MAX;
    if (*too_long) len = 0;
    (*line)[len] = '\0';
    return (ssize_t)len;
}

int lz_cli_pump_lines(const lz_cli_opts_t *opts, FILE *in, bool raw, lz_cli_send_fn send, void *arg) {
    lz_cli_sleep_ms(opts->settle_ms);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    bool skipped = false, too_long = false;
    while (rc == 0 && (n = read_line(in, &line, &cap, &too_long)) >= 0) {
        lineno++;
        if (too_long) {
            lz_cli_errorf("line %ld: longer than %zu bytes: skipped", lineno, LZ_CLI_LINE_MAX);
            skipped = true;
            continue;
        }
        int err = send_line(opts, raw, line, line_length(line, (size_t)n, raw), lineno, send, arg);
        // A value the codec cannot carry costs that line only.
        if (err == LZ_ESERIALIZATION || err == LZ_EVALIDATION) skipped = true;
        else if (err) rc = lz_cli_exit_code(err);
    }
    if (n == LZ_ENOMEM) rc = lz_cli_fail(opts, LZ_ENOMEM, "reading standard input");
    if (rc == 0 && ferror(in)) {
        lz_cli_errorf("reading standard input: %s", strerror(errno));
        rc = LZ_EXIT_FAILURE;
    }
    free(line);
    // libzmq's linger does not cover what a slow peer has not taken yet
    // (libzmq issue #4660): give it the settle time on the way out too.
    if (rc == 0) lz_cli_sleep_ms(opts->settle_ms);
    return rc ? rc : skipped ? LZ_EXIT_FAILURE : LZ_EXIT_OK;
}

// watch_socket puts the descriptor of socket into a new epoll set, whose
// descriptor it returns (-1 when it cannot).
static int watch_socket(void *socket, int *socket_fd) {
    size_t size = sizeof *socket_fd;
    if (zmq_getsockopt(socket, ZMQ_FD, socket_fd, &size) != 0) return -1;
    int watch = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event none = {0};
    if (watch >= 0 && epoll_ctl(watch, EPOLL_CTL_ADD, *socket_fd, &none) != 0) {
        close(watch);
        watch = -1;
    }
    return watch;
}

lz_cli_flush_t lz_cli_flush_start(lz_node_t *node) {
    lz_cli_flush_t flush = {0, lz_cli_now_ms(), -1, -1};
    lz_metrics_t metrics;
    size_t size = sizeof flush.linger_ms;
    // Nothing handed to libzmq, nothing queued: however long the teardown
    // lasts (longer than a linger of a few ms, often), nothing was dropped.
    if (!node || lz_node_metrics(node, &metrics) != 0 || metrics.messages_sent == 0) return flush;
    void *socket = lz_node_zmq_socket(node);
    if (zmq_getsockopt(socket, ZMQ_LINGER, &flush.linger_ms, &size) != 0 || flush.linger_ms <= 0) return flush;
    flush.watch = watch_socket(socket, &flush.socket_fd);
    return flush;
}

// finished_in_time waits until libzmq has finished the socket (its
// descriptor is out of the epoll set), at most until the linger has
// passed since the node's destroy began, when libzmq's linger timer
// starts: whether it finished sooner.
static bool finished_in_time(const lz_cli_flush_t *flush) {
    struct epoll_event none = {0};
    while (epoll_ctl(flush->watch, EPOLL_CTL_MOD, flush->socket_fd, &none) == 0) {
        if (lz_cli_now_ms() - flush->start_ms >= flush->linger_ms) return false;
        lz_cli_sleep_ms(1);
    }
    return true;
}

int lz_cli_flush_check(const lz_cli_flush_t *flush, int rc) {
    if (flush->watch < 0) return rc;
    bool in_time = finished_in_time(flush);
    close(flush->watch);
    if (in_time) return rc;
    lz_cli_errorf("messages still queued for a slow peer when zmq.linger (%d ms) ran out were dropped; "
                  "raise zmq.linger (-1: wait as long as it takes)", flush->linger_ms);
    return rc ? rc : LZ_EXIT_TIMEOUT;
}

// A blocked standard output (a full pipe, a paused terminal) is waited for
// in slices this long, a stop signal looked for between them: lz.md's 0.1 s.
#define LZ_CLI_WRITE_CHECK_MS 50

// output_fd: the descriptor standard output is written through. A
// terminal is opened again, non-blocking: poll calls it writable while any
// room is left, and a blocking write of more than that waits in the
// kernel, where no stop signal ends it. A description of lz's own, since
// O_NONBLOCK set on standard output's would reach the shell sharing it.
// Where it cannot be opened (no /proc), standard output as it is. Only one
// thread writes standard output.
static int output_fd(void) {
    static int fd = -1;
    if (fd >= 0) return fd;
    fd = STDOUT_FILENO;
    int own = isatty(STDOUT_FILENO) ? open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) : -1;
    if (own >= 0) fd = own;
    return fd;
}

// write_some writes up to len bytes to fd. To a socket or a terminal it
// does not wait (EAGAIN: poll again): a socket that poll calls writable
// may still lack room for len bytes (it tells when half its buffer is
// free), and a terminal too, where a pipe has room for PIPE_BUF.
static ssize_t write_some(int fd, const char *text, size_t len) {
    static bool not_a_socket;
    if (!not_a_socket) {
        ssize_t n = send(fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0 || errno != ENOTSOCK) return n;
        not_a_socket = true;
    }
    return write(fd, text, len);
}

// write_out writes len bytes of text to standard output. It waits until
// standard output can take some, then writes at most PIPE_BUF bytes: a
// pipe poll calls writable takes that many at once, so no write blocks
// and a stop signal (when this process blocked them) is seen while the
// reader is stalled; a line that short also goes out whole, in one write.
// Returns 0, LZ_EIO (reported) or LZ_ECLOSED: a stop signal came first.
static int write_out(const char *text, size_t len) {
    int64_t next_check = lz_cli_now_ms() + LZ_CLI_WRITE_CHECK_MS;
    int fd = output_fd();
    for (size_t done = 0; done < len;) {
        if (stops_blocked && lz_cli_now_ms() >= next_check) {
            if (stop_pending(&blocked_stops)) return LZ_ECLOSED;
            next_check = lz_cli_now_ms() + LZ_CLI_WRITE_CHECK_MS;
        }
        struct pollfd out = {fd, POLLOUT, 0};
        int ready = poll(&out, 1, stops_blocked ? LZ_CLI_WRITE_CHECK_MS : -1);
        ssize_t n = ready > 0 ? write_some(fd, text + done, len - done < PIPE_BUF ? len - done : PIPE_BUF) : 0;
        if ((ready < 0 || n < 0) && errno != EINTR && errno != EAGAIN) {
            lz_cli_errorf("writing standard output: %s", strerror(errno));
            return LZ_EIO;
        }
        if (n > 0) done += (size_t)n;
    }
    return 0;
}

// output ends line with a newline and writes it to standard output.
static int output(lz_buffer_t *line) {
    int err = lz_buffer_append(line, "\n", 1);
    return err ? err : write_out(lz_buffer_data(line), lz_buffer_size(line));
}

int lz_cli_json(const lz_value_t *value, lz_buffer_t *out) {
    if (!value) return lz_buffer_append(out, "null", 4); // as lz_value_type(NULL) says
    return lz_serializer_encode(lz_serializer_builtin("json"), value, out);
}

int lz_cli_print_value(const lz_value_t *value) {
    lz_buffer_t *line = lz_buffer_new();
    int err = line ? lz_cli_json(value, line) : LZ_ENOMEM;
    if (err == LZ_ESERIALIZATION) lz_cli_errorf("message skipped, not printable as JSON: %s", lz_last_error());
    if (!err) err = output(line);
    lz_buffer_destroy(&line);
    return err;
}

static int put(lz_buffer_t *out, const char *text) {
    return lz_buffer_append(out, text, strlen(text));
}

// put_undecoded appends size bytes shown undecoded: a JSON string when
// text_ok and UTF-8, else their base64 followed by ,"ENCODING_KEY":"base64".
static int put_undecoded(lz_buffer_t *out, const void *bytes, size_t size, bool text_ok, const char *encoding_key) {
    bool text = text_ok && lz__utf8_valid(bytes, size);
    lz_value_t *shown = text ? lz_value_stringn(bytes, size) : lz_value_bytes(bytes, size);
    char *json = shown ? lz_value_to_json(shown) : NULL; // bytes: a base64 string
    int err = json ? put(out, json) : LZ_ENOMEM;
    char mark[64];
    snprintf(mark, sizeof mark, ",\"%s\":\"base64\"", encoding_key);
    if (!err && !text) err = put(out, mark);
    free(json);
    lz_value_destroy(&shown);
    return err;
}

// stands_for_payload: whether data is what the tolerant codec makes of a
// payload it cannot decode, the payload's very bytes (bytes a codec
// decoded never are: their encoding wraps them).
static bool stands_for_payload(const lz_value_t *data, const void *payload, size_t size) {
    size_t len = 0;
    const void *bytes = lz_value_type(data) == LZ_VALUE_BYTES ? lz_value_get_bytes(data, &len) : NULL;
    return bytes && len == size && memcmp(bytes, payload, size) == 0;
}

// record_text appends {key: name, "data": ...} (lz_cli_print_record). The
// data's JSON is written on its own, not in a record value one level
// deeper, so data as deep as the protocol allows (127 levels) has one.
static int record_text(lz_buffer_t *out, const char *key, const char *name, size_t name_size,
                       const lz_value_t *data, const void *payload, size_t size, bool text_ok) {
    char text[64];
    snprintf(text, sizeof text, "{\"%s\":", key);
    int err = put(out, text);
    snprintf(text, sizeof text, "%s_encoding", key);
    if (!err) err = name ? put_undecoded(out, name, name_size, true, text) : put(out, "null");
    if (!err) err = put(out, ",\"data\":");
    if (err) return err;
    err = data && !stands_for_payload(data, payload, size) ? lz_cli_json(data, out) : LZ_ESERIALIZATION;
    // Undecoded, or decoded yet without a JSON form (a msgpack NaN): the payload's bytes.
    if (err == LZ_ESERIALIZATION) err = put_undecoded(out, payload, size, text_ok && !data, "encoding");
    return err ? err : put(out, "}");
}

int lz_cli_print_record(const char *key, const char *name, size_t name_size, const lz_value_t *data,
                        const void *payload, size_t size, bool text_ok) {
    lz_buffer_t *line = lz_buffer_new();
    int err = line ? record_text(line, key, name, name_size, data, payload, size, text_ok) : LZ_ENOMEM;
    if (!err) err = output(line);
    lz_buffer_destroy(&line);
    return err;
}

const char *lz_cli_unconnected_note(const lz_node_t *node) {
    lz_metrics_t metrics;
    bool connected = lz_node_metrics(node, &metrics) == 0 && metrics.active_connections > 0;
    return connected ? "" : " (no peer is connected)";
}

// A receiver looks this often whether a stop signal came while it waits.
#define LZ_CLI_STOP_CHECK_MS 100

// recv_or_stop is recv(arg, timeout_ms) waiting in slices, so that a stop
// signal ends the wait: NULL with *stopped set then. The library restarts
// a receive a signal interrupts, so a handler could not end it. It looks
// for a signal (a system call) once *next_check has come, then sets the
// next look LZ_CLI_STOP_CHECK_MS later: not once per message of a busy
// stream, which a wait of that length would not notice anyway.
static lz_message_t *recv_or_stop(lz_cli_recv_fn recv, void *arg, int timeout_ms, const sigset_t *stop,
                                  int64_t *next_check, bool *stopped) {
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : lz_cli_now_ms() + timeout_ms;
    for (;;) {
        int64_t now = lz_cli_now_ms();
        if (now >= *next_check) {
            if ((*stopped = stop_pending(stop))) return NULL;
            *next_check = now + LZ_CLI_STOP_CHECK_MS;
        }
        int64_t slice = (deadline < *next_check ? deadline : *next_check) - now;
        lz_message_t *msg = recv(arg, slice > 0 ? (int)slice : 0);
        if (msg || lz_last_error_code() != LZ_ETIMEOUT || lz_cli_now_ms() >= deadline) return msg;
    }
}

int lz_cli_recv_loop(const lz_cli_opts_t *opts, lz_node_t *node, const sigset_t *stop, lz_cli_recv_fn recv,
                     lz_cli_show_fn show, void *arg) {
    int64_t next_check = 0; // a stop signal already pending is seen first
    for (long shown = 0; opts->count == 0 || shown < opts->count; shown++) {
        bool stopped = false;
        lz_message_t *msg = recv_or_stop(recv, arg, opts->timeout_ms, stop, &next_check, &stopped);
        if (stopped) return LZ_EXIT_OK;
        if (!msg && lz_last_error_code() == LZ_ETIMEOUT) {
            lz_cli_errorf("timeout: nothing received for %d ms%s", opts->timeout_ms, lz_cli_unconnected_note(node));
            return LZ_EXIT_TIMEOUT;
        }
        if (!msg) return lz_cli_fail(opts, lz_last_error_code(), "receive");
        int err = show(arg, msg);
        lz_message_destroy(&msg);
        if (err == LZ_ECLOSED) return LZ_EXIT_OK; // a stop signal while standard output was blocked
        if (err == LZ_EIO) return LZ_EXIT_FAILURE;
        if (err == LZ_ENOMEM) return lz_cli_fail(opts, err, "showing a message"); // not skipped: it would be lost
    }
    return LZ_EXIT_OK;
}
