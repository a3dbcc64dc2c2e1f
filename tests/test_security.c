/* Security: CURVE keys, encrypted push/pull and request/reply, refusal of
 * plain and wrongly keyed peers, authorized keys and address rules through
 * the ZAP handler, the audit log, a node's side and keys (a failed first
 * endpoint settles neither), and a pyzmq CURVE client. Every refusal is seen twice: nothing arrives, and the server's
 * handshake_failures counts it. Peer addresses no connection here can have
 * (link-local, malformed) are put to the ZAP handler directly. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lz_test.h"
#include "core/node.h"
#include "liberzmq/pushpull.h"
#include "liberzmq/reqrep.h"
#include "liberzmq/security.h"

static lz_context_t *context_with(const char *key, const char *value, const char *key2, const char *value2) {
    return lz_test_context_with((const char *const[]){"zmq.linger=0", "zmq.request_timeout=400", "zmq.request_retries=0", NULL}, key, value, key2, value2);
}

static lz_context_t *server_context(const lz_test_keypair_t *server) {
    return context_with("security.curve_secret_key", server->secret_key, NULL, NULL);
}

static lz_context_t *client_context(const char *server_public_key) {
    return context_with("security.curve_server_key", server_public_key, NULL, NULL);
}

LZ_TEST(keys_are_z85_pairs) {
    LZ_CHECK(lz_curve_available());
    lz_test_keypair_t k = lz_test_new_keypair();
    LZ_CHECK_INT(strlen(k.public_key), 40);
    LZ_CHECK_INT(strlen(k.secret_key), 40);
    char derived[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_curve_public_key(derived, k.secret_key), LZ_OK);
    LZ_CHECK_STR(derived, k.public_key);
    // libzmq's test vector (zmq_curve(7)).
    LZ_CHECK_INT(lz_curve_public_key(derived, "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"), LZ_OK);
    LZ_CHECK_STR(derived, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    LZ_CHECK_INT(lz_curve_public_key(derived, "too short"), LZ_EINVAL);
    LZ_CHECK_INT(lz_curve_public_key(derived, "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~"), LZ_EINVAL);
    LZ_CHECK_INT(lz_curve_keypair(NULL, derived), LZ_EINVAL);
    lz_test_keypair_t other = lz_test_new_keypair();
    LZ_CHECK(strcmp(other.secret_key, k.secret_key) != 0);
}

LZ_TEST(config_checks_security_keys) {
    lz_config_t *cfg = lz_config_new();
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", "not a key"), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "security.curve_secret_key") != NULL);
    LZ_CHECK(strstr(lz_last_error(), "not a key") == NULL); // a secret is never echoed
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_server_key", "not a key"), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "'not a key'") != NULL); // a public one is
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys", "abc,def"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(cfg, "security.allow_addresses", "10.0.0.0/33"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(cfg, "security.deny_addresses", "example.com"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set(cfg, "security.allow_addresses", "10.0.0.0/8, ::1 192.168.1.7,fd00::/8"), LZ_OK);
    lz_test_keypair_t k = lz_test_new_keypair();
    char list[128];
    snprintf(list, sizeof list, "%s, %s", k.public_key, k.public_key);
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys", list), LZ_OK);
    // Only a CURVE server learns its clients' keys.
    lz_context_t *ctx = lz_context_new(cfg);
    LZ_CHECK(ctx == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "curve_secret_key") != NULL);
    lz_config_destroy(&cfg);

    // The environment's nested form, as for every section.
    setenv("LIBERZMQ_SECURITY__CURVE_SERVER_KEY", k.public_key, 1);
    cfg = lz_config_new();
    LZ_CHECK_INT(lz_config_load_env(cfg), LZ_OK);
    const char *got = NULL;
    LZ_CHECK_INT(lz_config_get_string(cfg, "security.curve_server_key", &got), LZ_OK);
    LZ_CHECK_STR(got, k.public_key);
    unsetenv("LIBERZMQ_SECURITY__CURVE_SERVER_KEY");
    lz_config_destroy(&cfg);
}

LZ_TEST(authorized_keys_file_is_read_and_checked) {
    lz_test_keypair_t server = lz_test_new_keypair(), a = lz_test_new_keypair();
    char path[] = "/tmp/lz-test-keys-XXXXXX";
    int fd = mkstemp(path);
    LZ_CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    // Z85 has '#': only a line's first '#' starts a comment.
    fprintf(f, "# clients\n\n#\n  %s  alice's laptop # and a comment\n%s\n", a.public_key,
            "0000#0000#0000#0000#0000#0000#0000#0000#");
    fclose(f);
    lz_context_t *ctx = context_with("security.curve_secret_key", server.secret_key,
                                     "security.authorized_keys_file", path);
    lz_context_destroy(&ctx);

    f = fopen(path, "a");
    fprintf(f, "%s\nnot-a-key\n", a.public_key);
    fclose(f);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0");
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", server.secret_key), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys_file", path), LZ_OK);
    LZ_CHECK(lz_context_new(cfg) == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), ":7: not a 40-character Z85 key: 'not-a-key'") != NULL);
    unlink(path);
    LZ_CHECK(lz_context_new(cfg) == NULL); // now missing
    LZ_CHECK(strstr(lz_last_error(), "No such file") != NULL);
    lz_config_destroy(&cfg);
}

/* ---- the ZAP handler, asked directly ---------------------------------------- */

// zap_admits asks ctx's ZAP handler about a peer at address, as libzmq asks
// (RFC 27, after the empty frame a REQ would send), from a DEALER on its
// inproc endpoint: credential (size bytes) is a CURVE key, or NULL for a
// NULL peer. Returns whether the answer is 200.
static bool zap_admits(lz_context_t *ctx, const char *address, const void *credential, size_t size) {
    void *dealer = lz_test_plain_socket(lz_context_zmq(ctx), ZMQ_DEALER, 3000, "inproc://zeromq.zap.01");
    const char *frames[] = {"", "1.0", "7", "liberzmq", address, "", credential ? "CURVE" : "NULL"};
    size_t count = sizeof frames / sizeof frames[0];
    for (size_t i = 0; i < count; i++)
        zmq_send(dealer, frames[i], strlen(frames[i]), i + 1 < count || credential ? ZMQ_SNDMORE : 0);
    if (credential) zmq_send(dealer, credential, size, 0);
    char reply[4][64] = {{0}};
    int more = 1;
    for (size_t i = 0; more; i++) {
        char frame[64] = "";
        int got = zmq_recv(dealer, frame, sizeof frame - 1, 0);
        size_t more_size = sizeof more;
        more = got >= 0 && zmq_getsockopt(dealer, ZMQ_RCVMORE, &more, &more_size) == 0 && more;
        if (got >= 0 && i < 4) memcpy(reply[i], frame, sizeof frame);
    }
    zmq_close(dealer);
    LZ_CHECK_STR(reply[2], "7"); // "", "1.0", the request id, the status
    return strcmp(reply[3], "200") == 0;
}

// Every address libzmq can give is judged: an IPv6 one with its interface
// ("%eth0", link-local peers) by its address, ipc's ("localhost:uid:gid:pid")
// never, and any other (no IP, none at all, garbage) refused while an
// address rule is set.
LZ_TEST(address_rules_judge_every_peer_address) {
    char huge[400];
    memset(huge, '1', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    lz_context_t *allow = context_with("security.allow_addresses", "127.0.0.1, fe80::5", NULL, NULL);
    LZ_CHECK(zap_admits(allow, "127.0.0.1", NULL, 0));
    LZ_CHECK(zap_admits(allow, "fe80::5%eth0", NULL, 0));
    LZ_CHECK(!zap_admits(allow, "fe80::1%eth0", NULL, 0));
    LZ_CHECK(zap_admits(allow, "localhost:0:0:4242", NULL, 0));
    LZ_CHECK(!zap_admits(allow, "", NULL, 0));
    LZ_CHECK(!zap_admits(allow, "127.0.0.1%lo", NULL, 0)); // a scope is IPv6's
    LZ_CHECK(!zap_admits(allow, "localhost.example.com", NULL, 0));
    LZ_CHECK(!zap_admits(allow, huge, NULL, 0));
    lz_context_t *deny = context_with("security.deny_addresses", "fe80::/10", NULL, NULL);
    LZ_CHECK(!zap_admits(deny, "fe80::1%eth0", NULL, 0));
    LZ_CHECK(!zap_admits(deny, "fe80::1%4294967295", NULL, 0));
    LZ_CHECK(zap_admits(deny, "10.1.2.3", NULL, 0));
    LZ_CHECK(zap_admits(deny, "localhost:1000:1000:1", NULL, 0));
    LZ_CHECK(!zap_admits(deny, "tipc-peer", NULL, 0));
    lz_context_t *audit = context_with("security.audit", "true", NULL, NULL); // no address rule: anything goes
    LZ_CHECK(zap_admits(audit, "", NULL, 0));
    LZ_CHECK(zap_admits(audit, "tipc-peer", NULL, 0));
    LZ_CHECK(!zap_admits(audit, huge, NULL, 0)); // no libzmq writes that: a forged request
    lz_context_destroy(&audit);
    lz_context_destroy(&deny);
    lz_context_destroy(&allow);
}

// A keys file's lines are read whole, however long: a key before a long
// comment stays one line, and a long comment ending in a key stays a comment.
LZ_TEST(long_lines_of_a_keys_file_are_read_whole) {
    lz_test_keypair_t server = lz_test_new_keypair(), a = lz_test_new_keypair(), revoked = lz_test_new_keypair();
    char path[] = "/tmp/lz-test-keys-XXXXXX";
    int fd = mkstemp(path);
    LZ_CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    char padding[1500];
    memset(padding, 'x', sizeof padding - 1);
    padding[sizeof padding - 1] = '\0';
    fprintf(f, "%s %s\n# %.*s%s\n", a.public_key, padding, 1021, padding, revoked.public_key);
    fclose(f);
    lz_context_t *ctx = context_with("security.curve_secret_key", server.secret_key,
                                     "security.authorized_keys_file", path);
    LZ_CHECK(ctx != NULL);
    uint8_t raw[32];
    LZ_CHECK(zmq_z85_decode(raw, a.public_key) != NULL);
    LZ_CHECK(ctx && zap_admits(ctx, "127.0.0.1", raw, sizeof raw));
    LZ_CHECK(zmq_z85_decode(raw, revoked.public_key) != NULL);
    LZ_CHECK(ctx && !zap_admits(ctx, "127.0.0.1", raw, sizeof raw));
    lz_context_destroy(&ctx);
    unlink(path);
}

LZ_TEST(curve_traffic_flows_and_plain_peers_are_refused) {
    lz_test_keypair_t server = lz_test_new_keypair();
    lz_context_t *sctx = server_context(&server), *cctx = client_context(server.public_key);
    lz_context_t *plain = context_with(NULL, NULL, NULL, NULL);
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK(pull != NULL);
    char shown[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_node_curve_public_key(lz_pull_node(pull), shown), LZ_OK);
    LZ_CHECK_STR(shown, server.public_key);
    LZ_CHECK(lz_test_delivered(cctx, pull, 5000));
    LZ_CHECK_INT(lz_test_handshake_failures(lz_pull_node(pull)), 0);
    // A peer without CURVE gets nowhere, and the server says why.
    LZ_CHECK(!lz_test_delivered(plain, pull, 300));
    LZ_TEST_WAIT_UNTIL(lz_test_handshake_failures(lz_pull_node(pull)) > 0, 2000);
    LZ_CHECK(lz_test_handshake_failures(lz_pull_node(pull)) > 0);
    lz_pull_destroy(&pull);
    lz_context_destroy(&plain);
    lz_context_destroy(&cctx);
    lz_context_destroy(&sctx);
}

LZ_TEST(wrong_server_key_is_refused) {
    lz_test_keypair_t server = lz_test_new_keypair(), impostor = lz_test_new_keypair();
    lz_context_t *sctx = server_context(&server), *cctx = client_context(impostor.public_key);
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK(!lz_test_delivered(cctx, pull, 300));
    LZ_TEST_WAIT_UNTIL(lz_test_handshake_failures(lz_pull_node(pull)) > 0, 2000);
    LZ_CHECK(lz_test_handshake_failures(lz_pull_node(pull)) > 0);
    lz_pull_destroy(&pull);
    lz_context_destroy(&cctx);
    lz_context_destroy(&sctx);
}

typedef struct {
    pthread_mutex_t lock;
    char records[4096];
} audit_log_t;

static void collect(lz_log_level_t level, const char *component, const char *message, void *arg) {
    audit_log_t *log = arg;
    if (strcmp(component, "audit") != 0) return;
    pthread_mutex_lock(&log->lock);
    size_t used = strlen(log->records);
    snprintf(log->records + used, sizeof log->records - used, "%s %s\n", level == LZ_LOG_INFO ? "I" : "W", message);
    pthread_mutex_unlock(&log->lock);
}

static bool audit_has(audit_log_t *log, const char *a, const char *b) {
    pthread_mutex_lock(&log->lock);
    const char *at = strstr(log->records, a);
    bool found = at && strstr(at, b) && strchr(at, '\n') > strstr(at, b);
    pthread_mutex_unlock(&log->lock);
    return found;
}


// request_as: one whoami request from a client with its own key pair.
// request_as asks whoami as client, waiting timeout_ms for the answer.
static int request_as(const lz_test_keypair_t *client, const lz_test_keypair_t *server, const char *endpoint,
                      int timeout_ms) {
    lz_context_t *ctx = context_with("security.curve_server_key", server->public_key, "security.curve_secret_key",
                                     client->secret_key);
    lz_client_t *c = lz_client_new(ctx, endpoint);
    LZ_CHECK(c != NULL);
    lz_value_t *reply = NULL;
    int rc = lz_client_request(c, "whoami", NULL, &reply, timeout_ms);
    if (rc == LZ_OK) LZ_CHECK_STR(lz_value_get_string(reply, NULL), client->public_key);
    lz_value_destroy(&reply);
    lz_client_destroy(&c);
    lz_context_destroy(&ctx);
    return rc;
}

LZ_TEST(authorized_keys_admit_refuse_and_audit) {
    lz_test_keypair_t server = lz_test_new_keypair(), alice = lz_test_new_keypair(), mallory = lz_test_new_keypair();
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "security.audit=true");
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", server.secret_key), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys", alice.public_key), LZ_OK);
    lz_context_t *sctx = lz_context_new(cfg);
    lz_config_destroy(&cfg);
    audit_log_t log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(sctx), collect, &log), LZ_OK);
    lz_server_t *srv = lz_server_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_server_on(srv, "whoami", lz_test_whoami, NULL), LZ_OK);
    LZ_CHECK_INT(lz_server_start(srv), LZ_OK);
    const char *endpoint = lz_node_endpoint(lz_server_node(srv));

    // An admitted handshake and request may take a while on a loaded machine
    // (the sanitizers); a refused one never answers, so its wait is short.
    LZ_CHECK_INT(request_as(&alice, &server, endpoint, 5000 * LZ_TEST_SLOWDOWN), LZ_OK);
    LZ_CHECK_INT(request_as(&mallory, &server, endpoint, 400), LZ_ETIMEOUT);
    LZ_TEST_WAIT_UNTIL(lz_test_handshake_failures(lz_server_node(srv)) > 0, 2000);
    LZ_CHECK(lz_test_handshake_failures(lz_server_node(srv)) > 0);
    LZ_CHECK(audit_has(&log, "I admitted peer 127.0.0.1 mechanism CURVE key", alice.public_key));
    LZ_CHECK(audit_has(&log, "W refused peer 127.0.0.1 mechanism CURVE key", mallory.public_key));
    LZ_CHECK(audit_has(&log, mallory.public_key, "client key not authorized"));
    LZ_CHECK(!audit_has(&log, "admitted", mallory.public_key));
    lz_server_destroy(&srv);
    lz_context_destroy(&sctx);
}

LZ_TEST(address_rules_admit_and_refuse) {
    static const struct {
        const char *key, *rule;
        bool admitted;
    } cases[] = {
        {"security.deny_addresses", "127.0.0.1", false},
        {"security.deny_addresses", "10.0.0.0/8", true},
        {"security.allow_addresses", "10.0.0.0/8", false},
        {"security.allow_addresses", "127.0.0.0/8, ::1", true},
    };
    lz_context_t *plain = context_with(NULL, NULL, NULL, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lz_context_t *sctx = context_with(cases[i].key, cases[i].rule, NULL, NULL);
        lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
        bool got = lz_test_delivered(plain, pull, cases[i].admitted ? 5000 : 300);
        if (got != cases[i].admitted) fprintf(stderr, "case %zu: %s=%s\n", i, cases[i].key, cases[i].rule);
        LZ_CHECK(got == cases[i].admitted);
        if (!cases[i].admitted) LZ_TEST_WAIT_UNTIL(lz_test_handshake_failures(lz_pull_node(pull)) > 0, 2000);
        LZ_CHECK_INT(lz_test_handshake_failures(lz_pull_node(pull)) > 0, !cases[i].admitted);
        lz_pull_destroy(&pull);
        // Address rules are for IP peers: an ipc peer is local.
        char ep[256];
        pull = lz_pull_new(sctx, lz_test_ipc_endpoint(ep, sizeof ep));
        LZ_CHECK(lz_test_delivered(plain, pull, 5000));
        lz_pull_destroy(&pull);
        lz_context_destroy(&sctx);
    }
    lz_context_destroy(&plain);
}

LZ_TEST(first_endpoint_settles_a_nodes_side) {
    lz_test_keypair_t server = lz_test_new_keypair();
    lz_context_t *sctx = server_context(&server);
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_node_connect(lz_pull_node(pull), "tcp://127.0.0.1:1"), LZ_ESTATE);
    LZ_CHECK(strstr(lz_last_error(), "CURVE server") != NULL);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*"), LZ_OK);
    LZ_CHECK_INT(lz_node_set_curve_keys(lz_pull_node(pull), NULL, NULL), LZ_ESTATE);
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);
}

// taken_endpoint binds a plain socket of zmq_ctx on a free loopback port
// and writes where into endpoint: a bind there fails (address in use).
static void *taken_endpoint(void *zmq_ctx, char *endpoint, size_t size) {
    void *s = lz_test_plain_socket(zmq_ctx, ZMQ_PULL, 0, "@tcp://127.0.0.1:*");
    lz_test_bound_endpoint(s, endpoint, size);
    return s;
}

// A first endpoint that fails leaves the node with none, so unsettled: its
// keys may still be set, it may take either side, and its socket is plain
// again (a CURVE server's options taken back).
LZ_TEST(a_failed_first_endpoint_settles_nothing) {
    lz_test_keypair_t server = lz_test_new_keypair();
    lz_context_t *sctx = context_with("security.curve_secret_key", server.secret_key, "security.curve_server_key",
                                      server.public_key);
    lz_context_t *plain = context_with(NULL, NULL, NULL, NULL);
    char taken[256];
    void *holder = taken_endpoint(lz_context_zmq(plain), taken, sizeof taken);
    lz_pull_t *pull = lz_pull_new(sctx, NULL);
    lz_node_t *node = lz_pull_node(pull);
    LZ_CHECK_INT(lz_node_bind(node, taken), LZ_ECONNECTION);
    LZ_CHECK_STR(lz_node_endpoint(node), "");
    char shown[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_node_curve_public_key(node, shown), LZ_OK);
    LZ_CHECK_STR(shown, "");
    int mechanism = -1;
    size_t size = sizeof mechanism;
    LZ_CHECK_INT(zmq_getsockopt(node->socket, ZMQ_MECHANISM, &mechanism, &size), 0);
    LZ_CHECK_INT(mechanism, ZMQ_NULL);
    // Left plain in its secure context: a plain pusher gets through.
    LZ_CHECK_INT(lz_node_set_curve_keys(node, "", ""), LZ_OK);
    LZ_CHECK_INT(lz_node_bind(node, "tcp://127.0.0.1:*"), LZ_OK);
    LZ_CHECK(lz_test_delivered(plain, pull, 5000 * LZ_TEST_SLOWDOWN));
    lz_pull_destroy(&pull);
    // A node whose bind failed may connect instead: a CURVE client then.
    pull = lz_pull_new(sctx, NULL);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), taken), LZ_ECONNECTION);
    LZ_CHECK_INT(lz_node_connect(lz_pull_node(pull), "tcp://127.0.0.1:1"), LZ_OK);
    lz_pull_destroy(&pull);
    zmq_close(holder);
    lz_context_destroy(&plain);
    lz_context_destroy(&sctx);
}

// A first bind refused because the ZAP handler could not start (the
// application's own handler held its endpoint) settles nothing either: the
// bind tried again once the endpoint is free starts the handler, which
// admits a CURVE client and names its key.
LZ_TEST(a_bind_retried_after_the_zap_handler_failed_starts_it) {
    lz_test_keypair_t server = lz_test_new_keypair();
    lz_context_t *sctx = server_context(&server), *cctx = client_context(server.public_key);
    void *own = lz_test_plain_socket(lz_context_zmq(sctx), ZMQ_ROUTER, 0, "@inproc://zeromq.zap.01");
    lz_pull_t *pull = lz_pull_new(sctx, NULL);
    LZ_CHECK(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*") != LZ_OK);
    LZ_CHECK(strstr(lz_last_error(), "ZAP handler") != NULL);
    zmq_unbind(own, "inproc://zeromq.zap.01"); // free at once, as a close alone would not leave it
    zmq_close(own);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*"), LZ_OK);
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "raw"), LZ_OK);
    lz_push_t *push = lz_push_new(cctx, lz_node_endpoint(lz_pull_node(pull)));
    char key[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_node_curve_public_key(lz_push_node(push), key), LZ_OK);
    LZ_CHECK_INT(lz_push_send_bytes(push, "x", 1), LZ_OK);
    lz_message_t *msg = lz_pull_recv(pull, 5000 * LZ_TEST_SLOWDOWN);
    LZ_CHECK(msg != NULL);
    const char *sender = msg ? lz_message_peer_key(msg) : NULL;
    LZ_CHECK(sender != NULL && strcmp(sender, key) == 0);
    lz_message_destroy(&msg);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&cctx);
    lz_context_destroy(&sctx);
}

LZ_TEST(node_keys_override_the_contexts) {
    lz_test_keypair_t server = lz_test_new_keypair();
    lz_context_t *plain = context_with(NULL, NULL, NULL, NULL);
    // A CURVE server in a context with no keys.
    lz_pull_t *pull = lz_pull_new(plain, NULL);
    LZ_CHECK_INT(lz_node_set_curve_keys(lz_pull_node(pull), "bad", NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_node_set_curve_keys(lz_pull_node(pull), server.secret_key, NULL), LZ_OK);
    char shown[LZ_CURVE_KEY_SIZE];
    LZ_CHECK_INT(lz_node_curve_public_key(lz_pull_node(pull), shown), LZ_OK);
    LZ_CHECK_STR(shown, ""); // not settled yet
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*"), LZ_OK);
    LZ_CHECK_INT(lz_node_curve_public_key(lz_pull_node(pull), shown), LZ_OK);
    LZ_CHECK_STR(shown, server.public_key);
    LZ_CHECK(!lz_test_delivered(plain, pull, 300));
    // A pusher given the server key by hand gets through.
    lz_push_t *push = lz_push_new(plain, NULL);
    LZ_CHECK_INT(lz_node_set_curve_keys(lz_push_node(push), NULL, server.public_key), LZ_OK);
    LZ_CHECK_INT(lz_node_connect(lz_push_node(push), lz_node_endpoint(lz_pull_node(pull))), LZ_OK);
    LZ_CHECK_INT(lz_node_curve_public_key(lz_push_node(push), shown), LZ_OK);
    LZ_CHECK_INT(strlen(shown), 40); // a fresh key pair of its own
    LZ_CHECK_INT(lz_push_send_bytes(push, "x", 1), LZ_OK);
    LZ_CHECK_INT(lz_node_set_serializer(lz_pull_node(pull), "raw"), LZ_OK);
    lz_message_t *msg = lz_pull_recv(pull, 5000);
    LZ_CHECK(msg != NULL);
    const char *sender = lz_message_peer_key(msg);
    LZ_CHECK(sender != NULL && strcmp(sender, shown) == 0); // the pusher's own key, as admitted
    lz_message_destroy(&msg);
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);

    // And a node that leaves CURVE off in a secure context.
    lz_context_t *sctx = server_context(&server);
    pull = lz_pull_new(sctx, NULL);
    LZ_CHECK_INT(lz_node_set_curve_keys(lz_pull_node(pull), "", NULL), LZ_OK);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*"), LZ_OK);
    LZ_CHECK(lz_test_delivered(plain, pull, 5000));
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);
    lz_context_destroy(&plain);
}

LZ_TEST(pyzmq_curve_client_interop) {
    lz_test_keypair_t server = lz_test_new_keypair(), someone = lz_test_new_keypair();
    lz_context_t *sctx = server_context(&server);
    lz_pull_t *pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    pid_t pid = lz_test_spawn_python("curve_push.py", lz_node_endpoint(lz_pull_node(pull)), server.public_key);
    char buf[64];
    size_t size = sizeof buf;
    LZ_CHECK_INT(lz_pull_recv_bytes(pull, buf, &size, 10000), LZ_OK);
    LZ_CHECK(size == 16 && memcmp(buf, "hello over CURVE", 16) == 0);
    LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);

    // The same client, not among the authorized keys, is refused.
    sctx = context_with("security.curve_secret_key", server.secret_key, "security.authorized_keys", someone.public_key);
    pull = lz_pull_new(sctx, "tcp://127.0.0.1:*");
    lz_test_python_push_refused("curve_push.py", pull, server.public_key);
    lz_pull_destroy(&pull);
    lz_context_destroy(&sctx);
}

// A node's socket has one security for all its endpoints, settled by the
// first: a later one that would need more is refused, not left without.
static void second_endpoint_refused(lz_context_t *ctx, char first, char second) {
    lz_pull_t *pull = lz_pull_new(ctx, NULL);
    lz_node_t *node = lz_pull_node(pull);
    LZ_CHECK_INT(first == '@' ? lz_node_bind(node, "tcp://127.0.0.1:*") : lz_node_connect(node, "tcp://127.0.0.1:1"),
                 LZ_OK);
    LZ_CHECK_INT(second == '@' ? lz_node_bind(node, "tcp://127.0.0.1:*") : lz_node_connect(node, "tcp://127.0.0.1:1"),
                 LZ_ESTATE);
    LZ_CHECK(strstr(lz_last_error(), "use another node") != NULL);
    lz_pull_destroy(&pull);
}

LZ_TEST(a_later_endpoint_gets_its_nodes_security_or_is_refused) {
    lz_test_keypair_t server = lz_test_new_keypair(), alice = lz_test_new_keypair();
    lz_context_t *curve = context_with("security.curve_secret_key", server.secret_key, "security.authorized_keys",
                                       alice.public_key);
    second_endpoint_refused(curve, '>', '@'); // plain by its connect: its bind would take anyone, in clear
    lz_context_t *allow = context_with("security.allow_addresses", "10.0.0.0/8", NULL, NULL);
    second_endpoint_refused(allow, '>', '@'); // its bind would take any address
    lz_context_t *client = client_context(server.public_key);
    second_endpoint_refused(client, '@', '>'); // its connect would not check the server's key
    lz_context_t *both = context_with("security.allow_addresses", "10.0.0.0/8", "security.curve_server_key",
                                      server.public_key);
    second_endpoint_refused(both, '@', '>'); // judged by the rules, yet its connect would check no key

    // With no security, or access rules only, a node binds and connects as it likes.
    lz_context_t *plain = context_with(NULL, NULL, NULL, NULL);
    lz_context_t *audit = context_with("security.audit", "true", NULL, NULL);
    lz_context_t *free_ones[] = {plain, audit};
    for (size_t i = 0; i < 2; i++) {
        lz_pull_t *pull = lz_pull_new(free_ones[i], "tcp://127.0.0.1:*");
        LZ_CHECK_INT(lz_node_connect(lz_pull_node(pull), "tcp://127.0.0.1:1"), LZ_OK);
        LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*"), LZ_OK);
        LZ_CHECK(lz_test_delivered(plain, pull, 5000));
        lz_pull_destroy(&pull);
    }
    lz_pull_t *pull = lz_pull_new(plain, NULL);
    LZ_CHECK_INT(lz_node_connect(lz_pull_node(pull), "tcp://127.0.0.1:1"), LZ_OK);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "tcp://127.0.0.1:*"), LZ_OK);
    LZ_CHECK(lz_test_delivered(plain, pull, 5000));
    lz_pull_destroy(&pull);
    lz_context_t *all[] = {curve, allow, client, both, plain, audit};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) lz_context_destroy(&all[i]);
}

// forged_push connects to port as a ZMTP 3.0 peer of the NULL mechanism
// whose READY names a "User-Id" of its own, and sends one task: what any
// peer may do. Returns the socket, to close once the task is in.
static int forged_push(int port, const char *user_id) {
    static const char ready[] = "\x05READY\x0bSocket-Type\0\0\0\x04PUSH\x07User-Id\0\0\0";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    LZ_CHECK_INT(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    static const char task[] = "{\"type\":\"t\",\"data\":1}";
    unsigned char out[256] = {0xff, [9] = 0x7f, 3, 0, 'N', 'U', 'L', 'L'}; // the greeting: 64 bytes
    size_t n = 64, len = strlen(user_id);
    out[n++] = 0x04; // a short command
    size_t body = n++;
    memcpy(out + n, ready, sizeof ready - 1);
    n += sizeof ready - 1;
    out[n++] = (unsigned char)len;
    memcpy(out + n, user_id, len);
    n += len;
    out[body] = (unsigned char)(n - body - 1);
    LZ_CHECK_INT(send(fd, out, n, MSG_NOSIGNAL), (long)n);
    // libzmq drops what comes before it has read the greeting: the task
    // waits for its own.
    struct timeval wait = {.tv_sec = 5 * LZ_TEST_SLOWDOWN};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    unsigned char in[256];
    for (ssize_t got = 0, more = 1; got < 64 && more > 0; got += more) more = recv(fd, in, sizeof in, 0);
    n = 0;
    out[n++] = 0; // a short message
    out[n++] = sizeof task - 1;
    memcpy(out + n, task, sizeof task - 1);
    n += sizeof task - 1;
    LZ_CHECK_INT(send(fd, out, n, MSG_NOSIGNAL), (long)n);
    return fd;
}

// lz_message_peer_key and _user give what the context's ZAP handler
// admitted, never what a peer says of itself: libzmq passes a peer's
// "User-Id" on where no ZAP reply set one (under ZAP, it refuses it).
LZ_TEST(a_peer_cannot_name_its_own_user_id) {
    lz_test_keypair_t forged = lz_test_new_keypair();
    lz_context_t *plain = context_with(NULL, NULL, NULL, NULL);
    lz_pull_t *pull = lz_pull_new(plain, "tcp://127.0.0.1:*");
    int fd = forged_push(atoi(strrchr(lz_node_endpoint(lz_pull_node(pull)), ':') + 1), forged.public_key);
    lz_message_t *msg = lz_pull_recv(pull, 5000);
    LZ_CHECK(msg != NULL);
    LZ_CHECK(lz_message_peer_key(msg) == NULL);
    LZ_CHECK(lz_message_peer_user(msg) == NULL);
    lz_message_destroy(&msg);
    close(fd);
    lz_pull_destroy(&pull);
    lz_context_destroy(&plain);
}

// A keys file must be a regular file: a FIFO would hold the context's
// creation until some writer came, /dev/zero fill memory. A binary file's
// bytes are shown escaped.
LZ_TEST(a_keys_file_that_is_not_a_regular_file_is_refused) {
    lz_test_keypair_t server = lz_test_new_keypair();
    char ep[256], fifo[300], path[300];
    lz_test_ipc_endpoint(ep, sizeof ep); // its private directory
    snprintf(fifo, sizeof fifo, "%s.fifo", ep + strlen("ipc://"));
    LZ_CHECK_INT(mkfifo(fifo, 0600), 0);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0");
    LZ_CHECK_INT(lz_config_set(cfg, "security.curve_secret_key", server.secret_key), LZ_OK);
    const char *paths[] = {fifo, "/dev/zero", "/tmp"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int64_t start = lz_test_now_ms();
        LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys_file", paths[i]), LZ_OK);
        LZ_CHECK(lz_context_new(cfg) == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
        LZ_CHECK(strstr(lz_last_error(), "not a regular file") != NULL);
        LZ_CHECK(lz_test_now_ms() - start < 2000);
    }
    unlink(fifo);
    snprintf(path, sizeof path, "%s.keys", ep + strlen("ipc://"));
    lz_test_replace_file(path, "\x1b[31mred\\\x7f\n");
    LZ_CHECK_INT(lz_config_set(cfg, "security.authorized_keys_file", path), LZ_OK);
    LZ_CHECK(lz_context_new(cfg) == NULL);
    LZ_CHECK(strstr(lz_last_error(), "'\\x1b[31mred\\x5c\\x7f'") != NULL);
    unlink(path);
    lz_config_destroy(&cfg);
}

LZ_TEST_MAIN(LZ_CASE(keys_are_z85_pairs), LZ_CASE(config_checks_security_keys),
             LZ_CASE(authorized_keys_file_is_read_and_checked), LZ_CASE(address_rules_judge_every_peer_address),
             LZ_CASE(long_lines_of_a_keys_file_are_read_whole),
             LZ_CASE(curve_traffic_flows_and_plain_peers_are_refused), LZ_CASE(wrong_server_key_is_refused),
             LZ_CASE(authorized_keys_admit_refuse_and_audit), LZ_CASE(address_rules_admit_and_refuse),
             LZ_CASE(first_endpoint_settles_a_nodes_side), LZ_CASE(a_failed_first_endpoint_settles_nothing),
             LZ_CASE(a_bind_retried_after_the_zap_handler_failed_starts_it), LZ_CASE(node_keys_override_the_contexts),
             LZ_CASE(pyzmq_curve_client_interop), LZ_CASE(a_later_endpoint_gets_its_nodes_security_or_is_refused),
             LZ_CASE(a_peer_cannot_name_its_own_user_id), LZ_CASE(a_keys_file_that_is_not_a_regular_file_is_refused))
