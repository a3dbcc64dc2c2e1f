#include "core/regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int lz__open_regular(const char *path) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); // O_NONBLOCK: the open does not wait
    if (fd < 0) return -1;
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? -1 : !S_ISREG(st.st_mode) ? LZ_NOT_REGULAR : fcntl(fd, F_SETFL, 0) != 0 ? -1 : fd;
    if (rc < 0) {
        int err = errno;
        close(fd);
        errno = err;
    }
    return rc;
}
