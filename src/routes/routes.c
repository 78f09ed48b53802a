/* routes.c — see routes.h. */
#include "lib/common.h"

#include "routes/docs.h"
#include "routes/health.h"
#include "routes/routes.h"

const struct route_group *routes_groups(size_t *n)
{
    static struct route_group groups[2];
    groups[0] = health_routes;
    groups[1] = docs_routes;
    *n = ARRAY_LEN(groups);
    return groups;
}
