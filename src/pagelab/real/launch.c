/* pagelab-launch: run a command the way /usr/bin/time and perf stat do, from a process that is small.
 *
 * usage: pagelab-launch REPORT_FD CMD ARGS...
 * Forks; the child waits for the go-ahead, then execs CMD (execvp, no shell). Before letting it go, this
 * process opens perf's page-faults/minor-faults/major-faults software events on the child with
 * enable_on_exec, so they count from the exec on, as `perf stat` does. It writes "pid N\n" to REPORT_FD
 * as soon as the child exists, and after wait4() one line:
 *   done STATUS UTIME STIME MAXRSS MINFLT MAJFLT NSWAP INBLOCK OUBLOCK NVCSW NIVCSW NSIGNALS PF MINF MAJF
 * (perf values are -1 when perf_event_open is refused). Exit status 127 means the exec failed.
 * Compiled on first use by pagelab/real/measure.py; measure falls back to pure Python without a compiler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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
    return (int)syscall(SYS_perf_event_open, &a, pid, -1, -1, 0);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: pagelab-launch REPORT_FD CMD ARGS...\n"); return 2; }
    int report = atoi(argv[1]);
    int go[2], err[2];
    if (pipe(go) || pipe2(err, O_CLOEXEC)) { perror("pipe"); return 2; }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        char c;
        close(go[1]); close(err[0]); close(report);
        if (read(go[0], &c, 1) != 1) _exit(126);
        close(go[0]);
        execvp(argv[2], argv + 2);
        int e = errno;
        if (write(err[1], &e, sizeof e) < 0) _exit(127);
        _exit(127);
    }
    close(go[0]); close(err[1]);
    int fds[3] = {
        open_counter(pid, PERF_COUNT_SW_PAGE_FAULTS),
        open_counter(pid, PERF_COUNT_SW_PAGE_FAULTS_MIN),
        open_counter(pid, PERF_COUNT_SW_PAGE_FAULTS_MAJ),
    };
    dprintf(report, "pid %d\n", (int)pid);
    if (write(go[1], "g", 1) != 1) return 2;
    close(go[1]);
    int e = 0;
    ssize_t n = read(err[0], &e, sizeof e);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) { perror("wait4"); return 2; }
    long long pf[3];
    for (int i = 0; i < 3; i++) {
        pf[i] = -1;
        if (fds[i] >= 0 && read(fds[i], &pf[i], sizeof pf[i]) != sizeof pf[i]) pf[i] = -1;
    }
    if (n == sizeof e) { dprintf(report, "execfail %d\n", e); return 127; }
    dprintf(report, "done %d %ld.%06ld %ld.%06ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %lld %lld %lld\n", status,
            (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec,
            (long)ru.ru_stime.tv_usec, ru.ru_maxrss, ru.ru_minflt, ru.ru_majflt, ru.ru_nswap, ru.ru_inblock,
            ru.ru_oublock, ru.ru_nvcsw, ru.ru_nivcsw, ru.ru_nsignals, pf[0], pf[1], pf[2]);
    return 0;
}
