// SPDX-License-Identifier: MIT
/*
 * The Ed25519 memo (sig_memo.h): two direct-mapped tables, one of
 * signatures made and one of verifications passed, each entry tagged with
 * the BLAKE2b-256 of its whole input.  A newer entry simply replaces an
 * older one at its index: the memo only ever saves work, so losing an entry
 * costs one more Ed25519 operation, never a different result.
 */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "common/sig_memo.h"

_Static_assert(HM_SIG_MEMO_SECKEY_LEN == crypto_sign_SECRETKEYBYTES, "secret key size");

/* 4096 signatures (96 bytes each) and 8192 verifications (32 bytes each):
 * about 650 KiB, enough for a window of votes, checkpoints and the
 * VIEW-CHANGE certificates of a few views. */
#define SIGNED_SLOTS 4096
#define VERIFIED_SLOTS 8192

struct signed_entry {
	uint8_t tag[HM_DIGEST_LEN];
	uint8_t sig[HM_SIG_LEN];
};

static struct signed_entry signed_tab[SIGNED_SLOTS];
static uint8_t verified_tab[VERIFIED_SLOTS][HM_DIGEST_LEN];
static uint64_t lookups, hits;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Domain bytes keep a signing key from ever matching a verifying key. */
enum { MEMO_SIGN = 'S', MEMO_VERIFY = 'V' };

static void make_key(struct hm_sig_memo_key *k, uint8_t domain, const uint8_t *key,
		     size_t key_len, const uint8_t *sig, const void *msg, size_t len)
{
	crypto_generichash_state st;

	/* The domain fixes the key's length, sig has a fixed length and msg
	 * comes last: the encoding is unambiguous without length prefixes. */
	crypto_generichash_init(&st, NULL, 0, HM_DIGEST_LEN);
	crypto_generichash_update(&st, &domain, 1);
	crypto_generichash_update(&st, key, key_len);
	if (sig)
		crypto_generichash_update(&st, sig, HM_SIG_LEN);
	crypto_generichash_update(&st, msg, len);
	crypto_generichash_final(&st, k->tag, HM_DIGEST_LEN);
}

void hm_sig_memo_key_sign(struct hm_sig_memo_key *k, const uint8_t sk[HM_SIG_MEMO_SECKEY_LEN],
			  const void *msg, size_t len)
{
	make_key(k, MEMO_SIGN, sk, HM_SIG_MEMO_SECKEY_LEN, NULL, msg, len);
}

void hm_sig_memo_key_verify(struct hm_sig_memo_key *k, const uint8_t pk[HM_PUBKEY_LEN],
			    const uint8_t sig[HM_SIG_LEN], const void *msg, size_t len)
{
	make_key(k, MEMO_VERIFY, pk, HM_PUBKEY_LEN, sig, msg, len);
}

static size_t slot_of(const struct hm_sig_memo_key *k, size_t slots)
{
	uint64_t v;

	memcpy(&v, k->tag, sizeof(v));
	return (size_t)(v % slots);
}

bool hm_sig_memo_signed(const struct hm_sig_memo_key *k, uint8_t sig[HM_SIG_LEN])
{
	struct signed_entry *e = &signed_tab[slot_of(k, SIGNED_SLOTS)];
	bool hit;

	pthread_mutex_lock(&lock);
	lookups++;
	hit = memcmp(e->tag, k->tag, HM_DIGEST_LEN) == 0;
	if (hit) {
		memcpy(sig, e->sig, HM_SIG_LEN);
		hits++;
	}
	pthread_mutex_unlock(&lock);
	return hit;
}

void hm_sig_memo_remember_signature(const struct hm_sig_memo_key *k,
				    const uint8_t sig[HM_SIG_LEN])
{
	struct signed_entry *e = &signed_tab[slot_of(k, SIGNED_SLOTS)];

	pthread_mutex_lock(&lock);
	memcpy(e->tag, k->tag, HM_DIGEST_LEN);
	memcpy(e->sig, sig, HM_SIG_LEN);
	pthread_mutex_unlock(&lock);
}

bool hm_sig_memo_verified(const struct hm_sig_memo_key *k)
{
	uint8_t *t = verified_tab[slot_of(k, VERIFIED_SLOTS)];
	bool hit;

	pthread_mutex_lock(&lock);
	lookups++;
	hit = memcmp(t, k->tag, HM_DIGEST_LEN) == 0;
	hits += hit;
	pthread_mutex_unlock(&lock);
	return hit;
}

void hm_sig_memo_remember_verified(const struct hm_sig_memo_key *k)
{
	pthread_mutex_lock(&lock);
	memcpy(verified_tab[slot_of(k, VERIFIED_SLOTS)], k->tag, HM_DIGEST_LEN);
	pthread_mutex_unlock(&lock);
}

void hm_sig_memo_stats(uint64_t *l, uint64_t *h)
{
	pthread_mutex_lock(&lock);
	*l = lookups;
	*h = hits;
	pthread_mutex_unlock(&lock);
}
