/*
 * symname.c - see symname.h.  Function and offset from the module's ELF
 * symbol tables (dwfl_module_addrinfo), the line from its DWARF line table
 * (dwfl_module_getsrc), and inlined calls from the scopes that contain the
 * address (dwarf_getscopes, innermost first, as eu-addr2line -i does):
 * each DW_TAG_inlined_subroutine up to the enclosing DW_TAG_subprogram is
 * one inlined frame, and its DW_AT_call_file/DW_AT_call_line is where its
 * caller's frame is.
 */
#include "symname.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <stdlib.h>
#include <string.h>

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *n =
        dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
    return n ? n : dwarf_diename(die);
}

/* The call site of an inlined subroutine: file (from the CU's file table)
 * and line; false if either is missing. */
static int call_site(Dwarf_Die *die, Dwarf_Files *files, const char **file,
                     int *line)
{
    Dwarf_Attribute a;
    Dwarf_Word f, l;

    if (!files || dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &f) ||
        dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &l))
        return 0;
    *file = dwarf_filesrc(files, f, NULL, NULL);
    *line = (int)l;
    return *file != NULL;
}

static void inlined_calls(Dwfl_Module *m, Dwarf_Addr a, cs_symname *out)
{
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(m, a, &bias), *scopes = NULL;
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    int n = cu ? dwarf_getscopes(cu, a - bias, &scopes) : 0;

    if (n <= 0)
        return;
    if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
        files = NULL;
    for (int i = 0; i < n; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_subprogram)
            break;
        if (tag != DW_TAG_inlined_subroutine)
            continue;
        const char *file = NULL;
        int line = 0;
        if (!call_site(&scopes[i], files, &file, &line))
            break; /* no call site: where its caller is is unknown */
        if (out->ninline < CS_SYMNAME_INLINE_MAX) {
            cs_symname_inline *f = &out->inl[out->ninline++];
            f->func = die_name(&scopes[i]);
            f->file = out->file; /* where the address is, in it */
            f->line = out->line;
        }
        out->file = file; /* the caller's frame is at the call site */
        out->line = line;
    }
    free(scopes);
}

void cs__ag_symname(Dwfl_Module *m, uint64_t ip, int is_return,
                    cs_symname *out)
{
    Dwarf_Addr a = is_return && ip ? ip - 1 : ip;
    GElf_Off off = 0;
    GElf_Sym sym;
    Dwfl_Line *l;

    memset(out, 0, sizeof(*out));
    if (!m)
        return;
    out->func = dwfl_module_addrinfo(m, a, &off, &sym, NULL, NULL, NULL);
    out->offset = off + (a != ip);
    if ((l = dwfl_module_getsrc(m, a)) != NULL) {
        out->file = dwfl_lineinfo(l, NULL, &out->line, NULL, NULL, NULL);
        if (out->line <= 0)
            out->file = NULL;
    }
    if (out->file)
        inlined_calls(m, a, out);
}
