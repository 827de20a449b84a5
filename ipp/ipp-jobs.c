/* Jobs made by Create-Job: they live in memory (pending, job-incoming)
 * until Send-Document spools their one document; a failed document, a
 * cancel, Close-Job without a document or the time-out ends them (aborted
 * or canceled, still in memory for a while so the sender can read why).
 * Create-Job, Send-Document, Close-Job, Cancel-My-Jobs and the in-memory
 * side of Get-Jobs, Get-Job-Attributes and Cancel-Job. */
#include "ipp/ipp-private.h"

#include <string.h>

#include "platform/platform.h"

#define ENDED_KEEP_S 3600        /* an ended job stays visible this long */
#define MAX_MEM_JOBS 4096        /* all jobs not in the spool, any owner */
#define MAX_PENDING_PER_OWNER 64 /* created jobs of one owner still waiting */

static void mem_job_free(gpointer data) {
  kcps__ipp_mem_job_t *job = data;
  g_free(job->owner_name);
  g_free(job->name);
  g_free(job->message);
  g_free(job);
}

void kcps__ipp_jobs_init(kcps_ipp_server_t *server) {
  server->mem_jobs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, mem_job_free);
  server->incoming_timeout_us = (gint64)KCPS__IPP_INCOMING_TIMEOUT_S * G_USEC_PER_SEC;
}

void kcps__ipp_jobs_free(kcps_ipp_server_t *server) {
  g_clear_pointer(&server->mem_jobs, g_hash_table_unref);
}

static void end_job_locked(kcps__ipp_mem_job_t *job, ipp_jstate_t state, const char *reason,
                           const char *message) {
  job->state = state;
  job->reason = reason;
  g_free(job->message);
  job->message = g_strdup(message);
  job->ended = g_get_real_time() / G_USEC_PER_SEC;
}

/* Aborts created jobs whose document did not come in time and forgets
 * ended ones after ENDED_KEEP_S. */
static void sweep_locked(kcps_ipp_server_t *server) {
  gint64 mono = g_get_monotonic_time();
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, server->mem_jobs);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    kcps__ipp_mem_job_t *job = value;
    if (job->state == IPP_JSTATE_PENDING && !job->receiving &&
        mono - job->created_mono >= server->incoming_timeout_us) {
      g_info("ipp: job %d of uid %u got no document in time; aborted", job->ipp_id,
             (unsigned)job->owner_uid);
      g_autofree char *message = g_strdup_printf(
        "No document arrived within %d seconds of Create-Job: the job was aborted.",
        (int)(server->incoming_timeout_us / G_USEC_PER_SEC));
      end_job_locked(job, IPP_JSTATE_ABORTED, "aborted-by-system", message);
    } else if (job->state != IPP_JSTATE_PENDING && now - job->ended >= ENDED_KEEP_S) {
      g_hash_table_iter_remove(&iter);
    }
  }
}

/* The job ipp_id of owner not in the spool, or NULL (swept first). */
static kcps__ipp_mem_job_t *find_locked(kcps_ipp_server_t *server, uid_t owner, int ipp_id) {
  sweep_locked(server);
  kcps__ipp_mem_job_t *job = g_hash_table_lookup(server->mem_jobs, GINT_TO_POINTER(ipp_id));
  return job != NULL && job->owner_uid == owner ? job : NULL;
}

static const char *state_word(ipp_jstate_t state) {
  return state == IPP_JSTATE_CANCELED ? "canceled" : "aborted";
}

static int compare_names(void *a, void *b, void *data) {
  (void)data;
  return strcmp(a, b);
}

/* The answer to a job-creation or job-state request about a job in memory. */
static void respond_mem_job_locked(kcps_ipp_server_t *server, const kcps__ipp_mem_job_t *job,
                                   ipp_t *response) {
  static const char *const names[] = {"job-id", "job-uri", "job-state", "job-state-reasons",
                                      "job-state-message"};
  cups_array_t *ra = cupsArrayNew(compare_names, NULL);
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
    cupsArrayAdd(ra, (void *)names[i]);
  kcps__ipp_copy_mem_job_attrs_locked(server, job, ra, response);
  cupsArrayDelete(ra);
}

/* ---- Create-Job --------------------------------------------------------- */

void kcps__ipp_create_job(kcps__ipp_client_t *client) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *request = client->request, *response = client->response;
  const char *format = NULL;
  uid_t owner;
  g_autofree char *owner_name = NULL;
  if (!kcps__ipp_check_job_request(request, response, &format) ||
      !kcps__ipp_resolve_owner(client, &owner, &owner_name))
    return;
  ipp_attribute_t *attr = ippFindAttribute(request, "job-name", IPP_TAG_ZERO);
  g_autofree char *job_name = kcps__ipp_clean_job_name(
    attr != NULL ? ippGetString(attr, 0, NULL) : NULL,
    kcps_platform_is_print_system_uid(client->peer_uid));

  g_mutex_lock(&server->lock);
  sweep_locked(server);
  int pending = 0;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, server->mem_jobs);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    const kcps__ipp_mem_job_t *other = value;
    pending += other->owner_uid == owner && other->state == IPP_JSTATE_PENDING;
  }
  if (pending >= MAX_PENDING_PER_OWNER || g_hash_table_size(server->mem_jobs) >= MAX_MEM_JOBS) {
    g_mutex_unlock(&server->lock);
    g_info("ipp: %s: Create-Job of uid %u refused: %d jobs wait for a document", client->peer,
           (unsigned)owner, pending);
    kcps__ipp_respond(response, IPP_STATUS_ERROR_TOO_MANY_JOBS,
                      "Too many jobs are waiting for their document: send their documents or "
                      "cancel them first.");
    return;
  }

  kcps__ipp_mem_job_t *job = g_new0(kcps__ipp_mem_job_t, 1);
  /* Its job-id: the next one, with no spool job behind it yet. */
  g_ptr_array_add(server->spool_id_of, g_strdup(""));
  job->ipp_id = (int)server->spool_id_of->len;
  job->owner_uid = owner;
  job->owner_name = g_steal_pointer(&owner_name);
  job->name = g_steal_pointer(&job_name);
  g_autofree char *uuid = g_uuid_string_random();
  g_snprintf(job->uuid, sizeof job->uuid, "urn:uuid:%s", uuid);
  job->state = IPP_JSTATE_PENDING;
  job->reason = "job-incoming";
  job->message = g_strdup("Waiting for the document (Send-Document).");
  job->created = g_get_real_time() / G_USEC_PER_SEC;
  job->created_mono = g_get_monotonic_time();
  g_hash_table_insert(server->mem_jobs, GINT_TO_POINTER(job->ipp_id), job);
  g_info("ipp: %s: job %d created for uid %u", client->peer, job->ipp_id, (unsigned)owner);
  kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
  respond_mem_job_locked(server, job, response);
  g_mutex_unlock(&server->lock);
}

/* ---- Send-Document ------------------------------------------------------ */

/* Says why ipp_id takes no document when it is not a pending job of owner:
 * another's or an unknown job is not found, a spooled one has its document,
 * an ended one is over. */
static void respond_no_document_locked(kcps__ipp_client_t *client, uid_t owner, int ipp_id,
                                       const kcps__ipp_mem_job_t *job) {
  ipp_t *response = client->response;
  if (job != NULL && job->receiving) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_POSSIBLE,
                      "Job #%d is receiving its document already.", ipp_id);
    return;
  }
  if (job != NULL) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_POSSIBLE, "Job #%d was %s: %s", ipp_id,
                      state_word(job->state), job->message);
    return;
  }
  /* A spooled job of the caller: its one document is in. */
  g_autofree char *spool_id =
    ipp_id >= 1 && (guint)ipp_id <= client->server->spool_id_of->len
      ? g_strdup(g_ptr_array_index(client->server->spool_id_of, (guint)ipp_id - 1))
      : NULL;
  kcps_job_t *spooled = spool_id != NULL && *spool_id != '\0'
                          ? kcps_spool_get_job(client->server->spool, spool_id, NULL)
                          : NULL;
  if (spooled != NULL && spooled->owner_uid == owner)
    kcps__ipp_respond(response, IPP_STATUS_ERROR_MULTIPLE_JOBS_NOT_SUPPORTED,
                      "Job #%d has its document already: this printer takes one document "
                      "per job.",
                      ipp_id);
  else
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_FOUND, "Job #%d does not exist.", ipp_id);
  kcps_job_free(spooled);
}

void kcps__ipp_send_document(kcps__ipp_client_t *client) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *request = client->request, *response = client->response;
  const char *format = NULL;
  uid_t owner;
  g_autofree char *owner_name = NULL;
  int ipp_id;
  if (!kcps__ipp_check_job_request(request, response, &format) ||
      !kcps__ipp_resolve_owner(client, &owner, &owner_name) ||
      !kcps__ipp_request_job_id(client, &ipp_id))
    return;

  /* One document a job: it must say it is the last. */
  ipp_attribute_t *last = ippFindAttribute(request, "last-document", IPP_TAG_ZERO);
  if (last == NULL) {
    kcps__ipp_respond(response, IPP_STATUS_ERROR_BAD_REQUEST,
                      "Send-Document needs the last-document attribute.");
    return;
  }
  if (ippGetValueTag(last) != IPP_TAG_BOOLEAN || ippGetCount(last) != 1 ||
      ippGetGroupTag(last) != IPP_TAG_OPERATION) {
    kcps__ipp_respond_unsupported(response, last, IPP_STATUS_ERROR_BAD_REQUEST,
                                  "last-document must be one boolean.");
    return;
  }
  if (!ippGetBoolean(last, 0)) {
    kcps__ipp_respond_unsupported(response, last, IPP_STATUS_ERROR_MULTIPLE_JOBS_NOT_SUPPORTED,
                                  "This printer takes one document per job: send it with "
                                  "last-document true.");
    return;
  }

  g_mutex_lock(&server->lock);
  kcps__ipp_mem_job_t *job = find_locked(server, owner, ipp_id);
  if (job == NULL || job->state != IPP_JSTATE_PENDING || job->receiving) {
    respond_no_document_locked(client, owner, ipp_id, job);
    g_mutex_unlock(&server->lock);
    return;
  }
  job->receiving = true;
  job->reason = "job-incoming";
  g_autofree char *job_name = g_strdup(job->name);
  g_free(owner_name);
  owner_name = g_strdup(job->owner_name);
  g_mutex_unlock(&server->lock);

  const char *reason = NULL;
  kcps_job_t *spooled =
    kcps__ipp_receive_document(client, owner, owner_name, job_name, format, &reason);

  g_mutex_lock(&server->lock);
  job = g_hash_table_lookup(server->mem_jobs, GINT_TO_POINTER(ipp_id));
  g_assert(job != NULL && job->receiving); /* nothing removes a receiving job */
  job->receiving = false;
  if (spooled == NULL) {
    /* The job ends here: why is in its job-state-message. */
    ipp_attribute_t *msg = ippFindAttribute(response, "status-message", IPP_TAG_TEXT);
    end_job_locked(job, IPP_JSTATE_ABORTED, reason,
                   msg != NULL ? ippGetString(msg, 0, NULL) : "The document was refused.");
    g_mutex_unlock(&server->lock);
    return;
  }
  /* The spool job takes over the job-id. */
  g_hash_table_remove(server->mem_jobs, GINT_TO_POINTER(ipp_id));
  g_free(g_ptr_array_index(server->spool_id_of, (guint)ipp_id - 1));
  g_ptr_array_index(server->spool_id_of, (guint)ipp_id - 1) = g_strdup(spooled->id);
  g_hash_table_insert(server->ipp_id_of, g_strdup(spooled->id), GINT_TO_POINTER(ipp_id));
  g_mutex_unlock(&server->lock);

  g_info("ipp: %s: job %d (%s) spooled for uid %u: %d pages, %" G_GINT64_FORMAT " bytes",
         client->peer, ipp_id, spooled->id, (unsigned)owner, spooled->pages, spooled->size);
  if (server->job_cb != NULL)
    server->job_cb(spooled, server->job_cb_data);
  kcps__ipp_respond_spooled(server, spooled, ipp_id, response);
  kcps_job_free(spooled);
}

/* ---- Close-Job, Cancel-Job, Cancel-My-Jobs ----------------------------- */

/* Whether owner has the spooled job ipp_id. */
static bool owns_spooled(kcps_ipp_server_t *server, uid_t owner, int ipp_id) {
  g_autofree char *spool_id = kcps__ipp_spool_id(server, ipp_id);
  if (spool_id == NULL || *spool_id == '\0')
    return false;
  kcps_job_t *job = kcps_spool_get_job(server->spool, spool_id, NULL);
  bool owned = job != NULL && job->owner_uid == owner;
  kcps_job_free(job);
  return owned;
}

void kcps__ipp_close_job(kcps__ipp_client_t *client) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *response = client->response;
  uid_t owner;
  g_autofree char *owner_name = NULL;
  int ipp_id;
  if (!kcps__ipp_resolve_owner(client, &owner, &owner_name) ||
      !kcps__ipp_request_job_id(client, &ipp_id))
    return;

  g_mutex_lock(&server->lock);
  kcps__ipp_mem_job_t *job = find_locked(server, owner, ipp_id);
  if (job != NULL) {
    if (job->receiving) {
      kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_POSSIBLE,
                        "Job #%d is receiving its document.", ipp_id);
    } else if (job->state != IPP_JSTATE_PENDING) {
      kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_POSSIBLE, "Job #%d was %s already.",
                        ipp_id, state_word(job->state));
    } else {
      /* Closed before any document: there is nothing to keep. */
      end_job_locked(job, IPP_JSTATE_ABORTED, "aborted-by-system",
                     "The job was closed without a document.");
      g_info("ipp: %s: job %d closed without a document; aborted", client->peer, ipp_id);
      kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
    }
    g_mutex_unlock(&server->lock);
    return;
  }
  g_mutex_unlock(&server->lock);

  /* A spooled job has its one document: closing it changes nothing. */
  if (owns_spooled(server, owner, ipp_id))
    kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
  else
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_FOUND, "Job #%d does not exist.", ipp_id);
}

bool kcps__ipp_mem_job_cancel(kcps__ipp_client_t *client, uid_t owner, int ipp_id) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *response = client->response;
  g_mutex_lock(&server->lock);
  kcps__ipp_mem_job_t *job = find_locked(server, owner, ipp_id);
  if (job == NULL) {
    g_mutex_unlock(&server->lock);
    return false;
  }
  if (job->receiving)
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_POSSIBLE,
                      "Job #%d is receiving its document: it cannot be canceled now.", ipp_id);
  else if (job->state != IPP_JSTATE_PENDING)
    kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_POSSIBLE, "Job #%d was %s already.",
                      ipp_id, state_word(job->state));
  else {
    end_job_locked(job, IPP_JSTATE_CANCELED, "job-canceled-by-user",
                   "Canceled before its document arrived.");
    g_info("ipp: %s: job %d canceled by uid %u", client->peer, ipp_id, (unsigned)owner);
    kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
  }
  g_mutex_unlock(&server->lock);
  return true;
}

void kcps__ipp_cancel_my_jobs(kcps__ipp_client_t *client) {
  kcps_ipp_server_t *server = client->server;
  ipp_t *request = client->request, *response = client->response;
  uid_t owner;
  g_autofree char *owner_name = NULL;
  if (!kcps__ipp_resolve_owner(client, &owner, &owner_name))
    return;
  ipp_attribute_t *job_ids = ippFindAttribute(request, "job-ids", IPP_TAG_ZERO);
  if (job_ids != NULL && (ippGetValueTag(job_ids) != IPP_TAG_INTEGER ||
                          ippGetGroupTag(job_ids) != IPP_TAG_OPERATION)) {
    kcps__ipp_respond_unsupported(response, job_ids, IPP_STATUS_ERROR_BAD_REQUEST,
                                  "job-ids must be integers.");
    return;
  }

  /* With job-ids: each must be the caller's and still cancelable, else
   * nothing is canceled (PWG 5100.11). Spooled jobs are completed. */
  if (job_ids != NULL) {
    for (int i = 0; i < ippGetCount(job_ids); i++) {
      int id = ippGetInteger(job_ids, i);
      g_mutex_lock(&server->lock);
      const kcps__ipp_mem_job_t *job = find_locked(server, owner, id);
      bool cancelable = job != NULL && job->state == IPP_JSTATE_PENDING && !job->receiving;
      bool known = job != NULL;
      g_mutex_unlock(&server->lock);
      if (cancelable)
        continue;
      if (known || owns_spooled(server, owner, id))
        kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_POSSIBLE,
                          "Job #%d cannot be canceled: it is %s.", id,
                          known ? "not waiting for its document any more"
                                : "completed (held in the KCPS spool)");
      else
        kcps__ipp_respond(response, IPP_STATUS_ERROR_NOT_FOUND, "Job #%d does not exist.", id);
      return;
    }
  }

  g_mutex_lock(&server->lock);
  sweep_locked(server);
  int canceled = 0;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, server->mem_jobs);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    kcps__ipp_mem_job_t *job = value;
    if (job->owner_uid != owner || job->state != IPP_JSTATE_PENDING || job->receiving ||
        (job_ids != NULL && !ippContainsInteger(job_ids, job->ipp_id)))
      continue;
    end_job_locked(job, IPP_JSTATE_CANCELED, "job-canceled-by-user",
                   "Canceled before its document arrived.");
    canceled++;
  }
  g_mutex_unlock(&server->lock);
  g_info("ipp: %s: Cancel-My-Jobs of uid %u canceled %d", client->peer, (unsigned)owner,
         canceled);
  kcps__ipp_respond(response, IPP_STATUS_OK, NULL);
}

/* ---- Get-Job-Attributes, Get-Jobs --------------------------------------- */

bool kcps__ipp_mem_job_attributes(kcps__ipp_client_t *client, uid_t owner, int ipp_id) {
  kcps_ipp_server_t *server = client->server;
  g_mutex_lock(&server->lock);
  const kcps__ipp_mem_job_t *job = find_locked(server, owner, ipp_id);
  if (job != NULL) {
    kcps__ipp_respond(client->response, IPP_STATUS_OK, NULL);
    cups_array_t *ra = kcps__ipp_requested(client->request);
    kcps__ipp_copy_mem_job_attrs_locked(server, job, ra, client->response);
    cupsArrayDelete(ra);
  }
  g_mutex_unlock(&server->lock);
  return job != NULL;
}

static gint compare_ids_desc(gconstpointer a, gconstpointer b) {
  const kcps__ipp_mem_job_t *ja = *(kcps__ipp_mem_job_t *const *)a;
  const kcps__ipp_mem_job_t *jb = *(kcps__ipp_mem_job_t *const *)b;
  return (jb->ipp_id > ja->ipp_id) - (jb->ipp_id < ja->ipp_id);
}

void kcps__ipp_list_mem_jobs(kcps__ipp_client_t *client, uid_t owner, bool not_completed,
                             bool completed, ipp_attribute_t *job_ids, cups_array_t *ra,
                             int limit, int *count) {
  kcps_ipp_server_t *server = client->server;
  g_mutex_lock(&server->lock);
  sweep_locked(server);
  GPtrArray *mine = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init(&iter, server->mem_jobs);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    kcps__ipp_mem_job_t *job = value;
    bool pending = job->state == IPP_JSTATE_PENDING;
    if (job->owner_uid == owner && (pending ? not_completed : completed) &&
        (job_ids == NULL || ippContainsInteger(job_ids, job->ipp_id)))
      g_ptr_array_add(mine, job);
  }
  g_ptr_array_sort(mine, compare_ids_desc);
  for (guint i = 0; i < mine->len && *count < limit; i++) {
    if ((*count)++ > 0)
      ippAddSeparator(client->response);
    kcps__ipp_copy_mem_job_attrs_locked(server, g_ptr_array_index(mine, i), ra,
                                        client->response);
  }
  g_mutex_unlock(&server->lock);
  g_ptr_array_unref(mine);
}
