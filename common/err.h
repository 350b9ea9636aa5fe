#ifndef SY_ERR_H
#define SY_ERR_H

/* One error convention for the whole project: functions return int, 0 on
 * success, a negative code on failure. Codes below are in switchyard's own
 * range (-31000 ..), so they never collide with -errno or libuv's UV_E*
 * codes, which may also be passed through unchanged. */
enum {
  SY_OK = 0,
  SY_ENOMEM = -31000,   /* allocation failed */
  SY_ETOOBIG = -31001,  /* a capped buffer or an external limit was exceeded */
  SY_EINVAL = -31002,   /* invalid argument or malformed input */
  SY_ENOTFOUND = -31003,
  SY_EEXIST = -31004,
  SY_EIO = -31005,      /* I/O or library failure; details were logged */
  SY_ECONFIG = -31006,  /* configuration rejected; message in the caller's buffer */
  SY_ECONFLICT = -31007,/* optimistic-concurrency version mismatch */
  SY_ECLOSED = -31008,  /* the object is shutting down */
  SY_EFULL = -31009,    /* a bounded queue is full */
};

/* Returns a static string for an SY_* code, or strerror() for -errno. Never NULL. */
const char *sy_strerror(int err);

#endif
