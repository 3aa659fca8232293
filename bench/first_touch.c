/* The real kernel's first-touch fault rate: write one byte per page of fresh private anonymous memory.
 * Usage: first_touch MIB REPEATS [random]. Prints one JSON line: faults, seconds (best of REPEATS), faults/s.
 * With "random" the pages are written in a shuffled order (the shuffle is done before timing). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 64;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    int random_order = argc > 3 && argv[3][0] == 'r';
    size_t len = mib << 20, npages = len / 4096;
    size_t *order = malloc(npages * sizeof *order);
    for (size_t i = 0; i < npages; i++) order[i] = i;
    unsigned long long x = 42;
    for (size_t i = npages - 1; random_order && i > 0; i--) {  /* Fisher-Yates with an LCG */
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t j = (x >> 33) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    double best = 1e9;
    long faults = 0;
    for (int r = 0; r < repeats; r++) {
        volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); return 1; }
        struct rusage a, b;
        getrusage(RUSAGE_SELF, &a);
        double t0 = now();
        for (size_t i = 0; i < npages; i++) p[order[i] * 4096] = 1;
        double t = now() - t0;
        getrusage(RUSAGE_SELF, &b);
        faults = b.ru_minflt - a.ru_minflt;
        if (t < best) best = t;
        munmap((void *)p, len);
    }
    printf("{\"engine\": \"linux\", \"order\": \"%s\", \"mib\": %zu, \"faults\": %ld, \"seconds\": %.6f, "
           "\"faults_per_s\": %.0f}\n", random_order ? "random" : "sequential", mib, faults, best, faults / best);
    return 0;
}
