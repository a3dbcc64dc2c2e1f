/* A tiny test harness: LZ_TEST functions, checks that report file:line and
 * keep going, a whole-program alarm so no test can hang, and helpers for
 * free endpoints and Python peers. */
#ifndef LZ_TEST_H
#define LZ_TEST_H

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "liberzmq.h"

extern char **environ;

// Atomic: checks also run on threads a test starts (handlers, callbacks,
// helper threads), at the same time as the test's own.
static _Atomic int lz_test_failures;
static _Atomic int lz_test_checks;

#define LZ_CHECK(cond)                                                          \
    do {                                                                        \
        lz_test_checks++;                                                       \
        if (!(cond)) {                                                          \
            lz_test_failures++;                                                 \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",       \
                    __FILE__, __LINE__, #cond, lz_last_error());                \
        }                                                                       \
    } while (0)

#define LZ_CHECK_INT(a, b)                                                      \
    do {                                                                        \
        long long lz_a_ = (long long)(a), lz_b_ = (long long)(b);               \
        lz_test_checks++;                                                       \
        if (lz_a_ != lz_b_) {                                                   \
            lz_test_failures++;                                                 \
            fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld (last error: %s)\n", \
                    __FILE__, __LINE__, #a, lz_a_, #b, lz_b_, lz_last_error()); \
        }                                                                       \
    } while (0)

#define LZ_CHECK_STR(a, b)                                                      \
    do {                                                                        \
        const char *lz_a_ = (a), *lz_b_ = (b);                                  \
        lz_test_checks++;                                                       \
        if (!lz_a_ || !lz_b_ || strcmp(lz_a_, lz_b_) != 0) {                    \
            lz_test_failures++;                                                 \
            fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__,  \
                    __LINE__, #a, lz_a_ ? lz_a_ : "(null)", lz_b_ ? lz_b_ : "(null)"); \
        }                                                                       \
    } while (0)

typedef void (*lz_test_fn)(void);
typedef struct { const char *name; lz_test_fn fn; } lz_test_case_t;

#define LZ_TEST(name) static void name(void)

// Under ThreadSanitizer (LZ_TEST_TSAN: the LZ_TSAN build) programs run
// 5-15x slower, and so do the lz processes test_cli starts: the alarm (and
// ctest's TIMEOUT, tests/CMakeLists.txt) allow for it. Under valgrind (make
// test's valgrind pass) the environment's LZ_TEST_SLOWDOWN says by how much.
#ifdef LZ_TEST_TSAN
#define LZ_TEST_BUILD_SLOWDOWN 3
#else
#define LZ_TEST_BUILD_SLOWDOWN 1
#endif

// lz_test_slowdown: the factor timeouts and alarms are multiplied by, read
// once. Relaxed atomics: any thread may be first, and all read the same.
static inline int lz_test_slowdown(void) {
    static int factor;
    int f = __atomic_load_n(&factor, __ATOMIC_RELAXED);
    if (!f) {
        const char *env = getenv("LZ_TEST_SLOWDOWN");
        f = env && atoi(env) > 0 ? atoi(env) : LZ_TEST_BUILD_SLOWDOWN;
        __atomic_store_n(&factor, f, __ATOMIC_RELAXED);
    }
    return f;
}
#define LZ_TEST_SLOWDOWN lz_test_slowdown()

// lz_test_under_valgrind: whether this program runs under make test's
// valgrind pass (tests/CMakeLists.txt sets LZ_TEST_VALGRIND). valgrind runs
// one thread at a time, so a check that threads overlap cannot hold there.
static inline bool lz_test_under_valgrind(void) { return getenv("LZ_TEST_VALGRIND") != NULL; }

// lz_test_count_handler is a message handler that counts its calls in the
// atomic_int at arg, from any thread, and succeeds.
static inline int lz_test_count_handler(const lz_message_t *msg, void *arg) {
    (void)msg;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

// lz_test_run runs each case in turn and prints "N passed, N failed". With
// LZ_TEST_ONLY set it runs only the case of that name (for a developer
// chasing one case; ctest never sets it).
static inline int lz_test_run(const lz_test_case_t *cases, size_t n, unsigned alarm_seconds) {
    const char *only = getenv("LZ_TEST_ONLY");
    // A hung test dies loudly instead of stalling ctest.
    alarm((alarm_seconds ? alarm_seconds : 90) * LZ_TEST_SLOWDOWN);
    signal(SIGPIPE, SIG_IGN);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && *only && strcmp(only, cases[i].name) != 0) continue;
        int before = lz_test_failures;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        int ok = lz_test_failures == before;
        printf("%s %s (%.0f ms)\n", ok ? "ok  " : "FAIL", cases[i].name, ms);
        ok ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

// A program whose cases together run long (test_cli: some sixty cases,
// each starting lz processes) defines LZ_TEST_ALARM_SECONDS before
// including this header; 0 is lz_test_run's 90 s.
#ifndef LZ_TEST_ALARM_SECONDS
#define LZ_TEST_ALARM_SECONDS 0
#endif
#define LZ_TEST_MAIN(...)                                                       \
    int main(void) {                                                            \
        static const lz_test_case_t cases[] = {__VA_ARGS__};                    \
        return lz_test_run(cases, sizeof cases / sizeof cases[0], LZ_TEST_ALARM_SECONDS); \
    }
#define LZ_CASE(fn) {#fn, fn}
#define LZ_STR_(x) #x
#define LZ_STR(x) LZ_STR_(x)

// lz_test_ipc_endpoint writes a fresh ipc:// endpoint in a private temp dir.
static inline const char *lz_test_ipc_endpoint(char *buf, size_t size) {
    static char dir[64];
    static int counter;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/lztest.XXXXXX");
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(2); }
    }
    snprintf(buf, size, "ipc://%s/s%d", dir, counter++);
    return buf;
}

// lz_test_inproc_endpoint writes a fresh inproc:// endpoint.
static inline const char *lz_test_inproc_endpoint(char *buf, size_t size) {
    static int counter;
    snprintf(buf, size, "inproc://lztest-%d-%d", (int)getpid(), counter++);
    return buf;
}

// lz_test_plain_socket opens a plain libzmq socket of type in the libzmq
// context zmq_ctx: the peer a pyzmq or CZMQ program would be. Its LINGER
// is 0, so closing it never waits for a peer gone; timeout_ms >= 0 becomes
// its receive timeout (-1 keeps libzmq's wait without end). endpoint, when
// not NULL, is connected, or bound when it starts with '@' as liberzmq's
// endpoints do; options that must come first are set on a socket opened
// with NULL, which the test then connects itself. The caller closes it
// with zmq_close. A failure is a failed check (NULL if none was opened).
static inline void *lz_test_plain_socket(void *zmq_ctx, int type, int timeout_ms, const char *endpoint) {
    lz_test_checks++;
    void *s = zmq_socket(zmq_ctx, type);
    const char *failed = !s ? "zmq_socket" : NULL;
    if (s) {
        int zero = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
        if (timeout_ms >= 0) zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
        bool bind = endpoint && endpoint[0] == '@';
        if (endpoint && (bind ? zmq_bind(s, endpoint + 1) : zmq_connect(s, endpoint)) != 0)
            failed = bind ? "bind" : "connect";
    }
    if (failed) {
        lz_test_failures++;
        fprintf(stderr, "lz_test_plain_socket: %s %s: %s\n", failed, endpoint ? endpoint : "",
                zmq_strerror(zmq_errno()));
    }
    return s;
}

// lz_test_bound_endpoint writes where socket s last bound (a wildcard port
// resolved) to buf and returns buf.
static inline const char *lz_test_bound_endpoint(void *s, char *buf, size_t size) {
    buf[0] = '\0';
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, buf, &size);
    return buf;
}

// lz_test_next_function stores in *fn, a function pointer, the definition
// of name that comes after the program's own (dlsym's RTLD_NEXT): the
// libzmq or libc function that a test's stand-in for it passes calls on
// to. ISO C has no cast from void * to a function; POSIX's way is to copy
// the pointer's bytes.
static inline void lz_test_next_function(void *fn, const char *name) {
    void *symbol = dlsym(RTLD_NEXT, name);
    memcpy(fn, &symbol, sizeof symbol);
}

// lz_test_spawn_python starts /usr/bin/python3 on tests/interop/<script>
// with args; returns the pid (or -1). Reap with lz_test_wait.
static inline pid_t lz_test_spawn_python(const char *script, const char *arg1, const char *arg2) {
    char path[1024];
    snprintf(path, sizeof path, "%s/interop/%s", LZ_TEST_DIR, script);
    char *argv[] = {(char *)LZ_PYTHON, path, (char *)arg1, (char *)arg2, NULL};
    if (!arg1) argv[2] = NULL;
    else if (!arg2) argv[3] = NULL;
    pid_t pid;
    if (posix_spawn(&pid, LZ_PYTHON, NULL, NULL, argv, environ) != 0) return -1;
    return pid;
}

// lz_test_exited reaps pid if it has ended: its exit status (-1 for a
// signal), or -2 while it runs. Does not wait.
static inline int lz_test_exited(pid_t pid) {
    int status;
    if (waitpid(pid, &status, WNOHANG) != pid) return -2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// lz_test_feed waits up to rounds times 10 ms for pid, calling feed(arg,
// round) before each 10 ms (a peer that exits once it has what it wants:
// publish until the slow joiner has caught some); kills it after that.
// Returns its exit status, or -1 if it never started or had to be killed.
static inline int lz_test_feed(pid_t pid, int rounds, void (*feed)(void *arg, int round), void *arg) {
    if (pid <= 0) return -1; // a failed spawn: kill(-1, ...) would hit every process we own
    for (int round = 0; round < rounds; round++) {
        int status = lz_test_exited(pid);
        if (status != -2) return status;
        if (feed) feed(arg, round);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

// lz_test_wait waits up to timeout_ms for pid; kills it after that.
// Returns its exit status, or -1 if it never started or had to be killed.
static inline int lz_test_wait(pid_t pid, int timeout_ms) {
    return lz_test_feed(pid, (timeout_ms + 9) / 10, NULL, NULL); // a look every 10 ms begun
}

static inline void lz_test_sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

// lz_test_now_ms: a monotonic clock in milliseconds, for bounded waits.
static inline int64_t lz_test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// LZ_TEST_WAIT_UNTIL polls cond every 2 ms for up to timeout_ms; check cond after.
#define LZ_TEST_WAIT_UNTIL(cond, timeout_ms)                                                                                   \
    for (int64_t wait_end_ = lz_test_now_ms() + (timeout_ms); !(cond) && lz_test_now_ms() < wait_end_;)                \
    lz_test_sleep_ms(2)

// lz_test_replace_file writes text next to path and renames it over path,
// as editors and deployments do: a watcher sees one whole change.
static inline void lz_test_replace_file(const char *path, const char *text) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    LZ_CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
    LZ_CHECK_INT(rename(tmp, path), 0);
}

// lz_test_config_from makes a config from the defaults plus "key=value"
// settings (a NULL-terminated list); a refused setting fails the test.
// Use LZ_TEST_CONFIG("logging.format=json", "debug=true").
static inline lz_config_t *lz_test_config_from(const char *const *settings) {
    lz_config_t *cfg = lz_config_new();
    LZ_CHECK(cfg != NULL);
    for (size_t i = 0; cfg && settings[i]; i++) {
        char key[128];
        const char *eq = strchr(settings[i], '=');
        size_t len = eq ? (size_t)(eq - settings[i]) : 0;
        LZ_CHECK(eq != NULL && len < sizeof key);
        if (!eq || len >= sizeof key) continue;
        memcpy(key, settings[i], len);
        key[len] = '\0';
        LZ_CHECK_INT(lz_config_set(cfg, key, eq + 1), LZ_OK);
    }
    return cfg;
}
#define LZ_TEST_CONFIG(...) lz_test_config_from((const char *const[]){__VA_ARGS__, NULL})

// lz_test_context_with makes a context from such settings and up to two
// keys set to values taken whole (key NULL: none), for values a "key=value"
// string cannot carry or a test computes (a file path, a key).
static inline lz_context_t *lz_test_context_with(const char *const *settings, const char *key, const char *value,
                                                 const char *key2, const char *value2) {
    lz_config_t *cfg = lz_test_config_from(settings);
    if (cfg && key) LZ_CHECK_INT(lz_config_set(cfg, key, value), LZ_OK);
    if (cfg && key2) LZ_CHECK_INT(lz_config_set(cfg, key2, value2), LZ_OK);
    lz_context_t *ctx = cfg ? lz_context_new(cfg) : NULL;
    lz_config_destroy(&cfg);
    LZ_CHECK(ctx != NULL);
    return ctx;
}

// lz_test_context_from makes a context from such settings.
// Use LZ_TEST_CONTEXT("zmq.linger=0", "logging.level=error").
static inline lz_context_t *lz_test_context_from(const char *const *settings) {
    return lz_test_context_with(settings, NULL, NULL, NULL, NULL);
}
#define LZ_TEST_CONTEXT(...) lz_test_context_from((const char *const[]){__VA_ARGS__, NULL})

// lz_test_sub_joined beats the slow joiner: with sub subscribed to topic
// and not started, it publishes on topic until one arrives (5 s at most),
// then drains the extra ones already on their way. true once joined.
static inline bool lz_test_sub_joined(lz_pub_t *pub, lz_sub_t *sub, const char *topic) {
    lz_value_t *v = lz_value_null();
    bool ok = false;
    for (int64_t deadline = lz_test_now_ms() + 5000; !ok && lz_test_now_ms() < deadline;) {
        LZ_CHECK_INT(lz_pub_publish(pub, topic, v), LZ_OK);
        lz_message_t *msg = lz_sub_recv(sub, 20);
        ok = msg != NULL;
        if (msg) LZ_CHECK_STR(lz_message_topic(msg), topic);
        lz_message_destroy(&msg);
    }
    lz_value_destroy(&v);
    LZ_CHECK(ok);
    for (lz_message_t *msg; (msg = lz_sub_recv(sub, 50));) lz_message_destroy(&msg);
    return ok;
}

// An asynchronous request's outcome, filled by lz_test_on_reply (its
// callback, with the outcome as arg): status, a copy of the reply (the
// test frees it), then done.
typedef struct {
    atomic_bool done;
    int status;
    lz_value_t *reply;
} lz_test_outcome_t;

static inline void lz_test_on_reply(int status, const lz_value_t *reply, void *arg) {
    lz_test_outcome_t *o = arg;
    o->status = status;
    o->reply = reply ? lz_value_copy(reply) : NULL;
    atomic_store(&o->done, true);
}

// lz_test_pattern_context: the pattern tests' context, linger 200 ms and
// handler_max_concurrency n (0: the default, 4).
static inline lz_context_t *lz_test_pattern_context(int n) {
    char concurrency[64];
    snprintf(concurrency, sizeof concurrency, "zmq.handler_max_concurrency=%d", n > 0 ? n : 4);
    return LZ_TEST_CONTEXT("zmq.linger=200", concurrency);
}

// A CURVE key pair, Z85, for the security tests.
typedef struct {
    char public_key[LZ_CURVE_KEY_SIZE], secret_key[LZ_CURVE_KEY_SIZE];
} lz_test_keypair_t;

static inline lz_test_keypair_t lz_test_new_keypair(void) {
    lz_test_keypair_t k;
    LZ_CHECK_INT(lz_curve_keypair(k.public_key, k.secret_key), LZ_OK);
    return k;
}

// lz_test_whoami is a server handler answering with the caller's CURVE key.
static inline int lz_test_whoami(const lz_message_t *request, lz_value_t **reply, void *arg) {
    (void)arg;
    const char *key = lz_message_peer_key(request);
    *reply = lz_value_string(key ? key : "(none)");
    return LZ_OK;
}

// A log captured through lz_logger_to_callback, one "LEVEL component:
// message" line a record: give lz_test_log_capture and the log.
typedef struct {
    pthread_mutex_t lock;
    char records[8192];
} lz_test_log_t;
#define LZ_TEST_LOG_INIT {.lock = PTHREAD_MUTEX_INITIALIZER}

static inline void lz_test_log_capture(lz_log_level_t level, const char *component, const char *message, void *arg) {
    lz_test_log_t *log = arg;
    pthread_mutex_lock(&log->lock);
    size_t used = strlen(log->records);
    snprintf(log->records + used, sizeof log->records - used, "%s %s: %s\n", lz_log_level_name(level), component,
             message);
    pthread_mutex_unlock(&log->lock);
}

// lz_test_logged: how many times text stands in the captured log.
static inline int lz_test_logged(lz_test_log_t *log, const char *text) {
    pthread_mutex_lock(&log->lock);
    int count = 0;
    for (const char *at = log->records; (at = strstr(at, text)); at++) count++;
    pthread_mutex_unlock(&log->lock);
    return count;
}

// lz_test_metrics: a node's counters, zeroed if they cannot be read.
static inline lz_metrics_t lz_test_metrics(lz_node_t *node) {
    lz_metrics_t m;
    memset(&m, 0, sizeof m);
    LZ_CHECK_INT(lz_node_metrics(node, &m), LZ_OK);
    return m;
}

static inline uint64_t lz_test_handshake_failures(lz_node_t *node) { return lz_test_metrics(node).handshake_failures; }

// lz_test_delivered: one frame "secret" pushed from push_ctx's new pusher
// to pull arrives, intact, within timeout_ms.
static inline bool lz_test_delivered(lz_context_t *push_ctx, lz_pull_t *pull, int timeout_ms) {
    lz_push_t *push = lz_push_new(push_ctx, lz_node_endpoint(lz_pull_node(pull)));
    LZ_CHECK(push != NULL);
    if (!push) return false;
    LZ_CHECK_INT(lz_push_send_bytes(push, "secret", 6), LZ_OK);
    char buf[16];
    size_t size = sizeof buf;
    int rc = lz_pull_recv_bytes(pull, buf, &size, timeout_ms);
    lz_push_destroy(&push);
    if (rc != LZ_OK) return false;
    LZ_CHECK(size == 6 && memcmp(buf, "secret", 6) == 0);
    return true;
}

// lz_test_python_push_refused: the pyzmq pusher tests/interop/<script>,
// given pull's endpoint and arg, gets nothing through to pull (a refused
// handshake, counted) and exits 0.
static inline void lz_test_python_push_refused(const char *script, lz_pull_t *pull, const char *arg) {
    pid_t pid = lz_test_spawn_python(script, lz_node_endpoint(lz_pull_node(pull)), arg);
    char buf[64];
    size_t size = sizeof buf;
    LZ_CHECK_INT(lz_pull_recv_bytes(pull, buf, &size, 1500), LZ_ETIMEOUT);
    LZ_CHECK(lz_test_handshake_failures(lz_pull_node(pull)) > 0);
    LZ_CHECK_INT(lz_test_wait(pid, 10000), 0);
}

// lz_test_check_borrowed: msg (destroyed here) came through the raw codec
// holding want's size bytes, and its value borrows the received payload
// frame instead of copying it.
static inline void lz_test_check_borrowed(lz_message_t **msg, const void *want, size_t size) {
    LZ_CHECK(*msg != NULL);
    size_t payload_size = 0, value_size = 0;
    const void *payload = lz_message_payload(*msg, &payload_size);
    const void *value = lz_value_get_bytes(lz_message_value(*msg), &value_size);
    LZ_CHECK(payload && payload == value);
    LZ_CHECK(payload_size == size && value_size == size);
    LZ_CHECK(payload && memcmp(payload, want, size) == 0);
    lz_message_destroy(msg);
}

#endif
