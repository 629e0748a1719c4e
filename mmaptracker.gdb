# mmaptracker.gdb: log every mmap() of a program run under gdb, with the
# backtrace of the call and the address it returned, to learn where an
# anonymous region came from.
#
#   gdb -x mmaptracker.gdb --args PROGRAM [ARGS...]
#
# The log goes to /tmp/mmaptracker.log, or to the file named by the
# environment variable MMAPTRACKER_LOG, or by the gdb variable
# $mmaptracker_log (gdb -ex 'set $mmaptracker_log = "/tmp/x.log"' -x ...).
# Add -batch to run unattended: the script runs the program itself.

set pagination off
set confirm off
set breakpoint pending on
set print thread-events off

python
import os
import gdb

def _mmaptracker_path():
    v = gdb.convenience_variable("mmaptracker_log")
    if v is not None:
        return v.string()
    return os.environ.get("MMAPTRACKER_LOG", "/tmp/mmaptracker.log")

_mmaptracker_log = open(_mmaptracker_path(), "w", buffering=1)

# Argument and return registers of the calling conventions gdb may meet.
_MMAP_REGS = {
    "i386:x86-64": (["$rdi", "$rsi", "$rdx", "$rcx", "$r8", "$r9"], "$rax"),
    "aarch64": (["$x0", "$x1", "$x2", "$x3", "$x4", "$x5"], "$x0"),
    "riscv:rv64": (["$a0", "$a1", "$a2", "$a3", "$a4", "$a5"], "$a0"),
}

def _mmaptracker_regs():
    arch = gdb.selected_frame().architecture().name()
    return _MMAP_REGS.get(arch, _MMAP_REGS["i386:x86-64"])

def _reg(name):
    try:
        return int(gdb.parse_and_eval(name)) & 0xffffffffffffffff
    except gdb.error:
        return None

def mmaptracker_return():
    """Called at the return address of an mmap() call: logs its result."""
    addr = _reg(_mmaptracker_regs()[1])
    if addr is None:
        _mmaptracker_log.write("=> (return value unknown)\n\n")
    elif addr == 0xffffffffffffffff:
        _mmaptracker_log.write("=> MAP_FAILED\n\n")
    else:
        _mmaptracker_log.write("=> 0x%x\n\n" % addr)

def mmaptracker_enter():
    """Called at every mmap() breakpoint: logs the call and its backtrace."""
    args, _ = _mmaptracker_regs()
    values = [_reg(r) for r in args]
    if None not in values:
        addr, length, prot, flags, fd, offset = values
        fd &= 0xffffffff
        if fd >= 1 << 31:
            fd -= 1 << 32
        prot &= 0xffffffff
        flags &= 0xffffffff
        _mmaptracker_log.write("mmap(addr=0x%x, length=%d, prot=0x%x, flags=0x%x, fd=%d, offset=0x%x) in thread %d\n"
                               % (addr, length, prot, flags, fd, offset, gdb.selected_thread().num))
    else:
        _mmaptracker_log.write("mmap() in thread %d\n" % gdb.selected_thread().num)
    _mmaptracker_log.write(gdb.execute("backtrace", to_string=True))
    # A one-shot breakpoint on the return address, in this thread only,
    # reads the result. (gdb.FinishBreakpoint loses calls made while the
    # dynamic loader maps libraries.)
    caller = gdb.newest_frame().older()
    if caller is None:
        _mmaptracker_log.write("=> (no caller frame)\n\n")
        return
    ret = gdb.Breakpoint("*0x%x" % caller.pc(), temporary=True)
    ret.thread = gdb.selected_thread().num
    ret.silent = True
    ret.commands = "python mmaptracker_return()\ncontinue"
end

break mmap
commands
silent
python mmaptracker_enter()
continue
end

run
python _mmaptracker_log.close()
