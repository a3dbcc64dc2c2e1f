/* The contenders compiled into lz_bench_core, shared by the bench programs
 * and `lz bench`: raw libzmq, and liberzmq with raw bytes or JSON values. */
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

#endif
