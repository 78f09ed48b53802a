/* logger.c — see logger.h. */
#include "lib/common.h"

#include "lib/log.h"
#include "middleware/logger.h"

static void logger_after(struct ctx *c)
{
    int status = c->res.status;
    enum log_level lv = status >= 500 ? LOG_ERROR : status >= 400 ? LOG_WARN : LOG_INFO;
    struct log_line l;
    log_begin(&l, lv);
    log_str(&l, "reqId", c->request_id);
    log_str(&l, "method", c->req.method_name);
    log_str(&l, "path", c->req.path);
    log_int(&l, "status", status);
    log_num(&l, "duration", (double)(zy_now_ns() - c->start_ns) / 1e6);
    log_end(&l, "request completed");
}

const struct middleware mw_logger = {"logger", NULL, logger_after};
