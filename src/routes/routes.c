/* routes.c — see routes.h. */
#include "lib/common.h"

#include "routes/auth.h"
#include "routes/docs.h"
#include "routes/mfa.h"
#include "routes/password.h"
#include "routes/health.h"
#include "routes/permissions.h"
#include "routes/routes.h"
#include "routes/users.h"

const struct route_group *routes_groups(size_t *n)
{
    static struct route_group groups[7];
    groups[0] = health_routes;
    groups[1] = docs_routes;
    groups[2] = auth_routes;
    groups[3] = users_routes;
    groups[4] = permissions_routes;
    groups[5] = mfa_routes;
    groups[6] = password_routes;
    *n = ARRAY_LEN(groups);
    return groups;
}
