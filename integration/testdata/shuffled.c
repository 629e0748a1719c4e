/*
 * shuffled: a game whose heap layout changes from run to run, for the
 * pointer scans across runs. Before, between and after its objects it
 * makes a random number of allocations of random sizes (seeded from the
 * clock and its pid) and frees some of them, so its objects land
 * elsewhere in the heap each run, and the pointers that reach them by
 * accident in one run (the allocator's bins, stale copies) lead elsewhere
 * in the next.
 *
 * The chains that hold in every run:
 *   player_ptr (the program's .bss) -> player, health 16 bytes in;
 *   world_ptr (the program's .bss) -> world, 40 bytes in -> the player;
 *   lib_cursor (libshuffled's .bss) -> 8 bytes into the player, set by
 *   lib_point (the library's data ranks after the program's).
 * A second thread allocates an inventory and keeps the only pointer to it
 * in a local variable: its gold is reached from that thread's stack alone.
 *
 * It prints "gold ADDR", "pid N", "health ADDR", "ready" and exits at the
 * end of its input.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct player {
	char name[16];
	int32_t health;
	int32_t armor;
};

struct world {
	char pad[40];
	struct player *player;
};

struct inventory {
	int64_t slots;
	int64_t gold;
};

void lib_point(void *p);

struct player *player_ptr;
struct world *world_ptr;
static volatile int inventory_ready;

/* clutter makes a random number of allocations of random sizes and frees
 * a random part of them. */
static void clutter(int most)
{
	int n = rand() % most;
	for (int i = 0; i < n; i++) {
		char *p = malloc(16 + rand() % 2048);
		memset(p, 0x11, 16);
		if (rand() % 3 == 0)
			free(p);
	}
}

static void *keeper(void *arg)
{
	(void)arg;
	clutter(20);
	volatile struct inventory *volatile inv = malloc(sizeof *inv);
	inv->slots = 12;
	inv->gold = 777001;
	/* Said from here: an address kept anywhere else would be a pointer
	 * to the gold too. */
	printf("gold %p\n", (void *)&inv->gold);
	fflush(stdout);
	inventory_ready = 1;
	struct timespec ts = {3600, 0};
	for (;;)
		nanosleep(&ts, NULL);
	return NULL;
}

int main(void)
{
	srand((unsigned)time(NULL) ^ (unsigned)getpid() << 8);
	clutter(200);
	world_ptr = calloc(1, sizeof *world_ptr);
	clutter(50);
	struct player *p = calloc(1, sizeof *p);
	strcpy(p->name, "hero");
	p->health = 31337;
	world_ptr->player = p;
	player_ptr = p;
	lib_point(p->name + 8);
	clutter(50);
	pthread_t t;
	pthread_create(&t, NULL, keeper, NULL);
	while (!inventory_ready)
		usleep(1000);
	usleep(10000);
	printf("pid %d\nhealth %p\nready\n", getpid(), (void *)&p->health);
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0)
		;
	return 0;
}
