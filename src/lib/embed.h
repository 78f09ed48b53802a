/*
 * embed.h — files compiled into the binary (SQL migrations, static assets).
 *
 * The table is generated at build time by tools/embed.c from the files listed in the
 * Makefile's EMBED variable; paths are as given there (e.g.
 * "src/db/migrations/sqlite/0001_init.sql").
 */
#ifndef ZYGO_EMBED_H
#define ZYGO_EMBED_H

#include <stddef.h>

struct embedded_file {
    const char *path;
    const unsigned char *data; /* NUL-terminated; len excludes the NUL */
    size_t len;
};

extern const struct embedded_file embedded_files[];
extern const size_t embedded_files_count;

/* The file with exactly this path, or NULL. */
const struct embedded_file *embed_find(const char *path);

#endif
