/*
 * metrics.h - every coscope process on the host as Prometheus metrics
 * (cli/metrics.c), for `coscope metrics` (cmd_metrics.c).  Private to
 * cli/.
 *
 * A struct cli_metrics remembers each process it has seen (its open
 * segment, a read cursor per ring and the counters built from the events
 * read so far), so that counters only grow between scrapes; a scrape
 * lists /dev/shm again, so processes that started since are picked up and
 * those that exited are forgotten.
 */
#ifndef CS_CLI_METRICS_H
#define CS_CLI_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct cli_metrics;

/* Output formats of a scrape. */
enum cli_metrics_format {
    CLI_METRICS_TEXT = 0,        /* Prometheus text exposition 0.0.4 */
    CLI_METRICS_OPENMETRICS = 1, /* OpenMetrics 1.0 text */
};

/* Content-Type of each format. */
const char *cli_metrics_content_type(enum cli_metrics_format fmt);

/* A collector with no process seen yet; NULL when out of memory. */
struct cli_metrics *cli_metrics_new(void);
void cli_metrics_free(struct cli_metrics *m);

/*
 * Reads every segment in /dev/shm and renders the metrics into a buffer
 * of *len bytes the caller frees (*out).  Returns 0 or a negative errno
 * (-ENOMEM; a /dev/shm that cannot be listed is -errno of opendir): one
 * unreadable segment is counted in coscope_exporter_segments, never an
 * error.
 */
int cli_metrics_scrape(struct cli_metrics *m, enum cli_metrics_format fmt,
                       char **out, size_t *len);

#endif /* CS_CLI_METRICS_H */
