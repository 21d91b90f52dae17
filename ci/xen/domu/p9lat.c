/* Guest side of the p9-fair measurement: stats FILE N times, one system call each, and prints
 * the latency distribution as
 * "XE2E-GUEST LAT <label> n=N p50_us=… p90_us=… p99_us=… max_us=…", or "XE2E-GUEST FAIL …"
 * on any error. With the 9p client's default cache=none, each stat is a walk, a getattr and a
 * clunk: three round trips to the file server. Built static by ci/xen/build-initrds.sh.
 * usage: p9lat FILE N LABEL */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: p9lat FILE N LABEL\n");
    return 2;
  }
  int n = atoi(argv[2]);
  if (n < 1 || n > 1000000) {
    printf("XE2E-GUEST FAIL p9lat: N out of range\n");
    return 2;
  }
  long long *lat = malloc(sizeof *lat * (size_t)n);
  if (!lat) {
    printf("XE2E-GUEST FAIL p9lat: no memory\n");
    return 1;
  }
  for (int i = 0; i < n; i++) {
    struct stat st;
    long long t0 = now_ns();
    if (stat(argv[1], &st) != 0) {
      printf("XE2E-GUEST FAIL stat %s\n", argv[1]);
      return 1;
    }
    lat[i] = now_ns() - t0;
  }
  qsort(lat, (size_t)n, sizeof *lat, cmp);
  /* the rank-th smallest for percentile p: ceil(n * p / 100), 1-based */
#define PCT(p) (lat[((long long)n * (p) + 99) / 100 - 1] / 1000)
  printf("XE2E-GUEST LAT %s n=%d p50_us=%lld p90_us=%lld p99_us=%lld max_us=%lld\n", argv[3], n,
         PCT(50), PCT(90), PCT(99), lat[n - 1] / 1000);
  return 0;
}
