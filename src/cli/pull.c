/* lz pull: receive tasks and print each as one JSON line,
 * {"type": ..., "data": ...}. */
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"

static const lz_cli_command_t pull_command = {
    .name = "pull",
    .usage = "lz pull --bind|--connect URL [--count N] [--timeout S] [--raw] [--format NAME] [--schema FILE]",
    .help =
        "Receive tasks and print each as one JSON line: {\"type\": \"...\", \"data\": ...}.\n"
        "With --format raw (tasks from plain ZeroMQ pushers) each frame is the\n"
        "data, shown as a string when it is UTF-8 text, else as base64 with\n"
        "\"encoding\": \"base64\". A frame that does not decode with the format is\n"
        "shown, not dropped: type \"unknown\", the frame as base64 (as lz sub shows\n"
        "such a payload). A task whose data JSON cannot hold (a msgpack NaN or\n"
        "infinity) is shown with its whole frame as base64. SIGINT, SIGTERM or\n"
        "SIGHUP stops it: exit 0.\n"
        "\nOptions:\n"
        "  --bind URL        bind to URL (repeatable)\n"
        "  --connect URL     connect to URL (repeatable)\n"
        "  --count N         exit 0 after N tasks\n"
        "  --timeout S       exit 3 if nothing arrives for S seconds (fractions allowed)\n"
        "  --raw             show frames undecoded, as --format raw\n"
        "  --format NAME     json, msgpack or raw (default serialization.default)\n"
        "\nExamples:\n"
        "  lz pull --bind 'tcp://*:5557'\n"
        "  lz pull --connect tcp://localhost:5557 --count 10 --timeout 30\n",
    .options = LZ_OPT_ENDPOINTS | LZ_OPT_COUNT | LZ_OPT_TIMEOUT | LZ_OPT_RAW | LZ_OPT_FORMAT | LZ_OPT_CONFIG | LZ_OPT_SCHEMA,
    .watches_config = true,
    .needs_endpoints = true,
    .schema_help = "a task whose data does not match is reported and dropped",
    .reports_drops = true,
    .timeout_unit_ms = 1000,
    .exits = LZ_CLI_EXITS_TIMEOUT | LZ_CLI_EXITS_ENDPOINT,
};

typedef struct pull_state {
    lz_pull_t *pull;
    bool opaque; // raw frames: no envelope to decode
} pull_state_t;

static lz_message_t *pull_recv(void *arg, int timeout_ms) {
    return lz_pull_recv(((pull_state_t *)arg)->pull, timeout_ms);
}

static int pull_show(void *arg, const lz_message_t *msg) {
    const pull_state_t *state = arg;
    size_t size = 0;
    const void *payload = lz_message_payload(msg, &size);
    const char *type = lz_message_type(msg);
    return lz_cli_print_record("type", type, strlen(type), state->opaque ? NULL : lz_message_value(msg), payload,
                               size, true);
}

static int pull_run(const lz_cli_opts_t *opts) {
    sigset_t stop; // they end the receive loop: blocked before lz_cli_open makes threads
    lz_cli_block_stop_signals(&stop);
    lz_context_t *ctx = NULL;
    pull_state_t state = {NULL, false};
    const lz_serializer_t *serializer = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0 && !(state.pull = lz_pull_new(ctx, opts->endpoints)))
        rc = lz_cli_fail_node(opts);
    if (rc == 0) rc = lz_cli_node_setup(opts, ctx, lz_pull_node(state.pull), &serializer);
    if (rc == 0) state.opaque = lz_serializer_flags(serializer) & LZ_SERIALIZER_OPAQUE;
    if (rc == 0 && !state.opaque) rc = lz_cli_use_tolerant_codec(opts, ctx, lz_pull_node(state.pull), serializer);
    if (rc == 0) rc = lz_cli_recv_loop(opts, lz_pull_node(state.pull), &stop, pull_recv, pull_show, &state);
    lz_pull_destroy(&state.pull);
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_pull(int argc, char **argv) {
    return lz_cli_main(&pull_command, argc, argv, pull_run);
}
