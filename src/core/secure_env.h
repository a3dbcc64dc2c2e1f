/* Internal: whether liberzmq may read the process's environment. A setuid
 * or setgid program, or one with file capabilities, runs with privileges
 * its user lacks, in an environment that user wrote: liberzmq reads none of
 * it there (no LIBERZMQ_* setting, no LIBERZMQ_CONFIG file, so no plugin
 * or log file of the user's choosing), as glibc ignores LD_* for such
 * programs. Header-only: the lz tool, which links the shared library (that
 * hides internals), uses it too. */
#ifndef LZ_CORE_SECURE_ENV_H
#define LZ_CORE_SECURE_ENV_H

#include <stdbool.h>
#include <stdlib.h>
#include <sys/auxv.h>

// lz__environment_untrusted: the program runs in secure mode, which the
// kernel marks with AT_SECURE (glibc's secure_getenv reads the same mark).
static inline bool lz__environment_untrusted(void) { return getauxval(AT_SECURE) != 0; }

// lz__environment_config_file: LIBERZMQ_CONFIG's path; NULL when it is
// unset, empty, or the environment is untrusted.
static inline const char *lz__environment_config_file(void) {
    const char *file = lz__environment_untrusted() ? NULL : getenv("LIBERZMQ_CONFIG");
    return file && *file ? file : NULL;
}

#endif
