/* Guest side of the 9pfs scenarios (p9, p9-destroy), in one static process.
 *
 * The test bed's emulated machine corrupts user programs now and then when two Linux PV
 * guests start many processes at the same time (see ci/xen/README.md, "Known problem", and the
 * pv-stress scenario, which shows it without pvfs). A shell script forks a process per file
 * and per check; this helper does the same work with system calls only, so a guest runs a
 * handful of processes instead of a few hundred. Lines for dom0 start with "XE2E-GUEST ".
 *
 * usage: p9check sums DIR           "XE2E-GUEST SUM <sha256>  ./<path>" for every regular file
 *                                    under DIR, sorted by path (the format of dom0's tree_sums)
 *        p9check confine DIR         the export's limits: ".." at the root and a symlink that
 *                                    points outside stay in the guest's own namespace
 *        p9check writes DIR          write probe; on a read-write export a small tree of new
 *                                    files, renames, links, removals and a chmod under DIR/out,
 *                                    flushed with sync, then "WSUM" lines of what it wrote
 *        p9check read FILE           read FILE at 1 MiB per call, print size and time
 *        p9check steady FILE SECONDS [PAUSE-MS]
 *                                    read FILE again and again for SECONDS (pausing PAUSE-MS,
 *                                    default 50, between reads), compare every read with the
 *                                    first, print progress every 2 s and a summary
 *                                    (with the longest single read, max_read_ms; each read
 *                                    over 500 ms is printed with its start)
 *        p9check barrier DIR NAME ID N
 *                                    create DIR/NAME-ID, then wait (polling every 100 ms, at
 *                                    most 900 s) until DIR holds N entries named NAME-*: the
 *                                    guests of p9-multi start each phase together
 * Exit status: 0 when every step succeeded. Built static by ci/xen/build-initrds.sh. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- SHA-256 (FIPS 180-4) ---- */
typedef struct {
  uint32_t h[8];
  uint64_t len;
  unsigned char buf[64];
  size_t n;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha_block(sha256 *s, const unsigned char *p) {
  uint32_t w[64], a, b, c, d, e, f, g, h;
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
           p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6],
  h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d, s->h[4] += e, s->h[5] += f,
      s->h[6] += g, s->h[7] += h;
}

static void sha_init(sha256 *s) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, h0, sizeof h0);
  s->len = 0;
  s->n = 0;
}

static void sha_update(sha256 *s, const unsigned char *p, size_t len) {
  s->len += len;
  while (len > 0) {
    size_t k = 64 - s->n < len ? 64 - s->n : len;
    memcpy(s->buf + s->n, p, k);
    s->n += k, p += k, len -= k;
    if (s->n == 64) {
      sha_block(s, s->buf);
      s->n = 0;
    }
  }
}

static void sha_hex(sha256 *s, char out[65]) {
  uint64_t bits = s->len * 8;
  unsigned char pad = 0x80, zero = 0, lenb[8];
  sha_update(s, &pad, 1);
  while (s->n != 56) sha_update(s, &zero, 1);
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha_update(s, lenb, 8);
  for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

/* ---- helpers ---- */
static unsigned char iobuf[1 << 20];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* read(2), closing fd on an error (errno kept) */
static ssize_t read_or_close(int fd, void *buf, size_t n) {
  ssize_t r = read(fd, buf, n);
  if (r < 0) {
    int e = errno;
    close(fd);
    errno = e;
  }
  return r;
}

/* sha256 of a file's contents; returns the byte count, -1 on error (errno set) */
static long long file_sum(const char *path, char hex[65]) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  sha256 s;
  sha_init(&s);
  long long total = 0;
  for (;;) {
    ssize_t r = read_or_close(fd, iobuf, sizeof iobuf);
    if (r < 0) return -1;
    if (r == 0) break;
    sha_update(&s, iobuf, (size_t)r);
    total += r;
  }
  close(fd);
  sha_hex(&s, hex);
  return total;
}

static char **paths;
static size_t npaths, cap;

static int walk(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) {
      rc = -1;
      continue;
    }
    struct stat st;
    if (lstat(p, &st) < 0) {
      rc = -1;
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (walk(p) < 0) rc = -1;
    } else if (S_ISREG(st.st_mode)) {
      if (npaths == cap) {
        cap = cap ? 2 * cap : 64;
        char **grown = realloc(paths, cap * sizeof *paths);
        if (!grown) {
          closedir(d);
          return -1;
        }
        paths = grown;
      }
      paths[npaths++] = strdup(p);
    }
  }
  closedir(d);
  return rc;
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "PREFIX<sha256>  <path>" for each regular file under ROOT/SUB ("." or a subdirectory),
 * paths relative to ROOT and sorted bytewise: `cd ROOT && find SUB -type f | LC_ALL=C sort`. */
static int sums(const char *root, const char *sub, const char *prefix) {
  if (chdir(root) < 0) {
    printf("XE2E-GUEST FAIL chdir %s: %s\n", root, strerror(errno));
    return 1;
  }
  npaths = 0;
  int rc = walk(sub) < 0;
  if (rc) printf("XE2E-GUEST FAIL walk %s/%s: %s\n", root, sub, strerror(errno));
  qsort(paths, npaths, sizeof *paths, cmp);
  for (size_t i = 0; i < npaths; i++) {
    char hex[65];
    if (file_sum(paths[i], hex) < 0) {
      printf("XE2E-GUEST FAIL read %s: %s\n", paths[i], strerror(errno));
      rc = 1;
    } else {
      printf("%s%s  %s\n", prefix, hex, paths[i]);
    }
    free(paths[i]);
  }
  fflush(stdout);
  return rc;
}

static int put(const char *path, const char *text, int flags) {
  int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t w = write(fd, text, len);
  int e = errno;
  if (close(fd) < 0 || w != (ssize_t)len) {
    errno = w < 0 ? e : EIO;
    return -1;
  }
  return 0;
}

static int fails;
static void step(const char *what, int ok) {
  if (ok) {
    printf("XE2E-GUEST W %s\n", what);
  } else {
    printf("XE2E-GUEST WFAIL %s: %s\n", what, strerror(errno));
    fails++;
  }
  fflush(stdout);
}

static int writes(const char *dir) {
  char p[4096], q[4096];
  snprintf(p, sizeof p, "%s/written-by-guest", dir);
  if (put(p, "probe\n", O_TRUNC) < 0) {
    printf("XE2E-GUEST WRITE refused: %s\n", strerror(errno));
    return 0;
  }
  printf("XE2E-GUEST WRITE ok\n");
  double t0 = now();
  snprintf(p, sizeof p, "%s/out", dir);
  snprintf(q, sizeof q, "%s/out/sub", dir);
  step("mkdir", mkdir(p, 0755) == 0 && mkdir(q, 0755) == 0);
  /* 40 x 64 KiB of random bytes */
  int ok = 1, ur = open("/dev/urandom", O_RDONLY);
  snprintf(p, sizeof p, "%s/out/rand.bin", dir);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (int i = 0; ok && i < 40; i++)
    ok = ur >= 0 && fd >= 0 && read(ur, iobuf, 65536) == 65536 && write(fd, iobuf, 65536) == 65536;
  if (fd >= 0 && close(fd) < 0) ok = 0;
  if (ur >= 0) close(ur);
  step("dd", ok);
  char host[256] = "?", line[512];
  gethostname(host, sizeof host - 1);
  ok = 1;
  for (int i = 0; i < 60; i++) {
    snprintf(p, sizeof p, "%s/out/sub/f%d", dir, i);
    snprintf(line, sizeof line, "small file %d of %s\n", i, host);
    if (put(p, line, O_TRUNC) < 0) {
      printf("XE2E-GUEST WFAIL small %d: %s\n", i, strerror(errno));
      ok = 0, fails++;
    }
  }
  if (ok) step("small files", 1);
  snprintf(p, sizeof p, "%s/out/sub/f1", dir);
  step("append", put(p, "appended line\n", O_APPEND) == 0);
  snprintf(p, sizeof p, "%s/out/sub/f2", dir);
  snprintf(q, sizeof q, "%s/out/renamed", dir);
  step("rename", rename(p, q) == 0);
  snprintf(p, sizeof p, "%s/out/sub/f3", dir);
  snprintf(q, sizeof q, "%s/out/hardlink", dir);
  step("link", link(p, q) == 0);
  snprintf(q, sizeof q, "%s/out/symlink", dir);
  step("symlink", symlink("sub/f4", q) == 0);
  snprintf(p, sizeof p, "%s/out/sub/f5", dir);
  snprintf(q, sizeof q, "%s/written-by-guest", dir);
  step("unlink", unlink(p) == 0 && unlink(q) == 0);
  snprintf(p, sizeof p, "%s/out/sub/f6", dir);
  step("chmod", chmod(p, 0600) == 0);
  snprintf(p, sizeof p, "%s/out/empty", dir);
  step("rmdir", mkdir(p, 0755) == 0 && rmdir(p) == 0);
  sync();
  printf("XE2E-GUEST WROTE in %.2fs\n", now() - t0);
  struct stat st;
  snprintf(p, sizeof p, "%s/out/sub/f6", dir);
  errno = 0;
  step("mode-read-back", stat(p, &st) == 0 && (st.st_mode & 07777) == 0600);
  char link[256] = {0};
  snprintf(p, sizeof p, "%s/out/symlink", dir);
  errno = 0;
  ssize_t n = readlink(p, link, sizeof link - 1);
  step("readlink", n == 6 && !strcmp(link, "sub/f4"));
  if (sums(dir, "out", "XE2E-GUEST WSUM ")) fails++;
  printf("XE2E-GUEST WRITES DONE\n");
  return fails != 0;
}

static int confine(const char *dir) {
  char p[4096];
  struct stat st;
  int rc = 0;
  /* a symlink pointing outside the export resolves in the guest's own namespace */
  snprintf(p, sizeof p, "%s/escape-link", dir);
  if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode)) {
    char hex[65];
    if (file_sum(p, hex) >= 0) {
      printf("XE2E-GUEST ESCAPE read-through-symlink\n");
      rc = 1;
    } else {
      printf("XE2E-GUEST CONFINED symlink\n");
    }
  }
  /* ".." at the mount root is the guest's own directory, not the volume's */
  char a[4096], b[4096];
  snprintf(a, sizeof a, "%s/../vm2", dir);
  snprintf(b, sizeof b, "%s/../exports", dir);
  if (stat(a, &st) == 0 || stat(b, &st) == 0) {
    printf("XE2E-GUEST ESCAPE dotdot\n");
    rc = 1;
  } else {
    printf("XE2E-GUEST CONFINED dotdot\n");
  }
  return rc;
}

static int readfile(const char *path) {
  double t0 = now();
  char hex[65];
  long long n = file_sum(path, hex);
  double dt = now() - t0;
  if (n < 0) {
    printf("XE2E-GUEST FAIL read %s: %s\n", path, strerror(errno));
    return 1;
  }
  printf("XE2E-GUEST READ %s bs=1M in %.2fs: %lld bytes, %.1f MiB/s\n", path, dt, n,
         dt > 0 ? (double)n / 1048576.0 / dt : 0.0);
  return 0;
}

/* the whole of a file into *buf (grown with realloc as needed, *cap its size); returns the
 * byte count, -1 on error (errno set) */
static long long file_read(const char *path, unsigned char **buf, size_t *cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  size_t total = 0;
  for (;;) {
    if (total == *cap) {
      size_t want = *cap ? *cap * 2 : 1 << 20;
      unsigned char *p = realloc(*buf, want);
      if (!p) {
        close(fd);
        errno = ENOMEM;
        return -1;
      }
      *buf = p;
      *cap = want;
    }
    ssize_t r = read_or_close(fd, *buf + total, *cap - total);
    if (r < 0) return -1;
    if (r == 0) break;
    total += (size_t)r;
  }
  close(fd);
  return (long long)total;
}

/* Every read is compared byte for byte with the first one (whose sha256 dom0 checks against
 * the image). A mismatch prints where the bytes differ, and whether a second comparison of
 * the same two buffers agrees: data that differs in the buffers came from the file service,
 * while a second comparison that disagrees with the first points at the emulated machine. */
static int steady(const char *path, double secs, long pause_ms) {
  char first[65];
  unsigned char *ref = NULL, *cur = NULL;
  size_t refcap = 0, curcap = 0;
  long long len = file_read(path, &ref, &refcap);
  if (len < 0) {
    printf("XE2E-GUEST FAIL read %s: %s\n", path, strerror(errno));
    return 1;
  }
  sha256 sh;
  sha_init(&sh);
  sha_update(&sh, ref, (size_t)len);
  sha_hex(&sh, first);
  double t0 = now(), last = t0;
  long reads = 1, bad = 0;
  struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000 * 1000};
  double max_read = 0;
  while (now() - t0 < secs) {
    double r0 = now();
    long long n = file_read(path, &cur, &curcap);
    double took = now() - r0;
    if (took > max_read) max_read = took;
    if (took > 0.5) printf("XE2E-GUEST STEADY slow read at %.1fs: %.0f ms\n", r0 - t0, took * 1000);
    if (n < 0) {
      printf("XE2E-GUEST STEADY error %s\n", strerror(errno));
      bad++;
    } else if (n != len || memcmp(cur, ref, (size_t)len)) {
      long long differ = 0, at = -1, m = n < len ? n : len;
      for (long long i = 0; i < m; i++)
        if (cur[i] != ref[i]) {
          if (at < 0) at = i;
          differ++;
        }
      int again = n == len && memcmp(cur, ref, (size_t)len) != 0;
      printf("XE2E-GUEST STEADY mismatch at %.1fs: read %lld bytes (first read %lld), %lld "
             "bytes differ, first at offset %lld; a second comparison %s\n",
             now() - t0, n, len, differ, at, n != len ? "is not needed (length)" :
             again ? "differs too" : "finds them equal");
      bad++;
    }
    reads++;
    if (now() - last >= 2.0) {
      last = now();
      printf("XE2E-GUEST STEADY at %.1fs reads=%ld bad=%ld\n", last - t0, reads, bad);
      fflush(stdout);
    }
    if (pause_ms > 0) nanosleep(&pause, NULL);
  }
  printf("XE2E-GUEST STEADY DONE reads=%ld bad=%ld max_read_ms=%.0f sha256=%s\n", reads, bad,
         max_read * 1000, first);
  free(ref);
  free(cur);
  return bad != 0;
}

/* Entries of DIR whose names start with PREFIX, or -1 when DIR cannot be read. */
static long count_prefixed(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  long n = 0;
  size_t len = strlen(prefix);
  struct dirent *e;
  while ((e = readdir(d))) n += !strncmp(e->d_name, prefix, len);
  closedir(d);
  return n;
}

static int barrier(const char *dir, const char *name, const char *id, long want) {
  char path[4096], prefix[256];
  snprintf(path, sizeof path, "%s/%s-%s", dir, name, id);
  snprintf(prefix, sizeof prefix, "%s-", name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    printf("XE2E-GUEST FAIL barrier %s: create: %s\n", path, strerror(errno));
    return 1;
  }
  close(fd);
  for (int i = 0; i < 9000; i++) {
    long n = count_prefixed(dir, prefix);
    if (n < 0) {
      printf("XE2E-GUEST FAIL barrier %s: readdir: %s\n", dir, strerror(errno));
      return 1;
    }
    if (n >= want) return 0;
    usleep(100000);
  }
  printf("XE2E-GUEST FAIL barrier %s: %ld of %ld after 900 s\n", name,
         count_prefixed(dir, prefix), want);
  return 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 3 && !strcmp(argv[1], "sums")) return sums(argv[2], ".", "XE2E-GUEST SUM ");
  if (argc == 3 && !strcmp(argv[1], "confine")) return confine(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "writes")) return writes(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "read")) return readfile(argv[2]);
  if ((argc == 4 || argc == 5) && !strcmp(argv[1], "steady"))
    return steady(argv[2], atof(argv[3]), argc == 5 ? atol(argv[4]) : 50);
  if (argc == 6 && !strcmp(argv[1], "barrier"))
    return barrier(argv[2], argv[3], argv[4], atol(argv[5]));
  fprintf(stderr, "usage: p9check sums|confine|writes|read DIR-OR-FILE | steady FILE SECONDS [PAUSE-MS] | barrier DIR NAME ID N\n");
  return 2;
}
