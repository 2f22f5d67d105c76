/* The renewal plan: when to renew the operational certificate, the note a
 * renewal leaves in the output directory while it runs, and what a run must
 * do given what it found there. Pure: the caller passes the times, the bytes
 * and the facts; nothing here reads a clock, a file or the TPM. */
#ifndef DEVID_AGENT_CORE_RENEW_H
#define DEVID_AGENT_CORE_RENEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/serial.h"

/* Longest certificate serial the marker holds, in hex digits: serial_hex's
 * (RFC 5280: 20 octets). */
#define RENEW_SERIAL_HEX_MAX (SERIAL_HEX_LEN - 1)

/*
 * renew_schedule decides whether a certificate valid from |not_before| to
 * |not_after| (seconds since the epoch) is due for renewal at |now|: it is
 * when the elapsed fraction of its lifetime, (now - not_before) / (not_after -
 * not_before), is at least |renew_at|. Sets |*due_at| to the first second at
 * which that holds (not_before + ceil(renew_at * lifetime), at most
 * |not_after|) and |*due| to now >= *due_at. Returns 0, or
 * DEVID_ERR_INVALID_ARGUMENT, leaving the outputs false and 0, when not_after
 * is not after not_before, the lifetime overflows, or |renew_at| is not in
 * (0, 1].
 */
int renew_schedule(bool *due, int64_t *due_at, int64_t not_before, int64_t not_after, int64_t now,
                   double renew_at);

/*
 * renew_marker_format writes the marker for a renewal of the certificate with
 * serial |serial_hex| (lowercase hex, no leading "0x") to |out| (|out_size|
 * bytes, NUL-terminated) and sets |*out_len| to its length without the NUL.
 * Returns 0, or DEVID_ERR_INVALID_ARGUMENT for a serial that is not 1 to
 * RENEW_SERIAL_HEX_MAX lowercase hex digits or a buffer too small.
 */
int renew_marker_format(char *out, size_t out_size, size_t *out_len, const char *serial_hex);

/*
 * renew_marker_parse reads the serial of the certificate being renewed from
 * the marker contents |buf| (|len| bytes, as renew_marker_format wrote them)
 * into |serial_hex| (|serial_size| bytes, at least RENEW_SERIAL_HEX_MAX + 1).
 * Returns 0, or DEVID_ERR_BAD_REQUEST for anything else.
 */
int renew_marker_parse(char *serial_hex, size_t serial_size, const uint8_t *buf, size_t len);

/* What a run must do (renew_decide). */
enum renew_action {
    /* Enroll, unless the files and the TPM already hold a valid enrollment. */
    RENEW_ACTION_ENROLL,
    /* A renewal was interrupted before its successor was stored; the
     * verifier may already have revoked the old certificate: enroll with a
     * new key even over a valid enrollment, then remove the marker. */
    RENEW_ACTION_REDO,
    /* A renewal was interrupted after its new files were committed: finish
     * its TPM side (the new key to persist_handle), remove the marker, then
     * as RENEW_ACTION_ENROLL. */
    RENEW_ACTION_FINISH,
    /* renew: the certificate is valid and renewal is not due: nothing. */
    RENEW_ACTION_NOT_DUE,
    /* renew: due (or forced): write the marker, then as RENEW_ACTION_REDO. */
    RENEW_ACTION_START,
};

/* What a run found before it starts, gathered by the caller in this order:
 * the marker first; only without one, and only for renew, the files. */
struct renew_facts {
    bool renew;                /* the command is renew (else enroll) */
    bool force;                /* renew --force */
    bool marker;               /* the renewal marker is in the output directory */
    const char *marker_serial; /* with marker: the serial it names; NULL: malformed */
    const char *cert_serial;   /* with marker: cert.pem's serial; NULL: none readable */
    bool enrolled;             /* renew without marker: the files hold a valid enrollment */
    int64_t not_before;        /* with enrolled: the certificate's validity ... */
    int64_t not_after;
    int64_t now;     /* ... and the time now, seconds since the epoch */
    double renew_at; /* [renew] renew_at */
};

/*
 * renew_decide sets |*action| to what a run with |facts| must do, and, for
 * RENEW_ACTION_NOT_DUE and RENEW_ACTION_START, |*due_at| to the first second
 * renewal is due (renew_schedule). A marker decides alone: when it is
 * malformed, or cert.pem is unreadable or still the certificate it names,
 * RENEW_ACTION_REDO; otherwise RENEW_ACTION_FINISH. Without one, enroll
 * always enrolls; renew enrolls when the files hold no valid enrollment, and
 * otherwise renews when due or forced. Returns 0, or
 * DEVID_ERR_INVALID_ARGUMENT when the certificate's validity dates cannot be
 * scheduled (renew_schedule).
 */
int renew_decide(enum renew_action *action, int64_t *due_at, const struct renew_facts *facts);

#endif
