/* Out-of-memory sweeps over the configuration (src/core/config.c and
 * yaml_scalar.c) and context reloads: each operation runs with its 1st
 * allocation failing, then its 2nd, and so on (tests/lz_oom.h), on a warm
 * thread and on threads of their own. A run where an allocation failed
 * must answer LZ_ENOMEM and leave every key's value and source, or the
 * running context, as they were; or answer exactly as a run where nothing
 * failed. No run may leak a block. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lz_test.h"
#include "lz_oom.h"

#include "core/context.h"
#include "liberzmq/security.h"

#define SWEEP_LIMIT 6000

/* ---- the files the loads read ------------------------------------------ */

static char dir[64];
static char base_yaml[PATH_MAX], rich_yaml[PATH_MAX], rich_json[PATH_MAX], unknown_key_yaml[PATH_MAX],
    broken_yaml[PATH_MAX], reload_yaml[PATH_MAX], reload_rules_yaml[PATH_MAX];

// long_text is n characters of a comma-separated list of shared objects.
static char *long_text(size_t n) {
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = i % 24 == 23 ? ',' : (char)('a' + i % 23);
    text[n] = '\0';
    return text;
}

static void write_file(char *path, const char *name, const char *format, ...) {
    snprintf(path, PATH_MAX, "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    LZ_CHECK(file != NULL);
    if (!file) return;
    va_list args;
    va_start(args, format);
    vfprintf(file, format, args);
    va_end(args);
    fclose(file);
}

// Every section, block and flow styles, anchors and aliases, tags,
// comments, YAML 1.1 forms and strings long enough to grow libyaml's buffers.
#define RICH_YAML                                                                                                 \
    "%%YAML 1.1\n---\n# liberzmq configuration: every section\n"                                                 \
    "zmq:\n  io_threads: 2 # comment\n  max_sockets: 0x400\n  linger: &wait 1_500\n  high_water_mark: 010\n"     \
    "  hwm_outbound: ~\n  hwm_inbound: !!int \"2000\"\n  send_timeout: *wait\n  receive_timeout: 1:30\n"          \
    "  request_timeout: \"2500\"\n  request_retries: ! 2\n  failed_socket_cooldown: 0b1010\n"                     \
    "  handler_max_concurrency: 8\n  reconnect_interval: 200\n  reconnect_interval_max: 400\n"                    \
    "  heartbeat_interval: 0\n  immediate: yes\n  max_message_size: -1\n"                                         \
    "logging: {level: warning, format: json, target: stderr, file_path: '%s/app.log', max_file_size: 1048576,\n" \
    "  backup_count: 3, console_output: off, syslog_ident: \"%s\"}\n"                                             \
    "serialization:\n  default: !!str msgpack\n  json_ensure_ascii: on\n  json_indent: 2\n"                      \
    "  protobuf_validate: false\n"                                                                                \
    "metrics: {prometheus_listen: \"127.0.0.1:9100\"}\n"                                                          \
    "security:\n  curve_server_key: '%s'\n  authorized_keys: >-\n    %s\n    %s\n"                              \
    "  authorized_keys_file: /etc/keys\n  allow_addresses: 127.0.0.1, 10.0.0.0/8, ::1\n"                          \
    "  deny_addresses: 10.1.0.0/16\n  audit: true\n  cut_revoked: false\n  plain_username: alice\n"               \
    "  plain_password: \"s3cr\\u00e9t\"\n  plain_users_file: /etc/users\n  gssapi_server: false\n"               \
    "  gssapi_principal: zmq/host@EXAMPLE.COM\n  gssapi_plaintext: false\n"                                       \
    "  gssapi_principals: alice@EXAMPLE.COM bob@EXAMPLE.COM\n  gssapi_principal_type: hostbased\n"               \
    "tracing:\n  enabled: true\n  log: false\n  otlp_endpoint: http://collector.example:4318\n"                   \
    "  service_name: \"oom \\u00e9t\\u00e9 sweep\"\n  otlp_batch: 64\n  otlp_interval: 500\n"                    \
    "  otlp_headers: authorization=Bearer%%20abc,x-team=core\n  extension_frames: false\n"                        \
    "tasks: {max_retries: 3, retry_delay: 250}\n"                                                                 \
    "plugins:\n  load: |-\n    %s\n"                                                                              \
    "debug: false\nvalidate_data: !!bool true\n"

#define RICH_JSON                                                                                                 \
    "{\"zmq\": {\"io_threads\": 3, \"linger\": 0, \"high_water_mark\": 5000, \"request_timeout\": 1500,\n"        \
    "  \"immediate\": true, \"max_message_size\": 1048576},\n"                                                    \
    " \"logging\": {\"level\": \"error\", \"format\": \"text\", \"syslog_ident\": \"%s\"},\n"                     \
    " \"serialization\": {\"default\": \"json\", \"json_indent\": 4},\n"                                         \
    " \"security\": {\"allow_addresses\": \"192.168.0.0/16\", \"plain_password\": \"p\\u00e4ss\"},\n"            \
    " \"tracing\": {\"service_name\": \"json \\u2603\", \"otlp_batch\": 128},\n"                                 \
    " \"plugins\": {\"load\": \"%s\"}, \"validate_data\": false}\n"

static void remove_files(void) {
    const char *names[] = {"base.yaml", "rich.yaml", "rich.json", "unknown.yaml", "broken.yaml", "reload.yaml",
                           "reload_rules.yaml", "reload.log"};
    char path[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

// write_files writes them once, into a directory removed at exit.
// Live keys, keys that need a restart, the log moved to a file; %s: more.
#define RELOAD_YAML                                                                                               \
    "zmq: {request_timeout: 700, request_retries: 2, linger: 250, io_threads: 2}\n"                              \
    "logging: {level: info, format: json, target: file, file_path: %s/reload.log}\n"                             \
    "tracing: {enabled: true, log: true, service_name: oom-sweep}\ntasks: {max_retries: 3, retry_delay: 50}\n%s"

static void write_files(void) {
    if (*dir) return;
    atexit(remove_files);
    snprintf(dir, sizeof dir, "/tmp/lz-oom-config.XXXXXX");
    LZ_CHECK(mkdtemp(dir) != NULL);
    char public_key[LZ_CURVE_KEY_SIZE], secret_key[LZ_CURVE_KEY_SIZE], other[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_curve_keypair(public_key, secret_key), LZ_OK);
    LZ_CHECK_INT(lz_curve_keypair(other, secret_key), LZ_OK);
    char *ident = long_text(3000), *plugins = long_text(6000);
    write_file(base_yaml, "base.yaml", "zmq: {linger: 10, io_threads: 2}\nlogging: {level: info}\n"
               "tracing: {service_name: base}\n");
    write_file(rich_yaml, "rich.yaml", RICH_YAML, dir, ident, public_key, public_key, other, plugins);
    write_file(rich_json, "rich.json", RICH_JSON, ident, plugins);
    write_file(unknown_key_yaml, "unknown.yaml", RICH_YAML "tasks: {max_retries: 3, unknown_knob: 1}\n", dir, ident,
               public_key, public_key, other, plugins);
    write_file(broken_yaml, "broken.yaml", RICH_YAML "zmq: [1, 2\n", dir, ident, public_key, public_key, other,
               plugins);
    write_file(reload_yaml, "reload.yaml", RELOAD_YAML, dir, "");
    write_file(reload_rules_yaml, "reload_rules.yaml", RELOAD_YAML, dir,
               "security: {allow_addresses: '127.0.0.1, 10.0.0.0/8', audit: true}\n");
    free(ident);
    free(plugins);
}

/* ---- one run ----------------------------------------------------------- */

// What a run works on and leaves; clear_state frees whatever is set.
typedef struct run_state {
    lz_config_t *config; // what the run changes or reads
    lz_config_t *result; // what the run makes
    char *text;
    lz_context_t *ctx;
    unsigned long answer; // a sum of what a run read
} run_state_t;

typedef struct op op_t;
struct op {
    const char *name;
    void (*setup)(const op_t *op, run_state_t *s); // unarmed, on the running thread
    int (*run)(const op_t *op, run_state_t *s);    // armed
    char *(*show)(const op_t *op, run_state_t *s); // what the run left, as text
    const char *path;                              // the file to load
    const char *key, *value;                       // the key to set
    int expect_rc;                                 // the answer of a run where nothing fails
    bool spare;                                    // libzmq's and libstdc++'s allocations never fail
};

#define OP(op_name, op_setup, op_run, op_show) .name = op_name, .setup = op_setup, .run = op_run, .show = op_show

LZ_OOM_TABLE(op_t, run_state_t)

static void clear_state(void *arg) {
    run_state_t *s = &((lz_oom_swept_t *)arg)->s;
    lz_config_destroy(&s->config);
    lz_config_destroy(&s->result);
    free(s->text);
    lz_context_destroy(&s->ctx);
}

/* ---- the sweep ----------------------------------------------------------- */

// sweep_all sweeps each operation (lz_oom_sweep_t's show: answers judged
// against a plain run's, and what an LZ_ENOMEM left against what setup
// did), each sweep on a thread of its own, warm (after a run that fills
// what stays filled, glibc's cache of thread stacks, ...) and with each
// run on a thread of its own; every run's blocks counted.
static void sweep_all(const op_t *ops, size_t n) {
    static const char *const spared[] = {"libzmq.so", "libstdc++.so", NULL};
    write_files();
    for (size_t i = 0; i < n; i++)
        lz_oom_sweep_op(&ops[i], (lz_oom_sweep_t){.spared = ops[i].spare ? spared : NULL, .teardown = clear_state,
                                                  .own_thread = true, .limit = SWEEP_LIMIT, .warm_runs = 1,
                                                  .leak_per_run = true});
}

/* ---- showing what a run left ------------------------------------------- */

// dump_config writes every key's value and source.
static void dump_config(FILE *out, const lz_config_t *config) {
    if (!config) {
        fputs("(no configuration)\n", out);
        return;
    }
    for (size_t k = 0; k < lz_config_key_count(); k++) {
        const char *key = lz_config_key_at(k), *s = NULL;
        int64_t i = 0;
        bool b = false;
        if (lz_config_get_string(config, key, &s) == LZ_OK) fprintf(out, "%s=\"%s\"", key, s);
        else if (lz_config_get_bool(config, key, &b) == LZ_OK) fprintf(out, "%s=%s", key, b ? "true" : "false");
        else if (lz_config_get_int(config, key, &i) == LZ_OK) fprintf(out, "%s=%lld", key, (long long)i);
        fprintf(out, " (%s)\n", lz_config_source(config, key));
    }
}

typedef void (*show_fn)(FILE *out, const op_t *op, run_state_t *s);

static char *shown_by(show_fn fn, const op_t *op, run_state_t *s) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    fn(out, op, s);
    fclose(out);
    return text;
}

static void write_config(FILE *out, const op_t *op, run_state_t *s) { dump_config(out, s->config); }
static void write_result(FILE *out, const op_t *op, run_state_t *s) { dump_config(out, s->result); }
static void write_text(FILE *out, const op_t *op, run_state_t *s) { fputs(s->text ? s->text : "(no text)", out); }
static void write_answer(FILE *out, const op_t *op, run_state_t *s) { fprintf(out, "%lu", s->answer); }

static char *show_config(const op_t *op, run_state_t *s) { return shown_by(write_config, op, s); }
static char *show_result(const op_t *op, run_state_t *s) { return shown_by(write_result, op, s); }
static char *show_text(const op_t *op, run_state_t *s) { return shown_by(write_text, op, s); }
static char *show_answer(const op_t *op, run_state_t *s) { return shown_by(write_answer, op, s); }

/* ---- configurations: make, copy, set, read ------------------------------ */

// setup_base: a configuration holding values from every source but the
// environment: defaults, base.yaml and the API.
static void setup_base(const op_t *op, run_state_t *s) {
    s->config = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(s->config, base_yaml), LZ_OK);
    LZ_CHECK_INT(lz_config_set(s->config, "zmq.io_threads", "4"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(s->config, "logging.syslog_ident", "api-ident"), LZ_OK);
    LZ_CHECK_INT(lz_config_set_bool(s->config, "debug", true), LZ_OK);
}

// setup_rich: base, the rich file loaded over it.
static void setup_rich(const op_t *op, run_state_t *s) {
    setup_base(op, s);
    LZ_CHECK_INT(lz_config_load_file(s->config, rich_yaml), LZ_OK);
}

// setup_grown: rich, with op's value for plugins.load, past what a stream buffers.
static void setup_grown(const op_t *op, run_state_t *s) {
    setup_rich(op, s);
    LZ_CHECK_INT(lz_config_set(s->config, "plugins.load", op->value), LZ_OK);
}

static int run_new(const op_t *op, run_state_t *s) {
    s->result = lz_config_new();
    return s->result ? LZ_OK : lz_last_error_code();
}

static int run_dup(const op_t *op, run_state_t *s) {
    s->result = lz_config_dup(s->config);
    return s->result ? LZ_OK : lz_last_error_code();
}

static int run_set(const op_t *op, run_state_t *s) { return lz_config_set(s->config, op->key, op->value); }
static int run_set_int(const op_t *op, run_state_t *s) { return lz_config_set_int(s->config, op->key, 77); }
static int run_set_bool(const op_t *op, run_state_t *s) { return lz_config_set_bool(s->config, op->key, false); }

static int run_to_json(const op_t *op, run_state_t *s) {
    s->text = lz_config_to_json(s->config);
    return s->text ? LZ_OK : lz_last_error_code();
}

// mix folds value into sum, which then tells whether any value differed.
static void mix(unsigned long *sum, long value) { *sum = *sum * 31 + (unsigned long)value; }

// run_read reads every key every way, and the names' own functions.
static int run_read(const op_t *op, run_state_t *s) {
    static const char *const names[] = {"zmq.socket_timeout", "security.plain_password", "nope", "zmq", NULL};
    for (size_t k = 0; k <= lz_config_key_count(); k++) {
        const char *key = k < lz_config_key_count() ? lz_config_key_at(k) : "no.such_key", *text = NULL;
        int64_t i = 0;
        bool b = false;
        double d = 0;
        mix(&s->answer, lz_config_get_int(s->config, key, &i) + i);
        mix(&s->answer, lz_config_get_bool(s->config, key, &b) + b);
        mix(&s->answer, lz_config_get_double(s->config, key, &d) + (long)d);
        mix(&s->answer, lz_config_get_string(s->config, key, &text) + (long)(text ? strlen(text) : 0));
        const char *source = lz_config_source(s->config, key);
        mix(&s->answer, (long)(source ? strlen(source) : 0));
        mix(&s->answer, lz_config_key_is_secret(key) + 2 * (lz_config_key_name(key) != NULL));
    }
    for (const char *const *name = names; *name; name++)
        mix(&s->answer, lz_config_key_is_secret(*name) + 2 * (lz_config_key_name(*name) != NULL));
    return LZ_OK;
}

LZ_TEST(oom_config_objects) {
    char *plugins = long_text(20000);
    const op_t ops[] = {
        {OP("config_new", NULL, run_new, show_result)},
        {OP("config_dup", setup_rich, run_dup, show_result)},
        {OP("config_read", setup_rich, run_read, show_answer)},
        {OP("config_to_json", setup_rich, run_to_json, show_text)},
        {OP("config_to_json_grown", setup_grown, run_to_json, show_text), .value = plugins},
        {OP("config_set_string", setup_base, run_set, show_config), .key = "plugins.load", .value = plugins},
        {OP("config_set_alias", setup_base, run_set, show_config), .key = "zmq.socket_timeout", .value = "1500"},
        {OP("config_set_log_level", setup_base, run_set, show_config), .key = "logging.level", .value = "warn"},
        {OP("config_set_refused", setup_base, run_set, show_config), .key = "zmq.linger", .value = "soon",
         .expect_rc = LZ_ECONFIG},
        {OP("config_set_int", setup_base, run_set_int, show_config), .key = "zmq.linger"},
        {OP("config_set_bool", setup_base, run_set_bool, show_config), .key = "zmq.immediate"},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
    free(plugins);
}

/* ---- loading files and the environment ----------------------------------- */

static int run_load_file(const op_t *op, run_state_t *s) { return lz_config_load_file(s->config, op->path); }
static int run_load_env(const op_t *op, run_state_t *s) { return lz_config_load_env(s->config); }

LZ_TEST(oom_config_load) {
    const op_t ops[] = {
        {OP("load_yaml", setup_base, run_load_file, show_config), .path = rich_yaml},
        {OP("load_json", setup_base, run_load_file, show_config), .path = rich_json},
        {OP("load_unknown_key", setup_base, run_load_file, show_config), .path = unknown_key_yaml,
         .expect_rc = LZ_ECONFIG},
        {OP("load_broken_yaml", setup_base, run_load_file, show_config), .path = broken_yaml, .expect_rc = LZ_ECONFIG},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
}

LZ_TEST(oom_config_env) {
    static const char *const vars[][2] = {
        {"LIBERZMQ_ZMQ__IO_THREADS", "6"}, {"LIBERZMQ_ZMQ_LINGER", "250"}, {"LIBERZMQ_LOGGING__LEVEL", "warn"},
        {"LIBERZMQ_SERIALIZATION_DEFAULT", "msgpack"}, {"LIBERZMQ_ZMQ__SOCKET_TIMEOUT", "1500"},
        {"LIBERZMQ_VALIDATE_DATA", "NO"}, {"LIBERZMQ_TRACING__SERVICE_NAME", "from-the-environment"},
        {"LIBERZMQ_CONFIG", "/does/not/matter.yaml"},
    };
    size_t count = sizeof vars / sizeof vars[0];
    for (size_t i = 0; i < count; i++) setenv(vars[i][0], vars[i][1], 1);
    const op_t ops[] = {
        {OP("load_env", setup_base, run_load_env, show_config)},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
    for (size_t i = 0; i < count; i++) unsetenv(vars[i][0]);
}

/* ---- reloading a context --------------------------------------------------- */

// next_config: what a reload applies, op's file over the defaults.
static lz_config_t *next_config(const op_t *op) {
    lz_config_t *next = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(next, op->path), LZ_OK);
    return next;
}

// setup_running: a context running, and an empty configuration for the run to load.
static void setup_running(const op_t *op, run_state_t *s) {
    s->ctx = LZ_TEST_CONTEXT("logging.level=warning", "logging.target=none", "zmq.request_timeout=5000",
                             "zmq.linger=0");
    s->config = lz_config_new();
}

// setup_reloading: the context running, and the configuration it is to take.
static void setup_reloading(const op_t *op, run_state_t *s) {
    setup_running(op, s);
    LZ_CHECK_INT(lz_config_load_file(s->config, op->path), LZ_OK);
}

static int run_reload(const op_t *op, run_state_t *s) { return lz_context_reload(s->ctx, s->config); }

static int run_load_and_reload(const op_t *op, run_state_t *s) {
    int rc = lz_config_load_file(s->config, op->path);
    return rc == LZ_OK ? lz_context_reload(s->ctx, s->config) : rc;
}

static void write_context(FILE *out, lz_context_t *ctx) {
    dump_config(out, lz_context_config(ctx));
    fprintf(out, "log level %d, request timeout %d\n", (int)lz_logger_level(lz_context_logger(ctx)),
            LZ_LIVE(lz__context_live(ctx), request_timeout));
}

// write_reloaded writes what the context runs with, then reloads it
// plainly: whatever a run left, the context must take the next
// configuration still.
static void write_reloaded(FILE *out, const op_t *op, run_state_t *s) {
    write_context(out, s->ctx);
    lz_config_t *next = next_config(op);
    int rc = lz_context_reload(s->ctx, next);
    fprintf(out, "then a reload: %s (%s)\n", lz_error_name(rc), lz_last_error());
    write_context(out, s->ctx);
    lz_config_destroy(&next);
}

static char *show_reloaded(const op_t *op, run_state_t *s) { return shown_by(write_reloaded, op, s); }

LZ_TEST(oom_context_reload) {
    const op_t ops[] = {
        {OP("reload", setup_reloading, run_reload, show_reloaded), .path = reload_yaml, .expect_rc = 2, .spare = true},
        {OP("reload_from_file", setup_running, run_load_and_reload, show_reloaded), .path = reload_yaml,
         .expect_rc = 2, .spare = true},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
}

// A reload that adds access rules starts the ZAP handler; one whose thread
// could not start must leave its endpoint free for the next reload.
LZ_TEST(oom_context_reload_with_access_rules) {
    const op_t ops[] = {
        {OP("reload_with_access_rules", setup_reloading, run_reload, show_reloaded), .path = reload_rules_yaml,
         .expect_rc = 2, .spare = true},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0]);
}

LZ_TEST_MAIN(LZ_CASE(oom_config_objects), LZ_CASE(oom_config_load), LZ_CASE(oom_config_env),
             LZ_CASE(oom_context_reload), LZ_CASE(oom_context_reload_with_access_rules))
