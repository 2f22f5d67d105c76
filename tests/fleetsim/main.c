/* devid-fleetsim: many simulated devices enrolling at once against a
 * devid-verifier. Each device has its own software IDevID issued by a
 * devid-factory CA and builds TPM-format evidence in software, so the
 * verifier cannot tell it from a TPM. See README.md next to this file. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "conn.h"
#include "factory.h"
#include "sim.h"
#include "stats.h"

#define PROG "devid-fleetsim"
#define EX_USAGE 64
#define MAX_DEVICES 1000000UL
#define MAX_PARALLEL 1024UL
#define MAX_RETRIES 100UL
#define MAX_TIMEOUT 600UL
#define MAX_RATE 100000UL

static const char *const mode_names[] = {"normal", "replay-token", "replay-body", "drop-response",
                                         "same-device"};

static void device_serial(char *out, size_t out_len, const struct sim *sim, unsigned long n)
{
    snprintf(out, out_len, "%s-%lu", sim->prefix, n);
}

/* replay runs the replay of |mode| after |dev| enrolled with |e|. */
static void replay(struct sim *sim, unsigned long idx, struct device *dev, struct enrollment *e)
{
    struct enrollment again = {0};
    struct outcome o = {0};
    struct device *other = NULL;
    char serial[FACTORY_SERIAL_MAX + 1];
    int r;

    if (sim->mode == SIM_REPLAY_TOKEN) {
        memcpy(again.nonce, e->nonce, SIM_NONCE_LEN);
        memcpy(again.token, e->token, e->token_len);
        again.token_len = e->token_len;
        r = sim_replay_token(sim, dev, &o, &again);
    } else {
        device_serial(serial, sizeof(serial), sim, sim->devices + idx + 1);
        if ((r = factory_device_new(&other, sim->factory, sim->model, serial)) != 0)
            sim_local_failure(sim, &o, "making the second device", r);
        else
            r = sim_send_body(sim, &sim->conn2, other, e->body, e->body_len, &o, &again);
    }
    if (r == 0) {
        fprintf(stderr, "%s: device %s: %s was ACCEPTED: certificate %s issued\n", PROG,
                dev->serial, mode_names[sim->mode], again.serial);
        sim_write_serial(sim, again.serial);
    }
    stats_replay(sim->stats, r != 0, o.reason);
    factory_device_free(other);
    enrollment_cleanup(&again);
}

/* drop_resend re-sends |e|'s dropped body twice on new connections of |dev|;
 * the first certificate received counts as the enrollment. */
static void drop_resend(struct sim *sim, struct device *dev, struct enrollment *e, double start)
{
    struct enrollment first = {0}, second = {0};
    struct outcome o1 = {0}, o2 = {0};
    bool same;
    int r1, r2;

    r1 = sim_send_body(sim, &sim->conn2, dev, e->body, e->body_len, &o1, &first);
    r2 = sim_send_body(sim, &sim->conn2, dev, e->body, e->body_len, &o2, &second);
    same = r1 == 0 && r2 == 0 && first.cert_len == second.cert_len &&
           memcmp(first.cert, second.cert, first.cert_len) == 0;
    if (r1 == 0) {
        stats_ok(sim->stats, sim_now_ms() - start);
        sim_write_serial(sim, first.serial);
    } else {
        stats_failed(sim->stats, o1.reason);
        sim_report_failure(sim, dev->serial, "re-send after drop", &o1);
    }
    if (r2 == 0 && (r1 != 0 || strcmp(first.serial, second.serial) != 0))
        sim_write_serial(sim, second.serial);
    stats_resend(sim->stats, true, r1 == 0 ? "ok" : o1.reason, r2 == 0 ? "ok" : o2.reason, same);
    enrollment_cleanup(&first);
    enrollment_cleanup(&second);
}

static void run_device(struct sim *sim, unsigned long idx)
{
    struct device *dev = NULL;
    struct enrollment e = {0};
    struct outcome o = {0};
    char serial[FACTORY_SERIAL_MAX + 1];
    double start;
    int r;

    device_serial(serial, sizeof(serial), sim, idx + 1);
    if ((r = factory_device_new(&dev, sim->factory, sim->model, serial)) != 0) {
        sim_local_failure(sim, &o, "making the device's IDevID", r);
        stats_failed(sim->stats, o.reason);
        sim_report_failure(sim, serial, "factory", &o);
        return;
    }
    start = sim_now_ms();
    r = sim_enroll_device(sim, &sim->conn, dev, &o, &e, sim->mode == SIM_DROP_RESPONSE);
    if (r != 0) {
        stats_failed(sim->stats, o.reason);
        sim_report_failure(sim, serial, "enrollment", &o);
        if (sim->mode == SIM_DROP_RESPONSE)
            stats_resend(sim->stats, false, "not-sent", "not-sent", false);
    } else if (sim->mode == SIM_DROP_RESPONSE) {
        drop_resend(sim, dev, &e, start);
    } else {
        stats_ok(sim->stats, sim_now_ms() - start);
        sim_write_serial(sim, e.serial);
        if (sim->mode != SIM_NORMAL)
            replay(sim, idx, dev, &e);
    }
    enrollment_cleanup(&e);
    factory_device_free(dev);
}

/* pace waits, with --rate R, until device |idx|'s turn: R starts a second
 * from the run's start, whatever the answers take (an open schedule, so
 * latency is measured at that offered rate). */
static void pace(const struct sim *sim, unsigned long idx)
{
    double wait_ms;
    struct timespec ts;

    if (sim->rate == 0)
        return;
    wait_ms = sim->start_ms + (double)idx * 1e3 / (double)sim->rate - sim_now_ms();
    if (wait_ms <= 0)
        return;
    ts.tv_sec = (time_t)(wait_ms / 1e3);
    ts.tv_nsec = (long)((wait_ms - (double)ts.tv_sec * 1e3) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *worker(void *arg)
{
    struct sim *sim = arg;
    unsigned long idx;

    while ((idx = atomic_fetch_add(&sim->next, 1)) < sim->devices) {
        pace(sim, idx);
        run_device(sim, idx);
    }
    OPENSSL_thread_stop();
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG
            " --url URL --ca-bundle FILE --factory-ca DIR --devices N --parallel P\n"
            "                      [--serial-prefix PREFIX] [--model MODEL] [--retries K]\n"
            "                      [--tls-version 1.2|1.3] [--timeout SECONDS] [--out FILE]\n"
            "                      [--mode normal|replay-token|replay-body|drop-response|\n"
            "                      same-device] [--url2 URL] [--source-address ADDR]\n"
            "                      [--rate R]\n"
            "\n"
            "Simulate N devices enrolling with devid-verifier at URL, P at a time. Each\n"
            "device gets its own software IDevID issued by the devid-factory CA in DIR\n"
            "(DIR/intermediate.pem, DIR/intermediate.key) and builds TPM evidence in\n"
            "software; each enrollment uses a new mutual-TLS connection.\n"
            "\n"
            "  --url URL              verifier base URL, e.g. https://127.0.0.1:8443\n"
            "  --ca-bundle FILE       CAs trusted for the verifier's TLS certificate\n"
            "  --factory-ca DIR       directory made by 'devid-factory ca'\n"
            "  --devices N            devices to enroll (1-%lu)\n"
            "  --parallel P           worker threads (1-%lu)\n"
            "  --serial-prefix PREFIX device serials are PREFIX-1 .. PREFIX-N (default SIM)\n"
            "  --model MODEL          device model, the IDevID's CN (default \"Sim Gateway\")\n"
            "  --retries K            retry 503, retryable errors and connection failures\n"
            "                         up to K times, honouring Retry-After (default 0)\n"
            "  --tls-version V        1.2 or 1.3 only (default: either)\n"
            "  --timeout SECONDS      limit for each request and connect (default 30)\n"
            "  --out FILE             write the issued certificate serials, one per line\n"
            "  --mode MODE            normal (default); replay-token: after enrolling,\n"
            "                         reuse the token with new evidence on a new\n"
            "                         connection; replay-body: send the same enroll body\n"
            "                         from another device's connection; drop-response:\n"
            "                         close before reading the enroll answer, then re-send\n"
            "                         the same body twice on new connections;\n"
            "                         same-device: device by device, P enrollments of\n"
            "                         that one device at once (each must get exactly one\n"
            "                         certificate: reenroll = deny)\n"
            "  --url2 URL             a second verifier: the replays and re-sends go there,\n"
            "                         and every other same-device enrollment (default: URL)\n"
            "  --source-address ADDR  connect from this local address (e.g. 127.0.0.5)\n"
            "  --rate R               start at most R enrollments a second (default: as\n"
            "                         fast as --parallel allows)\n"
            "  -h, --help             this help\n"
            "\n"
            "Prints a key=value report on stdout. Exit 0 when every device enrolled (and,\n"
            "in the replay modes, every replay was refused; in drop-response, both\n"
            "re-sends returned the same certificate), 1 otherwise, 64 on usage errors.\n",
            MAX_DEVICES, MAX_PARALLEL);
}

static int parse_ulong(unsigned long *out, const char *opt, const char *s, unsigned long min,
                       unsigned long max)
{
    unsigned long long v;
    char *end = NULL;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || errno != 0 || end == NULL || *end != '\0' || v < min ||
        v > max) {
        fprintf(stderr, "%s: %s wants a number from %lu to %lu, not \"%s\"\n", PROG, opt, min, max,
                s);
        return DEVID_ERR_INVALID_ARGUMENT;
    }
    *out = (unsigned long)v;
    return 0;
}

enum {
    O_URL = 256,
    O_CA,
    O_FACTORY,
    O_DEVICES,
    O_PARALLEL,
    O_PREFIX,
    O_MODEL,
    O_RETRIES,
    O_TLS,
    O_TIMEOUT,
    O_OUT,
    O_MODE,
    O_URL2,
    O_SOURCE,
    O_RATE
};

/* The options, in the order --help lists them. */
static const struct option options[] = {
    {"url", required_argument, NULL, O_URL},
    {"ca-bundle", required_argument, NULL, O_CA},
    {"factory-ca", required_argument, NULL, O_FACTORY},
    {"devices", required_argument, NULL, O_DEVICES},
    {"parallel", required_argument, NULL, O_PARALLEL},
    {"serial-prefix", required_argument, NULL, O_PREFIX},
    {"model", required_argument, NULL, O_MODEL},
    {"retries", required_argument, NULL, O_RETRIES},
    {"tls-version", required_argument, NULL, O_TLS},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"out", required_argument, NULL, O_OUT},
    {"mode", required_argument, NULL, O_MODE},
    {"url2", required_argument, NULL, O_URL2},
    {"source-address", required_argument, NULL, O_SOURCE},
    {"rate", required_argument, NULL, O_RATE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int set_tls(struct sim *sim, const char *arg)
{
    if (strcmp(arg, "1.2") == 0) {
        sim->conn.tls_version = 12;
    } else if (strcmp(arg, "1.3") == 0) {
        sim->conn.tls_version = 13;
    } else {
        fprintf(stderr, "%s: --tls-version wants 1.2 or 1.3, not \"%s\"\n", PROG, arg);
        return -1;
    }
    return 0;
}

static int set_mode(struct sim *sim, const char *arg)
{
    size_t i;

    for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(arg, mode_names[i]) == 0) {
            sim->mode = (enum sim_mode)i;
            return 0;
        }
    }
    fprintf(stderr,
            "%s: --mode wants normal, replay-token, replay-body, drop-response or same-device, "
            "not \"%s\"\n",
            PROG, arg);
    return -1;
}

/* check_args refuses what the options leave missing or out of range. */
static int check_args(const struct sim *sim, const char *factory_dir)
{
    char serial[FACTORY_SERIAL_MAX + 32];

    if (sim->conn.url == NULL || sim->conn.ca_bundle == NULL || factory_dir == NULL ||
        sim->devices == 0 || sim->parallel == 0) {
        fprintf(stderr,
                "%s: --url, --ca-bundle, --factory-ca, --devices and --parallel are required; "
                "try '%s --help'\n",
                PROG, PROG);
        return -1;
    }
    /* The longest serial made: PREFIX-(2N) in replay-body. */
    snprintf(serial, sizeof(serial), "%s-%lu", sim->prefix, 2 * sim->devices);
    if (factory_check_serial(serial) != 0) {
        fprintf(stderr,
                "%s: --serial-prefix \"%s\" makes serials like \"%s\": want at most 64 "
                "characters from [A-Za-z0-9.:()?-]\n",
                PROG, sim->prefix, serial);
        return -1;
    }
    if (factory_check_model(sim->model) != 0) {
        fprintf(stderr,
                "%s: --model \"%s\": want 1-64 characters from [A-Za-z0-9 ._:()&'?-], no "
                "leading or trailing space\n",
                PROG, sim->model);
        return -1;
    }
    return 0;
}

static int parse_args(struct sim *sim, const char **factory_dir, int argc, char **argv)
{
    static char source[96];
    const char *url2;
    unsigned long timeout = 30;
    int c;

    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
            case O_URL:
                sim->conn.url = optarg;
                break;
            case O_CA:
                sim->conn.ca_bundle = optarg;
                break;
            case O_FACTORY:
                *factory_dir = optarg;
                break;
            case O_DEVICES:
                if (parse_ulong(&sim->devices, "--devices", optarg, 1, MAX_DEVICES) != 0)
                    return EX_USAGE;
                break;
            case O_PARALLEL:
                if (parse_ulong(&sim->parallel, "--parallel", optarg, 1, MAX_PARALLEL) != 0)
                    return EX_USAGE;
                break;
            case O_PREFIX:
                sim->prefix = optarg;
                break;
            case O_MODEL:
                sim->model = optarg;
                break;
            case O_RETRIES:
                if (parse_ulong(&sim->retries, "--retries", optarg, 0, MAX_RETRIES) != 0)
                    return EX_USAGE;
                break;
            case O_TLS:
                if (set_tls(sim, optarg) != 0)
                    return EX_USAGE;
                break;
            case O_TIMEOUT:
                if (parse_ulong(&timeout, "--timeout", optarg, 1, MAX_TIMEOUT) != 0)
                    return EX_USAGE;
                break;
            case O_OUT:
                sim->out_path = optarg;
                break;
            case O_URL2:
                sim->conn2.url = optarg;
                break;
            case O_SOURCE:
                if (snprintf(source, sizeof(source), "host!%s", optarg) >= (int)sizeof(source)) {
                    fprintf(stderr, "%s: --source-address \"%s\" is too long\n", PROG, optarg);
                    return EX_USAGE;
                }
                sim->conn.source = source;
                break;
            case O_RATE:
                if (parse_ulong(&sim->rate, "--rate", optarg, 1, MAX_RATE) != 0)
                    return EX_USAGE;
                break;
            case O_MODE:
                if (set_mode(sim, optarg) != 0)
                    return EX_USAGE;
                break;
            case 'h':
                usage(stdout);
                exit(0);
            default:
                fprintf(stderr, "try '%s --help'\n", PROG);
                return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"; try '%s --help'\n", PROG, argv[optind],
                PROG);
        return EX_USAGE;
    }
    if (check_args(sim, *factory_dir) != 0)
        return EX_USAGE;
    sim->conn.timeout = (long)timeout;
    url2 = sim->conn2.url;
    sim->conn2 = sim->conn;
    if (url2 != NULL)
        sim->conn2.url = url2;
    return 0;
}

/* run_fleet enrolls the fleet from --parallel threads. Returns 0, or -1 when
 * no thread could start. */
static int run_fleet(struct sim *sim)
{
    unsigned long i, n = sim->parallel < sim->devices ? sim->parallel : sim->devices;
    pthread_t *threads = calloc(n, sizeof(*threads));
    int rc;

    if (threads == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        if ((rc = pthread_create(&threads[i], NULL, worker, sim)) != 0) {
            fprintf(stderr, "%s: cannot start worker thread %lu: %s\n", PROG, i + 1, strerror(rc));
            /* Let the running workers finish the whole fleet. */
            n = i;
            break;
        }
    }
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    return n > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct sim sim;
    struct stats_run run;
    const char *factory_dir = NULL;
    double start;
    bool pass = false, curl_ready = false;
    int rc, exit_code = 1;

    memset(&sim, 0, sizeof(sim));
    sim.prefix = "SIM";
    sim.model = "Sim Gateway";
    atomic_init(&sim.next, 0);
    if ((rc = parse_args(&sim, &factory_dir, argc, argv)) != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    if (pthread_mutex_init(&sim.out_mu, NULL) != 0)
        return 1;
    if (factory_load(&sim.factory, factory_dir) != 0)
        goto out;
    if (stats_new(&sim.stats, sim.devices) != 0) {
        fprintf(stderr, "%s: out of memory for %lu devices\n", PROG, sim.devices);
        goto out;
    }
    if (sim.out_path != NULL && (sim.out = fopen(sim.out_path, "w")) == NULL) {
        fprintf(stderr, "%s: cannot write %s: %s\n", PROG, sim.out_path, strerror(errno));
        goto out;
    }
    if (conn_global_init() != 0) {
        fprintf(stderr, "%s: cannot initialise libcurl\n", PROG);
        goto out;
    }
    curl_ready = true;
    start = sim_now_ms();
    sim.start_ms = start;
    if (sim.mode == SIM_SAME_DEVICE)
        sim_race(&sim);
    else if (run_fleet(&sim) != 0)
        goto out;
    memset(&run, 0, sizeof(run));
    run.mode = mode_names[sim.mode];
    run.url = sim.conn.url;
    run.url2 = sim.conn2.url != sim.conn.url ? sim.conn2.url : NULL;
    run.devices = sim.devices;
    run.parallel = (unsigned)sim.parallel;
    run.tls = sim.conn.tls_version == 12 ? "1.2" : sim.conn.tls_version == 13 ? "1.3" : "any";
    run.retries = (unsigned)sim.retries;
    run.elapsed_s = (sim_now_ms() - start) / 1e3;
    pass = stats_report(sim.stats, stdout, &run);
    if (sim.out != NULL) {
        if (fclose(sim.out) != 0 || sim.out_failed) {
            fprintf(stderr, "%s: writing %s failed\n", PROG, sim.out_path);
            pass = false;
        }
        sim.out = NULL;
    }
    exit_code = pass ? 0 : 1;
out:
    if (sim.out != NULL)
        fclose(sim.out);
    if (curl_ready)
        conn_global_cleanup();
    stats_free(sim.stats);
    factory_free(sim.factory);
    pthread_mutex_destroy(&sim.out_mu);
    return exit_code;
}
