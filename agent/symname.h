/*
 * symname.h - coscope's one symboliser: the name, source line and inlined
 * calls of an address in a module that libdwfl has found.  The agent
 * (agent/symbols.c, its own process) and the coscope command
 * (cli/symbols.c: another process, or a trace file's modules) both name
 * frames through it, so every tool says the same file:line for the same
 * address.  Compiled into libcoscope (hidden) and into the command.
 */
#ifndef CS_SYMNAME_H
#define CS_SYMNAME_H

#include <elfutils/libdwfl.h>
#include <stdint.h>

#define CS_SYMNAME_INLINE_MAX 8 /* inlined calls kept per address */

/* One inlined call at an address: the inlined function, and where in it
 * the address is (for the innermost, the line table's line; for the
 * others, the line where they call the next one in). */
typedef struct cs_symname_inline {
    const char *func; /* DW_AT_name (through abstract origins), or NULL */
    const char *file; /* source file, or NULL */
    int line;
} cs_symname_inline;

/* What an address is called.  Strings belong to the Dwfl session. */
typedef struct cs_symname {
    const char *func; /* the ELF symbol (the out-of-line function), or NULL */
    uint64_t offset;  /* ip - the symbol's start */
    const char *file; /* the function's own line: the address's, or the
                          call site of its outermost inlined call; or NULL */
    int line;
    int ninline; /* inlined calls at the address, innermost first */
    cs_symname_inline inl[CS_SYMNAME_INLINE_MAX];
} cs_symname;

/* Names ip of module m into out.  is_return says ip is a return address:
 * it is looked up at ip - 1, inside the call instruction, so that a
 * frame names the calling line and not the one after it. */
void cs__ag_symname(Dwfl_Module *m, uint64_t ip, int is_return,
                    cs_symname *out);

#endif
