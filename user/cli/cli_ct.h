/* SPDX-License-Identifier: MIT */
/*
 * hmctl's Certificate Transparency commands (hmctl.c only dispatches):
 *
 *   hmctl cert check CHAIN [--cert] [--out FILE]
 *       fetch the evidence from the configured logs, ask the cluster for a
 *       verdict at the current time, print it once f+1 replicas sent
 *       matching replies; --cert waits for 2f+1 with batch proofs and writes a
 *       certificate (JSON, docs/ct.md) to FILE or stdout.
 *   hmctl cert check CHAIN --tlsa NAME
 *       also match the chain against the TLSA RRset the cluster decided
 *       for NAME (DNSSEC-secure), see cli_tlsa.h.
 *   hmctl verify CERTFILE
 *       check a certificate offline against the cluster config's keys.
 *
 * Exit status: 0 verdict ok / certificate valid, 3 a verdict other than ok,
 * 1 an error or a refused certificate, 2 usage, 4 (--tlsa) no TLSA record
 * matched the chain.
 */
#ifndef HM_CLI_CT_H
#define HM_CLI_CT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/config.h"

int hm_cli_cert(const struct hm_config *cfg, int argc, char **argv);
int hm_cli_verify(const struct hm_config *cfg, int argc, char **argv);

/* The offline check behind `hmctl verify`: 0 if cert is a valid CT verdict
 * certificate for this cluster, else -1 with the reason in err. */
int hm_ct_cert_verify(const struct hm_config *cfg, json_t *cert, char *err, size_t errlen);

#endif /* HM_CLI_CT_H */
