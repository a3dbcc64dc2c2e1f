/* Internal: the request engine behind lz_client_t and lz_dealer_t. One I/O
 * thread owns the DEALER sockets; callers hand it encoded requests and
 * wait on them or get a callback. The client adds envelopes, retries,
 * rebuilds and failover; the dealer sends bare values and never retries. */
#ifndef LZ_PATTERNS_CLIENT_H
#define LZ_PATTERNS_CLIENT_H

#include <stdbool.h>

#include "liberzmq/reqrep.h"

typedef struct lz_engine_options {
    // true: [request_id, "", {"type": action, "data": ...}] with error
    // replies read as LZ_EREMOTE; false: [request_id, value] (Dealer).
    bool envelope;
    // true: one socket per endpoint, Lazy Pirate retries, rebuilds,
    // cooldown and ping probes; false: one socket, no retries (Dealer).
    bool resilient;
    const char *name;     // node name: "client", "dealer"
    const char *identity; // routing id set before connecting, or NULL
} lz_engine_options_t;

// lz__client_open makes a client with the given behaviour (lz_client_new
// is lz__client_open with the client's options).
lz_client_t *lz__client_open(lz_context_t *ctx, const char *endpoints, const lz_engine_options_t *options);

// lz__client_call submits one request. data is the envelope's "data" (or,
// without envelope, the whole payload; NULL: null). With callback it
// returns at once and callback runs exactly once; without it waits and
// stores the reply in *reply. request_id_out (37 bytes) gets the id if not NULL.
int lz__client_call(lz_client_t *client, const char *action, const lz_value_t *data, int timeout_ms,
                    lz_client_callback_fn callback, void *arg, lz_value_t **reply, char *request_id_out);

#endif
