/* permissions.c — see permissions.h. */
#include "lib/common.h"

#include "routes/permissions.h"
#include "services/permissions.h"

static int list_permissions(struct ctx *c)
{
    size_t n, nr;
    const struct permission *p = permissions_all(&n);
    const struct system_role *r = permissions_system_roles(&nr);
    json_t *data = json_array(), *roles = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, json_pack("{s:s, s:s, s:s}", "name", p[i].name, "group",
                                              p[i].group, "description", p[i].description));
    for (size_t i = 0; i < nr; i++)
        json_array_append_new(roles, json_pack("{s:s, s:s, s:o}", "name", r[i].name, "description",
                                               r[i].description, "permissions",
                                               permissions_role_json(&r[i])));
    ctx_json(c, 200, json_pack("{s:o, s:o}", "data", data, "systemRoles", roles));
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/permissions",
     .handler = list_permissions,
     .tag = "Roles",
     .summary = "Permission catalogue",
     .description = "Every permission a role can hold, and the system roles' sets.",
     .operation_id = "listPermissions",
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "The catalogue", NULL}, {0}}},
};

const struct route_group permissions_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Roles and the permissions they grant.",
};
