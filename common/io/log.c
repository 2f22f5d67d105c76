#include "common/io/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* CODE_FILE and CODE_LINE would always name this file's one call. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "common/escape.h"

/* Longest line, newline included; longer ones are cut. */
#define LINE_MAX_LEN 8192
/* Most fields of one event, and room for their journal copies. */
#define EVENT_FIELDS_MAX 24
#define JOURNAL_ROOM (16 * 1024)

static const char *log_progname = "devid";
static int log_max = LOG_INFO;
static int log_journal = -1;

/* journal_stream reports whether JOURNAL_STREAM names stderr ("DEV:INODE",
 * as systemd sets it for a service whose stderr it reads). */
static int journal_stream(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char *end = NULL;

    if (v == NULL || fstat(STDERR_FILENO, &st) != 0)
        return 0;
    errno = 0;
    dev = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != ':')
        return 0;
    v = end + 1;
    errno = 0;
    ino = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0')
        return 0;
    return dev == (unsigned long long)st.st_dev && ino == (unsigned long long)st.st_ino;
}

void log_init(const char *progname, int max_priority)
{
    if (progname != NULL)
        log_progname = progname;
    log_max = max_priority;
    log_journal = journal_stream();
}

static const char *level_word(int priority)
{
    switch (priority) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT:
        case LOG_ERR:
            return "error";
        case LOG_WARNING:
            return "warning";
        case LOG_NOTICE:
        case LOG_INFO:
            return "info";
        default:
            return "debug";
    }
}

static int enabled(int priority)
{
    if (priority > log_max)
        return 0;
    if (log_journal < 0)
        log_journal = journal_stream();
    return 1;
}

/* Writes |text| as one stderr line with the prefix of the mode. */
static void write_line(int priority, const char *text)
{
    char line[LINE_MAX_LEN];
    int n;

    if (log_journal)
        n = snprintf(line, sizeof(line) - 1, "<%d>%s", priority, text);
    else
        n = snprintf(line, sizeof(line) - 1, "%s: %s: %s", log_progname, level_word(priority),
                     text);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

/* A key: lower case letters, digits and '_', not empty. */
static int is_key(const char *k)
{
    size_t i;

    if (k == NULL || k[0] == '\0')
        return 0;
    for (i = 0; k[i] != '\0'; i++) {
        if (!islower((unsigned char)k[i]) && !isdigit((unsigned char)k[i]) && k[i] != '_')
            return 0;
    }
    return 1;
}

/* Appends "FIELD=value" to |room| as journal field |iov|; 0 when it fits. */
static int journal_field(struct iovec *iov, char *room, size_t *used, const char *prefix,
                         const char *key, const char *value)
{
    size_t at = *used, i, len;
    int n;

    n = snprintf(room + at, JOURNAL_ROOM - at, "%s", prefix);
    if (n < 0 || (size_t)n >= JOURNAL_ROOM - at)
        return -1;
    len = (size_t)n;
    for (i = 0; key != NULL && key[i] != '\0' && at + len < JOURNAL_ROOM; i++)
        room[at + len++] = (char)toupper((unsigned char)key[i]);
    n = snprintf(room + at + len, JOURNAL_ROOM - at - len, "=%s", value != NULL ? value : "");
    if (n < 0 || (size_t)n >= JOURNAL_ROOM - at - len)
        return -1;
    len += (size_t)n;
    iov->iov_base = room + at;
    iov->iov_len = len;
    *used = at + len + 1;
    return 0;
}

/* Sends one journal entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then the
 * event's fields. Returns 0 when journald took it. */
static int journal_send(int priority, const char *text, const char *event,
                        const struct log_field *fields, size_t n)
{
    static _Thread_local char room[JOURNAL_ROOM];
    struct iovec iov[4 + EVENT_FIELDS_MAX];
    char prio[4];
    size_t used = 0, k = 0, i;

    snprintf(prio, sizeof(prio), "%d", priority & 7);
    if (journal_field(&iov[k++], room, &used, "MESSAGE", NULL, text) != 0 ||
        journal_field(&iov[k++], room, &used, "PRIORITY", NULL, prio) != 0 ||
        journal_field(&iov[k++], room, &used, "SYSLOG_IDENTIFIER", NULL, log_progname) != 0)
        return -1;
    if (event != NULL && journal_field(&iov[k++], room, &used, "DEVID_EVENT", NULL, event) != 0)
        return -1;
    for (i = 0; i < n && i < EVENT_FIELDS_MAX; i++) {
        if (!is_key(fields[i].key))
            continue;
        if (journal_field(&iov[k++], room, &used, "DEVID_", fields[i].key, fields[i].value) != 0)
            return -1;
    }
    return sd_journal_sendv(iov, (int)k) == 0 ? 0 : -1;
}

static void emit(int priority, const char *text, const char *event, const struct log_field *f,
                 size_t n)
{
    if (log_journal && journal_send(priority, text, event, f, n) == 0)
        return;
    write_line(priority, text);
}

void log_msg(int priority, const char *fmt, ...)
{
    char text[LINE_MAX_LEN];
    va_list ap;

    if (!enabled(priority))
        return;
    va_start(ap, fmt);
    if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
        text[0] = '\0';
    va_end(ap);
    emit(priority, text, NULL, NULL, 0);
}

/* A word is written bare: letters, digits and ._:+/- only, not empty. */
static int is_word(const char *v)
{
    size_t i;

    if (v == NULL || v[0] == '\0')
        return 0;
    for (i = 0; v[i] != '\0'; i++) {
        if (!isalnum((unsigned char)v[i]) && strchr("._:+/-", v[i]) == NULL)
            return 0;
    }
    return 1;
}

void log_event(int priority, const char *event, const struct log_field *fields, size_t n)
{
    char text[LINE_MAX_LEN];
    size_t at, i;
    int w;

    if (!enabled(priority))
        return;
    w = snprintf(text, sizeof(text), "%s", is_word(event) ? event : "event");
    at = w > 0 ? (size_t)w : 0;
    for (i = 0; i < n && at + 8 < sizeof(text); i++) {
        const char *v = fields[i].value != NULL ? fields[i].value : "";
        int bare = !fields[i].text && is_word(v);

        w = snprintf(text + at, sizeof(text) - at, " %s=%s",
                     is_key(fields[i].key) ? fields[i].key : "field", bare ? v : "\"");
        if (w < 0 || (size_t)w >= sizeof(text) - at)
            break;
        at += (size_t)w;
        if (bare)
            continue;
        escape_str(text + at, sizeof(text) - at - 1, v, strlen(v));
        at += strlen(text + at);
        text[at++] = '"';
        text[at] = '\0';
    }
    emit(priority, text, event, fields, n);
}
