/* tls.c - SIP over TLS (RFC 3261 §26.2, RFC 5630): OpenSSL 3 contexts and
 * the TLS flavour of the stream connection ops.
 *
 * Non-blocking OpenSSL after nginx's ngx_ssl_handle_recv(): SSL_ERROR_WANT_
 * READ/WANT_WRITE become IMS_EAGAIN, and the op notes which readiness it
 * waits for (tls_want_write for reads and the handshake, tls_want_read for
 * writes) so that tls_set_interest() asks epoll for it and conn_io_cb()
 * retries the right operation. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "base/err.h"
#include "base/log.h"
#include "net/net_int.h"

/* TLS 1.2 suites: forward secrecy and AEAD only (RFC 7525 §4.2: ECDHE with
 * AES-GCM; RFC 7905 ChaCha20-Poly1305).  TLS 1.3 keeps OpenSSL's defaults
 * (all AEAD) unless tls_ciphersuites says otherwise.  TLS 1.0/1.1 are
 * refused (RFC 8996). */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"

static void ssl_err(char *err, size_t errsz, const char *what, const char *file)
{
    char reason[256];
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    else
        snprintf(reason, sizeof(reason), "unknown error");
    snprintf(err, errsz, "%s%s%s: %s", what, file ? " " : "", file ? file : "", reason);
    ERR_clear_error();
}

static int ctx_common(SSL_CTX *ctx, const struct sip_tp_cfg *cfg, char *err, size_t errsz)
{
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        ssl_err(err, errsz, "tls min version", NULL);
        return IMS_EINVAL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 /* peers that just close TCP: an EOF, not an error */
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes and a moving buffer: the write queue is compacted and
     * reallocated between retries of the same bytes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers ? cfg->tls_ciphers : TLS12_CIPHERS)) {
        ssl_err(err, errsz, "tls_ciphers", NULL);
        return IMS_EINVAL;
    }
    if (cfg->tls_ciphersuites && !SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites)) {
        ssl_err(err, errsz, "tls_ciphersuites", NULL);
        return IMS_EINVAL;
    }
    SSL_CTX_set_verify_depth(ctx, 8);
    return 0;
}

static int load_cert_key(SSL_CTX *ctx, const char *cert, const char *key, char *err,
                         size_t errsz)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_err(err, errsz, "tls_cert_file", cert);
        return IMS_EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ssl_err(err, errsz, "tls_key_file", key);
        return IMS_EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, errsz, "tls_key_file does not match tls_cert_file", NULL);
        return IMS_EINVAL;
    }
    return 0;
}

static int load_ca(SSL_CTX *ctx, const struct sip_tp_cfg *cfg, char *err, size_t errsz)
{
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) != 1) {
        ssl_err(err, errsz, "tls_ca_file", cfg->tls_ca_file);
        return IMS_EINVAL;
    }
    return 0;
}

int ims_tls_ctx_server(const struct sip_tp_cfg *cfg, SSL_CTX **out, char *err, size_t errsz)
{
    if (!cfg->tls_cert_file || !cfg->tls_key_file) {
        snprintf(err, errsz, "TLS listener needs tls_cert_file and tls_key_file");
        return IMS_EINVAL;
    }
    if (cfg->tls_verify_client && !cfg->tls_ca_file) {
        snprintf(err, errsz, "tls_verify_client needs tls_ca_file");
        return IMS_EINVAL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_err(err, errsz, "SSL_CTX_new", NULL);
        return IMS_ENOMEM;
    }
    int rc = ctx_common(ctx, cfg, err, errsz);
    if (!rc)
        rc = load_cert_key(ctx, cfg->tls_cert_file, cfg->tls_key_file, err, errsz);
    if (!rc && cfg->tls_verify_client) {
        rc = load_ca(ctx, cfg, err, errsz);
        if (!rc) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca_file);
            if (!names) {
                ssl_err(err, errsz, "tls_ca_file", cfg->tls_ca_file);
                rc = IMS_EINVAL;
            } else {
                SSL_CTX_set_client_CA_list(ctx, names); /* takes ownership */
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
            }
        }
    }
    /* Session resumption with client certificates needs an id context. */
    static const unsigned char sid_ctx[] = "imscloud-sip";
    if (!rc && SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        ssl_err(err, errsz, "session id context", NULL);
        rc = IMS_EINVAL;
    }
    if (rc) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int ims_tls_ctx_client(const struct sip_tp_cfg *cfg, SSL_CTX **out, char *err, size_t errsz)
{
    if (cfg->tls_verify_server && !cfg->tls_ca_file) {
        snprintf(err, errsz, "tls_verify_server needs tls_ca_file");
        return IMS_EINVAL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_err(err, errsz, "SSL_CTX_new", NULL);
        return IMS_ENOMEM;
    }
    int rc = ctx_common(ctx, cfg, err, errsz);
    /* Mutual TLS between IMS nodes: the client certificate, else our server
     * certificate doubles as one. */
    if (!rc && (cfg->tls_client_cert_file || cfg->tls_client_key_file)) {
        if (!cfg->tls_client_cert_file || !cfg->tls_client_key_file) {
            snprintf(err, errsz, "tls_client_cert and tls_client_key go together");
            rc = IMS_EINVAL;
        } else {
            rc = load_cert_key(ctx, cfg->tls_client_cert_file, cfg->tls_client_key_file, err,
                               errsz);
        }
    } else if (!rc && cfg->tls_cert_file && cfg->tls_key_file) {
        rc = load_cert_key(ctx, cfg->tls_cert_file, cfg->tls_key_file, err, errsz);
    }
    if (!rc && cfg->tls_verify_server) {
        rc = load_ca(ctx, cfg, err, errsz);
        if (!rc)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (rc) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int ims_tls_attach(struct sip_conn *c, SSL_CTX *ctx, bool accepting)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return IMS_ENOMEM;
    if (SSL_set_fd(ssl, c->fd) != 1) { /* a socket BIO that does not close fd */
        SSL_free(ssl);
        ERR_clear_error();
        return IMS_ENOMEM;
    }
    if (accepting)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    c->ssl = ssl;
    return 0;
}

int ims_tls_attach_shared(struct sip_conn *c, struct sip_tp_shared *sh, bool accepting)
{
    /* SSL_new() takes its own reference on the context: a reload may free
     * ours right after the unlock, the connection keeps the one it got. */
    pthread_mutex_lock(&sh->ctx_lock);
    int rc = ims_tls_attach(c, accepting ? sh->srv_ctx : sh->cli_ctx, accepting);
    pthread_mutex_unlock(&sh->ctx_lock);
    return rc;
}

int ims_sip_tp_shared_reload_tls(struct sip_tp_shared *sh, const struct sip_tp_cfg *cfg,
                                 char *err, size_t errsz)
{
    SSL_CTX *srv = NULL, *cli = NULL;
    int rc = 0;
    pthread_mutex_lock(&sh->ctx_lock);
    bool has_srv = sh->srv_ctx != NULL;
    pthread_mutex_unlock(&sh->ctx_lock);
    if (has_srv)
        rc = ims_tls_ctx_server(cfg, &srv, err, errsz);
    if (!rc)
        rc = ims_tls_ctx_client(cfg, &cli, err, errsz);
    if (rc) {
        SSL_CTX_free(srv);
        return rc;
    }
    pthread_mutex_lock(&sh->ctx_lock);
    SSL_CTX *old_srv = sh->srv_ctx, *old_cli = sh->cli_ctx;
    if (has_srv)
        sh->srv_ctx = srv;
    sh->cli_ctx = cli;
    pthread_mutex_unlock(&sh->ctx_lock);
    /* live connections hold their own references: they keep working */
    if (has_srv)
        SSL_CTX_free(old_srv);
    SSL_CTX_free(old_cli);
    return 0;
}

/* Keeps the verified peer certificate's subject CN, if verification was on
 * for this connection and passed.  A CN with control bytes or an embedded
 * NUL is ignored rather than truncated. */
static void tls_peer_cn(struct sip_conn *c)
{
    c->peer_cn[0] = '\0';
    if (!(SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER))
        return;
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    if (!cert || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return;
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0)
        return;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n <= 0)
        return;
    if ((size_t)n < sizeof(c->peer_cn)) {
        bool ok = true;
        for (int i = 0; i < n; i++)
            ok &= utf8[i] >= 0x20 && utf8[i] != 0x7f;
        if (ok) {
            memcpy(c->peer_cn, utf8, (size_t)n);
            c->peer_cn[n] = '\0';
        }
    }
    OPENSSL_free(utf8);
}

static int tls_fail(struct sip_conn *c, int sslerr, const char *op)
{
    char reason[200];
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    else
        snprintf(reason, sizeof(reason), "ssl_error=%d", sslerr);
    ERR_clear_error();
    unsigned sup;
    if (ims_tp_log_ok(c->tp, &sup)) {
        char as[IMS_ADDR_STRLEN];
        LOG_W("net", "event=tls_error op=%s peer=%s conn=%llx reason=\"%s\" suppressed=%u", op,
              ims_addr_str(&c->peer, as, sizeof(as)), (unsigned long long)c->id, reason, sup);
    }
    return sslerr == SSL_ERROR_SYSCALL ? IMS_EIO : IMS_EPROTO;
}

static int tls_handshake(struct sip_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_want_write = false;
        tls_peer_cn(c);
        LOG_D("net", "event=tls_established conn=%llx version=%s cipher=%s peer_cn=%s",
              (unsigned long long)c->id, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
              c->peer_cn[0] ? c->peer_cn : "-");
        return 0;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->tls_want_write = false;
        return IMS_EAGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->tls_want_write = true;
        return IMS_EAGAIN;
    }
    return tls_fail(c, e, "handshake");
}

static ssize_t tls_read(struct sip_conn *c, char *buf, size_t len)
{
    size_t n = 0;
    ERR_clear_error();
    if (SSL_read_ex(c->ssl, buf, len, &n) == 1) {
        c->tls_want_write = false;
        return (ssize_t)n;
    }
    int e = SSL_get_error(c->ssl, 0);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->tls_want_write = false;
        return IMS_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_write = true;
        return IMS_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return tls_fail(c, e, "read");
    }
}

static ssize_t tls_write(struct sip_conn *c, const char *buf, size_t len)
{
    size_t n = 0;
    ERR_clear_error();
    if (SSL_write_ex(c->ssl, buf, len, &n) == 1) {
        c->tls_want_read = false;
        return (ssize_t)n;
    }
    int e = SSL_get_error(c->ssl, 0);
    switch (e) {
    case SSL_ERROR_WANT_WRITE:
        c->tls_want_read = false;
        return IMS_EAGAIN;
    case SSL_ERROR_WANT_READ:
        c->tls_want_read = true;
        return IMS_EAGAIN;
    default:
        return tls_fail(c, e, "write");
    }
}

static int tls_set_interest(struct sip_conn *c, unsigned want)
{
    if (c->tls_want_write)
        want |= IMS_IO_WRITE;
    if (c->tls_want_read)
        want |= IMS_IO_READ;
    return ims_io_set(c->tp->loop, &c->io, want);
}

static bool tls_pending(const struct sip_conn *c)
{
    return c->ssl && SSL_has_pending(c->ssl);
}

static void tls_close(struct sip_conn *c)
{
    if (c->ssl) {
        /* One non-blocking close_notify, best effort; we do not wait for
         * the peer's. */
        if (SSL_is_init_finished(c->ssl)) {
            ERR_clear_error();
            (void)SSL_shutdown(c->ssl);
        }
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

const struct conn_ops ims_tls_ops = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .set_interest = tls_set_interest,
    .pending = tls_pending,
    .close = tls_close,
};
