/* SPDX-License-Identifier: MIT */
/* The clocks the drivers read (the core and the services read none). */
#ifndef HM_CLOCK_H
#define HM_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t hm_clock_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Monotonic microseconds: timers, deadlines, latencies. */
static inline uint64_t hm_mono_us(void)
{
	return hm_clock_us(CLOCK_MONOTONIC);
}

/* Wall-clock microseconds: request timestamps, agreed times. */
static inline uint64_t hm_wall_us(void)
{
	return hm_clock_us(CLOCK_REALTIME);
}

#endif /* HM_CLOCK_H */
