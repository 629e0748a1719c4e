// Package memory is the one way procmem reads and writes a process's
// memory. Everything that touches memory (the filesystem's region files,
// the read, search and watch verbs, and what comes after them) goes through
// a Reader, which is bound to one pinned address space and can only be had
// by opening /proc/PID/mem with the credentials of whoever asked.
//
// What a Reader decides, and nothing else does:
//
//   - holes and data: a page that holds no data (untouched anonymous
//     memory, a hole of a shared file) reads as zeros without touching the
//     process, so reading never faults a page in or grows its page tables
//     (layout.go);
//   - the fast path: resident pages are copied with process_vm_readv, with
//     a check that the image read is the one mem was opened on (vmread.go);
//   - the end: a process that exits or execs is ErrGone, and every error is
//     put in one of a few classes (errors.go) that the filesystem turns into
//     errnos and the command line into messages, each in one function.
//
// A Writer, from the same Reader, writes only inside the range it is given.
package memory
