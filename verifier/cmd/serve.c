/* devid-verifier serve: configuration, start-up checks, then the server. The
 * options are the configuration keys (verifier/core/config.c) and a few of
 * serve's own. */
#include "verifier/cmd/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/conf.h"
#include "common/err.h"
#include "common/io/log.h"
#include "common/io/runas.h"
#include "common/io/store.h"
#include "verifier/cmd/cmd.h"
#include "verifier/core/config.h"
#include "verifier/core/policy.h"
#include "verifier/core/token.h"
#include "verifier/pki/ca.h"
#include "verifier/pki/signer.h"
#include "verifier/pki/trust.h"
#include "verifier/server/server.h"

#define DEFAULT_CONFIG "/etc/devid/verifier.conf"
/* The service user the serving process drops to when started as root. */
#define DEFAULT_USER "devid"
#define MAX_POLICY_ARGS 256
/* Room for every option: --config, the configuration keys, the policy
 * rules and -v. */
#define MAX_OPTIONS 64

/* CMD_OPT_CALL ids beyond the configuration keys' indices. */
enum { ID_CONFIG = 1000, ID_RULE = 2000 };

/* The policy rules serve takes on the command line (the simple --roots form
 * only); re-applied on every reload. */
static const struct {
    const char *name;
    enum policy_list list;
    const char *arg;
    const char *help;
} rule_options[] = {
    {"allow-model", POLICY_ALLOW_MODEL, "M", "only these models may enroll (repeatable)"},
    {"deny-model", POLICY_DENY_MODEL, "M", "these models may not enroll (repeatable)"},
    {"allow-serial", POLICY_ALLOW_SERIAL, "GLOB", "only matching serials may enroll (repeatable)"},
    {"deny-serial", POLICY_DENY_SERIAL, "GLOB", "matching serials may not enroll (repeatable)"},
};

#define N_RULE_OPTIONS (sizeof(rule_options) / sizeof(rule_options[0]))

/* A policy rule given on the command line. */
struct policy_arg {
    enum policy_list list;
    const char *value;
};

/* What serve_main parses and the reload hook reads. */
struct serve {
    struct verifier_config cfg;
    struct policy_arg rules[MAX_POLICY_ARGS];
    size_t n_rules;
    int verbose;
    /* The account both processes drop to, when started as root. */
    struct runas runas;
    int drop;
};

/* Fills |opts| with serve's options: --config, every configuration key,
 * the policy rules and -v. Returns how many. */
static size_t options(struct cmd_option *opts, int *verbose)
{
    const struct verifier_config_option *o;
    size_t i, n = 0;

    opts[n++] = (struct cmd_option){.name = "config",
                                    .kind = CMD_OPT_CALL,
                                    .id = ID_CONFIG,
                                    .arg = "FILE",
                                    .help = "INI configuration file"};
    for (i = 0;
         (o = verifier_config_get0_option(i)) != NULL && n < MAX_OPTIONS - N_RULE_OPTIONS - 1; i++)
        opts[n++] = (struct cmd_option){
            .name = o->name, .kind = CMD_OPT_CALL, .id = (int)i, .arg = o->arg, .help = o->help};
    for (i = 0; i < N_RULE_OPTIONS; i++)
        opts[n++] = (struct cmd_option){.name = rule_options[i].name,
                                        .kind = CMD_OPT_CALL,
                                        .id = ID_RULE + (int)i,
                                        .arg = rule_options[i].arg,
                                        .help = rule_options[i].help};
    opts[n++] = (struct cmd_option){.name = "verbose",
                                    .kind = CMD_OPT_FLAG,
                                    .dest = verbose,
                                    .short_name = 'v',
                                    .help = "debug logging"};
    return n;
}

static void usage(FILE *f)
{
    struct cmd_option opts[MAX_OPTIONS];
    int verbose = 0;
    size_t n = options(opts, &verbose);

    fprintf(f,
            "usage: %s serve [--config FILE] [options]\n"
            "\n"
            "Serves POST /v1/challenge and POST /v1/enroll over mutual TLS, and /healthz and\n"
            "/metrics over plain HTTP. Settings come from the configuration file (default\n"
            "%s, if present; see deploy/config/verifier.conf.example); options override it.\n"
            "\n",
            cmd_prog, DEFAULT_CONFIG);
    cmd_print_options(f, opts, n);
    fprintf(f,
            "\n"
            "Signals: SIGTERM/SIGINT stop accepting, let requests in flight finish and exit 0;\n"
            "SIGHUP reloads roots, intermediates, CRLs, policy and the token key files (a\n"
            "broken file keeps the old state, keys included).\n"
            "Exit status: 0 after SIGTERM or SIGINT, 64 usage, 66 unreadable input,\n"
            "78 bad configuration, 70 internal failure.\n");
}

static int on_option(void *ctx, int id, const char *arg)
{
    struct serve *s = ctx;
    char why[256];

    if (id == ID_CONFIG)
        return 0; /* read before the other options, so that they override it */
    if (id >= ID_RULE) {
        if (s->n_rules >= MAX_POLICY_ARGS) {
            fprintf(stderr, "%s: more than %d policy options\n", cmd_prog, MAX_POLICY_ARGS);
            return -1;
        }
        s->rules[s->n_rules].list = rule_options[id - ID_RULE].list;
        s->rules[s->n_rules++].value = arg;
        return 0;
    }
    if (verifier_config_set_option(&s->cfg, (size_t)id, arg, why, sizeof(why)) != 0) {
        fprintf(stderr, "%s: %s\n", cmd_prog, why);
        return -1;
    }
    return 0;
}

static void free_trust(void *arg)
{
    trust_free(arg);
}

/* read_token_key reads the |what| ("token key") at |path| into |key|: a
 * file only its owner can read, of exactly TOKEN_KEY_LEN bytes. With
 * |present| (the accept-only key), an absent file is no key: |*present| stays
 * 0 and 0 is returned. Logs the file and what to do on failure. */
static int read_token_key(uint8_t key[TOKEN_KEY_LEN], int *present, const char *path,
                          const char *what)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    char why[512];
    int r;

    if (present != NULL)
        *present = 0;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        log_err("%s %s is accessible by group or others; chmod 600 it", what, path);
        return DEVID_ERR_CONFIG;
    }
    r = store_read(&buf, &len, path, TOKEN_KEY_LEN, why, sizeof(why));
    if (r == DEVID_ERR_NOT_FOUND && present != NULL)
        return 0;
    if (r == DEVID_ERR_NOT_FOUND || r == DEVID_ERR_IO) {
        log_err("cannot read %s %s", what, why);
        return DEVID_ERR_IO;
    }
    if (r == DEVID_ERR_TOO_LARGE || (r == 0 && len != TOKEN_KEY_LEN)) {
        log_err(
            "%s %s must hold exactly %d random bytes (it holds %s%zu); make one with "
            "`head -c 32 /dev/urandom > %s`",
            what, path, TOKEN_KEY_LEN, r != 0 ? "more than " : "",
            r != 0 ? (size_t)TOKEN_KEY_LEN : len, path);
        r = DEVID_ERR_CONFIG;
    } else if (r == 0) {
        memcpy(key, buf, TOKEN_KEY_LEN);
        if (present != NULL)
            *present = 1;
    }
    if (buf != NULL)
        OPENSSL_cleanse(buf, len);
    free(buf);
    return r;
}

/* The [token] accept_key_file setting, or NULL when unset or "". */
static const char *accept_key_path(const struct serve *s)
{
    const char *p = s->cfg.token_accept_key;

    return p != NULL && p[0] != '\0' ? p : NULL;
}

/* load_token_keys reads [token] key_file and, when set, accept_key_file
 * (absent: no accept-only key) into |out|. */
static int load_token_keys(struct server_trust *out, const struct serve *s)
{
    int present = 0, r;

    if ((r = read_token_key(out->token_key, NULL, s->cfg.token_key, "token key")) != 0)
        return r;
    if (accept_key_path(s) != NULL &&
        (r = read_token_key(out->token_accept_key, &present, accept_key_path(s),
                            "accept-only token key")) != 0)
        return r;
    out->has_token_accept_key = present;
    return 0;
}

/* log_token_keys says which token keys |t| holds, by file and id, so that an
 * operator changing keys can check each replica's. */
static void log_token_keys(const struct serve *s, const struct server_trust *t)
{
    char id[TOKEN_KEY_ID_LEN + 1] = "?", accept_id[TOKEN_KEY_ID_LEN + 1] = "?";

    token_key_id(id, t->token_key);
    log_info("token key %s (id %s) seals and opens tokens", s->cfg.token_key, id);
    if (accept_key_path(s) == NULL)
        return;
    if (!t->has_token_accept_key) {
        log_info("no accept-only token key: %s does not exist", accept_key_path(s));
        return;
    }
    token_key_id(accept_id, t->token_accept_key);
    if (CRYPTO_memcmp(t->token_key, t->token_accept_key, TOKEN_KEY_LEN) == 0)
        log_warn(
            "accept-only token key %s is the token key itself (id %s): during a key "
            "change it holds the other key",
            accept_key_path(s), id);
    else
        log_info("accept-only token key %s (id %s) opens tokens too", accept_key_path(s),
                 accept_id);
}

/* load_trust is the server's (re)load hook: the token keys, then the
 * manufacturers and policy files when configured, else the simple --roots
 * form with the command-line policy rules. */
static int load_trust(void *arg, struct server_trust *out)
{
    const struct serve *s = arg;
    struct policy *policy = NULL;
    struct trust *trust = NULL;
    char why[768] = "";
    size_t i;
    int r;

    if ((r = load_token_keys(out, s)) != 0)
        goto out;
    if (s->cfg.manufacturers != NULL) {
        r = trust_new_from_files(&trust, s->cfg.manufacturers, s->cfg.policy, why, sizeof(why));
    } else {
        if ((policy = policy_new()) == NULL) {
            r = DEVID_ERR_ALLOC;
            goto out;
        }
        for (i = 0; i < s->n_rules; i++) {
            if ((r = policy_add(policy, s->rules[i].list, s->rules[i].value)) != 0) {
                policy_free(policy);
                goto out;
            }
        }
        r = trust_new_from_roots(&trust, s->cfg.roots, s->cfg.intermediates, policy, why,
                                 sizeof(why));
    }
    if (r != 0) {
        log_err("%s", why);
        goto out;
    }
    out->store = trust_get0_store(trust);
    out->policy = trust_get0_policy(trust);
    out->ek_store = trust_get0_ek_store(trust);
    out->owner = trust;
    out->free_owner = free_trust;
    log_token_keys(s, out);
    r = 0;
out:
    if (r != 0)
        OPENSSL_cleanse(out, sizeof(*out));
    return r;
}

/* read_config applies the file at |path| to |cfg|; a missing file is fine
 * unless it was named (|explicit|). */
static int read_config(struct verifier_config *cfg, const char *path, int explicit)
{
    char why[512];
    uint8_t *text = NULL;
    size_t len = 0;
    int r;

    r = store_read(&text, &len, path, CONF_MAX_SIZE, why, sizeof(why));
    if (r == DEVID_ERR_NOT_FOUND && !explicit)
        return 0;
    if (r == DEVID_ERR_NOT_FOUND || r == DEVID_ERR_IO) {
        log_err("cannot read configuration %s", why);
        return DEVID_ERR_IO;
    }
    if (r == DEVID_ERR_TOO_LARGE) {
        log_err("configuration %s: larger than 1 MiB", path);
        return DEVID_ERR_CONFIG;
    }
    if (r == 0 &&
        (r = verifier_config_parse(cfg, (const char *)text, len, path, why, sizeof(why))) != 0)
        log_err("%s", why);
    free(text);
    return r;
}

/* The --config option is read before the others, so they override it. */
static const char *find_config(int argc, char **argv, int *explicit)
{
    int i;

    *explicit = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            *explicit = 1;
            return argv[i + 1];
        }
        if (strncmp(argv[i], "--config=", 9) == 0) {
            *explicit = 1;
            return argv[i] + 9;
        }
    }
    return DEFAULT_CONFIG;
}

/* check_settings refuses what the server cannot start with (and operands,
 * which serve takes none of); returns 0 or -1 after saying why. */
static int check_settings(const struct serve *s, const char *config_path, int operands)
{
    const struct verifier_config *cfg = &s->cfg;

    if (operands || cfg->tls_cert == NULL || cfg->tls_key == NULL || cfg->ca_cert == NULL ||
        cfg->ca_key == NULL || cfg->token_key == NULL) {
        fprintf(stderr,
                "%s serve: TLS certificate and key, CA certificate and key, and the token key "
                "are required (in %s or as --tls-cert, --tls-key, --ca-cert, --ca-key, "
                "--token-key)\n",
                cmd_prog, config_path);
        return -1;
    }
    if (cfg->manufacturers != NULL && s->n_rules > 0) {
        fprintf(stderr,
                "%s serve: with a manufacturers file, put policy rules in the policy "
                "file, not on the command line\n",
                cmd_prog);
        return -1;
    }
    if (cfg->policy != NULL && cfg->manufacturers == NULL) {
        fprintf(stderr, "%s serve: a policy file goes with a manufacturers file\n", cmd_prog);
        return -1;
    }
    if (cfg->tls_min > cfg->tls_max) {
        fprintf(stderr, "%s serve: the lowest TLS version is above the highest\n", cmd_prog);
        return -1;
    }
    return 0;
}

/*
 * choose_user decides, before anything is forked, whom the signer and the
 * serving process run as: started as root, [server] user (default devid,
 * when that user exists; "root" keeps root, with a warning). Sets s->drop.
 * Returns 0 or DEVID_ERR_CONFIG.
 */
static int choose_user(struct serve *s)
{
    const char *user = s->cfg.user != NULL ? s->cfg.user : DEFAULT_USER;
    int r;

    s->drop = 0;
    if (geteuid() != 0)
        return 0;
    if (strcmp(user, "root") == 0) {
        log_warn("[server] user = root: the signer and the serving process keep root");
        return 0;
    }
    if ((r = runas_lookup(&s->runas, user)) == DEVID_ERR_NOT_FOUND && s->cfg.user == NULL) {
        log_warn(
            "started as root and there is no user %s to run as: the signer and the serving "
            "process keep root (create it with systemd-sysusers, or set [server] user)",
            DEFAULT_USER);
        return 0;
    }
    if (r != 0) {
        log_err("[server] user %s: %s", user,
                r == DEVID_ERR_NOT_FOUND ? "no such user" : "name or home directory too long");
        return DEVID_ERR_CONFIG;
    }
    s->drop = 1;
    return 0;
}

/* warn_if_readable: the serving process, now the service user, checks that
 * it cannot open a key file only the signer should read. */
static void warn_if_readable(const char *what, const char *path, const char *user)
{
    int fd;

    if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        return;
    close(fd);
    log_warn(
        "%s %s can be read by user %s, who runs the serving process: make it root's "
        "(chown root, chmod 600) so that only the signer can read it",
        what, path, user);
}

/*
 * drop_privileges is the server's before_workers hook: the sockets are
 * bound and the TLS key read, and the process that parses what
 * devices send stops being root. The signer has already dropped to the same
 * account after loading its keys; it is not dumpable, so this process cannot
 * read its memory.
 */
static int drop_privileges(void *arg)
{
    const struct serve *s = arg;
    int r;

    if (!s->drop)
        return 0;
    if ((r = runas_become(&s->runas)) != 0)
        return r;
    log_info("serving as user %s (uid %u, gid %u); the signer alone holds the CA key",
             s->runas.name, (unsigned)s->runas.uid, (unsigned)s->runas.gid);
    if (s->cfg.ca_provider == NULL)
        warn_if_readable("the CA key", s->cfg.ca_key, s->runas.name);
    warn_if_readable("the log key", s->cfg.log_key, s->runas.name);
    return 0;
}

/* in_process_signer: whether a test build was asked to keep the key in
 * this process (DEVID_TEST_SIGNER=in-process), to measure what the signer
 * costs. Release builds have no such switch. */
static int in_process_signer(void)
{
#ifdef DEVID_TEST_HOOKS
    const char *v = getenv("DEVID_TEST_SIGNER");

    if (v != NULL && strcmp(v, "in-process") == 0) {
        log_warn("test hook DEVID_TEST_SIGNER=in-process: the CA key is in the serving process");
        return 1;
    }
#endif
    return 0;
}

/* start_ca forks the signer, which loads the key, and sets |*ca| to the
 * serving process's view of it: the certificate and chain, and the
 * signer. */
static int start_ca(struct ca **ca, struct signer **signer, const struct serve *s)
{
    const struct verifier_config *cfg = &s->cfg;
    const struct signer_config scfg = {
        .ca_cert = cfg->ca_cert,
        .ca_key = cfg->ca_key,
        .ca_provider = cfg->ca_provider,
        .ca_tcti = cfg->ca_tcti,
        .max_validity_seconds = cfg->validity_seconds,
        .max_crl_next_update_seconds = cfg->crl_next_update_seconds,
        .policy_arc = cfg->assurance_arc,
        .log_key = cfg->log_key,
        .run_as = s->drop ? &s->runas : NULL,
    };
    int r;

    if (in_process_signer()) {
        if (cfg->ca_provider != NULL && (r = ca_use_provider(cfg->ca_provider, cfg->ca_tcti)) != 0)
            return r;
        return ca_new(ca, cfg->ca_cert, cfg->ca_key);
    }
    if ((r = signer_start(signer, &scfg)) != 0)
        return r;
    return ca_new_remote(ca, cfg->ca_cert, *signer);
}

/* run starts the signer and serves until told to stop; returns the exit
 * code. */
static int run(struct serve *s)
{
    struct server_hooks hooks = {load_trust, s, drop_privileges, -1, NULL};
    struct signer *signer = NULL;
    struct ca *ca = NULL;
    int r;

    /* No exec from here on gains anything: not the workers, not the
     * signer. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        log_err("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return EXIT_SOFTWARE;
    }
    /* The signer is forked first, before this process reads the token keys
     * (server_run calls load_trust once it has dropped to the service
     * user, and on SIGHUP) or starts a thread, so that it holds the CA key
     * and nothing else. */
    if ((r = choose_user(s)) == 0 && (r = start_ca(&ca, &signer, s)) == 0) {
        hooks.signer_fd = signer != NULL ? signer_watch_fd(signer) : -1;
        hooks.signer = signer;
        r = server_run(&s->cfg, &hooks, ca);
    }
    ca_free(ca);
    signer_free(signer);
    ca_release_providers();
    return cmd_exit_for(r);
}

int cmd_serve_main(int argc, char **argv)
{
    struct cmd_option opts[MAX_OPTIONS];
    struct serve *s = NULL;
    const char *config_path;
    enum cmd_parse_result parsed;
    int explicit = 0, rc = EXIT_SOFTWARE;
    size_t n;

    log_init(cmd_prog, LOG_INFO);
    if ((s = calloc(1, sizeof(*s))) == NULL || verifier_config_init(&s->cfg) != 0)
        goto out;
    n = options(opts, &s->verbose);
    config_path = find_config(argc, argv, &explicit);
    if ((rc = cmd_exit_for(read_config(&s->cfg, config_path, explicit))) != 0)
        goto out;
    parsed = cmd_parse_options(argc, argv, opts, n, on_option, s);
    if (parsed != CMD_PARSED) {
        rc = cmd_usage_exit(parsed, usage);
        goto out;
    }
    rc = EXIT_USAGE;
    if (check_settings(s, config_path, optind != argc) != 0)
        goto out;
    log_init(cmd_prog, s->verbose ? LOG_DEBUG : LOG_INFO);
    rc = run(s);
out:
    if (s != NULL)
        verifier_config_cleanup(&s->cfg);
    free(s);
    return rc;
}
