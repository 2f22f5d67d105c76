/* Logging: lines on stderr ("prog: level: text"), or, when stderr is the
 * journal's stream (systemd's JOURNAL_STREAM names it), journal entries with
 * their priority and, for events, one journal field per value. */
#ifndef DEVID_COMMON_IO_LOG_H
#define DEVID_COMMON_IO_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

/* log_init sets the program name shown in each line and the most verbose
 * priority printed (LOG_INFO by default, LOG_DEBUG for --verbose), and looks
 * whether stderr is the journal: JOURNAL_STREAM set to the device and inode
 * of stderr. */
void log_init(const char *progname, int max_priority);

/* log_msg logs one line at syslog |priority|. Thread-safe: one write per
 * line. |fmt| is the program's own text: a client-controlled string goes
 * through escape_str (common/escape.h) or, in a decision, log_event. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* One key=value field of an event (log_event). */
struct log_field {
    /* Lower case letters, digits and '_'; its journal field is DEVID_ and
     * the key in upper case. */
    const char *key;
    /* The value; NULL is logged as empty. */
    const char *value;
    /* true: client-controlled or free text, always written "escaped";
     * false: one of the program's own words, written bare (and quoted only
     * if it holds anything but letters, digits and ._:+/-). */
    bool text;
};

/* A field whose value is text (quoted and escaped) or a word (bare). */
#define LOG_TEXT(k, v) ((struct log_field){(k), (v), true})
#define LOG_WORD(k, v) ((struct log_field){(k), (v), false})

/*
 * log_event logs event |event| (a word: "enroll", "challenge") with its |n|
 * |fields| at |priority| as one line, `event key=word key="text" ...`, every
 * text value escaped with escape_str so that no value can end its field or
 * the line. Under the journal it is one entry: MESSAGE is that line,
 * PRIORITY, DEVID_EVENT and DEVID_<KEY> for each field with the value as it
 * is (journal fields are kept apart by length, not by quotes). Thread-safe.
 */
void log_event(int priority, const char *event, const struct log_field *fields, size_t n);

#endif
