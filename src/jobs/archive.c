/* archive.c — see archive.h. */
#include "lib/common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "db/db.h"
#include "jobs/archive.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "repos/tenant_data.h"

#define ARCHIVE_DIR "archives"
#define ARCHIVE_FORMAT "zygo.tenant-archive"
#define ARCHIVE_VERSION 1

/* ---- a gzip stream into a file descriptor ------------------------------------------------- */

struct gzw {
    int fd;
    z_stream z;
    bool failed;
    long long bytes; /* compressed bytes written */
    unsigned char out[64 * 1024];
};

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Feeds n bytes to the compressor (flush Z_FINISH ends the stream); -1 once anything failed. */
static int gzw_put(struct gzw *w, const void *p, size_t n, int flush)
{
    if (w->failed)
        return -1;
    w->z.next_in = (Bytef *)p;
    w->z.avail_in = (uInt)n;
    int zr;
    do {
        w->z.next_out = w->out;
        w->z.avail_out = sizeof(w->out);
        zr = deflate(&w->z, flush);
        if (zr == Z_STREAM_ERROR) {
            w->failed = true;
            return -1;
        }
        size_t have = sizeof(w->out) - w->z.avail_out;
        if (have && write_all(w->fd, w->out, have) < 0) {
            w->failed = true;
            return -1;
        }
        w->bytes += (long long)have;
    } while (w->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    return 0;
}

static int gzw_puts(struct gzw *w, const char *s)
{
    return gzw_put(w, s, strlen(s), Z_NO_FLUSH);
}

/* ---- the document ------------------------------------------------------------------------- */

struct table_writer {
    struct gzw *w;
    bool first;
};

static int put_row(void *arg, const char *json, size_t len)
{
    struct table_writer *tw = arg;
    if (!tw->first && gzw_put(tw->w, ",", 1, Z_NO_FLUSH) < 0)
        return -1;
    tw->first = false;
    return gzw_put(tw->w, json, len, Z_NO_FLUSH);
}

/* The JSON document from the database into w. 0, -1 (database or write error), -2 (no such
 * tenant). */
static int write_document(struct db_conn *c, struct gzw *w, const char *tid, const char *created,
                          archive_progress_fn progress, void *arg, struct archive_info *out)
{
    struct tenant_tables tt;
    if (tenant_data_tables(c, &tt) < 0)
        return -1;
    struct buf counts;
    buf_init(&counts, 1u << 20);
    char head[256];
    snprintf(head, sizeof(head),
             "{\"format\":\"%s\",\"version\":%d,\"tenantId\":\"%s\",\"createdAt\":\"%s\","
             "\"tables\":{",
             ARCHIVE_FORMAT, ARCHIVE_VERSION, tid, created);
    int rc = gzw_puts(w, head);
    for (size_t i = 0; rc == 0 && i <= tt.n; i++) {
        const char *table = i == 0 ? "tenants" : tt.names[i - 1];
        struct table_writer tw = {.w = w, .first = true};
        long long n = 0;
        char open[96];
        snprintf(open, sizeof(open), "%s\"%s\":[", i ? "," : "", table);
        rc = gzw_puts(w, open);
        if (rc == 0)
            rc = tenant_data_rows(c, table, tid, put_row, &tw, &n);
        if (rc == 0)
            rc = gzw_puts(w, "]");
        if (rc == 0 && i == 0 && n == 0)
            rc = -2;
        buf_printf(&counts, "%s\"%s\":%lld", i ? "," : "", table, n);
        out->rows += n;
        out->tables++;
        if (rc == 0 && progress)
            progress(arg, (double)(i + 1) / (double)(tt.n + 1));
    }
    if (rc == 0) {
        rc = gzw_puts(w, "},\"counts\":{");
        if (rc == 0)
            rc = gzw_put(w, counts.data, counts.len, Z_NO_FLUSH);
        if (rc == 0)
            rc = gzw_puts(w, "},\"complete\":true}\n");
        if (rc == 0)
            rc = gzw_put(w, "", 0, Z_FINISH);
    }
    buf_free(&counts);
    tenant_tables_free(&tt);
    return rc;
}

/* ---- the file ----------------------------------------------------------------------------- */

/* Removes temporary files a crashed run left for this tenant (".<tid>-....tmp"). */
static void remove_leftovers(const char *dir, const char *tid)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), ".%s-", tid);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && n > 4 &&
            strcmp(e->d_name + n - 4, ".tmp") == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int archive_tenant(struct db_conn *c, const char *data_dir, const char *tenant_id,
                   archive_progress_fn progress, void *arg, struct archive_info *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof(*out));
    char tid[UUID_STRLEN + 1];
    if (!uuid_normalize(tenant_id, tid)) {
        snprintf(err, errlen, "tenant id is not a UUID");
        return -2;
    }
    char dir[PATH_MAX], tmp[PATH_MAX];
    int n = snprintf(dir, sizeof(dir), "%s/%s", data_dir, ARCHIVE_DIR);
    if (n < 0 || (size_t)n >= sizeof(dir) - 128) {
        snprintf(err, errlen, "the data directory's path is too long");
        return -1;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    remove_leftovers(dir, tid);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int ms = (int)(ts.tv_nsec / 1000000);
    char stamp[64], created[64];
    n = snprintf(stamp, sizeof(stamp), "%04d%02d%02dT%02d%02d%02d%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    n |=
        snprintf(created, sizeof(created), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    /* the directory left 128 bytes: room for either name */
    n |= snprintf(out->path, sizeof(out->path), "%s/%s-%s.json.gz", dir, tid, stamp);
    n |= snprintf(tmp, sizeof(tmp), "%s/.%s-%s.%d.tmp", dir, tid, stamp, (int)getpid());
    if (n < 0) {
        snprintf(err, errlen, "cannot name the archive");
        return -1;
    }

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    fchmod(fd, 0600); /* whatever an earlier file of that name had */
    struct gzw *w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    /* windowBits 15 + 16: a gzip header and trailer around the deflate stream */
    if (deflateInit2(&w->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        snprintf(err, errlen, "zlib: cannot start compressing");
        free(w);
        close(fd);
        unlink(tmp);
        return -1;
    }
    int rc = write_document(c, w, tid, created, progress, arg, out);
    deflateEnd(&w->z);
    if (rc == -2)
        snprintf(err, errlen, "no tenant %s", tid);
    else if (rc < 0 && w->failed)
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    else if (rc < 0)
        snprintf(err, errlen, "reading the tenant's rows failed: %s", db_errmsg(c));
    out->bytes = w->bytes;
    free(w);
    /* durable before it gets its final name, and the name durable before we say it exists */
    if (rc == 0 && fsync(fd) < 0) {
        snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (close(fd) < 0 && rc == 0) {
        snprintf(err, errlen, "close %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, out->path) < 0) {
        snprintf(err, errlen, "rename to %s: %s", out->path, strerror(errno));
        rc = -1;
    }
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    if (fsync_dir(dir) < 0)
        log_msg(LOG_WARN, "archive: fsync of %s failed: %s", dir, strerror(errno));
    return 0;
}

/* ---- the `archive` queue ------------------------------------------------------------------ */

static void job_progress_cb(void *arg, double done)
{
    job_progress(arg, (int)(done * 100.0), "archiving");
}

enum job_result archive_process(struct job *j)
{
    const char *tid = json_string_value(json_object_get(j->data, "tenantId"));
    if (!tid || !uuid_valid(tid)) {
        job_set_error(j, "data.tenantId must be a UUID");
        return JOB_UNRECOVERABLE;
    }
    char err[512];
    struct db_conn *c = db_acquire(j->env->db, err, sizeof(err));
    if (!c) {
        job_set_error(j, "database: %s", err);
        return JOB_RETRY;
    }
    struct archive_info info;
    db_set_rls_bypass(c, true); /* system work across the tenant's tables */
    int rc =
        archive_tenant(c, j->env->cfg->data_dir, tid, job_progress_cb, j, &info, err, sizeof(err));
    db_release(c);
    if (rc < 0) {
        job_set_error(j, "%s", err);
        return rc == -2 ? JOB_UNRECOVERABLE : JOB_RETRY;
    }
    job_set_result(j, json_pack("{s:s, s:I, s:I, s:I}", "path", info.path, "bytes",
                                (json_int_t)info.bytes, "rows", (json_int_t)info.rows, "tables",
                                (json_int_t)info.tables));
    return JOB_DONE;
}
