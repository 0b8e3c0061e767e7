/* SPDX-License-Identifier: MIT */
/*
 * The key-value service: PUT, GET and a null op for benchmarks.
 *
 * Op encoding:     u8 opcode, u16 key length (big-endian), key, value.
 *                  GET and NULL carry no value; NULL carries no key either.
 * Result encoding: u8 status, then the value for a successful GET.
 */
#ifndef HM_KV_H
#define HM_KV_H

#include <stdbool.h>

#include "core/service.h"

enum hm_kv_opcode { HM_KV_PUT = 1, HM_KV_GET = 2, HM_KV_NULL = 3 };
enum hm_kv_status { HM_KV_OK = 0, HM_KV_NOT_FOUND = 1, HM_KV_BAD_OP = 2 };

#define HM_KV_MAX_KEY 255
#define HM_KV_MAX_VALUE 4096

int hm_kv_service_new(struct hm_service *svc);

/* Encode ops for clients; return the op length, 0 if it does not fit. */
size_t hm_kv_encode_put(uint8_t *buf, size_t cap, const char *key, const void *value, size_t vlen);
size_t hm_kv_encode_get(uint8_t *buf, size_t cap, const char *key);
size_t hm_kv_encode_null(uint8_t *buf, size_t cap);

#endif /* HM_KV_H */
