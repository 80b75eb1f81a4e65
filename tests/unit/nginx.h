/* nginx.h - a real nginx (the Debian package) on an ephemeral loopback port, for download
 * tests: its own prefix directory, config, logs and files, nothing outside it.
 *
 * Locations, all serving <dir>/www with Range support:
 *   /         as fast as it goes
 *   /slow/    the first MiB fast, then 256 KiB/s, unless the request has a Range (a resume)
 *   /medium/  4 MiB/s
 *   /norange/ ignores Range headers (answers 200 with the whole file)
 *   /fail/    HTTP 500 for everything
 *   /private/ HTTP 401 for everything
 * The access log has one line per request: "METHOD URI?QUERY STATUS RANGE BYTES"; nginx writes
 * it once the response is out, so a client may see the end of a response before its line. */
#ifndef PC_TEST_NGINX_H
#define PC_TEST_NGINX_H

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* snprintf into an array, aborting the test when it does not fit. */
#define NGX_FMT(buf, ...)                                                                          \
    do {                                                                                           \
        if ((size_t)snprintf(buf, sizeof(buf), __VA_ARGS__) >= sizeof(buf))                        \
            abort();                                                                               \
    } while (0)

#ifndef NGINX_BIN
#define NGINX_BIN "/usr/sbin/nginx"
#endif

struct test_nginx {
    char dir[PATH_MAX - 64];
    char www[PATH_MAX];
    char url[128]; /* "http://127.0.0.1:PORT" */
    int port;
    pid_t master;
};

static void nginx_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int nginx_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

static int nginx_connectable(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

static int nginx_write_conf(struct test_nginx *n)
{
    char path[PATH_MAX];
    NGX_FMT(path, "%s/nginx.conf", n->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    const char *d = n->dir;
    fprintf(f,
            "worker_processes 1;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "  log_format t '$request_method $request_uri $status $http_range $body_bytes_sent';\n"
            "  access_log %s/access.log t;\n"
            "  client_body_temp_path %s/tmp/body; proxy_temp_path %s/tmp/proxy;\n"
            "  fastcgi_temp_path %s/tmp/fcgi; uwsgi_temp_path %s/tmp/uwsgi;\n"
            "  scgi_temp_path %s/tmp/scgi;\n"
            "  sendfile on;\n"
            "  map $http_range $slow_rate { \"\" 256k; default 0; }\n"
            "  server {\n"
            "    listen 127.0.0.1:%d;\n"
            "    root %s/www;\n"
            "    location /slow/ { alias %s/www/; limit_rate_after 1m; limit_rate $slow_rate; }\n"
            "    location /medium/ { alias %s/www/; limit_rate 4m; }\n"
            "    location /norange/ { alias %s/www/; max_ranges 0; }\n"
            "    location /fail/ { return 500; }\n"
            "    location /private/ { return 401; }\n"
            "  }\n"
            "}\n",
            d, d, d, d, d, d, d, d, n->port, d, d, d, d);
    return fclose(f);
}

/* Start nginx on n->port (choosing a free one first when it is 0). Returns 0 once it accepts
 * connections, -1 when it would not start. */
static int nginx_launch(struct test_nginx *n)
{
    char conf[PATH_MAX], errlog[PATH_MAX];
    NGX_FMT(conf, "%s/nginx.conf", n->dir);
    NGX_FMT(errlog, "%s/error.log", n->dir);
    for (int tries = 0; tries < 10; tries++) {
        bool fixed = n->port != 0;
        if (!fixed)
            n->port = nginx_free_port();
        NGX_FMT(n->url, "http://127.0.0.1:%d", n->port);
        if (n->port <= 0 || nginx_write_conf(n) != 0)
            return -1;
        pid_t pid = fork();
        if (pid == 0) {
            execl(NGINX_BIN, "nginx", "-p", n->dir, "-e", errlog, "-c", conf, "-g", "daemon off;",
                  (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 500; i++) {
            if (nginx_connectable(n->port)) {
                n->master = pid;
                return 0;
            }
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid)
                break; /* it exited: the port was taken meanwhile */
            nginx_sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (fixed)
            nginx_sleep_ms(100);
        else
            n->port = 0;
    }
    return -1;
}

/* A prefix directory under base with www/ for the files to serve, and nginx running on it. */
static int nginx_start(struct test_nginx *n, const char *base)
{
    memset(n, 0, sizeof(*n));
    NGX_FMT(n->dir, "%s/nginx.XXXXXX", base);
    if (mkdtemp(n->dir) == NULL)
        return -1;
    chmod(n->dir, 0755); /* nginx's worker may run as another user when the tests run as root */
    NGX_FMT(n->www, "%s/www", n->dir);
    char tmp[PATH_MAX];
    NGX_FMT(tmp, "%s/tmp", n->dir);
    if (mkdir(n->www, 0755) != 0 || mkdir(tmp, 0755) != 0)
        return -1;
    return nginx_launch(n);
}

/* Stop it; the port stays n->port, so that nginx_launch brings it back on the same one. */
static void nginx_stop(struct test_nginx *n)
{
    if (n->master <= 0)
        return;
    kill(n->master, SIGTERM);
    waitpid(n->master, NULL, 0);
    n->master = 0;
}

/* The worker process: killing it cuts its connections, and the master starts another. */
static pid_t nginx_worker(const struct test_nginx *n)
{
    char path[64], buf[256] = "";
    NGX_FMT(path, "/proc/%d/task/%d/children", (int)n->master, (int)n->master);
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t len = fread(buf, 1, sizeof(buf) - 1, f);
            buf[len] = '\0';
            fclose(f);
        }
        long pid = strtol(buf, NULL, 10);
        if (pid > 0)
            return (pid_t)pid;
        nginx_sleep_ms(10);
    }
    return -1;
}

/* Lines of the access log that contain all of the given strings (a NULL-terminated list). */
static int nginx_count(const struct test_nginx *n, const char *const *needles)
{
    char path[PATH_MAX], line[2048];
    NGX_FMT(path, "%s/access.log", n->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int count = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        bool all = true;
        for (const char *const *p = needles; *p && all; p++)
            all = strstr(line, *p) != NULL;
        count += all;
    }
    fclose(f);
    return count;
}

/* The same, once there are at least want such lines, or after 5 s: the last line of a response
 * may come a moment after the client has it all. */
static int nginx_count_at_least(const struct test_nginx *n, const char *const *needles, int want)
{
    int count = 0;
    for (int i = 0; i < 500 && (count = nginx_count(n, needles)) < want; i++)
        nginx_sleep_ms(10);
    return count;
}

#endif
