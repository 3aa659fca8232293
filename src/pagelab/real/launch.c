/* pagelab-launch: run a command the way /usr/bin/time and perf stat do, from a process that is small.
 *
 * usage: pagelab-launch REPORT_FD FILE ARGV0 ARGS...
 * Forks; the child waits for the go-ahead, then runs FILE with argv ARGV0 ARGS... through execvp(), as
 * GNU time does (so a script without "#!" runs under /bin/sh). Before letting it go, this process opens
 * perf's page-faults/minor-faults/major-faults software events on the child with inherit and
 * enable_on_exec, so they count the command and its descendants from the exec on, as `perf stat` does.
 * While the command runs, this process ignores SIGINT and SIGQUIT, as GNU time does: a Ctrl-C at the
 * terminal reaches the command, which dies or not, and this process still reports.
 *
 * Lines written to REPORT_FD:
 *   pid N               the command's process exists (still before its exec)
 *   exec                execve() succeeded
 *   execfail ERRNO      execve() failed; the child exits 127 for ENOENT and 126 otherwise, as GNU time's does
 *   done status=S elapsed_ns=E ru_utime_us=U ... page-faults=P minor-faults=MI major-faults=MA
 * after wait4(): the wait status, the elapsed time from the go-ahead to the reaping (CLOCK_MONOTONIC),
 * every struct rusage field, and the perf counts (-1 when perf_event_open was refused).
 * Compiled on first use by pagelab/real/measure.py; measure falls back to pure Python without a compiler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int open_counter(pid_t pid, unsigned long long config) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = config;
    a.disabled = 1;
    a.inherit = 1;
    a.enable_on_exec = 1;
    return (int)syscall(SYS_perf_event_open, &a, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long usec(struct timeval tv) { return (long long)tv.tv_sec * 1000000LL + tv.tv_usec; }

static void child(int go, int err, char *file, char **argv) {
    char c;
    ssize_t n;
    do n = read(go, &c, 1); while (n < 0 && errno == EINTR);
    if (n != 1) _exit(126);
    close(go);
    execvp(file, argv);
    int e = errno;
    if (write(err, &e, sizeof e) < 0) _exit(126);
    _exit(e == ENOENT ? 127 : 126);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: pagelab-launch REPORT_FD FILE ARGV0 ARGS...\n"); return 2; }
    int report = atoi(argv[1]);
    int go[2], err[2];
    if (pipe2(go, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) { perror("pagelab-launch: pipe"); return 2; }
    pid_t pid = fork();
    if (pid < 0) { perror("pagelab-launch: fork"); return 2; }
    if (pid == 0) {
        close(go[1]); close(err[0]); close(report);
        child(go[0], err[1], argv[2], argv + 3);
    }
    signal(SIGINT, SIG_IGN);  /* as GNU time's run_command() */
    signal(SIGQUIT, SIG_IGN);
    close(go[0]); close(err[1]);
    int fds[3] = {
        open_counter(pid, PERF_COUNT_SW_PAGE_FAULTS),
        open_counter(pid, PERF_COUNT_SW_PAGE_FAULTS_MIN),
        open_counter(pid, PERF_COUNT_SW_PAGE_FAULTS_MAJ),
    };
    dprintf(report, "pid %d\n", (int)pid);
    long long t0 = now_ns();
    if (write(go[1], "g", 1) != 1) { perror("pagelab-launch: write"); return 2; }
    close(go[1]);
    int e = 0;
    ssize_t n;
    do n = read(err[0], &e, sizeof e); while (n < 0 && errno == EINTR);
    if (n == sizeof e) dprintf(report, "execfail %d\n", e);
    else dprintf(report, "exec\n");
    int status;
    struct rusage ru;
    pid_t w;
    do w = wait4(pid, &status, 0, &ru); while (w < 0 && errno == EINTR);
    long long t1 = now_ns();
    if (w < 0) { perror("pagelab-launch: wait4"); return 2; }
    long long pf[3];
    for (int i = 0; i < 3; i++) {
        pf[i] = -1;
        if (fds[i] >= 0 && read(fds[i], &pf[i], sizeof pf[i]) != sizeof pf[i]) pf[i] = -1;
    }
    dprintf(report,
            "done status=%d elapsed_ns=%lld ru_utime_us=%lld ru_stime_us=%lld ru_maxrss=%ld ru_ixrss=%ld"
            " ru_idrss=%ld ru_isrss=%ld ru_minflt=%ld ru_majflt=%ld ru_nswap=%ld ru_inblock=%ld"
            " ru_oublock=%ld ru_msgsnd=%ld ru_msgrcv=%ld ru_nsignals=%ld ru_nvcsw=%ld ru_nivcsw=%ld"
            " page-faults=%lld minor-faults=%lld major-faults=%lld\n",
            status, t1 - t0, usec(ru.ru_utime), usec(ru.ru_stime), ru.ru_maxrss, ru.ru_ixrss, ru.ru_idrss,
            ru.ru_isrss, ru.ru_minflt, ru.ru_majflt, ru.ru_nswap, ru.ru_inblock, ru.ru_oublock, ru.ru_msgsnd,
            ru.ru_msgrcv, ru.ru_nsignals, ru.ru_nvcsw, ru.ru_nivcsw, pf[0], pf[1], pf[2]);
    return 0;
}
