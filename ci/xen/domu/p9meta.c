/* Guest side of the p9-bench metadata loop: creates, stats and unlinks N files in DIR with
 * one system call per operation (open+close, stat, unlink), so the figures measure the file
 * service rather than the guest shell's process start-up. Prints
 * "XE2E-GUEST BENCH create-N|stat-N|unlink-N|meta-3N <seconds>" and "XE2E-GUEST FAIL ..." on
 * any error. Built static by ci/xen/build-initrds.sh.
 * usage: p9meta DIR N */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: p9meta DIR N\n");
    return 2;
  }
  const char *dir = argv[1];
  int n = atoi(argv[2]), fails = 0;
  char path[4096];
  double t0 = now();
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0 || close(fd) != 0) {
      printf("XE2E-GUEST FAIL create %s\n", path);
      fails++;
    }
  }
  double t1 = now();
  for (int i = 0; i < n; i++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0) {
      printf("XE2E-GUEST FAIL stat %s\n", path);
      fails++;
    }
  }
  double t2 = now();
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/f%d", dir, i);
    if (unlink(path) != 0) {
      printf("XE2E-GUEST FAIL unlink %s\n", path);
      fails++;
    }
  }
  double t3 = now();
  printf("XE2E-GUEST BENCH create-%d %.3f\n", n, t1 - t0);
  printf("XE2E-GUEST BENCH stat-%d %.3f\n", n, t2 - t1);
  printf("XE2E-GUEST BENCH unlink-%d %.3f\n", n, t3 - t2);
  printf("XE2E-GUEST BENCH meta-%d %.3f\n", 3 * n, t3 - t0);
  return fails ? 1 : 0;
}
