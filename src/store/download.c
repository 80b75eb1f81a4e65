/* download.c - fetch a model into the store with libcurl: the only file that includes curl.h
 * for downloads.
 *
 * One download of an id at a time: whoever holds .downloading/<id>.gguf.lock downloads, and
 * the others wait for it and then find the finished file. The part file is resumed with a
 * Range request; its SHA-256 covers what was on disk before, then every byte as it arrives
 * (partfile.c). The finished file is fsynced, renamed into place, and then recorded in the
 * manifest: a crash at any point leaves either a resumable part or a complete model. */
#include "download.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../base/clock.h"
#include "../base/duration.h"
#include "../base/file.h"
#include "../base/lock.h"
#include "../base/log.h"
#include "../base/fmt.h"
#include "cache.h"
#include "manifest.h"
#include "partfile.h"
#include "store.h"
#include "verify.h"

#define REPORT_EVERY_NS 100000000LL /* 10 progress reports a second at most */
#define WAIT_POLL_NS 100000000LL
#define MAX_BACKOFF_NS (60LL * 1000000000LL)
#define RECV_BUFFER (512L * 1024)

/* How one request ended. */
enum outcome {
    ATTEMPT_DONE,  /* every byte is in the part */
    ATTEMPT_RETRY, /* transient: try again after a backoff */
    ATTEMPT_FATAL, /* give up: err says why */
};

struct dl {
    const struct pc_download_opts *o;
    char id[256];
    char expected[65]; /* lowercase hex, or "" */
    char digest[80];   /* "sha256:<hex>" once known */
    char final_path[PATH_MAX];
    char part_path[PATH_MAX];
    char lock_path[PATH_MAX];
    int lock_fd;
    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];
    struct pc_partfile *pf;
    uint64_t total; /* 0 while unknown */
    int attempt;

    /* One response, reset per request and per redirect. */
    bool have_range; /* a Content-Range header was seen */
    uint64_t range_start, range_total;
    bool started;        /* the first body byte of the final response was seen */
    bool range_mismatch; /* a 206 for other bytes than asked: the part starts over */
    bool write_failed;
    struct pc_error write_err;
    uint64_t received;              /* body bytes in this request */
    uint64_t seen;                  /* received when on_xfer last looked */
    int64_t seen_ns;                /* when received last grew (or the request began) */
    bool stalled;                   /* on_xfer stopped the request: no byte for the stall timeout */
    struct pc_download_head source; /* the GET's validators, recorded in the manifest */

    /* Progress. */
    char status[256];
    int64_t last_report_ns;
    int64_t speed_t0_ns;
    uint64_t speed_b0;
    double bps;
};

const char *pc_download_phase_name(enum pc_download_phase phase)
{
    switch (phase) {
    case PC_DL_WAITING:
        return "waiting for another download";
    case PC_DL_RESUMING:
        return "verifying partial download";
    case PC_DL_DOWNLOADING:
        return "downloading";
    case PC_DL_RETRYING:
        return "retrying";
    case PC_DL_VERIFYING:
        return "verifying sha256 digest";
    case PC_DL_DONE:
        return "success";
    }
    return "unknown";
}

/* ---- options ----------------------------------------------------------------------------- */

static enum pc_err env_duration(const char *name, int64_t *out, struct pc_error *err)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return PC_OK;
    int64_t ns;
    struct pc_error derr = {0};
    if (pc_duration_parse(v, &ns, &derr) != PC_OK || ns < 0)
        return pc_error_set(err, PC_ERR_INVALID,
                            "%s: \"%s\" is not a duration such as 30s or 500ms", name, v);
    *out = ns;
    return PC_OK;
}

enum pc_err pc_download_opts_init(struct pc_download_opts *o, struct pc_error *err)
{
    memset(o, 0, sizeof(*o));
    o->attempts = 3;
    o->stall_ns = 30LL * 1000000000LL;
    o->backoff_ns = 1000000000LL;
    struct pc_download_opts env = *o;
    const char *v = getenv("PRECHARGE_DOWNLOAD_ATTEMPTS");
    if (v != NULL && *v != '\0') {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 1 || n > 100)
            return pc_error_set(err, PC_ERR_INVALID,
                                "PRECHARGE_DOWNLOAD_ATTEMPTS: \"%s\" is not a number from 1 to 100",
                                v);
        env.attempts = (int)n;
    }
    enum pc_err rc = env_duration("PRECHARGE_DOWNLOAD_STALL_TIMEOUT", &env.stall_ns, err);
    if (rc == PC_OK)
        rc = env_duration("PRECHARGE_DOWNLOAD_BACKOFF", &env.backoff_ns, err);
    v = getenv("PRECHARGE_CACHE_MAX");
    if (rc == PC_OK && v != NULL && *v != '\0' && strcmp(v, "none") != 0 &&
        pc_parse_bytes(v, &env.cache_max) != 0)
        rc = pc_error_set(err, PC_ERR_INVALID,
                          "PRECHARGE_CACHE_MAX: \"%s\" is not a size such as 20G or 500M (or "
                          "none)",
                          v);
    if (rc == PC_OK)
        *o = env;
    return rc;
}

/* ---- progress ---------------------------------------------------------------------------- */

/* The digest a progress line shows: the one expected or computed, else the sha256 that the
 * source gives for the file (the Hub's X-Linked-Etag, 64 hex digits, quoted), as Ollama's lines
 * always carry one for progress UIs to group by. "" when none is known yet. */
static const char *shown_digest(const struct dl *d, char *buf, size_t size)
{
    if (d->digest[0] != '\0')
        return d->digest;
    const char *e = d->source.linked_etag;
    size_t n = strlen(e);
    if (n == 66 && e[0] == '"' && e[65] == '"') {
        e++;
        n = 64;
    }
    if (n != 64 || strspn(e, "0123456789abcdef") < 64)
        return "";
    snprintf(buf, size, "sha256:%.64s", e);
    return buf;
}

static void report(struct dl *d, enum pc_download_phase phase, uint64_t completed)
{
    char digest[80];
    d->last_report_ns = pc_clock_mono_ns();
    if (d->o->progress == NULL)
        return;
    struct pc_download_progress p = {
        .phase = phase,
        .status = d->status[0] ? d->status : pc_download_phase_name(phase),
        .digest = shown_digest(d, digest, sizeof(digest)),
        .total = d->total,
        .completed = completed,
        .bytes_per_sec = phase == PC_DL_DOWNLOADING ? d->bps : 0,
        .attempt = d->attempt,
    };
    d->o->progress(d->o->user, &p);
}

static void reportf(struct dl *d, enum pc_download_phase phase, uint64_t completed, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

static void reportf(struct dl *d, enum pc_download_phase phase, uint64_t completed, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->status, sizeof(d->status), fmt, ap);
    va_end(ap);
    report(d, phase, completed);
    d->status[0] = '\0';
}

/* Recent speed: an average over half-second windows, smoothed. */
static void update_speed(struct dl *d, int64_t now, uint64_t bytes)
{
    if (d->speed_t0_ns == 0 || bytes < d->speed_b0) {
        d->speed_t0_ns = now;
        d->speed_b0 = bytes;
        return;
    }
    int64_t dt = now - d->speed_t0_ns;
    if (dt < 500000000LL)
        return;
    double inst = (double)(bytes - d->speed_b0) * 1e9 / (double)dt;
    d->bps = d->bps == 0 ? inst : 0.5 * d->bps + 0.5 * inst;
    d->speed_t0_ns = now;
    d->speed_b0 = bytes;
}

static bool cancelled(const struct dl *d)
{
    return d->o->cancel != NULL && atomic_load(d->o->cancel);
}

/* Sleep for ns, waking early when cancelled. Returns false when cancelled. */
static bool pause_for(const struct dl *d, int64_t ns)
{
    int64_t end = pc_clock_mono_ns() + ns;
    for (;;) {
        if (cancelled(d))
            return false;
        int64_t left = end - pc_clock_mono_ns();
        if (left <= 0)
            return true;
        if (left > 50000000LL)
            left = 50000000LL;
        struct timespec ts = {0, (long)left};
        nanosleep(&ts, NULL);
    }
}

/* ---- curl callbacks ---------------------------------------------------------------------- */

/* The value of header line (trimmed) when it is name's, else NULL. The line is changed. */
static char *header_value(char *line, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    char *v = line + n + 1;
    v += strspn(v, " \t");
    v[strcspn(v, "\r\n")] = '\0';
    return v;
}

/* Validators of a response: a new response (a redirect's target) starts with none but the
 * Hub's X-Linked-* (sent with the redirect, about the file behind it). */
static void note_header(struct pc_download_head *h, char *line)
{
    char *v;
    if (strncmp(line, "HTTP/", 5) == 0) {
        h->etag[0] = h->last_modified[0] = '\0';
        h->last_modified_s = 0;
    } else if ((v = header_value(line, "ETag")) != NULL) {
        snprintf(h->etag, sizeof(h->etag), "%s", v);
    } else if ((v = header_value(line, "X-Linked-Etag")) != NULL) {
        snprintf(h->linked_etag, sizeof(h->linked_etag), "%s", v);
    } else if ((v = header_value(line, "Last-Modified")) != NULL) {
        snprintf(h->last_modified, sizeof(h->last_modified), "%s", v);
        time_t t = curl_getdate(v, NULL);
        h->last_modified_s = t > 0 ? (int64_t)t : 0;
    } else if ((v = header_value(line, "X-Linked-Size")) != NULL) {
        h->size = strtoull(v, NULL, 10);
    }
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct dl *d = user;
    size_t len = size * n;
    char line[256];
    snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) - 1 ? len : sizeof(line) - 1), p);
    note_header(&d->source, line);
    if (strncmp(line, "HTTP/", 5) == 0) { /* a new response: a redirect's target */
        d->have_range = false;
        d->range_start = d->range_total = 0;
        return len;
    }
    unsigned long long a, b, total;
    if (strncasecmp(line, "Content-Range:", 14) != 0)
        return len;
    if (sscanf(line + 14, " bytes %llu-%llu/%llu", &a, &b, &total) == 3) {
        d->have_range = true;
        d->range_start = a;
        d->range_total = total;
    } else if (sscanf(line + 14, " bytes */%llu", &total) == 1) {
        d->have_range = true;
        d->range_start = 0;
        d->range_total = total;
    }
    return len;
}

/* The first body byte: decide what the response means for the part. Returns false to stop. */
static bool on_first_byte(struct dl *d)
{
    long code = 0;
    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &code);
    uint64_t have = pc_partfile_size(d->pf);
    if (code == 206) {
        if (!d->have_range || d->range_start != have) {
            d->range_mismatch = true;
            return false;
        }
        d->total = d->range_total;
    } else if (code == 200) {
        if (have > 0) { /* the server ignored the Range: take the whole file again */
            pc_log_info("store", "%s: the server does not resume; starting %s from the beginning",
                        d->o->url, d->id);
            if (pc_partfile_truncate(d->pf, &d->write_err) != PC_OK) {
                d->write_failed = true;
                return false;
            }
        }
        curl_off_t len = -1;
        curl_easy_getinfo(d->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        d->total = len >= 0 ? (uint64_t)len : 0;
    } else {
        return false;
    }
    if (d->total > 0 && d->lock_fd >= 0) { /* for whoever waits for this download */
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", d->total);
        if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, buf, (size_t)n, 0) != n)
            pc_log_debug("store", "cannot note the size in \"%s\"", d->lock_path);
    }
    d->started = true;
    return true;
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct dl *d = user;
    size_t len = size * n;
    if (!d->started && !on_first_byte(d))
        return 0;
    if (pc_partfile_append(d->pf, p, len, &d->write_err) != PC_OK) {
        d->write_failed = true;
        return 0;
    }
    d->received += len;
    return len;
}

static int on_xfer(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
    struct dl *d = user;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (cancelled(d))
        return 1;
    int64_t now = pc_clock_mono_ns();
    if (d->received != d->seen) {
        d->seen = d->received;
        d->seen_ns = now;
    } else if (now - d->seen_ns >= d->o->stall_ns) {
        d->stalled = true;
        return 1;
    }
    uint64_t have = d->pf ? pc_partfile_size(d->pf) : 0;
    update_speed(d, now, have);
    if (d->started && now - d->last_report_ns >= REPORT_EVERY_NS)
        report(d, PC_DL_DOWNLOADING, have);
    return 0;
}

/* ---- one request ------------------------------------------------------------------------- */

/* What every request of the store says and allows: our name, redirects (http and https only),
 * no signals, and errors in errbuf (CURL_ERROR_SIZE bytes). */
static void common_options(CURL *c, const char *url, char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "precharge/" PC_VERSION);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
}

static void setup_request(struct dl *d, uint64_t from)
{
    CURL *c = d->curl;
    char range[48];
    curl_easy_reset(c);
    common_options(c, d->o->url, d->curl_err);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, RECV_BUFFER);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
    /* Stalls are on_xfer's to find: curl's own low-speed limit averages over several seconds. */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(d->o->stall_ns / 1000000LL) + 1);
    if (from > 0) {
        snprintf(range, sizeof(range), "%" PRIu64 "-", from);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    d->curl_err[0] = '\0';
    d->have_range = d->started = d->range_mismatch = d->write_failed = false;
    d->range_start = d->range_total = 0;
    d->received = d->seen = 0;
    d->seen_ns = pc_clock_mono_ns();
    d->stalled = false;
    pc_error_clear(&d->write_err);
}

static const char *curl_text(const struct dl *d, CURLcode res)
{
    return d->curl_err[0] ? d->curl_err : curl_easy_strerror(res);
}

/* An HTTP error status: give up, start over, or retry. */
static enum outcome http_error(struct dl *d, long code, uint64_t from, struct pc_error *err)
{
    const char *url = d->o->url;
    if (code == 404 || code == 410) {
        pc_error_set(err, PC_ERR_NOT_FOUND,
                     "download of %s failed: %s answered HTTP %ld (no such "
                     "file)",
                     d->id, url, code);
        return ATTEMPT_FATAL;
    }
    if (code == 401 || code == 403) {
        pc_error_set(err, PC_ERR_NETWORK,
                     "download of %s failed: %s answered HTTP %ld (access denied: a private or "
                     "gated repository?)",
                     d->id, url, code);
        return ATTEMPT_FATAL;
    }
    if (code == 416) {
        if (d->have_range && d->range_total == from) { /* the part was already complete */
            d->total = from;
            return ATTEMPT_DONE;
        }
        pc_log_warn("store", "%s: the part of %s is longer than the file; starting again", url,
                    d->id);
        if (pc_partfile_truncate(d->pf, err) != PC_OK)
            return ATTEMPT_FATAL;
        pc_error_set(err, PC_ERR_NETWORK, "%s answered HTTP 416 to a resume", url);
        return ATTEMPT_RETRY;
    }
    if (code == 408 || code == 429 || code >= 500) {
        pc_error_set(err, PC_ERR_NETWORK, "%s answered HTTP %ld", url, code);
        return ATTEMPT_RETRY;
    }
    pc_error_set(err, PC_ERR_NETWORK, "download of %s failed: %s answered HTTP %ld", d->id, url,
                 code);
    return ATTEMPT_FATAL;
}

static enum outcome attempt(struct dl *d, struct pc_error *err)
{
    uint64_t from = pc_partfile_size(d->pf);
    setup_request(d, from);
    CURLcode res = curl_easy_perform(d->curl);
    struct pc_error ferr = {0};
    if (pc_partfile_flush(d->pf, &ferr) != PC_OK && !d->write_failed) {
        d->write_failed = true;
        d->write_err = ferr;
    }
    if (d->write_failed) {
        if (err != NULL)
            *err = d->write_err;
        return ATTEMPT_FATAL;
    }
    if (d->stalled && !cancelled(d))
        res = CURLE_OPERATION_TIMEDOUT;
    if (res == CURLE_ABORTED_BY_CALLBACK || cancelled(d)) {
        pc_error_set(err, PC_ERR_CANCELLED, "download of %s cancelled at byte %" PRIu64, d->id,
                     pc_partfile_size(d->pf));
        return ATTEMPT_FATAL;
    }
    long code = 0;
    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &code);
    uint64_t have = pc_partfile_size(d->pf);
    switch (res) {
    case CURLE_OK:
        if (d->total == 0 && !d->started && code == 200 && from > 0) {
            /* an empty 200 to a resume: the file is empty now; so is the part */
            if (pc_partfile_truncate(d->pf, err) != PC_OK)
                return ATTEMPT_FATAL;
        }
        if (d->total != 0 && have != d->total) {
            pc_error_set(err, PC_ERR_NETWORK,
                         "the connection to %s closed at byte %" PRIu64 " of %" PRIu64, d->o->url,
                         have, d->total);
            return ATTEMPT_RETRY;
        }
        if (d->total == 0)
            d->total = have;
        return ATTEMPT_DONE;
    case CURLE_HTTP_RETURNED_ERROR:
        return http_error(d, code, from, err);
    case CURLE_WRITE_ERROR: /* on_body refused a 206 for other bytes than we asked */
        if (pc_partfile_truncate(d->pf, err) != PC_OK)
            return ATTEMPT_FATAL;
        pc_error_set(err, PC_ERR_NETWORK, "%s sent other bytes than asked for; starting again",
                     d->o->url);
        return ATTEMPT_RETRY;
    case CURLE_OPERATION_TIMEDOUT:
        pc_error_set(err, PC_ERR_NETWORK, "no data from %s for %.0f s", d->o->url,
                     (double)d->o->stall_ns / 1e9);
        return ATTEMPT_RETRY;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
        pc_error_set(err, PC_ERR_INVALID, "cannot download %s from \"%s\": %s", d->id, d->o->url,
                     curl_text(d, res));
        return ATTEMPT_FATAL;
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        pc_error_set(err, PC_ERR_NETWORK, "download of %s from %s failed: %s", d->id, d->o->url,
                     curl_text(d, res));
        return ATTEMPT_FATAL;
    default:
        pc_error_set(err, PC_ERR_NETWORK, "%s: %s", d->o->url, curl_text(d, res));
        return ATTEMPT_RETRY;
    }
}

/* ---- the whole download ------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Take the id's lock; while another holder downloads, report its progress. */
static enum pc_err take_lock(struct dl *d, struct pc_error *err)
{
    for (bool told = false;; told = true) {
        struct pc_error lerr = {0};
        enum pc_err rc = pc_lock_acquire(d->lock_path, PC_LOCK_TRY, &d->lock_fd, &lerr);
        if (rc != PC_ERR_BUSY) {
            if (rc != PC_OK && err != NULL)
                *err = lerr;
            return rc;
        }
        if (!told)
            pc_log_info("store", "%s is being downloaded by another process; waiting for it",
                        d->id);
        char buf[32] = "";
        int fd = open(d->lock_path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof(buf) - 1);
            buf[n > 0 ? n : 0] = '\0';
            close(fd);
        }
        d->total = strtoull(buf, NULL, 10);
        report(d, PC_DL_WAITING, file_size(d->part_path));
        if (!pause_for(d, WAIT_POLL_NS))
            return pc_error_set(err, PC_ERR_CANCELLED,
                                "cancelled while waiting for another "
                                "download of %s",
                                d->id);
    }
}

static void set_digest(struct dl *d, const char *hex)
{
    snprintf(d->digest, sizeof(d->digest), "sha256:%s", hex);
}

/* Hashing the cached file: a VERIFYING report with its progress, at most 10 a second and
 * always at the end. */
static void on_hashed(void *user, uint64_t done, uint64_t total)
{
    struct dl *d = user;
    d->total = total;
    if (done == total || pc_clock_mono_ns() - d->last_report_ns >= REPORT_EVERY_NS)
        report(d, PC_DL_VERIFYING, done);
}

/* The model is in the store already: is it the one we want? Its bytes are read and hashed
 * again, so that a file corrupted on disk since it came in is downloaded again. */
static bool have_it(struct dl *d, struct pc_error *err)
{
    struct stat st;
    if (stat(d->final_path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    struct pc_verify_result v;
    if (pc_store_verify(d->o->models_dir, d->id, on_hashed, d, &v, err) != PC_OK)
        return false;
    if (v.status == PC_VERIFY_MISMATCH) {
        pc_log_warn("store",
                    "%s in the store is not the file that was downloaded (sha256 %s, "
                    "recorded %s): downloading it again",
                    d->id, v.actual, v.recorded);
        reportf(d, PC_DL_RETRYING, 0,
                "the file in the store is corrupt (sha256 %s, recorded %s): downloading again",
                v.actual, v.recorded);
        return false;
    }
    if (d->expected[0] != '\0' && strcmp(v.actual, d->expected) != 0) {
        pc_log_warn("store",
                    "%s in the store has sha256 %s, but the catalog says %s: downloading it again",
                    d->id, v.actual, d->expected);
        return false;
    }
    set_digest(d, v.actual);
    return true;
}

/* Move the verified part into place, then record it. */
static enum pc_err install(struct dl *d, const char *hex, struct pc_error *err)
{
    if (rename(d->part_path, d->final_path) != 0)
        return pc_error_set(err, PC_ERR_IO, "rename() \"%s\" to \"%s\" failed: %s", d->part_path,
                            d->final_path, strerror(errno));
    int dfd = open(d->o->models_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            pc_log_warn("store", "fsync() \"%s\" failed: %s", d->o->models_dir, strerror(errno));
        close(dfd);
    }
    const struct pc_download_head *h = &d->source;
    return pc_manifest_record_download(d->o->models_dir, d->id, hex,
                                       h->linked_etag[0] ? h->linked_etag : h->etag,
                                       h->last_modified, err);
}

/* Requests until the part is complete and verified, or it is time to give up. */
static enum pc_err fetch(struct dl *d, struct pc_error *err)
{
    int failures = 0;
    bool second_chance_used = false;
    int64_t backoff = d->o->backoff_ns;
    for (;;) {
        d->attempt++;
        uint64_t before = pc_partfile_size(d->pf);
        reportf(d, PC_DL_DOWNLOADING, before, "%s", pc_download_phase_name(PC_DL_DOWNLOADING));
        enum outcome out = attempt(d, err);
        if (out == ATTEMPT_FATAL)
            return err ? err->code : PC_ERR_NETWORK;
        if (out == ATTEMPT_RETRY) {
            if (d->received > 0) { /* progress: the count starts again */
                failures = 0;
                backoff = d->o->backoff_ns;
            }
            if (++failures >= d->o->attempts) {
                enum pc_err code = err ? err->code : PC_ERR_NETWORK;
                char why[PC_ERROR_MSG_MAX];
                snprintf(why, sizeof(why), "%s", err ? err->msg : "");
                return pc_error_set(err, code, "download of %s failed after %d attempts: %s", d->id,
                                    failures, why);
            }
            pc_log_info("store", "%s; retrying in %.1f s (attempt %d of %d)", err ? err->msg : "",
                        (double)backoff / 1e9, failures + 1, d->o->attempts);
            reportf(d, PC_DL_RETRYING, pc_partfile_size(d->pf),
                    "retrying in %.1f s (attempt %d of %d): %s", (double)backoff / 1e9,
                    failures + 1, d->o->attempts, err ? err->msg : "");
            if (!pause_for(d, backoff))
                return pc_error_set(err, PC_ERR_CANCELLED, "download of %s cancelled", d->id);
            backoff = backoff * 2 > MAX_BACKOFF_NS ? MAX_BACKOFF_NS : backoff * 2;
            continue;
        }

        /* Every byte is in and hashed: compare first, and fsync only what is worth keeping. */
        char hex[65];
        enum pc_err rc = pc_partfile_digest(d->pf, hex, err);
        if (rc != PC_OK)
            return rc;
        report(d, PC_DL_VERIFYING, pc_partfile_size(d->pf));
        if (d->expected[0] == '\0' || strcmp(hex, d->expected) == 0) {
            set_digest(d, hex);
            rc = pc_partfile_sync(d->pf, err);
            if (rc == PC_OK && d->o->cache_max > 0)
                rc = pc_cache_make_room(d->o->models_dir, d->id, pc_partfile_size(d->pf),
                                        d->o->cache_max, d->o->cache_hooks, err);
            return rc == PC_OK ? install(d, hex, err) : rc;
        }
        if (second_chance_used) {
            unlink(d->part_path);
            return pc_error_set(err, PC_ERR_CHECKSUM,
                                "checksum mismatch for %s from %s: expected sha256 %s, got %s "
                                "(downloaded twice; the file was deleted)",
                                d->id, d->o->url, d->expected, hex);
        }
        pc_log_warn("store",
                    "checksum mismatch for %s: expected sha256 %s, got %s; downloading it again "
                    "from the start",
                    d->id, d->expected, hex);
        reportf(d, PC_DL_RETRYING, 0, "checksum mismatch (expected %s, got %s): downloading again",
                d->expected, hex);
        second_chance_used = true;
        failures = 0;
        backoff = d->o->backoff_ns;
        d->total = 0;
        rc = pc_partfile_truncate(d->pf, err);
        if (rc != PC_OK)
            return rc;
    }
}

static enum pc_err check_opts(const struct pc_download_opts *o, struct dl *d, struct pc_error *err)
{
    if (o->url == NULL || o->url[0] == '\0' || o->models_dir == NULL || o->id == NULL)
        return pc_error_set(err, PC_ERR_INVALID, "download: url, models_dir and id are required");
    enum pc_err rc = pc_store_name(o->id, d->id, sizeof(d->id), err);
    if (rc != PC_OK)
        return rc;
    const char *want = o->sha256 ? o->sha256 : "";
    if (strncmp(want, "sha256:", 7) == 0)
        want += 7;
    if (want[0] != '\0' && (strlen(want) != 64 || strspn(want, "0123456789abcdefABCDEF") != 64))
        return pc_error_set(err, PC_ERR_INVALID,
                            "the expected sha256 of %s is not 64 hex digits: \"%s\"", d->id, want);
    for (size_t i = 0; want[i]; i++)
        d->expected[i] = (char)(want[i] >= 'A' && want[i] <= 'F' ? want[i] - 'A' + 'a' : want[i]);
    if (d->expected[0] != '\0')
        set_digest(d, d->expected);
    if (o->attempts < 1 || o->stall_ns <= 0 || o->backoff_ns < 0)
        return pc_error_set(err, PC_ERR_INVALID,
                            "download: attempts must be at least 1 and the stall timeout "
                            "positive");
    const char *dir = o->models_dir;
    if ((size_t)snprintf(d->final_path, sizeof(d->final_path), "%s/%s.gguf", dir, d->id) >=
            sizeof(d->final_path) ||
        (size_t)snprintf(d->part_path, sizeof(d->part_path), "%s/%s/%s.gguf.part", dir,
                         PC_DOWNLOAD_DIR, d->id) >= sizeof(d->part_path) ||
        (size_t)snprintf(d->lock_path, sizeof(d->lock_path), "%s/%s/%s.gguf.lock", dir,
                         PC_DOWNLOAD_DIR, d->id) >= sizeof(d->lock_path))
        return pc_error_set(err, PC_ERR_INVALID, "models directory path too long: \"%s\"", dir);
    return PC_OK;
}

enum pc_err pc_download(const struct pc_download_opts *o, struct pc_error *err)
{
    struct dl *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "download: out of memory");
    d->o = o;
    d->lock_fd = -1;
    enum pc_err rc = check_opts(o, d, err);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", o->models_dir ? o->models_dir : "", PC_DOWNLOAD_DIR);
    if (rc == PC_OK)
        rc = pc_file_mkdirs(dir, err);
    if (rc != PC_OK)
        goto out;
    /* Failed downloads of a day ago are litter by now; a resume within the day is kept. */
    struct pc_error cerr = {0};
    if (pc_download_clean_parts(o->models_dir, 24 * 3600, NULL, NULL, &cerr) != PC_OK)
        pc_log_warn("store", "%s", cerr.msg);

    rc = take_lock(d, err);
    if (rc != PC_OK)
        goto out;
    struct pc_error herr = {0};
    if (o->replace) /* a part left before may be of the old revision */
        unlink(d->part_path);
    else if (have_it(d, &herr)) {
        report(d, PC_DL_DONE, d->total);
        goto out;
    }
    if (herr.code != PC_OK) {
        rc = herr.code;
        if (err != NULL)
            *err = herr;
        goto out;
    }

    uint64_t resume = file_size(d->part_path);
    d->total = 0;
    if (resume > 0)
        report(d, PC_DL_RESUMING, resume);
    rc = pc_partfile_open(d->part_path, &d->pf, err);
    if (rc != PC_OK)
        goto out;
    if (resume > 0)
        pc_log_info("store", "resuming %s at byte %" PRIu64, d->id, pc_partfile_size(d->pf));
    pthread_once(&curl_once, curl_init_once);
    d->curl = curl_easy_init();
    if (d->curl == NULL) {
        rc = pc_error_set(err, PC_ERR_NOMEM, "curl_easy_init() failed");
        goto out;
    }
    rc = fetch(d, err);
    if (rc == PC_OK)
        report(d, PC_DL_DONE, d->total);
out:
    if (d->pf != NULL) {
        bool empty = pc_partfile_size(d->pf) == 0;
        pc_partfile_close(d->pf);
        if (rc != PC_OK && empty)
            unlink(d->part_path);
    }
    if (d->curl != NULL)
        curl_easy_cleanup(d->curl);
    pc_lock_release(d->lock_fd, d->lock_path, true);
    free(d);
    return rc;
}

/* ---- HEAD -------------------------------------------------------------------------------- */

static size_t on_head_header(char *p, size_t size, size_t n, void *user)
{
    size_t len = size * n;
    char line[256];
    snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) - 1 ? len : sizeof(line) - 1), p);
    note_header(user, line);
    return len;
}

enum pc_err pc_download_head(const char *url, struct pc_download_head *out, struct pc_error *err)
{
    memset(out, 0, sizeof(*out));
    pthread_once(&curl_once, curl_init_once);
    CURL *c = curl_easy_init();
    if (c == NULL)
        return pc_error_set(err, PC_ERR_NOMEM, "curl_easy_init() failed");
    char cerr[CURL_ERROR_SIZE] = "";
    common_options(c, url, cerr);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    CURLcode res = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_off_t len = -1;
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    curl_easy_cleanup(c);
    if (res != CURLE_OK)
        return pc_error_set(err, PC_ERR_NETWORK, "HEAD %s failed: %s", url,
                            cerr[0] ? cerr : curl_easy_strerror(res));
    if (code == 404 || code == 410)
        return pc_error_set(err, PC_ERR_NOT_FOUND, "HEAD %s: HTTP %ld (no such file)", url, code);
    if (code >= 400)
        return pc_error_set(err, PC_ERR_NETWORK, "HEAD %s: HTTP %ld", url, code);
    if (out->size == 0 && len > 0)
        out->size = (uint64_t)len;
    return PC_OK;
}

/* ---- litter ------------------------------------------------------------------------------ */

enum pc_err pc_download_clean_parts(const char *models_dir, int64_t max_age_s, uint64_t *bytes,
                                    size_t *count, struct pc_error *err)
{
    char dir[PATH_MAX];
    if (bytes)
        *bytes = 0;
    if (count)
        *count = 0;
    snprintf(dir, sizeof(dir), "%s/%s", models_dir, PC_DOWNLOAD_DIR);
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return errno == ENOENT ? PC_OK
                               : pc_error_set(err, PC_ERR_IO, "opendir() \"%s\" failed: %s", dir,
                                              strerror(errno));
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t len = strlen(de->d_name);
        bool part = len > 10 && strcmp(de->d_name + len - 10, ".gguf.part") == 0;
        if (!part || de->d_name[0] == '.')
            continue;
        char path[PATH_MAX], lock[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path) ||
            (size_t)snprintf(lock, sizeof(lock), "%s/%.*s.lock", dir, (int)(len - 5), de->d_name) >=
                sizeof(lock))
            continue;
        struct stat st;
        if (stat(path, &st) != 0 || now - st.st_mtime < max_age_s)
            continue;
        int fd;
        if (pc_lock_acquire(lock, PC_LOCK_TRY, &fd, NULL) != PC_OK)
            continue; /* someone is downloading it right now */
        if (unlink(path) == 0) {
            pc_log_info("store", "removed the stale partial download \"%s\" (%lld bytes)", path,
                        (long long)st.st_size);
            if (bytes)
                *bytes += (uint64_t)st.st_size;
            if (count)
                (*count)++;
        }
        pc_lock_release(fd, lock, true);
    }
    closedir(dp);
    return PC_OK;
}
