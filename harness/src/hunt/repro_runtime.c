
/* ---- the fixed part (harness/src/hunt/repro_runtime.c): setup, observation, comparison ---- */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
#ifndef SYS_mlock2
#define SYS_mlock2 __NR_mlock2
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif

static uint64_t PS;
#define PAGE(n) ((void *)(uintptr_t)(BASE + (uint64_t)(n) * PS))

/* Protection keys (x86 PKU): PKRU is read and written with RDPKRU/WRPKRU where CPUID says the OS
   enabled them (OSPKE, CPUID.7.0:ECX bit 4); elsewhere PKRU reads as 0 (every access allowed). */
#if defined(__x86_64__)
#include <cpuid.h>
static int has_ospke(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (c >> 4) & 1;
}
static unsigned rdpkru(void) {
  unsigned eax, edx;
  if (!has_ospke()) return 0;
  __asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}
static void wrpkru(unsigned v) {
  if (!has_ospke()) return;
  __asm__ volatile(".byte 0x0f,0x01,0xef" : : "a"(v), "c"(0), "d"(0) : "memory");
}
#else
static unsigned rdpkru(void) { return 0; }
static void wrpkru(unsigned v) { (void)v; }
#endif
/* pkey_set: this thread's rights for one key (glibc's pkey_set, without its checks). */
__attribute__((unused)) static long pkey_set_rights(unsigned key, unsigned rights) {
  wrpkru((rdpkru() & ~(3u << (2 * key))) | (rights << (2 * key)));
  return 0;
}

/* try_write / try_read: one access whose SIGSEGV or SIGBUS is caught (kselftest guard-regions.c's
   try_read_buf/try_write_buf); returns 0, or -signal. The madcheck worker does the access in a
   CLONE_VM task instead; both take the same kernel fault path. */
static sigjmp_buf try_jmp;
static volatile sig_atomic_t try_sig;
static void try_handler(int sig) { try_sig = sig; siglongjmp(try_jmp, 1); }
__attribute__((unused)) static long try_access(int page, int fill) {
  struct sigaction sa, old_segv, old_bus;
  long r = 0;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = try_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  try_sig = 0;
  /* A handler runs with the init PKRU (6.12+: all keys but 0 disabled) and siglongjmp skips the
     sigreturn that would restore it, so the rights are put back by hand. */
  unsigned pkru = rdpkru();
  if (sigsetjmp(try_jmp, 1) == 0) {
    if (fill >= 0) {
      memset(PAGE(page), fill, PS);
      __asm__ volatile("" ::: "memory");
    } else {
      (void)*(volatile unsigned char *)PAGE(page);
    }
  } else {
    r = -(long)try_sig;
    wrpkru(pkru);
  }
  sigaction(SIGSEGV, &old_segv, NULL);
  sigaction(SIGBUS, &old_bus, NULL);
  return r;
}

struct vexp {
  long start, end;
  const char *perms;
  unsigned long offset;
  long backing; /* file index, or -1 anon, -2 shmem, -3 hugetlb, -4 foreign */
  const char *flags;
  unsigned long lim[14]; /* rss, anon, lazyfree, locked, hugetlb_shared, hugetlb_private, swap: lo, hi */
  const char *txt[7];
  long pkey; /* smaps ProtectionKey:, -1 where the kernel prints none */
};
struct pexp {
  int res;  /* 0 absent, 1 present, 2 zero page, 3 swap-format */
  int kind; /* 0 none, 1 zero, 2 fill a, 3 file a page b, 4 anything else (a hash) */
  unsigned long a, b;
};
struct point {
  const char *id, *call, *unsupported;
  int nret;
  long ret[8]; /* 0, errno, -signal, or BYTES + a byte count */
  const char *ret_text;
  int nvma;
  const char *layout_text;
  int npages;
  const char *const *page_text;
  int huge;
  long hfree, hrsvd, hsurp;
  const char *huge_text;
  int lck;          /* locked_vm observed (USES_MLOCK) */
  long lck_pages;   /* mm->locked_vm, in pages */
  const char *lck_text;
  const struct vexp *vma;
  const int *aidx;
};

static long do_step(int s);
static int scenario(void);
/*@TABLES@*/

/* Where each process is: the point whose step runs now (slot 0: the scenario process, 1: a fork
 * child), in memory shared with the parent that reports a death by signal. */
struct cursor { volatile int point, child_point; };
static struct cursor *cur;

static int file_fd[NFILES + 1];
static dev_t file_dev[NFILES + 1];
static ino_t file_ino[NFILES + 1];
static uint64_t zero_pfn;
static long huge_base[3];

static long rc(long r) { return r == 0 ? 0 : errno; }

/* VmLck of /proc/self/status (mm->locked_vm), in kB; -1 if unreadable. */
static long vm_lck_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmLck:", 6) == 0) v = atol(line + 6);
  fclose(f);
  return v;
}

/* process_madvise: a byte count is returned as BYTES + n, apart from 0 and errno values. The pidfds are
 * made when the scenario process starts, before the arena exists, as the worker does: its own, one of a
 * child that has exited and been reaped (ESRCH), and a file that is not a pidfd (an eventfd). */
#define BYTES 0x100000000L
/* pkey_alloc: a key is returned as KEY + k. */
#define KEY 0x200000000L
static int self_pidfd = -1, dead_pidfd = -1, not_pidfd = -1, live_pidfd = -1;
static long pm(int fd, const struct iovec *v, unsigned long vlen, int advice, unsigned flags) {
  long r = syscall(440 /* process_madvise */, fd, v, vlen, advice, flags);
  return r < 0 ? errno : BYTES + r;
}
static void pm_setup(void) {
  self_pidfd = (int)syscall(434 /* pidfd_open */, getpid(), 0);
  pid_t c = vfork(); /* not fork: this process's mm never goes through dup_mmap, as in the worker */
  if (c == 0) _exit(0);
  if (c > 0) {
    dead_pidfd = (int)syscall(434 /* pidfd_open */, c, 0);
    while (waitpid(c, NULL, 0) < 0 && errno == EINTR) {}
  }
  not_pidfd = (int)syscall(SYS_eventfd2, 0, 0);
}

static int do_mmap(long page, long pages, int prot, int flags, int fd, long off) {
  void *want = PAGE(page);
  void *p = mmap(want, (size_t)pages * PS, prot, flags, fd, (off_t)off * (off_t)PS);
  if (p == MAP_FAILED) return errno;
  if (p != want) { munmap(p, (size_t)pages * PS); return EEXIST; }
  return 0;
}

static int setup_failed(const char *what) {
  printf("%s: setup failed: %s: %s\n", ID, what, strerror(errno));
  return 3;
}

static void file_page(unsigned file, unsigned page, unsigned char *buf) {
  unsigned char seed = (unsigned char)(file * 131u + page * 7u);
  memcpy(buf, "MADCHECK", 8);
  for (int i = 0; i < 4; i++) buf[8 + i] = (unsigned char)(file >> (8 * i));
  for (int i = 0; i < 4; i++) buf[12 + i] = (unsigned char)(page >> (8 * i));
  for (uint64_t i = 16; i < PS; i++) buf[i] = (unsigned char)((seed + (unsigned char)(i % 251)) | 1);
}

static int create_files(void) {
  static unsigned char buf[1 << 16];
  const char *tmp = getenv("TMPDIR");
  char path[4096];
  for (int i = 0; i < NFILES; i++) {
    int fd;
    if (file_kind[i] == 0 || file_kind[i] == 3) {
      /* 0: a disk file in $TMPDIR; 3: a regular file on the tmpfs mount /dev/shm. */
      snprintf(path, sizeof path, "%s/madcheck-repro-XXXXXX", file_kind[i] == 3 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp");
      fd = mkstemp(path);
      if (fd < 0 && file_kind[i] == 3) { printf("%s: cannot test here: no writable tmpfs directory /dev/shm\n", ID); return 125; }
      if (fd < 0) return setup_failed("create a disk file");
      unlink(path);
    } else {
      fd = (int)syscall(SYS_memfd_create, "madcheck-repro", MFD_CLOEXEC | (file_kind[i] == 2 ? MFD_HUGETLB : 0) | (file_sealing[i] ? MFD_ALLOW_SEALING : 0));
      if (fd < 0) return setup_failed("memfd_create");
    }
    if (file_kind[i] == 2) {
      if (ftruncate(fd, (off_t)file_pages[i] * (off_t)PS) != 0) return setup_failed("ftruncate hugetlbfs memfd");
    } else {
      /* One pwrite per page, as the worker does: it keeps page-cache folios order-0. */
      for (unsigned n = 0; n < file_pages[i]; n++) {
        file_page((unsigned)i, n, buf);
        if (pwrite(fd, buf, PS, (off_t)n * (off_t)PS) != (ssize_t)PS) return setup_failed("pwrite a file page");
      }
    }
    if (file_readonly[i]) {
      /* The scenario holds only an O_RDONLY fd: reopen the same inode through /proc/self/fd. */
      char self[64];
      snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
      int ro = open(self, O_RDONLY | O_CLOEXEC);
      if (ro < 0) return setup_failed("reopen a file O_RDONLY");
      close(fd);
      fd = ro;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) return setup_failed("fstat");
    file_fd[i] = fd;
    file_dev[i] = st.st_dev;
    file_ino[i] = st.st_ino;
  }
  return 0;
}

static int read_meminfo(long out[3]) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  int got = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "HugePages_Free: %ld", &out[0]) == 1) got |= 1;
    if (sscanf(line, "HugePages_Rsvd: %ld", &out[1]) == 1) got |= 2;
    if (sscanf(line, "HugePages_Surp: %ld", &out[2]) == 1) got |= 4;
  }
  fclose(f);
  return got == 7 ? 0 : -1;
}

static unsigned long long reclaim_counter(void) {
  FILE *f = fopen("/proc/vmstat", "r");
  char name[128];
  unsigned long long v, sum = 0;
  if (!f) return 0;
  while (fscanf(f, "%127s %llu", name, &v) == 2) {
    if (strncmp(name, "pgsteal_", 8) == 0 || (COUNT_LAZYFREED && strcmp(name, "pglazyfreed") == 0)) sum += v;
  }
  fclose(f);
  return sum;
}

/* ---- observation: what the worker's Observer reads ---- */
struct vobs {
  long start, end;
  char perms[8];
  unsigned long offset;
  long backing;
  char flags[512];
  unsigned long val[7];
  long pkey;
};
struct pobs { int res, kind; unsigned long a, b; };
static struct vobs ov[2 * MAX_PAGES + 8];
static int nov;
static struct pobs op[MAX_PAGES];
static long ohuge[3];

static long rel(uint64_t a) {
  int64_t d = (int64_t)(a - BASE);
  int64_t q = d / (int64_t)PS;
  if (d % (int64_t)PS < 0) q--;
  return (long)q;
}

static int read_smaps(void) {
  FILE *f = fopen("/proc/self/smaps", "r");
  static char line[8192];
  uint64_t lo = BASE, hi = BASE + (uint64_t)ARENA_PAGES * PS;
  struct vobs *v = NULL;
  nov = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long long s, e, off, ino;
    unsigned maj, mnr;
    char perms[8], name[4096];
    name[0] = 0;
    char *sp = strchr(line, ' ');
    int is_field = sp && sp > line && sp[-1] == ':';
    int n = is_field ? 0 : sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %4095s", &s, &e, perms, &off, &maj, &mnr, &ino, name);
    if (n >= 7) {
      v = NULL;
      if (s >= hi) break;
      if (e <= lo) continue;
      if (nov >= (int)(sizeof ov / sizeof ov[0])) break;
      v = &ov[nov++];
      memset(v, 0, sizeof *v);
      v->pkey = -1;
      v->start = rel(s);
      v->end = rel(e);
      snprintf(v->perms, sizeof v->perms, "%s", perms);
      v->offset = (unsigned long)(off / PS);
      if (ino == 0) v->backing = -1;
      else if (strncmp(name, "/anon_hugepage", 14) == 0) v->backing = -3;
      else if (strncmp(name, "/dev/zero", 9) == 0) v->backing = -2;
      else {
        v->backing = -4;
        for (int i = 0; i < NFILES; i++)
          if (major(file_dev[i]) == maj && minor(file_dev[i]) == mnr && file_ino[i] == ino) { v->backing = i; break; }
      }
      continue;
    }
    if (!v) continue;
    unsigned long long kb;
    static const char *const names[7] = {"Rss:", "Anonymous:", "LazyFree:", "Locked:", "Shared_Hugetlb:", "Private_Hugetlb:", "Swap:"};
    for (int i = 0; i < 7; i++) {
      size_t l = strlen(names[i]);
      if (strncmp(line, names[i], l) == 0 && sscanf(line + l, "%llu", &kb) == 1) v->val[i] = (unsigned long)(kb * 1024 / PS);
    }
    if (strncmp(line, "ProtectionKey:", 14) == 0 && sscanf(line + 14, "%llu", &kb) == 1) v->pkey = (long)kb;
    if (strncmp(line, "VmFlags:", 8) == 0) {
      char *p = line + 8, *out = v->flags;
      size_t room = sizeof v->flags - 1;
      for (char *tok = strtok(p, " \n"); tok; tok = strtok(NULL, " \n")) {
        size_t l = strlen(tok);
        if (l + 1 > room) break;
        if (out != v->flags) { *out++ = ' '; room--; }
        memcpy(out, tok, l);
        out += l;
        room -= l;
      }
      *out = 0;
    }
  }
  fclose(f);
  return 0;
}

static void classify(const unsigned char *b, struct pobs *o) {
  static unsigned char want[1 << 16];
  uint64_t i;
  for (i = 1; i < PS && b[i] == b[0]; i++) {}
  if (i == PS) { o->kind = b[0] == 0 ? 1 : 2; o->a = b[0]; return; }
  if (memcmp(b, "MADCHECK", 8) == 0) {
    unsigned file = 0, page = 0;
    for (int k = 0; k < 4; k++) file |= (unsigned)b[8 + k] << (8 * k);
    for (int k = 0; k < 4; k++) page |= (unsigned)b[12 + k] << (8 * k);
    file_page(file, page, want);
    if (memcmp(b, want, PS) == 0) { o->kind = 3; o->a = file; o->b = page; return; }
  }
  o->kind = 4;
}

/* Pages of unreadable VMAs are read through /proc/self/mem (FOLL_FORCE). A kernel with
   CONFIG_PROC_MEM_FORCE_PTRACE grants FOLL_FORCE only to the reader's ptracer and fails the read with
   EIO; then the main process, an ancestor of every scenario process, reads the page as its tracer:
   PTRACE_SEIZE, pread /proc/PID/mem, PTRACE_INTERRUPT, PTRACE_DETACH (madcheck's host/procmem.rs). */
static int mem_sock = -1;
static int force_helper; /* MADCHECK_PROC_MEM=ptrace: use the helper on any kernel (to test it) */
static int helper_read(uint64_t addr, unsigned char *buf) {
  static unsigned char rep[1 + (1 << 16)];
  long req[2] = { (long)getpid(), (long)addr };
  ssize_t n;
  if (mem_sock < 0 || send(mem_sock, req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req) return -1;
  while ((n = recv(mem_sock, rep, 1 + PS, 0)) < 0 && errno == EINTR) {}
  if (n != (ssize_t)(1 + PS) || rep[0] != 0) return -1;
  memcpy(buf, rep + 1, PS);
  return 0;
}
static void serve_read(int sock) {
  static unsigned char rep[1 + (1 << 16)];
  long req[2];
  char path[64];
  int st;
  if (recv(sock, req, sizeof req, MSG_DONTWAIT) != (ssize_t)sizeof req) return;
  pid_t pid = (pid_t)req[0];
  rep[0] = 1;
  if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
    snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd >= 0 && pread(fd, rep + 1, PS, (off_t)req[1]) == (ssize_t)PS) rep[0] = 0;
    if (fd >= 0) close(fd);
    ptrace(PTRACE_INTERRUPT, pid, 0, 0);
    while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {}
    if (WIFSTOPPED(st)) ptrace(PTRACE_DETACH, pid, 0, (void *)(uintptr_t)((st >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(st)));
  }
  send(sock, rep, rep[0] ? 1 : 1 + PS, MSG_NOSIGNAL);
}

static int read_pages(void) {
  static uint64_t pm[MAX_PAGES];
  static unsigned char buf[1 << 16];
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t want = (ssize_t)(ARENA_PAGES * sizeof(uint64_t));
  ssize_t got = pread(fd, pm, (size_t)want, (off_t)(BASE / PS * 8));
  close(fd);
  if (got != want) return -1;
  int vi = 0;
  for (long p = 0; p < ARENA_PAGES; p++) {
    struct pobs *o = &op[p];
    uint64_t e = pm[p];
    memset(o, 0, sizeof *o);
    if (e & (1ULL << 63)) o->res = (zero_pfn && (e & ((1ULL << 55) - 1)) == zero_pfn) ? 2 : 1;
    else if (e & (1ULL << 62)) o->res = 3;
    else o->res = 0;
    if (o->res == 2) { o->kind = 1; continue; }
    if (o->res != 1) continue;
    while (vi < nov && ov[vi].end <= p) vi++;
    /* A key this thread may not read (PKRU AD) would fault: such pages go through /proc/self/mem too
       (a foreign access, which pkeys do not check). */
    int readable = vi < nov && ov[vi].start <= p && ov[vi].perms[0] == 'r' && (ov[vi].pkey < 0 || !((rdpkru() >> (2 * ov[vi].pkey)) & 1));
    if (readable) { classify((const unsigned char *)PAGE(p), o); continue; }
    int mem = force_helper ? -1 : open("/proc/self/mem", O_RDONLY);
    ssize_t got = mem >= 0 ? pread(mem, buf, PS, (off_t)(uintptr_t)PAGE(p)) : -1;
    int err = force_helper ? EIO : errno;
    if (mem >= 0) close(mem);
    if (got != (ssize_t)PS && !(got < 0 && err == EIO && helper_read((uint64_t)(uintptr_t)PAGE(p), buf) == 0)) return -1;
    classify(buf, o);
  }
  return 0;
}

/* ---- rendering, in madcheck's words ---- */
static const char *errno_name(long e) {
  switch (e) {
  case 1: return "EPERM"; case 4: return "EINTR"; case 5: return "EIO"; case 9: return "EBADF";
  case 11: return "EAGAIN"; case 12: return "ENOMEM"; case 13: return "EACCES"; case 14: return "EFAULT";
  case 16: return "EBUSY"; case 17: return "EEXIST"; case 22: return "EINVAL"; case 28: return "ENOSPC";
  case 38: return "ENOSYS"; case 95: return "EOPNOTSUPP"; case 133: return "EHWPOISON";
  }
  return NULL;
}
static const char *signal_name(long s) {
  switch (s) { case 11: return "SIGSEGV"; case 7: return "SIGBUS"; case 6: return "SIGABRT"; case 9: return "SIGKILL"; case 4: return "SIGILL"; }
  return NULL;
}
static void render_ret(long r, char *out, size_t n) {
  if (r == 0) snprintf(out, n, "0");
  else if (r >= KEY) snprintf(out, n, "key %ld", r - KEY);
  else if (r >= BYTES) snprintf(out, n, "%ld bytes", r - BYTES);
  else if (r > 0) { const char *s = errno_name(r); if (s) snprintf(out, n, "%s", s); else snprintf(out, n, "errno %ld", r); }
  else { const char *s = signal_name(-r); if (s) snprintf(out, n, "%s", s); else snprintf(out, n, "signal %ld", -r); }
}
static void render_backing(long b, char *out, size_t n) {
  if (b >= 0) snprintf(out, n, "File(%ld)", b);
  else snprintf(out, n, "%s", b == -1 ? "Anon" : b == -2 ? "Shmem" : b == -3 ? "Hugetlb" : "Foreign");
}
static void render_page(const struct pobs *o, char *out, size_t n) {
  static const char *const res[4] = {"Absent", "Present", "ZeroPage", "Swap"};
  switch (o->kind) {
  case 0: snprintf(out, n, "%s", res[o->res]); break;
  case 1: snprintf(out, n, "%s Zero", res[o->res]); break;
  case 2: snprintf(out, n, "%s Fill(%lu)", res[o->res], o->a); break;
  case 3: snprintf(out, n, "%s FilePage { file: %lu, page: %lu }", res[o->res], o->a, o->b); break;
  default: snprintf(out, n, "%s Hash(not zero, a fill or a file page)", res[o->res]); break;
  }
}

static int shown;
static void header(int pi) {
  if (shown++) return;
  printf("DIVERGENCE %s at %s\n  %s\n", ID, P[pi].id, P[pi].call);
}
static void field(int pi, const char *name, const char *exp, const char *obs) {
  header(pi);
  printf("  %s:\n    expected  %s\n    observed  %s\n", name, exp, obs);
}

/* Compare the point's observation (taken now) with P[pi]; 0 match, 1 differ, 125 not comparable. */
/* `dead`: the process ended by the signal -ret, so there is nothing else to see; a caught fault
   (try_write/try_read) also returns -signal, but the process goes on and is observed. */
static int check_point(int pi, long ret, int dead) {
  char a[1024], b[256];
  if (pi >= NPOINTS) {
    printf("DIVERGENCE %s at point %d\n  points:\n    expected  %d points\n    observed  more\n", ID, pi, NPOINTS);
    return 1;
  }
  const struct point *pt = &P[pi];
  if (pt->unsupported) {
    printf("%s: point %s: the model does not know this behaviour (%s); not compared from here\n", ID, pt->id, pt->unsupported);
    return 125;
  }
  int ok = 0;
  for (int i = 0; i < pt->nret; i++) ok |= pt->ret[i] == ret;
  if (!ok) { render_ret(ret, b, sizeof b); field(pi, "ret", pt->ret_text, b); }
  if (dead) return shown ? 1 : 0; /* a fatal signal: the process is gone, nothing else to see */
  if (read_smaps() != 0) { printf("%s: cannot read /proc/self/smaps\n", ID); return 3; }
  if (read_pages() != 0) { printf("%s: cannot read pagemap or /proc/self/mem\n", ID); return 3; }
  int same = nov == pt->nvma;
  for (int i = 0; same && i < nov; i++) {
    const struct vexp *e = &pt->vma[i];
    same = e->start == ov[i].start && e->end == ov[i].end && strcmp(e->perms, ov[i].perms) == 0 &&
           e->offset == ov[i].offset && e->backing == ov[i].backing;
  }
  if (!same) {
    size_t used = 0;
    a[0] = 0;
    for (int i = 0; i < nov && used < sizeof a - 128; i++) {
      char bk[32];
      render_backing(ov[i].backing, bk, sizeof bk);
      used += (size_t)snprintf(a + used, sizeof a - used, "%s[%ld,%ld) %s off=%lu %s", i ? "; " : "", ov[i].start, ov[i].end,
                               ov[i].perms, ov[i].offset, bk);
    }
    field(pi, "vmas", pt->layout_text, a);
  } else {
    static const char *const names[7] = {"rss", "anon", "lazyfree", "locked", "hugetlb_shared", "hugetlb_private", "swap"};
    for (int i = 0; i < nov; i++) {
      const struct vexp *e = &pt->vma[i];
      if (strcmp(e->flags, ov[i].flags) != 0) { snprintf(b, sizeof b, "vma[%d].flags", i); field(pi, b, e->flags, ov[i].flags); }
      if (e->pkey != ov[i].pkey) {
        char x[32], o[32];
        snprintf(b, sizeof b, "vma[%d].pkey", i);
        snprintf(x, sizeof x, "%ld", e->pkey);
        snprintf(o, sizeof o, "%ld", ov[i].pkey);
        field(pi, b, x, o);
      }
      for (int k = 0; k < 7; k++) {
        if (ov[i].val[k] < e->lim[2 * k] || ov[i].val[k] > e->lim[2 * k + 1]) {
          char o[32];
          snprintf(b, sizeof b, "vma[%d].%s", i, names[k]);
          snprintf(o, sizeof o, "%lu", ov[i].val[k]);
          field(pi, b, e->txt[k], o);
        }
      }
    }
  }
  if (USES_HUGETLB) {
    long now[3];
    if (read_meminfo(now) != 0) { printf("%s: cannot read the HugePages_* counters\n", ID); return 3; }
    for (int k = 0; k < 3; k++) ohuge[k] = now[k] - huge_base[k];
    if (!pt->huge || ohuge[0] != pt->hfree || ohuge[1] != pt->hrsvd || ohuge[2] != pt->hsurp) {
      snprintf(a, sizeof a, "free %+ld rsvd %+ld surp %+ld", ohuge[0], ohuge[1], ohuge[2]);
      field(pi, "hugetlb", pt->huge_text, a);
    }
  } else if (pt->huge) {
    field(pi, "hugetlb", pt->huge_text, "not observed");
  }
  if (USES_MLOCK) {
    long kb = vm_lck_kb();
    if (kb < 0) { printf("%s: cannot read VmLck of /proc/self/status\n", ID); return 3; }
    if (!pt->lck || kb * 1024 / PS != pt->lck_pages) {
      snprintf(a, sizeof a, "%ld pages", kb * 1024 / PS);
      field(pi, "locked_vm", pt->lck_text, a);
    }
  } else if (pt->lck) {
    field(pi, "locked_vm", pt->lck_text, "not observed");
  }
  if (pt->npages != ARENA_PAGES) {
    snprintf(a, sizeof a, "%d pages", pt->npages);
    snprintf(b, sizeof b, "%d pages", ARENA_PAGES);
    field(pi, "pages", a, b);
  } else {
    for (int p = 0; p < ARENA_PAGES; p++) {
      int off = pt->aidx[2 * p], n = pt->aidx[2 * p + 1], hit = 0, same_res = 0;
      for (int k = 0; k < n; k++) {
        const struct pexp *x = &alts[off + k];
        int content_ok = x->kind == op[p].kind && (x->kind == 4 || (x->a == op[p].a && x->b == op[p].b));
        same_res |= x->res == op[p].res;
        hit |= x->res == op[p].res && content_ok;
      }
      if (!hit) {
        render_page(&op[p], a, sizeof a);
        snprintf(b, sizeof b, same_res ? "page[%d].content" : "page[%d].res", p);
        field(pi, b, pt->page_text[p], a);
      }
    }
  }
  return shown ? 1 : 0;
}

static int check(int pi, long ret) {
  return check_point(pi, ret, 0);
}

/* A process died by `sig` at point pi: that is the point's return, and nothing follows it. */
static int check_signal(int pi, int sig) {
  return check_point(pi, -(long)sig, 1);
}

#if USES_FORK
/* ---- fork: a child that runs its steps and exits ---- */
static void child_point(int pi, long ret) {
  int k = check(pi, ret);
  fflush(stdout);
  if (k) _exit(k);
  cur->child_point = pi + 1;
}
static int fork_begin(int child0) {
  fflush(stdout);
  cur->child_point = child0;
  pid_t pid = fork();
  if (pid < 0) _exit(setup_failed("fork"));
  if (pid == 0) {
    child_point(child0, 0);
    return 0;
  }
  return (int)pid;
}
static int fork_end(int pid, int parent_pi) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  if (WIFSIGNALED(st)) {
    int k = check_signal(cur->child_point, WTERMSIG(st));
    if (k) return k;
  } else if (WEXITSTATUS(st) != 0) {
    shown = 1;
    return WEXITSTATUS(st);
  }
  cur->point = parent_pi;
  return check(parent_pi, 0);
}

#endif

static pid_t live_pid;
#if USES_LIVE
/* ---- fork_live: a child that stays alive and runs in_child steps on command ---- */
static int live_cmd = -1, live_res = -1, live_dead;
static int live_answer(int pi) {
  char c;
  ssize_t n;
  while ((n = read(live_res, &c, 1)) < 0 && errno == EINTR) {}
  if (n == 1) return c;
  int st;
  while (waitpid(live_pid, &st, 0) < 0 && errno == EINTR) {}
  live_pid = 0;
  if (!WIFSIGNALED(st)) { shown = 1; return WEXITSTATUS(st) ? WEXITSTATUS(st) : 3; }
  live_dead = WTERMSIG(st);
  return check_signal(pi, live_dead);
}
static int live_begin(int child0, int parent_pi) {
  int cmd[2], res[2];
  if (pipe(cmd) != 0 || pipe(res) != 0) return setup_failed("pipe");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return setup_failed("fork");
  if (pid == 0) {
    close(cmd[1]);
    close(res[0]);
    char c = (char)check(child0, 0);
    fflush(stdout);
    if (write(res[1], &c, 1) != 1 || c) _exit(c);
    long req[3];
    while (read(cmd[0], req, sizeof req) == (ssize_t)sizeof req) {
      /* req[0] < 0: the parent made the call (process_madvise of this child); observe with its return */
      c = (char)check((int)req[1], req[0] < 0 ? req[2] : do_step((int)req[0]));
      fflush(stdout);
      if (write(res[1], &c, 1) != 1 || c) _exit(c);
    }
    _exit(0);
  }
  close(cmd[0]);
  close(res[1]);
  live_pid = pid;
  live_pidfd = (int)syscall(434 /* pidfd_open */, pid, 0);
  live_cmd = cmd[1];
  live_res = res[0];
  live_dead = 0;
  int k = live_answer(child0);
  if (k) return k;
  cur->point = parent_pi;
  return check(parent_pi, 0);
}
/* process_madvise of the live child, already called by this process: the child observes with `ret`; a
 * child that died is reaped (the call gave ESRCH) and this process is observed instead. */
static int live_pm(int pi, long ret) __attribute__((unused));
static int live_pm(int pi, long ret) {
  if (live_dead || live_pid <= 0) {
    cur->point = pi;
    return check(pi, ret);
  }
  long req[3] = {-1, pi, ret};
  if (write(live_cmd, req, sizeof req) != (ssize_t)sizeof req) {}
  return live_answer(pi);
}
static int live_step(int s, int pi) {
  if (live_dead) return check_signal(pi, live_dead);
  long req[3] = {s, pi, 0};
  if (write(live_cmd, req, sizeof req) != (ssize_t)sizeof req) {} /* a dead child: EOF follows */
  return live_answer(pi);
}
static int live_end(int pi) {
  if (live_cmd >= 0) { close(live_cmd); live_cmd = -1; }
  if (live_pid > 0) {
    int st;
    while (waitpid(live_pid, &st, 0) < 0 && errno == EINTR) {}
    live_pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { shown = 1; return WIFEXITED(st) ? WEXITSTATUS(st) : 3; }
  }
  if (live_res >= 0) { close(live_res); live_res = -1; }
  if (live_pidfd >= 0) { close(live_pidfd); live_pidfd = -1; }
  cur->point = pi;
  return check(pi, 0);
}

#endif

static uint64_t probe_zero_pfn(void) {
  uint64_t e = 0;
  volatile unsigned char *p = mmap(NULL, PS, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  (void)p[0];
  int fd = open("/proc/self/pagemap", O_RDONLY);
  if (fd >= 0) {
    if (pread(fd, &e, 8, (off_t)((uintptr_t)p / PS * 8)) != 8) e = 0;
    close(fd);
  }
  munmap((void *)p, PS);
  return e & ((1ULL << 55) - 1);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)rc; (void)do_mmap; (void)pm; (void)pm_setup; /* not every scenario calls them all */
  /* A static non-PIE binary's heap starts at a random page up to 1 GiB past its bss on x86_64
   * (arch_randomize_brk), which now and then falls on the fixed arena at BASE: its mapping then fails
   * with EEXIST. Run once more without address-space randomization (ADDR_NO_RANDOMIZE puts the heap
   * right after bss). 64K pages and 64 MiB of heap growth bound the range. */
  {
    uintptr_t brk = (uintptr_t)sbrk(0);
    uintptr_t lo = BASE - (uintptr_t)GAP_PAGES * 65536, hi = BASE + (uintptr_t)(MAX_PAGES + GAP_PAGES) * 65536;
    if (brk + ((uintptr_t)64 << 20) > lo && brk < hi) {
      int pers = personality(0xffffffff);
      if (pers != -1 && !(pers & ADDR_NO_RANDOMIZE) && personality((unsigned long)pers | ADDR_NO_RANDOMIZE) != -1) {
        execv("/proc/self/exe", argv);
      }
    }
  }
  (void)self_pidfd; (void)dead_pidfd; (void)not_pidfd; (void)live_pidfd;
  PS = (uint64_t)sysconf(_SC_PAGESIZE);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (PS != EXPECT_PS) {
    printf("%s: cannot test here: built for %d-byte pages, this machine has %llu\n", ID, EXPECT_PS, (unsigned long long)PS);
    return 125;
  }
  /* One CPU, as the worker: PAGEOUT/COLD see folios in this CPU's LRU batches only after a drain. */
  int cpu = sched_getcpu();
  if (cpu >= 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
  }
  cur = mmap(NULL, sizeof *cur, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (cur == MAP_FAILED) return setup_failed("mmap the cursor");
  zero_pfn = probe_zero_pfn();
  if (USES_HUGETLB) {
    long now[3];
    if (read_meminfo(now) != 0) { printf("%s: cannot test here: no HugePages_* counters\n", ID); return 125; }
    if (now[0] - now[1] < 8) {
      printf("%s: cannot test here: needs 8 free unreserved huge pages (have %ld; raise vm.nr_hugepages)\n", ID, now[0] - now[1]);
      return 125;
    }
    memcpy(huge_base, now, sizeof now);
  }
  unsigned long long before = USES_FREE ? reclaim_counter() : 0;
  int k = create_files();
  if (k) return k;
  const char *pm = getenv("MADCHECK_PROC_MEM");
  force_helper = pm && strcmp(pm, "ptrace") == 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) return setup_failed("socketpair");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return setup_failed("fork the scenario process");
  if (pid == 0) {
    close(sv[0]);
    mem_sock = sv[1];
    if (USES_PM) pm_setup();
    k = scenario();
    fflush(stdout);
    if (live_pid > 0) { kill(live_pid, SIGKILL); waitpid(live_pid, NULL, 0); }
    _exit(k);
  }
  close(sv[1]);
  int st;
  for (;;) {
    struct pollfd pf = { sv[0], POLLIN, 0 };
    if (poll(&pf, 1, 20) > 0 && (pf.revents & POLLIN)) serve_read(sv[0]);
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
  }
  close(sv[0]);
  if (WIFSIGNALED(st)) {
    int pi = cur->point;
    k = check_signal(pi, WTERMSIG(st));
    if (k == 0 && pi >= 0 && pi + 1 < NPOINTS) {
      printf("DIVERGENCE %s at %s\n  points:\n    expected  %d points\n    observed  the process died at point %s\n", ID, P[pi].id, NPOINTS, P[pi].id);
      k = 1;
    }
  } else {
    k = WEXITSTATUS(st);
  }
  if (USES_FREE && reclaim_counter() != before && k != 3) {
    printf("%s: cannot test here: the kernel reclaimed memory during the run (MADV_FREE pages may have gone)\n", ID);
    return 125;
  }
  if (k == 0) printf("%s: every point matches (%d points)\n", ID, NPOINTS);
  return k;
}
