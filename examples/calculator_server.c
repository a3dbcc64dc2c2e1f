/* A calculator service: actions add, subtract, multiply and divide on
 * {"a": x, "b": y}; dividing by zero is an error reply, not a crash.
 * Usage: calculator_server [endpoint, default tcp://0.0.0.0:5555] [seconds,
 * default 0: until Ctrl-C]. */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "liberzmq.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig) { stop = 1; }

// operands reads {"a", "b"}, or the Python LiberZMQ's call("add", a, b),
// whose args tuple the json codec reads back as the array [a, b].
static int operands(const lz_message_t *request, double *a, double *b) {
    const lz_value_t *data = lz_message_value(request), *args = lz_value_get(data, "args");
    const lz_value_t *x = args ? lz_value_at(args, 0) : lz_value_get(data, "a");
    const lz_value_t *y = args ? lz_value_at(args, 1) : lz_value_get(data, "b");
    lz_value_type_t tx = lz_value_type(x), ty = lz_value_type(y);
    if ((tx != LZ_VALUE_INT && tx != LZ_VALUE_DOUBLE) || (ty != LZ_VALUE_INT && ty != LZ_VALUE_DOUBLE))
        return LZ_EVALIDATION;
    *a = lz_value_get_double(x);
    *b = lz_value_get_double(y);
    return 0;
}

// calculate is the one handler; arg says which operation.
static int calculate(const lz_message_t *request, lz_value_t **reply, void *arg) {
    char op = *(const char *)arg;
    double a, b;
    if (operands(request, &a, &b) != 0) {
        *reply = lz_value_string("expected numbers {\"a\": x, \"b\": y}");
        return LZ_EVALIDATION;
    }
    if (op == '/' && b == 0) {
        *reply = lz_value_string("division by zero");
        return LZ_EVALIDATION;
    }
    double r = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
    *reply = r == floor(r) && fabs(r) < 9e15 ? lz_value_int((int64_t)r) : lz_value_double(r);
    return 0;
}

int main(int argc, char **argv) {
    const char *endpoint = argc > 1 && *argv[1] ? argv[1] : "tcp://0.0.0.0:5555";
    long seconds = argc > 2 ? arg_integer("calculator_server", "seconds", argv[2], 0, INT_MAX) : 0;
    lz_context_t *ctx = lz_context_new(NULL);
    lz_server_t *server = ctx ? lz_server_new(ctx, endpoint) : NULL;
    if (!server) {
        fprintf(stderr, "calculator_server: %s\n", lz_last_error());
        lz_context_destroy(&ctx);
        return 1;
    }
    lz_server_on(server, "add", calculate, "+");
    lz_server_on(server, "subtract", calculate, "-");
    lz_server_on(server, "multiply", calculate, "*");
    lz_server_on(server, "divide", calculate, "/");
    lz_server_start(server);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("calculator serving on %s (Ctrl-C to stop)\n", lz_node_endpoint(lz_server_node(server)));
    fflush(stdout);
    for (long tenths = 0; !stop && (seconds == 0 || tenths / 10 < seconds); tenths++) usleep(100000);
    lz_server_destroy(&server);
    lz_context_destroy(&ctx);
    return 0;
}
