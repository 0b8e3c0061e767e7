// SPDX-License-Identifier: MIT
/*
 * The vote log (persist.h, docs/persistence.md "Vote log"): what the replica
 * sent and must never contradict.  A record file (persist_internal.h) whose
 * reading, checking, appending and whole-file writing are persist.c's
 * pfile_* code, shared with the committed log; only the vote log's own
 * rules are here.
 *
 * Vote log file: a 32-byte header then records.
 *    0  u32   magic "HMVL"
 *    4  u32   version
 *    8  u64   first seq (the stable checkpoint the file was started at)
 *   16  [16]  BLAKE2b-128 over bytes [0,16)
 * Vote record (the body is the core's, opaque here):
 *    0  u32   magic "HMVR"
 *    4  u32   body length N (1 ... HM_PERSIST_MAX_VOTE_RECORD)
 *    8  u64   seq (0: none)
 *   16  [16]  BLAKE2b-128 over bytes [0,16)   (the header check)
 *   32  N     body
 * 32+N  [32]  BLAKE2b-256 over bytes [0,32+N)
 *
 * Only the newest file is read: each one is started whole with the full live
 * state (hm_persist_vote_rotate), so older ones are superseded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/wire.h"
#include "core/persist_internal.h"

#define VR_HDR_LEN 32

static const struct pfile_kind votes_kind = {
	.prefix = "votes-",
	.suffix = ".hmv",
	.file_magic = 0x484d564cu, /* "HMVL" */
	.rec_magic = 0x484d5652u,  /* "HMVR" */
	.rec_hdr_len = VR_HDR_LEN,
	.hcheck_off = 16,
	.min_body = 1,
	.max_body = HM_PERSIST_MAX_VOTE_RECORD,
};

/* ---- recovery ----------------------------------------------------------- */

static void vote_problem(struct hm_recovery *rec, enum hm_persist_fault f, const char *name,
			 uint64_t offset, uint64_t seq)
{
	struct hm_persist_problem *pr = &rec->votes_problem;

	rec->votes_status = HM_VOTES_CORRUPT;
	pr->fault = f;
	pr->kind = HM_PFILE_VOTES;
	snprintf(pr->name, sizeof(pr->name), "%s", name);
	pr->offset = offset;
	pr->seq = seq;
}

void persist_votes_recover(int dirfd, struct hm_recovery *rec, uint64_t *first, uint64_t *torn_at)
{
	enum hm_persist_fault f;
	struct name_list l;
	uint8_t *buf;
	size_t len, off, cap = 0;
	char name[64];

	*torn_at = 0;
	rec->votes_status = HM_VOTES_MISSING;
	if (persist_list_files(dirfd, votes_kind.prefix, votes_kind.suffix, &l) < 0 || l.n == 0) {
		free(l.seqs);
		return;
	}
	*first = l.seqs[l.n - 1];
	free(l.seqs);
	pfile_name(&votes_kind, *first, name, sizeof(name));
	f = pfile_read(dirfd, &votes_kind, *first, &buf, &len);
	if (f == HM_PF_IO) {
		vote_problem(rec, HM_PF_IO, name, 0, *first);
		return;
	}
	rec->votes_status = HM_VOTES_OK;
	/* Created whole (tmp + rename): a short header is corruption, and the
	 * vote log calls one with the right magic truncated whatever its
	 * version says. */
	if (f == HM_PF_BAD_VERSION && len < PFILE_HDR_LEN)
		f = HM_PF_TRUNCATED;
	if (f != HM_PF_NONE)
		vote_problem(rec, f, name, 0, *first);
	for (off = PFILE_HDR_LEN; rec->votes_status == HM_VOTES_OK && off < len;) {
		size_t rlen = pfile_check_record(&votes_kind, buf, len, off, &f);
		struct hm_vote_record *vr;

		if (f != HM_PF_NONE) {
			vote_problem(rec, f, name, off, hm_get_be64(buf + off + 8));
			break;
		}
		if (rlen == 0) { /* cut short by a crash: never synced, never acted on */
			rec->votes_torn_bytes = len - off;
			*torn_at = off;
			break;
		}
		if (rec->nvotes == cap) {
			size_t nc = cap ? 2 * cap : 64;

			vr = realloc(rec->votes, nc * sizeof(*vr));
			if (!vr) {
				vote_problem(rec, HM_PF_IO, name, off, 0);
				break;
			}
			rec->votes = vr;
			cap = nc;
		}
		vr = &rec->votes[rec->nvotes];
		vr->len = hm_get_be32(buf + off + 4);
		vr->buf = malloc(vr->len);
		if (!vr->buf) {
			vote_problem(rec, HM_PF_IO, name, off, 0);
			break;
		}
		memcpy(vr->buf, buf + off + VR_HDR_LEN, vr->len);
		rec->nvotes++;
		off += rlen;
	}
	free(buf);
}

/* ---- writing ------------------------------------------------------------ */

/* The current vote file is durable and holds everything live: the others
 * (a crash between a rotation's rename and this leaves them) go. */
static void remove_other_votes(struct hm_persist *p)
{
	pfile_remove_others(p, &votes_kind, p->votes.first);
	fsync(p->dirfd);
}

int persist_votes_reopen(struct hm_persist *p, uint64_t first, uint64_t torn_at)
{
	if (pfile_reopen(p, &votes_kind, &p->votes, first, torn_at) < 0)
		return -1;
	remove_other_votes(p);
	return 0;
}

int hm_persist_vote_append(struct hm_persist *p, uint64_t seq, const void *rec, uint32_t len)
{
	size_t total = pfile_record_len(&votes_kind, len);
	bool stuck = false;
	uint8_t *r;
	int rc;

	if (p->votes.fd < 0) {
		errno = EROFS;
		return -1;
	}
	if (len == 0 || len > HM_PERSIST_MAX_VOTE_RECORD || !rec) {
		errno = EINVAL;
		return -1;
	}
	r = malloc(total);
	if (!r)
		return -1;
	hm_put_be64(r + 8, seq);
	pfile_seal_record(&votes_kind, r, rec, len);
	rc = pfile_write(p, &votes_kind, &p->votes, r, total, &stuck);
	free(r);
	if (rc < 0) {
		int saved = errno;

		/* The partial record could not be taken back: stop appending
		 * until the next rotation starts a clean file. */
		if (stuck) {
			close(p->votes.fd);
			p->votes.fd = -1;
		}
		errno = saved;
		return -1;
	}
	return p->opts.sync_each ? hm_persist_vote_sync(p) : 0;
}

int hm_persist_vote_sync(struct hm_persist *p)
{
	if (!p->votes.dirty)
		return 0;
	if (p->votes.fd < 0) {
		errno = EROFS;
		return -1;
	}
	if (pfile_fsync(p, &votes_kind, &p->votes) < 0) {
		/* As for the committed log, this fd is not trusted again;
		 * appends are refused until a rotation writes a new file. */
		p->votes.dirty = false;
		return -1;
	}
	p->vote_syncs++;
	return 0;
}

uint64_t hm_persist_vote_syncs(const struct hm_persist *p)
{
	return p->vote_syncs;
}

int hm_persist_vote_rotate(struct hm_persist *p, uint64_t first,
			   const struct hm_vote_record *recs, size_t n)
{
	size_t total = PFILE_HDR_LEN, off;
	uint8_t *buf;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (recs[i].len == 0 || recs[i].len > HM_PERSIST_MAX_VOTE_RECORD) {
			errno = EINVAL;
			return -1;
		}
		total += pfile_record_len(&votes_kind, recs[i].len);
	}
	buf = malloc(total);
	if (!buf)
		return -1;
	pfile_put_header(&votes_kind, buf, first);
	off = PFILE_HDR_LEN;
	for (size_t i = 0; i < n; i++) {
		hm_put_be64(buf + off + 8, 0);
		off += pfile_seal_record(&votes_kind, buf + off, recs[i].buf, recs[i].len);
	}
	/* The same name as the current file (no checkpoint since start): the
	 * rename replaces it atomically; our old descriptor keeps the old one. */
	rc = pfile_install(p, &votes_kind, &p->votes, first, buf, total);
	free(buf);
	if (rc < 0)
		return -1;
	p->vote_syncs++;
	remove_other_votes(p);
	return 0;
}

const char *hm_votes_status_name(enum hm_votes_status s)
{
	switch (s) {
	case HM_VOTES_MISSING: return "missing";
	case HM_VOTES_OK: return "ok";
	case HM_VOTES_CORRUPT: return "corrupt";
	}
	return "unknown";
}
