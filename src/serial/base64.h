/* Internal: standard base64 (RFC 4648, padded), how JSON carries bytes
 * values, matching Python's base64.b64encode on the other side. */
#ifndef LZ_SERIAL_BASE64_H
#define LZ_SERIAL_BASE64_H

#include <stddef.h>

// lz__base64_encoded_size: characters lz__base64_encode writes for size bytes.
size_t lz__base64_encoded_size(size_t size);
// lz__base64_encode writes the encoding of data to out (no NUL).
void lz__base64_encode(const void *data, size_t size, char *out);
// lz__base64_decode decodes len characters into out (room for len / 4 * 3
// bytes) and returns the byte count, or -1 for text that is not base64.
long lz__base64_decode(const char *text, size_t len, void *out);
// lz__base64_decode_lenient is lz__base64_decode that also takes the
// URL-safe alphabet ('-' and '_' for '+' and '/', mixed or not) and a last
// group without its padding ("Zg" for "Zg=="), as proto3's JSON mapping
// does; out has room for len / 4 * 3 + 2 bytes.
long lz__base64_decode_lenient(const char *text, size_t len, void *out);

#endif
