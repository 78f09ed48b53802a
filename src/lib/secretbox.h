/*
 * secretbox.h — secrets encrypted at rest (TOTP factor secrets, provider API keys) with
 * ENCRYPTION_KEY, as XChaCha20-Poly1305 (libsodium's crypto_aead_xchacha20poly1305_ietf).
 *
 * Owns: the keyring (which key seals, which keys still open) and the stored text format
 *
 *     v1.<kid>.<base64url(nonce[24] | ciphertext | tag[16])>
 *
 * A fresh random 192-bit nonce per record (safe at any volume with random nonces). The caller's
 * associated data names where the record lives ("mfa_factors:secret:<row id>"), so a ciphertext
 * copied into another row or column fails to open; the version and key id are bound in as well.
 * Rotation: add the new key, make it current; records sealed under older keys keep opening
 * while their kid is in the ring, and secretbox_needs_reseal says which to re-encrypt.
 */
#ifndef ZYGO_SECRETBOX_H
#define ZYGO_SECRETBOX_H

#include "lib/common.h"

#define SECRETBOX_KEYBYTES 32
#define SECRETBOX_MAX_KEYS 8
#define SECRETBOX_MAX_PLAINTEXT 65536 /* secrets are small; anything bigger is a mistake */

enum secretbox_status {
    SECRETBOX_OK = 0,
    SECRETBOX_EFORMAT = -1, /* not "v1.<kid>.<base64url>" or too short / too long */
    SECRETBOX_EKID = -2,    /* kid not in the keyring (or no current key to seal with) */
    SECRETBOX_EAUTH = -3,   /* wrong key, wrong associated data, or tampered */
};

struct secretbox_key {
    uint32_t kid;
    unsigned char key[SECRETBOX_KEYBYTES];
};

struct secretbox_keyring {
    uint32_t current; /* kid that seals; 0 = none yet */
    size_t nkeys;
    struct secretbox_key keys[SECRETBOX_MAX_KEYS];
};

/* An empty keyring. Teardown: secretbox_keyring_free (wipes the keys). */
void secretbox_keyring_init(struct secretbox_keyring *kr);
void secretbox_keyring_free(struct secretbox_keyring *kr);

/* Adds key under kid (1 and up) and, if it is the first key, makes it current.
 * Returns 0, or -1 for kid 0, a kid already present, or a full ring. */
int secretbox_keyring_add(struct secretbox_keyring *kr, uint32_t kid,
                          const unsigned char key[SECRETBOX_KEYBYTES]);

/* Makes kid (already added) the key new records are sealed with. Returns 0 or -1. */
int secretbox_keyring_use(struct secretbox_keyring *kr, uint32_t kid);

/* Encrypts pt[0..len) bound to ad (a NUL-terminated string, "" allowed) under the current key
 * into *out (NUL-terminated text; free() it). Returns SECRETBOX_OK, SECRETBOX_EKID with no
 * current key, or SECRETBOX_EFORMAT when len > SECRETBOX_MAX_PLAINTEXT. */
int secretbox_seal(const struct secretbox_keyring *kr, const char *ad, const void *pt, size_t len,
                   char **out);

/* Decrypts text sealed with the same ad. On SECRETBOX_OK *out holds *len bytes plus a NUL (so a
 * text secret is a C string); release it with secretbox_free, which wipes it first. On failure
 * *out is NULL and *len 0. */
int secretbox_open(const struct secretbox_keyring *kr, const char *ad, const char *text,
                   unsigned char **out, size_t *len);

/* Wipes and frees what secretbox_open returned. NULL is fine. */
void secretbox_free(unsigned char *p, size_t len);

/* True if text was sealed under a key other than the current one (or cannot be parsed):
 * open it and seal it again to finish a rotation. */
bool secretbox_needs_reseal(const struct secretbox_keyring *kr, const char *text);

#endif
