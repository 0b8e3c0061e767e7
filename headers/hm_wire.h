/* SPDX-License-Identifier: MIT */
/*
 * HyperMesh wire format: the one definition shared by the BPF programs in
 * kern/ and the userspace controller in user/.  docs/wire-format.md documents
 * every field; keep the two in step.
 *
 * Every HyperMesh message is one UDP datagram:
 *
 *   offset  size  field
 *        0     4  magic        "HMSH" (0x484d5348), big-endian
 *        4     1  version      HM_VERSION
 *        5     1  type         enum hm_msg_type
 *        6     2  flags        HM_FLAG_*; other bits must be 0 (not signed)
 *        8     4  sender       replica id (0..n-1) or client id
 *       12     4  payload_len  bytes of payload after the fixed header
 *       16     8  view         PBFT view (0 where a type has none)
 *       24     8  seq          sequence number, or a client's timestamp
 *       32    32  digest       BLAKE2b-256 of the payload, or the voted digest
 *       64    64  sig          Ed25519 over bytes [0, 64) with flags zero
 *      128     8  mac          SipHash-2-4 over bytes [0, 128), per-link key
 *      136     n  payload      payload_len bytes
 *
 * Integer fields are big-endian (network order).
 *
 * Why the signature and the MAC live in the fixed header: a BPF program can
 * check both at constant offsets over a constant 128 bytes, with no loop over
 * a variable-length payload and no access past the first IP fragment.  The
 * payload is bound to the header through `digest`, which the receiver checks
 * before it uses the payload, so header-only authentication loses nothing.
 * Because the MAC covers the signature, a message whose MAC verifies but whose
 * signature does not is proof that the sender itself produced the bad
 * signature (nobody on the path can have altered it).
 */
#ifndef HM_WIRE_H
#define HM_WIRE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HM_MAGIC 0x484d5348u /* "HMSH" */
/* The format version a message's type is at: every type is at HM_VERSION
 * except REPLY, at HM_REPLY_VERSION since its payload names the request
 * it answers (2) and carries a batch proof instead of a header signature
 * (3) (docs/wire-format.md, "Versions").  The other types kept 1 so
 * that what replicas persist (signed headers, batches of requests) stays
 * readable across the change. */
#define HM_VERSION 1
#define HM_REPLY_VERSION 3
#define HM_TYPE_VERSION(type) ((type) == 5 /* HM_MSG_REPLY */ ? HM_REPLY_VERSION : HM_VERSION)

#define HM_DIGEST_LEN 32
#define HM_SIG_LEN 64
#define HM_MAC_LEN 8
#define HM_PUBKEY_LEN 32

#define HM_SIGNED_LEN 64   /* bytes [0, 64) are signed */
#define HM_MACED_LEN 128   /* bytes [0, 128) are MACed */
#define HM_HDR_LEN 136     /* fixed header, payload follows */

#define HM_OFF_SENDER 8
#define HM_OFF_VIEW 16
#define HM_OFF_SEQ 24
#define HM_OFF_DIGEST 32
#define HM_OFF_SIG 64
#define HM_OFF_MAC 128

/* Largest datagram HyperMesh accepts (IPv4 UDP maximum payload). */
#define HM_MAX_DATAGRAM 65507
#define HM_DEFAULT_PORT 7000

/* Replica ids are 0..n-1 with n <= 32 (n = 3f+1 = 31 at the largest f,
 * 10), so a u32 bitmap (hm_voters_t) covers every voter.  HM_MAX_REPLICAS
 * stays a power of two: BPF code masks voter ids with HM_MAX_REPLICAS - 1. */
#define HM_MAX_REPLICAS 32
#define HM_MAX_FAULTY 10
typedef __u32 hm_voters_t;
/* The bitmap of every id below n (1u << 32 is undefined, hence the test). */
#define HM_ALL_VOTERS(n) ((n) >= 32 ? 0xffffffffu : (1u << (n)) - 1u)

/* Checkpoints a replica tracks at once: the window may hold at most this
 * many minus one checkpoint intervals. */
#define HM_MAX_LIVE_CHECKPOINTS 16

enum hm_msg_type {
	HM_MSG_REQUEST = 1,      /* client -> replicas: seq = client timestamp */
	HM_MSG_PRE_PREPARE = 2,  /* primary -> backups: payload = batch */
	HM_MSG_PREPARE = 3,      /* replica -> replicas: digest = batch digest */
	HM_MSG_COMMIT = 4,       /* replica -> replicas: digest = batch digest */
	HM_MSG_REPLY = 5,        /* replica -> client: seq = request timestamp */
	HM_MSG_CHECKPOINT = 6,   /* replica -> replicas: state digest at seq */
	HM_MSG_VIEW_CHANGE = 7,  /* reserved for view changes */
	HM_MSG_NEW_VIEW = 8,     /* reserved for view changes */
	HM_MSG_STATE_REQUEST = 9,/* reserved for state transfer */
	HM_MSG_STATE_CHUNK = 10, /* reserved for state transfer */
	HM_MSG_STATUS = 11,      /* replica -> replicas: seq = last executed */
	HM_MSG_EVIDENCE = 12,    /* replica -> replicas: payload = equivocation proof */
	HM_MSG_VOUCH = 13,       /* replica -> replicas: payload = batch of requests it holds
				  * authentic (unsigned, MAC only; docs/protocol.md) */
	HM_MSG_TYPE_MAX = 13,
};

/* The sender sends this message again because it has not yet seen the slot
 * complete; a peer that has may answer with its own messages for the slot.
 * Flags are a per-link hint: the MAC covers them, the signature does not
 * (it is computed with flags zero), so a retransmitted message carries the
 * original's signature and a stored signature verifies without its flags. */
#define HM_FLAG_RETRANSMIT 0x0001
/* Link layer (user/common/link_crypt.h, docs/wire-format.md "Sealed
 * payloads"): the payload on the wire is sealed with the link's AEAD key
 * (XChaCha20-Poly1305, nonce first, tag last, the header bytes [0, 128) as
 * associated data), and/or zstd-compressed (u32 length, then a zstd frame).
 * payload_len is the wire length; the receiver restores the plain one (which
 * the signature covers) before the core sees the message.  Only on replica
 * to replica messages with a payload; the MAC covers these bits. */
#define HM_FLAG_ENCRYPTED 0x0002
#define HM_FLAG_COMPRESSED 0x0004
#define HM_FLAGS_KNOWN (HM_FLAG_RETRANSMIT | HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED)

struct hm_hdr {
	__be32 magic;
	__u8 version;
	__u8 type;
	__be16 flags;
	__be32 sender;
	__be32 payload_len;
	__be64 view;
	__be64 seq;
	__u8 digest[HM_DIGEST_LEN];
	__u8 sig[HM_SIG_LEN];
	__u8 mac[HM_MAC_LEN];
} __attribute__((packed));

/*
 * Payload layouts (all integers big-endian):
 *
 * REQUEST       op bytes, interpreted by the replicated service.
 * PRE-PREPARE   batch: u32 count, then count times { u32 len, len bytes of a
 *               complete REQUEST message (header with its mac field zeroed,
 *               then its payload) }.  count = 0 is the null request.
 * PREPARE       empty; digest = the batch digest voted for.
 * COMMIT        empty; digest = the batch digest voted for.
 * CHECKPOINT    empty; seq = the checkpoint's sequence number, digest = the
 *               service's state digest after executing it.
 * STATUS        empty; seq = the sender's last executed sequence number,
 *               digest zero.  Peers that are further answer with their
 *               messages for the slots the sender is missing.
 * REPLY         (version HM_REPLY_VERSION = 3) the batch proof: u16 size
 *               (0: none, and nothing more of it follows), u16 index, u8
 *               path length, the path (32 bytes each), 32 root, 64 Ed25519
 *               signature over the batch statement (user/common/reply_proof.h);
 *               then the body: u32 client id, u64 sequence number the request
 *               executed at (0 in a refusal), 32 bytes: the digest of the
 *               request answered (its header's digest), u8 status (enum
 *               hm_reply_status), then the service's result bytes (none in a
 *               refusal).  The header's sig field is zero: a REPLY is
 *               MAC'd per link and signed only through its batch's root.
 * EVIDENCE      an equivocation proof (user/core/evidence.h, 264 bytes): two
 *               conflicting signed headers of one replica; view = the
 *               sender's view, seq 0, digest = BLAKE2b of the payload.  Sent
 *               once by the replica that caught it, never forwarded.
 */
/* The body's fixed part (client, exec_seq, request digest, status). */
#define HM_REPLY_PREFIX_LEN 45

/* What a REPLY says about the request it names. */
enum hm_reply_status {
	HM_REPLY_RESULT = 0,   /* executed at exec_seq; the result follows */
	/* Refusals, executing nothing (exec_seq 0, no result): */
	HM_REPLY_CONFLICT = 1, /* another request executed at this timestamp */
	HM_REPLY_STALE = 2,    /* the timestamp is at or below the client's last
				* executed one and this replica no longer holds
				* what executed at it */
	HM_REPLY_STATUS_MAX = 2,
};

/* Why a message was refused: one counter each, per sender, in both the
 * userspace pre-filter (socket mode) and the XDP program (xdp mode). */
enum hm_drop_reason {
	HM_DROP_BLOCKED = 0,      /* sender is in the blocklist */
	HM_DROP_TRUNCATED,        /* shorter than the fixed header */
	HM_DROP_BAD_MAGIC,        /* wrong magic or version */
	HM_DROP_BAD_TYPE,         /* unknown message type, or unknown flags */
	HM_DROP_BAD_LENGTH,       /* payload_len disagrees with the datagram */
	HM_DROP_OVERSIZE,         /* larger than max_message_size */
	HM_DROP_UNKNOWN_SENDER,   /* sender id not a member or client */
	HM_DROP_BAD_ADDRESS,      /* source address/port not bound to the id */
	HM_DROP_BAD_MAC,          /* per-link SipHash-2-4 MAC did not verify */
	HM_DROP_BAD_VIEW,         /* normal-case message for another view */
	HM_DROP_OUT_OF_WINDOW,    /* sequence outside (h, h + L] */
	HM_DROP_NONCANONICAL_SIG, /* Ed25519 S not below the group order */
	HM_DROP_RATE_LIMITED,     /* sender over its token bucket */
	HM_DROP_BAD_DIGEST,       /* payload does not hash to digest */
	HM_DROP_BAD_SIGNATURE,    /* Ed25519 signature did not verify */
	HM_DROP_MALFORMED,        /* payload does not parse for its type */
	HM_DROP_STALE,            /* replayed or stale (old timestamp, old vote) */
	HM_DROP_DUPLICATE,        /* duplicate vote, absorbed */
	HM_DROP_EQUIVOCATION,     /* contradicts the sender's earlier message */
	/* link layer (userspace only; XDP never opens payloads) */
	HM_DROP_BAD_SEAL,         /* AEAD tag did not verify, or too short */
	HM_DROP_NOT_ENCRYPTED,    /* plaintext payload, encryption_required */
	HM_DROP_BAD_COMPRESSION,  /* compressed payload does not decompress */
	HM_DROP_INFLATED_OVERSIZE,/* decompressed beyond max_message_size */
	HM_DROP_REASON_MAX,
};

/* Not a drop reason: the datagram passed every check (the XDP program's
 * verdicts and the vote-slot rules of hm_vote_slot.h). */
#define HM_ACCEPT HM_DROP_REASON_MAX

#endif /* HM_WIRE_H */
