/* The upstream interface's dispatch: plain-HTTP upstreams go to the lean
 * libuv client (keep-alive pool, a fraction of libcurl's CPU per request),
 * TLS upstreams to libcurl (HTTP/2 where offered). SWITCHYARD_UPSTREAM_CLIENT
 * = curl | lean | auto (default) overrides the choice for plain HTTP, so every
 * upstream test can run against both clients. */
#include "gateway/upstream.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "gateway/upstream_curl.h"
#include "gateway/upstream_lean.h"

struct sy_upstream_pool {
  sy_curl_pool *curl;
  sy_lean_pool *lean;
  int force_curl;
};

struct sy_upstream_req {
  int kind; /* the first member of sy_curl_req and sy_lean_req */
};

int sy_upstream_pool_new(uv_loop_t *loop, long max_host_conns, sy_upstream_pool **out) {
  sy_upstream_pool *p = calloc(1, sizeof *p);
  if (!p) return SY_ENOMEM;
  const char *mode = getenv("SWITCHYARD_UPSTREAM_CLIENT");
  p->force_curl = mode && !strcmp(mode, "curl");
  int rc = sy_curl_pool_new(loop, max_host_conns, &p->curl);
  if (rc) {
    free(p);
    return rc;
  }
  sy_lean_opts lo = {0};
  lo.max_host_conns = max_host_conns > 0 ? (unsigned)max_host_conns : 0;
  rc = sy_lean_pool_new(loop, &lo, &p->lean);
  if (rc) {
    sy_curl_pool_close(p->curl);
    free(p);
    return rc;
  }
  *out = p;
  return 0;
}

void sy_upstream_pool_close(sy_upstream_pool *p) {
  sy_curl_pool_close(p->curl);
  sy_lean_pool_close(p->lean);
  free(p);
}

int sy_upstream_start(sy_upstream_pool *p, const sy_upstream_spec *spec,
                      const sy_upstream_handler *h, void *ctx, sy_upstream_req **out) {
  if (!spec->up->https && !p->force_curl)
    return sy_lean_start(p->lean, spec, h, ctx, (sy_lean_req **)out);
  return sy_curl_start(p->curl, spec, h, ctx, (sy_curl_req **)out);
}

void sy_upstream_resume(sy_upstream_req *r) {
  if (r->kind == SY_UP_KIND_LEAN) sy_lean_resume((sy_lean_req *)r);
  else sy_curl_resume((sy_curl_req *)r);
}

void sy_upstream_abort(sy_upstream_req *r) {
  if (r->kind == SY_UP_KIND_LEAN) sy_lean_abort((sy_lean_req *)r);
  else sy_curl_abort((sy_curl_req *)r);
}

unsigned sy_upstream_pool_active(const sy_upstream_pool *p) {
  return sy_curl_pool_active(p->curl) + sy_lean_pool_active(p->lean);
}
