/* test_hw.c - the hardware probe on fixture trees of /proc and /sys (cgroup v1, v2, none, old
 * kernels), its parsers, and one sanity check of the real machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "catalog/hw.h"

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

/* tests/fixtures/hw/<name>, found from this file's own path (CMake compiles it by its absolute
 * path). Returns a static buffer. */
static const char *fixture(const char *name)
{
    static char path[PATH_MAX];
    const char *self = __FILE__;
    const char *tail = strstr(self, "unit/test_hw.c");
    assert_non_null(tail);
    snprintf(path, sizeof(path), "%.*sfixtures/hw/%s", (int)(tail - self), self, name);
    return path;
}

static struct pc_hw probe(const char *name)
{
    struct pc_hw hw;
    struct pc_error err = {0};
    enum pc_err rc = pc_hw_probe(fixture(name), &hw, &err);
    if (rc != PC_OK)
        fail_msg("%s: %s", name, err.msg);
    assert_true(hw.cpu_cores >= 1);
    /* GPUs are looked for only on the real machine. */
    assert_int_equal(hw.n_gpus, 0);
    return hw;
}

/* Every fixture's host has 16 GiB with 12 GiB available, unless it says otherwise. */
static const struct hw_case {
    const char *name;
    uint64_t host_total, host_available;
    int version;
    uint64_t limit, usage;
    uint64_t ram_total, ram_available;
    double cpus;
} cases[] = {
    /* A limit in the process's own cgroup; its parent says "max". */
    {"v2-limited", 16 * GIB, 12 * GIB, 2, 4 * GIB, 1 * GIB, 4 * GIB, 3 * GIB, 1.5},
    {"v2-unlimited", 16 * GIB, 12 * GIB, 2, 0, 0, 16 * GIB, 12 * GIB, 0},
    /* The child says "max", the parent's 2 GiB binds it, and the parent's usage counts. */
    {"v2-parent-limit", 16 * GIB, 12 * GIB, 2, 2 * GIB, 1536 * MIB, 2 * GIB, 512 * MIB, 0},
    /* A container with its own cgroup namespace: "0::/", the limit at the mount's root. */
    {"v2-namespaced", 16 * GIB, 12 * GIB, 2, 1 * GIB, 256 * MIB, 1 * GIB, 768 * MIB, 2.0},
    /* A limit above the host's memory does not raise what there is. */
    {"v2-above-host", 16 * GIB, 12 * GIB, 2, 32 * GIB, 1 * GIB, 16 * GIB, 12 * GIB, 0},
    {"v1-limited", 16 * GIB, 12 * GIB, 1, 2 * GIB, 512 * MIB, 2 * GIB, 1536 * MIB, 0},
    /* systemd's hybrid layout: a "0::/" line, but memory is a v1 controller. */
    {"v1-hybrid", 16 * GIB, 12 * GIB, 1, 3 * GIB, 1 * GIB, 3 * GIB, 2 * GIB, 0},
    /* v1 writes "no limit" as a page-aligned LONG_MAX. */
    {"v1-unlimited", 16 * GIB, 12 * GIB, 1, 0, 0, 16 * GIB, 12 * GIB, 0},
    {"no-cgroup", 16 * GIB, 12 * GIB, 0, 0, 0, 16 * GIB, 12 * GIB, 0},
    /* No MemAvailable (before Linux 3.14): MemFree + Buffers + Cached, 1 GiB + 256 MiB + 2 GiB. */
    {"old-kernel", 8 * GIB, 3 * GIB + 256 * MIB, 0, 0, 0, 8 * GIB, 3 * GIB + 256 * MIB, 0},
};

static void test_probe_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct hw_case *c = &cases[i];
        struct pc_hw hw = probe(c->name);
        print_message("%s: total %llu available %llu v%d limit %llu usage %llu cpus %.2f\n",
                      c->name, (unsigned long long)hw.ram_total,
                      (unsigned long long)hw.ram_available, hw.cgroup_version,
                      (unsigned long long)hw.cgroup_limit, (unsigned long long)hw.cgroup_usage,
                      hw.cgroup_cpus);
        assert_int_equal(hw.host_total, c->host_total);
        assert_int_equal(hw.host_available, c->host_available);
        assert_int_equal(hw.cgroup_version, c->version);
        assert_int_equal(hw.cgroup_limit, c->limit);
        assert_int_equal(hw.cgroup_usage, c->usage);
        assert_int_equal(hw.ram_total, c->ram_total);
        assert_int_equal(hw.ram_available, c->ram_available);
        assert_true(hw.cgroup_cpus == c->cpus);
        assert_true(hw.ram_available <= hw.ram_total);
    }
}

static void test_probe_without_meminfo_fails(void **state)
{
    (void)state;
    static const char *const names[] = {"does-not-exist", "garbled"};
    for (size_t i = 0; i < 2; i++) {
        struct pc_hw hw;
        struct pc_error err = {0};
        char want[PATH_MAX + 32];
        snprintf(want, sizeof(want), "%s/proc/meminfo", fixture(names[i]));
        assert_int_equal(pc_hw_probe(fixture(names[i]), &hw, &err), PC_ERR_IO);
        assert_int_equal(err.code, PC_ERR_IO);
        if (strstr(err.msg, want) == NULL)
            fail_msg("want the path \"%s\" in \"%s\"", want, err.msg);
    }
}

static void test_probe_real_machine(void **state)
{
    (void)state;
    struct pc_hw hw;
    struct pc_error err = {0};
    enum pc_err rc = pc_hw_probe("", &hw, &err);
    if (rc != PC_OK)
        fail_msg("%s", err.msg);
    print_message("this machine: total %llu available %llu cgroup v%d cpus %d gpus %zu\n",
                  (unsigned long long)hw.ram_total, (unsigned long long)hw.ram_available,
                  hw.cgroup_version, hw.cpu_cores, hw.n_gpus);
    assert_true(hw.ram_total > 0);
    assert_true(hw.ram_total <= hw.host_total);
    assert_true(hw.ram_available <= hw.ram_total);
    assert_true(hw.host_available <= hw.host_total);
    assert_true(hw.cpu_cores >= 1);
    assert_true(hw.cgroup_version >= 0 && hw.cgroup_version <= 2);
    assert_true(hw.cgroup_cpus >= 0);
    assert_true(hw.n_gpus <= PC_HW_MAX_GPUS);
}

static void test_parse_meminfo(void **state)
{
    (void)state;
    uint64_t total = 1, avail = 1;
    assert_int_equal(pc_hw_parse_meminfo("MemTotal:       16384 kB\n"
                                         "MemFree:         1024 kB\n"
                                         "MemAvailable:    8192 kB\n"
                                         "Buffers:          512 kB\n"
                                         "Cached:          2048 kB\n",
                                         &total, &avail),
                     0);
    assert_int_equal(total, 16384 * KIB);
    assert_int_equal(avail, 8192 * KIB);

    /* The fallback takes "Cached:", not "SwapCached:", and a missing field counts as 0. */
    assert_int_equal(pc_hw_parse_meminfo("MemTotal: 100 kB\n"
                                         "MemFree: 10 kB\n"
                                         "SwapCached: 5 kB\n",
                                         &total, &avail),
                     0);
    assert_int_equal(total, 100 * KIB);
    assert_int_equal(avail, 10 * KIB);
    assert_int_equal(pc_hw_parse_meminfo("MemTotal: 100 kB\n"
                                         "MemFree: 10 kB\n"
                                         "Buffers: 20 kB\n"
                                         "Cached: 30 kB\n"
                                         "SwapCached: 5 kB\n",
                                         &total, &avail),
                     0);
    assert_int_equal(avail, 60 * KIB);

    assert_int_equal(pc_hw_parse_meminfo("", &total, &avail), -1);
    assert_int_equal(total, 0);
    assert_int_equal(avail, 0);
    assert_int_equal(pc_hw_parse_meminfo("MemTotal: lots\n", &total, &avail), -1);
    assert_int_equal(pc_hw_parse_meminfo("MemFree: 10 kB\n", &total, &avail), -1);
}

static void test_parse_limit(void **state)
{
    (void)state;
    uint64_t lim = 1;
    assert_int_equal(pc_hw_parse_limit("max\n", &lim), 0);
    assert_int_equal(lim, 0);
    assert_int_equal(pc_hw_parse_limit("123\n", &lim), 0);
    assert_int_equal(lim, 123);
    assert_int_equal(pc_hw_parse_limit("4294967296", &lim), 0);
    assert_int_equal(lim, 4 * GIB);
    assert_int_equal(pc_hw_parse_limit("9223372036854771712", &lim), 0);
    assert_int_equal(lim, 0);
    lim = 1;
    assert_int_equal(pc_hw_parse_limit("junk", &lim), -1);
    assert_int_equal(lim, 0);
    assert_int_equal(pc_hw_parse_limit("", &lim), -1);
}

static void test_parse_cpu_max(void **state)
{
    (void)state;
    double cpus = 1;
    assert_int_equal(pc_hw_parse_cpu_max("max 100000", &cpus), 0);
    assert_true(cpus == 0);
    assert_int_equal(pc_hw_parse_cpu_max("200000 100000", &cpus), 0);
    assert_true(cpus == 2.0);
    assert_int_equal(pc_hw_parse_cpu_max("150000 100000\n", &cpus), 0);
    assert_true(cpus == 1.5);
    cpus = 1;
    assert_int_equal(pc_hw_parse_cpu_max("x", &cpus), -1);
    assert_true(cpus == 0);
    assert_int_equal(pc_hw_parse_cpu_max("100000 0", &cpus), -1);
    assert_int_equal(pc_hw_parse_cpu_max("-5 100000", &cpus), -1);
    assert_int_equal(pc_hw_parse_cpu_max("12x 100000", &cpus), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_fixtures),
        cmocka_unit_test(test_probe_without_meminfo_fails),
        cmocka_unit_test(test_probe_real_machine),
        cmocka_unit_test(test_parse_meminfo),
        cmocka_unit_test(test_parse_limit),
        cmocka_unit_test(test_parse_cpu_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
