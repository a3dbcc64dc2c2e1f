/* Internal: reading a hexadecimal digit, for the decoders of %XX escapes
 * (tracing.otlp_headers' values, JSON Schema $ref fragments), JSON \\u
 * escapes and YAML 1.1 hex integers, each keeping its own rule for an
 * escape that is not one; and writing a byte's two digits (the JSON
 * codec's tagged bytes, the audit's \\xNN escapes). */
#ifndef LZ_CORE_HEX_H
#define LZ_CORE_HEX_H

// lz__hex_digit: the value of c as a hexadecimal digit (either case), or -1.
static inline int lz__hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    int lower = c | 0x20; // 'A'..'F' to 'a'..'f'; nothing else lands there
    return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

// lz__hex_byte writes byte as two lower-case hexadecimal digits (no NUL).
static inline void lz__hex_byte(unsigned char byte, char out[2]) {
    static const char digits[] = "0123456789abcdef";
    out[0] = digits[byte >> 4];
    out[1] = digits[byte & 15];
}

#endif
