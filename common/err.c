#include "common/err.h"

#include <string.h>

const char *sy_strerror(int err) {
  switch (err) {
  case SY_OK: return "success";
  case SY_ENOMEM: return "out of memory";
  case SY_ETOOBIG: return "size limit exceeded";
  case SY_EINVAL: return "invalid argument";
  case SY_ENOTFOUND: return "not found";
  case SY_EEXIST: return "already exists";
  case SY_EIO: return "I/O error";
  case SY_ECONFIG: return "configuration error";
  case SY_ECONFLICT: return "version conflict";
  case SY_ECLOSED: return "closed";
  case SY_EFULL: return "queue full";
  default: break;
  }
  if (err < 0 && err > -4096) return strerror(-err);
  return "unknown error";
}
