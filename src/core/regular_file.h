/* Internal: opening a file named by configuration (keys, users, a plugin)
 * that must be a regular file. A FIFO would hold the opener until a writer
 * came (dlopen of one froze the whole process under the loader's lock), a
 * device such as /dev/zero never end. */
#ifndef LZ_CORE_REGULAR_FILE_H
#define LZ_CORE_REGULAR_FILE_H

// LZ_NOT_REGULAR: what lz__open_regular returns for a path that opened but
// names no regular file.
#define LZ_NOT_REGULAR (-2)

// lz__open_regular opens path for reading, without waiting on a FIFO's
// writer: the descriptor (close-on-exec, blocking again) when it is a
// regular file; LZ_NOT_REGULAR when it is not; -1 with errno set (open's,
// fstat's) when it cannot be opened or looked at.
int lz__open_regular(const char *path);

#endif
