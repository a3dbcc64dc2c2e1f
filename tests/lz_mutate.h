/* Random damage for tests that feed parsers broken input: flipped bits,
 * replaced, inserted and deleted bytes, truncation and spliced copies, from
 * a fixed seed so a failure repeats (tests/test_mutation.c,
 * tests/test_config.c). */
#ifndef LZ_MUTATE_H
#define LZ_MUTATE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LZ_MUTATE_MAX 4096 // room every buffer given to lz_mutate has

// xorshift64*: small, fast and the same on every machine.
static uint64_t lz_mutate_state = 0x9e3779b97f4a7c15u;
static inline uint64_t lz_mutate_random(void) {
    lz_mutate_state ^= lz_mutate_state >> 12;
    lz_mutate_state ^= lz_mutate_state << 25;
    lz_mutate_state ^= lz_mutate_state >> 27;
    return lz_mutate_state * 0x2545f4914f6cdd1du;
}
static inline size_t lz_mutate_below(size_t n) { return n ? (size_t)(lz_mutate_random() % n) : 0; }

// Bytes that steer parsers into their edge cases more often than random ones.
static inline uint8_t lz_mutate_byte(void) {
    static const uint8_t bytes[] = {0x00, 0xff, '"', '\\', '{', '}', '[', ']', ',', ':', '-', 'e', '0', '9',
                                    0x80, 0xbf, 0xc0, 0xdf, 0xed, 0xf4, 0x90, 0xdc, 0xde, 0xcb, 0xd9,
                                    '\n', ' ', '\t', '#', '&', '*', '!', '|', '\'', '%'}; // YAML's too
    return lz_mutate_random() & 1 ? bytes[lz_mutate_below(sizeof bytes)] : (uint8_t)lz_mutate_random();
}

// lz_mutate applies one to four kinds of damage to buf (len bytes, room for
// LZ_MUTATE_MAX) and returns the new length.
static inline size_t lz_mutate(uint8_t *buf, size_t len) {
    for (int rounds = 1 + (int)lz_mutate_below(4); rounds > 0; rounds--) {
        size_t at = lz_mutate_below(len + 1), span = 1 + lz_mutate_below(8);
        switch (lz_mutate_below(6)) {
        case 0: // flip a bit
            if (len) buf[lz_mutate_below(len)] ^= (uint8_t)(1u << lz_mutate_below(8));
            break;
        case 1: // replace a byte
            if (len) buf[lz_mutate_below(len)] = lz_mutate_byte();
            break;
        case 2: // insert a byte
            if (len < LZ_MUTATE_MAX) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = lz_mutate_byte();
                len++;
            }
            break;
        case 3: // delete a few bytes
            if (at < len) {
                if (span > len - at) span = len - at;
                memmove(buf + at, buf + at + span, len - at - span);
                len -= span;
            }
            break;
        case 4: // truncate
            len = lz_mutate_below(len + 1);
            break;
        default: { // insert a copy of a chunk of the document elsewhere
            size_t from = lz_mutate_below(len), n = len ? 1 + lz_mutate_below(len - from) : 0;
            if (n > LZ_MUTATE_MAX - len) n = LZ_MUTATE_MAX - len;
            uint8_t chunk[LZ_MUTATE_MAX];
            memcpy(chunk, buf + from, n);
            memmove(buf + at + n, buf + at, len - at);
            memcpy(buf + at, chunk, n);
            len += n;
            break;
        }
        }
    }
    return len;
}

// lz_mutated_copy copies size bytes of seed into buf (room for
// LZ_MUTATE_MAX), damages the copy and returns its length.
static inline size_t lz_mutated_copy(uint8_t *buf, const void *seed, size_t size) {
    memcpy(buf, seed, size);
    return lz_mutate(buf, size);
}

#endif
