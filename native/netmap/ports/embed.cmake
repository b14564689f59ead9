# Writes the file IN as a C array into the header OUT (the kernel fast path's
# BPF object, embedded so that the library needs no file at run time).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE ${OUT} "// Generated from ports/kpath.bpf.c by ports/embed.cmake; do not edit.\n#pragma once\n#include <cstddef>\nalignas(8) static const unsigned char kKpathObject[] = {\n${body}\n};\nstatic const size_t kKpathObjectLen = ${bytes};\n")
