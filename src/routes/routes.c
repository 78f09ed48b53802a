/* routes.c — see routes.h. */
#include "lib/common.h"

#include "routes/admin.h"
#include "routes/audit.h"
#include "routes/auth.h"
#include "routes/docs.h"
#include "routes/mfa.h"
#include "routes/oauth.h"
#include "routes/password.h"
#include "routes/health.h"
#include "routes/jobs.h"
#include "routes/permissions.h"
#include "routes/roles.h"
#include "routes/routes.h"
#include "routes/tenants.h"
#include "routes/users.h"
#include "routes/workflows.h"
#include "ws/route.h"

const struct route_group *routes_groups(size_t *n)
{
    static struct route_group groups[15];
    groups[0] = health_routes;
    groups[1] = docs_routes;
    groups[2] = auth_routes;
    groups[3] = users_routes;
    groups[4] = permissions_routes;
    groups[5] = mfa_routes;
    groups[6] = password_routes;
    groups[7] = audit_routes;
    groups[8] = admin_routes;
    groups[9] = roles_routes;
    groups[10] = tenants_routes;
    groups[11] = oauth_routes;
    groups[12] = jobs_routes;
    groups[13] = ws_routes;
    groups[14] = workflows_routes;
    *n = ARRAY_LEN(groups);
    return groups;
}
