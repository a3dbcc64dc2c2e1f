/* liberzmq pair: an exclusive two-way pipe, meant for passing values
 * between threads of one process over inproc:// (no copy to the kernel,
 * no polling loop of one's own). Wire: one frame, the serialized value. */
#ifndef LIBERZMQ_PAIR_H
#define LIBERZMQ_PAIR_H

#include <stddef.h>

#include "context.h"
#include "message.h"
#include "node.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_pair lz_pair_t;

// lz_pair_new creates one end of a pair (PAIR; default side: bind, so the
// first end made binds and the other names '>' to connect). Over inproc://
// the binding end must exist before the connecting one.
lz_pair_t *lz_pair_new(lz_context_t *ctx, const char *endpoints);

// lz_pair_pipe creates both ends at once on a fresh inproc:// address:
// *a_p binds, *b_p connects. On failure neither is created.
int lz_pair_pipe(lz_context_t *ctx, lz_pair_t **a_p, lz_pair_t **b_p);

// lz_pair_destroy closes the end (bounded by zmq.linger), frees *pair_p and
// sets it to NULL. NULL is a no-op.
void lz_pair_destroy(lz_pair_t **pair_p);

lz_node_t *lz_pair_node(lz_pair_t *pair);

// lz_pair_send encodes value (NULL: null) with the node's serializer and
// sends it, waiting up to zmq.send_timeout when the peer is slow (LZ_EAGAIN
// then, counted as backpressure). lz_pair_send_bytes sends data as it is.
// Both are thread safe: one thread may send on an end while another waits
// in lz_pair_recv on it. Neither a waiting receive nor a send waiting for
// room holds the libzmq socket (which is not thread safe) while it waits,
// so neither holds up the other.
int lz_pair_send(lz_pair_t *pair, const lz_value_t *value);
int lz_pair_send_bytes(lz_pair_t *pair, const void *data, size_t size);

// lz_pair_recv returns the next message, owned by the caller (free with
// lz_message_destroy), waiting up to timeout_ms (-1: forever). Its value is
// the decoded payload (bytes for the raw serializer) and its topic "".
// NULL with LZ_ETIMEOUT, LZ_ECLOSED or LZ_EINVAL (NULL pair, or timeout_ms
// below -1: error.h); a payload that does not decode, or
// a message of more than one frame, is counted in inbound_dropped and
// skipped. One receiving thread at a time.
lz_message_t *lz_pair_recv(lz_pair_t *pair, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
