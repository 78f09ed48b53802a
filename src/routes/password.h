/* password.h — /api/v1/auth password and email flows: forgotten password (always 202),
 * reset with an emailed single-use token, change while signed in, email verification and its
 * resend, and accepting an invitation. Changing or resetting a password ends other sessions. */
#ifndef ZYGO_ROUTES_PASSWORD_H
#define ZYGO_ROUTES_PASSWORD_H

#include "http/router.h"

extern const struct route_group password_routes;

#endif
