/*
 * cmd_metrics.c - `coscope metrics`: every coscope process on the host as
 * Prometheus metrics (cli/metrics.c), served over HTTP on loopback, or
 * written as a node_exporter textfile, or printed once.
 *
 * The server is one thread and one connection at a time, which is what a
 * Prometheus server or two scraping every few seconds needs; each
 * connection gets a 5 s budget so that a stuck client cannot hold it.
 * The format is chosen as Prometheus' client libraries choose it: the
 * OpenMetrics text when the Accept header asks for
 * application/openmetrics-text, else the text format 0.0.4.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "metrics.h"

#define METRICS_DEFAULT_LISTEN "127.0.0.1:9478"
#define METRICS_IO_MS 5000   /* per connection */
#define METRICS_REQ_MAX 8192 /* request head bytes we read */

const char cmd_metrics_usage[] =
    "usage: coscope metrics [--listen <addr:port>] [--textfile <path> "
    "[--interval <s>]]\n"
    "                       [--once] [--openmetrics]\n"
    "\n"
    "Serves the metrics of every coscope process on this host to Prometheus:\n"
    "tasks by state, steps and a step-duration histogram, loop busy fraction\n"
    "and epoll wait time, warnings by kind, trace events written and lost,\n"
    "segment age; each labelled with the process's pid and command.\n"
    "Processes that start or exit are picked up at each scrape.  Format: the\n"
    "text exposition format 0.0.4, or OpenMetrics 1.0 when the scraper's\n"
    "Accept header asks for application/openmetrics-text.\n"
    "\n"
    "    --listen A:P     serve http://A:P/metrics (default " METRICS_DEFAULT_LISTEN
    ";\n"
    "                     numeric addresses, [::1]:P for IPv6, port 0: any)\n"
    "    --textfile F     write the metrics to F (node_exporter's textfile\n"
    "                     collector) every --interval seconds (default 15),\n"
    "                     each time by writing a new file and renaming it\n"
    "    --once           one scrape: to the --textfile, or standard output\n"
    "    --openmetrics    --once or --textfile: write OpenMetrics instead\n"
    "    -h, --help       show this help\n";

/* ---- one scrape as a file ---------------------------------------------- */

static int scrape_to(struct cli_metrics *m, int om, FILE *f, const char *what)
{
    char *buf = NULL;
    size_t len = 0;
    int err = cli_metrics_scrape(m, om, &buf, &len);
    if (err != 0)
        return cli_error("metrics: cannot read '%s': %s", CS_SEG_DIR,
                         strerror(-err));
    int bad = fwrite(buf, 1, len, f) != len;
    free(buf);
    if (bad)
        return cli_error("cannot write %s: %s", what, strerror(errno));
    return CLI_OK;
}

/* Writes path as node_exporter wants a textfile: whole or not at all, by
 * writing a temporary file beside it (not named *.prom, which the
 * collector would read) and renaming it over path. */
static int write_textfile(struct cli_metrics *m, int om, const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
        (int)sizeof tmp)
        return cli_error("metrics: path too long: '%s'", path);
    int fd =
        open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return cli_error("cannot create '%s': %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return cli_error("cannot create '%s': %s", tmp, strerror(errno));
    }
    char what[4200];
    snprintf(what, sizeof what, "'%s'", tmp);
    int rc = scrape_to(m, om, f, what);
    if (rc == CLI_OK && (fflush(f) != 0 || fsync(fd) != 0))
        rc = cli_error("cannot write '%s': %s", tmp, strerror(errno));
    if (fclose(f) != 0 && rc == CLI_OK)
        rc = cli_error("cannot write '%s': %s", tmp, strerror(errno));
    if (rc == CLI_OK && rename(tmp, path) != 0)
        rc = cli_error("cannot rename '%s' to '%s': %s", tmp, path,
                       strerror(errno));
    if (rc != CLI_OK)
        unlink(tmp);
    return rc;
}

static int textfile_loop(struct cli_metrics *m, int om, const char *path,
                         double interval)
{
    while (!cli_stop_requested) { /* Ctrl-C: caught by cli_setup */
        if (write_textfile(m, om, path) != CLI_OK)
            return CLI_ERROR;
        struct timespec ts = {(time_t)interval,
                              (long)((interval - (double)(time_t)interval) *
                                     1e9)};
        while (!cli_stop_requested && nanosleep(&ts, &ts) != 0 &&
               errno == EINTR)
            ;
    }
    return CLI_OK;
}

/* ---- HTTP ---------------------------------------------------------------- */

/* Opens a listening socket on spec ("127.0.0.1:9478", "[::1]:0") and puts
 * the address it got in shown. */
static int listen_on(const char *spec, char *shown, size_t cap)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (colon == NULL || hl == 0 || hl >= sizeof host || colon[1] == '\0')
        return cli_error("metrics: --listen wants ADDR:PORT, not '%s'", spec),
               -1;
    /* getaddrinfo() takes "70000" and wraps it: check the port first */
    char *pend;
    errno = 0;
    unsigned long port_no = strtoul(colon + 1, &pend, 10);
    if (*pend != '\0' || colon[1] < '0' || colon[1] > '9' || errno != 0 ||
        port_no > 65535)
        return cli_error("metrics: bad --listen port '%s' (0 to 65535)",
                         colon + 1),
               -1;
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
                                         AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    int g = getaddrinfo(host, colon + 1, &hints, &ai);
    if (g != 0)
        return cli_error("metrics: bad --listen address '%s': %s", spec,
                         gai_strerror(g)),
               -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, 16) != 0) {
        int e = errno;
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return cli_error("metrics: cannot listen on '%s': %s", spec,
                         strerror(e)),
               -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[128], port[16];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(shown, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h,
                 port);
    else
        snprintf(shown, cap, "%s", spec);
    return fd;
}

/* Sends all of buf, within the connection's deadline. */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void respond(int fd, const char *status, const char *type,
                    const char *body, size_t len, int head_only)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n",
                     status, type, len);
    if (send_all(fd, head, (size_t)n) == 0 && !head_only)
        send_all(fd, body, len);
}

/* Does the Accept header of the request head ask for OpenMetrics? */
static int wants_openmetrics(const char *head)
{
    for (const char *l = strchr(head, '\n'); l; l = strchr(l + 1, '\n')) {
        if (strncasecmp(l + 1, "accept:", 7) != 0)
            continue;
        const char *end = strchr(l + 1, '\n');
        const char *om = strstr(l + 1, "application/openmetrics-text");
        return om != NULL && (end == NULL || om < end);
    }
    return 0;
}

static void serve_one(struct cli_metrics *m, int fd)
{
    static const char index[] =
        "coscope metrics: the metrics are at /metrics\n";
    char req[METRICS_REQ_MAX];
    struct timeval tv = {METRICS_IO_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (cli_http_read_head(fd, req, sizeof req, METRICS_IO_MS) < 0)
        return;
    char method[8] = "", path[256] = "";
    if (sscanf(req, "%7s %255s", method, path) != 2)
        return respond(fd, "400 Bad Request", "text/plain", "", 0, 0);
    int head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0)
        return respond(fd, "405 Method Not Allowed", "text/plain", "", 0, 0);
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    if (strcmp(path, "/") == 0)
        return respond(fd, "200 OK", "text/plain; charset=utf-8", index,
                       sizeof index - 1, head);
    if (strcmp(path, "/metrics") != 0)
        return respond(fd, "404 Not Found", "text/plain", "", 0, head);
    enum cli_metrics_format fmt =
        wants_openmetrics(req) ? CLI_METRICS_OPENMETRICS : CLI_METRICS_TEXT;
    char *body = NULL;
    size_t len = 0;
    int err = cli_metrics_scrape(m, fmt, &body, &len);
    if (err != 0) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "cannot read %s: %s\n", CS_SEG_DIR,
                         strerror(-err));
        respond(fd, "500 Internal Server Error", "text/plain", msg, (size_t)n,
                head);
        return;
    }
    respond(fd, "200 OK", cli_metrics_content_type(fmt), body, len, head);
    free(body);
}

static int serve(struct cli_metrics *m, const char *spec)
{
    char shown[192];
    int lfd = listen_on(spec, shown, sizeof shown);
    if (lfd < 0)
        return CLI_ERROR;
    fprintf(stderr, "coscope metrics: serving http://%s/metrics\n", shown);
    while (!cli_stop_requested) {
        struct pollfd p = {lfd, POLLIN, 0};
        if (poll(&p, 1, -1) <= 0)
            continue; /* EINTR: a stop signal, checked above */
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_one(m, fd);
        close(fd);
    }
    close(lfd);
    return CLI_OK;
}

int cmd_metrics(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"textfile", required_argument, NULL, 't'},
        {"interval", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, '1'},
        {"openmetrics", no_argument, NULL, 'O'},
        CLI_OPTS_END,
    };
    const char *listen_spec = NULL, *textfile = NULL;
    double interval = 15;
    int once = 0, om = 0, c;
    char *end;
    struct cli_setup s;
    while ((c = cli_getopt(argc, argv, "h", opts)) > 0) {
        if (c == 'l')
            listen_spec = optarg;
        else if (c == 't')
            textfile = optarg;
        else if (c == '1')
            once = 1;
        else if (c == 'O')
            om = 1;
        else if (c == 'i') {
            interval = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(interval >= 0.1) ||
                interval > 86400)
                return cli_error("metrics: --interval wants seconds between "
                                 "0.1 and 86400, not '%s'",
                                 optarg);
        }
    }
    if (c < 0)
        return cli_getopt_status(c);
    if (cli_setup(argc, argv, &s) != CLI_OK)
        return CLI_ERROR;
    if (listen_spec && (textfile || once))
        return cli_error("metrics: --listen serves over HTTP; --textfile and "
                         "--once write files: use one or the other");
    struct stat st;
    if (textfile && stat(textfile, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_error("metrics: --textfile '%s' is a directory (give the "
                         "file's path, e.g. '%s/coscope.prom')",
                         textfile, textfile);
    struct cli_metrics *m = cli_metrics_new();
    if (m == NULL)
        return cli_error("out of memory");
    int rc;
    if (once && textfile == NULL)
        rc = scrape_to(m, om, stdout, "to standard output");
    else if (once)
        rc = write_textfile(m, om, textfile);
    else if (textfile)
        rc = textfile_loop(m, om, textfile, interval);
    else
        rc = serve(m, listen_spec ? listen_spec : METRICS_DEFAULT_LISTEN);
    cli_metrics_free(m);
    return rc;
}
