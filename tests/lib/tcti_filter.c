/*
 * tcti_filter: a TCTI for tests that stands in front of a real TPM (swtpm)
 * and plays one with less in it, so that the agent's fallbacks meet the
 * answers a smaller TPM gives:
 *   - the command codes in TCTI_FILTER_LACK (hex, comma-separated) are
 *     answered with TCTI_FILTER_RC (default 0x143, TPM_RC_COMMAND_CODE: what a
 *     TPM that lacks a command answers; 0xb0143 is how the kernel's resource
 *     manager says it for a command the TPM does not list);
 *   - a TPM2_NV_Read of more than TCTI_FILTER_NV_MAX (decimal) bytes is
 *     answered with TPM_RC_VALUE on its size parameter, as a TPM whose NV
 *     buffer (TPM2_PT_NV_BUFFER_MAX) is that small answers it.
 * Everything else goes unchanged to the child TCTI that its configuration
 * names. Build it and name it by path; wrap it in the pcap TCTI to see what
 * the agent sent and what it was told:
 *
 *   cc -shared -fPIC -o libtcti-filter.so tests/lib/tcti_filter.c -ltss2-tctildr
 *   TCTI_FILTER_LACK=0x191 devid-agent ... --tcti "pcap:$PWD/libtcti-filter.so:swtpm:port=P"
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_tpm2_types.h>

#define FILTER_MAGIC 0x6465766964666c74ull /* "devidflt" */
#define HEADER_LEN 10                      /* tag, size, command or response code */
#define LACK_MAX 16

struct filter {
    TSS2_TCTI_CONTEXT_COMMON_V2 common; /* first: the context is this struct */
    TSS2_TCTI_CONTEXT *child;
    uint32_t lack[LACK_MAX];
    size_t lack_len;
    uint32_t lack_rc;
    unsigned long nv_max; /* 0: no limit */
    uint8_t reply[HEADER_LEN];
    bool replying; /* the next receive returns |reply| */
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static struct filter *filter_of(TSS2_TCTI_CONTEXT *ctx)
{
    return (struct filter *)ctx;
}

/* refusal returns the response code the smaller TPM gives the command |cmd|
 * (|len| bytes), or 0 when the real TPM behind runs it. */
static uint32_t refusal(const struct filter *f, const uint8_t *cmd, size_t len)
{
    uint32_t cc, auth_len;
    size_t i, at;

    if (len < HEADER_LEN)
        return 0;
    cc = get32(cmd + 6);
    for (i = 0; i < f->lack_len; i++) {
        if (f->lack[i] == cc)
            return f->lack_rc;
    }
    /* NV_Read: header, authHandle, nvIndex, authorization size and area, size, offset */
    if (cc != TPM2_CC_NV_Read || f->nv_max == 0 || len < HEADER_LEN + 12)
        return 0;
    auth_len = get32(cmd + HEADER_LEN + 8);
    at = HEADER_LEN + 12 + (size_t)auth_len;
    if (auth_len > len || at + 2 > len)
        return 0;
    if (((unsigned long)cmd[at] << 8 | cmd[at + 1]) <= f->nv_max)
        return 0;
    return TPM2_RC_VALUE + TPM2_RC_P + TPM2_RC_1;
}

static TSS2_RC filter_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *cmd)
{
    struct filter *f = filter_of(ctx);
    uint32_t rc = cmd != NULL ? refusal(f, cmd, size) : 0;

    if (rc == 0)
        return Tss2_Tcti_Transmit(f->child, size, cmd);
    f->reply[0] = (uint8_t)(TPM2_ST_NO_SESSIONS >> 8);
    f->reply[1] = (uint8_t)TPM2_ST_NO_SESSIONS;
    put32(f->reply + 2, HEADER_LEN);
    put32(f->reply + 6, rc);
    f->replying = true;
    return TSS2_RC_SUCCESS;
}

static TSS2_RC filter_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *resp, int32_t timeout)
{
    struct filter *f = filter_of(ctx);

    if (!f->replying)
        return Tss2_Tcti_Receive(f->child, size, resp, timeout);
    if (size == NULL)
        return TSS2_TCTI_RC_BAD_REFERENCE;
    if (resp == NULL) {
        *size = HEADER_LEN;
        return TSS2_RC_SUCCESS;
    }
    if (*size < HEADER_LEN) {
        *size = HEADER_LEN;
        return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
    }
    memcpy(resp, f->reply, HEADER_LEN);
    *size = HEADER_LEN;
    f->replying = false;
    return TSS2_RC_SUCCESS;
}

static void filter_finalize(TSS2_TCTI_CONTEXT *ctx)
{
    Tss2_TctiLdr_Finalize(&filter_of(ctx)->child);
}

static TSS2_RC filter_cancel(TSS2_TCTI_CONTEXT *ctx)
{
    return Tss2_Tcti_Cancel(filter_of(ctx)->child);
}

static TSS2_RC filter_poll(TSS2_TCTI_CONTEXT *ctx, TSS2_TCTI_POLL_HANDLE *handles, size_t *n)
{
    return Tss2_Tcti_GetPollHandles(filter_of(ctx)->child, handles, n);
}

static TSS2_RC filter_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality)
{
    return Tss2_Tcti_SetLocality(filter_of(ctx)->child, locality);
}

static TSS2_RC filter_sticky(TSS2_TCTI_CONTEXT *ctx, TPM2_HANDLE *handle, uint8_t sticky)
{
    return Tss2_Tcti_MakeSticky(filter_of(ctx)->child, handle, sticky);
}

/* num_env reads the number in environment variable |name|, in |base|, into
 * |*out|, or |dflt| when it is unset. Returns false on a malformed value. */
static bool num_env(unsigned long *out, const char *name, int base, unsigned long dflt)
{
    const char *s = getenv(name);
    char *end = NULL;

    *out = dflt;
    if (s == NULL || *s == '\0')
        return true;
    errno = 0;
    *out = strtoul(s, &end, base);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    return *out <= UINT32_MAX;
}

/* parse_lack reads TCTI_FILTER_LACK: hex command codes, comma-separated. */
static bool parse_lack(struct filter *f)
{
    const char *s = getenv("TCTI_FILTER_LACK");
    char *end = NULL;
    unsigned long v;

    while (s != NULL && *s != '\0') {
        if (f->lack_len == LACK_MAX)
            return false;
        errno = 0;
        v = strtoul(s, &end, 16);
        if (errno != 0 || end == s || (*end != ',' && *end != '\0') || v > UINT32_MAX)
            return false;
        f->lack[f->lack_len++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return true;
}

static TSS2_RC filter_init(TSS2_TCTI_CONTEXT *ctx, size_t *size, const char *conf)
{
    struct filter *f = filter_of(ctx);
    unsigned long rc = 0;
    TSS2_RC r;

    if (size == NULL)
        return TSS2_TCTI_RC_BAD_REFERENCE;
    if (ctx == NULL) {
        *size = sizeof(struct filter);
        return TSS2_RC_SUCCESS;
    }
    if (*size < sizeof(struct filter))
        return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
    memset(f, 0, sizeof(*f));
    if (!parse_lack(f) || !num_env(&rc, "TCTI_FILTER_RC", 16, TPM2_RC_COMMAND_CODE) ||
        !num_env(&f->nv_max, "TCTI_FILTER_NV_MAX", 10, 0))
        return TSS2_TCTI_RC_BAD_VALUE;
    f->lack_rc = (uint32_t)rc;
    if ((r = Tss2_TctiLdr_Initialize(conf, &f->child)) != TSS2_RC_SUCCESS)
        return r;
    f->common.v1.magic = FILTER_MAGIC;
    f->common.v1.version = 2;
    f->common.v1.transmit = filter_transmit;
    f->common.v1.receive = filter_receive;
    f->common.v1.finalize = filter_finalize;
    f->common.v1.cancel = filter_cancel;
    f->common.v1.getPollHandles = filter_poll;
    f->common.v1.setLocality = filter_locality;
    f->common.makeSticky = filter_sticky;
    return TSS2_RC_SUCCESS;
}

static const TSS2_TCTI_INFO filter_info = {
    .version = 2,
    .name = "tcti-filter",
    .description = "devid tests: a TPM that lacks some commands, in front of a real one",
    .config_help = "the child TCTI and its configuration: <name>:<conf>",
    .init = filter_init,
};

const TSS2_TCTI_INFO *Tss2_Tcti_Info(void);

const TSS2_TCTI_INFO *Tss2_Tcti_Info(void)
{
    return &filter_info;
}
