/* mlock facts probe (issue #9). Every case runs in a forked child; the host is not changed.
 * Build: gcc -O1 -o /tmp/mlock_probe docs/facts/mlock_c/mlock_probe.c ; run as root: /tmp/mlock_probe */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
static int perf_fd = -1;

static long minflt(void) { struct rusage r; getrusage(RUSAGE_SELF, &r); return r.ru_minflt; }
static long perf_pf(void) { long long v = 0; if (read(perf_fd, &v, 8) != 8) return -1; return (long)v; }
static long field(const char *path, const char *key) {
    FILE *f = fopen(path, "r"); char line[512]; long v = -1, n = strlen(key);
    while (fgets(line, sizeof line, f)) if (!strncmp(line, key, n)) { v = atol(line + n); break; }
    fclose(f); return v;
}
static long smaps_locked(void *addr) { /* Locked: of the VMA at addr, kB */
    FILE *f = fopen("/proc/self/smaps", "r"); char line[512]; int in = 0; long v = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) in = (unsigned long)addr >= a && (unsigned long)addr < b;
        else if (in && !strncmp(line, "Locked:", 7)) { v = atol(line + 7); break; }
    }
    fclose(f); return v;
}
static int has_lo(void *addr) {
    FILE *f = fopen("/proc/self/smaps", "r"); char line[512]; int in = 0, v = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) in = (unsigned long)addr >= a && (unsigned long)addr < b;
        else if (in && !strncmp(line, "VmFlags:", 8)) { v = strstr(line, " lo") != NULL; break; }
    }
    fclose(f); return v;
}
static void drop_cap(int cap) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) perror("PR_CAPBSET_DROP");
    syscall(SYS_capget, &h, d);
    d[cap / 32].effective &= ~(1u << (cap % 32));
    d[cap / 32].permitted &= ~(1u << (cap % 32));
    if (syscall(SYS_capset, &h, d)) perror("capset");
}
static void limit(long bytes) { struct rlimit r = {bytes, bytes}; if (setrlimit(RLIMIT_MEMLOCK, &r)) perror("setrlimit"); }
static char *anon(long len) { return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); }
static const char *vm[] = {"unevictable_pgs_culled ", "unevictable_pgs_scanned ", "unevictable_pgs_rescued ",
    "unevictable_pgs_mlocked ", "unevictable_pgs_munlocked ", "unevictable_pgs_cleared ", "unevictable_pgs_stranded ", "nr_mlock ", "nr_unevictable "};
static long snap[9];
static void vm_snap(void) { for (int i = 0; i < 9; i++) snap[i] = field("/proc/vmstat", vm[i]); }
static void vm_delta(const char *what) {
    printf("  vmstat deltas %s:", what);
    for (int i = 0; i < 9; i++) printf(" %.*s=%ld", (int)strlen(vm[i]) - 1, vm[i], field("/proc/vmstat", vm[i]) - snap[i]);
    printf("\n");
}
#define R(call) ((call) == 0 ? "ok" : strerror(errno))
#define M(label, body) do { long f0 = minflt(), p0 = perf_pf(); body; printf("  %-44s minflt=%ld perf=%ld\n", label, minflt() - f0, perf_pf() - p0); } while (0)

static void case_4mib(void) {
    char *a = anon(4 << 20); const char *r;
    vm_snap(); long mlk0 = field("/proc/meminfo", "Mlocked:"), unev0 = field("/proc/meminfo", "Unevictable:");
    M("mlock(4 MiB fresh anon)", r = R(mlock(a, 4 << 20))); printf("  -> %s\n", r);
    vm_delta("after mlock");
    printf("  Locked=%ld kB VmLck=%ld kB lo=%d meminfo Mlocked+%ld Unevictable+%ld kB\n", smaps_locked(a),
           field("/proc/self/status", "VmLck:"), has_lo(a), field("/proc/meminfo", "Mlocked:") - mlk0,
           field("/proc/meminfo", "Unevictable:") - unev0);
    M("write every page after mlock", for (long i = 0; i < 4 << 20; i += PG) a[i] = 1);
    vm_snap();
    M("munlock(4 MiB)", r = R(munlock(a, 4 << 20))); printf("  -> %s\n", r);
    vm_delta("after munlock");
    printf("  Locked=%ld VmLck=%ld lo=%d\n", smaps_locked(a), field("/proc/self/status", "VmLck:"), has_lo(a));
    mlock(a, 4 << 20); vm_snap();
    M("munmap(locked 4 MiB)", munmap(a, 4 << 20));
    vm_delta("after munmap of locked");
    a = anon(4 << 20); mlock(a, 4 << 20); vm_snap();
    M("MADV_DONTNEED on locked", r = R(madvise(a, PG, MADV_DONTNEED))); printf("  -> %s\n", r);
    M("MADV_DONTNEED_LOCKED on locked 1 page", r = R(madvise(a, PG, MADV_DONTNEED_LOCKED))); printf("  -> %s\n", r);
    vm_delta("after DONTNEED_LOCKED");
    M("write the dropped page", a[0] = 1);
    printf("  Locked=%ld kB\n", smaps_locked(a));
}

static void case_limit64k(void) {
    drop_cap(CAP_IPC_LOCK); limit(64 << 10);
    char *a = anon(1 << 20); const char *r;
    M("mlock 16 pages (64 KiB)", r = R(mlock(a, 16 * PG))); printf("  -> %s\n", r);
    M("mlock 17th page", r = R(mlock(a + 16 * PG, PG))); printf("  -> %s\n", r);
    M("mlock 17 pages from start", r = R(mlock(a, 17 * PG))); printf("  -> %s\n", r);
    M("mlock same 16 pages again", r = R(mlock(a, 16 * PG))); printf("  -> %s VmLck=%ld\n", r, field("/proc/self/status", "VmLck:"));
    M("mlock first 8 pages (inside)", r = R(mlock(a, 8 * PG))); printf("  -> %s\n", r);
    munlock(a, 16 * PG);
    printf("  after munlock VmLck=%ld\n", field("/proc/self/status", "VmLck:"));
    char *b = anon(16 * PG);
    M("mlock2(ONFAULT, 16 pages)", r = R(syscall(SYS_mlock2, b, 16 * PG, MLOCK_ONFAULT))); printf("  -> %s Locked=%ld VmLck=%ld\n", r, smaps_locked(b), field("/proc/self/status", "VmLck:"));
    M("write 16 pages", for (long i = 0; i < 16 * PG; i += PG) b[i] = 1);
    printf("  Locked=%ld\n", smaps_locked(b));
    munlock(b, 16 * PG);
    char *c;
    c = mmap(NULL, 17 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    printf("  MAP_LOCKED 17 pages -> %s\n", c == MAP_FAILED ? strerror(errno) : "ok");
    M("MAP_LOCKED 16 pages", c = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0));
    printf("  -> %s Locked=%ld VmLck=%ld\n", c == MAP_FAILED ? strerror(errno) : "ok", smaps_locked(c), field("/proc/self/status", "VmLck:"));
    munmap(c, 16 * PG);
    printf("  after munmap VmLck=%ld\n", field("/proc/self/status", "VmLck:"));
    M("mlockall(MCL_CURRENT) over limit", r = R(mlockall(MCL_CURRENT))); printf("  -> %s VmLck=%ld\n", r, field("/proc/self/status", "VmLck:"));
    M("mlockall(MCL_FUTURE) with limit", r = R(mlockall(MCL_FUTURE))); printf("  -> %s\n", r);
    c = mmap(NULL, 17 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("  mmap 17 pages after MCL_FUTURE -> %s\n", c == MAP_FAILED ? strerror(errno) : "ok");
    M("mmap 8 pages after MCL_FUTURE", c = anon(8 * PG));
    printf("  -> %s Locked=%ld lo=%d\n", c == MAP_FAILED ? strerror(errno) : "ok", c == MAP_FAILED ? 0 : smaps_locked(c), c == MAP_FAILED ? 0 : has_lo(c));
    munlockall();
    struct rlimit rl = {64 << 10, 128 << 10};
    printf("  setrlimit soft>hard -> %s\n", R(setrlimit(RLIMIT_MEMLOCK, &(struct rlimit){128 << 10, 64 << 10})));
    printf("  setrlimit raise hard (CAP_SYS_RESOURCE held) -> %s\n", R(setrlimit(RLIMIT_MEMLOCK, &rl)));
    drop_cap(24);
    rl.rlim_max = 256 << 10;
    printf("  setrlimit raise hard without CAP_SYS_RESOURCE -> %s\n", R(setrlimit(RLIMIT_MEMLOCK, &rl)));
    rl.rlim_max = 64 << 10;
    printf("  setrlimit lower hard without CAP_SYS_RESOURCE -> %s\n", R(setrlimit(RLIMIT_MEMLOCK, &rl)));
    /* limit 0: mlock of one page */
    limit(0);
    M("rlimit 0: mlock 1 page", r = R(mlock(a, PG))); printf("  -> %s\n", r);
    printf("  rlimit 0: mlockall(MCL_FUTURE) -> %s\n", R(mlockall(MCL_FUTURE)));
}

static void case_8mib(int drop) {
    if (drop) drop_cap(CAP_IPC_LOCK);
    struct rlimit r0; getrlimit(RLIMIT_MEMLOCK, &r0);
    printf("  RLIMIT_MEMLOCK soft=%ld hard=%ld\n", (long)r0.rlim_cur, (long)r0.rlim_max);
    char *a = anon((8 << 20) + PG); const char *r;
    M("mlock(8 MiB + 4 KiB)", r = R(mlock(a, (8 << 20) + PG)));
    printf("  -> %s Rss=%ld kB VmLck=%ld\n", r, field("/proc/self/status", "VmRSS:"), field("/proc/self/status", "VmLck:"));
    M("mlock(8 MiB)", r = R(mlock(a, 8 << 20)));
    printf("  -> %s VmLck=%ld\n", r, field("/proc/self/status", "VmLck:"));
}

static void case_misc(void) {
    const char *r; char *a;
    a = mmap(NULL, 16 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    M("mlock read-only anon 16 pages", r = R(mlock(a, 16 * PG))); printf("  -> %s Locked=%ld Rss=%ld\n", r, smaps_locked(a), field("/proc/self/status", "RssAnon:"));
    a = mmap(NULL, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    M("mlock PROT_NONE anon 16 pages", r = R(mlock(a, 16 * PG))); printf("  -> %s Locked=%ld VmLck=%ld lo=%d\n", r, smaps_locked(a), field("/proc/self/status", "VmLck:"), has_lo(a));
    munlockall();
    int fd = open("/tmp/mlock_probe_file", O_RDWR | O_CREAT | O_TRUNC, 0600);
    char buf[PG]; memset(buf, 7, PG); for (int i = 0; i < 64; i++) write(fd, buf, PG); fsync(fd);
    a = mmap(NULL, 64 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
    M("mlock private ro file 64 pages (cached)", r = R(mlock(a, 64 * PG))); printf("  -> %s Locked=%ld RssFile=%ld\n", r, smaps_locked(a), field("/proc/self/status", "RssFile:"));
    a = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    M("mlock private rw file 64 pages", r = R(mlock(a, 64 * PG))); printf("  -> %s Locked=%ld RssAnon=%ld\n", r, smaps_locked(a), field("/proc/self/status", "RssAnon:"));
    a = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    M("mlock shared rw file 64 pages", r = R(mlock(a, 64 * PG))); printf("  -> %s Locked=%ld\n", r, smaps_locked(a));
    M("write shared locked file pages", for (long i = 0; i < 64 * PG; i += PG) a[i] = 1);
    unlink("/tmp/mlock_probe_file"); close(fd);
    munlockall();
    a = anon(16 * PG);
    M("mlock ro anon read zero page? (rw anon read populate)", r = R(mlock(a, 16 * PG)));
    printf("  -> %s RssAnon=%ld\n", r, field("/proc/self/status", "RssAnon:"));
    a = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(a + 4 * PG, 4 * PG);
    M("mlock over a hole", r = R(mlock(a, 16 * PG))); printf("  -> %s Locked first=%ld last=%ld\n", r, smaps_locked(a), smaps_locked(a + 12 * PG));
    M("munlock over a hole", r = R(munlock(a, 16 * PG))); printf("  -> %s\n", r);
    a = anon(16 * PG);
    printf("  mlock2 flags=2 -> %s\n", R(syscall(SYS_mlock2, a, PG, 2)));
    printf("  mlockall(0) -> %s\n", R(mlockall(0)));
    printf("  mlockall(MCL_ONFAULT) alone -> %s\n", R(mlockall(MCL_ONFAULT)));
    printf("  mlockall(8) -> %s\n", R(mlockall(8)));
    printf("  mlock(len 0) -> %s\n", R(mlock(a, 0)));
    r = R(mlock(a + 1, 1)); printf("  mlock(unaligned addr+1, 1) -> %s Locked=%ld\n", r, smaps_locked(a));
    printf("  mlock(addr, -4096) -> %s\n", R(mlock(a, (size_t)-4096)));
    printf("  munlock unmapped -> %s\n", R(munlock((void *)0x10000, PG)));
    munlockall();
    M("mlockall(MCL_CURRENT|MCL_FUTURE)", r = R(mlockall(MCL_CURRENT | MCL_FUTURE))); printf("  -> %s\n", r);
    M("mmap 16 pages after MCL_FUTURE", a = anon(16 * PG)); printf("  Locked=%ld lo=%d\n", smaps_locked(a), has_lo(a));
    M("write them", for (long i = 0; i < 16 * PG; i += PG) a[i] = 1);
    munlockall();
    printf("  after munlockall lo=%d Locked=%ld VmLck=%ld\n", has_lo(a), smaps_locked(a), field("/proc/self/status", "VmLck:"));
    M("mlockall(MCL_FUTURE|MCL_ONFAULT)", r = R(mlockall(MCL_FUTURE | MCL_ONFAULT))); printf("  -> %s\n", r);
    M("mmap 16 pages after FUTURE|ONFAULT", a = anon(16 * PG)); printf("  Locked=%ld VmLck=%ld\n", smaps_locked(a), field("/proc/self/status", "VmLck:"));
    M("write them", for (long i = 0; i < 16 * PG; i += PG) a[i] = 1); printf("  Locked=%ld\n", smaps_locked(a));
    munlockall();
    a = anon(16 * PG);
    M("mlockall(MCL_CURRENT|MCL_ONFAULT)", r = R(mlockall(MCL_CURRENT | MCL_ONFAULT))); printf("  -> %s Locked=%ld lo=%d\n", r, smaps_locked(a), has_lo(a));
    munlockall();
    /* fork: does the child inherit VM_LOCKED / MCL_FUTURE? */
    a = anon(16 * PG); mlock(a, 16 * PG); mlockall(MCL_FUTURE); fflush(stdout);
    if (fork() == 0) {
        char *b = anon(16 * PG);
        printf("  fork child: VmLck=%ld locked-range lo=%d Locked=%ld new mmap lo=%d\n", field("/proc/self/status", "VmLck:"), has_lo(a), smaps_locked(a), has_lo(b));
        fflush(stdout); _exit(0);
    }
    wait(NULL);
    munlockall();
    /* THP: mlock of a 2 MiB aligned region with THP */
    a = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a = (char *)(((unsigned long)a + (2 << 20) - 1) & ~((2UL << 20) - 1));
    madvise(a, 2 << 20, MADV_HUGEPAGE);
    M("mlock 2 MiB MADV_HUGEPAGE aligned", r = R(mlock(a, 2 << 20))); printf("  -> %s Locked=%ld AnonHuge=%ld\n", r, smaps_locked(a), field("/proc/meminfo", "AnonHugePages:"));
}

int main(int argc, char **argv) {
    struct perf_event_attr pe = {.type = PERF_TYPE_SOFTWARE, .size = sizeof pe, .config = PERF_COUNT_SW_PAGE_FAULTS,
                                 .exclude_kernel = 0, .inherit = 0};
    const char *names[] = {"4mib", "limit64k", "8mib_nocap", "8mib_cap", "misc"};
    void (*cases[])(void) = {case_4mib, case_limit64k, NULL, NULL, case_misc};
    for (int i = 0; i < 5; i++) {
        if (argc > 1 && strcmp(argv[1], names[i])) continue;
        printf("== %s\n", names[i]); fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            perf_fd = syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
            { char *w = anon(16 * PG); M("warm-up: write 16 fresh pages", for (long k = 0; k < 16 * PG; k += PG) w[k] = 1); smaps_locked(w); }
            if (i == 2) case_8mib(1); else if (i == 3) case_8mib(0); else cases[i]();
            fflush(stdout); _exit(0);
        }
        waitpid(pid, NULL, 0);
    }
    return 0;
}
