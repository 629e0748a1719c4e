/* mmapper: maps memory from a function the mmaptracker test looks for in
 * the backtrace, then saves its own maps to the file named by argv[1]. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

__attribute__((noinline)) void *make_region(size_t size) {
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(int argc, char **argv) {
	void *p = make_region(5 * 4096);
	FILE *in = fopen("/proc/self/maps", "r"), *out = fopen(argv[1], "w");
	char line[4096];
	while (fgets(line, sizeof line, in))
		fputs(line, out);
	fclose(out);
	printf("mapped %p\n", p);
	return 0;
}
