#ifndef SY_LOG_H
#define SY_LOG_H

/* Process-wide logging to stderr, one line per call, safe from any thread.
 * Lines look like: 2026-11-26T14:09:13.123Z warn  message. Never log a
 * secret: upstream keys, client keys and Authorization headers stay out. */
typedef enum { SY_LOG_DEBUG = 0, SY_LOG_INFO, SY_LOG_WARN, SY_LOG_ERROR } sy_log_level;

void sy_log_set_level(sy_log_level level);
/* Parses "debug", "info", "warn", "error". 0 or SY_EINVAL. */
int sy_log_parse_level(const char *s, sy_log_level *out);
void sy_log(sy_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sy_debug(...) sy_log(SY_LOG_DEBUG, __VA_ARGS__)
#define sy_info(...) sy_log(SY_LOG_INFO, __VA_ARGS__)
#define sy_warn(...) sy_log(SY_LOG_WARN, __VA_ARGS__)
#define sy_error(...) sy_log(SY_LOG_ERROR, __VA_ARGS__)

#endif
