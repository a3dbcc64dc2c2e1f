/* lz: the command-line tool to poke at any ZeroMQ system. main dispatches
 * to one function per subcommand (cli.h); `version` and help live here. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "cli/cli.h"
#include "cli/options.h"

typedef struct lz_cli_entry {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} lz_cli_entry_t;

static int lz_cmd_version(int argc, char **argv);

static const lz_cli_entry_t lz_cli_commands[] = {
    {"pub", lz_cmd_pub, "publish standard input, one message per line"},
    {"sub", lz_cmd_sub, "print received messages as JSON lines"},
    {"push", lz_cmd_push, "send standard input as tasks, one per line"},
    {"pull", lz_cmd_pull, "print received tasks as JSON lines"},
    {"req", lz_cmd_req, "send one request and print the reply"},
    {"rep", lz_cmd_rep, "answer requests (--echo, --exec CMD) or serve locks (--locks)"},
    {"proxy", lz_cmd_proxy, "run a forwarder (pub/sub) or queue (req/rep) proxy"},
    {"bench", lz_cmd_bench, "measure throughput and latency"},
    {"keygen", lz_cmd_keygen, "print a new CURVE key pair (see security.*)"},
    {"lock", lz_cmd_lock, "run a command while holding a distributed lock"},
    {"passwd", lz_cmd_passwd, "hash a password into a PLAIN users file line"},
    {"config", lz_cmd_config, "print the configuration in effect, with each value's source"},
    {"version", lz_cmd_version, "print the versions of lz, liberzmq, libzmq and the plugins"},
};

static const lz_cli_command_t version_command = {
    .name = "version",
    .usage = "lz version [--config FILE] [--plugin PATH]...",
    .help = "Print the versions of lz, the liberzmq library it runs on and libzmq, then one\n"
            "line for each plugin loaded (plugins.load, --plugin): name, version and path.\n"
            "\nExample:\n  lz version --plugin build/examples/plugins/rot13.so\n",
    .options = LZ_OPT_CONFIG,
    .exits = LZ_CLI_EXITS_ENDPOINT, // the context binds metrics.prometheus_listen
};

static int version_run(const lz_cli_opts_t *opts) {
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    printf("lz %s (liberzmq %s, libzmq %d.%d.%d)\n", LZ_VERSION_STRING, lz_version(), major, minor, patch);
    // The context is what loads plugins: the one way to list what would load.
    lz_context_t *ctx;
    int rc = lz_cli_open(opts, &ctx);
    if (rc != 0) return rc;
    size_t count = lz_context_plugins(ctx, NULL, 0);
    lz_plugin_info_t *info = calloc(count ? count : 1, sizeof *info);
    if (info) count = lz_context_plugins(ctx, info, count);
    for (size_t i = 0; info && i < count; i++)
        printf("plugin %s %s (%s)\n", info[i].name, info[i].version, info[i].path);
    free(info);
    lz_context_destroy(&ctx);
    return info ? LZ_EXIT_OK : lz_cli_fail(opts, LZ_ENOMEM, "plugins");
}

static int lz_cmd_version(int argc, char **argv) {
    return lz_cli_main(&version_command, argc, argv, version_run);
}

static void print_overview(FILE *out) {
    fprintf(out, "usage: lz <command> [options]   (lz <command> --help for details)\n\nCommands:\n");
    for (size_t i = 0; i < sizeof lz_cli_commands / sizeof lz_cli_commands[0]; i++)
        fprintf(out, "  %-9s %s\n", lz_cli_commands[i].name, lz_cli_commands[i].summary);
    fprintf(out, "\nEndpoints are --bind URL or --connect URL (repeatable). Every command but\n"
                 "bench, keygen and passwd takes --config FILE and reads LIBERZMQ_* variables\n"
                 "like the library.\n");
    // Every code some command gives.
    lz_cli_print_exit_codes(out, LZ_CLI_EXITS_TIMEOUT | LZ_CLI_EXITS_REMOTE | LZ_CLI_EXITS_ENDPOINT |
                                     LZ_CLI_EXITS_LOCK);
}

static const lz_cli_entry_t *find_command(const char *name) {
    for (size_t i = 0; i < sizeof lz_cli_commands / sizeof lz_cli_commands[0]; i++)
        if (strcmp(lz_cli_commands[i].name, name) == 0) return &lz_cli_commands[i];
    return NULL;
}

static int unknown_command(const char *name) {
    if (name) fprintf(stderr, "lz: unknown command '%s' (usage: lz <command> [options]; see 'lz --help')\n", name);
    else fprintf(stderr, "lz: no command given (usage: lz <command> [options]; see 'lz --help')\n");
    return LZ_EXIT_USAGE;
}

static bool is_help_option(const char *arg) {
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

// help: `lz help`, `lz --help` and `lz help COMMAND`; the help of help
// (`lz help --help`) is the overview too.
static int help(int argc, char **argv) {
    const char *name = argc > 2 && !is_help_option(argv[2]) ? argv[2] : NULL;
    const lz_cli_entry_t *command = name ? find_command(name) : NULL;
    if (name && !command) return unknown_command(name);
    if (argc > 3) {
        fprintf(stderr, "lz help: unexpected argument '%s' (usage: lz help [COMMAND])\n", argv[3]);
        return LZ_EXIT_USAGE;
    }
    if (!command) {
        print_overview(stdout);
        return LZ_EXIT_OK;
    }
    char help_flag[] = "--help";
    char *help_argv[] = {argv[2], help_flag, NULL};
    return command->run(2, help_argv);
}

static int run(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : NULL;
    if (name && (is_help_option(name) || strcmp(name, "help") == 0))
        return help(argc, argv);
    // lz --version is lz version, arguments and all.
    if (name && strcmp(name, "--version") == 0) return lz_cmd_version(argc - 1, argv + 1);
    const lz_cli_entry_t *command = name ? find_command(name) : NULL;
    return command ? command->run(argc - 1, argv + 1) : unknown_command(name);
}

// open_standard_streams puts /dev/null on a closed standard descriptor:
// otherwise libzmq's next socket or eventfd takes its number, and lz would
// read its input from, or write diagnostics into, that. A closed standard
// input is then an empty one.
static void open_standard_streams(void) {
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && open("/dev/null", O_RDWR) != fd) return;
}

int main(int argc, char **argv) {
    open_standard_streams();
    lz_cli_note_ignored_signals(); // before any disposition changes
    // Inherited ignored (exec keeps SIG_IGN), SIGCHLD would make the kernel
    // reap lz's children itself: waitpid would fail, their status lost
    // (lz lock, lz rep --exec).
    signal(SIGCHLD, SIG_DFL);
    // A closed pipe (lz sub | head) becomes a write error we report, not a death.
    signal(SIGPIPE, SIG_IGN);
    int rc = run(argc, argv);
    // Output still buffered (help, version) must reach its reader too.
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == LZ_EXIT_OK) {
        fprintf(stderr, "lz: writing standard output: %s\n", errno ? strerror(errno) : "failed");
        rc = LZ_EXIT_FAILURE;
    }
    return rc;
}
