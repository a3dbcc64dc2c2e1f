/* The library's own version, for checking what is actually linked. */
#include "liberzmq.h"

const char *lz_version(void) { return LZ_VERSION_STRING; }
