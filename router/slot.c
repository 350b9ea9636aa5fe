#include "router/slot.h"

#include "common/err.h"

int sy_route_slot_init(sy_route_slot *s, sy_route_table *initial) {
  if (pthread_mutex_init(&s->mu, NULL) != 0) return SY_EIO;
  s->cur = initial;
  atomic_init(&s->gen, 0);
  return 0;
}

void sy_route_slot_destroy(sy_route_slot *s) {
  sy_route_table_unref(s->cur);
  s->cur = NULL;
  pthread_mutex_destroy(&s->mu);
}

void sy_route_slot_publish(sy_route_slot *s, sy_route_table *t) {
  pthread_mutex_lock(&s->mu);
  sy_route_table *old = s->cur;
  s->cur = t;
  /* release: a view that sees the new gen then locks and finds t */
  atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
  pthread_mutex_unlock(&s->mu);
  sy_route_table_unref(old);
}

sy_route_table *sy_route_slot_get(sy_route_slot *s) {
  pthread_mutex_lock(&s->mu);
  sy_route_table *t = s->cur ? sy_route_table_ref(s->cur) : NULL;
  pthread_mutex_unlock(&s->mu);
  return t;
}

const sy_route_table *sy_route_view_get(sy_route_view *v, sy_route_slot *s) {
  uint64_t g = atomic_load_explicit(&s->gen, memory_order_acquire);
  if (g == v->gen) return v->t;
  pthread_mutex_lock(&s->mu);
  sy_route_table *t = s->cur ? sy_route_table_ref(s->cur) : NULL;
  /* read gen under the lock so it matches the table we took */
  g = atomic_load_explicit(&s->gen, memory_order_relaxed);
  pthread_mutex_unlock(&s->mu);
  sy_route_table_unref(v->t);
  v->t = t;
  v->gen = g;
  return t;
}

void sy_route_view_release(sy_route_view *v) {
  sy_route_table_unref(v->t);
  v->t = NULL;
  v->gen = UINT64_MAX;
}
