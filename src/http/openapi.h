/*
 * openapi.h — the OpenAPI 3.1 document of the API, generated from the route table (what
 * @hono/zod-openapi's app.doc31() gave the TypeScript version).
 *
 * Owns nothing: each call builds a fresh document the caller owns. Every route not flagged
 * ROUTE_HIDDEN becomes an operation: path "/users/:id" is written "/users/{id}", parameters,
 * request body and responses come from its schemas, and the standard error responses (400
 * when the route validates input, 401 when it needs a token, 403 when it needs a permission,
 * 404 when its path has parameters, 429 and 500 always) point at the shared ErrorResponse
 * envelope. Named schemas (schema.ref) are written once under components.schemas.
 * Security: bearerAuth (JWT) is the document-wide default and every operation states its own
 * ([] when public, [{bearerAuth: []}, {}] when the token is optional); a required RBAC
 * permission is named in x-permission. operationId is the route's, or derived from method
 * and path (getApiV1UsersById), made unique with a _2 suffix. A route's own error response
 * without a schema carries the envelope; a route with no responses listed gets "200 OK".
 */
#ifndef ZYGO_OPENAPI_H
#define ZYGO_OPENAPI_H

#include <jansson.h>

#include "http/router.h"

struct openapi_info {
    const char *title;
    const char *version;
    const char *description; /* NULL: none */
    const char *server_url;  /* e.g. API_URL; NULL: no servers list */
    const char *license;     /* SPDX identifier; NULL: "MIT" */
};

/* The whole document; new reference. Full paths are group prefix + route path, as routed. */
json_t *openapi_document(const struct route_group *groups, size_t ngroups,
                         const struct openapi_info *info);

#endif
