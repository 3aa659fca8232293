/* pagelab issue #9: brk(2) semantics (raw syscall, no malloc: output through a static buffer).
 * gcc -o brk_probe brk_probe.c && ./brk_probe */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
static char out[8192]; static size_t outn;
static void emit(const char *k, long v) { outn += snprintf(out + outn, sizeof out - outn, "%s=%ld\n", k, v); }
static unsigned long B(unsigned long a) { return syscall(SYS_brk, a); }
extern char end;
int main(void) {
    unsigned long s = B(0), P = 4096;
    emit("gap_from_bss_end", (long)(s - (unsigned long)&end));
    emit("below", B(s - P) - s);
    emit("plus1", B(s + 1) - s);
    emit("plus5000", B(s + 5000) - s);
    emit("shrink_to_page", B(s + P) - s);
    emit("shrink_to_start", B(s) - s);
    emit("beyond_task_size", B(1UL << 47) - s);
    emit("all_ones", B(~0UL) - s);
    mmap((void *)(s + 16 * P), P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    emit("up_to_gap", B(s + 15 * P) - s);
    emit("into_gap", B(s + 15 * P + 1) - s);
    B(s);
    struct rlimit r = {64 * 1024, RLIM_INFINITY}; setrlimit(RLIMIT_DATA, &r);
    emit("rlimit_64k_at_64k", B(s + 64 * 1024) - s);
    write(1, out, outn);
    return 0;
}
