/* permissions.c — see permissions.h. */
#include "lib/common.h"

#include "services/permissions.h"

static const struct permission catalogue[] = {
    {"canViewUsers", "users", "List and read users of the tenant"},
    {"canManageUsers", "users", "Invite, update and remove users"},
    {"canViewRoles", "roles", "List and read roles"},
    {"canManageRoles", "roles", "Create, change and assign roles"},
    {"canManageTenant", "tenants", "Change the tenant's name, slug and settings; delete it"},
    {"canViewBilling", "billing", "See the plan, invoices and payment status"},
    {"canManageBilling", "billing", "Change the plan and payment methods"},
    {"canViewServers", "infrastructure", "List servers, volumes, networks and firewalls"},
    {"canManageServers", "infrastructure", "Create, change and delete infrastructure"},
    {"canViewWorkflows", "workflows", "List workflows and their executions"},
    {"canManageWorkflows", "workflows", "Create, change and delete workflows"},
    {"canExecuteWorkflows", "workflows", "Run workflows and cancel executions"},
    {"canManageSecrets", "secrets", "Create, rotate and delete secrets"},
    {"canManageWebhooks", "webhooks", "Create, change and delete webhooks"},
    {"canViewAuditLogs", "audit", "Read the audit log"},
    {"canManageCompliance", "compliance", "Data exports, retention and compliance settings"},
};

static const char *const owner_perms[] = {
    "canViewUsers",
    "canManageUsers",
    "canViewRoles",
    "canManageRoles",
    "canManageTenant",
    "canViewBilling",
    "canManageBilling",
    "canViewServers",
    "canManageServers",
    "canViewWorkflows",
    "canManageWorkflows",
    "canExecuteWorkflows",
    "canManageSecrets",
    "canManageWebhooks",
    "canViewAuditLogs",
    "canManageCompliance",
    NULL,
};

/* Everything but the tenant itself and its money. */
static const char *const admin_perms[] = {
    "canViewUsers",       "canManageUsers",
    "canViewRoles",       "canManageRoles",
    "canViewBilling",     "canViewServers",
    "canManageServers",   "canViewWorkflows",
    "canManageWorkflows", "canExecuteWorkflows",
    "canManageSecrets",   "canManageWebhooks",
    "canViewAuditLogs",   NULL,
};

static const char *const member_perms[] = {
    "canViewUsers",
    "canViewRoles",
    "canViewServers",
    "canViewWorkflows",
    "canManageWorkflows",
    "canExecuteWorkflows",
    NULL,
};

static const char *const viewer_perms[] = {
    "canViewUsers", "canViewRoles", "canViewServers", "canViewWorkflows", NULL,
};

static const struct system_role system_roles[] = {
    {"owner", "Full control of the tenant, including billing and deletion", owner_perms},
    {"admin", "Manages users, roles, infrastructure and workflows; not billing or the tenant",
     admin_perms},
    {"member", "Works with workflows; reads users, roles and infrastructure", member_perms},
    {"viewer", "Read-only access", viewer_perms},
};

const struct permission *permissions_all(size_t *n)
{
    *n = ARRAY_LEN(catalogue);
    return catalogue;
}

bool permission_known(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(catalogue); i++)
        if (strcmp(catalogue[i].name, name) == 0)
            return true;
    return false;
}

const struct system_role *permissions_system_roles(size_t *n)
{
    *n = ARRAY_LEN(system_roles);
    return system_roles;
}

const struct system_role *permissions_system_role(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(system_roles); i++)
        if (strcmp(system_roles[i].name, name) == 0)
            return &system_roles[i];
    return NULL;
}

json_t *permissions_role_json(const struct system_role *r)
{
    json_t *a = json_array();
    for (size_t i = 0; r->permissions[i]; i++)
        json_array_append_new(a, json_string(r->permissions[i]));
    return a;
}
