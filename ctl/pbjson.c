/* Descriptor-driven protobuf-c → JSON (see pbjson.h for the mapping). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/pbjson.h"

/* Messages nest a few levels (CaptureInfo → FeedbackInfo); a deeper chain
 * means a recursive schema we do not have, so stop rather than recurse on. */
#define PBJSON_MAX_DEPTH 32

static cJSON *message_json(const ProtobufCMessage *m, int depth);

static cJSON *u64_json(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%" PRIu64, v);
  return cJSON_CreateString(b);
}

static cJSON *i64_json(int64_t v) {
  char b[24];
  snprintf(b, sizeof b, "%" PRId64, v);
  return cJSON_CreateString(b);
}

static cJSON *bytes_json(const ProtobufCBinaryData *d) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = (d->len + 2) / 3 * 4;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < d->len; i += 3) {
    uint32_t v = (uint32_t)d->data[i] << 16;
    if (i + 1 < d->len) v |= (uint32_t)d->data[i + 1] << 8;
    if (i + 2 < d->len) v |= d->data[i + 2];
    s[o++] = tbl[(v >> 18) & 63];
    s[o++] = tbl[(v >> 12) & 63];
    s[o++] = i + 1 < d->len ? tbl[(v >> 6) & 63] : '=';
    s[o++] = i + 2 < d->len ? tbl[v & 63] : '=';
  }
  s[o] = '\0';
  cJSON *j = cJSON_CreateString(s);
  free(s);
  return j;
}

/* One value of field `f` stored at `p`. */
static cJSON *value_json(const ProtobufCFieldDescriptor *f, const void *p, int depth) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: return cJSON_CreateNumber(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: return cJSON_CreateNumber(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: return i64_json(*(const int64_t *)p);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return u64_json(*(const uint64_t *)p);
  case PROTOBUF_C_TYPE_FLOAT: return cJSON_CreateNumber(*(const float *)p);
  case PROTOBUF_C_TYPE_DOUBLE: return cJSON_CreateNumber(*(const double *)p);
  case PROTOBUF_C_TYPE_BOOL: return cJSON_CreateBool(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_ENUM: {
    int v = *(const int *)p;
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
    return ev ? cJSON_CreateString(ev->name) : cJSON_CreateNumber(v);
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return cJSON_CreateString(s ? s : "");
  }
  case PROTOBUF_C_TYPE_BYTES: return bytes_json(p);
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
    return sub ? message_json(sub, depth + 1) : cJSON_CreateNull();
  }
  }
  return cJSON_CreateNull();
}

static size_t elem_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: return 4;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return 8;
  case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
  case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
  case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  }
  return 0;
}

static cJSON *message_json(const ProtobufCMessage *m, int depth) {
  if (depth > PBJSON_MAX_DEPTH) return cJSON_CreateNull();
  const ProtobufCMessageDescriptor *d = m->descriptor;
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  const char *base = (const char *)m;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const void *p = base + f->offset;
    const void *q = base + f->quantifier_offset;
    cJSON *v;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (*(const uint32_t *)q != f->id) continue;
      v = value_json(f, p, depth);
    } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)q;
      const char *arr = *(char *const *)p;
      size_t es = elem_size(f->type);
      v = cJSON_CreateArray();
      for (size_t k = 0; v && k < n; k++) {
        cJSON *e = value_json(f, arr + k * es, depth);
        if (!e) {
          cJSON_Delete(v);
          v = NULL;
          break;
        }
        cJSON_AddItemToArray(v, e);
      }
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING && !*(const protobuf_c_boolean *)q) {
      v = cJSON_CreateNull(); /* proto3 `optional` scalar, not set */
    } else {
      v = value_json(f, p, depth);
    }
    if (!v) {
      cJSON_Delete(o);
      return NULL;
    }
    cJSON_AddItemToObject(o, f->name, v);
  }
  return o;
}

cJSON *sy_ctl_pbjson(const ProtobufCMessage *m) { return message_json(m, 0); }

int sy_ctl_pbjson_print(FILE *out, const ProtobufCMessage *m) {
  cJSON *j = sy_ctl_pbjson(m);
  if (!j) return -1;
  char *s = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (!s) return -1;
  int rc = fprintf(out, "%s\n", s) < 0 ? -1 : 0;
  cJSON_free(s);
  return rc;
}
