/* SPDX-License-Identifier: MIT */
/*
 * The core's certified state as it leaves and re-enters the core: a stable
 * checkpoint (its 2f+1 signed CHECKPOINT votes and the service snapshot)
 * a committed-log record, and a vote-log record.  The core hands the first out in its Ready
 * (pbft_ready.stable) and takes both back at recovery (pbft_recover);
 * persistence (core/persist.h) writes and reads them, so the core's public
 * header (core/pbft.h) needs no persistence API for these types.
 */
#ifndef HM_CHECKPOINT_H
#define HM_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "hm_wire.h"

/* One signed CHECKPOINT vote of a stable checkpoint's proof.  The view is
 * kept because the signature covers the header's view field, which is the
 * signer's view when it sent the vote. */
struct hm_cp_vote {
	uint32_t replica;
	uint64_t view;
	uint8_t sig[HM_SIG_LEN];
};

/* A stable checkpoint.  snap points to snap_len bytes; owned by whoever
 * filled the struct (hm_recovery_free() frees recovered ones). */
struct hm_checkpoint {
	uint64_t seq;
	uint64_t view;
	/* Set by hm_persist_checkpoint(), ignored on input: the last log
	 * record durable when the checkpoint was written.  Recovery from this
	 * checkpoint must find the log at least this far, or a log file went
	 * missing. */
	uint64_t log_through;
	uint8_t digest[HM_DIGEST_LEN];
	uint32_t nvotes;
	struct hm_cp_vote votes[HM_MAX_REPLICAS];
	uint8_t *snap;
	uint64_t snap_len;
};

/* One committed-log record: the batch executed at seq. */
struct hm_log_record {
	uint64_t seq;
	uint64_t view;
	uint8_t digest[HM_DIGEST_LEN];
	uint8_t *batch;
	uint32_t batch_len;
};

/*
 * A checkpoint's proof: true when at least quorum distinct replicas below n
 * signed CHECKPOINT(seq, digest) (each vote's signature checked against
 * pks[replica] over the header the replica sent).  The core checks a
 * recovered checkpoint with it, persistence a checkpoint file; defined in
 * persist.c.
 */
bool hm_checkpoint_proof_ok(const struct hm_checkpoint *cp, const uint8_t (*pks)[HM_PUBKEY_LEN],
			    uint32_t n, uint32_t quorum);

/* One vote-log record: the core's bytes (pbft.h, "Vote log"). */
struct hm_vote_record {
	uint8_t *buf;
	uint32_t len;
};

#endif /* HM_CHECKPOINT_H */
