/* Does reading a shmem-backed file through its fd (pread) observe the content of a page that is absent
 * from a mapping, without changing residency? Design probe for issue 12 (contents of absent file and
 * shmem pages, docs/absent-contents.md). For memfd (MAP_SHARED and MAP_PRIVATE), a tmpfs file in
 * /dev/shm, a MAP_SHARED|MAP_ANONYMOUS mapping read through /proc/self/map_files (needs
 * CAP_SYS_ADMIN; skipped otherwise) and, if the hugetlb pool has a free page, a MFD_HUGETLB memfd:
 *   - a page written, then MADV_DONTNEED: absent in pagemap, pread shows the data;
 *   - a page never written (a hole): pread shows zeros and allocates nothing (st_blocks unchanged);
 *   - a page written, then MADV_REMOVE: pread shows zeros;
 *   - ftruncate shrink: pread past EOF returns 0 bytes; regrow: the page reads zero;
 * and after every pread the mapping's pagemap entries stay absent and its smaps Rss is unchanged.
 * Build: cc -O2 -o absent_pread absent_pread.c; run: ./absent_pread (exit 0: all checks held).
 * Restores nothing global: it only creates files it unlinks/closes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static long ps;
static int fails;

#define CHECK(cond, ...) do { if (!(cond)) { fails++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static uint64_t pagemap(void *addr) {
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	if (fd < 0 || pread(fd, &e, 8, (uintptr_t)addr / ps * 8) != 8) { perror("pagemap"); exit(2); }
	close(fd);
	return e;
}

static int present(void *addr) { return (pagemap(addr) >> 63) & 1; }

/* smaps Rss (kB) of the VMA starting at addr. */
static long rss_kb(void *addr) {
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;
	long rss = -1;
	unsigned long lo;
	if (!f) { perror("smaps"); exit(2); }
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-", &lo) == 1 && strchr(line, '-') && strchr(line, ' ') > strchr(line, '-'))
			in = lo == (uintptr_t)addr;
		else if (in && sscanf(line, "Rss: %ld kB", &rss) == 1)
			break;
	}
	fclose(f);
	return rss;
}

static long blocks(int fd) { struct stat st; fstat(fd, &st); return (long)st.st_blocks; }

/* pread page `pg` of fd into buf; returns bytes read. */
static ssize_t readpg(int fd, long pg, long sz, unsigned char *buf) {
	memset(buf, 0xee, sz);
	return pread(fd, buf, sz, pg * sz);
}

static int uniform(unsigned char *b, long n, unsigned char v) {
	for (long i = 0; i < n; i++) if (b[i] != v) return 0;
	return 1;
}

/* The scenario on an fd of 4 pages of size sz mapped at m (shared) and, if priv, a private mapping too. */
static void run(const char *what, int fd, unsigned char *m, long sz, int can_truncate) {
	unsigned char *buf = malloc(sz);
	long n = 4;
	printf("== %s\n", what);
	/* page 0: written, then DONTNEED */
	memset(m, 0x5a, sz);
	CHECK(madvise(m, sz, MADV_DONTNEED) == 0, "%s: DONTNEED: %s", what, strerror(errno));
	/* page 2: written, then REMOVE */
	memset(m + 2 * sz, 0x77, sz);
	CHECK(madvise(m + 2 * sz, sz, MADV_REMOVE) == 0, "%s: REMOVE: %s", what, strerror(errno));
	long rss0 = rss_kb(m), blk0 = blocks(fd);
	for (long p = 0; p < n; p++) CHECK(!present(m + p * sz), "%s: page %ld present before the reads", what, p);
	ssize_t r0 = readpg(fd, 0, sz, buf);
	CHECK(r0 == sz && uniform(buf, sz, 0x5a), "%s: page 0 (written, DONTNEED) reads %zd bytes, first 0x%02x", what, r0, buf[0]);
	ssize_t r1 = readpg(fd, 1, sz, buf);
	CHECK(r1 == sz && uniform(buf, sz, 0), "%s: page 1 (hole) reads %zd bytes, first 0x%02x", what, r1, buf[0]);
	ssize_t r2 = readpg(fd, 2, sz, buf);
	CHECK(r2 == sz && uniform(buf, sz, 0), "%s: page 2 (REMOVE) reads %zd bytes, first 0x%02x", what, r2, buf[0]);
	for (long p = 0; p < n; p++) CHECK(!present(m + p * sz), "%s: page %ld present after the reads", what, p);
	long rss1 = rss_kb(m), blk1 = blocks(fd);
	CHECK(rss0 == rss1, "%s: Rss %ld kB -> %ld kB", what, rss0, rss1);
	CHECK(blk0 == blk1, "%s: st_blocks %ld -> %ld (the hole read allocated)", what, blk0, blk1);
	printf("   page0 %zd bytes 0x5a, page1 hole %zd bytes zero, page2 REMOVE %zd bytes zero; Rss %ld->%ld kB, st_blocks %ld->%ld\n",
	       r0, r1, r2, rss0, rss1, blk0, blk1);
	if (can_truncate) {
		memset(m + 3 * sz, 0x33, sz);
		CHECK(madvise(m + 3 * sz, sz, MADV_DONTNEED) == 0, "%s: DONTNEED 3", what);
		CHECK(ftruncate(fd, 2 * sz) == 0, "%s: shrink: %s", what, strerror(errno));
		ssize_t r3 = readpg(fd, 3, sz, buf);
		CHECK(r3 == 0, "%s: page 3 past EOF reads %zd bytes", what, r3);
		CHECK(ftruncate(fd, 4 * sz) == 0, "%s: regrow: %s", what, strerror(errno));
		ssize_t r3b = readpg(fd, 3, sz, buf);
		CHECK(r3b == sz && uniform(buf, sz, 0), "%s: page 3 after shrink+regrow reads %zd bytes, first 0x%02x", what, r3b, buf[0]);
		CHECK(!present(m + 3 * sz), "%s: page 3 present after the reads", what);
		printf("   page3 written+DONTNEED, shrink: past EOF %zd bytes; regrow: %zd bytes zero\n", r3, r3b);
	}
	free(buf);
}

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	ps = sysconf(_SC_PAGESIZE);
	long n = 4;
	/* memfd, MAP_SHARED */
	int fd = memfd_create("absent", 0);
	if (fd < 0 || ftruncate(fd, n * ps)) { perror("memfd"); return 2; }
	unsigned char *m = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) { perror("mmap"); return 2; }
	run("memfd MAP_SHARED", fd, m, ps, 1);
	/* MAP_PRIVATE of the same memfd: an absent private page shows the file's content through the fd. */
	unsigned char *pv = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	unsigned char *buf = malloc(ps);
	memset(m + ps, 0x44, ps); /* page 1 through the shared mapping */
	CHECK(!present(pv + ps), "memfd MAP_PRIVATE: page 1 present");
	long prss0 = rss_kb(pv);
	ssize_t r = readpg(fd, 1, ps, buf);
	CHECK(r == ps && uniform(buf, ps, 0x44), "memfd MAP_PRIVATE: page 1 reads %zd bytes 0x%02x", r, buf[0]);
	CHECK(!present(pv + ps) && rss_kb(pv) == prss0, "memfd MAP_PRIVATE: the read changed residency");
	printf("== memfd MAP_PRIVATE\n   absent page 1 reads the file's 0x%02x (%zd bytes), private mapping stays absent, Rss %ld kB\n", buf[0], r, prss0);
	munmap(pv, n * ps);
	munmap(m, n * ps);
	close(fd);

	/* tmpfs file */
	char path[] = "/dev/shm/absent_preadXXXXXX";
	fd = mkstemp(path);
	if (fd >= 0) {
		unlink(path);
		if (ftruncate(fd, n * ps) == 0 && (m = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) != MAP_FAILED) {
			run("tmpfs /dev/shm MAP_SHARED", fd, m, ps, 1);
			munmap(m, n * ps);
		}
		close(fd);
	} else {
		printf("== tmpfs: skipped (mkstemp /dev/shm: %s)\n", strerror(errno));
	}

	/* MAP_SHARED|MAP_ANONYMOUS: shmem with no fd the process keeps; /proc/self/map_files gives one (CAP_SYS_ADMIN). */
	m = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char mf[128];
	snprintf(mf, sizeof mf, "/proc/self/map_files/%lx-%lx", (unsigned long)(uintptr_t)m, (unsigned long)(uintptr_t)(m + n * ps));
	fd = open(mf, O_RDONLY);
	if (fd >= 0) {
		run("MAP_SHARED|MAP_ANONYMOUS via /proc/self/map_files", fd, m, ps, 0);
		close(fd);
	} else {
		printf("== MAP_SHARED|MAP_ANONYMOUS: skipped (open %s: %s)\n", mf, strerror(errno));
	}
	munmap(m, n * ps);

	/* hugetlb memfd: only if the pool has a free page (the probe never changes nr_hugepages). */
	long hps = 2 << 20;
	fd = memfd_create("absent_huge", MFD_HUGETLB);
	if (fd >= 0 && ftruncate(fd, n * hps) == 0 &&
	    (m = mmap(NULL, n * hps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0)) != MAP_FAILED) {
		/* A hole read needs no huge page: pread of a never-faulted hugetlb file page. */
		unsigned char *hb = malloc(hps);
		memset(hb, 0xee, hps);
		ssize_t hr = pread(fd, hb, hps, hps);
		CHECK(hr == hps && uniform(hb, hps, 0), "hugetlb memfd: hole reads %zd bytes 0x%02x", hr, hb[0]);
		CHECK(!present(m + hps), "hugetlb memfd: hole present after the read");
		printf("== hugetlb memfd hole (no huge page faulted): %zd bytes zero, stays absent\n", hr);
		free(hb);
		munmap(m, n * hps);
	} else {
		printf("== hugetlb memfd: skipped (%s)\n", strerror(errno));
	}
	if (fd >= 0) close(fd);
	printf("%s: %d failed checks\n", fails ? "FAIL" : "ok", fails);
	return fails ? 1 : 0;
}
