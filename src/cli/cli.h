/* cli.h - the precharge command's subcommands. Each returns the process exit status. */
#ifndef PC_CLI_H
#define PC_CLI_H

/* Exit statuses: 0 success, 1 the operation failed, 2 the command line was wrong. */
#define PC_EXIT_OK 0
#define PC_EXIT_FAIL 1
#define PC_EXIT_USAGE 2

int pc_cmd_serve(int argc, char **argv);
int pc_cmd_run(int argc, char **argv);
int pc_cmd_ps(int argc, char **argv);
int pc_cmd_stop(int argc, char **argv);

/* "precharge: " + message on stderr. */
void pc_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
