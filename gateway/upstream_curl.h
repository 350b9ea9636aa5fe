#ifndef SY_UPSTREAM_CURL_H
#define SY_UPSTREAM_CURL_H

#include "gateway/upstream.h"

/* The libcurl client behind gateway/upstream.h (TLS, HTTP/2). Same contract
 * as the sy_upstream_* functions; gateway/upstream.c dispatches to it for
 * https:// upstreams (and for all when SWITCHYARD_UPSTREAM_CLIENT=curl). */

#define SY_UP_KIND_CURL 1
#define SY_UP_KIND_LEAN 2

typedef struct sy_curl_pool sy_curl_pool;
typedef struct sy_curl_req sy_curl_req;

int sy_curl_pool_new(uv_loop_t *loop, long max_host_conns, sy_curl_pool **out);
void sy_curl_pool_close(sy_curl_pool *p);
int sy_curl_start(sy_curl_pool *p, const sy_upstream_spec *spec, const sy_upstream_handler *h,
                  void *ctx, sy_curl_req **out);
void sy_curl_resume(sy_curl_req *r);
void sy_curl_abort(sy_curl_req *r);
unsigned sy_curl_pool_active(const sy_curl_pool *p);

#endif
