/* Internal: a context's security policy (parsed once from security.*), the
 * CURVE, PLAIN or GSSAPI (gssapi.h) options each node's socket gets from it, and the judging
 * of libzmq's authentication requests (RFC 27) that the context's ZAP
 * handler (zap.c) receives. */
#ifndef LZ_CORE_SECURITY_H
#define LZ_CORE_SECURITY_H

#include <stdbool.h>
#include <zmq.h>

#include "core/gssapi.h"
#include "liberzmq/config.h"
#include "liberzmq/log.h"
#include "liberzmq/security.h"

typedef struct lz_security lz_security_t;

// The security.* keys as configured (strings owned by the configuration).
// lz__security_read_lines calls fn(arg, ...) on each line of the file at
// path (the value of configuration key key) but blank lines and lines
// whose first non-blank is '#', the line ending cut. fn returns LZ_OK,
// LZ_ENOMEM, or LZ_EINVAL with why filled: the call then fails with
// LZ_ECONFIG naming the key, the file and the line. For the keys, users
// and principals files.
typedef int (*lz_line_fn)(void *arg, char *text, char *why, size_t why_size);
int lz__security_read_lines(const char *key, const char *path, lz_line_fn fn, void *arg);

// lz__security_escape writes size bytes at data into out (out_size bytes,
// NUL-terminated) as text for a log or an error: printable bytes as they
// are, others and backslashes as \xNN. It stops at a byte out has no room
// for: 4 bytes a byte and the NUL show them all. Returns the length written.
size_t lz__security_escape(const void *data, size_t size, char *out, size_t out_size);

typedef struct lz_security_settings {
    const char *curve_secret_key, *curve_server_key;
    const char *authorized_keys, *authorized_keys_file;
    const char *allow_addresses, *deny_addresses;
    const char *plain_username, *plain_password, *plain_users_file;
    bool audit;
    lz_gssapi_settings_t gssapi;
    bool cut_revoked; // security.cut_revoked
} lz_security_settings_t;

// lz__security_settings_read fills *out from config (in config.c, beside
// the key table).
int lz__security_settings_read(const lz_config_t *config, lz_security_settings_t *out);

// Validators for the configuration's string keys: NULL when text is
// acceptable, else what was expected.
const char *lz__security_check_key(const char *text);
const char *lz__security_check_key_list(const char *text);
const char *lz__security_check_address_list(const char *text);
const char *lz__security_check_plain_text(const char *text);

// lz__security_list_each calls fn on each item of a list of keys, names or
// addresses separated by commas or blanks, stopping at the first that does
// not return LZ_OK and returning that. It allocates nothing. An item longer
// than LZ_LIST_ITEM_MAX bytes (the longest a GSSAPI principal may be: no
// key or address is as long) stops it with LZ_EINVAL, fn not called.
#define LZ_LIST_ITEM_MAX LZ_GSSAPI_NAME_MAX
int lz__security_list_each(const char *list, int (*fn)(const char *item, void *arg), void *arg);

// lz__security_credential_label names what identifies a peer under a ZMTP
// mechanism ("CURVE", "PLAIN", "GSSAPI", "NULL"), for the audit lines:
// "principal" for GSSAPI, "user" for PLAIN, else "key". Static storage.
const char *lz__security_credential_label(const char *mechanism);

// lz__security_new parses settings into a policy (the authorized keys and
// PLAIN users files are read here). LZ_ECONFIG names what is wrong; LZ_ENOMEM.
int lz__security_new(const lz_security_settings_t *settings, lz_security_t **out);
// lz__security_ref takes another reference on security; lz__security_destroy
// drops one, the last freeing it. A ZAP request holds one while it is
// judged, so a reload may swap the policy while a password is hashed.
lz_security_t *lz__security_ref(lz_security_t *security);
void lz__security_destroy(lz_security_t **security_p);

// lz__security_wants_zap: the policy has rules or an audit, so the context
// must answer ZAP requests.
bool lz__security_wants_zap(const lz_security_t *security);

typedef enum {
    LZ_SECURE_UNSET = 0, // no endpoint yet
    LZ_SECURE_NONE,      // plain ZMTP (the NULL mechanism), no ZAP
    LZ_SECURE_ZAP,       // the NULL mechanism, peers admitted by the ZAP handler
    LZ_SECURE_CURVE_SERVER,
    LZ_SECURE_CURVE_CLIENT,
    LZ_SECURE_PLAIN_SERVER, // checks user names and passwords through the ZAP handler
    LZ_SECURE_PLAIN_CLIENT,
    LZ_SECURE_GSSAPI_SERVER, // Kerberos; clients' principals judged by the ZAP handler
    LZ_SECURE_GSSAPI_CLIENT,
} lz_secure_mode_t;

// lz__security_mode_server: mode makes every connection a server's (the
// node binds), so the context's ZAP handler must run.
bool lz__security_mode_server(lz_secure_mode_t mode);

// ZMTP PLAIN sends a name and a password of at most 255 bytes each (RFC 24).
#define LZ_PLAIN_TEXT_MAX 255

// A node's side of security: its mode, settled by its first endpoint, and
// the keys it uses. Keys are Z85, "" when unset. A PLAIN client keeps its
// context's user name and password, for its socket's rebuilds.
typedef struct lz_node_security {
    lz_secure_mode_t mode;
    bool own_secret, own_server; // lz_node_set_curve_keys overrode the context's
    char secret_key[LZ_CURVE_KEY_SIZE];
    char public_key[LZ_CURVE_KEY_SIZE];
    char server_key[LZ_CURVE_KEY_SIZE];
    char plain_username[LZ_PLAIN_TEXT_MAX + 1];
    char plain_password[LZ_PLAIN_TEXT_MAX + 1];
    lz_gssapi_node_t gssapi;
} lz_node_security_t;

// lz__security_gssapi_leaks: node sends encrypted GSSAPI messages through
// a libzmq that leaks each one's plaintext copy (lz__gssapi_libzmq_leaks).
bool lz__security_gssapi_leaks(const lz_node_security_t *node);

// lz__security_settle picks the node's mode for an endpoint on side ('@'
// bind, '>' connect) the first time, from the node's keys or the policy's.
// A later endpoint must be on a CURVE, PLAIN or GSSAPI mode's side, and on
// a plain or ZAP-judged node need no other mode than the node's (a ZAP-judged
// node may take one that needs none): LZ_ESTATE otherwise. name is the
// node's, for the error detail.
int lz__security_settle(const lz_security_t *policy, lz_node_security_t *node, char side, const char *name);

// lz__security_apply sets the socket options of the node's mode on socket
// (before its endpoints: libzmq reads them at each handshake).
int lz__security_apply(const lz_node_security_t *node, void *socket);

// lz__security_unapply takes a socket with no endpoint back to plain ZMTP
// with no ZAP domain, as it was before lz__security_apply, for a node whose
// first endpoint failed (node.c). The values of options a mode sets stay
// (keys, names), unread by the NULL mechanism: the next mode sets its own,
// but for a GSSAPI principal, which libzmq cannot unset, so one set before
// stays for a GSSAPI side that names none. Sets no error.
void lz__security_unapply(void *socket);

// lz__security_plain_exposed: a PLAIN server binding url would send
// passwords in clear over a network (tcp, not on a loopback address).
bool lz__security_plain_exposed(const char *url);

// lz__zap_bind binds the ZAP handler's ROUTER socket at
// inproc://zeromq.zap.01 in zmq_context; NULL (error set) when it cannot.
void *lz__zap_bind(void *zmq_context);

// lz__zap_close unbinds and closes the handler's socket: the endpoint is
// free again at once for the next handler (closed only, libzmq frees an
// inproc endpoint later, on its reaper thread, and a bind meanwhile fails).
void lz__zap_close(void *router);

// A ZAP request received from libzmq, with its route back.
typedef struct lz_zap_request lz_zap_request_t;

// lz__zap_receive reads one request waiting on router; NULL when there is
// none, or none that could be answered (read and dropped).
lz_zap_request_t *lz__zap_receive(void *router);
// lz__zap_judge judges req by policy, a reference req keeps (and drops
// when freed), all but a PLAIN password. true when that remains to check:
// lz__zap_hash does, slowly (a crypt(3) hash), on any thread.
bool lz__zap_judge(lz_zap_request_t *req, lz_security_t *policy);
void lz__zap_hash(lz_zap_request_t *req);
// lz__zap_answer sends req's verdict through router, audits it through
// logger and frees req.
void lz__zap_answer(lz_zap_request_t **req_p, void *router, lz_logger_t *logger);
// lz__zap_request_free frees req unanswered.
void lz__zap_request_free(lz_zap_request_t **req_p);

// lz__security_vouched: the mechanism ("CURVE", "PLAIN", "GSSAPI",
// "NULL") under which the ZAP handler of a context of this process
// admitted the connection frame came by, NULL when none did (its
// "User-Id" then is the peer's own word, or unset). Thread safe.
const char *lz__security_vouched(const zmq_msg_t *frame);

// lz__security_judge_peer judges a connection already up (or one of its
// messages) by the policy now in force: the refusal, NULL to admit. mode is
// the node's (LZ_SECURE_CURVE_SERVER, _PLAIN_SERVER or _ZAP); user the
// peer's ZAP user id (a CURVE key in Z85, a PLAIN user name; NULL when not
// known: refused, unless no key or name matters: LZ_SECURE_ZAP, or a CURVE
// server that takes any key); address as libzmq gives it (numeric IP,
// "fe80::1%eth0", ipc's "localhost:uid:gid:pid", which address rules do
// not cover; "" or NULL when unknown, refused under address rules). before, when
// not NULL, is the policy the peer was last admitted by: a PLAIN user
// whose hash changed since is refused too. No lock: the caller holds
// references on both policies.
const char *lz__security_judge_peer(const lz_security_t *now, const lz_security_t *before, lz_secure_mode_t mode,
                                    const char *user, const char *address);

// lz__security_may_revoke: now has security.cut_revoked on and its rules
// may refuse a peer before's admitted: a key before authorized is not, an
// allow list leaves a rule out (or came where there was none), a deny
// list has a new rule, a PLAIN user has gone or has a new hash.
bool lz__security_may_revoke(const lz_security_t *before, const lz_security_t *now);

// lz__security_handshake_reason describes a failed handshake's monitor
// event (ZMQ_EVENT_HANDSHAKE_FAILED_*) and its value, for the log.
const char *lz__security_handshake_reason(int event, unsigned value, char *buf, size_t size);

#endif
