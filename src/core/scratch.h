/* Internal: a per-thread encoding buffer, so sending a value allocates
 * nothing once a thread has sent its first message. */
#ifndef LZ_CORE_SCRATCH_H
#define LZ_CORE_SCRATCH_H

#include "liberzmq/serializer.h"

// lz__scratch_buffer returns the calling thread's buffer, emptied, or NULL
// when out of memory. Freed when the thread exits.
lz_buffer_t *lz__scratch_buffer(void);

#endif
