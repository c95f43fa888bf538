/*
 * clock.c - the trace clock: the TSC when the CPU says it is invariant
 * (constant_tsc and nonstop_tsc in /proc/cpuinfo), the arm64 virtual
 * counter, else CLOCK_MONOTONIC.  The TSC is calibrated against
 * CLOCK_MONOTONIC over a few milliseconds; the header stores both anchors
 * and the ns-per-tick multiplier so readers convert without guessing.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static uint64_t mono_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Does /proc/cpuinfo list both flags? */
static int tsc_invariant(void)
{
#if defined(__x86_64__) || defined(__i386__)
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (f == NULL)
        return 0;
    char line[4096];
    int ok = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        ok = strstr(line, " constant_tsc") != NULL &&
             strstr(line, " nonstop_tsc") != NULL;
        break;
    }
    fclose(f);
    return ok;
#elif defined(__aarch64__)
    return 1;
#else
    return 0;
#endif
}

/* Reads the TSC and CLOCK_MONOTONIC as close together as possible: the
 * pair with the smallest bracket out of a few tries. */
static void sample(uint64_t *tsc, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = cs__tr_now();
        uint64_t n = mono_ns(CLOCK_MONOTONIC);
        uint64_t b = cs__tr_now();
        if (b - a < best) {
            best = b - a;
            *tsc = a + (b - a) / 2;
            *ns = n;
        }
    }
}

uint64_t cs__tr_ticks_scale(uint64_t ticks, uint64_t mult)
{
    uint64_t hi = ticks >> 32, lo = ticks & 0xffffffffu;
    return hi * mult + ((lo * (mult & 0xffffffffu)) >> 32) + lo * (mult >> 32);
}

void cs__tr_clock_calibrate(cs__tr_clock_cal *cal, int force_monotonic)
{
    memset(cal, 0, sizeof *cal);
    cal->tsc = !force_monotonic && tsc_invariant();
    cs__tr_g.clock_tsc = cal->tsc;
    if (!cal->tsc) {
        cal->ns_anchor = mono_ns(CLOCK_MONOTONIC);
        cal->realtime_anchor = mono_ns(CLOCK_REALTIME);
        cal->tsc_anchor = cal->ns_anchor;
        cal->ns_mult = (uint64_t)1 << 32;
        cal->tick_hz = 1000000000u;
        return;
    }
    uint64_t t0, n0, t1, n1;
    sample(&t0, &n0);
    cal->realtime_anchor = mono_ns(CLOCK_REALTIME);
    struct timespec wait = {0, 5 * 1000 * 1000};
    nanosleep(&wait, NULL);
    sample(&t1, &n1);
    if (t1 <= t0 || n1 <= n0) { /* a broken counter: fall back */
        cs__tr_clock_calibrate(cal, 1);
        return;
    }
    /* ns per tick in 32.32: (dn << 32) / dt; dn is ~5e6 so no overflow. */
    cal->ns_mult = ((n1 - n0) << 32) / (t1 - t0);
    cal->tick_hz = (uint64_t)((double)(t1 - t0) * 1e9 / (double)(n1 - n0));
    cal->tsc_anchor = t0;
    cal->ns_anchor = n0;
}
