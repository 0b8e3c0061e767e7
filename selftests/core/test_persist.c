// SPDX-License-Identifier: MIT
/*
 * Persistence: round trips, every kind of corruption (a flipped byte in each
 * region of each file kind, a torn last record cut at every offset, wrong
 * magic and version, missing files, an empty directory), the damaged mode
 * and its repair by a checkpoint, and a crash test that SIGKILLs a writer at
 * random moments and checks that recovery returns exactly what the writer had
 * made durable.
 *
 *   HM_PERSIST_ROUNDS=N   crash rounds (default 150; soak uses more)
 *   HM_PERSIST_SEED=S     replay a crash run
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/crypto.h"
#include "hm_test.h"
#include "core/persist.h"
#include "common/wire.h"

/* ---- deterministic content: what seq s holds -------------------------------- */

static uint32_t batch_of(uint64_t s, uint8_t *buf)
{
	uint32_t len = (uint32_t)((s * 7919) % 300);

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(s + i * 31);
	return len;
}

static uint64_t view_of(uint64_t s)
{
	return s / 50;
}

static uint32_t snap_of(uint64_t s, uint8_t *buf)
{
	uint32_t len = (uint32_t)((s * 13) % 2000) + 1;

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(s * 3 + i);
	return len;
}

static int append_seq(struct hm_persist *p, uint64_t s)
{
	uint8_t b[300], d[HM_DIGEST_LEN];
	uint32_t len = batch_of(s, b);

	hm_digest(b, len, d);
	return hm_persist_append(p, s, view_of(s), d, b, len);
}

static uint8_t snap_buf[2048];

static int checkpoint_seq(struct hm_persist *p, uint64_t s)
{
	struct hm_checkpoint cp = { .seq = s, .view = view_of(s), .nvotes = 3 };

	cp.snap_len = snap_of(s, snap_buf);
	cp.snap = snap_buf;
	hm_digest(snap_buf, (size_t)cp.snap_len, cp.digest);
	for (uint32_t i = 0; i < 3; i++) {
		cp.votes[i].replica = i;
		cp.votes[i].view = cp.view;
		memset(cp.votes[i].sig, (int)(i + s), HM_SIG_LEN);
	}
	return hm_persist_checkpoint(p, &cp);
}

/* The recovered state is exactly seqs (cp, last] with the right content. */
static bool state_is(const struct hm_recovery *rec, uint64_t cp, uint64_t last)
{
	uint8_t b[300], d[HM_DIGEST_LEN];

	if (cp) {
		uint8_t sb[2048];
		uint32_t len = snap_of(cp, sb);

		if (!rec->have_checkpoint || rec->cp.seq != cp || rec->cp.snap_len != len ||
		    memcmp(rec->cp.snap, sb, len) != 0 || rec->cp.view != view_of(cp) ||
		    rec->cp.nvotes != 3)
			return false;
		hm_digest(sb, len, d);
		if (memcmp(d, rec->cp.digest, HM_DIGEST_LEN) != 0)
			return false;
	} else if (rec->have_checkpoint) {
		return false;
	}
	if (rec->last_seq != last || rec->nrecords != last - cp)
		return false;
	for (size_t i = 0; i < rec->nrecords; i++) {
		const struct hm_log_record *r = &rec->records[i];
		uint32_t len = batch_of(cp + 1 + i, b);

		hm_digest(b, len, d);
		if (r->seq != cp + 1 + i || r->view != view_of(r->seq) || r->batch_len != len ||
		    memcmp(r->batch, b, len) != 0 || memcmp(r->digest, d, HM_DIGEST_LEN) != 0)
			return false;
	}
	return true;
}

/* ---- directory helpers ----------------------------------------------------- */

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (de->d_type == DT_DIR)
				remove_dir(path);
			else
				unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

/* Every directory a case makes is removed at exit too, so a case that
 * returns early on a failed assertion leaves nothing in /tmp.  Only the
 * process that made them removes them (the crash test's writers fork). */
#define MAX_DIRS 64
static char made_dirs[MAX_DIRS][256];
static int n_made_dirs;
static pid_t dirs_owner;

static void remove_made_dirs(void)
{
	if (getpid() != dirs_owner)
		return;
	for (int i = 0; i < n_made_dirs; i++)
		remove_dir(made_dirs[i]);
}

static void make_dir(char *out, size_t cap)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(out, cap, "%s/hm-persist-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(1);
	}
	if (!dirs_owner) {
		dirs_owner = getpid();
		atexit(remove_made_dirs);
	}
	if (n_made_dirs < MAX_DIRS)
		snprintf(made_dirs[n_made_dirs++], sizeof(made_dirs[0]), "%s", out);
}

static int count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

/* Name of the newest (last = true) or oldest file with prefix. */
static bool find_file(const char *dir, const char *prefix, bool last, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[256] = "";

	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		if (!best[0] || (last ? strcmp(de->d_name, best) > 0 : strcmp(de->d_name, best) < 0))
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	snprintf(out, cap, "%s/%s", dir, best);
	return best[0] != 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	p = malloc(n ? (size_t)n : 1);
	*len = fread(p, 1, (size_t)n, f);
	fclose(f);
	return p;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* A directory with checkpoints at 10 and 20 and records 1..27 (the log
 * was at 13 and 23 when they were written), in segments log-1 (1..13, kept
 * for checkpoint 10), log-14 (14..23) and log-24 (24..27). */
#define SEG(dir, buf, first) \
	(snprintf(buf, sizeof(buf), "%s/log-%020u.hml", dir, (unsigned)(first)), buf)
static void populate(const char *dir)
{
	struct hm_recovery rec;
	char err[256];
	struct hm_persist *p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));

	if (!p || rec.status != HM_REC_EMPTY) {
		fprintf(stderr, "populate: %s\n", p ? hm_recovery_status_name(rec.status) : err);
		exit(1);
	}
	for (uint64_t s = 1; s <= 27; s++) {
		if (append_seq(p, s) < 0 || hm_persist_sync(p) < 0)
			exit(1);
		if ((s == 13 && checkpoint_seq(p, 10) < 0) || (s == 23 && checkpoint_seq(p, 20) < 0))
			exit(1);
	}
	hm_persist_close(p);
	hm_recovery_free(&rec);
}

/* A new directory, populated. */
static void make_populated_dir(char *dir, size_t cap)
{
	make_dir(dir, cap);
	populate(dir);
}

/* Recover dir: the status it must have and exactly (cp, last] held, and
 * when it is corrupt, a gap in the log as the first problem, at the seq
 * returned (0 when not corrupt).  what names the case in any failure. */
static uint64_t recovers(const char *dir, enum hm_recovery_status status, uint64_t cp, uint64_t last,
			 const char *what)
{
	struct hm_recovery rec;
	uint64_t gap = 0;

	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.status, status, what);
	if (status == HM_REC_CORRUPT) {
		ASSERT_EQ(rec.problems[0].fault, HM_PF_SEQ_GAP, what);
		gap = rec.problems[0].seq;
	}
	ASSERT_TRUE(state_is(&rec, cp, last), what);
	hm_recovery_free(&rec);
	return gap;
}

/* ---- round trips ------------------------------------------------------------- */

HM_TEST(empty_and_missing_dir)
{
	char dir[256], sub[300];
	struct hm_recovery rec;
	struct hm_persist *p;
	char err[256];

	make_dir(dir, sizeof(dir));
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.status, HM_REC_EMPTY, "empty directory");
	hm_recovery_free(&rec);
	snprintf(sub, sizeof(sub), "%s/none", dir);
	hm_persist_recover(sub, &rec);
	ASSERT_EQ(rec.status, HM_REC_EMPTY, "missing directory");
	hm_recovery_free(&rec);
	p = hm_persist_open(sub, NULL, &rec, err, sizeof(err));
	ASSERT_TRUE(p != NULL, "open creates the directory");
	ASSERT_EQ(rec.status, HM_REC_EMPTY, "fresh");
	ASSERT_EQ(hm_persist_last_seq(p), 0, "starts at 0");
	ASSERT_EQ(append_seq(p, 2), -1, "seq 2 before seq 1 refused");
	ASSERT_EQ(errno, EINVAL, "EINVAL");
	ASSERT_OK(append_seq(p, 1), "seq 1");
	ASSERT_EQ(append_seq(p, 1), -1, "seq 1 twice refused");
	ASSERT_OK(hm_persist_sync(p), "sync");
	hm_persist_close(p);
	hm_recovery_free(&rec);
	hm_persist_recover(sub, &rec);
	ASSERT_EQ(rec.status, HM_REC_OK, "ok");
	ASSERT_TRUE(state_is(&rec, 0, 1), "record 1");
	hm_recovery_free(&rec);
	remove_dir(sub);
	/* Not a directory at all. */
	spit(sub, (const uint8_t *)"x", 1);
	ASSERT_TRUE(hm_persist_open(sub, NULL, &rec, err, sizeof(err)) == NULL, "a file is refused");
	ASSERT_STRCONTAINS(err, sub, "the error names it");
	unlink(sub);
	remove_dir(dir);
}

HM_TEST(roundtrip_and_garbage_collection)
{
	struct hm_recovery rec;
	struct hm_persist *p;
	char dir[256], err[256];

	make_populated_dir(dir, sizeof(dir));
	ASSERT_EQ(count_files(dir, "checkpoint-"), 2, "two checkpoints");
	ASSERT_EQ(count_files(dir, "log-"), 3, "segments 1, 14, 24");
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.status, HM_REC_OK, "ok");
	ASSERT_TRUE(state_is(&rec, 20, 27), "checkpoint 20 and records 21..27");
	ASSERT_EQ(rec.torn_bytes, 0, "no torn tail");
	hm_recovery_free(&rec);

	/* Reopen, append, a third checkpoint: the first one goes. */
	p = hm_persist_open(dir, &(struct hm_persist_opts){ .sync_each = true }, &rec, err,
			    sizeof(err));
	ASSERT_TRUE(p != NULL, "reopen");
	ASSERT_EQ(hm_persist_last_seq(p), 27, "continues at 28");
	hm_recovery_free(&rec);
	for (uint64_t s = 28; s <= 33; s++)
		ASSERT_OK(append_seq(p, s), "append");
	ASSERT_OK(checkpoint_seq(p, 30), "checkpoint 30");
	ASSERT_EQ(checkpoint_seq(p, 30), -1, "checkpoint 30 twice refused");
	ASSERT_EQ(checkpoint_seq(p, 20), -1, "an older checkpoint refused");
	hm_persist_close(p);
	ASSERT_EQ(count_files(dir, "checkpoint-"), 2, "still two checkpoints");
	ASSERT_EQ(count_files(dir, "log-"), 3, "segments 14, 24, 34");
	{
		char path[512];

		ASSERT_TRUE(access(SEG(dir, path, 1), F_OK) != 0, "segment 1 (1..13 <= 20) deleted");
		ASSERT_TRUE(access(SEG(dir, path, 14), F_OK) == 0, "segment 14 kept for checkpoint 20");
	}
	hm_persist_recover(dir, &rec);
	ASSERT_TRUE(state_is(&rec, 30, 33), "checkpoint 30 and records 31..33");
	hm_recovery_free(&rec);
	remove_dir(dir);
}

/* A checkpoint from state transfer jumps ahead of the log: the log
 * restarts after it. */
HM_TEST(checkpoint_jump_restarts_log)
{
	struct hm_recovery rec;
	struct hm_persist *p;
	char dir[256], err[256];

	make_populated_dir(dir, sizeof(dir));
	p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));
	hm_recovery_free(&rec);
	ASSERT_OK(checkpoint_seq(p, 100), "checkpoint 100");
	ASSERT_EQ(hm_persist_last_seq(p), 100, "log restarts");
	ASSERT_EQ(append_seq(p, 28), -1, "the old position is gone");
	ASSERT_OK(append_seq(p, 101), "101");
	ASSERT_OK(hm_persist_sync(p), "sync");
	hm_persist_close(p);
	ASSERT_EQ(count_files(dir, "log-"), 1, "old segments deleted");
	recovers(dir, HM_REC_OK, 100, 101, "checkpoint 100, record 101");
	remove_dir(dir);
}

HM_TEST(checkpoint_image_and_proof)
{
	struct hm_keypair kp[4];
	uint8_t pks[4][HM_PUBKEY_LEN];
	struct hm_checkpoint cp = { .seq = 200, .view = 3, .nvotes = 3 }, back;
	uint8_t snap[100], *img;
	size_t len;

	for (int i = 0; i < 4; i++) {
		uint8_t seed[32] = { (uint8_t)(i + 1) };

		hm_keypair_from_seed(&kp[i], seed);
		memcpy(pks[i], kp[i].pk, HM_PUBKEY_LEN);
	}
	memset(snap, 7, sizeof(snap));
	hm_digest(snap, sizeof(snap), cp.digest);
	cp.snap = snap;
	cp.snap_len = sizeof(snap);
	/* Real CHECKPOINT messages, as the core sends them (replica 2 in an
	 * earlier view). */
	for (uint32_t i = 0; i < 3; i++) {
		uint8_t msg[HM_HDR_LEN];
		uint64_t view = i == 2 ? 2 : 3;

		hm_msg_build(msg, sizeof(msg), HM_MSG_CHECKPOINT, i + 1, view, 200, cp.digest,
			      NULL, 0, &kp[i + 1]);
		cp.votes[i].replica = i + 1;
		cp.votes[i].view = view;
		memcpy(cp.votes[i].sig, ((struct hm_hdr *)msg)->sig, HM_SIG_LEN);
	}
	ASSERT_TRUE(hm_checkpoint_proof_ok(&cp, pks, 4, 3), "2f+1 valid votes");
	ASSERT_OK(hm_checkpoint_serialize(&cp, &img, &len), "serialize");
	ASSERT_EQ(hm_checkpoint_parse(img, len, &back), HM_PF_NONE, "parse");
	ASSERT_TRUE(back.seq == 200 && back.view == 3 && back.nvotes == 3 && back.snap_len == 100,
		    "fields");
	ASSERT_MEMEQ(back.snap, snap, 100, "snapshot");
	ASSERT_TRUE(hm_checkpoint_proof_ok(&back, pks, 4, 3), "proof survives the round trip");
	free(img);

	back = cp;
	back.votes[1].sig[5] ^= 1;
	ASSERT_TRUE(!hm_checkpoint_proof_ok(&back, pks, 4, 3), "one forged vote: 2 left");
	back = cp;
	back.votes[2].view = 3;
	ASSERT_TRUE(!hm_checkpoint_proof_ok(&back, pks, 4, 3), "wrong view breaks the signature");
	back = cp;
	back.votes[2] = back.votes[0];
	ASSERT_TRUE(!hm_checkpoint_proof_ok(&back, pks, 4, 3), "a duplicate vote counts once");
	back = cp;
	back.digest[0] ^= 1;
	ASSERT_TRUE(!hm_checkpoint_proof_ok(&back, pks, 4, 3), "another digest");
	ASSERT_TRUE(!hm_checkpoint_proof_ok(&cp, pks, 3, 3), "replica 3 is not a member of n=3");

	/* Inconsistent content under a good checksum is still refused. */
	back = cp;
	back.nvotes = 2;
	back.votes[1].replica = back.votes[0].replica;
	ASSERT_OK(hm_checkpoint_serialize(&back, &img, &len), "serialize");
	ASSERT_EQ(hm_checkpoint_parse(img, len, &back), HM_PF_MALFORMED, "duplicate replica");
	free(img);
	back = cp;
	back.nvotes = HM_MAX_REPLICAS + 1;
	ASSERT_ERR(hm_checkpoint_serialize(&back, &img, &len), "too many votes");
}

/* ---- corruption -------------------------------------------------------------- */

/* Flip every byte of the newest checkpoint: reported, with the fault its
 * region implies, and recovery falls back to the older one with the log. */
HM_TEST(checkpoint_every_byte_flipped)
{
	char dir[256], path[512];
	size_t len;
	uint8_t *orig;
	int wrong = 0, bad_state = 0;

	make_populated_dir(dir, sizeof(dir));
	ASSERT_TRUE(find_file(dir, "checkpoint-", true, path, sizeof(path)), "newest checkpoint");
	orig = slurp(path, &len);
	for (size_t i = 0; i < len; i++) {
		struct hm_recovery rec;
		enum hm_persist_fault want = i < 4 ? HM_PF_BAD_MAGIC
					   : i < 8 ? HM_PF_BAD_VERSION
					   : i < 16 ? HM_PF_BAD_LENGTH
						    : HM_PF_BAD_CHECKSUM;

		orig[i] ^= 0x10;
		spit(path, orig, len);
		orig[i] ^= 0x10;
		hm_persist_recover(dir, &rec);
		if (rec.status != HM_REC_CORRUPT || rec.nproblems != 1 ||
		    rec.problems[0].kind != HM_PFILE_CHECKPOINT ||
		    !(rec.problems[0].fault == want ||
		      (i >= 8 && i < 16 && rec.problems[0].fault == HM_PF_TRUNCATED))) {
			if (!wrong++)
				printf("  byte %zu: %s, %s\n", i, hm_recovery_status_name(rec.status),
				       hm_persist_fault_name(rec.problems[0].fault));
		}
		/* The older checkpoint and the log still give the whole state. */
		if (!state_is(&rec, 10, 27))
			bad_state++;
		hm_recovery_free(&rec);
	}
	ASSERT_EQ(wrong, 0, "flips not reported as expected");
	ASSERT_EQ(bad_state, 0, "flips that changed the recovered state");
	spit(path, orig, len);
	free(orig);
	remove_dir(dir);
}

/* Flip every byte of the newest segment (header and records 24..27): the
 * records before the flip are kept, none after, and the fault is named. */
HM_TEST(log_every_byte_flipped)
{
	char dir[256], path[512];
	size_t len;
	uint8_t *orig;
	int wrong = 0, bad_state = 0;

	make_populated_dir(dir, sizeof(dir));
	ASSERT_TRUE(find_file(dir, "log-", true, path, sizeof(path)), "newest segment");
	orig = slurp(path, &len);
	for (size_t i = 0; i < len; i++) {
		struct hm_recovery rec;
		uint64_t first_bad;
		size_t off = 32, rlen = 0;
		enum hm_persist_fault want;

		/* Which record byte i is in, and where inside it. */
		first_bad = 24;
		while (i >= 32 && off < len) {
			rlen = 72 + hm_get_be32(orig + off + 4) + 32;
			if (i < off + rlen)
				break;
			off += rlen;
			first_bad++;
		}
		want = i < 32 ? (i < 4 ? HM_PF_BAD_MAGIC : i < 8 ? HM_PF_BAD_VERSION
				 : i < 16 ? HM_PF_MALFORMED : HM_PF_BAD_CHECKSUM)
			      : (i - off < 4 ? HM_PF_BAD_MAGIC : HM_PF_BAD_CHECKSUM);
		if (i < 32)
			first_bad = 24;
		orig[i] ^= 0x01;
		spit(path, orig, len);
		orig[i] ^= 0x01;
		hm_persist_recover(dir, &rec);
		/* A flipped seq field in the segment header can also make the
		 * header check fail first; both are bad. */
		if (rec.status != HM_REC_CORRUPT || rec.nproblems < 1 ||
		    rec.problems[0].kind != HM_PFILE_LOG ||
		    !(rec.problems[0].fault == want ||
		      (i >= 8 && i < 16 && rec.problems[0].fault == HM_PF_BAD_CHECKSUM))) {
			if (!wrong++)
				printf("  byte %zu: %s, %s\n", i, hm_recovery_status_name(rec.status),
				       rec.nproblems ? hm_persist_fault_name(rec.problems[0].fault)
						     : "-");
		}
		if (!state_is(&rec, 20, first_bad - 1))
			bad_state++;
		hm_recovery_free(&rec);
	}
	ASSERT_EQ(wrong, 0, "flips not reported as expected");
	ASSERT_EQ(bad_state, 0, "flips where the state was not the prefix before them");
	free(orig);
	remove_dir(dir);
}

/* Cut the last record at every offset: a torn tail, cut and never read;
 * the writer then continues at that seq.  Extending a record's length field
 * is not a torn tail: the header check catches it. */
HM_TEST(torn_tail_every_offset)
{
	char dir[256], path[512];
	size_t len, last_off = 32;
	uint8_t *orig;
	int wrong = 0;

	make_populated_dir(dir, sizeof(dir));
	ASSERT_TRUE(find_file(dir, "log-", true, path, sizeof(path)), "newest segment");
	orig = slurp(path, &len);
	for (size_t off = 32; off < len;) {
		size_t rlen = 72 + hm_get_be32(orig + off + 4) + 32;

		if (off + rlen == len)
			last_off = off;
		off += rlen;
	}
	for (size_t cut = last_off; cut < len; cut++) {
		struct hm_recovery rec;
		struct hm_persist *p;
		char err[256];

		spit(path, orig, cut);
		hm_persist_recover(dir, &rec);
		if (rec.status != HM_REC_OK || rec.torn_bytes != cut - last_off ||
		    !state_is(&rec, 20, 26))
			wrong++;
		hm_recovery_free(&rec);
		/* Opening cuts it; the next append is 27 again. */
		p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));
		if (!p || append_seq(p, 27) < 0 || hm_persist_sync(p) < 0)
			wrong++;
		hm_persist_close(p);
		hm_recovery_free(&rec);
		hm_persist_recover(dir, &rec);
		if (rec.status != HM_REC_OK || rec.torn_bytes || !state_is(&rec, 20, 27))
			wrong++;
		hm_recovery_free(&rec);
	}
	ASSERT_EQ(wrong, 0, "cuts not handled as a torn tail");
	/* The same cut in a segment that is not the last is corruption. */
	{
		struct hm_recovery rec;
		char first[512];

		size_t flen;
		uint8_t *f;

		spit(path, orig, len);
		f = slurp(SEG(dir, first, 14), &flen);
		spit(first, f, flen - 5);
		hm_persist_recover(dir, &rec);
		ASSERT_EQ(rec.status, HM_REC_CORRUPT, "truncated middle segment");
		ASSERT_EQ(rec.problems[0].fault, HM_PF_TRUNCATED, "reported as truncated");
		ASSERT_EQ(rec.problems[1].fault, HM_PF_SEQ_GAP, "then 24 does not follow 22");
		ASSERT_TRUE(state_is(&rec, 20, 22), "records before it kept");
		hm_recovery_free(&rec);
		free(f);
	}
	free(orig);
	remove_dir(dir);
}

HM_TEST(wrong_magic_and_version)
{
	char dir[256], path[512];
	struct hm_recovery rec;
	size_t len;
	uint8_t *b;

	make_populated_dir(dir, sizeof(dir));
	/* Version 2 of a checkpoint, with a valid checksum: not read. */
	ASSERT_TRUE(find_file(dir, "checkpoint-", true, path, sizeof(path)), "checkpoint");
	b = slurp(path, &len);
	hm_put_be32(b + 4, HM_PERSIST_VERSION + 1);
	spit(path, b, len);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.problems[0].fault, HM_PF_BAD_VERSION, "checkpoint version");
	hm_recovery_free(&rec);
	memcpy(b, "XXXX", 4);
	spit(path, b, len);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.problems[0].fault, HM_PF_BAD_MAGIC, "checkpoint magic");
	ASSERT_TRUE(state_is(&rec, 10, 27), "falls back to checkpoint 10");
	hm_recovery_free(&rec);
	spit(path, b, 0);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.problems[0].fault, HM_PF_TRUNCATED, "empty checkpoint file");
	hm_recovery_free(&rec);
	free(b);
	remove_dir(dir);

	make_populated_dir(dir, sizeof(dir));
	ASSERT_TRUE(find_file(dir, "log-", true, path, sizeof(path)), "segment");
	b = slurp(path, &len);
	hm_put_be32(b + 4, HM_PERSIST_VERSION + 1);
	spit(path, b, len);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.problems[0].fault, HM_PF_BAD_VERSION, "segment version");
	ASSERT_TRUE(state_is(&rec, 20, 23), "records before the segment kept");
	hm_recovery_free(&rec);
	memcpy(b, "XXXX", 4);
	spit(path, b, len);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.problems[0].fault, HM_PF_BAD_MAGIC, "segment magic");
	hm_recovery_free(&rec);
	spit(path, b, 10);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.problems[0].fault, HM_PF_BAD_MAGIC, "short segment, magic first");
	hm_recovery_free(&rec);
	free(b);
	remove_dir(dir);
}

HM_TEST(missing_files)
{
	char dir[256], path[512];
	struct hm_recovery rec;

	/* The middle segment (14..23) gone: a gap after checkpoint 20. */
	make_populated_dir(dir, sizeof(dir));
	unlink(SEG(dir, path, 14));
	ASSERT_EQ(recovers(dir, HM_REC_CORRUPT, 20, 20, "a gap: only the checkpoint"), 24, "at 24");
	/* The oldest (1..13) gone too: checkpoint 20 does not need it. */
	unlink(SEG(dir, path, 1));
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.problems[0].fault, HM_PF_SEQ_GAP, "still the gap");
	hm_recovery_free(&rec);
	remove_dir(dir);

	/* The newest segment gone: checkpoint 20 saw 23 durable, and 21..23
	 * are there, so nothing the checkpoint knew of is missing; 24..27
	 * cannot be told from never written (docs/persistence.md). */
	make_populated_dir(dir, sizeof(dir));
	unlink(SEG(dir, path, 24));
	recovers(dir, HM_REC_OK, 20, 23, "ok up to 23");
	/* And 14..23: checkpoint 20 says the log reached 23. */
	unlink(SEG(dir, path, 14));
	recovers(dir, HM_REC_CORRUPT, 20, 20, "the log is missing: only the checkpoint");
	remove_dir(dir);

	/* Both checkpoints gone: the log from 1 still gives the whole state;
	 * without segment 1 it starts at 14, not 1. */
	make_populated_dir(dir, sizeof(dir));
	for (int i = 0; i < 2; i++) {
		ASSERT_TRUE(find_file(dir, "checkpoint-", true, path, sizeof(path)), "checkpoint");
		unlink(path);
	}
	recovers(dir, HM_REC_OK, 0, 27, "ok from the log alone: records 1..27");
	unlink(SEG(dir, path, 1));
	recovers(dir, HM_REC_CORRUPT, 0, 0, "a gap before 14: nothing usable");
	remove_dir(dir);

	/* Stale .tmp files are never read, and open removes them. */
	make_populated_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/checkpoint-00000000000000000090.hmc.tmp", dir);
	spit(path, (const uint8_t *)"garbage", 7);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.status, HM_REC_OK, "tmp ignored");
	hm_recovery_free(&rec);
	{
		char err[256];
		struct hm_persist *p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));

		hm_persist_close(p);
		hm_recovery_free(&rec);
	}
	ASSERT_TRUE(access(path, F_OK) != 0, "tmp removed on open");
	remove_dir(dir);
}

/* After corruption the writer refuses appends until a checkpoint at or
 * above the valid prefix (as state transfer brings) replaces the log. */
HM_TEST(damaged_until_checkpoint)
{
	char dir[256], path[512], err[256];
	struct hm_recovery rec;
	struct hm_persist *p;
	size_t len;
	uint8_t *b;

	make_populated_dir(dir, sizeof(dir));
	ASSERT_TRUE(find_file(dir, "log-", true, path, sizeof(path)), "newest segment");
	b = slurp(path, &len);
	b[32 + 80] ^= 1; /* inside record 24's batch */
	spit(path, b, len);
	free(b);
	p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));
	ASSERT_TRUE(p != NULL, "opens");
	ASSERT_EQ(rec.status, HM_REC_CORRUPT, "corrupt");
	ASSERT_EQ(rec.problems[0].fault, HM_PF_BAD_CHECKSUM, "record checksum");
	ASSERT_STRCONTAINS(rec.problems[0].name, "log-", "names the segment");
	ASSERT_EQ(rec.problems[0].offset, 32, "at the first record");
	ASSERT_TRUE(state_is(&rec, 20, 23), "valid prefix");
	hm_recovery_free(&rec);
	ASSERT_EQ(append_seq(p, 24), -1, "append refused");
	ASSERT_EQ(errno, EROFS, "EROFS");
	ASSERT_EQ(checkpoint_seq(p, 22), -1, "a checkpoint below the prefix refused");
	ASSERT_OK(checkpoint_seq(p, 30), "checkpoint 30 from state transfer");
	ASSERT_OK(append_seq(p, 31), "appends again");
	ASSERT_OK(hm_persist_sync(p), "sync");
	hm_persist_close(p);
	recovers(dir, HM_REC_OK, 30, 31, "repaired: checkpoint 30, record 31");
	remove_dir(dir);
}

/* ---- the crash test ---------------------------------------------------------- */

#define GROUP_MAX 4
#define SYNC_EVERY_MAX 4
#define INTENT (1ull << 63) /* pipe message: about to append up to seq */
#define CP_EVERY 10
#define CP_LAG 3

/* One value from a crash-test writer's pipe: an intent (about to write record
 * v) or a report (record v is durable). */
static void note_report(uint64_t v, uint64_t *written, uint64_t *reported)
{
	if ((v & INTENT) && (v & ~INTENT) > *written)
		*written = v & ~INTENT;
	else if (!(v & INTENT) && v > *reported)
		*reported = v;
}

/* The writer: appends groups of records, syncs after a random number of
 * groups, then reports the last seq it synced; a checkpoint every CP_EVERY once the log is CP_LAG
 * past it (as a checkpoint becomes stable after later commits). */
static void __attribute__((noreturn)) writer(const char *dir, int fd, uint64_t seed)
{
	struct hm_recovery rec;
	char err[256];
	/* Small writes, so that the kill lands inside records too. */
	struct hm_persist_opts opts = { .write_chunk = 1 + (uint32_t)(seed % 16) };
	struct hm_persist *p = hm_persist_open(dir, &opts, &rec, err, sizeof(err));
	uint64_t s, next_cp;

	if (!p || rec.status == HM_REC_CORRUPT)
		_exit(3);
	s = rec.last_seq;
	next_cp = (rec.have_checkpoint ? rec.cp.seq : 0) + CP_EVERY;
	hm_recovery_free(&rec);
	for (;;) {
		unsigned g = 1 + (unsigned)(hm_test_rand(&seed) % GROUP_MAX);
		uint64_t intent = (s + g) | INTENT;

		/* Say how far we are about to write: recovery must never find
		 * more than that. */
		if (write(fd, &intent, sizeof(intent)) != sizeof(intent))
			_exit(6);
		for (unsigned k = 0; k < g; k++)
			if (append_seq(p, ++s) < 0)
				_exit(4);
		/* Sometimes several groups per sync, so more of the time is
		 * spent writing (where a kill tears a record). */
		if (hm_test_rand(&seed) % SYNC_EVERY_MAX)
			continue;
		if (hm_persist_sync(p) < 0)
			_exit(5);
		if (write(fd, &s, sizeof(s)) != sizeof(s))
			_exit(6);
		while (s >= next_cp + CP_LAG) {
			if (checkpoint_seq(p, next_cp) < 0)
				_exit(7);
			next_cp += CP_EVERY;
		}
	}
}

HM_TEST(crash_recovery_kill9)
{
	const char *r_env = getenv("HM_PERSIST_ROUNDS"), *s_env = getenv("HM_PERSIST_SEED");
	unsigned rounds = r_env ? (unsigned)strtoul(r_env, NULL, 0) : 150;
	uint64_t seed = s_env ? strtoull(s_env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	uint64_t rng = seed | 1, durable = 0, written = 0;
	char dir[256];
	int failures = 0;
	unsigned torn_rounds = 0;

	printf("  crash test: %u rounds, HM_PERSIST_SEED=%#" PRIx64 "\n", rounds, seed);
	make_dir(dir, sizeof(dir));
	/* Past the rounds asked for, go on (up to 4 times as many) until a
	 * kill has torn a record, so the torn-tail path is always exercised. */
	for (unsigned round = 0;
	     !failures && (round < rounds || (rounds >= 50 && !torn_rounds && round < 4 * rounds));
	     round++) {
		struct hm_recovery rec;
		uint64_t v, reported = durable, cp;
		int pfd[2], status;
		pid_t pid;

		if (pipe(pfd) < 0)
			abort();
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			writer(dir, pfd[1], hm_test_rand(&rng) + round);
		}
		close(pfd[1]);
		/* Kill at a random moment: sometimes at once, mostly within a
		 * few dozen fsyncs.  (From the fork, not from a first record as
		 * the vote-log test does: its kills in start-up are what leave
		 * this writer's torn records.) */
		usleep((useconds_t)(hm_test_rand(&rng) % 20000));
		kill(pid, SIGKILL);
		while (read(pfd[0], &v, sizeof(v)) == sizeof(v))
			note_report(v, &written, &reported);
		close(pfd[0]);
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			printf("  round %u: writer exited by itself (status %#x)\n", round, status);
			failures++;
			break;
		}
		durable = reported;
		hm_persist_recover(dir, &rec);
		cp = rec.have_checkpoint ? rec.cp.seq : 0;
		/* Everything reported durable is there; nothing beyond what the
		 * writer set out to write; each record and the checkpoint exactly what the
		 * writer wrote for its seq; nothing reported as corrupt. */
		if ((rec.status != HM_REC_OK && !(rec.status == HM_REC_EMPTY && durable == 0)) ||
		    rec.last_seq < durable || rec.last_seq > written ||
		    !state_is(&rec, cp, rec.last_seq) ||
		    count_files(dir, "checkpoint-") > 3) {
			printf("  round %u: status %s (%zu problems, first %s), last %" PRIu64
			       ", durable %" PRIu64 ", written %" PRIu64 ", checkpoint %" PRIu64
			       ", content %s, %d checkpoint files\n",
			       round, hm_recovery_status_name(rec.status), rec.nproblems,
			       rec.nproblems ? hm_persist_fault_name(rec.problems[0].fault) : "-",
			       rec.last_seq, durable, written, cp, state_is(&rec, cp, rec.last_seq) ? "ok" : "WRONG",
			       count_files(dir, "checkpoint-"));
			failures++;
		}
		torn_rounds += rec.torn_bytes > 0;
		/* What recovery returned is durable from now on. */
		if (rec.last_seq > durable)
			durable = rec.last_seq;
		hm_recovery_free(&rec);
	}
	printf("  crash test: %" PRIu64 " records durable at the end, %u rounds left a torn record\n",
	       durable, torn_rounds);
	ASSERT_EQ(failures, 0, "rounds with a wrong recovery (replay with the seed above)");
	ASSERT_TRUE(durable > rounds / 4, "the writer made progress");
	ASSERT_TRUE(rounds < 50 || torn_rounds > 0, "some kills landed inside a record");
	remove_dir(dir);
}

/* ---- the vote log ----------------------------------------------------------- */

/* Vote record k: its index, then bytes derived from it (1..600 bytes in all). */
static uint32_t vote_of(uint64_t k, uint8_t *buf)
{
	uint32_t len = 8 + (uint32_t)((k * 7919) % 592);

	hm_put_be64(buf, k);
	for (uint32_t i = 8; i < len; i++)
		buf[i] = (uint8_t)(k * 5 + i);
	return len;
}

static int append_vote(struct hm_persist *p, uint64_t k)
{
	uint8_t b[600];

	return hm_persist_vote_append(p, k, b, vote_of(k, b));
}

/* The live state at record k, as a rotation writes it: records k-2..k. */
static int rotate_votes(struct hm_persist *p, uint64_t k)
{
	uint8_t b[3][600];
	struct hm_vote_record r[3];
	size_t n = 0;

	for (uint64_t j = k >= 2 ? k - 2 : 1; j <= k && k > 0; j++, n++)
		r[n] = (struct hm_vote_record){ b[n], vote_of(j, b[n]) };
	return hm_persist_vote_rotate(p, k, r, n);
}

/* The recovered vote log is records first..last, contiguous, each exactly
 * what was written; *last gets the last index (0: none). */
static bool votes_are(const struct hm_recovery *rec, uint64_t *last)
{
	uint8_t b[600];

	*last = 0;
	for (size_t i = 0; i < rec->nvotes; i++) {
		const struct hm_vote_record *v = &rec->votes[i];
		uint64_t k = v->len >= 8 ? hm_get_be64(v->buf) : 0;

		if (k == 0 || (i && k != *last + 1) || v->len != vote_of(k, b) ||
		    memcmp(v->buf, b, v->len) != 0)
			return false;
		*last = k;
	}
	return true;
}

HM_TEST(votes_roundtrip_torn_and_corrupt)
{
	struct hm_recovery rec;
	struct hm_persist *p;
	char dir[256], err[256], name[512];
	uint64_t last;
	struct stat st;
	int fd;

	make_dir(dir, sizeof(dir));
	p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));
	if (!ASSERT_TRUE(p != NULL, err))
		return;
	ASSERT_EQ(rec.votes_status, HM_VOTES_MISSING, "no vote file yet");
	hm_recovery_free(&rec);
	ASSERT_ERR(append_vote(p, 1), "no appends before a vote file exists");
	ASSERT_OK(rotate_votes(p, 0), "start an empty vote log");
	for (uint64_t k = 1; k <= 20; k++)
		ASSERT_OK(append_vote(p, k), "append");
	ASSERT_OK(hm_persist_vote_sync(p), "sync");
	ASSERT_OK(rotate_votes(p, 20), "rotate: records 18..20 at 20");
	for (uint64_t k = 21; k <= 25; k++)
		ASSERT_OK(append_vote(p, k), "append after the rotation");
	ASSERT_OK(hm_persist_vote_sync(p), "sync");
	hm_persist_close(p);
	ASSERT_EQ(count_files(dir, "votes-"), 1, "one vote file after a rotation");
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.votes_status, HM_VOTES_OK, "vote log ok");
	ASSERT_TRUE(votes_are(&rec, &last) && last == 25 && rec.nvotes == 8, "records 18..25");
	hm_recovery_free(&rec);

	/* A torn last record at every offset: a valid prefix, status ok. */
	snprintf(name, sizeof(name), "%s/votes-%020d.hmv", dir, 20);
	if (!ASSERT_OK(stat(name, &st), "the vote file"))
		return;
	for (off_t cut = st.st_size - 1; cut > st.st_size - 200; cut -= 7) {
		fd = open(name, O_WRONLY);
		ASSERT_OK(ftruncate(fd, cut), "cut");
		close(fd);
		hm_persist_recover(dir, &rec);
		ASSERT_EQ(rec.votes_status, HM_VOTES_OK, "a torn tail is not corruption");
		ASSERT_TRUE(rec.votes_torn_bytes > 0, "torn bytes reported");
		ASSERT_TRUE(votes_are(&rec, &last) && last == 24, "records 18..24 kept");
		hm_recovery_free(&rec);
	}
	/* Reopened: the tail is cut and appends continue cleanly. */
	p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));
	hm_recovery_free(&rec);
	ASSERT_OK(append_vote(p, 25), "append after the cut");
	ASSERT_OK(hm_persist_vote_sync(p), "sync");
	hm_persist_close(p);
	hm_persist_recover(dir, &rec);
	ASSERT_TRUE(rec.votes_status == HM_VOTES_OK && rec.votes_torn_bytes == 0 &&
			    votes_are(&rec, &last) && last == 25,
		    "records 18..25 again");
	hm_recovery_free(&rec);

	/* A flipped byte in the middle is corruption, never a torn tail; the
	 * records before it are still returned. */
	stat(name, &st);
	fd = open(name, O_RDWR);
	{
		uint8_t ch;
		off_t at = st.st_size / 2;

		ASSERT_EQ(pread(fd, &ch, 1, at), 1, "read");
		ch ^= 0x20;
		ASSERT_EQ(pwrite(fd, &ch, 1, at), 1, "flip");
	}
	close(fd);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.votes_status, HM_VOTES_CORRUPT, "corruption detected");
	ASSERT_EQ(rec.votes_problem.kind, HM_PFILE_VOTES, "in the vote log");
	ASSERT_TRUE(votes_are(&rec, &last) && last < 25, "a valid prefix");
	ASSERT_EQ(rec.status, HM_REC_EMPTY, "the committed log's status is its own");
	hm_recovery_free(&rec);
	/* Appends are refused until a rotation replaces the damaged file. */
	p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));
	hm_recovery_free(&rec);
	ASSERT_ERR(append_vote(p, 26), "refused on a damaged vote log");
	ASSERT_OK(rotate_votes(p, 26), "a rotation replaces it");
	hm_persist_close(p);
	hm_persist_recover(dir, &rec);
	ASSERT_TRUE(rec.votes_status == HM_VOTES_OK && votes_are(&rec, &last) && last == 26,
		    "repaired");
	hm_recovery_free(&rec);
	remove_dir(dir);
}

/* The vote-log writer: appends groups of records, syncs after a random
 * number of groups and reports the last index synced; rotates every 16
 * records (after a sync), and at every start, as the node does. */
static void __attribute__((noreturn)) vote_writer(const char *dir, int fd, uint64_t seed)
{
	struct hm_recovery rec;
	char err[256];
	struct hm_persist_opts opts = { .write_chunk = 1 + (uint32_t)(seed % 16) };
	struct hm_persist *p = hm_persist_open(dir, &opts, &rec, err, sizeof(err));
	uint64_t k = 0, next_rot;

	if (!p || rec.votes_status == HM_VOTES_CORRUPT || !votes_are(&rec, &k))
		_exit(3);
	hm_recovery_free(&rec);
	if (rotate_votes(p, k) < 0)
		_exit(7);
	next_rot = k + 16;
	for (;;) {
		unsigned g = 1 + (unsigned)(hm_test_rand(&seed) % GROUP_MAX);
		uint64_t intent = (k + g) | INTENT;

		if (write(fd, &intent, sizeof(intent)) != sizeof(intent))
			_exit(6);
		for (unsigned i = 0; i < g; i++)
			if (append_vote(p, ++k) < 0)
				_exit(4);
		if (hm_test_rand(&seed) % SYNC_EVERY_MAX)
			continue;
		if (hm_persist_vote_sync(p) < 0)
			_exit(5);
		if (write(fd, &k, sizeof(k)) != sizeof(k))
			_exit(6);
		if (k >= next_rot) {
			if (rotate_votes(p, k) < 0)
				_exit(7);
			next_rot = k + 16;
		}
	}
}

/* kill -9 of a vote-log writer at random moments: every record reported
 * durable comes back, nothing beyond what it set out to write, each record
 * exactly as written, never corruption, at most one vote file left over. */
HM_TEST(votes_crash_recovery_kill9)
{
	const char *r_env = getenv("HM_PERSIST_ROUNDS"), *s_env = getenv("HM_PERSIST_SEED");
	unsigned rounds = r_env ? (unsigned)strtoul(r_env, NULL, 0) : 150;
	uint64_t seed = s_env ? strtoull(s_env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	uint64_t rng = seed | 1, durable = 0, written = 0;
	unsigned torn_rounds = 0;
	int failures = 0;
	char dir[256];

	printf("  vote-log crash test: %u rounds, HM_PERSIST_SEED=%#" PRIx64 "\n", rounds, seed);
	make_dir(dir, sizeof(dir));
	for (unsigned round = 0;
	     !failures && (round < rounds || (rounds >= 50 && !torn_rounds && round < 4 * rounds));
	     round++) {
		struct hm_recovery rec;
		uint64_t v, reported = durable, last = 0;
		int pfd[2], status;
		pid_t pid;

		if (pipe(pfd) < 0)
			abort();
		pid = fork();
		if (pid == 0) {
			close(pfd[0]);
			vote_writer(dir, pfd[1], hm_test_rand(&rng) + round);
		}
		close(pfd[1]);
		/* The random moment counts from the writer's first durable
		 * record, not from the fork: on a loaded machine a writer may
		 * not even be scheduled within 20 ms, and the test would kill
		 * nothing but start-ups. */
		for (bool first = false; !first && read(pfd[0], &v, sizeof(v)) == sizeof(v);) {
			first = !(v & INTENT) && v > reported;
			note_report(v, &written, &reported);
		}
		usleep((useconds_t)(hm_test_rand(&rng) % 20000));
		kill(pid, SIGKILL);
		while (read(pfd[0], &v, sizeof(v)) == sizeof(v))
			note_report(v, &written, &reported);
		close(pfd[0]);
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			printf("  round %u: writer exited by itself (status %#x)\n", round, status);
			failures++;
			break;
		}
		durable = reported;
		hm_persist_recover(dir, &rec);
		if ((rec.votes_status != HM_VOTES_OK &&
		     !(rec.votes_status == HM_VOTES_MISSING && durable == 0)) ||
		    !votes_are(&rec, &last) || last < durable || last > written ||
		    count_files(dir, "votes-") > 2) {
			printf("  round %u: votes %s (%s), last %" PRIu64 ", durable %" PRIu64
			       ", written %" PRIu64 ", %d vote files\n",
			       round, hm_votes_status_name(rec.votes_status),
			       hm_persist_fault_name(rec.votes_problem.fault), last, durable, written,
			       count_files(dir, "votes-"));
			failures++;
		}
		torn_rounds += rec.votes_torn_bytes > 0;
		if (last > durable)
			durable = last;
		hm_recovery_free(&rec);
	}
	printf("  vote-log crash test: %" PRIu64 " records durable at the end, %u rounds left a "
	       "torn record\n", durable, torn_rounds);
	ASSERT_EQ(failures, 0, "rounds with a wrong recovery (replay with the seed above)");
	ASSERT_TRUE(durable > rounds / 4, "the writer made progress");
	ASSERT_TRUE(rounds < 50 || torn_rounds > 0, "some kills landed inside a record");
	remove_dir(dir);
}

/* ---- disk errors ------------------------------------------------------------ */

/* A writer at checkpoint 5, records 6..7 synced, a vote log of records 1..2. */
static struct hm_persist *disk_writer(char *dir, size_t cap)
{
	struct hm_recovery rec;
	struct hm_persist *p;
	char err[256];

	make_dir(dir, cap);
	p = hm_persist_open(dir, NULL, &rec, err, sizeof(err));
	hm_recovery_free(&rec);
	if (!p)
		return NULL;
	for (uint64_t s = 1; s <= 7; s++) {
		if (append_seq(p, s) < 0 || (s == 5 && (hm_persist_sync(p) < 0 ||
							 checkpoint_seq(p, 5) < 0))) {
			hm_persist_close(p);
			return NULL;
		}
	}
	if (hm_persist_sync(p) < 0 || rotate_votes(p, 1) < 0 || append_vote(p, 2) < 0 ||
	    hm_persist_vote_sync(p) < 0) {
		hm_persist_close(p);
		return NULL;
	}
	return p;
}

/* The operations a disk can fail, each as the driver calls it. */
enum disk_op { D_APPEND, D_SYNC, D_CHECKPOINT, D_VOTE_APPEND, D_VOTE_SYNC, D_VOTE_ROTATE, D_OPS };

static int disk_do(struct hm_persist *p, enum disk_op op)
{
	switch (op) {
	case D_APPEND:
		return append_seq(p, 8);
	case D_SYNC:
		return append_seq(p, 8) < 0 ? -2 : hm_persist_sync(p);
	case D_CHECKPOINT:
		return append_seq(p, 8) < 0 || hm_persist_sync(p) < 0 ? -2 : checkpoint_seq(p, 8);
	case D_VOTE_APPEND:
		return append_vote(p, 3);
	case D_VOTE_SYNC:
		return append_vote(p, 3) < 0 ? -2 : hm_persist_vote_sync(p);
	case D_VOTE_ROTATE:
		return rotate_votes(p, 3);
	default:
		return -2;
	}
}

/* Which file the failure names (prefix), per operation and injected kind. */
static const char *disk_file(enum disk_op op, unsigned kind)
{
	switch (op) {
	case D_APPEND:
	case D_SYNC:
		return "log-00000000000000000006.hml";
	case D_CHECKPOINT:
		return kind == HM_PINJ_SYNC ? "checkpoint-00000000000000000008.hmc" /* .tmp */
					    : "checkpoint-00000000000000000008.hmc";
	case D_VOTE_APPEND:
	case D_VOTE_SYNC:
		return "votes-00000000000000000001.hmv";
	default:
		return "votes-00000000000000000003.hmv";
	}
}

static void records_6_to(uint64_t last, struct hm_log_record *r, uint8_t (*b)[300])
{
	for (uint64_t s = 6; s <= last; s++) {
		struct hm_log_record *x = &r[s - 6];

		x->seq = s;
		x->view = view_of(s);
		x->batch = b[s - 6];
		x->batch_len = batch_of(s, x->batch);
		hm_digest(x->batch, x->batch_len, x->digest);
	}
}

static int reset_at_5(struct hm_persist *p, uint64_t last)
{
	struct hm_checkpoint cp = { .seq = 5, .view = view_of(5), .nvotes = 3 };
	struct hm_log_record r[16];
	uint8_t b[16][300];

	cp.snap_len = snap_of(5, snap_buf);
	cp.snap = snap_buf;
	hm_digest(snap_buf, (size_t)cp.snap_len, cp.digest);
	for (uint32_t i = 0; i < 3; i++) {
		cp.votes[i].replica = i;
		cp.votes[i].view = cp.view;
		memset(cp.votes[i].sig, (int)(i + 5), HM_SIG_LEN);
	}
	records_6_to(last, r, b);
	return hm_persist_reset(p, &cp, r, last - 5);
}

/*
 * Every operation that writes, under each injected failure it can meet
 * (write, fsync, rename; EIO and ENOSPC): it fails with that errno, the
 * error names the file, the failed fd is not used again (appends, syncs
 * and checkpoints after a failed log fdatasync are refused), and
 * hm_persist_reset() followed by a vote rotation brings back a directory
 * that recovers exactly the state handed to it.
 */
HM_TEST(disk_errors_reported_and_reset)
{
	static const unsigned kinds[] = { HM_PINJ_WRITE, HM_PINJ_SYNC, HM_PINJ_RENAME };
	static const int errs[] = { EIO, ENOSPC };
	int cases = 0;

	for (int op = 0; op < D_OPS; op++)
		for (size_t k = 0; k < 3; k++)
			for (size_t e = 0; e < 2; e++) {
				unsigned kind = kinds[k];
				/* the checkpoint's own write and fsync come after the
				 * append and sync before it */
				struct hm_persist_inject inj = {
					.ops = kind, .err = errs[e],
					.nth = op == D_CHECKPOINT && kind != HM_PINJ_RENAME ? 2 : 1,
				};
				char dir[256], file[128], what[160];
				struct hm_recovery rec;
				uint64_t errors, last;
				struct hm_persist *p;
				int rc;

				/* appends and syncs never rename */
				if (kind == HM_PINJ_RENAME && op != D_CHECKPOINT && op != D_VOTE_ROTATE)
					continue;
				if (kind == HM_PINJ_SYNC && (op == D_APPEND || op == D_VOTE_APPEND))
					continue;
				/* a sync's own failure is its fdatasync */
				if (kind == HM_PINJ_WRITE && (op == D_SYNC || op == D_VOTE_SYNC))
					continue;
				snprintf(what, sizeof(what), "op %d, kind %u, %s", op, kind,
					 strerror(errs[e]));
				p = disk_writer(dir, sizeof(dir));
				if (!ASSERT_TRUE(p != NULL, what))
					return;
				errors = hm_persist_errors(p);
				ASSERT_EQ(hm_persist_error(p, file, sizeof(file)), 0, "no error yet");
				hm_persist_set_inject(p, &inj);
				rc = disk_do(p, (enum disk_op)op);
				ASSERT_EQ(rc, -1, what);
				ASSERT_EQ(errno, errs[e], what);
				ASSERT_EQ(hm_persist_injected(p), 1, what);
				ASSERT_EQ(hm_persist_errors(p), errors + 1, what);
				ASSERT_EQ(hm_persist_error(p, file, sizeof(file)), errs[e], what);
				ASSERT_STRCONTAINS(file, disk_file((enum disk_op)op, kind), what);
				if (op == D_SYNC) {
					/* never trusted again, even with the disk back */
					ASSERT_EQ(append_seq(p, 9), -1, "append after a failed sync");
					ASSERT_EQ(errno, EIO, "EIO");
					ASSERT_EQ(hm_persist_sync(p), -1, "sync again refused");
					ASSERT_EQ(checkpoint_seq(p, 8), -1, "checkpoint refused");
				}
				if (op == D_VOTE_SYNC) {
					ASSERT_EQ(append_vote(p, 4), -1, "vote append after a failed sync");
					ASSERT_EQ(errno, EROFS, "EROFS");
				}
				cases++;
				/* the way back: a fresh checkpoint, log and vote log */
				ASSERT_OK(reset_at_5(p, 9), what);
				ASSERT_OK(rotate_votes(p, 5), what);
				ASSERT_OK(append_seq(p, 10), "appends continue after the reset");
				ASSERT_OK(hm_persist_sync(p), "sync");
				ASSERT_OK(append_vote(p, 6), "vote appends continue");
				ASSERT_OK(hm_persist_vote_sync(p), "vote sync");
				hm_persist_close(p);
				ASSERT_EQ(count_files(dir, "log-"), 1, "one fresh segment");
				ASSERT_EQ(count_files(dir, "checkpoint-"), 1, "one checkpoint");
				hm_persist_recover(dir, &rec);
				ASSERT_EQ(rec.status, HM_REC_OK, what);
				ASSERT_TRUE(state_is(&rec, 5, 10), what);
				ASSERT_EQ(rec.votes_status, HM_VOTES_OK, what);
				ASSERT_TRUE(votes_are(&rec, &last) && last == 6, "votes 3..6");
				hm_recovery_free(&rec);
				remove_dir(dir);
			}
	ASSERT_EQ(cases, 20, "every combination ran");
}

/* The flag form: every write fails while it is set, the reset included;
 * once cleared the reset succeeds.  The nth form skips the first n-1. */
HM_TEST(disk_error_flag_and_nth)
{
	volatile bool bad = true;
	struct hm_persist_inject inj = { .ops = HM_PINJ_WRITE | HM_PINJ_SYNC | HM_PINJ_RENAME,
					 .while_set = &bad, .err = ENOSPC };
	struct hm_recovery rec;
	struct hm_persist *p;
	char dir[256], file[128];

	p = disk_writer(dir, sizeof(dir));
	if (!ASSERT_TRUE(p != NULL, "writer"))
		return;
	hm_persist_set_inject(p, &inj);
	ASSERT_EQ(append_seq(p, 8), -1, "append fails while set");
	ASSERT_EQ(errno, ENOSPC, "ENOSPC");
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(reset_at_5(p, 7), -1, "reset fails while set");
	ASSERT_EQ(hm_persist_error(p, file, sizeof(file)), ENOSPC, "reported");
	ASSERT_STRCONTAINS(file, "checkpoint-00000000000000000005.hmc", "the checkpoint first");
	bad = false;
	ASSERT_OK(reset_at_5(p, 7), "reset once the flag clears");
	ASSERT_OK(rotate_votes(p, 2), "rotation");
	/* the 3rd write from now fails, and only it */
	inj = (struct hm_persist_inject){ .ops = HM_PINJ_WRITE, .nth = 3 };
	hm_persist_set_inject(p, &inj);
	ASSERT_OK(append_seq(p, 8), "1st");
	ASSERT_OK(append_seq(p, 9), "2nd");
	ASSERT_EQ(append_seq(p, 10), -1, "3rd fails");
	ASSERT_EQ(errno, EIO, "EIO by default");
	ASSERT_OK(append_seq(p, 10), "4th: a failed write is taken back, appends continue");
	ASSERT_OK(hm_persist_sync(p), "sync");
	hm_persist_close(p);
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.status, HM_REC_OK, "ok");
	ASSERT_TRUE(state_is(&rec, 5, 10), "checkpoint 5, records 6..10");
	hm_recovery_free(&rec);
	remove_dir(dir);
}

static void __attribute__((constructor)) init_crypto(void)
{
	if (hm_crypto_init() < 0)
		abort();
}
