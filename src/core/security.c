/* Security: CURVE keys and PLAIN user names, roles for sockets, and the ZAP
 * handler that admits or refuses each peer by its CURVE key, its PLAIN
 * user name and password, its GSSAPI principal (gssapi.c holds the rest of
 * that mechanism), and its address, with an audit log. libzmq does
 * the cryptography (through libsodium) and asks the handler over
 * inproc://zeromq.zap.01 whenever a socket with a ZAP domain, a CURVE,
 * PLAIN or GSSAPI server accepts a peer. PLAIN passwords are checked
 * against crypt(3) hashes (libxcrypt), never stored. */
#include "core/security.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "core/eintr.h"
#include "core/envelope.h"
#include "core/error.h"
#include "core/hex.h"
#include "core/node.h"
#include "core/regular_file.h"
#include "core/sockopt.h"

#define KEY_TEXT 40  // Z85 characters of a 32-byte key
#define KEY_BYTES 32
// Our server sockets' ZAP domain. The handler serves every domain the same.
#define ZAP_DOMAIN "liberzmq"
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
// Separators in key and address lists (Z85 has neither).
#define LIST_SEPARATORS ", \t\r\n"
// The longest peer address libzmq gives (getnameinfo's numeric form): an
// IPv6 address, '%' and its interface's name, and the terminating NUL.
#define PEER_ADDRESS_SIZE (INET6_ADDRSTRLEN + IF_NAMESIZE)

typedef struct {
    int family; // AF_INET or AF_INET6
    uint8_t bytes[16];
    int prefix; // leading bits that must match
} address_rule_t;

typedef struct {
    address_rule_t *items;
    size_t count;
} rule_list_t;

// A PLAIN user: a name and its crypt(3) hash, in one allocation.
typedef struct {
    char *name, *hash;
} plain_user_t;

struct lz_security {
    atomic_int refs; // the context's, a reload's, each ZAP request's being judged by it
    char secret_key[LZ_CURVE_KEY_SIZE], server_key[LZ_CURVE_KEY_SIZE];
    uint8_t (*authorized)[KEY_BYTES]; // sorted, for bsearch
    size_t authorized_count;
    bool authorized_set; // a list was given, even an empty one: only those
    rule_list_t allow, deny;
    bool audit;
    bool cut_revoked; // a reload re-judges live connections by this policy (revoke.h)
    char *plain_username, *plain_password; // a PLAIN client's, "" when none
    plain_user_t *users;                   // a PLAIN server's, sorted by name for bsearch
    size_t user_count;
    const plain_user_t *decoy;             // whose hash an unknown name is checked against: the costliest
    bool users_set; // security.plain_users_file was given: the binding nodes are PLAIN servers
    lz_gssapi_t *gssapi; // NULL when no security.gssapi_* key is set
};

/* ---- keys ---------------------------------------------------------------- */

static bool key_decode(const char *text, uint8_t out[KEY_BYTES]) {
    return text && strlen(text) == KEY_TEXT && zmq_z85_decode(out, text) != NULL;
}

bool lz_curve_available(void) { return zmq_has("curve") != 0; }

int lz_curve_keypair(char *public_key, char *secret_key) {
    if (!public_key || !secret_key) return lz__fail(LZ_EINVAL, "curve_keypair: NULL buffer");
    if (zmq_curve_keypair(public_key, secret_key) != 0) return lz__fail(LZ_EZMQ, "curve_keypair: libzmq has no CURVE");
    return LZ_OK;
}

int lz_curve_public_key(char *public_key, const char *secret_key) {
    uint8_t raw[KEY_BYTES];
    if (!public_key) return lz__fail(LZ_EINVAL, "curve_public_key: NULL buffer");
    if (!key_decode(secret_key, raw)) return lz__fail(LZ_EINVAL, "curve_public_key: not a 40-character Z85 key");
    if (zmq_curve_public(public_key, secret_key) != 0)
        return lz__fail(LZ_EZMQ, "curve_public_key: libzmq has no CURVE");
    return LZ_OK;
}

const char *lz__security_check_key(const char *text) {
    uint8_t raw[KEY_BYTES];
    return !*text || key_decode(text, raw) ? NULL : "a 40-character Z85 CURVE key (see lz keygen)";
}

// Each item is copied on the stack, not the list to the heap: the list
// checks of the configuration must not fail for want of memory, since
// they can only say a good value is bad.
int lz__security_list_each(const char *list, int (*fn)(const char *item, void *arg), void *arg) {
    char item[LZ_LIST_ITEM_MAX + 1];
    int rc = LZ_OK;
    for (const char *p = list + strspn(list, LIST_SEPARATORS); *p && rc == LZ_OK; p += strspn(p, LIST_SEPARATORS)) {
        size_t len = strcspn(p, LIST_SEPARATORS);
        if (len > LZ_LIST_ITEM_MAX) return LZ_EINVAL;
        memcpy(item, p, len);
        item[len] = '\0';
        rc = fn(item, arg);
        p += len;
    }
    return rc;
}

static int check_key_item(const char *item, void *arg) {
    (void)arg;
    uint8_t raw[KEY_BYTES];
    return key_decode(item, raw) ? LZ_OK : LZ_EINVAL;
}

const char *lz__security_check_key_list(const char *text) {
    return lz__security_list_each(text, check_key_item, NULL) == LZ_OK ? NULL
           : "40-character Z85 public keys separated by commas or spaces";
}

// A PLAIN user name or password: what ZMTP PLAIN can carry (RFC 24), and
// one line of text (a users file line, a log record).
const char *lz__security_check_plain_text(const char *text) {
    bool ok = strlen(text) <= LZ_PLAIN_TEXT_MAX && !strpbrk(text, "\r\n");
    return ok ? NULL : "at most 255 bytes on one line";
}

/* ---- address rules -------------------------------------------------------- */

// address_parse reads an IPv4 or IPv6 address, an IPv4-mapped IPv6 one
// ("::ffff:10.0.0.1", what a dual-stack socket reports) as IPv4.
static bool address_parse(const char *text, address_rule_t *out) {
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
        return true;
    }
    if (inet_pton(AF_INET6, text, out->bytes) != 1) return false;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out->bytes, mapped, sizeof mapped) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
        out->family = AF_INET;
        out->prefix = 32;
        return true;
    }
    out->family = AF_INET6;
    out->prefix = 128;
    return true;
}

// rule_parse reads ADDRESS or ADDRESS/PREFIX.
static bool rule_parse(const char *item, address_rule_t *out) {
    char text[INET6_ADDRSTRLEN + 8];
    if (strlen(item) >= sizeof text) return false;
    strcpy(text, item);
    char *slash = strchr(text, '/');
    if (slash) *slash = '\0';
    if (!address_parse(text, out)) return false;
    if (!slash) return true;
    char *end = NULL;
    errno = 0;
    long prefix = strtol(slash + 1, &end, 10);
    if (!isdigit((unsigned char)slash[1]) || *end || errno || prefix > out->prefix) return false;
    out->prefix = (int)prefix;
    return true;
}

// peer_parse reads a peer's address as libzmq names it: a link-local IPv6
// one carries its interface ("fe80::1%eth0"), which rules do not name.
static bool peer_parse(const char *address, address_rule_t *out) {
    char text[PEER_ADDRESS_SIZE];
    size_t len = strcspn(address, "%");
    if (len >= sizeof text || (address[len] && !memchr(address, ':', len))) return false; // a scope is IPv6's only
    memcpy(text, address, len);
    text[len] = '\0';
    return address_parse(text, out);
}

static bool rule_matches(const address_rule_t *rule, const address_rule_t *peer) {
    if (rule->family != peer->family) return false;
    int whole = rule->prefix / 8, rest = rule->prefix % 8;
    if (memcmp(rule->bytes, peer->bytes, (size_t)whole) != 0) return false;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return rest == 0 || (rule->bytes[whole] & mask) == (peer->bytes[whole] & mask);
}

static int check_address_item(const char *item, void *arg) {
    (void)arg;
    address_rule_t rule;
    return rule_parse(item, &rule) ? LZ_OK : LZ_EINVAL;
}

const char *lz__security_check_address_list(const char *text) {
    return lz__security_list_each(text, check_address_item, NULL) == LZ_OK ? NULL
           : "IP addresses or networks (10.0.0.0/8, ::1) separated by commas or spaces";
}

static int add_rule(const char *item, void *arg) {
    rule_list_t *list = arg;
    address_rule_t *grown = realloc(list->items, (list->count + 1) * sizeof *grown);
    if (!grown) return LZ_ENOMEM;
    list->items = grown;
    if (!rule_parse(item, &list->items[list->count])) return LZ_EINVAL;
    list->count++; // only a parsed rule counts: a refused one is never read
    return LZ_OK;
}

static bool rules_match(const rule_list_t *list, const address_rule_t *peer) {
    for (size_t i = 0; i < list->count; i++)
        if (rule_matches(&list->items[i], peer)) return true;
    return false;
}

/* ---- the policy ------------------------------------------------------------ */

static int add_authorized(const char *item, void *arg) {
    lz_security_t *sec = arg;
    uint8_t (*grown)[KEY_BYTES] = realloc(sec->authorized, (sec->authorized_count + 1) * sizeof *grown);
    if (!grown) return LZ_ENOMEM;
    sec->authorized = grown;
    if (!key_decode(item, sec->authorized[sec->authorized_count])) return LZ_EINVAL;
    sec->authorized_count++; // only a decoded key counts: the sort and the look-ups read every one
    return LZ_OK;
}

static int compare_keys(const void *a, const void *b) { return memcmp(a, b, KEY_BYTES); }

size_t lz__security_escape(const void *data, size_t size, char *out, size_t out_size) {
    size_t used = 0;
    for (const unsigned char *p = data, *end = p + size; p < end && used + 5 <= out_size; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\') { // ASCII, whatever the locale
            out[used++] = (char)*p;
            continue;
        }
        memcpy(out + used, "\\x", 2);
        lz__hex_byte(*p, out + used + 2);
        used += 4;
    }
    if (out_size) out[used] = '\0';
    return used;
}

// open_regular opens key's file at path for reading, a regular file only
// (lz__open_regular).
static FILE *open_regular(const char *key, const char *path) {
    int fd = lz__open_regular(path);
    FILE *file = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (file) return file;
    int err = fd == LZ_NOT_REGULAR ? -1 : errno;
    if (fd >= 0) close(fd);
    if (err == ENOMEM) return lz__fail_null(LZ_ENOMEM, "security: out of memory");
    return lz__fail_null(LZ_ECONFIG, "config: %s %s: %s", key, path, err < 0 ? "not a regular file" : strerror(err));
}

int lz__security_read_lines(const char *key, const char *path, lz_line_fn fn, void *arg) {
    FILE *file = open_regular(key, path);
    if (!file) return lz_last_error_code();
    // Whole lines, however long: a line read in pieces would make a long
    // comment's tail a line of its own (a key, commented out, taken in).
    char *line = NULL, why[256];
    size_t capacity = 0;
    int rc = LZ_OK, err = 0;
    for (unsigned long number = 1; rc == LZ_OK; number++) {
        errno = 0;
        if (getline(&line, &capacity, file) < 0) {
            err = errno; // 0 at the end of the file
            break;
        }
        char *text = line + strspn(line, " \t");
        text[strcspn(text, "\r\n")] = '\0';
        if (*text == '#' || strspn(text, " \t") == strlen(text)) continue;
        rc = fn(arg, text, why, sizeof why);
        if (rc == LZ_EINVAL) rc = lz__fail(LZ_ECONFIG, "config: %s %s:%lu: %s", key, path, number, why);
    }
    if (err) rc = err == ENOMEM ? LZ_ENOMEM : lz__fail(LZ_ECONFIG, "config: %s %s: %s", key, path, strerror(err));
    free(line);
    fclose(file);
    return rc == LZ_ENOMEM ? lz__fail(LZ_ENOMEM, "security: out of memory") : rc;
}

// authorized_line reads one public key, as a line of an ssh
// authorized_keys file: anything after the key and a blank is a comment.
// A key may hold a '#' (Z85 has it) but never starts with one: its first
// digit is the top 32 bits over 85^4, at most 82, and '#' is Z85's 84th.
static int authorized_line(void *sec, char *text, char *why, size_t why_size) {
    text[strcspn(text, " \t")] = '\0';
    int rc = add_authorized(text, sec);
    char shown[60 * 4 + 1]; // a binary file's bytes, escaped
    lz__security_escape(text, strnlen(text, 60), shown, sizeof shown);
    if (rc == LZ_EINVAL) snprintf(why, why_size, "not a 40-character Z85 key: '%s'", shown);
    return rc;
}

static int read_authorized_file(lz_security_t *sec, const char *path) {
    sec->authorized_set = true;
    return lz__security_read_lines("security.authorized_keys_file", path, authorized_line, sec);
}

/* ---- PLAIN users ------------------------------------------------------------ */

static int compare_users(const void *a, const void *b) {
    return strcmp(((const plain_user_t *)a)->name, ((const plain_user_t *)b)->name);
}

// same_text compares in a time that depends on the lengths only, so a
// hash's first bytes cannot be found by timing.
static bool same_text(const char *a, const char *b) {
    size_t len = strlen(a);
    if (len != strlen(b)) return false;
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < len; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

// same_form: computed, a hash made with hash as its setting, kept that
// setting (all up to its last '$'), which crypt(3) rewrites when it cannot
// use it as it is (a round count clamped, a salt cut).
static bool same_form(const char *computed, const char *hash) {
    size_t setting = (size_t)(strrchr(hash, '$') - hash) + 1;
    return strncmp(computed, hash, setting) == 0;
}

// What crypt_compare finds.
enum { CRYPT_FAILED = -2, CRYPT_NO_MEMORY = -1, CRYPT_DIFFERS = 0, CRYPT_MATCHES = 1 };

// crypt_once hashes password with hash's method, parameters and salt,
// and compares the result with hash. A result whose setting (all up to its
// last '$') is not the stored one is a hash crypt(3) cannot use as it is
// (a round count clamped, a salt cut): no password could match it.
static int crypt_once(const char *password, const char *hash) {
    struct crypt_data *data = calloc(1, sizeof *data); // 32 KiB: not for the stack
    if (!data) return CRYPT_NO_MEMORY;
    errno = 0;
    const char *computed = crypt_r(password, hash, data); // its failure token starts with '*'
    int found = !computed || computed[0] == '*' ? (errno == ENOMEM ? CRYPT_NO_MEMORY : CRYPT_FAILED)
                : !same_form(computed, hash)    ? CRYPT_FAILED
                : same_text(computed, hash)     ? CRYPT_MATCHES
                                                : CRYPT_DIFFERS;
    explicit_bzero(data, sizeof *data);
    free(data);
    return found;
}

// crypt_compare is crypt_once, tried again when crypt(3) failed: yescrypt
// reports memory it could not get as EINVAL, as it does a hash it cannot
// use. Only the hash's failure comes back every time.
static int crypt_compare(const char *password, const char *hash) {
    int found = crypt_once(password, hash);
    return found == CRYPT_FAILED ? crypt_once(password, hash) : found;
}

#define CRYPT_ALPHABET "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// crypt_field passes [./0-9A-Za-z]{min,max} at p and then `then` ('\0': the
// end); NULL when that is not what is there.
static const char *crypt_field(const char *p, size_t min, size_t max, char then) {
    size_t n = strspn(p, CRYPT_ALPHABET);
    return n >= min && n <= max && p[n] == then ? p + n + (then != '\0') : NULL;
}

// decimal_in passes decimal digits at p (no leading 0) worth lo..hi, then '$'.
static const char *decimal_in(const char *p, unsigned long lo, unsigned long hi) {
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 10 || (p[0] == '0' && n > 1) || p[n] != '$') return NULL;
    unsigned long v = strtoul(p, NULL, 10);
    return v >= lo && v <= hi ? p + n + 1 : NULL;
}

// settings_usable: hash's method parameters are ones crypt(3) takes as
// they are, for the methods whose parameters crypt_checksalt does not
// read. Else no password would ever match: crypt fails on a bcrypt cost
// out of 4..31, and clamps a sha-crypt round count out of 1000..999999999
// or cuts its salt past 16 characters, hashing with other settings than
// the stored ones. Checked by reading them, not by hashing (a bcrypt hash
// of cost 12 takes a quarter of a second: a file of them would take
// minutes to load). Other methods keep their shape checks; crypt failing on
// one at a login refuses it with an ERROR naming the user.
static bool settings_usable(const char *hash) {
    const char *p;
    if (hash[1] == '2' && strchr("abxy", hash[2]) && hash[3] == '$') { // bcrypt: $2b$NN$, salt and digest
        bool two_digits = hash[4] >= '0' && hash[4] <= '9' && hash[5] >= '0' && hash[5] <= '9' && hash[6] == '$';
        int cost = two_digits ? (hash[4] - '0') * 10 + (hash[5] - '0') : 0;
        return cost >= 4 && cost <= 31 && crypt_field(hash + 7, 53, 53, '\0');
    }
    if ((hash[1] == '5' || hash[1] == '6') && hash[2] == '$') { // sha-crypt: $6$[rounds=N$]salt$digest
        p = hash + 3;
        if (strncmp(p, "rounds=", 7) == 0 && !(p = decimal_in(p + 7, 1000, 999999999))) return false;
        p = crypt_field(p, 1, 16, '$');
        return p && crypt_field(p, hash[1] == '6' ? 86 : 43, hash[1] == '6' ? 86 : 43, '\0');
    }
    if (strncmp(hash, "$y$", 3) == 0 || strncmp(hash, "$gy$", 4) == 0) { // yescrypt: $y$params$salt$digest
        p = crypt_field(hash + (hash[1] == 'g' ? 4 : 3), 1, 64, '$');
        p = p ? crypt_field(p, 1, 86, '$') : NULL;
        return p && crypt_field(p, 43, 43, '\0');
    }
    return true;
}

// usable_hash: a crypt(3) hash libxcrypt can check and that is not weak.
// A '$' first rules out a password stored as it is and the DES hashes
// (crypt_checksalt calls those legacy; MD5's $1$ too). The hash must have
// its shape too, $method$...$salt$digest (no digest, no match ever). '='
// is for sha512crypt's cost, $6$rounds=N$salt$digest.
static bool usable_hash(const char *hash) {
    static const char alphabet[] = "$=" CRYPT_ALPHABET;
    size_t dollars = 0;
    for (const char *p = hash; *p; p++) dollars += *p == '$';
    const char *digest = strrchr(hash, '$');
    return hash[0] == '$' && strspn(hash, alphabet) == strlen(hash) && dollars >= 3 && digest && digest[1] &&
           crypt_checksalt(hash) == CRYPT_SALT_OK && settings_usable(hash);
}

static int add_user(lz_security_t *sec, const char *name, const char *hash) {
    plain_user_t *grown = realloc(sec->users, (sec->user_count + 1) * sizeof *grown);
    if (!grown) return LZ_ENOMEM;
    sec->users = grown;
    size_t name_size = strlen(name) + 1;
    char *both = malloc(name_size + strlen(hash) + 1);
    if (!both) return LZ_ENOMEM;
    memcpy(both, name, name_size);
    strcpy(both + name_size, hash);
    sec->users[sec->user_count++] = (plain_user_t){both, both + name_size};
    return LZ_OK;
}

// users_line checks one "user:hash" line and adds it. A bad line is named
// by number, never shown: a mistaken line may hold a password.
static int users_line(void *arg, char *text, char *why, size_t why_size) {
    lz_security_t *sec = arg;
    char *colon = strchr(text, ':');
    const char *wrong = NULL;
    if (colon) *colon = '\0';
    char *hash = colon ? colon + 1 : NULL;
    if (hash) hash[strcspn(hash, " \t")] = '\0'; // a trailing blank
    if (!colon) wrong = "expected user:hash";
    else if (!*text || strlen(text) > LZ_PLAIN_TEXT_MAX || strpbrk(text, " \t"))
        wrong = "expected a user name (no blanks, at most 255 bytes) before ':'";
    else if (!usable_hash(hash))
        wrong = "not a crypt(3) hash this system can check ($y$ yescrypt, $2b$ bcrypt, $6$ sha512crypt; see lz passwd)";
    plain_user_t probe = {text, NULL};
    for (size_t i = 0; !wrong && i < sec->user_count; i++) // files are short: a duplicate is a mistake worth naming
        if (compare_users(&probe, &sec->users[i]) == 0) wrong = "user listed twice";
    if (!wrong) return add_user(sec, text, hash);
    snprintf(why, why_size, "%s", wrong);
    return LZ_EINVAL;
}

// hash_params: how much of hash is its method and parameters, its setting
// without the salt: what a check's cost depends on. A bcrypt or scrypt salt
// follows its parameters with no '$' between; elsewhere the salt is the
// field before the digest.
static size_t hash_params(const char *hash) {
    if (hash[1] == '2') return (size_t)(strrchr(hash, '$') - hash) + 1; // $2b$NN$
    if (strncmp(hash, "$7$", 3) == 0) return strlen(hash) < 14 ? strlen(hash) : 14; // $7$, N, r, p
    const char *digest = strrchr(hash, '$'), *salt = digest;
    while (salt > hash && salt[-1] != '$') salt--;
    return (size_t)(salt - hash);
}

// check_cost: the processor time (ns) one check against hash takes on this
// thread, 0 when it could not be measured.
static int64_t check_cost(const char *hash) {
    struct crypt_data *data = calloc(1, sizeof *data); // 32 KiB: not for the stack
    if (!data) return 0;
    struct timespec start, end;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    crypt_r("", hash, data);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
    explicit_bzero(data, sizeof *data);
    free(data);
    return (int64_t)(end.tv_sec - start.tv_sec) * 1000000000 + (end.tv_nsec - start.tv_nsec);
}

// same_params: checks against hashes a and b cost the same.
static bool same_params(const char *a, const char *b) {
    size_t params = hash_params(a);
    return hash_params(b) == params && strncmp(a, b, params) == 0;
}

// pick_decoy picks the user whose hash an unknown name is checked against,
// so that it takes as long as the slowest known name's check: a cheaper
// one would tell the names apart (an old sha512crypt line of 1000 rounds
// beside yescrypt ones: 1 ms against 85). Users whose hashes share their
// method and parameters cost the same, whatever their salts: only a file
// of several such settings costs a check of each, measured here.
static int pick_decoy(lz_security_t *sec) {
    sec->decoy = sec->user_count ? &sec->users[0] : NULL;
    bool one_setting = true;
    for (size_t i = 1; i < sec->user_count && one_setting; i++)
        one_setting = same_params(sec->users[0].hash, sec->users[i].hash);
    if (one_setting) return LZ_OK;
    const plain_user_t **settings = malloc(sec->user_count * sizeof *settings); // one user of each
    if (!settings) return LZ_ENOMEM;
    size_t count = 0;
    int64_t cost = -1;
    for (size_t i = 0; i < sec->user_count; i++) {
        const plain_user_t *user = &sec->users[i];
        bool measured = false;
        for (size_t j = 0; j < count && !measured; j++) measured = same_params(settings[j]->hash, user->hash);
        if (measured) continue;
        settings[count++] = user;
        int64_t user_cost = check_cost(user->hash);
        if (user_cost > cost) {
            cost = user_cost;
            sec->decoy = user;
        }
    }
    free(settings);
    return LZ_OK;
}

// read_users_file reads security.plain_users_file: "user:hash" lines.
static int read_users_file(lz_security_t *sec, const char *path) {
    sec->users_set = true;
    int rc = lz__security_read_lines("security.plain_users_file", path, users_line, sec);
    if (rc == LZ_OK && sec->user_count) qsort(sec->users, sec->user_count, sizeof *sec->users, compare_users);
    if (rc == LZ_OK && pick_decoy(sec) != LZ_OK) rc = lz__fail(LZ_ENOMEM, "security: out of memory");
    return rc;
}

// plain_fill takes the PLAIN settings: a client's name and password, a
// server's users. A node side with both CURVE and PLAIN is refused: libzmq
// would take one mechanism per socket, and which one would be a surprise.
static int plain_fill(lz_security_t *sec, const lz_security_settings_t *s) {
    if (*s->plain_users_file && *s->curve_secret_key)
        return lz__fail(LZ_ECONFIG, "config: security.plain_users_file and security.curve_secret_key are both set: "
                                    "a node that binds is either a PLAIN server or a CURVE server, not both");
    if (*s->plain_username && *s->curve_server_key)
        return lz__fail(LZ_ECONFIG, "config: security.plain_username and security.curve_server_key are both set: "
                                    "a node that connects is either a PLAIN client or a CURVE client, not both");
    if (*s->plain_password && !*s->plain_username)
        return lz__fail(LZ_ECONFIG, "config: security.plain_password is set without security.plain_username");
    sec->plain_username = strdup(s->plain_username);
    sec->plain_password = strdup(s->plain_password);
    if (!sec->plain_username || !sec->plain_password) return lz__fail(LZ_ENOMEM, "security: out of memory");
    return *s->plain_users_file ? read_users_file(sec, s->plain_users_file) : LZ_OK;
}

static int policy_fill(lz_security_t *sec, const lz_security_settings_t *s) {
    snprintf(sec->secret_key, sizeof sec->secret_key, "%s", s->curve_secret_key);
    snprintf(sec->server_key, sizeof sec->server_key, "%s", s->curve_server_key);
    sec->audit = s->audit;
    sec->cut_revoked = s->cut_revoked;
    if ((*sec->secret_key || *sec->server_key) && !lz_curve_available())
        return lz__fail(LZ_ECONFIG, "config: security.curve_* keys are set but libzmq was built without CURVE");
    // The keys were validated when stored, so a failure here is memory.
    int rc = lz__security_list_each(s->authorized_keys, add_authorized, sec);
    if (rc == LZ_OK) rc = lz__security_list_each(s->allow_addresses, add_rule, &sec->allow);
    if (rc == LZ_OK) rc = lz__security_list_each(s->deny_addresses, add_rule, &sec->deny);
    if (rc != LZ_OK) return lz__fail(LZ_ENOMEM, "security: out of memory");
    sec->authorized_set = sec->authorized_count > 0;
    if (*s->authorized_keys_file && (rc = read_authorized_file(sec, s->authorized_keys_file)) != LZ_OK) return rc;
    if (sec->authorized_set && !*sec->secret_key)
        return lz__fail(LZ_ECONFIG, "config: security.authorized_keys need security.curve_secret_key: "
                                    "only a CURVE server learns its clients' keys");
    if (sec->authorized_count) qsort(sec->authorized, sec->authorized_count, KEY_BYTES, compare_keys);
    rc = lz__gssapi_new(s, lz__gssapi_available(), &sec->gssapi);
    return rc == LZ_OK ? plain_fill(sec, s) : rc;
}

int lz__security_new(const lz_security_settings_t *settings, lz_security_t **out) {
    lz_security_t *sec = calloc(1, sizeof *sec);
    if (!sec) return lz__fail(LZ_ENOMEM, "security: out of memory");
    atomic_init(&sec->refs, 1);
    int rc = policy_fill(sec, settings);
    if (rc != LZ_OK) {
        lz__security_destroy(&sec);
        return rc;
    }
    *out = sec;
    return LZ_OK;
}

lz_security_t *lz__security_ref(lz_security_t *security) {
    atomic_fetch_add(&security->refs, 1);
    return security;
}

void lz__security_destroy(lz_security_t **security_p) {
    if (!security_p || !*security_p) return;
    lz_security_t *sec = *security_p;
    *security_p = NULL;
    if (atomic_fetch_sub(&sec->refs, 1) > 1) return; // a ZAP request still judges by it
    free(sec->authorized);
    free(sec->allow.items);
    free(sec->deny.items);
    for (size_t i = 0; i < sec->user_count; i++) free(sec->users[i].name);
    free(sec->users);
    free(sec->plain_username);
    if (sec->plain_password) explicit_bzero(sec->plain_password, strlen(sec->plain_password));
    free(sec->plain_password);
    lz__gssapi_destroy(&sec->gssapi);
    explicit_bzero(sec->secret_key, sizeof sec->secret_key); // not to linger in freed memory
    free(sec);
}

bool lz__security_wants_zap(const lz_security_t *sec) {
    return sec->authorized_set || sec->users_set || sec->allow.count || sec->deny.count || sec->audit ||
           lz__gssapi_server(sec->gssapi);
}

/* ---- a node's mode and socket options ---------------------------------------- */

static const char *mode_name(lz_secure_mode_t mode) {
    switch (mode) {
    case LZ_SECURE_CURVE_SERVER: return "a CURVE server (it binds)";
    case LZ_SECURE_CURVE_CLIENT: return "a CURVE client (it connects)";
    case LZ_SECURE_PLAIN_SERVER: return "a PLAIN server (it binds)";
    case LZ_SECURE_GSSAPI_SERVER: return "a GSSAPI server (it binds)";
    case LZ_SECURE_GSSAPI_CLIENT: return "a GSSAPI client (it connects)";
    case LZ_SECURE_PLAIN_CLIENT: return "a PLAIN client (it connects)";
    case LZ_SECURE_ZAP: return "a node whose peers the access rules judge (no encryption)";
    default: return "a plain node (no security)";
    }
}

// A node's own CURVE keys (lz_node_set_curve_keys) win over the context's
// PLAIN settings, as over its CURVE ones.

static lz_secure_mode_t mode_for(const lz_security_t *policy, lz_node_security_t *node, char side) {
    if (!node->own_secret) snprintf(node->secret_key, sizeof node->secret_key, "%s", policy->secret_key);
    if (!node->own_server) snprintf(node->server_key, sizeof node->server_key, "%s", policy->server_key);
    if (side == '@') return *node->secret_key ? LZ_SECURE_CURVE_SERVER
                            : policy->users_set ? LZ_SECURE_PLAIN_SERVER
                            : lz__gssapi_side(policy->gssapi, side, &node->gssapi) ? LZ_SECURE_GSSAPI_SERVER
                            : lz__security_wants_zap(policy) ? LZ_SECURE_ZAP : LZ_SECURE_NONE;
    if (*node->server_key) return LZ_SECURE_CURVE_CLIENT;
    if (lz__gssapi_side(policy->gssapi, side, &node->gssapi)) return LZ_SECURE_GSSAPI_CLIENT;
    if (!*policy->plain_username) return LZ_SECURE_NONE;
    snprintf(node->plain_username, sizeof node->plain_username, "%s", policy->plain_username);
    snprintf(node->plain_password, sizeof node->plain_password, "%s", policy->plain_password);
    return LZ_SECURE_PLAIN_CLIENT;
}

// node_keys completes the node's own key pair: a client without a secret
// key of its own gets a fresh pair, kept for its socket's rebuilds.
static int node_keys(lz_node_security_t *node) {
    if (node->mode != LZ_SECURE_CURVE_SERVER && node->mode != LZ_SECURE_CURVE_CLIENT) return LZ_OK;
    if (!*node->secret_key) return lz_curve_keypair(node->public_key, node->secret_key);
    return lz_curve_public_key(node->public_key, node->secret_key);
}

// mode_needed: the mode an endpoint on side would settle node in, were it
// its first; node is left as it is.
static lz_secure_mode_t mode_needed(const lz_security_t *policy, const lz_node_security_t *node, char side) {
    lz_node_security_t scratch = *node;
    lz_secure_mode_t mode = mode_for(policy, &scratch, side);
    explicit_bzero(&scratch, sizeof scratch); // a PLAIN password's copy
    return mode;
}

int lz__security_settle(const lz_security_t *policy, lz_node_security_t *node, char side, const char *name) {
    if (node->mode == LZ_SECURE_UNSET) {
        node->mode = mode_for(policy, node, side);
        int rc = node_keys(node);
        if (rc != LZ_OK) node->mode = LZ_SECURE_UNSET;
        return rc;
    }
    // libzmq makes every connection of a server socket a server's, and of
    // a client socket a client's.
    bool sided = node->mode >= LZ_SECURE_CURVE_SERVER;
    if (sided && lz__security_mode_server(node->mode) != (side == '@'))
        return lz__fail(LZ_ESTATE, "%s: it is %s, so it cannot %s: use another node for that endpoint", name,
                        mode_name(node->mode), side == '@' ? "bind" : "connect");
    if (sided) return LZ_OK;
    // A plain or ZAP-judged socket stays so: an endpoint that needs more
    // (encryption, access rules, a server key checked) would go without.
    // A ZAP-judged one may take an endpoint that needs nothing: still judged.
    lz_secure_mode_t needed = mode_needed(policy, node, side);
    if (needed == node->mode || (needed == LZ_SECURE_NONE && node->mode == LZ_SECURE_ZAP)) return LZ_OK;
    return lz__fail(LZ_ESTATE, "%s: its first endpoint made it %s; %s here would need %s: use another node for "
                    "that endpoint", name, mode_name(node->mode), side == '@' ? "binding" : "connecting",
                    mode_name(needed));
}

bool lz__security_gssapi_leaks(const lz_node_security_t *node) {
    bool gssapi = node->mode == LZ_SECURE_GSSAPI_SERVER || node->mode == LZ_SECURE_GSSAPI_CLIENT;
    return gssapi && !node->gssapi.plaintext && lz__gssapi_libzmq_leaks();
}

bool lz__security_mode_server(lz_secure_mode_t mode) {
    return mode == LZ_SECURE_CURVE_SERVER || mode == LZ_SECURE_PLAIN_SERVER || mode == LZ_SECURE_GSSAPI_SERVER;
}

static int set_text(void *socket, int option, const char *text) {
    return zmq_setsockopt(socket, option, text, strlen(text));
}

// A libzmq built without its draft API still takes the option (4.3.4).
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

// zap_domain has libzmq ask the ZAP handler about every peer of socket.
// Enforced: were no handler bound, libzmq would admit them unasked (its
// default, for compatibility), not refuse them. A libzmq without the
// option keeps its default: the context binds the handler before any node.
static int zap_domain(void *socket) {
    (void)lz__sockopt_int(socket, ZMQ_ZAP_ENFORCE_DOMAIN, 1);
    return set_text(socket, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN);
}

int lz__security_apply(const lz_node_security_t *node, void *socket) {
    int rc = 0;
    switch (node->mode) {
    case LZ_SECURE_CURVE_SERVER:
        rc = lz__sockopt_int(socket, ZMQ_CURVE_SERVER, 1) |
             set_text(socket, ZMQ_CURVE_SECRETKEY, node->secret_key) | zap_domain(socket);
        break;
    case LZ_SECURE_CURVE_CLIENT:
        rc = set_text(socket, ZMQ_CURVE_SERVERKEY, node->server_key) |
             set_text(socket, ZMQ_CURVE_PUBLICKEY, node->public_key) |
             set_text(socket, ZMQ_CURVE_SECRETKEY, node->secret_key);
        break;
    case LZ_SECURE_PLAIN_SERVER:
        rc = lz__sockopt_int(socket, ZMQ_PLAIN_SERVER, 1) | zap_domain(socket);
        break;
    case LZ_SECURE_PLAIN_CLIENT:
        rc = set_text(socket, ZMQ_PLAIN_USERNAME, node->plain_username) |
             set_text(socket, ZMQ_PLAIN_PASSWORD, node->plain_password);
        break;
    case LZ_SECURE_GSSAPI_SERVER:
        rc = lz__gssapi_apply(&node->gssapi, true, socket) | zap_domain(socket);
        break;
    case LZ_SECURE_GSSAPI_CLIENT:
        rc = lz__gssapi_apply(&node->gssapi, false, socket);
        break;
    case LZ_SECURE_ZAP:
        rc = zap_domain(socket);
        break;
    default:
        break;
    }
    return rc == 0 ? LZ_OK : lz__fail_zmq("security: setting CURVE, PLAIN or GSSAPI options");
}

void lz__security_unapply(void *socket) {
    // libzmq has no option that forgets a mechanism: ZMQ_PLAIN_SERVER 0
    // makes any the NULL one, and the socket no server's, as it was made.
    (void)lz__sockopt_int(socket, ZMQ_PLAIN_SERVER, 0);
    (void)lz__sockopt_int(socket, ZMQ_ZAP_ENFORCE_DOMAIN, 0);
    (void)set_text(socket, ZMQ_ZAP_DOMAIN, "");
}

// loopback_name: the loopback interface, or a name the usual hosts files
// (Debian's, Fedora's) give the loopback addresses.
static bool loopback_name(const char *host) {
    static const char *const names[] = {"lo", "localhost", "localhost6", "ip6-localhost", "ip6-loopback"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(host, names[i]) == 0) return true;
    return false;
}

bool lz__security_plain_exposed(const char *url) {
    if (strncmp(url, "tcp://", 6) != 0) return false; // ipc is guarded by file permissions, inproc never leaves
    char host[INET6_ADDRSTRLEN + 8];
    const char *start = url + 6, *colon = strrchr(start, ':');
    size_t len = colon ? (size_t)(colon - start) : strlen(start);
    if (len >= 2 && start[0] == '[' && start[len - 1] == ']') start++, len -= 2;
    if (len >= sizeof host) return true;
    memcpy(host, start, len);
    host[len] = '\0';
    address_rule_t address;
    if (loopback_name(host)) return false;
    if (!address_parse(host, &address)) return true; // *, an interface name, another host name
    static const uint8_t loopback6[16] = {[15] = 1};
    return address.family == AF_INET ? address.bytes[0] != 127 : memcmp(address.bytes, loopback6, 16) != 0;
}

int lz_node_set_curve_keys(lz_node_t *node, const char *secret_key, const char *server_key) {
    if (!node) return lz__fail(LZ_EINVAL, "set_curve_keys: NULL node");
    if (node->security.mode != LZ_SECURE_UNSET)
        return lz__fail(LZ_ESTATE, "%s: set its CURVE keys before its first bind or connect", node->name);
    if ((secret_key && lz__security_check_key(secret_key)) || (server_key && lz__security_check_key(server_key)))
        return lz__fail(LZ_EINVAL, "%s: not a 40-character Z85 CURVE key", node->name);
    lz_node_security_t *sec = &node->security;
    if (secret_key) snprintf(sec->secret_key, sizeof sec->secret_key, "%s", secret_key);
    if (server_key) snprintf(sec->server_key, sizeof sec->server_key, "%s", server_key);
    sec->own_secret |= secret_key != NULL;
    sec->own_server |= server_key != NULL;
    return LZ_OK;
}

int lz_node_curve_public_key(const lz_node_t *node, char *public_key) {
    if (!node || !public_key) return lz__fail(LZ_EINVAL, "curve_public_key: NULL argument");
    snprintf(public_key, LZ_CURVE_KEY_SIZE, "%s", node->security.public_key);
    return LZ_OK;
}

/* ---- the ZAP handler ------------------------------------------------------------ */

void lz__zap_close(void *router) {
    zmq_unbind(router, ZAP_ENDPOINT);
    zmq_close(router);
}

void *lz__zap_bind(void *zmq_context) {
    // A ROUTER, not a REP: it may answer requests in another order than they
    // came, as their password hashes end.
    void *router = zmq_socket(zmq_context, ZMQ_ROUTER);
    if (!router)
        return lz__fail_null(lz__zmq_error_code(zmq_errno()), "security: ZAP socket: %s", zmq_strerror(zmq_errno()));
    int rc;
    lz__sockopt_int(router, ZMQ_LINGER, 0);
    LZ_EINTR_RESTART(rc, zmq_bind(router, ZAP_ENDPOINT));
    if (rc != 0) {
        int err = zmq_errno();
        zmq_close(router);
        return lz__fail_null(LZ_EZMQ, "security: cannot bind the ZAP handler at %s: %s", ZAP_ENDPOINT,
                             zmq_strerror(err));
    }
    return router;
}

// The request's frames we read (RFC 27); credentials are what follows.
// PLAIN sends two: the user name, then the password.
enum {
    ZAP_VERSION, ZAP_REQUEST_ID, ZAP_DOMAIN_FRAME, ZAP_ADDRESS, ZAP_IDENTITY, ZAP_MECHANISM, ZAP_CREDENTIAL,
    ZAP_PASSWORD, ZAP_FRAMES
};
// Frames before the empty delimiter: the ROUTER's routing id for libzmq's
// session (one), more only from another kind of client.
#define ZAP_ROUTE_MAX 4

typedef struct {
    char address[PEER_ADDRESS_SIZE];
    char mechanism[16];
    char key[LZ_CURVE_KEY_SIZE];         // a CURVE client's, Z85
    char user[LZ_PLAIN_TEXT_MAX + 1];    // a PLAIN client's name, as it gave it, or a GSSAPI client's principal
    bool named;                          // user is a PLAIN name or GSSAPI principal (its frame, whole, is audited)
    const char *refusal;                 // why it is refused, NULL to admit
    bool unjudged;                       // refused because judging it ran out of memory: status 500, not 400
    const char *uncheckable;             // the user whose hash crypt(3) failed on, NULL when none did
} zap_case_t;

struct lz_zap_request {
    zmq_msg_t route[ZAP_ROUTE_MAX]; // sent back first, so the ROUTER finds the asker
    size_t route_count;
    zmq_msg_t frames[ZAP_FRAMES];
    size_t count;
    lz_security_t *policy; // the reference it is judged by
    zap_case_t c;
    const plain_user_t *hashed; // whose hash a PLAIN password is to be checked against (the policy's), or NULL
    bool known;       // the PLAIN user is in the users file
};

// receive_part reads the frames of one message into frames (max of them;
// more are read and dropped) up to its end or, when routed, up to the
// empty frame that ends its route (not kept). Returns whether it met that.
static bool receive_part(void *router, bool routed, zmq_msg_t *frames, size_t max, size_t *count, bool *more) {
    for (int rc; *more;) {
        zmq_msg_t extra, *frame = *count < max ? &frames[*count] : &extra;
        zmq_msg_init(frame);
        LZ_EINTR_RESTART(rc, zmq_msg_recv(frame, router, ZMQ_DONTWAIT));
        *more = rc >= 0 && zmq_msg_more(frame);
        bool delimiter = routed && rc == 0;
        if (rc >= 0 && !delimiter && frame != &extra) (*count)++;
        else zmq_msg_close(frame);
        if (delimiter) return true;
    }
    return false;
}

lz_zap_request_t *lz__zap_receive(void *router) {
    lz_zap_request_t *req = calloc(1, sizeof *req);
    bool more = true;
    if (!req) return lz__fail_null(LZ_ENOMEM, "security: out of memory for a ZAP request");
    bool delimited = receive_part(router, true, req->route, ZAP_ROUTE_MAX, &req->route_count, &more);
    if (delimited) receive_part(router, false, req->frames, ZAP_FRAMES, &req->count, &more);
    if (delimited && req->count > 0) return req;
    lz__zap_request_free(&req); // nothing, or nothing we could answer
    return NULL;
}

void lz__zap_request_free(lz_zap_request_t **req_p) {
    lz_zap_request_t *req = *req_p;
    if (!req) return;
    // A PLAIN password must not linger in freed memory.
    if (req->count > ZAP_PASSWORD)
        explicit_bzero(zmq_msg_data(&req->frames[ZAP_PASSWORD]), zmq_msg_size(&req->frames[ZAP_PASSWORD]));
    for (size_t i = 0; i < req->route_count; i++) zmq_msg_close(&req->route[i]);
    for (size_t i = 0; i < req->count; i++) zmq_msg_close(&req->frames[i]);
    lz__security_destroy(&req->policy);
    free(req);
    *req_p = NULL;
}

// ipc_peer: an ipc peer's address as libzmq gives it, "localhost" (what
// getnameinfo names a local socket) and ":uid:gid:pid" from SO_PEERCRED.
// File permissions guard an ipc path, not address rules.
static bool ipc_peer(const char *address) {
    return strncmp(address, "localhost", 9) == 0 && (address[9] == '\0' || address[9] == ':');
}

// The rules judge() and lz__security_judge_peer share: a peer's address
// (its IP text, or an ipc peer's), a CURVE client's key (32 bytes), a NULL
// peer, a PLAIN user name.
static const char *address_refusal(const lz_security_t *policy, const char *address) {
    if ((!policy->allow.count && !policy->deny.count) || ipc_peer(address)) return NULL;
    address_rule_t peer;
    // Fail closed: an address no rule can be checked against (another
    // transport's, or none when libzmq could not read it) is refused.
    if (!peer_parse(address, &peer)) return "address not understood";
    if (rules_match(&policy->deny, &peer)) return "address denied";
    if (policy->allow.count && !rules_match(&policy->allow, &peer)) return "address not allowed";
    return NULL;
}

static const char *key_refusal(const lz_security_t *policy, const uint8_t key[KEY_BYTES]) {
    bool listed = !policy->authorized_set || (policy->authorized_count && // an empty list has no array to search
                  bsearch(key, policy->authorized, policy->authorized_count, KEY_BYTES, compare_keys));
    return listed ? NULL : "client key not authorized";
}

static const char *null_refusal(const lz_security_t *policy) {
    return policy->authorized_set ? "no CURVE key to authorize" : NULL;
}

static const plain_user_t *find_user(const lz_security_t *policy, const char *name) {
    plain_user_t probe = {(char *)name, NULL};
    return policy->user_count
        ? bsearch(&probe, policy->users, policy->user_count, sizeof *policy->users, compare_users) : NULL;
}

#define PLAIN_REFUSAL "invalid username or password"

// no_nul: a frame of text holds no NUL, where a C string would end early
// (a password cut there would be checked as its head only).
static bool no_nul(zmq_msg_t *frame) {
    return zmq_msg_size(frame) == 0 || !memchr(zmq_msg_data(frame), '\0', zmq_msg_size(frame));
}

// judge_plain finds the hash a PLAIN client's password is to be checked
// against (lz__zap_hash checks it). An unknown user, or a name or password
// holding a NUL, costs a hash too, the costliest user's (pick_decoy), and
// gets the same answer: a peer cannot tell which names exist.
static const char *judge_plain(lz_zap_request_t *req) {
    const lz_security_t *policy = req->policy;
    zmq_msg_t *frames = req->frames;
    if (req->count <= ZAP_PASSWORD || zmq_msg_size(&frames[ZAP_CREDENTIAL]) > LZ_PLAIN_TEXT_MAX ||
        zmq_msg_size(&frames[ZAP_PASSWORD]) > LZ_PLAIN_TEXT_MAX)
        return "malformed ZAP request";
    if (!policy->users_set) return "mechanism not supported";
    const plain_user_t *user = find_user(policy, req->c.user);
    req->known = user && no_nul(&frames[ZAP_CREDENTIAL]) && no_nul(&frames[ZAP_PASSWORD]);
    req->hashed = req->known ? user : policy->decoy;
    return req->hashed ? NULL : PLAIN_REFUSAL;
}

// judge_gssapi checks the principal the KDC vouched for (libzmq has
// already verified the client's ticket) against security.gssapi_principals.
static const char *judge_gssapi(lz_zap_request_t *req) {
    zmq_msg_t *principal = &req->frames[ZAP_CREDENTIAL];
    if (req->count <= ZAP_CREDENTIAL || zmq_msg_size(principal) > LZ_GSSAPI_NAME_MAX) return "malformed ZAP request";
    if (!lz__gssapi_server(req->policy->gssapi)) return "mechanism not supported";
    return no_nul(principal) && lz__gssapi_admits(req->policy->gssapi, req->c.user) ? NULL : "principal not allowed";
}

// note_credential reads who the peer says it is before any rule judges
// it, for the audit: a CURVE key, a PLAIN user name or a GSSAPI principal.
static void note_credential(lz_zap_request_t *req) {
    zap_case_t *c = &req->c;
    zmq_msg_t *frame = &req->frames[ZAP_CREDENTIAL];
    if (req->count <= ZAP_CREDENTIAL) return;
    if (strcmp(c->mechanism, "CURVE") == 0 && zmq_msg_size(frame) == KEY_BYTES)
        zmq_z85_encode(c->key, zmq_msg_data(frame), KEY_BYTES);
    bool named = strcmp(c->mechanism, "PLAIN") == 0 || strcmp(c->mechanism, "GSSAPI") == 0;
    c->named = named && zmq_msg_size(frame) < sizeof c->user;
    if (c->named) lz__msg_text(frame, c->user, sizeof c->user);
}

static const char *judge(lz_zap_request_t *req) {
    const lz_security_t *policy = req->policy;
    zmq_msg_t *frames = req->frames;
    zap_case_t *c = &req->c;
    if (req->count < ZAP_CREDENTIAL || zmq_msg_size(&frames[ZAP_VERSION]) != 3 ||
        memcmp(zmq_msg_data(&frames[ZAP_VERSION]), "1.0", 3) != 0)
        return "malformed ZAP request";
    lz__msg_text(&frames[ZAP_ADDRESS], c->address, sizeof c->address);
    lz__msg_text(&frames[ZAP_MECHANISM], c->mechanism, sizeof c->mechanism);
    if (zmq_msg_size(&frames[ZAP_ADDRESS]) >= sizeof c->address || !no_nul(&frames[ZAP_ADDRESS]))
        return "malformed ZAP request";
    note_credential(req);
    const char *refusal = address_refusal(policy, c->address);
    if (refusal) return refusal;
    if (strcmp(c->mechanism, "CURVE") == 0) {
        if (req->count <= ZAP_CREDENTIAL || zmq_msg_size(&frames[ZAP_CREDENTIAL]) != KEY_BYTES)
            return "malformed ZAP request";
        return key_refusal(policy, zmq_msg_data(&frames[ZAP_CREDENTIAL]));
    }
    if (strcmp(c->mechanism, "PLAIN") == 0) return judge_plain(req);
    if (strcmp(c->mechanism, "GSSAPI") == 0) return judge_gssapi(req);
    if (strcmp(c->mechanism, "NULL") == 0) return null_refusal(policy);
    return "mechanism not supported";
}

bool lz__zap_judge(lz_zap_request_t *req, lz_security_t *policy) {
    req->policy = policy;
    req->c.mechanism[0] = '?';
    req->c.refusal = judge(req);
    if (req->c.refusal) req->hashed = NULL;
    return req->hashed != NULL;
}

void lz__zap_hash(lz_zap_request_t *req) {
    char password[LZ_PLAIN_TEXT_MAX + 1];
    lz__msg_text(&req->frames[ZAP_PASSWORD], password, sizeof password);
    int found = crypt_compare(password, req->hashed->hash);
    explicit_bzero(password, sizeof password);
    // Out of memory, the password was not checked: not a wrong password.
    req->c.unjudged = found == CRYPT_NO_MEMORY;
    req->c.uncheckable = found == CRYPT_FAILED ? req->hashed->name : NULL;
    req->c.refusal = req->c.unjudged ? "out of memory to check the password"
                     : req->known && found == CRYPT_MATCHES ? NULL
                                                            : PLAIN_REFUSAL;
    req->hashed = NULL;
}

/* ---- live connections, judged again after a reload (revoke.c) ---------------------- */

const char *lz__security_judge_peer(const lz_security_t *now, const lz_security_t *before, lz_secure_mode_t mode,
                                    const char *user, const char *address) {
    const char *refusal = address_refusal(now, address ? address : "");
    if (refusal || mode == LZ_SECURE_ZAP) return refusal ? refusal : null_refusal(now);
    // Who has not shown who it is stays only when anyone would do.
    if (!user && mode == LZ_SECURE_CURVE_SERVER && !now->authorized_set) return NULL;
    if (!user && mode == LZ_SECURE_GSSAPI_SERVER && lz__gssapi_admits(now->gssapi, NULL)) return NULL;
    if (!user) return "sent nothing since it connected, so who it is was not known: it logs in again";
    if (mode == LZ_SECURE_CURVE_SERVER) {
        uint8_t key[KEY_BYTES];
        return key_decode(user, key) ? key_refusal(now, key) : "no CURVE key";
    }
    if (mode == LZ_SECURE_GSSAPI_SERVER) return lz__gssapi_admits(now->gssapi, user) ? NULL : "principal not allowed";
    const plain_user_t *listed = find_user(now, user);
    if (!listed) return "user no longer listed";
    // A new hash refuses the password this peer logged in with, unless it
    // is the same password: which only the peer could tell, at a new login.
    if (!before) return NULL;
    const plain_user_t *was = find_user(before, user);
    if (!was) return "user listed anew since it logged in";
    return strcmp(was->hash, listed->hash) == 0 ? NULL : "password changed";
}

// rules_kept: every rule of before is in now (a rule is compared whole:
// address_parse zeroes it before filling it).
static bool rules_kept(const rule_list_t *before, const rule_list_t *now) {
    for (size_t i = 0; i < before->count; i++) {
        bool found = false;
        for (size_t j = 0; j < now->count && !found; j++)
            found = memcmp(&before->items[i], &now->items[j], sizeof before->items[i]) == 0;
        if (!found) return false;
    }
    return true;
}

// keys_kept: every key before authorized, now is too (or now takes any).
static bool keys_kept(const lz_security_t *before, const lz_security_t *now) {
    if (!now->authorized_set) return true;
    if (!before->authorized_set) return false;
    for (size_t i = 0; i < before->authorized_count; i++)
        if (key_refusal(now, before->authorized[i])) return false;
    return true;
}

// users_kept: every user before admitted is still listed, with the same hash.
static bool users_kept(const lz_security_t *before, const lz_security_t *now) {
    for (size_t i = 0; i < before->user_count; i++) {
        const plain_user_t *user = find_user(now, before->users[i].name);
        if (!user || strcmp(user->hash, before->users[i].hash) != 0) return false;
    }
    return true;
}

bool lz__security_may_revoke(const lz_security_t *before, const lz_security_t *now) {
    if (!now->cut_revoked) return false;
    // An allow list where there was none, or one without a rule it had, may
    // leave someone out; a deny list may take someone in any of its new rules.
    bool allow_kept = !now->allow.count || (before->allow.count && rules_kept(&before->allow, &now->allow));
    return !keys_kept(before, now) || !allow_kept || !rules_kept(&now->deny, &before->deny) ||
           !users_kept(before, now) || lz__gssapi_narrows(before->gssapi, now->gssapi);
}

static void send_text(void *zap, const char *text, int flags) {
    int rc;
    LZ_EINTR_RESTART(rc, zmq_send(zap, text, strlen(text), flags));
}

// libzmq 4.3's GSSAPI server takes a ZAP refusal (400) for a monitor event
// only, and admits the peer anyway. A reply whose metadata it cannot parse
// (a name length with no name) makes it drop the connection instead: a
// refused GSSAPI peer gets that, beside the 400 and the reason, and the
// server's monitor sees ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA.
#define GSSAPI_REFUSAL_METADATA "\x01"

static bool refused_gssapi(const zap_case_t *c) { return c->refusal && strcmp(c->mechanism, "GSSAPI") == 0; }

/* ---- what the ZAP handler vouched for ---------------------------------------------- */

// A peer's ZMTP metadata (its READY) may name any property, "User-Id"
// too, and libzmq passes it on with each message where no ZAP reply set it
// first: on a node with no ZAP domain, a client's. So each admission
// carries, as ZAP metadata (which libzmq keeps before the peer's, and
// never sends), this mark: a secret no peer can know, then the mechanism.
#define ZAP_MARK "X-Liberzmq-ZAP"
#define ZAP_SECRET_SIZE 37
static char zap_secret[ZAP_SECRET_SIZE]; // "" when the kernel gave no randomness: nothing is vouched for
static pthread_once_t zap_secret_once = PTHREAD_ONCE_INIT;

static void zap_secret_make(void) {
    if (lz__uuid4_secret(zap_secret) != LZ_OK) zap_secret[0] = '\0';
}

// zap_mark writes the metadata (ZMTP properties, RFC 27) of an admission
// under mechanism into out: its size, 0 for none.
static size_t zap_mark(const char *mechanism, char out[static 96]) {
    pthread_once(&zap_secret_once, zap_secret_make);
    if (!*zap_secret) return 0;
    char value[ZAP_SECRET_SIZE + sizeof ((zap_case_t *)0)->mechanism];
    int len = snprintf(value, sizeof value, "%s %s", zap_secret, mechanism);
    size_t name = strlen(ZAP_MARK);
    out[0] = (char)name;
    memcpy(out + 1, ZAP_MARK, name);
    uint32_t be = htonl((uint32_t)len);
    memcpy(out + 1 + name, &be, 4);
    memcpy(out + 5 + name, value, (size_t)len);
    return 5 + name + (size_t)len;
}

const char *lz__security_vouched(const zmq_msg_t *frame) {
    pthread_once(&zap_secret_once, zap_secret_make);
    const char *mark = zmq_msg_gets((zmq_msg_t *)frame, ZAP_MARK);
    size_t len = strlen(zap_secret);
    return len && mark && strncmp(mark, zap_secret, len) == 0 && mark[len] == ' ' ? mark + len + 1 : NULL;
}

// reply answers through the request's route with the request's id; the
// user id is the CURVE key or the PLAIN user name, so a message's "User-Id"
// property (zmq_msg_gets) names the client that sent it. A route whose
// asker has gone (its connection closed meanwhile) leads nowhere: the
// ROUTER drops the reply.
static void reply(void *zap, lz_zap_request_t *req) {
    const zap_case_t *c = &req->c;
    int rc;
    for (size_t i = 0; i < req->route_count; i++) LZ_EINTR_RESTART(rc, zmq_msg_send(&req->route[i], zap, ZMQ_SNDMORE));
    send_text(zap, "", ZMQ_SNDMORE); // the delimiter, as a REP socket would send it
    send_text(zap, "1.0", ZMQ_SNDMORE);
    zmq_msg_t *id = &req->frames[ZAP_REQUEST_ID];
    LZ_EINTR_RESTART(rc, zmq_send(zap, req->count > ZAP_REQUEST_ID ? zmq_msg_data(id) : "",
                                  req->count > ZAP_REQUEST_ID ? zmq_msg_size(id) : 0, ZMQ_SNDMORE));
    send_text(zap, c->unjudged ? "500" : c->refusal ? "400" : "200", ZMQ_SNDMORE); // RFC 27's status codes
    send_text(zap, c->refusal ? c->refusal : "OK", ZMQ_SNDMORE);
    send_text(zap, c->refusal ? "" : *c->user ? c->user : c->key, ZMQ_SNDMORE);
    char mark[96];
    size_t mark_size = c->refusal ? 0 : zap_mark(c->mechanism, mark);
    if (refused_gssapi(c)) send_text(zap, GSSAPI_REFUSAL_METADATA, 0);
    else LZ_EINTR_RESTART(rc, zmq_send(zap, mark, mark_size, 0));
}

const char *lz__security_credential_label(const char *mechanism) {
    if (strcmp(mechanism, "GSSAPI") == 0) return "principal";
    return strcmp(mechanism, "PLAIN") == 0 ? "user" : "key";
}

// audit logs the decision with the CURVE key, the PLAIN user name or the
// GSSAPI principal (as the peer sent it, whole, escaped: it may be
// anything, a NUL within), never a password.
static void audit(lz_logger_t *logger, const lz_zap_request_t *req) {
    const zap_case_t *c = &req->c;
    if (!req->policy->audit) return;
    char name[LZ_PLAIN_TEXT_MAX * 4 + 1];
    if (c->named) {
        zmq_msg_t *frame = (zmq_msg_t *)&req->frames[ZAP_CREDENTIAL];
        lz__security_escape(zmq_msg_data(frame), zmq_msg_size(frame), name, sizeof name);
    }
    const char *what = lz__security_credential_label(c->mechanism);
    const char *who = c->named && *name ? name : *c->key ? c->key : "-";
    const char *address = *c->address ? c->address : "(no address)";
    if (c->refusal)
        LZ_LOG(logger, LZ_LOG_WARNING, "audit", "refused peer %s mechanism %s %s %s: %s", address, c->mechanism, what,
               who, c->refusal);
    else
        LZ_LOG(logger, LZ_LOG_INFO, "audit", "admitted peer %s mechanism %s %s %s", address, c->mechanism, what, who);
}

// uncheckable logs a PLAIN user whose hash crypt(3) failed on when a
// password came: every login as that user fails (a hash the load took, a
// crypt(3) that changed since).
static void uncheckable(lz_logger_t *logger, const zap_case_t *c) {
    if (!c->uncheckable) return;
    char name[LZ_PLAIN_TEXT_MAX * 4 + 1];
    lz__security_escape(c->uncheckable, strlen(c->uncheckable), name, sizeof name);
    LZ_LOG(logger, LZ_LOG_ERROR, "security", "security.plain_users_file: crypt(3) cannot check the hash of user %s: "
           "its logins fail (see lz passwd)", name);
}

void lz__zap_answer(lz_zap_request_t **req_p, void *router, lz_logger_t *logger) {
    lz_zap_request_t *req = *req_p;
    reply(router, req);
    audit(logger, req);
    uncheckable(logger, &req->c);
    lz__zap_request_free(req_p);
}

/* ---- handshake failures ---------------------------------------------------------- */

const char *lz__security_handshake_reason(int event, unsigned value, char *buf, size_t size) {
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && value == 500)
        snprintf(buf, size, "peer not judged: the ZAP handler ran out of memory (ZAP status 500)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf(buf, size, "peer refused by the access rules (ZAP status %u)", value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(buf, size, "security mismatch: the sides use different mechanisms (CURVE, PLAIN, GSSAPI or none)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA)
        snprintf(buf, size, "GSSAPI peer refused by the access rules"); // see GSSAPI_REFUSAL_METADATA
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        snprintf(buf, size, "CURVE keys do not match (wrong server key?)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        snprintf(buf, size, "protocol error 0x%x", value);
    else
        snprintf(buf, size, "handshake failed");
    return buf;
}
