/* SPDX-License-Identifier: MIT */
/*
 * hmctl's DNS commands (kept out of hmctl.c):
 *   hmctl dns query NAME TYPE [--cert]   the cluster's decided entry for
 *       (NAME, TYPE, IN) through a CERTIFY op; with --cert, wait for 2f+1
 *       matching signed replies and print the certificate as JSON
 *   hmctl verify CERTFILE                check a certificate offline against
 *       the cluster's keys (and for DNS, the canon against its digest)
 * Return the process exit status: 0 ok, 1 refused/failed, 3 not decided.
 */
#ifndef HM_DNS_CTL_H
#define HM_DNS_CTL_H
#include "config.h"

int hm_dns_ctl_query(const struct hm_config *cfg, int argc, char **argv);
int hm_ctl_verify(const struct hm_config *cfg, int argc, char **argv);
#endif /* HM_DNS_CTL_H */
