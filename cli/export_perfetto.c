#include <errno.h>
#include "export.h"
int cli_tl_write_perfetto(struct cli_timeline *tl, FILE *f) { (void)tl; (void)f; return -ENOSYS; }
