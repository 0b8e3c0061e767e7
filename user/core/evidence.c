// SPDX-License-Identifier: MIT
/* Equivocation proofs (see evidence.h). */
#include "core/evidence.h"

#include <string.h>

#include "common/crypto.h"
#include "common/wire.h"

static const char *const error_names[] = {
	[HM_EVIDENCE_OK] = "ok",
	[HM_EVIDENCE_TRUNCATED] = "truncated",
	[HM_EVIDENCE_BAD_MAGIC] = "bad magic or version",
	[HM_EVIDENCE_BAD_HEADER] = "a record is not a HyperMesh header",
	[HM_EVIDENCE_NOT_CONFLICTING] = "the two messages do not conflict",
	[HM_EVIDENCE_UNKNOWN_SENDER] = "sender is not a replica",
	[HM_EVIDENCE_BAD_SIGNATURE] = "a signature does not verify",
};

const char *hm_evidence_error_name(enum hm_evidence_error e)
{
	return (unsigned)e < sizeof(error_names) / sizeof(error_names[0]) ? error_names[e] : "?";
}

void hm_evidence_record(uint8_t out[HM_EVIDENCE_RECORD], uint8_t type, uint32_t sender,
			uint32_t payload_len, uint64_t view, uint64_t seq,
			const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN])
{
	memset(out, 0, HM_EVIDENCE_RECORD);
	hm_put_be32(out, HM_MAGIC);
	out[4] = HM_VERSION;
	out[5] = type;
	hm_put_be32(out + HM_OFF_SENDER, sender);
	hm_put_be32(out + 12, payload_len);
	hm_put_be64(out + HM_OFF_VIEW, view);
	hm_put_be64(out + HM_OFF_SEQ, seq);
	memcpy(out + HM_OFF_DIGEST, digest, HM_DIGEST_LEN);
	memcpy(out + HM_OFF_SIG, sig, HM_SIG_LEN);
}

size_t hm_evidence_build(uint8_t *out, size_t cap, const void *first, const void *second)
{
	if (cap < HM_EVIDENCE_LEN)
		return 0;
	memset(out, 0, 8);
	hm_put_be32(out, HM_EVIDENCE_MAGIC);
	out[4] = HM_EVIDENCE_VERSION;
	memcpy(out + 8, first, HM_EVIDENCE_RECORD);
	memcpy(out + 8 + HM_EVIDENCE_RECORD, second, HM_EVIDENCE_RECORD);
	/* flags are not signed and mean nothing in a proof */
	memset(out + 8 + 6, 0, 2);
	memset(out + 8 + HM_EVIDENCE_RECORD + 6, 0, 2);
	return HM_EVIDENCE_LEN;
}

/* Only the messages a replica signs once per (view, seq) can conflict. */
static bool one_per_slot(uint8_t type)
{
	return type == HM_MSG_PRE_PREPARE || type == HM_MSG_PREPARE || type == HM_MSG_COMMIT;
}

static bool header_ok(const uint8_t *r)
{
	return hm_get_be32(r) == HM_MAGIC && r[4] == HM_VERSION && one_per_slot(r[5]);
}

static bool signature_ok(const uint8_t *r, const uint8_t pk[HM_PUBKEY_LEN])
{
	struct hm_hdr h;

	memset(&h, 0, sizeof(h));
	memcpy(&h, r, HM_EVIDENCE_RECORD);
	return hm_sig_is_canonical(h.sig) && hm_verify_header(&h, pk);
}

enum hm_evidence_error hm_evidence_check(const uint8_t *buf, size_t len, uint32_t n,
					 const uint8_t (*pks)[HM_PUBKEY_LEN], uint32_t *culprit,
					 uint8_t *type, uint64_t *view, uint64_t *seq)
{
	const uint8_t *a = buf + 8, *b = buf + 8 + HM_EVIDENCE_RECORD;
	uint32_t sender;

	if (!buf || len != HM_EVIDENCE_LEN)
		return HM_EVIDENCE_TRUNCATED;
	if (hm_get_be32(buf) != HM_EVIDENCE_MAGIC || buf[4] != HM_EVIDENCE_VERSION || buf[5] ||
	    buf[6] || buf[7])
		return HM_EVIDENCE_BAD_MAGIC;
	if (!header_ok(a) || !header_ok(b))
		return HM_EVIDENCE_BAD_HEADER;
	/* same type, sender, view and seq: bytes 5, [8, 12), [16, 32) */
	if (a[5] != b[5] || memcmp(a + 8, b + 8, 4) != 0 || memcmp(a + 16, b + 16, 16) != 0 ||
	    memcmp(a + HM_OFF_DIGEST, b + HM_OFF_DIGEST, HM_DIGEST_LEN) == 0)
		return HM_EVIDENCE_NOT_CONFLICTING;
	sender = hm_get_be32(a + HM_OFF_SENDER);
	if (sender >= n || sender >= HM_MAX_REPLICAS)
		return HM_EVIDENCE_UNKNOWN_SENDER;
	if (!signature_ok(a, pks[sender]) || !signature_ok(b, pks[sender]))
		return HM_EVIDENCE_BAD_SIGNATURE;
	*culprit = sender;
	if (type)
		*type = a[5];
	if (view)
		*view = hm_get_be64(a + HM_OFF_VIEW);
	if (seq)
		*seq = hm_get_be64(a + HM_OFF_SEQ);
	return HM_EVIDENCE_OK;
}
