/* lz keygen: a CURVE key pair for security.curve_secret_key and its peers'
 * security.curve_server_key / security.authorized_keys (docs/security.md). */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/options.h"

static const lz_cli_command_t keygen_command = {
    .name = "keygen",
    .usage = "lz keygen [SECRET_KEY]",
    .help = "Print a new CURVE key pair, Z85 text, as two YAML lines: public_key and\n"
            "secret_key. Given a secret key, print that key's pair instead (its public\n"
            "key). The public key goes to peers (security.curve_server_key for clients of\n"
            "a server, security.authorized_keys for a server's clients); keep the secret\n"
            "key secret (security.curve_secret_key).\n"
            "\nExamples:\n"
            "  lz keygen > server.keys\n"
            "  lz keygen 'JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6'\n"
            "  export LIBERZMQ_SECURITY__CURVE_SECRET_KEY=$(lz keygen | sed -n 's/^secret_key: \"\\(.*\\)\"$/\\1/p')\n",
    .max_args = 1,
};

static int keygen_run(const lz_cli_opts_t *opts) {
    char public_key[LZ_CURVE_KEY_SIZE], secret_key[LZ_CURVE_KEY_SIZE];
    int rc;
    if (opts->arg_count == 1) {
        rc = lz_curve_public_key(public_key, opts->args[0]);
        if (rc == LZ_EINVAL) return lz_cli_usage_error(opts->cmd, "not a 40-character Z85 secret key");
        snprintf(secret_key, sizeof secret_key, "%s", opts->args[0]);
    } else {
        rc = lz_curve_keypair(public_key, secret_key);
    }
    if (rc != LZ_OK) return lz_cli_fail(opts, rc, "keygen");
    // Z85 has neither '"' nor '\\', so double quotes make any key a YAML string.
    printf("public_key: \"%s\"\nsecret_key: \"%s\"\n", public_key, secret_key);
    return LZ_EXIT_OK;
}

int lz_cmd_keygen(int argc, char **argv) { return lz_cli_main(&keygen_command, argc, argv, keygen_run); }
