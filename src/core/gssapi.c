/* GSSAPI (Kerberos): which nodes use it, the options libzmq needs for it,
 * and the list of client principals a server admits. Keys, tickets and
 * the KDC are the system's Kerberos configuration (KRB5_CONFIG,
 * KRB5_KTNAME, KRB5_CLIENT_KTNAME): liberzmq only names principals. */
#include "core/gssapi.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>

#include "core/error.h"
#include "core/security.h"
#include "core/sockopt.h"

struct lz_gssapi {
    lz_gssapi_settings_t s; // strings owned by names
    char *names;            // the settings' strings, one allocation
    char **admitted;        // the client principals a server admits, sorted for bsearch
    size_t admitted_count;
    bool listed; // principals or a file of them were given, even an empty file: only those
};

bool lz__gssapi_available(void) { return zmq_has("gssapi") != 0; }

// A name libzmq can carry and a log line can show: printable, no blanks.
static bool name_ok(const char *text) {
    if (strlen(text) > LZ_GSSAPI_NAME_MAX) return false;
    for (const char *p = text; *p; p++)
        if (!isgraph((unsigned char)*p)) return false;
    return true;
}

const char *lz__gssapi_check_name(const char *text) {
    return name_ok(text) ? NULL : "a GSSAPI name (zmq/host@REALM, zmq@host), at most 255 bytes, no blanks";
}

// The name types' words and libzmq's values for them, indexed by lz_gssapi_name_type_t.
static const struct {
    const char *word;
    int zmq;
} name_types[] = {
    [LZ_GSSAPI_NAME_KRB5] = {"krb5", ZMQ_GSSAPI_NT_KRB5_PRINCIPAL},
    [LZ_GSSAPI_NAME_HOSTBASED] = {"hostbased", ZMQ_GSSAPI_NT_HOSTBASED},
    [LZ_GSSAPI_NAME_USER] = {"user", ZMQ_GSSAPI_NT_USER_NAME},
};
#define NAME_TYPE_COUNT (sizeof name_types / sizeof *name_types)

static int find_name_type(const char *text) {
    for (size_t i = 0; i < NAME_TYPE_COUNT; i++)
        if (strcasecmp(text, name_types[i].word) == 0) return (int)i;
    return -1;
}

const char *lz__gssapi_check_name_type(const char *text) {
    return find_name_type(text) >= 0 ? NULL : "hostbased, user or krb5";
}

lz_gssapi_name_type_t lz__gssapi_name_type(const char *text) {
    int found = find_name_type(text);
    return found >= 0 ? (lz_gssapi_name_type_t)found : LZ_GSSAPI_NAME_KRB5;
}

// A listed principal names its realm: libzmq shows the client's with it,
// so one without would never match.
static int check_listed(const char *item, void *arg) {
    (void)arg;
    return name_ok(item) && strchr(item, '@') && item[0] != '@' ? LZ_OK : LZ_EINVAL;
}

const char *lz__gssapi_check_name_list(const char *text) {
    return lz__security_list_each(text, check_listed, NULL) == LZ_OK ? NULL
           : "Kerberos principal names with their realm (alice@EXAMPLE.COM) separated by commas or spaces";
}

// conflict: the first pair of settings that would give one side two
// mechanisms (libzmq takes one per socket, and which would be a surprise),
// or a GSSAPI key that no side uses. NULL when there is none.
static const char *conflict(const struct lz_security_settings *s) {
    const lz_gssapi_settings_t *g = &s->gssapi;
    if (g->server && *s->curve_secret_key) return "security.gssapi_server and security.curve_secret_key are both set";
    if (g->server && *s->plain_users_file) return "security.gssapi_server and security.plain_users_file are both set";
    if (*g->service_principal && *s->curve_server_key)
        return "security.gssapi_service_principal and security.curve_server_key are both set";
    if (*g->service_principal && *s->plain_username)
        return "security.gssapi_service_principal and security.plain_username are both set";
    if ((*g->principals || *g->principals_file) && !g->server)
        return "security.gssapi_principals (or gssapi_principals_file) need security.gssapi_server: only a GSSAPI "
               "server learns its clients' principals";
    // A type without its name would be a setting that changes nothing, silently.
    if (g->principal_type != LZ_GSSAPI_NAME_KRB5 && !*g->principal)
        return "security.gssapi_principal_type is set, but security.gssapi_principal is not";
    if (g->service_principal_type != LZ_GSSAPI_NAME_KRB5 && !*g->service_principal)
        return "security.gssapi_service_principal_type is set, but security.gssapi_service_principal is not";
    if ((*g->principal || g->plaintext) && !g->server && !*g->service_principal)
        return "security.gssapi_principal or gssapi_plaintext is set, but neither security.gssapi_server nor "
               "security.gssapi_service_principal";
    return NULL;
}

// used: a key is away from its default (a type's is krb5, as plaintext's is false).
static bool used(const lz_gssapi_settings_t *g) {
    return g->server || g->plaintext || *g->principal || *g->service_principal || *g->principals ||
           *g->principals_file || g->principal_type != LZ_GSSAPI_NAME_KRB5 ||
           g->service_principal_type != LZ_GSSAPI_NAME_KRB5;
}

static int add_admitted(const char *item, void *arg) {
    lz_gssapi_t *gssapi = arg;
    char **grown = realloc(gssapi->admitted, (gssapi->admitted_count + 1) * sizeof *grown);
    if (!grown) return LZ_ENOMEM;
    gssapi->admitted = grown;
    gssapi->admitted[gssapi->admitted_count] = strdup(item);
    return gssapi->admitted[gssapi->admitted_count++] ? LZ_OK : LZ_ENOMEM;
}

// principals_line reads one principal of a principals file: anything after
// it and a blank is a comment, as in an authorized_keys file. A bad line is
// shown escaped, as a bad keys file line is: it may be any bytes.
static int principals_line(void *gssapi, char *text, char *why, size_t why_size) {
    text[strcspn(text, " \t")] = '\0';
    if (check_listed(text, NULL) != LZ_OK) {
        char shown[60 * 4 + 1];
        lz__security_escape(text, strnlen(text, 60), shown, sizeof shown);
        snprintf(why, why_size, "not a Kerberos principal with its realm (alice@EXAMPLE.COM): '%s'", shown);
        return LZ_EINVAL;
    }
    return add_admitted(text, gssapi);
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// copy_settings keeps the settings' strings: the configuration they come
// from may be replaced by a reload while the policy lives on.
static int copy_settings(lz_gssapi_t *gssapi, const lz_gssapi_settings_t *g) {
    size_t a = strlen(g->principal) + 1, b = strlen(g->service_principal) + 1;
    gssapi->names = malloc(a + b);
    if (!gssapi->names) return lz__fail(LZ_ENOMEM, "security: out of memory");
    memcpy(gssapi->names, g->principal, a);
    memcpy(gssapi->names + a, g->service_principal, b);
    gssapi->s = (lz_gssapi_settings_t){.server = g->server, .plaintext = g->plaintext, .principal = gssapi->names,
                                       .service_principal = gssapi->names + a, .principal_type = g->principal_type,
                                       .service_principal_type = g->service_principal_type, .principals = "",
                                       .principals_file = ""};
    return lz__security_list_each(g->principals, add_admitted, gssapi) != LZ_OK
               ? lz__fail(LZ_ENOMEM, "security: out of memory")
           : *g->principals_file
               ? lz__security_read_lines("security.gssapi_principals_file", g->principals_file, principals_line, gssapi)
               : LZ_OK;
}

int lz__gssapi_new(const struct lz_security_settings *settings, bool available, lz_gssapi_t **out) {
    *out = NULL;
    const lz_gssapi_settings_t *g = &settings->gssapi;
    if (!used(g)) return LZ_OK;
    const char *why = conflict(settings);
    if (why) return lz__fail(LZ_ECONFIG, "config: %s", why);
    if (!available)
        return lz__fail(LZ_ECONFIG, "config: security.gssapi_* keys are set but the libzmq underneath was built "
                                    "without GSSAPI (zmq_has(\"gssapi\") is false)");
    lz_gssapi_t *gssapi = calloc(1, sizeof *gssapi);
    if (!gssapi) return lz__fail(LZ_ENOMEM, "security: out of memory");
    int rc = copy_settings(gssapi, g);
    if (rc != LZ_OK) {
        lz__gssapi_destroy(&gssapi);
        return rc; // the failure says which
    }
    if (gssapi->admitted_count)
        qsort(gssapi->admitted, gssapi->admitted_count, sizeof *gssapi->admitted, compare_names);
    // A file emptied (every principal taken off) admits no one, as an
    // emptied authorized_keys_file does: never anyone.
    gssapi->listed = gssapi->admitted_count > 0 || *g->principals_file;
    *out = gssapi;
    return LZ_OK;
}

void lz__gssapi_destroy(lz_gssapi_t **gssapi_p) {
    lz_gssapi_t *gssapi = *gssapi_p;
    if (!gssapi) return;
    for (size_t i = 0; i < gssapi->admitted_count; i++) free(gssapi->admitted[i]);
    free(gssapi->admitted);
    free(gssapi->names);
    free(gssapi);
    *gssapi_p = NULL;
}

bool lz__gssapi_server(const lz_gssapi_t *gssapi) { return gssapi && gssapi->s.server; }

bool lz__gssapi_side(const lz_gssapi_t *gssapi, char side, lz_gssapi_node_t *node) {
    if (!gssapi || (side == '@' ? !gssapi->s.server : !*gssapi->s.service_principal)) return false;
    snprintf(node->principal, sizeof node->principal, "%s", gssapi->s.principal);
    snprintf(node->service_principal, sizeof node->service_principal, "%s", gssapi->s.service_principal);
    node->principal_type = gssapi->s.principal_type;
    node->service_principal_type = gssapi->s.service_principal_type;
    node->plaintext = gssapi->s.plaintext;
    return true;
}

// set_name always sets the type: libzmq's default is host-based, and
// liberzmq's (krb5) is what its names meant before the type keys existed.
static int set_name(void *socket, int option, int type_option, const char *name, lz_gssapi_name_type_t type) {
    return zmq_setsockopt(socket, option, name, strlen(name)) |
           lz__sockopt_int(socket, type_option, name_types[type].zmq);
}

int lz__gssapi_apply(const lz_gssapi_node_t *node, bool server, void *socket) {
    int rc = server ? lz__sockopt_int(socket, ZMQ_GSSAPI_SERVER, 1)
                    : set_name(socket, ZMQ_GSSAPI_SERVICE_PRINCIPAL, ZMQ_GSSAPI_SERVICE_PRINCIPAL_NAMETYPE,
                               node->service_principal, node->service_principal_type);
    // Without a principal of its own, a side takes its keytab's (or ticket cache's) first.
    if (*node->principal)
        rc |= set_name(socket, ZMQ_GSSAPI_PRINCIPAL, ZMQ_GSSAPI_PRINCIPAL_NAMETYPE, node->principal,
                       node->principal_type);
    return rc | lz__sockopt_int(socket, ZMQ_GSSAPI_PLAINTEXT, node->plaintext);
}

bool lz__gssapi_narrows(const lz_gssapi_t *before, const lz_gssapi_t *now) {
    if (lz__gssapi_admits(now, NULL)) return false; // anyone, or no GSSAPI server at all
    if (lz__gssapi_admits(before, NULL)) return true;
    for (size_t i = 0; i < before->admitted_count; i++)
        if (!lz__gssapi_admits(now, before->admitted[i])) return true;
    return false;
}

bool lz__gssapi_libzmq_leaks(void) {
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    return ZMQ_MAKE_VERSION(major, minor, patch) <= ZMQ_MAKE_VERSION(4, 3, 5);
}

bool lz__gssapi_admits(const lz_gssapi_t *gssapi, const char *principal) {
    if (!gssapi || !gssapi->listed) return true;
    return principal && gssapi->admitted_count && // an empty list has no array to search
           bsearch(&principal, gssapi->admitted, gssapi->admitted_count, sizeof *gssapi->admitted, compare_names);
}
