/* Text written through a stdio stream into memory, failing loudly
 * (textstream.h). */
#include "core/textstream.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static ssize_t sink_write(void *cookie, const char *bytes, size_t size) {
    lz_text_sink_t *sink = cookie;
    if (sink->len + size >= sink->cap) {
        size_t cap = 2 * (sink->len + size) + 1;
        char *grown = realloc(sink->data, cap);
        if (!grown) return -1; // the stream's error, which ferror and fclose tell
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, bytes, size);
    sink->len += size;
    sink->data[sink->len] = '\0';
    return (ssize_t)size;
}

FILE *lz__text_open(lz_text_sink_t *sink) {
    *sink = (lz_text_sink_t){NULL, 0, 0};
    return fopencookie(sink, "w", (cookie_io_functions_t){.write = sink_write});
}

char *lz__text_close(FILE *out, lz_text_sink_t *sink, size_t *len) {
    bool failed = ferror(out) != 0;
    failed = fclose(out) != 0 || failed; // the last of the text goes out in fclose
    if (!failed && !sink->data) sink->data = calloc(1, 1); // nothing written: ""
    if (failed || !sink->data) {
        free(sink->data);
        *sink = (lz_text_sink_t){NULL, 0, 0};
        return NULL;
    }
    *len = sink->len;
    return sink->data;
}
