/* log.h - one log sink: a line per event, with level, time and subsystem. */
#ifndef PC_LOG_H
#define PC_LOG_H

enum pc_log_level { PC_LOG_ERROR, PC_LOG_WARN, PC_LOG_INFO, PC_LOG_DEBUG };

extern enum pc_log_level pc_log_threshold;

/* Parse "error", "warn", "info" or "debug". Returns -1 for anything else. */
int pc_log_level_parse(const char *s);

/* Write one line to the sink (stderr). Prefer the pc_log macro, which checks the level first. */
void pc_log_write(enum pc_log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The level is checked before the arguments are evaluated. */
#define pc_log(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if ((level) <= pc_log_threshold)                                                           \
            pc_log_write((level), (subsys), __VA_ARGS__);                                          \
    } while (0)

#define pc_log_error(subsys, ...) pc_log(PC_LOG_ERROR, subsys, __VA_ARGS__)
#define pc_log_warn(subsys, ...) pc_log(PC_LOG_WARN, subsys, __VA_ARGS__)
#define pc_log_info(subsys, ...) pc_log(PC_LOG_INFO, subsys, __VA_ARGS__)
#define pc_log_debug(subsys, ...) pc_log(PC_LOG_DEBUG, subsys, __VA_ARGS__)

#endif
