/* timing.c — see timing.h. The start time is taken when the request is first seen by the
 * transport (c->start_ns), so queueing for a worker counts. */
#include "lib/common.h"

#include "middleware/timing.h"

static enum mw_result timing_before(struct ctx *c)
{
    if (!c->start_ns)
        c->start_ns = zy_now_ns();
    return MW_NEXT;
}

static void timing_after(struct ctx *c)
{
    char v[96];
    double ms = (double)(zy_now_ns() - c->start_ns) / 1e6;
    snprintf(v, sizeof(v), "total;dur=%.2f;desc=\"Total Response Time\"", ms);
    ctx_append_header(c, "Server-Timing", v);
}

const struct middleware mw_timing = {"timing", timing_before, timing_after};
