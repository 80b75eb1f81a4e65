/* progress.c - a progress bar on a terminal: percentage, bytes, speed and ETA. */
#include "progress.h"

#include "../base/fmt.h"

#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../base/clock.h"

#define REDRAW_NS 100000000LL
#define MIN_CELLS 10
#define MAX_CELLS 40

void pc_bar_init(struct pc_bar *b, FILE *out, const char *label)
{
    memset(b, 0, sizeof(*b));
    b->out = out;
    snprintf(b->label, sizeof(b->label), "%s", label);
}

const char *pc_bar_bytes(uint64_t bytes, char *buf, size_t size)
{
    return pc_fmt_bytes_fine(bytes, 1, buf, size);
}

static void format_eta(double secs, char *buf, size_t size)
{
    if (secs < 0 || secs > 99 * 3600.0) {
        snprintf(buf, size, "--:--");
        return;
    }
    unsigned s = (unsigned)(secs + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%u:%02u", s / 60, s % 60);
}

static int columns(FILE *f)
{
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

void pc_bar_update(struct pc_bar *b, uint64_t completed, uint64_t total, double bytes_per_sec,
                   bool force)
{
    int64_t now = pc_clock_mono_ns();
    if (!force && b->drawn && now - b->last_ns < REDRAW_NS)
        return;
    b->last_ns = now;
    char have[32], all[32], speed[32], eta[32], bar[MAX_CELLS + 1];
    pc_bar_bytes(completed, have, sizeof(have));
    pc_bar_bytes(total, all, sizeof(all));
    if (bytes_per_sec > 0)
        pc_bar_bytes((uint64_t)bytes_per_sec, speed, sizeof(speed));
    else
        snprintf(speed, sizeof(speed), "-");
    format_eta(bytes_per_sec > 0 && total >= completed ? (double)(total - completed) / bytes_per_sec
                                                       : -1,
               eta, sizeof(eta));

    char line[512], right[160];
    if (total > 0) {
        double frac = completed >= total ? 1.0 : (double)completed / (double)total;
        /* Fixed widths, so that the bar keeps its size while the numbers change. */
        snprintf(right, sizeof(right), " %8s/%-8s %9s/s ETA %-5s", have, all, speed, eta);
        /* The bar takes what the terminal has left, within reason. */
        int cells = columns(b->out) - 1 - (int)strlen(b->label) - 7 - (int)strlen(right);
        cells = cells < MIN_CELLS ? MIN_CELLS : cells > MAX_CELLS ? MAX_CELLS : cells;
        int full = (int)(frac * cells);
        for (int i = 0; i < cells; i++)
            bar[i] = i < full ? '=' : i == full ? '>' : ' ';
        bar[cells] = '\0';
        snprintf(line, sizeof(line), "%s %3d%% [%s]%s", b->label, (int)(frac * 100), bar, right);
    } else {
        snprintf(line, sizeof(line), "%s %s  %s/s", b->label, have, speed);
    }
    /* \r and erase-to-end-of-line: a shorter line leaves nothing of the longer one behind. */
    fprintf(b->out, "\r%s\033[K", line);
    fflush(b->out);
    b->drawn = true;
}

void pc_bar_end(struct pc_bar *b)
{
    if (!b->drawn)
        return;
    fputc('\n', b->out);
    fflush(b->out);
    b->drawn = false;
}

void pc_bar_say(struct pc_bar *b, const char *fmt, ...)
{
    if (b->drawn) /* the message takes the bar's line; the next update draws it below */
        fputs("\r\033[K", b->out);
    b->drawn = false;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(b->out, fmt, ap);
    va_end(ap);
    fputc('\n', b->out);
    fflush(b->out);
}
