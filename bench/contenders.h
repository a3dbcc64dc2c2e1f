/* The contenders compiled into lz_bench_core, shared by the bench programs
 * and `lz bench`: raw libzmq, and liberzmq with raw bytes or JSON values;
 * and the pieces bench_proxy.c builds its forwarder contenders from. */
#ifndef LZB_CONTENDERS_H
#define LZB_CONTENDERS_H

#include "harness.h"

extern const lzb_ops_t lzb_raw_ops;
extern const lzb_ops_t lzb_liberzmq_ops;
extern const lzb_ops_t lzb_liberzmq_json_ops;

// lzb_raw_nodrop makes a libzmq PUB socket wait at its high water mark
// instead of dropping (ZMQ_XPUB_NODROP), so pub/sub throughput measures
// delivered messages with flow control, like push/pull, for every contender.
int lzb_raw_nodrop(void *pub);

// lzb_raw_open_via opens raw libzmq ends for a device between them
// (bench_proxy.c): in zmq_ctx, which their close leaves alone, the sender
// connecting to spec->endpoint and the receiver to rx_url. With both NULL
// it is lzb_raw_ops' own open (a context of their own, the receiver bound
// at spec->endpoint). lzb_raw_ops' send, recv and close work on what it
// returns; NULL after saying why.
void *lzb_raw_open_via(const lzb_spec_t *spec, void *zmq_ctx, const char *rx_url);

// lzb_liberzmq_context: a liberzmq context with the benchmark's settings
// (those of raw libzmq's sockets: no linger, high water mark 1000, short
// timeouts), as the liberzmq contenders use; NULL on failure.
struct lz_context *lzb_liberzmq_context(void);

#endif
