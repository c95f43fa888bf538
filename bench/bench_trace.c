/*
 * bench_trace.c - what always-on tracing costs (issue 4, point 8), each
 * figure against its baseline in the same run:
 *
 *   switch   cs_yield ping-pong round trip (two tasks yielding to each
 *            other, as bench_switch's symmetric figure) with tracing on,
 *            against the same ping-pong in the same process untraced (the
 *            runtime's internal switch cs__trace_rt_disabled: every hook is
 *            compiled in, the loop takes no ring).  Reps alternate off/on,
 *            best of each.  Target <= 1.5x.
 *   echo     requests/s of examples/echo_server.c started twice by this
 *            bench, traced (default) and with COSCOPE=off, same load
 *            (64-byte ping-pong, one client thread, 1 and 8 connections),
 *            rounds alternating.  Target >= 0.98x.  Also the server's CPU
 *            time per request (/proc/PID/schedstat), the steadier figure
 *            on a shared machine: untraced CPU / traced CPU, same target.
 *   decode   events/s cs_trace_read() decodes on one core, reading the ring
 *            the switch run filled, through cs_trace_open_pid(getpid()).
 *            Target >= 20 million/s.
 *
 * With --agent (issue 5, point 6) only the echo figure, for the agent
 * instead: the same server with the agent's reports on and
 * libcoscope-preload.so (interposer) in LD_PRELOAD, against
 * COSCOPE_REPORT=off without the preload; tracing on in both (the
 * watchdog reads the trace's step words).  Target: overhead <= 2 %,
 * i.e. >= 0.98x.
 *
 * Options: --quick, -n N (round trips per switch rep, default 5 million),
 * --reps R (default 5), --server PATH (the echo server binary), --agent.
 */
#include "bench_server.h"
#include "bench_tasks.h"

#include <coscope/trace.h>
#include <sys/wait.h>

#ifndef BENCH_ECHO_SERVER
#define BENCH_ECHO_SERVER "./bench_echo_server"
#endif

/* runtime/trace.h: loops started while it is set run untraced. */
extern int cs__trace_rt_disabled;

static const char *prog = "bench_trace";

/* ---- switch round trip --------------------------------------------------- */

typedef struct switch_run {
    long n;    /* round trips */
    double ns; /* ns per round trip */
} switch_run;

/* Symmetric, as bench_switch's headline figure: two identical yielders,
 * main waits in cs_gather; N round trips are 2N yields. */
static void *switch_main(void *arg)
{
    switch_run *r = arg;
    r->ns = bench_pingpong(&r->n);
    if (r->ns < 0)
        cs_raise((int)r->ns, "ping-pong");
    return NULL;
}

static double switch_once(long n, int traced)
{
    switch_run r = {.n = n};
    cs__trace_rt_disabled = !traced;
    int rc = cs_run(switch_main, &r, NULL);
    cs__trace_rt_disabled = 0;
    if (rc != 0) {
        fprintf(stderr, "%s: cs_run: %s\n", prog, cs_strerror(rc));
        exit(1);
    }
    return r.ns;
}

/* ---- reader decode rate -------------------------------------------------- */

static double decode_rate(int quick)
{
    cs_trace *t;
    cs_trace_info info;
    int rc = cs_trace_open_pid((int)getpid(), &t);
    if (rc != 0) {
        fprintf(stderr, "%s: cs_trace_open_pid: %s\n", prog,
                cs_trace_strerror(rc));
        return -1;
    }
    cs_trace_info_get(t, &info);
    uint32_t best = 0;
    uint64_t head = 0;
    for (uint32_t i = 0; i < info.ring_count; i++) {
        cs_trace_ring rg;
        if (cs_trace_ring_get(t, i, &rg) == 0 && rg.head > head) {
            head = rg.head;
            best = i;
        }
    }
    uint64_t avail = head < info.ring_slots ? head : info.ring_slots;
    if (avail == 0) {
        fprintf(stderr, "%s: no events to decode\n", prog);
        cs_trace_close(t);
        return -1;
    }
    static cs_trace_event ev[4096];
    uint64_t events = 0, lost = 0, sum = 0;
    int64_t budget = quick ? 20000000 : 500000000, t0 = bench_now_ns(), t1;
    do {
        uint64_t cursor = head - avail;
        while (cursor < head) {
            size_t n = 0;
            rc = cs_trace_read(t, best, &cursor, ev, 4096, &n, &lost);
            if (rc != 0 || n == 0)
                break;
            for (size_t i = 0; i < n; i++) /* touch what was decoded */
                sum += ev[i].type;
            events += n;
        }
        t1 = bench_now_ns();
    } while (t1 - t0 < budget && rc == 0);
    cs_trace_close(t);
    if (rc != 0 || lost != 0) {
        fprintf(stderr, "%s: cs_trace_read: %s, %llu lost\n", prog,
                cs_trace_strerror(rc), (unsigned long long)lost);
        return -1;
    }
    printf("decode: %llu events from ring %u (%llu per pass, type sum %llu)\n",
           (unsigned long long)events, best, (unsigned long long)avail,
           (unsigned long long)sum);
    return (double)events * 1e9 / (double)(t1 - t0);
}

/* ---- echo server, traced and not ----------------------------------------- */

enum { MSG_SIZE = 64, MAX_CONNS = 64 };

static int agent_mode; /* --agent: variants are agent off / agent on */

/* In the server's child: variant 0 the baseline (COSCOPE=off, or with
 * --agent COSCOPE_REPORT=off), 1 the measured one. */
static void server_env(void *arg)
{
    int traced = *(const int *)arg;
    if (agent_mode) {
        unsetenv("COSCOPE");
        if (!traced) {
            setenv("COSCOPE_REPORT", "off", 1);
            unsetenv("LD_PRELOAD");
        } else {
            unsetenv("COSCOPE_REPORT");
            setenv("LD_PRELOAD", BENCH_PRELOAD, 1);
        }
    } else if (!traced) {
        setenv("COSCOPE", "off", 1);
    } else {
        unsetenv("COSCOPE");
    }
}

/* Starts the echo server, variant traced (see server_env); its port. */
static int start_server(const char *path, int traced, pid_t *pid)
{
    int port = bench_server_start(prog, path, server_env, &traced, pid);
    bench_children[traced] = *pid;
    return port;
}

static int stop_server(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "%s: echo server ended with status 0x%x\n", prog, st);
        return -1;
    }
    return 0;
}

/* conns connections, one request in flight on each, for ms; req/s, and
 * the requests served in *count. */
static double drive(int port, int conns, long ms, long *count_out)
{
    int fds[MAX_CONNS];
    char msg[MSG_SIZE], back[MSG_SIZE];
    long count = 0;
    memset(msg, 'x', sizeof msg);
    for (int i = 0; i < conns; i++)
        if ((fds[i] = bench_connect(port, 5)) < 0)
            return -1;
    int64_t t0 = bench_now_ns(), end = t0 + ms * 1000000, t1;
    int ok = 1;
    do {
        for (int i = 0; i < conns && ok; i++)
            ok = send(fds[i], msg, MSG_SIZE, MSG_NOSIGNAL) == MSG_SIZE;
        for (int i = 0; i < conns && ok; i++) {
            size_t got = 0;
            while (ok && got < MSG_SIZE) {
                ssize_t r = recv(fds[i], back + got, MSG_SIZE - got, 0);
                ok = r > 0;
                got += r > 0 ? (size_t)r : 0;
            }
        }
        count += conns;
        t1 = bench_now_ns();
    } while (ok && t1 < end);
    for (int i = 0; i < conns; i++)
        close(fds[i]);
    *count_out = count;
    return ok ? (double)count * 1e9 / (double)(t1 - t0) : -1;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bench_opts o;
    for (int i = 1; i < argc; i++) { /* --agent, taken out before parsing */
        if (strcmp(argv[i], "--agent") == 0) {
            agent_mode = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            argc--;
            i--;
        }
    }
    bench_parse(argc, argv, &o, "--server", " [--server PATH] [--agent]");
    long n = bench_n(&o, 20000, 5000000);
    int reps = bench_reps(&o, 1, 5);
    long ms = o.quick ? 100 : 1000;
    int echo_reps = o.quick ? 1 : 5;
    const char *path = o.extra ? o.extra : BENCH_ECHO_SERVER;
#ifdef BENCH_ECHO_SERVER_SHARED
    if (agent_mode && !o.extra)
        path = BENCH_ECHO_SERVER_SHARED;
#endif
    char v[64], b[64], r[64], fig[64];

    bench_watchdog_arm(prog, (unsigned)(90 + reps * 10));

    const char *name[2] = {"COSCOPE=off", "traced"};
    const char *what = "traced";
    if (agent_mode) {
        name[0] = "agent off";
        name[1] = "agent+preload";
        what = "agent";
        goto echo;
    }

    /* switch: alternate untraced and traced runs, best of each */
    double off = 1e300, on = 1e300;
    printf("switch round trip: %ld round trips per run, best of %d\n", n,
           reps);
    for (int rep = 0; rep < reps; rep++) {
        double a = switch_once(n, 0), c = switch_once(n, 1);
        printf("  rep %d: untraced %.2f ns, traced %.2f ns\n", rep + 1, a, c);
        off = a < off ? a : off;
        on = c < on ? c : on;
    }
    printf("traced switch round trip %.2f ns, untraced %.2f ns, %.2fx\n", on,
           off, on / off);
    bench_row("traced switch round trip",
              bench_fmt(v, sizeof v, "%.1f ns", on),
              bench_fmt(b, sizeof b, "untraced %.1f ns", off),
              bench_fmt(r, sizeof r, "%.2fx", on / off), "<= 1.5x",
              on / off <= 1.5);

    /* decode: the traced runs above filled a ring of this process */
    double rate = decode_rate(o.quick);
    if (rate < 0)
        return 1;
    printf("reader decode: %.1f million events/s\n", rate / 1e6);
    bench_row("reader decode",
              bench_fmt(v, sizeof v, "%.1f M events/s", rate / 1e6), "-", "-",
              ">= 20 M/s", rate >= 20e6);

echo:
    /* echo: two servers, traced and untraced, rounds alternating */
    ;
    int port[2];
    pid_t servers[2] = {0};
    if ((port[0] = start_server(path, 0, &servers[0])) < 0 ||
        (port[1] = start_server(path, 1, &servers[1])) < 0)
        return 1;
    const int conn_counts[2] = {1, 8};
    double best[2][2] = {{0}};                           /* [conns][traced] */
    double cpu[2][2] = {{1e300, 1e300}, {1e300, 1e300}}; /* ns/request */
    for (int rep = 0; rep < echo_reps; rep++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 2; k++) {
                int s = (k + rep) % 2; /* alternate which goes first */
                long count = 0;
                int64_t c0 = bench_cpu_ns(servers[s]);
                double rps = drive(port[s], conn_counts[c], ms, &count);
                int64_t c1 = bench_cpu_ns(servers[s]);
                double per = count > 0 && c0 >= 0 && c1 >= c0
                                 ? (double)(c1 - c0) / (double)count
                                 : 0;
                printf("  echo rep %d, %d conn, %s: %.0f req/s, %.0f ns of "
                       "server CPU per request\n",
                       rep + 1, conn_counts[c], name[s], rps, per);
                if (per > 0 && per < cpu[c][s])
                    cpu[c][s] = per;
                if (rps < 0) {
                    fprintf(stderr, "%s: echo connection failed\n", prog);
                    stop_server(servers[0]);
                    stop_server(servers[1]);
                    return 1;
                }
                if (rps > best[c][s])
                    best[c][s] = rps;
            }
    int err = stop_server(servers[0]) | stop_server(servers[1]);
    for (int c = 0; c < 2; c++) {
        double ratio = best[c][1] / best[c][0];
        printf("echo %d conn: %s %.0f req/s, %s %.0f req/s, %.3fx\n",
               conn_counts[c], name[1], best[c][1], name[0], best[c][0],
               ratio);
        bench_row(bench_fmt(fig, sizeof fig, "echo %s, %d conn", what,
                            conn_counts[c]),
                  bench_fmt(v, sizeof v, "%.0f req/s", best[c][1]),
                  bench_fmt(b, sizeof b, "%s %.0f req/s", name[0], best[c][0]),
                  bench_fmt(r, sizeof r, "%.3fx", ratio), ">= 0.98x",
                  ratio >= 0.98);
        /* the same target read as CPU: off's CPU per request / traced's */
        double cr = cpu[c][0] / cpu[c][1];
        printf("echo %d conn: server CPU per request %s %.0f ns, "
               "%s %.0f ns, throughput-equivalent %.3fx\n",
               conn_counts[c], name[1], cpu[c][1], name[0], cpu[c][0], cr);
        bench_row(bench_fmt(fig, sizeof fig, "echo %s CPU/req, %d conn", what,
                            conn_counts[c]),
                  bench_fmt(v, sizeof v, "%.0f ns", cpu[c][1]),
                  bench_fmt(b, sizeof b, "%s %.0f ns", name[0], cpu[c][0]),
                  bench_fmt(r, sizeof r, "%.3fx", cr), ">= 0.98x", cr >= 0.98);
    }
    return err ? 1 : 0;
}
