/* The context: configuration from the environment and files, life cycle
 * with nodes outliving it and scrapes racing its end, bounded shutdown with
 * dead peers, and metrics summed over every node it has had. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <zmq.h>

#include "lz_pester.h"
#include "lz_test.h"

/* Fault injection: while fail_monitor_poll_of is above 0, the connection
 * monitor's zmq_poll (the one on the socket bound to its control endpoint)
 * over that many items (its control socket's and one per node) fails with
 * ETERM, once: the monitor's loop ends as the application's
 * zmq_ctx_shutdown would end it, but the libzmq context still works. This
 * definition stands in for libzmq's (the program's own symbol comes first)
 * and passes every other call on. */
static atomic_int fail_monitor_poll_of;
static int (*next_zmq_poll)(zmq_pollitem_t *items, int count, long timeout);

static void find_next_zmq_poll(void) { lz_test_next_function(&next_zmq_poll, "zmq_poll"); }

static bool is_monitor_poll(zmq_pollitem_t *items, int count) {
    char endpoint[64] = "";
    size_t size = sizeof endpoint;
    return count > 0 && items[0].socket && zmq_getsockopt(items[0].socket, ZMQ_LAST_ENDPOINT, endpoint, &size) == 0 &&
           strcmp(endpoint, "inproc://lz-monitor-control") == 0;
}

int zmq_poll(zmq_pollitem_t *items, int count, long timeout) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, find_next_zmq_poll);
    int armed = atomic_load(&fail_monitor_poll_of);
    if (armed == count && is_monitor_poll(items, count) &&
        atomic_compare_exchange_strong(&fail_monitor_poll_of, &armed, 0)) {
        errno = ETERM;
        return -1;
    }
    return next_zmq_poll(items, count, timeout);
}


// write_file writes text to a fresh file in /tmp and stores its path.
static void write_file(char *path, size_t size, const char *suffix, const char *text) {
    snprintf(path, size, "/tmp/lztest-ctx-%d-XXXXXX%s", (int)getpid(), suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) {
        perror("mkstemps");
        exit(2);
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        perror("write");
        exit(2);
    }
    close(fd);
}

// A configuration that keeps shutdown and failures quick in tests.
static lz_config_t *quick_config(void) {
    lz_config_t *cfg = lz_config_new();
    LZ_CHECK(cfg != NULL);
    LZ_CHECK_INT(lz_config_set_int(cfg, "zmq.linger", 200), LZ_OK);
    LZ_CHECK_INT(lz_config_set_int(cfg, "zmq.send_timeout", 1000), LZ_OK);
    return cfg;
}

static lz_context_t *quick_context(void) {
    lz_config_t *cfg = quick_config();
    lz_context_t *ctx = lz_context_new(cfg);
    lz_config_destroy(&cfg);
    LZ_CHECK(ctx != NULL);
    return ctx;
}

static int64_t config_int(lz_context_t *ctx, const char *key) {
    int64_t v = -12345;
    LZ_CHECK_INT(lz_config_get_int(lz_context_config(ctx), key, &v), LZ_OK);
    return v;
}

// socket_option reads an int option of the node's libzmq socket (-2 if it cannot).
static int socket_option(lz_node_t *node, int option) {
    int value = -2;
    size_t size = sizeof value;
    LZ_CHECK_INT(zmq_getsockopt(lz_node_zmq_socket(node), option, &value, &size), 0);
    return value;
}

/* ---- configuration sources ---------------------------------------------- */

LZ_TEST(context_defaults_without_environment) {
    unsetenv("LIBERZMQ_CONFIG");
    lz_context_t *ctx = lz_context_new(NULL);
    LZ_CHECK(ctx != NULL);
    if (!ctx) return;
    LZ_CHECK_INT(config_int(ctx, "zmq.linger"), 1000);
    LZ_CHECK_STR(lz_config_source(lz_context_config(ctx), "zmq.linger"), "default");
    LZ_CHECK(lz_context_zmq(ctx) != NULL);
    LZ_CHECK(lz_context_logger(ctx) != NULL);
    lz_context_destroy(&ctx);
    LZ_CHECK(ctx == NULL);
    lz_context_destroy(&ctx); // NULL is a no-op
    lz_context_destroy(NULL);
}

LZ_TEST(context_reads_environment) {
    unsetenv("LIBERZMQ_CONFIG");
    setenv("LIBERZMQ_ZMQ__LINGER", "123", 1);
    setenv("LIBERZMQ_ZMQ_HANDLER_MAX_CONCURRENCY", "3", 1);
    setenv("LIBERZMQ_SERIALIZATION__DEFAULT", "msgpack", 1);
    lz_context_t *ctx = lz_context_new(NULL);
    unsetenv("LIBERZMQ_ZMQ__LINGER");
    unsetenv("LIBERZMQ_ZMQ_HANDLER_MAX_CONCURRENCY");
    unsetenv("LIBERZMQ_SERIALIZATION__DEFAULT");
    LZ_CHECK(ctx != NULL);
    if (!ctx) return;
    LZ_CHECK_INT(config_int(ctx, "zmq.linger"), 123);
    LZ_CHECK_INT(config_int(ctx, "zmq.handler_max_concurrency"), 3);
    LZ_CHECK_STR(lz_config_source(lz_context_config(ctx), "zmq.linger"), "env LIBERZMQ_ZMQ__LINGER");
    // The default serializer reaches the nodes.
    lz_pub_t *pub = lz_pub_new(ctx, NULL);
    LZ_CHECK(pub != NULL);
    LZ_CHECK_STR(lz_node_serializer_name(lz_pub_node(pub)), "msgpack");
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST(context_reads_config_file_then_environment) {
    char path[128];
    write_file(path, sizeof path, ".yaml",
               "zmq:\n"
               "  linger: 77\n"
               "  handler_max_concurrency: 2\n"
               "  high_water_mark: 500\n"
               "  immediate: true\n"
               "serialization:\n"
               "  default: msgpack\n");
    setenv("LIBERZMQ_CONFIG", path, 1);
    setenv("LIBERZMQ_ZMQ__HIGH_WATER_MARK", "600", 1); // env beats the file
    lz_context_t *ctx = lz_context_new(NULL);
    unsetenv("LIBERZMQ_ZMQ__HIGH_WATER_MARK");
    unsetenv("LIBERZMQ_CONFIG");
    LZ_CHECK(ctx != NULL);
    if (ctx) {
        LZ_CHECK_INT(config_int(ctx, "zmq.linger"), 77);
        LZ_CHECK_INT(config_int(ctx, "zmq.handler_max_concurrency"), 2);
        LZ_CHECK_INT(config_int(ctx, "zmq.high_water_mark"), 600);
        const char *src = lz_config_source(lz_context_config(ctx), "zmq.linger");
        LZ_CHECK(src && strncmp(src, "file ", 5) == 0 && strstr(src, path));
        lz_pull_t *pull = lz_pull_new(ctx, NULL);
        LZ_CHECK(pull != NULL);
        LZ_CHECK_STR(lz_node_serializer_name(lz_pull_node(pull)), "msgpack");
        // The socket got the configured options.
        LZ_CHECK_INT(socket_option(lz_pull_node(pull), ZMQ_LINGER), 77);
        LZ_CHECK_INT(socket_option(lz_pull_node(pull), ZMQ_RCVHWM), 600);
        LZ_CHECK_INT(socket_option(lz_pull_node(pull), ZMQ_IMMEDIATE), 1);
        lz_pull_destroy(&pull);
        lz_context_destroy(&ctx);
    }
    unlink(path);

    // A JSON file is read the same way.
    write_file(path, sizeof path, ".json", "{\"zmq\": {\"linger\": 42}, \"logging\": {\"level\": \"ERROR\"}}");
    setenv("LIBERZMQ_CONFIG", path, 1);
    ctx = lz_context_new(NULL);
    unsetenv("LIBERZMQ_CONFIG");
    LZ_CHECK(ctx != NULL);
    if (ctx) {
        LZ_CHECK_INT(config_int(ctx, "zmq.linger"), 42);
        LZ_CHECK_INT(lz_logger_level(lz_context_logger(ctx)), LZ_LOG_ERROR);
        lz_context_destroy(&ctx);
    }
    unlink(path);
}

// zmq.heartbeat_interval turns ZMTP heartbeats on for every socket,
// whatever options its type adds (XPUB, ROUTER), with a timeout of three
// intervals: libzmq drops a peer that sends nothing for that long after a
// PING. At its default, 0, libzmq's defaults stay: no heartbeats at all.
LZ_TEST(context_heartbeat_interval_reaches_every_socket) {
    lz_context_t *beating = LZ_TEST_CONTEXT("zmq.linger=0", "zmq.heartbeat_interval=250");
    lz_context_t *plain = LZ_TEST_CONTEXT("zmq.linger=0");
    lz_pub_t *pub = beating ? lz_pub_new(beating, NULL) : NULL;
    lz_sub_t *sub = beating ? lz_sub_new(beating, NULL) : NULL;
    lz_push_t *push = beating ? lz_push_new(beating, NULL) : NULL;
    lz_router_t *router = beating ? lz_router_new(beating, NULL) : NULL;
    lz_pull_t *plain_pull = plain ? lz_pull_new(plain, NULL) : NULL;
    LZ_CHECK(pub && sub && push && router && plain_pull);
    if (pub && sub && push && router && plain_pull) {
        lz_node_t *nodes[] = {lz_pub_node(pub), lz_sub_node(sub), lz_push_node(push), lz_router_node(router)};
        for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
            LZ_CHECK_INT(socket_option(nodes[i], ZMQ_HEARTBEAT_IVL), 250);
            LZ_CHECK_INT(socket_option(nodes[i], ZMQ_HEARTBEAT_TIMEOUT), 750);
        }
        LZ_CHECK_INT(socket_option(lz_pull_node(plain_pull), ZMQ_HEARTBEAT_IVL), 0);
        LZ_CHECK_INT(socket_option(lz_pull_node(plain_pull), ZMQ_HEARTBEAT_TIMEOUT), -1); // libzmq: "as the interval"
    }
    lz_pub_destroy(&pub);
    lz_sub_destroy(&sub);
    lz_push_destroy(&push);
    lz_router_destroy(&router);
    lz_pull_destroy(&plain_pull);
    lz_context_destroy(&beating);
    lz_context_destroy(&plain);
}

// expect_config_failure: lz_context_new(NULL) fails with LZ_ECONFIG and a
// detail that names what was wrong.
static void expect_config_failure(const char *must_name, int line) {
    lz_context_t *ctx = lz_context_new(NULL);
    if (ctx) {
        fprintf(stderr, "test_context.c:%d: context created despite a bad configuration\n", line);
        lz_test_failures++;
        lz_context_destroy(&ctx);
        return;
    }
    if (lz_last_error_code() != LZ_ECONFIG || !strstr(lz_last_error(), must_name)) {
        fprintf(stderr, "test_context.c:%d: expected LZ_ECONFIG naming '%s', got %s: %s\n", line,
                must_name, lz_error_name(lz_last_error_code()), lz_last_error());
        lz_test_failures++;
    }
    lz_test_checks++;
}

LZ_TEST(context_bad_config_fails_naming_the_key) {
    char path[128];
    // An unknown key in the file.
    write_file(path, sizeof path, ".yaml", "zmq:\n  linger: 10\n  no_such_key: 5\n");
    setenv("LIBERZMQ_CONFIG", path, 1);
    expect_config_failure("zmq.no_such_key", __LINE__);
    unlink(path);
    // A bad value in the file.
    write_file(path, sizeof path, ".yaml", "zmq:\n  io_threads: lots\n");
    setenv("LIBERZMQ_CONFIG", path, 1);
    expect_config_failure("zmq.io_threads", __LINE__);
    unlink(path);
    // An out-of-range value in the file.
    write_file(path, sizeof path, ".yaml", "zmq:\n  handler_max_concurrency: 0\n");
    setenv("LIBERZMQ_CONFIG", path, 1);
    expect_config_failure("zmq.handler_max_concurrency", __LINE__);
    unlink(path);
    // A file that is not YAML.
    write_file(path, sizeof path, ".yaml", "zmq: [linger: {\n");
    setenv("LIBERZMQ_CONFIG", path, 1);
    expect_config_failure(path, __LINE__);
    unlink(path);
    // A file that does not exist.
    setenv("LIBERZMQ_CONFIG", "/nonexistent/lztest/config.yaml", 1);
    expect_config_failure("/nonexistent/lztest/config.yaml", __LINE__);
    unsetenv("LIBERZMQ_CONFIG");

    // A bad environment value names the key and the variable.
    setenv("LIBERZMQ_ZMQ__LINGER", "abc", 1);
    expect_config_failure("zmq.linger", __LINE__);
    expect_config_failure("LIBERZMQ_ZMQ__LINGER", __LINE__);
    unsetenv("LIBERZMQ_ZMQ__LINGER");
    // An unknown LIBERZMQ_ variable.
    setenv("LIBERZMQ_ZMQ__BOGUS", "1", 1);
    expect_config_failure("LIBERZMQ_ZMQ__BOGUS", __LINE__);
    unsetenv("LIBERZMQ_ZMQ__BOGUS");
    // An unknown serializer as the default.
    setenv("LIBERZMQ_SERIALIZATION__DEFAULT", "nosuchcodec", 1);
    lz_context_t *ctx = lz_context_new(NULL);
    unsetenv("LIBERZMQ_SERIALIZATION__DEFAULT");
    if (ctx) { // allowed to be caught at node creation instead
        lz_pub_t *pub = lz_pub_new(ctx, NULL);
        LZ_CHECK(pub == NULL);
        LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
        LZ_CHECK(strstr(lz_last_error(), "serialization.default") != NULL);
        lz_pub_destroy(&pub);
        lz_context_destroy(&ctx);
    } else {
        LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    }

    // An explicit configuration with an inconsistent combination.
    lz_config_t *cfg = lz_config_new();
    LZ_CHECK_INT(lz_config_set_int(cfg, "zmq.reconnect_interval", 500), LZ_OK);
    LZ_CHECK_INT(lz_config_set_int(cfg, "zmq.reconnect_interval_max", 100), LZ_OK);
    ctx = lz_context_new(cfg);
    LZ_CHECK(ctx == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK(strstr(lz_last_error(), "zmq.reconnect_interval_max") != NULL);
    lz_context_destroy(&ctx);
    lz_config_destroy(&cfg);

    // After all that, a good context still comes up.
    ctx = lz_context_new(NULL);
    LZ_CHECK(ctx != NULL);
    lz_context_destroy(&ctx);
}

LZ_TEST(context_copies_its_config) {
    lz_config_t *cfg = quick_config();
    lz_context_t *ctx = lz_context_new(cfg);
    LZ_CHECK(ctx != NULL);
    LZ_CHECK_INT(lz_config_set_int(cfg, "zmq.linger", 999), LZ_OK);
    lz_config_destroy(&cfg); // the context keeps its own copy
    if (!ctx) return;
    LZ_CHECK_INT(config_int(ctx, "zmq.linger"), 200);
    lz_context_destroy(&ctx);
}

/* ---- life cycle ---------------------------------------------------------- */

static lz_message_t *recv_synced(lz_pub_t *pub, lz_sub_t *sub, const char *topic, const lz_value_t *v) {
    int64_t deadline = lz_test_now_ms() + 5000;
    while (lz_test_now_ms() < deadline) {
        lz_pub_publish(pub, topic, v);
        lz_message_t *msg = lz_sub_recv(sub, 20);
        if (msg) return msg;
    }
    return NULL;
}

LZ_TEST(context_destroyed_before_its_nodes) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    char ep[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    lz_sub_t *sub = lz_sub_new(ctx, ep);
    LZ_CHECK(pub && sub);
    lz_context_destroy(&ctx);
    LZ_CHECK(ctx == NULL);
    if (!pub || !sub) {
        lz_pub_destroy(&pub);
        lz_sub_destroy(&sub);
        return;
    }
    // The nodes still work: they keep the context alive.
    LZ_CHECK_INT(lz_sub_subscribe(sub, "t"), LZ_OK);
    lz_value_t *v = lz_value_int(7);
    lz_message_t *msg = recv_synced(pub, sub, "t", v);
    LZ_CHECK(msg != NULL);
    LZ_CHECK_INT(lz_value_get_int(lz_message_value(msg)), 7);
    lz_message_destroy(&msg);
    lz_value_destroy(&v);
    // A new node cannot be made any more, but the old ones close cleanly,
    // the last one terminating the libzmq context.
    int64_t t0 = lz_test_now_ms();
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    LZ_CHECK(lz_test_now_ms() - t0 < 3000);
    LZ_CHECK(sub == NULL && pub == NULL);
}

// scrape_until_stopped GETs /metrics from 127.0.0.1:port over and over,
// until stop.
typedef struct scraper {
    int port;
    atomic_bool stop;
} scraper_t;

static void *scrape_until_stopped(void *arg) {
    scraper_t *s = arg;
    static const char request[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char buf[4096];
    while (!atomic_load(&s->stop)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval one = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &one, sizeof one);
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&to, sizeof to) == 0 && write(fd, request, sizeof request - 1) > 0)
            while (read(fd, buf, sizeof buf) > 0) continue;
        close(fd);
    }
    return NULL;
}

// A context going while its own exporter (metrics.prometheus_listen) is
// scraped: the exporter stops first, so no scrape reads what the context
// tears down (the span exporter's counters, under a mutex destroyed with
// them: ThreadSanitizer and helgrind see the scrape lock it).
LZ_TEST(context_destroyed_while_scraped) {
    lz_context_t *probe = quick_context();
    lz_prometheus_t *exporter = lz_prometheus_new(probe, "127.0.0.1:0"); // a port free a moment ago
    scraper_t scraper = {.port = lz_prometheus_port(exporter)};
    lz_prometheus_destroy(&exporter);
    lz_context_destroy(&probe);
    lz_config_t *cfg = quick_config();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", scraper.port);
    LZ_CHECK_INT(lz_config_set(cfg, "metrics.prometheus_listen", listen), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "tracing.enabled", "true"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(cfg, "tracing.otlp_endpoint", "http://127.0.0.1:1"), LZ_OK); // its counters scraped
    for (int round = 0; round < 10; round++) {
        lz_context_t *ctx = lz_context_new(cfg);
        LZ_CHECK(ctx != NULL);
        atomic_store(&scraper.stop, false);
        pthread_t scrapers[4];
        for (int i = 0; i < 4; i++) pthread_create(&scrapers[i], NULL, scrape_until_stopped, &scraper);
        usleep(20000);
        lz_context_destroy(&ctx);
        atomic_store(&scraper.stop, true);
        for (int i = 0; i < 4; i++) pthread_join(scrapers[i], NULL);
    }
    lz_config_destroy(&cfg);
}

// A pusher with queued tasks for a peer that does not exist: closing waits
// at most the linger, in either order of destruction.
static void dead_peer_case(bool destroy_ctx_first) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    // Find a port nobody listens on: bind one, then close it.
    lz_pull_t *probe = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(probe != NULL);
    if (!probe) {
        lz_context_destroy(&ctx);
        return;
    }
    char dead[128];
    snprintf(dead, sizeof dead, "%s", lz_node_endpoint(lz_pull_node(probe)));
    lz_pull_destroy(&probe);
    lz_push_t *push = lz_push_new(ctx, dead);
    LZ_CHECK(push != NULL);
    if (!push) {
        lz_context_destroy(&ctx);
        return;
    }
    lz_value_t *v = lz_value_string("for nobody");
    for (int i = 0; i < 5; i++) LZ_CHECK_INT(lz_push_send(push, "job", v, 0), LZ_OK);
    lz_value_destroy(&v);
    int64_t t0 = lz_test_now_ms();
    if (destroy_ctx_first) {
        lz_context_destroy(&ctx);
        LZ_CHECK(lz_test_now_ms() - t0 < 100); // releasing the caller's reference never blocks
        // The pusher still works after the context handle is gone.
        LZ_CHECK_INT(lz_push_send_bytes(push, "late", 4), LZ_OK);
    }
    t0 = lz_test_now_ms();
    lz_push_destroy(&push);
    if (!destroy_ctx_first) lz_context_destroy(&ctx);
    int64_t elapsed = lz_test_now_ms() - t0;
    // linger is 200 ms: shutdown takes about that, never the send timeout or forever.
    LZ_CHECK(elapsed < 1500);
    if (elapsed >= 1500) fprintf(stderr, "shutdown with a dead peer took %lld ms\n", (long long)elapsed);
}

LZ_TEST(context_shutdown_bounded_with_dead_peer_ctx_first) { dead_peer_case(true); }
LZ_TEST(context_shutdown_bounded_with_dead_peer_node_first) { dead_peer_case(false); }

// Closing a node and making another at once (the usual restart) works
// every time, whatever memory the new node gets.
LZ_TEST(context_nodes_recreated_at_once) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    int failures = 0;
    for (int i = 0; i < 50; i++) {
        lz_push_t *push = lz_push_new(ctx, NULL);
        lz_pull_t *pull = lz_pull_new(ctx, NULL);
        lz_pub_t *pub = lz_pub_new(ctx, NULL);
        lz_sub_t *sub = lz_sub_new(ctx, NULL);
        if (!push || !pull || !pub || !sub) {
            if (!failures) fprintf(stderr, "round %d: %s\n", i, lz_last_error());
            failures++;
        }
        lz_push_destroy(&push);
        lz_pull_destroy(&pull);
        lz_pub_destroy(&pub);
        lz_sub_destroy(&sub);
    }
    LZ_CHECK_INT(failures, 0);
    lz_metrics_t m;
    LZ_CHECK_INT(lz_context_metrics(ctx, &m), LZ_OK);
    LZ_CHECK_INT(m.active_connections, 0);
    lz_context_destroy(&ctx);
}

// Closing a node while its peer is going away (both ends closed one after
// the other, the usual shutdown) never hangs: the socket's monitor events
// keep flowing while it closes.
LZ_TEST(context_close_while_peer_disconnects) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    int64_t t0 = lz_test_now_ms();
    for (int i = 0; i < 60; i++) {
        lz_pull_t *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
        lz_push_t *push = pull ? lz_push_new(ctx, lz_node_endpoint(lz_pull_node(pull))) : NULL;
        LZ_CHECK(pull && push);
        if (push) LZ_CHECK_INT(lz_push_send_bytes(push, "x", 1), LZ_OK);
        for (int64_t deadline = lz_test_now_ms() + 2000; push && lz_test_now_ms() < deadline;) {
            lz_metrics_t m;
            lz_node_metrics(lz_pull_node(pull), &m);
            if (m.active_connections == 1) break;
            lz_test_sleep_ms(1);
        }
        if (i % 2) {
            lz_push_destroy(&push);
            lz_pull_destroy(&pull);
        } else {
            lz_pull_destroy(&pull);
            lz_push_destroy(&push);
        }
    }
    LZ_CHECK(lz_test_now_ms() - t0 < 20000);
    lz_context_destroy(&ctx);
}

/* ---- metrics -------------------------------------------------------------- */

static lz_metrics_t ctx_metrics(lz_context_t *ctx) {
    lz_metrics_t m;
    memset(&m, 0xAB, sizeof m);
    LZ_CHECK_INT(lz_context_metrics(ctx, &m), LZ_OK);
    return m;
}

static lz_metrics_t node_metrics(lz_node_t *node) {
    lz_metrics_t m;
    memset(&m, 0xAB, sizeof m);
    LZ_CHECK_INT(lz_node_metrics(node, &m), LZ_OK);
    return m;
}

LZ_TEST(context_metrics_sum_live_and_closed_nodes) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    lz_metrics_t m = ctx_metrics(ctx);
    LZ_CHECK_INT(m.messages_sent, 0);
    LZ_CHECK_INT(m.messages_received, 0);
    LZ_CHECK_INT(m.active_connections, 0);
    LZ_CHECK_INT(lz_context_metrics(NULL, &m), LZ_EINVAL);
    LZ_CHECK_INT(lz_context_metrics(ctx, NULL), LZ_EINVAL);

    char ep1[128], ep2[128];
    lz_pull_t *pull1 = lz_pull_new(ctx, lz_test_inproc_endpoint(ep1, sizeof ep1));
    lz_pull_t *pull2 = lz_pull_new(ctx, lz_test_inproc_endpoint(ep2, sizeof ep2));
    lz_push_t *push1 = lz_push_new(ctx, ep1);
    lz_push_t *push2 = lz_push_new(ctx, ep2);
    LZ_CHECK(pull1 && pull2 && push1 && push2);
    if (!pull1 || !pull2 || !push1 || !push2) goto out;
    for (int i = 0; i < 3; i++) LZ_CHECK_INT(lz_push_send_bytes(push1, "abcd", 4), LZ_OK);
    for (int i = 0; i < 5; i++) LZ_CHECK_INT(lz_push_send_bytes(push2, "xy", 2), LZ_OK);
    // Not JSON: received, then dropped; lz_pull_recv never returns them.
    for (int tries = 0; tries < 100 && node_metrics(lz_pull_node(pull1)).inbound_dropped < 3; tries++) {
        lz_message_t *msg = lz_pull_recv(pull1, 50);
        LZ_CHECK(msg == NULL);
        lz_message_destroy(&msg);
    }
    lz_value_t *v = lz_value_int(1);
    LZ_CHECK_INT(lz_push_send(push2, "t", v, 0), LZ_OK);
    lz_value_destroy(&v);
    for (int got = 0, tries = 0; got < 1 && tries < 100; tries++) {
        lz_message_t *msg = lz_pull_recv(pull2, 50);
        if (msg) got++;
        lz_message_destroy(&msg);
    }
    lz_metrics_t p1 = node_metrics(lz_push_node(push1)), p2 = node_metrics(lz_push_node(push2));
    lz_metrics_t q1 = node_metrics(lz_pull_node(pull1)), q2 = node_metrics(lz_pull_node(pull2));
    LZ_CHECK_INT(p1.messages_sent, 3);
    LZ_CHECK_INT(p1.bytes_sent, 12);
    LZ_CHECK_INT(p2.messages_sent, 6);
    LZ_CHECK_INT(q1.messages_received, 3);
    LZ_CHECK_INT(q1.bytes_received, 12);
    LZ_CHECK_INT(q1.inbound_dropped, 3);
    LZ_CHECK_INT(q2.messages_received, 6); // five "xy" dropped, then the task
    LZ_CHECK_INT(q2.inbound_dropped, 5);
    LZ_CHECK_INT(q2.bytes_received, p2.bytes_sent);

    m = ctx_metrics(ctx);
    LZ_CHECK_INT(m.messages_sent, 9);
    LZ_CHECK_INT(m.messages_received, 9);
    LZ_CHECK_INT(m.bytes_sent, p1.bytes_sent + p2.bytes_sent);
    LZ_CHECK_INT(m.bytes_received, q1.bytes_received + q2.bytes_received);
    LZ_CHECK_INT(m.inbound_dropped, 8);

    // Closed nodes still count, as they were at close.
    lz_push_destroy(&push1);
    lz_pull_destroy(&pull1);
    m = ctx_metrics(ctx);
    LZ_CHECK_INT(m.messages_sent, 9);
    LZ_CHECK_INT(m.messages_received, 9);
    LZ_CHECK_INT(m.inbound_dropped, 8);
    LZ_CHECK_INT(lz_push_send_bytes(push2, "z", 1), LZ_OK);
    m = ctx_metrics(ctx);
    LZ_CHECK_INT(m.messages_sent, 10);
    lz_push_destroy(&push2);
    lz_pull_destroy(&pull2);
    m = ctx_metrics(ctx);
    LZ_CHECK_INT(m.messages_sent, 10);
    LZ_CHECK_INT(m.bytes_sent, p1.bytes_sent + p2.bytes_sent + 1);
    LZ_CHECK_INT(m.active_connections, 0);
out:
    lz_push_destroy(&push1);
    lz_push_destroy(&push2);
    lz_pull_destroy(&pull1);
    lz_pull_destroy(&pull2);
    lz_context_destroy(&ctx);
}

// wait_connections polls until the node's (or, node NULL, the context's)
// active_connections equals want; returns the last value seen.
static int64_t wait_connections(lz_context_t *ctx, lz_node_t *node, int64_t want, int timeout_ms) {
    int64_t deadline = lz_test_now_ms() + timeout_ms, seen = -999;
    for (;;) {
        lz_metrics_t m;
        if (node) lz_node_metrics(node, &m);
        else lz_context_metrics(ctx, &m);
        seen = m.active_connections;
        if (seen == want || lz_test_now_ms() >= deadline) return seen;
        lz_test_sleep_ms(5);
    }
}

static void active_connections_case(const char *bind_url) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    lz_pull_t *pull = lz_pull_new(ctx, bind_url);
    LZ_CHECK(pull != NULL);
    if (!pull) {
        lz_context_destroy(&ctx);
        return;
    }
    char ep[256];
    snprintf(ep, sizeof ep, "%s", lz_node_endpoint(lz_pull_node(pull)));
    LZ_CHECK_INT(wait_connections(ctx, NULL, 0, 0), 0);
    lz_push_t *push = lz_push_new(ctx, ep);
    LZ_CHECK(push != NULL);
    // The puller accepted one, the pusher connected one.
    LZ_CHECK_INT(wait_connections(ctx, lz_pull_node(pull), 1, 5000), 1);
    LZ_CHECK_INT(wait_connections(ctx, lz_push_node(push), 1, 5000), 1);
    LZ_CHECK_INT(wait_connections(ctx, NULL, 2, 5000), 2);
    // A second pusher: two on the puller's side.
    lz_push_t *push2 = lz_push_new(ctx, ep);
    LZ_CHECK(push2 != NULL);
    LZ_CHECK_INT(wait_connections(ctx, lz_pull_node(pull), 2, 5000), 2);
    LZ_CHECK_INT(wait_connections(ctx, NULL, 4, 5000), 4);
    // Disconnecting brings them back down.
    lz_push_destroy(&push);
    LZ_CHECK_INT(wait_connections(ctx, lz_pull_node(pull), 1, 5000), 1);
    LZ_CHECK_INT(wait_connections(ctx, NULL, 2, 5000), 2);
    lz_push_destroy(&push2);
    LZ_CHECK_INT(wait_connections(ctx, lz_pull_node(pull), 0, 5000), 0);
    LZ_CHECK_INT(wait_connections(ctx, NULL, 0, 5000), 0);
    lz_pull_destroy(&pull);
    lz_context_destroy(&ctx);
}

LZ_TEST(context_active_connections_tcp) { active_connections_case("tcp://127.0.0.1:*"); }

LZ_TEST(context_active_connections_ipc) {
    char ep[128];
    active_connections_case(lz_test_ipc_endpoint(ep, sizeof ep));
}

// The peer going away (not us closing) is seen too.
LZ_TEST(context_active_connections_peer_dies) {
    lz_context_t *ctx = quick_context();
    lz_context_t *other = quick_context();
    if (!ctx || !other) {
        lz_context_destroy(&ctx);
        lz_context_destroy(&other);
        return;
    }
    lz_pull_t *pull = lz_pull_new(other, "tcp://127.0.0.1:*");
    LZ_CHECK(pull != NULL);
    lz_push_t *push = pull ? lz_push_new(ctx, lz_node_endpoint(lz_pull_node(pull))) : NULL;
    LZ_CHECK(push != NULL);
    if (push) {
        LZ_CHECK_INT(wait_connections(ctx, NULL, 1, 5000), 1);
        lz_pull_destroy(&pull);
        lz_context_destroy(&other); // the peer's whole context is gone
        LZ_CHECK_INT(wait_connections(ctx, NULL, 0, 5000), 0);
    }
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    lz_context_destroy(&other);
    lz_context_destroy(&ctx);
}

LZ_TEST(context_failed_bind_counted) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    lz_pub_t *pub = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(pub != NULL);
    if (!pub) {
        lz_context_destroy(&ctx);
        return;
    }
    char ep[128];
    snprintf(ep, sizeof ep, "%s", lz_node_endpoint(lz_pub_node(pub)));
    LZ_CHECK(strncmp(ep, "tcp://127.0.0.1:", 16) == 0 && strcmp(ep, "tcp://127.0.0.1:*") != 0);

    // Binding the same port again on the same node.
    LZ_CHECK_INT(lz_node_bind(lz_pub_node(pub), ep), LZ_ECONNECTION);
    LZ_CHECK(strstr(lz_last_error(), ep) != NULL);
    LZ_CHECK_INT(node_metrics(lz_pub_node(pub)).failed_bind_count, 1);
    LZ_CHECK_STR(lz_node_endpoint(lz_pub_node(pub)), ep); // the good one stays
    // A second node on the same port: its constructor fails, the failure still counts.
    lz_pub_t *again = lz_pub_new(ctx, ep);
    LZ_CHECK(again == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONNECTION);
    lz_pull_t *pull = lz_pull_new(ctx, NULL);
    LZ_CHECK(pull != NULL);
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), ep), LZ_ECONNECTION);
    // A malformed URL is the caller's mistake, not a connection failure.
    LZ_CHECK_INT(lz_node_bind(lz_pull_node(pull), "nonsense://x"), LZ_EINVAL);
    // A host name is not bindable: libzmq takes it for an interface.
    LZ_CHECK(lz_node_bind(lz_pull_node(pull), "tcp://localhost:*") != LZ_OK);
    LZ_CHECK(strstr(lz_last_error(), "No such device (a tcp bind takes an IP address, an interface name") != NULL);
    lz_metrics_t m = ctx_metrics(ctx);
    LZ_CHECK(m.failed_bind_count >= 4);
    LZ_CHECK(m.failed_bind_count <= 5); // whether "nonsense://" counts is the library's call
    uint64_t before = m.failed_bind_count;
    lz_pull_destroy(&pull);
    lz_pub_destroy(&pub);
    LZ_CHECK_INT(ctx_metrics(ctx).failed_bind_count, before);
    lz_context_destroy(&ctx);
}

LZ_TEST(context_metrics_to_json_has_every_field) {
    static const char *const fields[] = {
        "messages_sent", "messages_received", "bytes_sent", "bytes_received", "errors",
        "outbound_dropped", "inbound_dropped", "backpressure_events", "failed_bind_count",
        "active_connections", "request_timeouts", "retries", "socket_rebuilds", "late_replies",
        "handshake_failures", "task_retries", "dead_letters", "config_reloads", "config_reload_errors",
        "connections_cut"};
    const size_t nfields = sizeof fields / sizeof fields[0];
    lz_metrics_t m = {
        .messages_sent = 101, .messages_received = 102, .bytes_sent = 103, .bytes_received = 104,
        .errors = 105, .outbound_dropped = 106, .inbound_dropped = 107, .backpressure_events = 108,
        .failed_bind_count = 109, .active_connections = -3, .request_timeouts = 111, .retries = 112,
        .socket_rebuilds = 113, .late_replies = UINT64_C(18446744073709551615), .handshake_failures = 115,
        .task_retries = 116, .dead_letters = 117, .config_reloads = 118, .config_reload_errors = 119,
        .connections_cut = 120};
    char buf[1024];
    int n = lz_metrics_to_json(&m, buf, sizeof buf);
    LZ_CHECK(n > 0 && (size_t)n == strlen(buf));
    lz_value_t *obj = lz_value_from_json(buf, strlen(buf));
    LZ_CHECK(obj != NULL);
    LZ_CHECK_INT(lz_value_type(obj), LZ_VALUE_OBJECT);
    LZ_CHECK_INT(lz_value_size(obj), nfields);
    for (size_t i = 0; i < nfields; i++) {
        const lz_value_t *f = lz_value_get(obj, fields[i]);
        if (!f) {
            fprintf(stderr, "metrics JSON lacks \"%s\": %s\n", fields[i], buf);
            lz_test_failures++;
        }
        lz_test_checks++;
    }
    char expect[64];
    for (size_t i = 0; i < 9; i++) {
        snprintf(expect, sizeof expect, "\"%s\":%zu", fields[i], 101 + i);
        LZ_CHECK(strstr(buf, expect) != NULL);
    }
    LZ_CHECK(strstr(buf, "\"active_connections\":-3") != NULL);
    LZ_CHECK(strstr(buf, "\"late_replies\":18446744073709551615") != NULL);
    LZ_CHECK(strstr(buf, "\"handshake_failures\":115") != NULL);
    LZ_CHECK(strstr(buf, "\"task_retries\":116,\"dead_letters\":117,") != NULL);
    LZ_CHECK(strstr(buf, "\"config_reloads\":118,\"config_reload_errors\":119,\"connections_cut\":120,") != NULL);
    lz_value_destroy(&obj);

    // snprintf-style: a short buffer gets a terminated prefix and the full length.
    char small[16];
    int needed = lz_metrics_to_json(&m, small, sizeof small);
    LZ_CHECK_INT(needed, n);
    LZ_CHECK_INT(strlen(small), sizeof small - 1);
    LZ_CHECK(strncmp(small, buf, sizeof small - 1) == 0);
    LZ_CHECK_INT(lz_metrics_to_json(&m, NULL, 0), n);
    LZ_CHECK(lz_metrics_to_json(NULL, buf, sizeof buf) < 0);

    // Zeroed metrics of a fresh context render too.
    lz_context_t *ctx = quick_context();
    if (ctx) {
        lz_metrics_t z = ctx_metrics(ctx);
        n = lz_metrics_to_json(&z, buf, sizeof buf);
        LZ_CHECK(n > 0 && strstr(buf, "\"messages_sent\":0") && strstr(buf, "\"active_connections\":0"));
        lz_context_destroy(&ctx);
    }
}

/* ---- the connection monitor ---------------------------------------------------- */

// A context opens two sockets of its own (its connection monitor's control
// pipe), and each node three. With zmq.max_sockets too small for the
// monitor, the context used to be made all the same, its monitor thread
// polling a NULL socket (stdin), and its destroy waited for ever on it.
LZ_TEST(context_with_too_few_sockets_fails_or_ends) {
    for (int max = 1; max <= 4; max++) {
        lz_config_t *cfg = quick_config();
        LZ_CHECK_INT(lz_config_set_int(cfg, "zmq.max_sockets", max), LZ_OK);
        int64_t start = lz_test_now_ms();
        lz_context_t *ctx = lz_context_new(cfg);
        lz_config_destroy(&cfg);
        if (max == 1) {
            LZ_CHECK(ctx == NULL);
            LZ_CHECK_INT(lz_last_error_code(), LZ_EZMQ);
            LZ_CHECK_STR(lz_last_error(), "context: cannot open the connection monitor's 2 sockets "
                                          "(zmq.max_sockets is 1): Too many open files");
            continue;
        }
        LZ_CHECK(ctx != NULL);
        char ep[128];
        lz_pub_t *pub = ctx ? lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep)) : NULL;
        LZ_CHECK(pub == NULL); // no room for its three sockets
        lz_context_destroy(&ctx);
        LZ_CHECK(lz_test_now_ms() - start < 2000 * LZ_TEST_SLOWDOWN);
    }
}

// libzmq adds its own threads to zmq.max_sockets in an int and reserves a
// slot per socket up front: INT_MAX - 2 and more overflowed and aborted
// the process (std::length_error), 1e9 failed for memory. The key stops
// at 2^20, which opens and works.
LZ_TEST(context_with_the_most_sockets_opens) {
    lz_config_t *cfg = quick_config();
    LZ_CHECK_INT(lz_config_set(cfg, "zmq.max_sockets", "2147483647"), LZ_ECONFIG);
    LZ_CHECK_INT(lz_config_set_int(cfg, "zmq.max_sockets", 1 << 20), LZ_OK);
    lz_context_t *ctx = lz_context_new(cfg);
    lz_config_destroy(&cfg);
    LZ_CHECK(ctx != NULL);
    char ep[128];
    lz_pub_t *pub = ctx ? lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep)) : NULL;
    LZ_CHECK(pub != NULL);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

// A monitor thread that left its loop used to leave every later request
// (a node made or closed, the context's destroy) waiting for ever for its
// answer. They now fail at once, and the context still ends.
LZ_TEST(context_ends_after_its_monitor_stopped) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    char ep[128];
    // The monitor's first poll with this node's events in it fails.
    atomic_store(&fail_monitor_poll_of, 2);
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    LZ_CHECK(pub != NULL);
    LZ_TEST_WAIT_UNTIL(atomic_load(&fail_monitor_poll_of) == 0, 2000);
    LZ_CHECK_INT(atomic_load(&fail_monitor_poll_of), 0);
    int64_t start = lz_test_now_ms();
    lz_pub_t *late = lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    LZ_CHECK(late == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ESTATE);
    LZ_CHECK(strstr(lz_last_error(), "the connection monitor has stopped") != NULL);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
    LZ_CHECK(lz_test_now_ms() - start < 2000 * LZ_TEST_SLOWDOWN);
}

// The application's own zmq_ctx_shutdown, as context.h names it: libzmq
// refuses new sockets, so a node made afterwards fails with LZ_ECLOSED
// (the header said LZ_ESTATE, which only the monitor's own end gives), a
// node open before it is destroyed promptly, and the context still ends.
LZ_TEST(nodes_made_after_zmq_ctx_shutdown_fail_closed) {
    lz_context_t *ctx = quick_context();
    if (!ctx) return;
    char ep[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    LZ_CHECK(pub != NULL);
    int64_t start = lz_test_now_ms();
    LZ_CHECK_INT(zmq_ctx_shutdown(lz_context_zmq(ctx)), 0);
    lz_sub_t *late = lz_sub_new(ctx, ep);
    LZ_CHECK(late == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECLOSED);
    LZ_CHECK(strstr(lz_last_error(), "Context was terminated") != NULL);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
    LZ_CHECK(lz_test_now_ms() - start < 2000 * LZ_TEST_SLOWDOWN);
}

/* ---- signals while the context ends ------------------------------------------ */

static int thread_count(void) {
    int n = 0;
    DIR *dir = opendir("/proc/self/task");
    for (struct dirent *e; dir && (e = readdir(dir)) != NULL;) n += e->d_name[0] != '.';
    if (dir) closedir(dir);
    return n;
}

// A signal during lz_context_destroy (a second Ctrl-C) interrupts
// zmq_ctx_term, which must then be restarted: given up, libzmq's threads
// would outlive the context. Signals every 50 us (100 at most per context),
// without SA_RESTART, over 50 contexts (without the restart, most runs of
// this test failed). Under ThreadSanitizer, two runs in three hung until
// the stop request to the connection monitor was restarted after EINTR too
// (see monitor_requests_survive_signals).
LZ_TEST(context_destroy_survives_signals) {
    // One context first: threads that start once and stay (ThreadSanitizer's
    // own) are then counted in before.
    lz_context_t *first = LZ_TEST_CONTEXT("zmq.linger=100", "logging.level=error");
    lz_context_destroy(&first);
    int before = thread_count();
    for (int round = 0; round < 50; round++) {
        lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=100", "logging.level=error");
        char ep[128];
        lz_pub_t *pub = ctx ? lz_pub_new(ctx, lz_test_ipc_endpoint(ep, sizeof ep)) : NULL;
        lz_sub_t *sub = pub ? lz_sub_new(ctx, ep) : NULL;
        lz_sub_destroy(&sub);
        lz_pub_destroy(&pub);
        lz_pester_t p;
        lz_pester_start(&p, 100, 50); // a bounded storm: endless signals could keep a restarted wait from ending
        lz_context_destroy(&ctx);
        lz_pester_stop(&p);
        // A joined thread leaves /proc/self/task a moment after its join
        // returns (the kernel wakes the joiner before reaping it).
        LZ_TEST_WAIT_UNTIL(thread_count() == before, 2000);
        LZ_CHECK_INT(thread_count(), before); // libzmq's and liberzmq's threads all ended
    }
}

// Each node a context makes or closes is a request to its connection
// monitor's thread and an answer, over an inproc pipe. A signal during
// that exchange made the call fail with EINTR and was taken as the
// monitor's refusal: lz_pub_new returned NULL ("cannot monitor socket"),
// and the answer left unread was taken for the next request's. Every
// node must come and go under a signal every 20 us (without the restart,
// most runs failed): at least 100 rounds and 300 signals, 300 rounds at
// most (ThreadSanitizer's runtime sends far fewer). A round makes one node,
// a subscriber (three sockets with its monitor's two): closed sockets count
// against libzmq's 1023 until its reaper thread ends them, which a loaded
// machine can delay, and under ThreadSanitizer with signals it ended none.
LZ_TEST(monitor_requests_survive_signals) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=error");
    char ep[128];
    lz_pub_t *pub = lz_pub_new(ctx, lz_test_inproc_endpoint(ep, sizeof ep));
    LZ_CHECK(pub != NULL);
    lz_pester_t p;
    lz_pester_start(&p, 200000, 20);
    int rounds = 0, made = 0;
    for (; rounds < 100 || (atomic_load(&p.sent) < 300 && rounds < 300); rounds++) {
        lz_sub_t *sub = lz_sub_new(ctx, ep);
        made += sub != NULL;
        lz_sub_destroy(&sub);
    }
    int sent = lz_pester_stop(&p);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
    LZ_CHECK_INT(made, rounds);
    LZ_CHECK(sent > 0); // the storm did blow while they came and went
}

LZ_TEST_MAIN(LZ_CASE(context_defaults_without_environment), LZ_CASE(context_reads_environment),
             LZ_CASE(context_reads_config_file_then_environment),
             LZ_CASE(context_heartbeat_interval_reaches_every_socket),
             LZ_CASE(context_bad_config_fails_naming_the_key), LZ_CASE(context_copies_its_config),
             LZ_CASE(context_destroyed_before_its_nodes), LZ_CASE(context_destroyed_while_scraped),
             LZ_CASE(context_destroy_survives_signals),
             LZ_CASE(monitor_requests_survive_signals),
             LZ_CASE(context_shutdown_bounded_with_dead_peer_ctx_first),
             LZ_CASE(context_shutdown_bounded_with_dead_peer_node_first), LZ_CASE(context_nodes_recreated_at_once),
             LZ_CASE(context_close_while_peer_disconnects),
             LZ_CASE(context_metrics_sum_live_and_closed_nodes), LZ_CASE(context_active_connections_tcp),
             LZ_CASE(context_active_connections_ipc), LZ_CASE(context_active_connections_peer_dies),
             LZ_CASE(context_failed_bind_counted), LZ_CASE(context_metrics_to_json_has_every_field),
             LZ_CASE(context_with_too_few_sockets_fails_or_ends), LZ_CASE(context_with_the_most_sockets_opens),
             LZ_CASE(context_ends_after_its_monitor_stopped),
             LZ_CASE(nodes_made_after_zmq_ctx_shutdown_fail_closed))
