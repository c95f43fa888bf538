/*
 * cs_proc.h - what tests and benchmarks read of this process in /proc:
 * its number of mappings, and a number from a /proc or /sys file.  Header
 * only, so that bench/ (which links no cmocka) can use it too.
 */
#ifndef CS_PROC_H
#define CS_PROC_H

#include <stdio.h>

/* Lines of /proc/self/maps (mappings), or -1. */
static inline long cs_proc_count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    long n = 0;
    int c;

    if (!f)
        return -1;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The number a file starts with (/proc/sys/vm/max_map_count), or -1. */
static inline long cs_proc_read_long(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;

    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

#endif /* CS_PROC_H */
