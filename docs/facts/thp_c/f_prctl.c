/* Item f extra: does PR_SET_THP_DISABLE change placement? (3 mmaps of 4 MiB after prctl) */
#include "thp_common.h"
int main(void) {
    must(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), "prctl");
    for (int i = 0; i < 3; i++) { char *p = mmap(NULL, 4 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("after PR_SET_THP_DISABLE: 4 MiB mmap at %p, %%2M = %lu KiB\n", p, ((unsigned long)p % HPAGE) / KB); }
    return 0;
}
