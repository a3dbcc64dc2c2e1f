/* The configuration file watcher: inotify on the file's directory, so a
 * file an editor or a deployment replaces by rename (a new inode) is seen
 * as well as one written in place. Each change reloads the context from
 * the file layered as lz_context_new layers it: defaults < file <
 * environment < values the application set through the API. */
#include "core/watch.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "core/context.h"
#include "core/error.h"
#include "core/thread.h"
#include "core/wakeup.h"

// Events closer than this are one change (an editor's save is several);
// a directory that never settles is still read after SETTLE_ROUNDS.
#define SETTLE_MS 50
#define SETTLE_ROUNDS 20
#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB)

// What tells one version of the file from another, without reading it.
typedef struct {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id_t;

struct lz_watch {
    lz_context_t *ctx;
    pthread_t thread;
    int inotify_fd, wake_fd;
    bool stopping;          // the thread's own
    file_id_t seen;         // the version last reloaded; the thread's own once it runs
    char path[PATH_MAX];    // directory resolved, so a later chdir changes nothing
    char origin[PATH_MAX + 8]; // "file PATH", for the log
};

// file_id follows symbolic links: a Kubernetes ConfigMap swaps the target.
static file_id_t file_id(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return (file_id_t){.exists = false};
    return (file_id_t){true, st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

static bool file_id_same(const file_id_t *a, const file_id_t *b) {
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

// reload_file builds the configuration again and hands it to the context;
// a file that does not load is refused like a bad reload.
static int reload_file(lz_watch_t *w) {
    lz_config_t *next = lz_config_new();
    int rc = next ? lz_config_load_file(next, w->path) : LZ_ENOMEM;
    if (rc == LZ_OK) rc = lz_config_load_env(next);
    if (rc == LZ_OK) rc = lz__config_keep_api(next, lz_context_config(w->ctx));
    if (rc == LZ_OK) rc = lz__context_reload_from(w->ctx, next, w->origin);
    else lz__context_reload_failed(w->ctx, w->origin);
    lz_config_destroy(&next);
    return rc;
}

// wait_event waits up to timeout_ms (-1: for ever) for the directory to
// change, reading the events away; false on a timeout or a stop.
static bool wait_event(lz_watch_t *w, int timeout_ms) {
    struct pollfd fds[2] = {{w->inotify_fd, POLLIN, 0}, {w->wake_fd, POLLIN, 0}};
    int n;
    do n = poll(fds, 2, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0) return false;
    if (n < 0 || (fds[1].revents & POLLIN)) { // a poll that fails would fail again: stop, not spin
        w->stopping = true;
        return false;
    }
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(w->inotify_fd, events, sizeof events) > 0) {
    }
    return true;
}

static void *watch_main(void *self) {
    lz_watch_t *w = self;
    while (!w->stopping && wait_event(w, -1)) {
        for (int i = 0; i < SETTLE_ROUNDS && wait_event(w, SETTLE_MS); i++) {
        }
        file_id_t now = file_id(w->path);
        // Gone (mid-replace) or not changed: the next event tells.
        if (w->stopping || !now.exists || file_id_same(&now, &w->seen)) continue;
        w->seen = now;
        reload_file(w);
    }
    return NULL;
}

// watch_paths resolves path's directory and watches it.
static int watch_paths(lz_watch_t *w, const char *path) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char dir[PATH_MAX], resolved[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
    if (!*name || !realpath(dir, resolved))
        return lz__fail(LZ_ECONFIG, "config: cannot watch %s: %s", path, *name ? strerror(errno) : "not a file name");
    if ((size_t)snprintf(w->path, sizeof w->path, "%s/%s", strcmp(resolved, "/") ? resolved : "", name) >=
        sizeof w->path)
        return lz__fail(LZ_ECONFIG, "config: cannot watch %s: path too long", path);
    snprintf(w->origin, sizeof w->origin, "file %s", w->path);
    if (inotify_add_watch(w->inotify_fd, resolved, WATCH_EVENTS) < 0)
        return lz__fail(LZ_EIO, "config: cannot watch %s: inotify: %s", resolved, strerror(errno));
    return LZ_OK;
}

static void watch_free(lz_watch_t *w) {
    if (w->inotify_fd >= 0) close(w->inotify_fd);
    lz__wakeup_close(&w->wake_fd);
    free(w);
}

int lz__watch_start(lz_context_t *ctx, const char *path, lz_watch_t **out) {
    *out = NULL;
    lz_watch_t *w = calloc(1, sizeof *w);
    if (!w) return lz__fail(LZ_ENOMEM, "config: out of memory for a watcher");
    w->ctx = ctx;
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->wake_fd = lz__wakeup_open();
    int rc = w->inotify_fd < 0 || w->wake_fd < 0 ? lz__fail(LZ_EIO, "config: inotify: %s", strerror(errno))
                                                 : watch_paths(w, path);
    // Watched before the first read, so no change slips in between.
    w->seen = file_id(w->path);
    if (rc == LZ_OK) rc = reload_file(w);
    int err = rc >= 0 ? lz__thread_start(&w->thread, watch_main, w) : 0;
    if (err) rc = lz__fail(LZ_EIO, "config: cannot start the watcher thread: %s", strerror(err));
    if (rc < 0) {
        watch_free(w);
        return rc;
    }
    *out = w;
    return rc;
}

void lz__watch_stop(lz_watch_t **watch_p) {
    if (!watch_p || !*watch_p) return;
    lz_watch_t *w = *watch_p;
    lz__wakeup_signal(w->wake_fd);
    pthread_join(w->thread, NULL);
    watch_free(w);
    *watch_p = NULL;
}
