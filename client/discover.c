/* DNS-SD discovery of IPP printers with avahi-client on its threaded poll:
 * browsers for _ipp._tcp and _ipps._tcp, one resolver a service kept
 * while the service lives (it reports TXT and address changes), and the
 * list of what is resolved now, read by request threads under a lock. */
#define G_LOG_DOMAIN "kcpsd"

#include "client/discover.h"

#include <net/if.h>
#include <string.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-common/error.h>
#include <avahi-common/thread-watch.h>

#define RETRY_US (2 * G_USEC_PER_SEC) /* a new avahi client at most this often */

typedef struct entry_s {
  kcps_discovery_t *d;
  char *name;
  bool secure;
  AvahiServiceResolver *resolver; /* owned by the poll thread */
  bool settled;                   /* resolved or failed once */
  char *uri;                      /* NULL until resolved (or when unusable) */
  bool ipv4;
  kcps_discover_txt_t txt;
} entry_t;

struct kcps_discovery_s {
  GMutex lock;            /* guards what follows but poll and client */
  GCond changed;
  GHashTable *entries;    /* "iface|proto|type|name|domain" -> entry_t* */
  int all_for_now;        /* browsers that finished their first round (0..2) */
  bool running;           /* the client is connected to avahi-daemon */
  bool failed;            /* the client failed: make a new one (retry) */
  char *why;              /* why not running */
  gint64 last_try;        /* monotonic us of the last avahi_client_new */

  void (*notify)(void *data); /* kcps_discovery_set_notify */
  void *notify_data;

  AvahiThreadedPoll *poll;
  AvahiClient *client;    /* under avahi_threaded_poll_lock */
  AvahiServiceBrowser *browsers[2];
};

static void entry_free(void *data)
{
  entry_t *e = data;
  if (e->resolver != NULL)
    avahi_service_resolver_free(e->resolver);
  g_free(e->name);
  g_free(e->uri);
  kcps_discover_txt_clear(&e->txt);
  g_free(e);
}

void kcps_discovered_free(kcps_discovered_t *printer)
{
  if (printer == NULL)
    return;
  g_free(printer->name);
  g_free(printer->uri);
  g_free(printer->make_and_model);
  g_free(printer->location);
  if (printer->uris != NULL)
    g_ptr_array_unref(printer->uris);
  g_free(printer);
}

/* Tells the owner the list may have changed (d->lock not held). */
static void notify(kcps_discovery_t *d)
{
  g_mutex_lock(&d->lock);
  void (*fn)(void *) = d->notify;
  void *data = d->notify_data;
  g_mutex_unlock(&d->lock);
  if (fn != NULL)
    fn(data);
}

void kcps_discovery_set_notify(kcps_discovery_t *d, void (*fn)(void *data), void *data)
{
  if (d == NULL)
    return;
  g_mutex_lock(&d->lock);
  d->notify = fn;
  d->notify_data = data;
  g_mutex_unlock(&d->lock);
}

/* Forgets the browsers and every service (poll thread or poll lock held). */
static void drop_browsing(kcps_discovery_t *d)
{
  for (int i = 0; i < 2; i++) {
    if (d->browsers[i] != NULL)
      avahi_service_browser_free(d->browsers[i]);
    d->browsers[i] = NULL;
  }
  g_mutex_lock(&d->lock);
  bool had = g_hash_table_size(d->entries) > 0;
  g_hash_table_remove_all(d->entries);
  d->all_for_now = 0;
  g_cond_broadcast(&d->changed);
  g_mutex_unlock(&d->lock);
  if (had)
    notify(d);
}

static void set_state(kcps_discovery_t *d, bool running, bool failed, const char *why)
{
  g_mutex_lock(&d->lock);
  bool flipped = d->running != running;
  d->running = running;
  d->failed = failed;
  g_free(d->why);
  d->why = g_strdup(why);
  g_cond_broadcast(&d->changed);
  g_mutex_unlock(&d->lock);
  if (flipped)
    notify(d);
}

static void resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
                       AvahiResolverEvent event, const char *name, const char *type,
                       const char *domain, const char *host_name, const AvahiAddress *address,
                       uint16_t port, AvahiStringList *txt_list, AvahiLookupResultFlags flags,
                       void *data)
{
  (void)r;
  (void)proto;
  (void)name;
  (void)type;
  (void)domain;
  (void)host_name;
  (void)flags;
  entry_t *e = data;
  kcps_discover_txt_t txt;
  char *uri = NULL;
  bool ipv4 = false;
  if (event == AVAHI_RESOLVER_FOUND && address != NULL) {
    /* The TXT strings in wire format, for the one parser of them. */
    g_autoptr(GByteArray) wire = g_byte_array_new();
    for (AvahiStringList *s = txt_list; s != NULL; s = avahi_string_list_get_next(s)) {
      guint8 n = (guint8)MIN(s->size, 255);
      g_byte_array_append(wire, &n, 1);
      g_byte_array_append(wire, s->text, n);
    }
    if (kcps_discover_parse_txt(wire->data, wire->len, &txt)) {
      char addr[AVAHI_ADDRESS_STR_MAX] = "";
      char ifname[IF_NAMESIZE + 1] = "";
      avahi_address_snprint(addr, sizeof(addr), address);
      if (iface >= 0)
        if_indextoname((unsigned)iface, ifname);
      ipv4 = address->proto == AVAHI_PROTO_INET;
      uri = kcps_discover_make_uri(e->secure, addr, ifname, port, txt.rp);
      if (uri == NULL)
        kcps_discover_txt_clear(&txt);
    }
    if (uri == NULL)
      g_debug("discovery: %s (%s) announces no usable printer URI", e->name, e->secure ? "ipps" : "ipp");
  }
  /* e belongs to the hash table, changed only on this thread: the lock
   * keeps readers out while it changes. */
  kcps_discovery_t *d = e->d;
  g_mutex_lock(&d->lock);
  g_free(e->uri);
  kcps_discover_txt_clear(&e->txt);
  e->uri = uri;
  e->ipv4 = ipv4;
  if (uri != NULL)
    e->txt = txt;
  e->settled = true;
  g_cond_broadcast(&d->changed);
  g_mutex_unlock(&d->lock);
  notify(d);
}

static void browse_cb(AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
                      AvahiBrowserEvent event, const char *name, const char *type,
                      const char *domain, AvahiLookupResultFlags flags, void *data)
{
  (void)flags;
  kcps_discovery_t *d = data;
  g_autofree char *key = g_strdup_printf("%d|%d|%s|%s|%s", (int)iface, (int)proto,
                                         type != NULL ? type : "", name != NULL ? name : "",
                                         domain != NULL ? domain : "");
  switch (event) {
  case AVAHI_BROWSER_NEW: {
    g_mutex_lock(&d->lock);
    bool known = g_hash_table_contains(d->entries, key);
    g_mutex_unlock(&d->lock);
    if (known || name == NULL || !g_utf8_validate(name, -1, NULL))
      break;
    entry_t *e = g_new0(entry_t, 1);
    e->d = d;
    e->name = g_strdup(name);
    e->secure = type != NULL && strcmp(type, "_ipps._tcp") == 0;
    e->txt.color = e->txt.duplex = -1;
    g_mutex_lock(&d->lock);
    g_hash_table_insert(d->entries, g_steal_pointer(&key), e);
    g_mutex_unlock(&d->lock);
    /* The resolver may call back at once: e is in the table first. */
    AvahiServiceResolver *r = avahi_service_resolver_new(
        avahi_service_browser_get_client(b), iface, proto, name, type, domain,
        AVAHI_PROTO_UNSPEC, 0, resolve_cb, e);
    g_mutex_lock(&d->lock);
    e->resolver = r;
    if (r == NULL)
      e->settled = true;
    g_cond_broadcast(&d->changed);
    g_mutex_unlock(&d->lock);
    break;
  }
  case AVAHI_BROWSER_REMOVE: {
    g_mutex_lock(&d->lock);
    entry_t *gone = g_hash_table_lookup(d->entries, key);
    bool listed = gone != NULL && gone->uri != NULL;
    g_hash_table_remove(d->entries, key);
    g_cond_broadcast(&d->changed);
    g_mutex_unlock(&d->lock);
    if (listed)
      notify(d);
    break;
  }
  case AVAHI_BROWSER_ALL_FOR_NOW:
    g_mutex_lock(&d->lock);
    if (d->all_for_now < 2)
      d->all_for_now++;
    g_cond_broadcast(&d->changed);
    g_mutex_unlock(&d->lock);
    break;
  case AVAHI_BROWSER_FAILURE:
    g_message("discovery: browsing %s failed: %s", type != NULL ? type : "?",
              avahi_strerror(avahi_client_errno(avahi_service_browser_get_client(b))));
    g_mutex_lock(&d->lock);
    if (d->all_for_now < 2)
      d->all_for_now++;
    g_cond_broadcast(&d->changed);
    g_mutex_unlock(&d->lock);
    break;
  case AVAHI_BROWSER_CACHE_EXHAUSTED:
    break;
  }
}

static void client_cb(AvahiClient *c, AvahiClientState state, void *data)
{
  kcps_discovery_t *d = data;
  switch (state) {
  case AVAHI_CLIENT_S_RUNNING:
    if (d->browsers[0] == NULL) {
      d->browsers[0] = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                 "_ipp._tcp", NULL, 0, browse_cb, d);
      d->browsers[1] = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                 "_ipps._tcp", NULL, 0, browse_cb, d);
      if (d->browsers[0] == NULL || d->browsers[1] == NULL) {
        g_message("discovery: cannot browse: %s", avahi_strerror(avahi_client_errno(c)));
        drop_browsing(d);
        set_state(d, false, true, avahi_strerror(avahi_client_errno(c)));
        break;
      }
      g_message("discovery: browsing _ipp._tcp and _ipps._tcp");
    }
    set_state(d, true, false, NULL);
    break;
  case AVAHI_CLIENT_S_REGISTERING:
  case AVAHI_CLIENT_S_COLLISION:
    break;
  case AVAHI_CLIENT_CONNECTING:
    drop_browsing(d);
    set_state(d, false, false, "avahi-daemon is not running");
    break;
  case AVAHI_CLIENT_FAILURE:
    drop_browsing(d);
    set_state(d, false, true, avahi_strerror(avahi_client_errno(c)));
    break;
  }
}

/* Makes a new client when there is none or the last one failed, at most
 * every RETRY_US. Not on the poll thread. */
static void ensure_client(kcps_discovery_t *d)
{
  g_mutex_lock(&d->lock);
  gint64 now = g_get_monotonic_time();
  bool go = d->failed && (d->last_try == 0 || now - d->last_try >= RETRY_US);
  if (go)
    d->last_try = now;
  g_mutex_unlock(&d->lock);
  if (!go || d->poll == NULL)
    return;
  avahi_threaded_poll_lock(d->poll);
  drop_browsing(d);
  if (d->client != NULL)
    avahi_client_free(d->client);
  set_state(d, false, false, "connecting to avahi-daemon");
  int err = 0;
  d->client = avahi_client_new(avahi_threaded_poll_get(d->poll), AVAHI_CLIENT_NO_FAIL,
                               client_cb, d, &err);
  if (d->client == NULL)
    set_state(d, false, true, avahi_strerror(err));
  avahi_threaded_poll_unlock(d->poll);
}

kcps_discovery_t *kcps_discovery_new(void (*notify)(void *data), void *data)
{
  kcps_discovery_t *d = g_new0(kcps_discovery_t, 1);
  d->notify = notify;
  d->notify_data = data;
  g_mutex_init(&d->lock);
  g_cond_init(&d->changed);
  d->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
  d->failed = true;
  d->why = g_strdup("not started");
  d->poll = avahi_threaded_poll_new();
  if (d->poll == NULL || avahi_threaded_poll_start(d->poll) < 0) {
    if (d->poll != NULL)
      avahi_threaded_poll_free(d->poll);
    d->poll = NULL;
    g_free(d->why);
    d->why = g_strdup("cannot start the avahi poll thread");
    return d;
  }
  ensure_client(d);
  return d;
}

void kcps_discovery_free(kcps_discovery_t *d)
{
  if (d == NULL)
    return;
  kcps_discovery_set_notify(d, NULL, NULL);
  if (d->poll != NULL) {
    avahi_threaded_poll_stop(d->poll);
    drop_browsing(d);
    if (d->client != NULL)
      avahi_client_free(d->client);
    avahi_threaded_poll_free(d->poll);
  }
  g_hash_table_destroy(d->entries);
  g_free(d->why);
  g_cond_clear(&d->changed);
  g_mutex_clear(&d->lock);
  g_free(d);
}

/* Whether the first round is complete (lock held). */
static bool settled_locked(kcps_discovery_t *d)
{
  if (!d->running)
    return true;
  if (d->all_for_now < 2)
    return false;
  GHashTableIter it;
  void *value;
  g_hash_table_iter_init(&it, d->entries);
  while (g_hash_table_iter_next(&it, NULL, &value))
    if (!((entry_t *)value)->settled)
      return false;
  return true;
}

bool kcps_discovery_wait(kcps_discovery_t *d, int timeout_ms)
{
  ensure_client(d);
  gint64 until = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  g_mutex_lock(&d->lock);
  /* A client just made may still be connecting: give it the time too. */
  while ((!settled_locked(d) || (!d->running && !d->failed && d->why != NULL
                                 && strcmp(d->why, "connecting to avahi-daemon") == 0))
         && g_cond_wait_until(&d->changed, &d->lock, until))
    ;
  bool running = d->running;
  g_mutex_unlock(&d->lock);
  return running;
}

bool kcps_discovery_available(kcps_discovery_t *d, char **why)
{
  ensure_client(d);
  g_mutex_lock(&d->lock);
  bool running = d->running;
  if (why != NULL)
    *why = running ? NULL : g_strdup(d->why != NULL ? d->why : "unknown");
  g_mutex_unlock(&d->lock);
  return running;
}

static int by_name(const void *a, const void *b)
{
  const kcps_discovered_t *pa = *(kcps_discovered_t *const *)a;
  const kcps_discovered_t *pb = *(kcps_discovered_t *const *)b;
  return g_utf8_collate(pa->name, pb->name);
}

static int by_string(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *kcps_discovery_list(kcps_discovery_t *d)
{
  GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)kcps_discovered_free);
  g_autoptr(GHashTable) by = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GHashTable) score = g_hash_table_new(g_direct_hash, g_direct_equal);
  g_mutex_lock(&d->lock);
  GHashTableIter it;
  void *value;
  g_hash_table_iter_init(&it, d->entries);
  while (g_hash_table_iter_next(&it, NULL, &value)) {
    entry_t *e = value;
    if (e->uri == NULL)
      continue;
    /* One printer a DNS-SD name: its IPPS service, IPv4, preferred. */
    kcps_discovered_t *p = g_hash_table_lookup(by, e->name);
    if (p == NULL) {
      p = g_new0(kcps_discovered_t, 1);
      p->name = g_strdup(e->name);
      p->uris = g_ptr_array_new_with_free_func(g_free);
      g_hash_table_insert(by, p->name, p);
      g_ptr_array_add(list, p);
    }
    int s = (e->secure ? 2 : 0) + (e->ipv4 ? 1 : 0) + 1;
    if (s > GPOINTER_TO_INT(g_hash_table_lookup(score, p))) {
      g_hash_table_insert(score, p, GINT_TO_POINTER(s));
      g_free(p->uri);
      p->uri = g_strdup(e->uri);
      p->secure = e->secure;
    }
    if (p->make_and_model == NULL && e->txt.ty != NULL)
      p->make_and_model = g_strdup(e->txt.ty);
    if (p->location == NULL && e->txt.note != NULL)
      p->location = g_strdup(e->txt.note);
    bool have = false;
    for (guint i = 0; i < p->uris->len && !have; i++)
      have = strcmp(g_ptr_array_index(p->uris, i), e->uri) == 0;
    if (!have)
      g_ptr_array_add(p->uris, g_strdup(e->uri));
  }
  g_mutex_unlock(&d->lock);
  for (guint i = 0; i < list->len; i++) {
    kcps_discovered_t *p = g_ptr_array_index(list, i);
    g_ptr_array_sort(p->uris, by_string);
  }
  g_ptr_array_sort(list, by_name);
  return list;
}
