/* lz passwd: a line for security.plain_users_file (docs/security.md): a
 * user name and the crypt(3) hash of a password read from standard input,
 * with a fresh salt, so the file never holds a password. */
#include <crypt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"

static const lz_cli_command_t passwd_command = {
    .name = "passwd",
    .usage = "lz passwd [USER]",
    .help = "Read a password from standard input (one line, not shown when typed at a\n"
            "terminal) and print 'USER:HASH' for security.plain_users_file, HASH being\n"
            "its yescrypt hash ($y$) with a fresh salt (bcrypt, $2b$, where yescrypt is\n"
            "missing). The password itself is never printed nor stored. USER defaults to\n"
            "$USER; it cannot hold ':' or blanks, nor start with '#' (a comment in the\n"
            "users file).\n"
            "\nExamples:\n"
            "  lz passwd alice >> users.txt            # type the password (not shown), then Enter\n"
            "  printf '%s\\n' \"$PASSWORD\" | lz passwd alice >> users.txt\n"
            "  LIBERZMQ_SECURITY__PLAIN_USERS_FILE=users.txt lz pull --bind ipc:///tmp/jobs\n",
    .max_args = 1,
};

// The terminal's settings while the password is typed without echo, kept
// for the signal handler that puts them back.
static struct termios saved_terminal;
static volatile sig_atomic_t echo_off;

static void restore_terminal(void) {
    if (echo_off) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_terminal);
    echo_off = 0;
}

// A signal while echo is off (^C at the prompt) must not leave the shell
// without echo: put the terminal back, then die of the signal as before.
static void restore_and_reraise(int sig) {
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

// hide_typing turns the terminal's echo off when standard input is one,
// with a prompt on standard error (standard output is the users file's
// line); false when it is not a terminal, or echo could not be turned off.
static bool hide_typing(void) {
    // Not SIGTSTP: echo put back at a ^Z would stay on after fg, for the
    // rest of the password. Stopped, the terminal keeps echo off until fg.
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_terminal) != 0) return false;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction was;
        // One lz was started with ignored (nohup) stays so: it would end lz passwd.
        if (sigaction(signals[i], NULL, &was) == 0 && was.sa_handler == SIG_IGN) continue;
        signal(signals[i], restore_and_reraise);
    }
    struct termios quiet = saved_terminal;
    quiet.c_lflag &= (tcflag_t)~(ECHO | ECHOE | ECHOK | ECHONL);
    echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    fputs("Password: ", stderr); // once nothing typed after it can show
    return echo_off;
}

// read_password takes one line of standard input without its line ending;
// typed at a terminal, it is not shown.
static bool read_password(char *buf, size_t size) {
    bool hidden = hide_typing();
    char *line = fgets(buf, (int)size, stdin);
    if (hidden) {
        restore_terminal();
        fputc('\n', stderr); // the Enter that was not echoed
    }
    if (!line) return false;
    size_t len = strcspn(buf, "\r\n");
    bool whole = buf[len] != '\0' || feof(stdin); // a line ending, or the input's last line
    buf[len] = '\0';
    return whole;
}

// hash_password hashes password with a fresh salt: yescrypt, else bcrypt
// where this system's crypt(3) has no yescrypt. NULL when it has neither,
// or with *out_of_memory when hashing failed: on a salt crypt(3) made
// itself, that is for want of memory (yescrypt maps megabytes; libxcrypt
// then says EINVAL), and no reason to print a weaker hash instead.
static const char *hash_password(const char *password, struct crypt_data *data, bool *out_of_memory) {
    static const char *const methods[] = {"$y$", "$2b$"};
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    *out_of_memory = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (!crypt_gensalt_rn(methods[i], 0, NULL, 0, salt, sizeof salt)) continue; // not on this system
        const char *hash = crypt_r(password, salt, data);
        *out_of_memory = !hash || hash[0] != '$';
        return *out_of_memory ? NULL : hash;
    }
    return NULL;
}

static int passwd_run(const lz_cli_opts_t *opts) {
    const char *user = opts->arg_count == 1 ? opts->args[0] : getenv("USER");
    if (!user || !*user) return lz_cli_usage_error(opts->cmd, "no USER given and $USER is not set");
    // A line starting with '#' is a comment to the users file's reader.
    if (strlen(user) > 255 || strpbrk(user, ": \t\r\n") || user[0] == '#')
        return lz_cli_usage_error(opts->cmd, "a user name has no ':' nor blanks, does not start with '#', "
                                             "and has at most 255 bytes");
    static struct crypt_data data; // 32 KiB: not for the stack
    char password[1024];
    bool read = read_password(password, sizeof password);
    if (!read || !*password || strlen(password) > 255) {
        explicit_bzero(password, sizeof password);
        fprintf(stderr, "lz passwd: expected a password (1 to 255 bytes) on one line of standard input\n");
        return LZ_EXIT_FAILURE;
    }
    bool out_of_memory;
    const char *hash = hash_password(password, &data, &out_of_memory);
    explicit_bzero(password, sizeof password);
    int rc = LZ_EXIT_OK;
    if (hash) {
        printf("%s:%s\n", user, hash);
    } else if (out_of_memory) {
        rc = lz_cli_fail(opts, LZ_ENOMEM, "hashing the password");
    } else {
        fprintf(stderr, "lz passwd: this system's crypt(3) has neither yescrypt nor bcrypt\n");
        rc = LZ_EXIT_FAILURE;
    }
    explicit_bzero(&data, sizeof data);
    return rc;
}

int lz_cmd_passwd(int argc, char **argv) { return lz_cli_main(&passwd_command, argc, argv, passwd_run); }
