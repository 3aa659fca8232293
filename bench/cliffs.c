/* The real kernel's side of bench/bench_cliffs.py: N operations of one kind, timed in CPU time
 * (CLOCK_PROCESS_CPUTIME_ID: user + system, so other load on a shared host does not count).
 * Usage: cliffs KIND N REPEATS. Prints one JSON line: kind, n, seconds of CPU time (best of REPEATS), VMAs made.
 *   mmap      N one-page private anonymous mmaps, protections in pairs (RW RW R R ...): each pair's second
 *             mmap merges with the first, so N mmaps make N/2 VMAs and stay under vm.max_map_count.
 *   mmap1     the same with protections alternating every mmap (RW R RW ...): N VMAs, none merges (N must
 *             stay under vm.max_map_count, 65530 by default).
 *   mprotect  N one-page mprotects walking up a mapping of N + 1 pages, protections in pairs (R R RX RX ...):
 *             each splits the rest of the mapping off; each pair's second merges with the first.
 *   mprotect3 N splits: N/2 one-page mprotects of every second page of a mapping of N + 1 pages, each
 *             cutting a VMA in three (two splits, nothing merges): N + 1 VMAs, so N stays under
 *             vm.max_map_count (65530 by default).
 *   write     first-touch writes to N pages of fresh private anonymous memory (what an OOM run does
 *             before the kill on a machine of N pages).
 *   read      reads of N never-written pages of a MAP_NORESERVE mapping (the zero page; no frames). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int count_vmas(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    int c, n = 0;
    if (!f) return -1;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static double run(const char *kind, size_t n, int *vmas) {
    double t0, t;
    if (!strcmp(kind, "mmap") || !strcmp(kind, "mmap1")) {
        size_t run = strcmp(kind, "mmap") ? 1 : 2;
        char **at = malloc(n * sizeof *at);
        t0 = now();
        for (size_t i = 0; i < n; i++) {
            int prot = (i / run) % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
            at[i] = mmap(NULL, PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (at[i] == MAP_FAILED) { perror("mmap"); exit(1); }
        }
        t = now() - t0;
        *vmas = count_vmas();
        for (size_t i = 0; i < n; i++) munmap(at[i], PAGE);
        free(at);
        return t;
    }
    if (!strcmp(kind, "mprotect3")) {
        char *p = mmap(NULL, (n + 1) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); exit(1); }
        t0 = now();
        for (size_t i = 1; i < n; i += 2)
            if (mprotect(p + i * PAGE, PAGE, PROT_READ)) { perror("mprotect"); exit(1); }
        t = now() - t0;
        *vmas = count_vmas();
        munmap(p, (n + 1) * PAGE);
        return t;
    }
    if (!strcmp(kind, "mprotect")) {
        char *p = mmap(NULL, (n + 1) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); exit(1); }
        t0 = now();
        for (size_t i = 0; i < n; i++) {
            int prot = (i / 2) % 2 ? PROT_READ | PROT_EXEC : PROT_READ;
            if (mprotect(p + i * PAGE, PAGE, prot)) { perror("mprotect"); exit(1); }
        }
        t = now() - t0;
        *vmas = count_vmas();
        munmap(p, (n + 1) * PAGE);
        return t;
    }
    int write = !strcmp(kind, "write");
    if (!write && strcmp(kind, "read")) { fprintf(stderr, "unknown kind %s\n", kind); exit(2); }
    volatile char *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | (write ? 0 : MAP_NORESERVE), -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    char sink = 0;
    t0 = now();
    if (write)
        for (size_t i = 0; i < n; i++) p[i * PAGE] = 1;
    else
        for (size_t i = 0; i < n; i++) sink += p[i * PAGE];
    t = now() - t0;
    *vmas = count_vmas() + (sink != 0);
    munmap((void *)p, n * PAGE);
    return t;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: cliffs mmap|mmap1|mprotect|mprotect3|write|read N [REPEATS]\n"); return 2; }
    const char *kind = argv[1];
    size_t n = strtoul(argv[2], 0, 10);
    int repeats = argc > 3 ? atoi(argv[3]) : 3, vmas = 0;
    double best = 1e9;
    for (int r = 0; r < repeats; r++) {
        double t = run(kind, n, &vmas);
        if (t < best) best = t;
    }
    printf("{\"engine\": \"linux\", \"kind\": \"%s\", \"n\": %zu, \"seconds\": %.6f, \"vmas\": %d}\n",
           kind, n, best, vmas);
    return 0;
}
