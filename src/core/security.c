/* Security: CURVE keys and roles for sockets, and the ZAP handler that admits
 * or refuses each peer by its CURVE key and address, with an audit log.
 * libzmq does the cryptography (through libsodium) and asks the handler
 * over inproc://zeromq.zap.01 whenever a socket with a ZAP domain or a
 * CURVE server accepts a peer. */
#include "core/security.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "core/eintr.h"
#include "core/error.h"
#include "core/node.h"

#define KEY_TEXT 40  // Z85 characters of a 32-byte key
#define KEY_BYTES 32
// Our server sockets' ZAP domain. The handler serves every domain the same.
#define ZAP_DOMAIN "liberzmq"
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
// Separators in key and address lists (Z85 has neither).
#define LIST_SEPARATORS ", \t\r\n"

typedef struct {
    int family; // AF_INET or AF_INET6
    uint8_t bytes[16];
    int prefix; // leading bits that must match
} address_rule_t;

typedef struct {
    address_rule_t *items;
    size_t count;
} rule_list_t;

struct lz_security {
    char secret_key[LZ_CURVE_KEY_SIZE], server_key[LZ_CURVE_KEY_SIZE];
    uint8_t (*authorized)[KEY_BYTES]; // sorted, for bsearch
    size_t authorized_count;
    bool authorized_set; // a list was given, even an empty one: only those
    rule_list_t allow, deny;
    bool audit;
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

// for_each_item calls fn on each item of a comma- or space-separated list
// (copied, so it can be cut), stopping at the first that fails.
static int for_each_item(const char *list, int (*fn)(const char *item, void *arg), void *arg) {
    char *copy = strdup(list);
    if (!copy) return LZ_ENOMEM;
    int rc = LZ_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, LIST_SEPARATORS, &save); item && rc == LZ_OK;
         item = strtok_r(NULL, LIST_SEPARATORS, &save))
        rc = fn(item, arg);
    free(copy);
    return rc;
}

static int check_key_item(const char *item, void *arg) {
    (void)arg;
    uint8_t raw[KEY_BYTES];
    return key_decode(item, raw) ? LZ_OK : LZ_EINVAL;
}

const char *lz__security_check_key_list(const char *text) {
    return for_each_item(text, check_key_item, NULL) == LZ_OK ? NULL
           : "40-character Z85 public keys separated by commas or spaces";
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
    return for_each_item(text, check_address_item, NULL) == LZ_OK ? NULL
           : "IP addresses or networks (10.0.0.0/8, ::1) separated by commas or spaces";
}

static int add_rule(const char *item, void *arg) {
    rule_list_t *list = arg;
    address_rule_t *grown = realloc(list->items, (list->count + 1) * sizeof *grown);
    if (!grown) return LZ_ENOMEM;
    list->items = grown;
    return rule_parse(item, &list->items[list->count++]) ? LZ_OK : LZ_EINVAL;
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
    return key_decode(item, sec->authorized[sec->authorized_count++]) ? LZ_OK : LZ_EINVAL;
}

static int compare_keys(const void *a, const void *b) { return memcmp(a, b, KEY_BYTES); }

// read_authorized_file reads one public key per line, as an ssh
// authorized_keys file: blank lines and '#' comment lines are skipped, and
// anything after the key and a blank is a comment too. A key may hold a
// '#' (Z85 has it) but never starts with one: its first digit is the top
// 32 bits over 85^4, at most 82, and '#' is Z85's 84th.
static int read_authorized_file(lz_security_t *sec, const char *path) {
    FILE *file = fopen(path, "r");
    if (!file) return lz__fail(LZ_ECONFIG, "config: security.authorized_keys_file %s: %s", path, strerror(errno));
    char line[1024];
    int rc = LZ_OK;
    for (unsigned long number = 1; rc == LZ_OK && fgets(line, sizeof line, file); number++) {
        char *key = line + strspn(line, " \t");
        if (*key == '#' || *key == '\n' || *key == '\0') continue;
        key[strcspn(key, " \t\r\n")] = '\0';
        rc = add_authorized(key, sec);
        if (rc == LZ_EINVAL)
            rc = lz__fail(LZ_ECONFIG, "config: security.authorized_keys_file %s:%lu: not a 40-character Z85 key: '%s'",
                          path, number, key);
    }
    fclose(file);
    sec->authorized_set = true;
    return rc == LZ_ENOMEM ? lz__fail(LZ_ENOMEM, "security: out of memory") : rc;
}

static int policy_fill(lz_security_t *sec, const lz_security_settings_t *s) {
    snprintf(sec->secret_key, sizeof sec->secret_key, "%s", s->curve_secret_key);
    snprintf(sec->server_key, sizeof sec->server_key, "%s", s->curve_server_key);
    sec->audit = s->audit;
    if ((*sec->secret_key || *sec->server_key) && !lz_curve_available())
        return lz__fail(LZ_ECONFIG, "config: security.curve_* keys are set but libzmq was built without CURVE");
    // The keys were validated when stored, so a failure here is memory.
    int rc = for_each_item(s->authorized_keys, add_authorized, sec);
    if (rc == LZ_OK) rc = for_each_item(s->allow_addresses, add_rule, &sec->allow);
    if (rc == LZ_OK) rc = for_each_item(s->deny_addresses, add_rule, &sec->deny);
    if (rc != LZ_OK) return lz__fail(LZ_ENOMEM, "security: out of memory");
    sec->authorized_set = sec->authorized_count > 0;
    if (*s->authorized_keys_file) rc = read_authorized_file(sec, s->authorized_keys_file);
    if (rc == LZ_OK && sec->authorized_set && !*sec->secret_key)
        return lz__fail(LZ_ECONFIG, "config: security.authorized_keys need security.curve_secret_key: "
                                    "only a CURVE server learns its clients' keys");
    if (sec->authorized_count) qsort(sec->authorized, sec->authorized_count, KEY_BYTES, compare_keys);
    return rc;
}

int lz__security_new(const lz_security_settings_t *settings, lz_security_t **out) {
    lz_security_t *sec = calloc(1, sizeof *sec);
    if (!sec) return lz__fail(LZ_ENOMEM, "security: out of memory");
    int rc = policy_fill(sec, settings);
    if (rc != LZ_OK) {
        lz__security_destroy(&sec);
        return rc;
    }
    *out = sec;
    return LZ_OK;
}

void lz__security_destroy(lz_security_t **security_p) {
    if (!security_p || !*security_p) return;
    lz_security_t *sec = *security_p;
    free(sec->authorized);
    free(sec->allow.items);
    free(sec->deny.items);
    free(sec);
    *security_p = NULL;
}

bool lz__security_wants_zap(const lz_security_t *sec) {
    return sec->authorized_set || sec->allow.count || sec->deny.count || sec->audit;
}

/* ---- a node's mode and socket options ---------------------------------------- */

static const char *mode_name(lz_secure_mode_t mode) {
    return mode == LZ_SECURE_CURVE_SERVER ? "a CURVE server (it binds)" : "a CURVE client (it connects)";
}

static lz_secure_mode_t mode_for(const lz_security_t *policy, lz_node_security_t *node, char side) {
    if (!node->own_secret) snprintf(node->secret_key, sizeof node->secret_key, "%s", policy->secret_key);
    if (!node->own_server) snprintf(node->server_key, sizeof node->server_key, "%s", policy->server_key);
    if (side == '@') return *node->secret_key ? LZ_SECURE_CURVE_SERVER
                            : lz__security_wants_zap(policy) ? LZ_SECURE_ZAP : LZ_SECURE_NONE;
    return *node->server_key ? LZ_SECURE_CURVE_CLIENT : LZ_SECURE_NONE;
}

// node_keys completes the node's own key pair: a client without a secret
// key of its own gets a fresh pair, kept for its socket's rebuilds.
static int node_keys(lz_node_security_t *node) {
    if (node->mode != LZ_SECURE_CURVE_SERVER && node->mode != LZ_SECURE_CURVE_CLIENT) return LZ_OK;
    if (!*node->secret_key) return lz_curve_keypair(node->public_key, node->secret_key);
    return lz_curve_public_key(node->public_key, node->secret_key);
}

int lz__security_settle(const lz_security_t *policy, lz_node_security_t *node, char side, const char *name) {
    if (node->mode == LZ_SECURE_UNSET) {
        node->mode = mode_for(policy, node, side);
        int rc = node_keys(node);
        if (rc != LZ_OK) node->mode = LZ_SECURE_UNSET;
        return rc;
    }
    bool curve = node->mode == LZ_SECURE_CURVE_SERVER || node->mode == LZ_SECURE_CURVE_CLIENT;
    bool server_side = node->mode == LZ_SECURE_CURVE_SERVER;
    if (curve && server_side != (side == '@'))
        return lz__fail(LZ_ESTATE, "%s: it is %s, so it cannot %s: use another node for that endpoint", name,
                        mode_name(node->mode), side == '@' ? "bind" : "connect");
    return LZ_OK;
}

static int set_text(void *socket, int option, const char *text) {
    return zmq_setsockopt(socket, option, text, strlen(text));
}

int lz__security_apply(const lz_node_security_t *node, void *socket) {
    int rc = 0, on = 1;
    switch (node->mode) {
    case LZ_SECURE_CURVE_SERVER:
        rc = zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &on, sizeof on) |
             set_text(socket, ZMQ_CURVE_SECRETKEY, node->secret_key) | set_text(socket, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN);
        break;
    case LZ_SECURE_CURVE_CLIENT:
        rc = set_text(socket, ZMQ_CURVE_SERVERKEY, node->server_key) |
             set_text(socket, ZMQ_CURVE_PUBLICKEY, node->public_key) |
             set_text(socket, ZMQ_CURVE_SECRETKEY, node->secret_key);
        break;
    case LZ_SECURE_ZAP:
        rc = set_text(socket, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN);
        break;
    default:
        break;
    }
    return rc == 0 ? LZ_OK : lz__fail_zmq("security: setting CURVE options");
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

void *lz__zap_open(void *zmq_context) {
    void *zap = zmq_socket(zmq_context, ZMQ_REP);
    if (!zap) return lz__fail_null(lz__zmq_error_code(zmq_errno()), "security: ZAP socket: %s", zmq_strerror(zmq_errno()));
    int linger = 0, rc;
    zmq_setsockopt(zap, ZMQ_LINGER, &linger, sizeof linger);
    LZ_EINTR_RESTART(rc, zmq_bind(zap, ZAP_ENDPOINT));
    if (rc != 0) {
        int err = zmq_errno();
        zmq_close(zap);
        return lz__fail_null(LZ_EZMQ, "security: cannot bind the ZAP handler at %s: %s", ZAP_ENDPOINT,
                             zmq_strerror(err));
    }
    return zap;
}

// The request's frames we read (RFC 27); credentials are what follows.
enum { ZAP_VERSION, ZAP_REQUEST_ID, ZAP_DOMAIN_FRAME, ZAP_ADDRESS, ZAP_IDENTITY, ZAP_MECHANISM, ZAP_CREDENTIAL, ZAP_FRAMES };

typedef struct {
    char address[INET6_ADDRSTRLEN + 1];
    char mechanism[16];
    char key[LZ_CURVE_KEY_SIZE]; // a CURVE client's, Z85
    const char *refusal;         // why it is refused, NULL to admit
} zap_case_t;

static const char *judge(const lz_security_t *policy, zmq_msg_t *frames, size_t count, zap_case_t *c) {
    if (count < ZAP_CREDENTIAL || zmq_msg_size(&frames[ZAP_VERSION]) != 3 ||
        memcmp(zmq_msg_data(&frames[ZAP_VERSION]), "1.0", 3) != 0)
        return "malformed ZAP request";
    lz__msg_text(&frames[ZAP_ADDRESS], c->address, sizeof c->address);
    lz__msg_text(&frames[ZAP_MECHANISM], c->mechanism, sizeof c->mechanism);
    address_rule_t peer;
    // Address rules are for IP peers; an ipc peer reports none.
    if (address_parse(c->address, &peer)) {
        if (rules_match(&policy->deny, &peer)) return "address denied";
        if (policy->allow.count && !rules_match(&policy->allow, &peer)) return "address not allowed";
    }
    if (strcmp(c->mechanism, "CURVE") == 0) {
        if (count <= ZAP_CREDENTIAL || zmq_msg_size(&frames[ZAP_CREDENTIAL]) != KEY_BYTES)
            return "malformed ZAP request";
        const void *key = zmq_msg_data(&frames[ZAP_CREDENTIAL]);
        zmq_z85_encode(c->key, key, KEY_BYTES);
        if (policy->authorized_set &&
            !bsearch(key, policy->authorized, policy->authorized_count, KEY_BYTES, compare_keys))
            return "client key not authorized";
        return NULL;
    }
    if (strcmp(c->mechanism, "NULL") == 0) return policy->authorized_set ? "no CURVE key to authorize" : NULL;
    return "mechanism not supported";
}

static void send_text(void *zap, const char *text, int flags) {
    int rc;
    LZ_EINTR_RESTART(rc, zmq_send(zap, text, strlen(text), flags));
}

// reply answers with the request's id; the user id is the CURVE key, so a
// message's "User-Id" property (zmq_msg_gets) names the client that sent it.
static void reply(void *zap, zmq_msg_t *request_id, const zap_case_t *c) {
    int rc;
    send_text(zap, "1.0", ZMQ_SNDMORE);
    LZ_EINTR_RESTART(rc, zmq_send(zap, zmq_msg_data(request_id), zmq_msg_size(request_id), ZMQ_SNDMORE));
    send_text(zap, c->refusal ? "400" : "200", ZMQ_SNDMORE);
    send_text(zap, c->refusal ? c->refusal : "OK", ZMQ_SNDMORE);
    send_text(zap, c->key, ZMQ_SNDMORE);
    send_text(zap, "", 0);
}

static void audit(lz_logger_t *logger, const lz_security_t *policy, const zap_case_t *c) {
    if (!policy->audit) return;
    const char *key = *c->key ? c->key : "-";
    const char *address = *c->address ? c->address : "(local)";
    if (c->refusal)
        LZ_LOG(logger, LZ_LOG_WARNING, "audit", "refused peer %s mechanism %s key %s: %s", address, c->mechanism, key,
               c->refusal);
    else
        LZ_LOG(logger, LZ_LOG_INFO, "audit", "admitted peer %s mechanism %s key %s", address, c->mechanism, key);
}

void lz__zap_serve(void *zap, const lz_security_t *policy, lz_logger_t *logger) {
    zmq_msg_t frames[ZAP_FRAMES];
    size_t count = 0;
    int more = 1, rc;
    while (more) {
        zmq_msg_t extra, *frame = count < ZAP_FRAMES ? &frames[count] : &extra; // more credentials: read, dropped
        zmq_msg_init(frame);
        LZ_EINTR_RESTART(rc, zmq_msg_recv(frame, zap, ZMQ_DONTWAIT));
        more = rc >= 0 && zmq_msg_more(frame);
        if (rc >= 0 && frame != &extra) count++;
        else zmq_msg_close(frame);
    }
    if (count > 0) {
        zap_case_t c = {.mechanism = "?"};
        c.refusal = judge(policy, frames, count, &c);
        audit(logger, policy, &c);
        zmq_msg_t empty;
        zmq_msg_init(&empty);
        reply(zap, count > ZAP_REQUEST_ID ? &frames[ZAP_REQUEST_ID] : &empty, &c);
        zmq_msg_close(&empty);
    }
    for (size_t i = 0; i < count; i++) zmq_msg_close(&frames[i]);
}

/* ---- handshake failures ---------------------------------------------------------- */

const char *lz__security_handshake_reason(int event, unsigned value, char *buf, size_t size) {
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf(buf, size, "peer refused by the access rules (ZAP status %u)", value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(buf, size, "security mismatch: one side uses CURVE and the other not");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        snprintf(buf, size, "CURVE keys do not match (wrong server key?)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        snprintf(buf, size, "protocol error 0x%x", value);
    else
        snprintf(buf, size, "handshake failed");
    return buf;
}
