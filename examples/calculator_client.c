/* The calculator's client: a few operations, and a division by zero that
 * comes back as an error reply (LZ_EREMOTE) with the server's message.
 * Usage: calculator_client [endpoint (default tcp://localhost:5555)]. */
#include <stdio.h>
#include <stdlib.h>

#include "liberzmq.h"

// ask prints the answer or the failure; returns the request's code.
static int ask(lz_client_t *client, const char *action, double a, double b) {
    lz_value_t *data = lz_value_object(), *reply = NULL;
    lz_value_object_set_double(data, "a", a);
    lz_value_object_set_double(data, "b", b);
    int rc = lz_client_request(client, action, data, &reply, -1); // -1: zmq.request_timeout, retries included
    if (rc == LZ_OK) {
        char *json = lz_value_to_json(reply);
        printf("%s(%g, %g) = %s\n", action, a, b, json ? json : "?");
        lz_value_destroy(&reply); // before free: json is separate
        free(json);
    } else {
        printf("%s(%g, %g) failed: %s\n", action, a, b, lz_last_error());
    }
    lz_value_destroy(&reply);
    lz_value_destroy(&data);
    return rc;
}

int main(int argc, char **argv) {
    lz_context_t *ctx = lz_context_new(NULL);
    lz_client_t *client = ctx ? lz_client_new(ctx, argc > 1 && *argv[1] ? argv[1] : "tcp://localhost:5555") : NULL;
    if (!client) {
        fprintf(stderr, "calculator_client: %s\n", lz_last_error());
        lz_context_destroy(&ctx);
        return 1;
    }
    lz_client_set_retries(client, 1);
    int rc = ask(client, "add", 2, 3);
    if (rc == LZ_OK) rc = ask(client, "subtract", 10, 4);
    if (rc == LZ_OK) rc = ask(client, "multiply", 6, 7);
    if (rc == LZ_OK) rc = ask(client, "divide", 1, 4);
    // Error replies, as the server answers them: LZ_EREMOTE is what they should give.
    if (rc == LZ_OK) rc = ask(client, "divide", 1, 0) == LZ_EREMOTE ? LZ_OK : LZ_EPROTOCOL;
    if (rc == LZ_OK) rc = ask(client, "modulo", 1, 2) == LZ_EREMOTE ? LZ_OK : LZ_EPROTOCOL;
    lz_client_destroy(&client);
    lz_context_destroy(&ctx);
    return rc == LZ_OK ? 0 : 1;
}
