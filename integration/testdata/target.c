/*
 * target: a process whose memory the integration tests know.
 *
 * It prints "name value" lines with the addresses of what it set up, then
 * "ready", and then answers commands on stdin, one per line:
 *   peek ADDR LEN    prints the LEN bytes at ADDR in hex
 *   poke ADDR HEX    writes the bytes at ADDR, prints "ok"
 *   grow N           grows the heap by N bytes (sbrk), prints the new end
 *   nodump           makes the process non-dumpable (PR_SET_DUMPABLE 0)
 *   exit             exits
 * The marker is built at run time, so its bytes exist only in the heap.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

/* pattern_byte is the content of the pattern region at offset i; the tests
 * compute the same function. */
static unsigned char pattern_byte(uint64_t i) {
	return (unsigned char)((i * 7) ^ (i >> 12) ^ 0x5a);
}

/* map returns a private anonymous mapping between two PROT_NONE guard
 * pages, so it never merges with a neighbour into a larger region. */
static void *map(size_t size, int prot) {
	long page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, size + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + page, size, prot) != 0) {
		perror("mmap");
		exit(1);
	}
	return p + page;
}

int main(int argc, char **argv) {
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

	unsigned char *pattern = map(pattern_size, PROT_READ | PROT_WRITE);
	for (uint64_t i = 0; i < pattern_size; i++)
		pattern[i] = pattern_byte(i);
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
		} else if (strncmp(line, "exit", 4) == 0) {
			return 0;
		} else {
			printf("?\n");
		}
	}
	return 0;
}
