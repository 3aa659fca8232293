/* exec_probe: run a program under ptrace and stop it at its exit (PTRACE_O_TRACEEXIT), as issue #9's
 * exec facts need. usage: exec_probe PROG ARGV0 ARGS...
 * Prints: "pre MINFLT MAJFLT" (the forked child just before execve, from /proc/PID/stat fields 10 and 12),
 * "exec MINFLT MAJFLT" (at PTRACE_EVENT_EXEC: execve done, no user instruction run yet),
 * "exit MINFLT MAJFLT" (at PTRACE_EVENT_EXIT: the program called exit_group, its mm still whole),
 * then /proc/PID/maps at the exit stop, then "status S".
 * Build: gcc -O2 -o exec_probe exec_probe.c */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static void faults(pid_t pid, const char *tag) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof buf, f)) { perror(path); exit(2); }
    fclose(f);
    char *p = strrchr(buf, ')') + 2;  /* field 3 onwards */
    long v[16];
    for (int i = 0; i < 10; i++) v[i] = strtol(p, &p, 10), p += (i == 0);
    /* fields 3..12: state(skipped as 0) ppid pgrp session tty tpgid flags minflt cminflt majflt */
    printf("%s %ld %ld\n", tag, v[7], v[9]);
}

static void maps(pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    while (fgets(buf, sizeof buf, f)) fputs(buf, stdout);
    fclose(f);
}

static int stop(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); exit(2); }
    return st;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: exec_probe PROG ARGV0 ARGS...\n"); return 2; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(argv[1], argv + 2);
        _exit(127);
    }
    stop(pid);
    faults(pid, "pre");
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, pid, 0, 0);
    int st = stop(pid);
    if (st >> 8 != (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) { fprintf(stderr, "no exec stop: %x\n", st); return 2; }
    faults(pid, "exec");
    ptrace(PTRACE_CONT, pid, 0, 0);
    for (;;) {
        st = stop(pid);
        if (WIFEXITED(st) || WIFSIGNALED(st)) { printf("status %d\n", st); return 0; }
        if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
            faults(pid, "exit");
            maps(pid);
            ptrace(PTRACE_CONT, pid, 0, 0);
            continue;
        }
        ptrace(PTRACE_CONT, pid, 0, WIFSTOPPED(st) ? WSTOPSIG(st) : 0);  /* pass other signals on */
    }
}
