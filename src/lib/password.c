/* password.c — argon2id password hashes and the equal-cost dummy verification; see password.h. */
#include "lib/common.h"

#include "lib/password.h"

#include <pthread.h>
#include <unistd.h>
#include <sodium.h>

#include "lib/token.h"

_Static_assert(PASSWORD_HASH_MAX == crypto_pwhash_argon2id_STRBYTES, "hash buffer size");

const struct password_params password_params_default = {
    .opslimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE, /* 2 */
    .memlimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE, /* 64 MiB */
};

const struct password_params password_params_owasp_min = {
    .opslimit = 2,
    .memlimit = 19u * 1024 * 1024,
};

/* Dummy hashes, one per parameter set in use (in practice one, plus whatever tests ask for). */
#define DUMMY_SLOTS 8
static struct dummy {
    struct password_params params;
    char hash[PASSWORD_HASH_MAX];
} dummies[DUMMY_SLOTS];
static size_t ndummies;
static pthread_mutex_t dummies_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * argon2id is CPU- and memory-bound by design. Running one per worker thread would take every
 * core and leave the I/O thread (and /health) waiting for the scheduler; a gate keeps at most
 * one core's worth fewer than the machine has busy with it. Callers queue for a slot.
 */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static long gate_free = -1; /* -1: not sized yet */

static void gate_enter(void)
{
    pthread_mutex_lock(&gate_mu);
    if (gate_free < 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        gate_free = n > 1 ? n - 1 : 1;
    }
    while (gate_free == 0)
        pthread_cond_wait(&gate_cv, &gate_mu);
    gate_free--;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_leave(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_free++;
    pthread_cond_signal(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

bool password_params_ok(const struct password_params *p)
{
    return p->opslimit >= password_params_owasp_min.opslimit &&
           p->memlimit >= password_params_owasp_min.memlimit;
}

int password_hash_with(const struct password_params *p, const char *pw, char out[PASSWORD_HASH_MAX])
{
    size_t len = strlen(pw);
    if (len > PASSWORD_MAX_BYTES)
        return -1;
    token_crypto_init();
    gate_enter();
    int rc = crypto_pwhash_argon2id_str(out, pw, len, p->opslimit, p->memlimit);
    gate_leave();
    return rc != 0 ? -1 : 0;
}

int password_hash(const char *pw, char out[PASSWORD_HASH_MAX])
{
    return password_hash_with(&password_params_default, pw, out);
}

bool password_verify(const char *hash, const char *pw)
{
    size_t len = strlen(pw);
    if (len > PASSWORD_MAX_BYTES)
        return false;
    token_crypto_init();
    gate_enter();
    bool ok = crypto_pwhash_argon2id_str_verify(hash, pw, len) == 0;
    gate_leave();
    return ok;
}

/* Copies the dummy hash for p into out if there is one; dummies_mu must be held. */
static bool dummy_find_locked(const struct password_params *p, char out[PASSWORD_HASH_MAX])
{
    for (size_t i = 0; i < ndummies; i++) {
        if (dummies[i].params.opslimit == p->opslimit &&
            dummies[i].params.memlimit == p->memlimit) {
            memcpy(out, dummies[i].hash, PASSWORD_HASH_MAX);
            return true;
        }
    }
    return false;
}

bool password_verify_dummy_with(const struct password_params *p, const char *pw)
{
    /* Same early exit as password_verify. */
    if (strlen(pw) > PASSWORD_MAX_BYTES)
        return false;
    char hash[PASSWORD_HASH_MAX];
    pthread_mutex_lock(&dummies_mu);
    bool have = dummy_find_locked(p, hash);
    pthread_mutex_unlock(&dummies_mu);
    if (have) {
        (void)password_verify(hash, pw);
        return false;
    }
    /* First use of these parameters: making the dummy hash is one argon2id run, which is what a
     * verification costs, so this call needs no verification on top. The dummy hashes a random
     * password, so nobody can log in "as" it. Two threads racing here both hash; one is kept. */
    char rnd[TOKEN_LEN + 1];
    token_new(rnd, sizeof(rnd));
    int rc = password_hash_with(p, rnd, hash);
    sodium_memzero(rnd, sizeof(rnd));
    if (rc != 0)
        return false;
    char existing[PASSWORD_HASH_MAX];
    pthread_mutex_lock(&dummies_mu);
    if (!dummy_find_locked(p, existing) && ndummies < DUMMY_SLOTS) {
        dummies[ndummies].params = *p;
        memcpy(dummies[ndummies].hash, hash, sizeof(hash));
        ndummies++;
    }
    pthread_mutex_unlock(&dummies_mu);
    return false;
}

bool password_verify_dummy(const char *pw)
{
    return password_verify_dummy_with(&password_params_default, pw);
}

bool password_needs_rehash_with(const struct password_params *p, const char *hash)
{
    token_crypto_init();
    /* 0: argon2id with exactly these parameters; 1: other parameters; -1: not argon2id. */
    return crypto_pwhash_argon2id_str_needs_rehash(hash, p->opslimit, p->memlimit) != 0;
}

bool password_needs_rehash(const char *hash)
{
    return password_needs_rehash_with(&password_params_default, hash);
}
