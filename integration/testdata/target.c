/*
 * target: a process whose memory the integration tests know.
 *
 * It prints "name value" lines with the addresses of what it set up, then
 * "ready", and then answers commands on stdin, one per line:
 *   peek ADDR LEN    prints the LEN bytes at ADDR in hex
 *   poke ADDR HEX    writes the bytes at ADDR, prints "ok"
 *   grow N           grows the heap by N bytes (sbrk), prints the new end
 *   nodump           makes the process non-dumpable (PR_SET_DUMPABLE 0)
 *   exec             execs itself anew (same pid, new address space); the
 *                    new image fills its pattern with 0xEE, not pattern_byte
 *   churned          prints how many mappings the churn thread has changed
 *   sibling          starts a process that shares this address space
 *                    (clone CLONE_VM) and keeps it alive across an exec;
 *                    prints its pid; it dies with this process
 *   mapfile PATH     maps the file PATH privately, read-only, and never
 *                    touches it; prints the address
 *   unmap ADDR LEN   unmaps LEN bytes at ADDR, prints "ok"
 *   protect ADDR LEN PROT  mprotects LEN bytes at ADDR to PROT (1 read,
 *                    3 read and write), prints "ok"
 *   mapover ADDR LEN PATH  maps the file PATH read-only and private at
 *                    ADDR (MAP_FIXED), over what was there, prints "ok"
 *   run PATH [ARG...]  execs PATH with the arguments (prints nothing
 *                    itself; what PATH prints follows)
 *   uffd             maps 64 pages registered with userfaultfd, whose faults
 *                    are never answered, and starts a thread that fills
 *                    and drops them without pause; prints the address
 *   mmaploop         starts a thread that maps and unmaps a page without
 *                    pause (a writer always queued on mmap_lock)
 *   exit             exits
 * The marker is built at run time, so its bytes exist only in the heap.
 *
 * With "sparse FILE [SIZE]" after the pattern size it also sets up what has
 * holes: a MAP_NORESERVE reservation of SIZE (default 64 GiB) with three
 * touched pages (the first, the middle and the last), a 16 MiB memfd with one page written through the fd
 * (at 1 MiB, never mapped here) and one through the mapping (at 8 MiB), and
 * a private read-only mapping of FILE, written with file_byte() first and
 * never touched, and a 64 MiB shared read-only mapping of FILE.shared,
 * likewise.
 *
 * With "mappings N" it maps N more single pages whose protections
 * alternate, so that each is a region of its own.
 *
 * With "at ADDR" the pattern is mapped at ADDR (the next process, or the
 * next image after an exec, finds its pattern where the last one had it).
 *
 * With "churn" a second thread maps, touches, mprotects and unmaps memory
 * and grows and shrinks the heap without pause; the pattern, fence and
 * rodata regions are left alone.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>
#include "kernel.h"

/* pattern_byte is the content of the pattern region at offset i; the tests
 * compute the same function. */
static unsigned char pattern_byte(uint64_t i) {
	return (unsigned char)((i * 7) ^ (i >> 12) ^ 0x5a);
}

/* map returns a private anonymous mapping between two PROT_NONE guard
 * pages, so it never merges with a neighbour into a larger region. */
static unsigned char file_byte(uint64_t i) {
	return (unsigned char)(i * 13 + (i >> 8));
}

static void sparse_setup(const char *path, size_t rsize, long page) {
	char *r = mmap(NULL, rsize + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED || mprotect(r + page, rsize, PROT_READ | PROT_WRITE) != 0) {
		perror("reservation");
		exit(1);
	}
	r += page;
	size_t at[3] = {0, rsize / 2, rsize - page};
	for (int i = 0; i < 3; i++)
		for (long j = 0; j < page; j++)
			r[at[i] + j] = (char)('A' + i + j % 7);

	size_t msize = 16 << 20;
	int fd = memfd_create("procmem-test", 0);
	if (fd < 0 || ftruncate(fd, msize) != 0) {
		perror("memfd");
		exit(1);
	}
	char buf[65536];
	memset(buf, 'W', page);
	if (pwrite(fd, buf, page, 1 << 20) != page) {
		perror("memfd write");
		exit(1);
	}
	char *m = mmap(NULL, msize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		perror("memfd mmap");
		exit(1);
	}
	memset(m + (8 << 20), 'M', page);

	int ffd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = file_byte(i);
	if (ffd < 0 || write(ffd, buf, sizeof buf) != sizeof buf) {
		perror("file");
		exit(1);
	}
	char *f = mmap(NULL, sizeof buf, PROT_READ, MAP_PRIVATE, ffd, 0);
	if (f == MAP_FAILED) {
		perror("file mmap");
		exit(1);
	}
	/* A 64 MiB file mapped shared, never touched: its pages are in the page
	 * cache (just written), none in this process's page tables. */
	size_t ssize = 64 << 20;
	char spath[4096];
	snprintf(spath, sizeof spath, "%s.shared", path);
	int sfd = open(spath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (size_t off = 0; sfd >= 0 && off < ssize; off += sizeof buf) {
		for (size_t i = 0; i < sizeof buf; i++)
			buf[i] = file_byte(off + i);
		if (write(sfd, buf, sizeof buf) != sizeof buf) {
			perror("shared file");
			exit(1);
		}
	}
	char *s = sfd < 0 ? MAP_FAILED : mmap(NULL, ssize, PROT_READ, MAP_SHARED, sfd, 0);
	if (s == MAP_FAILED) {
		perror("shared file mmap");
		exit(1);
	}
	printf("sharedmap %p\n", (void *)s);
	printf("sharedmap_size %#zx\n", ssize);
	printf("reservation %p\n", (void *)r);
	printf("reservation_size %#zx\n", rsize);
	printf("memfd %p\n", (void *)m);
	printf("memfd_size %#zx\n", msize);
	printf("filemap %p\n", (void *)f);
	printf("filemap_size %#zx\n", sizeof buf);
}

/* mapping changes made by the churn thread: mmap, munmap, mprotect */
static volatile long churned;

enum { uffd_pages = 64 };
static int uffd = -1;
static char *uffd_area;

/* Fills the pages with UFFDIO_COPY (without waking anyone who faulted on
 * them) and drops them again, so that they are present one moment and
 * fault the next, and no fault is ever answered. */
static void *uffdloop(void *arg) {
	long page = sysconf(_SC_PAGESIZE);
	char *src = malloc(page);
	memset(src, 'U', page);
	(void)arg;
	for (;;) {
		for (int i = 0; i < uffd_pages; i++) {
			struct uffdio_copy c = {
				.dst = (uintptr_t)(uffd_area + i * page), .src = (uintptr_t)src,
				.len = page, .mode = UFFDIO_COPY_MODE_DONTWAKE,
			};
			ioctl(uffd, UFFDIO_COPY, &c);
		}
		madvise(uffd_area, uffd_pages * page, MADV_DONTNEED);
	}
	return NULL;
}

static char *uffd_setup(long page) {
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {.api = UFFD_API};
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0)
		return NULL;
	uffd_area = mmap(NULL, uffd_pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t)uffd_area, .len = uffd_pages * page},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (uffd_area == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		return NULL;
	pthread_t t;
	pthread_create(&t, NULL, uffdloop, NULL);
	return uffd_area;
}

static void *mmaploop(void *arg) {
	long page = sysconf(_SC_PAGESIZE);
	(void)arg;
	for (;;) {
		void *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED)
			munmap(m, page);
	}
	return NULL;
}

static void *churn(void *arg) {
	long page = sysconf(_SC_PAGESIZE);
	enum { slots = 256 };
	char *maps[slots] = {0};
	size_t sizes[slots] = {0};
	void *blocks[slots] = {0};
	unsigned seed = (unsigned)getpid();
	(void)arg;
	for (;;) {
		int i = rand_r(&seed) % slots;
		churned++;
		if (maps[i]) {
			munmap(maps[i], sizes[i]);
			maps[i] = NULL;
		} else {
			sizes[i] = (1 + rand_r(&seed) % 64) * page;
			maps[i] = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (maps[i] == MAP_FAILED) {
				maps[i] = NULL;
			} else {
				memset(maps[i], i, page);
				if (sizes[i] > 2 * (size_t)page) {
					mprotect(maps[i] + page, page, rand_r(&seed) % 2 ? PROT_READ : PROT_NONE);
					churned++;
				}
			}
		}
		int j = rand_r(&seed) % slots;
		free(blocks[j]);
		blocks[j] = rand_r(&seed) % 2 ? malloc(1 + rand_r(&seed) % (256 << 10)) : NULL;
		usleep(20); /* churn hard, but leave the machine to the test */
	}
	return NULL;
}

/* map_at maps size bytes between two PROT_NONE guard pages, at hint if it is
 * not NULL (and fails if that is taken). */
static void *map_at(void *hint, size_t size, int prot) {
	long page = sysconf(_SC_PAGESIZE);
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	if (hint != NULL) {
		hint = (char *)hint - page;
		flags |= MAP_FIXED_NOREPLACE;
	}
	char *p = mmap(hint, size + 2 * page, PROT_NONE, flags, -1, 0);
	if (p == MAP_FAILED || (hint != NULL && p != hint) || mprotect(p + page, size, prot) != 0) {
		perror("mmap");
		exit(1);
	}
	return p + page;
}

static void *map(size_t size, int prot) { return map_at(NULL, size, prot); }

static int sibling(void *arg) {
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != *(pid_t *)arg)
		_exit(0); /* the parent is already gone */
	for (;;)
		pause();
}

int main(int argc, char **argv) {
	same_on_every_kernel();
	size_t pattern_size = argc > 1 ? strtoull(argv[1], NULL, 0) : 64 << 20;
	long page = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IONBF, 0);

	/* The marker: "PMMARK" "-" pid in hex, built piecewise. */
	char *marker = malloc(64);
	snprintf(marker, 64, "%s%s-%08x", "PM", "MARK", (unsigned)getpid());

	/* Typed values for search: a uint32, an int64 and a double. */
	struct { uint32_t u32; int64_t i64; double d; } *values = malloc(sizeof *values);
	values->u32 = 0xC0DEFACEu;
	values->i64 = -1234567890123LL;
	values->d = 3.0625;

	void *pattern_at = NULL;
	for (int i = 2; i + 1 < argc; i++)
		if (strcmp(argv[i], "at") == 0)
			pattern_at = (void *)(uintptr_t)strtoull(argv[i + 1], NULL, 0);
	unsigned char *pattern = map_at(pattern_at, pattern_size, PROT_READ | PROT_WRITE);
	int execed = getenv("TARGET_EXECED") != NULL;
	for (uint64_t i = 0; i < pattern_size; i++)
		pattern[i] = execed ? 0xEE : pattern_byte(i);
	/* A needle straddling the first 1 MiB boundary of the pattern. */
	if (pattern_size > (1 << 20) + 16)
		memcpy(pattern + (1 << 20) - 3, "STRADDLE", 8);

	/* fence: three pages r-- rw- r--, three separate mappings, so writes
	 * that leak out of the middle one would show in its neighbours. */
	unsigned char *fence = map(3 * page, PROT_READ | PROT_WRITE);
	memset(fence, 0xAA, page);
	memset(fence + page, 0x11, page);
	memset(fence + 2 * page, 0xBB, page);
	mprotect(fence, page, PROT_READ);
	mprotect(fence + 2 * page, page, PROT_READ);

	/* rodata: a read-only page with known text. */
	char *rodata = map(page, PROT_READ | PROT_WRITE);
	strcpy(rodata, "read-only page");
	mprotect(rodata, page, PROT_READ);

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "sparse") == 0 && i + 2 < argc) {
			sparse_setup(argv[i + 1], strtoull(argv[i + 2], NULL, 0), page);
			i += 2;
		} else if (strcmp(argv[i], "at") == 0 && i + 1 < argc) {
			i++; /* the pattern's address, used above */
		} else if (strcmp(argv[i], "churn") == 0) {
			pthread_t t;
			pthread_create(&t, NULL, churn, NULL);
		} else if (strcmp(argv[i], "mappings") == 0 && i + 1 < argc) {
			long n = strtol(argv[++i], NULL, 0);
			char *m = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (m == MAP_FAILED) {
				perror("mappings");
				exit(1);
			}
			for (long j = 0; j < n; j += 2)
				mprotect(m + j * page, page, PROT_READ);
		}
	}
	printf("pid %d\n", getpid());
	printf("marker %p\n", (void *)marker);
	printf("values %p\n", (void *)values);
	printf("pattern %p\n", (void *)pattern);
	printf("pattern_size %#zx\n", pattern_size);
	printf("fence %p\n", (void *)fence);
	printf("rodata %p\n", (void *)rodata);
	printf("page %#lx\n", page);
	printf("ready\n");

	char line[8192];
	while (fgets(line, sizeof line, stdin)) {
		unsigned long long addr, len;
		int prot;
		char hex[8192];
		if (sscanf(line, "peek %llx %llx", &addr, &len) == 2) {
			unsigned char *p = (unsigned char *)(uintptr_t)addr;
			for (unsigned long long i = 0; i < len; i++)
				printf("%02x", p[i]);
			printf("\n");
		} else if (sscanf(line, "poke %llx %8191s", &addr, hex) == 2) {
			unsigned char *p = (unsigned char *)(uintptr_t)addr;
			for (size_t i = 0; hex[2 * i] && hex[2 * i + 1]; i++) {
				unsigned int b;
				sscanf(hex + 2 * i, "%2x", &b);
				p[i] = (unsigned char)b;
			}
			printf("ok\n");
		} else if (sscanf(line, "grow %llx", &len) == 1) {
			sbrk((intptr_t)len);
			printf("%p\n", sbrk(0));
		} else if (strncmp(line, "nodump", 6) == 0) {
			printf("%s\n", prctl(PR_SET_DUMPABLE, 0) == 0 ? "ok" : "failed");
		} else if (strncmp(line, "sibling", 7) == 0) {
			static pid_t parent;
			size_t size = 64 << 10;
			char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
			parent = getpid();
			printf("%d\n", clone(sibling, stack + size, CLONE_VM | SIGCHLD, &parent));
		} else if (strncmp(line, "churned", 7) == 0) {
			printf("%ld\n", churned);
		} else if (strncmp(line, "exec", 4) == 0) {
			setenv("TARGET_EXECED", "1", 1);
			execv("/proc/self/exe", argv);
			printf("exec failed\n");
		} else if (sscanf(line, "mapfile %8191s", hex) == 1) {
			int fd = open(hex, O_RDONLY);
			struct stat st;
			void *m = MAP_FAILED;
			if (fd >= 0 && fstat(fd, &st) == 0)
				m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
			if (fd >= 0)
				close(fd);
			if (m == MAP_FAILED)
				printf("failed\n");
			else
				printf("%p\n", m);
		} else if (sscanf(line, "protect %llx %llx %d", &addr, &len, &prot) == 3) {
			printf("%s\n", mprotect((void *)(uintptr_t)addr, len, prot) == 0 ? "ok" : "failed");
		} else if (sscanf(line, "mapover %llx %llx %8191s", &addr, &len, hex) == 3) {
			int fd = open(hex, O_RDONLY);
			void *m = fd < 0 ? MAP_FAILED : mmap((void *)(uintptr_t)addr, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
			if (fd >= 0)
				close(fd);
			printf("%s\n", m == MAP_FAILED ? "failed" : "ok");
		} else if (strncmp(line, "run ", 4) == 0) {
			char *args[16];
			int n = 0;
			for (char *tok = strtok(line + 4, " \n"); tok && n < 15; tok = strtok(NULL, " \n"))
				args[n++] = tok;
			args[n] = NULL;
			if (n > 0)
				execv(args[0], args);
			printf("run failed: %s\n", strerror(errno));
		} else if (sscanf(line, "unmap %llx %llx", &addr, &len) == 2) {
			printf("%s\n", munmap((void *)(uintptr_t)addr, len) == 0 ? "ok" : "failed");
		} else if (strncmp(line, "uffd", 4) == 0) {
			char *u = uffd_setup(page);
			if (u)
				printf("%p\n", (void *)u);
			else
				printf("failed: %s\n", strerror(errno));
		} else if (strncmp(line, "mmaploop", 8) == 0) {
			pthread_t t;
			pthread_create(&t, NULL, mmaploop, NULL);
			printf("ok\n");
		} else if (strncmp(line, "exit", 4) == 0) {
			return 0;
		} else {
			printf("?\n");
		}
	}
	return 0;
}
