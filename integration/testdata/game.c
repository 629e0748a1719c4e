/*
 * game: a process whose values the scan tests look for, the way a game
 * modder looks for health.
 *
 * A player on the heap holds health (int32, 100), speed (float, 1.5) and
 * score (double, 2.5). Decoys hold 100 too: 64 that never change, 16 that
 * follow health on the first hit only, 4 on the first two; so after three
 * hits only health has followed every change.
 *
 * A global pointer (player_ptr) leads to the player, as in a real game.
 *
 * It prints "pid N", "health ADDR", "speed ADDR", "score ADDR",
 * "player_ptr ADDR", "ready", then answers commands on stdin, one per
 * line, with "ok" or a value:
 *   hit N       health -= N (decoys as above)
 *   heal N      health += N
 *   speed F     speed = F
 *   score D     score = D
 *   health      prints "health N": the value the game sees
 *   move        moves the player to a new heap block (a level load), sets
 *               the old block's health to -1, prints the new health's
 *               address
 *   exit
 * With "fill BYTES" as arguments it first fills BYTES of heap with int32
 * values, one in 268 of them 7 (for the benchmark against scanmem).
 * The values are only ever written from these commands, never printed
 * from elsewhere, so no copy of them lingers on the stack.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct player {
	char name[16];
	int32_t health;
	float speed;
	double score;
};

static volatile int32_t decoy_const[64];
volatile struct player *volatile player_ptr;
static volatile int32_t *decoy_once, *decoy_twice;
static int hits;

static void fill(size_t n)
{
	int32_t *w = malloc(n);
	uint64_t x = 88172645463325252ULL;
	for (size_t i = 0; i < n / 4; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[i] = (int32_t)(x % 268);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "fill") == 0)
		fill(strtoull(argv[2], NULL, 0));
	volatile struct player *p = calloc(1, sizeof *p);
	strcpy((char *)p->name, "hero");
	p->health = 100;
	p->speed = 1.5f;
	p->score = 2.5;
	decoy_once = calloc(16, sizeof *decoy_once);
	decoy_twice = calloc(4, sizeof *decoy_twice);
	for (int i = 0; i < 64; i++)
		decoy_const[i] = 100;
	for (int i = 0; i < 16; i++)
		decoy_once[i] = 100;
	for (int i = 0; i < 4; i++)
		decoy_twice[i] = 100;
	player_ptr = p;
	printf("pid %d\nhealth %p\nspeed %p\nscore %p\nplayer_ptr %p\nready\n", getpid(), (void *)&p->health, (void *)&p->speed,
	       (void *)&p->score, (void *)&player_ptr);
	fflush(stdout);

	char line[256];
	while (fgets(line, sizeof line, stdin)) {
		char cmd[32] = "";
		char arg[200] = "";
		sscanf(line, "%31s %199s", cmd, arg);
		if (strcmp(cmd, "hit") == 0 || strcmp(cmd, "heal") == 0) {
			int32_t n = (int32_t)strtol(arg, NULL, 0);
			if (cmd[1] == 'i')
				n = -n;
			p->health += n;
			hits += cmd[1] == 'i';
			for (int i = 0; i < 16 && hits == 1; i++)
				decoy_once[i] += n;
			for (int i = 0; i < 4 && hits <= 2; i++)
				decoy_twice[i] += n;
			puts("ok");
		} else if (strcmp(cmd, "speed") == 0) {
			p->speed = strtof(arg, NULL);
			puts("ok");
		} else if (strcmp(cmd, "score") == 0) {
			p->score = strtod(arg, NULL);
			puts("ok");
		} else if (strcmp(cmd, "move") == 0) {
			volatile struct player *q = malloc(sizeof *q + 4096); /* not where the old one was */
			memcpy((void *)q, (void *)p, sizeof *q);
			p->health = -1;
			player_ptr = p = q;
			printf("%p\n", (void *)&p->health);
		} else if (strcmp(cmd, "health") == 0) {
			printf("health %d\n", (int)p->health);
		} else if (strcmp(cmd, "exit") == 0) {
			return 0;
		} else {
			puts("unknown");
		}
		fflush(stdout);
	}
	return 0;
}
