/*
 * forward.c - run under LD_PRELOAD=libcoscope-preload.so: every wrapped
 * function still does its job, and nothing is reported when it is called
 * outside a task, in a cs_to_thread worker, or in a task when it cannot
 * block (O_NONBLOCK fds, zero timeouts, a free mutex, fds 0-2).  With
 * argument "contended", a task then takes a mutex another thread holds,
 * which must be reported once.
 */
#include <coscope.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "forward: %s:%d: %s\n", __FILE__, __LINE__,       \
                    #cond);                                                   \
            failures++;                                                       \
        }                                                                     \
    } while (0)

/* Each wrapped call once, results checked: outside tasks and in workers. */
static void *every_call(void *arg)
{
    int p[2], sv[2];
    char buf[8];
    struct timespec ts = {0, 1000};
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    sem_t sem;
    struct addrinfo *ai = NULL, hints = {.ai_family = AF_INET};
    char path[] = "/tmp/coscope-forward-XXXXXX";
    int fd;

    CHECK(sleep(0) == 0);
    CHECK(usleep(10) == 0);
    CHECK(nanosleep(&ts, NULL) == 0);
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == 0);
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "abc", 3) == 3);
    CHECK(read(p[0], buf, sizeof(buf)) == 3 && memcmp(buf, "abc", 3) == 0);
    struct pollfd pfd = {p[0], POLLIN, 0};
    CHECK(poll(&pfd, 1, 1) == 0);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {0, 1000};
    CHECK(select(p[0] + 1, &rs, NULL, NULL, &tv) == 0);
    close(p[0]);
    close(p[1]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(send(sv[0], "xy", 2, 0) == 2);
    CHECK(recv(sv[1], buf, sizeof(buf), 0) == 2);
    CHECK(sendto(sv[1], "z", 1, 0, NULL, 0) == 1);
    CHECK(recvfrom(sv[0], buf, sizeof(buf), 0, NULL, NULL) == 1 &&
          buf[0] == 'z');
    close(sv[0]);
    close(sv[1]);
    CHECK(pthread_mutex_lock(&mu) == 0);
    CHECK(pthread_mutex_unlock(&mu) == 0);
    CHECK(sem_init(&sem, 0, 1) == 0 && sem_wait(&sem) == 0);
    sem_destroy(&sem);
    CHECK(getaddrinfo("127.0.0.1", "80", &hints, &ai) == 0 && ai);
    if (ai)
        freeaddrinfo(ai);
    CHECK(system("exit 3") != -1);
    FILE *f = popen("echo hi", "r");
    CHECK(f && fgets(buf, sizeof(buf), f) && strcmp(buf, "hi\n") == 0);
    CHECK(f && pclose(f) == 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 7);
    CHECK((fd = mkstemp(path)) >= 0);
    CHECK(write(fd, "data", 4) == 4 && fsync(fd) == 0 && fdatasync(fd) == 0);
    CHECK(flock(fd, LOCK_EX) == 0 && flock(fd, LOCK_UN) == 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    CHECK(fcntl(fd, F_SETLKW, &fl) == 0);
    CHECK(fcntl(fd, F_GETFL) >= 0);
    close(fd);
    unlink(path);
    return arg;
}

/* In a task, the calls that cannot block. */
static void *quiet_in_task(void *arg)
{
    int p[2];
    char buf[4];
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    void *r = NULL;

    CHECK(pipe2(p, O_NONBLOCK) == 0);
    CHECK(read(p[0], buf, sizeof(buf)) == -1 && errno == EAGAIN);
    CHECK(write(p[1], "a", 1) == 1);
    struct pollfd pfd = {p[0], POLLIN, 0};
    CHECK(poll(&pfd, 1, 0) == 1);
    close(p[0]);
    close(p[1]);
    CHECK(pthread_mutex_lock(&mu) == 0 && pthread_mutex_unlock(&mu) == 0);
    fprintf(stderr, "forward: a line on stderr from a task\n");
    CHECK(cs_to_thread(every_call, arg, &r) == 0 && r == arg);
    return arg;
}

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;

static void *holder(void *arg)
{
    pthread_mutex_lock(&held);
    *(volatile int *)arg = 1;
    usleep(50 * 1000);
    pthread_mutex_unlock(&held);
    return NULL;
}

static void *contended(void *arg)
{
    volatile int started = 0;
    pthread_t th;

    (void)arg;
    CHECK(pthread_create(&th, NULL, holder, (void *)&started) == 0);
    while (!started)
        cs_yield(); /* hmm: a spin, but bounded by the thread's start */
    CHECK(pthread_mutex_lock(&held) == 0); /* waits ~50 ms: reported */
    pthread_mutex_unlock(&held);
    pthread_detach(th);
    return NULL;
}

int main(int argc, char **argv)
{
    every_call(NULL); /* no loop at all */
    CHECK(cs_run(quiet_in_task, (void *)1L, NULL) == 0);
    if (argc > 1 && strcmp(argv[1], "contended") == 0)
        CHECK(cs_run(contended, NULL, NULL) == 0);
    printf("forward: %d failures\n", failures);
    return failures != 0;
}
