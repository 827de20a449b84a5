/* Replay driver for fuzz targets outside libFuzzer: runs every seed in the
 * corpus folder, then deterministic mutations of each (bit flips, cuts,
 * insertions, splices), so the normal test suite exercises the parsers. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATIONS_PER_SEED 3000
#define MAX_SEED_SIZE (1 << 20)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
  /* xorshift64*: reproducible across runs and machines. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return NULL;
  uint8_t *buf = malloc(MAX_SEED_SIZE);
  *len = fread(buf, 1, MAX_SEED_SIZE, fp);
  fclose(fp);
  return buf;
}

static void
mutate_and_run(const uint8_t *seed, size_t len, const uint8_t *other, size_t other_len)
{
  uint8_t *buf = malloc(len + 64);

  for (int m = 0; m < MUTATIONS_PER_SEED; m++) {
    size_t n = len;
    memcpy(buf, seed, len);
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits; e++) {
      switch (rng() % 5) {
        case 0: /* flip a bit */
          if (n)
            buf[rng() % n] ^= (uint8_t)(1u << (rng() % 8));
          break;
        case 1: /* cut the tail */
          if (n)
            n = (size_t)(rng() % n);
          break;
        case 2: /* overwrite with a boundary byte */
          if (n) {
            static const uint8_t special[] = {0x00, 0xff, 0x7f, 0x80, 0x01, '"', '.', '{'};
            buf[rng() % n] = special[rng() % sizeof(special)];
          }
          break;
        case 3: /* insert a random byte */
          if (n < len + 63) {
            size_t at = n ? (size_t)(rng() % n) : 0;
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = (uint8_t)rng();
            n++;
          }
          break;
        default: /* splice in the other seed's head */
          if (other_len && n) {
            size_t at = (size_t)(rng() % n);
            size_t take = other_len < n - at ? other_len : n - at;
            memcpy(buf + at, other, take);
          }
          break;
      }
    }
    LLVMFuzzerTestOneInput(buf, n);
  }
  free(buf);
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
    return 2;
  }

  DIR *dir = opendir(argv[1]);
  if (!dir) {
    fprintf(stderr, "%s: cannot open corpus %s\n", argv[0], argv[1]);
    return 1;
  }

  uint8_t *seeds[256];
  size_t lens[256];
  int count = 0;
  struct dirent *de;
  while ((de = readdir(dir)) && count < 256) {
    if (de->d_name[0] == '.')
      continue;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
    seeds[count] = read_file(path, &lens[count]);
    if (seeds[count])
      count++;
  }
  closedir(dir);

  if (count == 0) {
    fprintf(stderr, "%s: corpus %s is empty\n", argv[0], argv[1]);
    return 1;
  }

  for (int i = 0; i < count; i++)
    LLVMFuzzerTestOneInput(seeds[i], lens[i]);
  for (int i = 0; i < count; i++)
    mutate_and_run(seeds[i], lens[i], seeds[(i + 1) % count], lens[(i + 1) % count]);

  printf("replayed %d seeds and %d mutations each\n", count, MUTATIONS_PER_SEED);
  for (int i = 0; i < count; i++)
    free(seeds[i]);
  return 0;
}
