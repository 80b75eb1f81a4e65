/* clock.c - monotonic and wall-clock time, and RFC 3339 timestamps. */
#include "clock.h"

#include <stdio.h>
#include <time.h>

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t pc_clock_mono_ns(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

int64_t pc_clock_wall_ns(void)
{
    return read_clock(CLOCK_REALTIME);
}

char *pc_clock_rfc3339(int64_t wall_ns, char *buf, size_t size)
{
    int64_t secs64 = wall_ns / 1000000000, nsec64 = wall_ns % 1000000000;
    if (nsec64 < 0) { /* floor, so that times before the epoch read correctly */
        secs64 -= 1;
        nsec64 += 1000000000;
    }
    time_t secs = (time_t)secs64;
    long nsec = (long)nsec64;
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec);
    return buf;
}
