/* Item k: TLB geometry from CPUID (AMD leaves 0x80000005, 0x80000006, 0x80000019).
 * Decoding per AMD64 APM vol.3 (CPUID Fn8000_0005/6/19) and AMD PPR for family 19h. */
#include <stdio.h>
#include <cpuid.h>
static const char *assoc6(unsigned a) { /* L2 TLB associativity encoding of Fn8000_0006 */
    static const char *t[16] = {"disabled","1-way","2-way","3-way","4-way","reserved(5)","8-way","reserved(7)","16-way","reserved(9)","32-way","48-way","64-way","96-way","128-way","fully assoc"};
    return t[a & 15]; }
static void l1(const char *n, unsigned r) { /* Fn8000_0005: [31:24] assoc (0xff = full), [23:16] entries for D, [15:8] assoc, [7:0] entries for I */
    printf("  %-26s L1 DTLB: %3u entries, assoc %u%s | L1 ITLB: %3u entries, assoc %u%s\n", n,
           (r >> 16) & 0xff, r >> 24, (r >> 24) == 0xff ? " (fully)" : "", r & 0xff, (r >> 8) & 0xff, ((r >> 8) & 0xff) == 0xff ? " (fully)" : ""); }
static void l2(const char *n, unsigned r) { /* Fn8000_0006 / _0019: [31:28] D assoc, [27:16] D entries, [15:12] I assoc, [11:0] I entries */
    printf("  %-26s L2 DTLB: %4u entries, %s | L2 ITLB: %4u entries, %s\n", n, (r >> 16) & 0xfff, assoc6(r >> 28), r & 0xfff, assoc6((r >> 12) & 15)); }
int main(void) {
    unsigned a, b, c, d, max;
    __cpuid(0x80000000, max, b, c, d);
    __cpuid(1, a, b, c, d);
    unsigned fam = ((a >> 8) & 15) + (((a >> 8) & 15) == 15 ? ((a >> 20) & 0xff) : 0);
    unsigned model = ((a >> 4) & 15) | (((a >> 16) & 15) << 4);
    printf("CPUID: family %#x model %#x stepping %u; max extended leaf %#x\n", fam, model, a & 15, max);
    __cpuid(0x80000005, a, b, c, d);
    printf("Fn8000_0005: EAX=%#010x EBX=%#010x\n", a, b);
    l1("2 MiB/4 MiB pages (EAX):", a); l1("4 KiB pages (EBX):", b);
    __cpuid(0x80000006, a, b, c, d);
    printf("Fn8000_0006: EAX=%#010x EBX=%#010x\n", a, b);
    l2("2 MiB/4 MiB pages (EAX):", a); l2("4 KiB pages (EBX):", b);
    if (max >= 0x80000019) {
        __cpuid(0x80000019, a, b, c, d);
        printf("Fn8000_0019: EAX=%#010x EBX=%#010x\n", a, b);
        l2("1 GiB pages L1 (EAX, same layout as 0006):", a);
        l2("1 GiB pages L2 (EBX):", b);
    }
    return 0;
}
