/* Logging: level filtering, the callback target (and setters waiting for
 * the callback they replace), text and JSON-lines records, the file target
 * with rotation (and a rotation that cannot move the file), lazy argument
 * evaluation, whole lines from concurrent writers, the syslog target (to a
 * stand-in daemon's socket: each logger's ident) and configuration from
 * logging.* keys. */
#include "lz_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>

#include "core/log.h"

static char scratch[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_scratch(void) { nftw(scratch, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

// scratch_path names a file in a per-process directory removed at exit.
static const char *scratch_path(char *out, size_t size, const char *name) {
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/tmp/lzlog.XXXXXX");
        if (!mkdtemp(scratch)) { perror("mkdtemp"); exit(2); }
        atexit(remove_scratch);
    }
    snprintf(out, size, "%s/%s", scratch, name);
    return out;
}

// read_all returns the file's contents (caller frees), or NULL if missing.
static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = calloc(1, (size_t)size + 1);
    if (fread(text, 1, (size_t)size, f) != (size_t)size) size = 0;
    text[size] = '\0';
    fclose(f);
    return text;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

// fresh_files_left counts the files a rotation starts (path.rotating...)
// left beside path: each writer's own (pid, logger), none once it is done.
static int fresh_files_left(const char *path) {
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s.rotating", strrchr(path, '/') + 1);
    DIR *dir = opendir(scratch);
    int n = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (dir) closedir(dir);
    return n;
}

// count_lines counts the lines of the file at path (0 when there is none).
static int count_lines(const char *path) {
    char *text = read_all(path);
    int n = 0;
    for (const char *p = text; p && (p = strchr(p, '\n')); p++) n++;
    free(text);
    return n;
}

// configured_file_logger points config's logging.file_path at the scratch
// file name (its path into path) and configures a new logger from it.
static lz_logger_t *configured_file_logger(lz_config_t *config, char *path, size_t size, const char *name) {
    scratch_path(path, size, name);
    LZ_CHECK_INT(lz_config_set(config, "logging.file_path", path), LZ_OK);
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz__logger_configure(log, config), LZ_OK);
    return log;
}

typedef struct {
    pthread_mutex_t lock;
    int count;
    lz_log_level_t levels[16];
    char messages[16][128];
    char components[16][32];
} captured_t;

static void capture(lz_log_level_t level, const char *component, const char *message, void *arg) {
    captured_t *cap = arg;
    pthread_mutex_lock(&cap->lock);
    if (cap->count < 16) {
        cap->levels[cap->count] = level;
        snprintf(cap->messages[cap->count], sizeof cap->messages[0], "%s", message);
        snprintf(cap->components[cap->count], sizeof cap->components[0], "%s", component);
    }
    cap->count++;
    pthread_mutex_unlock(&cap->lock);
}

LZ_TEST(test_callback_receives_enabled_levels_only) {
    captured_t cap = {.lock = PTHREAD_MUTEX_INITIALIZER};
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK(log != NULL);
    LZ_CHECK_INT(lz_logger_level(log), LZ_LOG_INFO);
    LZ_CHECK_INT(lz_logger_to_callback(log, capture, &cap), LZ_OK);
    lz_logger_set_level(log, LZ_LOG_WARNING);
    LZ_CHECK_INT(lz_logger_level(log), LZ_LOG_WARNING);
    lz_logger_write(log, LZ_LOG_TRACE, "pub", "trace %d", 1);
    lz_logger_write(log, LZ_LOG_DEBUG, "pub", "debug %d", 2);
    lz_logger_write(log, LZ_LOG_INFO, "pub", "info %d", 3);
    lz_logger_write(log, LZ_LOG_WARNING, "sub", "warning %d", 4);
    lz_logger_write(log, LZ_LOG_ERROR, "req", "error %s", "five");
    LZ_LOG(log, LZ_LOG_CRITICAL, "rep", "critical %d", 6);
    lz_logger_write(log, LZ_LOG_OFF, "rep", "never"); // OFF is not a record level
    LZ_CHECK_INT(cap.count, 3);
    LZ_CHECK_INT(cap.levels[0], LZ_LOG_WARNING);
    LZ_CHECK_STR(cap.messages[0], "warning 4");
    LZ_CHECK_STR(cap.components[0], "sub");
    LZ_CHECK_INT(cap.levels[1], LZ_LOG_ERROR);
    LZ_CHECK_STR(cap.messages[1], "error five");
    LZ_CHECK_INT(cap.levels[2], LZ_LOG_CRITICAL);
    lz_logger_set_level(log, LZ_LOG_OFF);
    lz_logger_write(log, LZ_LOG_CRITICAL, "rep", "silenced");
    LZ_CHECK_INT(cap.count, 3);
    lz_logger_destroy(&log);
    LZ_CHECK(log == NULL);
    lz_logger_destroy(&log);
}

LZ_TEST(test_level_names_and_parsing) {
    lz_log_level_t level = LZ_LOG_OFF;
    LZ_CHECK_INT(lz_log_level_parse("debug", &level), LZ_OK);
    LZ_CHECK_INT(level, LZ_LOG_DEBUG);
    LZ_CHECK_INT(lz_log_level_parse("WARN", &level), LZ_OK);
    LZ_CHECK_INT(level, LZ_LOG_WARNING);
    LZ_CHECK_INT(lz_log_level_parse("Critical", &level), LZ_OK);
    LZ_CHECK_INT(level, LZ_LOG_CRITICAL);
    LZ_CHECK_INT(lz_log_level_parse("off", &level), LZ_OK);
    LZ_CHECK_INT(level, LZ_LOG_OFF);
    LZ_CHECK_INT(lz_log_level_parse("verbose", &level), LZ_EINVAL);
    LZ_CHECK(strstr(lz_last_error(), "verbose") != NULL);
    LZ_CHECK_INT(lz_log_level_parse(NULL, &level), LZ_EINVAL);
    LZ_CHECK_STR(lz_log_level_name(LZ_LOG_TRACE), "TRACE");
    LZ_CHECK_STR(lz_log_level_name(LZ_LOG_WARNING), "WARNING");
    LZ_CHECK_STR(lz_log_level_name(LZ_LOG_OFF), "OFF");
    LZ_CHECK_STR(lz_log_level_name((lz_log_level_t)42), "UNKNOWN");
}

LZ_TEST(test_bad_arguments) {
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_callback(log, NULL, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_logger_to_callback(NULL, capture, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_logger_to_file(log, NULL), LZ_EINVAL);
    LZ_CHECK_INT(lz_logger_to_file(log, "/nonexistent-dir/x.log"), LZ_EIO);
    LZ_CHECK(strstr(lz_last_error(), "/nonexistent-dir/x.log") != NULL);
    LZ_CHECK_INT(lz_logger_to_stderr(NULL), LZ_EINVAL);
    lz_logger_write(NULL, LZ_LOG_ERROR, "x", "no-op");
    LZ_LOG((lz_logger_t *)NULL, LZ_LOG_ERROR, "x", "no-op");
    LZ_CHECK_INT(lz_logger_level(NULL), LZ_LOG_OFF);
    lz_logger_set_level(log, (lz_log_level_t)99); // ignored
    LZ_CHECK_INT(lz_logger_level(log), LZ_LOG_INFO);
    lz_logger_destroy(&log);
}

LZ_TEST(test_text_format_line) {
    char path[256];
    scratch_path(path, sizeof path, "text.log");
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_file(log, path), LZ_OK);
    lz_logger_write(log, LZ_LOG_INFO, "pub", "bound %s", "tcp://*:5555");
    lz_logger_write(log, LZ_LOG_ERROR, "sub", "lost");
    lz_logger_destroy(&log);
    char *text = read_all(path);
    LZ_CHECK(text != NULL);
    // "2026-11-21T12:00:00.123Z INFO  pub: bound tcp://*:5555"
    int y, mo, d, h, mi, s, ms;
    char z;
    LZ_CHECK_INT(sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z), 8);
    LZ_CHECK(z == 'Z' && y >= 2024 && mo >= 1 && mo <= 12);
    LZ_CHECK(strncmp(text + 24, " INFO  pub: bound tcp://*:5555\n", 31) == 0);
    LZ_CHECK(strstr(text, "Z ERROR sub: lost\n") != NULL);
    struct stat st;
    LZ_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    free(text);
}

// A peer's topic or action reaches the log (a span's name, a refusal); a
// newline or terminal control in it must not start a record of its own.
LZ_TEST(test_text_records_escape_line_breaks_and_controls) {
    char path[256];
    scratch_path(path, sizeof path, "escaped.log");
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_file(log, path), LZ_OK);
    lz_logger_write(log, LZ_LOG_INFO, "sub\n", "topic a\nFAKE CRITICAL audit: admitted\r\x1b[2J\x7f \"q\" \\ \tend");
    lz_logger_write(log, LZ_LOG_INFO, "sub", "next\xc2\x85\xe2\x80\xa8\xc3\xa9\xff");
    lz_logger_destroy(&log);
    char *text = read_all(path);
    LZ_CHECK(text != NULL);
    if (!text) return;
    size_t lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    LZ_CHECK_INT((long)lines, 2);
    LZ_CHECK(strstr(text, " sub\\n: topic a\\nFAKE CRITICAL audit: admitted\\r\\u001b[2J\\u007f "
                          "\"q\" \\ \tend\n") != NULL);
    // Tab, quotes, backslashes, other UTF-8 and invalid bytes go as they are.
    LZ_CHECK(strstr(text, " sub: next\\u0085\\u2028\xc3\xa9\xff\n") != NULL);
    free(text);
}

LZ_TEST(test_json_lines_are_valid) {
    char path[256];
    scratch_path(path, sizeof path, "json.log");
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_file(log, path), LZ_OK);
    lz_logger_set_format(log, LZ_LOG_JSON);
    lz_logger_write(log, LZ_LOG_WARNING, "p\"ub", "say \"hi\"\\ now\nnext\tcol\x01 end");
    lz_logger_write(log, LZ_LOG_INFO, "req", "plain");
    lz_logger_write(log, LZ_LOG_INFO, "utf8", "caf\xc3\xa9 \xff\xc3 \xed\xa0\x80!");
    lz_logger_destroy(&log);
    char *text = read_all(path);
    LZ_CHECK(text != NULL);
    LZ_CHECK(strncmp(text, "{\"ts\":\"", 7) == 0);
    LZ_CHECK(text[7 + 23] == 'Z' && text[7 + 10] == 'T'); // ISO 8601 UTC with ms
    LZ_CHECK(strstr(text, "Z\",\"level\":\"WARNING\",\"component\":\"p\\\"ub\","
                          "\"msg\":\"say \\\"hi\\\"\\\\ now\\nnext\\tcol\\u0001 end\"}\n") != NULL);
    LZ_CHECK(strstr(text, "\"level\":\"INFO\",\"component\":\"req\",\"msg\":\"plain\"}\n") != NULL);
    // Valid UTF-8 passes through; stray bytes and surrogates become U+FFFD.
    LZ_CHECK(strstr(text, "\"msg\":\"caf\xc3\xa9 \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd!\"}\n") != NULL);
    // Exactly three lines: the escapes kept the newline inside the record.
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    LZ_CHECK_INT(lines, 3);
    free(text);
}

#define FFFD "\\ufffd" // U+FFFD as a JSON escape

// Four-byte UTF-8 in JSON records: characters from U+10000 to U+10FFFF pass
// through as they are; overlong forms (F0 needs a second byte of 90 or
// more), code points past U+10FFFF (F4 needs 8F or less), lead bytes past F4
// and sequences cut short become U+FFFD, one for each byte that cannot
// start a character, so every line stays valid UTF-8.
LZ_TEST(test_json_lines_check_four_byte_utf8) {
    static const struct { const char *in, *out; } cases[] = {
        {"grin \xF0\x9F\x98\x80!", "grin \xF0\x9F\x98\x80!"},                          // U+1F600
        {"\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF", "\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF"},   // U+10000, U+10FFFF
        {"\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD},                                    // U+FFFF, overlong
        {"\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD},                                    // U+110000
        {"\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD},                                    // no such lead byte
        {"\xF0\x9F\x98!", FFFD FFFD FFFD "!"},                                        // cut short by a character
        {"end \xF0\x9F", "end " FFFD FFFD},                                           // cut short by the end
    };
    const size_t ncases = sizeof cases / sizeof cases[0];
    char path[256];
    scratch_path(path, sizeof path, "utf8.log");
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_file(log, path), LZ_OK);
    lz_logger_set_format(log, LZ_LOG_JSON);
    for (size_t i = 0; i < ncases; i++) lz_logger_write(log, LZ_LOG_INFO, "utf8", "%s", cases[i].in);
    lz_logger_destroy(&log);
    char *text = read_all(path);
    LZ_CHECK(text != NULL);
    size_t i = 0;
    for (char *line = text, *nl; text && (nl = strchr(line, '\n')); line = nl + 1, i++) {
        *nl = '\0';
        lz_value_t *record = lz_value_from_json(line, strlen(line)); // strict: refuses bad UTF-8
        LZ_CHECK(record != NULL);
        char want[128];
        snprintf(want, sizeof want, "\"msg\":\"%s\"}", i < ncases ? cases[i].out : "");
        if (!record || !strstr(line, want)) printf("  record %zu: %s\n  expected %s\n", i, line, want);
        LZ_CHECK(strstr(line, want) != NULL);
        lz_value_destroy(&record);
    }
    LZ_CHECK_INT(i, ncases);
    free(text);
}

LZ_TEST(test_file_rotation) {
    char path[256], name[300];
    lz_config_t *config = LZ_TEST_CONFIG("logging.max_file_size=300", "logging.backup_count=2");
    lz_logger_t *log = configured_file_logger(config, path, sizeof path, "rotate.log");
    for (int i = 0; i < 42; i++) // 70-byte lines: a rotation every 5 records
        lz_logger_write(log, LZ_LOG_INFO, "rot", "record %02d padded to a fair length", i);
    lz_logger_destroy(&log);
    lz_config_destroy(&config);

    LZ_CHECK(file_size(path) >= 0 && file_size(path) < 300);
    for (int i = 1; i <= 2; i++) {
        snprintf(name, sizeof name, "%s.%d", path, i);
        long size = file_size(name);
        LZ_CHECK(size >= 300 && size < 400); // rotated just after passing the limit
        char *text = read_all(name);
        LZ_CHECK(text && text[strlen(text) - 1] == '\n');
        free(text);
    }
    snprintf(name, sizeof name, "%s.3", path);
    LZ_CHECK_INT(file_size(name), -1); // backup_count bounds the set
    // The newest records are in the live file, the older in .1, then .2.
    char *live = read_all(path);
    LZ_CHECK(live && strstr(live, "record 41") != NULL && strstr(live, "record 39") == NULL);
    free(live);
    snprintf(name, sizeof name, "%s.1", path);
    char *older = read_all(name);
    LZ_CHECK(older && strstr(older, "record 39") != NULL && strstr(older, "record 41") == NULL);
    free(older);
}

// Rotation opens the new file before it moves any: with no descriptor left
// the records go on into the full file (before, every record was dropped
// from the failed reopen on), and the rotation happens once one is free.
LZ_TEST(test_rotation_without_a_descriptor_keeps_records) {
    char path[256], name[300];
    lz_config_t *config = LZ_TEST_CONFIG("logging.max_file_size=300", "logging.backup_count=2");
    lz_logger_t *log = configured_file_logger(config, path, sizeof path, "nofd.log");
    struct rlimit old;
    LZ_CHECK_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
    int fds[4096], nfds = 0;
    int highest = dup(0);
    close(highest);
    LZ_CHECK_INT(setrlimit(RLIMIT_NOFILE, &(struct rlimit){(rlim_t)highest + 64, old.rlim_max}), 0);
    while (nfds < (int)(sizeof fds / sizeof fds[0]) && (fds[nfds] = dup(0)) >= 0) nfds++;
    LZ_CHECK(nfds < (int)(sizeof fds / sizeof fds[0])); // the descriptors ran out
    for (int i = 0; i < 12; i++) // 70-byte lines: past the limit after 5
        lz_logger_write(log, LZ_LOG_INFO, "rot", "starved %02d padded to a fair length", i);
    snprintf(name, sizeof name, "%s.1", path);
    LZ_CHECK_INT(file_size(name), -1); // nothing moved
    while (nfds > 0) close(fds[--nfds]);
    LZ_CHECK_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
    lz_logger_write(log, LZ_LOG_INFO, "rot", "fed again, padded to a fair length");
    lz_logger_write(log, LZ_LOG_INFO, "rot", "and after the rotation");
    lz_logger_destroy(&log);
    lz_config_destroy(&config);

    char *older = read_all(name), *live = read_all(path);
    LZ_CHECK(older && strstr(older, "starved 00") && strstr(older, "starved 11") && strstr(older, "fed again"));
    LZ_CHECK(live && strcmp(strchr(live, 'Z') + 1, " INFO  rot: and after the rotation\n") == 0);
    LZ_CHECK_INT(fresh_files_left(path), 0);
    free(older);
    free(live);
}

// When the full file cannot be moved to path.1 (here a directory there),
// rotation leaves it: every record stays in it (before, path.rotating
// replaced it, and each try unlinked what it held), with one warning
// saying why, however many tries fail.
LZ_TEST(test_rotation_that_cannot_move_the_file_keeps_records) {
    char path[256], name[300];
    lz_config_t *config = LZ_TEST_CONFIG("logging.max_file_size=300", "logging.backup_count=1");
    lz_logger_t *log = configured_file_logger(config, path, sizeof path, "stuck.log");
    snprintf(name, sizeof name, "%s.1", path);
    LZ_CHECK_INT(mkdir(name, 0700), 0);
    for (int i = 0; i < 20; i++) // 70-byte lines: past the limit after 5
        lz_logger_write(log, LZ_LOG_INFO, "rot", "stuck %02d padded to a fair length", i);
    lz_logger_destroy(&log);
    lz_config_destroy(&config);
    char *live = read_all(path);
    for (int i = 0; live && i < 20; i++) {
        char record[32];
        snprintf(record, sizeof record, "stuck %02d padded", i);
        LZ_CHECK(strstr(live, record) != NULL);
    }
    const char *warning = live ? strstr(live, "WARNING log: cannot rotate ") : NULL;
    LZ_CHECK(warning && strstr(warning, "Is a directory") && !strstr(warning + 1, "WARNING"));
    LZ_CHECK_INT(fresh_files_left(path), 0);
    free(live);
}

// A rename of the shift that fails (here path.2 onto path.3, a directory
// that is not empty) ends the rotation before anything more moves, and no
// later record tries again: every try used to go on past the failure,
// putting path.1 over path.2, so one backup was lost a rotation.
LZ_TEST(test_rotation_stops_at_a_backup_it_cannot_shift) {
    char path[256], name[300], inner[320];
    lz_config_t *config = LZ_TEST_CONFIG("logging.max_file_size=300", "logging.backup_count=3");
    lz_logger_t *log = configured_file_logger(config, path, sizeof path, "shift.log");
    for (int i = 1; i <= 2; i++) {
        snprintf(name, sizeof name, "%s.%d", path, i);
        FILE *backup = fopen(name, "w");
        LZ_CHECK(backup != NULL);
        if (backup) fprintf(backup, "backup %d\n", i), fclose(backup);
    }
    snprintf(name, sizeof name, "%s.3", path);
    LZ_CHECK_INT(mkdir(name, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keep", name);
    FILE *keep = fopen(inner, "w");
    if (keep) fclose(keep);
    for (int i = 0; i < 20; i++)
        lz_logger_write(log, LZ_LOG_INFO, "rot", "shift %02d padded to a fair length", i);
    lz_logger_destroy(&log);
    lz_config_destroy(&config);
    for (int i = 1; i <= 2; i++) {
        char want[16];
        snprintf(name, sizeof name, "%s.%d", path, i);
        snprintf(want, sizeof want, "backup %d\n", i);
        char *text = read_all(name);
        LZ_CHECK(text && strcmp(text, want) == 0);
        free(text);
    }
    char *live = read_all(path);
    LZ_CHECK(live && strstr(live, "shift 00 padded") && strstr(live, "shift 19 padded"));
    const char *warning = live ? strstr(live, "WARNING log: cannot rotate ") : NULL;
    LZ_CHECK(warning && !strstr(warning + 1, "WARNING"));
    free(live);
    unlink(inner);
}

// A slow callback: its first call is held inside until the test lets it go.
typedef struct {
    lz_logger_t *log;
    atomic_bool inside, released, returned;
    atomic_bool replaced;          // the setter replacing it returned
    atomic_bool returned_first;    // the callback had returned when it did
    atomic_int new_records;        // records the callback that replaced it got
} slow_t;

static void slow_callback(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level, (void)component, (void)message;
    slow_t *slow = arg;
    if (atomic_exchange(&slow->inside, true)) return; // the test's probes: the first call alone is slow
    LZ_TEST_WAIT_UNTIL(atomic_load(&slow->released), 10000);
    atomic_store(&slow->returned, true);
}

static void count_new(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level, (void)component, (void)message;
    atomic_fetch_add(&((slow_t *)arg)->new_records, 1);
}

static void *write_one(void *arg) {
    lz_logger_write(((slow_t *)arg)->log, LZ_LOG_INFO, "slow", "held in the callback");
    return NULL;
}

static void *replace_target(void *arg) {
    slow_t *slow = arg;
    LZ_CHECK_INT(lz_logger_to_callback(slow->log, count_new, slow), LZ_OK);
    atomic_store(&slow->returned_first, atomic_load(&slow->returned));
    atomic_store(&slow->replaced, true);
    return NULL;
}

// A target setter returns only once the callback it replaced has returned
// on every thread, so that its arg may be freed then (before, it returned
// at once, the callback still running). Records written meanwhile go to
// the new target: the setter waits for old calls only.
LZ_TEST(test_replacing_a_callback_waits_for_its_calls) {
    slow_t slow = {.log = lz_logger_new()};
    LZ_CHECK_INT(lz_logger_to_callback(slow.log, slow_callback, &slow), LZ_OK);
    pthread_t writer, replacer;
    pthread_create(&writer, NULL, write_one, &slow);
    LZ_TEST_WAIT_UNTIL(atomic_load(&slow.inside), 5000);
    LZ_CHECK(atomic_load(&slow.inside));
    pthread_create(&replacer, NULL, replace_target, &slow);
    // Once a record reaches the new callback, the setter has installed it.
    LZ_TEST_WAIT_UNTIL((lz_logger_write(slow.log, LZ_LOG_INFO, "t", "probe"), atomic_load(&slow.new_records) > 0),
                       5000);
    LZ_CHECK(atomic_load(&slow.new_records) > 0);
    LZ_TEST_WAIT_UNTIL(atomic_load(&slow.replaced), 300); // bounded: it must not return now
    LZ_CHECK(!atomic_load(&slow.replaced));
    atomic_store(&slow.released, true);
    pthread_join(replacer, NULL);
    pthread_join(writer, NULL);
    LZ_CHECK(atomic_load(&slow.returned_first));
    lz_logger_destroy(&slow.log);
}

static void replace_own_target(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level, (void)component;
    lz_logger_t *log = arg;
    static slow_t counted;
    if (strcmp(message, "nested") != 0) lz_logger_write(log, LZ_LOG_INFO, "t", "nested");
    else LZ_CHECK_INT(lz_logger_to_callback(log, count_new, &counted), LZ_OK);
}

// A callback that replaces its own logger's target, even from a record it
// logged itself, does not wait for itself.
LZ_TEST(test_a_callback_may_replace_its_own_target) {
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_callback(log, replace_own_target, log), LZ_OK);
    lz_logger_write(log, LZ_LOG_INFO, "t", "outer");
    LZ_CHECK_INT(lz_logger_to_stderr(log), LZ_OK); // nothing is counted as running any more
    lz_logger_destroy(&log);
}

typedef struct {
    lz_logger_t *log;
    atomic_bool inside;    // the first callback runs
    atomic_bool replacing; // the other thread's setter has been called
    atomic_bool replaced;  // and has returned
    atomic_bool done;      // the first callback has returned
} overlap_t;

// first_callback replaces its logger's target itself while another
// thread's setter waits for this very call; it checks that setter is
// still waiting, then returns.
static void first_callback(lz_log_level_t level, const char *component, const char *message, void *arg) {
    (void)level, (void)component, (void)message;
    overlap_t *o = arg;
    atomic_store(&o->inside, true);
    LZ_TEST_WAIT_UNTIL(atomic_load(&o->replacing), 5000);
    lz_test_sleep_ms(50); // for that setter to be waiting (nothing tells when it is)
    LZ_CHECK_INT(lz_logger_to_stderr(o->log), LZ_OK); // nested: does not wait
    lz_test_sleep_ms(50);
    LZ_CHECK(!atomic_load(&o->replaced));
    atomic_store(&o->done, true);
}

static void *log_once(void *arg) {
    lz_logger_write(((overlap_t *)arg)->log, LZ_LOG_INFO, "t", "first");
    return NULL;
}

// A setter that a callback calls on its own thread does not wait, and
// does not let a setter on another thread, which waits for that callback,
// return before it does. It used to take its own call off the count: the
// other setter then returned while the callback still ran (its arg freed
// under it, valgrind showed).
LZ_TEST(test_a_nested_setter_leaves_other_setters_waiting) {
    overlap_t o = {.log = lz_logger_new()};
    LZ_CHECK_INT(lz_logger_to_callback(o.log, first_callback, &o), LZ_OK);
    pthread_t writer;
    pthread_create(&writer, NULL, log_once, &o);
    LZ_TEST_WAIT_UNTIL(atomic_load(&o.inside), 5000);
    atomic_store(&o.replacing, true);
    LZ_CHECK_INT(lz_logger_to_stderr(o.log), LZ_OK);
    LZ_CHECK(atomic_load(&o.done)); // returned only once the callback had
    atomic_store(&o.replaced, true);
    pthread_join(writer, NULL);
    lz_logger_destroy(&o.log);
}

LZ_TEST(test_disabled_level_skips_arguments) {
    captured_t cap = {.lock = PTHREAD_MUTEX_INITIALIZER};
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_callback(log, capture, &cap), LZ_OK);
    int evaluated = 0;
    LZ_LOG(log, LZ_LOG_DEBUG, "pub", "%d", ++evaluated);
    LZ_LOG(log, LZ_LOG_TRACE, "pub", "%d", ++evaluated);
    LZ_CHECK_INT(evaluated, 0);
    LZ_CHECK_INT(cap.count, 0);
    LZ_LOG(log, LZ_LOG_INFO, "pub", "%d", ++evaluated);
    LZ_CHECK_INT(evaluated, 1);
    LZ_CHECK_INT(cap.count, 1);
    LZ_CHECK_STR(cap.messages[0], "1");
    lz_logger_destroy(&log);
}

#define WRITERS 4
#define RECORDS 500
#define PAYLOAD 300

typedef struct { lz_logger_t *log; char letter; } writer_t;

static void *writer_main(void *arg) {
    writer_t *w = arg;
    char payload[PAYLOAD + 1];
    memset(payload, w->letter, PAYLOAD);
    payload[PAYLOAD] = '\0';
    for (int i = 0; i < RECORDS; i++) lz_logger_write(w->log, LZ_LOG_INFO, "mt", "%c:%s", w->letter, payload);
    return NULL;
}

// line_is_whole checks a record line carries one writer's full payload.
static bool line_is_whole(const char *line, size_t len) {
    const char *msg = strstr(line, " mt: ");
    if (!msg || (size_t)(msg - line) > len) return false;
    msg += 5;
    char letter = msg[0];
    if (msg[1] != ':' || (size_t)(line + len - (msg + 2)) != PAYLOAD) return false;
    for (int i = 0; i < PAYLOAD; i++)
        if (msg[2 + i] != letter) return false;
    return true;
}

LZ_TEST(test_concurrent_writers_produce_whole_lines) {
    char path[256];
    scratch_path(path, sizeof path, "threads.log");
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_file(log, path), LZ_OK);
    pthread_t threads[WRITERS];
    writer_t writers[WRITERS];
    for (int t = 0; t < WRITERS; t++) {
        writers[t] = (writer_t){log, (char)('a' + t)};
        pthread_create(&threads[t], NULL, writer_main, &writers[t]);
    }
    for (int t = 0; t < WRITERS; t++) pthread_join(threads[t], NULL);
    lz_logger_destroy(&log);

    char *text = read_all(path);
    LZ_CHECK(text != NULL);
    int lines = 0, whole = 0, per_letter[WRITERS] = {0};
    for (char *line = text, *nl; text && (nl = strchr(line, '\n')); line = nl + 1) {
        lines++;
        if (line_is_whole(line, (size_t)(nl - line))) {
            whole++;
            per_letter[strstr(line, " mt: ")[5] - 'a']++;
        }
    }
    LZ_CHECK_INT(lines, WRITERS * RECORDS);
    LZ_CHECK_INT(whole, WRITERS * RECORDS);
    for (int t = 0; t < WRITERS; t++) LZ_CHECK_INT(per_letter[t], RECORDS);
    free(text);
}

// A log file removed (rm) or moved away (logrotate's mv) at its full size:
// the next record opens path again and goes there, as Python's handler
// reopens its base name. Before, renaming the missing path to path.1 failed
// (ENOENT), rotation stopped for good, and every later record went into
// the file that left: the removed one's were lost.
LZ_TEST(test_a_file_removed_or_moved_away_is_made_again_at_its_path) {
    char path[256], moved[300], name[300];
    lz_config_t *config = LZ_TEST_CONFIG("logging.max_file_size=300", "logging.backup_count=2");
    lz_logger_t *log = configured_file_logger(config, path, sizeof path, "gone.log");
    for (int i = 0; i < 3; i++) lz_logger_write(log, LZ_LOG_INFO, "rot", "before %02d padded to a fair length", i);
    LZ_CHECK_INT(unlink(path), 0);
    // 71-byte lines: the removed file is full after 2 more, the 4 others go to path.
    for (int i = 0; i < 6; i++) lz_logger_write(log, LZ_LOG_INFO, "rot", "removed %02d padded to a fair length", i);
    char *live = read_all(path);
    LZ_CHECK(live && strstr(live, "removed 02 padded") && strstr(live, "removed 05 padded") && !strstr(live, "before"));
    free(live);

    snprintf(moved, sizeof moved, "%s.moved", path);
    LZ_CHECK_INT(rename(path, moved), 0);
    for (int i = 0; i < 5; i++) lz_logger_write(log, LZ_LOG_INFO, "rot", "moved %02d padded to a fair length", i);
    lz_logger_destroy(&log);
    lz_config_destroy(&config);
    // Every record is kept: in the moved file until it was full, at path after.
    char *away = read_all(moved);
    LZ_CHECK(away && strstr(away, "removed 05 padded") && strstr(away, "moved 00 padded") && !strstr(away, "moved 01"));
    free(away);
    live = read_all(path);
    LZ_CHECK(live && strstr(live, "moved 01 padded") && strstr(live, "moved 04 padded") && !strstr(live, "moved 00"));
    free(live);
    LZ_CHECK_INT(count_lines(moved) + count_lines(path), 9);
    LZ_CHECK(file_size(moved) >= 300 && file_size(moved) < 400);
    snprintf(name, sizeof name, "%s.1", path);
    LZ_CHECK_INT(file_size(name), -1); // nothing shifted: who took the file away rotated
    LZ_CHECK_INT(fresh_files_left(path), 0);
}

#define PATH_WRITERS 4  // threads, half on each logger
#define PATH_RECORDS 400

static void *path_writer_main(void *arg) {
    writer_t *w = arg;
    for (int i = 0; i < PATH_RECORDS; i++)
        lz_logger_write(w->log, LZ_LOG_INFO, "two", "writer %c record %03d padded", w->letter, i);
    return NULL;
}

// Two loggers on one path (two contexts of a process, as two processes
// would be), each past max_file_size many times: whichever rotates, the
// other finds its file moved away and follows path. Before, the other
// rotated again from the backup its file had become (path.1 renamed onto
// path.2 and the first's fresh file onto path.1), their fresh files had
// one name (one's unlink removed the other's, its records with it), and a
// missing path stopped rotation for good.
LZ_TEST(test_two_loggers_on_one_path_lose_no_record) {
    char path[256], name[300];
    lz_config_t *config = LZ_TEST_CONFIG("logging.max_file_size=2000", "logging.backup_count=200");
    lz_logger_t *logs[2];
    logs[0] = configured_file_logger(config, path, sizeof path, "shared.log");
    logs[1] = configured_file_logger(config, path, sizeof path, "shared.log");
    pthread_t threads[PATH_WRITERS];
    writer_t writers[PATH_WRITERS];
    for (int t = 0; t < PATH_WRITERS; t++) {
        writers[t] = (writer_t){logs[t % 2], (char)('a' + t)};
        pthread_create(&threads[t], NULL, path_writer_main, &writers[t]);
    }
    for (int t = 0; t < PATH_WRITERS; t++) pthread_join(threads[t], NULL);
    lz_logger_destroy(&logs[0]);
    lz_logger_destroy(&logs[1]);
    lz_config_destroy(&config);

    LZ_CHECK(file_size(path) >= 0);
    int lines = count_lines(path), files = 1; // 1600 lines of 64 bytes: some 50 files of 2000
    for (int i = 1; i <= 200; i++) {
        snprintf(name, sizeof name, "%s.%d", path, i);
        if (file_size(name) < 0) continue;
        files++;
        lines += count_lines(name);
        LZ_CHECK(file_size(name) < 2000 + 64 * PATH_WRITERS); // rotated at once, by one or the other
    }
    LZ_CHECK_INT(lines, PATH_WRITERS * PATH_RECORDS);
    LZ_CHECK(files > 20 && files < 200);
    snprintf(name, sizeof name, "%s.201", path);
    LZ_CHECK_INT(file_size(name), -1);
    LZ_CHECK_INT(fresh_files_left(path), 0);
}

LZ_TEST(test_configure_from_config) {
    char path[256];
    lz_config_t *config = LZ_TEST_CONFIG("logging.format=json", "debug=true");
    lz_logger_t *log = configured_file_logger(config, path, sizeof path, "configured.log");
    LZ_CHECK_INT(lz_logger_level(log), LZ_LOG_DEBUG);
    lz_logger_write(log, LZ_LOG_DEBUG, "cfg", "to the file");
    char *text = read_all(path);
    LZ_CHECK(text && strstr(text, "\"level\":\"DEBUG\",\"component\":\"cfg\",\"msg\":\"to the file\"}"));
    free(text);

    // A failed configure leaves the logger as it was: still the callback.
    captured_t cap = {.lock = PTHREAD_MUTEX_INITIALIZER};
    LZ_CHECK_INT(lz_logger_to_callback(log, capture, &cap), LZ_OK);
    LZ_CHECK_INT(lz_config_set(config, "logging.file_path", "/nonexistent-dir/x.log"), LZ_OK);
    LZ_CHECK_INT(lz_config_set(config, "logging.level", "error"), LZ_OK);
    LZ_CHECK_INT(lz__logger_configure(log, config), LZ_EIO);
    LZ_CHECK_INT(lz_logger_level(log), LZ_LOG_DEBUG);
    lz_logger_write(log, LZ_LOG_INFO, "cfg", "still here");
    LZ_CHECK_INT(cap.count, 1);

    // target none: the level is kept, nothing is written anywhere.
    LZ_CHECK_INT(lz_config_set(config, "logging.target", "none"), LZ_OK);
    LZ_CHECK_INT(lz__logger_configure(log, config), LZ_OK);
    LZ_CHECK_INT(lz_logger_level(log), LZ_LOG_ERROR);
    lz_logger_write(log, LZ_LOG_ERROR, "cfg", "dropped");
    LZ_CHECK_INT(cap.count, 1);
    LZ_CHECK_INT(lz__logger_configure(NULL, config), LZ_EINVAL);
    lz_logger_destroy(&log);
    lz_config_destroy(&config);
}

// syslog_listen stands in for the syslog daemon: a datagram socket (a
// stream one with stream) in the scratch directory, where syslog targets
// opened from now on send. syslog_unlisten closes it and points them back
// at /dev/log.
static int syslog_listen(int type) {
    char path[256];
    struct sockaddr_un at = {.sun_family = AF_UNIX};
    snprintf(at.sun_path, sizeof at.sun_path, "%s", scratch_path(path, sizeof path, "syslog.sock"));
    unlink(path);
    int fd = socket(AF_UNIX, type, 0);
    struct timeval two = {2, 0};
    LZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&at, sizeof at) == 0);
    LZ_CHECK_INT(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &two, sizeof two), 0);
    if (type == SOCK_STREAM) LZ_CHECK_INT(listen(fd, 4), 0);
    lz__log_syslog_path(path);
    return fd;
}

static void syslog_unlisten(int fd) {
    close(fd);
    lz__log_syslog_path("/dev/log");
}

// syslog_record receives one datagram from fd into buf ("" when none came
// within fd's timeout) and returns it.
static const char *syslog_record(int fd, char *buf, size_t size) {
    ssize_t n = recv(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

// syslog_is: whether record is "<priority>Mmm dd hh:mm:ss " then tail.
static bool syslog_is(const char *record, int priority, const char *tail) {
    char want[32];
    int n = snprintf(want, sizeof want, "<%d>", priority);
    return strncmp(record, want, (size_t)n) == 0 && strlen(record) > (size_t)n + 16 && record[n + 3] == ' ' &&
           record[n + 6] == ' ' && record[n + 9] == ':' && record[n + 15] == ' ' &&
           strcmp(record + n + 16, tail) == 0;
}

LZ_TEST(test_syslog_and_stderr_targets) {
    int daemon = syslog_listen(SOCK_DGRAM);
    char buf[512], tail[128];
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_syslog(log, "liberzmq-test"), LZ_OK);
    lz_logger_set_level(log, LZ_LOG_CRITICAL);
    lz_logger_write(log, LZ_LOG_ERROR, "test", "filtered before syslog");
    lz_logger_write(log, LZ_LOG_CRITICAL, "test", "sent");
    snprintf(tail, sizeof tail, "liberzmq-test[%d]: test: sent", (int)getpid());
    LZ_CHECK(syslog_is(syslog_record(daemon, buf, sizeof buf), LOG_USER | LOG_CRIT, tail));
    LZ_CHECK_INT(lz_logger_to_stderr(log), LZ_OK);
    LZ_CHECK_INT(lz_logger_to_syslog(log, NULL), LZ_OK);
    lz_logger_write(log, LZ_LOG_CRITICAL, "test", "default ident");
    snprintf(tail, sizeof tail, "liberzmq[%d]: test: default ident", (int)getpid());
    LZ_CHECK(syslog_is(syslog_record(daemon, buf, sizeof buf), LOG_USER | LOG_CRIT, tail));
    lz_logger_destroy(&log);
    syslog_unlisten(daemon);
}

// Each logger on syslog sends with its own ident, whatever the others do:
// syslog(3)'s ident is the process's, so the last logger's was on every
// record, and destroying a logger (closelog) took it from the others too.
LZ_TEST(test_syslog_idents_are_per_logger) {
    int daemon = syslog_listen(SOCK_DGRAM), pid = (int)getpid();
    char buf[512], tail[128];
    lz_logger_t *a = lz_logger_new(), *b = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_syslog(a, "alpha"), LZ_OK);
    LZ_CHECK_INT(lz_logger_to_syslog(b, "beta"), LZ_OK);
    lz_logger_write(a, LZ_LOG_WARNING, "comp", "from A");
    snprintf(tail, sizeof tail, "alpha[%d]: comp: from A", pid);
    LZ_CHECK(syslog_is(syslog_record(daemon, buf, sizeof buf), LOG_USER | LOG_WARNING, tail));
    lz_logger_write(b, LZ_LOG_ERROR, "comp", "from B");
    snprintf(tail, sizeof tail, "beta[%d]: comp: from B", pid);
    LZ_CHECK(syslog_is(syslog_record(daemon, buf, sizeof buf), LOG_USER | LOG_ERR, tail));
    lz_logger_destroy(&b);
    lz_logger_write(a, LZ_LOG_INFO, "comp", "A after B is gone");
    snprintf(tail, sizeof tail, "alpha[%d]: comp: A after B is gone", pid);
    LZ_CHECK(syslog_is(syslog_record(daemon, buf, sizeof buf), LOG_USER | LOG_INFO, tail));
    // The daemon restarts: the next record connects again.
    syslog_unlisten(daemon);
    daemon = syslog_listen(SOCK_DGRAM);
    lz_logger_write(a, LZ_LOG_INFO, "comp", "after a restart");
    snprintf(tail, sizeof tail, "alpha[%d]: comp: after a restart", pid);
    LZ_CHECK(syslog_is(syslog_record(daemon, buf, sizeof buf), LOG_USER | LOG_INFO, tail));
    lz_logger_destroy(&a);
    syslog_unlisten(daemon);
}

// A daemon listening on a stream socket gets records ended with a NUL, as
// syslog(3) sends them there.
LZ_TEST(test_syslog_over_a_stream_socket) {
    int daemon = syslog_listen(SOCK_STREAM);
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_syslog(log, "streamed"), LZ_OK);
    int peer = accept(daemon, NULL, NULL);
    lz_logger_write(log, LZ_LOG_INFO, "comp", "one");
    lz_logger_write(log, LZ_LOG_INFO, "comp", "two");
    lz_logger_destroy(&log);
    char buf[512], tail[128];
    size_t len = 0;
    struct timeval two = {2, 0};
    setsockopt(peer, SOL_SOCKET, SO_RCVTIMEO, &two, sizeof two);
    for (ssize_t got; len < sizeof buf - 1 && (got = read(peer, buf + len, sizeof buf - 1 - len)) > 0;)
        len += (size_t)got;
    buf[len] = '\0';
    LZ_CHECK(len > strlen(buf) && buf[len - 1] == '\0');
    snprintf(tail, sizeof tail, "streamed[%d]: comp: one", (int)getpid());
    LZ_CHECK(syslog_is(buf, LOG_USER | LOG_INFO, tail));
    snprintf(tail, sizeof tail, "streamed[%d]: comp: two", (int)getpid());
    LZ_CHECK(len > strlen(buf) + 1 && syslog_is(buf + strlen(buf) + 1, LOG_USER | LOG_INFO, tail));
    close(peer);
    syslog_unlisten(daemon);
}

// stderr_to points standard error at path, or with path NULL puts it back.
static void stderr_to(const char *path) {
    static int saved = -1;
    fflush(stderr);
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        saved = dup(2);
        LZ_CHECK(fd >= 0 && saved >= 0 && dup2(fd, 2) == 2);
        if (fd >= 0) close(fd);
    } else if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
        saved = -1;
    }
}

// logging.target syslog sends records, text or JSON, of every level to
// syslog in place of the logger's earlier target: the callback it had
// sees none, nor does standard error, which does see a record once the
// logger goes back to it.
LZ_TEST(test_syslog_target_from_config) {
    int daemon = syslog_listen(SOCK_DGRAM);
    char buf[512], tail[128];
    static const int priorities[] = {LOG_DEBUG, LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT};
    captured_t cap = {.lock = PTHREAD_MUTEX_INITIALIZER};
    lz_config_t *config = LZ_TEST_CONFIG("logging.target=syslog", "logging.syslog_ident=liberzmq-test",
                                         "logging.level=trace");
    lz_logger_t *log = lz_logger_new();
    LZ_CHECK_INT(lz_logger_to_callback(log, capture, &cap), LZ_OK);
    LZ_CHECK_INT(lz__logger_configure(log, config), LZ_OK);
    LZ_CHECK_INT(lz_logger_level(log), LZ_LOG_TRACE);
    for (int level = LZ_LOG_TRACE; level < LZ_LOG_OFF; level++) {
        lz_logger_write(log, (lz_log_level_t)level, "sys", "text record at %s", lz_log_level_name(level));
        snprintf(tail, sizeof tail, "liberzmq-test[%d]: sys: text record at %s", (int)getpid(),
                 lz_log_level_name(level));
        LZ_CHECK(syslog_is(syslog_record(daemon, buf, sizeof buf), LOG_USER | priorities[level], tail));
    }
    lz_logger_set_format(log, LZ_LOG_JSON);
    lz_logger_write(log, LZ_LOG_CRITICAL, "sys", "JSON record");
    syslog_record(daemon, buf, sizeof buf);
    LZ_CHECK(strstr(buf, "]: {\"ts\":\"") && strstr(buf, "\"msg\":\"JSON record\"}"));
    LZ_CHECK_INT(cap.count, 0);
    // Standard error is caught only now, after every level went through
    // once, so that a sanitizer's report on one of them would not be.
    char path[256];
    stderr_to(scratch_path(path, sizeof path, "stderr.log"));
    lz_logger_write(log, LZ_LOG_ERROR, "sys", "one more record");
    LZ_CHECK_INT(lz_logger_to_stderr(log), LZ_OK);
    lz_logger_write(log, LZ_LOG_INFO, "sys", "to standard error");
    stderr_to(NULL);
    char *text = read_all(path);
    LZ_CHECK(text && strstr(text, "to standard error") && !strstr(text, "record"));
    free(text);
    lz_logger_destroy(&log);
    lz_config_destroy(&config);
    syslog_unlisten(daemon);
}

LZ_TEST_MAIN(LZ_CASE(test_callback_receives_enabled_levels_only),
             LZ_CASE(test_level_names_and_parsing), LZ_CASE(test_bad_arguments),
             LZ_CASE(test_text_format_line), LZ_CASE(test_text_records_escape_line_breaks_and_controls),
             LZ_CASE(test_json_lines_are_valid),
             LZ_CASE(test_json_lines_check_four_byte_utf8),
             LZ_CASE(test_file_rotation), LZ_CASE(test_rotation_without_a_descriptor_keeps_records),
             LZ_CASE(test_rotation_that_cannot_move_the_file_keeps_records),
             LZ_CASE(test_disabled_level_skips_arguments),
             LZ_CASE(test_replacing_a_callback_waits_for_its_calls),
             LZ_CASE(test_a_callback_may_replace_its_own_target), LZ_CASE(test_a_nested_setter_leaves_other_setters_waiting),
             LZ_CASE(test_rotation_stops_at_a_backup_it_cannot_shift),
             LZ_CASE(test_a_file_removed_or_moved_away_is_made_again_at_its_path),
             LZ_CASE(test_two_loggers_on_one_path_lose_no_record),
             LZ_CASE(test_concurrent_writers_produce_whole_lines),
             LZ_CASE(test_configure_from_config), LZ_CASE(test_syslog_and_stderr_targets),
             LZ_CASE(test_syslog_idents_are_per_logger), LZ_CASE(test_syslog_over_a_stream_socket),
             LZ_CASE(test_syslog_target_from_config))
