/* Random dependent 8-byte loads over an anonymous working set, with MADV_HUGEPAGE or MADV_NOHUGEPAGE.
 *
 * Usage: tlb_random SIZE_MIB N_LOADS huge|nohuge [SEED]
 * Maps SIZE_MIB (+2 MiB to align the start to 2 MiB), applies the madvise, writes one byte per 4 KiB page
 * (so every page is resident before timing), reads AnonHugePages of the range from /proc/self/smaps, then
 * times N_LOADS loads at uniformly random 8-byte-aligned offsets. Each load's address depends on the value
 * the previous load returned (the memory holds zeros, so the sequence is the xorshift sequence), so loads do
 * not overlap: the time per load is a latency, as the simulator charges it.
 * Prints one JSON line; on x86 it adds the raw CPUID TLB leaves (AMD Fn8000_0005/Fn8000_0006, Intel leaf 2).
 * Changes no host setting.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* AnonHugePages (kB) of the smaps entry that starts at addr. */
static long anon_huge_kb(uintptr_t addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = lo <= addr && addr < hi;
        } else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s SIZE_MIB N_LOADS huge|nohuge [SEED]\n", argv[0]);
        return 2;
    }
    size_t size = (size_t)strtoull(argv[1], NULL, 10) << 20;
    long n = strtol(argv[2], NULL, 10);
    int huge = strcmp(argv[3], "huge") == 0;
    uint64_t x = argc > 4 ? strtoull(argv[4], NULL, 10) * 2654435761u + 1 : 88172645463325252ull;
    if (size == 0 || (size & (size - 1)) || n <= 0) {
        fprintf(stderr, "SIZE_MIB must be a power of two, N_LOADS positive\n");
        return 2;
    }
    char *raw = mmap(NULL, size + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) { perror("mmap"); return 1; }
    char *p = (char *)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
    if (madvise(p, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)) { perror("madvise"); return 1; }
    double t0 = now();
    for (size_t off = 0; off < size; off += 4096) p[off] = 0;
    double populate = now() - t0;
    long ahp = anon_huge_kb((uintptr_t)p);

    const uint64_t *w = (const uint64_t *)p;
    uint64_t mask = size / 8 - 1, v = 0;
    t0 = now();
    for (long i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;  /* xorshift64 */
        v = w[(x ^ v) & mask];                    /* v is 0: the address depends on the last load */
    }
    double dt = now() - t0;

    printf("{\"engine\": \"linux\", \"mode\": \"%s\", \"size_mib\": %zu, \"loads\": %ld, \"seconds\": %.6f, "
           "\"ns_per_load\": %.2f, \"populate_s\": %.3f, \"anon_huge_kb\": %ld, \"check\": %lu",
           huge ? "huge" : "nohuge", size >> 20, n, dt, dt * 1e9 / n, populate, ahp, (unsigned long)v);
#if defined(__x86_64__)
    unsigned a, b, c, d, vendor[3];
    __cpuid(0, a, vendor[0], vendor[2], vendor[1]);
    printf(", \"cpuid_vendor\": \"%.12s\"", (char *)vendor);
    unsigned leaves[] = {0x80000005u, 0x80000006u, 2u};
    for (int i = 0; i < 3; i++) {
        __cpuid(leaves[i], a, b, c, d);
        printf(", \"cpuid_%x\": [\"0x%08x\", \"0x%08x\", \"0x%08x\", \"0x%08x\"]", leaves[i], a, b, c, d);
    }
#endif
    printf("}\n");
    munmap(raw, size + (2 << 20));
    return 0;
}
