/* Internal: the request engine behind lz_client_t and lz_dealer_t. One I/O
 * thread owns the DEALER sockets; callers hand it encoded requests and
 * wait on them or get a callback. The client adds envelopes, retries,
 * rebuilds and failover; the dealer sends bare values and never retries. */
#ifndef LZ_PATTERNS_CLIENT_H
#define LZ_PATTERNS_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

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
// NULL, "", or a list of only commas is LZ_EINVAL: a client's sockets are
// its I/O thread's, so none can be added later (lz_node_connect and
// lz_node_bind are LZ_ESTATE on its node), and with none every request
// would only time out.
lz_client_t *lz__client_open(lz_context_t *ctx, const char *endpoints, const lz_engine_options_t *options);

// lz__client_endpoints_given: whether the endpoint list has an entry
// (empty entries skipped), as lz__client_open requires.
bool lz__client_endpoints_given(const char *endpoints);

// lz__client_call submits one request. data is the envelope's "data" (or,
// without envelope, the whole payload; NULL: null). With callback it
// returns at once and callback runs exactly once; without it waits and
// stores the reply in *reply. request_id_out (37 bytes) gets the id if not NULL.
int lz__client_call(lz_client_t *client, const char *action, const lz_value_t *data, int timeout_ms,
                    lz_client_callback_fn callback, void *arg, lz_value_t **reply, char *request_id_out);

// lz__client_destroy is lz_client_destroy (see reqrep.h) for the public
// function fn, which a refusal names: lz_dealer_destroy's engine.
void lz__client_destroy(lz_client_t **client_p, const char *fn);

// A cancel ends, from another thread and for good, the waits of the
// requests made with it (lz__client_request_until): lz_lock_cancel's.
typedef struct lz_cancel {
    atomic_bool fired;
    int wake_fd; // readable once fired: a caller waiting on the lent socket polls it
    // The outcome of a request whose wait was ended goes to late(status,
    // reply, late_arg), once, on the client's thread (NULL: dropped).
    lz_client_callback_fn late;
    void *late_arg;
} lz_cancel_t;

// lz__cancel_init makes a cancel not fired: LZ_OK, or LZ_EIO (no
// descriptor; its wake_fd is then -1, and lz__cancel_close harmless).
int lz__cancel_init(lz_cancel_t *cancel, lz_client_callback_fn late, void *late_arg);
void lz__cancel_close(lz_cancel_t *cancel);
bool lz__cancel_fired(const lz_cancel_t *cancel); // false for NULL

// lz__cancel_pause sleeps ms, or until cancel fires.
void lz__cancel_pause(const lz_cancel_t *cancel, int64_t ms);

// lz__client_cancel fires cancel: each request of client made with it
// returns LZ_ECLOSED within a few milliseconds, wherever it waits (on the
// lent socket or for the I/O thread), and goes on without its caller
// (see lz_cancel_t's late), with no more retries: the copies already sent
// may still be answered, none is sent after the cancel (one not sent yet
// goes out once). Any thread, while client is not being destroyed; not
// from a signal handler.
void lz__client_cancel(lz_client_t *client, lz_cancel_t *cancel);

// lz__client_request_until is lz_client_request (which is it with cancel
// NULL) whose wait also ends, LZ_ECLOSED, once cancel fires, also on the
// direct path; with cancel already fired nothing is sent (LZ_ECLOSED). A
// cancel that fires after the outcome came does not take it back: the
// caller checks lz__cancel_fired if it must.
int lz__client_request_until(lz_client_t *client, const char *action, const lz_value_t *data, lz_value_t **reply,
                             int timeout_ms, const lz_cancel_t *cancel);

#endif
