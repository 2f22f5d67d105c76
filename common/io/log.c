#include "common/io/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_progname = "devid";
static int log_max = LOG_INFO;
static int log_journal = -1;

void log_init(const char *progname, int max_priority)
{
    if (progname != NULL)
        log_progname = progname;
    log_max = max_priority;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
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

void log_msg(int priority, const char *fmt, ...)
{
    char line[2048];
    int n, m;
    va_list ap;

    if (priority > log_max)
        return;
    if (log_journal < 0)
        log_journal = getenv("JOURNAL_STREAM") != NULL;
    if (log_journal)
        n = snprintf(line, sizeof(line), "<%d>", priority);
    else
        n = snprintf(line, sizeof(line), "%s: %s: ", log_progname, level_word(priority));
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
