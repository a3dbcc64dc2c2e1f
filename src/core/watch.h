/* Internal: the watcher behind lz_context_watch, a thread that reloads a
 * context from its configuration file whenever the file changes. */
#ifndef LZ_CORE_WATCH_H
#define LZ_CORE_WATCH_H

#include "liberzmq/context.h"

typedef struct lz_watch lz_watch_t;

// lz__watch_start watches path's directory, those of the symbolic links on
// the way to the file and that of the file they lead to (inotify), reloads
// ctx from path once now, and when that works starts the thread that
// reloads it again on each change (walking the links again first). A
// directory of those deleted or moved away is watched through its nearest
// existing ancestor until it is back.
// Returns that first reload's result (see lz_context_reload); *out stays
// NULL on failure.
int lz__watch_start(lz_context_t *ctx, const char *path, lz_watch_t **out);

// lz__watch_stop ends the thread, waiting for a reload it is running, and
// frees *watch_p. NULL is a no-op.
void lz__watch_stop(lz_watch_t **watch_p);

#endif
