/* lz sub: subscribe and print each message as one JSON line,
 * {"topic": ..., "data": ...}, whether it came from liberzmq or plain ZeroMQ. */
#include "cli/cli.h"
#include "cli/options.h"

static const lz_cli_command_t sub_command = {
    .name = "sub",
    .usage = "lz sub --bind|--connect URL [--topic T]... [--count N] [--timeout S] [--raw] [--format NAME] [--schema FILE]",
    .help =
        "Subscribe to topic prefixes (default: everything) and print each message\n"
        "as one JSON line: {\"topic\": \"...\", \"data\": <decoded value>}. A payload\n"
        "that does not decode with the format is shown as a base64 string with\n"
        "\"encoding\": \"base64\" (with --format raw, UTF-8 text is shown as a string);\n"
        "so is one whose value JSON cannot hold (a msgpack NaN or infinity).\n"
        "Plain ZeroMQ publishers ([topic, payload] frames) print the same way; a\n"
        "one-frame message (the topic starts the frame, as in the ZeroMQ guide's\n"
        "weather server) prints with \"topic\": null and the whole frame as data;\n"
        "a topic that is not UTF-8 is shown in base64 with \"topic_encoding\":\n"
        "\"base64\". SIGINT, SIGTERM or SIGHUP stops it: exit 0.\n"
        "\nOptions:\n"
        "  --bind URL        bind to URL (repeatable)\n"
        "  --connect URL     connect to URL (repeatable)\n"
        "  --topic T         subscribe to the prefix T (repeatable)\n"
        "  --count N         exit 0 after N messages\n"
        "  --timeout S       exit 3 if nothing arrives for S seconds (fractions allowed)\n"
        "  --raw             show payloads undecoded, as --format raw\n"
        "  --format NAME     json, msgpack or raw (default serialization.default)\n"
        "\nExamples:\n"
        "  lz sub --connect tcp://localhost:5556 --topic prices\n"
        "  lz sub --bind ipc:///tmp/bus --count 1 --timeout 5 | jq .data\n",
    .options =
        LZ_OPT_ENDPOINTS | LZ_OPT_TOPIC | LZ_OPT_COUNT | LZ_OPT_TIMEOUT | LZ_OPT_RAW | LZ_OPT_FORMAT | LZ_OPT_CONFIG | LZ_OPT_SCHEMA,
    .watches_config = true,
    .needs_endpoints = true,
    .schema_help = "a message that does not match is reported and dropped",
    .reports_drops = true,
    .timeout_unit_ms = 1000,
    .exits = LZ_CLI_EXITS_TIMEOUT | LZ_CLI_EXITS_ENDPOINT,
};

typedef struct sub_state {
    lz_sub_t *sub;
    bool opaque; // --raw or --format raw: payloads shown undecoded
} sub_state_t;

static lz_message_t *sub_recv(void *arg, int timeout_ms) {
    return lz_sub_recv(((sub_state_t *)arg)->sub, timeout_ms);
}

// sub_show prints a message as the node decoded it: with the tolerant
// codec, a payload that does not decode is a bytes value, shown as base64.
static int sub_show(void *arg, const lz_message_t *msg) {
    const sub_state_t *state = arg;
    size_t size = 0;
    const void *payload = lz_message_payload(msg, &size);
    size_t topic_size = 0;
    const char *topic = lz_message_has_topic(msg) ? lz_message_topic_bytes(msg, &topic_size) : NULL;
    const lz_value_t *value = state->opaque ? NULL : lz_message_value(msg);
    return lz_cli_print_record("topic", topic, topic_size, value, payload, size, state->opaque);
}

static int sub_subscribe(const lz_cli_opts_t *opts, lz_sub_t *sub) {
    int err = opts->topic_count ? 0 : lz_sub_subscribe(sub, "");
    for (size_t i = 0; i < opts->topic_count && !err; i++) err = lz_sub_subscribe(sub, opts->topics[i]);
    return err ? lz_cli_fail(opts, err, "subscribe") : 0;
}

static int sub_run(const lz_cli_opts_t *opts) {
    sigset_t stop; // they end the receive loop: blocked before lz_cli_open makes threads
    lz_cli_block_stop_signals(&stop);
    lz_context_t *ctx = NULL;
    sub_state_t state = {NULL, false};
    const lz_serializer_t *serializer = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0 && !(state.sub = lz_sub_new(ctx, opts->endpoints)))
        rc = lz_cli_fail_node(opts);
    if (rc == 0) rc = lz_cli_node_setup(opts, ctx, lz_sub_node(state.sub), &serializer);
    if (rc == 0) state.opaque = lz_serializer_flags(serializer) & LZ_SERIALIZER_OPAQUE;
    if (rc == 0 && !state.opaque) rc = lz_cli_use_tolerant_codec(opts, ctx, lz_sub_node(state.sub), serializer);
    if (rc == 0) lz_sub_accept(state.sub, LZ_SUB_SINGLE_FRAME | LZ_SUB_BINARY_TOPIC); // any publisher; cannot fail
    if (rc == 0) rc = sub_subscribe(opts, state.sub);
    if (rc == 0) rc = lz_cli_recv_loop(opts, lz_sub_node(state.sub), &stop, sub_recv, sub_show, &state);
    lz_sub_destroy(&state.sub);
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_sub(int argc, char **argv) {
    return lz_cli_main(&sub_command, argc, argv, sub_run);
}
