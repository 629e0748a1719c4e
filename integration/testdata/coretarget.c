/* coretarget: a process whose core the tests open in gdb. A global
 * string, a heap struct reached from a global pointer, the main thread
 * blocked in read(2) on stdin, a second thread in nanosleep inside a named
 * function. It prints "ready" once both threads are there, and exits at
 * the end of its input. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct player {
	char name[16];
	int health;
	int gold;
};

/* A two-level chain: core_world (in .bss) -> world, 8 bytes in -> player,
 * whose health is 16 bytes in. */
struct world {
	long pad;
	struct player *player;
};

char core_global[] = "procmem core global";
struct player *core_player;
struct world *core_world;
volatile int sleeper_started;

void sleeper_in_named_function(void)
{
	struct timespec ts = {3600, 0};
	sleeper_started = 1;
	for (;;)
		nanosleep(&ts, NULL);
}

static void *sleeper(void *arg)
{
	(void)arg;
	sleeper_in_named_function();
	return NULL;
}

/* dense N: N bytes of heap whose every word points somewhere into them,
 * for the pointer scan's benchmark. */
static void dense(size_t n)
{
	uintptr_t *words = malloc(n);
	size_t count = n / sizeof *words;
	unsigned long long x = 88172645463325252ULL;
	for (size_t i = 0; i < count; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		words[i] = (uintptr_t)&words[x % count];
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "dense") == 0)
		dense(strtoull(argv[2], NULL, 0));
	core_player = malloc(sizeof *core_player);
	strcpy(core_player->name, "hero");
	core_player->health = 4242;
	core_player->gold = 77;
	core_world = calloc(1, sizeof *core_world);
	core_world->player = core_player;
	pthread_t t;
	pthread_create(&t, NULL, sleeper, NULL);
	while (!sleeper_started)
		usleep(1000);
	usleep(10000);
	printf("pid %d\nhealth %p\nready\n", getpid(), (void *)&core_player->health);
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0)
		;
	return 0;
}
