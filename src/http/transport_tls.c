/*
 * Server-side TLS (mbedTLS) behind the transport interface. The only file
 * that includes mbedTLS (STYLE.md 4).
 *
 * mbedTLS never touches the socket: its BIO callbacks read ciphertext from
 * the connection's input buffer (filled by libuv reads) and append
 * ciphertext to an output buffer (written with uv_write). When the input
 * buffer runs dry the BIO answers WANT_READ and we return to the loop, so a
 * handshake or a record that arrives a byte at a time never blocks it.
 *
 * "pump" drives everything: handshake steps, decrypting records into the
 * owner's buffers, delivering EOF or errors. It runs after every raw read,
 * and from an idle handle when the owner restarts reading while decrypted or
 * still-encrypted input is buffered (delivering from inside read_start would
 * re-enter the owner, which calls read_start from its own read callback).
 *
 * Raw reading follows the owner's: while the owner does not read (its own
 * back-pressure) we stop reading the socket too, so buffered input stays
 * bounded by one TLS record plus one socket read.
 */
#include "opsc/transport.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "opsc/buf.h"
#include "opsc/error.h"

#define OPSC__TLS_READ_CHUNK (16 * 1024 + 512) /* one full record and then some */
#define OPSC__TLS_APP_CHUNK (16 * 1024)

struct opsc_tls_server_s {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
};

typedef struct opsc__tls_conn_s {
    mbedtls_ssl_context ssl;
    uv_idle_t pump; /* deferred delivery; data = transport */
    opsc_buf_t rin; /* ciphertext read, not yet consumed by mbedTLS */
    size_t rin_off;
    opsc_buf_t wout;    /* ciphertext produced, not yet written */
    opsc_buf_t wflight; /* ciphertext of the raw write in flight */
    int error;          /* first fatal error, delivered to the owner's read_cb */
    unsigned handshake_done : 1;
    unsigned user_reading : 1;
    unsigned raw_reading : 1;
    unsigned raw_writing : 1;
    unsigned raw_eof : 1;
    unsigned user_write_pending : 1; /* write_cb owed once wout and wflight drain */
    unsigned shutdown_waiting : 1;   /* uv_shutdown owed once they drain */
    unsigned in_pump : 1;
    unsigned error_delivered : 1;
} opsc__tls_conn_t;

/* Modern AEAD suites with forward secrecy only; the order is our preference. */
static const int opsc__tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static const char *opsc__tls_alpn[] = {"http/1.1", NULL};

const char *opsc_tls_versions(void) {
    return "TLSv1.2";
}

/* ------------------------------------------------------------------------ */
/* Server settings                                                          */

static void tls_strerror(int ret, char *out, size_t outlen) {
    mbedtls_strerror(ret, out, outlen);
    if (out[0] == '\0') {
        snprintf(out, outlen, "mbedTLS error -0x%04x", (unsigned int)-ret);
    }
}

int opsc_tls_server_create(const char *cert_path, const char *key_path, opsc_tls_server_t **out,
                           char *errbuf, size_t errlen) {
    static const char pers[] = "opsconductor-tls";
    opsc_tls_server_t *s;
    char why[160];
    int ret;

    *out = NULL;
    if (cert_path == NULL || cert_path[0] == '\0' || key_path == NULL || key_path[0] == '\0') {
        opsc_errbuf_printf(errbuf, errlen,
                           "http.tls.listen needs http.tls.cert and http.tls.key (PEM files)");
        return OPSC_ECONFIG;
    }
    s = opsc_calloc(1, sizeof(*s));
    if (s == NULL) {
        opsc_errbuf_printf(errbuf, errlen, "tls: out of memory");
        return OPSC_ENOMEM;
    }
    mbedtls_entropy_init(&s->entropy);
    mbedtls_ctr_drbg_init(&s->drbg);
    mbedtls_ssl_config_init(&s->conf);
    mbedtls_x509_crt_init(&s->crt);
    mbedtls_pk_init(&s->key);

    ret = mbedtls_x509_crt_parse_file(&s->crt, cert_path);
    if (ret != 0) {
        tls_strerror(ret, why, sizeof(why));
        opsc_errbuf_printf(errbuf, errlen, "http.tls.cert %s: %s", cert_path, why);
        goto error;
    }
    ret = mbedtls_pk_parse_keyfile(&s->key, key_path, NULL);
    if (ret != 0) {
        tls_strerror(ret, why, sizeof(why));
        opsc_errbuf_printf(errbuf, errlen, "http.tls.key %s: %s", key_path, why);
        goto error;
    }
    ret = mbedtls_pk_check_pair(&s->crt.pk, &s->key);
    if (ret != 0) {
        opsc_errbuf_printf(errbuf, errlen, "http.tls.key %s: not the key of http.tls.cert %s",
                           key_path, cert_path);
        goto error;
    }
    ret = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
                                (const unsigned char *)pers, sizeof(pers) - 1);
    if (ret == 0) {
        ret = mbedtls_ssl_config_defaults(&s->conf, MBEDTLS_SSL_IS_SERVER,
                                          MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    }
    if (ret == 0) {
        mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &s->drbg);
        mbedtls_ssl_conf_min_version(&s->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_ciphersuites(&s->conf, opsc__tls_suites);
        ret = mbedtls_ssl_conf_alpn_protocols(&s->conf, opsc__tls_alpn);
    }
    if (ret == 0) {
        ret = mbedtls_ssl_conf_own_cert(&s->conf, &s->crt, &s->key);
    }
    if (ret != 0) {
        tls_strerror(ret, why, sizeof(why));
        opsc_errbuf_printf(errbuf, errlen, "tls: %s", why);
        goto error;
    }
    *out = s;
    return 0;

error:
    opsc_tls_server_destroy(s);
    return OPSC_ECONFIG;
}

void opsc_tls_server_destroy(opsc_tls_server_t *s) {
    if (s == NULL) {
        return;
    }
    mbedtls_ssl_config_free(&s->conf);
    mbedtls_pk_free(&s->key);
    mbedtls_x509_crt_free(&s->crt);
    mbedtls_ctr_drbg_free(&s->drbg);
    mbedtls_entropy_free(&s->entropy);
    opsc_free(s);
}

/* ------------------------------------------------------------------------ */
/* BIO over our buffers                                                     */

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
    opsc__tls_conn_t *tls = ctx;

    if (opsc_buf_append(&tls->wout, buf, len) != 0) {
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    }
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
    opsc__tls_conn_t *tls = ctx;
    size_t avail = tls->rin.len - tls->rin_off;

    if (avail == 0) {
        /* EOF is the pump's business: mbedTLS would call a bare FIN an error. */
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    if (len > avail) {
        len = avail;
    }
    memcpy(buf, tls->rin.base + tls->rin_off, len);
    tls->rin_off += len;
    if (tls->rin_off == tls->rin.len) {
        tls->rin.len = 0;
        tls->rin_off = 0;
    }
    return (int)len;
}

/* ------------------------------------------------------------------------ */
/* Raw I/O                                                                  */

static void tls_pump(opsc_transport_t *t);
static void tls_maybe_shutdown(opsc_transport_t *t);

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    opsc_transport_t *t = h->data;
    opsc__tls_conn_t *tls = t->tls;

    (void)suggested;
    if (opsc_buf_reserve(&tls->rin, OPSC__TLS_READ_CHUNK) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = tls->rin.base + tls->rin.len;
    buf->len = tls->rin.cap - tls->rin.len - 1;
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    opsc_transport_t *t = s->data;
    opsc__tls_conn_t *tls = t->tls;

    (void)buf;
    if (t->closing || nread == 0) {
        return;
    }
    if (nread < 0) {
        tls->raw_reading = 0; /* libuv stopped on EOF and errors */
        if (nread == UV_EOF) {
            tls->raw_eof = 1;
        } else if (tls->error == 0) {
            tls->error = (int)nread;
        }
    } else {
        tls->rin.len += (size_t)nread;
    }
    tls_pump(t);
}

static void raw_update_reading(opsc_transport_t *t) {
    opsc__tls_conn_t *tls = t->tls;
    int want = !t->closing && !tls->raw_eof && tls->error == 0 &&
               (!tls->handshake_done || tls->user_reading);

    if (want && !tls->raw_reading) {
        if (uv_read_start((uv_stream_t *)&t->tcp, raw_alloc, raw_read) == 0) {
            tls->raw_reading = 1;
        } else if (tls->error == 0) {
            tls->error = UV_EPROTO;
        }
    } else if (!want && tls->raw_reading) {
        uv_read_stop((uv_stream_t *)&t->tcp);
        tls->raw_reading = 0;
    }
}

static int tls_flush(opsc_transport_t *t);

static void raw_write_done(uv_write_t *w, int status) {
    opsc_transport_t *t = w->data;
    opsc__tls_conn_t *tls = t->tls;

    tls->raw_writing = 0;
    tls->wflight.len = 0;
    if (status == 0 && !t->closing) {
        status = tls_flush(t);
    }
    if (status != 0) {
        if (tls->error == 0) {
            tls->error = status;
        }
        if (tls->user_write_pending) {
            tls->user_write_pending = 0;
            t->write_cb(t, status);
        }
        if (tls->shutdown_waiting) {
            tls->shutdown_waiting = 0;
            t->shutdown_cb(t, status);
        }
        return;
    }
    if (tls->raw_writing) {
        return; /* more ciphertext went out; its completion settles what is owed */
    }
    if (tls->user_write_pending) {
        tls->user_write_pending = 0;
        t->write_cb(t, 0);
    }
    tls_maybe_shutdown(t);
}

/* Write whatever ciphertext waits, unless a raw write is in flight already. */
static int tls_flush(opsc_transport_t *t) {
    opsc__tls_conn_t *tls = t->tls;
    opsc_buf_t tmp;
    uv_buf_t b;
    int err;

    if (tls->raw_writing || tls->wout.len == 0 || t->closing) {
        return 0;
    }
    tmp = tls->wflight;
    tls->wflight = tls->wout;
    tls->wout = tmp;
    tls->wout.len = 0;
    b = uv_buf_init(tls->wflight.base, (unsigned int)tls->wflight.len);
    t->wreq.data = t;
    err = uv_write(&t->wreq, (uv_stream_t *)&t->tcp, &b, 1, raw_write_done);
    if (err != 0) {
        return err;
    }
    tls->raw_writing = 1;
    return 0;
}

static void raw_shutdown_done(uv_shutdown_t *r, int status) {
    opsc_transport_t *t = r->data;

    t->shutdown_cb(t, status);
}

static void tls_maybe_shutdown(opsc_transport_t *t) {
    opsc__tls_conn_t *tls = t->tls;
    int err;

    if (!tls->shutdown_waiting || tls->raw_writing || tls->wout.len > 0 || t->closing) {
        return;
    }
    tls->shutdown_waiting = 0;
    t->sreq.data = t;
    err = uv_shutdown(&t->sreq, (uv_stream_t *)&t->tcp, raw_shutdown_done);
    if (err != 0) {
        t->shutdown_cb(t, err);
    }
}

/* ------------------------------------------------------------------------ */
/* The pump                                                                 */

static int tls_to_uv(int ret) {
    (void)ret;
    return UV_EPROTO;
}

/* Give the owner an error or EOF once; reading ends with it. */
static void deliver_end(opsc_transport_t *t, int status) {
    opsc__tls_conn_t *tls = t->tls;
    uv_buf_t b = uv_buf_init(NULL, 0);

    if (tls->error_delivered || !tls->user_reading) {
        return;
    }
    tls->error_delivered = 1;
    tls->user_reading = 0;
    t->read_cb(t, status, &b);
}

static void pump_handshake(opsc_transport_t *t) {
    opsc__tls_conn_t *tls = t->tls;
    int ret = mbedtls_ssl_handshake(&tls->ssl);

    if (ret == 0) {
        tls->handshake_done = 1;
        if (tls->user_reading) {
            uv_buf_t b = uv_buf_init(NULL, 0);
            t->read_cb(t, 0, &b); /* "ready": the owner may re-arm its timers */
        }
    } else if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) {
        if (tls->error == 0) {
            tls->error = tls_to_uv(ret);
        }
    } else if (tls->raw_eof && tls->error == 0) {
        tls->error = UV_EOF; /* gone before the handshake finished */
    }
}

static void pump_records(opsc_transport_t *t) {
    opsc__tls_conn_t *tls = t->tls;

    while (tls->handshake_done && tls->user_reading && !t->closing && tls->error == 0) {
        uv_buf_t b = uv_buf_init(NULL, 0);
        int ret;

        t->alloc_cb(t, OPSC__TLS_APP_CHUNK, &b);
        if (b.base == NULL || b.len == 0) {
            deliver_end(t, UV_ENOBUFS);
            return;
        }
        ret = mbedtls_ssl_read(&tls->ssl, (unsigned char *)b.base, b.len);
        if (ret > 0) {
            t->read_cb(t, ret, &b);
            continue;
        }
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
            if (tls->raw_eof) {
                deliver_end(t, UV_EOF); /* a bare FIN: HTTP framing tells truncation */
            }
            return;
        }
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == 0) {
            deliver_end(t, UV_EOF);
            return;
        }
        tls->error = tls_to_uv(ret);
    }
}

static void tls_pump(opsc_transport_t *t) {
    opsc__tls_conn_t *tls = t->tls;
    int err;

    if (tls->in_pump || t->closing) {
        return;
    }
    tls->in_pump = 1;
    if (!tls->handshake_done && tls->error == 0) {
        pump_handshake(t);
    }
    pump_records(t);
    err = tls_flush(t); /* handshake messages, alerts */
    if (err != 0 && tls->error == 0) {
        tls->error = err;
    }
    if (tls->error != 0 && !t->closing) {
        deliver_end(t, tls->error);
    }
    if (!t->closing) {
        raw_update_reading(t);
    }
    tls->in_pump = 0;
}

static void pump_idle_cb(uv_idle_t *h) {
    opsc_transport_t *t = h->data;

    uv_idle_stop(h);
    tls_pump(t);
}

/* ------------------------------------------------------------------------ */
/* The vtable                                                               */

static int tls_read_start(opsc_transport_t *t, opsc_transport_alloc_cb a,
                          opsc_transport_read_cb r) {
    opsc__tls_conn_t *tls = t->tls;

    if (t->closing) {
        return UV_EINVAL;
    }
    t->alloc_cb = a;
    t->read_cb = r;
    if (tls->user_reading) {
        return 0;
    }
    tls->user_reading = 1;
    if (tls->in_pump) {
        return 0; /* the running pump sees the flag */
    }
    if (tls->error != 0 || tls->raw_eof || tls->rin.len > tls->rin_off ||
        (tls->handshake_done && mbedtls_ssl_get_bytes_avail(&tls->ssl) > 0)) {
        return uv_idle_start(&tls->pump, pump_idle_cb);
    }
    raw_update_reading(t);
    return tls->error == 0 ? 0 : tls->error;
}

static void tls_read_stop(opsc_transport_t *t) {
    opsc__tls_conn_t *tls = t->tls;

    tls->user_reading = 0;
    if (!tls->in_pump && !t->closing) {
        raw_update_reading(t);
    }
}

static int tls_write(opsc_transport_t *t, const uv_buf_t *bufs, unsigned int nbufs,
                     opsc_transport_write_cb cb) {
    opsc__tls_conn_t *tls = t->tls;
    unsigned int i;
    int err;

    if (t->closing || !tls->handshake_done || tls->error != 0) {
        return tls->error != 0 ? tls->error : UV_ENOTCONN;
    }
    if (tls->user_write_pending) {
        return UV_EBUSY;
    }
    for (i = 0; i < nbufs; i++) {
        size_t off = 0;
        while (off < bufs[i].len) {
            /* Our BIO takes everything, so each call encrypts up to one record. */
            int ret = mbedtls_ssl_write(&tls->ssl, (const unsigned char *)bufs[i].base + off,
                                        bufs[i].len - off);
            if (ret < 0) {
                tls->error = tls_to_uv(ret);
                return tls->error;
            }
            off += (size_t)ret;
        }
    }
    err = tls_flush(t);
    if (err != 0) {
        tls->error = err;
        return err;
    }
    t->write_cb = cb;
    tls->user_write_pending = 1;
    return 0;
}

static int tls_shutdown(opsc_transport_t *t, opsc_transport_shutdown_cb cb) {
    opsc__tls_conn_t *tls = t->tls;
    int err;

    if (t->closing) {
        return UV_EINVAL;
    }
    t->shutdown_cb = cb;
    if (tls->handshake_done && tls->error == 0) {
        /* The alert is queued behind any response still being written. */
        mbedtls_ssl_close_notify(&tls->ssl);
        err = tls_flush(t);
        if (err != 0) {
            return err;
        }
    }
    if (tls->raw_writing || tls->wout.len > 0) {
        tls->shutdown_waiting = 1;
        return 0;
    }
    t->sreq.data = t;
    return uv_shutdown(&t->sreq, (uv_stream_t *)&t->tcp, raw_shutdown_done);
}

static void tls_handle_closed(uv_handle_t *h) {
    opsc_transport_t *t = h->data;
    opsc__tls_conn_t *tls = t->tls;

    if (--t->pending_closes > 0) {
        return;
    }
    mbedtls_ssl_free(&tls->ssl);
    opsc_buf_free(&tls->rin);
    opsc_buf_free(&tls->wout);
    opsc_buf_free(&tls->wflight);
    opsc_free(tls);
    t->tls = NULL;
    if (t->close_cb != NULL) {
        t->close_cb(t);
    }
}

static void tls_close(opsc_transport_t *t, opsc_transport_close_cb cb) {
    opsc__tls_conn_t *tls = t->tls;

    if (t->closing) {
        return;
    }
    t->closing = 1;
    t->close_cb = cb;
    tls->user_reading = 0;
    t->pending_closes = 2;
    /* A raw write or shutdown in flight is cancelled; its callback runs first. */
    uv_close((uv_handle_t *)&t->tcp, tls_handle_closed);
    uv_close((uv_handle_t *)&tls->pump, tls_handle_closed);
}

static int tls_ready(const opsc_transport_t *t) {
    return t->tls != NULL && t->tls->handshake_done;
}

static const opsc_transport_vtable_t opsc__tls_vtable = {
    .name = "tls",
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .ready = tls_ready,
};

int opsc_transport_tls_init(uv_loop_t *loop, opsc_transport_t *t, opsc_tls_server_t *srv) {
    opsc__tls_conn_t *tls = opsc_calloc(1, sizeof(*tls));
    int err;

    if (tls == NULL) {
        return UV_ENOMEM;
    }
    mbedtls_ssl_init(&tls->ssl);
    if (mbedtls_ssl_setup(&tls->ssl, &srv->conf) != 0) {
        mbedtls_ssl_free(&tls->ssl);
        opsc_free(tls);
        return UV_ENOMEM;
    }
    mbedtls_ssl_set_bio(&tls->ssl, tls, bio_send, bio_recv, NULL);
    err = uv_tcp_init(loop, &t->tcp);
    if (err != 0) {
        mbedtls_ssl_free(&tls->ssl);
        opsc_free(tls);
        return err;
    }
    /* libuv's uv_idle_init cannot fail; so nothing is left half-open here. */
    (void)uv_idle_init(loop, &tls->pump);
    tls->pump.data = t;
    t->tcp.data = t;
    t->tls = tls;
    t->vt = &opsc__tls_vtable;
    t->closing = 0;
    return 0;
}
