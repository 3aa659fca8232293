/* Item j: time per fault. For each kind, map a fresh region, time the touch loop, divide by
 * the number of faults actually taken (minflt delta). Repeats R times; prints each run and
 * the median. Usage: ./j [MiB=256] [R=7] */
#include "thp_common.h"
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }
typedef enum { THP_W, K4_W, HZ_R, Z4_R, THP_W_AFTER_HZ, K4_W_AFTER_Z, MUNMAP_THP, MUNMAP_4K } kind_t;
static const char *names[] = { "THP write fault (alloc+zero 2 MiB, MADV_HUGEPAGE)", "4 KiB anon write fault (no madvise)",
    "huge-zero-page read fault (MADV_HUGEPAGE)", "4 KiB zero-page read fault (no madvise)",
    "write fault on huge-zero PMD (do_huge_zero_wp_pmd: alloc THP)", "write fault on 4 KiB zero-page PTE (wp copy)",
    "munmap of written THP region, per 2 MiB", "munmap of written 4 KiB region, per 4 KiB page" };
int main(int argc, char **argv) {
    size_t len = (argc > 1 ? atol(argv[1]) : 256) * MB; int R = argc > 2 ? atoi(argv[2]) : 7;
    for (int k = 0; k < 8; k++) {
        double v[64];
        printf("%-64s", names[k]);
        for (int r = 0; r < R; r++) {
            char *p = map_aligned(len);
            int huge = (k == THP_W || k == HZ_R || k == THP_W_AFTER_HZ || k == MUNMAP_THP);
            if (huge) must(madvise(p, len, MADV_HUGEPAGE), "madvise");
            if (k == THP_W_AFTER_HZ || k == K4_W_AFTER_Z) touch_r(p, len);
            if (k == MUNMAP_THP || k == MUNMAP_4K) touch_w(p, len);
            long f0 = minflt(); double t0 = now_ns();
            if (k == THP_W || k == K4_W || k == THP_W_AFTER_HZ || k == K4_W_AFTER_Z) touch_w(p, len);
            else if (k == HZ_R || k == Z4_R) touch_r(p, len);
            else munmap(p, len);
            double t1 = now_ns(); long f1 = minflt();
            long n = (k == MUNMAP_THP) ? (long)(len / HPAGE) : (k == MUNMAP_4K) ? (long)(len / PG) : f1 - f0;
            v[r] = (t1 - t0) / n;
            printf(" %.0f", v[r]);
            if (k != MUNMAP_THP && k != MUNMAP_4K) munmap(p, len);
        }
        qsort(v, R, sizeof v[0], cmp);
        printf("  | median %.0f ns\n", v[R / 2]);
    }
    /* reference: memset of 2 MiB (warm, already-faulted memory) */
    char *p = map_aligned(64 * MB); touch_w(p, 64 * MB);
    double t0 = now_ns(); for (int i = 0; i < 32; i++) memset(p + i * HPAGE, 0, HPAGE); double t1 = now_ns();
    printf("%-64s %.0f ns per 2 MiB (%.1f GB/s)\n", "memset 2 MiB of already-mapped memory", (t1 - t0) / 32, 64.0 * MB / (t1 - t0));
    return 0;
}
