/* mfa.h — /api/v1/auth/mfa: TOTP enrolment with a QR code, activation with one-time recovery
 * codes, the second step of an MFA sign-in (aal2), and turning MFA off. */
#ifndef ZYGO_ROUTES_MFA_H
#define ZYGO_ROUTES_MFA_H

#include "http/router.h"

extern const struct route_group mfa_routes;

#endif
