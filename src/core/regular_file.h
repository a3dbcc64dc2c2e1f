/* Internal: opening a file named by configuration (keys, users, a plugin,
 * the configuration file itself) that must be a regular file. A FIFO would
 * hold the opener until a writer came (dlopen of one froze the whole
 * process under the loader's lock; a watched configuration file replaced
 * by one held its watcher, and lz_context_destroy with it), a device such
 * as /dev/zero never ends. */
#ifndef LZ_CORE_REGULAR_FILE_H
#define LZ_CORE_REGULAR_FILE_H

#include <stdbool.h>
#include <sys/types.h>

// LZ_NOT_REGULAR: what lz__open_regular returns for a path that opened but
// names no regular file.
#define LZ_NOT_REGULAR (-2)

// lz__open_regular opens path for reading, without waiting on a FIFO's
// writer: the descriptor (close-on-exec, blocking again) when it is a
// regular file; LZ_NOT_REGULAR when it is not; -1 with errno set (open's,
// fstat's) when it cannot be opened or looked at.
int lz__open_regular(const char *path);

// lz__open_regular_or_pipe is lz__open_regular taking a pipe too when
// pipes is true: an anonymous one, as a shell's `<(...)` (/dev/fd/N) or a
// piped standard input (/dev/stdin) names, whose opening never waits and
// whose writer is already there. A named FIFO stays refused: nothing says a
// writer will ever come. *type (when not NULL) gets the file's type
// (S_IFMT bits) whenever it was looked at, for the caller's message.
int lz__open_regular_or_pipe(const char *path, bool pipes, mode_t *type);

#endif
