/* hugetlb mremap: moving part of a private MAP_HUGETLB mapping leaks the reservations of the rest.
 *
 * move_vma() calls clear_vma_resv_huge_pages() (6.16+: fixup_hugetlb_reservations()) on the whole
 * source VMA before the moved range is unmapped from it, so what is left of the source no longer owns
 * the reservation map: its unfaulted pages' reservations are neither consumed nor given back at munmap,
 * and HugePages_Rsvd stays raised until reboot.
 *
 * DESTRUCTIVE: leaks huge pages on the machine that runs it. Run it only in a disposable guest:
 *   gcc -std=c99 -O2 -static -o leak docs/repro/hugetlb_mremap_partial_move_leaks_rsvd.c
 *   cargo xtask qemu --kernel 6.12 --exec leak
 * Exit 0: no reservation leaked; 1: HugePages_Rsvd did not come back; 2: setup failed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HP (2UL << 20)

static long field(const char *name) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name))) v = atol(line + strlen(name));
    fclose(f);
    return v;
}

static long rsvd0, free0;
static void show(const char *what) {
    printf("%-52s Rsvd %+ld Free %+ld\n", what, field("HugePages_Rsvd:") - rsvd0, field("HugePages_Free:") - free0);
}

int main(void) {
    FILE *n = fopen("/proc/sys/vm/nr_hugepages", "w");
    if (!n || fprintf(n, "16\n") < 0 || fclose(n)) { perror("nr_hugepages"); return 2; }
    rsvd0 = field("HugePages_Rsvd:");
    free0 = field("HugePages_Free:");
    char *a = mmap(NULL, 3 * HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    char *d = mmap(NULL, HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (a == MAP_FAILED || d == MAP_FAILED) { perror("mmap"); return 2; }
    show("mmap 3 + 1 private huge pages");
    a[0] = 1;
    show("fault the first page");
    if (mremap(a + HP, HP, HP, MREMAP_MAYMOVE | MREMAP_FIXED, d) == MAP_FAILED) { perror("mremap"); return 2; }
    show("mremap the middle page onto the other mapping");
    munmap(d, HP);
    show("munmap the moved page");
    munmap(a, 3 * HP);
    show("munmap the rest");
    long leak = field("HugePages_Rsvd:") - rsvd0;
    printf("%s: HugePages_Rsvd %+ld after everything was unmapped\n", leak ? "LEAK" : "ok", leak);
    return leak ? 1 : 0;
}
