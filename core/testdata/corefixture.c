/* corefixture: the process whose cores are core/testdata's fixtures.
 * It holds markers where the tests look for them (a global, the heap, an
 * anonymous mapping of which one page is touched, the rest holes), maps a
 * file that starts with an ELF magic (so the kernel keeps its first page
 * and leaves the rest to the file), runs a second thread, prints the
 * addresses and "ready", then waits: a line "crash" makes it write to
 * address 0x10 (SIGSEGV), the end of its input makes it exit. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

char fixture_global[] = "procmem fixture global marker";
volatile int sleeper_started;

static void *sleeper(void *arg)
{
	(void)arg;
	struct timespec ts = {3600, 0};
	sleeper_started = 1;
	for (;;)
		nanosleep(&ts, NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: corefixture MAPPED-FILE\n");
		return 2;
	}
	char *heap = malloc(4096);
	strcpy(heap, "procmem fixture heap marker");
	char *anon = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	strcpy(anon + 3 * 4096 + 0x10, "procmem fixture anon marker");
	int fd = open(argv[1], O_RDONLY);
	char *file = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	if (anon == MAP_FAILED || fd < 0 || file == MAP_FAILED) {
		perror("corefixture");
		return 1;
	}
	pthread_t t;
	pthread_attr_t attr; /* a small stack keeps the cores small */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_create(&t, &attr, sleeper, NULL);
	while (!sleeper_started)
		usleep(1000);
	usleep(10000);
	printf("pid %d\nglobal %p\nheap %p\nanon %p\nfile %p\nready\n", getpid(), (void *)fixture_global,
	       (void *)heap, (void *)(anon + 3 * 4096 + 0x10), (void *)file);
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof line, stdin))
		if (strncmp(line, "crash", 5) == 0)
			*(volatile int *)0x10 = 1;
	return 0;
}
