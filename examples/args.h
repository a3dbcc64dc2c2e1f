/* Reading the examples' numeric arguments: one given must be a whole
 * integer in range (not "", "abc" nor "2x"), else the program says so and
 * exits 2, its usage error. Header-only, as zstd_json.h: no library of its own. */
#ifndef LZ_EXAMPLES_ARGS_H
#define LZ_EXAMPLES_ARGS_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

// arg_integer reads text, program's argument what, as an integer from min
// to max, or exits 2 after a line on stderr.
static inline long arg_integer(const char *program, const char *what, const char *text, long min, long max) {
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno == ERANGE || n < min || n > max) {
        if (max == LONG_MAX) fprintf(stderr, "%s: %s must be an integer of %ld or more, not '%s'\n", program, what, min,
                                     text);
        else fprintf(stderr, "%s: %s must be an integer from %ld to %ld, not '%s'\n", program, what, min, max, text);
        exit(2);
    }
    return n;
}

#endif
