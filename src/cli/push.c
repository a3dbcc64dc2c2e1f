/* lz push: send standard input as tasks, one per line, to pullers
 * (round-robin). Lines are JSON values (or strings), or bytes with --raw. */

#include "cli/cli.h"
#include "cli/options.h"

static const lz_cli_command_t push_command = {
    .name = "push",
    .usage = "lz push --bind|--connect URL [--type T] [--raw] [--format NAME] [--settle MS] [--schema FILE]",
    .help =
        "Send standard input as tasks, one per line, spread over the pullers.\n"
        "A line that parses as JSON is the task's data as that value, any other\n"
        "line a JSON string. Each task is the envelope {\"type\", \"data\",\n"
        "\"priority\", \"timestamp\", \"task_id\"}; with --raw (or --format raw) the\n"
        "line's bytes are sent alone, as plain ZeroMQ does. Exits 0 at end of\n"
        "input once every task has left (zmq.linger is raised to 2000 ms unless\n"
        "configured), 3 when the linger ran out first with tasks still queued\n"
        "(dropped); exit 3 too if no puller takes a task within zmq.send_timeout.\n"
        "Tasks go only to connections that are up (zmq.immediate is on unless\n"
        "configured), so a --connect to where no puller listens is exit 3 too.\n"
        "\nOptions:\n"
        "  --bind URL        bind to URL (repeatable)\n"
        "  --connect URL     connect to URL (repeatable)\n"
        "  --type T          task type (default \"default\")\n"
        "  --raw             send each line's bytes untouched\n"
        "  --format NAME     json, msgpack or raw (default serialization.default)\n"
        "  --settle MS       wait before the first task, so every puller has\n"
        "                    joined the round-robin, and after the last (default 0)\n"
        "\nExamples:\n"
        "  seq 1 100 | lz push --connect tcp://localhost:5557 --type square\n"
        "  cat jobs.jsonl | lz push --bind 'tcp://*:5557' --settle 500\n",
    .options = LZ_OPT_ENDPOINTS | LZ_OPT_TYPE | LZ_OPT_RAW | LZ_OPT_FORMAT | LZ_OPT_SETTLE | LZ_OPT_CONFIG | LZ_OPT_SCHEMA,
    .needs_endpoints = true,
    .schema_help = "a line that does not match is reported and skipped (exit 1)",
    .timeout_unit_ms = 1,
    .flush_on_exit = true,
    .needs_peer = true,
    .exits = LZ_CLI_EXITS_TIMEOUT | LZ_CLI_EXITS_ENDPOINT,
};

typedef struct push_state {
    lz_push_t *push;
    const char *type;
} push_state_t;

static int push_send(void *arg, const lz_value_t *value, const void *bytes, size_t size) {
    push_state_t *state = arg;
    return value ? lz_push_send(state->push, state->type, value, 0)
                 : lz_push_send_bytes(state->push, bytes, size);
}

static int push_run(const lz_cli_opts_t *opts) {
    lz_context_t *ctx = NULL;
    push_state_t state = {NULL, opts->type};
    const lz_serializer_t *serializer = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0 && !(state.push = lz_push_new(ctx, opts->endpoints)))
        rc = lz_cli_fail_node(opts);
    if (rc == 0) rc = lz_cli_node_setup(opts, ctx, lz_push_node(state.push), &serializer);
    if (rc == 0) {
        bool raw = opts->raw || (lz_serializer_flags(serializer) & LZ_SERIALIZER_OPAQUE);
        rc = lz_cli_pump_lines(opts, stdin, raw, push_send, &state);
    }
    lz_cli_flush_t flush = lz_cli_flush_start(state.push ? lz_push_node(state.push) : NULL);
    lz_push_destroy(&state.push);
    rc = lz_cli_flush_check(&flush, rc); // before the context's teardown, which has slow parts of its own
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_push(int argc, char **argv) {
    return lz_cli_main(&push_command, argc, argv, push_run);
}
