/*
 * target32: a 32-bit process (i386, no libc) whose memory TestMemImage32
 * knows: it copies its marker from .rodata into .bss at run time (the
 * test looks for it at the .bss address, which only memory holds), then
 * prints "ready" and waits for a signal. Assembled with binutils alone (as --32, ld -m elf_i386), so
 * no 32-bit C library is needed; linked non-PIE, the address of the
 * symbol "marker" is where it lives.
 */
	.section .rodata
halves:	.ascii "PMMARK32-"
	.ascii "written at run time"
	.set length, . - halves
ready:	.ascii "ready\n"

	.section .bss
	.globl marker
marker:	.skip 64

	.text
	.globl _start
_start:
	/* copy the marker into .bss */
	movl $halves, %esi
	movl $marker, %edi
	movl $length, %ecx
	cld
	rep movsb
	/* write(1, "ready\n", 6) */
	movl $4, %eax
	movl $1, %ebx
	movl $ready, %ecx
	movl $6, %edx
	int $0x80
	/* pause() until killed */
1:	movl $29, %eax
	int $0x80
	jmp 1b
