/* Test-only hooks on the metrics listener, compiled only with
 * -DDEVID_TEST_HOOKS=ON (the default of test builds; OFF for Release and
 * for packages built with -DDEVID_TESTS=OFF). */
#ifndef DEVID_VERIFIER_SERVER_TESTHOOK_H
#define DEVID_VERIFIER_SERVER_TESTHOOK_H

#include <event2/http.h>

/*
 * testhook_sign answers POST /test/sign: the body is a certificate (DER,
 * any signature), which goes to the signer exactly as a worker's
 * certificate would (ca_sign). 200 with the signed DER; 403 when the signer
 * refused it (its reason is in the log); 500 for anything else. It lets a
 * test ask the signer for certificates outside the profile, as a
 * compromised worker could. |arg| is the struct server.
 */
void testhook_sign(struct evhttp_request *req, void *arg);

#endif
