/* clock.h - monotonic and wall-clock time, and RFC 3339 timestamps. */
#ifndef PC_CLOCK_H
#define PC_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic nanoseconds, for durations. */
int64_t pc_clock_mono_ns(void);

/* Wall-clock nanoseconds since the Unix epoch, for timestamps. */
int64_t pc_clock_wall_ns(void);

/* Format wall-clock ns as RFC 3339 with nanoseconds in UTC ("2026-11-22T21:30:00.123456789Z"),
 * the form Ollama uses. buf needs at least 40 bytes. Returns buf. */
char *pc_clock_rfc3339(int64_t wall_ns, char *buf, size_t size);

#endif
