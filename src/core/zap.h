/* Internal: a context's ZAP handler, answering libzmq's authentication
 * requests (RFC 27) on a thread of its own, with PLAIN passwords hashed on
 * a small pool of workers, so slow hashes hold up neither one another nor
 * the context's monitor thread (its socket events, its nodes' setup). */
#ifndef LZ_CORE_ZAP_H
#define LZ_CORE_ZAP_H

#include "core/security.h"

typedef struct lz_zap lz_zap_t;

// A policy function returns a reference on the policy in force, taken
// under the lock a reload swaps it under.
typedef lz_security_t *(*lz_zap_policy_fn)(void *arg);

// lz__zap_start binds the handler at inproc://zeromq.zap.01 in zmq_context
// and starts its thread, which judges each request by policy(arg) and
// audits through logger. NULL (error set) when it cannot.
lz_zap_t *lz__zap_start(void *zmq_context, lz_zap_policy_fn policy, void *arg, lz_logger_t *logger);

// lz__zap_stop lets hashes under way end, drops the requests not yet
// answered (their connections end with the libzmq context), closes the
// socket, joins the threads and frees the handler. Before zmq_ctx_term.
void lz__zap_stop(lz_zap_t **zap_p);

// lz__zap_workers: the threads that hash passwords, the CPU count but at
// least 2 and at most 4.
int lz__zap_workers(void);

#endif
