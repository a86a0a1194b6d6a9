/* Does MADV_UNMERGEABLE on an mseal()ed VMA clear VM_SEALED (and so allow munmap/mprotect)?
 * Build: gcc -O2 -static -o unmergeable_unseals unmergeable_unseals.c
 * Exit 0: sealing held; 1: the VMA lost `sl` and/or munmap/mprotect succeeded; 125: no mseal. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#define MADV_UNMERGEABLE 13
#endif
static void flags_of(void *p, char *out, size_t n) {
    char line[512], want[64];
    FILE *f = fopen("/proc/self/smaps", "r");
    int in = 0;
    snprintf(want, sizeof want, "%lx-", (unsigned long)p);
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, want, strlen(want))) in = 1;
        else if (in && !strncmp(line, "VmFlags:", 8)) { snprintf(out, n, "%s", line + 9); out[strcspn(out, "\n")] = 0; break; }
    }
    if (f) fclose(f);
}
static int sealed(const char *fl) { return strstr(fl, " sl") != NULL || !strncmp(fl, "sl", 2); }
int main(void) {
    long ps = sysconf(_SC_PAGESIZE);
    int bad = 0;
    for (int merge_first = 1; merge_first >= 0; merge_first--) {
        char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char fl[256];
        if (p == MAP_FAILED) { perror("mmap"); return 3; }
        p[0] = 1;
        if (syscall(462, p, 2 * ps, 0) != 0) { printf("mseal: %s\n", strerror(errno)); return 125; }
        flags_of(p, fl, sizeof fl);
        printf("merge_first=%d after mseal:       %s\n", merge_first, fl);
        if (merge_first) {
            int r = madvise(p, 2 * ps, MADV_MERGEABLE);
            flags_of(p, fl, sizeof fl);
            printf("MADV_MERGEABLE   -> %d (%s): %s\n", r, r ? strerror(errno) : "ok", fl);
        }
        int r = madvise(p, 2 * ps, MADV_UNMERGEABLE);
        flags_of(p, fl, sizeof fl);
        printf("MADV_UNMERGEABLE -> %d (%s): %s\n", r, r ? strerror(errno) : "ok", fl);
        if (!sealed(fl)) { printf("  VM_SEALED is gone from smaps\n"); bad = 1; }
        r = mprotect(p, ps, PROT_READ);
        printf("mprotect(PROT_READ) -> %d (%s)\n", r, r ? strerror(errno) : "ok: the seal did not hold");
        if (r == 0) bad = 1;
        r = munmap(p, 2 * ps);
        printf("munmap -> %d (%s)\n", r, r ? strerror(errno) : "ok: the seal did not hold");
        if (r == 0) bad = 1;
    }
    printf("%s\n", bad ? "RESULT: sealing lost" : "RESULT: sealing held");
    return bad;
}
