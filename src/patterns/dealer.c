/* The asynchronous dealer: the client's request engine without envelopes,
 * retries or failover, speaking the Python LiberZMQ Dealer's frames
 * [request_id, payload]. Its one I/O thread runs the callbacks. */
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"
#include "liberzmq/dealer.h"
#include "patterns/client.h"

// The dealer is the engine itself; the wrapper type keeps the public API apart.
struct lz_dealer {
    lz_client_t *engine;
};

// default_identity makes "dealer-" and 16 hex digits, text as the Python
// LiberZMQ Dealer's own default ("dealer-" + 8): its Router decodes the
// routing id as UTF-8, and libzmq's own choice (0x00 and four binary bytes)
// fails that, so no request of a dealer left without one was answered.
static const char *default_identity(char out[24]) {
    memcpy(out, "dealer-", 7);
    lz__hex64(lz__random64(), out + 7);
    out[23] = '\0';
    return out;
}

lz_dealer_t *lz_dealer_new(lz_context_t *ctx, const char *endpoints, const char *identity) {
    if (identity && (!*identity || strlen(identity) > 255))
        return lz__fail_null(LZ_EINVAL, "lz_dealer_new: identity must be 1 to 255 bytes");
    char fallback[24];
    if (!identity) identity = default_identity(fallback);
    lz_dealer_t *dealer = calloc(1, sizeof *dealer);
    if (!dealer) return lz__fail_null(LZ_ENOMEM, "lz_dealer_new: out of memory");
    const lz_engine_options_t options = {.envelope = false, .resilient = false, .name = "dealer", .identity = identity};
    dealer->engine = lz__client_open(ctx, endpoints, &options);
    if (!dealer->engine) {
        free(dealer);
        return NULL;
    }
    return dealer;
}

void lz_dealer_destroy(lz_dealer_t **dealer_p) {
    if (!dealer_p || !*dealer_p) return;
    lz__client_destroy(&(*dealer_p)->engine, "lz_dealer_destroy");
    if ((*dealer_p)->engine) return; // refused: called from its own callback
    free(*dealer_p);
    *dealer_p = NULL;
}

lz_node_t *lz_dealer_node(lz_dealer_t *dealer) { return dealer ? lz_client_node(dealer->engine) : NULL; }

static void ignore_reply(int status, const lz_value_t *reply, void *arg) {}

int lz_dealer_send(lz_dealer_t *dealer, const lz_value_t *value, int timeout_ms, lz_dealer_callback_fn callback,
                   void *arg, char *request_id_out) {
    if (!dealer) return lz__fail(LZ_EINVAL, "lz_dealer_send: dealer is NULL");
    return lz__client_call(dealer->engine, NULL, value, timeout_ms, callback ? callback : ignore_reply, arg, NULL,
                           request_id_out);
}

int lz_dealer_request(lz_dealer_t *dealer, const lz_value_t *value, lz_value_t **reply, int timeout_ms) {
    if (reply) *reply = NULL;
    if (!dealer) return lz__fail(LZ_EINVAL, "lz_dealer_request: dealer is NULL");
    return lz__client_call(dealer->engine, NULL, value, timeout_ms, NULL, NULL, reply, NULL);
}
