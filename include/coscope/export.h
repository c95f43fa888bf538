/*
 * coscope/export.h - the one export macro of coscope's libraries.  They
 * are built with -fvisibility=hidden; what a public header declares with
 * CS_EXTERN (and the interposer's wrappers) is exported, nothing else.
 */
#ifndef COSCOPE_EXPORT_H
#define COSCOPE_EXPORT_H

#if defined(__GNUC__)
#define CS_EXTERN __attribute__((visibility("default")))
#else
#define CS_EXTERN
#endif

#endif /* COSCOPE_EXPORT_H */
