/* The other protobuf messages: the first byte picks the message, the rest is
 * its wire encoding. ChallengeRequest reaches the verifier; ChallengeResponse,
 * EnrollResponse and Error reach the agent. A message that decodes must
 * re-encode to the length protobuf-c predicted. (Not that the re-encoding
 * decodes again: protobuf-c 1.4.1 keeps a field number 0 spelled as a
 * two-byte tag, 80 00, as an unknown field and re-encodes it as 00, which it
 * then refuses. Harmless here: devid never re-encodes what it received.) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "devid/v1/enroll.pb-c.h"

static void roundtrip(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
    ProtobufCMessage *m;
    uint8_t *buf;
    size_t len;

    if ((m = protobuf_c_message_unpack(desc, NULL, size, data)) == NULL)
        return;
    len = protobuf_c_message_get_packed_size(m);
    if ((buf = malloc(len ? len : 1)) == NULL)
        abort();
    if (protobuf_c_message_pack(m, buf) != len)
        abort();
    protobuf_c_message_free_unpacked(m, NULL);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ProtobufCMessageDescriptor *const descs[] = {
        &devid__v1__challenge_request__descriptor, &devid__v1__challenge_response__descriptor,
        &devid__v1__enroll_response__descriptor,   &devid__v1__error__descriptor,
        &devid__v1__enroll_request__descriptor,
    };

    if (size < 1)
        return 0;
    roundtrip(descs[data[0] % (sizeof(descs) / sizeof(descs[0]))], data + 1, size - 1);
    return 0;
}
