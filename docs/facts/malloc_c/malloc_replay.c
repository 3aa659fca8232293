/* pagelab issue #9: replay a malloc/free sequence with the host's glibc, print each malloc's offset from
 * the initial break (or "M" and the page offset for a chunk outside the heap) and the final break offset.
 * stdin: lines "m SLOT SIZE" (malloc into slot), "f SLOT" (free the slot), "t PAD" (malloc_trim(PAD): prints
 * "T result break-offset"), "o PARAM VALUE" (mallopt: prints "O result") or "b OFFSET" (a one-page PROT_NONE
 * mapping at the initial break + OFFSET, MAP_FIXED_NOREPLACE: the heap cannot grow through it; prints "B0", or
 * "B-1" if the range was taken). Ends with "brk OFFSET" and "minflt N": the page faults glibc took (the probe's
 * own buffers are faulted in before counting). No stdio buffer in the heap.
 * gcc -O1 -o malloc_replay malloc_replay.c && ./malloc_replay < ops.txt */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
static char in[1 << 20], out[1 << 20];
static void *slot[4096];
int main(void) {
    char *heap0 = sbrk(0);
    size_t n = 0, outn = 0; ssize_t k;
    while ((k = read(0, in + n, sizeof in - 1 - n)) > 0) n += k;
    in[n] = 0;
    memset(out, 1, sizeof out);  /* the probe's own pages, faulted before the count starts */
    memset(slot, 0, sizeof slot);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    for (char *line = strtok(in, "\n"); line; line = strtok(NULL, "\n")) {
        long s, size;
        if (sscanf(line, "m %ld %ld", &s, &size) == 2) {
            char *p = malloc(size);
            slot[s] = p;
            if (p >= heap0 && p < (char *)sbrk(0)) outn += snprintf(out + outn, sizeof out - outn, "%ld\n", (long)(p - heap0));
            else outn += snprintf(out + outn, sizeof out - outn, "M%ld\n", (long)((size_t)p & 4095));
        } else if (sscanf(line, "f %ld", &s) == 1) { free(slot[s]); slot[s] = NULL; }
        else if (sscanf(line, "b %ld", &size) == 1) {
            void *m = mmap(heap0 + size, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            outn += snprintf(out + outn, sizeof out - outn, "B%d\n", m == MAP_FAILED ? -1 : 0);
        }
        else if (sscanf(line, "o %ld %ld", &s, &size) == 2)
            outn += snprintf(out + outn, sizeof out - outn, "O%d\n", mallopt((int)s, (int)size));
        else if (sscanf(line, "t %ld", &size) == 1) {
            int r = malloc_trim(size);
            outn += snprintf(out + outn, sizeof out - outn, "T%d %ld\n", r, (long)((char *)sbrk(0) - heap0));
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    outn += snprintf(out + outn, sizeof out - outn, "brk %ld\nminflt %ld\n", (long)((char *)sbrk(0) - heap0),
                     ru1.ru_minflt - ru0.ru_minflt);
    write(1, out, outn);
    return 0;
}
