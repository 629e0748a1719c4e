/* usagetarget: a process with memory of every kind procmem usage tells
 * apart, in known amounts, all of it touched (resident):
 *   heap   4 MiB of small mallocs in [heap] (below the mmap threshold), and
 *          8 MiB from a second thread, which malloc serves from an arena;
 *   anon   a 16 MiB anonymous mapping, 12 MiB of it touched;
 *   stack  the second thread touches 256 KiB of its stack, then blocks;
 *   file   an 8 MiB file mapped privately and read whole;
 *   shmem  a 4 MiB memfd and a 2 MiB SysV segment, shared and written.
 * It prints "pid N", "memfd 0xADDR", "anon 0xADDR", "file 0xADDR", then
 * "ready", and takes commands on stdin, each answered "ok":
 *   grow N     map and touch N MiB more anonymous memory
 *   heap N     malloc and touch N MiB more in small pieces
 *   share N    map and touch N MiB more of a memfd, shared
 *   spin S     keep a CPU busy for S seconds (in a thread)
 * It exits at the end of its input, removing the SysV segment. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int arena_ready;

static void touch(char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (char)(i >> 12 | 1);
}

static void small_mallocs(size_t total)
{
	for (size_t done = 0; done < total; done += 64 * 1024)
		touch(malloc(64 * 1024 - 64), 64 * 1024 - 64);
}

static void *arena_thread(void *arg)
{
	volatile char stack[256 * 1024];
	(void)arg;
	small_mallocs(8 * MiB);
	for (size_t i = 0; i < sizeof stack; i += 4096)
		stack[i] = 1;
	pthread_mutex_lock(&mu);
	arena_ready = 1;
	pthread_cond_signal(&cv);
	while (arena_ready < 2)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *spinner(void *arg)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do
		clock_gettime(CLOCK_MONOTONIC, &now);
	while (now.tv_sec - start.tv_sec < (long)(intptr_t)arg);
	return NULL;
}

int main(void)
{
	small_mallocs(4 * MiB);

	char *anon = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	touch(anon, 12 * MiB);

	char path[] = "/tmp/usagetarget-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 8 * MiB) < 0)
		return 1;
	char *block = calloc(1, MiB);
	memset(block, 'u', MiB);
	for (int i = 0; i < 8; i++)
		if (pwrite(fd, block, MiB, (off_t)i * MiB) != MiB)
			return 1;
	char *file = mmap(NULL, 8 * MiB, PROT_READ, MAP_PRIVATE, fd, 0);
	unlink(path);
	volatile char sum = 0;
	for (size_t i = 0; i < 8 * MiB; i += 4096)
		sum += file[i];

	int mfd = memfd_create("usagepool", 0);
	if (mfd < 0 || ftruncate(mfd, 4 * MiB) < 0)
		return 1;
	char *shared = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	touch(shared, 4 * MiB);
	int shm = shmget(IPC_PRIVATE, 2 * MiB, IPC_CREAT | 0600);
	char *sysv = shmat(shm, NULL, 0);
	shmctl(shm, IPC_RMID, NULL); /* gone once detached: at exit */
	touch(sysv, 2 * MiB);

	pthread_t t;
	pthread_create(&t, NULL, arena_thread, NULL);
	pthread_mutex_lock(&mu);
	while (!arena_ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	printf("pid %d\nmemfd %p\nanon %p\nfile %p\nready\n", getpid(), (void *)shared, (void *)anon, (void *)file);
	fflush(stdout);
	char line[128];
	while (fgets(line, sizeof line, stdin)) {
		long n = 0;
		if (sscanf(line, "grow %ld", &n) == 1) {
			char *more = mmap(NULL, (size_t)n * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			touch(more, (size_t)n * MiB);
		} else if (sscanf(line, "share %ld", &n) == 1) {
			int more = memfd_create("usagemore", 0);
			if (more < 0 || ftruncate(more, (off_t)n * MiB) < 0)
				return 1;
			touch(mmap(NULL, (size_t)n * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, more, 0), (size_t)n * MiB);
		} else if (sscanf(line, "heap %ld", &n) == 1) {
			small_mallocs((size_t)n * MiB);
		} else if (sscanf(line, "spin %ld", &n) == 1) {
			pthread_t s;
			pthread_create(&s, NULL, spinner, (void *)(intptr_t)n);
			pthread_detach(s);
		}
		printf("ok\n");
		fflush(stdout);
	}
	return 0;
}
