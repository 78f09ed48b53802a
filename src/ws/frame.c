/* frame.c — see frame.h. */
#include "lib/common.h"

#include <pthread.h>
#include <wslay/wslay.h>

#include "ws/frame.h"

/* The frame being encoded on this thread; the encoder's send callback appends to it. */
struct encoding {
    struct ws_frame *f;
    size_t cap;
};

static pthread_key_t enc_key;
static pthread_once_t enc_once = PTHREAD_ONCE_INIT;

static void enc_free(void *p)
{
    wslay_frame_context_free(p);
}

static void enc_init(void)
{
    pthread_key_create(&enc_key, enc_free);
}

static ssize_t enc_send(const uint8_t *data, size_t len, int flags, void *user)
{
    struct encoding *e = user;
    (void)flags;
    if (e->f->len + len > e->cap)
        return WSLAY_ERR_INVALID_ARGUMENT; /* cannot happen: sized for the longest header */
    memcpy(e->f->data + e->f->len, data, len);
    e->f->len += (uint32_t)len;
    return (ssize_t)len;
}

static ssize_t enc_recv(uint8_t *buf, size_t len, int flags, void *user)
{
    (void)buf;
    (void)len;
    (void)flags;
    (void)user;
    return WSLAY_ERR_INVALID_ARGUMENT; /* an encoder never reads */
}

static int enc_genmask(uint8_t *buf, size_t len, void *user)
{
    (void)user;
    memset(buf, 0, len); /* servers do not mask */
    return 0;
}

/* This thread's encoder: a wslay frame context whose user data is switched per frame. */
static wslay_frame_context_ptr encoder(struct encoding **slot)
{
    static __thread struct encoding current;
    pthread_once(&enc_once, enc_init);
    wslay_frame_context_ptr fc = pthread_getspecific(enc_key);
    if (!fc) {
        struct wslay_frame_callbacks cb = {enc_send, enc_recv, enc_genmask};
        if (wslay_frame_context_init(&fc, &cb, &current) != 0)
            zy_oom(sizeof(void *));
        pthread_setspecific(enc_key, fc);
    }
    *slot = &current;
    return fc;
}

struct ws_frame *ws_frame_new(uint8_t opcode, const void *payload, size_t n)
{
    if (n > (1u << 31) || ((opcode & 0x8) && n > 125))
        return NULL;
    struct encoding *e;
    wslay_frame_context_ptr fc = encoder(&e);
    e->cap = n + 10; /* longest server header: 2 + 8-byte length, no mask */
    e->f = xmalloc(sizeof(struct ws_frame) + e->cap);
    atomic_init(&e->f->refs, 1);
    e->f->len = 0;
    struct wslay_frame_iocb io = {
        .fin = 1,
        .opcode = opcode,
        .mask = 0,
        .payload_length = n,
        .data = payload,
        .data_length = n,
    };
    /* The callback takes every byte, so one call writes header and payload. */
    ssize_t w = wslay_frame_send(fc, &io);
    struct ws_frame *f = e->f;
    e->f = NULL;
    if (w < 0 || (size_t)w != n) {
        free(f);
        return NULL;
    }
    return f;
}

struct ws_frame *ws_frame_raw(const void *bytes, size_t n)
{
    struct ws_frame *f = xmalloc(sizeof(*f) + n);
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)n;
    memcpy(f->data, bytes, n);
    return f;
}

struct ws_frame *ws_frame_ref(struct ws_frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void ws_frame_unref(struct ws_frame *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}
