#ifndef SY_CONFIG_INTERNAL_H
#define SY_CONFIG_INTERNAL_H

/* Shared by the two halves of the config module and nothing else:
 * config.c (the JSON file, defaults, free, the value rules) and
 * config_args.c (flags, --help, final checks). Keeping the range tables and
 * value checks in one place means the file, the flags and --help can never
 * disagree on what a setting accepts. */

#include <stddef.h>
#include <stdint.h>

#include "gateway/config.h"

/* Limits on what a config may hold beyond those in config.h. */
#define SY__CONF_MAX_DEPTH 64        /* JSON nesting; routes need far fewer levels */
#define SY__CONF_MAX_NAME 63
#define SY__CONF_MAX_URL 2048
#define SY__CONF_MAX_PATH 4095
#define SY__CONF_MAX_ENV_NAME 255
#define SY__CONF_MAX_LISTEN 300
#define SY__CONF_MAX_PII_PATTERNS 64
#define SY__CONF_MAX_PII_NAME 32
#define SY__CONF_MAX_PII_PATTERN 4096
#define SY__CONF_SHOWN 64            /* bytes of user text echoed in a message */

#define SY__CONF_LEVEL_RULE "must be one of debug, info, warn, error"
#define SY__CONF_DURABILITY_RULE "must be one of sync, nometasync, nosync"

/* One numeric setting: its JSON key, its flag (NULL: file only), its range
 * and default, and where it lives inside its struct. */
typedef struct sy__num_spec {
  const char *key;
  const char *flag;
  uint64_t lo, hi, def;
  size_t off;      /* offsetof in the owning struct */
  size_t width;    /* sizeof the field: 4 (uint32_t) or 8 (uint64_t, size_t on LP64) */
  const char *help;
} sy__num_spec;

#define SY__N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* offset and width of a field, for the tables */
#define SY__FIELD(type, field) offsetof(type, field), sizeof(((type *)0)->field)

/* Per-upstream settings (sy_upstream_conf), limits (sy_limits), and the
 * capture section (sy_capture_conf; retention keys live in the same struct). */
extern const sy__num_spec sy__config_up_specs[];
extern const size_t sy__config_n_up_specs;
extern const sy__num_spec sy__config_limit_specs[];
extern const size_t sy__config_n_limit_specs;

/* Stores v (already range-checked) into the field `s` describes. */
void sy__config_spec_set(void *base, const sy__num_spec *s, uint64_t v);

/* Writes the message into err and returns SY_ECONFIG. */
int sy__config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes "out of memory" and returns SY_ENOMEM. */
int sy__config_fail_nomem(char *err, size_t errlen);

/* User text for a message: at most SY__CONF_SHOWN bytes, control bytes as
 * '?', so a hostile value cannot forge log lines. Returns buf. */
const char *sy__config_shown(const char *s, char buf[SY__CONF_SHOWN + 4]);

/* Replaces *dst with a copy of src (NULL clears it). 0 or SY_ENOMEM. */
int sy__config_set_str(char **dst, const char *src);
/* Wipes and frees a secret string; sets *s to NULL. */
void sy__config_secret_free(char **s);

void sy__config_upstream_defaults(sy_upstream_conf *u);

/* Value checks used by both the file and the flags. `what` names the
 * setting in the message. Each returns 0, SY_ECONFIG or SY_ENOMEM. */
int sy__config_parse_uint_text(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int sy__config_check_path(const char *s, const char *what, char *err, size_t errlen);
int sy__config_parse_listen(const char *s, char **host, uint16_t *port, const char *what,
                            char *err, size_t errlen);
int sy__config_set_base_url(sy_upstream_conf *u, const char *s, const char *what, char *err,
                            size_t errlen);
int sy__config_set_env_name(char **dst, const char *s, const char *what, char *err,
                            size_t errlen);
/* 1 when s is 1..max bytes from [A-Za-z0-9_] plus `extra`; a leading digit
 * only when digit_first. */
int sy__config_valid_chars(const char *s, size_t max, const char *extra, int digit_first);
/* "sync", "nometasync" or "nosync" into *out; -1 for anything else. */
int sy__config_parse_durability(const char *s, sy_capture_durability *out);

/* The "grpc" section (config_grpc.c): defaults, the file's object, the
 * flags' listen values ("" turns a listener off), the final checks (the
 * SWITCHYARD_ADMIN_TOKEN environment token, TLS files both or neither), and
 * free. Each returns 0, SY_ECONFIG or SY_ENOMEM with a message. */
void sy__config_grpc_defaults(sy_grpc_conf *g);
int sy__config_parse_grpc(sy_config *c, const void *cjson_obj, char *err, size_t errlen);
int sy__config_grpc_listen(char host[SY_GRPC_HOST_MAX + 1], uint16_t *port, const char *s, const char *what,
                           char *err, size_t errlen);
int sy__config_finish_grpc(sy_config *c, char *err, size_t errlen);
void sy__config_grpc_free(sy_grpc_conf *g);
/* 0..15 for a hex digit, -1 otherwise. */
int sy__config_hexval(char ch);

#endif
