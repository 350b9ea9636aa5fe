#ifndef SY_CTL_PBJSON_H
#define SY_CTL_PBJSON_H

/* protobuf-c messages as JSON for switchyardctl --json, driven by the
 * message descriptors, so every field of every response is printed without
 * per-message code. The mapping follows proto3's canonical JSON with the
 * .proto field names kept (snake_case):
 *   - every field is present, defaults included (stable keys for scripts);
 *   - 64-bit integers are decimal strings (JSON numbers lose precision past
 *     2^53: capture ids are 64-bit);
 *   - enums by value name, bytes as base64, an unset message field as null;
 *   - oneof members only when set. */

#include <stdio.h>

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

/* Builds the JSON object of `m`. Returns NULL when out of memory; the caller
 * owns the result (cJSON_Delete). */
cJSON *sy_ctl_pbjson(const ProtobufCMessage *m);

/* Prints `m` as one line of JSON and a newline on `out`. Returns 0, or -1
 * when out of memory or the write failed. */
int sy_ctl_pbjson_print(FILE *out, const ProtobufCMessage *m);

#endif
