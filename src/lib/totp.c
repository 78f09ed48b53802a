/* totp.c — RFC 6238 codes with liboath, otpauth URIs and QR codes as SVG; see totp.h. */
#include "lib/common.h"

#include "lib/totp.h"

#include <liboath/oath.h>
#include <pthread.h>
#include <qrencode.h>
#include <sodium.h>

#include "lib/buf.h"
#include "lib/token.h"

#define QUIET_ZONE 4    /* modules of white border the QR specification requires */
#define PX_PER_MODULE 6 /* default rendering size; the viewBox lets CSS scale it */
#define SVG_MAX (1u << 20)
#define URI_MAX 4096
#define TIME_MAX ((int64_t)1 << 40) /* ~34,000 years: keeps step arithmetic far from overflow */

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;

static void oath_start(void)
{
    if (oath_init() != OATH_OK) {
        fprintf(stderr, "zygo: liboath failed to initialise\n");
        abort();
    }
}

void totp_secret_new(unsigned char out[TOTP_SECRET_BYTES])
{
    token_crypto_init();
    randombytes_buf(out, TOTP_SECRET_BYTES);
}

int totp_base32(const unsigned char *secret, size_t len, char *out, size_t n)
{
    char *enc = NULL;
    size_t enc_len = 0;
    if (oath_base32_encode((const char *)secret, len, &enc, &enc_len) != OATH_OK)
        zy_oom(len * 2);
    while (enc_len > 0 && enc[enc_len - 1] == '=') /* apps want it unpadded */
        enc_len--;
    int rc = -1;
    if (enc_len < n) {
        memcpy(out, enc, enc_len);
        out[enc_len] = '\0';
        rc = 0;
    } else if (n > 0) {
        out[0] = '\0';
    }
    sodium_memzero(enc, enc_len);
    free(enc);
    return rc;
}

int64_t totp_step(int64_t t)
{
    return t / TOTP_PERIOD;
}

int totp_generate(const unsigned char *secret, size_t len, int64_t t, char out[TOTP_DIGITS + 1])
{
    out[0] = '\0';
    if (t < 0 || t > TIME_MAX)
        return -1;
    pthread_once(&oath_once, oath_start);
    if (oath_totp_generate((const char *)secret, len, (time_t)t, TOTP_PERIOD, 0, TOTP_DIGITS,
                           out) != OATH_OK) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static bool six_digits(const char *code)
{
    for (int i = 0; i < TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    return code[TOTP_DIGITS] == '\0';
}

bool totp_verify_after(const unsigned char *secret, size_t len, const char *code, int64_t now,
                       int64_t last_step, int64_t *matched_step)
{
    if (!code || !six_digits(code) || now < 0 || now > TIME_MAX)
        return false;
    int64_t step = totp_step(now), found = INT64_MIN;
    /* Compare against every step in the window; if two steps share the code (one in a million)
     * the later one is kept, which refuses more future reuse, not less. */
    for (int64_t s = step - TOTP_WINDOW; s <= step + TOTP_WINDOW; s++) {
        char want[TOTP_DIGITS + 1];
        if (s < 0 || totp_generate(secret, len, s * TOTP_PERIOD, want) != 0)
            continue;
        if (zy_ct_equal(want, code, TOTP_DIGITS) && s > last_step)
            found = s;
    }
    if (found == INT64_MIN)
        return false;
    if (matched_step)
        *matched_step = found;
    return true;
}

bool totp_verify(const unsigned char *secret, size_t len, const char *code, int64_t now,
                 int64_t *matched_step)
{
    return totp_verify_after(secret, len, code, now, INT64_MIN, matched_step);
}

/* RFC 3986 percent-encoding: everything but the unreserved characters. */
static void put_pct(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_putc(b, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, esc, sizeof(esc));
        }
    }
}

char *totp_otpauth_uri(const char *issuer, const char *account, const char *secret_b32)
{
    bool has_issuer = issuer && *issuer;
    struct buf b;
    buf_init(&b, URI_MAX);
    buf_puts(&b, "otpauth://totp/");
    if (has_issuer) {
        put_pct(&b, issuer);
        buf_putc(&b, ':');
    }
    put_pct(&b, account);
    buf_puts(&b, "?secret=");
    put_pct(&b, secret_b32);
    if (has_issuer) {
        buf_puts(&b, "&issuer=");
        put_pct(&b, issuer);
    }
    buf_printf(&b, "&algorithm=SHA1&digits=%d&period=%d", TOTP_DIGITS, TOTP_PERIOD);
    if (b.overflow) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

char *totp_qr_svg(const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return NULL;
    int size = qr->width + 2 * QUIET_ZONE;
    struct buf b;
    buf_init(&b, SVG_MAX);
    buf_printf(&b,
               "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
               "height=\"%d\" shape-rendering=\"crispEdges\">"
               "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
               size, size, size * PX_PER_MODULE, size * PX_PER_MODULE, size, size);
    /* One rectangle per horizontal run of dark modules (bit 0 of each byte is "dark"). */
    for (int y = 0; y < qr->width; y++) {
        const unsigned char *row = qr->data + (size_t)y * (size_t)qr->width;
        for (int x = 0; x < qr->width;) {
            if (!(row[x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < qr->width && (row[x + run] & 1))
                run++;
            buf_printf(&b, "M%d %dh%dv1h-%dz", x + QUIET_ZONE, y + QUIET_ZONE, run, run);
            x += run;
        }
    }
    buf_puts(&b, "\"/></svg>");
    QRcode_free(qr);
    if (b.overflow) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

char *totp_qr_data_uri(const char *text)
{
    static const char prefix[] = "data:image/svg+xml;base64,";
    char *svg = totp_qr_svg(text);
    if (!svg)
        return NULL;
    size_t svg_len = strlen(svg);
    size_t b64_size = sodium_base64_ENCODED_LEN(svg_len, sodium_base64_VARIANT_ORIGINAL);
    char *uri = xmalloc(sizeof(prefix) - 1 + b64_size);
    memcpy(uri, prefix, sizeof(prefix) - 1);
    sodium_bin2base64(uri + sizeof(prefix) - 1, b64_size, (const unsigned char *)svg, svg_len,
                      sodium_base64_VARIANT_ORIGINAL);
    free(svg);
    return uri;
}
