/*
 * maproot, installed setuid root by the tests: maps FILE (which only root
 * may read) privately at ADDR, prints "mapped", and waits until its input
 * ends. Run by exec from a user's process, it puts a root-only file where
 * the user's process had its own.
 *
 *   maproot FILE ADDR LEN
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 4)
		return 2;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	void *at = (void *)(uintptr_t)strtoull(argv[2], NULL, 0);
	size_t len = strtoull(argv[3], NULL, 0);
	if (mmap(at, len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("mapped\n");
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0)
		;
	return 0;
}
