/* Shared helpers for the THP fact-finding programs (pagelab issue #7, helper H4).
 * Build: gcc -O2 -Wall -o X X.c   (each program includes this header)
 * All counters are read from /proc; vmstat/meminfo are system-wide, VmPTE and
 * smaps are per-process. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#define UNUSED __attribute__((unused))

#define KB 1024UL
#define MB (1024UL * 1024UL)
#define PG 4096UL
#define HPAGE (2UL * MB)

#define NVM 400
typedef struct { char name[NVM][64]; long long val[NVM]; int n; } vmstat_t;

static UNUSED void vm_read(vmstat_t *s) {
    FILE *f = fopen("/proc/vmstat", "r");
    s->n = 0;
    while (s->n < NVM && fscanf(f, "%63s %lld", s->name[s->n], &s->val[s->n]) == 2) s->n++;
    fclose(f);
}
static UNUSED long long vm_get(const vmstat_t *s, const char *name) {
    for (int i = 0; i < s->n; i++) if (!strcmp(s->name[i], name)) return s->val[i];
    return -1;
}
static UNUSED long long meminfo_kb(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r"); char k[64]; long long v = -1, x; char unit[16];
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%63[^:]: %lld %15s", k, &x, unit) >= 2 && !strcmp(k, key)) { v = x; break; }
    }
    fclose(f); return v;
}
static UNUSED long long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r"); char k[64]; long long v = -1, x; char line[256];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%63[^:]: %lld", k, &x) == 2 && !strcmp(k, key)) { v = x; break; }
    }
    fclose(f); return v;
}
static UNUSED long minflt(void) { struct rusage r; getrusage(RUSAGE_SELF, &r); return r.ru_minflt; }

/* Snapshot of everything we report. */
/* flt0 is read first and flt1 last, so a delta b.flt0 - a.flt1 excludes the faults that
 * the snapshot code itself takes (fresh heap/stack pages for stdio). Keep snap_t objects
 * static (each is ~29 KiB: on the stack they would fault in new stack pages). */
typedef struct { vmstat_t vm; long long pt_kb, vmpte_kb, ahp_kb; long flt0, flt1; } snap_t;
static UNUSED void snap(snap_t *s) {
    s->flt0 = minflt();
    vm_read(&s->vm);
    s->pt_kb = meminfo_kb("PageTables");
    s->ahp_kb = meminfo_kb("AnonHugePages");
    s->vmpte_kb = status_kb("VmPTE");
    s->flt1 = minflt();
}
static UNUSED snap_t S[8];
static const char *VMKEYS[] = {
    "pgfault", "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge",
    "thp_zero_page_alloc", "thp_zero_page_alloc_failed", "thp_split_pmd", "thp_split_page",
    "thp_split_page_failed", "thp_deferred_split_page", "thp_underused_split_page",
    "nr_anon_transparent_hugepages", "thp_collapse_alloc", "nr_anon_pages", NULL };
/* Print deltas b-a on one line (only non-zero vmstat deltas, plus always the fault count). */
static UNUSED void delta(const char *tag, const snap_t *a, const snap_t *b) {
    printf("  [%s] minflt=%ld", tag, b->flt0 - a->flt1);
    for (int i = 0; VMKEYS[i]; i++) {
        long long d = vm_get(&b->vm, VMKEYS[i]) - vm_get(&a->vm, VMKEYS[i]);
        if (d) printf(" %s=%+lld", VMKEYS[i], d);
    }
    printf(" | VmPTE %+lldkB PageTables %+lldkB meminfo.AnonHugePages %+lldkB\n",
           b->vmpte_kb - a->vmpte_kb, b->pt_kb - a->pt_kb, b->ahp_kb - a->ahp_kb);
}

/* Print the smaps block of the VMA containing addr. all=1: every line; else the key lines. */
static UNUSED void smaps_of(void *addr, int all) {
    FILE *f = fopen("/proc/self/smaps", "r"); char line[512]; int in = 0;
    unsigned long a = (unsigned long)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (a >= lo && a < hi);
            if (in) printf("    %s", line);
            continue;
        }
        if (!in) continue;
        if (all || !strncmp(line, "Rss:", 4) || !strncmp(line, "AnonHugePages:", 14) ||
            !strncmp(line, "THPeligible:", 12) || !strncmp(line, "VmFlags:", 8) ||
            !strncmp(line, "Anonymous:", 10) || !strncmp(line, "Size:", 5))
            printf("    %s", line);
    }
    fclose(f);
}
/* Return one smaps field (kB) of the VMA containing addr; -1 if absent. */
static UNUSED long long smaps_field(void *addr, const char *key) {
    FILE *f = fopen("/proc/self/smaps", "r"); char line[512]; int in = 0; long long v = -1;
    unsigned long a = (unsigned long)addr; size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (a >= lo && a < hi); continue;
        }
        if (in && !strncmp(line, key, kl) && line[kl] == ':') { v = atoll(line + kl + 1); break; }
    }
    fclose(f); return v;
}
/* Sum a field over all VMAs in [lo,hi). */
static UNUSED long long smaps_sum(void *lo_, size_t len, const char *key) {
    FILE *f = fopen("/proc/self/smaps", "r"); char line[512]; int in = 0; long long v = 0;
    unsigned long L = (unsigned long)lo_, H = L + len; size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (lo < H && hi > L); continue;
        }
        if (in && !strncmp(line, key, kl) && line[kl] == ':') v += atoll(line + kl + 1);
    }
    fclose(f); return v;
}
/* Map len bytes at an address with the given offset from a 2 MiB boundary. */
static UNUSED char *map_at_offset(size_t len, size_t off, int flags) {
    size_t span = len + 4 * HPAGE;
    char *r = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) { perror("mmap reserve"); exit(1); }
    unsigned long base = ((unsigned long)r + 2 * HPAGE - 1) & ~(HPAGE - 1);
    base += off;
    munmap(r, span);
    char *p = mmap((void *)base, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || p != (char *)base) { perror("mmap fixed"); exit(1); }
    return p;
}
static UNUSED char *map_aligned(size_t len) { return map_at_offset(len, 0, MAP_PRIVATE); }

static UNUSED void touch_w(char *p, size_t len) { for (size_t o = 0; o < len; o += PG) p[o] = 1; }
static volatile char sink;
static UNUSED void touch_r(char *p, size_t len) { char s = 0; for (size_t o = 0; o < len; o += PG) s += ((volatile char *)p)[o]; sink = s; }
static UNUSED double now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static UNUSED void must(int r, const char *what) { if (r) { perror(what); exit(1); } }

/* ---- page layout via /proc/self/pagemap + /proc/kpageflags (root) ---- */
#include <fcntl.h>
static UNUSED uint64_t pagemap_entry(void *addr) {
    static int fd = -1; if (fd < 0) fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t e = 0; pread(fd, &e, 8, ((uintptr_t)addr / PG) * 8); return e;
}
static UNUSED uint64_t kpageflags(uint64_t pfn) {
    static int fd = -1; if (fd < 0) fd = open("/proc/kpageflags", O_RDONLY);
    uint64_t f = 0; pread(fd, &f, 8, pfn * 8); return f;
}
/* One char per 4 KiB page: '.' not present, 'H' page of a THP (KPF_THP, not zero),
 * 'z' huge zero page, 'Z' 4 KiB zero page, '4' other present page. */
static UNUSED char page_kind(void *addr) {
    uint64_t e = pagemap_entry(addr);
    if (!(e >> 63)) return '.';
    uint64_t pfn = e & ((1ULL << 55) - 1);
    uint64_t f = kpageflags(pfn);
    int thp = (f >> 22) & 1, zero = (f >> 24) & 1;
    if (thp && zero) return 'z';
    if (zero) return 'Z';
    if (thp) return 'H';
    if ((f >> 15) & 1 || (f >> 16) & 1) return 'L'; /* large folio, not THP-flagged */
    return '4';
}
/* Print run-lengths of page kinds over [p, p+len), with offsets relative to p and the
 * 2 MiB alignment of each run start. */
static UNUSED void layout(char *p, size_t len) {
    size_t n = len / PG, i = 0;
    printf("    layout (offset from start, pages): ");
    while (i < n) {
        char k = page_kind(p + i * PG); size_t j = i + 1;
        while (j < n && page_kind(p + j * PG) == k) j++;
        printf("[%zu..%zu) %c x%zu%s  ", i, j, k, j - i,
               ((uintptr_t)(p + i * PG) % HPAGE) ? "" : " @2M");
        i = j;
    }
    printf("\n");
}
