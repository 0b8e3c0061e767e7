// SPDX-License-Identifier: MIT
/*
 * persist's private header: the writer's struct and the record files both
 * logs are made of.  Included only by user/core/persist*.c; the drivers see
 * persist.h.
 *
 *   persist.c        checkpoint files, the committed log, recovery, and the
 *                    record-file code below (pfile_*): file header check,
 *                    record check (torn tail vs corruption), append,
 *                    whole-file write (tmp, fsync, rename), the
 *                    fault-injection hook
 *   persist_votes.c  the vote log, on the same record-file code
 *
 * A record file (docs/persistence.md "Log segment", "Vote log"): a 32-byte
 * header (u32 magic, u32 version, u64 first seq, BLAKE2b-128 over [0,16)),
 * then records: u32 magic, u32 body length N, kind-specific fields, a
 * BLAKE2b-128 header check over everything before it, N body bytes, and a
 * BLAKE2b-256 over all that.  A pfile_kind says what differs between the
 * two logs; a pfile is one such file open for append.
 */
#ifndef HM_PERSIST_INTERNAL_H
#define HM_PERSIST_INTERNAL_H

#include "core/persist.h"

#define PFILE_HDR_LEN 32
#define HCHECK_LEN 16
#define REC_SUM_LEN 32

struct pfile_kind {
	const char *prefix, *suffix; /* the name: prefix, 20 digits, suffix */
	uint32_t file_magic;
	uint32_t rec_magic;
	size_t rec_hdr_len;          /* a record's header, its check included */
	size_t hcheck_off;           /* the header check covers [0, hcheck_off) */
	uint32_t min_body, max_body; /* a record's body length, bounds included */
};

/* One record file open for append. */
struct pfile {
	int fd;          /* -1 if none */
	uint64_t first;  /* its first seq (its name) */
	uint64_t size;   /* bytes in it */
	bool dirty;      /* appended since the last sync */
};

struct hm_persist {
	int dirfd;
	struct pfile seg;     /* the committed log's current segment */
	uint64_t last_seq;    /* last appended record, or the checkpoint restarted at */
	bool damaged;         /* recovery found corruption: appends refused */
	struct hm_persist_opts opts;
	uint64_t cp_keep[2];  /* newest valid checkpoint, the one before */
	int ncp_keep;
	struct pfile votes;   /* the vote log */
	uint64_t vote_syncs;
	/* An fdatasync of the segment failed: its fd is closed and never
	 * trusted again (the kernel may have dropped the dirty pages and
	 * report them clean); appends and checkpoints are refused until
	 * hm_persist_reset() starts fresh files. */
	bool seg_lost;
	/* The last failure of an operation on the disk, for the driver's
	 * log line (hm_persist_error), and the fault-injection counters. */
	int err;
	char err_name[96];
	uint64_t errors;
	uint64_t inj_seen, injected;
};

struct name_list {
	uint64_t *seqs;
	size_t n;
};

/* The seqs of every file named prefix<seq>suffix, ascending. */
int persist_list_files(int dirfd, const char *prefix, const char *suffix, struct name_list *out);
/* Remember a failure on file `name` (errno is kept); returns -1. */
int persist_failed(struct hm_persist *p, const char *name);

void pfile_name(const struct pfile_kind *k, uint64_t first, char *out, size_t cap);
/* The file header for first seq `first` into hdr[PFILE_HDR_LEN]. */
void pfile_put_header(const struct pfile_kind *k, uint8_t *hdr, uint64_t first);
/* Finish the record at r whose kind-specific fields [8, hcheck_off) the
 * caller wrote: magic, length, header check, body, checksum.  Returns its
 * total length, pfile_record_len(). */
size_t pfile_seal_record(const struct pfile_kind *k, uint8_t *r, const void *body, uint32_t len);
size_t pfile_record_len(const struct pfile_kind *k, uint32_t body_len);
/* Read file `first` whole (*buf: free it; NULL if unreadable) and check its
 * header: HM_PF_NONE, or the fault (HM_PF_IO: unreadable). */
enum hm_persist_fault pfile_read(int dirfd, const struct pfile_kind *k, uint64_t first,
				 uint8_t **buf, size_t *len);
/* Check the record at buf[off..len): its total length, 0 at a torn tail
 * (a header that checks, or not even a whole header, cut by the end of the
 * file), or 0 with *f set. */
size_t pfile_check_record(const struct pfile_kind *k, const uint8_t *buf, size_t len, size_t off,
			  enum hm_persist_fault *f);
/* Append total bytes at r to f (in opts.write_chunk pieces when set).  A
 * failure is remembered and the partial record cut back; returns -1 with
 * errno kept, and *stuck if the cut failed too. */
int pfile_write(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f, const uint8_t *r,
		size_t total, bool *stuck);
/* fdatasync f.  A failure is remembered and f's fd closed for good (-1):
 * after a failed fdatasync the kernel may have dropped the pages and marked
 * them clean, so a later one would succeed without writing them. */
int pfile_fsync(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f);
/* Write file `first` whole from buf (header and records: tmp, fsync,
 * rename, fsync the directory) and make it f, open for append. */
int pfile_install(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f, uint64_t first,
		  const void *buf, size_t len);
/* Open file `first` as f for append, after cutting a torn tail at torn_at
 * (0: none). */
int pfile_reopen(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f, uint64_t first,
		 uint64_t torn_at);
/* Delete every file of kind k but `keep` (no directory fsync). */
void pfile_remove_others(struct hm_persist *p, const struct pfile_kind *k, uint64_t keep);

/* persist_votes.c */
/* The newest vote file into rec->votes; *first: its seq, *torn_at: where a
 * torn tail starts (0: none). */
void persist_votes_recover(int dirfd, struct hm_recovery *rec, uint64_t *first, uint64_t *torn_at);
/* Continue the vote file `first` (recovered intact) after cutting its torn
 * tail; the other vote files go. */
int persist_votes_reopen(struct hm_persist *p, uint64_t first, uint64_t torn_at);

#endif
