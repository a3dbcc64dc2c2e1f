/* lz pub: publish standard input, one message per line, on a topic.
 * Lines are JSON values (or strings), or raw bytes with --raw. */
#include "cli/cli.h"
#include "cli/options.h"

static const lz_cli_command_t pub_command = {
    .name = "pub",
    .usage = "lz pub --bind|--connect URL [--topic T] [--raw] [--format NAME] [--settle MS] [--schema FILE]",
    .help =
        "Publish standard input, one message per line, as [topic, payload].\n"
        "A line that parses as JSON is sent as that value, any other line as a\n"
        "JSON string. Waits --settle ms first so subscribers can join (a PUB drops\n"
        "messages for peers not yet connected), and again after the last line so\n"
        "slow subscribers take what is queued; exits 0 at end of input once every\n"
        "message has left (zmq.linger is raised to 2000 ms unless configured), 3\n"
        "when the linger ran out first with messages still queued (dropped).\n"
        "\nOptions:\n"
        "  --bind URL        bind to URL (repeatable)\n"
        "  --connect URL     connect to URL (repeatable)\n"
        "  --topic T         topic of every message (default \"\")\n"
        "  --raw             send each line's bytes untouched\n"
        "  --format NAME     json, msgpack or raw (default serialization.default;\n"
        "                    raw implies --raw)\n"
        "  --settle MS       wait before the first message and after the last\n"
        "                    (default 200)\n"
        "\nExamples:\n"
        "  echo '{\"price\": 42}' | lz pub --bind 'tcp://*:5556' --topic prices\n"
        "  tail -f app.log | lz pub --connect tcp://bus:5556 --topic logs --raw\n",
    .options = LZ_OPT_ENDPOINTS | LZ_OPT_TOPIC | LZ_OPT_RAW | LZ_OPT_FORMAT | LZ_OPT_SETTLE | LZ_OPT_CONFIG | LZ_OPT_SCHEMA,
    .needs_endpoints = true,
    .schema_help = "a line that does not match is reported and skipped (exit 1)",
    .timeout_unit_ms = 1,
    .default_settle_ms = 200,
    .flush_on_exit = true,
    .exits = LZ_CLI_EXITS_TIMEOUT | LZ_CLI_EXITS_ENDPOINT,
};

typedef struct pub_state {
    lz_pub_t *pub;
    const char *topic;
} pub_state_t;

static int pub_send(void *arg, const lz_value_t *value, const void *bytes, size_t size) {
    pub_state_t *state = arg;
    return value ? lz_pub_publish(state->pub, state->topic, value)
                 : lz_pub_publish_bytes(state->pub, state->topic, bytes, size);
}

static int pub_run(const lz_cli_opts_t *opts) {
    if (opts->topic_count > 1) return lz_cli_usage_error(opts->cmd, "give --topic once");
    lz_context_t *ctx = NULL;
    pub_state_t state = {NULL, opts->topic_count ? opts->topics[0] : ""};
    const lz_serializer_t *serializer = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0 && !(state.pub = lz_pub_new(ctx, opts->endpoints)))
        rc = lz_cli_fail_node(opts);
    if (rc == 0) rc = lz_cli_node_setup(opts, ctx, lz_pub_node(state.pub), &serializer);
    if (rc == 0) {
        bool raw = opts->raw || (lz_serializer_flags(serializer) & LZ_SERIALIZER_OPAQUE);
        rc = lz_cli_pump_lines(opts, stdin, raw, pub_send, &state);
    }
    lz_cli_flush_t flush = lz_cli_flush_start(state.pub ? lz_pub_node(state.pub) : NULL);
    lz_pub_destroy(&state.pub);
    rc = lz_cli_flush_check(&flush, rc); // before the context's teardown, which has slow parts of its own
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_pub(int argc, char **argv) {
    return lz_cli_main(&pub_command, argc, argv, pub_run);
}
