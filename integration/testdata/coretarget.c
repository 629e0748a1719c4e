/* coretarget: a process whose core the tests open in gdb. A global
 * string, a heap struct reached from a global pointer, the main thread
 * blocked in read(2) on stdin, a second thread in nanosleep inside a named
 * function. It prints "ready" once both threads are there, and exits at
 * the end of its input. */
#define _GNU_SOURCE
#include <pthread.h>
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

char core_global[] = "procmem core global";
struct player *core_player;
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

int main(void)
{
	core_player = malloc(sizeof *core_player);
	strcpy(core_player->name, "hero");
	core_player->health = 4242;
	core_player->gold = 77;
	pthread_t t;
	pthread_create(&t, NULL, sleeper, NULL);
	while (!sleeper_started)
		usleep(1000);
	usleep(10000);
	printf("pid %d\nready\n", getpid());
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0)
		;
	return 0;
}
