/* liberzmq security: CURVE encryption, PLAIN user names and passwords,
 * GSSAPI (Kerberos), access control and an audit trail, all on libzmq's
 * own mechanisms (CurveZMQ, RFC 26; PLAIN, RFC 24; GSSAPI, RFC 38 draft;
 * ZAP, RFC 27).
 *
 * Most services need no call here: the security.* configuration keys
 * (docs/security.md) make every node of a context secure.
 *   - security.curve_secret_key set: every node that binds is a CURVE
 *     server with that key; peers must know its public key.
 *   - security.curve_server_key set: every node that connects is a CURVE
 *     client of a server with that public key, using curve_secret_key as
 *     its own key if set, else a fresh key pair of its own.
 *   - security.authorized_keys (and _file), allow_addresses and
 *     deny_addresses: the context answers libzmq's authentication requests
 *     (ZAP) and admits only the clients they allow; security.audit logs
 *     every decision (component "audit").
 *   - security.plain_username and plain_password: every node that connects
 *     is a PLAIN client; security.plain_users_file (user:crypt(3) hash
 *     lines, see lz passwd): every node that binds is a PLAIN server. PLAIN
 *     sends the password in clear: for ipc and trusted networks only.
 *   - security.gssapi_server: every node that binds is a GSSAPI server;
 *     security.gssapi_service_principal: every node that connects is a
 *     GSSAPI client of that Kerberos principal (or, with
 *     security.gssapi_service_principal_type=hostbased, host-based service
 *     name: zmq@host); security.gssapi_principals lists the client
 *     principals (name@REALM) a server admits. Keys are in keytabs
 *     (KRB5_KTNAME, KRB5_CLIENT_KTNAME), never in the configuration.
 * lz_message_peer_key (message.h) gives each message's client key, and
 * lz_message_peer_user its PLAIN user name or GSSAPI principal, so
 * handlers can decide per client.
 * A node's side is settled by its first bind or connect: a CURVE server
 * cannot then connect, nor a CURVE client bind (LZ_ESTATE). So is its
 * security, for every endpoint: one that would need other security (a
 * bind where a first connect left the node plain, a connect where a first
 * bind did and curve_server_key is set) fails with LZ_ESTATE. Security covers
 * tcp and ipc; inproc stays inside the process and is never encrypted.
 * Refused and failed handshakes count in each node's handshake_failures.
 *
 * Keys are Z85 text, 40 characters (32 bytes), as libzmq and pyzmq print
 * them. Buffers for keys hold LZ_CURVE_KEY_SIZE bytes (40 and a NUL). */
#ifndef LIBERZMQ_SECURITY_H
#define LIBERZMQ_SECURITY_H

#include "node.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LZ_CURVE_KEY_SIZE 41

// lz_curve_available tells whether the libzmq underneath supports CURVE
// (Debian's does, through libsodium). Thread safe.
bool lz_curve_available(void);

// lz_curve_keypair writes a new long-term key pair into public_key and
// secret_key (LZ_CURVE_KEY_SIZE bytes each, NUL-terminated Z85). Give the
// public key to peers; keep the secret key secret. LZ_EINVAL for NULL
// buffers, LZ_EZMQ when libzmq has no CURVE. Thread safe.
int lz_curve_keypair(char *public_key, char *secret_key);

// lz_curve_public_key derives the public key of secret_key (Z85) into
// public_key (LZ_CURVE_KEY_SIZE bytes). LZ_EINVAL when secret_key is not a
// 40-character Z85 key. Thread safe.
int lz_curve_public_key(char *public_key, const char *secret_key);

// lz_node_set_curve_keys gives one node keys other than its context's:
// secret_key is its own secret key (a server's identity, or a client's for
// authorized_keys), server_key the public key of the server a client
// connects to. NULL keeps the context's key; "" means none, so a node can
// leave CURVE off in a secure context (lz_node_set_curve_keys(node, "", "")).
// Such a node that binds is still judged by the context's access rules, and
// with security.authorized_keys (or its file) set they refuse every plain
// peer: bind it in a context without authorized keys.
// The keys are copied. Call it before the node's first bind or connect:
// create the node without endpoints, set its keys, then bind or connect.
// LZ_ESTATE once the node has an endpoint (a first bind or connect that
// failed gave it none: the keys may still be set), LZ_EINVAL for a key that
// is not 40-character Z85. Not synchronised with other calls on the node.
int lz_node_set_curve_keys(lz_node_t *node, const char *secret_key, const char *server_key);

// lz_node_curve_public_key writes into public_key (LZ_CURVE_KEY_SIZE
// bytes) the public key the node shows its peers (a server's, or a
// client's own), or "" when the node does not use CURVE (yet: before its
// first bind or connect that succeeds). Safe from any thread once that first endpoint is
// in place; not while another thread makes it.
int lz_node_curve_public_key(const lz_node_t *node, char *public_key);

#ifdef __cplusplus
}
#endif
#endif
