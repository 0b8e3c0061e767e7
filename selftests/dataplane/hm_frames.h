/* SPDX-License-Identifier: MIT */
/*
 * Test frames for the BPF selftests: a HyperMesh datagram wrapped in
 * Ethernet [+ 802.1Q] + IPv4 [+ options] or IPv6 + UDP, every length field
 * consistent, addressed to the replica under test.  Frames only ever go to
 * BPF_PROG_TEST_RUN; the addresses are from the 198.18.0.0/15 test range.
 */
#ifndef HM_FRAMES_H
#define HM_FRAMES_H

#include <linux/if_ether.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define FRAME_MAX 2048

/* A HyperMesh datagram before framing. */
struct dgram {
	uint8_t b[FRAME_MAX];
	size_t len;
};

struct frame {
	uint8_t buf[FRAME_MAX + 256];
	size_t len;
	size_t l3, l4, hm; /* offsets of the IP, UDP and HyperMesh headers */
	bool v6;
};

/* Where a frame comes from. */
struct src {
	int family;
	uint8_t addr[16];
	uint16_t port; /* host order */
};

enum { FL_OPTS = 1, FL_VLAN = 2 };

/* The replica under test. */
static const uint8_t self_v4[4] = { 198, 18, 0, 11 };
static const uint8_t self_v6[16] = { 0xfd, [15] = 0x11 };

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The Internet checksum (RFC 1071) of an IPv4 header. */
static inline uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Frame dg (dlen bytes) from s to the replica under test, UDP port dport;
 * fl adds a VLAN tag (FL_VLAN) or 12 bytes of IPv4 options (FL_OPTS). */
static inline void mkframe(struct frame *f, const struct src *s, unsigned fl, uint16_t dport,
			   const uint8_t *dg, size_t dlen)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	uint8_t *p = f->buf;
	size_t n = 12, hl;

	memcpy(p, macs, 12);
	if (fl & FL_VLAN) {
		put16(p + n, ETH_P_8021Q);
		put16(p + n + 2, 42);
		n += 4;
	}
	f->v6 = s->family == AF_INET6;
	put16(p + n, f->v6 ? ETH_P_IPV6 : ETH_P_IP);
	n += 2;
	f->l3 = n;
	if (f->v6) {
		memset(p + n, 0, 40);
		p[n] = 0x60;
		put16(p + n + 4, (uint16_t)(8 + dlen));
		p[n + 6] = IPPROTO_UDP;
		p[n + 7] = 64;
		memcpy(p + n + 8, s->addr, 16);
		memcpy(p + n + 24, self_v6, 16);
		n += 40;
	} else {
		hl = 20 + ((fl & FL_OPTS) ? 12 : 0);
		memset(p + n, 0, hl);
		p[n] = (uint8_t)(0x40 | hl / 4);
		put16(p + n + 2, (uint16_t)(hl + 8 + dlen));
		put16(p + n + 4, 1);
		p[n + 8] = 64;
		p[n + 9] = IPPROTO_UDP;
		memcpy(p + n + 12, s->addr, 4);
		memcpy(p + n + 16, self_v4, 4);
		memset(p + n + 20, 1 /* NOP */, hl - 20);
		put16(p + n + 10, ip_checksum(p + n, hl));
		n += hl;
	}
	f->l4 = n;
	put16(p + n, s->port);
	put16(p + n + 2, dport);
	put16(p + n + 4, (uint16_t)(8 + dlen));
	put16(p + n + 6, 0);
	n += 8;
	f->hm = n;
	memcpy(p + n, dg, dlen);
	f->len = n + dlen;
}

#endif /* HM_FRAMES_H */
