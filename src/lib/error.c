/* error.c — domain error names and statuses; see error.h. */
#include "lib/error.h"

static const struct {
    const char *name;
    int status;
} zy_errs[] = {
    [ZY_OK] = {"OK", 200},
    [ZY_E_VALIDATION] = {"VALIDATION_ERROR", 400},
    [ZY_E_NOT_FOUND] = {"RESOURCE_NOT_FOUND", 404},
    [ZY_E_UNAUTHORIZED] = {"AUTH_UNAUTHORIZED", 401},
    [ZY_E_FORBIDDEN] = {"AUTH_FORBIDDEN", 403},
    [ZY_E_CONFLICT] = {"RESOURCE_CONFLICT", 409},
    [ZY_E_RATE_LIMIT] = {"RATE_LIMIT_EXCEEDED", 429},
    [ZY_E_ROUTE_NOT_FOUND] = {"ROUTE_NOT_FOUND", 404},
    [ZY_E_HTTP] = {"HTTP_ERROR", 500},
    [ZY_E_INTERNAL] = {"INTERNAL_ERROR", 500},
};

const char *zy_err_name(enum zy_err e)
{
    return (unsigned)e < ARRAY_LEN(zy_errs) ? zy_errs[e].name : "INTERNAL_ERROR";
}

int zy_err_status(enum zy_err e)
{
    return (unsigned)e < ARRAY_LEN(zy_errs) ? zy_errs[e].status : 500;
}

const char *zy_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}
