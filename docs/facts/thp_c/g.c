/* Item g: smaps of a THP VMA, and THPeligible in many situations.
 * Usage: ./g            (all cases in this process, prctl cases in forked children) */
#include "thp_common.h"
#include <sys/wait.h>
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif
static void elig(const char *name, char *p) {
    char line[256]; FILE *f; char thp_en[64] = "?";
    f = fopen("/proc/self/status", "r");
    while (fgets(line, sizeof line, f)) if (!strncmp(line, "THP_enabled:", 12)) { sscanf(line + 12, "%63s", thp_en); }
    fclose(f);
    /* VmFlags line */
    FILE *s = fopen("/proc/self/smaps", "r"); int in = 0; char vmf[256] = "";
    while (fgets(line, sizeof line, s)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) { in = ((unsigned long)p >= lo && (unsigned long)p < hi); continue; }
        if (in && !strncmp(line, "VmFlags:", 8)) { strncpy(vmf, line + 8, sizeof vmf - 1); vmf[strcspn(vmf, "\n")] = 0; }
    }
    fclose(s);
    printf("  %-58s THPeligible=%lld  VmFlags:%s  (status THP_enabled=%s)\n", name, smaps_field(p, "THPeligible"), vmf, thp_en);
}
static char *mk(size_t len, size_t off, int flags, int advice) {
    char *p = map_at_offset(len, off, flags);
    if (advice >= 0) must(madvise(p, len, advice), "madvise");
    return p;
}
static void write_count(const char *name, char *p, size_t len) {
    long a = minflt(); touch_w(p, len); long b = minflt();
    printf("      write every page of %s: %ld faults, AnonHugePages=%lld kB\n", name, b - a, smaps_field(p, "AnonHugePages"));
}
static void prctl_case(const char *title, unsigned long arg3) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *before_h = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE);
        char *before_p = mk(4 * MB, 0, MAP_PRIVATE, -1);
        int r = prctl(PR_SET_THP_DISABLE, 1, arg3, 0, 0);
        printf("== %s: prctl(PR_SET_THP_DISABLE, 1, %#lx) = %d (errno %d); PR_GET_THP_DISABLE = %d\n", title, arg3, r, r ? errno : 0,
               prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
        elig("VMA made before prctl, MADV_HUGEPAGE", before_h);
        elig("VMA made before prctl, no madvise", before_p);
        char *after_h = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE);
        char *after_p = mk(4 * MB, 0, MAP_PRIVATE, -1);
        elig("VMA made after prctl, MADV_HUGEPAGE", after_h);
        elig("VMA made after prctl, no madvise", after_p);
        write_count("before_h", before_h, 4 * MB);
        write_count("after_h", after_h, 4 * MB);
        int r2 = prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
        printf("   prctl(PR_SET_THP_DISABLE, 0) = %d; PR_GET_THP_DISABLE = %d\n", r2, prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
        elig("after re-enable: VMA MADV_HUGEPAGE (made while disabled)", after_h);
        char *x = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE);
        elig("after re-enable: new VMA MADV_HUGEPAGE", x);
        write_count("new VMA", x, 4 * MB);
        fflush(stdout); _exit(0);
    }
    waitpid(pid, NULL, 0);
}
int main(void) {
    printf("== full smaps of a written 4 MiB aligned MADV_HUGEPAGE VMA\n");
    char *a = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE); touch_w(a, 4 * MB); smaps_of(a, 1);
    printf("== full smaps of the same VMA type, untouched\n");
    char *a2 = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE); smaps_of(a2, 1);
    printf("== THPeligible (enabled=madvise here)\n");
    elig("4 MiB aligned, MADV_HUGEPAGE, untouched", a2);
    elig("4 MiB aligned, MADV_HUGEPAGE, written", a);
    elig("4 MiB aligned, no madvise", mk(4 * MB, 0, MAP_PRIVATE, -1));
    elig("4 MiB aligned, MADV_NOHUGEPAGE", mk(4 * MB, 0, MAP_PRIVATE, MADV_NOHUGEPAGE));
    { char *p = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE); must(madvise(p, 4 * MB, MADV_NOHUGEPAGE), "m");
      elig("4 MiB aligned, MADV_HUGEPAGE then MADV_NOHUGEPAGE", p); }
    { char *p = mk(4 * MB, 0, MAP_PRIVATE, MADV_NOHUGEPAGE); must(madvise(p, 4 * MB, MADV_HUGEPAGE), "m");
      elig("4 MiB aligned, MADV_NOHUGEPAGE then MADV_HUGEPAGE", p); }
    elig("2 MiB - 4 KiB aligned start, MADV_HUGEPAGE", mk(2 * MB - 4 * KB, 0, MAP_PRIVATE, MADV_HUGEPAGE));
    elig("2 MiB exactly, aligned, MADV_HUGEPAGE", mk(2 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE));
    elig("2 MiB at +4 KiB (no aligned 2 MiB inside), MADV_HUGEPAGE", mk(2 * MB, 4 * KB, MAP_PRIVATE, MADV_HUGEPAGE));
    elig("4 MiB - 4 KiB at +4 KiB (no aligned 2 MiB), MADV_HUGEPAGE", mk(4 * MB - 8 * KB, 4 * KB, MAP_PRIVATE, MADV_HUGEPAGE));
    elig("4 MiB at +4 KiB (one aligned 2 MiB inside), MADV_HUGEPAGE", mk(4 * MB, 4 * KB, MAP_PRIVATE, MADV_HUGEPAGE));
    elig("1 MiB, MADV_HUGEPAGE", mk(1 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE));
    { char *p = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE); must(mprotect(p, 4 * MB, PROT_READ), "mp");
      elig("4 MiB aligned MADV_HUGEPAGE, PROT_READ", p); }
    { char *p = mk(4 * MB, 0, MAP_PRIVATE, MADV_HUGEPAGE); must(mprotect(p, 4 * MB, PROT_NONE), "mp");
      elig("4 MiB aligned MADV_HUGEPAGE, PROT_NONE", p); }
    { char *p = mk(4 * MB, 0, MAP_SHARED, -1); elig("shared anon 4 MiB aligned, no madvise", p);
      char *q = mk(4 * MB, 0, MAP_SHARED, MADV_HUGEPAGE); elig("shared anon 4 MiB aligned, MADV_HUGEPAGE", q);
      write_count("shared anon MADV_HUGEPAGE", q, 4 * MB);
      printf("      shared anon smaps: ShmemPmdMapped=%lld kB Shared_Hugetlb=%lld\n", smaps_field(q, "ShmemPmdMapped"), smaps_field(q, "Shared_Hugetlb")); }
    { char *p = mmap(NULL, 8 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
      madvise(p, 8 * MB, MADV_HUGEPAGE); elig("MAP_GROWSDOWN 8 MiB, MADV_HUGEPAGE", p); }
    { char *st = (char *)&a; elig("[stack] of this process", st); }
    prctl_case("PR_SET_THP_DISABLE (completely)", 0);
    prctl_case("PR_SET_THP_DISABLE + PR_THP_DISABLE_EXCEPT_ADVISED", PR_THP_DISABLE_EXCEPT_ADVISED);
    return 0;
}
