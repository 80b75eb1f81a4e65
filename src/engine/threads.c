/* threads.c - how many threads a decode uses: the CPUs this process may really use, less the
 * ones that other processes keep busy. llama.cpp's threads spin at every barrier of a graph, so
 * one thread more than there are idle cores halves decode speed (docs/scheduler.md). */
#include "engineInt.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/clock.h"

#define REMEASURE_NS 1000000000LL

/* Decode loops of this process between pc_threads_begin and pc_threads_end: the CPUs are shared
 * among them (the /proc figures count them all as this process's own). */
static atomic_int decoding;

struct pc_threads {
    int32_t avail;
    int32_t current;
    int64_t last_ns;
    unsigned long long last_busy, last_total, last_self;
    bool have_sample;
};

/* A cgroup v2 quota ("200000 100000" in cpu.max: two CPUs' worth), rounded up; 0: none. */
static int32_t cgroup_cpus(void)
{
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f == NULL)
        return 0;
    char quota[32] = "";
    unsigned long long period = 0;
    int got = fscanf(f, "%31s %llu", quota, &period);
    fclose(f);
    if (got != 2 || period == 0 || quota[0] < '0' || quota[0] > '9')
        return 0;
    unsigned long long q = strtoull(quota, NULL, 10);
    return (int32_t)((q + period - 1) / period);
}

int32_t pc_threads_available(void)
{
    cpu_set_t set;
    int32_t n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = (int32_t)CPU_COUNT(&set);
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int32_t)online : 1;
    }
    int32_t quota = cgroup_cpus();
    if (quota > 0 && quota < n)
        n = quota;
    return n;
}

/* CPU time of the whole machine (busy and total) and of this process, in clock ticks. */
static bool sample(unsigned long long *busy, unsigned long long *total, unsigned long long *self)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return false;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got < 4)
        return false;
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    *total = *busy + v[3] + v[4];

    f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return false;
    /* Fields 14 and 15 (utime, stime) follow the command name, which may hold spaces. */
    char line[1024];
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *self = ut + st;
    return true;
}

struct pc_threads *pc_threads_new(void)
{
    struct pc_threads *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->avail = pc_threads_available();
    t->current = t->avail;
    return t;
}

void pc_threads_begin(void)
{
    atomic_fetch_add(&decoding, 1);
}

void pc_threads_end(void)
{
    atomic_fetch_sub(&decoding, 1);
}

/* The CPUs left to this process, shared among its loops that decode now (this one included). */
static int32_t share(const struct pc_threads *t)
{
    int loops = atomic_load(&decoding);
    int32_t n = loops > 1 ? t->current / loops : t->current;
    return n < 1 ? 1 : n;
}

int32_t pc_threads_pick(struct pc_threads *t)
{
    int64_t now = pc_clock_mono_ns();
    if (t->have_sample && now - t->last_ns < REMEASURE_NS)
        return share(t);
    unsigned long long busy, total, self;
    if (!sample(&busy, &total, &self))
        return share(t);
    if (t->have_sample && total > t->last_total) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        double cpus = online > 0 ? (double)online : 1.0;
        double others = (double)(busy - t->last_busy) - (double)(self - t->last_self);
        double busy_cpus = others > 0 ? others / (double)(total - t->last_total) * cpus : 0.0;
        int32_t n = t->avail - (int32_t)(busy_cpus + 0.5);
        t->current = n < 1 ? 1 : n;
    }
    t->last_busy = busy;
    t->last_total = total;
    t->last_self = self;
    t->last_ns = now;
    t->have_sample = true;
    return share(t);
}

void pc_threads_free(struct pc_threads *t)
{
    free(t);
}
