/* Tests for convert/: PWG raster, URF, JPEG and PNG become PDFs that poppler
 * opens with the right pages and sizes; bad documents are refused with a
 * named error. Inputs are made at test time (Ghostscript, and a small URF /
 * PWG encoder below for exact and lying headers). */
#include "convert/convert-private.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <poppler.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TESTPAGE "/usr/share/cups/data/default-testpage.pdf"
#define A4_W 595.0
#define A4_H 842.0
#define LETTER_W 612.0
#define LETTER_H 792.0

static char *tmpdir;

static void setup(void) {
  GError *error = NULL;
  tmpdir = g_dir_make_tmp("test-convert-XXXXXX", &error);
  ck_assert_msg(tmpdir != NULL, "tmpdir: %s", error ? error->message : "?");
}

static void teardown(void) {
  GDir *dir = g_dir_open(tmpdir, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name(dir)) != NULL) {
    char *path = g_build_filename(tmpdir, name, NULL);
    g_unlink(path);
    g_free(path);
  }
  if (dir)
    g_dir_close(dir);
  g_rmdir(tmpdir);
  g_clear_pointer(&tmpdir, g_free);
}

static char *tmp_path(const char *name) { return g_build_filename(tmpdir, name, NULL); }

/* ---- making inputs ---- */

/* Runs gs with ARGS (NULL-terminated) writing OUT; the input pages come from
 * TESTPAGE, COPIES times. */
static char *run_gs(const char *name, int copies, const char *const *args) {
  char *out = tmp_path(name);
  GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(argv, g_strdup("gs"));
  g_ptr_array_add(argv, g_strdup("-q"));
  g_ptr_array_add(argv, g_strdup("-dBATCH"));
  g_ptr_array_add(argv, g_strdup("-dNOPAUSE"));
  g_ptr_array_add(argv, g_strdup("-dSAFER"));
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add(argv, g_strdup(*a));
  g_ptr_array_add(argv, g_strdup_printf("-sOutputFile=%s", out));
  for (int i = 0; i < copies; i++)
    g_ptr_array_add(argv, g_strdup(TESTPAGE));
  g_ptr_array_add(argv, NULL);
  GError *error = NULL;
  int status = 0;
  gboolean ran = g_spawn_sync(NULL, (char **)argv->pdata, NULL,
                              G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                  G_SPAWN_STDERR_TO_DEV_NULL,
                              NULL, NULL, NULL, NULL, &status, &error);
  ck_assert_msg(ran && g_spawn_check_wait_status(status, NULL), "gs for %s failed: %s", name,
                error ? error->message : "exit status");
  g_ptr_array_free(argv, TRUE);
  return out;
}

static GBytes *read_all(const char *path) {
  char *data = NULL;
  gsize len = 0;
  ck_assert_msg(g_file_get_contents(path, &data, &len, NULL), "read %s", path);
  return g_bytes_new_take(data, len);
}

static char *write_bytes(const char *name, const void *data, size_t len) {
  char *path = tmp_path(name);
  ck_assert(g_file_set_contents(path, data, (gssize)len, NULL));
  return path;
}

static void put32(GByteArray *b, uint32_t v) {
  unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  g_byte_array_append(b, p, 4);
}

/* Encodes WIDTH x HEIGHT pixels of UNIT bytes with line repeats and
 * PackBits-style runs (repeat: count-1, literal: 257-count). */
static void encode_lines(GByteArray *b, const unsigned char *pix, unsigned width, unsigned height,
                         size_t unit) {
  size_t bpl = width * unit;
  for (unsigned y = 0; y < height;) {
    const unsigned char *line = pix + y * bpl;
    unsigned rep = 1;
    while (y + rep < height && rep < 256 && memcmp(line, pix + (y + rep) * bpl, bpl) == 0)
      rep++;
    unsigned char r = (unsigned char)(rep - 1);
    g_byte_array_append(b, &r, 1);
    for (unsigned x = 0; x < width;) {
      const unsigned char *p = line + x * unit;
      unsigned n = 1;
      while (x + n < width && n < 128 && memcmp(p, p + n * unit, unit) == 0)
        n++;
      if (n > 1) {
        unsigned char c = (unsigned char)(n - 1);
        g_byte_array_append(b, &c, 1);
        g_byte_array_append(b, p, (guint)unit);
      } else {
        /* literal run until two equal pixels */
        n = 1;
        while (x + n < width && n < 128 &&
               !(x + n + 1 < width && memcmp(p + n * unit, p + (n + 1) * unit, unit) == 0))
          n++;
        unsigned char c = (unsigned char)(257 - n);
        g_byte_array_append(b, &c, 1);
        g_byte_array_append(b, p, (guint)(n * unit));
      }
      x += n;
    }
    y += rep;
  }
}

/* A test picture: bands of repeated lines, gradients, flat runs. */
static unsigned char *make_pixels(unsigned width, unsigned height, size_t unit) {
  unsigned char *pix = g_malloc(width * height * unit);
  for (unsigned y = 0; y < height; y++)
    for (unsigned x = 0; x < width; x++)
      for (size_t c = 0; c < unit; c++)
        pix[(y * width + x) * unit + c] =
            (unsigned char)((y / 8) % 2 ? (x < width / 2 ? 0x40 : x * 7 + c * 31 + y / 8) : 0xff);
  return pix;
}

typedef struct {
  unsigned bpp, space, width, height, dpi;
} urf_page_t;

static GByteArray *make_urf(const urf_page_t *pages, unsigned count, uint32_t declared) {
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"UNIRAST\0", 8);
  put32(b, declared);
  for (unsigned i = 0; i < count; i++) {
    const urf_page_t *p = &pages[i];
    unsigned char h[12] = {(unsigned char)p->bpp, (unsigned char)p->space, 0, 4};
    g_byte_array_append(b, h, 12);
    put32(b, p->width);
    put32(b, p->height);
    put32(b, p->dpi);
    put32(b, 0);
    put32(b, 0);
    size_t unit = p->bpp / 8;
    unsigned char *pix = make_pixels(p->width, p->height, unit);
    encode_lines(b, pix, p->width, p->height, unit);
    g_free(pix);
  }
  return b;
}

typedef struct {
  uint32_t xdpi, ydpi, width, height, bpc, bpp, bpl, space, ncolors;
} pwg_page_t;

/* One PWG page (header + lines); pixel data sized from the true layout
 * (bpp) even when the header lies, so a lie is the only fault. */
static void add_pwg_page(GByteArray *b, const pwg_page_t *p, unsigned real_lines) {
  unsigned char h[1796] = {0};
  memcpy(h + 64, "white", 5);
  const struct {
    unsigned off;
    uint32_t v;
  } f[] = {{276, p->xdpi},   {280, p->ydpi}, {372, p->width}, {376, p->height},
           {384, p->bpc},    {388, p->bpp},  {392, p->bpl},   {400, p->space},
           {420, p->ncolors}};
  for (size_t i = 0; i < G_N_ELEMENTS(f); i++) {
    h[f[i].off] = (unsigned char)(f[i].v >> 24);
    h[f[i].off + 1] = (unsigned char)(f[i].v >> 16);
    h[f[i].off + 2] = (unsigned char)(f[i].v >> 8);
    h[f[i].off + 3] = (unsigned char)f[i].v;
  }
  g_byte_array_append(b, h, sizeof h);
  size_t unit = p->bpp >= 8 ? p->bpp / 8 : 1;
  unsigned width = p->bpp >= 8 ? p->width : (p->width + 7) / 8;
  width = MIN(width, 4096u);
  if (width == 0)
    return; /* a header lying about width: no pixels to make */
  unsigned char *pix = make_pixels(width, real_lines, unit);
  encode_lines(b, pix, width, real_lines, unit);
  g_free(pix);
}

static const pwg_page_t good_pwg = {100, 100, 200, 300, 8, 24, 600, 19, 3};

static GByteArray *make_pwg(const pwg_page_t *p, unsigned real_lines) {
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"RaS2", 4);
  add_pwg_page(b, p, real_lines);
  return b;
}

/* ---- converting and checking ---- */

static bool convert_path(const char *format, const char *in, const char *out,
                         kcps_convert_result_t *result, GError **error) {
  int in_fd = open(in, O_RDONLY | O_CLOEXEC);
  ck_assert_msg(in_fd >= 0, "open %s", in);
  int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_msg(out_fd >= 0, "open %s", out);
  bool ok = kcps_convert_to_pdf(format, in_fd, out_fd, result, error);
  close(in_fd);
  close(out_fd);
  return ok;
}

/* Opens OUT with poppler: N pages, page i of SIZES[2i] x SIZES[2i+1]
 * points (within 1 pt). */
static void check_pdf(const char *out, int n, const double *sizes) {
  char *uri = g_filename_to_uri(out, NULL, NULL);
  GError *error = NULL;
  PopplerDocument *doc = poppler_document_new_from_file(uri, NULL, &error);
  ck_assert_msg(doc != NULL, "poppler cannot open %s: %s", out, error ? error->message : "?");
  ck_assert_msg(poppler_document_get_n_pages(doc) == n, "pages: got %d, expected %d",
                poppler_document_get_n_pages(doc), n);
  for (int i = 0; i < n; i++) {
    PopplerPage *page = poppler_document_get_page(doc, i);
    double w = 0, h = 0;
    poppler_page_get_size(page, &w, &h);
    ck_assert_msg(fabs(w - sizes[2 * i]) < 1.0 && fabs(h - sizes[2 * i + 1]) < 1.0,
                  "page %d size: got %.1fx%.1f, expected %.1fx%.1f", i + 1, w, h, sizes[2 * i],
                  sizes[2 * i + 1]);
    g_object_unref(page);
  }
  g_object_unref(doc);
  g_free(uri);
}

/* Mean brightness (0..255) of page 1 of OUT rendered small: the test page
 * is mostly white, so an inverted or garbled colour space shows. */
static double page_brightness(const char *out) {
  char *uri = g_filename_to_uri(out, NULL, NULL);
  PopplerDocument *doc = poppler_document_new_from_file(uri, NULL, NULL);
  ck_assert(doc != NULL);
  PopplerPage *page = poppler_document_get_page(doc, 0);
  double w = 0, h = 0;
  poppler_page_get_size(page, &w, &h);
  int iw = (int)(w / 8) + 1, ih = (int)(h / 8) + 1;
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, iw, ih);
  cairo_t *cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 0.5, 0.5, 0.5); /* neither white nor black */
  cairo_paint(cr);
  cairo_scale(cr, iw / w, ih / h);
  poppler_page_render(page, cr);
  cairo_destroy(cr);
  cairo_surface_flush(surface);
  const unsigned char *data = cairo_image_surface_get_data(surface);
  int stride = cairo_image_surface_get_stride(surface);
  double sum = 0;
  for (int y = 0; y < ih; y++)
    for (int x = 0; x < iw; x++) {
      uint32_t px = *(const uint32_t *)(const void *)(data + y * stride + x * 4);
      sum += ((px >> 16 & 0xff) + (px >> 8 & 0xff) + (px & 0xff)) / 3.0;
    }
  cairo_surface_destroy(surface);
  g_object_unref(page);
  g_object_unref(doc);
  g_free(uri);
  return sum / (iw * ih);
}

static void check_mostly_white(const char *out, const char *what) {
  double b = page_brightness(out);
  ck_assert_msg(b > 200, "%s: page 1 mean brightness %.0f, expected a mostly white page (> 200)",
                what, b);
}

/* Converts IN and asserts it succeeds with N pages of SIZES; TESTPAGE: IN
 * was rendered by gs from the (mostly white) CUPS test page. */
static void convert_ok(const char *format, const char *in, int n, const double *sizes,
                       bool testpage) {
  char *out = tmp_path("out.pdf");
  kcps_convert_result_t result = {0};
  GError *error = NULL;
  bool ok = convert_path(format, in, out, &result, &error);
  ck_assert_msg(ok, "%s: convert failed: %s", in, error ? error->message : "?");
  ck_assert_msg(result.pages == (unsigned)n, "result pages: got %u, expected %d", result.pages, n);
  struct stat st;
  ck_assert(stat(out, &st) == 0);
  ck_assert_msg((uint64_t)st.st_size == result.bytes_written, "bytes: file %lld, result %llu",
                (long long)st.st_size, (unsigned long long)result.bytes_written);
  check_pdf(out, n, sizes);
  if (testpage)
    check_mostly_white(out, in);
  g_free(out);
}

static void convert_refused(const char *format, const void *data, size_t len, int code,
                            const char *what) {
  char *in = write_bytes("bad.in", data, len);
  char *out = tmp_path("bad.pdf");
  GError *error = NULL;
  bool ok = convert_path(format, in, out, NULL, &error);
  ck_assert_msg(!ok, "%s: converted, expected refusal", what);
  ck_assert_msg(error != NULL && error->domain == KCPS_CONVERT_ERROR && error->code == code,
                "%s: error code got %d (%s), expected %d", what, error ? error->code : -1,
                error ? error->message : "none", code);
  ck_assert_msg(strlen(error->message) > 10, "%s: message too short", what);
  g_error_free(error);
  g_free(in);
  g_free(out);
}

/* ---- PWG raster from Ghostscript, every colour space ---- */

static const struct {
  const char *space, *bits;
} gs_spaces[] = {
    {"18", "8"}, /* sGray */
    {"19", "8"}, /* sRGB */
    {"3", "1"},  /* black 1-bit */
    {"6", "8"},  /* CMYK */
    {"19", "16"},
    {"18", "16"},
    {"1", "8"},  /* RGB */
    {"0", "8"},  /* W */
    {"20", "8"}, /* AdobeRGB */
};

START_TEST(test_pwg_gs_colour_spaces) {
  char space[64], bits[64];
  g_snprintf(space, sizeof space, "-dcupsColorSpace=%s", gs_spaces[_i].space);
  g_snprintf(bits, sizeof bits, "-dcupsBitsPerColor=%s", gs_spaces[_i].bits);
  const char *args[] = {"-sDEVICE=pwgraster", space, bits, "-r50", "-sPAPERSIZE=a4",
                        "-dFIXEDMEDIA", "-dPDFFitPage", NULL};
  char *in = run_gs("in.pwg", 2, args);
  const double sizes[] = {A4_W, A4_H, A4_W, A4_H};
  convert_ok("image/pwg-raster", in, 2, sizes, true);
  g_free(in);
}
END_TEST

/* Pages of different size, resolution and colour space in one job. */
START_TEST(test_pwg_mixed_pages) {
  const char *a[] = {"-sDEVICE=pwgraster", "-dcupsColorSpace=19", "-dcupsBitsPerColor=8", "-r50",
                     "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage", NULL};
  const char *b[] = {"-sDEVICE=pwgraster", "-dcupsColorSpace=3", "-dcupsBitsPerColor=1", "-r100",
                     "-sPAPERSIZE=letter", "-dFIXEDMEDIA", "-dPDFFitPage", NULL};
  char *pa = run_gs("a.pwg", 1, a), *pb = run_gs("b.pwg", 2, b);
  GBytes *ba = read_all(pa), *bb = read_all(pb);
  GByteArray *all = g_byte_array_new();
  g_byte_array_append(all, g_bytes_get_data(ba, NULL), (guint)g_bytes_get_size(ba));
  /* the second file's pages without its sync word */
  g_byte_array_append(all, (const guint8 *)g_bytes_get_data(bb, NULL) + 4,
                      (guint)g_bytes_get_size(bb) - 4);
  char *in = write_bytes("mixed.pwg", all->data, all->len);
  const double sizes[] = {A4_W, A4_H, LETTER_W, LETTER_H, LETTER_W, LETTER_H};
  convert_ok("image/pwg-raster", in, 3, sizes, true);
  g_byte_array_free(all, TRUE);
  g_bytes_unref(ba);
  g_bytes_unref(bb);
  g_free(pa);
  g_free(pb);
  g_free(in);
}
END_TEST

/* Our own encoder: exact sizes, non-square resolution, code 128 absent. */
START_TEST(test_pwg_encoded) {
  pwg_page_t p = {300, 150, 600, 300, 8, 8, 600, 18, 1};
  GByteArray *b = make_pwg(&p, p.height);
  pwg_page_t q = {72, 72, 100, 50, 16, 64, 800, 6, 4};
  add_pwg_page(b, &q, q.height);
  char *in = write_bytes("enc.pwg", b->data, b->len);
  const double sizes[] = {144, 144, 100, 50};
  convert_ok("image/pwg-raster", in, 2, sizes, false);
  g_byte_array_free(b, TRUE);
  g_free(in);
}
END_TEST

/* ---- URF ---- */

static const urf_page_t urf_pages[] = {
    {8, 0, 200, 100, 100},  /* sGray 8 */
    {24, 1, 300, 150, 150}, /* sRGB 8 */
    {32, 6, 72, 72, 72},    /* CMYK 8 */
    {48, 5, 120, 60, 300},  /* RGB 16 */
    {16, 4, 50, 75, 50},    /* gray 16 */
    {24, 3, 100, 100, 200}, /* AdobeRGB */
};

START_TEST(test_urf_pages) {
  GByteArray *b = make_urf(urf_pages, G_N_ELEMENTS(urf_pages), G_N_ELEMENTS(urf_pages));
  /* a white page made of code 128 alone */
  unsigned char white[] = {8, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10,
                           0, 0, 0, 10, 0, 0, 0, 72, 0, 0, 0, 0, 0, 0, 0, 0};
  g_byte_array_append(b, white, sizeof white);
  for (int y = 0; y < 10; y++) {
    unsigned char line[2] = {0, 128};
    g_byte_array_append(b, line, 2);
  }
  b->data[11] = (guint8)(G_N_ELEMENTS(urf_pages) + 1);
  char *in = write_bytes("in.urf", b->data, b->len);
  double sizes[2 * (G_N_ELEMENTS(urf_pages) + 1)];
  for (size_t i = 0; i < G_N_ELEMENTS(urf_pages); i++) {
    sizes[2 * i] = urf_pages[i].width * 72.0 / urf_pages[i].dpi;
    sizes[2 * i + 1] = urf_pages[i].height * 72.0 / urf_pages[i].dpi;
  }
  sizes[2 * G_N_ELEMENTS(urf_pages)] = 10;
  sizes[2 * G_N_ELEMENTS(urf_pages) + 1] = 10;
  convert_ok("image/urf", in, G_N_ELEMENTS(urf_pages) + 1, sizes, false);
  g_byte_array_free(b, TRUE);
  g_free(in);
}
END_TEST

/* ---- JPEG and PNG from Ghostscript ---- */

static const struct {
  const char *device, *format, *name;
  bool no_density; /* the file carries no resolution: 72 dpi is assumed */
} gs_images[] = {
    {"jpeg", "image/jpeg", "rgb.jpg", false},
    {"jpeggray", "image/jpeg", "gray.jpg", false},
    {"jpegcmyk", "image/jpeg", "cmyk.jpg", true}, /* Adobe CMYK, no JFIF density */
    {"png16m", "image/png", "rgb.png", false},
    {"pnggray", "image/png", "gray.png", false},
    {"pngalpha", "image/png", "alpha.png", false},
    {"png256", "image/png", "palette.png", false},
    {"pngmono", "image/png", "mono.png", false},
    {"png48", "image/png", "rgb16.png", false},
};

START_TEST(test_images_gs) {
  char device[64];
  g_snprintf(device, sizeof device, "-sDEVICE=%s", gs_images[_i].device);
  const char *args[] = {device, "-r40", "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage", NULL};
  char *in = run_gs(gs_images[_i].name, 1, args);
  /* A4 at 40 dpi is 331x468 pixels: at 72 dpi, as many points */
  const double sizes[] = {A4_W, A4_H}, pixels[] = {331, 468};
  convert_ok(gs_images[_i].format, in, 1, gs_images[_i].no_density ? pixels : sizes,
             true);
  g_free(in);
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_refuse_empty) {
  const char *const *formats = kcps_convert_supported();
  for (int i = 0; formats[i]; i++)
    convert_refused(formats[i], "", 0, KCPS_CONVERT_ERROR_EMPTY, formats[i]);
  convert_refused("image/pwg-raster", "RaS2", 4, KCPS_CONVERT_ERROR_EMPTY, "PWG sync word only");
  GByteArray *b = make_urf(NULL, 0, 0);
  convert_refused("image/urf", b->data, b->len, KCPS_CONVERT_ERROR_EMPTY, "URF header only");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_refuse_garbage) {
  const char garbage[] = "%PDF-1.4 this is not the format it claims to be at all";
  const char *const *formats = kcps_convert_supported();
  for (int i = 0; formats[i]; i++)
    convert_refused(formats[i], garbage, sizeof garbage, KCPS_CONVERT_ERROR_GARBAGE, formats[i]);
  convert_refused("application/octet-stream", garbage, sizeof garbage, KCPS_CONVERT_ERROR_FORMAT,
                  "unknown format");
  /* a JPEG/PNG signature followed by garbage */
  unsigned char jpeg[64] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F'};
  memset(jpeg + 10, 0x5a, sizeof jpeg - 12);
  jpeg[62] = 0xff, jpeg[63] = 0xd9; /* EOI: complete, but no image in it */
  convert_refused("image/jpeg", jpeg, sizeof jpeg, KCPS_CONVERT_ERROR_GARBAGE, "bad JPEG");
  unsigned char png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memset(png + 8, 0x5a, sizeof png - 8);
  png[8] = png[9] = png[10] = 0, png[11] = 13; /* a chunk of 13 bytes ... */
  png[12] = 1, png[13] = 2, png[14] = 3, png[15] = 4; /* ... of no valid type */
  convert_refused("image/png", png, sizeof png, KCPS_CONVERT_ERROR_GARBAGE, "bad PNG");
}
END_TEST

/* Every valid input cut short, at several points, is refused as truncated. */
START_TEST(test_refuse_truncated) {
  const char *pwg_args[] = {"-sDEVICE=pwgraster", "-dcupsColorSpace=19", "-dcupsBitsPerColor=8",
                            "-r30", NULL};
  const char *jpg_args[] = {"-sDEVICE=jpeg", "-r30", NULL};
  const char *png_args[] = {"-sDEVICE=png16m", "-r30", NULL};
  char *paths[3] = {run_gs("t.pwg", 1, pwg_args), run_gs("t.jpg", 1, jpg_args),
                    run_gs("t.png", 1, png_args)};
  const char *formats[3] = {"image/pwg-raster", "image/jpeg", "image/png"};
  GByteArray *urf = make_urf(urf_pages, 2, 2);
  for (int f = 0; f < 4; f++) {
    GBytes *bytes = f < 3 ? read_all(paths[f]) : g_bytes_new(urf->data, urf->len);
    const char *format = f < 3 ? formats[f] : "image/urf";
    size_t len = g_bytes_get_size(bytes);
    const size_t cuts[] = {len - 1, len * 3 / 4, len / 2, 2000, 100, 20};
    for (size_t c = 0; c < G_N_ELEMENTS(cuts); c++) {
      if (cuts[c] >= len || (f == 1 && cuts[c] < 200) || (f == 0 && cuts[c] < 5) ||
          (f == 3 && cuts[c] < 13))
        continue; /* too short to be recognised as the format: garbage, tested elsewhere */
      char what[128];
      g_snprintf(what, sizeof what, "%s cut to %zu of %zu bytes", format, cuts[c], len);
      convert_refused(format, g_bytes_get_data(bytes, NULL), cuts[c],
                      KCPS_CONVERT_ERROR_TRUNCATED, what);
    }
    g_bytes_unref(bytes);
  }
  /* URF declaring 3 pages but holding 2 */
  urf->data[11] = 3;
  convert_refused("image/urf", urf->data, urf->len, KCPS_CONVERT_ERROR_TRUNCATED,
                  "URF missing a page");
  g_byte_array_free(urf, TRUE);
  for (int f = 0; f < 3; f++)
    g_free(paths[f]);
}
END_TEST

/* Headers that lie or ask for too much: refused before pixels are read. */
static const struct {
  const char *what;
  pwg_page_t page;
  int code;
} lying[] = {
    {"height 2^31", {100, 100, 200, 0x80000000u, 8, 24, 600, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"height 2^32-1", {100, 100, 200, 0xffffffffu, 8, 24, 600, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"width 2^31", {100, 100, 0x80000000u, 300, 8, 24, 600, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"width 0", {100, 100, 0, 300, 8, 24, 0, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"1.5 m page", {100, 100, 5906, 300, 8, 24, 17718, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"0 dpi", {0, 100, 200, 300, 8, 24, 600, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"4800 dpi", {4800, 4800, 200, 300, 8, 24, 600, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"bytes per line too small", {100, 100, 200, 300, 8, 24, 599, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"bytes per line too large", {100, 100, 200, 300, 8, 24, 6000, 19, 3}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"bits per pixel wrong", {100, 100, 200, 300, 8, 32, 800, 19, 3}, KCPS_CONVERT_ERROR_UNSUPPORTED},
    {"2 bits per colour", {100, 100, 200, 300, 2, 6, 150, 19, 3}, KCPS_CONVERT_ERROR_UNSUPPORTED},
    {"1-bit RGB", {100, 100, 200, 300, 1, 3, 75, 19, 3}, KCPS_CONVERT_ERROR_UNSUPPORTED},
    {"colours vs space", {100, 100, 200, 300, 8, 24, 600, 19, 4}, KCPS_CONVERT_ERROR_BAD_HEADER},
    {"RGBA colour space", {100, 100, 200, 300, 8, 32, 800, 2, 4}, KCPS_CONVERT_ERROR_UNSUPPORTED},
    {"CIELab colour space", {100, 100, 200, 300, 8, 24, 600, 15, 3}, KCPS_CONVERT_ERROR_UNSUPPORTED},
    {"Device1 colour space", {100, 100, 200, 300, 8, 8, 200, 48, 1}, KCPS_CONVERT_ERROR_UNSUPPORTED},
};

START_TEST(test_refuse_lying_pwg) {
  GByteArray *b = make_pwg(&lying[_i].page, 10);
  convert_refused("image/pwg-raster", b->data, b->len, lying[_i].code, lying[_i].what);
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_refuse_bad_runs) {
  /* a line whose run overflows its width */
  pwg_page_t p = good_pwg;
  GByteArray *b = make_pwg(&p, 0);
  unsigned char line[] = {0, 127, 1, 2, 3, 127, 1, 2, 3};
  g_byte_array_append(b, line, sizeof line);
  convert_refused("image/pwg-raster", b->data, b->len, KCPS_CONVERT_ERROR_GARBAGE, "run overflow");
  g_byte_array_free(b, TRUE);
  /* a line repeated past the page end */
  b = make_pwg(&p, 0);
  unsigned char rep[] = {255, 128};
  for (int i = 0; i < 2; i++)
    g_byte_array_append(b, rep, sizeof rep);
  convert_refused("image/pwg-raster", b->data, b->len, KCPS_CONVERT_ERROR_GARBAGE,
                  "repeat past end");
  g_byte_array_free(b, TRUE);
}
END_TEST

START_TEST(test_refuse_lying_urf) {
  const struct {
    const char *what;
    urf_page_t page;
    int code;
  } cases[] = {
      {"URF height 2^31", {24, 1, 100, 0x80000000u, 100}, KCPS_CONVERT_ERROR_BAD_HEADER},
      {"URF 0 dpi", {24, 1, 100, 100, 0}, KCPS_CONVERT_ERROR_BAD_HEADER},
      {"URF CIELab", {24, 2, 100, 100, 100}, KCPS_CONVERT_ERROR_UNSUPPORTED},
      {"URF 24 bpp gray", {24, 0, 100, 100, 100}, KCPS_CONVERT_ERROR_UNSUPPORTED},
      {"URF 1 bpp", {1, 0, 100, 100, 100}, KCPS_CONVERT_ERROR_UNSUPPORTED},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    urf_page_t p = cases[i].page;
    /* header only, plus a few bytes: the refusal must come before pixels */
    GByteArray *b = make_urf(NULL, 0, 1);
    unsigned char h[12] = {(unsigned char)p.bpp, (unsigned char)p.space};
    g_byte_array_append(b, h, 12);
    put32(b, p.width);
    put32(b, p.height);
    put32(b, p.dpi);
    put32(b, 0);
    put32(b, 0);
    g_byte_array_append(b, (const guint8 *)"\0\x80", 2);
    convert_refused("image/urf", b->data, b->len, cases[i].code, cases[i].what);
    g_byte_array_free(b, TRUE);
  }
}
END_TEST

/* ---- streaming from a pipe ---- */

typedef struct {
  int fd;
  GBytes *bytes;
} feeder_t;

static gpointer feed(gpointer data) {
  feeder_t *f = data;
  gsize len;
  const guint8 *p = g_bytes_get_data(f->bytes, &len);
  while (len > 0) {
    ssize_t n = write(f->fd, p, MIN(len, (gsize)1000));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    p += n;
    len -= (gsize)n;
  }
  close(f->fd);
  return NULL;
}

START_TEST(test_pipe_stream) {
  GByteArray *b = make_urf(urf_pages, 3, 3);
  int fds[2];
  ck_assert(pipe(fds) == 0);
  feeder_t f = {fds[1], g_bytes_new(b->data, b->len)};
  GThread *t = g_thread_new("feed", feed, &f);
  char *out = tmp_path("pipe.pdf");
  int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  kcps_convert_result_t result = {0};
  GError *error = NULL;
  bool ok = kcps_convert_to_pdf("image/urf; charset=binary", fds[0], out_fd, &result, &error);
  g_thread_join(t);
  close(fds[0]);
  close(out_fd);
  ck_assert_msg(ok, "pipe: %s", error ? error->message : "?");
  double sizes[6];
  for (int i = 0; i < 3; i++) {
    sizes[2 * i] = urf_pages[i].width * 72.0 / urf_pages[i].dpi;
    sizes[2 * i + 1] = urf_pages[i].height * 72.0 / urf_pages[i].dpi;
  }
  check_pdf(out, 3, sizes);
  g_bytes_unref(f.bytes);
  g_byte_array_free(b, TRUE);
  g_free(out);
}
END_TEST

START_TEST(test_supported) {
  const char *const *f = kcps_convert_supported();
  const char *expected[] = {"image/pwg-raster", "image/urf", "image/jpeg", "image/png"};
  for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
    ck_assert_msg(f[i] && strcmp(f[i], expected[i]) == 0, "supported[%zu]: got %s, expected %s",
                  i, f[i] ? f[i] : "NULL", expected[i]);
    ck_assert(kcps_convert_is_supported(expected[i]));
  }
  ck_assert_ptr_null(f[G_N_ELEMENTS(expected)]);
  ck_assert(kcps_convert_is_supported("IMAGE/PNG"));
  ck_assert(!kcps_convert_is_supported("application/pdf"));
  ck_assert(!kcps_convert_is_supported("image/pn"));
  ck_assert(!kcps_convert_is_supported(NULL));
}
END_TEST

static Suite *convert_suite(void) {
  Suite *s = suite_create("convert");
  TCase *tc = tcase_create("raster");
  tcase_add_unchecked_fixture(tc, setup, teardown); /* in the parent: runs even when a test fails */
  tcase_add_loop_test(tc, test_pwg_gs_colour_spaces, 0, G_N_ELEMENTS(gs_spaces));
  tcase_add_test(tc, test_pwg_mixed_pages);
  tcase_add_test(tc, test_pwg_encoded);
  tcase_add_test(tc, test_urf_pages);
  tcase_add_test(tc, test_pipe_stream);
  suite_add_tcase(s, tc);

  tc = tcase_create("image");
  tcase_add_unchecked_fixture(tc, setup, teardown); /* in the parent: runs even when a test fails */
  tcase_add_loop_test(tc, test_images_gs, 0, G_N_ELEMENTS(gs_images));
  suite_add_tcase(s, tc);

  tc = tcase_create("refusal");
  tcase_add_unchecked_fixture(tc, setup, teardown); /* in the parent: runs even when a test fails */
  tcase_add_test(tc, test_refuse_empty);
  tcase_add_test(tc, test_refuse_garbage);
  tcase_add_test(tc, test_refuse_truncated);
  tcase_add_loop_test(tc, test_refuse_lying_pwg, 0, G_N_ELEMENTS(lying));
  tcase_add_test(tc, test_refuse_bad_runs);
  tcase_add_test(tc, test_refuse_lying_urf);
  tcase_add_test(tc, test_supported);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(convert_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
