/* Child processes of the lz tool (child.h). */
#include "cli/child.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "cli/options.h"

void lz_cli_spawn_attr(posix_spawnattr_t *attr, bool own_group) {
    sigset_t none, defaults;
    sigemptyset(&none);
    lz_cli_stop_signals(&defaults); // a stop signal lz was started with ignored stays so (nohup)
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    posix_spawnattr_init(attr);
    posix_spawnattr_setsigmask(attr, &none);
    posix_spawnattr_setsigdefault(attr, &defaults);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (own_group) {
        posix_spawnattr_setpgroup(attr, 0);
        flags |= POSIX_SPAWN_SETPGROUP;
    }
    posix_spawnattr_setflags(attr, flags);
}

void lz_cli_child_kill(pid_t pid, bool group) {
    int status;
    kill(group ? -pid : pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

int lz_cli_child_exit_code(int wait_status) {
    return WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status) : WEXITSTATUS(wait_status);
}
