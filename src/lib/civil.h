/*
 * civil.h — calendar arithmetic for timestamps we parse and print ourselves (PostgreSQL's text
 * timestamps, ISO-8601 filters): proleptic Gregorian dates to day numbers and back
 * (H. Hinnant's algorithms), and fixed-width digit fields.
 */
#ifndef ZYGO_CIVIL_H
#define ZYGO_CIVIL_H

#include "lib/common.h"

/* Days since 1970-01-01 of y-m-d. */
int64_t civil_days(int64_t y, int m, int d);
/* The date of a day number. */
void civil_date(int64_t days, int64_t *y, int *m, int *d);
/* n ASCII digits at s as a number into *out; false if any is not a digit. */
bool civil_digits(const char *s, int n, int *out);

#endif
