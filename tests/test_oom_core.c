/* Out of memory in the core runtime (tests/lz_oom.h): every allocation a
 * core operation makes on the calling thread fails once, each in a run of
 * its own, and the operation must answer LZ_ENOMEM (with a detail) or
 * succeed with the right result, leak nothing, and leave its objects
 * usable. Families: security policies and the configuration's list checks,
 * the logger, the envelope and received messages, node hooks, metrics and
 * the Prometheus text, extension frames, the delay queue, the per-thread
 * buffers, the OTLP exporter (its start, and on its own thread each
 * batch's body and POST), contexts made from a configuration and
 * reloaded, plugins, the ZAP handler's password check (the file watcher's
 * sweep waits for fixes in config.c: see watching_survives_oom).
 * Per-thread caches are swept cold too, on a thread made for each run.
 * Under a sanitizer or valgrind nothing fails: each operation then runs
 * with nothing failing only. */
#include <arpa/inet.h>
#include <crypt.h>
#include <dlfcn.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lz_test.h"
#include "lz_oom.h"
#include "core/context.h"
#include "core/delay.h"
#include "core/envelope.h"
#include "core/error.h"
#include "core/extension.h"
#include "core/gssapi.h"
#include "core/hooks.h"
#include "core/log.h"
#include "core/node.h"
#include "core/otlp.h"
#include "core/prometheus.h"
#include "core/scratch.h"
#include "core/security.h"
#include "core/sendbuf.h"

// An allocation that fails in these libraries would abort (libzmq's
// alloc_assert): theirs are spared, ours are not.
static const char *const spared_zmq[] = {"libzmq.so", "libstdc++.so", "libpgm", NULL};

// OOM_CHECK is LZ_CHECK that also names the allocation that failed in the run.
#define OOM_CHECK(cond)                                                                                                \
    do {                                                                                                               \
        lz_test_checks++;                                                                                              \
        if (!(cond)) {                                                                                                 \
            lz_test_failures++;                                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s (allocation %ld failing; last error: %s)\n", __FILE__, __LINE__,  \
                    #cond, lz_oom_failing, lz_last_error());                                                           \
        }                                                                                                              \
    } while (0)

/* ---- the sweep ------------------------------------------------------------ */

// An operation swept: run is what the allocations fail in; setup (nothing
// failing, on the sweep's thread) prepares each run and check (on the
// run's) judges its answer and frees what it made. fresh_thread: each run
// on a new thread, whose per-thread caches are cold.
typedef struct oom_op {
    const char *name;
    void (*setup)(void *arg);
    int (*run)(void *arg);
    void (*check)(void *arg, const lz_oom_run_t *run);
    void *arg;
    bool fresh_thread;
    const char *const *spared;
} oom_op_t;

// sweep runs op with its 1st allocation failing, then its 2nd... after a
// warm-up run, and checks that no more blocks are live at the end than
// after the warm-up, but for kept: what a documented cache (or a library) keeps.
static void sweep(const oom_op_t *op, long limit, long kept) {
    lz_oom_sweep(&(lz_oom_sweep_t){.name = op->name, .prepare = op->setup, .run = op->run, .judge = op->check,
                                   .arg = op->arg, .fresh = op->fresh_thread, .spared = op->spared, .limit = limit,
                                   .kept = kept, .warm_runs = 1});
}

static void sweep_all(const oom_op_t *ops, size_t count, long limit) {
    for (size_t i = 0; i < count; i++) sweep(&ops[i], limit, 0);
}

// succeeded: the run's answer is one the rules allow (LZ_OK; or, when an
// allocation failed, LZ_ENOMEM with a detail), and whether it is LZ_OK,
// so that the caller checks the result.
static bool succeeded(const lz_oom_run_t *run) {
    OOM_CHECK(lz_oom_answered(run));
    return run->rc == LZ_OK;
}

// config_of makes a configuration of key, value pairs (NULL-terminated).
static lz_config_t *config_of(const char *const *pairs) {
    lz_config_t *cfg = lz_config_new();
    for (size_t i = 0; cfg && pairs[i]; i += 2) LZ_CHECK_INT(lz_config_set(cfg, pairs[i], pairs[i + 1]), LZ_OK);
    return cfg;
}

static const char *test_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        char ep[256];
        lz_test_ipc_endpoint(ep, sizeof ep); // its private directory
        snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(ep, '/') - ep - strlen("ipc://")), ep + strlen("ipc://"));
    }
    return dir;
}

static void test_path(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", test_dir(), name); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    LZ_CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

// read_file returns the file's text (free it), "" when there is none.
static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    char *text = calloc(1, 1 << 20);
    size_t n = f ? fread(text, 1, (1 << 20) - 1, f) : 0;
    text[n] = '\0';
    if (f) fclose(f);
    return text;
}

/* ---- security policies ---------------------------------------------------- */

// Keys: Z85 text of 32 bytes of i, any of which is a key to authorize.
static const char *key_text(int i) {
    static char keys[64][LZ_CURVE_KEY_SIZE];
    uint8_t raw[32];
    memset(raw, i, sizeof raw);
    zmq_z85_encode(keys[i], raw, sizeof raw);
    return keys[i];
}

#define FILE_KEYS 40
#define USERS 24

typedef struct policy_case {
    lz_config_t *config; // the settings' strings
    lz_security_settings_t settings;
    lz_security_t *policy;
    void (*judge)(const lz_security_t *policy);
} policy_case_t;

static void expect_refusal(const char *got, const char *want) {
    OOM_CHECK(got == want || (got && want && strcmp(got, want) == 0));
}

static void judge_curve(const lz_security_t *p) {
    const lz_secure_mode_t curve = LZ_SECURE_CURVE_SERVER;
    expect_refusal(lz__security_judge_peer(p, NULL, curve, key_text(FILE_KEYS), "10.2.3.4"), NULL);
    expect_refusal(lz__security_judge_peer(p, NULL, curve, key_text(FILE_KEYS + 2), "192.168.1.7"), NULL);
    expect_refusal(lz__security_judge_peer(p, NULL, curve, key_text(1), "::1"), NULL);
    expect_refusal(lz__security_judge_peer(p, NULL, curve, key_text(60), "10.2.3.4"), "client key not authorized");
    expect_refusal(lz__security_judge_peer(p, NULL, curve, key_text(1), "10.1.2.3"), "address denied");
    expect_refusal(lz__security_judge_peer(p, NULL, curve, key_text(1), "172.16.0.1"), "address not allowed");
    OOM_CHECK(lz__security_wants_zap(p));
}

static void judge_plain_server(const lz_security_t *p) {
    const lz_secure_mode_t plain = LZ_SECURE_PLAIN_SERVER;
    expect_refusal(lz__security_judge_peer(p, NULL, plain, "user7", "127.0.0.1"), NULL);
    expect_refusal(lz__security_judge_peer(p, NULL, plain, "user23", "127.0.0.1"), NULL);
    expect_refusal(lz__security_judge_peer(p, NULL, plain, "nobody", "127.0.0.1"), "user no longer listed");
}

static void judge_plain_client(const lz_security_t *p) {
    lz_node_security_t node = {0};
    OOM_CHECK(lz__security_settle(p, &node, '>', "client") == LZ_OK);
    OOM_CHECK(node.mode == LZ_SECURE_PLAIN_CLIENT && strcmp(node.plain_username, "alice") == 0 &&
              strcmp(node.plain_password, "wonderland") == 0);
}

static int run_policy(void *arg) {
    policy_case_t *c = arg;
    return lz__security_new(&c->settings, &c->policy);
}

static void check_policy(void *arg, const lz_oom_run_t *run) {
    policy_case_t *c = arg;
    if (succeeded(run)) c->judge(c->policy);
    else OOM_CHECK(c->policy == NULL);
    lz__security_destroy(&c->policy);
}

// The keys file: comments, blank lines and FILE_KEYS / 2 keys numbered
// from FILE_KEYS (the list's are below it), each with a comment.
static void write_keys_file(const char *path) {
    char text[FILE_KEYS * 64 + 64] = "# authorized clients\n\n";
    for (int i = 0; i < FILE_KEYS / 2; i++) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "%s client %d\n", key_text(FILE_KEYS + i), i);
    }
    write_file(path, text);
}

// The users file: USERS users, with a sha512crypt-shaped hash each (its
// 86-character digest; none is checked against a password here).
static void write_users_file(const char *path) {
    char text[USERS * 128] = "# users\n";
    for (int i = 0; i < USERS; i++) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "user%d:$6$salt%04d$%s\n", i, i,
                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./abcdefghijklmnopqrstuv");
    }
    write_file(path, text);
}

LZ_TEST(security_policies_survive_oom) {
    char keys_path[PATH_MAX], users_path[PATH_MAX], list[256];
    test_path(keys_path, sizeof keys_path, "keys");
    test_path(users_path, sizeof users_path, "users");
    write_keys_file(keys_path);
    write_users_file(users_path);
    snprintf(list, sizeof list, "%s, %s %s", key_text(1), key_text(2), key_text(3));
    policy_case_t cases[] = {
        {config_of((const char *const[]){"security.curve_secret_key", key_text(5), "security.authorized_keys", list,
                                         "security.authorized_keys_file", keys_path, "security.allow_addresses",
                                         "10.0.0.0/8, 192.168.1.0/24, ::1", "security.deny_addresses", "10.1.0.0/16",
                                         "security.audit", "true", NULL}),
         .judge = judge_curve},
        {config_of((const char *const[]){"security.plain_users_file", users_path, "security.audit", "true", NULL}),
         .judge = judge_plain_server},
        {config_of((const char *const[]){"security.plain_username", "alice", "security.plain_password", "wonderland",
                                         NULL}),
         .judge = judge_plain_client},
    };
    oom_op_t ops[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        LZ_CHECK_INT(lz__security_settings_read(cases[i].config, &cases[i].settings), LZ_OK);
        ops[i] = (oom_op_t){"lz__security_new", NULL, run_policy, check_policy, &cases[i], false, NULL};
    }
    sweep_all(ops, sizeof ops / sizeof ops[0], 2000);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) lz_config_destroy(&cases[i].config);
}

/* ---- the configuration's checks of lists ---------------------------------- */

// A string check of a configuration key: valid text stays valid whatever
// memory is left (config.c can only report "expected ...": a check that
// failed for want of memory would refuse a good value as LZ_ECONFIG).
typedef struct list_check {
    const char *name;
    const char *(*check)(const char *text);
    const char *text;
} list_check_t;

static int run_list_check(void *arg) {
    const list_check_t *c = arg;
    return c->check(c->text) ? LZ_EINVAL : LZ_OK;
}

static void check_list_check(void *arg, const lz_oom_run_t *run) {
    (void)arg;
    OOM_CHECK(run->rc == LZ_OK);
}

LZ_TEST(list_checks_survive_oom) {
    char keys[256];
    snprintf(keys, sizeof keys, "%s, %s %s", key_text(1), key_text(2), key_text(3));
    list_check_t checks[] = {
        {"security.authorized_keys", lz__security_check_key_list, keys},
        {"security.allow_addresses", lz__security_check_address_list, "10.0.0.0/8, 192.168.1.0/24 ::1,fe80::/10"},
        {"security.gssapi_principals", lz__gssapi_check_name_list, "alice@EXAMPLE.COM, bob@EXAMPLE.COM"},
        {"tracing.otlp_headers", lz__otlp_check_headers, "authorization=Bearer%20abc,x-team=core"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        sweep(&(oom_op_t){checks[i].name, NULL, run_list_check, check_list_check, &checks[i], false, NULL}, 200, 0);
}

/* ---- the logger --------------------------------------------------------------- */

// A message longer than any stack buffer a writer would start with.
static const char *long_message(void) {
    static char text[3000];
    if (!text[0])
        for (size_t i = 0; i + 1 < sizeof text; i++) text[i] = i % 97 == 96 ? '\n' : (char)('a' + i % 26);
    return text;
}

typedef struct log_case {
    char path[PATH_MAX];
    lz_log_format_t format;
    lz_logger_t *logger;
    lz_test_log_t *captured;
    lz_config_t *config; // logging.* for lz__logger_configure
} log_case_t;

static void write_records(lz_logger_t *logger) {
    lz_logger_write(logger, LZ_LOG_WARNING, "oom", "short %d", 1);
    lz_logger_write(logger, LZ_LOG_ERROR, "oom", "long %s", long_message());
    lz_logger_write(logger, LZ_LOG_DEBUG, "oom", "below the level");
}

static void remove_log(void *arg) { unlink(((log_case_t *)arg)->path); }

// run_log_file: a logger of its own, to a file, writing the records.
static int run_log_file(void *arg) {
    log_case_t *c = arg;
    lz_logger_t *logger = lz_logger_new();
    int rc = logger ? lz_logger_to_file(logger, c->path) : lz_last_error_code();
    if (rc == LZ_OK) {
        lz_logger_set_format(logger, c->format);
        write_records(logger);
    }
    lz_logger_destroy(&logger);
    return rc;
}

// What a record too long for the logger's stack buffer ends with when no
// memory is left for it (log.h): a cut record, marked, is what remains.
#define CUT_MARK " [cut: out of memory]"

// holds_message: text holds message whole, or the first part of it marked as cut.
static bool holds_message(const char *text, const char *message) {
    if (strstr(text, message)) return true;
    const char *start = strstr(text, "long "), *mark = start ? strstr(start, CUT_MARK) : NULL;
    return mark && mark - start > 900 && strncmp(start, message, (size_t)(mark - start)) == 0;
}

// The records' lines: the short one, then the long one (its newlines escaped).
static void check_records(const char *text, lz_log_format_t format) {
    char long_line[4096];
    snprintf(long_line, sizeof long_line, "long %s", long_message());
    for (char *nl = strchr(long_line, '\n'); nl; nl = strchr(nl, '\n')) {
        memmove(nl + 2, nl + 1, strlen(nl + 1) + 1);
        nl[0] = '\\', nl[1] = 'n';
    }
    const char *first = strstr(text, "short 1"), *second = strstr(text, "long ");
    OOM_CHECK(first && second && first < second && holds_message(text, long_line));
    OOM_CHECK(!strstr(text, "below the level"));
    size_t lines = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++) lines++;
    OOM_CHECK(lines == 2);
    if (format == LZ_LOG_JSON) OOM_CHECK(strncmp(text, "{\"ts\":", 6) == 0 && strstr(text, "\"msg\":\"short 1\"}\n"));
}

static void check_log_file(void *arg, const lz_oom_run_t *run) {
    log_case_t *c = arg;
    if (!succeeded(run)) return;
    char *text = read_file(c->path);
    check_records(text, c->format);
    free(text);
}

// run_log_switch: a target switched to the way a context's configuration does.
static int run_log_switch(void *arg) {
    log_case_t *c = arg;
    lz_log_settings_t settings = {.level = LZ_LOG_INFO, .format = c->format, .target = LZ_LOG_TARGET_FILE,
                                  .file_path = c->path, .max_file_size = 1 << 20, .backup_count = 2,
                                  .syslog_ident = "oom"};
    lz_log_switch_t *sw = lz__log_switch_open(&settings);
    if (!sw) return lz_last_error_code();
    lz__log_switch_commit(c->logger, &sw);
    lz_logger_set_format(c->logger, c->format);
    write_records(c->logger);
    lz_logger_to_stderr(c->logger); // closes the file
    return LZ_OK;
}

// run_log_configure: the target, format and level a context's configuration names.
static int run_log_configure(void *arg) {
    log_case_t *c = arg;
    int rc = lz__logger_configure(c->logger, c->config);
    if (rc == LZ_OK) write_records(c->logger);
    lz_logger_to_stderr(c->logger); // closes the file
    return rc;
}

static int run_log_syslog(void *arg) {
    log_case_t *c = arg;
    int rc = lz_logger_to_syslog(c->logger, "oom-test");
    lz_logger_to_stderr(c->logger);
    return rc;
}

static void check_log_syslog(void *arg, const lz_oom_run_t *run) {
    (void)arg;
    succeeded(run);
}

// The callback target: the records reach it whole.
static int run_log_callback(void *arg) {
    log_case_t *c = arg;
    write_records(c->logger);
    return LZ_OK;
}

static void setup_log_callback(void *arg) {
    log_case_t *c = arg;
    c->captured->records[0] = '\0';
}

static void check_log_callback(void *arg, const lz_oom_run_t *run) {
    log_case_t *c = arg;
    if (!succeeded(run)) return;
    char long_line[4096];
    snprintf(long_line, sizeof long_line, "long %s", long_message());
    const char *records = c->captured->records, *head = "WARNING oom: short 1\nERROR oom: long ";
    OOM_CHECK(strncmp(records, head, strlen(head)) == 0 && holds_message(records, long_line));
    OOM_CHECK(!strstr(records, "below"));
}

LZ_TEST(logging_survives_oom) {
    log_case_t text = {.format = LZ_LOG_TEXT}, json = {.format = LZ_LOG_JSON};
    test_path(text.path, sizeof text.path, "text.log");
    test_path(json.path, sizeof json.path, "json.log");
    lz_test_log_t captured = LZ_TEST_LOG_INIT;
    lz_logger_t *logger = lz_logger_new();
    log_case_t switched = {.format = LZ_LOG_JSON, .logger = logger}, called = {.logger = logger, .captured = &captured},
               configured = {.format = LZ_LOG_JSON, .logger = logger};
    test_path(switched.path, sizeof switched.path, "switched.log");
    test_path(configured.path, sizeof configured.path, "configured.log");
    configured.config = config_of((const char *const[]){"logging.file_path", configured.path, "logging.format", "json",
                                                         "logging.level", "info", NULL});
    const oom_op_t ops[] = {
        {"text records to a file", remove_log, run_log_file, check_log_file, &text, false, NULL},
        {"JSON records to a file", remove_log, run_log_file, check_log_file, &json, false, NULL},
        {"a switch of target", remove_log, run_log_switch, check_log_file, &switched, false, NULL},
        {"a configured logger", remove_log, run_log_configure, check_log_file, &configured, false, NULL},
        {"the syslog target", NULL, run_log_syslog, check_log_syslog, &called, false, NULL},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0], 2000);
    lz_config_destroy(&configured.config);
    LZ_CHECK_INT(lz_logger_to_callback(logger, lz_test_log_capture, &captured), LZ_OK);
    sweep(&(oom_op_t){"records to a callback", setup_log_callback, run_log_callback, check_log_callback, &called,
                      false, NULL},
          2000, 0);
    lz_logger_destroy(&logger);
}

/* ---- the envelope and received messages ------------------------------------ */

// A document big enough to outgrow a message's first arena block, the
// codecs' first buffers and a topic's inline room.
static lz_value_t *big_document(void) {
    lz_value_t *doc = lz_value_object(), *list = lz_value_array();
    char key[32], text[2048];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "field_%02d", i);
        LZ_CHECK_INT(lz_value_object_set_int(doc, key, i * 1000003), LZ_OK);
        LZ_CHECK_INT(lz_value_array_append(list, lz_value_double(i / 4.0)), LZ_OK);
    }
    LZ_CHECK_INT(lz_value_object_set(doc, "list", list), LZ_OK);
    LZ_CHECK_INT(lz_value_object_set_string(doc, "text", text), LZ_OK);
    return doc;
}

#define TRACEPARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define LONG_TOPIC "orders.europe.france.paris.eleventh-arrondissement.rue-oberkampf"

enum envelope_kind { TASK, REQUEST, ERROR_REPLY, PUB, MESSAGE };

typedef struct envelope_case {
    const char *codec;
    enum envelope_kind kind;
    lz_span_t *span; // a traced send's (NULL: untraced)
    const lz_value_t *data;
    lz_buffer_t *out;       // what encoding wrote
    lz_buffer_t *wire;      // what decoding reads (encoded once, nothing failing)
    zmq_msg_t frame, topic; // made from wire for each decoding run
    lz_message_t *msg;
} envelope_case_t;

static const lz_serializer_t *codec_of(const envelope_case_t *c) { return lz_serializer_builtin(c->codec); }

static int encode_envelope(const envelope_case_t *c, lz_buffer_t *out) {
    const lz_serializer_t *ser = codec_of(c);
    switch (c->kind) {
    case TASK: return lz__envelope_encode_task(ser, "resize", c->data, 3, c->span, out);
    case REQUEST: return lz__envelope_encode_request(ser, "add", c->data, "request-1", c->span, out);
    case ERROR_REPLY: return lz__envelope_encode_error(ser, LZ_EVALIDATION, "width too large", "resize", out);
    default: return lz_serializer_encode(ser, c->data, out);
    }
}

// Each run encodes into a new buffer, which grows as it is written.
static void setup_encode(void *arg) { ((envelope_case_t *)arg)->out = lz_buffer_new(); }

static int run_encode(void *arg) {
    envelope_case_t *c = arg;
    return encode_envelope(c, c->out);
}

static void check_encoded(void *arg, const lz_oom_run_t *run) {
    envelope_case_t *c = arg;
    lz_value_t *got = NULL;
    if (!succeeded(run)) {
        lz_buffer_destroy(&c->out);
        return;
    }
    OOM_CHECK(lz_serializer_decode(codec_of(c), lz_buffer_data(c->out), lz_buffer_size(c->out), &got) == LZ_OK);
    if (c->kind == ERROR_REPLY) {
        OOM_CHECK(lz__envelope_is_error(got) && strcmp(lz_value_find_string(got, "code", ""), "LZ_EVALIDATION") == 0);
        OOM_CHECK(strcmp(lz_value_find_string(got, "message", ""), "width too large") == 0);
    } else {
        OOM_CHECK(strcmp(lz_value_find_string(got, "type", ""), c->kind == TASK ? "resize" : "add") == 0);
        OOM_CHECK(lz_value_equal(lz_value_get(got, "data"), c->data));
        OOM_CHECK(strlen(lz_value_find_string(got, c->kind == TASK ? "task_id" : "request_id", "")) >= 9);
        OOM_CHECK(strcmp(lz_value_find_string(got, "traceparent", ""), c->span ? c->span->traceparent : "") == 0);
    }
    lz_value_destroy(&got);
    lz_buffer_destroy(&c->out);
}

static void setup_decode(void *arg) {
    envelope_case_t *c = arg;
    size_t size = lz_buffer_size(c->wire);
    LZ_CHECK_INT(zmq_msg_init_size(&c->frame, size), 0);
    memcpy(zmq_msg_data(&c->frame), lz_buffer_data(c->wire), size);
    LZ_CHECK_INT(zmq_msg_init_size(&c->topic, strlen(LONG_TOPIC)), 0);
    memcpy(zmq_msg_data(&c->topic), LONG_TOPIC, strlen(LONG_TOPIC));
}

static int run_decode(void *arg) {
    envelope_case_t *c = arg;
    const lz_serializer_t *ser = codec_of(c);
    size_t size = lz_buffer_size(c->wire);
    switch (c->kind) {
    case TASK: return lz__envelope_decode_task(ser, &c->frame, size, &c->msg);
    case REQUEST: return lz__envelope_decode_request(ser, &c->frame, size, &c->msg);
    case PUB:
        return lz__envelope_decode_pub(ser, &c->topic, strlen(LONG_TOPIC), false, &c->frame, size, &c->msg);
    default: return (c->msg = lz__message_decode(ser, &c->frame, size)) ? LZ_OK : lz_last_error_code();
    }
}

// The decoded message: its topic (the type, the action) and its data.
static void check_decoded(void *arg, const lz_oom_run_t *run) {
    envelope_case_t *c = arg;
    static const char *const topics[] = {[TASK] = "resize", [REQUEST] = "add", [PUB] = LONG_TOPIC, [MESSAGE] = ""};
    if (succeeded(run)) {
        OOM_CHECK(c->msg && strcmp(lz_message_topic(c->msg), topics[c->kind]) == 0);
        OOM_CHECK(lz_value_equal(lz_message_value(c->msg), c->data));
        if (c->kind == TASK || c->kind == REQUEST) OOM_CHECK(strlen(lz_message_id(c->msg)) >= 9);
    } else {
        OOM_CHECK(c->msg == NULL);
    }
    lz_message_destroy(&c->msg);
    zmq_msg_close(&c->frame);
    zmq_msg_close(&c->topic);
}

LZ_TEST(envelopes_survive_oom) {
    static const char *const codecs[] = {"json", "msgpack"};
    static const enum envelope_kind encoded[] = {TASK, REQUEST, ERROR_REPLY, TASK, REQUEST},
                                    decoded[] = {TASK, REQUEST, PUB, MESSAGE};
    lz_span_t span = {.active = true, .traceparent = TRACEPARENT};
    lz_value_t *data = big_document();
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        for (size_t k = 0; k < sizeof encoded / sizeof encoded[0]; k++) {
            envelope_case_t c = {.codec = codecs[i], .kind = encoded[k], .span = k > 2 ? &span : NULL, .data = data};
            oom_op_t op = {"encode", setup_encode, run_encode, check_encoded, &c, false, NULL};
            sweep(&op, 2000, 0);
            op.fresh_thread = true; // the thread's envelope cold
            sweep(&op, 2000, 0);
        }
        for (size_t k = 0; k < sizeof decoded / sizeof decoded[0]; k++) {
            envelope_case_t c = {.codec = codecs[i], .kind = decoded[k], .data = data, .wire = lz_buffer_new()};
            LZ_CHECK_INT(encode_envelope(&c, c.wire), LZ_OK);
            oom_op_t op = {"decode", setup_decode, run_decode, check_decoded, &c, false, NULL};
            sweep(&op, 2000, 0);
            // The thread's free messages (and JSON reader) cold.
            op.fresh_thread = true;
            sweep(&op, 2000, 0);
            lz_buffer_destroy(&c.wire);
        }
    }
    lz_value_destroy(&data);
}

/* ---- node hooks ---------------------------------------------------------------- */

typedef struct hooks_case {
    lz_context_t *ctx;
    lz_pub_t *pub; // a node of its own for each run
    lz_schema_t *orders, *fallback;
    atomic_int sent, received;
} hooks_case_t;

static int count_send(lz_node_t *node, const char *key, const lz_value_t *value, void *arg) {
    (void)node, (void)key, (void)value;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static int count_receive(lz_node_t *node, const lz_message_t *msg, void *arg) {
    (void)node, (void)msg;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

// A context for each run too: libzmq frees a closed socket later, on a
// thread of its own, unless its context ends.
static void setup_hooks(void *arg) {
    hooks_case_t *c = arg;
    c->ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    c->pub = lz_pub_new(c->ctx, NULL);
    LZ_CHECK(c->pub != NULL);
    atomic_store(&c->sent, 0);
    atomic_store(&c->received, 0);
}

static int run_hooks(void *arg) {
    hooks_case_t *c = arg;
    lz_node_t *node = lz_pub_node(c->pub);
    int rc = lz_node_on_send(node, count_send, &c->sent);
    if (rc == LZ_OK) rc = lz_node_on_receive(node, count_receive, &c->received);
    if (rc == LZ_OK) rc = lz_node_set_schema(node, "orders", c->orders);
    if (rc == LZ_OK) rc = lz_node_set_schema(node, NULL, c->fallback);
    return rc;
}

// The hooks run as added: a send of an order is counted and checked by
// the orders schema (an object), anything else by the fallback (an
// integer). A node whose hooks ran out of memory stays usable.
static void check_hooks(void *arg, const lz_oom_run_t *run) {
    hooks_case_t *c = arg;
    lz_node_t *node = lz_pub_node(c->pub);
    lz_value_t *order = lz_value_object(), *number = lz_value_int(7);
    if (succeeded(run)) {
        OOM_CHECK(lz__hooks_send(node, "orders", order) == LZ_OK && atomic_load(&c->sent) == 1);
        OOM_CHECK(lz__hooks_send(node, "orders", number) == LZ_EVALIDATION);
        OOM_CHECK(lz__hooks_send(node, "other", number) == LZ_OK);
        OOM_CHECK(lz__hooks_send(node, "other", order) == LZ_EVALIDATION);
    } else {
        OOM_CHECK(lz__hooks_send(node, "orders", order) == LZ_OK && atomic_load(&c->sent) <= 1);
    }
    lz_value_destroy(&order);
    lz_value_destroy(&number);
    lz_pub_destroy(&c->pub);
    lz_context_destroy(&c->ctx);
}

LZ_TEST(hooks_survive_oom) {
    hooks_case_t c = {.orders = lz_schema_from_json("{\"type\":\"object\"}", 17),
                      .fallback = lz_schema_from_json("{\"type\":\"integer\"}", 18)};
    LZ_CHECK(c.orders && c.fallback);
    sweep(&(oom_op_t){"node hooks", setup_hooks, run_hooks, check_hooks, &c, false, NULL}, 2000, 0);
    lz_schema_destroy(&c.orders);
    lz_schema_destroy(&c.fallback);
}

/* ---- metrics and the Prometheus text ---------------------------------------------- */

static const lz__family_t test_families[] = {
    {"liberzmq_test_held", "gauge", "Things held now."},
    {"liberzmq_test_served_total", "counter", "Things served."},
};

static void read_test_collector(void *arg, uint64_t *values) {
    values[0] = *(const uint64_t *)arg;
    values[1] = *(const uint64_t *)arg * 10;
}

static const lz__collector_kind_t test_kind = {test_families, 2, read_test_collector};

typedef struct scrape_case {
    lz_context_t *ctx;
    char *expected; // the text rendered with nothing failing
    char *text;
    lz__collector_t *added;
} scrape_case_t;

static int run_scrape(void *arg) {
    scrape_case_t *c = arg;
    c->text = lz_context_prometheus(c->ctx);
    return c->text ? LZ_OK : lz_last_error_code();
}

static void check_scrape(void *arg, const lz_oom_run_t *run) {
    scrape_case_t *c = arg;
    if (succeeded(run)) OOM_CHECK(strcmp(c->text, c->expected) == 0);
    free(c->text);
    c->text = NULL;
}

static uint64_t collected = 42;

static int run_collector_add(void *arg) {
    scrape_case_t *c = arg;
    c->added = lz__collector_add(c->ctx, &test_kind, "locks \"b\"", 99, &collected);
    return c->added ? LZ_OK : lz_last_error_code();
}

static void check_collector_add(void *arg, const lz_oom_run_t *run) {
    scrape_case_t *c = arg;
    if (succeeded(run)) {
        char *text = lz_context_prometheus(c->ctx);
        OOM_CHECK(text && strstr(text, "liberzmq_test_served_total{node=\"locks \\\"b\\\"\",id=\"99\"} 420\n"));
        free(text);
    }
    lz__collector_remove(c->ctx, &c->added);
}

LZ_TEST(metrics_survive_oom) {
    scrape_case_t c = {.ctx = LZ_TEST_CONTEXT("zmq.linger=0")};
    lz_pub_t *pubs[3];
    for (size_t i = 0; i < 3; i++) {
        pubs[i] = lz_pub_new(c.ctx, NULL);
        LZ_CHECK(pubs[i] != NULL);
    }
    lz_node_set_name(lz_pub_node(pubs[1]), "quote \" and \\ back\nslash");
    lz_node_set_name(lz_pub_node(pubs[2]), "bytes \xff\xfe");
    lz__collector_t *collector = lz__collector_add(c.ctx, &test_kind, "locks", 7, &collected);
    c.expected = lz_context_prometheus(c.ctx);
    LZ_CHECK(c.expected && strstr(c.expected, "liberzmq_test_held{node=\"locks\",id=\"7\"} 42\n"));
    const oom_op_t ops[] = {
        {"lz_context_prometheus", NULL, run_scrape, check_scrape, &c, false, NULL},
        {"lz__collector_add", NULL, run_collector_add, check_collector_add, &c, false, NULL},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0], 2000);
    char json[1024];
    lz_metrics_t m = {.messages_sent = 5, .active_connections = -1};
    LZ_CHECK(lz_metrics_to_json(&m, json, sizeof json) > 0 && strstr(json, "\"active_connections\":-1}"));
    lz__collector_remove(c.ctx, &collector);
    free(c.expected);
    for (size_t i = 0; i < 3; i++) lz_pub_destroy(&pubs[i]);
    lz_context_destroy(&c.ctx);
}

/* ---- extension frames, the delay queue, the per-thread buffers -------------------- */

typedef struct frames_case {
    lz_frames_t frames;
    lz_message_t *msg;
} frames_case_t;

static void setup_frames(void *arg) {
    frames_case_t *c = arg;
    static const char *const parts[] = {"payload", "unknown=1", (LZ_EXT_TRACEPARENT TRACEPARENT)};
    memset(&c->frames, 0, sizeof c->frames);
    for (size_t i = 0; i < 3; i++) {
        LZ_CHECK_INT(zmq_msg_init_size(&c->frames.part[i], strlen(parts[i])), 0);
        memcpy(zmq_msg_data(&c->frames.part[i]), parts[i], strlen(parts[i]));
        c->frames.size[i] = strlen(parts[i]);
    }
    c->frames.count = c->frames.total = 3;
    c->msg = lz__message_new();
}

static int run_frames(void *arg) {
    frames_case_t *c = arg;
    return lz__ext_read(c->msg, &c->frames, 1);
}

static void check_frames(void *arg, const lz_oom_run_t *run) {
    frames_case_t *c = arg;
    const lz_value_t *envelope = lz_message_envelope(c->msg);
    if (succeeded(run)) OOM_CHECK(strcmp(lz_value_find_string(envelope, "traceparent", ""), TRACEPARENT) == 0);
    else OOM_CHECK(envelope == NULL);
    lz_message_destroy(&c->msg);
    lz__frames_close(&c->frames);
}

typedef struct delay_case {
    lz_delay_t *delay;
    int jobs[5];
} delay_case_t;

static int run_delay(void *arg) {
    delay_case_t *c = arg;
    int rc = (c->delay = lz__delay_new()) ? LZ_OK : lz_last_error_code();
    for (int i = 4; rc == LZ_OK && i >= 0; i--) rc = lz__delay_put(c->delay, &c->jobs[i], 1000 + i % 2);
    return rc;
}

// The jobs held leave in due order, those due together in the order put.
static void check_delay(void *arg, const lz_oom_run_t *run) {
    delay_case_t *c = arg;
    if (succeeded(run)) {
        static const int order[] = {4, 2, 0, 3, 1};
        OOM_CHECK(lz__delay_count(c->delay) == 5);
        for (size_t i = 0; i < 5; i++) OOM_CHECK(lz__delay_take(c->delay, NULL) == &c->jobs[order[i]]);
    }
    lz__delay_destroy(&c->delay, NULL, NULL); // what a failed put left
}

static int run_scratch(void *arg) {
    (void)arg;
    lz_buffer_t *buffer = lz__scratch_buffer();
    return buffer && lz_buffer_size(buffer) == 0 ? LZ_OK : lz_last_error_code();
}

static void check_scratch(void *arg, const lz_oom_run_t *run) {
    (void)arg;
    if (succeeded(run)) OOM_CHECK(lz__scratch_buffer() != NULL);
}

typedef struct sendbuf_case {
    size_t size;
    char data[3 << 20];
    zmq_msg_t msg;
} sendbuf_case_t;

static int run_sendbuf(void *arg) {
    sendbuf_case_t *c = arg;
    if (lz__sendbuf_build(&c->msg, c->data, c->size) == 0) return LZ_OK;
    return errno == ENOMEM ? lz__fail(LZ_ENOMEM, "sendbuf: out of memory") : LZ_EIO;
}

static void check_sendbuf(void *arg, const lz_oom_run_t *run) {
    sendbuf_case_t *c = arg;
    if (!succeeded(run)) return;
    OOM_CHECK(zmq_msg_size(&c->msg) == c->size && memcmp(zmq_msg_data(&c->msg), c->data, c->size) == 0);
    zmq_msg_close(&c->msg);
}

LZ_TEST(small_parts_survive_oom) {
    frames_case_t frames;
    delay_case_t delay;
    const oom_op_t ops[] = {
        {"extension frames", setup_frames, run_frames, check_frames, &frames, false, NULL},
        {"the delay queue", NULL, run_delay, check_delay, &delay, false, NULL},
        {"a thread's scratch buffer", NULL, run_scratch, check_scratch, NULL, true, NULL},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0], 2000);
    // Frames copied into recycled buffers (a new thread's hand empty), and
    // into libzmq's blocks, below and above their sizes: libzmq's
    // allocations fail too (it reports them).
    static sendbuf_case_t sendbuf;
    memset(sendbuf.data, 'q', sizeof sendbuf.data);
    static const size_t sizes[] = {40, 300, 4096, 2 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sendbuf.size = sizes[i];
        // A run without a hand (its allocation failed) keeps one more
        // buffer: the one it made, which its thread could not take back.
        sweep(&(oom_op_t){"a send buffer", NULL, run_sendbuf, check_sendbuf, &sendbuf, true, NULL}, 2000, 1);
    }
}

/* ---- the OTLP exporter -------------------------------------------------------------- */

typedef struct otlp_case {
    lz_config_t *config; // the settings' strings
    lz_settings_t settings;
    lz_logger_t *logger;
    lz_otlp_t *otlp;
} otlp_case_t;

static int run_otlp(void *arg) {
    otlp_case_t *c = arg;
    return (c->otlp = lz__otlp_start(&c->settings, c->logger)) ? LZ_OK : lz_last_error_code();
}

static void check_otlp(void *arg, const lz_oom_run_t *run) {
    otlp_case_t *c = arg;
    succeeded(run);
    lz__otlp_stop(&c->otlp); // nothing queued: no POST to wait for
}

LZ_TEST(otlp_exporter_survives_oom) {
    otlp_case_t c = {.config = config_of((const char *const[]){"tracing.enabled", "true", "tracing.otlp_endpoint",
                                                                 "http://127.0.0.1:9", "tracing.otlp_headers",
                                                                 "authorization=Bearer%20abc, x-team=core",
                                                                 "tracing.otlp_batch", "16", NULL}),
                     .logger = lz_logger_new()};
    lz_logger_set_level(c.logger, LZ_LOG_DEBUG);
    lz_logger_to_file(c.logger, "/dev/null");
    LZ_CHECK_INT(lz__settings_read(c.config, &c.settings), LZ_OK);
    sweep(&(oom_op_t){"lz__otlp_start", NULL, run_otlp, check_otlp, &c, false, NULL}, 5000, 0);
    lz_logger_destroy(&c.logger);
    lz_config_destroy(&c.config);
}

/* ---- the OTLP exporter's thread: building and posting a batch ------------------------ */

// A collector on loopback, served by a thread of the test's (exempt from
// the failures): it takes each whole POST (its headers, then Content-Length
// bytes), counts the spans of a body that is one whole batch of ours, or
// the POST as bad, and answers 200 {}. A POST cut short (its connection
// closed first) is not taken, as no collector would take it.
#define COLLECTOR_CONNS 8
#define SPAN_NAME "export \"oom\" \\ \xc3\xa9t\xc3\xa9" // escapes and UTF-8 in the body
#define BATCH 40          // spans a POST: a body past stdio's buffer, grown twice
#define OTLP_WAIT_MS 8000 // a POST's time, and a connection's (otlp.c), and then some

typedef struct http_conn {
    int fd;     // -1: free
    char *data; // what came and was not taken yet, NUL-terminated
    size_t len;
} http_conn_t;

typedef struct collector {
    int listener, port;
    pthread_t thread;
    atomic_bool stopping;
    atomic_long spans, bad_posts;
    http_conn_t conns[COLLECTOR_CONNS];
} collector_t;

// batch_spans: how many spans the body holds when it is an
// ExportTraceServiceRequest of ours, whole; else -1.
static long batch_spans(const char *body, size_t size) {
    lz_value_t *request = lz_value_from_json(body, size);
    const lz_value_t *resource = lz_value_at(lz_value_get(request, "resourceSpans"), 0);
    const lz_value_t *scope = lz_value_at(lz_value_get(resource, "scopeSpans"), 0);
    const lz_value_t *spans = lz_value_get(scope, "spans");
    long n = strcmp(lz_value_find_string(lz_value_get(scope, "scope"), "name", ""), "liberzmq") == 0
                 ? (long)lz_value_size(spans) : 0;
    for (size_t i = 0; i < (size_t)n; i++) {
        const lz_value_t *span = lz_value_at(spans, i);
        if (strcmp(lz_value_find_string(span, "name", ""), SPAN_NAME) != 0 ||
            strlen(lz_value_find_string(span, "spanId", "")) != 16 || !lz_value_get(span, "status"))
            n = 0;
    }
    lz_value_destroy(&request);
    return n > 0 ? n : -1;
}

// take_request takes the whole request at the start of conn's data, if one
// is there, and answers it; false when none is whole yet.
static bool take_request(collector_t *col, http_conn_t *conn) {
    const char *end = strstr(conn->data, "\r\n\r\n");
    if (!end) return false;
    size_t body_at = (size_t)(end - conn->data) + 4;
    const char *length = strcasestr(conn->data, "\r\ncontent-length:");
    size_t size = length && length < end ? strtoul(length + strlen("\r\ncontent-length:"), NULL, 10) : 0;
    if (conn->len < body_at + size) return false;
    long spans = batch_spans(conn->data + body_at, size);
    if (spans < 0) atomic_fetch_add(&col->bad_posts, 1);
    else atomic_fetch_add(&col->spans, spans);
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    LZ_CHECK(send(conn->fd, answer, strlen(answer), MSG_NOSIGNAL) == (ssize_t)strlen(answer));
    conn->len -= body_at + size;
    memmove(conn->data, conn->data + body_at + size, conn->len + 1);
    return true;
}

static void conn_close(http_conn_t *conn) {
    close(conn->fd);
    free(conn->data);
    *conn = (http_conn_t){.fd = -1};
}

// conn_read reads what came on conn and takes the requests made whole.
static void conn_read(collector_t *col, http_conn_t *conn) {
    char chunk[16384];
    ssize_t n = recv(conn->fd, chunk, sizeof chunk, 0);
    if (n <= 0) { // closed, a request cut short with it
        conn_close(conn);
        return;
    }
    char *grown = realloc(conn->data, conn->len + (size_t)n + 1);
    LZ_CHECK(grown != NULL);
    memcpy(grown + conn->len, chunk, (size_t)n);
    conn->len += (size_t)n;
    grown[conn->len] = '\0';
    conn->data = grown;
    while (take_request(col, conn)) continue;
}

static void conn_accept(collector_t *col) {
    int fd = accept(col->listener, NULL, NULL);
    for (size_t i = 0; fd >= 0 && i < COLLECTOR_CONNS; i++)
        if (col->conns[i].fd < 0) {
            col->conns[i] = (http_conn_t){.fd = fd, .data = calloc(1, 1)};
            return;
        }
    if (fd >= 0) close(fd); // more connections than an exporter makes
}

static void *collector_main(void *arg) {
    collector_t *col = arg;
    lz_oom_exempt_thread(true);
    while (!atomic_load(&col->stopping)) {
        struct pollfd fds[COLLECTOR_CONNS + 1] = {{.fd = col->listener, .events = POLLIN}};
        for (size_t i = 0; i < COLLECTOR_CONNS; i++)
            fds[i + 1] = (struct pollfd){.fd = col->conns[i].fd, .events = POLLIN};
        if (poll(fds, COLLECTOR_CONNS + 1, 20) <= 0) continue;
        if (fds[0].revents) conn_accept(col);
        for (size_t i = 0; i < COLLECTOR_CONNS; i++)
            if (fds[i + 1].revents && col->conns[i].fd >= 0) conn_read(col, &col->conns[i]);
    }
    for (size_t i = 0; i < COLLECTOR_CONNS; i++)
        if (col->conns[i].fd >= 0) conn_close(&col->conns[i]);
    return NULL;
}

static void collector_start(collector_t *col) {
    *col = (collector_t){.listener = socket(AF_INET, SOCK_STREAM, 0)};
    for (size_t i = 0; i < COLLECTOR_CONNS; i++) col->conns[i].fd = -1;
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof at;
    LZ_CHECK(bind(col->listener, (struct sockaddr *)&at, sizeof at) == 0 && listen(col->listener, 16) == 0 &&
             getsockname(col->listener, (struct sockaddr *)&at, &size) == 0);
    col->port = ntohs(at.sin_port);
    LZ_CHECK_INT(pthread_create(&col->thread, NULL, collector_main, col), 0);
}

static void collector_stop(collector_t *col) {
    atomic_store(&col->stopping, true);
    pthread_join(col->thread, NULL);
    close(col->listener);
}

// An exporter posting to the collector in batches of BATCH, through a
// slot (its counters), with a logger counting its warnings.
typedef struct otlp_run {
    collector_t collector;
    lz_config_t *config;
    lz_settings_t settings;
    lz_logger_t *logger;
    atomic_int warnings;
    lz_otlp_slot_t slot;
    long spans_made; // so far: the next one's id follows
} otlp_run_t;

static void count_warning(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)component, (void)message;
    if (level >= LZ_LOG_WARNING) atomic_fetch_add(&((otlp_run_t *)arg)->warnings, 1);
}

static void otlp_run_open(otlp_run_t *o) {
    collector_start(&o->collector);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", o->collector.port);
    o->config = config_of((const char *const[]){"tracing.enabled", "true", "tracing.otlp_endpoint", url,
                                                "tracing.otlp_batch", "40", "tracing.otlp_interval", "10", NULL});
    LZ_CHECK_INT(lz__settings_read(o->config, &o->settings), LZ_OK);
    o->logger = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_callback(o->logger, count_warning, o), LZ_OK);
    lz__otlp_slot_init(&o->slot);
}

// otlp_exporter_new puts a new exporter in the slot (the one before retires).
static void otlp_exporter_new(otlp_run_t *o) {
    lz_otlp_t *otlp = lz__otlp_start(&o->settings, o->logger);
    LZ_CHECK(otlp != NULL);
    lz__otlp_slot_swap(&o->slot, otlp);
}

static void otlp_run_close(otlp_run_t *o) {
    lz__otlp_slot_fini(&o->slot);
    lz_logger_destroy(&o->logger);
    lz_config_destroy(&o->config);
    collector_stop(&o->collector);
}

static lz_otlp_stats_t otlp_stats(otlp_run_t *o) {
    lz_otlp_stats_t stats;
    lz__otlp_slot_stats(&o->slot, &stats);
    return stats;
}

static uint64_t accounted(otlp_run_t *o) {
    lz_otlp_stats_t s = otlp_stats(o);
    return s.spans_exported + s.spans_failed + s.spans_dropped;
}

// send_batch queues BATCH spans, half of them failed ones, and waits
// until the exporter has accounted for them.
static void send_batch(otlp_run_t *o) {
    uint64_t before = accounted(o);
    for (int i = 0; i < BATCH; i++, o->spans_made++) {
        long id = o->spans_made + 1;
        lz_span_t span = {.active = true, .kind = LZ_SPAN_SERVER, .status = i % 2 ? LZ_ETIMEOUT : LZ_OK,
                          .start_ns = 1000 * id, .end_ns = 1000 * id + 999};
        snprintf(span.name, sizeof span.name, "%s", SPAN_NAME);
        snprintf(span.node, sizeof span.node, "oom-node");
        snprintf(span.message_id, sizeof span.message_id, "message-%ld", id);
        snprintf(span.trace_id, sizeof span.trace_id, "%032lx", id);
        snprintf(span.span_id, sizeof span.span_id, "%016lx", id);
        if (i % 2) snprintf(span.parent_id, sizeof span.parent_id, "%016lx", id - 1);
        lz__otlp_slot_enqueue(&o->slot, &span);
    }
    LZ_TEST_WAIT_UNTIL(accounted(o) >= before + BATCH, OTLP_WAIT_MS);
}

// What a batch came to: the exporter's counts and the collector's.
typedef struct batch_outcome {
    uint64_t exported, failed, dropped;
    long received, bad;
    int warnings;
} batch_outcome_t;

static batch_outcome_t outcome_now(otlp_run_t *o) {
    lz_otlp_stats_t s = otlp_stats(o);
    return (batch_outcome_t){s.spans_exported, s.spans_failed, s.spans_dropped, atomic_load(&o->collector.spans),
                             atomic_load(&o->collector.bad_posts), atomic_load(&o->warnings)};
}

static batch_outcome_t outcome_since(otlp_run_t *o, const batch_outcome_t *before) {
    batch_outcome_t now = outcome_now(o);
    return (batch_outcome_t){now.exported - before->exported, now.failed - before->failed,
                             now.dropped - before->dropped, now.received - before->received, now.bad - before->bad,
                             now.warnings - before->warnings};
}

// batch_ok: every span of the batch counted once; the collector took no
// body that was not a whole batch, and had the spans exported (and maybe
// some failed ones: a POST whose answer the exporter could not read);
// failed ones were logged; and all went out when nothing failed.
static bool batch_ok(const batch_outcome_t *b, bool failed) {
    return b->exported + b->failed + b->dropped == BATCH && b->bad == 0 && b->received >= (long)b->exported &&
           b->received <= (long)(b->exported + b->failed) && (b->failed == 0 || b->warnings > 0) &&
           (failed || b->exported == BATCH);
}

// A sweep of the exporter's thread: a batch sent while its nth allocation
// fails (a new exporter's, when cold), then one with nothing failing,
// which must go through whole.
typedef struct exporter_sweep {
    otlp_run_t *o;
    bool cold;
    batch_outcome_t before;
} exporter_sweep_t;

static void exporter_setup(void *arg) {
    exporter_sweep_t *e = arg;
    if (e->cold) otlp_exporter_new(e->o);
    e->before = outcome_now(e->o);
}

static int exporter_send(void *arg) {
    send_batch(((exporter_sweep_t *)arg)->o);
    return LZ_OK;
}

static void exporter_check(void *arg, const lz_oom_run_t *run) {
    exporter_sweep_t *e = arg;
    otlp_run_t *o = e->o;
    // The exporter counts a failed POST, then logs it.
    LZ_TEST_WAIT_UNTIL(atomic_load(&o->warnings) > e->before.warnings ||
                           otlp_stats(o).spans_failed == e->before.failed,
                       OTLP_WAIT_MS);
    batch_outcome_t armed = outcome_since(o, &e->before);
    if (!batch_ok(&armed, run->failed))
        fprintf(stderr, "  %llu exported, %llu failed, %llu dropped; %ld received, %ld bad posts, %d warnings\n",
                (unsigned long long)armed.exported, (unsigned long long)armed.failed,
                (unsigned long long)armed.dropped, armed.received, armed.bad, armed.warnings);
    LZ_CHECK(batch_ok(&armed, run->failed));
    batch_outcome_t before = outcome_now(o);
    send_batch(o);
    batch_outcome_t after = outcome_since(o, &before);
    LZ_CHECK(batch_ok(&after, false));
}

// sweep_exporter fails each allocation of the exporter's thread in turn
// (the last run failing none) and returns how many failed.
static long sweep_exporter(otlp_run_t *o, bool cold) {
    exporter_sweep_t e = {.o = o, .cold = cold};
    return lz_oom_sweep(&(lz_oom_sweep_t){.name = cold ? "the exporter's thread, a new exporter each run"
                                                       : "the exporter's thread",
                                          .setup = exporter_setup, .run = exporter_send, .judge = exporter_check,
                                          .arg = &e, .spared = spared_zmq, .threads = true, .limit = 5000,
                                          .leaks_elsewhere = true});
}

// A batch whose body cannot be built, or whose POST cannot be made, for
// want of memory on the exporter's thread is not sent cut short: it is
// counted failed and logged, the thread goes on, and the next batch gets
// through. Swept on one exporter and on a new one each time (its first
// connection, its first body).
LZ_TEST(otlp_thread_survives_oom) {
    // A first line made stdout's buffer, which the sweeps' lines would otherwise make (a block kept for good).
    printf("  the exporter's thread, on one exporter, then on a new one each run:\n");
    otlp_run_t o = {0};
    otlp_run_open(&o); // a first exporter makes what the process keeps (libcurl's, the logger's)
    otlp_exporter_new(&o);
    send_batch(&o);
    otlp_run_close(&o);
    lz_oom_fill_stack_cache();
    long live = lz_oom_live();
    o = (otlp_run_t){0};
    otlp_run_open(&o);
    otlp_exporter_new(&o);
    send_batch(&o);
    sweep_exporter(&o, false);
    sweep_exporter(&o, true);
    otlp_run_close(&o);
    long leaked = lz_oom_live() - live;
    if (leaked > 0) fprintf(stderr, "  the exporter's thread: %ld blocks leaked\n", leaked);
    LZ_CHECK(leaked <= 0);
}

/* ---- contexts made from a configuration, plugins, the file watcher ------------------ */

typedef struct context_case {
    lz_config_t *config;
    int expected; // lz_context_new's answer with nothing failing: LZ_OK, or the error
    lz_context_t *ctx;
} context_case_t;

static int run_context(void *arg) {
    context_case_t *c = arg;
    return (c->ctx = lz_context_new(c->config)) ? LZ_OK : lz_last_error_code();
}

// A shared object that is no plugin: libzmq's, which the program has loaded.
static const char *no_plugin_path(void) {
    Dl_info info;
    return dladdr((void *)(uintptr_t)zmq_version, &info) && info.dli_fname ? info.dli_fname : "libzmq.so.5";
}

// refused_as_no_plugin: the last error refuses a shared object for what it
// is (no descriptor in it), not for memory its load lacked.
static bool refused_as_no_plugin(void) {
    const char *detail = lz_last_error();
    return strstr(detail, ": no " LZ_PLUGIN_SYMBOL " symbol: ") &&
           strstr(detail, "undefined symbol: " LZ_PLUGIN_SYMBOL);
}

// check_context: the answer expected, or LZ_ENOMEM; expected is LZ_OK or
// LZ_ECONFIG, which is a refusal of a shared object that is no plugin.
static void check_context(void *arg, const lz_oom_run_t *run) {
    context_case_t *c = arg;
    if (c->expected == LZ_OK) succeeded(run);
    else OOM_CHECK((run->rc == c->expected && refused_as_no_plugin()) || (run->failed && run->rc == LZ_ENOMEM));
    lz_context_destroy(&c->ctx);
}

LZ_TEST(contexts_survive_oom) {
    char keys_path[PATH_MAX], users_path[PATH_MAX], log_path[PATH_MAX];
    test_path(keys_path, sizeof keys_path, "context-keys");
    test_path(users_path, sizeof users_path, "context-users");
    test_path(log_path, sizeof log_path, "context.log");
    write_keys_file(keys_path);
    write_users_file(users_path);
    context_case_t cases[] = {
        {.config = config_of((const char *const[]){"zmq.linger", "0", NULL})},
        {.config = config_of((const char *const[]){
             "security.curve_secret_key", key_text(5), "security.authorized_keys_file", keys_path,
             "security.allow_addresses", "10.0.0.0/8, ::1", "security.audit", "true", NULL})},
        {.config = config_of((const char *const[]){"security.plain_users_file", users_path, NULL})},
        {.config = config_of((const char *const[]){"logging.file_path", log_path, "logging.format", "json",
                                                   "logging.level", "debug", NULL})},
        {.config = config_of(
             (const char *const[]){"tracing.enabled", "true", "tracing.otlp_endpoint", "http://127.0.0.1:9", NULL})},
        {.config = config_of((const char *const[]){"metrics.prometheus_listen", "127.0.0.1:0", NULL})},
        {.config = config_of((const char *const[]){"plugins.load", no_plugin_path(), NULL}), .expected = LZ_ECONFIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sweep(&(oom_op_t){"lz_context_new", NULL, run_context, check_context, &cases[i], false, spared_zmq}, 5000, 0);
        lz_config_destroy(&cases[i].config);
    }
}

// Calls on a running context: each gets a context of its own, made in
// setup (nothing failing) and ended in check.
typedef struct running_case {
    lz_context_t *ctx;
    lz_config_t *initial; // the context's configuration (NULL: the defaults)
    lz_config_t *config;  // what a reload applies
    char path[PATH_MAX]; // the file watched
    int expected;        // the answer with nothing failing
} running_case_t;

static void setup_running(void *arg) {
    running_case_t *c = arg;
    c->ctx = lz_context_new(c->initial);
    LZ_CHECK(c->ctx != NULL);
}

// check_running: as check_context (expected is LZ_OK or LZ_ECONFIG).
static void check_running(void *arg, const lz_oom_run_t *run) {
    running_case_t *c = arg;
    if (c->expected == LZ_OK) succeeded(run);
    else OOM_CHECK((run->rc == c->expected && refused_as_no_plugin()) || (run->failed && run->rc == LZ_ENOMEM));
    lz_context_destroy(&c->ctx);
}

static int run_load_plugin(void *arg) {
    running_case_t *c = arg;
    return lz_context_load_plugin(c->ctx, c->path);
}

static int run_reload(void *arg) {
    running_case_t *c = arg;
    return lz_context_reload(c->ctx, c->config);
}

static int run_watch(void *arg) {
    running_case_t *c = arg;
    return lz_context_watch(c->ctx, c->path);
}

// A reload or a watch that succeeded applied the file's values.
static void check_reloaded(void *arg, const lz_oom_run_t *run) {
    running_case_t *c = arg;
    int64_t retries = 0;
    if (run->rc == LZ_OK) lz_config_get_int(lz_context_config(c->ctx), "tasks.max_retries", &retries);
    OOM_CHECK(run->rc != LZ_OK || retries == 7);
    check_running(arg, run);
}

LZ_TEST(running_contexts_survive_oom) {
    char keys_path[PATH_MAX], log_path[PATH_MAX];
    test_path(keys_path, sizeof keys_path, "reload-keys");
    test_path(log_path, sizeof log_path, "reload.log");
    write_keys_file(keys_path);
    // Shared objects that are no plugin: one the program has loaded, and
    // one it has not (glibc's libutil, a stub), which is mapped each time.
    running_case_t loaded = {.expected = LZ_ECONFIG}, mapped = {.path = "libutil.so.1", .expected = LZ_ECONFIG};
    // The reload's security rules are a CURVE server's: so is the context.
    running_case_t reload = {
        .initial = config_of((const char *const[]){"security.curve_secret_key", key_text(5), "logging.level",
                                                    "critical", NULL}), // quiet about refused reloads
        .config = config_of((const char *const[]){
            "security.curve_secret_key", key_text(5), "tasks.max_retries", "7", "security.authorized_keys_file",
            keys_path, "security.deny_addresses", "10.1.0.0/16", "security.audit", "true", "logging.format", "json",
            "logging.file_path", log_path, NULL})};
    snprintf(loaded.path, sizeof loaded.path, "%s", no_plugin_path());
    const oom_op_t ops[] = {
        {"lz_context_load_plugin", setup_running, run_load_plugin, check_running, &loaded, false, spared_zmq},
        {"lz_context_reload", setup_running, run_reload, check_reloaded, &reload, false, spared_zmq},
    };
    sweep_all(ops, sizeof ops / sizeof ops[0], 5000);
    // glibc's loader keeps a block or two of a load that ran out of memory
    // (a program of dlopen calls alone shows it): not ours to free.
    sweep(&(oom_op_t){"lz_context_load_plugin", setup_running, run_load_plugin, check_running, &mapped, false,
                      spared_zmq},
          5000, 2);
    lz_config_destroy(&reload.initial);
    lz_config_destroy(&reload.config);
}

// The watcher's reloads read the file through config.c (test_oom_config
// sweeps that reading itself).
LZ_TEST(watching_survives_oom) {
    running_case_t watch = {0};
    test_path(watch.path, sizeof watch.path, "watched.yaml");
    write_file(watch.path, "tasks:\n  max_retries: 7\nlogging:\n  level: error\n");
    tzset(); // glibc keeps the time zone it reads for the first log record's time, for good
    sweep(&(oom_op_t){"lz_context_watch", setup_running, run_watch, check_reloaded, &watch, false, spared_zmq}, 5000,
          0);
}

/* ---- the ZAP handler's password check --------------------------------------------- */

typedef struct zap_case {
    void *zmq_ctx, *router, *asker; // the handler's socket, and libzmq's side of it
    lz_security_t *policy;
    lz_zap_request_t *req;
    lz_logger_t *logger;
} zap_case_t;

// setup_zap sends a PLAIN ZAP request (RFC 27) with alice's right password
// and judges it: its password is what remains to check.
static void setup_zap(void *arg) {
    zap_case_t *c = arg;
    static const char *const frames[] = {"", "1.0", "7", "liberzmq", "127.0.0.1", "", "PLAIN", "alice", "wonderland"};
    for (size_t i = 0; i < 9; i++) zmq_send(c->asker, frames[i], strlen(frames[i]), i < 8 ? ZMQ_SNDMORE : 0);
    zmq_pollitem_t item = {c->router, 0, ZMQ_POLLIN, 0};
    LZ_CHECK_INT(zmq_poll(&item, 1, 5000), 1);
    c->req = lz__zap_receive(c->router);
    LZ_CHECK(c->req && lz__zap_judge(c->req, lz__security_ref(c->policy)));
}

static int run_zap(void *arg) {
    lz__zap_hash(((zap_case_t *)arg)->req);
    return LZ_OK;
}

// The answer: 200 (admitted), or 500 when the hash ran out of memory,
// never 400 (a wrong password).
static void check_zap(void *arg, const lz_oom_run_t *run) {
    zap_case_t *c = arg;
    lz__zap_answer(&c->req, c->router, c->logger);
    char frames[7][64];
    for (size_t i = 0; i < 7; i++) {
        int n = zmq_recv(c->asker, frames[i], sizeof frames[i] - 1, 0);
        frames[i][n < 0 ? 0 : n] = '\0';
    }
    OOM_CHECK(strcmp(frames[3], "200") == 0 || (run->failed && strcmp(frames[3], "500") == 0));
    OOM_CHECK(strcmp(frames[3], "200") != 0 || strcmp(frames[5], "alice") == 0);
}

LZ_TEST(zap_password_check_survives_oom) {
    char users_path[PATH_MAX], line[256];
    struct crypt_data *data = calloc(1, sizeof *data);
    test_path(users_path, sizeof users_path, "zap-users");
    snprintf(line, sizeof line, "alice:%s\n", crypt_r("wonderland", "$6$rounds=1000$saltsalt$", data));
    free(data);
    write_file(users_path, line);
    lz_config_t *config = config_of((const char *const[]){"security.plain_users_file", users_path, NULL});
    lz_security_settings_t settings;
    zap_case_t c = {.zmq_ctx = zmq_ctx_new(), .logger = lz_logger_new()};
    LZ_CHECK_INT(lz__security_settings_read(config, &settings), LZ_OK);
    LZ_CHECK_INT(lz__security_new(&settings, &c.policy), LZ_OK);
    lz_logger_to_file(c.logger, "/dev/null");
    c.router = zmq_socket(c.zmq_ctx, ZMQ_ROUTER);
    c.asker = zmq_socket(c.zmq_ctx, ZMQ_DEALER);
    LZ_CHECK_INT(zmq_bind(c.router, "inproc://oom-zap"), 0);
    LZ_CHECK_INT(zmq_connect(c.asker, "inproc://oom-zap"), 0);
    sweep(&(oom_op_t){"the ZAP password check", setup_zap, run_zap, check_zap, &c, false, spared_zmq}, 2000, 0);
    zmq_close(c.router);
    zmq_close(c.asker);
    zmq_ctx_term(c.zmq_ctx);
    lz__security_destroy(&c.policy);
    lz_logger_destroy(&c.logger);
    lz_config_destroy(&config);
}

/* ---- a plugin's load and registrations -------------------------------------------- */

// A plugin links the shared liberzmq: its calls reach that copy's
// contexts, not this program's (static) one. So the sweep runs the shared
// library's functions, looked up in it, on a context of its own.
typedef struct shared_lz {
    void *handle;
    lz_context_t *(*context_new)(const lz_config_t *config);
    void (*context_destroy)(lz_context_t **ctx_p);
    int (*load_plugin)(lz_context_t *ctx, const char *path);
    size_t (*plugins)(lz_context_t *ctx, lz_plugin_info_t *out, size_t max);
    const char *(*last_error)(void);
    int (*last_error_code)(void);
} shared_lz_t;

typedef struct plugin_case {
    shared_lz_t lz;
    const char *path;
    lz_context_t *ctx;
} plugin_case_t;

static void setup_plugin(void *arg) {
    plugin_case_t *c = arg;
    c->ctx = c->lz.context_new(NULL);
    LZ_CHECK(c->ctx != NULL);
}

static int run_plugin(void *arg) {
    plugin_case_t *c = arg;
    return c->lz.load_plugin(c->ctx, c->path);
}

static void check_plugin(void *arg, const lz_oom_run_t *run) {
    plugin_case_t *c = arg;
    // The shared copy keeps its own last error.
    const char *detail = c->lz.last_error();
    bool answered =
        run->rc == LZ_OK || (run->failed && run->rc == LZ_ENOMEM && c->lz.last_error_code() == run->rc && *detail);
    if (!answered) fprintf(stderr, "  answer %s (%s)\n", lz_error_name(run->rc), detail);
    OOM_CHECK(answered);
    OOM_CHECK(c->lz.plugins(c->ctx, NULL, 0) == (run->rc == LZ_OK));
    c->lz.context_destroy(&c->ctx);
}

static bool shared_open(shared_lz_t *lz) {
    // Global: a plugin finds the library's symbols there as it would in a
    // program linked with it. (Loaded local, glibc's loader stops finding
    // them for good once a load of the plugin ran out of memory.)
    lz->handle = dlopen(LZ_BINARY_DIR "/libliberzmq.so.0", RTLD_NOW | RTLD_GLOBAL);
    if (!lz->handle) return false;
    *(void **)&lz->context_new = dlsym(lz->handle, "lz_context_new");
    *(void **)&lz->context_destroy = dlsym(lz->handle, "lz_context_destroy");
    *(void **)&lz->load_plugin = dlsym(lz->handle, "lz_context_load_plugin");
    *(void **)&lz->plugins = dlsym(lz->handle, "lz_context_plugins");
    *(void **)&lz->last_error = dlsym(lz->handle, "lz_last_error");
    *(void **)&lz->last_error_code = dlsym(lz->handle, "lz_last_error_code");
    return lz->context_new && lz->context_destroy && lz->load_plugin && lz->plugins && lz->last_error &&
           lz->last_error_code;
}

// The sample plugins: audit adds node and span callbacks, rot13 a codec.
LZ_TEST(plugin_loads_survive_oom) {
    static const char *const paths[] = {LZ_BINARY_DIR "/examples/plugins/audit.so",
                                        LZ_BINARY_DIR "/examples/plugins/rot13.so"};
    plugin_case_t c = {0};
    if (access(paths[0], R_OK) != 0 || access(paths[1], R_OK) != 0 || !shared_open(&c.lz)) {
        printf("  skipped: the sample plugins or the shared liberzmq are not built\n");
        return;
    }
    setenv("LIBERZMQ_LOGGING__LEVEL", "error", 1); // the plugins' lines at load and fini
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        c.path = paths[i];
        // glibc's loader keeps a block or two of a load that ran out of memory.
        sweep(&(oom_op_t){"a plugin's load", setup_plugin, run_plugin, check_plugin, &c, false, spared_zmq}, 2000, 2);
    }
    unsetenv("LIBERZMQ_LOGGING__LEVEL");
    dlclose(c.lz.handle);
}

LZ_TEST_MAIN(LZ_CASE(otlp_exporter_survives_oom), LZ_CASE(otlp_thread_survives_oom),
             LZ_CASE(security_policies_survive_oom), LZ_CASE(list_checks_survive_oom), LZ_CASE(logging_survives_oom),
             LZ_CASE(envelopes_survive_oom), LZ_CASE(hooks_survive_oom), LZ_CASE(metrics_survive_oom),
             LZ_CASE(small_parts_survive_oom), LZ_CASE(contexts_survive_oom), LZ_CASE(running_contexts_survive_oom),
             LZ_CASE(watching_survives_oom), LZ_CASE(zap_password_check_survives_oom),
             LZ_CASE(plugin_loads_survive_oom))
