/* MREMAP_DONTUNMAP of an mlock()ed range leaves mm->locked_vm (VmLck in /proc/self/status) raised by
 * the moved length after everything is unmapped.
 * exit 0: VmLck back to its starting value (no leak); 1: leak; 2: setup failed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
static long vmlck_kb(void) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (!f) return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmLck:", 6)) v = atol(line + 6);
	fclose(f);
	return v;
}
int main(void) {
	long ps = sysconf(_SC_PAGESIZE);
	char *base = mmap(NULL, 64 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) { perror("mmap reserve"); return 2; }
	munmap(base, 64 * ps);
	long start = vmlck_kb();
	char *a = mmap(base, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (a == MAP_FAILED) { perror("mmap"); return 2; }
	if (mlock(a, 4 * ps)) { perror("mlock"); return 2; }
	long locked = vmlck_kb();
	void *r = mremap(a, 4 * ps, 4 * ps, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, base + 16 * ps);
	if (r == MAP_FAILED) { perror("mremap"); return 2; }
	long moved = vmlck_kb();
	munmap(base, 64 * ps);
	long end = vmlck_kb();
	printf("VmLck kB: start %ld, after mlock %ld, after mremap(DONTUNMAP) %ld, after munmap of all %ld\n",
	       start, locked, moved, end);
	return end == start ? 0 : 1;
}
