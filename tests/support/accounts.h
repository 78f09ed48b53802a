/*
 * accounts.h — the accounts the API tests act as: sign-up and sign-in through the real routes,
 * users with a role inserted directly (one argon2id hash per process, not per user), and access
 * tokens minted for a fresh session as sign-in would issue them (no password at all). Each
 * helper fails the test when a step fails.
 */
#ifndef ZYGO_TEST_ACCOUNTS_H
#define ZYGO_TEST_ACCOUNTS_H

#include "support.h"

/* The password of every account the helpers make. */
#define ACCOUNTS_PASSWORD "correct horse battery"

struct account {
    char access[4096];
    char refresh[128];
    char user_id[37];
    char tenant_id[37];
    char tenant_slug[64]; /* set by accounts_signup only */
};

/* POST /auth/signup for email with ACCOUNTS_PASSWORD and a new tenant called tenant_name ("T"
 * when NULL); the owner's tokens and ids come back in a. */
void accounts_signup(const struct app *app, const char *email, const char *tenant_name,
                     struct account *a);

/* POST /auth/login with password (NULL: ACCOUNTS_PASSWORD); returns the status, and on 200
 * fills a when it is not NULL. */
int accounts_login(const struct app *app, const char *email, const char *password,
                   struct account *a);

/* Inserts an active user of the tenant with ACCOUNTS_PASSWORD, an optional first name and an
 * optional system role (NULL: none, so no permissions at all); its id in id_out. */
void accounts_create_user(struct db *db, const char *tenant_id, const char *email,
                          const char *first_name, const char *role, char id_out[37]);

/* accounts_create_user in the owner's tenant, then signed in as that user into out. */
void accounts_user_with_role(const struct tenv *t, const struct account *owner, const char *email,
                             const char *role, struct account *out);

/* A tenant called name with its system roles, made directly (no owner); its id in id and, when
 * slug is not NULL, its slug. */
void accounts_make_tenant(struct db *db, const char *name, char id[37], char slug[64]);

/* An access token (role claim "owner") of a fresh session of uid in tid, signed with the app's
 * secret as sign-in would issue it. */
void accounts_mint_token(const struct tenv *t, const char *uid, const char *tid, char out[4096]);

#endif
