/* make_credvec EK_PUB NAME BLOB: the generator of the committed
 * credential vectors (tests/unit/verifier/credvec/credvec.sh). Reads the EK's
 * TPM2B_PUBLIC (tpm2_readpublic -o) and an object's Name (tpm2_readpublic
 * -n), makes a credential with verifier/core/credential.c and fresh
 * randomness, writes it to BLOB in tpm2-tools' credential file format (for
 * tpm2_activatecredential -i: magic BADCC0DE, version 1, TPM2B_ID_OBJECT,
 * TPM2B_ENCRYPTED_SECRET) and prints, as C, everything needed to make the
 * same blob again: the EK public area, the Name, the credential, the seed
 * (RSA) or the ephemeral private key (ECC), and the blob. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "common/tpmkey.h"
#include "verifier/core/credential.h"

static size_t slurp(uint8_t *buf, size_t max, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL) {
        perror(path);
        exit(1);
    }
    n = fread(buf, 1, max, f);
    fclose(f);
    return n;
}

static void hexvar(const char *name, const uint8_t *b, size_t n)
{
    size_t i;

    printf("static const uint8_t %s[] = {", name);
    for (i = 0; i < n; i++)
        printf("%s0x%02x,", i % 12 == 0 ? "\n    " : " ", b[i]);
    printf("\n};\n");
}

int main(int argc, char **argv)
{
    uint8_t pubbuf[1024], name[128], cv[32], seed[64], *der = NULL;
    size_t publen, namelen, off = 0, pub_off;
    TPM2B_PUBLIC pub;
    struct credential_blob blob;
    EVP_PKEY *ek = NULL, *eph = NULL;
    char why[256] = "", group[64];
    const char *pfx;
    size_t glen = 0, dsz;
    int n;
    FILE *f;

    if (argc != 5) {
        fprintf(stderr, "usage: make_credvec PREFIX EK_PUB NAME BLOB\n");
        return 64;
    }
    pfx = argv[1];
    publen = slurp(pubbuf, sizeof(pubbuf), argv[2]);
    namelen = slurp(name, sizeof(name), argv[3]);
    memset(&pub, 0, sizeof(pub));
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(pubbuf, publen, &off, &pub) != 0 || off != publen)
        return 2;
    dsz = pub.publicArea.nameAlg == TPM2_ALG_SHA384 ? 48 : 32;
    if (RAND_bytes(cv, 32) != 1 || RAND_bytes(seed, (int)dsz) != 1)
        return 3;
    if (pub.publicArea.type == TPM2_ALG_ECC) {
        if (tpmkey_public_to_pkey(&ek, &pub.publicArea) != 0 ||
            EVP_PKEY_get_utf8_string_param(ek, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) != 1 ||
            (eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group)) == NULL)
            return 4;
    }
    if (credential_make_with(&blob, &pub.publicArea, name, namelen, cv, 32, seed, eph, why,
                             sizeof(why)) != 0) {
        fprintf(stderr, "make_credvec: %s\n", why);
        return 5;
    }
    if ((f = fopen(argv[4], "wb")) == NULL)
        return 6;
    fwrite("\xba\xdc\xc0\xde\x00\x00\x00\x01", 1, 8, f);
    fwrite(blob.id_object, 1, blob.id_object_len, f);
    fwrite(blob.secret, 1, blob.secret_len, f);
    fclose(f);
    printf(
        "/* %s: made by make_credvec; tpm2_activatecredential in swtpm 0.7.1\n"
        " * recovered %s_credential from %s_id_object and %s_secret. */\n",
        pfx, pfx, pfx, pfx);
    pub_off = 2; /* the TPMT_PUBLIC, without the TPM2B size */
    {
        char v[64];
        snprintf(v, sizeof(v), "%s_ek_public", pfx);
        hexvar(v, pubbuf + pub_off, publen - pub_off);
        snprintf(v, sizeof(v), "%s_name", pfx);
        hexvar(v, name, namelen);
        snprintf(v, sizeof(v), "%s_credential", pfx);
        hexvar(v, cv, 32);
        snprintf(v, sizeof(v), "%s_seed", pfx);
        hexvar(v, seed, dsz);
        if (eph != NULL) {
            if ((n = i2d_PrivateKey(eph, &der)) <= 0)
                return 7;
            snprintf(v, sizeof(v), "%s_ephemeral_der", pfx);
            hexvar(v, der, (size_t)n);
        }
        snprintf(v, sizeof(v), "%s_id_object", pfx);
        hexvar(v, blob.id_object, blob.id_object_len);
        snprintf(v, sizeof(v), "%s_secret", pfx);
        hexvar(v, blob.secret, blob.secret_len);
    }
    OPENSSL_free(der);
    EVP_PKEY_free(eph);
    EVP_PKEY_free(ek);
    return 0;
}
