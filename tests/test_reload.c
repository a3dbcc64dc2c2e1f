/* Hot configuration reload: lz_context_reload applies the live keys as a
 * set (log level, access rules, request timeout...), moves the log to
 * another file while threads log, refuses a bad configuration whole,
 * reports keys that need a restart without applying them;
 * lz_context_watch follows a file replaced by rename, and its directory
 * deleted or moved and made again, ignores and counts a bad one, and stops
 * quickly with its context; a log callback on the watcher's thread may stop
 * it, point it elsewhere or destroy its context, a reload or watch from
 * a record that cannot wait is refused, and a destroy from a record of a
 * reload or watch on the caller's thread is finished as that call returns. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zmq.h>

#include "lz_test.h"
#include "core/context.h"
#include "liberzmq/pushpull.h"
#include "liberzmq/reqrep.h"
#include "liberzmq/security.h"

static lz_metrics_t context_metrics(lz_context_t *ctx) {
    lz_metrics_t m;
    memset(&m, 0, sizeof m);
    LZ_CHECK_INT(lz_context_metrics(ctx, &m), LZ_OK);
    return m;
}

static const char *config_string(lz_context_t *ctx, const char *key) {
    const char *value = "";
    LZ_CHECK_INT(lz_config_get_string(lz_context_config(ctx), key, &value), LZ_OK);
    return value;
}

static int64_t config_int(lz_context_t *ctx, const char *key) {
    int64_t value = 0;
    LZ_CHECK_INT(lz_config_get_int(lz_context_config(ctx), key, &value), LZ_OK);
    return value;
}

// reload_with reloads ctx from the defaults plus settings, a NULL-terminated list.
static int reload_with(lz_context_t *ctx, const char *const *settings) {
    lz_config_t *cfg = lz_test_config_from(settings);
    int rc = lz_context_reload(ctx, cfg);
    lz_config_destroy(&cfg);
    return rc;
}
#define RELOAD(ctx, ...) reload_with((ctx), (const char *const[]){__VA_ARGS__, NULL})

LZ_TEST(log_level_and_format_change_live) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("logging.level=warning");
    lz_logger_t *logger = lz_context_logger(ctx);
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(logger, lz_test_log_capture, &log), LZ_OK);
    LZ_LOG(logger, LZ_LOG_INFO, "app", "before");
    LZ_CHECK(!lz_test_logged(&log, "before"));

    LZ_CHECK_INT(RELOAD(ctx, "logging.level=debug", "logging.format=json"), LZ_OK);
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_DEBUG);
    LZ_LOG(logger, LZ_LOG_INFO, "app", "after");
    LZ_CHECK(lz_test_logged(&log, "INFO app: after"));
    LZ_CHECK(lz_test_logged(&log, "INFO config: reloaded from lz_context_reload: 2 live key(s) changed, 0 need a restart"));
    LZ_CHECK_STR(config_string(ctx, "logging.level"), "DEBUG");
    LZ_CHECK_STR(config_string(ctx, "logging.format"), "json");
    // The callback target the application chose stays: logging.target did not change.
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 1);
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 0);

    // A level the application set itself outlives a reload that leaves logging alone.
    lz_logger_set_level(logger, LZ_LOG_ERROR);
    LZ_CHECK_INT(RELOAD(ctx, "logging.level=debug", "logging.format=json", "tracing.enabled=true"), LZ_OK);
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_ERROR);
    lz_context_destroy(&ctx);
}

// check_refused: reloading cfg fails naming key, and ctx runs on as before
// (logging.level warning, zmq.request_timeout 5000, the same configuration).
static void check_refused(lz_context_t *ctx, const lz_config_t *cfg, const char *key, const lz_config_t *before) {
    LZ_CHECK_INT(lz_context_reload(ctx, cfg), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), key) != NULL);
    LZ_CHECK_INT(lz_logger_level(lz_context_logger(ctx)), LZ_LOG_WARNING);
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), request_timeout), 5000);
    LZ_CHECK(lz_context_config(ctx) == before);
}

LZ_TEST(invalid_reload_changes_nothing) {
    char server_public[LZ_CURVE_KEY_SIZE], server_secret[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_curve_keypair(server_public, server_secret), LZ_OK);
    lz_config_t *cfg = LZ_TEST_CONFIG("logging.level=warning", "zmq.request_timeout=5000");
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", server_secret), LZ_OK);
    lz_context_t *ctx = lz_context_new(cfg);
    LZ_CHECK(ctx != NULL);
    const lz_config_t *before = lz_context_config(ctx);

    // A live change beside a keys file that cannot be read: neither applies.
    LZ_CHECK_INT(lz_config_set(cfg, "logging.level", "debug"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "zmq.request_timeout", "100"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys_file", "/nonexistent/lz-keys"), LZ_OK);
    check_refused(ctx, cfg, "security.authorized_keys_file", before);

    // An inconsistent pair, even of keys that need a restart, is refused too.
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys_file", ""), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "zmq.reconnect_interval", "500"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "zmq.reconnect_interval_max", "200"), LZ_OK);
    check_refused(ctx, cfg, "zmq.reconnect_interval_max", before);

    LZ_CHECK_INT(lz_context_reload(ctx, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_context_reload(NULL, cfg), LZ_EINVAL);
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 2);
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 0);
    lz_config_destroy(&cfg);
    lz_context_destroy(&ctx);
}

LZ_TEST(keys_needing_a_restart_are_reported_not_applied) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=warning");
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), lz_test_log_capture, &log), LZ_OK);
    int rc = RELOAD(ctx, "zmq.linger=250", "zmq.io_threads=2", "logging.level=info", "zmq.request_timeout=700");
    LZ_CHECK_INT(rc, 2);
    LZ_CHECK_INT(lz_last_error_code(), LZ_OK);
    LZ_CHECK(strstr(lz_last_error(), "restart needed to apply zmq.io_threads, zmq.linger") != NULL);
    LZ_CHECK(lz_test_logged(&log, "WARNING config: reload from lz_context_reload: zmq.linger changed but needs a restart"));
    LZ_CHECK(lz_test_logged(&log, "WARNING config: reload from lz_context_reload: zmq.io_threads changed but needs a restart"));
    // The restart keys keep their running values; the live ones moved.
    LZ_CHECK_INT(config_int(ctx, "zmq.linger"), 0);
    LZ_CHECK_INT(config_int(ctx, "zmq.io_threads"), 1);
    LZ_CHECK_INT(config_int(ctx, "zmq.request_timeout"), 700);
    LZ_CHECK_INT(lz_logger_level(lz_context_logger(ctx)), LZ_LOG_INFO);
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), request_timeout), 700);
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 1);
    lz_context_destroy(&ctx);
}

// Keys that need a restart are not applied, but they are what the restart
// will run with: a pair that disagrees (a CURVE server key, which makes a
// CURVE client, with a PLAIN user) must be refused now, not at the restart.
LZ_TEST(restart_keys_that_disagree_are_refused) {
    char server_public[LZ_CURVE_KEY_SIZE], server_secret[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_curve_keypair(server_public, server_secret), LZ_OK);
    lz_context_t *ctx = LZ_TEST_CONTEXT("logging.level=warning");
    lz_config_t *next = LZ_TEST_CONFIG("logging.level=warning", "security.plain_username=alice");
    LZ_CHECK_INT(lz_config_set(next, "security.curve_server_key", server_public), LZ_OK);
    lz_context_t *restarted = lz_context_new(next); // what the restart would do
    LZ_CHECK(restarted == NULL);
    int code = lz_last_error_code();
    LZ_CHECK(code < 0);
    LZ_CHECK_INT(lz_context_reload(ctx, next), code);
    LZ_CHECK(strstr(lz_last_error(), "restart needed") == NULL);
    LZ_CHECK_STR(config_string(ctx, "security.plain_username"), "");
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 1);
    lz_config_destroy(&next);
    lz_context_destroy(&ctx);
}

// What debug and logging.target's default mean depends on the source of
// other keys: a reload that changes only a source moves the logger, and
// must replace the running configuration too, or every later reload (a
// watcher's touch) sets the level again over the application's own.
LZ_TEST(a_reload_that_changes_only_a_source_is_applied_once) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("debug=true", "logging.level=info");
    lz_logger_t *logger = lz_context_logger(ctx);
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(logger, lz_test_log_capture, &log), LZ_OK);
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_INFO); // the level is set as high as debug
    LZ_CHECK_INT(RELOAD(ctx, "debug=true"), LZ_OK); // the level back to its default: debug wins
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_DEBUG);
    LZ_CHECK_STR(lz_config_source(lz_context_config(ctx), "logging.level"), "default");
    lz_logger_set_level(logger, LZ_LOG_ERROR);
    LZ_CHECK_INT(RELOAD(ctx, "debug=true"), LZ_OK);
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_ERROR);
    lz_context_destroy(&ctx);
}

LZ_TEST(request_timeout_and_task_defaults_change_live) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.request_timeout=20000", "zmq.request_retries=0");
    char ep[256];
    lz_test_ipc_endpoint(ep, sizeof ep); // nobody answers there
    lz_client_t *client = lz_client_new(ctx, ep);
    LZ_CHECK(client != NULL);
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "zmq.request_timeout=150", "zmq.request_retries=0",
                        "tasks.max_retries=4", "tasks.retry_delay=20"), LZ_OK);
    // A client made before the reload: its next request uses the new timeout.
    int64_t start = lz_test_now_ms();
    lz_value_t *reply = NULL;
    LZ_CHECK_INT(lz_client_request(client, "ping", NULL, &reply, -1), LZ_ETIMEOUT);
    LZ_CHECK(lz_test_now_ms() - start < 5000);
    lz_client_destroy(&client);
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), task_max_retries), 4);
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), task_retry_delay), 20);
    lz_context_destroy(&ctx);
}

/* ---- the log target ---- */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t size = 0;
    if (f) {
        FILE *out = open_memstream(&text, &size);
        char buf[4096];
        for (size_t n; out && (n = fread(buf, 1, sizeof buf, f)) > 0;) fwrite(buf, 1, n, out);
        if (out) fclose(out);
        fclose(f);
    }
    return text;
}

// any_fd: whether match(fd, arg) holds for one of this process's
// descriptors, fd its number as /proc/self/fd names it.
static bool any_fd(bool (*match)(const char *fd, const char *arg), const char *arg) {
    DIR *dir = opendir("/proc/self/fd");
    bool found = false;
    for (struct dirent *e; dir && !found && (e = readdir(dir));) found = match(e->d_name, arg);
    if (dir) closedir(dir);
    return found;
}

static bool fd_opens(const char *fd, const char *path) {
    char link[300], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%s", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) target[n] = '\0';
    return n > 0 && strcmp(target, path) == 0;
}

// open_here: whether this process has path open (its /proc/self/fd links).
static bool open_here(const char *path) { return any_fd(fd_opens, path); }

// file_setting writes "logging.file_path=<dir>/<name>" into out, the path into path.
static const char *file_setting(char *out, size_t size, char *path, size_t path_size, const char *dir,
                                const char *name) {
    snprintf(path, path_size, "%s/%s", dir, name);
    snprintf(out, size, "logging.file_path=%s", path);
    return out;
}

LZ_TEST(log_target_moves_to_another_file) {
    char dir[] = "/tmp/lz-reload-XXXXXX", a[256], b[256], bad[256], use_a[300], use_b[300], use_bad[300];
    LZ_CHECK(mkdtemp(dir) != NULL);
    file_setting(use_a, sizeof use_a, a, sizeof a, dir, "a.log");
    file_setting(use_b, sizeof use_b, b, sizeof b, dir, "b.log");
    file_setting(use_bad, sizeof use_bad, bad, sizeof bad, dir, "missing/c.log");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.target=file", use_a);
    lz_logger_t *logger = lz_context_logger(ctx);
    LZ_LOG(logger, LZ_LOG_WARNING, "app", "one, to A");
    LZ_CHECK(open_here(a));

    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.target=file", use_b), LZ_OK);
    LZ_LOG(logger, LZ_LOG_WARNING, "app", "two, to B");
    char *text_a = read_text(a), *text_b = read_text(b);
    LZ_CHECK(text_a && strstr(text_a, "WARNING app: one, to A\n") && !strstr(text_a, "two"));
    LZ_CHECK(text_b && strstr(text_b, "WARNING app: two, to B\n") && !strstr(text_b, "one"));
    // The reload's own line is the first record after the switch.
    LZ_CHECK(text_b && strstr(text_b, "INFO  config: reloaded from lz_context_reload: 1 live key(s) changed"));
    LZ_CHECK(!open_here(a) && open_here(b)); // A closed once its last record was written
    free(text_a);
    free(text_b);

    // A file that cannot be opened refuses the reload whole: the live
    // change beside it does not apply, and the log stays on B.
    const lz_config_t *before = lz_context_config(ctx);
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.target=file", use_bad, "zmq.request_timeout=100"),
                 LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "logging.file_path") && strstr(lz_last_error(), bad));
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), request_timeout), 5000);
    LZ_CHECK(lz_context_config(ctx) == before);
    LZ_LOG(logger, LZ_LOG_WARNING, "app", "three, still to B");
    text_b = read_text(b);
    LZ_CHECK(text_b && strstr(text_b, "WARNING app: three, still to B\n"));
    LZ_CHECK(text_b && strstr(text_b, "ERROR config: reload from lz_context_reload refused"));
    free(text_b);
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 1);

    // Rotation limits are live too: B, past 200 bytes, rotates after the
    // reload's own record, so the next one starts a fresh B.
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.target=file", use_b, "logging.max_file_size=200",
                        "logging.backup_count=1"), LZ_OK);
    LZ_LOG(logger, LZ_LOG_WARNING, "app", "four, after the rotation");
    char rotated[300];
    snprintf(rotated, sizeof rotated, "%s.1", b);
    char *text_rotated = read_text(rotated);
    text_b = read_text(b);
    LZ_CHECK(text_rotated && strstr(text_rotated, "three, still to B"));
    LZ_CHECK(text_b && strstr(text_b, "four, after the rotation") && !strstr(text_b, "three"));
    free(text_rotated);
    free(text_b);
    lz_context_destroy(&ctx);
    LZ_CHECK(!open_here(b));
    unlink(a);
    unlink(b);
    unlink(rotated);
    rmdir(dir);
}

LZ_TEST(a_target_set_through_the_api_stays_until_a_reload_moves_the_log) {
    char dir[] = "/tmp/lz-reload-XXXXXX", a[256], b[256], use_a[300], use_b[300];
    LZ_CHECK(mkdtemp(dir) != NULL);
    file_setting(use_a, sizeof use_a, a, sizeof a, dir, "a.log");
    file_setting(use_b, sizeof use_b, b, sizeof b, dir, "b.log");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", use_a);
    lz_logger_t *logger = lz_context_logger(ctx);
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(logger, lz_test_log_capture, &log), LZ_OK);
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", use_a, "logging.level=debug", "logging.backup_count=2"), LZ_OK);
    LZ_LOG(logger, LZ_LOG_INFO, "app", "to the callback");
    LZ_CHECK_INT(lz_test_logged(&log, "INFO app: to the callback"), 1);
    LZ_CHECK(!open_here(b));
    // logging.file_path changed: the configuration moves the log, the callback is left.
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", use_b, "logging.level=debug"), LZ_OK);
    LZ_LOG(logger, LZ_LOG_INFO, "app", "to B");
    LZ_CHECK_INT(lz_test_logged(&log, "to B"), 0);
    char *text_b = read_text(b);
    LZ_CHECK(text_b && strstr(text_b, "INFO  app: to B\n"));
    free(text_b);
    lz_context_destroy(&ctx);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

typedef struct {
    lz_logger_t *logger;
    int id;
} writer_t;

enum { WRITER_RECORDS = 1500 };

static void *write_records(void *arg) {
    writer_t *w = arg;
    for (int i = 0; i < WRITER_RECORDS; i++) LZ_LOG(w->logger, LZ_LOG_WARNING, "w", "writer %d record %d", w->id, i);
    return NULL;
}

// count_records counts the whole "writer N record M" lines of text.
static int count_records(const char *text) {
    int n = 0;
    for (const char *at = text; at && (at = strstr(at, "WARNING w: writer ")); at++) {
        int id, i;
        char end;
        n += sscanf(at, "WARNING w: writer %d record %d%c", &id, &i, &end) == 3 && end == '\n';
    }
    return n;
}

LZ_TEST(log_target_flips_while_threads_log) {
    char dir[] = "/tmp/lz-reload-XXXXXX", a[256], b[256], use_a[300], use_b[300];
    LZ_CHECK(mkdtemp(dir) != NULL);
    file_setting(use_a, sizeof use_a, a, sizeof a, dir, "a.log");
    file_setting(use_b, sizeof use_b, b, sizeof b, dir, "b.log");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=warning", use_a);
    writer_t writers[3];
    pthread_t threads[3];
    for (int t = 0; t < 3; t++) {
        writers[t] = (writer_t){lz_context_logger(ctx), t};
        LZ_CHECK_INT(pthread_create(&threads[t], NULL, write_records, &writers[t]), 0);
    }
    for (int i = 0; i < 30; i++)
        LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.level=warning", i % 2 ? use_a : use_b), LZ_OK);
    for (int t = 0; t < 3; t++) pthread_join(threads[t], NULL);
    lz_context_destroy(&ctx);
    // Every record is whole in one of the files: none lost, none torn.
    char *text_a = read_text(a), *text_b = read_text(b);
    LZ_CHECK_INT(count_records(text_a) + count_records(text_b), 3 * WRITER_RECORDS);
    free(text_a);
    free(text_b);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

/* ---- access rules ---- */


// curve_client: a context and client with client's keys towards server at endpoint.
static lz_client_t *curve_client(lz_context_t **ctx, const lz_test_keypair_t *client, const lz_test_keypair_t *server,
                                 const char *endpoint) {
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "zmq.request_retries=0");
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_server_key", server->public_key), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", client->secret_key), LZ_OK);
    *ctx = lz_context_new(cfg);
    lz_config_destroy(&cfg);
    LZ_CHECK(*ctx != NULL);
    return *ctx ? lz_client_new(*ctx, endpoint) : NULL;
}

static int request(lz_client_t *client, int timeout_ms) {
    lz_value_t *reply = NULL;
    int rc = lz_client_request(client, "whoami", NULL, &reply, timeout_ms);
    lz_value_destroy(&reply);
    return rc;
}

// request_as: one whoami request on a new connection with client's keys.
// An admitted one may take a while on a loaded machine (the sanitizers):
// it gets a long wait, a refused one (it never answers) a short one.
static int request_as(const lz_test_keypair_t *client, const lz_test_keypair_t *server, const char *endpoint,
                      bool admitted) {
    lz_context_t *ctx = NULL;
    lz_client_t *c = curve_client(&ctx, client, server, endpoint);
    int rc = c ? request(c, admitted ? 5000 * LZ_TEST_SLOWDOWN : 500) : LZ_ENOMEM;
    lz_client_destroy(&c);
    lz_context_destroy(&ctx);
    return rc;
}

// server_config: a CURVE server's configuration admitting the keys in list.
static lz_config_t *server_config(const lz_test_keypair_t *server, const char *list) {
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "security.audit=true");
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", server->secret_key), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys", list), LZ_OK);
    return cfg;
}

LZ_TEST(revoked_client_key_is_refused_on_its_next_connection) {
    lz_test_keypair_t server = lz_test_new_keypair(), alice = lz_test_new_keypair(), bob = lz_test_new_keypair();
    char both[128];
    snprintf(both, sizeof both, "%s, %s", alice.public_key, bob.public_key);
    lz_config_t *cfg = server_config(&server, both);
    lz_context_t *sctx = lz_context_new(cfg);
    LZ_CHECK(sctx != NULL);
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(sctx), lz_test_log_capture, &log), LZ_OK);
    lz_server_t *srv = lz_server_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(srv, "whoami", lz_test_whoami, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_start(srv), LZ_OK);
    const char *endpoint = lz_node_endpoint(lz_server_node(srv));
    LZ_CHECK_INT(request_as(&bob, &server, endpoint, true), LZ_OK);
    lz_context_t *bob_ctx = NULL;
    lz_client_t *bob_connected = curve_client(&bob_ctx, &bob, &server, endpoint);
    LZ_CHECK_INT(request(bob_connected, 5000), LZ_OK);

    lz_config_destroy(&cfg);
    cfg = server_config(&server, alice.public_key);
    LZ_CHECK_INT(lz_context_reload(sctx, cfg), LZ_OK);
    LZ_CHECK_INT(request_as(&bob, &server, endpoint, false), LZ_ETIMEOUT);
    LZ_CHECK_INT(request_as(&alice, &server, endpoint, true), LZ_OK);
    LZ_TEST_WAIT_UNTIL(lz_test_logged(&log, "client key not authorized"), 2000);
    LZ_CHECK(lz_test_logged(&log, "client key not authorized"));
    // A connection made before the reload is cut with it (test_revoke.c
    // has the details): bob's client, reconnecting, is refused too.
    LZ_CHECK_INT(request(bob_connected, 500), LZ_ETIMEOUT);
    lz_client_destroy(&bob_connected);
    lz_context_destroy(&bob_ctx);
    lz_config_destroy(&cfg);
    lz_server_destroy(&srv);
    lz_context_destroy(&sctx);
}

LZ_TEST(newly_denied_address_is_refused) {
    lz_context_t *plain = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_context_t *sctx = LZ_TEST_CONTEXT("zmq.linger=0", "security.deny_addresses=10.0.0.0/8");
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK(lz_test_delivered(plain, pull, 5000));
    LZ_CHECK_INT(RELOAD(sctx, "zmq.linger=0", "security.deny_addresses=127.0.0.1"), LZ_OK);
    LZ_CHECK(!lz_test_delivered(plain, pull, 300));
    // Allowed again: the next connection gets through.
    LZ_CHECK_INT(RELOAD(sctx, "zmq.linger=0", "security.allow_addresses=127.0.0.0/8"), LZ_OK);
    LZ_CHECK(lz_test_delivered(plain, pull, 5000));
    lz_pull_destroy(&pull);

    // A context that had no rules binds its sockets without ZAP; rules
    // added live govern the sockets bound afterwards.
    lz_context_t *open_ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(RELOAD(open_ctx, "zmq.linger=0", "security.deny_addresses=127.0.0.1"), LZ_OK);
    pull = lz_pull_new(open_ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(!lz_test_delivered(plain, pull, 300));
    lz_pull_destroy(&pull);
    lz_context_destroy(&open_ctx);
    lz_context_destroy(&sctx);
    lz_context_destroy(&plain);
}

/* ---- reloads beside traffic (for ThreadSanitizer) ---- */

typedef struct {
    lz_push_t *push;       // sends on and on, traced or not
    lz_context_t *plain;   // connects again and again to tcp_endpoint, each a ZAP request
    const char *tcp_endpoint;
    atomic_bool stop;
} traffic_t;

static void *push_loop(void *arg) {
    traffic_t *t = arg;
    while (!atomic_load(&t->stop)) lz_push_send_bytes(t->push, "t", 1);
    return NULL;
}

static void *connect_loop(void *arg) {
    traffic_t *t = arg;
    while (!atomic_load(&t->stop)) {
        lz_push_t *push = lz_push_new(t->plain, t->tcp_endpoint);
        lz_push_send_bytes(push, "c", 1);
        lz_test_sleep_ms(2);
        lz_push_destroy(&push);
    }
    return NULL;
}

// zap_bindable: whether the application can bind a ZAP handler of its own
// in ctx's libzmq context, which it cannot while the context's runs.
static bool zap_bindable(lz_context_t *ctx) {
    void *s = zmq_socket(lz_context_zmq(ctx), ZMQ_REP);
    bool bound = s && zmq_bind(s, "inproc://zeromq.zap.01") == 0;
    if (s) zmq_close(s);
    return bound;
}

// An access rule starts the ZAP handler before the commit (binding may
// fail); a reload refused afterwards, by its log file or by a plugin (the
// last step), stopped it not: the application could no longer bind its own.
LZ_TEST(a_refused_reload_leaves_no_zap_handler_running) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=off");
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.level=off", "security.deny_addresses=10.1.2.3",
                        "logging.file_path=/nonexistent-dir/x.log"), LZ_ECONFIG);
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.level=off", "security.deny_addresses=10.1.2.3",
                        "plugins.load=/nonexistent/x.so"), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "/nonexistent/x.so") != NULL);
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 2);
    LZ_CHECK(zap_bindable(ctx));
    lz_context_destroy(&ctx);
}

// A refused reload that moved the log to a new file takes the file back;
// one that already existed stays.
LZ_TEST(a_refused_reload_leaves_no_log_file_behind) {
    char dir[] = "/tmp/lz-reload-XXXXXX", made[256], kept[256], use_made[300], use_kept[300];
    LZ_CHECK(mkdtemp(dir) != NULL);
    file_setting(use_made, sizeof use_made, made, sizeof made, dir, "made.log");
    file_setting(use_kept, sizeof use_kept, kept, sizeof kept, dir, "kept.log");
    lz_test_replace_file(kept, "");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=off");
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.target=file", use_made, "plugins.load=/nonexistent/x.so"),
                 LZ_ECONFIG);
    LZ_CHECK(access(made, F_OK) != 0);
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.target=file", use_kept, "plugins.load=/nonexistent/x.so"),
                 LZ_ECONFIG);
    LZ_CHECK(access(kept, F_OK) == 0);
    // Applied, the new file is the log's.
    LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "logging.target=file", use_made), LZ_OK);
    LZ_CHECK(access(made, F_OK) == 0);
    lz_context_destroy(&ctx);
    unlink(made);
    unlink(kept);
    rmdir(dir);
}

LZ_TEST(reloads_race_nothing) {
    // Sends give up at once on a full queue, so the threads stop at once.
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.send_timeout=0", "logging.level=off",
                                        "security.deny_addresses=10.0.0.1");
    char ep[256];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    lz_pull_t *guarded = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    traffic_t t = {.push = lz_push_new(ctx, ep),
                   .plain = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.send_timeout=0", "logging.level=off"),
                   .tcp_endpoint = lz_node_endpoint(lz_pull_node(guarded))};
    LZ_CHECK(pull && guarded && t.push);
    pthread_t pusher, connector;
    LZ_CHECK_INT(pthread_create(&pusher, NULL, push_loop, &t), 0);
    LZ_CHECK_INT(pthread_create(&connector, NULL, connect_loop, &t), 0);
    for (int i = 0; i < 40; i++) {
        const char *tracing = i % 2 ? "tracing.enabled=true" : "tracing.enabled=false";
        const char *deny = i % 2 ? "security.deny_addresses=10.0.0.1" : "security.deny_addresses=10.0.0.2";
        LZ_CHECK_INT(RELOAD(ctx, "zmq.linger=0", "zmq.send_timeout=0", "logging.level=off", tracing, deny,
                            "tracing.log=true"), LZ_OK);
        char buf[8];
        size_t size = sizeof buf;
        lz_pull_recv_bytes(pull, buf, &size, 5);
        size = sizeof buf;
        lz_pull_recv_bytes(guarded, buf, &size, 5);
    }
    atomic_store(&t.stop, true);
    pthread_join(pusher, NULL);
    pthread_join(connector, NULL);
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 40);
    lz_push_destroy(&t.push);
    lz_pull_destroy(&guarded);
    lz_pull_destroy(&pull);
    lz_context_destroy(&t.plain);
    lz_context_destroy(&ctx);
}

/* ---- the file watcher ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    LZ_CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

LZ_TEST(watcher_follows_a_replaced_file_and_ignores_a_bad_one) {
    char dir[] = "/tmp/lz-reload-XXXXXX", path[512];
    LZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/app.yaml", dir);
    write_file(path, "logging:\n  level: warning\n");
    setenv("LIBERZMQ_LOGGING__FORMAT", "json", 1);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_logger_t *logger = lz_context_logger(ctx);
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(logger, lz_test_log_capture, &log), LZ_OK);
    LZ_CHECK_INT(lz_context_watch(ctx, path), LZ_OK);
    LZ_CHECK_STR(config_string(ctx, "logging.level"), "WARNING");
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 1);

    lz_test_replace_file(path, "logging:\n  level: debug\nzmq:\n  request_timeout: 1234\n");
    LZ_TEST_WAIT_UNTIL(context_metrics(ctx).config_reloads == 2, 5000);
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_DEBUG);
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), request_timeout), 1234);
    // The environment stays on top of the file, the API on top of both.
    LZ_CHECK_STR(config_string(ctx, "logging.format"), "json");
    LZ_CHECK_INT(config_int(ctx, "zmq.linger"), 0);

    lz_test_replace_file(path, "logging:\n  level: [not, a, level]\n");
    LZ_TEST_WAIT_UNTIL(context_metrics(ctx).config_reload_errors == 1, 5000);
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 1);
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_DEBUG);
    LZ_CHECK(lz_test_logged(&log, "ERROR config: reload from file "));
    LZ_CHECK(lz_test_logged(&log, "app.yaml refused, the running configuration stays: config: "));

    write_file(path, "zmq:\n  request_timeout: 777\n"); // in place this time
    LZ_TEST_WAIT_UNTIL(context_metrics(ctx).config_reloads == 3, 5000); // counted once all of it is applied
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), request_timeout), 777);
    LZ_CHECK_INT(lz_logger_level(logger), LZ_LOG_INFO);

    // Destroying the context stops and joins the watcher at once.
    int64_t start = lz_test_now_ms();
    lz_context_destroy(&ctx);
    LZ_CHECK(lz_test_now_ms() - start < 1000);
    unsetenv("LIBERZMQ_LOGGING__FORMAT");
    unlink(path);
    rmdir(dir);
}

static const char *watched_level(lz_context_t *ctx) { return config_string(ctx, "logging.level"); }

// WAIT_LEVEL waits (5 s at most) for the watcher to have reloaded ctx at level.
#define WAIT_LEVEL(ctx, level)                                                         \
    do {                                                                               \
        LZ_TEST_WAIT_UNTIL(strcmp(watched_level(ctx), (level)) == 0, 5000);            \
        LZ_CHECK_STR(watched_level(ctx), (level));                                     \
    } while (0)

static void remove_tree(const char *dir) {
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    LZ_CHECK(system(command) == 0);
}

// fd_watches: whether fd is an inotify instance watching the inode its
// fdinfo lines name as inode (" ino:HEX sdev:").
static bool fd_watches(const char *fd, const char *inode) {
    char name[300];
    snprintf(name, sizeof name, "/proc/self/fdinfo/%s", fd);
    char *text = read_text(name);
    bool found = text && strstr(text, inode);
    free(text);
    return found;
}

// watched: whether an inotify instance of this process watches the
// directory at path; how a test knows the watcher took in a change that
// changes nothing else.
static bool watched(const char *path) {
    struct stat st;
    char inode[64];
    if (stat(path, &st) != 0) return false;
    snprintf(inode, sizeof inode, " ino:%lx sdev:", (unsigned long)st.st_ino);
    return any_fd(fd_watches, inode);
}

// A watched name that is a symbolic link into another directory: the
// watcher used to watch only the link's directory, and a release switch
// (current -> r2) went unseen, the old release's file read on.
LZ_TEST(watcher_follows_symbolic_links) {
    char dir[] = "/tmp/lz-reload-XXXXXX", path[512], sub[512];
    LZ_CHECK(mkdtemp(dir) != NULL);
    static const char *const subs[] = {"etc", "opt", "r1", "r2"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
        LZ_CHECK(mkdir(sub, 0700) == 0);
    }
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), lz_test_log_capture, &log), LZ_OK);

    // etc/app.yaml -> ../opt/app.yaml, the target edited in place.
    snprintf(sub, sizeof sub, "%s/opt/app.yaml", dir);
    write_file(sub, "logging: {level: warning}\n");
    snprintf(path, sizeof path, "%s/etc/app.yaml", dir);
    LZ_CHECK(symlink("../opt/app.yaml", path) == 0);
    LZ_CHECK_INT(lz_context_watch(ctx, path), LZ_OK);
    LZ_CHECK_STR(watched_level(ctx), "WARNING");
    write_file(sub, "logging: {level: error}\n");
    WAIT_LEVEL(ctx, "ERROR");

    // current/app.yaml, current -> r1 switched to r2 by rename; then r2's file edited.
    for (int r = 1; r <= 2; r++) {
        snprintf(sub, sizeof sub, "%s/r%d/app.yaml", dir, r);
        write_file(sub, r == 1 ? "logging: {level: warning}\n" : "logging: {level: critical}\n");
    }
    snprintf(path, sizeof path, "%s/current", dir);
    LZ_CHECK(symlink("r1", path) == 0);
    snprintf(path, sizeof path, "%s/current/app.yaml", dir);
    LZ_CHECK_INT(lz_context_watch(ctx, path), LZ_OK);
    LZ_CHECK_STR(watched_level(ctx), "WARNING");
    char next[512], current[512];
    snprintf(next, sizeof next, "%s/next", dir);
    snprintf(current, sizeof current, "%s/current", dir);
    LZ_CHECK(symlink("r2", next) == 0);
    LZ_CHECK(rename(next, current) == 0);
    WAIT_LEVEL(ctx, "CRITICAL");
    write_file(sub, "logging: {level: debug}\n"); // r2's, now the one current leads to
    WAIT_LEVEL(ctx, "DEBUG");
    lz_context_destroy(&ctx);
    remove_tree(dir);
}

// A temporary directory dir, its subdirectory sub (made with its
// parents) and path, sub's app.yaml, which a context watches.
typedef struct {
    char dir[32], sub[64], path[96];
} watched_tree_t;

// watch_tree makes t with sub_name under a new dir, writes path at level
// WARNING and returns a context watching it.
static lz_context_t *watch_tree(watched_tree_t *t, const char *sub_name) {
    char command[160];
    snprintf(t->dir, sizeof t->dir, "/tmp/lz-reload-XXXXXX");
    LZ_CHECK(mkdtemp(t->dir) != NULL);
    snprintf(t->sub, sizeof t->sub, "%s/%s", t->dir, sub_name);
    snprintf(t->path, sizeof t->path, "%s/app.yaml", t->sub);
    snprintf(command, sizeof command, "mkdir -p '%s'", t->sub);
    LZ_CHECK(system(command) == 0);
    write_file(t->path, "logging: {level: warning}\n");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_context_watch(ctx, t->path), LZ_OK);
    LZ_CHECK_STR(watched_level(ctx), "WARNING");
    return ctx;
}

// The file's directory replaced whole by a deployment (rm -rf conf, mkdir
// conf, cp): the watch on the old directory went with it, nothing watched
// the new one, and every later change went unseen.
LZ_TEST(watcher_follows_its_directory_deleted_and_made_again) {
    watched_tree_t t;
    lz_context_t *ctx = watch_tree(&t, "sub");
    // dir is watched until sub is back. Waited for, as a deployment's pause
    // would be: a sub back before the watcher looked is no more than an edit.
    LZ_CHECK(unlink(t.path) == 0 && rmdir(t.sub) == 0);
    LZ_TEST_WAIT_UNTIL(watched(t.dir), 5000);
    LZ_CHECK(watched(t.dir));
    LZ_CHECK(mkdir(t.sub, 0700) == 0);
    write_file(t.path, "logging: {level: error}\n");
    WAIT_LEVEL(ctx, "ERROR");
    write_file(t.path, "logging: {level: debug}\n"); // the new sub's own edits
    WAIT_LEVEL(ctx, "DEBUG");
    lz_context_destroy(&ctx);
    remove_tree(t.dir);
}

// The file's directory renamed away and another made in its place: only
// the old directory's own watch hears of it (IN_MOVE_SELF), and it asked
// for no such event.
LZ_TEST(watcher_follows_its_directory_moved_away_and_made_again) {
    watched_tree_t t;
    lz_context_t *ctx = watch_tree(&t, "sub");
    char old[64];
    snprintf(old, sizeof old, "%s/old", t.dir);
    LZ_CHECK(rename(t.sub, old) == 0 && mkdir(t.sub, 0700) == 0);
    write_file(t.path, "logging: {level: critical}\n");
    WAIT_LEVEL(ctx, "CRITICAL");
    write_file(t.path, "logging: {level: debug}\n");
    WAIT_LEVEL(ctx, "DEBUG");
    lz_context_destroy(&ctx);
    remove_tree(t.dir);
}

// A parent of the file's directory renamed away, the file edited there,
// and the parent renamed back: finding its path gone, the watcher dropped
// every watch and never saw it back.
LZ_TEST(watcher_follows_a_parent_renamed_away_and_back) {
    watched_tree_t t;
    lz_context_t *ctx = watch_tree(&t, "a/sub");
    char parent[64], away[64], path_away[96];
    snprintf(parent, sizeof parent, "%s/a", t.dir);
    snprintf(away, sizeof away, "%s/b", t.dir);
    snprintf(path_away, sizeof path_away, "%s/sub/app.yaml", away);
    LZ_CHECK(rename(parent, away) == 0);
    write_file(path_away, "logging: {level: error}\n");
    LZ_TEST_WAIT_UNTIL(watched(t.dir), 5000); // the watcher found path gone
    LZ_CHECK(watched(t.dir));
    LZ_CHECK(rename(away, parent) == 0);
    WAIT_LEVEL(ctx, "ERROR");
    write_file(t.path, "logging: {level: critical}\n");
    WAIT_LEVEL(ctx, "CRITICAL");
    lz_context_destroy(&ctx);
    remove_tree(t.dir);
}

// A stand-in for pthread_create, the library's calls included, that
// refuses every thread while threads_refused is set.
static atomic_bool threads_refused;
static int (*real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static void find_real_pthread_create(void) { lz_test_next_function(&real_pthread_create, "pthread_create"); }

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*main)(void *), void *arg) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_real_pthread_create);
    return atomic_load(&threads_refused) ? EAGAIN : real_pthread_create(thread, attr, main, arg);
}

// A watcher whose thread cannot start changes nothing: its first reload
// used to be applied before the thread was asked for.
LZ_TEST(a_watcher_that_cannot_start_changes_nothing) {
    char dir[] = "/tmp/lz-reload-XXXXXX", path[512];
    LZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/app.yaml", dir);
    write_file(path, "zmq:\n  request_timeout: 1234\n");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=off");
    const lz_config_t *before = lz_context_config(ctx);
    atomic_store(&threads_refused, true);
    LZ_CHECK_INT(lz_context_watch(ctx, path), LZ_ENOMEM);
    atomic_store(&threads_refused, false);
    LZ_CHECK(strstr(lz_last_error(), "config: watcher: cannot start a thread") != NULL);
    LZ_CHECK(lz_context_config(ctx) == before);
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), request_timeout), 5000);
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 0);
    LZ_CHECK_INT(lz_context_watch(ctx, path), LZ_OK); // once threads start again
    LZ_CHECK_INT(LZ_LIVE(lz__context_live(ctx), request_timeout), 1234);
    lz_context_destroy(&ctx);
    unlink(path);
    rmdir(dir);
}

LZ_TEST(watch_refuses_what_it_cannot_watch) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=off");
    LZ_CHECK_INT(lz_context_watch(ctx, "/nonexistent-dir/app.yaml"), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "/nonexistent-dir") != NULL);
    char dir[] = "/tmp/lz-reload-XXXXXX", path[512];
    LZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    LZ_CHECK_INT(lz_context_watch(ctx, path), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "missing.yaml") != NULL);
    LZ_CHECK_INT(lz_context_watch(NULL, path), LZ_EINVAL);
    LZ_CHECK_INT(lz_context_watch(ctx, NULL), LZ_OK); // nothing to stop
    rmdir(dir);
    lz_context_destroy(&ctx);
}

// A call that a FIFO no one writes may hold (the watcher's read of one
// did, and lz_context_destroy waited for it), on a thread of its own: one
// still running after a while fails the test, and a writer that comes and
// goes lets it go, so the test ends.
typedef struct {
    lz_context_t *ctx;
    const char *path, *fifo; // path: to watch (NULL: destroy ctx)
    int rc;
    char error[512];
    atomic_bool done;
} fifo_call_t;

static void *fifo_call_main(void *arg) {
    fifo_call_t *call = arg;
    if (call->path) call->rc = lz_context_watch(call->ctx, call->path);
    else lz_context_destroy(&call->ctx);
    snprintf(call->error, sizeof call->error, "%s", lz_last_error());
    atomic_store(&call->done, true);
    return NULL;
}

static void call_bounded(fifo_call_t *call) {
    pthread_t thread;
    LZ_CHECK_INT(pthread_create(&thread, NULL, fifo_call_main, call), 0);
    LZ_TEST_WAIT_UNTIL(atomic_load(&call->done), 2000 * lz_test_slowdown());
    LZ_CHECK(atomic_load(&call->done));
    while (!atomic_load(&call->done)) {
        int fd = open(call->fifo, O_WRONLY | O_NONBLOCK);
        if (fd >= 0) close(fd);
        lz_test_sleep_ms(10);
    }
    pthread_join(thread, NULL);
}

// The watched file replaced by a FIFO: the reload is refused, logged and
// counted, the running configuration stays, and lz_context_destroy
// returns at once. A path that is a FIFO already is refused by
// lz_context_watch itself. Before, the watcher waited in open() for a
// writer, for ever, and lz_context_destroy for the watcher.
LZ_TEST(watcher_refuses_a_fifo_and_stops_at_once) {
    char dir[] = "/tmp/lz-reload-XXXXXX", path[512], fifo[600];
    LZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/app.yaml", dir);
    snprintf(fifo, sizeof fifo, "%s.fifo", path);
    write_file(path, "logging:\n  level: warning\n");
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), lz_test_log_capture, &log), LZ_OK);
    LZ_CHECK_INT(lz_context_watch(ctx, path), LZ_OK);
    LZ_CHECK_INT(mkfifo(fifo, 0600), 0);
    LZ_CHECK_INT(rename(fifo, path), 0); // fifo_call_t's writer opens it at path from now on
    LZ_TEST_WAIT_UNTIL(context_metrics(ctx).config_reload_errors == 1, 2000 * lz_test_slowdown());
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 1);
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 1);
    LZ_CHECK(lz_test_logged(&log, "app.yaml refused, the running configuration stays: config: cannot read file "));
    LZ_CHECK(lz_test_logged(&log, "app.yaml: a named FIFO, not a regular file"));
    LZ_CHECK_STR(config_string(ctx, "logging.level"), "WARNING");
    fifo_call_t destroy = {.ctx = ctx, .fifo = path};
    call_bounded(&destroy);

    fifo_call_t watch = {.ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=off"), .path = path, .fifo = path};
    call_bounded(&watch);
    LZ_CHECK_INT(watch.rc, LZ_ECONFIG);
    LZ_CHECK(strstr(watch.error, "a named FIFO, not a regular file") != NULL);
    LZ_CHECK_INT(context_metrics(watch.ctx).config_reload_errors, 1);
    watch.path = NULL;
    call_bounded(&watch);
    unlink(path);
    rmdir(dir);
}

/* ---- calls from the watcher's own log records ---- */

#define REFUSED "refused, the running configuration stays"
#define BAD_FILE "zmq: [not: a: mapping\n"

// A log sink that, at the first record holding trigger, calls act on the
// thread writing it, as an application reacting to what a reload logged
// would, and keeps what it returned.
typedef struct record_call {
    lz_context_t *ctx;
    const char *trigger, *path; // path: for act
    int (*act)(struct record_call *call);
    pthread_t test_thread;
    pid_t tid; // the thread that called
    int rc, rc_again;
    char error[512];
    atomic_bool started, done, elsewhere; // elsewhere: not on the test's thread
} record_call_t;

static void call_on_record(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level;
    (void)component;
    record_call_t *call = arg;
    if (!strstr(message, call->trigger) || atomic_exchange(&call->started, true)) return;
    call->tid = (pid_t)syscall(SYS_gettid);
    atomic_store(&call->elsewhere, !pthread_equal(pthread_self(), call->test_thread));
    call->rc = call->act(call);
    snprintf(call->error, sizeof call->error, "%s", lz_last_error());
    atomic_store(&call->done, true);
}

// thread_alive: whether the thread tid of this process has not ended yet.
static bool thread_alive(pid_t tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    return access(path, F_OK) == 0;
}

// Two files in a new dir: path, which the context watches, and other.
typedef struct {
    char dir[32], path[64], other[64];
} watch_files_t;

// watch_files makes f: path with text, other at request_timeout 2222.
static void watch_files(watch_files_t *f, const char *text) {
    snprintf(f->dir, sizeof f->dir, "/tmp/lz-reload-XXXXXX");
    LZ_CHECK(mkdtemp(f->dir) != NULL);
    snprintf(f->path, sizeof f->path, "%s/app.yaml", f->dir);
    snprintf(f->other, sizeof f->other, "%s/other.yaml", f->dir);
    write_file(f->path, text);
    write_file(f->other, "zmq:\n  request_timeout: 2222\n");
}

// calling_at makes a context (log level INFO) whose log calls act at
// trigger, with f's other file for act.
static lz_context_t *calling_at(record_call_t *call, const watch_files_t *f, const char *trigger,
                                int (*act)(record_call_t *)) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=info");
    memset(call, 0, sizeof *call);
    call->ctx = ctx;
    call->trigger = trigger;
    call->path = f->other;
    call->act = act;
    call->test_thread = pthread_self();
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), call_on_record, call), LZ_OK);
    return ctx;
}

// watch_calling makes f (path at request_timeout 1111) and a context
// calling_at makes, watching path.
static lz_context_t *watch_calling(watch_files_t *f, record_call_t *call, const char *trigger,
                                   int (*act)(record_call_t *)) {
    watch_files(f, "zmq:\n  request_timeout: 1111\n");
    lz_context_t *ctx = calling_at(call, f, trigger, act);
    LZ_CHECK_INT(lz_context_watch(ctx, f->path), LZ_OK);
    return ctx;
}

// called waits for the watcher's thread to have called act.
static bool called(record_call_t *call) {
    LZ_TEST_WAIT_UNTIL(atomic_load(&call->done), 5000);
    LZ_CHECK(atomic_load(&call->done));
    LZ_CHECK(atomic_load(&call->elsewhere));
    return atomic_load(&call->done);
}

static int64_t request_timeout(lz_context_t *ctx) { return LZ_LIVE(lz__context_live(ctx), request_timeout); }

static int stop_watching(record_call_t *call) { return lz_context_watch(call->ctx, NULL); }

// The watcher joined itself (EDEADLK, ignored), freed itself, and read on
// what it had freed.
LZ_TEST(a_watcher_stopped_from_its_own_log_record_ends) {
    watch_files_t f;
    record_call_t call;
    lz_context_t *ctx = watch_calling(&f, &call, REFUSED, stop_watching);
    lz_test_replace_file(f.path, BAD_FILE);
    if (!called(&call)) return; // the watcher is stuck: left as it is
    LZ_CHECK_INT(call.rc, LZ_OK);
    LZ_TEST_WAIT_UNTIL(!thread_alive(call.tid), 5000); // it ends after the record, on its own
    LZ_CHECK(!thread_alive(call.tid));
    lz_test_replace_file(f.path, "zmq:\n  request_timeout: 3333\n"); // read by nobody now
    LZ_CHECK_INT(request_timeout(ctx), 1111);
    LZ_CHECK_INT(lz_context_watch(ctx, f.path), LZ_OK); // joins the old one, starts again
    LZ_CHECK_INT(request_timeout(ctx), 3333);
    lz_context_destroy(&ctx);
    remove_tree(f.dir);
}

static int watch_other(record_call_t *call) { return lz_context_watch(call->ctx, call->path); }

// A new path from the watcher's record: the old watcher was stopped (the
// same self-join) before the new one started.
LZ_TEST(a_watcher_pointed_elsewhere_from_its_own_log_record_follows_the_new_file) {
    watch_files_t f;
    record_call_t call;
    lz_context_t *ctx = watch_calling(&f, &call, REFUSED, watch_other);
    lz_test_replace_file(f.path, BAD_FILE);
    if (!called(&call)) return;
    LZ_CHECK_INT(call.rc, LZ_OK);
    LZ_CHECK_INT(request_timeout(ctx), 2222); // other read at once, as any lz_context_watch does
    lz_test_replace_file(f.path, "zmq:\n  request_timeout: 3333\n");
    lz_test_replace_file(f.other, "zmq:\n  request_timeout: 4444\n");
    // A reload is counted after its values are live: wait for the count.
    LZ_TEST_WAIT_UNTIL(context_metrics(ctx).config_reloads == 3, 5000); // path's first, other's first, its change
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 3);
    LZ_CHECK_INT(request_timeout(ctx), 4444);
    lz_context_destroy(&ctx);
    remove_tree(f.dir);
}

static int destroy_context(record_call_t *call) {
    lz_context_t *ctx = call->ctx;
    lz_context_destroy(&ctx);
    return ctx == NULL ? LZ_OK : LZ_EINVAL;
}

// The destroy freed the context under the reload writing the record
// (counting it then), and the watcher under its own thread.
LZ_TEST(a_context_destroyed_from_its_watchers_log_record_ends_with_the_watcher) {
    watch_files_t f;
    record_call_t call;
    watch_calling(&f, &call, REFUSED, destroy_context);
    lz_test_replace_file(f.path, BAD_FILE);
    if (!called(&call)) return;
    LZ_CHECK_INT(call.rc, LZ_OK);
    // The watcher's thread ends the context (a leak checker sees the rest) before it ends itself.
    LZ_TEST_WAIT_UNTIL(!thread_alive(call.tid), 5000);
    LZ_CHECK(!thread_alive(call.tid));
    remove_tree(f.dir);
}

// The same with a node keeping the context: the node's destroy, from this
// thread, ends it, joining the watcher's thread.
LZ_TEST(a_context_destroyed_from_its_watchers_log_record_lives_on_with_its_nodes) {
    watch_files_t f;
    record_call_t call;
    lz_context_t *ctx = watch_calling(&f, &call, REFUSED, destroy_context);
    char endpoint[64];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    LZ_CHECK(pull != NULL);
    lz_test_replace_file(f.path, BAD_FILE);
    if (!called(&call)) return;
    LZ_CHECK_INT(call.rc, LZ_OK);
    LZ_TEST_WAIT_UNTIL(!thread_alive(call.tid), 5000);
    LZ_CHECK(!thread_alive(call.tid));
    lz_pull_destroy(&pull);
    remove_tree(f.dir);
}

static int reload_and_watch(record_call_t *call) {
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "logging.level=info");
    int rc = lz_context_reload(call->ctx, cfg);
    lz_config_destroy(&cfg);
    call->rc_again = lz_context_watch(call->ctx, call->path);
    return rc;
}

// The record of new access rules is written while the reload holds the
// context's reload lock: a reload or watch called from it waited for that
// lock for ever (the watcher's thread then, and the destroy joining it).
LZ_TEST(a_reload_from_a_log_record_of_a_reload_in_progress_is_refused) {
    watch_files_t f;
    record_call_t call;
    lz_context_t *ctx = watch_calling(&f, &call, "changed the access rules", reload_and_watch);
    lz_test_replace_file(f.path, "security:\n  deny_addresses: 127.0.0.1\n");
    if (!called(&call)) return;
    LZ_CHECK_INT(call.rc, LZ_ESTATE);
    LZ_CHECK_INT(call.rc_again, LZ_ESTATE);
    LZ_CHECK(strstr(call.error, "lz_context_watch: called from a log record of a reload of the same context") !=
             NULL);
    lz_test_replace_file(f.path, "zmq:\n  request_timeout: 3333\n"); // the watcher goes on
    LZ_TEST_WAIT_UNTIL(context_metrics(ctx).config_reloads == 3, 5000); // path's first, the rules', this one
    LZ_CHECK_INT(context_metrics(ctx).config_reloads, 3);
    LZ_CHECK_INT(request_timeout(ctx), 3333);
    LZ_CHECK_INT(context_metrics(ctx).config_reload_errors, 0);
    lz_context_destroy(&ctx);
    remove_tree(f.dir);
}

// lz_context_watch's first reload runs on its caller's thread, under the
// lock of the context's watcher: a watch called from one of its records
// waited for that lock for ever (the test's alarm ends it).
LZ_TEST(a_watch_from_a_log_record_of_its_own_first_reload_is_refused) {
    watch_files_t f;
    record_call_t call;
    watch_files(&f, BAD_FILE);
    lz_context_t *ctx = calling_at(&call, &f, REFUSED, watch_other);
    LZ_CHECK_INT(lz_context_watch(ctx, f.path), LZ_ECONFIG);
    LZ_CHECK(atomic_load(&call.done));
    LZ_CHECK_INT(call.rc, LZ_ESTATE);
    LZ_CHECK(strstr(call.error, "of the first reload of a lz_context_watch") != NULL);
    LZ_CHECK_INT(lz_context_watch(ctx, f.other), LZ_OK); // once that call returned
    LZ_CHECK_INT(request_timeout(ctx), 2222);
    lz_context_destroy(&ctx);
    remove_tree(f.dir);
}

// A context destroyed from a log record of lz_context_reload on the
// caller's thread: the destroy is finished as that call returns. Before,
// it freed the context under the reload writing the record (the access
// rules' record is written holding the reload's lock; the last, after it).
static void check_destroy_from_a_reload_record(const char *trigger) {
    watch_files_t f;
    record_call_t call;
    watch_files(&f, "zmq:\n  request_timeout: 1111\n");
    calling_at(&call, &f, trigger, destroy_context);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "logging.level=info", "security.deny_addresses=10.9.9.9");
    LZ_CHECK_INT(lz_context_reload(call.ctx, cfg), LZ_OK); // ASan and valgrind see what it would have read freed
    LZ_CHECK(atomic_load(&call.done));
    LZ_CHECK_INT(call.rc, LZ_OK);
    lz_config_destroy(&cfg);
    remove_tree(f.dir);
}

LZ_TEST(a_context_destroyed_from_a_record_its_reload_writes_under_its_lock) {
    check_destroy_from_a_reload_record("changed the access rules");
}

LZ_TEST(a_context_destroyed_from_the_last_record_of_its_reload) { check_destroy_from_a_reload_record("reloaded from"); }

// The same from a record of lz_context_watch's first reload, which runs on
// its caller's thread under the watcher's lock: the destroy took that lock
// again and waited for ever (the test's alarm ended it). It is finished as
// the watch returns; the node keeps the context, and it ends with the node.
LZ_TEST(a_context_destroyed_from_a_record_of_its_first_watch_ends_after_the_watch) {
    watch_files_t f;
    record_call_t call;
    watch_files(&f, "zmq:\n  request_timeout: 1111\n");
    lz_context_t *ctx = calling_at(&call, &f, "reloaded from", destroy_context);
    char endpoint[64];
    lz_pull_t *pull = lz_pull_new(ctx, lz_test_inproc_endpoint(endpoint, sizeof endpoint));
    LZ_CHECK(pull != NULL);
    LZ_CHECK_INT(lz_context_watch(ctx, f.path), LZ_OK);
    LZ_CHECK(atomic_load(&call.done));
    LZ_CHECK_INT(call.rc, LZ_OK);
    LZ_CHECK_INT(request_timeout(ctx), 1111); // the node's reference keeps it
    lz_pull_destroy(&pull);                   // the last reference: the context ends, its watcher stopped before
    remove_tree(f.dir);
}

LZ_TEST_MAIN(LZ_CASE(log_level_and_format_change_live), LZ_CASE(invalid_reload_changes_nothing),
             LZ_CASE(log_target_moves_to_another_file),
             LZ_CASE(a_target_set_through_the_api_stays_until_a_reload_moves_the_log),
             LZ_CASE(log_target_flips_while_threads_log),
             LZ_CASE(keys_needing_a_restart_are_reported_not_applied),
             LZ_CASE(restart_keys_that_disagree_are_refused),
             LZ_CASE(a_reload_that_changes_only_a_source_is_applied_once),
             LZ_CASE(request_timeout_and_task_defaults_change_live),
             LZ_CASE(revoked_client_key_is_refused_on_its_next_connection), LZ_CASE(newly_denied_address_is_refused),
             LZ_CASE(a_refused_reload_leaves_no_zap_handler_running),
             LZ_CASE(a_refused_reload_leaves_no_log_file_behind), LZ_CASE(reloads_race_nothing),
             LZ_CASE(watcher_follows_a_replaced_file_and_ignores_a_bad_one),
             LZ_CASE(watcher_follows_symbolic_links),
             LZ_CASE(watcher_follows_its_directory_deleted_and_made_again),
             LZ_CASE(watcher_follows_its_directory_moved_away_and_made_again),
             LZ_CASE(watcher_follows_a_parent_renamed_away_and_back),
             LZ_CASE(a_watcher_that_cannot_start_changes_nothing),
             LZ_CASE(watch_refuses_what_it_cannot_watch), LZ_CASE(watcher_refuses_a_fifo_and_stops_at_once),
             LZ_CASE(a_watcher_stopped_from_its_own_log_record_ends),
             LZ_CASE(a_watcher_pointed_elsewhere_from_its_own_log_record_follows_the_new_file),
             LZ_CASE(a_context_destroyed_from_its_watchers_log_record_ends_with_the_watcher),
             LZ_CASE(a_context_destroyed_from_its_watchers_log_record_lives_on_with_its_nodes),
             LZ_CASE(a_reload_from_a_log_record_of_a_reload_in_progress_is_refused),
             LZ_CASE(a_watch_from_a_log_record_of_its_own_first_reload_is_refused),
             LZ_CASE(a_context_destroyed_from_a_record_its_reload_writes_under_its_lock),
             LZ_CASE(a_context_destroyed_from_the_last_record_of_its_reload),
             LZ_CASE(a_context_destroyed_from_a_record_of_its_first_watch_ends_after_the_watch))
