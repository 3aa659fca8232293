/* Item e extra: splitting a huge-zero PMD. 4 MiB aligned MADV_HUGEPAGE region, read every page
 * (2 huge-zero PMDs), then OP on page 100: dontneed4k | mprotect4k | munmap4k; then read every
 * page, then write every page (still mapped & writable). Usage: ./e_zero OP */
#include "thp_common.h"
#define LEN (4 * MB)
int main(int argc, char **argv) {
    const char *op = argc > 1 ? argv[1] : "dontneed4k";
    snap(&S[7]); smaps_of(main, 0); layout((char *)main, PG); snap(&S[7]); sink = 0;
    char *p = map_aligned(LEN); must(madvise(p, LEN, MADV_HUGEPAGE), "madvise");
    snap(&S[0]); touch_r(p, LEN); snap(&S[1]); delta("read all", &S[0], &S[1]); layout(p, LEN);
    char *h = p + 100 * PG; int skipw = 0;
    snap(&S[0]);
    if (!strcmp(op, "dontneed4k")) must(madvise(h, PG, MADV_DONTNEED), "m");
    else if (!strcmp(op, "mprotect4k")) { must(mprotect(h, PG, PROT_READ), "m"); skipw = 1; }
    else if (!strcmp(op, "munmap4k")) { must(munmap(h, PG), "m"); skipw = 2; }
    snap(&S[1]); delta(op, &S[0], &S[1]); layout(p, LEN);
    printf("    VmPTE=%lld kB Rss(sum)=%lld\n", status_kb("VmPTE"), smaps_sum(p, LEN, "Rss"));
    snap(&S[0]); for (size_t o = 0; o < LEN; o += PG) if (!(skipw == 2 && p + o == h)) sink = p[o]; snap(&S[1]); delta("read all again", &S[0], &S[1]);
    snap(&S[0]); for (size_t o = 0; o < LEN; o += PG) if (!(skipw && p + o == h)) p[o] = 1; snap(&S[1]); delta("write all (except op page if RO/unmapped)", &S[0], &S[1]);
    layout(p, LEN);
    printf("    VmPTE=%lld kB Rss(sum)=%lld AnonHugePages(sum)=%lld\n", status_kb("VmPTE"), smaps_sum(p, LEN, "Rss"), smaps_sum(p, LEN, "AnonHugePages"));
    return 0;
}
