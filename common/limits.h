/* Limits the protocol itself sets (proto/devid/v1/enroll.proto,
 * docs/protocol.md), shared by both sides so they cannot disagree. */
#ifndef DEVID_COMMON_LIMITS_H
#define DEVID_COMMON_LIMITS_H

/* The most intermediate certificates one ChallengeRequest or EnrollRequest
 * carries. */
#define DEVID_MAX_INTERMEDIATES 8

#endif
