/* Item b extra: what VmPTE (and so PageTables) counts for a written 64 MiB private mapping,
 * depending on whether upper-level tables already exist.
 *   near: placed by the kernel (below existing mappings: PUD and PMD tables exist)
 *   newgib: MAP_FIXED at a 1 GiB-aligned address in an otherwise used 512 GiB slot (new PMD table)
 *   new512g: MAP_FIXED at a 512 GiB-aligned address nothing else uses (new PUD + PMD table) */
#include "thp_common.h"
static void one(const char *name, char *want) {
    long long v0 = status_kb("VmPTE");
    char *p = want ? mmap(want, 64 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
                   : mmap(NULL, 64 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return; }
    touch_w(p, 64 * MB);
    long long v1 = status_kb("VmPTE");
    munmap(p, 64 * MB);
    long long v2 = status_kb("VmPTE");
    printf("%-8s at %p: VmPTE after writing 64 MiB %+lld kB; after munmap %+lld kB (net)\n", name, p, v1 - v0, v2 - v0);
}
int main(void) {
    one("near", NULL); one("near", NULL);
    unsigned long stack_ish = (unsigned long)&stack_ish;
    /* a 1 GiB-aligned address 8 GiB below the lowest library area: same 512 GiB slot, new PMD table */
    unsigned long lib = (unsigned long)printf;
    one("newgib", (char *)(((lib >> 30) - 8) << 30));
    one("new512g", (char *)0x200000000000UL);
    (void)stack_ish;
    return 0;
}
