/* progress.h - a progress bar on a terminal: percentage, bytes, speed and ETA, redrawn in place
 * at most ten times a second. */
#ifndef PC_CLI_PROGRESS_H
#define PC_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct pc_bar {
    FILE *out;
    char label[64];
    int64_t last_ns; /* when it was last drawn */
    bool drawn;      /* a bar is on the current line */
};

void pc_bar_init(struct pc_bar *b, FILE *out, const char *label);

/* Draw the bar; skipped when the last draw was less than 100 ms ago, unless force. total 0:
 * unknown, then bytes and speed only. */
void pc_bar_update(struct pc_bar *b, uint64_t completed, uint64_t total, double bytes_per_sec,
                   bool force);

/* End the bar's line, so that the next output starts on a line of its own. */
void pc_bar_end(struct pc_bar *b);

/* Write one line of text in place of the bar; the next update draws the bar again below it. */
void pc_bar_say(struct pc_bar *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "5.2 MB", "637.0 MB", "1.92 GB", "812 KB": sizes with enough digits to watch them move. */
const char *pc_bar_bytes(uint64_t bytes, char *buf, size_t size);

#endif
