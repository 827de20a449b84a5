/* Cloud spool (issue 5): in cloud mode the sync worker uploads each spooled
 * job to the server in chunks instead of registering a pull URL. Resumable:
 * before sending, it asks the server how many bytes it has (after a dropped
 * connection or a restart of kcpsd it continues from there), and the
 * idempotency key is derived from the spool job id, so a retry never makes a
 * second server job. The local copy is deleted only after the server
 * confirmed the finished upload with the job's own sha256. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/daemon-private.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/json-util.h"

#define UPLOAD_TIMEOUT_S 60
/* Whole-transfer timeout of one chunk: generous for a slow link, and an
 * upload rate limit stretches it further. */
#define CHUNK_TIMEOUT_S 120

typedef struct progress_s {
  gint64 done;  /* bytes the server confirmed */
  gint64 total; /* the document's size */
} progress_t;

struct kcps__uploader_s {
  GMutex lock;           /* guards progress and the counters */
  GHashTable *progress;  /* spool job id -> progress_t* */
  gint64 chunk_size;     /* bytes a PUT (capped by the server's chunk_max) */
  gint64 max_rate;       /* bytes/s of a PUT, 0: no limit */
  gint64 bytes_sent;     /* chunk bytes sent since start (all jobs) */
  GHashTable *finished;  /* spool job id -> kcps_job_t* (server_id set): uploads the
                            server confirmed since start, for `kcps jobs` */
};

kcps__uploader_t *kcps__uploader_new(gint64 chunk_size, gint64 max_rate)
{
  kcps__uploader_t *up = g_new0(kcps__uploader_t, 1);
  g_mutex_init(&up->lock);
  up->progress = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  up->finished = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)kcps_job_free);
  up->chunk_size = chunk_size > 0 ? chunk_size : KCPS_UPLOAD_CHUNK_DEFAULT;
  up->max_rate = max_rate > 0 ? max_rate : 0;
  return up;
}

void kcps__uploader_free(kcps__uploader_t *up)
{
  if (up == NULL)
    return;
  g_hash_table_destroy(up->progress);
  g_hash_table_destroy(up->finished);
  g_mutex_clear(&up->lock);
  g_free(up);
}

static void set_progress(kcps__uploader_t *up, const char *job_id, gint64 done, gint64 total)
{
  g_mutex_lock(&up->lock);
  progress_t *p = g_hash_table_lookup(up->progress, job_id);
  if (p == NULL) {
    p = g_new0(progress_t, 1);
    g_hash_table_insert(up->progress, g_strdup(job_id), p);
  }
  p->done = done;
  p->total = total;
  g_mutex_unlock(&up->lock);
}

static void forget_progress(kcps__uploader_t *up, const char *job_id)
{
  g_mutex_lock(&up->lock);
  g_hash_table_remove(up->progress, job_id);
  g_mutex_unlock(&up->lock);
}

bool kcps__upload_progress(kcps_daemon_t *daemon, const char *job_id, gint64 *done,
                           gint64 *total)
{
  kcps__uploader_t *up = daemon->uploader;
  if (up == NULL)
    return false;
  g_mutex_lock(&up->lock);
  progress_t *p = g_hash_table_lookup(up->progress, job_id);
  if (p != NULL) {
    *done = p->done;
    *total = p->total;
  }
  g_mutex_unlock(&up->lock);
  return p != NULL;
}

GPtrArray *kcps__upload_finished_jobs(kcps_daemon_t *daemon, uid_t uid)
{
  GPtrArray *jobs = g_ptr_array_new_with_free_func((GDestroyNotify)kcps_job_free);
  kcps__uploader_t *up = daemon->uploader;
  if (up == NULL)
    return jobs;
  g_mutex_lock(&up->lock);
  GHashTableIter iter;
  void *value;
  g_hash_table_iter_init(&iter, up->finished);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    const kcps_job_t *job = value;
    if (job->owner_uid == uid)
      g_ptr_array_add(jobs, kcps_job_copy(job));
  }
  g_mutex_unlock(&up->lock);
  return jobs;
}

/* Remembers a confirmed upload (memory only) for the job list. */
static void record_finished(kcps__uploader_t *up, const kcps_job_t *job, const char *server_job)
{
  kcps_job_t *copy = kcps_job_copy(job);
  g_free(copy->server_id);
  copy->server_id = g_strdup(server_job);
  g_mutex_lock(&up->lock);
  g_hash_table_replace(up->finished, g_strdup(job->id), copy);
  g_mutex_unlock(&up->lock);
}

/* Whether job's owner still wants the cloud spool (she may switch to local
 * while an upload runs: no further chunk goes then). */
static bool owner_wants_cloud(kcps_daemon_t *daemon, const kcps_job_t *job)
{
  return kcps__settings_effective(daemon, job->owner_uid, NULL) == KCPS_SPOOL_MODE_CLOUD;
}

gint64 kcps__upload_bytes_sent(kcps_daemon_t *daemon)
{
  kcps__uploader_t *up = daemon->uploader;
  if (up == NULL)
    return 0;
  g_mutex_lock(&up->lock);
  gint64 n = up->bytes_sent;
  g_mutex_unlock(&up->lock);
  return n;
}

char *kcps__upload_key(const char *spool_job_id)
{
  return g_strconcat("kcpsd-", spool_job_id, NULL);
}

/* --- one chunk over libcurl --------------------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *user)
{
  g_string_append_len(user, data, (gssize)(size * n));
  return size * n;
}

/* The body of one chunk, read from the spooled document as curl asks for
 * it (no copy of the chunk in memory). */
typedef struct {
  int fd;
  gint64 at;    /* next byte of the document */
  gint64 left;  /* bytes of the chunk still to send */
} chunk_src_t;

static size_t read_chunk(char *buf, size_t size, size_t n, void *user)
{
  chunk_src_t *src = user;
  size_t want = (size_t)MIN((gint64)(size * n), src->left);
  if (want == 0)
    return 0;
  ssize_t got;
  do
    got = pread(src->fd, buf, want, (off_t)src->at);
  while (got < 0 && errno == EINTR);
  if (got <= 0)
    return CURL_READFUNC_ABORT;
  src->at += got;
  src->left -= got;
  return (size_t)got;
}

/* One curl handle for all chunks of a job: the connection is kept. */
static CURL *chunk_handle(kcps_daemon_t *daemon)
{
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return NULL;
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_chunk);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (daemon->server_ca != NULL)
    curl_easy_setopt(curl, CURLOPT_CAINFO, daemon->server_ca);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)CHUNK_TIMEOUT_S);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  /* Large reads from the file and large TLS writes. */
  curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  if (daemon->uploader->max_rate > 0)
    curl_easy_setopt(curl, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)daemon->uploader->max_rate);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  return curl;
}

/* PUT len bytes of fd at offset, streamed from the file. KCPS_NET_* as
 * kcps_http_call_json says; *status the HTTP status, *response the JSON
 * answer when there is one, *sent the body bytes that went out. */
static kcps_net_status_t put_chunk(kcps_daemon_t *daemon, CURL *curl, const char *url,
                                   const char *token, int fd, gint64 len, gint64 offset,
                                   long *status, JsonNode **response, gint64 *sent,
                                   GError **error)
{
  kcps__uploader_t *up = daemon->uploader;
  g_autofree char *full = g_strdup_printf("%s?offset=%" G_GINT64_FORMAT, url, offset);
  g_autofree char *auth = g_strconcat("Authorization: Bearer ", token, NULL);
  g_autoptr(GString) answer = g_string_new(NULL);
  chunk_src_t src = {fd, offset, len};
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
  headers = curl_slist_append(headers, auth);
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, full);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_READDATA, &src);
  curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
  *status = 0;
  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(curl, CURLOPT_READDATA, NULL);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);
  curl_slist_free_all(headers);
  gint64 out = len - src.left;
  *sent += out;
  g_mutex_lock(&up->lock);
  up->bytes_sent += out;
  g_mutex_unlock(&up->lock);

  if (rc == CURLE_ABORTED_BY_CALLBACK) {
    g_set_error(error, KCPS_NET_ERROR, KCPS_NET_FATAL,
                "cannot read the spooled document at byte %" G_GINT64_FORMAT, offset);
    return KCPS_NET_FATAL;
  }
  if (rc != CURLE_OK) {
    bool tls = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
               rc == CURLE_SSL_CERTPROBLEM;
    g_set_error(error, KCPS_NET_ERROR, tls ? KCPS_NET_FATAL : KCPS_NET_RETRY, "PUT chunk: %s",
                curl_easy_strerror(rc));
    return tls ? KCPS_NET_FATAL : KCPS_NET_RETRY;
  }
  if (answer->len > 0)
    *response = json_from_string(answer->str, NULL);
  if (*status >= 200 && *status < 300)
    return KCPS_NET_OK;
  JsonObject *obj = *response != NULL && JSON_NODE_HOLDS_OBJECT(*response)
                      ? json_node_get_object(*response) : NULL;
  const char *msg = obj != NULL ? kcps_json_string(obj, "message") : NULL;
  kcps_net_status_t net = *status == 401 || *status == 403 ? KCPS_NET_AUTH
                          : *status >= 500 || *status == 429 ? KCPS_NET_RETRY
                                                             : KCPS_NET_FATAL;
  g_set_error(error, KCPS_NET_ERROR, net, "PUT chunk: HTTP %ld: %s", *status,
              msg != NULL ? msg : "no message");
  return net;
}

/* --- the upload of one job -------------------------------------------------------- */

static JsonObject *object_of(JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

static gint64 int_member(JsonObject *obj, const char *name, gint64 dflt)
{
  gint64 v = dflt;
  if (obj == NULL || !kcps_json_int(obj, name, &v))
    return dflt;
  return v;
}

static kcps_upload_result_t result_of(kcps_net_status_t net)
{
  return net == KCPS_NET_RETRY ? KCPS_UPLOAD_RETRY
         : net == KCPS_NET_AUTH ? KCPS_UPLOAD_AUTH
                                : KCPS_UPLOAD_REFUSED;
}

/* The server holds the whole document as a job with this sha256: record it
 * and delete the local copy. */
static kcps_upload_result_t finish(kcps_daemon_t *daemon, const kcps_job_t *job,
                                   const char *email, JsonObject *obj)
{
  const char *server_job = kcps_json_string(obj, "job_id");
  const char *sha = kcps_json_string(obj, "sha256");
  if (server_job == NULL || g_strcmp0(kcps_json_string(obj, "state"), "complete") != 0) {
    g_warning("job %s: the server's answer names no finished job", job->id);
    return KCPS_UPLOAD_RETRY;
  }
  if (sha == NULL || g_ascii_strcasecmp(sha, job->sha256) != 0) {
    g_warning("job %s: the server holds another document (sha256 differs); the local copy stays",
              job->id);
    return KCPS_UPLOAD_REFUSED;
  }
  g_autoptr(GError) error = NULL;
  if (!kcps_spool_set_registered(daemon->spool, job->id, server_job, email, &error)) {
    g_warning("job %s: uploaded as %s but cannot record it: %s", job->id, server_job,
              error->message);
    return KCPS_UPLOAD_RETRY;
  }
  if (!kcps_spool_set_state(daemon->spool, job->id, KCPS_JOB_STATE_DELETED, &error)) {
    g_warning("job %s: uploaded as %s but the local copy cannot be deleted: %s", job->id,
              server_job, error->message);
    return KCPS_UPLOAD_DONE;
  }
  forget_progress(daemon->uploader, job->id);
  record_finished(daemon->uploader, job, server_job);
  g_message("job %s uploaded to the cloud spool as %s (sha256 confirmed); local copy deleted",
            job->id, server_job);
  return KCPS_UPLOAD_DONE;
}

static JsonNode *create_body(const kcps_job_t *job)
{
  g_autofree char *key = kcps__upload_key(job->id);
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "idempotency_key");
  json_builder_add_string_value(b, key);
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, job->name != NULL ? job->name : "");
  json_builder_set_member_name(b, "pages");
  json_builder_add_int_value(b, MAX(job->pages, 1));
  json_builder_set_member_name(b, "size");
  json_builder_add_int_value(b, job->size);
  json_builder_set_member_name(b, "sha256");
  json_builder_add_string_value(b, job->sha256);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

static kcps_upload_result_t upload_with(kcps_daemon_t *daemon, const kcps_job_t *job,
                                        const char *email, const char *token)
{
  kcps__uploader_t *up = daemon->uploader;
  g_autoptr(GError) error = NULL;
  kcps_http_opts_t opts;
  kcps__daemon_server_opts(daemon, &opts, token, UPLOAD_TIMEOUT_S);

  /* 1. Create, or find again (same key): what does the server have? */
  g_autoptr(JsonNode) body = create_body(job);
  g_autofree char *create_url = g_strconcat(daemon->server_url, "/api/v1/uploads", NULL);
  g_autoptr(JsonNode) created = NULL;
  long status = 0;
  kcps_net_status_t net = kcps_http_call_json("POST", create_url, &opts, body, &status, &created,
                                              &error);
  if (net != KCPS_NET_OK) {
    g_info("job %s: cannot start the upload (%s)", job->id, error->message);
    if (net == KCPS_NET_FATAL)
      g_warning("job %s: the server refused the upload: %s", job->id, error->message);
    return result_of(net);
  }
  JsonObject *obj = object_of(created);
  const char *upload_id = obj != NULL ? kcps_json_string(obj, "id") : NULL;
  if (obj != NULL && g_strcmp0(kcps_json_string(obj, "state"), "complete") == 0) {
    kcps_upload_result_t r = finish(daemon, job, email, obj);
    if (r == KCPS_UPLOAD_DONE)
      kcps__events_emit(daemon, job->owner_uid, "job", job->id);
    return r;
  }
  if (upload_id == NULL) {
    g_warning("job %s: the server's upload answer has no id", job->id);
    return KCPS_UPLOAD_RETRY;
  }
  g_autofree char *id = g_strdup(upload_id);
  gint64 offset = int_member(obj, "offset", 0);
  gint64 chunk = MIN(up->chunk_size, int_member(obj, "chunk_max", up->chunk_size));
  if (chunk <= 0)
    chunk = up->chunk_size;
  g_autofree char *url = g_strdup_printf("%s/api/v1/uploads/%s", daemon->server_url, id);
  if (offset > 0)
    g_message("job %s: resuming the upload at byte %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT,
              job->id, offset, job->size);
  else
    g_info("job %s: uploading %" G_GINT64_FORMAT " bytes in chunks of %" G_GINT64_FORMAT,
           job->id, job->size, chunk);
  set_progress(up, job->id, offset, job->size);

  /* 2. The chunks from there on. */
  int fd = kcps_spool_open_document(daemon->spool, job, &error);
  if (fd < 0) {
    g_warning("job %s: cannot open the spooled document: %s", job->id, error->message);
    return KCPS_UPLOAD_REFUSED;
  }
  /* The spool leaves big documents out of the page cache: read ahead, the
   * next chunk while the current one goes out. */
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  (void)posix_fadvise(fd, (off_t)offset, (off_t)chunk, POSIX_FADV_WILLNEED);
  CURL *curl = chunk_handle(daemon);
  if (curl == NULL) {
    close(fd);
    return KCPS_UPLOAD_RETRY;
  }
  gint64 sent = 0, from = offset;
  kcps_upload_result_t result = KCPS_UPLOAD_DONE;
  int resyncs = 0;
  while (offset < job->size) {
    if (g_atomic_int_get(&daemon->stopping)) {
      result = KCPS_UPLOAD_RETRY;
      break;
    }
    /* Switched to local: stop here. What the server has stays until its
     * retention; the retry registers the job as a local one instead. */
    if (!owner_wants_cloud(daemon, job)) {
      forget_progress(up, job->id);
      g_message("job %s: the owner switched to the local spool; upload stopped at byte "
                "%" G_GINT64_FORMAT, job->id, offset);
      result = KCPS_UPLOAD_RETRY;
      break;
    }
    gint64 len = MIN(chunk, job->size - offset);
    if (offset + len < job->size)
      (void)posix_fadvise(fd, (off_t)(offset + len), (off_t)chunk, POSIX_FADV_WILLNEED);
    g_autoptr(JsonNode) answer = NULL;
    g_clear_error(&error);
    net = put_chunk(daemon, curl, url, token, fd, len, offset, &status, &answer, &sent, &error);
    JsonObject *a = object_of(answer);
    if (net == KCPS_NET_OK) {
      gint64 next = int_member(a, "offset", offset + len);
      offset = next;
      set_progress(up, job->id, offset, job->size);
      kcps__events_emit(daemon, job->owner_uid, "upload", job->id);
      continue;
    }

    /* The server has another offset than we thought (a chunk it stored whose
     * answer was lost): ask it, and go on from there, a few times. */
    if (status == 409 && resyncs++ < 3) {
      g_autoptr(JsonNode) st = NULL;
      g_autoptr(GError) e2 = NULL;
      long s2 = 0;
      if (kcps_http_call_json("GET", url, &opts, NULL, &s2, &st, &e2) == KCPS_NET_OK) {
        JsonObject *so = object_of(st);
        if (g_strcmp0(kcps_json_string(so, "state"), "complete") == 0)
          break;
        offset = int_member(so, "offset", offset);
        g_message("job %s: the server has %" G_GINT64_FORMAT " bytes; going on from there",
                  job->id, offset);
        continue;
      }
    }
    if (net == KCPS_NET_RETRY)
      g_info("job %s: upload interrupted at byte %" G_GINT64_FORMAT " (%s); will resume",
             job->id, offset, error->message);
    else
      g_warning("job %s: upload refused at byte %" G_GINT64_FORMAT ": %s", job->id, offset,
                error->message);
    result = result_of(net);
    break;
  }
  curl_easy_cleanup(curl);
  close(fd);
  /* What this attempt put on the wire (tests and the bench count what is
   * sent again after an interruption). */
  g_message("job %s: %" G_GINT64_FORMAT " chunk bytes sent from byte %" G_GINT64_FORMAT
            " (the server has %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT ")",
            job->id, sent, from, offset, job->size);
  if (result != KCPS_UPLOAD_DONE)
    return result;

  /* 3. Finish: the server checks size and sha256 and makes the job. */
  g_autofree char *complete_url = g_strconcat(url, "/complete", NULL);
  g_autoptr(JsonNode) done = NULL;
  g_clear_error(&error);
  net = kcps_http_call_json("POST", complete_url, &opts, NULL, &status, &done, &error);
  if (net != KCPS_NET_OK) {
    if (status == 422)
      g_warning("job %s: the server found another sha256 than the spool's; the upload is "
                "dropped there, the local copy stays",
                job->id);
    else
      g_info("job %s: cannot finish the upload now (%s)", job->id, error->message);
    return result_of(net);
  }
  /* The upload is confirmed here (the bench times spooled to this line). */
  g_message("job %s: the server confirmed the upload (%" G_GINT64_FORMAT " bytes)", job->id,
            job->size);
  kcps_upload_result_t r = finish(daemon, job, email, object_of(done));
  if (r == KCPS_UPLOAD_DONE)
    kcps__events_emit(daemon, job->owner_uid, "job", job->id);
  return r;
}

kcps_upload_result_t kcps__upload_job(kcps_daemon_t *daemon, const char *job_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(kcps_job_t) job = kcps_spool_get_job(daemon->spool, job_id, &error);
  if (job == NULL) {
    if (!g_error_matches(error, KCPS_SPOOL_ERROR, KCPS_SPOOL_ERROR_NOT_FOUND))
      g_warning("job %s: cannot read it from the spool: %s", job_id, error->message);
    return KCPS_UPLOAD_DONE;
  }
  if (job->state != KCPS_JOB_STATE_SPOOLED || daemon->server_url == NULL ||
      daemon->uploader == NULL)
    return KCPS_UPLOAD_DONE;
  /* The mode changed between queueing and now: the retry registers it. */
  if (!owner_wants_cloud(daemon, job))
    return KCPS_UPLOAD_RETRY;
  g_autofree char *email = NULL;
  char *token = NULL;
  if (!kcps__daemon_session_get(daemon, job->owner_uid, &email, &token))
    return KCPS_UPLOAD_DONE;
  kcps_upload_result_t result = upload_with(daemon, job, email, token);
  if (result == KCPS_UPLOAD_AUTH) {
    kcps__secret_free(kcps__daemon_session_drop(daemon, job->owner_uid, token));
    g_message("the server refused the session of uid %u; it must log in again",
              (unsigned)job->owner_uid);
    result = KCPS_UPLOAD_DONE;
  }
  kcps__secret_free(token);
  return result;
}
