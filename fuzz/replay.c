/* A main() for fuzz targets where libFuzzer is not available (the gcc
 * builds): runs LLVMFuzzerTestOneInput once on every file named on the
 * command line, or in a directory named there (not recursing), in name
 * order. A broken property aborts, as under libFuzzer, so ctest reports the
 * input's target as failed; the sanitizer build adds ASan's and UBSan's
 * reports. Fails when it finds no input at all, so a corpus that went
 * missing does not pass as an empty one. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

// run_file feeds one file to the target, from a buffer of exactly its
// size (ASan then sees a read past the input's end); false when it cannot
// be read.
static bool run_file(const char *path) {
    FILE *file = fopen(path, "rb");
    if (!file) return false;
    struct stat st;
    uint8_t *data = NULL;
    bool ok = fstat(fileno(file), &st) == 0 && (data = malloc(st.st_size ? (size_t)st.st_size : 1)) != NULL &&
              fread(data, 1, (size_t)st.st_size, file) == (size_t)st.st_size;
    fclose(file);
    if (ok) LLVMFuzzerTestOneInput(data, (size_t)st.st_size);
    free(data);
    return ok;
}

static int visible(const struct dirent *entry) { return entry->d_name[0] != '.'; }

// run_directory feeds every file in dir; returns how many, or -1.
static long run_directory(const char *dir) {
    struct dirent **entries;
    int n = scandir(dir, &entries, visible, alphasort);
    if (n < 0) return -1;
    long ran = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (!run_file(path))
                ran = -1;
            else if (ran >= 0)
                ran++;
        }
        free(entries[i]);
    }
    free(entries);
    return ran;
}

// run_path feeds a file or a directory's files; returns how many, or -1.
static long run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) return run_directory(path);
    return run_file(path) ? 1 : -1;
}

int main(int argc, char **argv) {
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long ran = run_path(argv[i]);
        if (ran < 0) {
            fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
            return 1;
        }
        total += ran;
    }
    printf("%s: replayed %ld input(s)\n", argv[0], total);
    return total > 0 ? 0 : 1;
}
