/* SPDX-License-Identifier: MIT */
/*
 * `hmctl cert check CHAIN --tlsa NAME`: the DANE half.  The TLSA RRset for
 * NAME is taken from the cluster's decided DNS entry (a CERTIFY op answered
 * by f+1 matching replies, docs/dns.md) and must be DNSSEC-secure; the chain
 * is then matched against it with hm_tlsa_match (user/service/dns/tlsa.h).
 */
#ifndef HM_CLI_TLSA_H
#define HM_CLI_TLSA_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

/* Print the DANE result for the PEM chain (leaf first).  pkix_ok says
 * whether the chain passed PKIX validation (the CT verdict was ok): records
 * of usage PKIX-TA/PKIX-EE count only then.  Returns 0 when a record
 * matched, 4 when none did, 1 on an error (no agreed secure answer). */
int hm_cli_tlsa_check(const struct hm_config *cfg, const char *name, const char *pem,
		      size_t pem_len, bool pkix_ok);

#endif /* HM_CLI_TLSA_H */
