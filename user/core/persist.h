/* SPDX-License-Identifier: MIT */
/*
 * Durable stable checkpoints and the committed log under data_dir
 * (docs/persistence.md has the file formats and the recovery rules).
 *
 * Files, all in one directory:
 *   checkpoint-<seq, 20 digits>.hmc   a stable checkpoint: seq, view, state
 *                                     digest, its 2f+1 CHECKPOINT proof and
 *                                     the service snapshot.  The latest two
 *                                     are kept.
 *   log-<first seq, 20 digits>.hml    a segment of the committed log: one
 *                                     record per executed batch, in sequence
 *                                     order, without gaps.  A new segment is
 *                                     started at every checkpoint.
 *   votes-<first seq, 20 digits>.hmv the vote log: what this replica sent
 *                                     that it must never contradict (its
 *                                     votes, PRE-PREPAREs, VIEW-CHANGEs, view
 *                                     state, prepared certificates), as
 *                                     records the core defines (opaque here).
 *                                     A new file, holding the core's whole
 *                                     live state, replaces it at every stable
 *                                     checkpoint and at every start.
 *   *.tmp                             a file being written; never read, and
 *                                     removed on open.
 *
 * Every file is written to a .tmp name, fsync'd, renamed, and the directory
 * fsync'd, except that log records are appended to the current segment.
 *
 * fsync policy (explicit): hm_persist_append() only write()s a record;
 * hm_persist_sync() makes every appended record durable with one
 * fdatasync().  The driver appends the records of one Ready, calls
 * hm_persist_sync() once, and only then acts on them (sends replies,
 * applies the window).  opts.sync_each makes every append sync by itself.
 *
 * No global state: everything lives in struct hm_persist, so several
 * replicas (the simulator) can each have one.
 */
#ifndef HM_PERSIST_H
#define HM_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"
#include "core/checkpoint.h" /* struct hm_checkpoint, struct hm_log_record */

#define HM_PERSIST_VERSION 1
/* Largest batch a log record may carry (a PRE-PREPARE payload). */
#define HM_PERSIST_MAX_BATCH HM_MAX_DATAGRAM
/* Largest snapshot a checkpoint file may carry. */
#define HM_PERSIST_MAX_SNAPSHOT (1ull << 32)

/* What is wrong with a file. */
enum hm_persist_fault {
	HM_PF_NONE = 0,
	HM_PF_IO,            /* the file could not be opened or read */
	HM_PF_BAD_MAGIC,     /* file or record magic is wrong */
	HM_PF_BAD_VERSION,   /* a format version this code does not read */
	HM_PF_BAD_LENGTH,    /* a length field is out of bounds or disagrees with the file */
	HM_PF_BAD_CHECKSUM,  /* a header check or BLAKE2b checksum does not match */
	HM_PF_MALFORMED,     /* checksum fine but the content is inconsistent */
	HM_PF_TRUNCATED,     /* a file that must be complete ends early */
	HM_PF_SEQ_GAP,       /* log records or segments are not contiguous */
	HM_PF_MAX,
};

enum hm_persist_file_kind { HM_PFILE_CHECKPOINT, HM_PFILE_LOG, HM_PFILE_VOTES };

struct hm_persist_problem {
	enum hm_persist_fault fault;
	enum hm_persist_file_kind kind;
	char name[64];    /* file name inside the directory */
	uint64_t offset;  /* byte offset of the bad record or field */
	uint64_t seq;     /* the record's or checkpoint's seq when known */
};

enum hm_recovery_status {
	HM_REC_EMPTY,   /* no checkpoint and no record: a fresh replica */
	HM_REC_OK,      /* every file is valid (a torn tail may have been cut) */
	HM_REC_CORRUPT, /* at least one fault: the state below is a correct
			 * prefix, but the replica must fetch state (transfer)
			 * before it trusts it is complete */
	HM_REC_IO_ERROR,/* the directory itself could not be read */
};

#define HM_REC_MAX_PROBLEMS 16

/* Largest vote-log record: a VIEW-CHANGE of HM_VC_MAX_PARTS datagrams. */
#define HM_PERSIST_MAX_VOTE_RECORD (1u << 22)

/* What the vote log held (independent of the checkpoint and committed log:
 * their status above is not changed by it). */
enum hm_votes_status {
	HM_VOTES_MISSING, /* no vote file: never written, or deleted */
	HM_VOTES_OK,      /* every record valid (a torn tail may have been cut) */
	HM_VOTES_CORRUPT, /* a fault: records[] is the valid prefix only */
};

/*
 * What recovery found.  The state is: the checkpoint (if have_checkpoint),
 * then records[0..nrecords) whose seqs are exactly cp.seq+1, cp.seq+2, ...
 * (1, 2, ... without a checkpoint).  last_seq is the last of them.
 */
struct hm_recovery {
	enum hm_recovery_status status;
	bool have_checkpoint;
	struct hm_checkpoint cp;
	struct hm_log_record *records;
	size_t nrecords;
	uint64_t last_seq;
	uint64_t torn_bytes;     /* bytes of a torn last record cut off */
	size_t nproblems;        /* may exceed HM_REC_MAX_PROBLEMS; only the first are kept */
	struct hm_persist_problem problems[HM_REC_MAX_PROBLEMS];
	/* The vote log: its records in the order written. */
	enum hm_votes_status votes_status;
	struct hm_vote_record *votes;
	size_t nvotes;
	uint64_t votes_torn_bytes;
	struct hm_persist_problem votes_problem; /* votes_status == CORRUPT */
};

/*
 * Fault injection, for tests: make this writer's own write()s, fsync()s /
 * fdatasync()s or rename()s fail as a failing disk does (nothing is
 * written, synced or renamed; errno is err).  Only the operations in ops
 * count and fail: the nth of them since the hook was set (1 = the next one)
 * and the times - 1 after it, and every one while *while_set is true.
 */
#define HM_PINJ_WRITE 1u
#define HM_PINJ_SYNC 2u
#define HM_PINJ_RENAME 4u
struct hm_persist_inject {
	unsigned ops;                    /* HM_PINJ_* bits; 0: no injection */
	uint64_t nth;                    /* 0: none by count */
	uint64_t times;                  /* 0 or 1: only the nth */
	const volatile bool *while_set;  /* NULL: none by flag */
	int err;                         /* EIO, ENOSPC, ...; 0: EIO */
};

struct hm_persist_opts {
	bool sync_each;   /* fdatasync after every append (else per hm_persist_sync) */
	/* write() a record at most this many bytes at a time (0: whole).  A
	 * SIGKILL never lands inside one write() to the page cache, so only
	 * this lets the crash test leave torn records, as a power cut can. */
	uint32_t write_chunk;
	struct hm_persist_inject inject; /* tests only; zero: none */
};

struct hm_persist;

/*
 * Recover the directory's state into *rec without changing anything
 * (read-only: a torn tail is reported in torn_bytes but not cut).
 */
void hm_persist_recover(const char *dir, struct hm_recovery *rec);
void hm_recovery_free(struct hm_recovery *rec);

/*
 * Open dir for writing (creating it if needed): recover into *rec, cut a torn
 * tail, remove stale .tmp files.  Appends continue at rec->last_seq + 1.
 * After HM_REC_CORRUPT, appends are refused until hm_persist_checkpoint()
 * installs a checkpoint at or above rec->last_seq (from state transfer).
 * Returns NULL (and err) only when the directory cannot be used at all.
 */
struct hm_persist *hm_persist_open(const char *dir, const struct hm_persist_opts *opts,
				   struct hm_recovery *rec, char *err, size_t errlen);
void hm_persist_close(struct hm_persist *p);

/*
 * Append the record for seq, which must be the next one (last + 1).  Not
 * durable until hm_persist_sync() returns 0 (unless sync_each).
 * Returns 0, or -1 with errno: EINVAL (wrong seq or too large),
 * EROFS (refused after corruption), or the I/O error.
 */
int hm_persist_append(struct hm_persist *p, uint64_t seq, uint64_t view,
		      const uint8_t digest[HM_DIGEST_LEN], const void *batch, uint32_t batch_len);
int hm_persist_sync(struct hm_persist *p);

/*
 * Write a stable checkpoint durably (tmp, fsync, rename, fsync dir), keep it
 * and the previous one, start a new log segment and delete the segments and
 * checkpoints no longer needed.  A checkpoint at or above the last record
 * (one fetched by state transfer) restarts the log at cp->seq + 1.
 * Returns 0, or -1 with errno.
 */
int hm_persist_checkpoint(struct hm_persist *p, const struct hm_checkpoint *cp);

/*
 * The vote log.  hm_persist_vote_append() write()s one record (seq is for
 * the reader's eyes only: 0 when none); hm_persist_vote_sync() makes the
 * appended ones durable with one fdatasync().  hm_persist_vote_rotate()
 * replaces the whole log by a new file votes-<first>.hmv holding recs[]
 * (tmp, fsync, rename, directory fsync), then deletes every other vote
 * file: the driver calls it with the core's full live state after the
 * stable checkpoint at `first` is durable, and at start.  Returns 0, or -1
 * with errno.
 */
int hm_persist_vote_append(struct hm_persist *p, uint64_t seq, const void *rec, uint32_t len);
int hm_persist_vote_sync(struct hm_persist *p);
int hm_persist_vote_rotate(struct hm_persist *p, uint64_t first,
			   const struct hm_vote_record *recs, size_t n);
/* fdatasync()s done on the vote log (its appends; rotations count 1). */
uint64_t hm_persist_vote_syncs(const struct hm_persist *p);

/*
 * Disk errors.  Every call above that fails on the disk remembers the
 * errno and the file (name inside the directory, "." for the directory):
 * hm_persist_error() returns the last errno (0: none yet) and copies the
 * name; hm_persist_errors() counts them.  A failed fdatasync of the
 * committed log closes its segment for good: append, sync and checkpoint
 * then fail (EIO) until hm_persist_reset().  A failed fdatasync of the vote
 * log closes it: appends fail (EROFS) until hm_persist_vote_rotate().
 */
int hm_persist_error(const struct hm_persist *p, char *file, size_t cap);
uint64_t hm_persist_errors(const struct hm_persist *p);
/* Replace the injection hook (NULL: none); its count starts again. */
void hm_persist_set_inject(struct hm_persist *p, const struct hm_persist_inject *inj);
/* Operations the hook has failed so far. */
uint64_t hm_persist_injected(const struct hm_persist *p);

/*
 * Write the checkpoint (NULL: none yet) and the committed log after it
 * (recs[], seqs cp->seq+1, cp->seq+2, ..., or 1, 2, ... without cp) as new
 * files through tmp, fsync, rename, directory fsync, continue appending
 * after the last of them, and delete every other checkpoint and segment.
 * The way back after a disk failure: it trusts no file descriptor that
 * failed and clears the refusals above.  Returns 0, or -1 with errno.
 */
int hm_persist_reset(struct hm_persist *p, const struct hm_checkpoint *cp,
		     const struct hm_log_record *recs, size_t n);

/* The last durable-or-appended seq (max of last record and checkpoint). */
uint64_t hm_persist_last_seq(const struct hm_persist *p);

/* hm_checkpoint_proof_ok(), defined in persist.c, is declared in
 * core/checkpoint.h. */

/* Parse a checkpoint file image (for tests and the fuzzer); fills *cp with
 * snap pointing into buf. */
enum hm_persist_fault hm_checkpoint_parse(const uint8_t *buf, size_t len, struct hm_checkpoint *cp);
/* Serialise a checkpoint into a malloc'd file image. */
int hm_checkpoint_serialize(const struct hm_checkpoint *cp, uint8_t **buf, size_t *len);

const char *hm_persist_fault_name(enum hm_persist_fault f);
const char *hm_recovery_status_name(enum hm_recovery_status s);
const char *hm_votes_status_name(enum hm_votes_status s);

#endif /* HM_PERSIST_H */
