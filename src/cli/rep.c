/* lz rep: a server answering every action, either with the request's data
 * (--echo) or with what a shell command prints (--exec CMD, run per request
 * with the request JSON on its standard input, bounded by --timeout). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/child.h"
#include "cli/cli.h"
#include "cli/options.h"

#define REP_EXEC_TIMEOUT_MS 10000
#define REP_OUTPUT_MAX (16u << 20) // a runaway command cannot eat memory

static const lz_cli_command_t rep_command = {
    .name = "rep",
    .usage = "lz rep --bind|--connect URL (--echo | --exec CMD) [--locks] [--timeout MS] [--count N] [--format NAME] [--schema FILE]",
    .help =
        "Serve requests for every action until interrupted (SIGINT, SIGTERM or\n"
        "SIGHUP: exit 0 once running commands have answered; a second signal\n"
        "kills them, and their requests get an error reply).\n"
        "--echo replies with the request's data. --exec runs CMD with /bin/sh -c\n"
        "per request, the request as one JSON line on its standard input:\n"
        "  {\"type\": ACTION, \"timestamp\": ..., \"request_id\": ..., \"data\": ...}\n"
        "Its standard output is the reply: JSON as that value, other text as a\n"
        "string, nothing as null. A command that fails (non-zero status) or runs\n"
        "past --timeout gets an error reply. The built-in action \"ping\" is always\n"
        "answered (and not counted by --count). Requests that arrive after the\n"
        "--count-th get the error reply \"server stopping\".\n"
        "--locks also serves distributed locks (the actions of lz lock and\n"
        "lz_lock_t: acquire_lock, release_lock, renew_lock, lock_status), not\n"
        "counted by --count; alone, it serves locks only (and takes no --count).\n"
        "\nOptions:\n"
        "  --bind URL        bind to URL (repeatable)\n"
        "  --connect URL     connect to URL (repeatable, e.g. to a queue proxy)\n"
        "  --echo            reply with the request's data\n"
        "  --exec CMD        reply with CMD's output\n"
        "  --locks           serve distributed locks too (see lz lock)\n"
        "  --timeout MS      kill a command running longer (default 10000;\n"
        "                    only with --exec)\n"
        "  --count N         exit 0 after answering N requests (with --echo or\n"
        "                    --exec)\n"
        "  --format NAME     json or msgpack (default serialization.default)\n"
        "\nExamples:\n"
        "  lz rep --bind 'tcp://*:5555' --echo\n"
        "  lz rep --bind 'tcp://*:5555' --exec 'jq .data.x'\n"
        "  lz rep --connect tcp://broker:5560 --exec 'date +%s'\n"
        "  lz rep --bind 'tcp://*:5560' --locks\n",
    .options = LZ_OPT_ENDPOINTS | LZ_OPT_ECHO | LZ_OPT_EXEC | LZ_OPT_TIMEOUT | LZ_OPT_COUNT | LZ_OPT_FORMAT |
               LZ_OPT_CONFIG | LZ_OPT_SCHEMA | LZ_OPT_LOCKS,
    .watches_config = true,
    .needs_endpoints = true,
    .schema_help = "a request that does not match gets an LZ_EVALIDATION error reply\n                    (not counted by --count)",
    .reports_drops = true,
    .timeout_unit_ms = 1,
    .flush_on_exit = true,
    .needs_envelope = true,
    .exits = LZ_CLI_EXITS_ENDPOINT,
};

typedef struct rep_state {
    const lz_cli_opts_t *opts;
    atomic_long claimed; // requests taken, counting those refused past --count
    atomic_long handled;
    atomic_bool hurry; // a second stop signal: running commands are killed
    atomic_bool stopping; // rep_stop_soon has sent its signal
    atomic_bool nomem;    // a request failed for want of memory: exit 7
} rep_state_t;

// A running command looks this often whether a second stop signal came.
#define REP_HURRY_CHECK_MS 50

// A running command: its pid and our ends of its stdin and stdout.
typedef struct rep_child {
    pid_t pid;
    int in_fd, out_fd;
} rep_child_t;

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

// child_start runs /bin/sh -c cmd with pipes on its stdin and stdout
// (close-on-exec, so concurrent handlers never leak them to each other).
static int child_start(const char *cmd, rep_child_t *child) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return errno;
    if (pipe2(out, O_CLOEXEC) != 0) {
        int err = errno;
        close(in[0]);
        close(in[1]);
        return err;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    // Each can fail for want of memory: the command would then read lz's own
    // standard input, or write into lz's output.
    int err = posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    if (!err) err = posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    lz_cli_spawn_attr(&attr, true); // its own group: a timeout kills all it started
    char sh[] = "sh", dash_c[] = "-c";
    char *argv[] = {sh, dash_c, (char *)cmd, NULL};
    if (!err) err = posix_spawn(&child->pid, "/bin/sh", &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    child->in_fd = in[1];
    child->out_fd = out[0];
    if (err) {
        close_fd(&child->in_fd);
        close_fd(&child->out_fd);
        return err;
    }
    fcntl(child->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(child->out_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

// feed writes what it can of input; the pipe closes once all is written or
// the command stopped reading (EPIPE: SIGPIPE is ignored by lz).
static void feed(rep_child_t *child, const void *input, size_t size, size_t *written) {
    ssize_t n = write(child->in_fd, (const char *)input + *written, size - *written);
    if (n > 0) *written += (size_t)n;
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || *written == size) close_fd(&child->in_fd);
}

// drain reads what is ready; the pipe closes at end of output.
static int drain(rep_child_t *child, lz_buffer_t *out) {
    char *room = lz_buffer_reserve(out, 65536);
    if (!room) return LZ_ENOMEM;
    ssize_t n = read(child->out_fd, room, 65536);
    if (n > 0) lz_buffer_commit(out, (size_t)n);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_fd(&child->out_fd);
    return lz_buffer_size(out) > REP_OUTPUT_MAX ? LZ_EVALIDATION : 0;
}

// exchange feeds input and collects output until end of output;
// LZ_ECLOSED when *hurry turns true first.
static int exchange(rep_child_t *child, const void *input, size_t size, lz_buffer_t *out, int64_t deadline,
                    const atomic_bool *hurry) {
    size_t written = 0;
    if (size == 0) close_fd(&child->in_fd);
    while (child->out_fd >= 0) {
        struct pollfd fds[2] = {{child->out_fd, POLLIN, 0}, {child->in_fd, POLLOUT, 0}};
        int64_t left = deadline - lz_cli_now_ms();
        if (left <= 0) return LZ_ETIMEOUT;
        if (atomic_load(hurry)) return LZ_ECLOSED;
        int wait = left < REP_HURRY_CHECK_MS ? (int)left : REP_HURRY_CHECK_MS;
        if (poll(fds, child->in_fd >= 0 ? 2 : 1, wait) < 0 && errno != EINTR) return LZ_EIO;
        if (child->in_fd >= 0 && fds[1].revents) feed(child, input, size, &written);
        int err = fds[0].revents ? drain(child, out) : 0;
        if (err) return err;
    }
    return 0;
}

// What reap returns besides a wait status (which is never negative).
enum { REP_KILLED = -1, REP_STATUS_UNKNOWN = -2 };

// reap waits for the command until deadline (or *hurry), then kills its
// group. Returns the wait status, REP_KILLED when it had to be killed, or
// REP_STATUS_UNKNOWN when waitpid fails (nothing to say how it ended).
static int reap(pid_t pid, int64_t deadline, const atomic_bool *hurry) {
    int status;
    while (lz_cli_now_ms() < deadline && !atomic_load(hurry)) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) return status;
        if (done < 0 && errno != EINTR) return REP_STATUS_UNKNOWN;
        lz_cli_sleep_ms(5);
    }
    lz_cli_child_kill(pid, true);
    return REP_KILLED;
}

// error_reply stores a message for the error reply and returns err.
static int error_reply(lz_value_t **reply, int err, const char *format, long detail) {
    char text[160];
    snprintf(text, sizeof text, format, detail);
    *reply = lz_value_string(text);
    return err;
}

// output_reply makes the reply from the command's output.
static int output_reply(int status, lz_buffer_t *out, lz_value_t **reply) {
    if (WIFSIGNALED(status)) return error_reply(reply, LZ_EIO, "command killed by signal %ld", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        return error_reply(reply, LZ_EIO, "command exited with status %ld", WEXITSTATUS(status));
    *reply = lz_cli_value_from_output(lz_buffer_data(out), lz_buffer_size(out));
    return *reply ? 0 : LZ_ENOMEM;
}

static int run_command(const char *cmd, const void *input, size_t size, int timeout_ms, const atomic_bool *hurry,
                       lz_value_t **reply) {
    rep_child_t child = {0, -1, -1};
    int64_t deadline = lz_cli_now_ms() + timeout_ms;
    int err = child_start(cmd, &child);
    if (err) {
        *reply = lz_value_string(strerror(err));
        return err == ENOMEM ? LZ_ENOMEM : LZ_EIO;
    }
    lz_buffer_t *out = lz_buffer_new();
    err = out ? exchange(&child, input, size, out, deadline, hurry) : LZ_ENOMEM;
    close_fd(&child.in_fd);
    close_fd(&child.out_fd);
    int status = reap(child.pid, err ? 0 : deadline, hurry);
    if (err == LZ_ECLOSED || (!err && status == REP_KILLED && atomic_load(hurry)))
        err = error_reply(reply, LZ_ECLOSED, "command killed: lz rep is stopping", 0);
    else if (err == LZ_ETIMEOUT || (!err && status == REP_KILLED))
        err = error_reply(reply, LZ_ETIMEOUT, "command timed out after %ld ms", timeout_ms);
    else if (!err && status == REP_STATUS_UNKNOWN)
        err = error_reply(reply, LZ_EIO, "cannot learn how the command ended", 0);
    else if (err == LZ_EVALIDATION)
        err = error_reply(reply, err, "command output larger than %ld bytes", REP_OUTPUT_MAX);
    else if (!err)
        err = output_reply(status, out, reply);
    lz_buffer_destroy(&out);
    return err;
}

// request_text appends the request to line as one JSON line: the wire
// envelope with its "data", bytes in it tagged as the wire has them
// (lz_cli_json), and a newline at the end so `read` and line tools take it
// whole. Returns 0, LZ_ESERIALIZATION when the request has no JSON form
// (a msgpack NaN), or LZ_ENOMEM.
static int request_text(const lz_message_t *request, lz_buffer_t *line) {
    const lz_value_t *envelope = lz_message_envelope(request), *data = lz_message_value(request);
    if (!envelope) return LZ_ESERIALIZATION;
    lz_value_t *whole = lz_value_copy(envelope);
    int err = whole ? 0 : LZ_ENOMEM;
    // The library hands "data" apart (lz_message_value); put it back: none
    // is better than one without its data.
    if (!err && data && !lz_value_get(whole, "data")) {
        lz_value_t *copy = lz_value_copy(data);
        err = copy ? lz_value_object_set(whole, "data", copy) : LZ_ENOMEM;
    }
    if (!err) err = lz_cli_json(whole, line);
    if (!err) err = lz_buffer_append(line, "\n", 1);
    lz_value_destroy(&whole);
    return err;
}

// rep_exec hands the command the request as one JSON line.
static int rep_exec(rep_state_t *state, const lz_message_t *request, lz_value_t **reply) {
    const lz_cli_opts_t *opts = state->opts;
    lz_buffer_t *text = lz_buffer_new();
    int err = text ? request_text(request, text) : LZ_ENOMEM;
    if (err == LZ_ESERIALIZATION) *reply = lz_value_string("request has no JSON form for the command");
    int timeout_ms = opts->timeout_ms >= 0 ? opts->timeout_ms : REP_EXEC_TIMEOUT_MS;
    if (!err)
        err = run_command(opts->exec, lz_buffer_data(text), lz_buffer_size(text), timeout_ms, &state->hurry, reply);
    lz_buffer_destroy(&text);
    return err;
}

// How rep_handle (after the --count-th request) and stop_server wake the
// main thread in rep_wait: a signal of its own, blocked in every thread
// (rep_run), so only queued for its sigwaitinfo. Not a stop signal: one lz
// was started with ignored (nohup) is not in the set it waits for.
#define REP_WAKE SIGRTMIN

// rep_stop_soon wakes the first rep_wait, once.
static void rep_stop_soon(rep_state_t *state) {
    if (!atomic_exchange(&state->stopping, true)) kill(getpid(), REP_WAKE);
}

// rep_handle answers one request. With --count, handlers on several
// threads may race past the count before rep_wait sees it: each request
// claims a number first, and those past the count are refused like the
// queued requests of any stopping server.
static int rep_handle(const lz_message_t *request, lz_value_t **reply, void *arg) {
    rep_state_t *state = arg;
    long count = state->opts->count;
    if (count && atomic_fetch_add(&state->claimed, 1) >= count)
        return error_reply(reply, LZ_ECLOSED, "server stopping after %ld requests", count);
    int err = 0;
    if (state->opts->echo) {
        *reply = lz_value_copy(lz_message_value(request));
        err = *reply ? 0 : LZ_ENOMEM;
    } else {
        err = rep_exec(state, request, reply);
    }
    // The last one stops the server; so does a request that failed for want
    // of memory, which rep_serve then reports (exit 7) after its error reply.
    if (err == LZ_ENOMEM) atomic_store(&state->nomem, true);
    if (atomic_fetch_add(&state->handled, 1) + 1 == count || err == LZ_ENOMEM) rep_stop_soon(state);
    return err;
}

// rep_wait returns on a stop signal or REP_WAKE (both in signals), which
// rep_handle sends after the --count-th request: the signal taken (-1 on a
// failure other than EINTR). lz_server_stop then lets running handlers send
// their replies, and the context's linger lets them leave.
static int rep_wait(const sigset_t *signals) {
    int signo;
    while ((signo = sigwaitinfo(signals, NULL)) < 0 && errno == EINTR) {
    }
    return signo;
}

// A stop in progress: lz_server_stop runs on its own thread so the main one
// can still take a second stop signal.
typedef struct rep_stop {
    lz_server_t *server;
    pthread_t waiter; // the main thread, in rep_wait
    atomic_bool done;
} rep_stop_t;

static void *stop_server(void *arg) {
    rep_stop_t *stop = arg;
    lz_server_stop(stop->server);
    atomic_store(&stop->done, true);
    pthread_kill(stop->waiter, REP_WAKE); // blocked there: ends its rep_wait
    return NULL;
}

// rep_stop stops the server, letting running commands finish, unless a
// second stop signal comes first: then they are killed (state->hurry).
static void rep_stop(lz_server_t *server, rep_state_t *state, const sigset_t *signals) {
    rep_stop_t stop = {server, pthread_self(), false};
    pthread_t thread;
    if (pthread_create(&thread, NULL, stop_server, &stop) != 0) {
        lz_server_stop(server);
        return;
    }
    for (;;) {
        int signo = rep_wait(signals);
        if (atomic_load(&stop.done)) break;
        // The --count-th request's wake, come after a stop signal, is no second one.
        if (signo != REP_WAKE) atomic_store(&state->hurry, true);
    }
    pthread_join(thread, NULL);
}

// rep_handlers registers what the options serve: every action (--echo,
// --exec), the lock actions (--locks, *locks).
static int rep_handlers(lz_server_t *server, rep_state_t *state, lz_lock_service_t **locks) {
    const lz_cli_opts_t *opts = state->opts;
    if (opts->locks && !(*locks = lz_lock_service_attach(server, 0))) return lz_last_error_code();
    return opts->echo || opts->exec ? lz_server_on_default(server, rep_handle, state) : LZ_OK;
}

static int rep_serve(const lz_cli_opts_t *opts, lz_context_t *ctx, const sigset_t *signals) {
    rep_state_t state = {opts, 0, 0, false, false, false};
    lz_lock_service_t *locks = NULL;
    lz_server_t *server = lz_server_new(ctx, opts->endpoints);
    if (!server) return lz_cli_fail_node(opts);
    int rc = lz_cli_node_setup(opts, ctx, lz_server_node(server), NULL);
    int err = rc ? 0 : rep_handlers(server, &state, &locks);
    if (!rc && !err) err = lz_server_start(server);
    if (!rc && err) rc = lz_cli_fail(opts, err, "server");
    if (rc == 0) {
        // A REP_WAKE another process sent is no stop.
        while (rep_wait(signals) == REP_WAKE && !atomic_load(&state.stopping)) {
        }
        rep_stop(server, &state, signals);
    }
    lz_server_destroy(&server); // first: its handlers use the lock service
    lz_lock_service_destroy(&locks);
    return rc == 0 && atomic_load(&state.nomem) ? lz_cli_fail(opts, LZ_ENOMEM, "request") : rc;
}

static int rep_run(const lz_cli_opts_t *opts) {
    if (opts->echo && opts->exec) return lz_cli_usage_error(opts->cmd, "give either --echo or --exec CMD, not both");
    if (!opts->echo && !opts->exec && !opts->locks)
        return lz_cli_usage_error(opts->cmd, "give --echo, --exec CMD or --locks");
    if (opts->exec && !*opts->exec) return lz_cli_usage_error(opts->cmd, "empty --exec command");
    // The options are the command's, whatever it serves: those of one way of
    // serving would do nothing in another.
    if (opts->timeout_ms >= 0 && !opts->exec)
        return lz_cli_usage_error(opts->cmd, "--timeout bounds --exec commands: not without --exec");
    if (opts->count && !opts->echo && !opts->exec)
        return lz_cli_usage_error(opts->cmd, "--count counts --echo or --exec requests, not lock actions");
    // rep_wait's signals, blocked before lz_cli_open makes threads.
    sigset_t signals, wake;
    lz_cli_block_stop_signals(&signals);
    sigemptyset(&wake);
    sigaddset(&wake, REP_WAKE);
    pthread_sigmask(SIG_BLOCK, &wake, NULL);
    sigaddset(&signals, REP_WAKE);
    lz_context_t *ctx = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0) rc = rep_serve(opts, ctx, &signals);
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_rep(int argc, char **argv) {
    return lz_cli_main(&rep_command, argc, argv, rep_run);
}
