/* SPDX-License-Identifier: MIT */
/*
 * hmctl's DNS commands (kept out of hmctl.c):
 *   hmctl dns query NAME TYPE [--cert]   the cluster's decided entry for
 *       (NAME, TYPE, IN) through a CERTIFY op; with --cert, wait for 2f+1
 *       matching replies with batch proofs and print the certificate as JSON
 *   hmctl verify CERTFILE                check a certificate offline against
 *       the cluster's keys (and for DNS, the canon against its digest)
 * Return the process exit status: 0 ok, 1 refused/failed, 3 not decided.
 */
#ifndef HM_DNS_CTL_H
#define HM_DNS_CTL_H
#include <stdio.h>

#include "common/config.h"

struct hm_transport;
struct hm_dns_entry;

int hm_dns_ctl_query(const struct hm_config *cfg, int argc, char **argv);
/* The cluster's decided entry for (name, type, IN) through a CERTIFY op
 * answered by f+1 matching replies, through a transport opened here on t.
 * e->canon points into t->core.result, so keep t (hm_transport_close it,
 * also after a failure) until done with e.  Returns 0 decided, 3 not
 * decided, 1 failed, 2 a bad name or type. */
int hm_dns_ctl_certify(const struct hm_config *cfg, const char *name, const char *type,
		       struct hm_transport *t, struct hm_dns_entry *e);
void hm_dns_ctl_print_entry(FILE *f, const struct hm_dns_entry *e);
int hm_ctl_verify(const struct hm_config *cfg, int argc, char **argv);
#endif /* HM_DNS_CTL_H */
