/* Internal: a rate limit for a warning that may come hundreds of times a
 * second (a flood of malformed messages, a collector refusing every POST):
 * the first is logged at once, the next no sooner than a period after the
 * last one logged, and each one logged learns how many were not since.
 * Lock free: any thread may take a turn. */
#ifndef LZ_CORE_RATELIMIT_H
#define LZ_CORE_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

// Zeroed, a limit lets its first warning through.
typedef struct lz_rate_limit {
    atomic_int_fast64_t logged_ms; // when the last one was logged (monotonic), 0: none since made or re-armed
    atomic_uint_fast64_t skipped;  // how many were not logged since
} lz_rate_limit_t;

// lz__rate_limit_turn counts one more warning: true when it is to be
// logged, *skipped then how many were not since the last one logged;
// false when it is counted among those.
bool lz__rate_limit_turn(lz_rate_limit_t *limit, int64_t period_ms, uint64_t *skipped);

// lz__rate_limit_rearm lets the next warning through at once (a run of
// failures ended: the next one is news). Those not logged stay counted.
void lz__rate_limit_rearm(lz_rate_limit_t *limit);

// lz__rate_limit_take_skipped returns how many were not logged and starts
// that count again: for a summary when the warnings' source goes away.
uint64_t lz__rate_limit_take_skipped(lz_rate_limit_t *limit);

#endif
