/*
 * view_serve.c - handing the viewer (viewer/) and a trace's data to a
 * browser, for `coscope view`: as one offline HTML page, or from a small
 * HTTP/1.0 server on 127.0.0.1.
 *
 * The page: index.html with its stylesheet link replaced by the CSS and
 * its module script replaced by the data (base64, in a non-executed
 * <script type="application/octet-stream" id="cs-trace-data">) and one
 * inline module made of the viewer's modules, each file's imports first.
 * The joining relies on the viewer's conventions: imports are whole lines
 * `import {a, b} from './x.js';`, exports are `export function|const|class`,
 * and top-level names are unique across files.
 *
 * The server answers each connection on its own thread (a browser may open
 * a connection and send nothing on it for a while; it must not hold up the
 * others), closes it after the response, serves only the viewer's own
 * files by plain names and /trace.bin, and refuses requests whose Host is
 * not this address (a web page elsewhere cannot read the trace through DNS
 * rebinding).  Everything the threads share is read-only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "timeline.h"

#define MAX_MODULES 32

/* Reads dir/name into a malloc'd, NUL-terminated buffer; NULL with errno
 * set. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    char chunk[65536];
    size_t got;
    while (m && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, got, m);
    int bad = ferror(f);
    fclose(f);
    if (m == NULL || fclose(m) != 0 || bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

/* A plain file name of the viewer: [a-z0-9_-]+ then .js, .css or .html. */
static const char *viewer_type(const char *name)
{
    size_t i = 0;
    while ((name[i] >= 'a' && name[i] <= 'z') ||
           (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
           name[i] == '-')
        i++;
    if (i == 0)
        return NULL;
    if (strcmp(name + i, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(name + i, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(name + i, ".html") == 0)
        return "text/html; charset=utf-8";
    return NULL;
}

/* ---- one page ------------------------------------------------------------
 */

struct bundle {
    const char *dir;
    FILE *out;
    char done[MAX_MODULES][64]; /* modules already written */
    int ndone;
};

/* Writes module name, after the modules it imports. */
static int bundle_module(struct bundle *b, const char *name, int depth)
{
    for (int i = 0; i < b->ndone; i++)
        if (strcmp(b->done[i], name) == 0)
            return CLI_OK;
    if (depth > MAX_MODULES || b->ndone == MAX_MODULES || !viewer_type(name) ||
        strlen(name) >= sizeof b->done[0])
        return cli_error("view: cannot join the viewer's module '%s'", name);
    size_t len;
    char *src = slurp(b->dir, name, &len);
    if (src == NULL)
        return cli_error("view: cannot read '%s/%s': %s", b->dir, name,
                         cli_strerror(errno));
    if (strstr(src, "</script") != NULL) {
        free(src);
        return cli_error("view: '%s' contains '</script' and cannot be "
                         "inlined",
                         name);
    }
    /* imports first */
    for (char *l = src; l && *l;
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : 0) {
        char dep[64];
        if (strncmp(l, "import ", 7) == 0 &&
            sscanf(strstr(l, "from './") ? strstr(l, "from './") : "",
                   "from './%63[a-z0-9_.-]'", dep) == 1 &&
            bundle_module(b, dep, depth + 1) != CLI_OK) {
            free(src);
            return CLI_ERROR;
        }
    }
    snprintf(b->done[b->ndone++], sizeof b->done[0], "%s", name);
    fprintf(b->out, "/* ---- %s ---- */\n", name);
    for (char *l = src; l && *l;) {
        char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l + 1) : strlen(l);
        if (strncmp(l, "import ", 7) != 0) {
            if (strncmp(l, "export ", 7) == 0)
                l += 7, n -= 7;
            fwrite(l, 1, n, b->out);
        }
        l = nl ? nl + 1 : NULL;
    }
    free(src);
    return CLI_OK;
}

static void base64(FILE *f, const unsigned char *p, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {a[v >> 18], a[(v >> 12) & 63],
                     i + 1 < n ? a[(v >> 6) & 63] : '=',
                     i + 2 < n ? a[v & 63] : '='};
        fwrite(q, 1, 4, f);
        if (i % 57 == 54)
            fputc('\n', f);
    }
}

static const char css_link[] = "<link rel=\"stylesheet\" href=\"viewer.css\">";
static const char js_tag[] =
    "<script type=\"module\" src=\"main.js\"></script>";

int cli_view_html(const char *dir, const char *data, size_t len,
                  const char *out)
{
    size_t n, cn;
    char *page = slurp(dir, "index.html", &n);
    char *css = page ? slurp(dir, "viewer.css", &cn) : NULL;
    char *at_css = page ? strstr(page, css_link) : NULL;
    char *at_js = page ? strstr(page, js_tag) : NULL;
    if (css == NULL || at_css == NULL || at_js == NULL || at_js < at_css) {
        free(page);
        free(css);
        return cli_error("view: '%s/index.html' is not the viewer's page",
                         dir);
    }
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        int e = errno;
        free(page);
        free(css);
        return cli_error("cannot create '%s': %s", out, cli_strerror(e));
    }
    fwrite(page, 1, (size_t)(at_css - page), f);
    fprintf(f, "<style>\n%s</style>", css);
    at_css += sizeof css_link - 1;
    fwrite(at_css, 1, (size_t)(at_js - at_css), f);
    fputs("<script type=\"application/octet-stream\" id=\"cs-trace-data\">\n",
          f);
    base64(f, (const unsigned char *)data, len);
    fputs("\n</script>\n<script type=\"module\">\n", f);
    struct bundle b = {.dir = dir, .out = f};
    int rc = bundle_module(&b, "main.js", 0);
    fputs("</script>", f);
    fputs(at_js + sizeof js_tag - 1, f);
    free(page);
    free(css);
    if (ferror(f) | (fclose(f) != 0) && rc == CLI_OK)
        rc = cli_error("cannot write '%s': %s", out, cli_strerror(errno));
    if (rc != CLI_OK)
        remove(out);
    else
        printf("wrote '%s'\n", out);
    return rc;
}

/* ---- the server ----------------------------------------------------------
 */


static void send_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0 && errno == EINTR && !cli_stop_requested)
            continue;
        if (w <= 0)
            return;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

static int respond(int fd, int code, const char *type, const void *body,
                   size_t len, int head)
{
    char h[512];
    const char *what = code == 200   ? "OK"
                       : code == 404 ? "Not Found"
                       : code == 403 ? "Forbidden"
                       : code == 405 ? "Method Not Allowed"
                                     : "Bad Request";
    int n = snprintf(h, sizeof h,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n\r\n",
                     code, what, type, len);
    send_all(fd, h, (size_t)n);
    if (!head)
        send_all(fd, body, len);
    return 0;
}

/* Is the request's Host header this server (127.0.0.1 or localhost)? */
static int host_ok(const char *head, int port)
{
    const char *h = strcasestr(head, "\nHost:");
    if (h == NULL)
        return 1; /* HTTP/1.0 without Host: not from a browser page */
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    char want[64];
    size_t n = strcspn(h, "\r\n");
    for (int i = 0; i < 2; i++) {
        snprintf(want, sizeof want, "%s:%d", i ? "localhost" : "127.0.0.1",
                 port);
        if (n == strlen(want) && strncasecmp(h, want, n) == 0)
            return 1;
    }
    return 0;
}

struct server {
    const char *dir;
    const char *data;
    size_t len;
    int port;
};

static int serve_one(struct server *s, int fd)
{
    char head[8192], method[8], path[256];
    if (cli_http_read_head(fd, head, sizeof head, -1) < 0 ||
        sscanf(head, "%7s %255s", method, path) != 2)
        return respond(fd, 400, "text/plain", "bad request\n", 12, 0);
    int is_head = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !is_head)
        return respond(fd, 405, "text/plain", "GET only\n", 9, 0);
    if (!host_ok(head, s->port))
        return respond(fd, 403, "text/plain", "wrong host\n", 11, is_head);
    path[strcspn(path, "?#")] = '\0';
    if (strcmp(path, "/trace.bin") == 0)
        return respond(fd, 200, "application/octet-stream", s->data, s->len,
                       is_head);
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
    const char *type = path[0] == '/' ? viewer_type(name) : NULL;
    size_t n;
    char *body = type ? slurp(s->dir, name, &n) : NULL;
    if (body == NULL)
        return respond(fd, 404, "text/plain", "not found\n", 10, is_head);
    respond(fd, 200, type, body, n, is_head);
    free(body);
    return 0;
}

/* One connection, on its own detached thread. */
struct conn {
    struct server *s;
    int fd;
};

static void finish(struct server *s, int fd)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    serve_one(s, fd);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static int active; /* connection threads running (atomic) */

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    finish(c->s, c->fd);
    free(c);
    __atomic_fetch_sub(&active, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Serves fd on a new thread, or on this one when none can be made.  The
 * thread blocks SIGINT and SIGTERM, so that Ctrl-C interrupts accept(). */
static void dispatch(struct server *s, int fd)
{
    struct conn *c = malloc(sizeof *c);
    pthread_t th;
    pthread_attr_t attr;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    if (c != NULL && pthread_attr_init(&attr) == 0) {
        *c = (struct conn){s, fd};
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        __atomic_fetch_add(&active, 1, __ATOMIC_RELAXED);
        int err = pthread_create(&th, &attr, conn_main, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (err == 0)
            return;
        __atomic_fetch_sub(&active, 1, __ATOMIC_RELAXED);
    }
    free(c);
    finish(s, fd);
}

static int listen_on(int port, int *out_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *out_port = ntohs(a.sin_port);
    return fd;
}

int cli_view_serve(const char *dir, const char *data, size_t len, int port,
                   const char *label)
{
    struct server s = {dir, data, len, 0};
    int lfd = listen_on(port, &s.port);
    if (lfd < 0)
        return cli_error("view: cannot listen on 127.0.0.1:%d: %s", port,
                         cli_strerror(-lfd));
    cli_catch_stop(); /* no SA_RESTART: poll returns EINTR */
    printf("viewing '%s' at http://127.0.0.1:%d/ (press Ctrl-C to stop)\n",
           label, s.port);
    fflush(stdout);
    while (!cli_stop_requested) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            int e = errno;
            close(lfd);
            return cli_error("view: accept failed: %s", cli_strerror(e));
        }
        dispatch(&s, fd);
    }
    close(lfd);
    /* Responses under way read s and the data: let them end (each send
     * gives up after 5 s without progress). */
    for (int i = 0; i < 2000 && __atomic_load_n(&active, __ATOMIC_ACQUIRE);
         i++)
        usleep(10000);
    return CLI_OK;
}
