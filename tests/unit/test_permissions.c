/* The permission catalogue and the system roles. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "services/permissions.h"

Test(permissions, catalogue_covers_the_issue_list_and_roles_use_only_known_names)
{
    const char *required[] = {"canViewUsers",       "canManageUsers",     "canViewRoles",
                              "canManageRoles",     "canManageTenant",    "canManageBilling",
                              "canManageServers",   "canManageWorkflows", "canExecuteWorkflows",
                              "canManageSecrets",   "canManageWebhooks",  "canViewAuditLogs",
                              "canManageCompliance"};
    for (size_t i = 0; i < ARRAY_LEN(required); i++)
        cr_assert(permission_known(required[i]), "%s missing", required[i]);
    cr_assert_not(permission_known("canDoAnything"));
    size_t n, np;
    const struct system_role *roles = permissions_system_roles(&n);
    permissions_all(&np);
    cr_assert_eq(n, 4);
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; roles[r].permissions[i]; i++)
            cr_assert(permission_known(roles[r].permissions[i]), "%s: %s", roles[r].name,
                      roles[r].permissions[i]);
    json_t *owner = permissions_role_json(permissions_system_role("owner"));
    cr_assert_eq(json_array_size(owner), np, "the owner holds every permission");
    json_decref(owner);
    cr_assert_null(permissions_system_role("root"));
}

Test(permissions, least_privilege_between_system_roles)
{
    const struct system_role *admin = permissions_system_role("admin");
    const struct system_role *viewer = permissions_system_role("viewer");
    for (size_t i = 0; admin->permissions[i]; i++) {
        cr_assert_neq(strcmp(admin->permissions[i], "canManageBilling"), 0);
        cr_assert_neq(strcmp(admin->permissions[i], "canManageTenant"), 0);
    }
    for (size_t i = 0; viewer->permissions[i]; i++)
        cr_assert_eq(strncmp(viewer->permissions[i], "canView", 7), 0, "viewer can only view");
}
