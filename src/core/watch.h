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
// NULL on failure, and is set before the thread reloads again.
// The thread runs marked as ctx's (lz__thread_inside(ctx)): the log
// records of its reloads are the only callbacks it runs, and what they do
// to the watcher must not wait for the thread they run on (below).
int lz__watch_start(lz_context_t *ctx, const char *path, lz_watch_t **out);

// lz__watch_retarget, on w's own thread (a log record of its reload),
// watches path instead, reloading from it at once, and returns that
// reload's result as lz__watch_start does; the thread ends once the
// record is written when that fails or path is NULL (nothing to watch).
// An ended watcher is still freed by lz__watch_stop.
int lz__watch_retarget(lz_watch_t *w, const char *path);

// lz__watch_release, on w's own thread: the thread ends once the record is
// written, and drops a reference to its context (lz__context_unref) as it
// ends, so the reload in progress keeps the context until then.
void lz__watch_release(lz_watch_t *w);

// lz__watch_stop ends the thread, waiting for a reload it is running, and
// frees *watch_p. NULL is a no-op. On w's own thread (ending the context
// whose last reference lz__watch_release dropped) it does not wait.
void lz__watch_stop(lz_watch_t **watch_p);

#endif
