/*
 * cors.h — CORS as the specification configures Hono's cors(): an allow-list of origins
 * (CORS_ORIGINS; by default the spec's app and admin origins, plus http://localhost:5173 in
 * development), credentials allowed, preflight OPTIONS answered 204 with the allowed methods and
 * the requested headers. A disallowed origin gets no Access-Control-Allow-Origin.
 */
#ifndef ZYGO_MW_CORS_H
#define ZYGO_MW_CORS_H

#include "middleware/middleware.h"

extern const struct middleware mw_cors;

#endif
