/* Plumbing shared by every lz subcommand: the one option parser, the
 * context/endpoint/serializer setup, stdin line pumping, JSON line output
 * and the mapping from library errors to documented exit codes. */
#ifndef LZ_CLI_OPTIONS_H
#define LZ_CLI_OPTIONS_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "liberzmq.h"

// Exit codes, documented in docs/lz.md and every --help.
enum {
    LZ_EXIT_OK = 0,
    LZ_EXIT_FAILURE = 1,    // runtime failure: config, I/O, bad data, library error
    LZ_EXIT_USAGE = 2,      // bad arguments
    LZ_EXIT_TIMEOUT = 3,    // nothing arrived / could not send in time
    LZ_EXIT_REMOTE = 4,     // the server answered with an error reply
    LZ_EXIT_CONNECTION = 5, // bind or connect failed
    LZ_EXIT_LOCK_LOST = 6,  // lz lock: the lease ended while the command ran
    LZ_EXIT_NOMEM = 7       // out of memory (LZ_ENOMEM), whatever the command was doing
};

// lz_cli_parse returns this when the command should go on running.
#define LZ_CLI_CONTINUE (-1)

// Option bits: which options a subcommand accepts.
enum {
    LZ_OPT_BIND = 1u << 0,
    LZ_OPT_CONNECT = 1u << 1,
    LZ_OPT_TOPIC = 1u << 2,
    LZ_OPT_TYPE = 1u << 3,
    LZ_OPT_RAW = 1u << 4,
    LZ_OPT_FORMAT = 1u << 5,
    LZ_OPT_COUNT = 1u << 6,
    LZ_OPT_TIMEOUT = 1u << 7,
    LZ_OPT_RETRIES = 1u << 8,
    LZ_OPT_STRATEGY = 1u << 9,
    LZ_OPT_SETTLE = 1u << 10,
    LZ_OPT_ECHO = 1u << 11,
    LZ_OPT_EXEC = 1u << 12,
    LZ_OPT_FRONTEND = 1u << 13,
    LZ_OPT_BACKEND = 1u << 14,
    LZ_OPT_CAPTURE = 1u << 15,
    LZ_OPT_CONFIG = 1u << 16,
    LZ_OPT_SCHEMA = 1u << 17,
    LZ_OPT_PLUGIN = 1u << 18, // accepted wherever LZ_OPT_CONFIG is, unless makes_no_context (lz_cli_parse)
    LZ_OPT_WAIT = 1u << 19,
    LZ_OPT_TTL = 1u << 20,
    LZ_OPT_LOCKS = 1u << 21,
    LZ_OPT_ENDPOINTS = LZ_OPT_BIND | LZ_OPT_CONNECT
};

// The exit codes a command may give besides 0, 1, 2 and 7 (LZ_EXIT_*), for
// its --help.
enum {
    LZ_CLI_EXITS_TIMEOUT = 1u << 0,  // 3
    LZ_CLI_EXITS_REMOTE = 1u << 1,   // 4
    LZ_CLI_EXITS_ENDPOINT = 1u << 2, // 5
    LZ_CLI_EXITS_LOCK = 1u << 3,     // 6, and the command's own status (lz lock)
};

// What a subcommand is: its options, arguments and help.
typedef struct lz_cli_command {
    const char *name;       // "sub"
    const char *usage;      // one line, after "usage: "
    const char *help;       // the rest of --help: options, examples
    unsigned options;       // LZ_OPT_* bits accepted
    int min_args, max_args; // positional arguments
    int command_arg;        // > 0: from this positional argument on (0-based), argv is a command line of
                            // its own, options and --help included (lz lock NAME CMD [ARG]...: 1)
    bool needs_endpoints;   // at least one --bind or --connect
    int timeout_unit_ms;    // --timeout is in seconds (1000) or ms (1)
    int default_settle_ms;  // --settle default
    bool flush_on_exit;     // a stream sender: linger so queued messages leave
    bool needs_peer;        // a send must reach a live peer: zmq.immediate
    bool needs_envelope;    // requests carry an action: no opaque format
    bool reports_drops;     // a receiver: the library's warnings (drops) become lz lines
    bool watches_config;    // long-running: follows its configuration file (lz_context_watch)
    bool makes_no_context;  // reads the configuration only (lz config): --plugin, which loads into a
                            // context, is an unknown option
    const char *schema_help; // what --schema does for this command (with LZ_OPT_SCHEMA)
    unsigned exits;         // LZ_CLI_EXITS_* bits
} lz_cli_command_t;

// lz_cli_print_exit_codes prints the "Exit codes: ..." lines of a --help:
// 0, 1 and 2, then those in exits (LZ_CLI_EXITS_* bits), then 7.
void lz_cli_print_exit_codes(FILE *out, unsigned exits);

// The parsed command line. Strings point into argv unless noted.
typedef struct lz_cli_opts {
    const lz_cli_command_t *cmd;
    char *endpoints;        // "@url,>url" for the constructors; owned
    size_t endpoint_count;
    const char **topics;    // owned array
    size_t topic_count;
    const char *type, *format, *config, *strategy, *exec;
    const char *frontend, *backend, *capture;
    const char *schema;     // --schema FILE
    const char **plugins;   // --plugin PATH, in order; owned array
    size_t plugin_count;
    bool raw, echo, locks;
    int wait_ms;            // --wait: -1 none
    int ttl_ms;             // --ttl: 0 none
    long count;             // 0: no limit
    int timeout_ms;         // -1: none / library default
    int retries;            // -1: library default
    int settle_ms;
    char **args;            // positional arguments
    int arg_count;
} lz_cli_opts_t;

// lz_cli_parse reads argv (argv[0] is the subcommand) into *opts. Returns
// LZ_CLI_CONTINUE, or the exit code to return at once: 0 after --help,
// LZ_EXIT_USAGE after printing a one-line error with the usage. *opts is
// always initialised; free it with lz_cli_opts_free.
int lz_cli_parse(const lz_cli_command_t *cmd, int argc, char **argv, lz_cli_opts_t *opts);
void lz_cli_opts_free(lz_cli_opts_t *opts);

// lz_cli_main is every subcommand's entry: parse argv for cmd, call run
// unless --help or a usage error ends it, free the options, return the
// exit code.
typedef int (*lz_cli_run_fn)(const lz_cli_opts_t *opts);
int lz_cli_main(const lz_cli_command_t *cmd, int argc, char **argv, lz_cli_run_fn run);

// lz_cli_usage_error prints "lz CMD: <message> (usage: ...)" on one line
// and returns LZ_EXIT_USAGE.
int lz_cli_usage_error(const lz_cli_command_t *cmd, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

// lz_cli_fail prints "lz CMD: <what>: <library detail>" and returns the
// exit code for err (lz_cli_exit_code). Every failure for want of memory
// goes through here: its line says "out of memory" (with the detail when
// that says it otherwise: a thread that could not start) and it exits 7.
int lz_cli_fail(const lz_cli_opts_t *opts, int err, const char *what);
// lz_cli_endpoint_urls writes the endpoint URLs, comma separated and
// without their bind/connect markers, into buf (cut to size); returns buf.
const char *lz_cli_endpoint_urls(const lz_cli_opts_t *opts, char *buf, size_t size);
// lz_cli_fail_node reports a node constructor's failure (the thread's last
// error): its configuration, its endpoints, or an argument it refused
// (LZ_EINVAL: "bad argument: <detail>", exit 2).
int lz_cli_fail_node(const lz_cli_opts_t *opts);
// lz_cli_errorf prints "lz CMD: <message>" as one line on stderr (control
// characters, such as a newline in a peer's error text, become '?').
void lz_cli_errorf(const char *format, ...) __attribute__((format(printf, 1, 2)));
int lz_cli_exit_code(int err);

// lz_cli_load_config layers --config FILE (or $LIBERZMQ_CONFIG) and the
// LIBERZMQ_* environment onto config's defaults, then, as_tool, the
// defaults a command-line tool needs (options.c, tool_defaults). Returns 0
// or an exit code after printing why.
int lz_cli_load_config(const lz_cli_opts_t *opts, lz_config_t *config, bool as_tool);

// lz_cli_open builds the configuration (defaults < --config FILE or
// $LIBERZMQ_CONFIG < LIBERZMQ_* environment) and the context, which for a
// command that watches_config then reloads the file's live keys whenever
// it changes (docs/lz.md), and which loads the configuration's
// plugins.load, then each --plugin. Returns 0 or an exit code after
// printing why.
int lz_cli_open(const lz_cli_opts_t *opts, lz_context_t **ctx);

// lz_cli_node_setup applies --format to node (validating the name) and
// --schema (every message the node sends or receives must conform),
// stores the node's serializer in *serializer, and says where node was
// bound when libzmq chose the address (lz_cli_say_bound). Returns 0 or an
// exit code.
int lz_cli_node_setup(const lz_cli_opts_t *opts, lz_context_t *ctx, lz_node_t *node,
                      const lz_serializer_t **serializer);

// lz_cli_say_bound prints "lz CMD: bound URL<role>" on stderr, URL the
// address node bound, when endpoints (node's, "@url,>url"; an item
// without '@' or '>' binds) bind one whose address libzmq chooses: a tcp
// port * or 0, or ipc://*. role is appended ("" or " (frontend)"). libzmq
// tells the last address bound only: an earlier such bind gets a line
// saying so instead.
void lz_cli_say_bound(lz_node_t *node, const char *endpoints, const char *role);

// A sender for lz_cli_pump_lines: value, or when value is NULL the line's
// bytes untouched. Returns 0 or a negative lz_error_t.
typedef int (*lz_cli_send_fn)(void *arg, const lz_value_t *value, const void *bytes, size_t size);
// lz_cli_pump_lines sends each line of in (without its newline): as its
// JSON value, else as a JSON string; as bytes when raw. Waits --settle
// before the first line and after the last. Returns an exit code: a line
// that cannot be encoded, or is longer than LZ_CLI_LINE_MAX, is reported
// and skipped (exit 1 at the end); a failed send stops at once.
#define LZ_CLI_LINE_MAX ((size_t)64 << 20)
int lz_cli_pump_lines(const lz_cli_opts_t *opts, FILE *in, bool raw, lz_cli_send_fn send, void *arg);

// A stream sender's way out (pub, push). Destroying the node leaves what
// is still queued to libzmq, which keeps sending it for zmq.linger, then
// drops the rest without a word. libzmq 4.3 cannot say whether a queue is
// empty, so the time it takes to finish the socket tells: one that lasts
// the whole linger ran out of it. That time alone: the rest of the
// context's teardown (a flush of spans to an OTLP collector, up to 3 s)
// would tell nothing. libzmq closes a socket's ZMQ_FD (its mailbox) as it
// finishes the socket, so lz watches that descriptor in an epoll set of
// its own: closed (or its number reused), it is gone from the set.
typedef struct lz_cli_flush {
    int linger_ms;    // the node's ZMQ_LINGER; 0 (drop at once) or -1 (wait for ever): nothing to tell
    int64_t start_ms; // lz_cli_now_ms when the node was about to be destroyed
    int socket_fd;    // the socket's ZMQ_FD
    int watch;        // an epoll descriptor holding socket_fd; -1: nothing to tell
} lz_cli_flush_t;
// lz_cli_flush_start notes node's linger, its socket's descriptor and the
// time; call it right before destroying the node (NULL: it was never made;
// or no message was handed to libzmq: nothing to tell).
lz_cli_flush_t lz_cli_flush_start(lz_node_t *node);
// lz_cli_flush_check, once the node is destroyed and before its context
// is, waits until libzmq has finished the node's socket, at most until the
// linger has passed, and returns rc, unless the linger ran out: then it
// says so on one line and returns rc, or LZ_EXIT_TIMEOUT when rc is 0
// (messages were dropped: not a success). It closes flush's epoll
// descriptor.
int lz_cli_flush_check(const lz_cli_flush_t *flush, int rc);
// lz_cli_use_tolerant_codec makes node decode with inner, a frame inner
// cannot decode becoming a bytes value instead of a dropped message (a
// tool looking at traffic shows what it cannot read). Returns 0 or an exit
// code after printing why.
int lz_cli_use_tolerant_codec(const lz_cli_opts_t *opts, lz_context_t *ctx, lz_node_t *node,
                              const lz_serializer_t *inner);
// lz_cli_print_record prints {key: name, "data": ...} as one JSON line on
// stdout, as lz_cli_print_value writes. name is name_size bytes: a string
// when UTF-8, else base64 with "KEY_encoding": "base64"; NULL prints null.
// data is shown as lz_cli_json writes it (bytes in it tagged), at its full
// depth. data NULL means "undecoded": payload is shown as text when
// text_ok and valid UTF-8, else as base64 with "encoding": "base64"; so is
// a bytes data that is the payload itself (what the tolerant codec makes
// of a payload it cannot decode), and a decoded data without a JSON form
// (a msgpack NaN or infinity). Returns 0, LZ_ENOMEM (nothing printed, not
// reported), LZ_EIO (stdout is gone, reported) or LZ_ECLOSED (a stop
// signal came while stdout was blocked: stop printing).
int lz_cli_print_record(const char *key, const char *name, size_t name_size, const lz_value_t *data,
                        const void *payload, size_t size, bool text_ok);
// The receive side of a subcommand: recv waits up to timeout_ms (-1:
// forever) and returns an owned message or NULL with the error set; show
// prints one message (0, LZ_ESERIALIZATION: skipped, LZ_EIO or LZ_ENOMEM:
// stop, the latter reported by lz_cli_recv_loop).
typedef lz_message_t *(*lz_cli_recv_fn)(void *arg, int timeout_ms);
typedef int (*lz_cli_show_fn)(void *arg, const lz_message_t *msg);
// lz_cli_recv_loop shows messages until --count of them (0: no limit),
// until nothing arrives for --timeout (exit 3; the message says so when no
// peer of node was connected either), or until one of the stop signals
// (lz_cli_block_stop_signals) comes (exit 0; seen within 100 ms, even
// while standard output is blocked: show returned LZ_ECLOSED). Returns an
// exit code.
int lz_cli_recv_loop(const lz_cli_opts_t *opts, lz_node_t *node, const sigset_t *stop, lz_cli_recv_fn recv,
                     lz_cli_show_fn show, void *arg);
// lz_cli_unconnected_note returns " (no peer is connected)" when node has
// no connection up, else "": for a timeout message, which then tells a
// silent peer from one never reached (nothing listens, a name that does
// not resolve: libzmq retries both in silence).
const char *lz_cli_unconnected_note(const lz_node_t *node);
// lz_cli_json appends value's JSON to out as the json codec writes it on
// the wire: bytes as the Python LiberZMQ's {"__type__": "bytes", "value":
// HEX}, so they read apart from a string (lz_value_to_json writes base64).
// NULL is null. Returns 0, LZ_ESERIALIZATION (no JSON form: a NaN, deeper
// than 127 levels; out unchanged) or LZ_ENOMEM.
int lz_cli_json(const lz_value_t *value, lz_buffer_t *out);
// lz_cli_print_value prints value as one JSON line on stdout (lz_cli_json).
// 0, LZ_EIO or LZ_ESERIALIZATION (reported), LZ_ECLOSED (a stop signal
// came while stdout was blocked) or LZ_ENOMEM (not reported).
//
// Every line goes to stdout with write(2), not stdio: lz waits until stdout
// can take some, then writes at most PIPE_BUF bytes (whole lines that
// short, and a write never blocks on a pipe), so a stop signal, when the
// process blocked them (lz_cli_block_stop_signals), ends a wait on a
// stalled reader (a full pipe, a paused terminal) within 50 ms.
int lz_cli_print_value(const lz_value_t *value);

// lz_cli_read_all appends the rest of in to out, at most max bytes. what
// names the input in the one line that reports a failure. Returns 0,
// LZ_ENOMEM (not reported) or LZ_EIO (reported: a read error, or more than
// max bytes).
int lz_cli_read_all(FILE *in, const char *what, size_t max, lz_buffer_t *out);

// lz_cli_value_from_text: JSON text as its value, anything else as a
// string (or bytes when not UTF-8). NULL only when out of memory (the
// thread's last error says so).
lz_value_t *lz_cli_value_from_text(const char *text, size_t len);
// lz_cli_value_from_output: a program's output or a whole input read as
// lz_cli_value_from_text does, trailing whitespace dropped; nothing at all
// is null. NULL only when out of memory.
lz_value_t *lz_cli_value_from_output(const char *text, size_t len);

// lz_cli_note_ignored_signals records which of the stop signals (SIGINT,
// SIGTERM, SIGHUP) lz was started with ignored: nohup ignores SIGHUP, a
// shell without job control starts a background command with SIGINT
// ignored. Those stay ignored, by lz and by the commands it starts (lz
// lock's, lz rep --exec's). Call it first in main, before any disposition
// changes; not thread safe.
void lz_cli_note_ignored_signals(void);
// lz_cli_stop_signals stores in *stop the stop signals lz honours: SIGINT,
// SIGTERM and SIGHUP, but those it was started with ignored (possibly
// none). Thread safe once lz_cli_note_ignored_signals has run.
void lz_cli_stop_signals(sigset_t *stop);
// lz_cli_block_stop_signals blocks the stop signals (lz_cli_stop_signals)
// in the calling thread and stores them in *stop. Call it before any
// thread is made (before lz_cli_open), so all inherit the mask and a
// server's main loop takes the signals with sigtimedwait(stop) and stops
// cleanly. An ignored one is left out: blocked, it would be queued for
// sigtimedwait, ignored or not.
void lz_cli_block_stop_signals(sigset_t *stop);
// lz_cli_sleep_ms sleeps, restarting after signals.
void lz_cli_sleep_ms(int ms);
// lz_cli_now_ms: the monotonic clock in milliseconds, for deadlines.
int64_t lz_cli_now_ms(void);

#endif
