/* timing.h — Server-Timing: total;dur=<ms>;desc="Total Response Time", as Hono's timing(). */
#ifndef ZYGO_MW_TIMING_H
#define ZYGO_MW_TIMING_H

#include "middleware/middleware.h"

extern const struct middleware mw_timing;

#endif
