/* Item h: 4 MiB MAP_SHARED|MAP_ANONYMOUS: write every page, MADV_DONTNEED all, then read every
 * page ascending. For every read that faults, print which pages it mapped (PTE-present via
 * /proc/self/pagemap; mincore is useless here: it reports the shmem page cache).
 * Usage: ./h [offset_KiB_from_2MiB_boundary|-1 for kernel placement] [len_KiB] [verbose] */
#include "thp_common.h"
static int present(char *p) { return (pagemap_entry(p) >> 63) & 1; }
int main(int argc, char **argv) {
    long offk = argc > 1 ? atol(argv[1]) : -1;
    size_t len = (argc > 2 ? atol(argv[2]) : 4096) * KB;
    int verbose = argc > 3 ? atoi(argv[3]) : 1;
    snap(&S[7]); snap(&S[7]); sink = 0; /* pre-fault the bss page of sink */
    char *p = offk < 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                       : map_at_offset(len, offk * KB, MAP_SHARED);
    size_t n = len / PG;
    unsigned long va = (unsigned long)p;
    printf("== h) shared anon %zu KiB at %p: VA %% 2 MiB = %lu KiB, VA %% 64 KiB = %lu KiB (page %lu of its 16-page group, PTE index %lu)\n",
           len / KB, p, (va % HPAGE) / KB, (va % (64 * KB)) / KB, (va / PG) % 16, (va / PG) % 512);
    long a = minflt(); touch_w(p, len); long b = minflt();
    printf("  write every page: %ld faults\n", b - a);
    must(madvise(p, len, MADV_DONTNEED), "madvise");
    size_t still = 0; for (size_t i = 0; i < n; i++) still += present(p + i * PG);
    printf("  after MADV_DONTNEED: %zu pages PTE-present; smaps Rss=%lld kB\n", still, smaps_field(p, "Rss"));
    static unsigned char was[1 << 20];
    long faults = 0;
    for (size_t i = 0; i < n; i++) {
        long f0 = minflt(); sink = ((volatile char *)p)[i * PG]; long f1 = minflt();
        if (f1 != f0) {
            faults += f1 - f0;
            size_t lo = n, hi = 0, cnt = 0;
            for (size_t j = 0; j < n; j++) if (!was[j] && present(p + j * PG)) { was[j] = 1; cnt++; if (j < lo) lo = j; if (j > hi) hi = j; }
            if (verbose) printf("    fault #%ld at page %zu (PTE idx %lu): mapped %zu new pages [%zu..%zu] (PTE idx %lu..%lu)\n", faults, i,
                   ((va / PG) + i) % 512, cnt, lo, hi, ((va / PG) + lo) % 512, ((va / PG) + hi) % 512);
        } else was[i] = 1;
    }
    printf("  read every page after DONTNEED: %ld faults\n", faults);
    a = minflt(); touch_w(p, len); b = minflt();
    printf("  then write every page: %ld faults\n", b - a);
    return 0;
}
