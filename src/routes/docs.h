/* docs.h — GET /openapi.json (the OpenAPI 3.1 document generated from the route table) and
 * GET /docs (an interactive API reference page rendering it). */
#ifndef ZYGO_ROUTES_DOCS_H
#define ZYGO_ROUTES_DOCS_H

#include "http/router.h"

extern const struct route_group docs_routes;

#endif
