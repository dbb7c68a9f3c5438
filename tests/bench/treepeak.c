/*
 * treepeak OUT CMD [ARG...]: runs CMD and writes "WALL PEAK_KB CPU" to OUT:
 * its wall time in seconds, the peak, over samples every 50 ms, of the sum
 * of the resident memory of CMD and every process under it (constel and
 * every nix it started), and the CPU time (user + system) of them all. For
 * tests/bench/eval.sh. Exits with CMD's status.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXPROC 65536

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The parent of `pid` from /proc/PID/stat, or -1. */
static long parent_of(long pid)
{
	char path[64], text[1024], *p;
	FILE *f;
	size_t n;
	long ppid;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* "PID (COMM) STATE PPID ...": COMM may hold anything but ends at the last ')' */
	if (!(p = strrchr(text, ')')) || sscanf(p + 1, " %*c %ld", &ppid) != 1)
		return -1;
	return ppid;
}

static unsigned long rss_kb(long pid)
{
	char path[64];
	unsigned long size, resident;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
	fclose(f);
	return ok ? resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024 : 0;
}

/* The resident memory of `root` and all its descendants, in KiB. */
static unsigned long tree_kb(long root)
{
	static long pids[MAXPROC], parents[MAXPROC];
	static char in[MAXPROC];
	size_t n = 0;
	unsigned long sum = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	int grew = 1;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < MAXPROC) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		pids[n] = pid;
		parents[n] = parent_of(pid);
		in[n] = pid == root;
		n++;
	}
	closedir(d);
	while (grew) {
		grew = 0;
		for (size_t i = 0; i < n; i++) {
			if (in[i])
				continue;
			for (size_t j = 0; j < n; j++) {
				if (in[j] && parents[i] == pids[j]) {
					in[i] = 1;
					grew = 1;
					break;
				}
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		if (in[i])
			sum += rss_kb(pids[i]);
	return sum;
}

int main(int argc, char **argv)
{
	unsigned long peak = 0;
	struct rusage ru;
	double start, cpu;
	int status = 0;
	pid_t pid;
	FILE *out;

	if (argc < 3) {
		fprintf(stderr, "usage: treepeak OUT CMD [ARG...]\n");
		return 2;
	}
	start = now();
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "treepeak: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	for (;;) {
		unsigned long kb = tree_kb(pid);
		pid_t r;

		if (kb > peak)
			peak = kb;
		r = wait4(pid, &status, WNOHANG, &ru);
		if (r == pid)
			break;
		usleep(50000);
	}
	if (!(out = fopen(argv[1], "w")))
		return 2;
	cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	fprintf(out, "%.3f %lu %.3f\n", now() - start, peak, cpu);
	fclose(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
