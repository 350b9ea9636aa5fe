#include "gateway/version.h"

#include <curl/curl.h>
#include <stdio.h>
#include <uv.h>

const char *sy_version_string(void) {
  static char s[128];
  if (!s[0])
    snprintf(s, sizeof s, "switchyard %s (libuv %s, %s)", SY_VERSION, uv_version_string(),
             curl_version_info(CURLVERSION_NOW)->version);
  return s;
}
