/* The lz tool's number rules, shared by its options and `lz bench`'s
 * harness: plain decimal digits, nothing else. strtol and strtod alone
 * also take leading blanks and a '+' (" 5", "+5"), and strtod hex,
 * exponents and "inf". */
#ifndef LZ_CLI_NUMBER_H
#define LZ_CLI_NUMBER_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

// lz_cli_is_decimal: digits with at most one '.', nothing else.
static inline bool lz_cli_is_decimal(const char *text) {
    bool digit = false, dot = false;
    for (; *text; text++) {
        if (*text >= '0' && *text <= '9') digit = true;
        else if (*text == '.' && !dot) dot = true;
        else return false;
    }
    return digit;
}

// lz_cli_parse_long reads a whole number, digits after an optional '-',
// from min to max into *out: whether it was one.
static inline bool lz_cli_parse_long(const char *text, long min, long max, long *out) {
    const char *digits = text + (text[0] == '-');
    if (*digits < '0' || *digits > '9') return false; // not a blank, '+' or nothing
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

#endif
