/* lz lock: run a command while holding a distributed lock, as flock(1)
 * does with a file lock, but across machines: acquire the lock from a lock
 * service (`lz rep --locks`, or any server with lz_lock_service_attach),
 * run the command with the fencing token in its environment, renew the
 * lease while it runs, release it when it ends. A lease lost meanwhile
 * (the service says so, or it could not be renewed before its end)
 * terminates the command: from then on another holder may act. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli/child.h"
#include "cli/cli.h"
#include "cli/options.h"

#define LOCK_KILL_AFTER_MS 5000   // a terminated command gets this long before SIGKILL
#define LOCK_RENEW_RETRY_MS 1000  // a renewal that failed is tried again this soon

static const lz_cli_command_t lock_command = {
    .name = "lock",
    .usage = "lz lock --connect URL [--wait MS] [--ttl MS] NAME [--] CMD [ARG]...",
    .help =
        "Run CMD while holding the distributed lock NAME from a lock service\n"
        "(lz rep --locks). Waits for the lock (up to --wait, default: for as long\n"
        "as it takes), runs CMD with LZ_LOCK_NAME and LZ_LOCK_TOKEN (the hold's\n"
        "fencing token) in its environment, renews the lease every third of\n"
        "--ttl while CMD runs, and releases the lock when CMD ends; lz lock then\n"
        "exits with CMD's status (126: CMD cannot run, 127: not found). If the\n"
        "lease is lost meanwhile (the service no longer has it, or it ran out\n"
        "unrenewed), CMD gets SIGTERM (SIGKILL 5 s later) and lz lock exits 6. SIGINT, SIGTERM and SIGHUP sent to lz\n"
        "lock go on to CMD; while it waits for the lock they end it (128 + N),\n"
        "leaving the lock free (a second one ends it at once); once CMD has\n"
        "ended, while the lock is released, they end it at once (128 + N), but\n"
        "for a terminal's (Ctrl-C), which reached CMD too: the second does.\n"
        "\nOptions:\n"
        "  --connect URL     the lock service (--bind: the service connects here)\n"
        "  --wait MS         give up after MS (exit 3; 0: ask once)\n"
        "  --ttl MS          the lease, renewed while CMD runs (default 30000)\n"
        "\nExamples:\n"
        "  lz lock --connect tcp://locks:5560 nightly-report -- ./report.sh\n"
        "  lz lock --connect tcp://locks:5560 --wait 0 deploy -- make deploy\n"
        "  lz lock --connect tcp://locks:5560 db -- sh -c 'migrate --fence \"$LZ_LOCK_TOKEN\"'\n",
    .options = LZ_OPT_ENDPOINTS | LZ_OPT_WAIT | LZ_OPT_TTL | LZ_OPT_CONFIG,
    .min_args = 2,
    .max_args = 1 << 20,
    .command_arg = 1, // NAME, then CMD [ARG]...: the command's own
    .needs_endpoints = true,
    .exits = LZ_CLI_EXITS_TIMEOUT | LZ_CLI_EXITS_REMOTE | LZ_CLI_EXITS_ENDPOINT | LZ_CLI_EXITS_LOCK,
};

// What the signal thread does with a stop signal: before the command runs
// it ends lz lock, while it runs it passes the signal on. Ending, it
// cancels the wait for the lock (lz_lock_cancel), and the main thread
// releases what the wait may have been granted, then exits 128 + N; a
// second stop signal meanwhile (a release the service does not answer)
// ends lz lock at once. Once the command has ended (PHASE_RELEASING: its
// pid is no longer ours to signal) a stop signal ends lz lock at once too,
// leaving the release unanswered (the lease runs out on its own); but
// for a terminal's (ends_release).
enum { PHASE_WAITING, PHASE_STOPPING, PHASE_RUNNING, PHASE_RELEASING };

typedef struct lock_signals {
    sigset_t stop;
    pthread_mutex_t mutex; // guards the rest
    int phase;
    lz_lock_t *lock;       // while it is being acquired, else NULL
    int stopped;           // the stop signal that ended the wait (PHASE_STOPPING), else 0
    pid_t child;           // the command's pid while it runs (not yet reaped), else 0
    int held;              // a signal that came before the command ran
    int terminal_stops;    // stop signals from the terminal taken in PHASE_RELEASING
} lock_signals_t;

// pass_on sends signo to the command, or keeps it for the command about to
// start (lock_signals_started sends it then).
static void pass_on(lock_signals_t *s, int signo) {
    if (s->child > 0) kill(s->child, signo);
    else s->held = signo;
}

static void stop_waiting(lock_signals_t *s, int signo) {
    lz_cli_errorf("interrupted while waiting for the lock");
    s->phase = PHASE_STOPPING;
    s->stopped = signo;
    if (s->lock) lz_lock_cancel(s->lock);
}

// lock_signals_acquiring: a stop signal from now on cancels acquiring lock
// (one come already, at once).
static void lock_signals_acquiring(lock_signals_t *s, lz_lock_t *lock) {
    pthread_mutex_lock(&s->mutex);
    s->lock = lock;
    if (s->phase == PHASE_STOPPING) lz_lock_cancel(lock);
    pthread_mutex_unlock(&s->mutex);
}

// lock_signals_acquired: acquiring is over (held: the lock was granted).
// Returns the stop signal that ended the wait, else 0; then, with the lock
// held, a stop signal is for the command from now on, else any ends lz lock.
static int lock_signals_acquired(lock_signals_t *s, bool held) {
    pthread_mutex_lock(&s->mutex);
    s->lock = NULL;
    int stopped = s->stopped;
    s->phase = held && !stopped ? PHASE_RUNNING : PHASE_STOPPING;
    pthread_mutex_unlock(&s->mutex);
    return stopped;
}

// lock_signals_releasing: no command runs (its pid forgotten, about to be
// reaped), and none will: a stop signal from now on ends lz lock.
static void lock_signals_releasing(lock_signals_t *s) {
    pthread_mutex_lock(&s->mutex);
    s->child = 0;
    s->phase = PHASE_RELEASING;
    pthread_mutex_unlock(&s->mutex);
}

static void lock_signals_started(lock_signals_t *s, pid_t pid) {
    pthread_mutex_lock(&s->mutex);
    s->child = pid;
    if (s->held) kill(pid, s->held);
    pthread_mutex_unlock(&s->mutex);
}

// ends_release: whether a stop signal taken while the lock is released,
// the command ended, ends lz lock. One sent to lz lock (kill) does. One
// from the terminal (Ctrl-C) reached the command too, and may be what
// ended it, taken only now: the second does.
static bool ends_release(lock_signals_t *s, const siginfo_t *info) {
    return info->si_code != SI_KERNEL || s->terminal_stops++ > 0;
}

// A stop signal from the terminal (SI_KERNEL) reached the command as well,
// which shares our process group: only signals sent to lz lock alone (by
// kill, SI_USER, or sigqueue) are passed on.
static void *forward_signals(void *arg) {
    lock_signals_t *s = arg;
    for (;;) {
        siginfo_t info;
        if (sigwaitinfo(&s->stop, &info) < 0) continue;
        pthread_mutex_lock(&s->mutex);
        if (s->phase == PHASE_RELEASING && ends_release(s, &info)) {
            lz_cli_errorf("interrupted while releasing the lock: its lease runs out");
            _exit(128 + info.si_signo);
        }
        if (s->phase == PHASE_STOPPING) _exit(128 + info.si_signo);
        if (s->phase == PHASE_WAITING) stop_waiting(s, info.si_signo);
        else if (s->phase == PHASE_RUNNING && info.si_code != SI_KERNEL) pass_on(s, info.si_signo);
        pthread_mutex_unlock(&s->mutex);
    }
    return NULL;
}

// command_env: the environment with LZ_LOCK_NAME and LZ_LOCK_TOKEN set
// (any inherited ones replaced). Built, not setenv'd: the library's
// threads may read the environment meanwhile. The strings point into vars.
static char **command_env(char vars[2][512], const char *name, int64_t token) {
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 3, sizeof *env);
    if (!env) return NULL;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LZ_LOCK_NAME=", 13) != 0 && strncmp(environ[i], "LZ_LOCK_TOKEN=", 14) != 0)
            env[kept++] = environ[i];
    snprintf(vars[0], 512, "LZ_LOCK_NAME=%s", name);
    snprintf(vars[1], 512, "LZ_LOCK_TOKEN=%" PRId64, token);
    env[kept++] = vars[0];
    env[kept] = vars[1];
    return env;
}

// start_command runs the command of opts (CMD [ARG]...) in lz's process
// group (so it keeps the terminal). Returns 0, or the exit code for a
// command that cannot start.
static int start_command(const lz_cli_opts_t *opts, int64_t token, pid_t *pid) {
    char **argv = opts->args + 1, vars[2][512];
    char **env = command_env(vars, opts->args[0], token);
    if (!env) return lz_cli_fail(opts, LZ_ENOMEM, "command");
    posix_spawnattr_t attr;
    lz_cli_spawn_attr(&attr, false);
    int err = posix_spawnp(pid, argv[0], NULL, &attr, argv, env);
    posix_spawnattr_destroy(&attr);
    free(env);
    if (!err) return 0;
    lz_cli_errorf("cannot run '%s': %s", argv[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}

// wait_child waits until deadline (lz_cli_now_ms) for the command to end;
// true when it has (or cannot be waited for). It does not reap it: until
// reap_command, its pid stays ours, whatever the signal thread sends it.
static bool wait_child(pid_t pid, int64_t deadline) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        siginfo_t info = {0};
        int rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT);
        if ((rc == 0 && info.si_pid == pid) || (rc < 0 && errno != EINTR)) return true;
        int64_t left = deadline - lz_cli_now_ms();
        if (left <= 0) return false;
        struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
        sigtimedwait(&chld, NULL, &ts); // SIGCHLD is blocked: it only ends the wait
    }
}

// terminate ends the command: SIGTERM, then SIGKILL if it lingers. The
// caller reaps it (reap_command).
static void terminate(pid_t pid) {
    kill(pid, SIGTERM);
    if (!wait_child(pid, lz_cli_now_ms() + LOCK_KILL_AFTER_MS)) kill(pid, SIGKILL);
}

// reap_command reaps the command, which has ended or was killed, once the
// signal thread has forgotten its pid (which the kernel may then give to
// another process): a stop signal from now on ends lz lock. Returns the
// command's exit code, or LZ_EXIT_FAILURE when its status cannot be had.
static int reap_command(lock_signals_t *s, pid_t pid) {
    lock_signals_releasing(s);
    int status;
    pid_t done;
    while ((done = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (done == pid) return lz_cli_child_exit_code(status);
    lz_cli_errorf("cannot learn how the command ended: %s", strerror(errno));
    return LZ_EXIT_FAILURE;
}

// hold renews the lease while the command runs, and reaps it. Returns the
// command's exit code, or LZ_EXIT_LOCK_LOST once the lease is lost
// (command terminated).
static int hold(lz_lock_t *lock, const lz_cli_opts_t *opts, lock_signals_t *signals, pid_t pid, int ttl_ms) {
    int64_t next_renew = lz_cli_now_ms() + ttl_ms / 3;
    for (;;) {
        if (wait_child(pid, next_renew)) return reap_command(signals, pid);
        int rc = lz_lock_renew(lock);
        if (rc == LZ_OK) {
            next_renew = lz_cli_now_ms() + ttl_ms / 3;
            continue;
        }
        if (rc == LZ_ESTATE || !lz_lock_held(lock)) {
            lz_cli_errorf("lost the lock '%s': %s; terminating the command", opts->args[0],
                          rc == LZ_ESTATE ? "the service no longer has its lease" : "its lease ran out unrenewed");
            terminate(pid);
            reap_command(signals, pid);
            return LZ_EXIT_LOCK_LOST;
        }
        lz_cli_errorf("cannot renew the lock '%s': %s; trying again", opts->args[0], lz_last_error());
        next_renew = lz_cli_now_ms() + (ttl_ms / 10 < LOCK_RENEW_RETRY_MS ? ttl_ms / 10 : LOCK_RENEW_RETRY_MS);
    }
}

// release gives the lock back after the command ended with code.
static int release(lz_lock_t *lock, const lz_cli_opts_t *opts, int code) {
    int rc = lz_lock_release(lock);
    if (rc == LZ_ESTATE) {
        lz_cli_errorf("the lease of '%s' had ended before the command did: it may have overlapped another holder",
                      opts->args[0]);
        return LZ_EXIT_LOCK_LOST;
    }
    if (rc != LZ_OK) lz_cli_errorf("cannot release the lock '%s' (its lease will run out): %s", opts->args[0],
                                   lz_last_error());
    return code;
}

static int run_locked(const lz_cli_opts_t *opts, lz_context_t *ctx, lock_signals_t *signals) {
    const char *name = opts->args[0];
    int ttl_ms = opts->ttl_ms ? opts->ttl_ms : LZ_LOCK_TIMEOUT_DEFAULT * 1000;
    lz_lock_t *lock = lz_lock_new(ctx, opts->endpoints, name, ttl_ms);
    if (!lock) return lz_cli_fail_node(opts);
    lock_signals_acquiring(signals, lock);
    int rc = lz_lock_acquire(lock, opts->wait_ms);
    int stopped = lock_signals_acquired(signals, rc == LZ_OK);
    if (stopped) {
        if (rc == LZ_OK) lz_lock_release(lock); // granted the instant before
        rc = 128 + stopped;
    } else if (rc != LZ_OK) {
        rc = lz_cli_fail(opts, rc, "acquire");
    } else {
        pid_t pid;
        // From here a stop signal is for the command: held for it until it runs.
        rc = start_command(opts, lz_lock_fencing_token(lock), &pid);
        if (rc == 0) {
            lock_signals_started(signals, pid);
            rc = hold(lock, opts, signals, pid, ttl_ms);
            if (rc != LZ_EXIT_LOCK_LOST) rc = release(lock, opts, rc);
        } else {
            lock_signals_releasing(signals);
            lz_lock_release(lock);
        }
    }
    lz_lock_destroy(&lock); // releases what an acquire given up may have been granted
    return rc;
}

static int lock_run(const lz_cli_opts_t *opts) {
    if (!*opts->args[0]) return lz_cli_usage_error(opts->cmd, "empty lock name");
    // Stop signals go to the signal thread, SIGCHLD to wait_child: blocked
    // here, before any thread starts, so every thread inherits it.
    static lock_signals_t signals = {.mutex = PTHREAD_MUTEX_INITIALIZER}; // the signal thread outlives this call
    lz_cli_block_stop_signals(&signals.stop);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, NULL);
    pthread_t thread;
    if (pthread_create(&thread, NULL, forward_signals, &signals) != 0) return lz_cli_fail(opts, LZ_ENOMEM, "thread");
    pthread_detach(thread);
    lz_context_t *ctx = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0) rc = run_locked(opts, ctx, &signals);
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_lock(int argc, char **argv) {
    return lz_cli_main(&lock_command, argc, argv, lock_run);
}
