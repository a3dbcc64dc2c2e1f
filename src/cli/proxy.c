/* lz proxy: run a forwarder (XSUB/XPUB, joins publishers to subscribers) or
 * a queue (ROUTER/DEALER, joins clients to servers) until interrupted,
 * optionally copying all traffic to a capture endpoint. */
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "liberzmq/proxy.h"

static const lz_cli_command_t proxy_command = {
    .name = "proxy",
    .usage = "lz proxy forwarder|queue --frontend URL --backend URL [--capture URL]",
    .help =
        "Run a proxy until interrupted (SIGINT/SIGTERM/SIGHUP: exit 0).\n"
        "  forwarder  publishers connect to the frontend (XSUB), subscribers to\n"
        "             the backend (XPUB); subscriptions travel upstream\n"
        "  queue      clients connect to the frontend (ROUTER), servers to the\n"
        "             backend (DEALER); requests are spread over the servers\n"
        "Every socket binds unless its URL starts with '>' (connect); '@' binds.\n"
        "\nOptions:\n"
        "  --frontend URL    the frontend endpoint\n"
        "  --backend URL     the backend endpoint\n"
        "  --capture URL     also publish every message passing either way there\n"
        "\nExamples:\n"
        "  lz proxy forwarder --frontend 'tcp://*:5559' --backend 'tcp://*:5560'\n"
        "  lz proxy queue --frontend 'tcp://*:5555' --backend 'tcp://*:5556' \\\n"
        "           --capture ipc:///tmp/queue-tap\n",
    .options = LZ_OPT_FRONTEND | LZ_OPT_BACKEND | LZ_OPT_CAPTURE | LZ_OPT_CONFIG,
    .watches_config = true,
    .min_args = 1,
    .max_args = 1,
    .timeout_unit_ms = 1,
    .exits = LZ_CLI_EXITS_ENDPOINT,
};

static int proxy_kind(const char *name) {
    if (strcmp(name, "forwarder") == 0) return LZ_PROXY_FORWARDER;
    if (strcmp(name, "queue") == 0) return LZ_PROXY_QUEUE;
    return -1;
}

// report_traffic says on stderr what the proxy moved, as it stops.
static void report_traffic(lz_proxy_t *proxy) {
    lz_proxy_stats_t s;
    if (lz_proxy_statistics(proxy, &s) != LZ_OK) {
        lz_cli_errorf("stopping; traffic unknown: %s", lz_last_error());
        return;
    }
    typedef unsigned long long ull;
    lz_cli_errorf("stopping: the frontend received %llu message(s) (%llu B) and sent %llu (%llu B); "
                  "the backend received %llu (%llu B) and sent %llu (%llu B)",
                  (ull)s.frontend_messages_received, (ull)s.frontend_bytes_received, (ull)s.frontend_messages_sent,
                  (ull)s.frontend_bytes_sent, (ull)s.backend_messages_received, (ull)s.backend_bytes_received,
                  (ull)s.backend_messages_sent, (ull)s.backend_bytes_sent);
}

static int proxy_serve(const lz_cli_opts_t *opts, lz_context_t *ctx, const sigset_t *stop) {
    lz_proxy_t *proxy = lz_proxy_new(ctx, (lz_proxy_kind_t)proxy_kind(opts->args[0]), opts->frontend,
                                     opts->backend, opts->capture);
    if (!proxy) return lz_cli_fail_node(opts);
    lz_cli_say_bound(lz_proxy_frontend(proxy), opts->frontend, " (frontend)");
    lz_cli_say_bound(lz_proxy_backend(proxy), opts->backend, " (backend)");
    if (opts->capture) lz_cli_say_bound(lz_proxy_capture(proxy), opts->capture, " (capture)");
    int err = lz_proxy_start(proxy);
    int rc = err ? lz_cli_fail(opts, err, "proxy") : 0;
    if (rc == 0) {
        while (sigwaitinfo(stop, NULL) < 0) {
        }
        report_traffic(proxy);
        lz_proxy_stop(proxy);
    }
    lz_proxy_destroy(&proxy);
    return rc;
}

static int proxy_run(const lz_cli_opts_t *opts) {
    if (proxy_kind(opts->args[0]) < 0)
        return lz_cli_usage_error(opts->cmd, "unknown proxy kind '%s' (forwarder or queue)", opts->args[0]);
    if (!opts->frontend || !opts->backend) return lz_cli_usage_error(opts->cmd, "give --frontend and --backend");
    sigset_t stop;
    lz_cli_block_stop_signals(&stop);
    lz_context_t *ctx = NULL;
    int rc = lz_cli_open(opts, &ctx);
    if (rc == 0) rc = proxy_serve(opts, ctx, &stop);
    lz_context_destroy(&ctx);
    return rc;
}

int lz_cmd_proxy(int argc, char **argv) {
    return lz_cli_main(&proxy_command, argc, argv, proxy_run);
}
