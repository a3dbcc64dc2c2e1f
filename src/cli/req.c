/* lz req: send one request (ACTION with optional JSON data) and print the
 * reply as JSON; timeouts and error replies have their own exit codes. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "serial/utf8.h"

static const lz_cli_command_t req_command = {
    .name = "req",
    .usage = "lz req --connect URL [--connect URL]... ACTION [JSON] [--timeout MS] [--retries N] "
             "[--strategy S] [--format NAME] [--schema FILE]",
    .help =
        "Send the request ACTION with JSON data (default null; text that is not\n"
        "JSON is sent as a string; - reads it from standard input, whole) and\n"
        "print the reply as one JSON line. Several endpoints make a\n"
        "multi-endpoint client that fails over between servers.\n"
        "On a timeout or an error reply the message goes to standard error.\n"
        "\nOptions:\n"
        "  --connect URL     connect to URL (repeatable)\n"
        "  --bind URL        bind to URL instead (repeatable)\n"
        "  --timeout MS      give up after MS ms in all, retries included\n"
        "                    (default zmq.request_timeout)\n"
        "  --retries N       send again up to N times after a timeout\n"
        "                    (default zmq.request_retries)\n"
        "  --strategy S      round-robin, random or failover: how several\n"
        "                    endpoints are chosen (default round-robin)\n"
        "  --format NAME     json or msgpack (default serialization.default)\n"
        "\nExamples:\n"
        "  lz req --connect tcp://localhost:5555 ping\n"
        "  lz req --connect tcp://a:5555 --connect tcp://b:5555 --timeout 2000 \\\n"
        "         get_user '{\"id\": 42}'\n"
        "  jq -c .order order.json | lz req --connect tcp://localhost:5555 place -\n",
    .options = LZ_OPT_ENDPOINTS | LZ_OPT_TIMEOUT | LZ_OPT_RETRIES | LZ_OPT_STRATEGY | LZ_OPT_FORMAT |
               LZ_OPT_CONFIG | LZ_OPT_SCHEMA,
    .min_args = 1,
    .max_args = 2,
    .needs_endpoints = true,
    .schema_help = "request data that does not match is refused before sending (exit 1)",
    .timeout_unit_ms = 1,
    .needs_envelope = true,
    .exits = LZ_CLI_EXITS_TIMEOUT | LZ_CLI_EXITS_REMOTE | LZ_CLI_EXITS_ENDPOINT,
};

static const struct {
    const char *name;
    lz_strategy_t strategy;
} req_strategies[] = {
    {"round-robin", LZ_STRATEGY_ROUND_ROBIN},
    {"random", LZ_STRATEGY_RANDOM},
    {"failover", LZ_STRATEGY_FAILOVER},
};

// req_strategy finds --strategy; returns -1 for an unknown name.
static int req_strategy(const char *name) {
    for (size_t i = 0; i < sizeof req_strategies / sizeof req_strategies[0]; i++)
        if (strcmp(req_strategies[i].name, name) == 0) return (int)req_strategies[i].strategy;
    return -1;
}

static int req_configure(const lz_cli_opts_t *opts, lz_client_t *client) {
    int err = 0;
    if (opts->retries >= 0) err = lz_client_set_retries(client, opts->retries);
    if (!err && opts->strategy) err = lz_client_set_strategy(client, (lz_strategy_t)req_strategy(opts->strategy));
    return err ? lz_cli_fail(opts, err, "client") : 0;
}

static int req_timeout(const lz_cli_opts_t *opts, lz_client_t *client) {
    char urls[1024];
    lz_cli_errorf("timeout: no reply from %s%s", lz_cli_endpoint_urls(opts, urls, sizeof urls),
                  lz_cli_unconnected_note(lz_client_node(client)));
    return LZ_EXIT_TIMEOUT;
}

static int req_report(const lz_cli_opts_t *opts, lz_client_t *client, int err, const lz_value_t *reply) {
    if (err == 0) {
        int printed = lz_cli_print_value(reply); // LZ_ENOMEM alone is not reported yet
        return printed == LZ_ENOMEM ? lz_cli_fail(opts, printed, "reply") : printed ? LZ_EXIT_FAILURE : LZ_EXIT_OK;
    }
    if (err == LZ_EREMOTE) {
        lz_cli_errorf("error reply: %s", lz_value_find_string(reply, "message", "(no message)"));
        return LZ_EXIT_REMOTE;
    }
    if (err == LZ_ETIMEOUT) return req_timeout(opts, client);
    return lz_cli_fail(opts, err, "request");
}

// request_data makes *data: the JSON argument as a value, null when
// absent, standard input's for "-". Returns an exit code.
static int request_data(const lz_cli_opts_t *opts, lz_value_t **data) {
    const char *text = opts->arg_count > 1 ? opts->args[1] : "null";
    lz_buffer_t *in = NULL;
    int err = 0;
    if (strcmp(text, "-") != 0)
        *data = lz_cli_value_from_text(text, strlen(text));
    else if ((err = (in = lz_buffer_new()) ? lz_cli_read_all(stdin, "standard input", LZ_CLI_LINE_MAX, in)
                                           : LZ_ENOMEM) == 0)
        *data = lz_cli_value_from_output(lz_buffer_data(in), lz_buffer_size(in));
    lz_buffer_destroy(&in);
    if (err == LZ_EIO) return LZ_EXIT_FAILURE; // reported
    return *data ? LZ_EXIT_OK : lz_cli_fail(opts, LZ_ENOMEM, "request");
}

static int req_send(const lz_cli_opts_t *opts, lz_client_t *client) {
    lz_value_t *data = NULL, *reply = NULL;
    int rc = request_data(opts, &data);
    if (rc != LZ_EXIT_OK) return rc;
    int err = lz_client_request(client, opts->args[0], data, &reply, opts->timeout_ms);
    rc = req_report(opts, client, err, reply);
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    return rc;
}

static int req_run(const lz_cli_opts_t *opts) {
    if (opts->strategy && req_strategy(opts->strategy) < 0)
        return lz_cli_usage_error(opts->cmd, "unknown strategy '%s' (round-robin, random or failover)",
                                  opts->strategy);
    if (!*opts->args[0] || !lz__utf8_valid(opts->args[0], strlen(opts->args[0])))
        return lz_cli_usage_error(opts->cmd, "ACTION must be non-empty UTF-8 text");
    lz_context_t *ctx = NULL;
    lz_client_t *client = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0 && !(client = lz_client_new(ctx, opts->endpoints)))
        rc = lz_cli_fail_node(opts);
    if (rc == 0) rc = lz_cli_node_setup(opts, ctx, lz_client_node(client), NULL);
    if (rc == 0) rc = req_configure(opts, client);
    if (rc == 0) rc = req_send(opts, client);
    lz_client_destroy(&client);
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_req(int argc, char **argv) {
    return lz_cli_main(&req_command, argc, argv, req_run);
}
