/* The configuration file watcher: inotify on the file's directory, so a
 * file an editor or a deployment replaces by rename (a new inode) is seen
 * as well as one written in place; and on the directory of each symbolic
 * link on the way to it and of the file the links lead to, so a link
 * switched to another release, or a linked file edited, is seen too. A
 * watched directory deleted or renamed away hands its watch to its nearest
 * existing ancestor until it is back (a deployment replacing the whole
 * directory). Each change reloads the context from the file layered as
 * lz_context_new layers it: defaults < file < environment < values the
 * application set through the API. */
#include "core/watch.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/context.h"
#include "core/error.h"
#include "core/thread.h"
#include "core/wakeup.h"

// Events closer than this are one change (an editor's save is several);
// a directory that never settles is still read after SETTLE_ROUNDS.
#define SETTLE_MS 50
#define SETTLE_ROUNDS 20
// A watched directory deleted or moved must wake the thread: nothing else would tell.
#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
// Directories watched at most, and symbolic links followed on the way to the file.
#define WATCH_DIRS_MAX 16
#define WATCH_LINKS_MAX 16

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
    sem_t start;            // posted once the first reload is done: stopping then says whether to watch
    bool stopping;          // the thread's own once start is posted
    bool releases_ctx;      // the thread's own: it drops a reference to ctx as it ends (lz__watch_release)
    file_id_t seen;         // the version last reloaded; the thread's own once it runs
    int wds[WATCH_DIRS_MAX]; // the directories watched; the thread's own once it runs
    size_t wd_count;
    char path[PATH_MAX];    // absolute, so a later chdir changes nothing; links left for each read to follow
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

// first_link is the length of the shortest prefix of the absolute path p
// that names a symbolic link, 0 when none does.
static size_t first_link(char *p) {
    for (char *end = strchr(p + 1, '/');; end = strchr(end + 1, '/')) {
        struct stat st;
        if (end) *end = '\0';
        bool link = lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
        if (end) *end = '/';
        if (link) return end ? (size_t)(end - p) : strlen(p);
        if (!end) return 0;
    }
}

// dir_len is the length of the directory part of p's first len bytes ("/" kept).
static size_t dir_len(const char *p, size_t len) {
    while (len > 1 && p[len - 1] != '/') len--;
    return len > 1 ? len - 1 : 1;
}

// keep_watch adds wd to wds (n of them) unless there it is already:
// inotify gives a directory's watch again.
static void keep_watch(int wd, int *wds, size_t *n) {
    for (size_t i = 0; i < *n; i++)
        if (wds[i] == wd) return;
    wds[(*n)++] = wd;
}

// watch_nearest watches the directory named by dir's first len bytes or,
// while it does not exist, its nearest existing ancestor: the directory
// made again there is a change that walks again. Returns the length of the
// one watched, 0 for none (past WATCH_DIRS_MAX, nothing more is watched).
static size_t watch_nearest(int fd, char *dir, size_t len, int *wds, size_t *n) {
    if (*n == WATCH_DIRS_MAX) return 0;
    for (;; len = dir_len(dir, len)) {
        char saved = dir[len];
        dir[len] = '\0';
        int wd = inotify_add_watch(fd, dir, WATCH_EVENTS);
        dir[len] = saved;
        if (wd >= 0) {
            keep_watch(wd, wds, n);
            return len;
        }
        if ((errno != ENOENT && errno != ENOTDIR) || len == 1) return 0;
    }
}

// watch_dir watches the directory part of p's first len bytes, or its
// nearest existing ancestor. A directory made below that ancestor before
// its watch was made told nothing: while looking again finds more of the
// path, it watches again.
static void watch_dir(int fd, const char *p, size_t len, int *wds, size_t *n) {
    char dir[PATH_MAX];
    size_t full = dir_len(p, len), last = 0, at;
    snprintf(dir, sizeof dir, "%.*s", (int)full, p);
    while ((at = watch_nearest(fd, dir, full, wds, n)) > last && at < full) last = at;
}

// watch_walk watches each directory whose change may change the file
// path names: the directory of each symbolic link on the way, then the
// directory of the file they lead to. Each link found is replaced by its
// target and the walk starts again on the new path.
static size_t watch_walk(int fd, const char *path, int *wds) {
    char p[PATH_MAX], target[PATH_MAX], next[PATH_MAX];
    size_t n = 0;
    snprintf(p, sizeof p, "%s", path);
    for (int hops = 0; hops <= WATCH_LINKS_MAX; hops++) {
        size_t len = first_link(p);
        watch_dir(fd, p, len ? len : strlen(p), wds, &n);
        if (!len) break;
        char saved = p[len];
        p[len] = '\0';
        ssize_t k = readlink(p, target, sizeof target - 1);
        p[len] = saved;
        if (k <= 0) break; // gone meanwhile: the next event walks again
        target[k] = '\0';
        int dir = target[0] == '/' ? 0 : (int)dir_len(p, len);
        if ((size_t)snprintf(next, sizeof next, "%.*s%s%s%s", dir, p, dir > 1 ? "/" : "", target, p + len) >=
            sizeof next)
            break;
        memcpy(p, next, sizeof p);
    }
    return n;
}

// watch_refresh walks path again (a link may lead elsewhere now), and
// drops the watches of directories that no longer matter.
static void watch_refresh(lz_watch_t *w) {
    int wds[WATCH_DIRS_MAX];
    size_t n = watch_walk(w->inotify_fd, w->path, wds);
    for (size_t i = 0; i < w->wd_count; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++) kept = wds[j] == w->wds[i];
        if (!kept) inotify_rm_watch(w->inotify_fd, w->wds[i]);
    }
    memcpy(w->wds, wds, n * sizeof *wds);
    w->wd_count = n;
}

// reload_file builds the configuration again and hands it to the context;
// a file that does not load is refused like a bad reload. The origin is
// copied: a log record of the reload may point the watcher elsewhere
// (lz__watch_retarget), and the rest of its records name this file.
static int reload_file(lz_watch_t *w) {
    char origin[sizeof w->origin];
    memcpy(origin, w->origin, sizeof origin);
    lz_config_t *next = lz_config_new();
    int rc = next ? lz_config_load_file(next, w->path) : LZ_ENOMEM;
    if (rc == LZ_OK) rc = lz_config_load_env(next);
    if (rc == LZ_OK) rc = lz__config_keep_api(next, lz_context_config(w->ctx));
    if (rc == LZ_OK) rc = lz__context_reload_from(w->ctx, next, origin);
    else lz__context_reload_failed(w->ctx, origin);
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

// The whole thread is its context's watcher (lz__thread_inside(ctx)): the
// log records of its reloads are the only callbacks it runs.
static void *watch_main(void *self) {
    lz_watch_t *w = self;
    lz_thread_running_t here;
    lz__thread_enter(&here, w->ctx);
    while (sem_wait(&w->start) != 0) {
    }
    while (!w->stopping && wait_event(w, -1)) {
        for (int i = 0; i < SETTLE_ROUNDS && wait_event(w, SETTLE_MS); i++) {
        }
        watch_refresh(w);
        file_id_t now = file_id(w->path);
        // Gone (mid-replace) or not changed: the next event tells.
        if (w->stopping || !now.exists || file_id_same(&now, &w->seen)) continue;
        w->seen = now;
        reload_file(w);
    }
    lz__thread_leave(&here);
    // Last: when this is the context's last reference, the context ends here, w with it.
    if (w->releases_ctx) lz__context_unref(w->ctx);
    return NULL;
}

// watch_paths makes path absolute (not resolved: each read follows its
// links as they are then), checks its directory, and watches.
static int watch_paths(lz_watch_t *w, const char *path) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char dir[PATH_MAX], cwd[PATH_MAX], resolved[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1, slash ? path : ".");
    if (!*name || !realpath(dir, resolved) || (path[0] != '/' && !getcwd(cwd, sizeof cwd)))
        return lz__fail(LZ_ECONFIG, "config: cannot watch %s: %s", path, *name ? strerror(errno) : "not a file name");
    if ((size_t)snprintf(w->path, sizeof w->path, "%s%s%s", path[0] == '/' ? "" : cwd,
                         path[0] == '/' || strcmp(cwd, "/") == 0 ? "" : "/", path) >= sizeof w->path)
        return lz__fail(LZ_ECONFIG, "config: cannot watch %s: path too long", path);
    snprintf(w->origin, sizeof w->origin, "file %s", w->path);
    watch_refresh(w);
    if (w->wd_count == 0)
        return lz__fail(LZ_EIO, "config: cannot watch %s: inotify: %s", resolved, strerror(errno));
    return LZ_OK;
}

// watch_target watches path, and notes the version the first reload is
// about to read: watched before that read, so no change slips in between.
static int watch_target(lz_watch_t *w, const char *path) {
    int rc = watch_paths(w, path);
    w->seen = file_id(w->path);
    return rc;
}

static void watch_free(lz_watch_t *w) {
    if (w->inotify_fd >= 0) close(w->inotify_fd);
    lz__wakeup_close(&w->wake_fd);
    sem_destroy(&w->start);
    free(w);
}

int lz__watch_start(lz_context_t *ctx, const char *path, lz_watch_t **out) {
    *out = NULL;
    lz_watch_t *w = calloc(1, sizeof *w);
    if (!w) return lz__fail(LZ_ENOMEM, "config: out of memory for a watcher");
    w->ctx = ctx;
    sem_init(&w->start, 0, 0);
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->wake_fd = lz__wakeup_open();
    int rc = w->inotify_fd < 0 || w->wake_fd < 0 ? lz__fail(LZ_EIO, "config: inotify: %s", strerror(errno))
                                                 : watch_target(w, path);
    // The thread before the first reload, so a watcher that cannot start
    // changes nothing; it waits for the reload, which may refuse it.
    int err = rc == LZ_OK ? lz__thread_start(&w->thread, watch_main, w) : 0;
    if (err) rc = lz__thread_fail(err, "config: watcher");
    bool started = rc == LZ_OK;
    if (started) rc = reload_file(w);
    w->stopping = rc < 0;
    if (rc >= 0) *out = w; // before the thread goes on: its records may ask for it (lz__watch_retarget)
    if (started) sem_post(&w->start);
    if (rc < 0) {
        if (started) pthread_join(w->thread, NULL);
        watch_free(w);
    }
    return rc;
}

// Stopping is settled before the reload: a stop or a destroy its own
// records call comes after this call, and wins. A destroyed context is
// watched no more.
int lz__watch_retarget(lz_watch_t *w, const char *path) {
    int rc = path ? watch_target(w, path) : LZ_OK;
    w->stopping = !path || rc < 0 || w->releases_ctx;
    if (w->stopping) return rc;
    rc = reload_file(w);
    if (rc < 0) w->stopping = true;
    return rc;
}

void lz__watch_release(lz_watch_t *w) {
    w->stopping = true;
    w->releases_ctx = true;
}

void lz__watch_stop(lz_watch_t **watch_p) {
    if (!watch_p || !*watch_p) return;
    lz_watch_t *w = *watch_p;
    lz__wakeup_signal(w->wake_fd);
    // On its own thread, which ends the context as it ends (lz__watch_release)
    // and uses w no more: joining would wait for itself.
    if (pthread_equal(w->thread, pthread_self())) pthread_detach(w->thread);
    else pthread_join(w->thread, NULL);
    watch_free(w);
    *watch_p = NULL;
}
