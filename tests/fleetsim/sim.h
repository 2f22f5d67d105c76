/* The simulator's run and the steps of one enrollment, shared by the modes
 * (main.c: normal, replays, drop-response; race.c: same-device). */
#ifndef DEVID_TESTS_FLEETSIM_SIM_H
#define DEVID_TESTS_FLEETSIM_SIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conn.h"
#include "factory.h"
#include "stats.h"

#define SIM_TOKEN_MAX 512
#define SIM_NONCE_LEN 32
#define SIM_SERIAL_HEX_MAX 80

enum sim_mode {
    SIM_NORMAL,
    SIM_REPLAY_TOKEN,
    SIM_REPLAY_BODY,
    SIM_DROP_RESPONSE,
    SIM_SAME_DEVICE,
};

struct sim {
    struct conn_config conn;
    /* The second verifier (--url2): the replays, the re-sends and half of
     * the same-device racers go there; |conn| again when not given. */
    struct conn_config conn2;
    const char *prefix;
    const char *model;
    unsigned long devices;
    unsigned long parallel;
    unsigned long retries;
    /* --rate: enrollments started per second, 0 for no pacing; from
     * |start_ms| (sim_now_ms when the run began). */
    unsigned long rate;
    double start_ms;
    enum sim_mode mode;
    struct factory *factory;
    struct stats *stats;
    FILE *out;
    const char *out_path;
    pthread_mutex_t out_mu;
    bool out_failed;
    atomic_ulong next;
};

/* Why one request or attempt failed. */
struct outcome {
    char reason[STATS_NAME_MAX]; /* REASON_* name or transport class */
    char message[320];
    bool retryable;
    bool have_retry_after;
    unsigned long retry_after;
};

/* What one enrollment sent and received. */
struct enrollment {
    uint8_t *body; /* the EnrollRequest as sent */
    size_t body_len;
    uint8_t nonce[SIM_NONCE_LEN];
    uint8_t token[SIM_TOKEN_MAX];
    size_t token_len;
    uint8_t *cert; /* DER, when issued */
    size_t cert_len;
    char serial[SIM_SERIAL_HEX_MAX];
    bool dropped;
};

/* enrollment_cleanup frees what |e| owns and zeroes it. */
void enrollment_cleanup(struct enrollment *e);

/* sim_now_ms reads the monotonic clock, in milliseconds. */
double sim_now_ms(void);

/* sim_local_failure records a failure of the simulator itself in |o| and
 * returns |r|. */
int sim_local_failure(struct sim *sim, struct outcome *o, const char *what, int r);

/*
 * sim_open opens a new connection of |dev| to the verifier of |cc| into
 * |*c| and asks for a challenge on it; unless |keep_challenge| is false the
 * nonce and token go into |e|. |exporter| gets the connection's
 * tls-exporter value. Returns 0 or a DEVID_ERR_* code with |o| saying why;
 * the caller frees |*c| (conn_free) either way.
 */
int sim_open(struct sim *sim, const struct conn_config *cc, struct device *dev, struct conn **c,
             struct outcome *o, struct enrollment *e, bool keep_challenge,
             uint8_t exporter[TRANSCRIPT_EXPORTER_LEN]);

/*
 * sim_enroll sends the enroll request for the challenge in |e| on |c| (from
 * sim_open): fresh evidence bound to |exporter|. With |drop| the answer is
 * not read (e->dropped). Returns 0 with e->cert and e->serial, or a
 * DEVID_ERR_* code with |o| saying why.
 */
int sim_enroll(struct sim *sim, struct conn *c, struct device *dev, struct outcome *o,
               struct enrollment *e, bool drop, const uint8_t exporter[TRANSCRIPT_EXPORTER_LEN]);

/* sim_replay_token enrolls |dev| again with the nonce and token already in
 * |e| and fresh evidence, on a new connection to the second verifier. */
int sim_replay_token(struct sim *sim, struct device *dev, struct outcome *o, struct enrollment *e);

/* sim_enroll_device enrolls |dev| through |cc|, retrying what is retryable
 * up to --retries times, each time from the challenge on a new connection. */
int sim_enroll_device(struct sim *sim, const struct conn_config *cc, struct device *dev,
                      struct outcome *o, struct enrollment *e, bool drop);

/* sim_send_body POSTs |body| to /v1/enroll of |cc| as the first request on
 * a new connection of |dev|; |e| receives the certificate when one is
 * issued. */
int sim_send_body(struct sim *sim, const struct conn_config *cc, struct device *dev,
                  const uint8_t *body, size_t len, struct outcome *o, struct enrollment *e);

/* sim_write_serial appends |serial| to --out. */
void sim_write_serial(struct sim *sim, const char *serial);

/* sim_report_failure prints the first few failures on stderr. */
void sim_report_failure(struct sim *sim, const char *serial, const char *what,
                        const struct outcome *o);

/* sim_race runs same-device mode: device by device, --parallel enrollments
 * of it at once (race.c). */
void sim_race(struct sim *sim);

#endif
