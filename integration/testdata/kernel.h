/*
 * kernel.h: what a test target does first, so that the tests see the
 * same process on every stock kernel.
 *
 * Transparent huge pages off for this process (PR_SET_THP_DISABLE, kept
 * across fork and exec): where THP is "always", or mTHP sizes are enabled,
 * one touch would fault in 16 KiB to 2 MiB instead of a page, and the
 * tests count the pages a target touched.
 *
 * Any process may trace it (PR_SET_PTRACER): under Yama's ptrace_scope 1
 * only an ancestor may otherwise open its /proc/PID/mem, and the tests
 * compare procmem with the kernel's rule for a user's own processes.
 * Without Yama the call fails (EINVAL), which changes nothing.
 *
 * Only target.c includes it: the game and the core target are neither
 * counted by the page nor read by other users, and a change to the game
 * moves what its image holds (TestScanAgreesWithScanmem compares it).
 */
#include <sys/prctl.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif
#ifndef PR_SET_PTRACER_ANY
#define PR_SET_PTRACER_ANY ((unsigned long)-1)
#endif

static void same_on_every_kernel(void) {
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
}
