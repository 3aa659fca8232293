/* Item d: unaligned ends. MADV_HUGEPAGE mapping of 5 MiB + 12 KiB at an address that is
 * not 2 MiB-aligned (offset 4 KiB and 1 MiB from a 2 MiB boundary); write every page
 * ascending; also read-first then write. Usage: ./d */
#include "thp_common.h"
static void one(size_t off, size_t len, int readfirst) {
    char *p = map_at_offset(len, off, MAP_PRIVATE);
    printf("== d) len=%zu (%zu pages) start=2M-aligned+%zu KiB  %s\n", len, len / PG, off / KB,
           readfirst ? "read all, then write all" : "write all");
    must(madvise(p, len, MADV_HUGEPAGE), "madvise");
    snap(&S[0]);
    if (readfirst) { touch_r(p, len); snap(&S[1]); delta("read", &S[0], &S[1]); layout(p, len); snap(&S[0]); }
    touch_w(p, len);
    snap(&S[1]); delta("write", &S[0], &S[1]);
    layout(p, len);
    smaps_of(p, 0);
    munmap(p, len);
}
int main(void) {
    snap(&S[7]); smaps_of(main, 0); layout((char *)main, PG); snap(&S[7]);
    size_t len = 5 * MB + 12 * KB;
    one(4 * KB, len, 0);
    one(1 * MB, len, 0);
    one(4 * KB, len, 1);
    one(0, len, 0);
    one(4 * KB, 4 * MB, 0);      /* 4 MiB at +4 KiB: only one aligned 2 MiB inside */
    one(0, 2 * MB - 4 * KB, 0);  /* shorter than 2 MiB */
    return 0;
}
