// SPDX-License-Identifier: MIT
/*
 * Durable stable checkpoints and the committed log (persist.h,
 * docs/persistence.md), recovery, and the record-file code (pfile_*,
 * persist_internal.h) that both the committed log and the vote log
 * (persist_votes.c) are read, checked, appended and written whole with:
 * file header check, record check (torn tail vs corruption), append in
 * write_chunk pieces with the partial record taken back, fdatasync never
 * retried on a failed fd, tmp + fsync + rename, and the fault-injection
 * hook under all of them.
 *
 * Checkpoint file (all integers big-endian):
 *    0  u32   magic "HMCP"
 *    4  u32   version
 *    8  u64   body length B
 *   16  [32]  BLAKE2b-256 over bytes [0,16) and the body
 *   48  body: u64 seq, u64 view, u64 log_through, [32] state digest, u32 nvotes,
 *             nvotes x { u32 replica, u64 view, [64] sig },
 *             u64 snapshot length, snapshot bytes
 *
 * Log segment: a 32-byte header then records.
 *    0  u32   magic "HMLG"
 *    4  u32   version
 *    8  u64   seq of the segment's first record
 *   16  [16]  BLAKE2b-128 over bytes [0,16)
 * Record:
 *    0  u32   magic "HMLR"
 *    4  u32   batch length N
 *    8  u64   seq
 *   16  u64   view
 *   24  [32]  batch digest
 *   56  [16]  BLAKE2b-128 over bytes [0,56)   (the header check)
 *   72  N     batch bytes
 * 72+N  [32]  BLAKE2b-256 over bytes [0,72+N)
 *
 * The separate header check is what tells a torn tail from corruption: a
 * record whose header is complete and checks but whose body runs past the end
 * of the file was cut by a crash; a header that is complete and does not
 * check (a flipped length, say) is corruption, never a torn tail, so a bit
 * flip in a length can not make recovery silently drop a durable record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/crypto.h"
#include "common/wire.h"
#include "core/persist_internal.h"

#define CP_MAGIC 0x484d4350u  /* "HMCP" */
#define SEG_MAGIC 0x484d4c47u /* "HMLG" */
#define REC_MAGIC 0x484d4c52u /* "HMLR" */
#define CP_HDR_LEN 48
#define CP_FIXED_BODY (8 + 8 + 8 + HM_DIGEST_LEN + 4)
#define CP_VOTE_LEN (4 + 8 + HM_SIG_LEN)
#define REC_HDR_LEN 72
#define REC_HCHECK_OFF 56
#define NAME_DIGITS 20

static const struct pfile_kind log_kind = {
	.prefix = "log-",
	.suffix = ".hml",
	.file_magic = SEG_MAGIC,
	.rec_magic = REC_MAGIC,
	.rec_hdr_len = REC_HDR_LEN,
	.hcheck_off = REC_HCHECK_OFF,
	.min_body = 0,
	.max_body = HM_PERSIST_MAX_BATCH,
};

/* ---- small helpers ------------------------------------------------------ */

static void hcheck(const uint8_t *p, size_t len, uint8_t out[HCHECK_LEN])
{
	crypto_generichash(out, HCHECK_LEN, p, len, NULL, 0);
}

/* The fault-injection hook (persist.h): true, with errno set, when the
 * operation op is to fail instead of running. */
static bool inject(struct hm_persist *p, unsigned op)
{
	const struct hm_persist_inject *in = &p->opts.inject;
	uint64_t times;
	bool fail;

	if (!(in->ops & op))
		return false;
	p->inj_seen++;
	times = in->times ? in->times : 1;
	fail = (in->while_set && *in->while_set) ||
	       (in->nth && p->inj_seen >= in->nth && p->inj_seen - in->nth < times);
	if (!fail)
		return false;
	p->injected++;
	errno = in->err ? in->err : EIO;
	return true;
}

int persist_failed(struct hm_persist *p, const char *name)
{
	int saved = errno;

	p->err = saved ? saved : EIO;
	snprintf(p->err_name, sizeof(p->err_name), "%s", name);
	p->errors++;
	errno = saved;
	return -1;
}

static int do_fsync(struct hm_persist *p, int fd, bool data_only)
{
	if (inject(p, HM_PINJ_SYNC))
		return -1;
	return data_only ? fdatasync(fd) : fsync(fd);
}

static int write_all(struct hm_persist *pp, int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (inject(pp, HM_PINJ_WRITE))
		return -1;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read a whole file relative to dirfd into a malloc'd buffer. */
static int read_file_at(int dirfd, const char *name, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *p;
	size_t got = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, p + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*buf = p;
	*len = got;
	return 0;
}

/* Write name atomically: name.tmp, fsync, rename, fsync the directory.  A
 * failure is remembered (hm_persist_error) with the file it hit. */
static int write_atomic(struct hm_persist *p, const char *name, const void *buf, size_t len)
{
	int dirfd = p->dirfd;
	char tmp[96];
	int fd, saved;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return persist_failed(p, tmp);
	if (write_all(p, fd, buf, len) < 0 || do_fsync(p, fd, false) < 0) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return persist_failed(p, tmp);
	}
	if (close(fd) < 0 || inject(p, HM_PINJ_RENAME) || renameat(dirfd, tmp, dirfd, name) < 0) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return persist_failed(p, name);
	}
	if (do_fsync(p, dirfd, false) < 0)
		return persist_failed(p, ".");
	return 0;
}

/* "checkpoint-<20 digits>.hmc" or "log-<20 digits>.hml": the seq, or -1. */
static int name_seq(const char *name, const char *prefix, const char *suffix, uint64_t *seq)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	uint64_t v = 0;

	if (strlen(name) != pl + NAME_DIGITS + sl || strncmp(name, prefix, pl) != 0 ||
	    strcmp(name + pl + NAME_DIGITS, suffix) != 0)
		return -1;
	for (size_t i = 0; i < NAME_DIGITS; i++) {
		char c = name[pl + i];

		if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(c - '0');
	}
	*seq = v;
	return 0;
}

static void cp_name(char *out, size_t cap, uint64_t seq)
{
	snprintf(out, cap, "checkpoint-%020" PRIu64 ".hmc", seq);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int persist_list_files(int dirfd, const char *prefix, const char *suffix, struct name_list *out)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	size_t cap = 0;

	out->seqs = NULL;
	out->n = 0;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		uint64_t seq;

		if (name_seq(de->d_name, prefix, suffix, &seq) < 0)
			continue;
		if (out->n == cap) {
			uint64_t *n = realloc(out->seqs, (cap = cap ? cap * 2 : 16) * sizeof(*n));

			if (!n) {
				closedir(d);
				return -1;
			}
			out->seqs = n;
		}
		out->seqs[out->n++] = seq;
	}
	closedir(d);
	if (out->n > 1)
		qsort(out->seqs, out->n, sizeof(*out->seqs), cmp_u64);
	return 0;
}

/* ---- record files (persist_internal.h): both logs ------------------------ */

void pfile_name(const struct pfile_kind *k, uint64_t first, char *out, size_t cap)
{
	snprintf(out, cap, "%s%020" PRIu64 "%s", k->prefix, first, k->suffix);
}

void pfile_put_header(const struct pfile_kind *k, uint8_t *hdr, uint64_t first)
{
	hm_put_be32(hdr, k->file_magic);
	hm_put_be32(hdr + 4, HM_PERSIST_VERSION);
	hm_put_be64(hdr + 8, first);
	hcheck(hdr, 16, hdr + 16);
}

size_t pfile_record_len(const struct pfile_kind *k, uint32_t body_len)
{
	return k->rec_hdr_len + body_len + REC_SUM_LEN;
}

size_t pfile_seal_record(const struct pfile_kind *k, uint8_t *r, const void *body, uint32_t len)
{
	hm_put_be32(r, k->rec_magic);
	hm_put_be32(r + 4, len);
	hcheck(r, k->hcheck_off, r + k->hcheck_off);
	if (len)
		memcpy(r + k->rec_hdr_len, body, len);
	crypto_generichash(r + k->rec_hdr_len + len, REC_SUM_LEN, r, k->rec_hdr_len + len, NULL, 0);
	return pfile_record_len(k, len);
}

enum hm_persist_fault pfile_read(int dirfd, const struct pfile_kind *k, uint64_t first,
				 uint8_t **buf, size_t *len)
{
	uint8_t hc[HCHECK_LEN];
	char name[64];
	const uint8_t *b;

	pfile_name(k, first, name, sizeof(name));
	if (read_file_at(dirfd, name, buf, len) < 0) {
		*buf = NULL;
		*len = 0;
		return HM_PF_IO;
	}
	/* Files are created whole (tmp + rename), so a short header is
	 * corruption, not a torn write. */
	b = *buf;
	if (*len < 4)
		return HM_PF_TRUNCATED;
	if (hm_get_be32(b) != k->file_magic)
		return HM_PF_BAD_MAGIC;
	if (*len < 8)
		return HM_PF_TRUNCATED;
	if (hm_get_be32(b + 4) != HM_PERSIST_VERSION)
		return HM_PF_BAD_VERSION;
	if (*len < PFILE_HDR_LEN)
		return HM_PF_TRUNCATED;
	hcheck(b, 16, hc);
	if (sodium_memcmp(hc, b + 16, HCHECK_LEN) != 0)
		return HM_PF_BAD_CHECKSUM;
	if (hm_get_be64(b + 8) != first)
		return HM_PF_MALFORMED;
	return HM_PF_NONE;
}

size_t pfile_check_record(const struct pfile_kind *k, const uint8_t *buf, size_t len, size_t off,
			  enum hm_persist_fault *f)
{
	uint8_t hc[HCHECK_LEN], sum[REC_SUM_LEN];
	const uint8_t *r = buf + off;
	size_t left = len - off;
	uint32_t blen;

	*f = HM_PF_NONE;
	if (left < k->rec_hdr_len)
		return 0;
	if (hm_get_be32(r) != k->rec_magic) {
		*f = HM_PF_BAD_MAGIC;
		return 0;
	}
	hcheck(r, k->hcheck_off, hc);
	if (sodium_memcmp(hc, r + k->hcheck_off, HCHECK_LEN) != 0) {
		*f = HM_PF_BAD_CHECKSUM;
		return 0;
	}
	blen = hm_get_be32(r + 4);
	if (blen < k->min_body || blen > k->max_body) {
		*f = HM_PF_BAD_LENGTH;
		return 0;
	}
	if (left < pfile_record_len(k, blen))
		return 0;
	crypto_generichash(sum, REC_SUM_LEN, r, k->rec_hdr_len + blen, NULL, 0);
	if (sodium_memcmp(sum, r + k->rec_hdr_len + blen, REC_SUM_LEN) != 0) {
		*f = HM_PF_BAD_CHECKSUM;
		return 0;
	}
	return pfile_record_len(k, blen);
}

static int pfile_failed(struct hm_persist *p, const struct pfile_kind *k, const struct pfile *f)
{
	char name[64];

	pfile_name(k, f->first, name, sizeof(name));
	return persist_failed(p, name);
}

int pfile_write(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f, const uint8_t *r,
		size_t total, bool *stuck)
{
	size_t chunk = p->opts.write_chunk ? p->opts.write_chunk : total;
	int rc = 0;

	*stuck = false;
	for (size_t off = 0; off < total && rc == 0; off += chunk)
		rc = write_all(p, f->fd, r + off, total - off < chunk ? total - off : chunk);
	if (rc < 0) {
		int saved = errno;

		pfile_failed(p, k, f);
		/* Take a partial record back, so the next append does not
		 * follow garbage. */
		*stuck = ftruncate(f->fd, (off_t)f->size) < 0;
		errno = saved;
		return -1;
	}
	f->size += total;
	f->dirty = true;
	return 0;
}

int pfile_fsync(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f)
{
	if (do_fsync(p, f->fd, true) < 0) {
		int saved = errno;

		pfile_failed(p, k, f);
		close(f->fd);
		f->fd = -1;
		errno = saved;
		return -1;
	}
	f->dirty = false;
	return 0;
}

int pfile_install(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f, uint64_t first,
		  const void *buf, size_t len)
{
	char name[64];
	int fd;

	pfile_name(k, first, name, sizeof(name));
	if (write_atomic(p, name, buf, len) < 0)
		return -1;
	fd = openat(p->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return persist_failed(p, name);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = fd;
	f->first = first;
	f->size = len;
	f->dirty = false;
	return 0;
}

int pfile_reopen(struct hm_persist *p, const struct pfile_kind *k, struct pfile *f, uint64_t first,
		 uint64_t torn_at)
{
	char name[64];
	struct stat st;
	int fd;

	pfile_name(k, first, name, sizeof(name));
	fd = openat(p->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if ((torn_at && (ftruncate(fd, (off_t)torn_at) < 0 || fdatasync(fd) < 0)) ||
	    fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	f->fd = fd;
	f->first = first;
	f->size = (uint64_t)st.st_size;
	return 0;
}

void pfile_remove_others(struct hm_persist *p, const struct pfile_kind *k, uint64_t keep)
{
	struct name_list l;
	char name[64];

	if (persist_list_files(p->dirfd, k->prefix, k->suffix, &l) < 0)
		return;
	for (size_t i = 0; i < l.n; i++)
		if (l.seqs[i] != keep) {
			pfile_name(k, l.seqs[i], name, sizeof(name));
			unlinkat(p->dirfd, name, 0);
		}
	free(l.seqs);
}

/* ---- checkpoint files ---------------------------------------------------- */

static void cp_checksum(const uint8_t *file, const uint8_t *body, size_t blen,
			uint8_t out[HM_DIGEST_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, HM_DIGEST_LEN);
	crypto_generichash_update(&st, file, 16);
	crypto_generichash_update(&st, body, blen);
	crypto_generichash_final(&st, out, HM_DIGEST_LEN);
}

int hm_checkpoint_serialize(const struct hm_checkpoint *cp, uint8_t **buf, size_t *len)
{
	size_t blen, total;
	uint8_t *p, *q;

	if (cp->nvotes > HM_MAX_REPLICAS || cp->snap_len > HM_PERSIST_MAX_SNAPSHOT ||
	    (cp->snap_len && !cp->snap)) {
		errno = EINVAL;
		return -1;
	}
	blen = CP_FIXED_BODY + (size_t)cp->nvotes * CP_VOTE_LEN + 8 + cp->snap_len;
	total = CP_HDR_LEN + blen;
	p = malloc(total);
	if (!p)
		return -1;
	hm_put_be32(p, CP_MAGIC);
	hm_put_be32(p + 4, HM_PERSIST_VERSION);
	hm_put_be64(p + 8, blen);
	q = p + CP_HDR_LEN;
	hm_put_be64(q, cp->seq);
	hm_put_be64(q + 8, cp->view);
	hm_put_be64(q + 16, cp->log_through);
	memcpy(q + 24, cp->digest, HM_DIGEST_LEN);
	hm_put_be32(q + 24 + HM_DIGEST_LEN, cp->nvotes);
	q += CP_FIXED_BODY;
	for (uint32_t i = 0; i < cp->nvotes; i++, q += CP_VOTE_LEN) {
		hm_put_be32(q, cp->votes[i].replica);
		hm_put_be64(q + 4, cp->votes[i].view);
		memcpy(q + 12, cp->votes[i].sig, HM_SIG_LEN);
	}
	hm_put_be64(q, cp->snap_len);
	if (cp->snap_len)
		memcpy(q + 8, cp->snap, cp->snap_len);
	cp_checksum(p, p + CP_HDR_LEN, blen, p + 16);
	*buf = p;
	*len = total;
	return 0;
}

enum hm_persist_fault hm_checkpoint_parse(const uint8_t *buf, size_t len, struct hm_checkpoint *cp)
{
	uint8_t sum[HM_DIGEST_LEN];
	const uint8_t *q, *end;
	uint64_t blen, snap_len;
	hm_voters_t seen = 0;

	memset(cp, 0, sizeof(*cp));
	if (len < 4)
		return HM_PF_TRUNCATED;
	if (hm_get_be32(buf) != CP_MAGIC)
		return HM_PF_BAD_MAGIC;
	if (len < 8)
		return HM_PF_TRUNCATED;
	if (hm_get_be32(buf + 4) != HM_PERSIST_VERSION)
		return HM_PF_BAD_VERSION;
	if (len < CP_HDR_LEN)
		return HM_PF_TRUNCATED;
	blen = hm_get_be64(buf + 8);
	if (blen < CP_FIXED_BODY + 8 || blen > HM_PERSIST_MAX_SNAPSHOT + 4096)
		return HM_PF_BAD_LENGTH;
	if (len - CP_HDR_LEN < blen)
		return HM_PF_TRUNCATED;
	if (len - CP_HDR_LEN > blen)
		return HM_PF_BAD_LENGTH;
	cp_checksum(buf, buf + CP_HDR_LEN, blen, sum);
	if (sodium_memcmp(sum, buf + 16, HM_DIGEST_LEN) != 0)
		return HM_PF_BAD_CHECKSUM;

	/* The checksum matched: what follows can only fail for a file this
	 * code did not write (or a checksum collision). */
	q = buf + CP_HDR_LEN;
	end = q + blen;
	cp->seq = hm_get_be64(q);
	cp->view = hm_get_be64(q + 8);
	cp->log_through = hm_get_be64(q + 16);
	memcpy(cp->digest, q + 24, HM_DIGEST_LEN);
	cp->nvotes = hm_get_be32(q + 24 + HM_DIGEST_LEN);
	q += CP_FIXED_BODY;
	if (cp->nvotes > HM_MAX_REPLICAS || (size_t)(end - q) < (size_t)cp->nvotes * CP_VOTE_LEN + 8)
		return HM_PF_MALFORMED;
	for (uint32_t i = 0; i < cp->nvotes; i++, q += CP_VOTE_LEN) {
		cp->votes[i].replica = hm_get_be32(q);
		cp->votes[i].view = hm_get_be64(q + 4);
		memcpy(cp->votes[i].sig, q + 12, HM_SIG_LEN);
		if (cp->votes[i].replica >= HM_MAX_REPLICAS || seen & (1u << cp->votes[i].replica))
			return HM_PF_MALFORMED;
		seen |= (hm_voters_t)(1u << cp->votes[i].replica);
	}
	snap_len = hm_get_be64(q);
	q += 8;
	if (snap_len != (uint64_t)(end - q))
		return HM_PF_MALFORMED;
	cp->snap = (uint8_t *)q;
	cp->snap_len = snap_len;
	return HM_PF_NONE;
}

bool hm_checkpoint_proof_ok(const struct hm_checkpoint *cp, const uint8_t (*pks)[HM_PUBKEY_LEN],
			    uint32_t n, uint32_t quorum)
{
	uint32_t seen = 0, good = 0;

	for (uint32_t i = 0; i < cp->nvotes && i < HM_MAX_REPLICAS; i++) {
		const struct hm_cp_vote *v = &cp->votes[i];
		struct hm_hdr h;

		if (v->replica >= n || (seen & (1u << v->replica)))
			continue;
		seen |= 1u << v->replica;
		/* The header the replica signed: a CHECKPOINT has no payload
		 * and its flags are signed as zero (hm_wire.h). */
		memset(&h, 0, sizeof(h));
		hm_put_be32((uint8_t *)&h.magic, HM_MAGIC);
		h.version = HM_VERSION;
		h.type = HM_MSG_CHECKPOINT;
		hm_put_be32((uint8_t *)&h.sender, v->replica);
		hm_put_be64((uint8_t *)&h.view, v->view);
		hm_put_be64((uint8_t *)&h.seq, cp->seq);
		memcpy(h.digest, cp->digest, HM_DIGEST_LEN);
		memcpy(h.sig, v->sig, HM_SIG_LEN);
		if (hm_sig_is_canonical(v->sig) && hm_verify_header(&h, pks[v->replica]))
			good++;
	}
	return good >= quorum;
}

/* ---- recovery ------------------------------------------------------------ */

static void problem(struct hm_recovery *rec, enum hm_persist_fault f, enum hm_persist_file_kind kind,
		    const char *name, uint64_t offset, uint64_t seq)
{
	if (rec->nproblems < HM_REC_MAX_PROBLEMS) {
		struct hm_persist_problem *pr = &rec->problems[rec->nproblems];

		pr->fault = f;
		pr->kind = kind;
		snprintf(pr->name, sizeof(pr->name), "%s", name);
		pr->offset = offset;
		pr->seq = seq;
	}
	rec->nproblems++;
}

/* Newest valid checkpoint into rec->cp; every bad one is a problem.
 * *older gets the newest valid one below it (0 if none). */
static void recover_checkpoints(int dirfd, struct hm_recovery *rec, uint64_t *older, bool *have_older)
{
	struct name_list cps;
	char name[64];

	*have_older = false;
	if (persist_list_files(dirfd, "checkpoint-", ".hmc", &cps) < 0) {
		rec->status = HM_REC_IO_ERROR;
		return;
	}
	for (size_t i = cps.n; i-- > 0;) {
		struct hm_checkpoint cp;
		enum hm_persist_fault f;
		uint8_t *buf;
		size_t len;

		cp_name(name, sizeof(name), cps.seqs[i]);
		if (read_file_at(dirfd, name, &buf, &len) < 0) {
			problem(rec, HM_PF_IO, HM_PFILE_CHECKPOINT, name, 0, cps.seqs[i]);
			continue;
		}
		f = hm_checkpoint_parse(buf, len, &cp);
		if (f == HM_PF_NONE && cp.seq != cps.seqs[i])
			f = HM_PF_MALFORMED; /* content disagrees with its name */
		if (f != HM_PF_NONE) {
			problem(rec, f, HM_PFILE_CHECKPOINT, name, 0, cps.seqs[i]);
		} else if (!rec->have_checkpoint) {
			rec->cp = cp;
			rec->cp.snap = malloc(cp.snap_len ? cp.snap_len : 1);
			if (!rec->cp.snap) {
				problem(rec, HM_PF_IO, HM_PFILE_CHECKPOINT, name, 0, cp.seq);
				memset(&rec->cp, 0, sizeof(rec->cp));
			} else {
				memcpy(rec->cp.snap, cp.snap, cp.snap_len);
				rec->have_checkpoint = true;
			}
		} else if (!*have_older) {
			*older = cp.seq;
			*have_older = true;
		}
		free(buf);
	}
	free(cps.seqs);
}

static int push_record(struct hm_recovery *rec, size_t *cap, const uint8_t *r, uint32_t blen)
{
	struct hm_log_record *lr;

	if (rec->nrecords == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct hm_log_record *n = realloc(rec->records, ncap * sizeof(*n));

		if (!n)
			return -1;
		rec->records = n;
		*cap = ncap;
	}
	lr = &rec->records[rec->nrecords];
	lr->seq = hm_get_be64(r + 8);
	lr->view = hm_get_be64(r + 16);
	memcpy(lr->digest, r + 24, HM_DIGEST_LEN);
	lr->batch_len = blen;
	lr->batch = malloc(blen ? blen : 1);
	if (!lr->batch)
		return -1;
	memcpy(lr->batch, r + REC_HDR_LEN, blen);
	rec->nrecords++;
	return 0;
}

/* What recovery keeps while it walks the segments. */
struct walk {
	size_t cap;
	bool broken;      /* a gap: no more records join the state */
	uint64_t torn_seg;/* the last segment's first seq, where a torn tail may be */
	uint64_t torn_at; /* offset of the torn tail in it */
};

/*
 * Read one segment.  A fault stops reading this segment only: whatever it
 * held after the fault is lost, and the next segment's records join the
 * state only if they continue it exactly (seq = last + 1), so a lost record
 * above the checkpoint always shows as a gap, and one at or below it (which
 * the checkpoint covers) costs nothing but the report.
 */
static void recover_segment(int dirfd, uint64_t first, bool last, struct hm_recovery *rec,
			    struct walk *w)
{
	enum hm_persist_fault f;
	char name[64];
	uint8_t *buf;
	size_t len, off;
	uint64_t prev = 0;

	pfile_name(&log_kind, first, name, sizeof(name));
	f = pfile_read(dirfd, &log_kind, first, &buf, &len);
	if (f != HM_PF_NONE) {
		problem(rec, f, HM_PFILE_LOG, name, 0, first);
		free(buf);
		return;
	}
	for (off = PFILE_HDR_LEN; off < len;) {
		size_t rlen = pfile_check_record(&log_kind, buf, len, off, &f);
		uint64_t seq;

		if (f != HM_PF_NONE) {
			problem(rec, f, HM_PFILE_LOG, name, off, 0);
			break;
		}
		if (rlen == 0) {
			/* Cut short by the end of the file. */
			if (last) {
				rec->torn_bytes = len - off;
				w->torn_seg = first;
				w->torn_at = off;
			} else {
				problem(rec, HM_PF_TRUNCATED, HM_PFILE_LOG, name, off, 0);
			}
			break;
		}
		seq = hm_get_be64(buf + off + 8);
		/* Inside a segment records are contiguous from its first seq. */
		if (seq != (off == PFILE_HDR_LEN ? first : prev + 1)) {
			problem(rec, HM_PF_MALFORMED, HM_PFILE_LOG, name, off, seq);
			break;
		}
		prev = seq;
		if (!w->broken && seq > rec->last_seq) {
			if (seq != rec->last_seq + 1) {
				problem(rec, HM_PF_SEQ_GAP, HM_PFILE_LOG, name, off, seq);
				w->broken = true;
			} else if (push_record(rec, &w->cap, buf + off, hm_get_be32(buf + off + 4)) < 0) {
				problem(rec, HM_PF_IO, HM_PFILE_LOG, name, off, seq);
				w->broken = true;
			} else {
				rec->last_seq = seq;
			}
		}
		off += rlen;
	}
	free(buf);
}

/* Recovery proper, on an open directory; *w reports where a torn tail is. */
static void recover_at(int dirfd, struct hm_recovery *rec, struct walk *w, uint64_t *older,
		       bool *have_older)
{
	struct name_list segs;

	memset(rec, 0, sizeof(*rec));
	memset(w, 0, sizeof(*w));
	rec->status = HM_REC_OK;
	recover_checkpoints(dirfd, rec, older, have_older);
	if (rec->status == HM_REC_IO_ERROR)
		return;
	rec->last_seq = rec->have_checkpoint ? rec->cp.seq : 0;
	if (persist_list_files(dirfd, "log-", ".hml", &segs) < 0) {
		rec->status = HM_REC_IO_ERROR;
		return;
	}
	for (size_t i = 0; i < segs.n; i++)
		recover_segment(dirfd, segs.seqs[i], i + 1 == segs.n, rec, w);
	free(segs.seqs);
	/* Records the checkpoint saw durable must still be there. */
	if (rec->have_checkpoint && !w->broken && rec->last_seq < rec->cp.log_through) {
		char name[64];

		pfile_name(&log_kind, rec->last_seq + 1, name, sizeof(name));
		problem(rec, HM_PF_SEQ_GAP, HM_PFILE_LOG, name, 0, rec->last_seq + 1);
	}
	if (rec->nproblems)
		rec->status = HM_REC_CORRUPT;
	else if (!rec->have_checkpoint && rec->nrecords == 0)
		rec->status = HM_REC_EMPTY;
}

static void recover_all(int dirfd, struct hm_recovery *rec, struct walk *w, uint64_t *older,
			bool *have_older, uint64_t *vote_first, uint64_t *vote_torn_at)
{
	recover_at(dirfd, rec, w, older, have_older);
	if (rec->status != HM_REC_IO_ERROR)
		persist_votes_recover(dirfd, rec, vote_first, vote_torn_at);
}

void hm_persist_recover(const char *dir, struct hm_recovery *rec)
{
	uint64_t older, vfirst, vtorn;
	bool have_older;
	struct walk w;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd < 0) {
		memset(rec, 0, sizeof(*rec));
		rec->status = errno == ENOENT ? HM_REC_EMPTY : HM_REC_IO_ERROR;
		return;
	}
	recover_all(dirfd, rec, &w, &older, &have_older, &vfirst, &vtorn);
	close(dirfd);
}

void hm_recovery_free(struct hm_recovery *rec)
{
	for (size_t i = 0; i < rec->nrecords; i++)
		free(rec->records[i].batch);
	free(rec->records);
	free(rec->cp.snap);
	for (size_t i = 0; i < rec->nvotes; i++)
		free(rec->votes[i].buf);
	free(rec->votes);
	memset(rec, 0, sizeof(*rec));
}

/* ---- writing ------------------------------------------------------------- */

static void remove_tmp_files(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0)
			unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
}

/* Create segment log-<first> whole (tmp + rename) and make it current. */
static int start_segment(struct hm_persist *p, uint64_t first)
{
	uint8_t hdr[PFILE_HDR_LEN];

	pfile_put_header(&log_kind, hdr, first);
	return pfile_install(p, &log_kind, &p->seg, first, hdr, sizeof(hdr));
}

/* Open the last segment for append after cutting a torn tail. */
static int reopen_last_segment(struct hm_persist *p, const struct walk *w)
{
	struct name_list segs;
	uint64_t first;

	if (persist_list_files(p->dirfd, "log-", ".hml", &segs) < 0)
		return -1;
	if (segs.n == 0) {
		free(segs.seqs);
		return start_segment(p, p->last_seq + 1);
	}
	first = segs.seqs[segs.n - 1];
	free(segs.seqs);
	return pfile_reopen(p, &log_kind, &p->seg, first, w->torn_at);
}

static void collect_garbage(struct hm_persist *p, bool restart, uint64_t current_first);

struct hm_persist *hm_persist_open(const char *dir, const struct hm_persist_opts *opts,
				   struct hm_recovery *rec, char *err, size_t errlen)
{
	struct hm_persist *p;
	uint64_t older = 0, vfirst = 0, vtorn = 0;
	bool have_older = false;
	struct walk w;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->seg.fd = -1;
	p->votes.fd = -1;
	if (opts)
		p->opts = *opts;
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		free(p);
		return NULL;
	}
	remove_tmp_files(p->dirfd);
	recover_all(p->dirfd, rec, &w, &older, &have_older, &vfirst, &vtorn);
	if (rec->status == HM_REC_IO_ERROR) {
		snprintf(err, errlen, "%s: cannot list the directory", dir);
		hm_persist_close(p);
		return NULL;
	}
	p->last_seq = rec->last_seq;
	if (rec->have_checkpoint)
		p->cp_keep[p->ncp_keep++] = rec->cp.seq;
	if (have_older)
		p->cp_keep[p->ncp_keep++] = older;
	/* The vote log continues where it was valid (a torn tail cut); a
	 * damaged one stays as it is until hm_persist_vote_rotate() replaces
	 * it (the driver does at start). */
	if (rec->votes_status == HM_VOTES_OK && persist_votes_reopen(p, vfirst, vtorn) < 0) {
		snprintf(err, errlen, "%s: cannot open the vote log: %s", dir, strerror(errno));
		hm_persist_close(p);
		return NULL;
	}
	if (rec->status == HM_REC_CORRUPT) {
		/* Leave every file as it is (evidence, and the valid prefix
		 * stays readable) until a checkpoint replaces them. */
		p->damaged = true;
		return p;
	}
	if (reopen_last_segment(p, &w) < 0) {
		snprintf(err, errlen, "%s: cannot open the log: %s", dir, strerror(errno));
		hm_persist_close(p);
		return NULL;
	}
	/* A crash between a checkpoint and its clean-up leaves files that
	 * are no longer needed; without this they would pile up when crashes
	 * keep landing there. */
	collect_garbage(p, false, UINT64_MAX);
	return p;
}

void hm_persist_close(struct hm_persist *p)
{
	if (!p)
		return;
	if (p->seg.fd >= 0)
		close(p->seg.fd);
	if (p->votes.fd >= 0)
		close(p->votes.fd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p);
}

uint64_t hm_persist_last_seq(const struct hm_persist *p)
{
	return p->last_seq;
}

int hm_persist_sync(struct hm_persist *p)
{
	if (!p->seg.dirty)
		return 0;
	if (p->seg_lost || p->seg.fd < 0) {
		errno = EIO;
		return -1;
	}
	/* A failure is never retried on this fd (pfile_fsync); the records
	 * since the last good sync may be lost, and dirty stays set. */
	if (pfile_fsync(p, &log_kind, &p->seg) < 0) {
		p->seg_lost = true;
		return -1;
	}
	return 0;
}

int hm_persist_error(const struct hm_persist *p, char *file, size_t cap)
{
	if (file && cap)
		snprintf(file, cap, "%s", p->err ? p->err_name : "");
	return p->err;
}

uint64_t hm_persist_errors(const struct hm_persist *p)
{
	return p->errors;
}

uint64_t hm_persist_injected(const struct hm_persist *p)
{
	return p->injected;
}

void hm_persist_set_inject(struct hm_persist *p, const struct hm_persist_inject *inj)
{
	p->opts.inject = inj ? *inj : (struct hm_persist_inject){ 0 };
	p->inj_seen = 0;
}

/* One log record at r (pfile_record_len(&log_kind, batch_len) bytes). */
static size_t rec_put(uint8_t *r, uint64_t seq, uint64_t view, const uint8_t *digest,
		      const void *batch, uint32_t batch_len)
{
	hm_put_be64(r + 8, seq);
	hm_put_be64(r + 16, view);
	memcpy(r + 24, digest, HM_DIGEST_LEN);
	return pfile_seal_record(&log_kind, r, batch, batch_len);
}

int hm_persist_append(struct hm_persist *p, uint64_t seq, uint64_t view,
		      const uint8_t digest[HM_DIGEST_LEN], const void *batch, uint32_t batch_len)
{
	size_t total = pfile_record_len(&log_kind, batch_len);
	bool stuck;
	uint8_t *r;
	int rc;

	if (p->seg_lost) {
		errno = EIO;
		return -1;
	}
	if (p->damaged || p->seg.fd < 0) {
		errno = EROFS;
		return -1;
	}
	if (seq != p->last_seq + 1 || batch_len > HM_PERSIST_MAX_BATCH || (batch_len && !batch)) {
		errno = EINVAL;
		return -1;
	}
	r = malloc(total);
	if (!r)
		return -1;
	rec_put(r, seq, view, digest, batch, batch_len);
	rc = pfile_write(p, &log_kind, &p->seg, r, total, &stuck);
	free(r);
	if (rc < 0) {
		/* The partial record could not be taken back: stop appending. */
		if (stuck)
			p->damaged = true;
		return -1;
	}
	p->last_seq = seq;
	return p->opts.sync_each ? hm_persist_sync(p) : 0;
}

/* Delete every checkpoint but the kept ones, then the segments whose records
 * are all at or below the older kept checkpoint (all of them when restart). */
static void collect_garbage(struct hm_persist *p, bool restart, uint64_t current_first)
{
	struct name_list l;
	char name[64];

	if (persist_list_files(p->dirfd, "checkpoint-", ".hmc", &l) == 0) {
		for (size_t i = 0; i < l.n; i++) {
			bool keep = false;

			for (int k = 0; k < p->ncp_keep; k++)
				keep |= l.seqs[i] == p->cp_keep[k];
			if (!keep) {
				cp_name(name, sizeof(name), l.seqs[i]);
				unlinkat(p->dirfd, name, 0);
			}
		}
		free(l.seqs);
	}
	if (persist_list_files(p->dirfd, "log-", ".hml", &l) < 0)
		return;
	/* Oldest first, so a crash in the middle leaves a contiguous suffix. */
	for (size_t i = 0; i < l.n && l.seqs[i] != current_first; i++) {
		uint64_t next_first = i + 1 < l.n ? l.seqs[i + 1] : UINT64_MAX;

		if (!restart && (p->ncp_keep < 2 || next_first - 1 > p->cp_keep[1]))
			break;
		pfile_name(&log_kind, l.seqs[i], name, sizeof(name));
		unlinkat(p->dirfd, name, 0);
	}
	free(l.seqs);
	fsync(p->dirfd);
}

/* Write cp, claiming the log durable through log_through, as its checkpoint
 * file (tmp, fsync, rename, fsync the directory). */
static int write_checkpoint(struct hm_persist *p, const struct hm_checkpoint *cp,
			    uint64_t log_through)
{
	struct hm_checkpoint c = *cp;
	char name[64];
	uint8_t *buf;
	size_t len;
	int rc;

	c.log_through = log_through;
	if (hm_checkpoint_serialize(&c, &buf, &len) < 0)
		return -1;
	cp_name(name, sizeof(name), cp->seq);
	rc = write_atomic(p, name, buf, len);
	free(buf);
	return rc;
}

int hm_persist_checkpoint(struct hm_persist *p, const struct hm_checkpoint *cp)
{
	bool restart = p->damaged || cp->seq > p->last_seq;

	if (p->seg_lost) {
		/* records since the last good sync may be gone: only
		 * hm_persist_reset() may describe the state again */
		errno = EIO;
		return -1;
	}
	if ((p->ncp_keep && cp->seq <= p->cp_keep[0]) || (p->damaged && cp->seq < p->last_seq)) {
		errno = EINVAL;
		return -1;
	}
	/* Everything appended so far is durable before the checkpoint that
	 * follows it, so files never describe a state with a hole. */
	if (p->seg.fd >= 0 && hm_persist_sync(p) < 0)
		return -1;
	if (write_checkpoint(p, cp, restart ? cp->seq : p->last_seq) < 0)
		return -1;
	if (p->ncp_keep)
		p->cp_keep[1] = p->cp_keep[0];
	p->cp_keep[0] = cp->seq;
	p->ncp_keep = p->ncp_keep ? 2 : 1;
	if (restart)
		p->last_seq = cp->seq;
	/* A new segment for the records after the last one written. */
	if (start_segment(p, p->last_seq + 1) < 0)
		return -1;
	p->damaged = false;
	collect_garbage(p, restart, p->last_seq + 1);
	return 0;
}

/*
 * Start the checkpoint and the committed log afresh from the driver's
 * state (after a disk failure): the checkpoint (tmp, fsync, rename, fsync
 * dir), then one new segment holding recs[] whole (the same), opened for
 * append; then every other checkpoint and segment is deleted.  No fd of
 * the old files is written again.  A crash before the segment's rename
 * leaves the new checkpoint, which claims no record (log_through = its
 * seq), and the old segments: recovery reads what of them is valid.
 */
int hm_persist_reset(struct hm_persist *p, const struct hm_checkpoint *cp,
		     const struct hm_log_record *recs, size_t n)
{
	uint64_t first = cp ? cp->seq + 1 : 1;
	size_t total = PFILE_HDR_LEN, off;
	uint8_t *buf;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (recs[i].seq != first + i || recs[i].batch_len > HM_PERSIST_MAX_BATCH ||
		    (recs[i].batch_len && !recs[i].batch)) {
			errno = EINVAL;
			return -1;
		}
		total += pfile_record_len(&log_kind, recs[i].batch_len);
	}
	if (cp && write_checkpoint(p, cp, cp->seq) < 0)
		return -1;
	buf = malloc(total);
	if (!buf)
		return -1;
	pfile_put_header(&log_kind, buf, first);
	off = PFILE_HDR_LEN;
	for (size_t i = 0; i < n; i++)
		off += rec_put(buf + off, recs[i].seq, recs[i].view, recs[i].digest, recs[i].batch,
			       recs[i].batch_len);
	rc = pfile_install(p, &log_kind, &p->seg, first, buf, total);
	free(buf);
	if (rc < 0)
		return -1;
	p->seg_lost = false;
	p->damaged = false;
	p->last_seq = first - 1 + n;
	p->ncp_keep = cp ? 1 : 0;
	p->cp_keep[0] = cp ? cp->seq : 0;
	/* Everything else goes: the new files hold the whole state. */
	pfile_remove_others(p, &log_kind, first);
	collect_garbage(p, false, first);
	return 0;
}

/* ---- names ------------------------------------------------------------- */

const char *hm_persist_fault_name(enum hm_persist_fault f)
{
	static const char *const names[HM_PF_MAX] = {
		[HM_PF_NONE] = "none",
		[HM_PF_IO] = "io_error",
		[HM_PF_BAD_MAGIC] = "bad_magic",
		[HM_PF_BAD_VERSION] = "bad_version",
		[HM_PF_BAD_LENGTH] = "bad_length",
		[HM_PF_BAD_CHECKSUM] = "bad_checksum",
		[HM_PF_MALFORMED] = "malformed",
		[HM_PF_TRUNCATED] = "truncated",
		[HM_PF_SEQ_GAP] = "seq_gap",
	};

	return (unsigned)f < HM_PF_MAX ? names[f] : "unknown";
}

const char *hm_recovery_status_name(enum hm_recovery_status s)
{
	switch (s) {
	case HM_REC_EMPTY: return "empty";
	case HM_REC_OK: return "ok";
	case HM_REC_CORRUPT: return "corrupt";
	case HM_REC_IO_ERROR: return "io_error";
	}
	return "unknown";
}
