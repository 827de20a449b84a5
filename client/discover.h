/* DNS-SD discovery of IPP printers (_ipp._tcp, _ipps._tcp) for direct
 * printing: a live list kept by avahi-client on its own thread, and the
 * parser of the services' TXT records (untrusted: anyone on the link can
 * announce a service). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct kcps_discovery_s kcps_discovery_t;

/* What a printer's TXT record says (PWG 5100.14 / Bonjour Printing keys);
 * strings g_free'd by kcps_discover_txt_clear, NULL when absent. Every
 * string is valid UTF-8 without control characters. */
typedef struct kcps_discover_txt_s {
  char *rp;      /* resource path without the leading '/', "" when absent */
  char *ty;      /* make and model */
  char *note;    /* location */
  char *pdl;     /* document formats, comma separated */
  char *uuid;
  int color;     /* Color=T/F: 1, 0, -1 unknown */
  int duplex;    /* Duplex=T/F: 1, 0, -1 unknown */
} kcps_discover_txt_t;

/* Parses a TXT record in DNS wire format (length-prefixed strings). False
 * when the record cannot name a printer (a malformed string, or an rp with
 * characters outside a URI path); *txt is then cleared. Keys are
 * case-insensitive, the first occurrence counts (RFC 6763 6.4). */
bool kcps_discover_parse_txt(const uint8_t *wire, size_t len, kcps_discover_txt_t *txt);
void kcps_discover_txt_clear(kcps_discover_txt_t *txt);

/* The printer URI of a resolved service: ipp:// or ipps://ADDRESS:PORT/rp.
 * address is numeric (IPv6 in brackets; a link-local one gets its zone
 * "%25ifname"). NULL when the parts do not make a valid printer URI. */
char *kcps_discover_make_uri(bool secure, const char *address, const char *ifname, int port,
                             const char *rp);

/* One discovered printer (kcps_discovery_list). */
typedef struct kcps_discovered_s {
  char *name;           /* the DNS-SD instance name */
  char *uri;            /* the URI to print to: IPPS when offered, IPv4 preferred */
  bool secure;          /* uri is ipps:// */
  char *make_and_model; /* TXT ty, or NULL */
  char *location;       /* TXT note, or NULL */
  GPtrArray *uris;      /* every URI the printer was announced with (char*) */
} kcps_discovered_t;
void kcps_discovered_free(kcps_discovered_t *printer);

/* Starts browsing; never fails: without a system bus or avahi-daemon the
 * list is empty and kcps_discovery_available says false (retried later). */
kcps_discovery_t *kcps_discovery_new(void (*notify)(void *data), void *data);
/* notify (may be NULL; given at the start so no change is missed), or
 * what this setter gives later (fn NULL: no more calls): fn(data) is
 * called on avahi's thread, without any lock of ours held, whenever the
 * list or its availability may have changed (a printer resolved, changed
 * or went away; avahi-daemon came or went). Changes come in bursts (one a
 * service and address family): the caller coalesces. */
void kcps_discovery_set_notify(kcps_discovery_t *discovery, void (*fn)(void *data), void *data);
/* Stops browsing and frees. NULL is a no-op. */
void kcps_discovery_free(kcps_discovery_t *discovery);
/* Waits (at most timeout_ms) until the first browse round is complete:
 * avahi said "all for now" for both types and every service found then is
 * resolved or failed. Returns whether discovery is available. */
bool kcps_discovery_wait(kcps_discovery_t *discovery, int timeout_ms);
/* Whether avahi-daemon answers; *why (g_free, may be NULL) says why not. */
bool kcps_discovery_available(kcps_discovery_t *discovery, char **why);
/* The printers found now, sorted by name (kcps_discovered_t*, the array
 * frees them). */
GPtrArray *kcps_discovery_list(kcps_discovery_t *discovery);

G_END_DECLS
