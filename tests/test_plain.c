/* Security, PLAIN: user names and passwords checked by the ZAP handler
 * against a users file of crypt(3) hashes. A right password gets through
 * and the handler sees the name; a wrong one and an unknown user are
 * refused alike (nothing arrives, handshake_failures counts it; an unknown
 * name is checked against the costliest user's hash); a reload
 * drops a user; bad users files and CURVE beside PLAIN are refused; a
 * PLAIN server bound beyond loopback warns once; a pyzmq PLAIN client. */
#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lz_test.h"
#include "core/security.h"
#include "liberzmq/pushpull.h"
#include "liberzmq/reqrep.h"
#include "liberzmq/security.h"

/* ---- which hash a check is made against ---------------------------------- */

// crypt_r below stands in for libxcrypt's: liberzmq is linked in statically,
// so its calls come here. While recording, it keeps the settings it is given
// (the ZAP handler's pool threads hash: under a lock), then hashes as ever.
static pthread_mutex_t crypt_seen_lock = PTHREAD_MUTEX_INITIALIZER;
static bool crypt_recording;
static char crypt_seen[8][CRYPT_OUTPUT_SIZE];
static size_t crypt_seen_count;

typedef char *crypt_r_fn(const char *phrase, const char *setting, struct crypt_data *data);
static crypt_r_fn *real_crypt_r;
static pthread_once_t real_crypt_r_once = PTHREAD_ONCE_INIT;

static void find_real_crypt_r(void) { lz_test_next_function(&real_crypt_r, "crypt_r"); }

char *crypt_r(const char *phrase, const char *setting, struct crypt_data *data) {
    pthread_once(&real_crypt_r_once, find_real_crypt_r);
    pthread_mutex_lock(&crypt_seen_lock);
    if (crypt_recording && crypt_seen_count < sizeof crypt_seen / sizeof crypt_seen[0])
        snprintf(crypt_seen[crypt_seen_count++], sizeof crypt_seen[0], "%s", setting);
    pthread_mutex_unlock(&crypt_seen_lock);
    return real_crypt_r(phrase, setting, data);
}

static void crypt_record(bool on) {
    pthread_mutex_lock(&crypt_seen_lock);
    crypt_recording = on;
    if (on) crypt_seen_count = 0;
    pthread_mutex_unlock(&crypt_seen_lock);
}

// user_line writes "name:hash" of password with a fresh salt of method
// ("$y$": yescrypt, as lz passwd) and cost count (0: the method's default).
static void user_line(FILE *f, const char *name, const char *password, const char *method, unsigned long count) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *data = calloc(1, sizeof *data);
    LZ_CHECK(crypt_gensalt_rn(method, count, NULL, 0, salt, sizeof salt) != NULL);
    const char *hash = crypt_r(password, salt, data);
    LZ_CHECK(hash && hash[0] == '$');
    fprintf(f, "%s:%s\n", name, hash ? hash : "");
    free(data);
}

// write_hashed_users replaces the users file at path with lines of "name",
// "password" pairs hashed by method at cost count, then text.
static void write_hashed_users(const char *path, const char *const *pairs, const char *text, const char *method,
                               unsigned long count) {
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    LZ_CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "# PLAIN users of the test\n\n");
    for (size_t i = 0; pairs && pairs[i]; i += 2) user_line(f, pairs[i], pairs[i + 1], method, count);
    if (text) fputs(text, f);
    fclose(f);
    LZ_CHECK_INT(rename(tmp, path), 0);
}

// write_users: yescrypt hashes, as lz passwd makes them.
static void write_users(const char *path, const char *const *pairs, const char *text) {
    write_hashed_users(path, pairs, text, "$y$", 0);
}

static char users_path[256];

static const char *users_file(void) {
    if (!users_path[0]) {
        char ep[256];
        lz_test_ipc_endpoint(ep, sizeof ep); // its private directory
        snprintf(users_path, sizeof users_path, "%s.users", ep + strlen("ipc://"));
    }
    return users_path;
}

static lz_context_t *context_with(const char *key, const char *value, const char *key2, const char *value2) {
    return lz_test_context_with((const char *const[]){"zmq.linger=0", "zmq.request_retries=0", "security.audit=true", NULL}, key, value, key2, value2);
}

static lz_context_t *server_context(void) { return context_with("security.plain_users_file", users_file(), NULL, NULL); }

static lz_context_t *user_context(const char *user, const char *password) {
    return context_with("security.plain_username", user, "security.plain_password", password);
}

// delivered: one frame pushed by user with password to pull arrives within timeout_ms.
static bool delivered(const char *user, const char *password, lz_pull_t *pull, int timeout_ms) {
    lz_context_t *ctx = user_context(user, password);
    bool got = lz_test_delivered(ctx, pull, timeout_ms);
    lz_context_destroy(&ctx);
    return got;
}

// whoami answers with the PLAIN user name the handler sees, and checks it is no CURVE key.
static int whoami(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    LZ_CHECK(lz_message_peer_key(request) == NULL);
    const char *user = lz_message_peer_user(request);
    *reply = lz_value_string(user ? user : "(none)");
    return LZ_OK;
}

// request_as: one whoami request as user; the reply's name goes into got.
// An admitted request may take a while on a loaded machine (a password
// hash under the sanitizers): it gets a long wait, a refused one a short
// one (it never answers).
static int request_as(const char *user, const char *password, const char *endpoint, char *got, size_t size,
                      bool admitted) {
    lz_context_t *ctx = user_context(user, password);
    lz_client_t *c = lz_client_new(ctx, endpoint);
    LZ_CHECK(c != NULL);
    lz_value_t *reply = NULL;
    int rc = lz_client_request(c, "whoami", NULL, &reply, admitted ? 5000 * LZ_TEST_SLOWDOWN : 600);
    snprintf(got, size, "%s", rc == LZ_OK ? lz_value_get_string(reply, NULL) : "");
    lz_value_destroy(&reply);
    lz_client_destroy(&c);
    lz_context_destroy(&ctx);
    return rc;
}

LZ_TEST(right_password_gets_in_and_the_handler_sees_the_user) {
    write_users(users_file(), (const char *const[]){"alice", "wonderland", "bob", "builder", NULL}, NULL);
    lz_context_t *sctx = server_context();
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(sctx), lz_test_log_capture, &log), LZ_OK);
    char ep[256];
    const char *endpoints[] = {"tcp://127.0.0.1:*", lz_test_ipc_endpoint(ep, sizeof ep)};
    for (size_t i = 0; i < 2; i++) {
        lz_server_t *srv = lz_server_new(sctx, endpoints[i]);
        LZ_CHECK_INT(lz_server_on(srv, "whoami", whoami, NULL), LZ_OK);
        LZ_CHECK_INT(lz_server_start(srv), LZ_OK);
        const char *endpoint = lz_node_endpoint(lz_server_node(srv));
        char got[64];
        LZ_CHECK_INT(request_as("alice", "wonderland", endpoint, got, sizeof got, true), LZ_OK);
        LZ_CHECK_STR(got, "alice");
        LZ_CHECK_INT(request_as("bob", "builder", endpoint, got, sizeof got, true), LZ_OK);
        LZ_CHECK_STR(got, "bob");
        LZ_CHECK_INT(lz_test_handshake_failures(lz_server_node(srv)), 0);
        // A wrong password and an unknown user: no reply, and the same refusal.
        LZ_CHECK_INT(request_as("alice", "wonderlanD", endpoint, got, sizeof got, false), LZ_ETIMEOUT);
        LZ_CHECK_INT(request_as("mallory", "wonderland", endpoint, got, sizeof got, false), LZ_ETIMEOUT);
        LZ_CHECK_INT(request_as("", "", endpoint, got, sizeof got, false), LZ_ETIMEOUT); // no PLAIN at all
        LZ_TEST_WAIT_UNTIL(lz_test_handshake_failures(lz_server_node(srv)) >= 3, 2000);
        LZ_CHECK(lz_test_handshake_failures(lz_server_node(srv)) >= 3);
        lz_server_destroy(&srv);
    }
    // Each refused client tried again as its socket was rebuilt: at least one refusal each per endpoint.
    LZ_CHECK_INT(lz_test_logged(&log, "INFO audit: admitted peer 127.0.0.1 mechanism PLAIN user alice"), 1);
    LZ_CHECK_INT(lz_test_logged(&log, "INFO audit: admitted peer"), 4);
    LZ_CHECK(lz_test_logged(&log, "mechanism PLAIN user alice: invalid username or password") >= 2);
    LZ_CHECK(lz_test_logged(&log, "mechanism PLAIN user mallory: invalid username or password") >= 2);
    LZ_CHECK_INT(lz_test_logged(&log, "wonderland"), 0); // never a password
    LZ_CHECK_INT(lz_test_logged(&log, "in clear"), 0);   // loopback and ipc: no exposure warning
    lz_context_destroy(&sctx);
}

LZ_TEST(reload_drops_a_user) {
    write_users(users_file(), (const char *const[]){"alice", "wonderland", "bob", "builder", NULL}, NULL);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0");
    LZ_CHECK_INT(lz_config_set(cfg, "security.plain_users_file", users_file()), LZ_OK);
    lz_context_t *sctx = lz_context_new(cfg);
    LZ_CHECK(sctx != NULL);
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK(delivered("bob", "builder", pull, 5000));
    // bob leaves the file; the same configuration reloaded reads it again.
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, NULL);
    LZ_CHECK_INT(lz_context_reload(sctx, cfg), LZ_OK);
    LZ_CHECK(!delivered("bob", "builder", pull, 400));
    LZ_CHECK(delivered("alice", "wonderland", pull, 5000));
    // A users file gone bad is refused whole: the policy in force stays.
    write_users(users_file(), NULL, "carol:not-a-hash\n");
    LZ_CHECK_INT(lz_context_reload(sctx, cfg), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), ":3: not a crypt(3) hash") != NULL);
    LZ_CHECK(delivered("alice", "wonderland", pull, 5000));
    lz_pull_destroy(&pull);
    lz_config_destroy(&cfg);
    lz_context_destroy(&sctx);
}

// refused_file: a context on a users file holding text fails naming want.
static void refused_file(const char *text, const char *want) {
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, text);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0");
    LZ_CHECK_INT(lz_config_set(cfg, "security.plain_users_file", users_file()), LZ_OK);
    lz_context_t *ctx = lz_context_new(cfg);
    LZ_CHECK(ctx == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    if (!strstr(lz_last_error(), want)) fprintf(stderr, "want '%s' in: %s\n", want, lz_last_error());
    LZ_CHECK(strstr(lz_last_error(), want) != NULL);
    LZ_CHECK(strstr(lz_last_error(), "hunter2") == NULL); // a line is never shown
    lz_context_destroy(&ctx);
    lz_config_destroy(&cfg);
}

LZ_TEST(malformed_users_files_are_refused) {
    refused_file("bob hunter2\n", ":4: expected user:hash");
    refused_file("bob:hunter2\n", ":4: not a crypt(3) hash");
    refused_file("\n  # fine\nbob:abJnggxhB/yWI\n", ":6: not a crypt(3) hash"); // DES, and no '$'
    refused_file("bob:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0\n", ":4: not a crypt(3) hash"); // MD5: legacy
    refused_file("bob:$y$hunter2\n", ":4: not a crypt(3) hash");
    refused_file(":$y$j9T$T4Li4axkXJCEwELaqyFdG1$7x95Mh7VLuCJ5P1MP/UBZW8p0ooHTlDPEMthfl2cba5\n", ":4: expected a user name");
    refused_file("alice:$y$j9T$T4Li4axkXJCEwELaqyFdG1$7x95Mh7VLuCJ5P1MP/UBZW8p0ooHTlDPEMthfl2cba5\n", ":4: user listed twice");
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "security.plain_users_file=/nonexistent/lz-users");
    LZ_CHECK(lz_context_new(cfg) == NULL);
    LZ_CHECK(strstr(lz_last_error(), "security.plain_users_file /nonexistent/lz-users: No such file") != NULL);
    lz_config_destroy(&cfg);

    // Comments, blank lines, CRLF endings and a trailing blank are fine, and a sha512crypt cost.
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL},
                "# bob left\r\n\r\n   \ncarol:$y$j9T$T4Li4axkXJCEwELaqyFdG1$7x95Mh7VLuCJ5P1MP/UBZW8p0ooHTlDPEMthfl2cba5 \r\n"
                "dave:$6$rounds=6000$saltsalt$uOGE/pDXcnehpI3uVHkqE1RIgukoy.b0H6a5LQNFtitOBZMX9.BUyV2BvBpOXIb.cjQEmtsD1tTJw7ElkGkVT/\n");
    lz_context_t *ctx = server_context();
    lz_context_destroy(&ctx);
}

// A user name starting with '#' would make a users file's comment: lz
// passwd refuses it, and a long line is read whole.
LZ_TEST(users_file_lines_and_names) {
    char command[512];
    snprintf(command, sizeof command, "printf 'pw\\n' | %s/lz passwd '#admin' >/dev/null 2>&1", LZ_BINARY_DIR);
    int status = system(command);
    LZ_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    char padding[1100];
    memset(padding, 'x', sizeof padding - 1);
    padding[sizeof padding - 1] = '\0';
    char text[1200];
    snprintf(text, sizeof text, "# %s\n", padding); // its tail, read as a line of its own, would be refused
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, text);
    lz_context_t *ctx = server_context();
    LZ_CHECK(ctx != NULL);
    lz_context_destroy(&ctx);
}

// raw_push: a libzmq PUSH, a PLAIN client named user whose password is
// size bytes (ZMTP carries any byte, a NUL too), gets a frame to pull
// within timeout_ms.
static bool raw_push(const char *user, size_t user_size, const char *password, size_t size, lz_pull_t *pull,
                     int timeout_ms) {
    void *zctx = zmq_ctx_new();
    void *push = lz_test_plain_socket(zctx, ZMQ_PUSH, -1, NULL);
    zmq_setsockopt(push, ZMQ_PLAIN_USERNAME, user, user_size);
    zmq_setsockopt(push, ZMQ_PLAIN_PASSWORD, password, size);
    LZ_CHECK_INT(zmq_connect(push, lz_node_endpoint(lz_pull_node(pull))), 0);
    zmq_send(push, "hi", 2, ZMQ_DONTWAIT);
    char buf[8];
    size_t got = sizeof buf;
    bool delivered = lz_pull_recv_bytes(pull, buf, &got, timeout_ms) == LZ_OK;
    zmq_close(push);
    zmq_ctx_term(zctx);
    return delivered;
}

// crypt(3) reads a password up to its first NUL: one holding a NUL is
// refused, not checked as its head.
LZ_TEST(a_password_holding_a_nul_is_refused) {
    write_users(users_file(), (const char *const[]){"bob", "secret", NULL}, NULL);
    lz_context_t *sctx = server_context();
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "raw"), LZ_OK);
    LZ_CHECK(raw_push("bob", 3, "secret", 6, pull, 5000 * LZ_TEST_SLOWDOWN));
    LZ_CHECK(!raw_push("bob", 3, "secret\0xx", 9, pull, 600));
    LZ_TEST_WAIT_UNTIL(lz_test_handshake_failures(lz_pull_node(pull)) > 0, 2000);
    LZ_CHECK(lz_test_handshake_failures(lz_pull_node(pull)) > 0);
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);
}

LZ_TEST(curve_beside_plain_is_refused) {
    lz_test_keypair_t k = lz_test_new_keypair();
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, NULL);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "security.plain_users_file=/nonexistent");
    LZ_CHECK_INT(lz_config_set(cfg, "security.plain_users_file", users_file()), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", k.secret_key), LZ_OK);
    LZ_CHECK(lz_context_new(cfg) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "security.plain_users_file and security.curve_secret_key are both set") != NULL);
    lz_config_destroy(&cfg);

    cfg = LZ_TEST_CONFIG("zmq.linger=0", "security.plain_username=alice", "security.plain_password=wonderland");
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_server_key", k.public_key), LZ_OK);
    LZ_CHECK(lz_context_new(cfg) == NULL);
    LZ_CHECK(strstr(lz_last_error(), "security.plain_username and security.curve_server_key are both set") != NULL);
    // A CURVE server with PLAIN clients in the same process is fine: different sides.
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_server_key", ""), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", k.secret_key), LZ_OK);
    lz_context_t *ctx = lz_context_new(cfg);
    LZ_CHECK(ctx != NULL);
    lz_context_destroy(&ctx);
    lz_config_destroy(&cfg);

    cfg = LZ_TEST_CONFIG("zmq.linger=0", "security.plain_password=wonderland");
    LZ_CHECK(lz_context_new(cfg) == NULL);
    LZ_CHECK(strstr(lz_last_error(), "security.plain_password is set without security.plain_username") != NULL);
    // A bad password is never echoed; a bad name is.
    LZ_CHECK_INT(lz_config_set(cfg, "security.plain_password", "wonder\nland"), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "value not shown") != NULL && strstr(lz_last_error(), "wonder") == NULL);
    char longer[300];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    LZ_CHECK_INT(lz_config_set(cfg, "security.plain_username", longer), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "at most 255 bytes") != NULL);
    lz_config_destroy(&cfg);
}

LZ_TEST(a_nodes_side_and_the_clear_text_warning) {
    static const struct {
        const char *url;
        bool exposed;
    } urls[] = {
        {"tcp://127.0.0.1:5555", false}, {"tcp://127.9.9.9:*", false}, {"tcp://[::1]:5555", false},
        {"tcp://lo:5555", false},        {"ipc:///tmp/x", false},      {"inproc://x", false},
        {"tcp://*:5555", true},          {"tcp://0.0.0.0:5555", true}, {"tcp://10.1.2.3:5555", true},
        {"tcp://[::]:5555", true},       {"tcp://eth0:5555", true},    {"tcp://[::ffff:127.0.0.1]:1", false},
        // The loopback's names in hosts files, which said "exposed" once.
        {"tcp://localhost:5555", false}, {"tcp://LocalHost:1", false}, {"tcp://ip6-localhost:5555", false},
        {"tcp://ip6-loopback:1", false}, {"tcp://localhost6:1", false}, {"tcp://127.255.255.254:1", false},
        {"tcp://localhost.example.com:1", true}, {"tcp://example.com:5555", true},
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        if (lz__security_plain_exposed(urls[i].url) != urls[i].exposed) fprintf(stderr, "%s\n", urls[i].url);
        LZ_CHECK(lz__security_plain_exposed(urls[i].url) == urls[i].exposed);
    }
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, NULL);
    lz_context_t *sctx = server_context();
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(sctx), lz_test_log_capture, &log), LZ_OK);
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_test_logged(&log, "in clear"), 0);
    // libzmq binds no host name (the URL table above is what tells localhost from a network).
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://localhost:*"), LZ_ECONNECTION);
    LZ_CHECK_INT(lz_test_logged(&log, "in clear"), 0);
    LZ_CHECK_INT(lz_node_connect(lz_pull_node(pull), "tcp://127.0.0.1:1"), LZ_ESTATE);
    LZ_CHECK(strstr(lz_last_error(), "PLAIN server") != NULL);
    // Plain by a first connect (no PLAIN client here), it would bind with no password asked.
    lz_pull_t *connected = lz_pull_new(sctx, ">tcp://127.0.0.1:1");
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(connected), "tcp://127.0.0.1:*"), LZ_ESTATE);
    LZ_CHECK(strstr(lz_last_error(), "use another node") != NULL);
    lz_pull_destroy(&connected);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://0.0.0.0:*"), LZ_OK);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://0.0.0.0:*"), LZ_OK);
    const char *warning = "WARNING security: pull: PLAIN server bound on tcp://0.0.0.0:*: user names and "
                          "passwords cross the network in clear";
    LZ_CHECK_INT(lz_test_logged(&log, warning), 1); // once per context
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);

    lz_context_t *cctx = user_context("alice", "wonderland");
    lz_push_t *push = lz_push_new(cctx, "tcp://127.0.0.1:1");
    LZ_CHECK_INT(lz_node_bind(lz_push_node(push), "tcp://127.0.0.1:*"), LZ_ESTATE);
    LZ_CHECK(strstr(lz_last_error(), "PLAIN client") != NULL);
    lz_push_destroy(&push);
    lz_context_destroy(&cctx);
}

// sha512crypt_ms: how long checking a sha512crypt hash of rounds takes here.
static int64_t sha512crypt_ms(unsigned long rounds) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *data = calloc(1, sizeof *data);
    LZ_CHECK(data && crypt_gensalt_rn("$6$", rounds, NULL, 0, salt, sizeof salt) != NULL);
    int64_t start = lz_test_now_ms();
    LZ_CHECK(data && crypt_r("wonderland", salt, data) != NULL);
    free(data);
    return lz_test_now_ms() - start;
}

// write_slow_users writes alice's line with a sha512crypt hash whose check
// takes about target_ms on this machine; returns what one check took.
static int64_t write_slow_users(int target_ms) {
    const unsigned long probe = 100000;
    int64_t probe_ms = sha512crypt_ms(probe);
    unsigned long rounds = probe * (unsigned long)target_ms / (unsigned long)(probe_ms > 0 ? probe_ms : 1);
    write_hashed_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, NULL, "$6$", rounds);
    return sha512crypt_ms(rounds);
}

// probe_curve_ms: how long a new CURVE server node of sctx takes to be
// made, admit a CURVE pusher (the ZAP handler judges it) and get its frame.
static int64_t probe_curve_ms(lz_context_t *sctx, int timeout_ms) {
    lz_test_keypair_t server = lz_test_new_keypair();
    lz_context_t *cctx = context_with(NULL, NULL, NULL, NULL);
    int64_t start = lz_test_now_ms();
    lz_pull_t *pull = lz_pull_new(sctx, NULL); // a monitor thread request
    LZ_CHECK_INT(lz_node_set_curve_keys(lz_pull_node(pull), server.secret_key, NULL), LZ_OK);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*"), LZ_OK);
    lz_push_t *push = lz_push_new(cctx, NULL);
    LZ_CHECK_INT(lz_node_set_curve_keys(lz_push_node(push), NULL, server.public_key), LZ_OK);
    LZ_CHECK_INT(lz_node_connect(lz_push_node(push), lz_node_endpoint(lz_pull_node(pull))), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(push, "x", 1), LZ_OK);
    char buf[8];
    size_t size = sizeof buf;
    LZ_CHECK_INT(lz_pull_recv_bytes(pull, buf, &size, timeout_ms), LZ_OK);
    int64_t took = lz_test_now_ms() - start;
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&cctx);
    return took;
}

// Six PLAIN clients log in at once, each check a slow hash. The hashes run
// on the ZAP handler's pool, in parallel: meanwhile the monitor thread
// makes a new node and the ZAP thread admits a CURVE peer at once, where
// one thread serving both used to make them wait for the hashes before.
LZ_TEST(slow_plain_logins_hold_up_no_other_handshake) {
    enum { CLIENTS = 6 };
    int64_t hash_ms = write_slow_users(400 * LZ_TEST_SLOWDOWN);
    lz_context_t *sctx = server_context();
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "raw"), LZ_OK);
    lz_context_t *cctx = user_context("alice", "wonderland");
    lz_push_t *pushes[CLIENTS];
    int64_t start = lz_test_now_ms();
    for (int i = 0; i < CLIENTS; i++) pushes[i] = lz_push_new(cctx, lz_node_endpoint(lz_pull_node(pull)));
    lz_test_sleep_ms((int)(hash_ms / 2)); // the first hashes are under way
    int64_t probe_ms = probe_curve_ms(sctx, (int)(hash_ms * CLIENTS * 2));
    int admitted = 0;
    for (; admitted < CLIENTS; admitted++) {
        // A send waits for its connection (zmq.immediate): for its login.
        LZ_CHECK_INT(lz_push_send_bytes(pushes[admitted], "secret", 6), LZ_OK);
        char buf[8];
        size_t size = sizeof buf;
        if (lz_pull_recv_bytes(pull, buf, &size, (int)(hash_ms * CLIENTS * 2) + 5000 * LZ_TEST_SLOWDOWN) != LZ_OK) break;
    }
    int64_t all_ms = lz_test_now_ms() - start;
    printf("  one hash %lld ms; %d PLAIN logins in %lld ms; a CURVE node made and admitted meanwhile in %lld ms\n",
           (long long)hash_ms, admitted, (long long)all_ms, (long long)probe_ms);
    LZ_CHECK_INT(admitted, CLIENTS);
    // Under valgrind, which runs one thread at a time, nothing overlaps.
    if (!lz_test_under_valgrind()) LZ_CHECK(probe_ms < hash_ms / 2);
    LZ_CHECK_INT(lz_test_handshake_failures(lz_pull_node(pull)), 0);
    for (int i = 0; i < CLIENTS; i++) lz_push_destroy(&pushes[i]);
    lz_pull_destroy(&pull);
    lz_context_destroy(&cctx);
    lz_context_destroy(&sctx);
}

// A context destroyed while its ZAP workers hash ends once the hashes
// under way do, freeing every request (the sanitizer builds check).
LZ_TEST(destroying_a_context_mid_hash_ends_cleanly) {
    int64_t hash_ms = write_slow_users(300 * LZ_TEST_SLOWDOWN);
    lz_context_t *sctx = server_context();
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    lz_context_t *cctx = user_context("alice", "wonderland");
    lz_push_t *pushes[3];
    for (int i = 0; i < 3; i++) pushes[i] = lz_push_new(cctx, lz_node_endpoint(lz_pull_node(pull)));
    lz_test_sleep_ms((int)(hash_ms / 3)); // two hashing, one waiting
    int64_t start = lz_test_now_ms();
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);
    int64_t took = lz_test_now_ms() - start;
    LZ_CHECK(took < hash_ms + 2000 * LZ_TEST_SLOWDOWN);
    for (int i = 0; i < 3; i++) lz_push_destroy(&pushes[i]);
    lz_context_destroy(&cctx);
}

LZ_TEST(pyzmq_plain_client_interop) {
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, NULL);
    lz_context_t *sctx = server_context();
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "raw"), LZ_OK);
    pid_t pid = lz_test_spawn_python("plain_push.py", lz_node_endpoint(lz_pull_node(pull)), "alice:wonderland");
    lz_message_t *msg = lz_pull_recv(pull, 10000);
    LZ_CHECK(msg != NULL);
    size_t size = 0;
    const void *payload = lz_message_payload(msg, &size);
    LZ_CHECK(size == 16 && payload && memcmp(payload, "hello over PLAIN", 16) == 0);
    LZ_CHECK_STR(lz_message_peer_user(msg), "alice");
    lz_message_destroy(&msg);
    LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);

    // A wrong password gets nothing through.
    lz_test_python_push_refused("plain_push.py", pull, "alice:looking-glass");
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);
}

// Hashes of a method crypt(3) knows, but with settings it cannot use (a
// cost out of range, a salt too long, a round count too low or past any
// integer), would match no password: refused when read.
// Hashes made here by each method at its usual cost load.
LZ_TEST(hashes_crypt_cannot_check_are_refused) {
    static const char *const unusable[] = {
        "$6$rounds=999999999999999999999$salt$x", "$2b$99$abcdefghijklmnopqrstuu$x", "$y$$$x", "$2b$04$$x",
        "$6$rounds=1000$saltsaltsaltsaltsaltsalt$x", "$6$rounds=10$salt$x", "$2b$04$short$x",
    };
    for (size_t i = 0; i < sizeof unusable / sizeof unusable[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "bob:%s\n", unusable[i]);
        refused_file(line, ":4: not a crypt(3) hash");
    }
    static const char *const methods[] = {"$y$", "$6$", "$2b$"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        write_hashed_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, NULL, methods[i], 0);
        lz_context_t *ctx = server_context();
        LZ_CHECK(ctx != NULL);
        lz_context_destroy(&ctx);
    }
}

// The audit names a PLAIN user as the peer sent it, whole (escaped): a
// name holding a NUL is not shown as its head. A peer refused by its
// address is named too.
LZ_TEST(the_audit_names_the_user_whole) {
    write_users(users_file(), (const char *const[]){"alice", "wonderland", NULL}, NULL);
    lz_context_t *sctx = server_context();
    lz_test_log_t log = LZ_TEST_LOG_INIT;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(sctx), lz_test_log_capture, &log), LZ_OK);
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "raw"), LZ_OK);
    LZ_CHECK(!raw_push("alice\0-attacker", 15, "wonderland", 10, pull, 600));
    const char *refused = "WARNING audit: refused peer 127.0.0.1 mechanism PLAIN user alice\\x00-attacker: invalid";
    LZ_TEST_WAIT_UNTIL(lz_test_logged(&log, refused) > 0, 2000);
    LZ_CHECK(lz_test_logged(&log, refused) > 0);
    LZ_CHECK_INT(lz_test_logged(&log, "user alice:"), 0);
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);

    sctx = context_with("security.plain_users_file", users_file(), "security.allow_addresses", "10.0.0.0/8");
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(sctx), lz_test_log_capture, &log), LZ_OK);
    pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK(!delivered("alice", "wonderland", pull, 600));
    refused = "refused peer 127.0.0.1 mechanism PLAIN user alice: address not allowed";
    LZ_TEST_WAIT_UNTIL(lz_test_logged(&log, refused) > 0, 2000);
    LZ_CHECK(lz_test_logged(&log, refused) > 0);
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);
}

// A user name of a CURVE key's form is a name: lz_message_peer_key is for
// CURVE server nodes only (whoami checks it gives NULL).
LZ_TEST(a_user_named_like_a_key_has_no_key) {
    const char *name = "0000000000000000000000000000000000000000"; // decodes as Z85
    write_users(users_file(), (const char *const[]){name, "secret", NULL}, NULL);
    lz_context_t *sctx = server_context();
    lz_server_t *srv = lz_server_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(srv, "whoami", whoami, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_start(srv), LZ_OK);
    char got[64];
    LZ_CHECK_INT(request_as(name, "secret", lz_node_endpoint(lz_server_node(srv)), got, sizeof got, true), LZ_OK);
    LZ_CHECK_STR(got, name);
    lz_server_destroy(&srv);
    lz_context_destroy(&sctx);
}

// plain_status asks ctx's ZAP handler about a PLAIN login as libzmq asks
// (RFC 27, after the empty frame a REQ would send), from a DEALER on its
// inproc endpoint; the answer's status goes into status.
static void plain_status(lz_context_t *ctx, const char *user, const char *password, char status[64]) {
    void *dealer = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_DEALER, 10000 * LZ_TEST_SLOWDOWN,
                                        "inproc://zeromq.zap.01");
    const char *frames[] = {"", "1.0", "7", "liberzmq", "127.0.0.1", "", "PLAIN", user, password};
    size_t count = sizeof frames / sizeof frames[0];
    for (size_t i = 0; i < count; i++) zmq_send(dealer, frames[i], strlen(frames[i]), i + 1 < count ? ZMQ_SNDMORE : 0);
    status[0] = '\0';
    int more = 1;
    for (size_t i = 0; more; i++) {
        char frame[64] = "";
        int got = zmq_recv(dealer, frame, sizeof frame - 1, 0);
        size_t more_size = sizeof more;
        more = got >= 0 && zmq_getsockopt(dealer, ZMQ_RCVMORE, &more, &more_size) == 0 && more;
        if (got >= 0 && i == 3) memcpy(status, frame, sizeof frame); // "", "1.0", the request id, the status
    }
    zmq_close(dealer);
}

// checked_against: the setting of the one hash a PLAIN login of user with
// a wrong password was checked against (refused, 400), into setting.
static void checked_against(lz_context_t *ctx, const char *user, char *setting, size_t size) {
    char status[64];
    crypt_record(true);
    plain_status(ctx, user, "guess", status);
    crypt_record(false);
    LZ_CHECK_STR(status, "400");
    pthread_mutex_lock(&crypt_seen_lock);
    LZ_CHECK_INT(crypt_seen_count, 1);
    snprintf(setting, size, "%s", crypt_seen_count ? crypt_seen[0] : "");
    pthread_mutex_unlock(&crypt_seen_lock);
}

// An unknown name is checked against the costliest user's hash, whichever
// comes first by name: aaron's sha512crypt of 1000 rounds (about 1 ms)
// beside zoe's yescrypt (tens of ms) would tell known names from unknown
// ones by the answer's time. Users of different costs remain told apart
// from each other (docs/security.md).
LZ_TEST(an_unknown_name_costs_the_costliest_users_check) {
    FILE *f = fopen(users_file(), "w");
    LZ_CHECK(f != NULL);
    if (!f) return;
    user_line(f, "aaron", "a-pass", "$6$", 1000);
    user_line(f, "zoe", "z-pass", "$y$", 0);
    fclose(f);
    lz_context_t *sctx = server_context();
    LZ_CHECK(sctx != NULL);
    char known[CRYPT_OUTPUT_SIZE], unknown[CRYPT_OUTPUT_SIZE], cheap[CRYPT_OUTPUT_SIZE];
    checked_against(sctx, "zoe", known, sizeof known);
    checked_against(sctx, "aaron", cheap, sizeof cheap);
    checked_against(sctx, "nosuchuser", unknown, sizeof unknown);
    LZ_CHECK(strncmp(known, "$y$", 3) == 0 && strncmp(cheap, "$6$rounds=1000$", 15) == 0);
    LZ_CHECK_STR(unknown, known);
    lz_context_destroy(&sctx);
}

LZ_TEST_MAIN(LZ_CASE(right_password_gets_in_and_the_handler_sees_the_user), LZ_CASE(reload_drops_a_user),
             LZ_CASE(malformed_users_files_are_refused), LZ_CASE(users_file_lines_and_names),
             LZ_CASE(a_password_holding_a_nul_is_refused), LZ_CASE(curve_beside_plain_is_refused),
             LZ_CASE(a_nodes_side_and_the_clear_text_warning), LZ_CASE(slow_plain_logins_hold_up_no_other_handshake),
             LZ_CASE(destroying_a_context_mid_hash_ends_cleanly),
             LZ_CASE(pyzmq_plain_client_interop), LZ_CASE(hashes_crypt_cannot_check_are_refused),
             LZ_CASE(the_audit_names_the_user_whole), LZ_CASE(a_user_named_like_a_key_has_no_key),
             LZ_CASE(an_unknown_name_costs_the_costliest_users_check))
