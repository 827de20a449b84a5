/* Outgoing mail of kcps-server (one-time codes): one message to one
 * recipient through the configured relay (libcurl SMTP). */
#pragma once

#include "server.h"

#include <stdbool.h>

G_BEGIN_DECLS

/* Sends a plain-text message (an RFC 5322 message with Date, From, To,
 * Subject, Message-ID and a UTF-8 text/plain body) from server->smtp_from
 * to `to` through server->smtp_url: smtps:// is TLS from the start;
 * smtp:// upgrades with STARTTLS when the relay offers it (always required
 * when the URL carries credentials); certificates are verified against the
 * system CAs plus server->smtp_ca_file. Blocks up to 30 s: never call it
 * holding server->lock. False + an error naming the cause (never the body)
 * when no relay is configured, an address is unusable, or the relay failed
 * or refused. */
bool kcps__server_smtp_send(const kcps_server_t *server, const char *to, const char *subject,
                            const char *body, GError **error);

/* True for an address this module will put in an envelope and a header:
 * ASCII local@domain, at most 254 bytes, no spaces, quotes, brackets or
 * control characters. */
bool kcps__server_smtp_address_ok(const char *address);

G_END_DECLS
