/* The lz tool: each subcommand is one function taking its own argv
 * (argv[0] is the subcommand name). They return the process exit code,
 * one of LZ_EXIT_* (options.h: 0 success, 1 runtime failure, 2 bad usage,
 * 3 timeout, 4 error reply...) or, for lz lock, its command's own status. */
#ifndef LZ_CLI_H
#define LZ_CLI_H

int lz_cmd_pub(int argc, char **argv);
int lz_cmd_sub(int argc, char **argv);
int lz_cmd_push(int argc, char **argv);
int lz_cmd_pull(int argc, char **argv);
int lz_cmd_req(int argc, char **argv);
int lz_cmd_rep(int argc, char **argv);
int lz_cmd_proxy(int argc, char **argv);
int lz_cmd_bench(int argc, char **argv);
int lz_cmd_keygen(int argc, char **argv);
int lz_cmd_passwd(int argc, char **argv);
int lz_cmd_config(int argc, char **argv);
int lz_cmd_lock(int argc, char **argv);

#endif
