/* pagelab issue #9: glibc malloc and brk facts on this host (docs/facts/malloc.md).
 * gcc -O1 -o malloc_probe malloc_probe.c && ./malloc_probe [MiB for pattern c, default 100]
 * Prints key=value lines. No stdio buffer is allocated (output through a static buffer and write()),
 * so the heap holds only what the patterns allocate; offsets are from the initial break. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/syscall.h>
#include <sys/resource.h>

static char out[1 << 14];
static size_t outn;
static void emit(const char *k, long v) { outn += snprintf(out + outn, sizeof out - outn, "%s=%ld\n", k, v); }
static long minflt(void) { struct rusage r; getrusage(RUSAGE_SELF, &r); return r.ru_minflt; }
static long rss_kb(void) {
    static char b[8192]; int fd = open("/proc/self/status", O_RDONLY); long n = read(fd, b, sizeof b - 1); close(fd);
    b[n > 0 ? n : 0] = 0; char *p = strstr(b, "VmRSS:"); return p ? atol(p + 6) : -1;
}
static char *heap0;
static long off(void *p) { return (char *)p - heap0; }
static long brkoff(void) { return off(sbrk(0)); }
static int mmapped(void *p) { return (((size_t *)p)[-1] & 2) != 0; }
static void *v[1 << 20];

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 100;
    heap0 = sbrk(0);
    /* placement */
    void *a = malloc(16);
    emit("first_malloc16_off", off(a)); emit("first_brk_growth", brkoff());
    void *b = malloc(128 * 1024 - 24); emit("m128k_24_inheap", !mmapped(b)); emit("brk_after_128k_24", brkoff());
    void *c = malloc(128 * 1024 - 16); emit("m128k_16_inheap", !mmapped(c)); emit("m128k_16_chunk", ((size_t *)c)[-1] & ~7UL);
    emit("m128k_16_page_off", (long)((size_t)c & 4095));
    free(c); free(b); free(a);
    emit("brk_after_frees", brkoff());
    /* pattern a */
    long f0 = minflt(), b0 = brkoff();
    for (int i = 0; i < 1000; i++) { v[i] = malloc(1024); memset(v[i], 1, 1024); }
    emit("a_minflt", minflt() - f0); emit("a_brk_before", b0); emit("a_brk_after", brkoff());
    for (int i = 0; i < 1000; i++) free(v[i]);
    emit("a_brk_after_free", brkoff());
    /* pattern b */
    f0 = minflt(); char *p = malloc(1 << 20); memset(p, 1, 1 << 20);
    emit("b1_minflt", minflt() - f0); emit("b1_mmapped", mmapped(p)); emit("b1_chunk", ((size_t *)p)[-1] & ~7UL);
    free(p);
    f0 = minflt(); p = malloc(1 << 20); memset(p, 1, 1 << 20);
    emit("b2_minflt", minflt() - f0); emit("b2_mmapped", mmapped(p)); emit("b2_brk", brkoff());
    free(p);
    f0 = minflt(); p = malloc(1 << 20); memset(p, 1, 1 << 20);
    emit("b3_minflt", minflt() - f0); emit("b3_mmapped", mmapped(p)); free(p);
    emit("b_brk_after_free", brkoff());
    p = malloc(40 << 20); emit("m40m_mmapped", mmapped(p)); free(p);
    p = malloc(2 << 20); emit("m2m_after_40m_mmapped", mmapped(p)); free(p);
    /* pattern c */
    long n = mib * 1024, r0 = rss_kb(); f0 = minflt();
    for (long i = 0; i < n; i++) { v[i] = malloc(1024); memset(v[i], 1, 1024); }
    emit("c_minflt", minflt() - f0); emit("c_rss_before", r0); emit("c_rss_full", rss_kb()); emit("c_brk_full", brkoff());
    for (long i = 0; i < n - 1; i++) free(v[i]);
    emit("c_rss_after_free", rss_kb()); emit("c_brk_after_free", brkoff());
    emit("c_trim", malloc_trim(0)); emit("c_rss_after_trim", rss_kb()); emit("c_brk_after_trim", brkoff());
    write(1, out, outn);
    return 0;
}
