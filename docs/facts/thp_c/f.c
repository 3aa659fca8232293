/* Item f: placement of anonymous mappings (is the start 2 MiB-aligned? what gap?).
 * Usage: ./f [tries]   -- prints, for each case, the addresses of `tries` consecutive mmaps
 * (kept mapped while the case runs), whether each is 2 MiB-aligned, the gap between the new
 * mapping's end and the next mapping above it (from /proc/self/maps), and whether the new
 * mapping was merged into a neighbouring VMA. madvise(MADV_HUGEPAGE) is done after mmap
 * in the "+madv" cases (so it cannot influence placement). */
#include "thp_common.h"
/* Read all VMA ranges from /proc/self/maps. */
static int read_maps(unsigned long *lo, unsigned long *hi, int max) {
    FILE *f = fopen("/proc/self/maps", "r"); char line[512]; int n = 0;
    while (n < max && fgets(line, sizeof line, f)) if (sscanf(line, "%lx-%lx", &lo[n], &hi[n]) == 2) n++;
    fclose(f); return n;
}
static unsigned long BL[4096], BH[4096], AL[4096], AH[4096];
static void one(const char *name, size_t len, int flags, int madv, int hint, int tries) {
    char *m[64]; int aligned = 0;
    printf("== %-34s len=%6zu KiB:", name, len / KB);
    for (int i = 0; i < tries; i++) {
        void *h = hint ? (void *)(0x7e0000000000UL + (unsigned long)i * 64 * MB + 4 * KB) : NULL;
        int nb = read_maps(BL, BH, 4096);
        m[i] = mmap(h, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
        if (m[i] == MAP_FAILED) { perror("mmap"); exit(1); }
        int na = read_maps(AL, AH, 4096);   /* before madvise: merging as mmap left it */
        if (madv) madvise(m[i], len, MADV_HUGEPAGE);
        unsigned long s0 = (unsigned long)m[i], e0 = s0 + len, nlo = ~0UL; int merged = 0;
        for (int k = 0; k < nb; k++) if (BL[k] >= e0 && BL[k] < nlo) nlo = BL[k];
        for (int k = 0; k < na; k++) if (AL[k] <= s0 && AH[k] > s0) merged = (AL[k] != s0 || AH[k] != e0);
        int al = (s0 % HPAGE) == 0; aligned += al;
        long gap_above = (long)(nlo - e0);
        printf("\n     %p %s %%2M=%4lu KiB gap_above=%ld KiB%s", m[i], al ? "ALIGNED" : "unaligned",
               ((unsigned long)m[i] % HPAGE) / KB, gap_above / (long)KB, merged ? " (mmap merged it with a neighbour VMA)" : "");
    }
    printf("\n   -> %d of %d aligned\n", aligned, tries);
    for (int i = 0; i < tries; i++) munmap(m[i], len);
}
int main(int argc, char **argv) {
    int tries = argc > 1 ? atoi(argv[1]) : 3;
    size_t lens[] = { 2 * MB, 4 * MB, 6 * MB, 3 * MB, 2 * MB + 4 * KB, 1 * MB, 8 * MB - 4 * KB, 64 * MB };
    for (int mv = 0; mv < 2; mv++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            one(mv ? "private anon +madv(HUGEPAGE)" : "private anon", lens[i], MAP_PRIVATE, mv, 0, tries);
    size_t sl[] = { 2 * MB, 4 * MB };
    for (int mv = 0; mv < 2; mv++)
        for (size_t i = 0; i < 2; i++)
            one(mv ? "shared anon +madv(HUGEPAGE)" : "shared anon", sl[i], MAP_SHARED, mv, 0, tries);
    one("private anon, hint addr (not aligned)", 2 * MB, MAP_PRIVATE, 0, 1, tries);
    one("private anon MAP_NORESERVE", 4 * MB, MAP_PRIVATE | MAP_NORESERVE, 0, 0, tries);
    one("private anon MAP_STACK", 4 * MB, MAP_PRIVATE | MAP_STACK, 0, 0, tries);
    one("private anon MAP_GROWSDOWN", 4 * MB, MAP_PRIVATE | MAP_GROWSDOWN, 0, 0, tries);
    return 0;
}
