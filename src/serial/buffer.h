/* Internal: what the library does with an lz_buffer_t beyond its public
 * calls. */
#ifndef LZ_SERIAL_BUFFER_H
#define LZ_SERIAL_BUFFER_H

#include <stddef.h>

#include "liberzmq/serializer.h"

// lz__buffer_truncate drops what follows the first size bytes (nothing
// when the buffer holds no more): a failed encode takes back what it
// appended, leaving what the buffer held before.
void lz__buffer_truncate(lz_buffer_t *buffer, size_t size);

#endif
