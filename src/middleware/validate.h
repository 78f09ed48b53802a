/*
 * validate.h — the validate phase: checks a matched route's path parameters, query string and
 * JSON body against the schemas in its table entry, and stores the validated values on the ctx
 * (c->path_params, c->query, c->body) with defaults applied. Undeclared input never reaches a
 * handler.
 *
 * Targets are checked in the order params, query, body; the first target with problems answers
 * 400 VALIDATION_ERROR listing every issue in it. Unknown body keys are rejected; unknown query
 * parameters are ignored (they are often cache busters or tracking tags). A body that is not
 * JSON, not UTF-8 or not sent as application/json gets its own 400 HTTP_ERROR.
 */
#ifndef ZYGO_MW_VALIDATE_H
#define ZYGO_MW_VALIDATE_H

#include "http/ctx.h"

/* 0 when valid; -1 after ctx_fail(). */
int validate_request(struct ctx *c);

#endif
