/* error.c — see error.h. */
#include "lib/common.h"

#include "lib/jsonx.h"
#include "lib/log.h"
#include "middleware/error.h"

void error_render(struct ctx *c)
{
    enum zy_err e = c->err ? c->err : ZY_E_INTERNAL;
    int status = c->err_status ? c->err_status : zy_err_status(e);
    const char *message = c->err_message ? c->err_message : "An unexpected error occurred";

    if (e == ZY_E_INTERNAL) {
        struct log_line l;
        log_begin(&l, LOG_ERROR);
        log_str(&l, "reqId", c->request_id);
        log_str(&l, "err", message);
        log_end(&l, "Unhandled error");
        message = "An unexpected error occurred";
        status = 500;
    } else if (e != ZY_E_VALIDATION && e != ZY_E_ROUTE_NOT_FOUND && status < 500) {
        struct log_line l;
        log_begin(&l, LOG_DEBUG);
        log_str(&l, "reqId", c->request_id);
        log_str(&l, "code", zy_err_name(e));
        log_end(&l, message);
    }

    char ts[48];
    zy_iso_now(ts);
    json_t *env = json_object();
    json_object_set_new(env, "error", json_string(zy_err_name(e)));
    json_object_set_new(env, "message", jx_str(message));
    json_object_set_new(env, "statusCode", json_integer(status));
    json_object_set_new(env, "timestamp", json_string(ts));
    json_object_set_new(env, "requestId", jx_str(c->request_id ? c->request_id : "unknown"));
    if (c->err_details && e != ZY_E_INTERNAL)
        json_object_set(env, "details", c->err_details);
    ctx_json(c, status, env);
}
