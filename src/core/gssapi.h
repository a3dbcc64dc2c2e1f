/* Internal: the GSSAPI (Kerberos) mechanism, ZMTP's fourth (RFC 38 draft):
 * its security.gssapi_* settings, the client principals a server admits,
 * and the socket options a node gets. libzmq and the system's Kerberos
 * library do the handshake and the encryption; security.c picks a node's
 * mechanism and its ZAP handler asks lz__gssapi_admits. */
#ifndef LZ_CORE_GSSAPI_H
#define LZ_CORE_GSSAPI_H

#include <stdbool.h>

// libzmq takes principal names of at most 255 bytes (ZMQ_GSSAPI_PRINCIPAL).
#define LZ_GSSAPI_NAME_MAX 255

typedef struct lz_gssapi lz_gssapi_t;
struct lz_security_settings;

// How the GSS-API library reads a name (security.gssapi_principal_type,
// gssapi_service_principal_type). Kerberos principal names are 0 so that
// a zeroed setting keeps what liberzmq passed before the keys existed.
typedef enum {
    LZ_GSSAPI_NAME_KRB5 = 0,  // "zmq/host@REALM", the realm optional: as kadmin shows it
    LZ_GSSAPI_NAME_HOSTBASED, // "zmq@host": zmq/host in the host's realm
    LZ_GSSAPI_NAME_USER,      // "alice": a user name in the default realm
} lz_gssapi_name_type_t;

// The security.gssapi_* keys as configured (strings owned by the configuration).
typedef struct lz_gssapi_settings {
    bool server;                   // the nodes that bind are GSSAPI servers
    bool plaintext;                // authenticate only: messages cross unencrypted
    const char *principal;         // this side's own principal, "" for the keytab's or cache's default
    const char *service_principal; // the server's principal: the nodes that connect are GSSAPI clients
    lz_gssapi_name_type_t principal_type, service_principal_type;
    const char *principals;        // a server admits only these clients, "" for any the KDC vouched for
    const char *principals_file;   // more of them, one a line, read again at every reload
} lz_gssapi_settings_t;

// A node's side of GSSAPI, copied from the policy when its first endpoint
// settles its mode (kept for its socket's rebuilds). "" when unset.
typedef struct lz_gssapi_node {
    char principal[LZ_GSSAPI_NAME_MAX + 1];
    char service_principal[LZ_GSSAPI_NAME_MAX + 1];
    lz_gssapi_name_type_t principal_type, service_principal_type;
    bool plaintext;
} lz_gssapi_node_t;

// Validators for the configuration's string keys: NULL when text is
// acceptable, else what was expected.
const char *lz__gssapi_check_name(const char *text);
const char *lz__gssapi_check_name_list(const char *text);
const char *lz__gssapi_check_name_type(const char *text);

// lz__gssapi_name_type: the type a name type key's text (checked by
// lz__gssapi_check_name_type) stands for.
lz_gssapi_name_type_t lz__gssapi_name_type(const char *text);

// lz__gssapi_available: libzmq was built with GSSAPI (zmq_has("gssapi")).
bool lz__gssapi_available(void);

// lz__gssapi_new checks settings' GSSAPI keys against one another and the
// CURVE and PLAIN keys beside them (one mechanism per side), and against
// available (lz__gssapi_available, a parameter so a test can deny it),
// then parses them into *out: NULL when no GSSAPI key is set. LZ_ECONFIG
// names what is wrong; LZ_ENOMEM. Not thread safe on one *out.
int lz__gssapi_new(const struct lz_security_settings *settings, bool available, lz_gssapi_t **out);
// lz__gssapi_destroy frees *gssapi_p (NULL is fine) and nulls it.
void lz__gssapi_destroy(lz_gssapi_t **gssapi_p);

// lz__gssapi_server: gssapi (NULL is fine) makes the nodes that bind GSSAPI servers.
bool lz__gssapi_server(const lz_gssapi_t *gssapi);

// lz__gssapi_side fills node for an endpoint on side ('@' bind, '>'
// connect) and returns true when gssapi (NULL is fine) makes that side a
// GSSAPI one.
bool lz__gssapi_side(const lz_gssapi_t *gssapi, char side, lz_gssapi_node_t *node);

// lz__gssapi_apply sets node's GSSAPI options on socket, a server's when
// server, each name with its type. 0, or -1 with zmq_errno set.
int lz__gssapi_apply(const lz_gssapi_node_t *node, bool server, void *socket);

// lz__gssapi_libzmq_leaks: the libzmq in use leaks the plaintext copy of
// every encrypted GSSAPI message it sends (zeromq/libzmq#4856: 4.3.5 and
// earlier; the fix, #4857, is in no release yet).
bool lz__gssapi_libzmq_leaks(void);

// lz__gssapi_admits: gssapi's server admits a client authenticated as
// principal (as libzmq displays it, "name@REALM"); with principal NULL,
// whether it admits anyone (neither security.gssapi_principals nor a
// principals file, which admits only its principals even when empty).
// Thread safe: the policy is immutable.
bool lz__gssapi_admits(const lz_gssapi_t *gssapi, const char *principal);

// lz__gssapi_narrows: now admits fewer client principals than before (a
// list where there was none, or one without a principal before admitted),
// so a reload is to judge the live GSSAPI connections again. Either may be
// NULL (no GSSAPI keys).
bool lz__gssapi_narrows(const lz_gssapi_t *before, const lz_gssapi_t *now);

#endif
