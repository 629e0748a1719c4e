# pyheld: a python3 process holding values the scan tests look for, as a
# modder finds them in a game written in Python.
#
# Arguments: an int (below 2**30: one 30-bit digit), an ASCII string and a
# string with a character outside Latin-1 (kept as UCS-2, that is UTF-16).
# All three are made at run time, so no copy of them lies in the code.
#
# It prints "int ADDR" (the int's digit: its value as a uint32), "text
# ADDR" and "wide ADDR" (where each string's characters lie), then
# "ready", then answers commands on stdin with "ok":
#   text NEW   writes NEW (as long as the text) over the ASCII string's
#              characters, in place, as a game changes a name
#   exit
import ctypes
import sys


def chars(s, width):
    # A compact str keeps its characters after its header, with a NUL.
    return id(s) + sys.getsizeof(s) - (len(s) + 1) * width


value = int(sys.argv[1])
text = "".join(list(sys.argv[2]))
wide = "".join(list(sys.argv[3]))
print("int", hex(id(value) + 24), flush=False)  # CPython 3.x: ob_refcnt, ob_type, ob_size, then the digits
print("text", hex(chars(text, 1)))
print("wide", hex(chars(wide, 2)))
print("ready", flush=True)
for line in sys.stdin:
    cmd, _, arg = line.rstrip("\n").partition(" ")
    if cmd == "text" and len(arg) == len(text):
        ctypes.memmove(chars(text, 1), arg.encode("ascii"), len(arg))
    elif cmd == "exit":
        break
    print("ok", flush=True)
