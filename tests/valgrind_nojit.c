/* Preloaded into the programs of make test's valgrind pass: PCRE2's JIT
 * code reads the subject a vector at a time, past its end into the bytes
 * after it in the same allocation, which memcheck reports as uninitialised
 * (the interpreter reads only the subject). A pattern whose JIT compile
 * fails runs on the interpreter, so every match is still checked. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

int pcre2_jit_compile(pcre2_code *code, uint32_t options) {
    (void)code;
    (void)options;
    return PCRE2_ERROR_JIT_BADOPTION; // what a PCRE2 built without JIT says
}
