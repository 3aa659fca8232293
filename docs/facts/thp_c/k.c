/* Item k: random loads over a 4 GiB private anonymous working set with 4 KiB pages
 * (MADV_NOHUGEPAGE) vs THP (MADV_HUGEPAGE). Wall time per load for
 *   indep: independent loads (addresses from xorshift, limited by miss throughput)
 *   chain: dependent loads (next address depends on the loaded value: latency-bound)
 * Usage: ./k [GiB=4] [loads_millions=20] [huge: 0|1]  */
#include "thp_common.h"
static double cpu_ns(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static inline uint64_t xs(uint64_t *s) { uint64_t x = *s; x ^= x << 13; x ^= x >> 7; x ^= x << 17; return *s = x; }
int main(int argc, char **argv) {
    size_t gib = argc > 1 ? atol(argv[1]) : 4; long nl = (argc > 2 ? atol(argv[2]) : 20) * 1000000L; int huge = argc > 3 ? atoi(argv[3]) : 0;
    size_t len = gib << 30;
    char *p = map_aligned(len);
    must(madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE), "madvise");
    snap(&S[0]);
    double t0 = now_ns();
    for (size_t o = 0; o < len; o += PG) p[o] = 1;   /* the byte read back by the chain is 1 */
    double t1 = now_ns();
    snap(&S[1]);
    printf("== k) %zu GiB %s: touch %.2f s; ", gib, huge ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE", (t1 - t0) / 1e9);
    delta("touch", &S[0], &S[1]);
    printf("   AnonHugePages=%lld kB, VmPTE=%lld kB\n", smaps_field(p, "AnonHugePages"), status_kb("VmPTE"));
    uint64_t s = 88172645463325252ULL, mask = (len - 1) & ~(uint64_t)63, acc = 0;
    double c0 = cpu_ns(); t0 = now_ns();
    for (long i = 0; i < nl; i++) acc += p[xs(&s) & mask];
    t1 = now_ns(); double c1 = cpu_ns();
    printf("   indep: %ld loads: wall %.1f ns/load, cpu %.1f ns/load (acc %lu)\n", nl, (t1 - t0) / nl, (c1 - c0) / nl, (unsigned long)acc);
    fflush(stdout);
    uint64_t v = 1; s = 88172645463325252ULL;
    c0 = cpu_ns(); t0 = now_ns();
    for (long i = 0; i < nl; i++) v = p[(xs(&s) ^ v) & mask]; /* v is 0 or 1: the next address depends on it */
    t1 = now_ns(); c1 = cpu_ns();
    printf("   chain: %ld loads: wall %.1f ns/load, cpu %.1f ns/load (v %lu)\n", nl, (t1 - t0) / nl, (c1 - c0) / nl, (unsigned long)v);
    /* same loop over a 1 MiB slice (TLB- and L2-resident): the non-TLB baseline */
    uint64_t m2 = (MB - 1) & ~(uint64_t)63; v = 1;
    c0 = cpu_ns(); for (long i = 0; i < nl; i++) v = p[(xs(&s) ^ v) & m2]; c1 = cpu_ns();
    printf("   chain over a 1 MiB slice: cpu %.1f ns/load (v %lu)\n", (c1 - c0) / nl, (unsigned long)v);
    munmap(p, len);
    return 0;
}
