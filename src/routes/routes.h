/* routes.h — the route aggregator: every route group of the API, in mounting order
 * (the specification's routes/index.ts). */
#ifndef ZYGO_ROUTES_H
#define ZYGO_ROUTES_H

#include "http/router.h"

const struct route_group *routes_groups(size_t *n);

#endif
