/* request_id.h — X-Request-Id: keeps a sane incoming id (1–255 of [A-Za-z0-9_=-], as Hono's
 * requestId does), otherwise generates a UUIDv7; echoes it on the response. */
#ifndef ZYGO_MW_REQUEST_ID_H
#define ZYGO_MW_REQUEST_ID_H

#include "middleware/middleware.h"

extern const struct middleware mw_request_id;

/* True when s may be used as a request id as sent. */
bool request_id_valid(const char *s);

#endif
