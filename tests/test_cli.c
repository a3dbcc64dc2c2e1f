/* The lz tool end to end: spawn the built binary with pipes on its standard
 * streams and check the contract of docs/lz.md (output lines, exit codes,
 * usage errors), including plain pyzmq peers from tests/interop/cli_*.py. */
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <zmq.h>

// About sixty cases, each starting lz processes: under ASan on a loaded
// 2-CPU machine together past lz_test.h's 90 s (ctest's TIMEOUT, 300 s
// in tests/CMakeLists.txt, still bounds the program).
#define LZ_TEST_ALARM_SECONDS 240
#include "lz_mutate.h"
#include "lz_test.h"
#include "serial/base64.h"

#define LZ_TOOL LZ_BINARY_DIR "/lz"
#define OUT_MAX (1024 * 1024)

// A spawned lz (or python) with our ends of its stdin, stdout and stderr.
typedef struct proc {
    pid_t pid;
    int in, out, err;
} proc_t;

typedef struct result {
    int status; // exit code, -1 if it had to be killed
    char out[OUT_MAX], err[OUT_MAX];
} result_t;

// spawn_ignoring starts argv[0] with argv and envp, its standard streams
// in, out and err, with signo ignored, as a parent ignoring it leaves it
// across exec (nohup: SIGHUP). posix_spawn can only reset signals to their
// default actions, so this forks. Returns the pid, or -1.
static pid_t spawn_ignoring(char *const argv[], char **envp, const int fds[3], int signo) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    signal(signo, SIG_IGN); // async-signal-safe, as all the child does
    for (int fd = 0; fd < 3; fd++)
        if (dup2(fds[fd], fd) < 0) _exit(127);
    execve(argv[0], argv, envp);
    _exit(127);
}

// proc_start_ignoring spawns argv[0] with argv, its standard output stdout_fd
// (p.out -1), or a pipe p.out reads when stdout_fd is -1; env (may be
// NULL) is one extra NAME=VALUE for its environment; ignored, unless 0, a
// signal it starts with ignored (spawn_ignoring).
static proc_t proc_start_ignoring(char *const argv[], const char *env, int stdout_fd, int ignored) {
    proc_t p = {-1, -1, -1, -1};
    int in[2], out[2] = {-1, stdout_fd}, err[2];
    if (pipe2(in, O_CLOEXEC) || (stdout_fd < 0 && pipe2(out, O_CLOEXEC)) || pipe2(err, O_CLOEXEC)) return p;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    size_t n = 0;
    while (environ[n]) n++;
    char **envp = calloc(n + 2, sizeof *envp);
    memcpy(envp, environ, n * sizeof *envp);
    envp[n] = (char *)env;
    const int fds[3] = {in[0], out[1], err[1]};
    if (ignored) p.pid = spawn_ignoring(argv, envp, fds, ignored);
    else if (posix_spawn(&p.pid, argv[0], &fa, NULL, argv, envp) != 0) p.pid = -1;
    free(envp);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    if (stdout_fd < 0) close(out[1]);
    close(err[1]);
    p.in = in[1];
    p.out = out[0];
    p.err = err[0];
    return p;
}

static proc_t proc_start_to(char *const argv[], const char *env, int stdout_fd) {
    return proc_start_ignoring(argv, env, stdout_fd, 0);
}

static proc_t proc_start(char *const argv[], const char *env) { return proc_start_to(argv, env, -1); }

// proc_feed writes text to the process's stdin and closes it.
static void proc_feed(proc_t *p, const char *text) {
    size_t len = text ? strlen(text) : 0, done = 0;
    while (done < len) {
        ssize_t n = write(p->in, text + done, len - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    close(p->in);
    p->in = -1;
}

static void take(int *fd, char *buf, size_t *len) {
    ssize_t n = read(*fd, buf + *len, OUT_MAX - 1 - *len);
    if (n > 0)
        *len += (size_t)n;
    else {
        close(*fd);
        *fd = -1;
    }
    buf[*len] = '\0';
}

// proc_finish collects stdout and stderr until both close, then reaps the
// process; past timeout_ms it is killed (status -1).
static void proc_finish(proc_t *p, int timeout_ms, result_t *r) {
    size_t out_len = 0, err_len = 0;
    r->out[0] = r->err[0] = '\0';
    if (p->in >= 0) proc_feed(p, NULL);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int left = timeout_ms;
    while ((p->out >= 0 || p->err >= 0) && left > 0) {
        struct pollfd fds[2] = {{p->out, POLLIN, 0}, {p->err, POLLIN, 0}};
        poll(fds, 2, left);
        if (p->out >= 0 && fds[0].revents) take(&p->out, r->out, &out_len);
        if (p->err >= 0 && fds[1].revents) take(&p->err, r->err, &err_len);
        clock_gettime(CLOCK_MONOTONIC, &t);
        left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
    }
    if (p->out >= 0) close(p->out);
    if (p->err >= 0) close(p->err);
    r->status = lz_test_wait(p->pid, left > 0 ? left : 1);
    // A sanitizer report fails the exit status check (ThreadSanitizer's
    // exit code is 66); this shows the report itself.
    if (strstr(r->err, "Sanitizer")) fprintf(stderr, "lz's standard error:\n%s\n", r->err);
}

// lz_vstart spawns the tool with the NULL-terminated arguments, as
// proc_start_ignoring does.
static proc_t lz_vstart(int stdout_fd, const char *env, int ignored, va_list args) {
    char *argv[32] = {(char *)LZ_TOOL};
    for (int i = 1; i < 31 && (argv[i] = va_arg(args, char *)) != NULL; i++) {
    }
    return proc_start_ignoring(argv, env, stdout_fd, ignored);
}

static proc_t lz_start(const char *env, ...) {
    va_list args;
    va_start(args, env);
    proc_t p = lz_vstart(-1, env, 0, args);
    va_end(args);
    return p;
}

// lz_start_to: lz_start with stdout_fd its standard output.
static proc_t lz_start_to(int stdout_fd, ...) {
    va_list args;
    va_start(args, stdout_fd);
    proc_t p = lz_vstart(stdout_fd, NULL, 0, args);
    va_end(args);
    return p;
}

// lz_start_ignoring: lz_start with signo ignored from the start (nohup).
static proc_t lz_start_ignoring(int signo, ...) {
    va_list args;
    va_start(args, signo);
    proc_t p = lz_vstart(-1, NULL, signo, args);
    va_end(args);
    return p;
}

#define LZ_START(...) lz_start(NULL, __VA_ARGS__, (char *)NULL)
#define LZ_RUN(r, input, ...) run_lz((r), (input), LZ_START(__VA_ARGS__))

static int run_lz(result_t *r, const char *input, proc_t p) {
    proc_feed(&p, input);
    proc_finish(&p, 20000 * LZ_TEST_SLOWDOWN, r); // lz_test.h: slower under ThreadSanitizer
    return r->status;
}

static int count_lines(const char *text) {
    int n = 0;
    for (; *text; text++) n += *text == '\n';
    return n;
}

// wait_ipc waits until an ipc:// endpoint's file exists: its binder is up.
static void wait_ipc(const char *endpoint) {
    struct stat st;
    for (int i = 0; i < 500 && stat(endpoint + strlen("ipc://"), &st) != 0; i++) lz_test_sleep_ms(10);
}

static result_t r; // one result buffer at a time: tests run one after another

// finish_ok reaps p, its output in r, and expects exit status 0.
static void finish_ok(proc_t *p) {
    proc_finish(p, 10000, &r);
    LZ_CHECK_INT(r.status, 0);
}

// stop_ok: a long-running command stops cleanly on SIGTERM.
static void stop_ok(proc_t *p) {
    if (p->pid > 0) kill(p->pid, SIGTERM); // never kill(-1, ...)
    finish_ok(p);
}

// start_proxy runs `lz proxy kind` between two fresh ipc endpoints and waits
// until it has bound both.
static proc_t start_proxy(const char *kind, char *front, char *back, size_t size) {
    lz_test_ipc_endpoint(front, size);
    lz_test_ipc_endpoint(back, size);
    proc_t proxy = LZ_START("proxy", kind, "--frontend", front, "--backend", back);
    wait_ipc(front);
    wait_ipc(back);
    return proxy;
}

LZ_TEST(test_help_every_command) {
    // Each with the exit codes it can give beyond 0-2 (docs/lz.md's table).
    static const struct {
        const char *name, *codes;
    } commands[] = {{"pub", "35"},  {"sub", "35"}, {"push", "35"},  {"pull", "35"},   {"req", "345"},
                    {"rep", "5"},   {"proxy", "5"}, {"bench", ""}, {"keygen", ""}, {"passwd", ""},
                    {"version", "5"}, {"config", ""}, {"lock", "3456"}};
    static const char *const code_text[] = {"3 timeout", "4 error reply", "5 bind/connect failed", "6 lock lost"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        LZ_CHECK_INT(LZ_RUN(&r, NULL, commands[i].name, "--help"), 0);
        char expect[64];
        snprintf(expect, sizeof expect, "lz %s", commands[i].name);
        if (!strstr(r.out, expect)) fprintf(stderr, "help of %s: %s\n", commands[i].name, r.out);
        LZ_CHECK(strstr(r.out, expect) != NULL);
        LZ_CHECK(strstr(r.out, "\nExample") != NULL); // every command shows how it is used
        LZ_CHECK(strstr(r.out, "Exit codes: 0 ok, 1 runtime failure, 2 bad usage") != NULL);
        for (int code = 3; code <= 6; code++) {
            bool listed = strstr(r.out, code_text[code - 3]) != NULL;
            LZ_CHECK(listed == (strchr(commands[i].codes, '0' + code) != NULL));
        }
    }
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "--help"), 0);
    LZ_CHECK(strstr(r.out, "proxy") != NULL);
    // The overview lists every exit code some command gives.
    for (int code = 3; code <= 6; code++) LZ_CHECK(strstr(r.out, code_text[code - 3]) != NULL);
    LZ_CHECK(strstr(r.out, "7 out of memory") != NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "help", "sub"), 0);
    LZ_CHECK(strstr(r.out, "usage: lz sub") != NULL);
    // The help of help is the overview (it was "unknown command", exit 2).
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "help", "--help"), 0);
    LZ_CHECK(strstr(r.out, "usage: lz <command>") == r.out);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "help", "-h"), 0);
    LZ_CHECK(strstr(r.out, "usage: lz <command>") == r.out);
}

// What lz --help and lz proxy --help promise holds: the commands it names
// as taking no --config refuse it, SIGHUP stops a proxy with exit 0.
LZ_TEST(test_help_tells_the_truth) {
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "--help"), 0);
    LZ_CHECK(strstr(r.out, "Every command but\nbench, keygen and passwd takes --config FILE") != NULL);
    static const char *const without_config[][3] = {{"bench", "pushpull"}, {"keygen"}, {"passwd"}};
    for (size_t i = 0; i < sizeof without_config / sizeof without_config[0]; i++) {
        char *argv[8] = {(char *)LZ_TOOL};
        int n = 1;
        for (int k = 0; k < 3 && without_config[i][k]; k++) argv[n++] = (char *)without_config[i][k];
        argv[n++] = (char *)"--config";
        argv[n] = (char *)"/dev/null";
        LZ_CHECK_INT(run_lz(&r, NULL, proc_start(argv, NULL)), 2);
        LZ_CHECK(strstr(r.err, "unknown option '--config'") != NULL);
    }
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "proxy", "--help"), 0);
    LZ_CHECK(strstr(r.out, "(SIGINT/SIGTERM/SIGHUP: exit 0)") != NULL);
    char front[128], back[128];
    proc_t proxy = start_proxy("forwarder", front, back, sizeof front);
    if (proxy.pid > 0) kill(proxy.pid, SIGHUP); // never kill(-1, ...)
    finish_ok(&proxy);
}

LZ_TEST(test_version) {
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "version"), 0);
    LZ_CHECK(strncmp(r.out, "lz " LZ_VERSION_STRING " (liberzmq ", strlen("lz " LZ_VERSION_STRING)) == 0);
    LZ_CHECK_INT(count_lines(r.out), 1);
    // lz --version is lz version, its arguments checked as that command's.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "--version", "--bogus"), 2);
    LZ_CHECK(strstr(r.err, "lz version: unknown option '--bogus' (usage: lz version [--config FILE] "
                           "[--plugin PATH]...;") == r.err);
    LZ_CHECK_STR(r.out, "");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "--version", "anything"), 2);
    LZ_CHECK(strstr(r.err, "lz version: unexpected argument 'anything' (usage: ") == r.err);
}

// lz version makes a context, which binds metrics.prometheus_listen: a
// port in use is a failed bind, exit 5, as its --help says.
LZ_TEST(test_version_bind_fails) {
    void *ctx = zmq_ctx_new();
    void *holder = zmq_socket(ctx, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt(holder, ZMQ_LINGER, &linger, sizeof linger);
    LZ_CHECK_INT(zmq_bind(holder, "tcp://127.0.0.1:*"), 0);
    char bound[64], env[128];
    size_t len = sizeof bound;
    LZ_CHECK_INT(zmq_getsockopt(holder, ZMQ_LAST_ENDPOINT, bound, &len), 0);
    snprintf(env, sizeof env, "LIBERZMQ_METRICS__PROMETHEUS_LISTEN=127.0.0.1:%s", strrchr(bound, ':') + 1);
    LZ_CHECK_INT(run_lz(&r, NULL, lz_start(env, "version", (char *)NULL)), 5);
    LZ_CHECK(strstr(r.err, "lz version: context: prometheus: cannot serve on 127.0.0.1:") == r.err);
    LZ_CHECK_INT(count_lines(r.err), 1);
    zmq_close(holder);
    zmq_ctx_term(ctx);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "version", "--help"), 0);
    LZ_CHECK(strstr(r.out, "5 bind/connect failed") != NULL);
}

// Output that cannot be written is a failure, even when it was buffered
// until exit (version, help).
LZ_TEST(test_stdout_full) {
    const char *commands[] = {LZ_TOOL " version >/dev/full", LZ_TOOL " --help >/dev/full",
                              LZ_TOOL " sub --help >/dev/full"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)commands[i], NULL};
        LZ_CHECK_INT(run_lz(&r, NULL, proc_start(argv, NULL)), 1);
        LZ_CHECK_INT(count_lines(r.err), 1);
        LZ_CHECK(strstr(r.err, "writing standard output") != NULL);
    }
}

// Each bad command line exits 2 with exactly one line on stderr.
LZ_TEST(test_bad_arguments) {
    static const char *const cases[][8] = {
        {NULL},
        {"frobnicate"},
        {"sub"},
        {"sub", "--bind"},
        {"sub", "--bind", "nope"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--count", "x"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--count", "0"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--count", " 5"}, // digits only, as --timeout
        {"sub", "--connect", "tcp://127.0.0.1:1", "--count", "+5"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--timeout", "-1"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--format", "nope"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--count=3", "--count=4"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "extra"},
        {"pub", "--connect", "tcp://127.0.0.1:1", "--wat"},
        {"pub", "--connect", "tcp://127.0.0.1:1", "--raw=yes"},
        {"pub", "-x"},
        {"req", "--connect", "tcp://127.0.0.1:1"},
        {"req", "--connect", "tcp://127.0.0.1:1", "ping", "null", "more"},
        {"req", "--connect", "tcp://127.0.0.1:1", "--strategy", "zzz", "ping"},
        {"req", "--connect", "tcp://127.0.0.1:1", "--retries", "-3", "ping"},
        {"req", "--connect", "tcp://127.0.0.1:1", ""},
        {"req", "--connect", "tcp://127.0.0.1:1", "p\xffng"},
        {"rep", "--bind", "tcp://127.0.0.1:1"},
        {"rep", "--bind", "tcp://127.0.0.1:1", "--echo", "--exec", "cat"},
        {"lock", "--connect", "tcp://127.0.0.1:1", "job"},
        {"lock", "--connect", "tcp://127.0.0.1:1", "--ttl", "0", "job", "true"},
        {"lock", "--connect", "tcp://127.0.0.1:1", "--wait", "-1", "job", "true"},
        {"lock", "--connect", "tcp://127.0.0.1:1", "", "true"},
        {"lock", "job", "true"},
        {"proxy", "nonsense", "--frontend", "tcp://127.0.0.1:1", "--backend", "tcp://127.0.0.1:2"},
        {"proxy", "queue", "--frontend", "tcp://127.0.0.1:1"},
        {"proxy", "queue", "--frontend", "bad", "--backend", "tcp://127.0.0.1:2"},
        {"version", "extra"},
        {"sub", "--connect", "tcp://127.0.0.1:99999"},
        {"sub", "--connect", "tcp://127.0.0.1"},
        {"sub", "--connect", "tcp://[::1:5555"}, // libzmq would take it and never connect
        {"sub", "--connect", "tcp://[]:5555"},
        {"sub", "--connect", "tcp://:5555"},
        {"sub", "--connect", "tcp://127.0.0.1:0;[::1:5555"},
        {"sub", "--connect", "foo://x", "--timeout", "1"}, // refused by libzmq itself
        {"help", "bogus"},
        {"help", "sub", "extra"},
        {"pub", "--connect", "tcp://127.0.0.1:1", "--topic", "\xff"},
        {"push", "--connect", "tcp://127.0.0.1:1", "--type", "\xc3("},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--timeout", "0x10"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--timeout", "0"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--timeout", "1e3"},
        {"sub", "--connect", "tcp://127.0.0.1:1", "--config="},
        // Requests carry an action: a format without an envelope cannot.
        {"req", "--connect", "tcp://127.0.0.1:1", "--format", "raw", "ping"},
        {"rep", "--connect", "tcp://127.0.0.1:1", "--echo", "--format", "raw"},
        {"bench", "pushpull", "--size", "-1"},
        {"bench", "pushpull", "--size", "99999999999"},
        {"bench", "pushpull", "--count", "-5"},
        {"bench", "pushpull", "--json", "--json"},
        {"bench", "pushpull", "--reps", "65"},
        {"bench", "pushpull", "--transport", "inproc", "--max-seconds", "0x1"}, // only decimal, as --timeout
        {"bench", "pushpull", "--transport", "inproc", "--max-seconds", " 1"},
        {"bench", "pushpull", "--transport", "inproc", "--count", "+5"},
        // Two processes are for throughput between processes only.
        {"bench", "pushpull", "--transport", "inproc", "--processes", "2"},
        {"bench", "reqrep", "--processes", "2"},
        {"bench", "pubsub", "--processes", "3"},
        // Spreading places two processes, and pinning is its opposite.
        {"bench", "pushpull", "--spread"},
        {"bench", "pushpull", "--processes", "2", "--spread", "--pin"},
        // reqrep keeps each round trip's time: a count past its bound would not fit (or overflow the size).
        {"bench", "reqrep", "--transport", "inproc", "--count", "2305843009213693952"},
        {"bench", "reqrep", "--transport", "inproc", "--count", "1000000000000"},
        // --codec json sends a message of its own size: --size would go unmeasured.
        {"bench", "pushpull", "--transport", "inproc", "--codec", "json", "--size", "4096"},
        {"bench", "pushpull", "--transport", "inproc", "--size=4096", "--codec=json"},
        {"--version", "--bogus"},
        {"--version", "anything"},
        // Options of one way of serving that would do nothing in another.
        {"rep", "--connect", "tcp://127.0.0.1:1", "--locks", "--count", "1"},
        {"rep", "--connect", "tcp://127.0.0.1:1", "--echo", "--timeout", "100"},
        {"rep", "--connect", "tcp://127.0.0.1:1", "--locks", "--timeout", "100"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[10] = {(char *)LZ_TOOL};
        for (int k = 0; k < 8 && cases[i][k]; k++) argv[k + 1] = (char *)cases[i][k];
        LZ_CHECK_INT(run_lz(&r, NULL, proc_start(argv, NULL)), 2);
        if (count_lines(r.err) != 1 || r.out[0])
            fprintf(stderr, "case %zu (%s): stderr \"%s\" stdout \"%s\"\n", i, cases[i][0] ? cases[i][0] : "", r.err,
                    r.out);
        LZ_CHECK_INT(count_lines(r.err), 1);
        LZ_CHECK_STR(r.out, "");
    }
}

// What the endpoint check lets through: bracketed IPv6, a source address,
// an interface name. Nothing listens there, so each ends in a timeout (3).
LZ_TEST(test_accepted_tcp_endpoints) {
    static const char *const urls[] = {"tcp://[::1]:1", "tcp://127.0.0.1:0;127.0.0.1:1", "tcp://lo:1",
                                       "tcp://localhost:1"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", urls[i], "--timeout", "0.1"), 3);
        LZ_CHECK(strstr(r.err, "timeout") != NULL);
    }
}

// A lock name past the 256 bytes a lock service takes.
static char long_lock_name[300];

// One-line refusals say what is wrong and what a value may be, not just
// "bad arguments".
LZ_TEST(test_refusals_say_what_is_wrong) {
    static const char *const url = "tcp://127.0.0.1:1";
    static const struct {
        const char *argv[7];
        const char *says;
    } cases[] = {
        {{"bench", "pushpull", "--size", "0"}, "bad value '0' for --size: 1 to 67108864 bytes (64 MiB)"},
        {{"bench", "reqrep", "--count", "1"}, "bad value '1' for --count: 2 or more"},
        {{"bench", "pubsub", "--transport", "udp"}, "bad value 'udp' for --transport: tcp, ipc or inproc"},
        {{"bench", "pushpull", "--wat", "3"}, "unknown option '--wat'"},
        {{"bench", "pushpull", "--count"}, "option --count needs a value"},
        {{"bench", "hop"}, "unknown pattern 'hop'"},
        {{"bench", "reqrep", "--spread"}, "--spread needs --processes 2"},
        {{"sub", "--connect", url, "--count", "0"}, "bad value '0' for --count: 1 or more"},
        {{"sub", "--connect", url, "--timeout", "-1"},
         "bad value '-1' for --timeout: seconds above 0 (fractions allowed, 0.5)"},
        {{"req", "--connect", url, "--timeout", "0", "a"}, "bad value '0' for --timeout: milliseconds above 0"},
        // The library's bound (LZ_CLIENT_RETRIES_MAX), refused by the parser, not by the client later.
        {{"req", "--connect", url, "--retries", "101", "a"}, "bad value '101' for --retries: 0 to 100"},
        {{"req", "--connect", url, "--retries", "500", "a"}, "bad value '500' for --retries: 0 to 100"},
        // lz config makes no context: a plugin would load into nothing.
        {{"config", "--plugin", "/nonexistent/x.so", "zmq.linger"}, "unknown option '--plugin'"},
        {{"pub", "--connect", url, "--settle", "x"}, "bad value 'x' for --settle: 0 to 600000 ms"},
        {{"pull", "--connect", url, "--config="}, "bad value '' for --config: a file name"},
        {{"sub", "--connect", url, "--raw", "--format", "json"}, "--raw is --format raw: not with --format json"},
        // What a node's constructor refuses is named by its detail, not called an endpoint.
        {{"sub", "--connect", "foo://x"}, "bad argument: sub: connect foo://x: Protocol not supported"},
        {{"lock", "--connect", url, long_lock_name, "true"},
         "bad argument: lz_lock_new: the name must be 1 to 256 bytes, not 299"},
        // lz bench takes --name=VALUE as every command does, and knows it is the same option.
        {{"bench", "pushpull", "--count=3", "--count", "4"}, "option --count given twice"},
        {{"bench", "pushpull", "--pin=yes"}, "option --pin takes no value"},
        {{"bench", "pushpull", "--max-seconds=0"}, "bad value '0' for --max-seconds: seconds above 0, at most 3600"},
        {{"bench", "reqrep", "--count", "10000001"},
         "bad value '10000001' for --count: reqrep keeps each round trip's time, at most 10000000"},
        {{"bench", "pubsub", "--codec", "json", "--size", "16"},
         "--size does not go with --codec json, which sends the seeds' 40-byte message"},
        {{"rep", "--connect", url, "--locks", "--count", "1"},
         "--count counts --echo or --exec requests, not lock actions"},
        {{"rep", "--connect", url, "--echo", "--timeout", "100"},
         "--timeout bounds --exec commands: not without --exec"},
    };
    memset(long_lock_name, 'n', sizeof long_lock_name - 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[8] = {(char *)LZ_TOOL};
        for (int k = 0; k < 7 && cases[i].argv[k]; k++) argv[k + 1] = (char *)cases[i].argv[k];
        LZ_CHECK_INT(run_lz(&r, NULL, proc_start(argv, NULL)), 2);
        char expect[160];
        snprintf(expect, sizeof expect, "lz %s: %s (usage: ", cases[i].argv[0], cases[i].says);
        if (strncmp(r.err, expect, strlen(expect)) != 0) fprintf(stderr, "case %zu: %s", i, r.err);
        LZ_CHECK(strncmp(r.err, expect, strlen(expect)) == 0);
        LZ_CHECK_INT(count_lines(r.err), 1);
    }
}

LZ_TEST(test_pub_sub_lines) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--topic", "news", "--count", "5", "--timeout", "10");
    wait_ipc(ep);
    const char *input = "{\"a\": [1, 2]}\nhello world\n42\n\"quoted\"\n\n";
    LZ_CHECK_INT(LZ_RUN(&r, input, "pub", "--connect", ep, "--topic", "news", "--settle", "300"), 0);
    LZ_CHECK_STR(r.err, "");
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"news\",\"data\":{\"a\":[1,2]}}\n"
                        "{\"topic\":\"news\",\"data\":\"hello world\"}\n"
                        "{\"topic\":\"news\",\"data\":42}\n"
                        "{\"topic\":\"news\",\"data\":\"quoted\"}\n"
                        "{\"topic\":\"news\",\"data\":\"\"}\n");
}

// --raw sends bytes untouched: the subscriber decodes JSON payloads and
// shows the others as base64.
LZ_TEST(test_pub_raw) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", "2", "--timeout", "10");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, "{\"k\": true}\nhello\n", "pub", "--connect", ep, "--raw", "--topic", "t"), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"t\",\"data\":{\"k\":true}}\n"
                        "{\"topic\":\"t\",\"data\":\"aGVsbG8=\",\"encoding\":\"base64\"}\n");
}

// A number past the double range is not JSON liberzmq reads (it would be
// an infinity JSON cannot write), so the line goes as text.
LZ_TEST(test_pub_sends_an_out_of_range_number_as_text) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", "3", "--timeout", "10");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, "1\n1e400\n3\n", "pub", "--connect", ep, "--topic", "t"), 0);
    LZ_CHECK_STR(r.err, "");
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"t\",\"data\":1}\n{\"topic\":\"t\",\"data\":\"1e400\"}\n"
                        "{\"topic\":\"t\",\"data\":3}\n");
}

#define DAMAGED_PAYLOADS 300

// check_shown: one line of lz sub shows payload exactly, as its JSON value
// when it decodes, else as base64 of the very bytes. Counts which.
static void check_shown(const char *line, size_t len, const uint8_t *payload, size_t size, int *decoded, int *base64) {
    lz_value_t *record = NULL, *want = NULL;
    LZ_CHECK_INT(lz_serializer_decode(lz_serializer_builtin("json"), line, len, &record), LZ_OK);
    LZ_CHECK_STR(lz_value_find_string(record, "topic", ""), "t");
    const lz_value_t *data = lz_value_get(record, "data");
    const char *encoding = lz_value_find_string(record, "encoding", "");
    if (lz_serializer_decode(lz_serializer_builtin("json"), payload, size, &want) == LZ_OK) {
        LZ_CHECK_STR(encoding, "");
        LZ_CHECK(lz_value_equal(data, want));
        ++*decoded;
    } else {
        LZ_CHECK_STR(encoding, "base64");
        size_t text_len = 0;
        const char *text = lz_value_get_string(data, &text_len);
        static uint8_t bytes[LZ_MUTATE_MAX];
        long n = text && text_len / 4 * 3 <= sizeof bytes ? lz__base64_decode(text, text_len, bytes) : -1;
        LZ_CHECK(n == (long)size && memcmp(bytes, payload, size) == 0);
        ++*base64;
    }
    lz_value_destroy(&want);
    lz_value_destroy(&record);
}

// plain_peer makes a raw libzmq socket of type in ctx, waiting at most
// timeout_ms on any send or receive, connected to ep.
static void *plain_peer(void *ctx, int type, const char *ep, int timeout_ms) {
    void *socket = zmq_socket(ctx, type);
    zmq_setsockopt(socket, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(socket, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    LZ_CHECK_INT(zmq_connect(socket, ep), 0);
    return socket;
}

// lz sub shows every payload exactly: 300 damaged JSON payloads from a
// plain XPUB come out as their values where they decode and as base64 of
// their bytes where they do not, one line each, in order.
LZ_TEST(test_sub_shows_every_damaged_payload_exactly) {
    char ep[128], count[16];
    lz_test_ipc_endpoint(ep, sizeof ep);
    snprintf(count, sizeof count, "%d", DAMAGED_PAYLOADS);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", count, "--timeout", "20");
    wait_ipc(ep);
    void *ctx = zmq_ctx_new();
    void *pub = plain_peer(ctx, ZMQ_XPUB, ep, 10000);
    int nodrop = 1;
    zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop);
    char notice[16]; // lz sub's subscription: from now on nothing is missed
    LZ_CHECK_INT(zmq_recv(pub, notice, sizeof notice, 0), 1);
    static uint8_t payloads[DAMAGED_PAYLOADS][LZ_MUTATE_MAX];
    static size_t sizes[DAMAGED_PAYLOADS];
    const char *seed =
        "{\"type\":\"order\",\"data\":{\"symbol\":\"BTC\",\"price\":43210.5,\"tags\":[\"\u00e9\",null]}}";
    for (int i = 0; i < DAMAGED_PAYLOADS; i++) {
        sizes[i] = lz_mutated_copy(payloads[i], seed, strlen(seed));
        LZ_CHECK_INT(zmq_send(pub, "t", 1, ZMQ_SNDMORE), 1);
        LZ_CHECK_INT(zmq_send(pub, payloads[i], sizes[i], 0), (int)sizes[i]);
    }
    finish_ok(&sub);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    LZ_CHECK_STR(r.err, "");
    LZ_CHECK_INT(count_lines(r.out), DAMAGED_PAYLOADS);
    int decoded = 0, base64 = 0, i = 0;
    for (const char *line = r.out, *end; i < DAMAGED_PAYLOADS && (end = strchr(line, '\n')) != NULL;
         line = end + 1, i++)
        check_shown(line, (size_t)(end - line), payloads[i], sizes[i], &decoded, &base64);
    printf("  %d payloads: %d shown as values, %d as base64\n", DAMAGED_PAYLOADS, decoded, base64);
    LZ_CHECK(decoded > 0 && base64 > 0);
}

// A msgpack NaN has no JSON form: lz sub and lz pull show such a message's
// bytes as base64 instead of skipping it, and say nothing on stderr.
LZ_TEST(test_values_without_a_json_form_are_shown_as_bytes) {
    static const char nan_payload[] = "\xcb\x7f\xf8\0\0\0\0\0\0"; // msgpack float 64: NaN
    static const char nan_task[] = "\x82\xa4type\xa1t\xa4" "data\xcb\x7f\xf8\0\0\0\0\0\0"; // {type: t, data: NaN}
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--format", "msgpack", "--count", "2", "--timeout", "20");
    wait_ipc(ep);
    void *ctx = zmq_ctx_new();
    void *pub = plain_peer(ctx, ZMQ_XPUB, ep, 10000);
    char notice[16]; // lz sub's subscription: from now on nothing is missed
    LZ_CHECK_INT(zmq_recv(pub, notice, sizeof notice, 0), 1);
    LZ_CHECK_INT(zmq_send(pub, "t", 1, ZMQ_SNDMORE), 1);
    LZ_CHECK_INT(zmq_send(pub, nan_payload, sizeof nan_payload - 1, 0), 9);
    LZ_CHECK_INT(zmq_send(pub, "t", 1, ZMQ_SNDMORE), 1);
    LZ_CHECK_INT(zmq_send(pub, "\x01", 1, 0), 1);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"t\",\"data\":\"y3/4AAAAAAAA\",\"encoding\":\"base64\"}\n"
                        "{\"topic\":\"t\",\"data\":1}\n");
    LZ_CHECK_STR(r.err, "");
    zmq_close(pub);

    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep, "--format", "msgpack", "--count", "1", "--timeout", "20");
    wait_ipc(ep);
    void *push = plain_peer(ctx, ZMQ_PUSH, ep, 10000);
    LZ_CHECK_INT(zmq_send(push, nan_task, sizeof nan_task - 1, 0), (int)sizeof nan_task - 1);
    finish_ok(&pull);
    LZ_CHECK_STR(r.out, "{\"type\":\"t\",\"data\":\"gqR0eXBloXSkZGF0Yct/+AAAAAAAAA==\",\"encoding\":\"base64\"}\n");
    LZ_CHECK_STR(r.err, "");
    zmq_close(push);
    zmq_ctx_term(ctx);
}

// A classic one-frame message (the topic starts the frame, as the ZeroMQ
// guide's weather server sends) prints with "topic": null and the frame as
// data; --topic filters it by its start; an empty topic frame stays "";
// a binary topic is base64 with "topic_encoding", NUL in UTF-8 is text.
LZ_TEST(test_sub_shows_plain_publishers_forms) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--topic", "100", "--format", "raw", "--count", "2", "--timeout", "20");
    wait_ipc(ep);
    void *ctx = zmq_ctx_new();
    void *pub = plain_peer(ctx, ZMQ_XPUB, ep, 10000);
    char notice[16]; // lz sub's subscription: from now on nothing is missed
    LZ_CHECK_INT(zmq_recv(pub, notice, sizeof notice, 0), 4);
    LZ_CHECK_INT(zmq_send(pub, "20001 18 40", 11, 0), 11); // filtered out by its start
    LZ_CHECK_INT(zmq_send(pub, "10001 23 45", 11, 0), 11);
    LZ_CHECK_INT(zmq_send(pub, "100", 3, ZMQ_SNDMORE), 3);
    LZ_CHECK_INT(zmq_send(pub, "\xff", 1, 0), 1);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":null,\"data\":\"10001 23 45\"}\n"
                        "{\"topic\":\"100\",\"data\":\"/w==\",\"encoding\":\"base64\"}\n");
    LZ_CHECK_STR(r.err, "");

    lz_test_ipc_endpoint(ep, sizeof ep);
    sub = LZ_START("sub", "--bind", ep, "--count", "4", "--timeout", "20");
    wait_ipc(ep);
    zmq_close(pub);
    pub = plain_peer(ctx, ZMQ_XPUB, ep, 10000);
    LZ_CHECK_INT(zmq_recv(pub, notice, sizeof notice, 0), 1);
    LZ_CHECK_INT(zmq_send(pub, "{\"t\":21.5}", 10, 0), 10);
    LZ_CHECK_INT(zmq_send(pub, "", 0, ZMQ_SNDMORE), 0);
    LZ_CHECK_INT(zmq_send(pub, "[1]", 3, 0), 3);
    LZ_CHECK_INT(zmq_send(pub, "\xff\x01", 2, ZMQ_SNDMORE), 2);
    LZ_CHECK_INT(zmq_send(pub, "{\"price\":42}", 12, 0), 12);
    LZ_CHECK_INT(zmq_send(pub, "\0*", 2, ZMQ_SNDMORE), 2);
    LZ_CHECK_INT(zmq_send(pub, "2", 1, 0), 1);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":null,\"data\":{\"t\":21.5}}\n{\"topic\":\"\",\"data\":[1]}\n"
                        "{\"topic\":\"/wE=\",\"topic_encoding\":\"base64\",\"data\":{\"price\":42}}\n"
                        "{\"topic\":\"\\u0000*\",\"data\":2}\n");
    LZ_CHECK_STR(r.err, "");
    zmq_close(pub);
    zmq_ctx_term(ctx);
}

#define DAMAGED_REPLIES 60

// A raw ROUTER answering request i with damaged reply i, routing intact.
typedef struct damaged_server {
    void *router;
    uint8_t replies[DAMAGED_REPLIES][LZ_MUTATE_MAX];
    size_t sizes[DAMAGED_REPLIES];
} damaged_server_t;

static void *serve_damaged(void *arg) {
    damaged_server_t *s = arg;
    for (int i = 0; i < DAMAGED_REPLIES; i++) {
        zmq_msg_t frames[8];
        int n = 0, more = 1;
        for (; more && n < 8; n++) {
            zmq_msg_init(&frames[n]);
            if (zmq_msg_recv(&frames[n], s->router, 0) < 0) return NULL;
            more = zmq_msg_more(&frames[n]);
        }
        for (int k = 0; k + 1 < n; k++) zmq_msg_send(&frames[k], s->router, ZMQ_SNDMORE); // routing, echoed
        zmq_send(s->router, s->replies[i], s->sizes[i], 0);
        zmq_msg_close(&frames[n - 1]);
    }
    return NULL;
}

// lz req against damaged replies keeps its contract on every one: the reply
// as one JSON line and exit 0, an error reply on stderr and exit 4, or a
// reply that does not decode as one stderr line and exit 1.
LZ_TEST(test_req_keeps_its_exit_codes_on_damaged_replies) {
    static damaged_server_t s;
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    void *ctx = zmq_ctx_new();
    s.router = zmq_socket(ctx, ZMQ_ROUTER);
    int timeout = 10000;
    zmq_setsockopt(s.router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    LZ_CHECK_INT(zmq_bind(s.router, ep), 0);
    const char *seed = "{\"status\":\"error\",\"message\":\"no such account\",\"sum\":[1,2.5,\"x\"]}";
    for (int i = 0; i < DAMAGED_REPLIES; i++) {
        s.sizes[i] = lz_mutated_copy(s.replies[i], seed, strlen(seed));
    }
    pthread_t thread;
    LZ_CHECK_INT(pthread_create(&thread, NULL, serve_damaged, &s), 0);
    int seen[5] = {0};
    for (int i = 0; i < DAMAGED_REPLIES; i++) {
        LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "5000", "echo");
        lz_value_t *want = NULL, *got = NULL;
        bool decodes = lz_serializer_decode(lz_serializer_builtin("json"), s.replies[i], s.sizes[i], &want) == LZ_OK;
        bool error_reply = decodes && strcmp(lz_value_find_string(want, "status", ""), "error") == 0;
        int expected = !decodes ? 1 : error_reply ? 4 : 0;
        if (r.status != expected)
            fprintf(stderr, "reply %d: exit %d, expected %d (%s)\n", i, r.status, expected, r.err);
        LZ_CHECK_INT(r.status, expected);
        if (expected == 0) {
            LZ_CHECK_INT(count_lines(r.out), 1);
            LZ_CHECK(lz_serializer_decode(lz_serializer_builtin("json"), r.out, strlen(r.out) - 1, &got) == LZ_OK &&
                     lz_value_equal(got, want));
        } else {
            LZ_CHECK_STR(r.out, "");
            LZ_CHECK_INT(count_lines(r.err), 1);
        }
        seen[expected]++;
        lz_value_destroy(&want);
        lz_value_destroy(&got);
    }
    pthread_join(thread, NULL);
    zmq_close(s.router);
    zmq_ctx_term(ctx);
    printf("  %d replies: %d printed, %d error replies, %d undecodable\n", DAMAGED_REPLIES, seen[0], seen[4], seen[1]);
    LZ_CHECK(seen[1] > 0 && seen[0] + seen[4] > 0);
}

// A plain pyzmq SUB sees [topic, JSON payload] from lz pub.
LZ_TEST(test_pub_to_plain_sub) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    char script[512];
    snprintf(script, sizeof script, "%s/interop/cli_sub.py", LZ_TEST_DIR);
    char *argv[] = {(char *)LZ_PYTHON, script, ep, (char *)"2", NULL};
    proc_t py = proc_start(argv, NULL);
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, "{\"a\": 1}\nplain text\n", "pub", "--connect", ep, "--topic", "tp", "--settle", "300"), 0);
    proc_finish(&py, 15000, &r);
    LZ_CHECK_INT(r.status, 0);
    LZ_CHECK_STR(r.out, "[\"tp\", \"{\\\"a\\\":1}\"]\n[\"tp\", \"\\\"plain text\\\"\"]\n");
}

// A plain pyzmq PUB's [topic, payload] prints like ours, its one-frame
// message with "topic": null, its binary topic in base64; a payload that is
// not JSON (or not UTF-8) appears as base64.
LZ_TEST(test_sub_from_plain_pub) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    pid_t py = lz_test_spawn_python("cli_pub.py", ep, NULL);
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", ep, "--count", "6", "--timeout", "10"), 0);
    LZ_CHECK_STR(r.out, "{\"topic\":\"plain\",\"data\":{\"x\":1}}\n"
                        "{\"topic\":\"plain\",\"data\":\"text\"}\n"
                        "{\"topic\":\"plain\",\"data\":\"bm90IGpzb24=\",\"encoding\":\"base64\"}\n"
                        "{\"topic\":\"plain\",\"data\":\"/wD+\",\"encoding\":\"base64\"}\n"
                        "{\"topic\":null,\"data\":{\"t\":21.5}}\n"
                        "{\"topic\":\"/wE=\",\"topic_encoding\":\"base64\",\"data\":{\"price\":42}}\n");
    LZ_CHECK_INT(lz_test_wait(py, 10000), 0);
}

// A receiver's --raw is --format raw: lz sub shows a JSON payload as its
// text, lz pull a task's whole frame, both undecoded.
LZ_TEST(test_receivers_raw) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--raw", "--count", "1", "--timeout", "20");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, "{\"a\": [1, 2]}\n", "pub", "--connect", ep, "--topic", "t", "--settle", "300"), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"t\",\"data\":\"{\\\"a\\\":[1,2]}\"}\n");
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep, "--raw", "--count", "1", "--timeout", "20");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, "7\n", "push", "--connect", ep, "--type", "job"), 0);
    finish_ok(&pull);
    LZ_CHECK(strncmp(r.out, "{\"type\":\"\",\"data\":\"{\\\"type\\\":\\\"job\\\",", 35) == 0);
}

// A task that does not decode is shown, as lz sub shows such a payload:
// type "unknown", the frame as base64.
LZ_TEST(test_pull_shows_an_undecodable_task) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep, "--count", "2", "--timeout", "10");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, "not json\n{\"x\": 1}\n", "push", "--connect", ep, "--raw"), 0);
    finish_ok(&pull);
    LZ_CHECK_STR(r.out, "{\"type\":\"unknown\",\"data\":\"bm90IGpzb24=\",\"encoding\":\"base64\"}\n"
                        "{\"type\":\"unknown\",\"data\":{\"x\":1}}\n");
    LZ_CHECK_STR(r.err, "");
}

// A message that is not a task (two frames) is dropped with one line on
// stderr, not in silence, and the next task is printed.
LZ_TEST(test_pull_reports_a_dropped_task) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep, "--count", "1", "--timeout", "10");
    wait_ipc(ep);
    void *ctx = zmq_ctx_new();
    void *push = plain_peer(ctx, ZMQ_PUSH, ep, 10000);
    LZ_CHECK_INT(zmq_send(push, "a", 1, ZMQ_SNDMORE), 1);
    LZ_CHECK_INT(zmq_send(push, "b", 1, 0), 1);
    LZ_CHECK_INT(zmq_send(push, "[7]", 3, 0), 3);
    finish_ok(&pull);
    zmq_close(push);
    zmq_ctx_term(ctx);
    LZ_CHECK_STR(r.out, "{\"type\":\"unknown\",\"data\":[7]}\n");
    LZ_CHECK_INT(count_lines(r.err), 1);
    LZ_CHECK(strncmp(r.err, "lz pull: dropped a malformed message: expected one frame per task", 65) == 0);
}

// A closed standard input is an empty one (libzmq must not get its number).
LZ_TEST(test_closed_stdin) {
    char ep[128], command[512];
    lz_test_ipc_endpoint(ep, sizeof ep);
    snprintf(command, sizeof command, "%s pub --connect %s --settle 0 <&-", LZ_TOOL, ep);
    char *argv[] = {(char *)"/bin/sh", (char *)"-c", command, NULL};
    LZ_CHECK_INT(run_lz(&r, NULL, proc_start(argv, NULL)), 0);
    LZ_CHECK_STR(r.err, "");
}

LZ_TEST(test_sub_timeout) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", ep, "--timeout", "0.3"), 3);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    LZ_CHECK(t1.tv_sec - t0.tv_sec < 5);
    LZ_CHECK_INT(count_lines(r.err), 1);
    LZ_CHECK(strstr(r.err, "nothing received for 300 ms (no peer is connected)\n") != NULL);
    LZ_CHECK_STR(r.out, "");
    // A publisher that is there but silent is told from none at all.
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    LZ_CHECK_INT(zmq_bind(pub, ep), 0);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", ep, "--timeout", "1"), 3); // time to connect
    LZ_CHECK_STR(r.err, "lz sub: timeout: nothing received for 1000 ms\n");
    zmq_close(pub);
    zmq_ctx_term(ctx);
}

LZ_TEST(test_push_pull) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep, "--count", "3", "--timeout", "10");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, "{\"n\": 1}\nwork\n[true]\n", "push", "--connect", ep, "--type", "job"), 0);
    finish_ok(&pull);
    LZ_CHECK_STR(r.out, "{\"type\":\"job\",\"data\":{\"n\":1}}\n"
                        "{\"type\":\"job\",\"data\":\"work\"}\n"
                        "{\"type\":\"job\",\"data\":[true]}\n");
}

// A line past 64 MiB (input with no newline, a binary file) is reported and
// skipped, read through without keeping it, and the lines after it go on.
LZ_TEST(test_push_skips_an_endless_line) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep, "--count", "2", "--timeout", "30");
    wait_ipc(ep);
    size_t big = ((size_t)64 << 20) + 1;
    char *input = malloc(big + 32);
    strcpy(input, "first\n");
    memset(input + 6, 'x', big);
    strcpy(input + 6 + big, "\nlast\n");
    LZ_CHECK_INT(LZ_RUN(&r, input, "push", "--connect", ep), 1);
    free(input);
    LZ_CHECK_STR(r.err, "lz push: line 2: longer than 67108864 bytes: skipped\n");
    finish_ok(&pull);
    LZ_CHECK_STR(r.out, "{\"type\":\"default\",\"data\":\"first\"}\n"
                        "{\"type\":\"default\",\"data\":\"last\"}\n");
}

// A task towards a puller that is not there is an error, not a silent loss;
// a puller that binds within zmq.send_timeout still gets it.
LZ_TEST(test_push_needs_a_puller) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t push = lz_start("LIBERZMQ_ZMQ__SEND_TIMEOUT=300", "push", "--connect", ep, (char *)NULL);
    LZ_CHECK_INT(run_lz(&r, "lost?\n", push), 3);
    LZ_CHECK_INT(count_lines(r.err), 1);
    LZ_CHECK(strstr(r.err, "no peer took") != NULL);
    push = LZ_START("push", "--connect", ep);
    proc_feed(&push, "late\n");
    lz_test_sleep_ms(300);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "pull", "--bind", ep, "--count", "1", "--timeout", "10"), 0);
    LZ_CHECK_STR(r.out, "{\"type\":\"default\",\"data\":\"late\"}\n");
    finish_ok(&push);
}

// A peer that takes nothing (the slowest peer): what lz push or lz pub
// still holds when zmq.linger runs out is dropped by libzmq, and they say
// so and exit 3 rather than 0. Nothing can drain, so no timing decides.
LZ_TEST(test_senders_report_what_the_linger_dropped) {
    enum { LINES = 64, LINE = 256 * 1024 }; // 16 MiB: far more than socket buffers and one message hold
    char *input = malloc((size_t)LINES * (LINE + 1) + 1), settle[16];
    for (int i = 0; i < LINES; i++) {
        memset(input + (size_t)i * (LINE + 1), 'x', LINE);
        input[(size_t)i * (LINE + 1) + LINE] = '\n';
    }
    input[(size_t)LINES * (LINE + 1)] = '\0';
    snprintf(settle, sizeof settle, "%d", 500 * LZ_TEST_SLOWDOWN); // the subscription reaches lz pub first
    static const struct {
        const char *command;
        int peer_type;
    } senders[] = {{"push", ZMQ_PULL}, {"pub", ZMQ_SUB}};
    for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++) {
        char ep[128];
        lz_test_ipc_endpoint(ep, sizeof ep);
        void *ctx = zmq_ctx_new();
        void *peer = zmq_socket(ctx, senders[i].peer_type);
        int one = 1, zero = 0;
        zmq_setsockopt(peer, ZMQ_RCVHWM, &one, sizeof one);
        zmq_setsockopt(peer, ZMQ_LINGER, &zero, sizeof zero);
        if (senders[i].peer_type == ZMQ_SUB) zmq_setsockopt(peer, ZMQ_SUBSCRIBE, "", 0);
        // Connecting, it subscribes without a receive (a bound SUB would
        // only once a call of ours let its socket take the connection).
        LZ_CHECK_INT(zmq_connect(peer, ep), 0);
        proc_t sender = lz_start("LIBERZMQ_ZMQ__LINGER=300", senders[i].command, "--bind", ep, "--raw", "--settle",
                                 settle, (char *)NULL);
        LZ_CHECK_INT(run_lz(&r, input, sender), 3);
        if (!strstr(r.err, "zmq.linger (300 ms) ran out")) fprintf(stderr, "lz %s: %s", senders[i].command, r.err);
        LZ_CHECK(strstr(r.err, "messages still queued for a slow peer when zmq.linger (300 ms) ran out") != NULL);
        LZ_CHECK_INT(count_lines(r.err), 1);
        zmq_close(peer);
        zmq_ctx_term(ctx);
    }
    free(input);
}

// A short zmq.linger with nothing sent (empty input): nothing can have
// been dropped, however long the teardown lasts. Before, a teardown of 1 ms
// or more (most of them) made lz pub and lz push report drops and exit 3.
LZ_TEST(test_senders_with_nothing_sent_report_no_drop) {
    for (int i = 0; i < 6; i++) {
        char ep[128];
        lz_test_ipc_endpoint(ep, sizeof ep);
        const char *command = i % 2 ? "push" : "pub";
        LZ_CHECK_INT(run_lz(&r, "", lz_start("LIBERZMQ_ZMQ__LINGER=1", command, "--bind", ep, "--settle", "0",
                                             (char *)NULL)),
                     0);
        LZ_CHECK_STR(r.err, "");
    }
}

// read_line_from reads fd into text (size bytes, NUL-terminated) until a
// whole line has come (or timeout_ms passed) and returns whether one did;
// text may hold more after it.
static bool read_line_from(int fd, char *text, size_t size, int timeout_ms) {
    size_t len = 0;
    text[0] = '\0';
    for (int64_t end = lz_test_now_ms() + timeout_ms; !strchr(text, '\n') && len < size - 1;) {
        struct pollfd in = {fd, POLLIN, 0};
        int64_t left = end - lz_test_now_ms();
        if (left <= 0 || poll(&in, 1, (int)left) <= 0) return false;
        ssize_t n = read(fd, text + len, size - 1 - len);
        if (n <= 0) return false;
        len += (size_t)n;
        text[len] = '\0';
    }
    return strchr(text, '\n') != NULL;
}

// wait_line reads p's standard output until a whole line has come (or
// timeout_ms passed) and returns whether one did.
static bool wait_line(proc_t *p, int timeout_ms) {
    char text[4096];
    return read_line_from(p->out, text, sizeof text, timeout_ms);
}

// sub and pull run until a stop signal, then exit 0, and first say how
// many drops the rate limit held back ("at the latest when the command exits").
LZ_TEST(test_receivers_stop_on_a_signal) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep);
    wait_ipc(ep);
    void *ctx = zmq_ctx_new();
    void *push = plain_peer(ctx, ZMQ_PUSH, ep, 10000);
    for (int i = 0; i < 50; i++) { // not tasks: each is dropped, one reported a second
        LZ_CHECK_INT(zmq_send(push, "a", 1, ZMQ_SNDMORE), 1);
        LZ_CHECK_INT(zmq_send(push, "b", 1, 0), 1);
    }
    LZ_CHECK_INT(zmq_send(push, "[7]", 3, 0), 3);
    LZ_CHECK(wait_line(&pull, 10000)); // the task after them: every drop happened
    kill(pull.pid, SIGINT);
    finish_ok(&pull);
    if (!strstr(r.err, "more drop(s) not logged\n")) fprintf(stderr, "lz pull: %s", r.err);
    LZ_CHECK(strncmp(r.err, "lz pull: dropped a malformed message: expected one frame per task", 65) == 0);
    LZ_CHECK(strstr(r.err, "more drop(s) not logged\n") != NULL);
    zmq_close(push);
    zmq_ctx_term(ctx);
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep);
    wait_ipc(ep);
    kill(sub.pid, SIGHUP);
    finish_ok(&sub);
    LZ_CHECK_STR(r.err, "");
}

// stops_while_blocked runs lz COMMAND (sub or pull) with its standard
// output stdout_fd (-1: a pipe), which nothing reads while a plain peer
// sends it more lines of line_size bytes than fit, then sends SIGTERM:
// it must exit 0, at once, the lines it wrote to a pipe whole. reader is the far
// end of stdout_fd (both closed here), the pipe's when -1. Before, lz sat
// in write() until killed.
static void stops_while_blocked(const char *command, int stdout_fd, int reader, size_t line_size) {
    bool sub = strcmp(command, "sub") == 0, to_pipe = stdout_fd < 0;
    char ep[128], notice[16], *payload = malloc(line_size);
    memset(payload, 'x', line_size);
    payload[0] = payload[line_size - 1] = '"'; // a JSON string
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t p = lz_start_to(stdout_fd, command, "--bind", ep, (char *)NULL);
    if (stdout_fd >= 0) close(stdout_fd); // lz's own now: the reader sees its end
    int *out = reader >= 0 ? &reader : &p.out;
    wait_ipc(ep);
    void *ctx = zmq_ctx_new();
    void *peer = plain_peer(ctx, sub ? ZMQ_XPUB : ZMQ_PUSH, ep, 10000);
    if (sub) LZ_CHECK_INT(zmq_recv(peer, notice, sizeof notice, 0), 1); // subscribed
    for (int k = 0; k < 1000; k++) { // several pipes' worth of lines; what does not fit waits in queues
        if (sub) zmq_send(peer, "t", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(peer, payload, line_size, ZMQ_DONTWAIT);
    }
    int queued = 0, before = -1; // the reader's side full: lz waits to write
    while (queued != before) {
        before = queued;
        LZ_TEST_WAIT_UNTIL(ioctl(*out, FIONREAD, &queued) == 0 && queued > before, 300 * LZ_TEST_SLOWDOWN);
    }
    LZ_CHECK(queued > (to_pipe ? 30000 : 0));

    int64_t start = lz_test_now_ms();
    kill(p.pid, SIGTERM);
    LZ_CHECK_INT(lz_test_wait(p.pid, 5000 * LZ_TEST_SLOWDOWN), 0);
    printf("  lz %s: exit after %lld ms\n", command, (long long)(lz_test_now_ms() - start));
    size_t len = 0;
    while (*out >= 0 && len < OUT_MAX - 1) take(out, r.out, &len);
    LZ_CHECK(len >= (size_t)queued && (!to_pipe || r.out[len - 1] == '\n')); // to a socket a line may be cut
    if (*out >= 0) close(*out);
    close(p.in);
    close(p.err);
    zmq_close(peer);
    zmq_ctx_term(ctx);
    free(payload);
}

// A stop signal ends sub and pull even while a pipe they write to is full.
LZ_TEST(test_receivers_stop_while_stdout_is_blocked) {
    stops_while_blocked("sub", -1, -1, 200);
    stops_while_blocked("pull", -1, -1, 200);
}

// The same with a TCP socket as standard output, with a small send buffer
// (systemd's SendBuffer=, socat's sndbuf): a socket that poll calls
// writable may not have room for a whole line, where a blocking write
// waited until killed.
// Not under ThreadSanitizer: there lz, given this socket, did not come up
// in the test's runs (it does by hand, and in the other builds and under
// valgrind); the pipe case above runs in every build.
LZ_TEST(test_receivers_stop_while_a_socket_stdout_is_blocked) {
#ifdef LZ_TEST_TSAN
    fprintf(stderr, "%s: skipped under ThreadSanitizer\n", __func__);
    return;
#endif
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t at_len = sizeof at;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096, tiny = 2048;
    LZ_CHECK(setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny) == 0); // a small window too
    LZ_CHECK(bind(listener, (struct sockaddr *)&at, sizeof at) == 0 && listen(listener, 1) == 0);
    LZ_CHECK(getsockname(listener, (struct sockaddr *)&at, &at_len) == 0);
    int out = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    LZ_CHECK(setsockopt(out, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    LZ_CHECK(connect(out, (struct sockaddr *)&at, sizeof at) == 0);
    int reader = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    LZ_CHECK(reader >= 0);
    stops_while_blocked("sub", out, reader, 4090);
    close(listener);
}

// A value 127 levels deep, as deep as the protocol allows (protocol.md,
// 7), is shown as that value: lz sub writes the record around the data's
// own JSON. Before, the record was a value one level deeper, past the
// writer's limit, and the data was shown as base64.
LZ_TEST(test_sub_shows_the_deepest_value) {
    char line[256], expect[320], ep[128];
    memset(line, '[', 127);
    memset(line + 127, ']', 127);
    strcpy(line + 254, "\n");
    snprintf(expect, sizeof expect, "{\"topic\":\"t\",\"data\":%.254s}\n", line);
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", "1", "--timeout", "10");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, line, "pub", "--connect", ep, "--topic", "t", "--settle", "300"), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, expect);
}

LZ_TEST(test_req_rep_echo) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = LZ_START("rep", "--bind", ep, "--echo", "--count", "2");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "5000", "anything", "{\"k\": [1, \"x\"]}"), 0);
    LZ_CHECK_STR(r.out, "{\"k\":[1,\"x\"]}\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "5000", "neg", "-5"), 0);
    LZ_CHECK_STR(r.out, "-5\n");
    finish_ok(&rep);
}

// write_schema puts text in a file beside the test's ipc endpoints.
static void write_schema(char *path, size_t size, const char *text) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    snprintf(path, size, "%s.json", ep + strlen("ipc://"));
    FILE *f = fopen(path, "w");
    LZ_CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

LZ_TEST(test_schema_option) {
    char ep[128], schema[160], bad[160];
    write_schema(schema, sizeof schema, "{\"type\": \"object\", \"required\": [\"id\"],"
                                        " \"properties\": {\"id\": {\"type\": \"integer\"}}}");
    write_schema(bad, sizeof bad, "{\"type\": 5}");
    const char *lines = "{\"id\": \"x\"}\n{\"id\": 2}\n";
    // A sender skips the lines that do not match (exit 1), sends the rest.
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t pull = LZ_START("pull", "--bind", ep, "--count", "1", "--timeout", "10");
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, lines, "push", "--connect", ep, "--type", "t", "--schema", schema), 1);
    LZ_CHECK_STR(r.err, "lz push: line 1: push: 't' refused: $.id: expected integer, got string\n");
    finish_ok(&pull);
    LZ_CHECK_STR(r.out, "{\"type\":\"t\",\"data\":{\"id\":2}}\n");
    // A receiver drops them, and says so.
    lz_test_ipc_endpoint(ep, sizeof ep);
    pull = LZ_START("pull", "--bind", ep, "--count", "1", "--timeout", "10", "--schema", schema);
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, lines, "push", "--connect", ep, "--type", "t"), 0);
    finish_ok(&pull);
    LZ_CHECK_STR(r.out, "{\"type\":\"t\",\"data\":{\"id\":2}}\n");
    LZ_CHECK_STR(r.err, "lz pull: dropped a refused message: 't' refused: $.id: expected integer, got string\n");
    // A subscriber too: it checks the decoded data (before, it checked the
    // payload's bytes, and dropped every message).
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", "1", "--timeout", "10", "--schema", schema);
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, lines, "pub", "--connect", ep, "--topic", "t", "--settle", "300"), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"t\",\"data\":{\"id\":2}}\n");
    LZ_CHECK_STR(r.err, "lz sub: dropped a refused message: 't' refused: $.id: expected integer, got string\n");
    // Undecoded data cannot be checked: --raw with --schema is a usage error.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", ep, "--raw", "--schema", schema), 2);
    LZ_CHECK(strstr(r.err, "lz sub: --schema checks decoded data: not with format 'raw' (--raw) (usage") == r.err);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "pull", "--connect", ep, "--format", "raw", "--schema", schema), 2);
    // A server answers with an error reply; a client refuses before sending.
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = LZ_START("rep", "--bind", ep, "--echo", "--count", "1", "--schema", schema);
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "5000", "get", "{}"), 4);
    LZ_CHECK(strstr(r.err, "'get' refused: $: missing required property 'id'") != NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "5000", "get", "{}", "--schema", schema), 1);
    LZ_CHECK_STR(r.err, "lz req: request: client: 'get' refused: $: missing required property 'id'\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "5000", "get", "{\"id\": 1}"), 0);
    LZ_CHECK_STR(r.out, "{\"id\":1}\n");
    finish_ok(&rep);
    // A schema that is not one, or no file at all: exit 1, saying why.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "get", "--schema", bad), 1);
    LZ_CHECK(strstr(r.err, ".json: schema #/type: type must be a type name (null, boolean, integer, number, "
                           "string, array, object) or an array of them\n") != NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", ep, "--schema", "/nonexistent/s.json"), 1);
    LZ_CHECK_STR(r.err, "lz sub: schema /nonexistent/s.json: No such file or directory\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", ep, "--schema", ""), 2);
    unlink(schema);
    unlink(bad);
}

// yaml_value copies the quoted value of "name: \"...\"" in text into out.
static void yaml_value(const char *text, const char *name, char *out, size_t size) {
    const char *at = strstr(text, name);
    out[0] = '\0';
    LZ_CHECK(at != NULL);
    if (at) sscanf(at + strlen(name), ": \"%40[^\"]\"", out);
    (void)size;
}

LZ_TEST(test_keygen_and_a_curve_round_trip) {
    // libzmq's own test vector (zmq_curve(7)).
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "keygen", "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"), 0);
    LZ_CHECK_STR(r.out, "public_key: \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n"
                        "secret_key: \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "keygen", "not a key"), 2);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "keygen"), 0);
    char public_key[64], secret_key[64], env_secret[128], env_server[128];
    yaml_value(r.out, "public_key", public_key, sizeof public_key);
    yaml_value(r.out, "secret_key", secret_key, sizeof secret_key);
    LZ_CHECK_INT(strlen(public_key), 40);
    LZ_CHECK_INT(strlen(secret_key), 40);
    snprintf(env_secret, sizeof env_secret, "LIBERZMQ_SECURITY__CURVE_SECRET_KEY=%s", secret_key);
    snprintf(env_server, sizeof env_server, "LIBERZMQ_SECURITY__CURVE_SERVER_KEY=%s", public_key);

    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = lz_start(env_secret, "rep", "--bind", ep, "--echo", "--count", "1", (char *)NULL);
    wait_ipc(ep);
    // Without the server's key a client is refused: no reply.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "500", "--retries", "0", "say", "1"), 3);
    LZ_CHECK_INT(run_lz(&r, NULL, lz_start(env_server, "req", "--connect", ep, "--timeout", "5000", "say", "[1]",
                                           (char *)NULL)),
                 0);
    LZ_CHECK_STR(r.out, "[1]\n");
    finish_ok(&rep);
}

// write_file puts text in a fresh file of the tests' temp directory; path gets its name.
static void write_file(char *path, size_t size, const char *suffix, const char *text) {
    char ep[128];
    snprintf(path, size, "%s%s", lz_test_ipc_endpoint(ep, sizeof ep) + strlen("ipc://"), suffix);
    FILE *f = fopen(path, "w");
    LZ_CHECK(f != NULL);
    if (f) fputs(text, f);
    if (f) fclose(f);
}

// The line lz passwd prints lets that user in, with that password only.
LZ_TEST(test_passwd_and_a_plain_round_trip) {
    LZ_CHECK_INT(LZ_RUN(&r, "wonderland\n", "passwd", "alice"), 0);
    LZ_CHECK(strncmp(r.out, "alice:$y$", 9) == 0);
    LZ_CHECK_INT(count_lines(r.out), 1);
    LZ_CHECK(strstr(r.out, "wonderland") == NULL && strstr(r.err, "wonderland") == NULL);
    char users[256], env_users[300], right[256], wrong[256];
    write_file(users, sizeof users, ".users", r.out);
    // The same password hashes differently each time: a fresh salt.
    LZ_CHECK_INT(LZ_RUN(&r, "wonderland\n", "passwd", "alice"), 0);
    char first[160];
    FILE *f = fopen(users, "r");
    LZ_CHECK(f && fgets(first, sizeof first, f));
    if (f) fclose(f);
    LZ_CHECK(strcmp(first, r.out) != 0);
    LZ_CHECK_INT(LZ_RUN(&r, "", "passwd", "alice"), 1);            // no password
    LZ_CHECK_INT(LZ_RUN(&r, "wonderland\n", "passwd", "a:b"), 2);  // no name for the file
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "passwd", "alice", "bob"), 2);

    write_file(right, sizeof right, ".yaml", "security:\n  plain_username: alice\n  plain_password: wonderland\n");
    write_file(wrong, sizeof wrong, ".yaml", "security:\n  plain_username: alice\n  plain_password: looking-glass\n");
    snprintf(env_users, sizeof env_users, "LIBERZMQ_SECURITY__PLAIN_USERS_FILE=%s", users);
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = lz_start(env_users, "rep", "--bind", ep, "--echo", "--count", "1", (char *)NULL);
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--config", wrong, "--connect", ep, "--timeout", "500", "--retries", "0",
                        "say", "1"), 3);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--config", right, "--connect", ep, "--timeout", "5000", "say", "[1]"), 0);
    LZ_CHECK_STR(r.out, "[1]\n");
    finish_ok(&rep);
    unlink(users);
    unlink(right);
    unlink(wrong);
}

// start_exec_rep runs `lz rep --exec script --timeout timeout_ms` on a fresh
// ipc endpoint (written to ep) and waits until it has bound.
static proc_t start_exec_rep(char *ep, size_t size, const char *script, const char *timeout_ms) {
    lz_test_ipc_endpoint(ep, size);
    proc_t rep = LZ_START("rep", "--bind", ep, "--exec", script, "--timeout", timeout_ms);
    wait_ipc(ep);
    return rep;
}

// --exec: the command's JSON output is the reply, other text a string; a
// failing command is an error reply (exit 4 on the client).
LZ_TEST(test_req_rep_exec) {
    char ep[128];
    const char *script = "read -r req; case \"$req\" in *'\"fail\"'*) exit 7;; *'\"text\"'*) echo hi there;; "
                         "*'\"back\"'*) echo \"$req\";; *) echo '{\"ok\": 1}';; esac";
    proc_t rep = start_exec_rep(ep, sizeof ep, script, "5000");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "json"), 0);
    LZ_CHECK_STR(r.out, "{\"ok\":1}\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "text"), 0);
    LZ_CHECK_STR(r.out, "\"hi there\"\n");
    // The command reads the whole request: action, id and data.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "back", "{\"v\": 2}"), 0);
    LZ_CHECK(strncmp(r.out, "{\"type\":\"back\",", strlen("{\"type\":\"back\",")) == 0);
    LZ_CHECK(strstr(r.out, "\"request_id\":") != NULL);
    LZ_CHECK(strstr(r.out, "\"data\":{\"v\":2}") != NULL);
    LZ_CHECK(strstr(r.out, "traceparent") == NULL);
    // A traced client's request carries its W3C traceparent (docs/tracing.md).
    LZ_CHECK_INT(run_lz(&r, NULL, lz_start("LIBERZMQ_TRACING__ENABLED=1", "req", "--connect", ep, "--timeout", "8000",
                                           "back", (char *)NULL)),
                 0);
    LZ_CHECK(strstr(r.out, "\"traceparent\":\"00-") != NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "fail"), 4);
    LZ_CHECK_STR(r.out, "");
    LZ_CHECK_INT(count_lines(r.err), 1);
    LZ_CHECK(strstr(r.err, "status 7") != NULL);
    stop_ok(&rep);
}

// Bytes keep their type in lz's JSON, written as the wire has them (the
// Python LiberZMQ's {"__type__": "bytes", "value": HEX}): in the request
// lz rep --exec hands its command (a command echoing the data replies
// bytes), in lz req's reply, in what lz sub prints. Before, each was a
// base64 string, a string to whoever read it back.
LZ_TEST(test_bytes_keep_their_type) {
    char ep[128];
    proc_t rep = start_exec_rep(ep, sizeof ep, "cat", "5000");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "x",
                        "{\"__type__\": \"bytes\", \"value\": \"ff00\"}"),
                 0);
    LZ_CHECK(strstr(r.out, ",\"data\":{\"__type__\":\"bytes\",\"value\":\"ff00\"}}\n") != NULL);
    stop_ok(&rep);
    rep = start_exec_rep(ep, sizeof ep, "printf '\\377\\376'", "5000"); // output that is not UTF-8: bytes
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "x"), 0);
    LZ_CHECK_STR(r.out, "{\"__type__\":\"bytes\",\"value\":\"fffe\"}\n");
    stop_ok(&rep);
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", "2", "--timeout", "10");
    wait_ipc(ep);
    const char *input = "{\"b\": {\"__type__\": \"bytes\", \"value\": \"ff00\"}}\n"
                        "{\"__type__\": \"bytes\", \"value\": \"6869\"}\n";
    LZ_CHECK_INT(LZ_RUN(&r, input, "pub", "--connect", ep, "--topic", "t", "--settle", "300"), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"t\",\"data\":{\"b\":{\"__type__\":\"bytes\",\"value\":\"ff00\"}}}\n"
                        "{\"topic\":\"t\",\"data\":{\"__type__\":\"bytes\",\"value\":\"6869\"}}\n");
}

// lz rep --exec hands the command JSON: a msgpack request it cannot show as
// JSON (a NaN) gets an error reply without running the command.
LZ_TEST(test_rep_exec_refuses_a_request_without_json_form) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = LZ_START("rep", "--bind", ep, "--format", "msgpack", "--exec", "echo ran", "--count", "1");
    wait_ipc(ep);
    void *ctx = zmq_ctx_new();
    void *req = plain_peer(ctx, ZMQ_REQ, ep, 8000);
    static const char request[] = "\x82\xa4type\xa3run\xa4" "data\xcb\x7f\xf8\0\0\0\0\0\0"; // data: NaN
    LZ_CHECK_INT(zmq_send(req, request, sizeof request - 1, 0), (int)sizeof request - 1);
    char reply[512];
    int n = zmq_recv(req, reply, sizeof reply, 0);
    LZ_CHECK(n > 0 && n < (int)sizeof reply);
    lz_value_t *v = NULL;
    if (n > 0 && n < (int)sizeof reply)
        LZ_CHECK_INT(lz_serializer_decode(lz_serializer_builtin("msgpack"), reply, (size_t)n, &v), LZ_OK);
    LZ_CHECK_STR(lz_value_find_string(v, "status", ""), "error");
    LZ_CHECK_STR(lz_value_find_string(v, "message", ""), "request has no JSON form for the command");
    LZ_CHECK_STR(lz_value_find_string(v, "request_type", ""), "run");
    lz_value_destroy(&v);
    zmq_close(req);
    zmq_ctx_term(ctx);
    stop_ok(&rep);
}

// A first stop signal lets running commands finish (up to --timeout); a
// second one kills them, their requests get an error reply, and lz rep
// exits at once. (Before, it waited out the command: 30 s here.)
LZ_TEST(test_rep_second_signal_ends_commands) {
    char ep[128], running[160], command[256];
    lz_test_ipc_endpoint(ep, sizeof ep);
    snprintf(running, sizeof running, "%s.running", ep);
    snprintf(command, sizeof command, "touch %s; sleep 30", running + strlen("ipc://"));
    proc_t rep = LZ_START("rep", "--bind", ep, "--exec", command, "--timeout", "60000");
    wait_ipc(ep);
    proc_t req = LZ_START("req", "--connect", ep, "--timeout", "20000", "--retries", "0", "a");
    wait_ipc(running); // the command runs
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(rep.pid, SIGINT);
    lz_test_sleep_ms(300); // the first signal: still waiting for the command
    LZ_CHECK(waitpid(rep.pid, NULL, WNOHANG) == 0);
    kill(rep.pid, SIGINT);
    finish_ok(&rep);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    LZ_CHECK(t1.tv_sec - t0.tv_sec < 5);
    proc_finish(&req, 10000, &r);
    LZ_CHECK_INT(r.status, 4);
    LZ_CHECK(strstr(r.err, "lz rep is stopping") != NULL);
}

LZ_TEST(test_req_timeout) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--connect", "tcp://127.0.0.1:1", "--timeout", "300",
                        "--retries", "0", "ping"),
                 3);
    LZ_CHECK_INT(count_lines(r.err), 1);
    LZ_CHECK_STR(r.out, "");
    // The endpoints as given, not the library's bind/connect markers.
    char expect[256];
    snprintf(expect, sizeof expect, "no reply from %s, tcp://127.0.0.1:1 (no peer is connected)\n", ep);
    LZ_CHECK(strstr(r.err, expect) != NULL);
    // The most retries the client makes (LZ_CLIENT_RETRIES_MAX) is taken.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "300", "--retries", "100", "ping"), 3);
    LZ_CHECK(strstr(r.err, "no reply from") != NULL);
}

// A server that is there but silent is told from one never reached.
LZ_TEST(test_req_timeout_from_a_silent_server) {
    char ep[128], expect[256];
    lz_test_ipc_endpoint(ep, sizeof ep);
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    LZ_CHECK_INT(zmq_bind(router, ep), 0);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "1000", "--retries", "0", "ping"), 3);
    snprintf(expect, sizeof expect, "lz req: timeout: no reply from %s\n", ep);
    LZ_CHECK_STR(r.err, expect);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

// --count N answers exactly N requests, even when handlers run on several
// threads: one more that arrives meanwhile is refused with an error reply.
LZ_TEST(test_rep_count_is_exact) {
    char ep[128], running[160], command[256];
    lz_test_ipc_endpoint(ep, sizeof ep);
    // The command marks that it runs (a file beside the endpoint's), then
    // takes a second (three under ThreadSanitizer) for the second request.
    snprintf(running, sizeof running, "%s.running", ep);
    snprintf(command, sizeof command, "touch %s; sleep %d; echo done", running + strlen("ipc://"), LZ_TEST_SLOWDOWN);
    proc_t rep = LZ_START("rep", "--bind", ep, "--exec", command, "--count", "1");
    wait_ipc(ep);
    proc_t first = LZ_START("req", "--connect", ep, "--timeout", "8000", "--retries", "0", "a");
    wait_ipc(running); // the first is running its command
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "--retries", "0", "b"), 4);
    LZ_CHECK(strstr(r.err, "server stopping") != NULL);
    LZ_CHECK_INT(count_lines(r.err), 1);
    finish_ok(&first);
    LZ_CHECK_STR(r.out, "\"done\"\n");
    finish_ok(&rep);
}

// --exec bounds: a command still running at --timeout is killed with its
// whole process group (a background child holding its output open too), and
// one whose output passes the cap is cut off; each gets an error reply, and
// the server goes on answering.
LZ_TEST(test_rep_exec_limits) {
    char ep[128];
    const char *script = "read -r req; case \"$req\" in *'\"slow\"'*) sleep 30 & sleep 30;; "
                         "*'\"big\"'*) head -c 17000000 /dev/zero;; *) echo '\"fine\"';; esac";
    // 3 s: under ThreadSanitizer on a busy machine, reading the big command's
    // 16 MiB took over 1 s, so it timed out before its output passed the cap.
    proc_t rep = start_exec_rep(ep, sizeof ep, script, "3000");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "--retries", "0", "slow"), 4);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    LZ_CHECK(strstr(r.err, "command timed out after 3000 ms") != NULL);
    LZ_CHECK((t1.tv_sec - t0.tv_sec) < 8); // the sleeps (30 s) were killed, not waited for
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "--retries", "0", "big"), 4);
    LZ_CHECK(strstr(r.err, "command output larger than 16777216 bytes") != NULL);
    if (!strstr(r.err, "command output larger")) fprintf(stderr, "lz req said: %s", r.err);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "--retries", "0", "other"), 0);
    LZ_CHECK_STR(r.out, "\"fine\"\n");
    stop_ok(&rep);
}

LZ_TEST(test_proxy_forwarder) {
    char front[128], back[128];
    proc_t proxy = start_proxy("forwarder", front, back, sizeof front);
    proc_t sub = LZ_START("sub", "--connect", back, "--count", "1", "--timeout", "10");
    lz_test_sleep_ms(300);
    LZ_CHECK_INT(LZ_RUN(&r, "{\"via\": \"proxy\"}\n", "pub", "--connect", front, "--topic", "p", "--settle", "500"), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"p\",\"data\":{\"via\":\"proxy\"}}\n");
    stop_ok(&proxy);
}

// A queue joins clients to servers that connect to it, and says what it
// moved as it stops: each request in at the frontend and out at the
// backend, each reply back.
LZ_TEST(test_proxy_queue) {
    char front[128], back[128];
    proc_t proxy = start_proxy("queue", front, back, sizeof front);
    proc_t rep = LZ_START("rep", "--connect", back, "--echo", "--count", "1");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", front, "--timeout", "8000", "via", "[1, 2]"), 0);
    LZ_CHECK_STR(r.out, "[1,2]\n");
    finish_ok(&rep);
    stop_ok(&proxy);
    unsigned long long in, in_bytes, back_out, back_out_bytes, back_in, back_in_bytes, out, out_bytes;
    int n = sscanf(r.err,
                   "lz proxy: stopping: the frontend received %llu message(s) (%llu B) and sent %llu (%llu B); "
                   "the backend received %llu (%llu B) and sent %llu (%llu B)",
                   &in, &in_bytes, &out, &out_bytes, &back_in, &back_in_bytes, &back_out, &back_out_bytes);
    if (n != 8) fprintf(stderr, "lz proxy said: %s\n", r.err);
    LZ_CHECK_INT(n, 8);
    LZ_CHECK(in >= 1 && in == back_out && in_bytes == back_out_bytes && in_bytes > 0);
    LZ_CHECK(out >= 1 && out == back_in && out_bytes == back_in_bytes && out_bytes > 0);
}

// --format msgpack: a msgpack subscriber gets the values back, and one that
// reads JSON shows the frame's bytes, which are msgpack ({"a":1} is 81 a1
// 61 01).
LZ_TEST(test_pub_sub_msgpack) {
    char packed[128], plain[128];
    lz_test_ipc_endpoint(packed, sizeof packed);
    lz_test_ipc_endpoint(plain, sizeof plain);
    proc_t sub = LZ_START("sub", "--bind", packed, "--format", "msgpack", "--count", "2", "--timeout", "10");
    proc_t json_sub = LZ_START("sub", "--bind", plain, "--count", "1", "--timeout", "10");
    wait_ipc(packed);
    wait_ipc(plain);
    LZ_CHECK_INT(LZ_RUN(&r, "{\"a\": 1}\n[\"x\", 2.5]\n", "pub", "--connect", packed, "--connect", plain, "--topic",
                        "m", "--format", "msgpack", "--settle", "300"),
                 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"m\",\"data\":{\"a\":1}}\n{\"topic\":\"m\",\"data\":[\"x\",2.5]}\n");
    finish_ok(&json_sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"m\",\"data\":\"gaFhAQ==\",\"encoding\":\"base64\"}\n");
}

// "-" for the data reads standard input whole: JSON as its value, other
// text (several lines too) as a string, nothing as null.
LZ_TEST(test_req_data_from_standard_input) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = LZ_START("rep", "--bind", ep, "--echo", "--count", "3");
    wait_ipc(ep);
    static const char *const cases[][2] = {
        {"{\"a\": [1, 2]}\n", "{\"a\":[1,2]}\n"},
        {"two\nlines\n", "\"two\\nlines\"\n"},
        {"", "null\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        LZ_CHECK_INT(LZ_RUN(&r, cases[i][0], "req", "--connect", ep, "--timeout", "8000", "echo", "-"), 0);
        LZ_CHECK_STR(r.out, cases[i][1]);
    }
    finish_ok(&rep);
}

// Several --connect make the multi-endpoint client: a request that times
// out on a server that is not there is retried on the next one.
LZ_TEST(test_req_several_endpoints) {
    char live[128], dead[128];
    lz_test_ipc_endpoint(live, sizeof live);
    lz_test_ipc_endpoint(dead, sizeof dead);
    proc_t rep = LZ_START("rep", "--bind", live, "--echo", "--count", "2");
    wait_ipc(live);
    const char *strategies[] = {"round-robin", "failover"};
    for (int i = 0; i < 2; i++) {
        LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", dead, "--connect", live, "--strategy", strategies[i],
                            "--timeout", "8000", "--retries", "3", "act", "\"x\""),
                     0);
        LZ_CHECK_STR(r.out, "\"x\"\n");
    }
    finish_ok(&rep);
}

// --capture publishes what crosses a forwarder: the watcher sees the data
// message as it crossed. Subscriptions cross too, as one-frame messages
// ("\x01" here) that lz sub would print with "topic": null; whether the
// watcher has joined by then is a race, so it filters on the topic.
LZ_TEST(test_proxy_capture) {
    char front[128], back[128], tap[128];
    lz_test_ipc_endpoint(front, sizeof front);
    lz_test_ipc_endpoint(back, sizeof back);
    lz_test_ipc_endpoint(tap, sizeof tap);
    proc_t proxy = LZ_START("proxy", "forwarder", "--frontend", front, "--backend", back, "--capture", tap);
    wait_ipc(tap);
    proc_t watch =
        LZ_START("sub", "--connect", tap, "--topic", "c", "--format", "raw", "--count", "1", "--timeout", "10");
    proc_t sub = LZ_START("sub", "--connect", back, "--count", "1", "--timeout", "10");
    lz_test_sleep_ms(300);
    LZ_CHECK_INT(LZ_RUN(&r, "{\"tapped\": true}\n", "pub", "--connect", front, "--topic", "c", "--settle", "500"), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"c\",\"data\":{\"tapped\":true}}\n");
    finish_ok(&watch); // --format raw shows UTF-8 text as a string, undecoded
    LZ_CHECK_STR(r.out, "{\"topic\":\"c\",\"data\":\"{\\\"tapped\\\":true}\"}\n");
    stop_ok(&proxy);
}

// lz bench's measuring runs check its measurement and output, not threads,
// and under ThreadSanitizer on a loaded 2-core machine their windows were a
// draw (a forked sender's start outlasting them: "no messages arrived"), so
// the LZ_TSAN pass leaves them to the normal and ASan+UBSan passes.
static bool bench_measures_here(const char *test) {
#ifdef LZ_TEST_TSAN
    fprintf(stderr, "%s: skipped under ThreadSanitizer\n", test);
    return false;
#else
    (void)test;
    return true;
#endif
}

// The throughput and latency fields of an `lz bench --json` line (docs/lz.md).
static const char *const bench_throughput[] = {"msgs_per_sec", "mb_per_sec", "raw_msgs_per_sec", "raw_mb_per_sec",
                                               "ratio"};
static const char *const bench_latency[] = {"p50_us",  "p99_us",      "raw_p50_us", "raw_p99_us",
                                            "mean_us", "raw_mean_us", "ratio"};

// check_bench_line checks one `lz bench --json` line: what was measured,
// the fields of the contract, each a positive number, and the ratio they
// imply.
static void check_bench_line(const char *line, const char *pattern, const char *transport, int size,
                             const char *const fields[], size_t n, const char *ours, const char *theirs) {
    lz_value_t *v = NULL;
    LZ_CHECK_INT(lz_serializer_decode(lz_serializer_builtin("json"), line, strlen(line), &v), 0);
    LZ_CHECK_STR(lz_value_find_string(v, "pattern", ""), pattern);
    LZ_CHECK_STR(lz_value_find_string(v, "transport", ""), transport);
    LZ_CHECK_INT(lz_value_find_int(v, "size", 0), size);
    for (size_t i = 0; i < n; i++) {
        double value = lz_value_find_double(v, fields[i], -1);
        if (!(value > 0)) fprintf(stderr, "field %s in %s\n", fields[i], line);
        LZ_CHECK(value > 0);
    }
    double expected = lz_value_find_double(v, ours, 0) / lz_value_find_double(v, theirs, 1);
    LZ_CHECK(fabs(lz_value_find_double(v, "ratio", 0) - expected) < 0.001 + expected * 0.001);
    lz_value_destroy(&v);
}

// lz bench --json: one JSON object per result with the issue's fields;
// ratios are liberzmq over raw for throughput, raw over liberzmq for latency.
LZ_TEST(test_bench_json) {
    if (!bench_measures_here(__func__)) return;
    const char *patterns[] = {"pushpull", "pubsub"};
    for (int i = 0; i < 2; i++) {
        LZ_CHECK_INT(LZ_RUN(&r, NULL, "bench", patterns[i], "--transport", "inproc", "--size", "16", "--count", "2000",
                            "--reps", "1", "--max-seconds", "0.2", "--json"),
                     0);
        LZ_CHECK_INT(count_lines(r.out), 1);
        check_bench_line(r.out, patterns[i], "inproc", 16, bench_throughput, 5, "msgs_per_sec", "raw_msgs_per_sec");
    }
    // --name=VALUE, as every lz command takes it (--reps=1 too, not the default 3).
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "bench", "reqrep", "--transport=ipc", "--size", "16", "--count=200", "--reps=1",
                        "--max-seconds=0.2", "--json"),
                 0);
    LZ_CHECK_INT(count_lines(r.out), 1);
    LZ_CHECK(strstr(r.out, ",\"reps\":1,") != NULL);
    check_bench_line(r.out, "reqrep", "ipc", 16, bench_latency, 7, "raw_p50_us", "p50_us");
}

// lz bench without --json: one line a person reads, saying where the ends
// ran and the ratio, which is liberzmq over raw libzmq for throughput and
// raw over liberzmq for latency.
LZ_TEST(test_bench_text) {
    if (!bench_measures_here(__func__)) return;
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "bench", "pushpull", "--transport", "inproc", "--size", "16", "--count", "2000",
                        "--reps", "1", "--max-seconds", "0.2"),
                 0);
    LZ_CHECK_INT(count_lines(r.out), 1);
    double mine = 0, mine_mb = 0, raw = 0, raw_mb = 0, ratio = 0;
    LZ_CHECK_INT(sscanf(r.out,
                        "pushpull inproc 16 B, median of 1: liberzmq %lf msg/s (%lf MB/s); raw libzmq %lf msg/s "
                        "(%lf MB/s); ratio %lf",
                        &mine, &mine_mb, &raw, &raw_mb, &ratio),
                 5);
    LZ_CHECK(mine > 0 && raw > 0 && fabs(ratio - mine / raw) < 0.01);
    LZ_CHECK(fabs(mine_mb - mine * 16 / 1e6) < 0.1);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "bench", "reqrep", "--transport", "ipc", "--size", "16", "--count", "200", "--reps",
                        "1", "--max-seconds", "0.2", "--pin"),
                 0);
    double p50 = 0, p99 = 0, mean = 0, raw_p50 = 0, raw_p99 = 0, raw_mean = 0;
    LZ_CHECK_INT(sscanf(r.out,
                        "reqrep ipc 16 B pinned to CPU 0, median of 1: liberzmq p50 %lf us p99 %lf us mean %lf us; "
                        "raw libzmq p50 %lf us p99 %lf us mean %lf us; ratio (raw p50 / liberzmq p50) %lf",
                        &p50, &p99, &mean, &raw_p50, &raw_p99, &raw_mean, &ratio),
                 7);
    LZ_CHECK(p50 > 0 && p99 >= p50 && raw_p99 >= raw_p50 && fabs(ratio - raw_p50 / p50) < 0.01);
    LZ_CHECK(mean > 0 && raw_mean > 0);
}

// lz bench over tcp and ipc, stopped by --max-seconds with the sender's
// queue full: every run ends with a backlog, which libzmq 4.3.4 can abort
// on when the sockets close (session_base.cpp:260) unless the harness
// drains it first. A few repetitions caught the abort about one time in
// three before the drain; now each must finish and print its line.
LZ_TEST(test_bench_stops_cleanly_with_a_backlog) {
    if (!bench_measures_here(__func__)) return;
    const char *transports[] = {"tcp", "ipc"};
    for (int i = 0; i < 2; i++) {
        LZ_CHECK_INT(LZ_RUN(&r, NULL, "bench", "pubsub", "--transport", transports[i], "--size", "16", "--reps", "3",
                            "--max-seconds", "0.1", "--json"),
                     0);
        LZ_CHECK_INT(count_lines(r.out), 1);
        LZ_CHECK(strstr(r.out, "\"raw_msgs_per_sec\":") != NULL);
    }
}

// lz bench --processes 2: the sender in a child process, over tcp and ipc,
// for both patterns; every repetition must measure traffic (the harness
// waits for its child, and one that failed to open or exit cleanly fails
// the run).
LZ_TEST(test_bench_two_processes) {
    if (!bench_measures_here(__func__)) return;
    const char *patterns[] = {"pushpull", "pubsub"}, *transports[] = {"tcp", "ipc"};
    for (int i = 0; i < 4; i++) {
        LZ_CHECK_INT(LZ_RUN(&r, NULL, "bench", patterns[i % 2], "--transport", transports[i / 2], "--size", "40",
                            "--processes", "2", "--reps", "2", "--max-seconds", "0.1", "--json"),
                     0);
        LZ_CHECK_INT(count_lines(r.out), 1);
        check_bench_line(r.out, patterns[i % 2], transports[i / 2], 40, bench_throughput, 5, "msgs_per_sec",
                         "raw_msgs_per_sec");
    }
}

// cpus_0_and_1: whether this test may use CPUs 0 and 1 (says so when not).
static bool cpus_0_and_1(const char *test) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_ISSET(0, &allowed) && CPU_ISSET(1, &allowed))
        return true;
    fprintf(stderr, "%s: skipped, CPUs 0 and 1 are not both available\n", test);
    return false;
}

// lz bench --spread: each process on its own CPU (0 and 1), where this
// test may use both.
LZ_TEST(test_bench_spread) {
    if (!bench_measures_here(__func__) || !cpus_0_and_1(__func__)) return;
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "bench", "pushpull", "--transport", "ipc", "--size", "16", "--processes", "2",
                        "--spread", "--reps", "2", "--max-seconds", "0.1", "--json"),
                 0);
    LZ_CHECK_INT(count_lines(r.out), 1);
    LZ_CHECK(strstr(r.out, "\"spread\":true,") != NULL);
    check_bench_line(r.out, "pushpull", "ipc", 16, bench_throughput, 5, "msgs_per_sec", "raw_msgs_per_sec");
}

// a_child: a child process of pid, or 0 when it has none.
static pid_t a_child(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int child = 0;
    if (f && fscanf(f, "%d", &child) != 1) child = 0;
    if (f) fclose(f);
    return child;
}

// runs_on_cpu_0_only: whether pid may run on CPU 0 and no other.
static bool runs_on_cpu_0_only(pid_t pid) {
    char path[64], line[256], cpus[64] = "";
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f) && sscanf(line, "Cpus_allowed_list: %63s", cpus) != 1) {
    }
    if (f) fclose(f);
    return pid > 0 && strcmp(cpus, "0") == 0;
}

// lz bench --pin --processes 2: the forked sending process runs on CPU 0
// too, with the receiving one, as its "pinned":true says.
LZ_TEST(test_bench_pin_two_processes) {
    if (!bench_measures_here(__func__) || !cpus_0_and_1(__func__)) return;
    proc_t bench = LZ_START("bench", "pushpull", "--transport", "ipc", "--size", "16", "--processes", "2", "--pin",
                            "--reps", "1", "--max-seconds", "0.5", "--json");
    bool both = false; // at one moment while the sending process lives
    LZ_TEST_WAIT_UNTIL((both = runs_on_cpu_0_only(bench.pid) && runs_on_cpu_0_only(a_child(bench.pid))), 5000);
    LZ_CHECK(both);
    finish_ok(&bench);
    LZ_CHECK(strstr(r.out, "\"pinned\":true,") != NULL);
}

// lz bench reqrep with a --max-seconds too short for one round trip says
// so (exit 1), not that a round trip failed.
LZ_TEST(test_bench_reqrep_too_short_to_time) {
    if (!bench_measures_here(__func__)) return;
    LZ_CHECK_INT(
        LZ_RUN(&r, NULL, "bench", "reqrep", "--transport", "inproc", "--max-seconds", "0.000000001", "--reps", "1"), 1);
    LZ_CHECK_STR(r.out, "");
    LZ_CHECK(strstr(r.err, ": no round trip completed within --max-seconds 1e-09\n") != NULL);
    LZ_CHECK(strstr(r.err, "failed") == NULL);
}

// msgpack_published runs `lz pub` (with env, then the arguments after the
// endpoint) to a JSON subscriber and tells whether {"a": 1} went out as
// msgpack, which that subscriber shows as base64 of 81 a1 61 01.
static bool msgpack_published(const char *env, const char *arg1, const char *arg2) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", "1", "--timeout", "10");
    wait_ipc(ep);
    proc_t pub = lz_start(env, "pub", "--connect", ep, "--settle", "300", "--topic", "f", arg1, arg2, (char *)NULL);
    LZ_CHECK_INT(run_lz(&r, "{\"a\": 1}\n", pub), 0);
    finish_ok(&sub);
    if (strstr(r.out, "gaFhAQ==")) return true;
    LZ_CHECK_STR(r.out, "{\"topic\":\"f\",\"data\":{\"a\":1}}\n");
    return false;
}

// --config FILE and LIBERZMQ_* variables set what the library reads (here
// the default serializer); --format on the command line wins over both.
// write_temp_config writes text to a fresh .yaml file in a private temp dir
// and puts its path in path.
static void write_temp_config(char *path, size_t size, const char *text) {
    lz_test_ipc_endpoint(path, size - strlen(".yaml"));
    memmove(path, path + strlen("ipc://"), strlen(path) - strlen("ipc://") + 1);
    strcat(path, ".yaml");
    FILE *f = fopen(path, "w");
    LZ_CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

LZ_TEST(test_config_applies) {
    char path[160];
    write_temp_config(path, sizeof path, "serialization:\n  default: msgpack\n");
    LZ_CHECK(!msgpack_published(NULL, NULL, NULL));
    LZ_CHECK(msgpack_published(NULL, "--config", path));
    LZ_CHECK(msgpack_published("LIBERZMQ_SERIALIZATION__DEFAULT=msgpack", NULL, NULL));
    LZ_CHECK(!msgpack_published("LIBERZMQ_SERIALIZATION__DEFAULT=msgpack", "--format", "json"));
    unlink(path);
}

// --plugin loads a plugin into the context: lz version lists it, its codec
// is a --format on both ends; one that cannot load is one line, exit 1.
LZ_TEST(test_plugin_option) {
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "version", "--plugin", LZ_PLUGIN_ROT13), 0);
    LZ_CHECK(strstr(r.out, ")\nplugin rot13 1.0.0 (" LZ_PLUGIN_ROT13 ")\n") != NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--help"), 0);
    LZ_CHECK(strstr(r.out, "\n  --plugin PATH ") != NULL);
    // lz config makes no context for a plugin to load into: it takes none (test_refusals_say_what_is_wrong).
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "config", "--help"), 0);
    LZ_CHECK(strstr(r.out, "--plugin") == NULL);
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = LZ_START("sub", "--bind", ep, "--count", "1", "--timeout", "10", "--plugin", LZ_PLUGIN_ROT13,
                          "--format", "json+rot13");
    wait_ipc(ep);
    proc_t pub = LZ_START("pub", "--connect", ep, "--settle", "300", "--topic", "f", "--plugin", LZ_PLUGIN_ROT13,
                          "--format", "json+rot13");
    LZ_CHECK_INT(run_lz(&r, "{\"a\": 1}\n", pub), 0);
    finish_ok(&sub);
    LZ_CHECK_STR(r.out, "{\"topic\":\"f\",\"data\":{\"a\":1}}\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", "tcp://127.0.0.1:1", "--plugin", "/nonexistent/x.so"), 1);
    LZ_CHECK_STR(r.err, "lz sub: --plugin: plugin /nonexistent/x.so: cannot load it: /nonexistent/x.so: cannot "
                        "open shared object file: No such file or directory\n");
}

// A bad configuration file or variable fails with one line, exit 1.
LZ_TEST(test_config_errors) {
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", "tcp://127.0.0.1:1", "--config", "/nonexistent/lz.yaml"), 1);
    LZ_CHECK_INT(count_lines(r.err), 1);
    proc_t p = lz_start("LIBERZMQ_ZMQ__LINGER=abc", "sub", "--connect", "tcp://127.0.0.1:1", (char *)NULL);
    LZ_CHECK_INT(run_lz(&r, NULL, p), 1);
    LZ_CHECK(strstr(r.err, "LIBERZMQ_ZMQ__LINGER") != NULL);
    // A valid file whose log file cannot be opened: the context is refused.
    char path[160];
    write_temp_config(path, sizeof path, "logging:\n  target: file\n  file_path: /nonexistent/lz.log\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", "tcp://127.0.0.1:1", "--config", path), 1);
    LZ_CHECK_STR(r.err, "lz sub: context: log: cannot open log file /nonexistent/lz.log: No such file or directory\n");
    unlink(path);
}

// lz config: every key with its source, secrets hidden; single keys bare;
// the JSON form; unknown keys and forms refused.
LZ_TEST(test_config_command) {
    char path[160], expect[256];
    write_temp_config(path, sizeof path,
                      "zmq:\n  linger: 250\nsecurity:\n  curve_secret_key: \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n");
    const char *env = "LIBERZMQ_ZMQ__REQUEST_TIMEOUT=900", *password = "LIBERZMQ_SECURITY__PLAIN_PASSWORD=s3cret";
    LZ_CHECK_INT(run_lz(&r, NULL, lz_start(env, "config", "--config", path, (char *)NULL)), 0);
    snprintf(expect, sizeof expect, "\nzmq.linger: 250  # file %s\n", path);
    LZ_CHECK(strstr(r.out, expect) != NULL);
    LZ_CHECK(strncmp(r.out, "zmq.io_threads: 1  # default\n", 29) == 0);
    LZ_CHECK(strstr(r.out, "\nzmq.request_timeout: 900  # env LIBERZMQ_ZMQ__REQUEST_TIMEOUT\n") != NULL);
    LZ_CHECK(strstr(r.out, "\nlogging.level: \"INFO\"  # default\n") != NULL); // what a program gets, not lz's own
    snprintf(expect, sizeof expect, "\nsecurity.curve_secret_key: \"(hidden)\"  # file %s\n", path);
    LZ_CHECK(strstr(r.out, expect) != NULL);
    LZ_CHECK(strstr(r.out, "JTKVSB") == NULL);
    LZ_CHECK_INT(count_lines(r.out), (int)lz_config_key_count());
    LZ_CHECK_STR(r.err, "");

    LZ_CHECK_INT(run_lz(&r, NULL, lz_start(password, "config", (char *)NULL)), 0);
    LZ_CHECK(strstr(r.out, "\nsecurity.plain_password: \"(hidden)\"  # env LIBERZMQ_SECURITY__PLAIN_PASSWORD\n"));
    LZ_CHECK(strstr(r.out, "s3cret") == NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "config", "--config", path, "zmq.linger", "logging.level", "debug"), 0);
    LZ_CHECK_STR(r.out, "250\nINFO\nfalse\n");
    // Values as JSON text when that is the form asked for.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "config", "--config", path, "--format", "json", "zmq.linger", "logging.level"), 0);
    LZ_CHECK_STR(r.out, "250\n\"INFO\"\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "config", "--config", path, "--format", "json"), 0);
    lz_value_t *json = lz_value_from_json(r.out, strlen(r.out));
    LZ_CHECK_INT(lz_value_find_int(lz_value_get(json, "zmq"), "linger", 0), 250);
    LZ_CHECK_STR(lz_value_find_string(lz_value_get(json, "security"), "curve_secret_key", ""), "(hidden)");
    lz_value_destroy(&json);

    // A string with a control character (a newline from the environment)
    // prints as JSON text even bare: one key, one line.
    LZ_CHECK_INT(run_lz(&r, NULL, lz_start("LIBERZMQ_TRACING__SERVICE_NAME=svc\nzmq.linger: 5", "config",
                                           "tracing.service_name", "logging.level", (char *)NULL)),
                 0);
    LZ_CHECK_STR(r.out, "\"svc\\nzmq.linger: 5\"\nINFO\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "config", "zmq.linger", "zmq.nope"), 2);
    LZ_CHECK(strncmp(r.err, "lz config: no configuration key 'zmq.nope' (usage: ", 51) == 0);
    LZ_CHECK_STR(r.out, "");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "config", "--format", "xml"), 2);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "config", "--config", "/nonexistent/lz.yaml"), 1);
    unlink(path);
}

// A long-running command follows its --config file: a key that needs a
// restart is reported, a bad file is refused, and it runs on.
LZ_TEST(test_config_reloads_while_running) {
    char ep[128], path[160];
    lz_test_ipc_endpoint(ep, sizeof ep);
    write_temp_config(path, sizeof path, "zmq:\n  request_timeout: 5000\n");
    proc_t pull = LZ_START("pull", "--bind", ep, "--count", "1", "--timeout", "20", "--config", path);
    wait_ipc(ep);
    lz_test_replace_file(path, "zmq:\n  io_threads: 2\n");
    lz_test_sleep_ms(500 * LZ_TEST_SLOWDOWN);
    lz_test_replace_file(path, "zmq: [not, a, mapping]\n");
    lz_test_sleep_ms(500 * LZ_TEST_SLOWDOWN);
    void *ctx = zmq_ctx_new();
    void *push = plain_peer(ctx, ZMQ_PUSH, ep, 10000);
    LZ_CHECK_INT(zmq_send(push, "[1]", 3, 0), 3);
    finish_ok(&pull);
    zmq_close(push);
    zmq_ctx_term(ctx);
    LZ_CHECK_STR(r.out, "{\"type\":\"unknown\",\"data\":[1]}\n");
    LZ_CHECK(strstr(r.err, "lz pull: reload from file ") != NULL);
    LZ_CHECK(strstr(r.err, ": zmq.io_threads changed but needs a restart: the running value stays\n") != NULL);
    LZ_CHECK(strstr(r.err, " refused, the running configuration stays: config: ") != NULL);
    LZ_CHECK_INT(count_lines(r.err), 2);
    unlink(path);
}

// start_lock_service runs `lz rep --locks` on a fresh ipc endpoint.
static proc_t start_lock_service(char *ep, size_t size) {
    lz_test_ipc_endpoint(ep, size);
    proc_t service = LZ_START("rep", "--bind", ep, "--locks");
    wait_ipc(ep);
    return service;
}

// lz lock runs its command holding the lock, with the lock's name and
// fencing token in its environment, and exits with its status; a command
// that cannot start is 127. Either way the lock is free again at once.
LZ_TEST(test_lock_runs_a_command) {
    char ep[128], name[16] = "";
    proc_t service = start_lock_service(ep, sizeof ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "job", "--", "sh", "-c",
                        "echo \"$LZ_LOCK_NAME $LZ_LOCK_TOKEN\"; exit 7"),
                 7);
    long long token = 0;
    LZ_CHECK_INT(sscanf(r.out, "%15s %lld", name, &token), 2);
    LZ_CHECK_STR(name, "job");
    LZ_CHECK(token > 0);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "job", "/nonexistent/command"), 127);
    LZ_CHECK(strstr(r.err, "cannot run '/nonexistent/command'") != NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "--wait", "0", "job", "--", "sh", "-c",
                        "echo $LZ_LOCK_TOKEN"),
                 0);
    LZ_CHECK(atoll(r.out) > token); // a new hold, a larger token
    stop_ok(&service);
}

// From CMD on, the arguments are the command's, as flock(1) has it: an
// option or -h there is not lz lock's. Before it, they are lz lock's.
LZ_TEST(test_lock_leaves_the_command_its_arguments) {
    char ep[128];
    proc_t service = start_lock_service(ep, sizeof ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "job", "echo", "-h", "--ttl", "5", "--help"), 0);
    LZ_CHECK_STR(r.out, "-h --ttl 5 --help\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "job", "--wait", "0", "sh", "-c", "echo hi -- \"$0\"", "--"),
                 0);
    LZ_CHECK_STR(r.out, "hi -- --\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "job", "--help"), 0);
    LZ_CHECK(strstr(r.out, "usage: lz lock") != NULL);
    stop_ok(&service);
    // Nor is a -h that is an option's value a call for help.
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--connect", ep, "--topic", "-h", "--timeout", "0.1"), 3);
    LZ_CHECK_STR(r.out, "");
}

// While one command holds the lock, --wait 0 gives up (exit 3), another
// name is free, and a waiting one runs only after the first has finished.
LZ_TEST(test_lock_excludes_and_waits) {
    char ep[128], started[160], release[160], done[160], script[768];
    proc_t service = start_lock_service(ep, sizeof ep);
    snprintf(started, sizeof started, "%s.started", ep);
    snprintf(release, sizeof release, "%s.release", ep + strlen("ipc://"));
    snprintf(done, sizeof done, "%s.done", ep + strlen("ipc://"));
    // The first holds the lock until the test lets it go (a fixed hold ran
    // out under ThreadSanitizer before the --wait 0 attempt had started),
    // then half a second more, so the last attempt finds it still held.
    snprintf(script, sizeof script, "touch %s; while [ ! -e %s ]; do sleep 0.05; done; sleep 0.5; echo first > %s",
             started + strlen("ipc://"), release, done);
    proc_t first = LZ_START("lock", "--connect", ep, "job", "--", "sh", "-c", script);
    wait_ipc(started);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "--wait", "0", "job", "--", "true"), 3);
    LZ_CHECK(strstr(r.err, "still held") != NULL);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "--wait", "0", "other", "--", "true"), 0);
    lz_test_replace_file(release, "");
    snprintf(script, sizeof script, "cat %s", done);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "--wait", "20000", "job", "--", "sh", "-c", script), 0);
    LZ_CHECK_STR(r.out, "first\n");
    finish_ok(&first);
    unlink(done);
    unlink(release);
    unlink(started + strlen("ipc://"));
    stop_ok(&service);
}

// start_holder runs `lz lock ... job` (env: one extra variable, or NULL;
// ttl: --ttl) on a command that prints "got TERM" and exits 5 on SIGTERM,
// and waits until the command runs. *started is the file it touches then.
static proc_t start_holder(const char *env, const char *ep, const char *ttl, char *started, size_t size) {
    char script[512];
    snprintf(started, size, "%s.started", ep);
    snprintf(script, sizeof script, "trap 'echo got TERM; exit 5' TERM; touch %s; while :; do sleep 0.05; done",
             started + strlen("ipc://"));
    proc_t holder = lz_start(env, "lock", "--connect", ep, "--ttl", ttl, "job", "--", "sh", "-c", script, (char *)NULL);
    wait_ipc(started);
    return holder;
}

// blocks_sigint: whether pid's main thread blocks SIGINT (its SigBlk mask in
// /proc), which lz lock does before it asks for the lock: from then on a
// SIGINT is its own to handle, where earlier it would kill the process.
static bool blocks_sigint(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long long mask = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "SigBlk: %llx", &mask) == 1) break;
    if (f) fclose(f);
    return mask & (1ull << (SIGINT - 1));
}

// A stop signal sent to lz lock goes on to its command and the lock is
// released; one that comes while lz lock waits for the lock ends it
// (128 + SIGINT).
LZ_TEST(test_lock_passes_signals_on) {
    char ep[128], started[160];
    proc_t service = start_lock_service(ep, sizeof ep);
    proc_t holder = start_holder(NULL, ep, "30000", started, sizeof started);
    proc_t waiter = LZ_START("lock", "--connect", ep, "job", "--", "true");
    // A fixed pause was too short for a sanitizer build on a busy machine.
    for (int64_t deadline = lz_test_now_ms() + 10000; !blocks_sigint(waiter.pid) && lz_test_now_ms() < deadline;)
        lz_test_sleep_ms(10);
    lz_test_sleep_ms(100); // its request on the way: the service holds it parked
    kill(waiter.pid, SIGINT);
    proc_finish(&waiter, 10000, &r);
    LZ_CHECK_INT(r.status, 128 + SIGINT);
    LZ_CHECK(strstr(r.err, "interrupted while waiting") != NULL);
    kill(holder.pid, SIGTERM);
    proc_finish(&holder, 10000, &r);
    LZ_CHECK_INT(r.status, 5);
    LZ_CHECK_STR(r.out, "got TERM\n");
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "--wait", "0", "job", "--", "true"), 0);
    unlink(started + strlen("ipc://"));
    stop_ok(&service);
}

// A stop signal that comes while lz lock waits, its grant already on the
// way (sent while lz lock was stopped, there to read when it goes on with
// the signal pending), leaves the lock free: lz lock gives the grant back
// before it exits, and the next lz lock gets the lock at once, not after
// the 30 s lease. The lock service runs here, so the test sees its queue.
// Usually lz lock sees the signal first, else the grant (the signal then
// goes on to the command): three rounds, so the first case comes.
LZ_TEST(test_lock_interrupted_wait_frees_the_lock) {
    char ep[128];
    lz_context_t *ctx = lz_test_pattern_context(0);
    lz_server_t *server = lz_server_new(ctx, lz_test_ipc_endpoint(ep, sizeof ep));
    lz_lock_service_t *service = lz_lock_service_attach(server, 0);
    LZ_CHECK(service && lz_server_start(server) == LZ_OK);
    lz_lock_t *holder = lz_lock_new(ctx, ep, "job", 30000);
    for (uint64_t round = 1; round <= 3; round++) {
        LZ_CHECK_INT(lz_lock_try_acquire(holder), LZ_OK);
        proc_t waiter = LZ_START("lock", "--connect", ep, "--ttl", "30000", "job", "--", "true");
        lz_lock_stats_t stats = {0};
        LZ_TEST_WAIT_UNTIL(lz_lock_service_stats(service, &stats) == LZ_OK && stats.waiters == 1,
                           10000 * LZ_TEST_SLOWDOWN);
        LZ_CHECK_INT((int)stats.waiters, 1);
        kill(waiter.pid, SIGSTOP);
        int status = 0;
        LZ_CHECK(waitpid(waiter.pid, &status, WUNTRACED) == waiter.pid && WIFSTOPPED(status)); // at once
        LZ_CHECK_INT(lz_lock_release(holder), LZ_OK); // the lock goes to the stopped waiter
        LZ_CHECK_INT(lz_lock_service_stats(service, &stats), LZ_OK);
        LZ_CHECK_INT((int)stats.handovers_total, (int)round);
        kill(waiter.pid, SIGTERM);
        kill(waiter.pid, SIGCONT);
        proc_finish(&waiter, 10000, &r);
        LZ_CHECK(r.status == 128 + SIGTERM || r.status == 0);
        LZ_CHECK_INT((int)lz_lock_service_count(service), 0);
        LZ_CHECK_INT(LZ_RUN(&r, NULL, "lock", "--connect", ep, "--wait", "0", "job", "--", "true"), 0);
    }
    lz_lock_destroy(&holder);
    lz_server_destroy(&server); // first: its handlers use the service
    lz_lock_service_destroy(&service);
    lz_context_destroy(&ctx);
}

// When the lease cannot be renewed before it ends (the service is gone),
// the command is terminated and lz lock exits 6.
LZ_TEST(test_lock_lost_ends_the_command) {
    char ep[128], started[160];
    proc_t service = start_lock_service(ep, sizeof ep);
    proc_t holder = start_holder("LIBERZMQ_ZMQ__REQUEST_TIMEOUT=200", ep, "900", started, sizeof started);
    kill(service.pid, SIGKILL);
    proc_finish(&service, 5000, &r);
    proc_finish(&holder, 20000, &r);
    LZ_CHECK_INT(r.status, 6);
    LZ_CHECK_STR(r.out, "got TERM\n");
    LZ_CHECK(strstr(r.err, "lost the lock 'job'") != NULL);
    unlink(started + strlen("ipc://"));
}

// still_running: whether pid has not ended (it is not reaped here).
static bool still_running(pid_t pid) {
    siginfo_t info = {0};
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

// lz started with SIGCHLD ignored (a parent ignoring it passes that on
// across exec) still learns how its commands ended: lz rep --exec replies
// with the output, lz lock exits with its command's status at once. Before,
// the kernel reaped them for lz: every --exec request was "command timed
// out", and lz lock waited a third of its lease (20 s here), then exited
// with a status its command never had.
LZ_TEST(test_ignored_sigchld_keeps_commands_statuses) {
    char ep[128];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = lz_start_ignoring(SIGCHLD, "rep", "--bind", ep, "--exec", "echo hi", (char *)NULL);
    wait_ipc(ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "act"), 0);
    LZ_CHECK_STR(r.out, "\"hi\"\n");
    stop_ok(&rep);
    proc_t service = start_lock_service(ep, sizeof ep);
    proc_t lock = lz_start_ignoring(SIGCHLD, "lock", "--connect", ep, "--ttl", "60000", "job", "--", "sh", "-c",
                                    "exit 7", (char *)NULL);
    proc_finish(&lock, 15000, &r);
    LZ_CHECK_INT(r.status, 7);
    stop_ok(&service);
}

// Once lz lock's command has ended, a stop signal ends lz lock at once
// (128 + N) while it releases the lock from a service that does not
// answer, and goes to no process (the command's pid, reaped, may be
// another's by then). Before, lz lock sent it to that pid and waited the
// release out (zmq.request_timeout, 20 s here).
LZ_TEST(test_lock_stop_signal_while_releasing) {
    char ep[128], started[160], script[512];
    proc_t service = start_lock_service(ep, sizeof ep);
    snprintf(started, sizeof started, "%s.started", ep);
    // The command freezes the service, then ends: the release waits for an answer.
    snprintf(script, sizeof script, "kill -STOP %d; touch %s", (int)service.pid, started + strlen("ipc://"));
    proc_t lock = lz_start("LIBERZMQ_ZMQ__REQUEST_TIMEOUT=20000", "lock", "--connect", ep, "job", "--", "sh", "-c",
                           script, (char *)NULL);
    wait_ipc(started);
    LZ_TEST_WAIT_UNTIL(a_child(lock.pid) == 0, 5000 * LZ_TEST_SLOWDOWN); // reaped: lz lock is releasing
    int64_t start = lz_test_now_ms();
    kill(lock.pid, SIGTERM);
    proc_finish(&lock, 3000 * LZ_TEST_SLOWDOWN, &r);
    printf("  lz lock: exit after %lld ms\n", (long long)(lz_test_now_ms() - start));
    LZ_CHECK_INT(r.status, 128 + SIGTERM);
    LZ_CHECK(strstr(r.err, "lz lock: interrupted while releasing the lock: its lease runs out\n") != NULL);
    kill(service.pid, SIGCONT);
    unlink(started + strlen("ipc://"));
    stop_ok(&service);
}

// Stop signals lz was started with ignored (nohup: SIGHUP) stay ignored:
// they stop neither lz sub nor lz lock, whose command starts with it
// ignored too, nor lz rep, which still stops itself after --count. Before,
// lz took them as any stop signal, and reset them to their default for
// the command.
LZ_TEST(test_stop_signals_ignored_at_start_stay_ignored) {
    char ep[128], started[160], script[512];
    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t sub = lz_start_ignoring(SIGHUP, "sub", "--bind", ep, (char *)NULL);
    wait_ipc(ep);
    kill(sub.pid, SIGHUP);
    lz_test_sleep_ms(300);
    LZ_CHECK(still_running(sub.pid));
    stop_ok(&sub);
    LZ_CHECK_STR(r.err, "");

    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t rep = lz_start_ignoring(SIGHUP, "rep", "--bind", ep, "--echo", "--count", "1", (char *)NULL);
    wait_ipc(ep);
    kill(rep.pid, SIGHUP);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "req", "--connect", ep, "--timeout", "8000", "echo", "7"), 0);
    LZ_CHECK_STR(r.out, "7\n");
    finish_ok(&rep); // the --count-th request stops it, as ever

    proc_t service = start_lock_service(ep, sizeof ep);
    snprintf(started, sizeof started, "%s.started", ep);
    snprintf(script, sizeof script, "grep SigIgn /proc/$$/status; touch %s; sleep 0.5", started + strlen("ipc://"));
    proc_t lock = lz_start_ignoring(SIGHUP, "lock", "--connect", ep, "job", "--", "sh", "-c", script, (char *)NULL);
    wait_ipc(started);
    kill(lock.pid, SIGHUP);
    proc_finish(&lock, 10000, &r);
    LZ_CHECK_INT(r.status, 0);
    unsigned long long ignored = 0;
    LZ_CHECK(sscanf(r.out, "SigIgn: %llx", &ignored) == 1 && (ignored & (1ull << (SIGHUP - 1))));
    unlink(started + strlen("ipc://"));
    stop_ok(&service);
}

// A context whose teardown is slow for another reason, a flush of spans
// to an OTLP collector that never answers (3 s, past zmq.linger's 2000 ms):
// lz push and lz pub, everything delivered, exit 0 without a word. Before,
// the whole teardown was timed against the linger: "dropped", exit 3.
LZ_TEST(test_senders_time_only_their_sockets_teardown) {
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t at_len = sizeof at;
    int collector = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); // takes connections, never answers
    LZ_CHECK(bind(collector, (struct sockaddr *)&at, sizeof at) == 0 && listen(collector, 16) == 0);
    LZ_CHECK(getsockname(collector, (struct sockaddr *)&at, &at_len) == 0);
    char config[160], text[256], settle[16];
    snprintf(text, sizeof text, "tracing:\n  enabled: true\n  otlp_endpoint: http://127.0.0.1:%d\n",
             ntohs(at.sin_port));
    write_temp_config(config, sizeof config, text);
    snprintf(settle, sizeof settle, "%d", 300 * LZ_TEST_SLOWDOWN); // the peer connects first
    static const struct {
        const char *command;
        int peer_type;
    } senders[] = {{"push", ZMQ_PULL}, {"pub", ZMQ_SUB}};
    for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++) {
        char ep[128], frame[64];
        lz_test_ipc_endpoint(ep, sizeof ep);
        void *ctx = zmq_ctx_new();
        void *peer = zmq_socket(ctx, senders[i].peer_type);
        int zero = 0, wait_ms = 500, more = 0, messages = 0; // all came before lz exited
        size_t size = sizeof more;
        zmq_setsockopt(peer, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(peer, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
        if (senders[i].peer_type == ZMQ_SUB) zmq_setsockopt(peer, ZMQ_SUBSCRIBE, "", 0);
        LZ_CHECK_INT(zmq_connect(peer, ep), 0);
        int64_t start = lz_test_now_ms();
        LZ_CHECK_INT(LZ_RUN(&r, "1\n2\n3\n", senders[i].command, "--bind", ep, "--config", config, "--settle", settle),
                     0);
        printf("  lz %s: exit after %lld ms\n", senders[i].command, (long long)(lz_test_now_ms() - start));
        LZ_CHECK_STR(r.err, "");
        while (zmq_recv(peer, frame, sizeof frame, 0) >= 0)
            if (zmq_getsockopt(peer, ZMQ_RCVMORE, &more, &size) == 0 && !more) messages++;
        LZ_CHECK_INT(messages, 3);
        zmq_close(peer);
        zmq_ctx_term(ctx);
    }
    unlink(config);
    close(collector);
}

// A --bind whose address libzmq chooses (a tcp port *) is followed by one
// line on stderr saying which it chose, so a peer can be pointed there;
// stdout stays data. libzmq tells only the last bind's: an earlier one is
// said to be unknown.
LZ_TEST(test_bind_tells_the_address_chosen) {
    char line[256], url[128] = "", ep[128];
    proc_t pull = LZ_START("pull", "--bind", "tcp://127.0.0.1:*", "--count", "1", "--timeout", "10");
    LZ_CHECK(read_line_from(pull.err, line, sizeof line, 10000 * LZ_TEST_SLOWDOWN));
    LZ_CHECK(sscanf(line, "lz pull: bound %127s", url) == 1);
    LZ_CHECK(strncmp(url, "tcp://127.0.0.1:", 16) == 0 && atoi(url + 16) > 0);
    LZ_CHECK_INT(LZ_RUN(&r, "42\n", "push", "--connect", url), 0);
    finish_ok(&pull);
    LZ_CHECK_STR(r.out, "{\"type\":\"default\",\"data\":42}\n");
    LZ_CHECK_STR(r.err, ""); // but the bound line, read above

    lz_test_ipc_endpoint(ep, sizeof ep);
    LZ_CHECK_INT(LZ_RUN(&r, NULL, "sub", "--bind", "tcp://127.0.0.1:*", "--bind", ep, "--timeout", "0.1"), 3);
    LZ_CHECK(strstr(r.err, "lz sub: the address libzmq chose for tcp://127.0.0.1:* cannot be told: give it as the "
                           "last --bind\nlz sub: timeout: ") == r.err);
    LZ_CHECK_INT(count_lines(r.err), 2);

    lz_test_ipc_endpoint(ep, sizeof ep);
    proc_t proxy = LZ_START("proxy", "forwarder", "--frontend", ep, "--backend", "tcp://127.0.0.1:*");
    LZ_CHECK(read_line_from(proxy.err, line, sizeof line, 10000 * LZ_TEST_SLOWDOWN));
    LZ_CHECK(sscanf(line, "lz proxy: bound %127s", url) == 1 && strstr(line, " (backend)\n") != NULL);
    LZ_CHECK(strncmp(url, "tcp://127.0.0.1:", 16) == 0 && atoi(url + 16) > 0);
    stop_ok(&proxy);
}

// The same with a terminal as standard output whose reader has stopped
// (a pty nobody reads, in the modes a terminal starts with: output
// processing on, each newline written as CR LF): poll calls a terminal
// writable while any room is left, and a blocking write of a line waited
// in the kernel until killed.
LZ_TEST(test_receivers_stop_while_a_terminal_stdout_is_blocked) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    LZ_CHECK(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
    int terminal = master >= 0 ? open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    LZ_CHECK(terminal >= 0);
    if (terminal >= 0) stops_while_blocked("sub", terminal, master, 3000);
    else if (master >= 0) close(master);
}

LZ_TEST_MAIN(LZ_CASE(test_help_every_command), LZ_CASE(test_help_tells_the_truth), LZ_CASE(test_lock_runs_a_command), LZ_CASE(test_lock_leaves_the_command_its_arguments), LZ_CASE(test_lock_excludes_and_waits), LZ_CASE(test_lock_passes_signals_on), LZ_CASE(test_lock_interrupted_wait_frees_the_lock), LZ_CASE(test_lock_lost_ends_the_command), LZ_CASE(test_config_command), LZ_CASE(test_schema_option), LZ_CASE(test_version), LZ_CASE(test_version_bind_fails), LZ_CASE(test_plugin_option), LZ_CASE(test_keygen_and_a_curve_round_trip), LZ_CASE(test_passwd_and_a_plain_round_trip), LZ_CASE(test_bad_arguments), LZ_CASE(test_accepted_tcp_endpoints), LZ_CASE(test_refusals_say_what_is_wrong),
             LZ_CASE(test_pub_sub_lines), LZ_CASE(test_pub_raw), LZ_CASE(test_pub_sends_an_out_of_range_number_as_text),
             LZ_CASE(test_pub_to_plain_sub), LZ_CASE(test_sub_shows_every_damaged_payload_exactly),
             LZ_CASE(test_values_without_a_json_form_are_shown_as_bytes), LZ_CASE(test_sub_shows_plain_publishers_forms),
             LZ_CASE(test_req_keeps_its_exit_codes_on_damaged_replies), LZ_CASE(test_sub_from_plain_pub), LZ_CASE(test_receivers_raw),
             LZ_CASE(test_sub_timeout), LZ_CASE(test_push_pull), LZ_CASE(test_push_skips_an_endless_line), LZ_CASE(test_push_needs_a_puller),
             LZ_CASE(test_senders_report_what_the_linger_dropped), LZ_CASE(test_receivers_stop_on_a_signal),
             LZ_CASE(test_senders_with_nothing_sent_report_no_drop),
             LZ_CASE(test_receivers_stop_while_stdout_is_blocked),
             LZ_CASE(test_receivers_stop_while_a_socket_stdout_is_blocked),
             LZ_CASE(test_bytes_keep_their_type), LZ_CASE(test_sub_shows_the_deepest_value),
             LZ_CASE(test_req_rep_echo), LZ_CASE(test_req_rep_exec), LZ_CASE(test_rep_exec_limits), LZ_CASE(test_rep_exec_refuses_a_request_without_json_form), LZ_CASE(test_req_timeout), LZ_CASE(test_req_timeout_from_a_silent_server),
             LZ_CASE(test_rep_count_is_exact), LZ_CASE(test_rep_second_signal_ends_commands), LZ_CASE(test_stdout_full), LZ_CASE(test_pull_shows_an_undecodable_task), LZ_CASE(test_pull_reports_a_dropped_task),
             LZ_CASE(test_closed_stdin), LZ_CASE(test_proxy_forwarder), LZ_CASE(test_proxy_queue),
             LZ_CASE(test_config_errors), LZ_CASE(test_config_reloads_while_running), LZ_CASE(test_pub_sub_msgpack), LZ_CASE(test_req_data_from_standard_input), LZ_CASE(test_req_several_endpoints),
             LZ_CASE(test_proxy_capture), LZ_CASE(test_bench_json), LZ_CASE(test_bench_text), LZ_CASE(test_bench_stops_cleanly_with_a_backlog),
             LZ_CASE(test_bench_two_processes), LZ_CASE(test_bench_spread), LZ_CASE(test_bench_pin_two_processes),
             LZ_CASE(test_bench_reqrep_too_short_to_time), LZ_CASE(test_config_applies),
             LZ_CASE(test_ignored_sigchld_keeps_commands_statuses), LZ_CASE(test_lock_stop_signal_while_releasing),
             LZ_CASE(test_stop_signals_ignored_at_start_stay_ignored),
             LZ_CASE(test_senders_time_only_their_sockets_teardown), LZ_CASE(test_bind_tells_the_address_chosen),
             LZ_CASE(test_receivers_stop_while_a_terminal_stdout_is_blocked))
