#include "core/regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

// anonymous_pipe: whether the FIFO open at fd is a pipe(2) (it lives in the
// kernel's pipefs) rather than a name in a file system (mkfifo).
static bool anonymous_pipe(int fd) {
    struct statfs fs;
    return fstatfs(fd, &fs) == 0 && fs.f_type == PIPEFS_MAGIC;
}

int lz__open_regular_or_pipe(const char *path, bool pipes, mode_t *type) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); // O_NONBLOCK: the open does not wait
    if (fd < 0) return -1;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -1 : fd;
    if (rc >= 0) {
        if (type) *type = st.st_mode & S_IFMT;
        bool taken = S_ISREG(st.st_mode) || (pipes && S_ISFIFO(st.st_mode) && anonymous_pipe(fd));
        rc = !taken ? LZ_NOT_REGULAR : fcntl(fd, F_SETFL, 0) != 0 ? -1 : fd;
    }
    if (rc < 0) {
        int err = errno;
        close(fd);
        errno = err;
    }
    return rc;
}

int lz__open_regular(const char *path) { return lz__open_regular_or_pipe(path, false, NULL); }
