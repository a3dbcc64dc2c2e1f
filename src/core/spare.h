/* Internal: a one-object spare slot between frees and allocations of one
 * kind. A request/reply round trip makes and frees one client call and one
 * server job, each with an encoding buffer; keeping the last one freed
 * turns a calloc, a buffer allocation and their frees (about a thousand
 * instructions per round trip on each side) into two atomic exchanges, and
 * the recycled buffer keeps its capacity. Any thread may put or take. */
#ifndef LZ_CORE_SPARE_H
#define LZ_CORE_SPARE_H

#include <stdatomic.h>

typedef struct lz_spare {
    _Atomic(void *) object;
} lz_spare_t;

// Under AddressSanitizer nothing is kept, so a use after free stays visible.
#if defined(__SANITIZE_ADDRESS__)
#define LZ_SPARE_KEEPS 0
#else
#define LZ_SPARE_KEEPS 1
#endif

// lz__spare_take returns the spare object (now the caller's) or NULL.
static inline void *lz__spare_take(lz_spare_t *spare) {
    return LZ_SPARE_KEEPS ? atomic_exchange_explicit(&spare->object, NULL, memory_order_acquire) : NULL;
}

// lz__spare_put keeps object as the spare and returns the one it replaces
// (NULL, or one the caller must free).
static inline void *lz__spare_put(lz_spare_t *spare, void *object) {
    return LZ_SPARE_KEEPS ? atomic_exchange_explicit(&spare->object, object, memory_order_acq_rel) : object;
}

#endif
