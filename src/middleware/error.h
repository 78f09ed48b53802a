/*
 * error.h — the global error handler (the specification's errorHandler and notFoundHandler).
 *
 * Renders the pending domain error on a ctx as the envelope
 * {error, message, statusCode, timestamp, requestId, details?}. Internal errors are logged with
 * the request id and answered with a fixed message, never the internal one.
 */
#ifndef ZYGO_MW_ERROR_H
#define ZYGO_MW_ERROR_H

#include "http/ctx.h"

void error_render(struct ctx *c);

#endif
