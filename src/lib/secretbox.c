/* secretbox.c — XChaCha20-Poly1305 records with key ids and bound associated data; see
 * secretbox.h. */
#include "lib/common.h"

#include "lib/secretbox.h"

#include <sodium.h>

#include "lib/token.h"

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES      /* 16 */
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define HEADER_MAX 16 /* "v1." + 10 digits + "." + NUL */

_Static_assert(SECRETBOX_KEYBYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

void secretbox_keyring_init(struct secretbox_keyring *kr)
{
    memset(kr, 0, sizeof(*kr));
}

void secretbox_keyring_free(struct secretbox_keyring *kr)
{
    sodium_memzero(kr, sizeof(*kr));
}

static const struct secretbox_key *find_key(const struct secretbox_keyring *kr, uint32_t kid)
{
    for (size_t i = 0; i < kr->nkeys; i++)
        if (kr->keys[i].kid == kid)
            return &kr->keys[i];
    return NULL;
}

int secretbox_keyring_add(struct secretbox_keyring *kr, uint32_t kid,
                          const unsigned char key[SECRETBOX_KEYBYTES])
{
    if (kid == 0 || find_key(kr, kid) || kr->nkeys == SECRETBOX_MAX_KEYS)
        return -1;
    kr->keys[kr->nkeys].kid = kid;
    memcpy(kr->keys[kr->nkeys].key, key, SECRETBOX_KEYBYTES);
    kr->nkeys++;
    if (kr->current == 0)
        kr->current = kid;
    return 0;
}

int secretbox_keyring_use(struct secretbox_keyring *kr, uint32_t kid)
{
    if (!find_key(kr, kid))
        return -1;
    kr->current = kid;
    return 0;
}

/* Parses "v1.<kid>." at the start of text: kid in decimal, 1..UINT32_MAX, no leading zero.
 * Returns the length of that prefix, or 0 if text does not start with one. */
static size_t parse_header(const char *text, uint32_t *kid)
{
    if (strncmp(text, "v1.", 3) != 0 || text[3] < '1' || text[3] > '9')
        return 0;
    uint64_t v = 0;
    size_t i = 3;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(text[i] - '0');
        if (v > UINT32_MAX)
            return 0;
    }
    if (text[i] != '.')
        return 0;
    *kid = (uint32_t)v;
    return i + 1;
}

/* The AEAD's associated data: the record's header followed by the caller's ad, so neither the
 * format version nor the kid can be changed without failing authentication. */
static unsigned char *full_ad(const char *header, size_t hlen, const char *ad, size_t *len)
{
    size_t alen = strlen(ad);
    unsigned char *p = xmalloc(hlen + alen);
    memcpy(p, header, hlen);
    memcpy(p + hlen, ad, alen);
    *len = hlen + alen;
    return p;
}

int secretbox_seal(const struct secretbox_keyring *kr, const char *ad, const void *pt, size_t len,
                   char **out)
{
    *out = NULL;
    const struct secretbox_key *k = find_key(kr, kr->current);
    if (!k)
        return SECRETBOX_EKID;
    if (len > SECRETBOX_MAX_PLAINTEXT)
        return SECRETBOX_EFORMAT;
    token_crypto_init();

    char header[HEADER_MAX];
    size_t hlen = (size_t)snprintf(header, sizeof(header), "v1.%u.", (unsigned)k->kid);
    size_t adlen;
    unsigned char *fad = full_ad(header, hlen, ad, &adlen);

    size_t raw_len = NONCE_LEN + len + TAG_LEN;
    unsigned char *raw = xmalloc(raw_len);
    randombytes_buf(raw, NONCE_LEN);
    crypto_aead_xchacha20poly1305_ietf_encrypt(raw + NONCE_LEN, NULL, pt, len, fad, adlen, NULL,
                                               raw, k->key);
    free(fad);

    size_t b64_size = sodium_base64_ENCODED_LEN(raw_len, B64);
    char *text = xmalloc(hlen + b64_size);
    memcpy(text, header, hlen);
    sodium_bin2base64(text + hlen, b64_size, raw, raw_len, B64);
    free(raw);
    *out = text;
    return SECRETBOX_OK;
}

int secretbox_open(const struct secretbox_keyring *kr, const char *ad, const char *text,
                   unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    uint32_t kid;
    size_t hlen = parse_header(text, &kid);
    if (hlen == 0)
        return SECRETBOX_EFORMAT;
    const char *b64 = text + hlen;
    size_t b64_len =
        strnlen(b64, sodium_base64_ENCODED_LEN(NONCE_LEN + SECRETBOX_MAX_PLAINTEXT + TAG_LEN, B64));
    if (b64[b64_len] != '\0')
        return SECRETBOX_EFORMAT; /* longer than any record we could have sealed */
    const struct secretbox_key *k = find_key(kr, kid);
    if (!k)
        return SECRETBOX_EKID;
    token_crypto_init();

    size_t cap = b64_len / 4 * 3 + 3, raw_len;
    unsigned char *raw = xmalloc(cap);
    const char *end = NULL;
    if (sodium_base642bin(raw, cap, b64, b64_len, NULL, &raw_len, &end, B64) != 0 ||
        end != b64 + b64_len || raw_len < NONCE_LEN + TAG_LEN) {
        free(raw);
        return SECRETBOX_EFORMAT;
    }

    size_t adlen;
    unsigned char *fad = full_ad(text, hlen, ad, &adlen);
    size_t pt_cap = raw_len - NONCE_LEN - TAG_LEN;
    unsigned char *pt = xmalloc(pt_cap + 1);
    unsigned long long pt_len = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
        pt, &pt_len, NULL, raw + NONCE_LEN, raw_len - NONCE_LEN, fad, adlen, raw, k->key);
    free(fad);
    free(raw);
    if (rc != 0) {
        secretbox_free(pt, pt_cap + 1);
        return SECRETBOX_EAUTH;
    }
    pt[pt_len] = '\0';
    *out = pt;
    *len = (size_t)pt_len;
    return SECRETBOX_OK;
}

void secretbox_free(unsigned char *p, size_t len)
{
    if (!p)
        return;
    sodium_memzero(p, len);
    free(p);
}

bool secretbox_needs_reseal(const struct secretbox_keyring *kr, const char *text)
{
    uint32_t kid;
    return parse_header(text, &kid) == 0 || kid != kr->current;
}
