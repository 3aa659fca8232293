/* Items a, b, c: 64 MiB 2 MiB-aligned private anon mapping.
 *  a) MADV_HUGEPAGE, one write per 4 KiB page
 *  b) no madvise, one write per 4 KiB page
 *  c) MADV_HUGEPAGE, read every page, then write every page
 * Usage: ./abc [a|b|c|all] */
#include "thp_common.h"

#define LEN (64 * MB)

static void run_a(void) {
    printf("== a) 64 MiB aligned, MADV_HUGEPAGE, write each 4 KiB page\n");
    char *p = map_aligned(LEN);
    printf("  addr=%p (addr %% 2MiB = %lu)\n", p, (unsigned long)p % HPAGE);
    must(madvise(p, LEN, MADV_HUGEPAGE), "madvise");
    snap_t *s0=&S[0],*s1=&S[1],*s2=&S[2]; snap(s0);
    touch_w(p, LEN);
    snap(s1); delta("write", s0, s1);
    smaps_of(p, 0);
    must(munmap(p, LEN), "munmap");
    snap(s2); delta("munmap", s1, s2);
}
static void run_b(void) {
    printf("== b) 64 MiB aligned, no madvise, write each 4 KiB page\n");
    char *p = map_aligned(LEN);
    printf("  addr=%p\n", p);
    snap_t *s0=&S[0],*s1=&S[1],*s2=&S[2]; snap(s0);
    touch_w(p, LEN);
    snap(s1); delta("write", s0, s1);
    smaps_of(p, 0);
    must(munmap(p, LEN), "munmap");
    snap(s2); delta("munmap", s1, s2);
}
static void run_c(void) {
    printf("== c) 64 MiB aligned, MADV_HUGEPAGE, read all then write all\n");
    char *p = map_aligned(LEN);
    printf("  addr=%p\n", p);
    must(madvise(p, LEN, MADV_HUGEPAGE), "madvise");
    snap_t *s0=&S[0],*s1=&S[1],*s2=&S[2],*s3=&S[3]; snap(s0);
    touch_r(p, LEN);
    snap(s1); delta("read", s0, s1);
    smaps_of(p, 0);
    /* re-read: should take no faults */
    touch_r(p, LEN);
    snap(s2); delta("re-read", s1, s2);
    touch_w(p, LEN);
    snap(s3); delta("write", s2, s3);
    smaps_of(p, 0);
    snap(s2);
    must(munmap(p, LEN), "munmap");
    snap(s3); delta("munmap", s2, s3);
}
int main(int argc, char **argv) {
    snap(&S[7]); smaps_of(main, 0); snap(&S[7]); /* warm up stdio/heap */
    const char *w = argc > 1 ? argv[1] : "all";
    if (!strcmp(w, "a") || !strcmp(w, "all")) run_a();
    if (!strcmp(w, "b") || !strcmp(w, "all")) run_b();
    if (!strcmp(w, "c") || !strcmp(w, "all")) run_c();
    return 0;
}
