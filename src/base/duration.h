/* duration.h - Ollama's keep_alive durations: Go duration strings or seconds. */
#ifndef PC_DURATION_H
#define PC_DURATION_H

#include <stdint.h>

#include "err.h"

/* A keep-alive of "forever" (any negative value, as Ollama defines it). */
#define PC_DURATION_FOREVER INT64_MIN

/* Parse a Go-style duration ("5m", "1h30m", "300ms", "-1s", "0") into nanoseconds.
 * A bare number is taken as seconds ("300", "-1"). Any negative duration becomes
 * PC_DURATION_FOREVER. Returns PC_ERR_INVALID, with a detail naming the text, on bad input. */
enum pc_err pc_duration_parse(const char *s, int64_t *out_ns /* OUT */, struct pc_error *err);

/* Seconds (from a JSON number) to the same representation, saturating at INT64_MAX; NaN is 0. */
int64_t pc_duration_from_seconds(double secs);

#endif
