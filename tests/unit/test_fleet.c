/* test_fleet.c - unit tests for src/fleet's foundation: Redis URLs, and a connection's
 * handshake, reconnect and backoff against a real redis-server on a loopback port. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fleet/redis.h"
#include "fleet/url.h"

#include "scratch.h"

/* ---- URLs --------------------------------------------------------------------------------- */

static struct pc_redis_url parse_ok(const char *text)
{
    struct pc_redis_url url;
    struct pc_error err = {0};
    enum pc_err rc = pc_redis_url_parse(text, &url, &err);
    if (rc != PC_OK)
        fail_msg("%s: %s", text, err.msg);
    return url;
}

static void parse_bad(const char *text, const char *says)
{
    struct pc_redis_url url;
    struct pc_error err = {0};
    assert_int_equal(pc_redis_url_parse(text, &url, &err), PC_ERR_INVALID);
    if (strstr(err.msg, says) == NULL)
        fail_msg("%s: \"%s\" does not say \"%s\"", text, err.msg, says);
    assert_string_equal(url.host, ""); /* zeroed on failure */
}

static void test_url_forms(void **state)
{
    (void)state;
    struct pc_redis_url u = parse_ok("redis://localhost");
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
    assert_string_equal(u.socket, "");

    u = parse_ok("redis://10.0.0.2:6380/3");
    assert_string_equal(u.host, "10.0.0.2");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);

    u = parse_ok("redis://:s3cret@h:1/");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s3cret");
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 0);

    /* The last '@' ends the user info; a password holds '@' and '/' only encoded. */
    u = parse_ok("redis://app:p%40ss%2Fw0rd@[::1]:7000/15");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss/w0rd");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 15);

    u = parse_ok("redis://[fe80::1]");
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, 6379);

    u = parse_ok("redis://h?db=4");
    assert_int_equal(u.db, 4);

    u = parse_ok("unix:///run/redis/redis.sock");
    assert_string_equal(u.socket, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    u = parse_ok("unix:///tmp/r.sock?db=2");
    assert_string_equal(u.socket, "/tmp/r.sock");
    assert_int_equal(u.db, 2);
}

static void test_url_errors(void **state)
{
    (void)state;
    parse_bad("localhost:6379", "is not a Redis URL");
    parse_bad("http://h", "is not a Redis URL");
    parse_bad("rediss://h", "TLS");
    parse_bad("redis://", "no host");
    parse_bad("redis://:pw@", "no host");
    parse_bad("redis://h:0", "port \"0\"");
    parse_bad("redis://h:65536", "port \"65536\"");
    parse_bad("redis://h:63x", "port \"63x\"");
    parse_bad("redis://h:", "port \"\"");
    parse_bad("redis://h/x", "database \"x\"");
    parse_bad("redis://h/-1", "database \"-1\"");
    parse_bad("redis://h?timeout=3", "query \"timeout=3\"");
    parse_bad("redis://h#frag", "fragment");
    parse_bad("redis://alice@h", "no password");
    parse_bad("redis://:p%4@h", "two hex digits");
    parse_bad("redis://:p%zz@h", "two hex digits");
    parse_bad("redis://:p%00@h", "NUL");
    parse_bad("redis://[::1", "closing ']'");
    parse_bad("redis://[::1]x", "after its host");
    parse_bad("unix://relative.sock", "absolute");
}

static void test_url_show_hides_password(void **state)
{
    (void)state;
    char buf[600];
    struct pc_redis_url u = parse_ok("redis://app:hunter2@[::1]:7000/5");
    pc_redis_url_show(&u, buf, sizeof(buf));
    assert_string_equal(buf, "redis://app:***@[::1]:7000/5");
    u = parse_ok("redis://:hunter2@h");
    assert_string_equal(pc_redis_url_show(&u, buf, sizeof(buf)), "redis://:***@h:6379/0");
    u = parse_ok("redis://h");
    assert_string_equal(pc_redis_url_show(&u, buf, sizeof(buf)), "redis://h:6379/0");
    u = parse_ok("unix:///s.sock?db=3");
    assert_string_equal(pc_redis_url_show(&u, buf, sizeof(buf)), "unix:///s.sock?db=3");
    /* What is shown parses back to the same place. */
    u = parse_ok("redis://h:7/2");
    struct pc_redis_url back = parse_ok(pc_redis_url_show(&u, buf, sizeof(buf)));
    assert_memory_equal(&u, &back, sizeof(u));
}

/* ---- a real redis-server ------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* redis-server on 127.0.0.1:port with dir as its working directory, no persistence; extra is
 * one more "--name value" pair or NULL. Returns once it answers PING. */
static pid_t start_redis(int port, const char *dir, const char *extra_name, const char *extra)
{
    char port_s[16], log[4200];
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[] = {
            "redis-server", "--port", port_s,  "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no",     "--dir", dir,      "--logfile", log,      extra_name,
            extra,          NULL};
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnect("127.0.0.1", port);
        bool up = c && !c->err;
        redisFree(c);
        if (up)
            return pid;
        usleep(10000);
    }
    fail_msg("redis-server did not start on port %d", port);
    return -1;
}

static void stop_redis(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static struct pc_redis *conn(const char *text)
{
    struct pc_redis_url url = parse_ok(text);
    struct pc_redis_params p = pc_redis_default_params();
    p.name = "test";
    p.backoff_min_ms = 20;
    p.backoff_max_ms = 80;
    struct pc_redis *r = pc_redis_new(&url, &p);
    assert_non_null(r);
    return r;
}

/* Connect, waiting out the backoff as a fleet thread does; bounded. */
static bool connect_within(struct pc_redis *r, int tries)
{
    for (int i = 0; i < tries; i++) {
        if (pc_redis_connect(r))
            return true;
        usleep((useconds_t)(pc_redis_wait_ms(r) + 1) * 1000);
    }
    return false;
}

static void test_redis_reconnects_after_restart(void **state)
{
    (void)state;
    char *dir = strdup(make_tmpdir("fleet"));
    int port = free_port();
    pid_t pid = start_redis(port, dir, NULL, NULL);
    char text[64];
    snprintf(text, sizeof(text), "redis://127.0.0.1:%d", port);
    struct pc_redis *r = conn(text);
    assert_int_equal(pc_redis_generation(r), 0); /* lazy: nothing yet */

    redisReply *reply;
    struct pc_error err = {0};
    assert_int_equal(pc_redis_command(r, &reply, &err, "SET k %s", "v1"), PC_OK);
    freeReplyObject(reply);
    assert_int_equal(pc_redis_generation(r), 1);

    /* An error reply is the caller's to read, and keeps the connection. */
    assert_int_equal(pc_redis_command(r, &reply, &err, "XREADGROUP GROUP g c STREAMS nos >"),
                     PC_ERR_IO);
    assert_true(pc_redis_is_error(reply, "NOGROUP"));
    assert_non_null(strstr(err.msg, "NOGROUP"));
    freeReplyObject(reply);
    assert_int_equal(pc_redis_wait_ms(r), 0);

    stop_redis(pid);
    assert_int_equal(pc_redis_command(r, &reply, &err, "GET k"), PC_ERR_UNAVAILABLE);
    assert_null(reply);
    /* Down: the next try waits for the backoff, and a command meanwhile does not connect. */
    assert_true(pc_redis_wait_ms(r) > 0);
    assert_int_equal(pc_redis_command(r, &reply, &err, "GET k"), PC_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "unreachable"));
    /* Attempts while the server is gone fail and lengthen the backoff up to its cap. */
    assert_false(connect_within(r, 3));
    assert_true(pc_redis_wait_ms(r) <= 80);

    pid = start_redis(port, dir, NULL, NULL);
    assert_true(connect_within(r, 100));
    assert_int_equal(pc_redis_generation(r), 2);
    assert_int_equal(pc_redis_command(r, &reply, &err, "SET k %b", "v\0 2", (size_t)4), PC_OK);
    freeReplyObject(reply);
    const char *argv[] = {"GET", "k"};
    assert_int_equal(pc_redis_commandv(r, &reply, &err, 2, argv, NULL), PC_OK);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_int_equal(reply->len, 4);
    assert_memory_equal(reply->str, "v\0 2", 4);
    freeReplyObject(reply);

    pc_redis_free(r);
    stop_redis(pid);
    rm_rf(dir);
    free(dir);
}

static void test_redis_auth_and_select(void **state)
{
    (void)state;
    char *dir = strdup(make_tmpdir("fleet"));
    int port = free_port();
    pid_t pid = start_redis(port, dir, "--requirepass", "s3cret");
    char text[96];

    snprintf(text, sizeof(text), "redis://:s3cret@127.0.0.1:%d/2", port);
    struct pc_redis *r = conn(text);
    redisReply *reply;
    struct pc_error err = {0};
    assert_int_equal(pc_redis_command(r, &reply, &err, "SET where db2"), PC_OK);
    freeReplyObject(reply);
    pc_redis_free(r);

    /* The key went to database 2, not 0. */
    snprintf(text, sizeof(text), "redis://:s3cret@127.0.0.1:%d", port);
    r = conn(text);
    assert_int_equal(pc_redis_command(r, &reply, &err, "EXISTS where"), PC_OK);
    assert_int_equal(reply->integer, 0);
    freeReplyObject(reply);
    assert_int_equal(pc_redis_command(r, &reply, &err, "SELECT 2"), PC_OK);
    freeReplyObject(reply);
    assert_int_equal(pc_redis_command(r, &reply, &err, "EXISTS where"), PC_OK);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);
    pc_redis_free(r);

    /* A wrong password is a connection that does not come up, with the server's reason. */
    snprintf(text, sizeof(text), "redis://:wrong@127.0.0.1:%d", port);
    r = conn(text);
    assert_false(pc_redis_connect(r));
    assert_int_equal(pc_redis_command(r, &reply, &err, "PING"), PC_ERR_UNAVAILABLE);
    assert_true(pc_redis_wait_ms(r) > 0);
    pc_redis_free(r);

    stop_redis(pid);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_url_show_hides_password),
        cmocka_unit_test(test_redis_reconnects_after_restart),
        cmocka_unit_test(test_redis_auth_and_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
