/* test_leftovers.c - what a killed writer leaves behind: temp files swept at the next start
 * (never one that a live writer holds), and a snapshot directory that stays within its disk
 * budget even while a write is cut short by SIGKILL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "precharge/snapshot.h"
#include "store/manifest.h"
#include "testmodel.h"

static void touch(const char *dir, const char *name, size_t bytes)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < bytes; i++)
        fputc('x', f);
    assert_int_equal(fclose(f), 0);
}

static bool exists(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Files in dir matching pattern: their count, and their bytes added to *bytes (may be NULL). */
static int count(const char *dir, const char *pattern, uint64_t *bytes)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || fnmatch(pattern, de->d_name, 0) != 0)
            continue;
        n++;
        char path[PATH_MAX + 300];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (bytes != NULL && stat(path, &st) == 0)
            *bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

/* A temp file whose writer died goes; one that a live writer holds (its flock) stays; nothing
 * else is touched. */
static void test_sweep_takes_only_dead_writers_files(void **state)
{
    (void)state;
    const char *dir = test_dir("leftovers-sweep");
    touch(dir, "a.snap.tmp.Ab12Cd", 100);
    touch(dir, "b.snap.tmp.Ef34Gh", 100);
    touch(dir, "c.snap", 100);
    touch(dir, "d.snap.tmp.toolongname", 100);
    char held[PATH_MAX + 32];
    snprintf(held, sizeof(held), "%s/b.snap.tmp.Ef34Gh", dir);
    int fd = open(held, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0); /* a write in progress */

    assert_int_equal(pc_file_sweep_tmp(dir, "*.snap.tmp.??????"), 1);
    assert_false(exists(dir, "a.snap.tmp.Ab12Cd"));
    assert_true(exists(dir, "b.snap.tmp.Ef34Gh"));
    assert_true(exists(dir, "c.snap"));
    assert_true(exists(dir, "d.snap.tmp.toolongname"));

    close(fd); /* the writer dies */
    assert_int_equal(pc_file_sweep_tmp(dir, "*.snap.tmp.??????"), 1);
    assert_false(exists(dir, "b.snap.tmp.Ef34Gh"));

    /* The manifest's, at a daemon's start. */
    touch(dir, "manifest.json", 10);
    touch(dir, "manifest.json.tmp.Zz99Yy", 10);
    pc_manifest_sweep(dir);
    assert_false(exists(dir, "manifest.json.tmp.Zz99Yy"));
    assert_true(exists(dir, "manifest.json"));

    /* Writes still land, and leave no temp file of their own. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    assert_int_equal(pc_file_write_atomic(path, "{}", 2, NULL), PC_OK);
    assert_int_equal(count(dir, "*.tmp.*", NULL), 1); /* d.snap.tmp.toolongname only */
}

#define BLOB (4u << 20)

static void save(struct pc_snapstore *st, int32_t first)
{
    int32_t toks[4] = {first, 2, 3, 4};
    uint8_t *blob = malloc(BLOB);
    assert_non_null(blob);
    memset(blob, first, BLOB);
    struct pc_snapshot_meta meta = {.model = "tiny", .category = "test"};
    struct pc_error err = {0};
    assert_int_equal(
        pc_snapstore_save(st, "0123456789abcdef", &meta, toks, 4, blob, BLOB, true, &err), PC_OK);
}

static void die_by_sigkill(int sig)
{
    (void)sig;
    raise(SIGKILL);
}

/* Three snapshots fill the budget; a fourth is written by a process that SIGKILL cuts short
 * mid-write (the file size limit's SIGXFSZ turned into SIGKILL, so that the kill lands inside
 * the write, every time). The oldest file was dropped before the write began, so that even at
 * the kill the directory, the partial file at its full size included, was within the budget.
 * The next start removes the partial file and indexes the rest. */
static void test_kill_during_a_snapshot_write(void **state)
{
    (void)state;
    const char *dir = test_dir("leftovers-kill");
    struct pc_snapstore *st = NULL;
    struct pc_error err = {0};
    assert_int_equal(pc_snapstore_open(dir, 1u << 30, 1u << 30, &st, &err), PC_OK);
    save(st, 1);
    uint64_t one = pc_snapstore_disk_bytes(st);
    save(st, 2);
    save(st, 3);
    pc_snapstore_close(st);
    uint64_t budget = 3 * one + one / 2;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit lim = {.rlim_cur = BLOB / 2, .rlim_max = BLOB / 2};
        signal(SIGXFSZ, die_by_sigkill);
        struct pc_snapstore *cst = NULL;
        if (pc_snapstore_open(dir, 1u << 30, budget, &cst, NULL) != PC_OK ||
            setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(2);
        save(cst, 4);
        _exit(3); /* the write was not cut short */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    uint64_t bytes = 0;
    assert_int_equal(count(dir, "*.snap.tmp.??????", NULL), 1); /* the cut write */
    assert_int_equal(count(dir, "*.snap", &bytes), 2);          /* one made room for it */
    assert_true(bytes + one <= budget);

    assert_int_equal(pc_snapstore_open(dir, 1u << 30, budget, &st, &err), PC_OK);
    assert_int_equal(count(dir, "*.tmp.*", NULL), 0);
    bytes = 0;
    assert_int_equal(count(dir, "*.snap", &bytes), 2);
    assert_int_equal(pc_snapstore_disk_bytes(st), bytes);
    assert_true(bytes <= budget);
    struct pc_snapshot_info *list = NULL;
    size_t n = pc_snapstore_list(st, &list);
    free(list);
    assert_int_equal(n, 2);

    /* A write that fits beside them is made as before. */
    save(st, 5);
    bytes = 0;
    assert_int_equal(count(dir, "*.snap", &bytes), 3);
    assert_true(bytes <= budget);
    pc_snapstore_close(st);

    /* A smaller budget at the next start: the oldest files go at once. */
    assert_int_equal(pc_snapstore_open(dir, 1u << 30, one, &st, &err), PC_OK);
    bytes = 0;
    assert_int_equal(count(dir, "*.snap", &bytes), 1);
    assert_int_equal(pc_snapstore_disk_bytes(st), bytes);
    /* One that can never fit is not written at all. */
    pc_snapstore_close(st);
    assert_int_equal(pc_snapstore_open(dir, 1u << 30, one / 2, &st, &err), PC_OK);
    save(st, 6);
    assert_int_equal(count(dir, "*.snap", NULL), 0);
    assert_int_equal(count(dir, "*.tmp.*", NULL), 0);
    pc_snapstore_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_takes_only_dead_writers_files),
        cmocka_unit_test(test_kill_during_a_snapshot_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
