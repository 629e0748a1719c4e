// fdhold opens a file or directory, says "open", waits for a line on
// stdin, then reads what it opened through that same descriptor: for
// tests of descriptors held while the process behind them changes.
//
//   fdhold PATH dir      list the directory, one name a line
//   fdhold PATH file     copy the file to stdout
//   fdhold PATH race S   open and read PATH again and again, without
//                        waiting, until an open fails: "started" after
//                        the first, "leak" for every read that contained
//                        S, then "opens N"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what) {
	printf("error: %s: %s\n", what, strerror(errno));
	return 1;
}

static int race(const char *path, const char *needle) {
	static char buf[1 << 20];
	long opens = 0;
	for (; opens < 200000; opens++) {
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			break;
		size_t n = 0;
		ssize_t got;
		while (n < sizeof buf - 1 && (got = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
			n += got;
		buf[n] = 0;
		if (strstr(buf, needle))
			printf("leak\n");
		close(fd);
		if (opens == 0)
			printf("started\n");
	}
	printf("opens %ld\n", opens);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 3)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[2], "race") == 0)
		return argc < 4 ? 2 : race(argv[1], argv[3]);
	if (strcmp(argv[2], "pread") == 0 && argc == 5) {
		int fd = open(argv[1], O_RDONLY);
		if (fd < 0)
			return fail("open");
		printf("open\n");
		unsigned long long off = strtoull(argv[3], NULL, 16), len = strtoull(argv[4], NULL, 16);
		char *buf = malloc(len), line[64];
		while (fgets(line, sizeof line, stdin)) {
			ssize_t n = pread(fd, buf, len, off);
			if (n < 0) {
				printf("error: pread: %s\n", strerror(errno));
				continue;
			}
			for (ssize_t i = 0; i < n; i++)
				printf("%02x", (unsigned char)buf[i]);
			printf("\n");
		}
		return 0;
	}
	int dir = strcmp(argv[2], "dir") == 0;
	int fd = open(argv[1], O_RDONLY | (dir ? O_DIRECTORY : 0));
	if (fd < 0)
		return fail("open");
	printf("open\n");
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		return 2;
	if (dir) {
		DIR *d = fdopendir(fd);
		if (!d)
			return fail("fdopendir");
		struct dirent *e;
		errno = 0;
		while ((e = readdir(d)) != NULL)
			printf("%s\n", e->d_name);
		if (errno)
			return fail("readdir");
	} else {
		char buf[65536];
		ssize_t n;
		while ((n = read(fd, buf, sizeof buf)) > 0)
			fwrite(buf, 1, n, stdout);
		if (n < 0)
			return fail("read");
	}
	printf("end\n");
	return 0;
}
