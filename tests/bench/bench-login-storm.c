/* Benchmark: job lists while a login storm hammers kcps-server (issue 3,
 * "password hashing must not starve the other routes"). The server runs
 * in-process (the server library, a fresh demo data folder, HTTPS on a free
 * loopback port). CLIENTS threads, each on its own keep-alive connection,
 * post wrong passwords to POST /api/v1/login without pause: a quarter of
 * them against real accounts (which lock after 3 failures), the rest
 * against unknown emails. Meanwhile one user with a valid token runs
 * GET /api/v1/jobs sequentially on one keep-alive connection. The anchor is
 * the same job list on the same server with no storm, measured in the same
 * run; idle and storm phases alternate for ROUNDS rounds and each side
 * keeps its best round (other tenants' load only ever slows a round down).
 *
 * stdout, the figures (milliseconds):
 *   bench: login-storm-joblist-p99 ours=<storm p99> anchor=<idle p99> ratio=<..> goal=<50ms
 *   bench: login-storm-joblist-p50 ours=<storm p50> anchor=<idle p50> ratio=<..> goal=<50ms
 * stderr: each round (logins/s of the storm, its answers, p50/p90/p99/max).
 *
 * Each phase lists for at least SECONDS and at least SAMPLES times. The
 * storm comes from SOURCES loopback addresses (127.0.0.2 and up, client i
 * from number i mod SOURCES): failures are counted per account and source,
 * so many sources make the server write (and lock) more than one would.
 *
 * usage: bench-login-storm [CLIENTS [SAMPLES [ROUNDS [SECONDS [SOURCES]]]]]
 *        (defaults 200 500 3 5 200)
 * BENCH_HASH_MAX=n overrides the server's bound on concurrent Argon2 runs
 * (server->hash_max), to measure what another bound would give.
 * BENCH_LOCKOUT_SCOPE=account_source sets that lockout scope on the root
 * organization (failures then count per account and source address: the
 * storm's 200 sources write up to 3 failures each for every real account). */
#include "server-stub/server-private.h"

#include <curl/curl.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GOAL_MS 50.0
#define REAL_ACCOUNTS 5  /* stormed accounts that exist (they lock) */
#define JOBS 20          /* jobs in the listing user's list */
#define WARMUP_LOGINS_PER_CLIENT 1

typedef struct {
  const char *url;    /* server base URL */
  const char *ca;     /* its certificate */
  int clients;
  char **real;        /* REAL_ACCOUNTS emails */
  volatile int stop;  /* set by the main thread to end the storm */
  gint answered;      /* login answers received (atomic) */
  gint connected;     /* clients that got their first answer (atomic) */
  gint status_401, status_429, status_other, failures; /* atomic */
  gint64 connects;    /* new connections opened (atomic add) */
} storm_t;

typedef struct {
  storm_t *storm;
  int index;
  char source[16];  /* the loopback address it connects from */
  pthread_t thread;
} storm_client_t;

static double
now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t
discard(char *ptr, size_t size, size_t n, void *data)
{
  (void)ptr;
  (void)data;
  return size * n;
}

static size_t
collect(char *ptr, size_t size, size_t n, void *data)
{
  g_string_append_len(data, ptr, (gssize)(size * n));
  return size * n;
}

static CURL *
new_handle(const char *ca)
{
  CURL *curl = curl_easy_init();
  if (!curl) {
    fprintf(stderr, "bench-login-storm: curl_easy_init failed\n");
    exit(1);
  }
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  return curl;
}

/* One storm connection: wrong passwords back to back until told to stop. */
static void *
storm_main(void *data)
{
  storm_client_t *self = data;
  storm_t *storm = self->storm;
  g_autofree char *url = g_strconcat(storm->url, "/api/v1/login", NULL);
  CURL *curl = new_handle(storm->ca);
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(curl, CURLOPT_INTERFACE, self->source);

  for (unsigned k = 0; !__atomic_load_n(&storm->stop, __ATOMIC_RELAXED); k++) {
    /* One in four against a real account, the rest at unknown emails. */
    g_autofree char *ghost = NULL;
    const char *email;
    if ((k + (unsigned)self->index) % 4 == 0) {
      email = storm->real[((unsigned)self->index + k) % REAL_ACCOUNTS];
    } else {
      ghost = g_strdup_printf("ghost-%d-%u@storm.test", self->index, k);
      email = ghost;
    }
    g_autofree char *body =
        g_strdup_printf("{\"email\":\"%s\",\"password\":\"Wrong-%u-pass!\"}", email, k);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    long connects = 0;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    __atomic_add_fetch(&storm->connects, (gint64)connects, __ATOMIC_RELAXED);
    if (k == 0)
      g_atomic_int_inc(&storm->connected);
    if (rc != CURLE_OK) {
      if (g_atomic_int_add(&storm->failures, 1) < 5)
        fprintf(stderr, "login-storm: client %d: %s\n", self->index, curl_easy_strerror(rc));
      continue;
    }
    g_atomic_int_inc(&storm->answered);
    if (status == 401)
      g_atomic_int_inc(&storm->status_401);
    else if (status == 429)
      g_atomic_int_inc(&storm->status_429);
    else if (g_atomic_int_add(&storm->status_other, 1) < 5)
      fprintf(stderr, "login-storm: client %d: unexpected HTTP %ld to a wrong password\n",
              self->index, status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q quantile (0..1) of sorted values, nearest rank. */
static double
quantile(const double *sorted, size_t n, double q)
{
  size_t rank = (size_t)(q * (double)n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;
  return sorted[rank - 1];
}

typedef struct {
  double p50, p90, p99, max;
} figures_t;

/* Sequential job lists on curl (a keep-alive connection), at least n of
 * them and for at least seconds; latencies in ms. */
static figures_t
measure_lists(CURL *curl, size_t n, double seconds, const char *what, size_t *count)
{
  GArray *lats = g_array_new(FALSE, FALSE, sizeof(double));
  g_autoptr(GString) answer = g_string_new(NULL);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
  double start = now_ms();
  for (size_t i = 0; i < n || now_ms() - start < seconds * 1e3; i++) {
    g_string_truncate(answer, 0);
    double t0 = now_ms();
    CURLcode rc = curl_easy_perform(curl);
    double lat = now_ms() - t0;
    g_array_append_val(lats, lat);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200 || !strstr(answer->str, "\"jobs\"")) {
      fprintf(stderr, "bench-login-storm: %s job list %zu: %s, HTTP %ld: %.200s\n", what, i,
              curl_easy_strerror(rc), status, answer->str);
      exit(1);
    }
  }
  double *lat = (double *)(void *)lats->data;
  size_t m = lats->len;
  qsort(lat, m, sizeof *lat, cmp_double);
  figures_t f = {quantile(lat, m, 0.50), quantile(lat, m, 0.90), quantile(lat, m, 0.99),
                 lat[m - 1]};
  if (count)
    *count = m;
  g_array_free(lats, TRUE);
  return f;
}

static char *
credential(const char *creds, const char *prefix)
{
  const char *p = creds ? strstr(creds, prefix) : NULL;
  if (!p)
    return NULL;
  p += strlen(prefix);
  return g_strndup(p, strcspn(p, "\n"));
}

/* POST body as user bearer; the HTTP status, the answer into out. */
static long
post_json(CURL *curl, const char *url, const char *bearer, const char *body, GString *out)
{
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  g_autofree char *auth = bearer ? g_strconcat("Authorization: Bearer ", bearer, NULL) : NULL;
  if (auth)
    headers = curl_slist_append(headers, auth);
  g_string_truncate(out, 0);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    fprintf(stderr, "bench-login-storm: POST %s: %s\n", url, curl_easy_strerror(rc));
    exit(1);
  }
  return status;
}

/* Adds an active customer user with a password straight into the database
 * (no route creates users in every build of the server). */
static void
add_user(kcps_server_t *server, const char *email, const char *password)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *hash = kcps__server_password_hash(password, &error);
  g_autofree char *public_id = g_uuid_string_random();
  bool ok = false;
  g_mutex_lock(&server->lock);
  sqlite3_stmt *stmt = hash ? kcps__server_db_prepare(
      server,
      "INSERT INTO users (public_id, org_id, email, name, role, password_hash, created)"
      " SELECT ?, id, ?, ?, 'customer_user', ?, ? FROM orgs WHERE name = 'Customer A'",
      &error) : NULL;
  if (stmt) {
    sqlite3_bind_text(stmt, 1, public_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, email, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, kcps__server_now());
    ok = kcps__server_db_step(server, stmt, &error) == SQLITE_DONE &&
         sqlite3_changes(server->db) == 1;
  }
  sqlite3_finalize(stmt);
  g_mutex_unlock(&server->lock);
  if (!ok) {
    fprintf(stderr, "bench-login-storm: cannot add user %s: %s\n", email,
            error ? error->message : "no organization \"Customer A\"");
    exit(1);
  }
}

static void
remove_tree(const char *path)
{
  GDir *dir = g_dir_open(path, 0, NULL);
  if (dir) {
    const char *name;
    while ((name = g_dir_read_name(dir))) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      remove_tree(child);
    }
    g_dir_close(dir);
  }
  g_remove(path);
}

static void
print_line(const char *name, double ours, double anchor)
{
  printf("bench: %s ours=%.2f anchor=%.2f ratio=%.2f goal=<%.0fms%s\n", name, ours, anchor,
         anchor > 0 ? ours / anchor : 0.0, GOAL_MS, ours < GOAL_MS ? "" : " (misses goal)");
}

int
main(int argc, char **argv)
{
  int clients = argc > 1 ? atoi(argv[1]) : 200;
  int samples = argc > 2 ? atoi(argv[2]) : 500;
  int rounds = argc > 3 ? atoi(argv[3]) : 3;
  double seconds = argc > 4 ? g_ascii_strtod(argv[4], NULL) : 5.0;
  int sources = argc > 5 ? atoi(argv[5]) : 200;
  if (argc > 6 || clients < 1 || clients > 500 || samples < 100 || rounds < 1 || seconds < 0 ||
      sources < 1 || sources > 250) {
    fprintf(stderr, "usage: bench-login-storm [CLIENTS (1-500) [SAMPLES (>=100) [ROUNDS "
            "[SECONDS [SOURCES (1-250)]]]]]\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  g_log_set_writer_func(g_log_writer_standard_streams, NULL, NULL);

  /* On the disk, not tmpfs: the database's fsyncs must cost what they cost. */
  g_autofree char *tmp = g_strdup("/var/tmp/kcps-bench-storm.XXXXXX");
  if (!g_mkdtemp_full(tmp, 0700)) {
    fprintf(stderr, "bench-login-storm: cannot create %s: %s\n", tmp, g_strerror(errno));
    return 1;
  }
  g_autofree char *data = g_build_filename(tmp, "data", NULL);
  kcps_server_config_t config = {.listen = "127.0.0.1:0", .data_dir = data, .demo = true};
  g_autoptr(GError) error = NULL;
  kcps_server_t *server = kcps_server_new(&config, &error);
  if (!server) {
    fprintf(stderr, "bench-login-storm: server: %s\n", error->message);
    remove_tree(tmp);
    return 1;
  }
  const char *hash_max = g_getenv("BENCH_HASH_MAX");
  if (hash_max && atoi(hash_max) > 0) {
    g_mutex_lock(&server->hash_lock);
    server->hash_max = (unsigned)atoi(hash_max);
    g_mutex_unlock(&server->hash_lock);
  }
  const char *scope = g_getenv("BENCH_LOCKOUT_SCOPE");
  if (scope && *scope) {
    g_autoptr(JsonNode) value = json_node_new(JSON_NODE_VALUE);
    json_node_set_string(value, scope);
    g_mutex_lock(&server->lock);
    gint64 root_org = 0;
    sqlite3_stmt *stmt =
        kcps__server_db_prepare(server, "SELECT id FROM orgs WHERE type = 'root'", &error);
    if (stmt && kcps__server_db_step(server, stmt, &error) == SQLITE_ROW)
      root_org = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    bool stored = root_org > 0 &&
                  kcps__server_setting_store_locked(server, root_org, "lockout_scope", value, &error);
    g_mutex_unlock(&server->lock);
    if (!stored) {
      fprintf(stderr, "bench-login-storm: lockout_scope %s: %s\n", scope,
              error ? error->message : "no root organization");
      return 1;
    }
  }
  const char *url = kcps_server_get_url(server);
  const char *ca = kcps_server_get_cert_path(server);
  g_autofree char *alice_pw =
      credential(kcps_server_get_demo_credentials(server), "alice@a.test password: ");
  if (!alice_pw) {
    fprintf(stderr, "bench-login-storm: no demo credentials for alice@a.test\n");
    return 1;
  }

  /* The stormed real accounts: the demo admin and a few more users. */
  char *real[REAL_ACCOUNTS];
  real[0] = g_strdup("admin@a.test");
  for (int i = 1; i < REAL_ACCOUNTS; i++) {
    real[i] = g_strdup_printf("storm%d@a.test", i);
    add_user(server, real[i], "Storm-Right-1!");
  }

  /* The listing user: alice, logged in, with JOBS jobs in her list. */
  CURL *lister = new_handle(ca);
  g_autoptr(GString) answer = g_string_new(NULL);
  g_autofree char *login_url = g_strconcat(url, "/api/v1/login", NULL);
  g_autofree char *jobs_url = g_strconcat(url, "/api/v1/jobs", NULL);
  g_autofree char *login = g_strdup_printf(
      "{\"email\":\"alice@a.test\",\"password\":\"%s\"}", alice_pw);
  long status = post_json(lister, login_url, NULL, login, answer);
  g_autoptr(JsonNode) root = json_from_string(answer->str, NULL);
  const char *tok = status == 200 && root && JSON_NODE_HOLDS_OBJECT(root)
                        ? json_object_get_string_member_with_default(
                              json_node_get_object(root), "token", NULL)
                        : NULL;
  if (!tok) {
    fprintf(stderr, "bench-login-storm: alice cannot log in: HTTP %ld\n", status);
    return 1;
  }
  g_autofree char *token = g_strdup(tok);
  for (int j = 0; j < JOBS; j++) {
    g_autofree char *job = g_strdup_printf(
        "{\"client_job_id\":\"bench-%d\",\"name\":\"Quarterly report %d.pdf\",\"pages\":%d,"
        "\"size\":%d,\"sha256\":\"%064d\",\"pull_url\":"
        "\"https://192.0.2.7:5571/jobs/bench-%d/document\",\"pull_pin\":"
        "\"sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}",
        j, j, 1 + j, 10000 + j, j, j);
    status = post_json(lister, jobs_url, token, job, answer);
    if (status != 201) {
      fprintf(stderr, "bench-login-storm: job %d: HTTP %ld: %.200s\n", j, status, answer->str);
      return 1;
    }
  }
  g_autofree char *auth = g_strconcat("Authorization: Bearer ", token, NULL);
  struct curl_slist *list_headers = curl_slist_append(NULL, auth);
  curl_easy_setopt(lister, CURLOPT_URL, jobs_url);
  curl_easy_setopt(lister, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(lister, CURLOPT_HTTPHEADER, list_headers);
  curl_easy_setopt(lister, CURLOPT_WRITEFUNCTION, collect);

  fprintf(stderr, "login-storm: server %s, %d storm clients from %d addresses, %d samples a "
          "side, %d rounds, %u hashing slots, %u processors, lockout scope %s\n",
          url, clients, sources, samples, rounds, server->hash_max, g_get_num_processors(),
          scope && *scope ? scope : "(default)");
  figures_t best_idle = {0}, best_storm = {0};
  for (int round = 1; round <= rounds; round++) {
    /* Idle: the anchor. */
    size_t n_idle = 0, n_hot = 0;
    (void)measure_lists(lister, 20, 0, "warm-up", NULL);
    figures_t idle = measure_lists(lister, (size_t)samples, seconds, "idle", &n_idle);
    fprintf(stderr, "login-storm: round %d idle:  %zu lists, p50=%.2f p90=%.2f p99=%.2f "
            "max=%.2f ms\n", round, n_idle, idle.p50, idle.p90, idle.p99, idle.max);

    /* Storm: every client connected and answered once before measuring. */
    storm_t storm = {.url = url, .ca = ca, .clients = clients, .real = real};
    storm_client_t *threads = g_new0(storm_client_t, (size_t)clients);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    for (int i = 0; i < clients; i++) {
      threads[i] = (storm_client_t){.storm = &storm, .index = i};
      g_snprintf(threads[i].source, sizeof threads[i].source, "127.0.0.%d", 2 + i % sources);
      int rc = pthread_create(&threads[i].thread, &attr, storm_main, &threads[i]);
      if (rc != 0) {
        fprintf(stderr, "bench-login-storm: thread %d: %s\n", i, g_strerror(rc));
        return 1;
      }
    }
    pthread_attr_destroy(&attr);
    double t_wait = now_ms();
    while (g_atomic_int_get(&storm.connected) < clients * WARMUP_LOGINS_PER_CLIENT) {
      if (now_ms() - t_wait > 120000) {
        fprintf(stderr, "bench-login-storm: only %d of %d storm clients got an answer in 120 s\n",
                g_atomic_int_get(&storm.connected), clients);
        return 1;
      }
      g_usleep(10000);
    }
    int answered0 = g_atomic_int_get(&storm.answered);
    double t0 = now_ms();
    figures_t hot = measure_lists(lister, (size_t)samples, seconds, "storm", &n_hot);
    double elapsed = (now_ms() - t0) / 1e3;
    int answered = g_atomic_int_get(&storm.answered) - answered0;
    __atomic_store_n(&storm.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < clients; i++)
      pthread_join(threads[i].thread, NULL);
    g_free(threads);
    fprintf(stderr, "login-storm: round %d storm: %zu lists, p50=%.2f p90=%.2f p99=%.2f "
            "max=%.2f ms; %d logins in %.1f s = %.0f logins/s (401: %d, 429: %d, other: %d, "
            "failed: %d; %" G_GINT64_FORMAT " connections for %d clients)\n",
            round, n_hot, hot.p50, hot.p90, hot.p99, hot.max, answered, elapsed,
            (double)answered / elapsed, g_atomic_int_get(&storm.status_401),
            g_atomic_int_get(&storm.status_429), g_atomic_int_get(&storm.status_other),
            g_atomic_int_get(&storm.failures), storm.connects, clients);
    if (g_atomic_int_get(&storm.status_other) > 0 || g_atomic_int_get(&storm.failures) > 0) {
      fprintf(stderr, "bench-login-storm: the storm got answers other than 401/429\n");
      return 1;
    }
    if (round == 1 || idle.p99 < best_idle.p99)
      best_idle = idle;
    if (round == 1 || hot.p99 < best_storm.p99)
      best_storm = hot;
  }
  print_line("login-storm-joblist-p99", best_storm.p99, best_idle.p99);
  print_line("login-storm-joblist-p50", best_storm.p50, best_idle.p50);
  fflush(stdout);

  curl_slist_free_all(list_headers);
  curl_easy_cleanup(lister);
  for (int i = 0; i < REAL_ACCOUNTS; i++)
    g_free(real[i]);
  kcps_server_free(server);
  remove_tree(tmp);
  curl_global_cleanup();
  return 0;
}
