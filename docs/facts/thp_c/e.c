/* Item e: splitting a PMD-mapped THP.
 * Usage: ./e OP [wait_seconds] [dropcaches]
 *   OP: munmap4k | mprotect4k | dontneed4k | dontneed2m | munmapfirst4k | dontneedfirst4k
 *       | mprotect2m | munmap2m | dontneed_cross (4 KiB..2 MiB+4 KiB range over 2 THPs)
 * 4 MiB 2 MiB-aligned MADV_HUGEPAGE region, written fully (2 THPs), then OP at page 100
 * of the first THP (or page 0 for *first*). Then: touch (write) every page still mapped and
 * writable; then optionally sleep and/or 'echo 2 > drop_caches' (runs all shrinkers, the
 * deferred-split one included) and report again. */
#include "thp_common.h"
#define LEN (4 * MB)
int main(int argc, char **argv) {
    const char *op = argc > 1 ? argv[1] : "dontneed4k";
    int wait_s = argc > 2 ? atoi(argv[2]) : 0;
    int drop = argc > 3 ? atoi(argv[3]) : 0;
    snap(&S[7]); smaps_of(main, 0); layout((char *)main, PG); snap(&S[7]);
    char *p = map_aligned(LEN);
    must(madvise(p, LEN, MADV_HUGEPAGE), "madvise");
    if (getenv("SPARSE")) { for (size_t o = 0; o < LEN; o += HPAGE) p[o] = 1; } else touch_w(p, LEN); /* SPARSE: one write per 2 MiB */
    printf("== e) %s: 4 MiB aligned MADV_HUGEPAGE written (%p)\n", op, p);
    layout(p, LEN);
    printf("    VmPTE=%lld kB AnonHugePages(sum)=%lld Rss(sum)=%lld\n", status_kb("VmPTE"),
           smaps_sum(p, LEN, "AnonHugePages"), smaps_sum(p, LEN, "Rss"));
    size_t off = strstr(op, "first") ? 0 : 100 * PG;
    char *hole = p + off; size_t hlen = PG; int rw_skip = 0; /* pages not to write after */
    snap(&S[0]);
    if (!strcmp(op, "munmap4k") || !strcmp(op, "munmapfirst4k")) { must(munmap(hole, PG), "munmap"); rw_skip = 1; }
    else if (!strcmp(op, "mprotect4k")) { must(mprotect(hole, PG, PROT_READ), "mprotect"); rw_skip = 1; }
    else if (!strcmp(op, "dontneed4k") || !strcmp(op, "dontneedfirst4k")) must(madvise(hole, PG, MADV_DONTNEED), "madvise");
    else if (!strcmp(op, "dontneed2m")) { hole = p; hlen = HPAGE; must(madvise(p, HPAGE, MADV_DONTNEED), "madvise"); }
    else if (!strcmp(op, "munmap2m")) { hole = p; hlen = HPAGE; must(munmap(p, HPAGE), "munmap"); rw_skip = 1; }
    else if (!strcmp(op, "mprotect2m")) { hole = p; hlen = HPAGE; must(mprotect(p, HPAGE, PROT_READ), "mprotect"); rw_skip = 1; }
    else if (!strcmp(op, "dontneed_cross")) { hole = p + PG; hlen = HPAGE; must(madvise(hole, hlen, MADV_DONTNEED), "madvise"); }
    else if (!strcmp(op, "free4k")) must(madvise(hole, PG, MADV_FREE), "madvise");
    else { fprintf(stderr, "bad op\n"); return 2; }
    snap(&S[1]); delta(op, &S[0], &S[1]);
    layout(p, LEN);
    printf("    after op: VmPTE=%lld kB AnonHugePages(sum)=%lld Rss(sum)=%lld\n", status_kb("VmPTE"),
           smaps_sum(p, LEN, "AnonHugePages"), smaps_sum(p, LEN, "Rss"));
    smaps_of(p + LEN - PG, 0);
    /* touch the rest: write every page except the removed/RO range; read the RO range */
    snap(&S[0]);
    for (size_t o = 0; o < LEN; o += PG) {
        if (p + o >= hole && p + o < hole + hlen) { if (!strncmp(op, "mprotect", 8)) sink = p[o]; continue; }
        if (!getenv("SPARSE")) p[o] = 2; else sink = p[o];
    }
    snap(&S[1]); delta("touch rest (write; RO range read; unmapped skipped)", &S[0], &S[1]);
    if (!rw_skip && !getenv("NOREFILL")) { snap(&S[0]); for (size_t o = 0; o < hlen; o += PG) hole[o] = 3; snap(&S[1]); delta("write the op range", &S[0], &S[1]); }
    layout(p, LEN);
    printf("    VmPTE=%lld kB AnonHugePages(sum)=%lld Rss(sum)=%lld\n", status_kb("VmPTE"),
           smaps_sum(p, LEN, "AnonHugePages"), smaps_sum(p, LEN, "Rss"));
    if (wait_s) {
        snap(&S[0]); sleep(wait_s); snap(&S[1]);
        char t[64]; snprintf(t, sizeof t, "after sleep %d s", wait_s); delta(t, &S[0], &S[1]);
        layout(p, LEN);
        printf("    VmPTE=%lld kB AnonHugePages(sum)=%lld Rss(sum)=%lld\n", status_kb("VmPTE"),
               smaps_sum(p, LEN, "AnonHugePages"), smaps_sum(p, LEN, "Rss"));
    }
    if (drop) {
        snap(&S[0]);
        FILE *f = fopen("/proc/sys/vm/drop_caches", "w"); fputs("2\n", f); fclose(f);
        snap(&S[1]); delta("after echo 2 > drop_caches (shrinkers)", &S[0], &S[1]);
        layout(p, LEN);
        printf("    VmPTE=%lld kB AnonHugePages(sum)=%lld Rss(sum)=%lld\n", status_kb("VmPTE"),
               smaps_sum(p, LEN, "AnonHugePages"), smaps_sum(p, LEN, "Rss"));
    }
    snap(&S[0]); munmap(p, LEN); snap(&S[1]); delta("munmap all", &S[0], &S[1]);
    return 0;
}
