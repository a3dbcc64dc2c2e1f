/* Internal: text written through a stdio stream into memory (records, the
 * Prometheus exposition, OTLP bodies, configuration JSON), as
 * open_memstream's, but whose failure to grow is the stream's error. glibc's
 * memstream drops a byte it cannot place and tells no one, and its fclose
 * succeeds though the last realloc failed, leaving the text NULL: text cut
 * short would go out as if whole. */
#ifndef LZ_CORE_TEXTSTREAM_H
#define LZ_CORE_TEXTSTREAM_H

#include <stddef.h>
#include <stdio.h>

typedef struct lz_text_sink {
    char *data;
    size_t len, cap;
} lz_text_sink_t;

// lz__text_open returns a stream writing into sink (which it sets up), or
// NULL when out of memory. Close it with lz__text_close.
FILE *lz__text_open(lz_text_sink_t *sink);

// lz__text_close closes out and returns the text written (NUL-terminated;
// the caller frees it) with its length in *len, or NULL when any of it was
// lost for want of memory (the sink's memory is freed then).
char *lz__text_close(FILE *out, lz_text_sink_t *sink, size_t *len);

#endif
