/* Configuration: defaults, YAML and JSON files in the Python LiberZMQ layout,
 * environment variables, precedence in every call order, error details that
 * name the key and its source, and the settings a context reads. */
#include "lz_test.h"

#include <ctype.h>
#include <fcntl.h>
#include <ftw.h>

#include "core/context.h"
#include "core/log.h"
#include "lz_mutate.h"

static char scratch[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_scratch(void) { nftw(scratch, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

// A scratch directory per process, removed at exit; tests use distinct names.
static const char *scratch_dir(void) {
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/tmp/lzconfig.XXXXXX");
        if (!mkdtemp(scratch)) { perror("mkdtemp"); exit(2); }
        atexit(remove_scratch);
    }
    return scratch;
}

static const char *write_file(char *path, size_t size, const char *name, const char *text) {
    snprintf(path, size, "%s/%s", scratch_dir(), name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
    return path;
}

static int64_t get_int(const lz_config_t *c, const char *key) {
    int64_t v = -12345;
    LZ_CHECK_INT(lz_config_get_int(c, key, &v), LZ_OK);
    return v;
}

static const char *get_str(const lz_config_t *c, const char *key) {
    const char *s = NULL;
    LZ_CHECK_INT(lz_config_get_string(c, key, &s), LZ_OK);
    return s;
}

static bool get_bool(const lz_config_t *c, const char *key) {
    bool b = false;
    LZ_CHECK_INT(lz_config_get_bool(c, key, &b), LZ_OK);
    return b;
}

// An integer key and the value a test expects it to hold.
typedef struct {
    const char *key;
    int64_t want;
} int_key_t;

static void check_ints(const lz_config_t *c, const int_key_t *keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int64_t got = get_int(c, keys[i].key);
        LZ_CHECK_INT(got, keys[i].want);
        if (got != keys[i].want) fprintf(stderr, "  (key %s)\n", keys[i].key);
    }
}

// CHECK_TABLE calls check(first, rows, count) on a table of rows of type.
#define CHECK_TABLE(check, first, type, ...)                                    \
    do {                                                                        \
        const type rows_[] = {__VA_ARGS__};                                     \
        check((first), rows_, sizeof rows_ / sizeof rows_[0]);                  \
    } while (0)
#define CHECK_INTS(c, ...) CHECK_TABLE(check_ints, c, int_key_t, __VA_ARGS__)

// loaded_config writes text to the scratch file name (its path into path)
// and loads it over the defaults.
static lz_config_t *loaded_config(char *path, size_t size, const char *name, const char *text) {
    write_file(path, size, name, text);
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_OK);
    return c;
}

static bool error_mentions(const char *a, const char *b, const char *c) {
    const char *e = lz_last_error();
    return strstr(e, a) && (!b || strstr(e, b)) && (!c || strstr(e, c));
}

LZ_TEST(test_defaults) {
    lz_config_t *c = lz_config_new();
    LZ_CHECK(c != NULL);
    CHECK_INTS(c, {"zmq.io_threads", 1}, {"zmq.max_sockets", 1024}, {"zmq.linger", 1000},
               {"zmq.high_water_mark", 1000}, {"zmq.hwm_outbound", -1}, {"zmq.send_timeout", 5000},
               {"zmq.receive_timeout", 5000}, {"zmq.socket_timeout", 5000}, // the Python alias
               {"zmq.request_retries", 3}, {"zmq.failed_socket_cooldown", 10000},
               {"zmq.max_message_size", -1}, {"logging.max_file_size", 10485760},
               {"serialization.json_indent", -1}, {"tasks.max_retries", 0}, {"tasks.retry_delay", 1000});
    LZ_CHECK_STR(get_str(c, "logging.level"), "INFO");
    LZ_CHECK_STR(get_str(c, "logging.format"), "text");
    LZ_CHECK_STR(get_str(c, "logging.target"), "stderr");
    LZ_CHECK_STR(get_str(c, "logging.file_path"), "");
    LZ_CHECK_STR(get_str(c, "serialization.default"), "json");
    LZ_CHECK(get_bool(c, "logging.console_output"));
    LZ_CHECK(!get_bool(c, "debug"));
    LZ_CHECK(!get_bool(c, "zmq.immediate"));
    LZ_CHECK(get_bool(c, "validate_data"));
    LZ_CHECK(lz_config_key_count() >= 30);
    for (size_t i = 0; i < lz_config_key_count(); i++)
        LZ_CHECK_STR(lz_config_source(c, lz_config_key_at(i)), "default");
    LZ_CHECK(lz_config_key_at(lz_config_key_count()) == NULL);
    LZ_CHECK(lz_config_source(c, "zmq.nope") == NULL);
    lz_config_destroy(&c);
    LZ_CHECK(c == NULL);
    lz_config_destroy(&c); // NULL is a no-op
}

static const char python_yaml[] =
    "# written for the Python LiberZMQ too\n"
    "zmq:\n"
    "  io_threads: 2\n"
    "  linger: 500\n"
    "  send_timeout: 3000\n"
    "  socket_timeout: 700\n"
    "  high_water_mark: 2000\n"
    "logging:\n"
    "  level: debug\n"
    "  format: '%(asctime)s - %(name)s - %(levelname)s - %(message)s'\n"
    "  file_path: /tmp/lz-service.log\n"
    "  console_output: Yes\n"
    "serialization:\n"
    "  default: msgpack\n"
    "  json_indent: null\n"
    "debug: false\n"
    "validate_data: off\n";

LZ_TEST(test_yaml_file_python_layout) {
    char path[256];
    lz_config_t *c = loaded_config(path, sizeof path, "python.yaml", python_yaml);
    CHECK_INTS(c, {"zmq.io_threads", 2}, {"zmq.linger", 500}, {"zmq.send_timeout", 3000},
               {"zmq.receive_timeout", 700}, {"zmq.high_water_mark", 2000});
    LZ_CHECK_STR(get_str(c, "logging.level"), "DEBUG");
    LZ_CHECK(strstr(get_str(c, "logging.format"), "%(message)s") != NULL);
    LZ_CHECK_STR(get_str(c, "logging.file_path"), "/tmp/lz-service.log");
    LZ_CHECK_STR(get_str(c, "serialization.default"), "msgpack");
    LZ_CHECK_INT(get_int(c, "serialization.json_indent"), -1);
    LZ_CHECK(!get_bool(c, "validate_data"));
    char source[300];
    snprintf(source, sizeof source, "file %s", path);
    LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), source);
    LZ_CHECK_STR(lz_config_source(c, "zmq.receive_timeout"), source);
    LZ_CHECK_STR(lz_config_source(c, "zmq.max_sockets"), "default");

    lz_log_settings_t ls;
    LZ_CHECK_INT(lz__log_settings_read(c, &ls), LZ_OK);
    LZ_CHECK_INT(ls.format, LZ_LOG_TEXT); // a Python format string means text
    LZ_CHECK_INT(ls.target, LZ_LOG_TARGET_FILE); // file_path with target left default
    LZ_CHECK_INT(ls.level, LZ_LOG_DEBUG);
    lz_config_destroy(&c);
}

// What Python's Config.to_file writes for a .json path.
static const char python_json[] =
    "{\n"
    "  \"zmq\": {\"io_threads\": 3, \"max_sockets\": 64, \"socket_timeout\": 900,\n"
    "          \"linger\": 0, \"send_timeout\": -1, \"high_water_mark\": 10},\n"
    "  \"logging\": {\"level\": \"WARNING\", \"format\": \"json\", \"file_path\": null,\n"
    "              \"max_file_size\": 1048576, \"backup_count\": 2, \"console_output\": true},\n"
    "  \"serialization\": {\"default\": \"msgpack\", \"json_ensure_ascii\": true,\n"
    "                    \"json_indent\": null, \"protobuf_validate\": false},\n"
    "  \"debug\": false,\n"
    "  \"validate_data\": true\n"
    "}\n";

LZ_TEST(test_json_file_python_layout) {
    char path[256];
    lz_config_t *c = loaded_config(path, sizeof path, "python.json", python_json);
    CHECK_INTS(c, {"zmq.io_threads", 3}, {"zmq.max_sockets", 64}, {"zmq.receive_timeout", 900},
               {"zmq.linger", 0}, {"zmq.send_timeout", -1}, {"zmq.high_water_mark", 10});
    LZ_CHECK_STR(get_str(c, "logging.level"), "WARNING");
    LZ_CHECK_STR(get_str(c, "logging.format"), "json");
    LZ_CHECK_STR(get_str(c, "logging.file_path"), "");
    LZ_CHECK_INT(get_int(c, "logging.backup_count"), 2);
    LZ_CHECK_STR(get_str(c, "serialization.default"), "msgpack");
    LZ_CHECK(get_bool(c, "serialization.json_ensure_ascii"));
    LZ_CHECK(!get_bool(c, "serialization.protobuf_validate"));
    lz_config_destroy(&c);
}

// Each source sets some keys; the expected winner does not depend on order.
static void apply_source(lz_config_t *c, char which, const char *file) {
    if (which == 'f') LZ_CHECK_INT(lz_config_load_file(c, file), LZ_OK);
    if (which == 'e') LZ_CHECK_INT(lz_config_load_env(c), LZ_OK);
    if (which == 'a') LZ_CHECK_INT(lz_config_set(c, "zmq.linger", "300"), LZ_OK);
}

LZ_TEST(test_precedence_every_order) {
    char path[256];
    write_file(path, sizeof path, "precedence.yaml",
               "zmq: {linger: 100, io_threads: 2, max_sockets: 10}\n");
    setenv("LIBERZMQ_ZMQ__LINGER", "200", 1);
    setenv("LIBERZMQ_ZMQ_IO_THREADS", "3", 1);
    static const char *const orders[] = {"fea", "fae", "efa", "eaf", "afe", "aef"};
    for (size_t i = 0; i < 6; i++) {
        lz_config_t *c = lz_config_new();
        for (const char *o = orders[i]; *o; o++) apply_source(c, *o, path);
        LZ_CHECK_INT(get_int(c, "zmq.linger"), 300);
        LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), "api");
        LZ_CHECK_INT(get_int(c, "zmq.io_threads"), 3);
        LZ_CHECK_STR(lz_config_source(c, "zmq.io_threads"), "env LIBERZMQ_ZMQ_IO_THREADS");
        LZ_CHECK_INT(get_int(c, "zmq.max_sockets"), 10);
        LZ_CHECK_INT(get_int(c, "zmq.request_retries"), 3);
        LZ_CHECK_STR(lz_config_source(c, "zmq.request_retries"), "default");
        lz_config_destroy(&c);
    }
    unsetenv("LIBERZMQ_ZMQ__LINGER");
    unsetenv("LIBERZMQ_ZMQ_IO_THREADS");
}

LZ_TEST(test_env_both_forms) {
    setenv("LIBERZMQ_ZMQ__IO_THREADS", "4", 1);
    setenv("LIBERZMQ_ZMQ_LINGER", "250", 1);
    setenv("LIBERZMQ_LOGGING__LEVEL", "warn", 1);
    setenv("LIBERZMQ_SERIALIZATION_DEFAULT", "msgpack", 1);
    setenv("LIBERZMQ_ZMQ__SOCKET_TIMEOUT", "1500", 1);
    setenv("LIBERZMQ_VALIDATE_DATA", "NO", 1);
    setenv("LIBERZMQ_TASKS__MAX_RETRIES", "3", 1);
    setenv("LIBERZMQ_TASKS_RETRY_DELAY", "250", 1);
    setenv("LIBERZMQ_CONFIG", "/does/not/matter.yaml", 1); // a path, not a key
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_load_env(c), LZ_OK);
    LZ_CHECK_INT(get_int(c, "zmq.io_threads"), 4);
    LZ_CHECK_STR(lz_config_source(c, "zmq.io_threads"), "env LIBERZMQ_ZMQ__IO_THREADS");
    LZ_CHECK_INT(get_int(c, "zmq.linger"), 250);
    LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), "env LIBERZMQ_ZMQ_LINGER");
    LZ_CHECK_STR(get_str(c, "logging.level"), "WARNING");
    LZ_CHECK_STR(get_str(c, "serialization.default"), "msgpack");
    LZ_CHECK_INT(get_int(c, "zmq.receive_timeout"), 1500);
    LZ_CHECK(!get_bool(c, "validate_data"));
    LZ_CHECK_INT(get_int(c, "tasks.max_retries"), 3);
    LZ_CHECK_INT(get_int(c, "tasks.retry_delay"), 250);
    lz_settings_t s;
    LZ_CHECK_INT(lz__settings_read(c, &s), LZ_OK);
    LZ_CHECK_INT(s.task_max_retries, 3);
    LZ_CHECK_INT(s.task_retry_delay, 250);
    lz_config_destroy(&c);
    unsetenv("LIBERZMQ_TASKS__MAX_RETRIES");
    unsetenv("LIBERZMQ_TASKS_RETRY_DELAY");
    unsetenv("LIBERZMQ_ZMQ__IO_THREADS");
    unsetenv("LIBERZMQ_ZMQ_LINGER");
    unsetenv("LIBERZMQ_LOGGING__LEVEL");
    unsetenv("LIBERZMQ_SERIALIZATION_DEFAULT");
    unsetenv("LIBERZMQ_ZMQ__SOCKET_TIMEOUT");
    unsetenv("LIBERZMQ_VALIDATE_DATA");
    unsetenv("LIBERZMQ_CONFIG");
}

LZ_TEST(test_env_errors_name_the_variable) {
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_set(c, "zmq.io_threads", "7"), LZ_OK);
    setenv("LIBERZMQ_ZMQ__MAX_SOCKETS", "50", 1);
    setenv("LIBERZMQ_ZMQ__LINGER", "abc", 1);
    LZ_CHECK_INT(lz_config_load_env(c), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.linger", "LIBERZMQ_ZMQ__LINGER", "'abc'"));
    LZ_CHECK_INT(get_int(c, "zmq.max_sockets"), 1024); // unchanged: all or nothing
    LZ_CHECK_INT(get_int(c, "zmq.io_threads"), 7);
    unsetenv("LIBERZMQ_ZMQ__LINGER");

    setenv("LIBERZMQ_ZMQ__BOGUS_KEY", "1", 1);
    LZ_CHECK_INT(lz_config_load_env(c), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.bogus_key", "LIBERZMQ_ZMQ__BOGUS_KEY", NULL));
    LZ_CHECK_INT(get_int(c, "zmq.max_sockets"), 1024);
    unsetenv("LIBERZMQ_ZMQ__BOGUS_KEY");
    unsetenv("LIBERZMQ_ZMQ__MAX_SOCKETS");
    lz_config_destroy(&c);
}

LZ_TEST(test_file_errors_name_key_file_and_line) {
    char path[256];
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_set(c, "zmq.send_timeout", "42"), LZ_OK);
    char *before = lz_config_to_json(c);

    write_file(path, sizeof path, "unknown.yaml", "zmq:\n  linger: 50\n  bogus: 1\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.bogus", path, ":3"));

    write_file(path, sizeof path, "range.yaml", "logging:\n  level: info\nzmq:\n  linger: 5\n  io_threads: 0\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.io_threads", ":5", "'0'"));
    LZ_CHECK(error_mentions(path, "out of range", NULL));

    write_file(path, sizeof path, "junk.yaml", "zmq:\n  linger: 10ms\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.linger", ":2", "'10ms'"));

    write_file(path, sizeof path, "bool.yaml", "debug: maybe\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("debug", ":1", "'maybe'"));

    write_file(path, sizeof path, "level.yaml", "logging: {level: loud}\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("logging.level", "'loud'", NULL));

    write_file(path, sizeof path, "top.yaml", "zmq: {linger: 1}\nretries: 3\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("'retries'", ":2", NULL));

    write_file(path, sizeof path, "nested.yaml", "zmq:\n  linger: [1, 2]\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.linger", ":2", NULL));

    write_file(path, sizeof path, "syntax.yaml", "zmq:\n  linger: 1\n   bad: [\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions(path, NULL, NULL));

    write_file(path, sizeof path, "list.yaml", "- 1\n- 2\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);

    LZ_CHECK_INT(lz_config_load_file(c, "/nonexistent/liberzmq.yaml"), LZ_ECONFIG);
    LZ_CHECK(error_mentions("/nonexistent/liberzmq.yaml", NULL, NULL));

    LZ_CHECK_INT(lz_config_load_file(c, "/tmp"), LZ_ECONFIG); // a directory opens but cannot be read
    LZ_CHECK(error_mentions("/tmp", "directory", NULL));

    char *after = lz_config_to_json(c); // every failed load left it unchanged
    LZ_CHECK_STR(after, before);
    LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), "default");
    free(before);
    free(after);
    lz_config_destroy(&c);
}

LZ_TEST(test_null_values_reset_to_default) {
    char first[256], second[256];
    write_file(first, sizeof first, "set.yaml",
               "zmq: {linger: 5}\nlogging: {file_path: /tmp/a.log, syslog_ident: svc}\n"
               "serialization: {json_indent: 2}\n");
    write_file(second, sizeof second, "null.yaml",
               "zmq:\n  linger: ~\nlogging:\n  file_path: null\n  syslog_ident: 'null'\n"
               "serialization:\n  json_indent:\n");
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(c, first), LZ_OK);
    LZ_CHECK_INT(get_int(c, "zmq.linger"), 5);
    LZ_CHECK_INT(lz_config_load_file(c, second), LZ_OK);
    LZ_CHECK_INT(get_int(c, "zmq.linger"), 1000);
    LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), "default");
    LZ_CHECK_STR(get_str(c, "logging.file_path"), "");
    LZ_CHECK_STR(get_str(c, "logging.syslog_ident"), "null"); // quoted: a string
    LZ_CHECK_INT(get_int(c, "serialization.json_indent"), -1);
    // A null in a file does not undo a value set through the API.
    LZ_CHECK_INT(lz_config_set_int(c, "zmq.linger", 9), LZ_OK);
    LZ_CHECK_INT(lz_config_load_file(c, second), LZ_OK);
    LZ_CHECK_INT(get_int(c, "zmq.linger"), 9);
    lz_config_destroy(&c);
}

LZ_TEST(test_api_set_and_get) {
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_set(c, "zmq.nope", "1"), LZ_ENOTFOUND);
    LZ_CHECK(error_mentions("zmq.nope", NULL, NULL));
    LZ_CHECK_INT(lz_config_set_int(c, "nope", 1), LZ_ENOTFOUND);
    static const char *const bad_ints[] = {"", " 1", "1 ", "12x", "0x10", "1.5",
                                           "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        LZ_CHECK_INT(lz_config_set(c, "zmq.max_sockets", bad_ints[i]), LZ_ECONFIG);
        LZ_CHECK(error_mentions("zmq.max_sockets", "api", NULL));
    }
    LZ_CHECK_INT(lz_config_set(c, "zmq.linger", "-2"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(c, "zmq.linger", "-1"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "zmq.request_timeout", "0"), LZ_ECONFIG);
    // The heartbeat timeout is three intervals, in an int like the interval.
    LZ_CHECK_INT(lz_config_set(c, "zmq.heartbeat_interval", "715827882"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "zmq.heartbeat_interval", "715827883"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(c, "zmq.io_threads", 65), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(c, "zmq.io_threads", 64), LZ_OK);
    LZ_CHECK_INT(lz_config_set_int(c, "zmq.max_message_size", INT64_C(1) << 40), LZ_OK);
    LZ_CHECK_INT(get_int(c, "zmq.max_message_size"), INT64_C(1) << 40);
    LZ_CHECK_INT(lz_config_set_int(c, "debug", 1), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_bool(c, "zmq.linger", true), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(c, "logging.level", 1), LZ_ECONFIG);

    static const char *const truths[] = {"true", "TRUE", "yes", "On", "1"};
    static const char *const lies[] = {"false", "No", "OFF", "0"};
    for (size_t i = 0; i < 5; i++) {
        LZ_CHECK_INT(lz_config_set(c, "debug", truths[i]), LZ_OK);
        LZ_CHECK(get_bool(c, "debug"));
        if (i < 4) {
            LZ_CHECK_INT(lz_config_set(c, "debug", lies[i]), LZ_OK);
            LZ_CHECK(!get_bool(c, "debug"));
        }
    }
    LZ_CHECK_INT(lz_config_set(c, "debug", "2"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_bool(c, "logging.console_output", false), LZ_OK);

    LZ_CHECK_INT(lz_config_set(c, "logging.format", "xml"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(c, "logging.target", "syslog"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "logging.target", "printer"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(c, "serialization.default", ""), LZ_ECONFIG);

    double d = 0;
    LZ_CHECK_INT(lz_config_get_double(c, "zmq.linger", &d), LZ_OK);
    LZ_CHECK(d == -1.0);
    int64_t i64;
    bool b;
    const char *s;
    LZ_CHECK_INT(lz_config_get_int(c, "logging.level", &i64), LZ_EVALIDATION);
    LZ_CHECK_INT(lz_config_get_bool(c, "zmq.linger", &b), LZ_EVALIDATION);
    LZ_CHECK_INT(lz_config_get_string(c, "debug", &s), LZ_EVALIDATION);
    LZ_CHECK_INT(lz_config_get_double(c, "debug", &d), LZ_EVALIDATION);
    LZ_CHECK_INT(lz_config_get_int(c, "zmq.nope", &i64), LZ_ENOTFOUND);

    lz_config_t *copy = lz_config_dup(c);
    LZ_CHECK_INT(lz_config_set(c, "zmq.linger", "77"), LZ_OK);
    LZ_CHECK_INT(get_int(copy, "zmq.linger"), -1);
    LZ_CHECK_STR(lz_config_source(copy, "zmq.linger"), "api");
    LZ_CHECK(lz_config_dup(NULL) == NULL);
    lz_config_destroy(&copy);
    lz_config_destroy(&c);
}

LZ_TEST(test_to_json_round_trips) {
    lz_config_t *c = lz_config_new();
    char *json = lz_config_to_json(c);
    LZ_CHECK(json != NULL);
    LZ_CHECK(json && json[0] == '{' && json[strlen(json) - 1] == '}');
    LZ_CHECK(strstr(json, "\"zmq\":{\"io_threads\":1,") != NULL);
    LZ_CHECK(strstr(json, "\"logging\":{\"level\":\"INFO\",") != NULL);
    LZ_CHECK(strstr(json, "\"serialization\":{\"default\":\"json\",") != NULL);
    LZ_CHECK(strstr(json, "\"max_message_size\":-1}") != NULL);
    LZ_CHECK(strstr(json, "\"debug\":false,\"validate_data\":true}") != NULL);
    LZ_CHECK(strstr(json, "socket_timeout") == NULL); // aliases are not keys
    free(json);

    // A value needing escapes, then the output read back as a config file.
    LZ_CHECK_INT(lz_config_set(c, "logging.file_path", "/tmp/a \"quoted\"\\dir\tx.log"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "zmq.linger", "12"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "debug", "on"), LZ_OK);
    json = lz_config_to_json(c);
    LZ_CHECK(strstr(json, "\"file_path\":\"/tmp/a \\\"quoted\\\"\\\\dir\\tx.log\"") != NULL);
    char path[256];
    write_file(path, sizeof path, "roundtrip.json", json);
    lz_config_t *back = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(back, path), LZ_OK);
    LZ_CHECK_STR(get_str(back, "logging.file_path"), "/tmp/a \"quoted\"\\dir\tx.log");
    LZ_CHECK_INT(get_int(back, "zmq.linger"), 12);
    LZ_CHECK(get_bool(back, "debug"));
    char *again = lz_config_to_json(back);
    LZ_CHECK_STR(again, json);
    free(again);
    free(json);
    lz_config_destroy(&back);

    // Characters JSON allows raw but YAML refuses (DEL, C1 controls, the
    // non-characters U+FFFE/U+FFFF) or rereads (U+0085 and the line and
    // paragraph separators U+2028/U+2029, line breaks: a space before one
    // was dropped) are written escaped, so the file still loads to the same
    // value (found by fuzz/fuzz_config.c).
    static const char odd[] = "/tmp/\x7f\xc2\x85\xc2\x9f\xef\xbf\xbe\xef\xbf\xbf\xc3\xa9 \xe2\x80\xa8 \xe2\x80\xa9.log";
    LZ_CHECK_INT(lz_config_set(c, "logging.file_path", odd), LZ_OK);
    json = lz_config_to_json(c);
    LZ_CHECK(strstr(json, "\"/tmp/\\u007f\\u0085\\u009f\\ufffe\\uffff\xc3\xa9 \\u2028 \\u2029.log\"") != NULL);
    write_file(path, sizeof path, "odd.json", json);
    back = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(back, path), LZ_OK);
    LZ_CHECK_STR(get_str(back, "logging.file_path"), odd);
    free(json);
    lz_config_destroy(&back);
    lz_config_destroy(&c);
}

LZ_TEST(test_settings_read) {
    lz_config_t *c = lz_config_new();
    lz_settings_t s;
    LZ_CHECK_INT(lz__settings_read(c, &s), LZ_OK);
    LZ_CHECK_INT(s.hwm_outbound, 1000);
    LZ_CHECK_INT(s.hwm_inbound, 1000);
    LZ_CHECK_INT(s.io_threads, 1);
    LZ_CHECK_INT(s.receive_timeout, 5000);
    LZ_CHECK_INT(s.max_message_size, -1);
    LZ_CHECK_STR(s.default_serializer, "json");

    LZ_CHECK_INT(lz_config_set(c, "zmq.high_water_mark", "50"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "zmq.hwm_inbound", "7"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "zmq.socket_timeout", "250"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "serialization.default", "msgpack"), LZ_OK);
    LZ_CHECK_INT(lz__settings_read(c, &s), LZ_OK);
    LZ_CHECK_INT(s.hwm_outbound, 50);
    LZ_CHECK_INT(s.hwm_inbound, 7);
    LZ_CHECK_INT(s.receive_timeout, 250);
    LZ_CHECK_STR(s.default_serializer, "msgpack");
    const char *owned = NULL;
    lz_config_get_string(c, "serialization.default", &owned);
    LZ_CHECK(s.default_serializer == owned); // points into the config

    LZ_CHECK_INT(lz_config_set(c, "zmq.hwm_outbound", "0"), LZ_OK); // 0: no limit, not inherit
    LZ_CHECK_INT(lz_config_set(c, "zmq.reconnect_interval", "500"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "zmq.reconnect_interval_max", "100"), LZ_OK);
    LZ_CHECK_INT(lz__settings_read(c, &s), LZ_ECONFIG);
    LZ_CHECK(error_mentions("reconnect_interval_max", NULL, NULL));
    LZ_CHECK_INT(lz_config_set(c, "zmq.reconnect_interval_max", "5000"), LZ_OK);
    LZ_CHECK_INT(lz__settings_read(c, &s), LZ_OK);
    LZ_CHECK_INT(s.hwm_outbound, 0);
    LZ_CHECK_INT(s.reconnect_interval_max, 5000);
    LZ_CHECK_INT(lz_config_set(c, "zmq.max_message_size", "0"), LZ_OK); // a valid integer...
    LZ_CHECK_INT(lz__settings_read(c, &s), LZ_ECONFIG);                // ...but no usable setting
    LZ_CHECK(error_mentions("zmq.max_message_size", NULL, NULL));
    lz_config_destroy(&c);
}

static lz_log_level_t effective_level(lz_config_t *c) {
    lz_log_settings_t ls = {.level = LZ_LOG_OFF};
    LZ_CHECK_INT(lz__log_settings_read(c, &ls), LZ_OK);
    return ls.level;
}

LZ_TEST(test_debug_lowers_level_by_precedence) {
    char debug_file[256], both_file[256];
    write_file(debug_file, sizeof debug_file, "debug.yaml", "debug: true\n");
    write_file(both_file, sizeof both_file, "both.yaml", "debug: true\nlogging: {level: error}\n");

    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(c, debug_file), LZ_OK);
    LZ_CHECK_INT(effective_level(c), LZ_LOG_DEBUG); // level at default
    LZ_CHECK_STR(get_str(c, "logging.level"), "INFO"); // the key itself is untouched
    LZ_CHECK_INT(lz_config_set(c, "logging.level", "warning"), LZ_OK);
    LZ_CHECK_INT(effective_level(c), LZ_LOG_WARNING); // api outranks the file's debug
    lz_config_destroy(&c);

    c = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(c, both_file), LZ_OK);
    LZ_CHECK_INT(effective_level(c), LZ_LOG_ERROR); // same source: level wins
    setenv("LIBERZMQ_DEBUG", "1", 1);
    LZ_CHECK_INT(lz_config_load_env(c), LZ_OK);
    LZ_CHECK_INT(effective_level(c), LZ_LOG_DEBUG); // env outranks the file's level
    unsetenv("LIBERZMQ_DEBUG");
    LZ_CHECK_INT(lz_config_set(c, "logging.level", "trace"), LZ_OK);
    LZ_CHECK_INT(effective_level(c), LZ_LOG_TRACE); // debug only lowers
    lz_config_destroy(&c);
}

LZ_TEST(test_log_target_resolution) {
    lz_config_t *c = lz_config_new();
    lz_log_settings_t ls;
    LZ_CHECK_INT(lz__log_settings_read(c, &ls), LZ_OK);
    LZ_CHECK_INT(ls.target, LZ_LOG_TARGET_STDERR);
    LZ_CHECK_INT(ls.format, LZ_LOG_TEXT);
    LZ_CHECK_INT(lz_config_set(c, "logging.console_output", "false"), LZ_OK);
    LZ_CHECK_INT(lz__log_settings_read(c, &ls), LZ_OK);
    LZ_CHECK_INT(ls.target, LZ_LOG_TARGET_NONE);
    LZ_CHECK_INT(lz_config_set(c, "logging.target", "file"), LZ_OK);
    LZ_CHECK_INT(lz__log_settings_read(c, &ls), LZ_ECONFIG); // file without a path
    LZ_CHECK(error_mentions("logging.file_path", NULL, NULL));
    LZ_CHECK_INT(lz_config_set(c, "logging.file_path", "/tmp/x.log"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(c, "logging.format", "JSON"), LZ_OK);
    LZ_CHECK_INT(lz__log_settings_read(c, &ls), LZ_OK);
    LZ_CHECK_INT(ls.target, LZ_LOG_TARGET_FILE);
    LZ_CHECK_INT(ls.format, LZ_LOG_JSON);
    LZ_CHECK_STR(ls.file_path, "/tmp/x.log");
    LZ_CHECK_INT(lz_config_set(c, "logging.target", "stderr"), LZ_OK); // explicit: path ignored
    LZ_CHECK_INT(lz_config_set(c, "logging.console_output", "true"), LZ_OK);
    LZ_CHECK_INT(lz__log_settings_read(c, &ls), LZ_OK);
    LZ_CHECK_INT(ls.target, LZ_LOG_TARGET_STDERR);
    lz_config_destroy(&c);
}

LZ_TEST(test_empty_file_changes_nothing) {
    char path[256];
    lz_config_t *c = loaded_config(path, sizeof path, "empty.yaml", "# nothing here\n");
    LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), "default");
    write_file(path, sizeof path, "sections.yaml", "zmq:\nlogging: ~\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_OK);
    LZ_CHECK_INT(lz_config_load_file(NULL, path), LZ_EINVAL);
    LZ_CHECK_INT(lz_config_load_file(c, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_config_load_env(NULL), LZ_EINVAL);
    lz_config_destroy(&c);
}

// Damaged configuration files: each load either takes the whole file or
// fails with LZ_ECONFIG naming the file and leaves the configuration as it
// was; what loads writes out (lz_config_to_json) as a file that loads to
// the same settings.
LZ_TEST(test_damaged_files_load_whole_or_not_at_all) {
    const char *seeds[] = {python_yaml, python_json};
    static uint8_t text[LZ_MUTATE_MAX + 1];
    char path[256], again[256];
    int loaded = 0, refused = 0;
    for (int s = 0; s < 2; s++) {
        for (int m = 0; m < 2000; m++) {
            size_t len = lz_mutated_copy(text, seeds[s], strlen(seeds[s]));
            snprintf(path, sizeof path, "%s/damaged.yaml", scratch_dir());
            FILE *f = fopen(path, "wb");
            LZ_CHECK(f && fwrite(text, 1, len, f) == len);
            if (f) fclose(f);
            lz_config_t *c = lz_config_new();
            char *before = lz_config_to_json(c);
            int rc = lz_config_load_file(c, path);
            char *after = lz_config_to_json(c);
            if (rc != LZ_OK) {
                refused++;
                LZ_CHECK_INT(rc, LZ_ECONFIG);
                LZ_CHECK(strstr(lz_last_error(), path) != NULL);
                LZ_CHECK_STR(after, before);
            } else {
                loaded++;
                lz_config_t *back = loaded_config(again, sizeof again, "again.json", after);
                char *reread = lz_config_to_json(back);
                LZ_CHECK_STR(reread, after);
                free(reread);
                lz_config_destroy(&back);
            }
            free(before);
            free(after);
            lz_config_destroy(&c);
        }
    }
    printf("  %d loaded, %d refused\n", loaded, refused);
    LZ_CHECK(loaded > 0 && refused > 0);
}

// nested_text: "retries: " and lists flow lists nested in one another, as
// YAML text (caller frees).
static char *nested_text(size_t lists) {
    char *text = malloc(lists * 2 + 16), *at = text + sprintf(text, "retries: ");
    memset(at, '[', lists);
    memset(at + lists, ']', lists);
    strcpy(at + 2 * lists, "\n");
    return text;
}

// libyaml's scanner is quadratic in the depth of nested flow collections
// (64 thousand levels took 7.6 s, 200 thousand over a minute) and its
// loader has no limit: a file nests 32 levels at most, refused in the time
// a flat file of its size takes. The file is read whole first (it is parsed
// twice), so a pipe still works, and up to 16 MiB; a device (/dev/zero,
// which never ends) is not read at all.
LZ_TEST(test_deep_or_endless_files_are_refused_at_once) {
    char path[256];
    lz_config_t *c = lz_config_new();
    char *before = lz_config_to_json(c);
    for (size_t lists = 31; lists <= 32; lists++) {
        char *text = nested_text(lists);
        write_file(path, sizeof path, "nested.yaml", text);
        free(text);
        // 32 levels (the top mapping and 31 lists) parse, and fail as a key
        // that holds a list; 33 are refused before the document is built.
        LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
        LZ_CHECK(error_mentions(path, ":1", lists == 31 ? "'retries'" : "nested deeper than 32 levels"));
    }
    char *text = nested_text(500000);
    write_file(path, sizeof path, "deep.yaml", text);
    free(text);
    int64_t start = lz_test_now_ms();
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions(path, ":1", "nested deeper than 32 levels"));
    LZ_CHECK(lz_test_now_ms() - start < 5000 * lz_test_slowdown()); // a minute and more before
    write_file(path, sizeof path, "huge.yaml", "");
    LZ_CHECK_INT(truncate(path, 16 * 1024 * 1024 + 1), 0); // a hole: nothing written on the disk
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions(path, "larger than 16 MiB", NULL));
    LZ_CHECK_INT(lz_config_load_file(c, "/dev/zero"), LZ_ECONFIG);
    LZ_CHECK(error_mentions("/dev/zero", "a device, not a regular file", NULL));

    int pipe_fds[2];
    LZ_CHECK(pipe(pipe_fds) == 0);
    const char *piped = "zmq:\n  linger: 77\n";
    LZ_CHECK(write(pipe_fds[1], piped, strlen(piped)) == (ssize_t)strlen(piped));
    close(pipe_fds[1]);
    snprintf(path, sizeof path, "/proc/self/fd/%d", pipe_fds[0]);
    char *after = lz_config_to_json(c); // every failed load left it unchanged
    LZ_CHECK_STR(after, before);
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_OK);
    CHECK_INTS(c, {"zmq.linger", 77});
    close(pipe_fds[0]);
    free(before);
    free(after);
    lz_config_destroy(&c);
}

// A load on a thread of its own, so that one held by a FIFO fails the
// test rather than hanging it.
typedef struct {
    lz_config_t *config;
    const char *path;
    int rc;
    char error[512];
    atomic_bool done;
} fifo_load_t;

static void *fifo_load_main(void *arg) {
    fifo_load_t *load = arg;
    load->rc = lz_config_load_file(load->config, load->path);
    snprintf(load->error, sizeof load->error, "%s", lz_last_error());
    atomic_store(&load->done, true);
    return NULL;
}

// A configuration path that names a FIFO (mkfifo) is refused at once: the
// open waited for a writer that might never come (a watched file replaced
// by one held its watcher, and lz_context_destroy after it, for ever).
LZ_TEST(test_a_named_fifo_is_refused_at_once) {
    char path[256];
    snprintf(path, sizeof path, "%s/fifo.yaml", scratch_dir());
    LZ_CHECK_INT(mkfifo(path, 0600), 0);
    fifo_load_t load = {.config = lz_config_new(), .path = path};
    char *before = lz_config_to_json(load.config);
    pthread_t thread;
    LZ_CHECK_INT(pthread_create(&thread, NULL, fifo_load_main, &load), 0);
    LZ_TEST_WAIT_UNTIL(atomic_load(&load.done), 2000 * lz_test_slowdown());
    LZ_CHECK(atomic_load(&load.done));
    while (!atomic_load(&load.done)) { // held: a writer that comes and goes lets it go
        int fd = open(path, O_WRONLY | O_NONBLOCK);
        if (fd >= 0) close(fd);
        lz_test_sleep_ms(10);
    }
    pthread_join(thread, NULL);
    LZ_CHECK_INT(load.rc, LZ_ECONFIG);
    LZ_CHECK(strstr(load.error, path) && strstr(load.error, "a named FIFO, not a regular file"));
    char *after = lz_config_to_json(load.config);
    LZ_CHECK_STR(after, before);
    free(before);
    free(after);
    lz_config_destroy(&load.config);
    unlink(path);
}

// anchors_text: "retries: " and a flow list of n anchored scalars, then
// an alias of each, as YAML text (caller frees): 2n anchors and aliases.
static char *anchors_text(size_t n) {
    char *text = malloc(n * 24 + 16), *at = text + sprintf(text, "retries: [");
    for (size_t i = 0; i < n; i++) at += sprintf(at, "&a%zu x,", i);
    for (size_t i = 0; i < n; i++) at += sprintf(at, "%s*a%zu", i ? "," : "", i);
    strcpy(at, "]\n");
    return text;
}

// libyaml's loader looks every anchor and alias up in a list of the
// anchors before it (80 thousand took 36 s): a file holds 1000 at most,
// refused in the event pass before the loader starts.
LZ_TEST(test_anchor_floods_are_refused_at_once) {
    char path[256];
    lz_config_t *c = lz_config_new();
    char *text = anchors_text(500);
    write_file(path, sizeof path, "anchors.yaml", text); // 1000: loaded, and fails as an unknown key
    free(text);
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions(path, ":1", "'retries'"));
    write_file(path, sizeof path, "anchors.yaml", "zmq: {linger: &t 7, send_timeout: *t, receive_timeout: *t}\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_OK);
    CHECK_INTS(c, {"zmq.linger", 7}, {"zmq.send_timeout", 7}, {"zmq.receive_timeout", 7});

    text = anchors_text(80000);
    write_file(path, sizeof path, "anchors.yaml", text);
    free(text);
    int64_t start = lz_test_now_ms();
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions(path, ":1", "more than 1000 YAML anchors and aliases"));
    LZ_CHECK(lz_test_now_ms() - start < 2000 * lz_test_slowdown()); // 40 s and more before
    CHECK_INTS(c, {"zmq.linger", 7});
    lz_config_destroy(&c);
}

// Only a file's first document was loaded: keys after a "---", even text
// that is no YAML at all, were ignored instead of checked.
// A file's text, and the line and words the error of its load must name.
typedef struct {
    const char *text, *line, *why;
} refused_file_t;

// check_refused_files loads each file over one configuration and checks
// that the load fails naming the file, the line and why, changing nothing.
static void check_refused_files(const refused_file_t *files, size_t n) {
    char path[256];
    lz_config_t *c = lz_config_new();
    for (size_t i = 0; i < n; i++) {
        write_file(path, sizeof path, "refused.yaml", files[i].text);
        LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
        LZ_CHECK(error_mentions(path, files[i].line, files[i].why));
    }
    LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), "default");
    lz_config_destroy(&c);
}

LZ_TEST(test_a_file_holds_one_document) {
    static const refused_file_t refused[] = {
        {"zmq: {linger: 1}\n---\nzmq: {lingr: 2}\n", ":2", "a second YAML document"},
        {"zmq: {linger: 1}\n---\n[[[ :\n", ":2", "a second YAML document"},
        {"---\nzmq: {linger: 1}\n--- {}\n", ":3", "a second YAML document"},
        {"zmq: {linger: 1}\n...\nzmq: {linger: 4}\n", ":3", "not valid YAML"}, // a second needs its "---"
    };
    check_refused_files(refused, sizeof refused / sizeof refused[0]);
    char path[256];
    static const char *const accepted[] = {
        "%YAML 1.1\n---\nzmq: {linger: 5}\n",
        "---\nzmq: {linger: 5}\n...\n# the end\n",
        "zmq: {linger: 5}\n",
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        lz_config_t *one = loaded_config(path, sizeof path, "document.yaml", accepted[i]);
        CHECK_INTS(one, {"zmq.linger", 5});
        lz_config_destroy(&one);
    }
}

// libyaml ends a scalar's text at a NUL: "7\0 ms" read as 7, a key
// "linger\0 typo" as zmq.linger.
LZ_TEST(test_nul_in_a_key_or_value_is_refused) {
    static const char *const files[] = {
        "zmq: {linger: \"7\\0 ms\"}\n",
        "zmq: {\"linger\\0 typo\": 7}\n",
        "logging:\n  file_path: \"/tmp/a.log\\0/../etc\"\n",
    };
    char path[256];
    lz_config_t *c = lz_config_new();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        write_file(path, sizeof path, "nul.yaml", files[i]);
        LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
        LZ_CHECK(error_mentions(path, "NUL character", NULL));
    }
    CHECK_INTS(c, {"zmq.linger", 1000});
    LZ_CHECK_STR(get_str(c, "logging.file_path"), "");
    lz_config_destroy(&c);
}

// A bad value is shown in the error detail, unless the key carries a
// credential: a mistyped secret or bearer token is nearly the real one.
LZ_TEST(test_secret_values_stay_out_of_errors) {
    char path[256];
    lz_config_t *c = lz_config_new();
    write_file(path, sizeof path, "headers.yaml",
               "tracing: {otlp_headers: 'authorization=Bearer%20SECRETTOKEN,bad'}\n");
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions("tracing.otlp_headers", "value not shown", NULL));
    LZ_CHECK(!strstr(lz_last_error(), "SECRETTOKEN"));
    LZ_CHECK_INT(lz_config_set(c, "security.plain_password", "hunter2\nhunter3"), LZ_ECONFIG);
    LZ_CHECK(!strstr(lz_last_error(), "hunter2"));
    LZ_CHECK_INT(lz_config_set(c, "zmq.linger", "soon"), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.linger", "'soon'", NULL));

    size_t secrets = 0;
    for (size_t k = 0; k < lz_config_key_count(); k++) secrets += lz_config_key_is_secret(lz_config_key_at(k));
    LZ_CHECK_INT(secrets, 3);
    LZ_CHECK(lz_config_key_is_secret("security.curve_secret_key"));
    LZ_CHECK(lz_config_key_is_secret("tracing.otlp_headers"));
    LZ_CHECK(!lz_config_key_is_secret("security.curve_server_key"));
    LZ_CHECK(!lz_config_key_is_secret("no.such_key"));
    LZ_CHECK(!lz_config_key_is_secret(NULL));
    lz_config_destroy(&c);
}

// file_refused checks that a file holding text fails to load, its error
// naming what (and, if not NULL, where: a line, say) but not secret.
static void file_refused(lz_config_t *c, const char *text, const char *what, const char *where, const char *secret) {
    char path[256];
    write_file(path, sizeof path, "refused.yaml", text);
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
    LZ_CHECK(error_mentions(what, path, where));
    LZ_CHECK(!secret || !strstr(lz_last_error(), secret));
}

// A key's dotted name at the top level is refused, with the sectioned form
// to write: the Python LiberZMQ ignores a top-level name it does not
// declare, so the file would set the key for C services only.
LZ_TEST(test_dotted_keys_at_the_top_level_are_refused) {
    lz_config_t *c = lz_config_new();
    file_refused(c, "debug: false\nzmq.linger: 7\n", "key 'zmq.linger'",
                 ":2: write it in its section ('zmq:', then 'linger:')", NULL);
    CHECK_INTS(c, {"zmq.linger", 1000});
    file_refused(c, "security.plain_password: hunter2\n", "key 'security.plain_password'",
                 "'security:', then 'plain_password:'", "hunter2");
    file_refused(c, "zmq.lingr: 7\n", "unknown key 'zmq.lingr'", ":1", NULL);
    lz_config_destroy(&c);
}

// A misspelt key may be any secret's (security.plain_passwrod: its value
// is the password): an unknown key's value is never shown, wherever it
// comes from; the key and its source are.
LZ_TEST(test_unknown_keys_hide_their_values) {
    lz_config_t *c = lz_config_new();
    file_refused(c, "security:\n  plain_passwrod: hunter2\n", "unknown key 'security.plain_passwrod'", ":2", "hunter2");
    file_refused(c, "plain_password: hunter2\n", "unknown key 'plain_password'", ":1", "hunter2");

    setenv("LIBERZMQ_SECURITY__PLAIN_PASSWROD", "hunter2", 1);
    LZ_CHECK_INT(lz_config_load_env(c), LZ_ECONFIG);
    LZ_CHECK(error_mentions("unknown key 'security.plain_passwrod'", "env LIBERZMQ_SECURITY__PLAIN_PASSWROD", NULL));
    LZ_CHECK(!strstr(lz_last_error(), "hunter2"));
    unsetenv("LIBERZMQ_SECURITY__PLAIN_PASSWROD");

    LZ_CHECK_INT(lz_config_set(c, "security.plain_passwrod", "hunter2"), LZ_ENOTFOUND);
    LZ_CHECK(error_mentions("unknown key 'security.plain_passwrod'", "api", NULL));
    LZ_CHECK(!strstr(lz_last_error(), "hunter2"));
    LZ_CHECK_INT(lz_config_set_int(c, "security.pin", 4242), LZ_ENOTFOUND);
    LZ_CHECK(!strstr(lz_last_error(), "4242"));
    lz_config_destroy(&c);
}

// A credential key's bad value is never shown either, whatever is wrong
// with it and wherever it comes from.
LZ_TEST(test_bad_secret_values_are_hidden_from_every_source) {
    char path[256], text[160], var[96];
    lz_config_t *c = lz_config_new();
    for (size_t k = 0; k < lz_config_key_count(); k++) {
        const char *key = lz_config_key_at(k), *dot = strchr(key, '.');
        if (!lz_config_key_is_secret(key)) continue;
        snprintf(text, sizeof text, "%.*s:\n  %s: 4242424242\n", (int)(dot - key), key, dot + 1); // not text
        write_file(path, sizeof path, "secret.yaml", text);
        LZ_CHECK_INT(lz_config_load_file(c, path), LZ_ECONFIG);
        LZ_CHECK(error_mentions(key, path, "value not shown"));
        LZ_CHECK(!strstr(lz_last_error(), "4242"));
        snprintf(var, sizeof var, "LIBERZMQ_%s", key);
        for (char *p = var; *p; p++) *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        setenv(var, "=hunter2\n", 1); // no CURVE key, password or header list
        LZ_CHECK_INT(lz_config_load_env(c), LZ_ECONFIG);
        LZ_CHECK(error_mentions(key, var, "value not shown"));
        LZ_CHECK(!strstr(lz_last_error(), "hunter2"));
        unsetenv(var);
        LZ_CHECK_INT(lz_config_set(c, key, "=hunter2\n"), LZ_ECONFIG);
        LZ_CHECK(error_mentions(key, "api", "value not shown"));
        LZ_CHECK(!strstr(lz_last_error(), "hunter2"));
    }
    lz_config_destroy(&c);
}

LZ_TEST(test_key_names_and_aliases) {
    LZ_CHECK_STR(lz_config_key_name("zmq.socket_timeout"), "zmq.receive_timeout");
    LZ_CHECK_STR(lz_config_key_name("zmq.linger"), "zmq.linger");
    LZ_CHECK(lz_config_key_name("zmq.lingr") == NULL);
    LZ_CHECK(lz_config_key_name(NULL) == NULL);
}

// libzmq adds its own threads to zmq.max_sockets in an int and reserves a
// slot per socket at once: INT_MAX aborted the process in lz_context_new.
LZ_TEST(test_max_sockets_is_capped) {
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_set_int(c, "zmq.max_sockets", 1 << 20), LZ_OK);
    LZ_CHECK_INT(lz_config_set_int(c, "zmq.max_sockets", (1 << 20) + 1), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.max_sockets", "[1..1048576]", NULL));
    LZ_CHECK_INT(lz_config_set(c, "zmq.max_sockets", "2147483647"), LZ_ECONFIG);
    CHECK_INTS(c, {"zmq.max_sockets", 1 << 20});
    lz_config_destroy(&c);
}

// The OTLP exporter's keys (src/core/otlp.c): defaults, checks, ranges,
// both environment forms, and the settings the context reads.
LZ_TEST(test_tracing_otlp_keys) {
    lz_config_t *c = lz_config_new();
    LZ_CHECK_STR(get_str(c, "tracing.otlp_endpoint"), "");
    LZ_CHECK_STR(get_str(c, "tracing.service_name"), "liberzmq");
    CHECK_INTS(c, {"tracing.otlp_batch", 512}, {"tracing.otlp_interval", 1000});
    LZ_CHECK_INT(lz_config_set(c, "tracing.otlp_endpoint", "collector:4318"), LZ_ECONFIG);
    LZ_CHECK(error_mentions("tracing.otlp_endpoint", "api", "http://"));
    LZ_CHECK_INT(lz_config_set(c, "tracing.service_name", ""), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(c, "tracing.otlp_batch", 0), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(c, "tracing.otlp_batch", 8193), LZ_ECONFIG);
    LZ_CHECK(error_mentions("tracing.otlp_batch", "[1..8192]", NULL));
    LZ_CHECK_INT(lz_config_set_int(c, "tracing.otlp_interval", 9), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(c, "tracing.otlp_interval", 3600001), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(c, "tracing.otlp_batch", 8192), LZ_OK);

    setenv("LIBERZMQ_TRACING__OTLP_ENDPOINT", "http://127.0.0.1:4318", 1);
    setenv("LIBERZMQ_TRACING_SERVICE_NAME", "billing", 1);
    setenv("LIBERZMQ_TRACING__OTLP_INTERVAL", "250", 1);
    LZ_CHECK_INT(lz_config_load_env(c), LZ_OK);
    LZ_CHECK_STR(get_str(c, "tracing.otlp_endpoint"), "http://127.0.0.1:4318");
    LZ_CHECK_STR(lz_config_source(c, "tracing.otlp_endpoint"), "env LIBERZMQ_TRACING__OTLP_ENDPOINT");
    LZ_CHECK_STR(get_str(c, "tracing.service_name"), "billing");
    LZ_CHECK_STR(lz_config_source(c, "tracing.service_name"), "env LIBERZMQ_TRACING_SERVICE_NAME");
    LZ_CHECK_INT(get_int(c, "tracing.otlp_interval"), 250);
    lz_settings_t s;
    LZ_CHECK_INT(lz__settings_read(c, &s), LZ_OK);
    LZ_CHECK_STR(s.otlp_endpoint, "http://127.0.0.1:4318");
    LZ_CHECK_STR(s.service_name, "billing");
    LZ_CHECK_INT(s.otlp_batch, 8192); // set through the API above
    LZ_CHECK_INT(s.otlp_interval, 250);
    setenv("LIBERZMQ_TRACING__OTLP_ENDPOINT", "udp://127.0.0.1:4318", 1);
    LZ_CHECK_INT(lz_config_load_env(c), LZ_ECONFIG);
    LZ_CHECK(error_mentions("tracing.otlp_endpoint", "LIBERZMQ_TRACING__OTLP_ENDPOINT", "'udp://"));
    LZ_CHECK_STR(get_str(c, "tracing.otlp_endpoint"), "http://127.0.0.1:4318"); // all or nothing
    unsetenv("LIBERZMQ_TRACING__OTLP_ENDPOINT");
    unsetenv("LIBERZMQ_TRACING_SERVICE_NAME");
    unsetenv("LIBERZMQ_TRACING__OTLP_INTERVAL");
    lz_config_destroy(&c);
}

/* ---- YAML 1.1, as PyYAML's safe_load reads it (the Python LiberZMQ's reader) ---- */

// load_value loads over c a file in which key (a section's, written at
// line 2, or a top-level one) holds value, YAML text as written after the
// colon; returns the load's code.
static int load_value(lz_config_t *c, const char *key, const char *value) {
    char text[256], path[256];
    const char *dot = strchr(key, '.');
    if (dot) snprintf(text, sizeof text, "%.*s:\n  %s: %s\n", (int)(dot - key), key, dot + 1, value);
    else snprintf(text, sizeof text, "%s: %s\n", key, value);
    write_file(path, sizeof path, "value.yaml", text);
    return lz_config_load_file(c, path);
}

// A YAML value and the integer, or the error detail, expected of it.
typedef struct {
    const char *yaml;
    int64_t want;
    const char *why; // NULL: loads as want
} yaml_form_t;

// check_forms loads each form as key's value in a fresh configuration and
// checks the integer or boolean it gives, or that the load fails naming
// the key, its line and why.
static void check_forms(const char *key, const yaml_form_t *forms, size_t n) {
    for (size_t i = 0; i < n; i++) {
        lz_config_t *c = lz_config_new();
        int rc = load_value(c, key, forms[i].yaml);
        int64_t got = -12345;
        bool b = false;
        if (rc == LZ_OK && lz_config_get_int(c, key, &got) != LZ_OK && lz_config_get_bool(c, key, &b) == LZ_OK)
            got = b;
        bool ok = forms[i].why ? rc == LZ_ECONFIG && error_mentions(key, strchr(key, '.') ? ":2" : ":1", forms[i].why)
                               : rc == LZ_OK && got == forms[i].want;
        LZ_CHECK(ok);
        if (!ok)
            fprintf(stderr, "  (%s: %s gave rc %d, value %lld; expected %s %lld)\n", key, forms[i].yaml, rc,
                    (long long)got, forms[i].why ? forms[i].why : "", (long long)forms[i].want);
        lz_config_destroy(&c);
    }
}
#define CHECK_FORMS(key, ...) CHECK_TABLE(check_forms, key, yaml_form_t, __VA_ARGS__)

// A YAML value and the string it must load as.
typedef struct {
    const char *yaml, *want;
} yaml_string_t;

// check_strings loads each form as key's value in a fresh configuration
// and checks the string it gives.
static void check_strings(const char *key, const yaml_string_t *forms, size_t n) {
    for (size_t i = 0; i < n; i++) {
        lz_config_t *c = lz_config_new();
        LZ_CHECK_INT(load_value(c, key, forms[i].yaml), LZ_OK);
        const char *got = NULL;
        lz_config_get_string(c, key, &got);
        LZ_CHECK_STR(got, forms[i].want);
        lz_config_destroy(&c);
    }
}
#define CHECK_STRINGS(key, ...) CHECK_TABLE(check_strings, key, yaml_string_t, __VA_ARGS__)

// Integers as safe_load builds them: 010 was read as 10, and 0x1F, 0b101,
// 1_000 and 1:30 were refused; !!int "010" was read as 10.
LZ_TEST(test_yaml_integers_as_pyyaml_reads_them) {
    CHECK_FORMS("zmq.linger", {"010", 8, NULL}, {"-01", -1, NULL}, {"0x1F", 31, NULL}, {"0b101", 5, NULL},
                {"1_000", 1000, NULL}, {"+5", 5, NULL}, {"-0", 0, NULL}, {"0_", 0, NULL},
                {"1:30", 90, NULL}, {"190:20:30", 685230, NULL}, {"-1", -1, NULL}, {"0x7fffffff", 2147483647, NULL},
                {"!!int \"5\"", 5, NULL}, {"!!int '010'", 8, NULL}, {"!!int \"0x10\"", 16, NULL},
                {"! 7", 7, NULL}, {"! \"7\"", 7, NULL}); // "!", the non-specific tag: resolved as if plain
    CHECK_FORMS("zmq.max_message_size", {"0x7fffffffffffffff", INT64_MAX, NULL},
                {"9223372036854775807", INT64_MAX, NULL}, {"9223372036854775808", 0, "out of range"},
                {"0x10000000000000000", 0, "out of range"}, {"99999999999999999999", 0, "out of range"});
}

// What safe_load reads as no integer is refused for an integer key, naming
// what it reads instead. Before, "5", '5', !!str 5 and !!float 5 were 5,
// 08 was 8, and !foo, !!null x and !!binary were read as their text.
LZ_TEST(test_yaml_non_integers_are_refused_for_integer_keys) {
    CHECK_FORMS("zmq.linger",
                // A string is read as its text, as pydantic does: "5" is 5.
                {"1e3", 0, "not an integer: '1e3'"}, // YAML 1.1's floats need a dot
                {"0o10", 0, "not an integer"}, {"08", 8, NULL}, {"0X1F", 0, "not an integer"},
                {"1:70", 0, "not an integer"}, {"\"5\"", 5, NULL}, {"'5'", 5, NULL},
                {"!!str 5", 5, NULL}, {"1.5", 0, "reads a float"},
                {".inf", 0, "reads a float"}, {"-.inf", 0, "reads a float"}, {".nan", 0, "reads a float"},
                {"yes", 0, "reads a boolean"}, {"off", 0, "reads a boolean"},
                {"2024-01-01", 0, "reads a date"}, {"0b_", 0, "no digits"},
                {"!!int abc", 0, "not a YAML 1.1 integer"}, {"!!int '1:70'", 0, "not a YAML 1.1 integer"},
                {"!foo 5", 0, "unsupported YAML tag !foo: '5'"}, {"!!binary NQ==", 0, "unsupported YAML tag !!binary"},
                {"<<", 0, "merge key"}, {"=", 0, "value key"}, {"0x80000000", 0, "out of range"});
    char path[256];
    write_file(path, sizeof path, "quoted.json", "{\"zmq\": {\"linger\": \"500\"}}\n");
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_load_file(c, path), LZ_OK);
    int64_t linger = -1;
    LZ_CHECK_INT(lz_config_get_int(c, "zmq.linger", &linger), LZ_OK);
    LZ_CHECK_INT(linger, 500);
    lz_config_destroy(&c);
}

// A float without a fraction is the whole number, as pydantic takes a float
// for an int field (and 0.0 and 1.0 for a bool one): the Python LiberZMQ
// loads linger: 500.0. Before, every float was refused. One with a
// fraction, an infinity or NaN is still refused, and so is a fraction a
// double cannot hold (Python would round 1.00000000000000001 to 1).
LZ_TEST(test_yaml_whole_floats_as_pydantic_takes_them) {
    CHECK_FORMS("zmq.linger", {"500.0", 500, NULL}, {"5.", 5, NULL}, {"+1.0", 1, NULL}, {"-0.0", 0, NULL},
                {"1.0e+3", 1000, NULL}, {"1.5e+3", 1500, NULL}, {"100.0e-2", 1, NULL}, {"1_0.0", 10, NULL},
                {"1:30.0", 90, NULL}, {"0:30.00", 30, NULL}, {"!!float 5", 5, NULL}, {"!!float 2e3", 2000, NULL},
                {"!!float 1:30", 90, NULL}, {"!!float '7.0'", 7, NULL}, {"0.0e+999", 0, NULL},
                {"1.5", 0, "reads a float"}, {"1:30.5", 0, "reads a float"}, {".5", 0, "reads a float"},
                {"1.0e-1", 0, "reads a float"}, {"1.00000000000000001", 0, "reads a float"},
                {".inf", 0, "reads a float"}, {".nan", 0, "reads a float"}, {"!!float e5", 0, "reads a float"},
                {"!!float abc", 0, "reads a float"}, {"!!float 1:x.0", 0, "reads a float"},
                {"1.0e+30", 0, "out of range"}, {"-1.0", -1, NULL}, {"-2.0", 0, "out of range"},
                {"1.0e+999999999999", 0, "out of range"});
    CHECK_FORMS("zmq.max_message_size", {"9223372036854775807.0", INT64_MAX, NULL},
                {"9223372036854775808.0", 0, "out of range"});
    CHECK_FORMS("debug", {"1.0", 1, NULL}, {"0.0", 0, NULL}, {"-0.0", 0, NULL}, {"1.0e+0", 1, NULL},
                {"!!float 1", 1, NULL}, {"2.0", 0, "reads a float"}, {"0.5", 0, "reads a float"},
                {".inf", 0, "reads a float"});
}

// Booleans are YAML 1.1's words in three casings (and 0 and 1); y, n, t,
// f and other casings are strings to safe_load, which pydantic then reads
// as booleans (test_boolean_text_as_pydantic_reads_it). Before, yEs, tRUE,
// "yes" and !!bool 1 were true, 0b1 was refused, and so were y, n, t, f.
LZ_TEST(test_yaml_booleans_as_pyyaml_reads_them) {
    CHECK_FORMS("debug", {"yes", 1, NULL}, {"Yes", 1, NULL}, {"YES", 1, NULL}, {"on", 1, NULL}, {"On", 1, NULL},
                {"ON", 1, NULL}, {"true", 1, NULL}, {"True", 1, NULL}, {"TRUE", 1, NULL}, {"1", 1, NULL},
                {"0b1", 1, NULL}, {"!!bool \"yes\"", 1, NULL}, {"!!bool yEs", 1, NULL},
                {"y", 1, NULL}, {"Y", 1, NULL}, {"t", 1, NULL}, {"T", 1, NULL}, {"!!str y", 1, NULL}, // strings
                {"yEs", 1, NULL}, {"tRUE", 1, NULL}, {"\"yes\"", 1, NULL}, {"2", 0, "reads an integer"},
                {"ye", 0, "not a boolean: 'ye'"},
                {"!!bool 1", 0, "not a boolean"}, {"!!bool y", 0, "not a boolean"}); // safe_load: KeyError
    CHECK_FORMS("validate_data", {"no", 0, NULL}, {"No", 0, NULL}, {"NO", 0, NULL}, {"off", 0, NULL},
                {"Off", 0, NULL}, {"OFF", 0, NULL}, {"false", 0, NULL}, {"False", 0, NULL}, {"FALSE", 0, NULL},
                {"0", 0, NULL}, {"!!bool 'FALSE'", 0, NULL}, {"n", 0, NULL}, {"N", 0, NULL}, {"f", 0, NULL},
                {"F", 0, NULL}, {"'n'", 0, NULL}, {"!!bool n", 0, "not a boolean"});
    CHECK_FORMS("zmq.linger", {"y", 0, "not an integer: 'y'"}); // text for an integer key, not a boolean
}

// Text for a boolean key, from every source that gives text (lz_config_set,
// the environment, a YAML string), reads as pydantic v2 reads a string for
// a bool field, the Python LiberZMQ's settings model: these twelve words in
// any case, and nothing else (not with a space around them). Before, t, f,
// y and n were refused.
static const char *const bool_truths[] = {"true", "yes", "on", "1", "t", "y", "True", "YES", "oN", "T", "Y"};
static const char *const bool_lies[] = {"false", "no", "off", "0", "f", "n", "FALSE", "No", "oFf", "F", "N"};
static const char *const not_bools[] = {"", " y", "y ", "ye", "yess", "tru", "o", "2", "01", "+1", "-0", "1.0", "yes!"};

typedef int (*bool_source_fn)(lz_config_t *c, const char *text);

static int bool_by_api(lz_config_t *c, const char *text) { return lz_config_set(c, "debug", text); }

static int bool_by_env(lz_config_t *c, const char *text) {
    setenv("LIBERZMQ_DEBUG", text, 1);
    int rc = lz_config_load_env(c);
    unsetenv("LIBERZMQ_DEBUG");
    return rc;
}

static int bool_by_yaml_string(lz_config_t *c, const char *text) {
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", text);
    return load_value(c, "debug", quoted);
}

// expect_bool gives "debug" text through source and checks it reads as
// want (1 true, 0 false) or, want -1, is refused naming the key.
static void expect_bool(bool_source_fn source, const char *source_name, const char *text, int want) {
    lz_config_t *c = lz_config_new();
    int rc = source(c, text);
    bool b = false;
    int got = rc == LZ_OK && lz_config_get_bool(c, "debug", &b) == LZ_OK ? b : -1;
    bool ok = got == want && (rc == LZ_OK || (rc == LZ_ECONFIG && error_mentions("debug", "not a boolean", NULL)));
    LZ_CHECK(ok);
    if (!ok) fprintf(stderr, "  (%s '%s': rc %d, read %d, expected %d)\n", source_name, text, rc, got, want);
    lz_config_destroy(&c);
}

LZ_TEST(test_boolean_text_as_pydantic_reads_it) {
    static const struct {
        bool_source_fn fn;
        const char *name;
    } sources[] = {{bool_by_api, "lz_config_set"}, {bool_by_env, "LIBERZMQ_DEBUG"}, {bool_by_yaml_string, "yaml"}};
    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        for (size_t i = 0; i < sizeof bool_truths / sizeof bool_truths[0]; i++)
            expect_bool(sources[s].fn, sources[s].name, bool_truths[i], 1);
        for (size_t i = 0; i < sizeof bool_lies / sizeof bool_lies[0]; i++)
            expect_bool(sources[s].fn, sources[s].name, bool_lies[i], 0);
        for (size_t i = 0; i < sizeof not_bools / sizeof not_bools[0]; i++)
            expect_bool(sources[s].fn, sources[s].name, not_bools[i], -1);
    }
}

// Nulls reset a key to its default; a null that is a string (!!str null,
// nULL) is text. Before, !!str null was a null and !!null x was 'x'.
LZ_TEST(test_yaml_nulls_as_pyyaml_reads_them) {
    static const char *const nulls[] = {"~", "null", "Null", "NULL", "", "!!null", "!!null x", "!!null '5'", "! ~"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        lz_config_t *c = lz_config_new();
        LZ_CHECK_INT(load_value(c, "zmq.linger", "5"), LZ_OK);
        LZ_CHECK_INT(load_value(c, "zmq.linger", nulls[i]), LZ_OK);
        LZ_CHECK_STR(lz_config_source(c, "zmq.linger"), "default");
        if (get_int(c, "zmq.linger") != 1000) fprintf(stderr, "  (zmq.linger: %s)\n", nulls[i]);
        lz_config_destroy(&c);
    }
    CHECK_STRINGS("logging.syslog_ident", {"!!str null", "null"}, {"'null'", "null"}, {"nULL", "nULL"},
                  {"!!str ~", "~"}, {"\"~\"", "~"});
    CHECK_FORMS("zmq.linger", {"!!str null", 0, "not an integer: 'null'"});
}

// A string key takes what safe_load reads as a string: a bare yes, off,
// 0123 or date is refused with a hint to quote it (before, level: off was
// the level OFF where Python reads false, and a password 0123 was '0123'
// where Python reads 83). 1e3, 08 and 0o10 are strings in YAML 1.1.
LZ_TEST(test_yaml_string_keys_take_strings) {
    CHECK_STRINGS("logging.syslog_ident", {"'yes'", "yes"}, {"!!str yes", "yes"}, {"\"0123\"", "0123"}, {"y", "y"},
                  {"1e3", "1e3"}, {"08", "08"}, {"0o10", "0o10"}, {"1:70", "1:70"}, {"svc", "svc"}, {"! svc", "svc"});
    CHECK_STRINGS("logging.level", {"'off'", "OFF"});
    CHECK_FORMS("logging.syslog_ident",
                {"yes", 0, "expected a string, YAML 1.1 reads a boolean (quote it for the text): 'yes'"},
                {"0123", 0, "reads an integer (quote it"}, {"1.5", 0, "reads a float"}, {"2024-01-01", 0, "a date"},
                {"! \"5\"", 0, "reads an integer"}, {"!!int 5", 0, "reads an integer"}, {"<<", 0, "merge key"});
    CHECK_FORMS("logging.level", {"off", 0, "reads a boolean"});
    CHECK_FORMS("serialization.default", {"on", 0, "reads a boolean"});
    CHECK_FORMS("security.plain_password", {"0123", 0, "reads an integer (quote it for the text) (value not shown)"});
}

// Timestamps with a time of day, a fraction or a zone are dates to
// safe_load, as the date alone is: refused for every key
// (docs/configuration.md). What the timestamp pattern does not match
// whole (one-digit month without a time, no seconds, a zone of three
// digits or half a minute part, a letter after it) is a string.
LZ_TEST(test_yaml_timestamps_are_refused) {
    CHECK_FORMS("zmq.linger", {"2024-01-01T12:00:00Z", 0, "reads a date"}, {"2024-1-1 1:00:00", 0, "reads a date"},
                {"2024-01-01t12:00:00.125-05", 0, "reads a date"}, {"2024-01-01   12:00:00.5 Z", 0, "reads a date"},
                {"2024-01-01 12:00:00 +01:30", 0, "reads a date"}, {"2024-01-01T12:00:00.+1", 0, "reads a date"});
    CHECK_FORMS("logging.syslog_ident", {"2024-01-01T12:00:00-05:00", 0, "reads a date (quote it"});
    CHECK_STRINGS("logging.syslog_ident", {"2024-1-1", "2024-1-1"}, {"2024-01-01T12:00", "2024-01-01T12:00"},
                  {"2024-01-01 12:00:00 +123", "2024-01-01 12:00:00 +123"},
                  {"2024-01-01T12:00:00+01:0", "2024-01-01T12:00:00+01:0"},
                  {"2024-01-01T12:00:00 X", "2024-01-01T12:00:00 X"},
                  {"2024-01-01T12:00:00Zulu", "2024-01-01T12:00:00Zulu"},
                  {"2024-01-01T123:00:00", "2024-01-01T123:00:00"});
}

// An anchor named twice and an alias of no anchor fail the load as they
// fail safe_load, naming the file and the line (the first anchor's too).
LZ_TEST(test_yaml_duplicate_anchors_and_undefined_aliases_are_refused) {
    static const refused_file_t refused[] = {
        {"zmq:\n  linger: &t 5\n  send_timeout: &t 6\n", ".yaml:3:", "found duplicate anchor &t (first on line 2)"},
        {"zmq: {linger: &t 5}\nlogging: &t {level: INFO}\n", ".yaml:2:", "found duplicate anchor &t (first on line 1)"},
        {"zmq:\n  linger: 5\n  send_timeout: *nope\n", ".yaml:3:", "found undefined alias"},
        {"zmq:\n  send_timeout: *t\n  linger: &t 5\n", ".yaml:2:", "found undefined alias"}, // an alias looks back
    };
    check_refused_files(refused, sizeof refused / sizeof refused[0]);
}

// Tags on keys, sections and the top level, and tagged values behind
// anchors: what safe_load refuses (!foo, !!int linger, !!set) is refused,
// naming the line, where before the tag was ignored.
LZ_TEST(test_yaml_tags_on_keys_sections_and_anchors) {
    static const refused_file_t refused[] = {
        {"zmq: !foo {linger: 5}\n", ":1", "unsupported YAML tag !foo"},
        {"zmq: !!set {linger}\n", ":1", "unsupported YAML tag !!set"},
        {"--- !foo\nzmq: {linger: 5}\n", ":1", "unsupported YAML tag !foo on the top-level mapping"},
        {"!foo zmq: {linger: 5}\n", ":1", "unsupported YAML tag !foo"},
        {"zmq:\n  !!int linger: 5\n", ":2", "key 'zmq.linger'"},
        {"zmq:\n  linger: 5\n  010: 5\n", ":3", "reads an integer, not a name"},
        {"zmq: !!str\n", ":1", "expected a mapping of keys"},
        {"logging:\n  syslog_ident: ! \"svc\\n\"\n", ":2", "the non-specific tag ! on text ending in a line break"},
    };
    check_refused_files(refused, sizeof refused / sizeof refused[0]);
    char path[256];
    static const char *const accepted[] = {
        "zmq: !!map {linger: 7, send_timeout: 7}\n", "zmq:\n  !!str linger: 7\n  ! send_timeout: 7\n",
        "zmq: {linger: !!int &t \"7\", send_timeout: *t}\n", "--- !!map\nzmq: {linger: 7, send_timeout: 7}\n",
        "zmq: {linger: &t !!str 7, send_timeout: *t}\n", // text for a number: its text, as pydantic reads it
        "zmq: !!null\nlogging: ~\n",
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        lz_config_t *c = loaded_config(path, sizeof path, "tags.yaml", accepted[i]);
        if (i < 5) CHECK_INTS(c, {"zmq.linger", 7}, {"zmq.send_timeout", 7});
        lz_config_destroy(&c);
    }
}

// The environment is not YAML: its values keep their own reading
// (decimal integers, booleans in any case), whatever a file's would be.
LZ_TEST(test_env_values_are_not_yaml) {
    setenv("LIBERZMQ_ZMQ__LINGER", "010", 1);
    setenv("LIBERZMQ_DEBUG", "yEs", 1);
    lz_config_t *c = lz_config_new();
    LZ_CHECK_INT(lz_config_load_env(c), LZ_OK);
    CHECK_INTS(c, {"zmq.linger", 10});
    LZ_CHECK(get_bool(c, "debug"));
    setenv("LIBERZMQ_ZMQ__LINGER", "0x1F", 1);
    LZ_CHECK_INT(lz_config_load_env(c), LZ_ECONFIG);
    LZ_CHECK(error_mentions("zmq.linger", "not an integer", "'0x1F'"));
    unsetenv("LIBERZMQ_ZMQ__LINGER");
    unsetenv("LIBERZMQ_DEBUG");
    lz_config_destroy(&c);
}

// run_probe runs command (a shell line) and returns its first output line
// in out ("" if none).
static void run_probe(const char *command, char *out, size_t size) {
    FILE *pipe = popen(command, "r");
    LZ_CHECK(pipe != NULL);
    out[0] = '\0';
    if (pipe && !fgets(out, (int)size, pipe)) out[0] = '\0';
    if (pipe) pclose(pipe);
}

// copy_file copies from to a new file to, with mode.
static bool copy_file(const char *from, const char *to, mode_t mode) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char block[65536];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(block, 1, sizeof block, in)) > 0) ok = fwrite(block, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = false;
    return ok && chmod(to, mode) == 0;
}

#define PROBE_ENV "LIBERZMQ_ZMQ__IO_THREADS=3 LIBERZMQ_CONFIG=/nonexistent/lz.yaml "

// A setuid program run by another user reads none of its environment,
// which that user wrote: no LIBERZMQ_* key, no LIBERZMQ_CONFIG file (it
// used to load plugins.load's plugins, or log to a file, of the user's
// choosing, as root). The same program without the setuid bit reads
// both. Needs root (to make the program setuid root) and a temporary
// directory not mounted nosuid: skipped otherwise.
LZ_TEST(test_setuid_programs_ignore_the_environment) {
    if (geteuid() != 0) {
        fprintf(stderr, "test_setuid_programs_ignore_the_environment: skipped, not root\n");
        return;
    }
    char dir[] = "/tmp/lz-secure-XXXXXX", probe[64], command[256], line[512];
    LZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(probe, sizeof probe, "%s/probe", dir);
    LZ_CHECK_INT(chmod(dir, 0755), 0);
    LZ_CHECK(copy_file(LZ_SECURE_ENV_PROBE, probe, 04755));
    snprintf(command, sizeof command, PROBE_ENV "setpriv --reuid=65534 --regid=65534 --clear-groups %s", probe);
    run_probe(command, line, sizeof line);
    if (strncmp(line, "secure=0", 8) == 0)
        fprintf(stderr, "test_setuid_programs_ignore_the_environment: skipped, %s is mounted nosuid\n", dir);
    else LZ_CHECK_STR(line, "secure=1 env=0 io_threads=1 context=ok\n");
    snprintf(command, sizeof command, PROBE_ENV "%s", probe);
    LZ_CHECK_INT(chmod(probe, 0755), 0);
    run_probe(command, line, sizeof line);
    LZ_CHECK_STR(line, "secure=0 env=0 io_threads=3 context=config: cannot read file /nonexistent/lz.yaml: No such "
                       "file or directory\n");
    unlink(probe);
    rmdir(dir);
}

LZ_TEST_MAIN(LZ_CASE(test_defaults), LZ_CASE(test_unknown_keys_hide_their_values),
             LZ_CASE(test_dotted_keys_at_the_top_level_are_refused),
             LZ_CASE(test_bad_secret_values_are_hidden_from_every_source),
             LZ_CASE(test_damaged_files_load_whole_or_not_at_all),
             LZ_CASE(test_yaml_file_python_layout),
             LZ_CASE(test_json_file_python_layout), LZ_CASE(test_precedence_every_order),
             LZ_CASE(test_env_both_forms), LZ_CASE(test_env_errors_name_the_variable),
             LZ_CASE(test_file_errors_name_key_file_and_line),
             LZ_CASE(test_deep_or_endless_files_are_refused_at_once), LZ_CASE(test_a_named_fifo_is_refused_at_once),
             LZ_CASE(test_null_values_reset_to_default), LZ_CASE(test_api_set_and_get),
             LZ_CASE(test_to_json_round_trips), LZ_CASE(test_settings_read),
             LZ_CASE(test_debug_lowers_level_by_precedence),
             LZ_CASE(test_log_target_resolution), LZ_CASE(test_empty_file_changes_nothing),
             LZ_CASE(test_tracing_otlp_keys), LZ_CASE(test_anchor_floods_are_refused_at_once),
             LZ_CASE(test_a_file_holds_one_document), LZ_CASE(test_nul_in_a_key_or_value_is_refused),
             LZ_CASE(test_secret_values_stay_out_of_errors), LZ_CASE(test_key_names_and_aliases),
             LZ_CASE(test_max_sockets_is_capped), LZ_CASE(test_yaml_integers_as_pyyaml_reads_them),
             LZ_CASE(test_yaml_non_integers_are_refused_for_integer_keys),
             LZ_CASE(test_yaml_whole_floats_as_pydantic_takes_them), LZ_CASE(test_yaml_booleans_as_pyyaml_reads_them),
             LZ_CASE(test_boolean_text_as_pydantic_reads_it),
             LZ_CASE(test_yaml_nulls_as_pyyaml_reads_them),
             LZ_CASE(test_yaml_string_keys_take_strings), LZ_CASE(test_yaml_tags_on_keys_sections_and_anchors),
             LZ_CASE(test_yaml_timestamps_are_refused),
             LZ_CASE(test_yaml_duplicate_anchors_and_undefined_aliases_are_refused),
             LZ_CASE(test_env_values_are_not_yaml), LZ_CASE(test_setuid_programs_ignore_the_environment))
