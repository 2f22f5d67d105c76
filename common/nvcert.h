/* Certificates as TPMs store them in NV indices, and as an operator dumps
 * them from one (tpm2_nvread -o FILE). One parser for the agent, which reads
 * the index, and for check-idevid --nv-dump, which reads the file. Pure: the
 * caller reads the bytes.
 *
 * What an NV index may hold, and nothing else:
 *  - a DER certificate: a SEQUENCE with a definite, minimally encoded length
 *    (short form, or 0x81 to 0x84 and that many length bytes);
 *  - the same, after the TCG PC Client stored-certificate header (TCG PC
 *    Client Implementation Specification for Conventional BIOS 1.21, Table 9;
 *    TCG EK Credential Profile): 10 01 (TCG_TAG_PCCLIENT_STORED_CERT),
 *    00 (certType TCG_FULL_CERT), certSize (2 bytes, big-endian: the DER
 *    length plus 2), 10 02 (TCG_TAG_PCCLIENT_FULL_CERT), then the DER.
 *    certSize must match the DER's own length. A partial certificate
 *    (certType 01, TCG_PARTIAL_SMALL_CERT) is refused;
 *  - without a header, several DER certificates back to back, where the
 *    caller allows more than one (a chain in one index);
 *  - PEM blocks ("-----BEGIN CERTIFICATE-----"), each one certificate;
 * each followed by any number of 0x00 or 0xFF bytes: the unused rest of an
 * index larger than its certificate (ST33 parts pad with 0xFF). Any other
 * byte after the certificate, a truncated certificate, BER (indefinite or
 * non-minimal lengths) or a certificate whose DER re-encoding differs from
 * the stored bytes is refused with the reason. The last rule is what lets
 * the agent send the X509 it holds (TLS and the protobuf intermediates
 * encode it with i2d_X509): what it sends is then byte for byte what the
 * manufacturer signed and stored. */
#ifndef DEVID_COMMON_NVCERT_H
#define DEVID_COMMON_NVCERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/* Length of the TCG stored-certificate header before the DER. */
#define NVCERT_TCG_HEADER_LEN 7

/* Where one certificate's DER lies in the NV contents. */
struct nvcert_span {
    size_t off; /* first byte of the DER SEQUENCE */
    size_t len; /* its length, tag and length bytes included */
};

/*
 * nvcert_find locates the DER certificates in the NV contents |buf| (|len|
 * bytes), at most |max| (at least 1), into |spans|, and sets |*n| to their
 * count. It reads only the framing described above: the TCG header, each
 * outer SEQUENCE's length and the padding; the certificates themselves are
 * not decoded. Returns 0, or DEVID_ERR_CONFIG with the reason (and the byte
 * offset) in |why| for contents that are not DER certificates as described,
 * or that hold more than |max|. PEM contents are refused here (see
 * nvcert_parse).
 */
int nvcert_find(struct nvcert_span *spans, size_t max, size_t *n, const uint8_t *buf, size_t len,
                char *why, size_t why_len);

/*
 * nvcert_parse sets |*out| to a new stack of the certificates in the NV
 * contents |buf| (|len| bytes), at least one and at most |max| (and at most
 * DEVID_MAX_INTERMEDIATES), DER as
 * nvcert_find frames it or PEM. Each certificate is decoded from exactly its
 * bytes, and refused unless i2d_X509 gives those bytes back. The caller owns
 * |*out| (sk_X509_pop_free(s, X509_free)). Returns 0, DEVID_ERR_CONFIG with
 * the reason in |why|, or DEVID_ERR_ALLOC.
 */
int nvcert_parse(STACK_OF(X509) **out, const uint8_t *buf, size_t len, size_t max, char *why,
                 size_t why_len);

/*
 * nvcert_parse_one is nvcert_parse for an index that holds exactly one
 * certificate, which |*out| then owns: anything after it but padding is an
 * error.
 */
int nvcert_parse_one(X509 **out, const uint8_t *buf, size_t len, char *why, size_t why_len);

/*
 * nvcert_parse_ek reads the one EK certificate an EK certificate index holds
 * (TCG EK Credential Profile: RSA at 0x01C00002, ECC at 0x01C0000A, the
 * high-range templates at 0x01C00012 and up). Unlike nvcert_parse it
 * tolerates what real EK certificates do: encodings that are BER rather
 * than DER (non-minimal or indefinite lengths), which OpenSSL decodes and
 * whose signature it checks over the received TBS bytes. The framing is the
 * same: perhaps after the TCG header (whose certSize must be the
 * certificate's length plus 2), and followed by 0x00/0xFF padding only.
 * Sets |*out| to the certificate and |*span| to where its bytes lie in
 * |buf|: those bytes, never a re-encoding, are what the agent sends. Returns
 * 0, DEVID_ERR_CONFIG with the reason in |why|, or DEVID_ERR_ALLOC.
 */
int nvcert_parse_ek(X509 **out, struct nvcert_span *span, const uint8_t *buf, size_t len, char *why,
                    size_t why_len);

#endif
