/* A rate limit for warnings (ratelimit.h). */
#include "core/ratelimit.h"

#include "core/node.h"

bool lz__rate_limit_turn(lz_rate_limit_t *limit, int64_t period_ms, uint64_t *skipped) {
    int64_t now = lz__now_ms(), last = atomic_load(&limit->logged_ms);
    bool due = last == 0 || now - last >= period_ms;
    // Of the threads due together, the one whose exchange lands logs.
    if (!due || !atomic_compare_exchange_strong(&limit->logged_ms, &last, now ? now : 1)) {
        atomic_fetch_add(&limit->skipped, 1);
        return false;
    }
    *skipped = lz__rate_limit_take_skipped(limit);
    return true;
}

void lz__rate_limit_rearm(lz_rate_limit_t *limit) { atomic_store(&limit->logged_ms, 0); }

uint64_t lz__rate_limit_take_skipped(lz_rate_limit_t *limit) { return atomic_exchange(&limit->skipped, 0); }
