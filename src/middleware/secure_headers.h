/* secure_headers.h — the header set Hono's secureHeaders() sends by default, and no
 * X-Powered-By. */
#ifndef ZYGO_MW_SECURE_HEADERS_H
#define ZYGO_MW_SECURE_HEADERS_H

#include "middleware/middleware.h"

extern const struct middleware mw_secure_headers;

#endif
