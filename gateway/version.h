#ifndef SY_VERSION_H
#define SY_VERSION_H
#define SY_VERSION "0.1.0"
/* "switchyard 0.1.0 (libuv X, libcurl Y)"; static storage. */
const char *sy_version_string(void);
#endif
