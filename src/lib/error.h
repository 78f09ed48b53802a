/*
 * error.h — the domain error enum and its mapping to HTTP status and the specification's
 * error codes, in one place (nginx/curl: one enum, one table).
 *
 * Services and repositories return these; the error middleware turns them into the envelope
 * {error, message, statusCode, timestamp, requestId, details?}.
 */
#ifndef ZYGO_ERROR_H
#define ZYGO_ERROR_H

#include "lib/common.h"

enum zy_err {
    ZY_OK = 0,
    ZY_E_VALIDATION,      /* 400 VALIDATION_ERROR */
    ZY_E_NOT_FOUND,       /* 404 RESOURCE_NOT_FOUND */
    ZY_E_UNAUTHORIZED,    /* 401 AUTH_UNAUTHORIZED */
    ZY_E_FORBIDDEN,       /* 403 AUTH_FORBIDDEN */
    ZY_E_CONFLICT,        /* 409 RESOURCE_CONFLICT */
    ZY_E_RATE_LIMIT,      /* 429 RATE_LIMIT_EXCEEDED */
    ZY_E_ROUTE_NOT_FOUND, /* 404 ROUTE_NOT_FOUND */
    ZY_E_HTTP,            /* any status, HTTP_ERROR (Hono's HTTPException) */
    ZY_E_INTERNAL,        /* 500 INTERNAL_ERROR, message never shown to the client */
};

/* The specification's code string ("VALIDATION_ERROR", ...). */
const char *zy_err_name(enum zy_err e);
/* The default HTTP status of the error (ZY_E_HTTP: 500 unless the caller gives one). */
int zy_err_status(enum zy_err e);
/* Reason phrase for a status ("Not Found"), or "Unknown". */
const char *zy_http_reason(int status);

#endif
