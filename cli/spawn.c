/*
 * spawn.c - running a command under the agent (`coscope run`, `coscope
 * check`): finding libcoscope-preload.so, starting the command with it in
 * LD_PRELOAD, waiting for it, and its status as a shell would give it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define PRELOAD_NAME "libcoscope-preload.so"

static int is_file(const char *p)
{
    struct stat st;
    return p[0] != '\0' && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* <dir of this binary>/<libdir, relative>/<tail> into buf if ok() says
 * it is there: installed, <prefix>/bin/coscope and <prefix>/<libdir>/... */
static int next_to_exe(const char *tail, int (*ok)(const char *), char *buf,
                       size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    snprintf(buf, cap, "%s/%s/%s", exe, COSCOPE_PRELOAD_LIBDIR_REL, tail);
    return ok(buf);
}

const char *cli_preload_path(void)
{
    static char buf[PATH_MAX + 64];
    const char *env = getenv("COSCOPE_PRELOAD");
    if (env != NULL && env[0] != '\0')
        return is_file(env) ? env : NULL;
    if (next_to_exe(PRELOAD_NAME, is_file, buf, sizeof buf))
        return buf;
#ifdef COSCOPE_PRELOAD_BUILD
    if (is_file(COSCOPE_PRELOAD_BUILD))
        return COSCOPE_PRELOAD_BUILD;
#endif
    if (is_file(COSCOPE_PRELOAD_INSTALL))
        return COSCOPE_PRELOAD_INSTALL;
    return NULL;
}

void cli_preload_setenv(const char *preload)
{
    const char *old = getenv("LD_PRELOAD");
    if (preload == NULL)
        return;
    if (old != NULL && old[0] != '\0') {
        /* theirs first: the ASan runtime must lead */
        size_t len = strlen(old) + strlen(preload) + 2;
        char *v = malloc(len);
        if (v != NULL) {
            snprintf(v, len, "%s:%s", old, preload);
            setenv("LD_PRELOAD", v, 1);
        }
    } else {
        setenv("LD_PRELOAD", preload, 1);
    }
}

int cli_output_check(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_error("cannot write '%s': is a directory", path);
    if (unlink(path) != 0 && errno != ENOENT)
        return cli_error("cannot replace '%s': %s", path, cli_strerror(errno));
    /* made and removed again: whoever writes it creates it afresh */
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return cli_error("cannot write '%s': %s", path, cli_strerror(errno));
    close(fd);
    unlink(path);
    return CLI_OK;
}

static int has_bridge(const char *dir)
{
    char p[PATH_MAX + 64];
    struct stat st;
    snprintf(p, sizeof p, "%s/coscope/__init__.py", dir);
    return dir[0] != '\0' && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

const char *cli_python_path(void)
{
    static char buf[PATH_MAX + 64];
    const char *env = getenv("COSCOPE_PYTHONPATH");
    if (env != NULL && env[0] != '\0')
        return has_bridge(env) ? env : NULL;
    if (next_to_exe("coscope/python", has_bridge, buf, sizeof buf))
        return buf;
    if (has_bridge(COSCOPE_PYTHON_BUILD))
        return COSCOPE_PYTHON_BUILD;
    if (has_bridge(COSCOPE_PYTHON_INSTALL))
        return COSCOPE_PYTHON_INSTALL;
    return NULL;
}

/* Puts dir first on PYTHONPATH (in the child, before exec). */
static void prepend_pythonpath(const char *dir)
{
    const char *old = getenv("PYTHONPATH");
    if (old == NULL || old[0] == '\0') {
        setenv("PYTHONPATH", dir, 1);
        return;
    }
    size_t len = strlen(old) + strlen(dir) + 2;
    char *v = malloc(len);
    if (v != NULL) {
        snprintf(v, len, "%s:%s", dir, old);
        setenv("PYTHONPATH", v, 1);
    }
}

int cli_spawn_wait(const char *cmd, char **argv, const char *preload,
                   const char *report_dir, int out_to_err, int *status)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return cli_error("%s: cannot start '%s': %s", cmd, argv[0],
                         cli_strerror(errno));
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return cli_error("%s: cannot start '%s': %s", cmd, argv[0],
                         cli_strerror(e));
    }
    if (child == 0) {
        close(pfd[0]);
        cli_preload_setenv(preload);
        if (report_dir != NULL) {
            setenv("COSCOPE_REPORT_DIR", report_dir, 1);
            /* check prints each report itself: not the agent's copy too */
            setenv("COSCOPE_REPORT_STDERR", "off", 1);
        }
        const char *py = cli_python_path();
        if (py != NULL)
            prepend_pythonpath(py);
        if (out_to_err)
            dup2(2, 1);
        execvp(argv[0], argv);
        int e = errno;
        (void)!write(pfd[1], &e, sizeof e);
        _exit(127);
    }
    close(pfd[1]);
    int e = 0;
    ssize_t got;
    do
        got = read(pfd[0], &e, sizeof e);
    while (got < 0 && errno == EINTR);
    close(pfd[0]);
    /* like system(): Ctrl-C goes to the command, which decides */
    struct sigaction ign, oint, oquit;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &oint);
    sigaction(SIGQUIT, &ign, &oquit);
    pid_t r;
    do
        r = waitpid(child, status, 0);
    while (r < 0 && errno == EINTR);
    sigaction(SIGINT, &oint, NULL);
    sigaction(SIGQUIT, &oquit, NULL);
    if (got == (ssize_t)sizeof e)
        return cli_error("%s: cannot run '%s': %s", cmd, argv[0],
                         cli_strerror(e));
    if (r < 0)
        return cli_error("%s: cannot wait for '%s': %s", cmd, argv[0],
                         cli_strerror(errno));
    return CLI_OK;
}

int cli_shell_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return CLI_ERROR;
}
