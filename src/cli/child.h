/* Child processes of the lz tool: how `lz rep --exec` and `lz lock` start
 * commands, and how a command's end becomes lz's exit code. */
#ifndef LZ_CLI_CHILD_H
#define LZ_CLI_CHILD_H

#include <spawn.h>
#include <stdbool.h>

// lz_cli_spawn_attr prepares attr (initialised here; the caller destroys
// it) so the command starts with no signal blocked and SIGPIPE, SIGCHLD
// and the stop signals SIGINT, SIGTERM and SIGHUP at their default
// actions, whatever lz blocks or ignores; but a stop signal lz was started
// with ignored (nohup: lz_cli_note_ignored_signals) stays ignored.
// own_group puts the command in a process group of its own, so killing
// the group kills all it started; without it the command stays in lz's
// group, and so in the terminal's foreground with lz.
void lz_cli_spawn_attr(posix_spawnattr_t *attr, bool own_group);

// lz_cli_child_kill kills the command with SIGKILL (its whole process
// group when group) and reaps it.
void lz_cli_child_kill(pid_t pid, bool group);

// lz_cli_child_exit_code: a wait status as a shell reports it: the exit
// status, or 128 + the signal that killed the command.
int lz_cli_child_exit_code(int wait_status);

#endif
