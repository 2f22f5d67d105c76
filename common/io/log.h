/* Logging to stderr with syslog priority prefixes, for journald. */
#ifndef DEVID_COMMON_IO_LOG_H
#define DEVID_COMMON_IO_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

/* log_init sets the program name shown in each line and the most verbose
 * priority printed (LOG_INFO by default, LOG_DEBUG for --verbose). */
void log_init(const char *progname, int max_priority);

/* log_msg prints one line at syslog |priority| ("<3>" prefix for LOG_ERR when
 * stderr goes to journald, "error: " otherwise). Thread-safe: one write per line. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
