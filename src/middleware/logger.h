/* logger.h — one log line per request: reqId, method, path, status, duration (ms); level info,
 * warn for 4xx, error for 5xx. Query strings are not logged (they may carry tokens). */
#ifndef ZYGO_MW_LOGGER_H
#define ZYGO_MW_LOGGER_H

#include "middleware/middleware.h"

extern const struct middleware mw_logger;

#endif
