/*
 * aioread FILE OFFSET LENGTH BLOCK DEPTH: reads LENGTH bytes of FILE from
 * OFFSET with O_DIRECT and Linux native AIO, BLOCK bytes a request and
 * DEPTH requests in flight, and writes what it read to stdout in order.
 * At the first request that comes back short it writes what that one
 * read, says "short at OFFSET: N" on stderr and stops; an error too.
 * Raw system calls: no libaio needed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: aioread FILE OFFSET LENGTH BLOCK DEPTH\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	long long off = strtoll(argv[2], NULL, 0), len = strtoll(argv[3], NULL, 0);
	long block = strtol(argv[4], NULL, 0);
	int depth = atoi(argv[5]);
	long nblocks = (len + block - 1) / block;
	char *buf;
	if (posix_memalign((void **)&buf, 4096, nblocks * block) != 0)
		return 1;
	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, depth, &ctx) < 0) {
		perror("io_setup");
		return 1;
	}
	struct iocb *cbs = calloc(nblocks, sizeof *cbs);
	long long *got = calloc(nblocks, sizeof *got);
	long next = 0, done = 0, inflight = 0;
	for (long i = 0; i < nblocks; i++)
		got[i] = -1;
	while (done < nblocks) {
		while (inflight < depth && next < nblocks) {
			struct iocb *cb = &cbs[next];
			cb->aio_fildes = fd;
			cb->aio_lio_opcode = IOCB_CMD_PREAD;
			cb->aio_buf = (uint64_t)(uintptr_t)(buf + next * block);
			cb->aio_nbytes = next == nblocks - 1 ? len - next * block : block;
			cb->aio_offset = off + next * block;
			cb->aio_data = next;
			if (syscall(SYS_io_submit, ctx, 1, &cb) != 1) {
				perror("io_submit");
				return 1;
			}
			next++, inflight++;
		}
		struct io_event ev[64];
		long n = syscall(SYS_io_getevents, ctx, 1, 64, ev, NULL);
		if (n < 0) {
			perror("io_getevents");
			return 1;
		}
		for (long i = 0; i < n; i++)
			got[ev[i].data] = ev[i].res;
		inflight -= n, done += n;
	}
	for (long i = 0; i < nblocks; i++) {
		long long want = i == nblocks - 1 ? len - i * block : block;
		if (got[i] < 0) {
			fprintf(stderr, "error at %lld: %s\n", off + i * block, strerror((int)-got[i]));
			return 1;
		}
		fwrite(buf + i * block, 1, got[i], stdout);
		if (got[i] < want) {
			fprintf(stderr, "short at %lld: %lld\n", off + i * block, got[i]);
			return 0;
		}
	}
	return 0;
}
