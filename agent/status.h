/* devid-agent status: who this device is, and which operational certificate
 * it holds. */
#ifndef DEVID_AGENT_STATUS_H
#define DEVID_AGENT_STATUS_H

#include "agent/core/config.h"

/*
 * status_print prints to stdout the device identity from the IDevID
 * certificate (serial, model, manufacturer), the operational certificate's
 * subject, issuer, serial and expiry, and where its key lives. Returns 0 when
 * a valid certificate matching its key (in the files and the TPM) is in
 * place, DEVID_ERR_NOT_FOUND when there is none, or the error that prevented
 * the check.
 */
int status_print(const struct agent_config *cfg);

#endif
