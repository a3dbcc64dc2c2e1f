/* Plugins: the sample plugins (examples/plugins) loaded by path and from
 * plugins.load, their codec end to end, their node and span callbacks on
 * nodes made after the load, fini at context destroy; the load errors'
 * exact details (tests/plugins: broken plugins); reloads that add to
 * plugins.load, or take a path out of it; an init that calls back. This program links the
 * shared liberzmq, as the plugins do (tests/CMakeLists.txt). */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void); // sanitizer/allocator_interface.h, not always installed
#endif

#include "lz_test.h"

// The context's log records as "component: message" lines (the plugins'
// own log through the context's, and fini's line at destroy).
typedef struct {
    pthread_mutex_t lock;
    char text[4096];
} capture_t;
#define CAPTURE_INIT                                                                                                   \
    { .lock = PTHREAD_MUTEX_INITIALIZER, .text = "" }

static void capture_log(lz_log_level_t level, const char *component, const char *message, void *arg) {
    capture_t *c = arg;
    (void)level;
    pthread_mutex_lock(&c->lock);
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, "%s: %s\n", component, message);
    pthread_mutex_unlock(&c->lock);
}

static lz_context_t *capturing_context(capture_t *c) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=info");
    if (ctx) LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), capture_log, c), LZ_OK);
    return ctx;
}

// expect_load_error: loading path fails with code and exactly the detail.
static void expect_load_error(const char *path, int code, const char *detail) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, path), code);
    LZ_CHECK_STR(lz_last_error(), detail);
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 0);
    lz_context_destroy(&ctx);
}

// receive_published publishes value under topic until sub gets it (the
// subscription takes a moment to reach the publisher).
static lz_message_t *receive_published(lz_pub_t *pub, lz_sub_t *sub, const char *topic, const lz_value_t *value) {
    for (int attempt = 0; attempt < 100; attempt++) {
        LZ_CHECK_INT(lz_pub_publish(pub, topic, value), LZ_OK);
        lz_message_t *msg = lz_sub_recv(sub, 50);
        if (msg) return msg;
    }
    return NULL;
}

LZ_TEST(rot13_codec_end_to_end) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_ROT13), LZ_OK);
    lz_plugin_info_t info[2];
    LZ_CHECK_INT(lz_context_plugins(ctx, info, 2), 1);
    LZ_CHECK_STR(info[0].name, "rot13");
    LZ_CHECK_STR(info[0].version, "1.0.0");
    LZ_CHECK_STR(info[0].path, LZ_PLUGIN_ROT13);
    lz_pub_t *pub = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    lz_sub_t *sub = pub ? lz_sub_new(ctx, lz_node_endpoint(lz_pub_node(pub))) : NULL;
    LZ_CHECK(sub != NULL);
    if (sub) {
        LZ_CHECK_INT(lz_node_set_serializer(lz_pub_node(pub), "json+rot13"), LZ_OK);
        LZ_CHECK_INT(lz_node_set_serializer(lz_sub_node(sub), "json+rot13"), LZ_OK);
        LZ_CHECK_INT(lz_sub_subscribe(sub, "prices."), LZ_OK);
        lz_value_t *tick = lz_value_object();
        LZ_CHECK_INT(lz_value_object_set_string(tick, "symbol", "BTC"), LZ_OK);
        lz_message_t *msg = receive_published(pub, sub, "prices.BTC", tick);
        LZ_CHECK(msg != NULL);
        size_t size = 0;
        const char *wire = lz_message_payload(msg, &size);
        LZ_CHECK(wire && memmem(wire, size, "flzoby", 6) != NULL); // "symbol", turned
        LZ_CHECK_STR(lz_value_find_string(lz_message_value(msg), "symbol", NULL), "BTC");
        lz_message_destroy(&msg);
        lz_value_destroy(&tick);
    }
    lz_sub_destroy(&sub);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

LZ_TEST(node_callbacks_apply_to_nodes_made_after_the_load) {
    capture_t log = CAPTURE_INIT;
    lz_context_t *ctx = capturing_context(&log);
    lz_pub_t *before = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_AUDIT), LZ_OK);
    lz_pub_t *after = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(before && after);
    lz_value_t *v = lz_value_int(1);
    LZ_CHECK_INT(lz_pub_publish(before, "internal.x", v), LZ_OK); // made before: no hook
    LZ_CHECK_INT(lz_pub_publish(after, "internal.x", v), LZ_EVALIDATION);
    LZ_CHECK_STR(lz_last_error(), "pub: 'internal.x' refused: audit: keys under 'internal.' stay inside");
    LZ_CHECK_INT(lz_pub_publish(after, "public.x", v), LZ_OK);
    lz_value_destroy(&v);
    lz_pub_destroy(&after);
    lz_pub_destroy(&before);
    LZ_CHECK(strstr(log.text, "audit: 1 sent") == NULL); // fini waits for the context
    lz_context_destroy(&ctx);
    LZ_CHECK(strstr(log.text, "audit: 1 sent, 1 refused, 0 received, 0 spans\n") != NULL);
}

// spans_reach_plugins: a pusher's PRODUCER span and a puller's CONSUMER
// span reach the audit plugin's span callback, besides lz_context_on_span's.
static void count_span(const lz_span_t *span, void *arg) {
    (void)span;
    atomic_fetch_add((atomic_int *)arg, 1);
}

LZ_TEST(spans_reach_plugins) {
    capture_t log = CAPTURE_INIT;
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "tracing.enabled=true", "plugins.load=" LZ_PLUGIN_AUDIT);
    atomic_int spans = 0;
    LZ_CHECK_INT(lz_logger_to_callback(lz_context_logger(ctx), capture_log, &log), LZ_OK);
    LZ_CHECK_INT(lz_context_on_span(ctx, count_span, &spans), LZ_OK);
    lz_pull_t *pull = lz_pull_new(ctx, "tcp://127.0.0.1:*");
    lz_push_t *push = pull ? lz_push_new(ctx, lz_node_endpoint(lz_pull_node(pull))) : NULL;
    LZ_CHECK(push != NULL);
    if (push) {
        lz_value_t *v = lz_value_int(7);
        LZ_CHECK_INT(lz_push_send(push, "work", v, 0), LZ_OK);
        lz_message_t *msg = lz_pull_recv(pull, 5000);
        LZ_CHECK(msg != NULL);
        lz_message_destroy(&msg);
        lz_value_destroy(&v);
    }
    lz_push_destroy(&push);
    lz_pull_destroy(&pull);
    int seen = atomic_load(&spans);
    LZ_CHECK(seen >= 1);
    lz_context_destroy(&ctx);
    char want[128];
    snprintf(want, sizeof want, "audit: 1 sent, 0 refused, 1 received, %d spans\n", seen);
    LZ_CHECK(strstr(log.text, want) != NULL);
}

LZ_TEST(plugins_load_from_config_and_environment) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=warning",
                                        "plugins.load= " LZ_PLUGIN_ROT13 " , " LZ_PLUGIN_AUDIT ",");
    lz_plugin_info_t info[3];
    LZ_CHECK_INT(lz_context_plugins(ctx, info, 3), 2);
    LZ_CHECK_STR(info[0].name, "rot13"); // in the list's order
    LZ_CHECK_STR(info[1].name, "audit");
    LZ_CHECK(lz_serializer_find(ctx, "json+rot13") != NULL);
    lz_context_destroy(&ctx);

    setenv("LIBERZMQ_PLUGINS__LOAD", LZ_PLUGIN_ROT13, 1);
    ctx = lz_context_new(NULL);
    LZ_CHECK(ctx != NULL);
    LZ_CHECK_INT(lz_context_plugins(ctx, info, 1), 1);
    lz_context_destroy(&ctx);

    // A plugin that cannot load fails the context, with its detail.
    setenv("LIBERZMQ_PLUGINS__LOAD", LZ_PLUGIN_ROT13 ",/nonexistent/x.so", 1);
    ctx = lz_context_new(NULL);
    unsetenv("LIBERZMQ_PLUGINS__LOAD");
    LZ_CHECK(ctx == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_ECONFIG);
    LZ_CHECK_STR(lz_last_error(), "plugin /nonexistent/x.so: cannot load it: /nonexistent/x.so: cannot open "
                                  "shared object file: No such file or directory");
    lz_context_destroy(&ctx);
}

LZ_TEST(load_errors_name_the_path_and_the_reason) {
    expect_load_error("/nonexistent/x.so", LZ_ECONFIG,
                      "plugin /nonexistent/x.so: cannot load it: /nonexistent/x.so: cannot open shared object "
                      "file: No such file or directory");
    expect_load_error(LZ_PLUGIN_NO_SYMBOL, LZ_ECONFIG,
                      "plugin " LZ_PLUGIN_NO_SYMBOL ": no lz_plugin_descriptor symbol: " LZ_PLUGIN_NO_SYMBOL
                      ": undefined symbol: lz_plugin_descriptor");
    char detail[512];
    snprintf(detail, sizeof detail,
             "plugin %s: built for plugin ABI %d, this liberzmq has ABI %d: rebuild it with liberzmq %s's headers",
             LZ_PLUGIN_BAD_ABI, LZ_PLUGIN_ABI_VERSION + 98, LZ_PLUGIN_ABI_VERSION, lz_version());
    expect_load_error(LZ_PLUGIN_BAD_ABI, LZ_ECONFIG, detail);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_ROT13), LZ_OK);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_ROT13), LZ_ESTATE);
    LZ_CHECK_STR(lz_last_error(),
                 "plugin " LZ_PLUGIN_ROT13 ": a plugin named 'rot13' is already loaded (from " LZ_PLUGIN_ROT13 ")");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, ""), LZ_EINVAL);
    LZ_CHECK_INT(lz_context_load_plugin(NULL, LZ_PLUGIN_ROT13), LZ_EINVAL);
    LZ_CHECK_INT(lz_context_plugins(NULL, NULL, 0), 0);
    lz_context_destroy(&ctx);
}

// A failed init leaves nothing registered, so trying it again fails for
// init's own reason: its codec used to stay, and the retry failed on the
// name taken (LZ_ESTATE).
LZ_TEST(a_failed_init_leaves_nothing_registered) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    for (int attempt = 0; attempt < 2; attempt++) {
        LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_INIT_FAILS), LZ_ECONFIG);
        LZ_CHECK_STR(lz_last_error(),
                     "plugin " LZ_PLUGIN_INIT_FAILS " (init_fails 0.1.0): init failed: no licence key");
    }
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 0);
    LZ_CHECK(lz_serializer_find(ctx, "leftover") == NULL);
    lz_pair_t *pair = lz_pair_new(ctx, "tcp://127.0.0.1:*"); // its refusing callback is gone
    LZ_CHECK(pair != NULL);
    lz_pair_destroy(&pair);
    lz_context_destroy(&ctx);
}

// heap_in_use: the bytes the allocator has handed out and not had back.
static size_t heap_in_use(void) {
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

// Each failed load of the same file used to add an entry to the context's
// list, which never shrinks (a reload a minute, or a watcher's reload per
// change, retrying it): the list grew, and its unload recursed once per
// entry at destroy.
LZ_TEST(retrying_a_failed_plugin_does_not_grow_the_context) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=off");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_INIT_FAILS), LZ_ECONFIG);
    size_t before = heap_in_use();
    enum { RETRIES = 1000 };
    for (int i = 0; i < RETRIES; i++) LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_INIT_FAILS), LZ_ECONFIG);
    size_t after = heap_in_use();
    LZ_CHECK(after < before + RETRIES * 16); // an entry and its path are over 100 bytes
    lz_context_destroy(&ctx);
}

LZ_TEST(a_node_callback_refuses_nodes_of_its_kind) {
    capture_t log = CAPTURE_INIT;
    lz_context_t *ctx = capturing_context(&log);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_REFUSE_PAIR), LZ_OK);
    lz_pair_t *pair = lz_pair_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(pair == NULL);
    LZ_CHECK_INT(lz_last_error_code(), LZ_EVALIDATION);
    LZ_CHECK_STR(lz_last_error(), "pair: plugin 'refuse_pair' refused the node: pairs are not allowed here");
    // Other kinds pass; registering after init is refused.
    lz_pub_t *pub = lz_pub_new(ctx, "tcp://127.0.0.1:*");
    LZ_CHECK(pub != NULL);
    LZ_CHECK(strstr(log.text, "refuse_pair: lz_plugin_on_span: plugin 'refuse_pair': only during its init, on the "
                              "thread running it\n") != NULL);
    lz_pub_destroy(&pub);
    lz_context_destroy(&ctx);
}

// Loads while another thread makes nodes: each node sees a plugin whole or
// not at all (the list is published with release, walked with acquire);
// ThreadSanitizer checks the hand-over.
static void *make_nodes(void *arg) {
    for (int i = 0; i < 50; i++) {
        lz_pub_t *pub = lz_pub_new(arg, NULL);
        LZ_CHECK(pub != NULL);
        lz_pub_destroy(&pub);
    }
    return NULL;
}

LZ_TEST(loads_race_with_node_creation) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=warning");
    pthread_t maker;
    LZ_CHECK_INT(pthread_create(&maker, NULL, make_nodes, ctx), 0);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_AUDIT), LZ_OK);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_ROT13), LZ_OK);
    pthread_join(maker, NULL);
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 2);
    lz_context_destroy(&ctx);
}

/* ---- reloads ---- */

// reload_plugins reloads ctx (capturing_context's settings) with plugins.load set to list.
static int reload_plugins(lz_context_t *ctx, const char *list) {
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "logging.level=info");
    LZ_CHECK_INT(lz_config_set(cfg, "plugins.load", list), LZ_OK);
    int rc = lz_context_reload(ctx, cfg);
    lz_config_destroy(&cfg);
    return rc;
}

static bool logged(capture_t *c, const char *text) {
    pthread_mutex_lock(&c->lock);
    bool found = strstr(c->text, text) != NULL;
    pthread_mutex_unlock(&c->lock);
    return found;
}

LZ_TEST(a_reload_loads_added_plugins_and_keeps_removed_ones) {
    capture_t log = CAPTURE_INIT;
    lz_context_t *ctx = capturing_context(&log);
    LZ_CHECK(lz_serializer_find(ctx, "json+rot13") == NULL);
    LZ_CHECK_INT(reload_plugins(ctx, LZ_PLUGIN_ROT13), LZ_OK);
    LZ_CHECK(lz_serializer_find(ctx, "json+rot13") != NULL);
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 1);

    // Listed again beside a new one: only the new one loads.
    LZ_CHECK_INT(reload_plugins(ctx, " " LZ_PLUGIN_ROT13 " , " LZ_PLUGIN_AUDIT), LZ_OK);
    lz_plugin_info_t info[4];
    LZ_CHECK_INT(lz_context_plugins(ctx, info, 4), 2);
    LZ_CHECK_STR(info[1].name, "audit");

    // A path that is no plugin refuses the reload whole: the good new one
    // beside it is not loaded either, and no live key changes.
    const lz_config_t *before = lz_context_config(ctx);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "logging.level=error");
    LZ_CHECK_INT(lz_config_set(cfg, "plugins.load", LZ_PLUGIN_ROT13 "," LZ_PLUGIN_AUDIT "," LZ_PLUGIN_REFUSE_PAIR
                                                    ",/nonexistent/x.so"), LZ_OK);
    LZ_CHECK_INT(lz_context_reload(ctx, cfg), LZ_ECONFIG);
    lz_config_destroy(&cfg);
    LZ_CHECK_STR(lz_last_error(), "plugin /nonexistent/x.so: cannot load it: /nonexistent/x.so: cannot open shared "
                                  "object file: No such file or directory");
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 2);
    LZ_CHECK(lz_context_config(ctx) == before);
    LZ_CHECK_INT(lz_logger_level(lz_context_logger(ctx)), LZ_LOG_INFO);
    lz_pair_t *pair = lz_pair_new(ctx, "tcp://127.0.0.1:*"); // refuse_pair's callback is not on
    LZ_CHECK(pair != NULL);
    lz_pair_destroy(&pair);

    // A path taken out stays loaded: the reload says a restart is needed.
    LZ_CHECK_INT(reload_plugins(ctx, LZ_PLUGIN_ROT13), 1);
    LZ_CHECK_INT(lz_last_error_code(), LZ_OK);
    LZ_CHECK(strstr(lz_last_error(), "restart needed to apply plugins.load") != NULL);
    LZ_CHECK(logged(&log, "config: reload from lz_context_reload: plugins.load no longer lists " LZ_PLUGIN_AUDIT
                          ": a plugin cannot be unloaded while its code may be in use, so it stays loaded until a "
                          "restart\n"));
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 2);
    // Listed again, it is loaded already: nothing to do.
    LZ_CHECK_INT(reload_plugins(ctx, LZ_PLUGIN_ROT13 "," LZ_PLUGIN_AUDIT), LZ_OK);
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 2);
    lz_context_destroy(&ctx);
}

LZ_TEST(a_reload_whose_plugin_init_fails_keeps_the_plugins_loaded_before_it) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=off");
    const lz_config_t *before = lz_context_config(ctx);
    lz_config_t *cfg = LZ_TEST_CONFIG("zmq.linger=0", "logging.level=off");
    LZ_CHECK_INT(lz_config_set(cfg, "plugins.load", LZ_PLUGIN_ROT13 "," LZ_PLUGIN_INIT_FAILS), LZ_OK);
    LZ_CHECK_INT(lz_context_reload(ctx, cfg), LZ_ECONFIG);
    LZ_CHECK_STR(lz_last_error(), "plugin " LZ_PLUGIN_INIT_FAILS " (init_fails 0.1.0): init failed: no licence key");
    // rot13's init ran: it cannot be taken back, so it stays (documented).
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 1);
    LZ_CHECK(lz_context_config(ctx) == before);
    lz_config_destroy(&cfg);
    lz_context_destroy(&ctx);
}

// expect_calls_back_refused: calls_back's init, whose log is log, was
// refused every call that could wait for its own load.
static void expect_calls_back_refused(capture_t *log) {
    static const char *const refused[] = {
        "lz_context_reload: called from the init of plugin 'calls_back': a plugin's init cannot reload a context",
        ("lz_context_watch: called from the init of plugin 'calls_back': a plugin's init cannot watch a "
         "configuration file"),
        "lz_context_load_plugin: called from the init of plugin 'calls_back': a plugin's init cannot load plugins",
        "plugins.load: called from the init of plugin 'calls_back': a plugin's init cannot load plugins",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "calls_back: %s\n", refused[i]);
        LZ_CHECK(logged(log, line));
    }
}

// calls_back's init makes a context, and asks for a reload of its own, a
// watch and loads: they are refused, naming it, instead of waiting for the
// load lock its own load holds. Loads from elsewhere work as before
// afterwards. Loaded by a reload, its reload used to wait for ever for the
// reload lock its own reload held.
LZ_TEST(an_init_may_call_back_but_not_load_plugins) {
    capture_t log = CAPTURE_INIT;
    lz_context_t *ctx = capturing_context(&log);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_CALLS_BACK), LZ_OK);
    expect_calls_back_refused(&log);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_ROT13), LZ_OK);
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 2);
    lz_context_destroy(&ctx);

    capture_t reloaded = CAPTURE_INIT;
    ctx = capturing_context(&reloaded);
    LZ_CHECK_INT(reload_plugins(ctx, LZ_PLUGIN_CALLS_BACK), LZ_OK);
    expect_calls_back_refused(&reloaded);
    LZ_CHECK_INT(lz_context_plugins(ctx, NULL, 0), 1);
    lz_context_destroy(&ctx);
}

// A thread a plugin's init starts is refused every registration, even
// while init runs: one that registered went on after init returned, while
// nodes walked the plugin's callbacks unlocked (a crash).
LZ_TEST(registrations_from_another_thread_are_refused) {
    capture_t log = CAPTURE_INIT;
    lz_context_t *ctx = capturing_context(&log);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_REGISTERS_OFF_THREAD), LZ_OK);
    LZ_CHECK(logged(&log, "off_thread: lz_plugin_register_serializer: plugin 'off_thread': only during its init, on "
                          "the thread running it\n"));
    LZ_CHECK(lz_serializer_find(ctx, "off_thread") == NULL);
    lz_context_destroy(&ctx);
}

// Every fini runs before any plugin is unloaded: audit's fini logs through
// the callback keeps_logger's failed init set, whose code was unmapped
// first (it was loaded last), a crash.
LZ_TEST(every_fini_runs_before_any_plugin_is_unloaded) {
    char path[] = "/tmp/lz-kept-log-XXXXXX";
    int fd = mkstemp(path);
    LZ_CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    setenv("LZ_TEST_KEPT_LOG", path, 1);
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=info");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_AUDIT), LZ_OK);
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_KEEPS_LOGGER), LZ_ECONFIG);
    lz_context_destroy(&ctx);
    unsetenv("LZ_TEST_KEPT_LOG");
    char text[512] = "";
    FILE *file = fopen(path, "r");
    LZ_CHECK(file != NULL);
    if (file) {
        text[fread(text, 1, sizeof text - 1, file)] = '\0';
        fclose(file);
    }
    LZ_CHECK(strstr(text, "audit: 0 sent, 0 refused, 0 received, 0 spans\n") != NULL);
    unlink(path);
}

typedef struct {
    const char *path;
    atomic_bool loaded;
} fifo_writer_t;

// open_fifo_for_writing lets a load blocked reading the FIFO go, should it
// not have returned within 2 s: it reads end of file. The load used to
// wait there for ever, holding the dynamic loader's lock.
static void *open_fifo_for_writing(void *arg) {
    fifo_writer_t *writer = arg;
    LZ_TEST_WAIT_UNTIL(atomic_load(&writer->loaded), 2000 * LZ_TEST_SLOWDOWN);
    while (!atomic_load(&writer->loaded)) {
        int fd = open(writer->path, O_WRONLY | O_NONBLOCK); // fails until the loader opens it
        if (fd >= 0) close(fd);
        lz_test_sleep_ms(10);
    }
    return NULL;
}

// A path that names no regular file is refused before dlopen, which waits
// on a FIFO for a writer: LZ_ECONFIG at once.
LZ_TEST(a_path_that_is_no_regular_file_is_refused) {
    char dir[] = "/tmp/lz-fifo-XXXXXX", fifo[64], detail[256];
    LZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(fifo, sizeof fifo, "%s/plugin.so", dir);
    LZ_CHECK_INT(mkfifo(fifo, 0600), 0);
    fifo_writer_t writer = {.path = fifo};
    pthread_t thread;
    LZ_CHECK_INT(pthread_create(&thread, NULL, open_fifo_for_writing, &writer), 0);
    snprintf(detail, sizeof detail, "plugin %s: cannot load it: not a regular file", fifo);
    expect_load_error(fifo, LZ_ECONFIG, detail);
    atomic_store(&writer.loaded, true);
    pthread_join(thread, NULL);
    snprintf(detail, sizeof detail, "plugin %s: cannot load it: not a regular file", dir);
    expect_load_error(dir, LZ_ECONFIG, detail);
    unlink(fifo);
    rmdir(dir);
}

// A plugin written in C++ (LZ_PLUGIN_DEFINE compiles there without a
// warning: tests/CMakeLists.txt builds it with -Werror) loads.
LZ_TEST(a_cxx_plugin_loads) {
    lz_context_t *ctx = LZ_TEST_CONTEXT("zmq.linger=0");
    LZ_CHECK_INT(lz_context_load_plugin(ctx, LZ_PLUGIN_CXX), LZ_OK);
    lz_plugin_info_t info;
    LZ_CHECK_INT(lz_context_plugins(ctx, &info, 1), 1);
    LZ_CHECK_STR(info.name, "cxx");
    lz_context_destroy(&ctx);
}

LZ_TEST_MAIN(LZ_CASE(rot13_codec_end_to_end), LZ_CASE(node_callbacks_apply_to_nodes_made_after_the_load),
             LZ_CASE(spans_reach_plugins), LZ_CASE(plugins_load_from_config_and_environment),
             LZ_CASE(load_errors_name_the_path_and_the_reason), LZ_CASE(a_failed_init_leaves_nothing_registered),
             LZ_CASE(retrying_a_failed_plugin_does_not_grow_the_context),
             LZ_CASE(a_node_callback_refuses_nodes_of_its_kind), LZ_CASE(loads_race_with_node_creation),
             LZ_CASE(a_reload_loads_added_plugins_and_keeps_removed_ones),
             LZ_CASE(a_reload_whose_plugin_init_fails_keeps_the_plugins_loaded_before_it),
             LZ_CASE(an_init_may_call_back_but_not_load_plugins),
             LZ_CASE(registrations_from_another_thread_are_refused),
             LZ_CASE(every_fini_runs_before_any_plugin_is_unloaded),
             LZ_CASE(a_path_that_is_no_regular_file_is_refused), LZ_CASE(a_cxx_plugin_loads))
