/* Internal value helpers the codecs and envelopes share. */
#ifndef LZ_SERIAL_VALUE_H
#define LZ_SERIAL_VALUE_H

#include "liberzmq/value.h"

// lz__value_bytes_borrowed makes a bytes value that points at data without
// copying (the raw codec's zero-copy decode); data must outlive the value.
lz_value_t *lz__value_bytes_borrowed(const void *data, size_t size);

// lz__value_object_take detaches and returns the member under key (the
// caller owns it), or NULL; lets envelopes lift "data" out without a copy.
lz_value_t *lz__value_object_take(lz_value_t *object, const char *key);

#endif
