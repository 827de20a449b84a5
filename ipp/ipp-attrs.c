/* The printer's attributes (what Get-Printer-Attributes answers and what
 * CUPS builds a driverless queue from) and the attributes of a job. */
#include "ipp/ipp-private.h"

#include <string.h>

/* Media the printer offers: PWG name and size in hundredths of mm. */
static const struct {
  const char *name;
  int width, length;
  bool ready;
} media_sizes[] = {
  {"iso_a4_210x297mm", 21000, 29700, true},
  {"na_letter_8.5x11in", 21590, 27940, true},
  {"na_legal_8.5x14in", 21590, 35560, false},
  {"iso_a5_148x210mm", 14800, 21000, false},
  {"iso_a3_297x420mm", 29700, 42000, false},
  {"iso_b5_176x250mm", 17600, 25000, false},
  {"na_executive_7.25x10.5in", 18415, 26670, false},
};
#define MEDIA_DEFAULT 0
#define MEDIA_MARGIN 423 /* 1/6 inch, hundredths of mm */
#define MEDIA_SOURCE "main"
#define MEDIA_TYPE "stationery"

static ipp_t *media_size_col(int width, int length) {
  ipp_t *size = ippNew();
  ippAddInteger(size, IPP_TAG_ZERO, IPP_TAG_INTEGER, "x-dimension", width);
  ippAddInteger(size, IPP_TAG_ZERO, IPP_TAG_INTEGER, "y-dimension", length);
  return size;
}

static ipp_t *media_col(int i) {
  ipp_t *col = ippNew();
  ipp_t *size = media_size_col(media_sizes[i].width, media_sizes[i].length);
  ippAddInteger(col, IPP_TAG_ZERO, IPP_TAG_INTEGER, "media-bottom-margin", MEDIA_MARGIN);
  ippAddInteger(col, IPP_TAG_ZERO, IPP_TAG_INTEGER, "media-left-margin", MEDIA_MARGIN);
  ippAddInteger(col, IPP_TAG_ZERO, IPP_TAG_INTEGER, "media-right-margin", MEDIA_MARGIN);
  ippAddCollection(col, IPP_TAG_ZERO, "media-size", size);
  ippAddString(col, IPP_TAG_ZERO, IPP_TAG_KEYWORD, "media-size-name", NULL,
               media_sizes[i].name);
  ippAddString(col, IPP_TAG_ZERO, IPP_TAG_KEYWORD, "media-source", NULL, MEDIA_SOURCE);
  ippAddInteger(col, IPP_TAG_ZERO, IPP_TAG_INTEGER, "media-top-margin", MEDIA_MARGIN);
  ippAddString(col, IPP_TAG_ZERO, IPP_TAG_KEYWORD, "media-type", NULL, MEDIA_TYPE);
  ippDelete(size);
  return col;
}

/* Adds a 1setOf collection attribute of the media indexes where pick says. */
static void add_media_cols(ipp_t *attrs, const char *name, bool ready_only) {
  ipp_t *cols[G_N_ELEMENTS(media_sizes)];
  int n = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(media_sizes); i++)
    if (!ready_only || media_sizes[i].ready)
      cols[n++] = media_col((int)i);
  ipp_attribute_t *attr = ippAddCollections(attrs, IPP_TAG_PRINTER, name, n, NULL);
  for (int i = 0; i < n; i++) {
    ippSetCollection(attrs, &attr, i, cols[i]);
    ippDelete(cols[i]);
  }
}

static void add_keywords(ipp_t *attrs, const char *name, const char *const *values, int n) {
  ippAddStrings(attrs, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, name, n, NULL, values);
}
#define ADD_KEYWORDS(attrs, name, array) add_keywords(attrs, name, array, G_N_ELEMENTS(array))

static void add_keyword(ipp_t *attrs, const char *name, const char *value) {
  ippAddString(attrs, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, name, NULL, value);
}

ipp_t *kcps__ipp_printer_attrs_new(const kcps_ipp_server_t *server) {
  ipp_t *a = ippNew();

  static const int operations[] = {
    IPP_OP_PRINT_JOB,         IPP_OP_VALIDATE_JOB,          IPP_OP_CANCEL_JOB,
    IPP_OP_GET_JOB_ATTRIBUTES, IPP_OP_GET_JOBS,             IPP_OP_GET_PRINTER_ATTRIBUTES,
    IPP_OP_IDENTIFY_PRINTER,  IPP_OP_CREATE_JOB,            IPP_OP_SEND_DOCUMENT,
    IPP_OP_CLOSE_JOB,         IPP_OP_CANCEL_MY_JOBS,
  };
  static const char *const versions[] = {"1.1", "2.0"};
  static const char *const charsets[] = {"us-ascii", "utf-8"};
  /* Exactly what is accepted: PDF, what convert/ turns into PDF, and
   * auto-typing (ipp-document.c). */
  static const char *const formats[] = {"application/pdf",  "application/octet-stream",
                                        "image/jpeg",       "image/png",
                                        "image/pwg-raster", "image/urf"};
  static const char *const pdf_versions[] = {"adobe-1.3", "adobe-1.4", "adobe-1.5",
                                             "adobe-1.6", "adobe-1.7", "iso-32000-1_2008"};
  static const char *const color_modes[] = {"auto", "color", "monochrome"};
  static const char *const sides[] = {"one-sided", "two-sided-long-edge",
                                      "two-sided-short-edge"};
  static const char *const job_creation[] = {
    "copies",        "finishings",      "ipp-attribute-fidelity", "job-name",
    "media",         "media-col",       "multiple-document-handling",
    "orientation-requested", "output-bin", "overrides", "page-ranges", "print-color-mode",
    "print-content-optimize", "print-quality", "print-rendering-intent", "print-scaling",
    "printer-resolution", "sides"};
  static const char *const media_col_supported[] = {
    "media-bottom-margin", "media-left-margin", "media-right-margin", "media-size",
    "media-size-name",     "media-source",      "media-top-margin",   "media-type"};
  static const char *const mdh[] = {"separate-documents-uncollated-copies",
                                    "separate-documents-collated-copies"};
  static const char *const which_jobs[] = {"completed", "not-completed", "all"};
  static const char *const features[] = {"ipp-everywhere"};
  static const char *const scaling[] = {"auto", "auto-fit", "fill", "fit", "none"};
  static const char *const overrides[] = {"document-number", "pages"};
  /* Raster that convert/ takes (colour spaces black, sGray, sRGB, CMYK;
   * 1, 8 and 16 bits), at any resolution up to 1200 dpi: the ones listed
   * are what a sender picks from. */
  static const char *const raster_types[] = {"black_1", "sgray_8", "srgb_8", "srgb_16",
                                             "cmyk_8"};
  static const char *const urf[] = {"V1.4", "CP1", "W8", "SRGB24", "RS150-300"};
  static const int qualities[] = {IPP_QUALITY_DRAFT, IPP_QUALITY_NORMAL, IPP_QUALITY_HIGH};
  static const int orientations[] = {IPP_ORIENT_PORTRAIT, IPP_ORIENT_LANDSCAPE,
                                     IPP_ORIENT_REVERSE_LANDSCAPE, IPP_ORIENT_REVERSE_PORTRAIT};
  static const int resolutions[] = {300, 600};
  static const int raster_resolutions[] = {150, 300};
  static const int margins[] = {MEDIA_MARGIN};

  /* Protocol and identity. */
  ippAddIntegers(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "operations-supported",
                 G_N_ELEMENTS(operations), operations);
  ADD_KEYWORDS(a, "ipp-versions-supported", versions);
  ADD_KEYWORDS(a, "ipp-features-supported", features);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_CHARSET, "charset-configured", NULL, "utf-8");
  ippAddStrings(a, IPP_TAG_PRINTER, IPP_TAG_CHARSET, "charset-supported", 2, NULL, charsets);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_LANGUAGE, "natural-language-configured", NULL, "en");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_LANGUAGE, "generated-natural-language-supported",
               NULL, "en");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_URI, "printer-uri-supported", NULL,
               server->printer_uri);
  add_keyword(a, "uri-security-supported", "none");
  add_keyword(a, "uri-authentication-supported", "none");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_NAME, "printer-name", NULL, server->name);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-info", NULL, server->name);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-make-and-model", NULL,
               "KCPS Virtual Printer");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-location", NULL, "This computer");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-organization", NULL, "");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-organizational-unit", NULL, "");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-device-id", NULL,
               "MFG:KCPS;MDL:Virtual Printer;CMD:PDF;");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_URI, "printer-uuid", NULL, server->uuid);
  g_autofree char *more_info = g_strdup_printf("http://localhost:%d/", server->port);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_URI, "printer-more-info", NULL, more_info);
  ippAddOutOfBand(a, IPP_TAG_PRINTER, IPP_TAG_UNKNOWN, "printer-geo-location");
  g_autofree char *icon = g_strdup_printf("http://localhost:%d%s", server->port,
                                          KCPS__IPP_ICON_PATH);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_URI, "printer-icons", NULL, icon);
  /* IPP Everywhere asks for supplies; a virtual printer has none to run
   * out of: one entry of class "other" whose level is "some remains"
   * (-3, RFC 3805), so print systems show no warning. */
  static const char supply[] = "index=1;class=other;type=other;unit=percent;"
                               "maxcapacity=100;level=-3;colorantname=unknown;";
  ippAddOctetString(a, IPP_TAG_PRINTER, "printer-supply", supply, (int)strlen(supply));
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_TEXT, "printer-supply-description", NULL,
               "Virtual printer: nothing to refill");
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_URI, "printer-supply-info-uri", NULL, more_info);
  add_keyword(a, "printer-kind", "document");
  add_keyword(a, "pdl-override-supported", "not-attempted");
  /* Required by IPP/2.0; a virtual printer takes jobs as fast as they come. */
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "pages-per-minute", 60);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "pages-per-minute-color", 60);
  add_keyword(a, "printer-get-attributes-supported", "document-format");
  add_keyword(a, "identify-actions-default", "display");
  add_keyword(a, "identify-actions-supported", "display");

  /* Printer state: it never prints, so it is always idle and accepting. */
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "printer-state", IPP_PSTATE_IDLE);
  add_keyword(a, "printer-state-reasons", "none");
  ippAddBoolean(a, IPP_TAG_PRINTER, "printer-is-accepting-jobs", 1);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "queued-job-count", 0);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "printer-config-change-time", 0);
  ippAddDate(a, IPP_TAG_PRINTER, "printer-config-change-date-time",
             ippTimeToDate(server->start_time));
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "printer-state-change-time", 0);
  ippAddDate(a, IPP_TAG_PRINTER, "printer-state-change-date-time",
             ippTimeToDate(server->start_time));

  /* Documents. */
  ippAddStrings(a, IPP_TAG_PRINTER, IPP_TAG_MIMETYPE, "document-format-supported",
                G_N_ELEMENTS(formats), NULL, formats);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_MIMETYPE, "document-format-default", NULL,
               "application/pdf");
  add_keyword(a, "document-format-varying-attributes", "none");
  add_keyword(a, "compression-supported", "none");
  ADD_KEYWORDS(a, "pdf-versions-supported", pdf_versions);
  ippAddBoolean(a, IPP_TAG_PRINTER, "pdf-fit-to-page-supported", 0);
  /* Accepted and, like the other job template attributes, not stored yet. */
  ippAddBoolean(a, IPP_TAG_PRINTER, "page-ranges-supported", 1);
  ADD_KEYWORDS(a, "overrides-supported", overrides);
  ippAddRange(a, IPP_TAG_PRINTER, "job-k-octets-supported", 0, 2 * 1024 * 1024);
  ippAddBoolean(a, IPP_TAG_PRINTER, "multiple-document-jobs-supported", 0);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "multiple-operation-time-out",
                KCPS__IPP_INCOMING_TIMEOUT_S);
  add_keyword(a, "multiple-operation-time-out-action", "abort-job");
  ippAddBoolean(a, IPP_TAG_PRINTER, "preferred-attributes-supported", 0);
  ADD_KEYWORDS(a, "which-jobs-supported", which_jobs);
  ADD_KEYWORDS(a, "job-creation-attributes-supported", job_creation);
  ADD_KEYWORDS(a, "multiple-document-handling-supported", mdh);
  add_keyword(a, "multiple-document-handling-default", "separate-documents-collated-copies");
  ippAddBoolean(a, IPP_TAG_PRINTER, "job-ids-supported", 1); /* Get-Jobs job-ids */
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_NAME, "job-name-default", NULL, "Untitled");

  /* Job template: what the released job may ask of a real printer. */
  ippAddBoolean(a, IPP_TAG_PRINTER, "color-supported", 1);
  ADD_KEYWORDS(a, "print-color-mode-supported", color_modes);
  add_keyword(a, "print-color-mode-default", "auto");
  ADD_KEYWORDS(a, "sides-supported", sides);
  add_keyword(a, "sides-default", "one-sided");
  ippAddRange(a, IPP_TAG_PRINTER, "copies-supported", 1, 999);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "copies-default", 1);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "finishings-supported", IPP_FINISHINGS_NONE);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "finishings-default", IPP_FINISHINGS_NONE);
  ippAddIntegers(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "orientation-requested-supported",
                 G_N_ELEMENTS(orientations), orientations);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "orientation-requested-default",
                IPP_ORIENT_PORTRAIT);
  add_keyword(a, "output-bin-supported", "face-down");
  add_keyword(a, "output-bin-default", "face-down");
  ippAddIntegers(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "print-quality-supported",
                 G_N_ELEMENTS(qualities), qualities);
  ippAddInteger(a, IPP_TAG_PRINTER, IPP_TAG_ENUM, "print-quality-default", IPP_QUALITY_NORMAL);
  add_keyword(a, "print-content-optimize-supported", "auto");
  add_keyword(a, "print-content-optimize-default", "auto");
  add_keyword(a, "print-rendering-intent-supported", "auto");
  add_keyword(a, "print-rendering-intent-default", "auto");
  ADD_KEYWORDS(a, "print-scaling-supported", scaling);
  add_keyword(a, "print-scaling-default", "auto");
  ippAddResolutions(a, IPP_TAG_PRINTER, "printer-resolution-supported",
                    G_N_ELEMENTS(resolutions), IPP_RES_PER_INCH, resolutions, resolutions);
  ippAddResolution(a, IPP_TAG_PRINTER, "printer-resolution-default", IPP_RES_PER_INCH, 600,
                   600);
  /* PWG raster and URF: resolutions and types convert/ takes. */
  ippAddResolutions(a, IPP_TAG_PRINTER, "pwg-raster-document-resolution-supported",
                    G_N_ELEMENTS(raster_resolutions), IPP_RES_PER_INCH, raster_resolutions,
                    raster_resolutions);
  ADD_KEYWORDS(a, "pwg-raster-document-type-supported", raster_types);
  add_keyword(a, "pwg-raster-document-sheet-back", "normal");
  ADD_KEYWORDS(a, "urf-supported", urf);

  /* Media. */
  const char *names[G_N_ELEMENTS(media_sizes)], *ready[G_N_ELEMENTS(media_sizes)];
  int n_ready = 0;
  for (size_t i = 0; i < G_N_ELEMENTS(media_sizes); i++) {
    names[i] = media_sizes[i].name;
    if (media_sizes[i].ready)
      ready[n_ready++] = media_sizes[i].name;
  }
  ippAddStrings(a, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, "media-supported",
                G_N_ELEMENTS(media_sizes), NULL, names);
  ippAddString(a, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, "media-default", NULL,
               media_sizes[MEDIA_DEFAULT].name);
  ippAddStrings(a, IPP_TAG_PRINTER, IPP_TAG_KEYWORD, "media-ready", n_ready, NULL, ready);
  add_media_cols(a, "media-col-database", false);
  add_media_cols(a, "media-col-ready", true);
  ipp_t *dflt = media_col(MEDIA_DEFAULT);
  ippAddCollection(a, IPP_TAG_PRINTER, "media-col-default", dflt);
  ippDelete(dflt);
  ADD_KEYWORDS(a, "media-col-supported", media_col_supported);
  ipp_attribute_t *sizes =
    ippAddCollections(a, IPP_TAG_PRINTER, "media-size-supported", G_N_ELEMENTS(media_sizes),
                      NULL);
  for (size_t i = 0; i < G_N_ELEMENTS(media_sizes); i++) {
    ipp_t *size = media_size_col(media_sizes[i].width, media_sizes[i].length);
    ippSetCollection(a, &sizes, (int)i, size);
    ippDelete(size);
  }
  ippAddIntegers(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "media-bottom-margin-supported", 1,
                 margins);
  ippAddIntegers(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "media-left-margin-supported", 1,
                 margins);
  ippAddIntegers(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "media-right-margin-supported", 1,
                 margins);
  ippAddIntegers(a, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "media-top-margin-supported", 1,
                 margins);
  add_keyword(a, "media-source-supported", MEDIA_SOURCE);
  add_keyword(a, "media-type-supported", MEDIA_TYPE);
  return a;
}

cups_array_t *kcps__ipp_requested(ipp_t *request) {
  /* libcups expands "all" to the names it knows; ours may be newer, so
   * "all" anywhere in the list means everything. */
  ipp_attribute_t *requested = ippFindAttribute(request, "requested-attributes", IPP_TAG_KEYWORD);
  if (requested != NULL && ippContainsString(requested, "all")) {
    cups_array_t *named = ippCreateRequestedArray(request);
    if (named == NULL || cupsArrayFind(named, (void *)"media-col-database") == NULL) {
      cupsArrayDelete(named);
      return NULL;
    }
    /* Everything, plus media-col-database: mark "all" in the array. */
    cupsArrayAdd(named, (void *)"all");
    return named;
  }
  return ippCreateRequestedArray(request);
}

static bool wants_all(cups_array_t *ra) {
  return ra == NULL || cupsArrayFind(ra, (void *)"all") != NULL;
}

/* Attribute filter for ippCopyAttributes: requested names only, and
 * media-col-database only when named (it is large and not part of "all"). */
typedef struct {
  cups_array_t *ra;
} filter_t;

static int filter_attr(void *context, ipp_t *dst, ipp_attribute_t *attr) {
  (void)dst;
  filter_t *f = context;
  const char *name = ippGetName(attr);
  if (name == NULL)
    return 0;
  bool named = f->ra != NULL && cupsArrayFind(f->ra, (void *)name) != NULL;
  if (strcmp(name, "media-col-database") == 0)
    return named;
  return wants_all(f->ra) || named;
}

static bool wanted(cups_array_t *ra, const char *name) {
  return wants_all(ra) || cupsArrayFind(ra, (void *)name) != NULL;
}

void kcps__ipp_copy_printer_attrs(const kcps_ipp_server_t *server, ipp_t *request,
                                  ipp_t *response) {
  cups_array_t *ra = kcps__ipp_requested(request);
  filter_t f = {ra};
  ippCopyAttributes(response, server->attrs, 0, filter_attr, &f);

  time_t now = time(NULL);
  if (wanted(ra, "printer-up-time"))
    ippAddInteger(response, IPP_TAG_PRINTER, IPP_TAG_INTEGER, "printer-up-time",
                  (int)MAX(1, now - server->start_time + 1));
  if (wanted(ra, "printer-current-time"))
    ippAddDate(response, IPP_TAG_PRINTER, "printer-current-time", ippTimeToDate(now));
  cupsArrayDelete(ra);
}

void kcps__ipp_copy_job_attrs(const kcps_ipp_server_t *server, const kcps_job_t *job,
                              int ipp_id, cups_array_t *ra, ipp_t *response) {
  /* A spooled job is done as far as the print system is concerned: it
   * reads as completed so that senders do not wait for it. */
  time_t created = (time_t)job->created;
  int created_up = (int)MAX(1, created - server->start_time + 1);

  if (wanted(ra, "job-id"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-id", ipp_id);
  if (wanted(ra, "job-uri")) {
    g_autofree char *uri = g_strdup_printf("%s/%d", server->printer_uri, ipp_id);
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_URI, "job-uri", NULL, uri);
  }
  if (wanted(ra, "job-uuid")) {
    g_autofree char *uuid = g_strdup_printf("urn:uuid:%s", job->id);
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_URI, "job-uuid", NULL, uuid);
  }
  if (wanted(ra, "job-printer-uri"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_URI, "job-printer-uri", NULL,
                 server->printer_uri);
  if (wanted(ra, "job-name"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_NAME, "job-name", NULL,
                 job->name != NULL && *job->name ? job->name : "Untitled");
  if (wanted(ra, "job-originating-user-name"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_NAME, "job-originating-user-name", NULL,
                 job->owner_name != NULL ? job->owner_name : "unknown");
  if (wanted(ra, "job-state"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_ENUM, "job-state", IPP_JSTATE_COMPLETED);
  if (wanted(ra, "job-state-reasons"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_KEYWORD, "job-state-reasons", NULL,
                 "job-completed-successfully");
  if (wanted(ra, "job-state-message"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_TEXT, "job-state-message", NULL,
                 "Held in the KCPS spool until released at a printer.");
  if (wanted(ra, "document-format"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_MIMETYPE, "document-format", NULL,
                 job->format != NULL ? job->format : "application/pdf");
  if (wanted(ra, "job-k-octets"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-k-octets",
                  (int)MIN((job->size + 1023) / 1024, G_MAXINT));
  if (wanted(ra, "job-impressions"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-impressions", job->pages);
  if (wanted(ra, "job-impressions-completed"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-impressions-completed",
                  job->pages);
  if (wanted(ra, "number-of-documents"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "number-of-documents", 1);
  if (wanted(ra, "job-printer-up-time"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-printer-up-time",
                  (int)MAX(1, time(NULL) - server->start_time + 1));
  static const char *const times[] = {"time-at-creation", "time-at-processing",
                                      "time-at-completed"};
  static const char *const dates[] = {"date-time-at-creation", "date-time-at-processing",
                                      "date-time-at-completed"};
  for (size_t i = 0; i < G_N_ELEMENTS(times); i++) {
    if (wanted(ra, times[i]))
      ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, times[i], created_up);
    if (wanted(ra, dates[i]))
      ippAddDate(response, IPP_TAG_JOB, dates[i], ippTimeToDate(created));
  }
}

void kcps__ipp_copy_mem_job_attrs_locked(const kcps_ipp_server_t *server,
                                         const kcps__ipp_mem_job_t *job, cups_array_t *ra,
                                         ipp_t *response) {
  /* A job that waits for its document (pending) or ended without one. */
  bool ended = job->state != IPP_JSTATE_PENDING;
  int created_up = (int)MAX(1, (time_t)job->created - server->start_time + 1);
  int ended_up = (int)MAX(1, (time_t)job->ended - server->start_time + 1);

  if (wanted(ra, "job-id"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-id", job->ipp_id);
  if (wanted(ra, "job-uri")) {
    g_autofree char *uri = g_strdup_printf("%s/%d", server->printer_uri, job->ipp_id);
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_URI, "job-uri", NULL, uri);
  }
  if (wanted(ra, "job-uuid"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_URI, "job-uuid", NULL, job->uuid);
  if (wanted(ra, "job-printer-uri"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_URI, "job-printer-uri", NULL,
                 server->printer_uri);
  if (wanted(ra, "job-name"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_NAME, "job-name", NULL, job->name);
  if (wanted(ra, "job-originating-user-name"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_NAME, "job-originating-user-name", NULL,
                 job->owner_name != NULL ? job->owner_name : "unknown");
  if (wanted(ra, "job-state"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_ENUM, "job-state", (int)job->state);
  if (wanted(ra, "job-state-reasons")) {
    if (ended) {
      ippAddString(response, IPP_TAG_JOB, IPP_TAG_KEYWORD, "job-state-reasons", NULL,
                   job->reason);
    } else {
      const char *const reasons[] = {job->reason, "job-data-insufficient"};
      ippAddStrings(response, IPP_TAG_JOB, IPP_TAG_KEYWORD, "job-state-reasons", 2, NULL,
                    reasons);
    }
  }
  if (wanted(ra, "job-state-message"))
    ippAddString(response, IPP_TAG_JOB, IPP_TAG_TEXT, "job-state-message", NULL, job->message);
  if (wanted(ra, "job-k-octets"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-k-octets", 0);
  if (wanted(ra, "job-impressions"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-impressions", 0);
  if (wanted(ra, "job-impressions-completed"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-impressions-completed", 0);
  if (wanted(ra, "number-of-documents"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "number-of-documents", 0);
  if (wanted(ra, "job-printer-up-time"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "job-printer-up-time",
                  (int)MAX(1, time(NULL) - server->start_time + 1));
  if (wanted(ra, "time-at-creation"))
    ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "time-at-creation", created_up);
  if (wanted(ra, "date-time-at-creation"))
    ippAddDate(response, IPP_TAG_JOB, "date-time-at-creation",
               ippTimeToDate((time_t)job->created));
  /* Never processed; completed (ended) only once canceled or aborted. */
  if (wanted(ra, "time-at-processing"))
    ippAddOutOfBand(response, IPP_TAG_JOB, IPP_TAG_NOVALUE, "time-at-processing");
  if (wanted(ra, "date-time-at-processing"))
    ippAddOutOfBand(response, IPP_TAG_JOB, IPP_TAG_NOVALUE, "date-time-at-processing");
  if (wanted(ra, "time-at-completed")) {
    if (ended)
      ippAddInteger(response, IPP_TAG_JOB, IPP_TAG_INTEGER, "time-at-completed", ended_up);
    else
      ippAddOutOfBand(response, IPP_TAG_JOB, IPP_TAG_NOVALUE, "time-at-completed");
  }
  if (wanted(ra, "date-time-at-completed")) {
    if (ended)
      ippAddDate(response, IPP_TAG_JOB, "date-time-at-completed",
                 ippTimeToDate((time_t)job->ended));
    else
      ippAddOutOfBand(response, IPP_TAG_JOB, IPP_TAG_NOVALUE, "date-time-at-completed");
  }
}
