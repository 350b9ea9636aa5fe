#ifndef SY_CTL_H
#define SY_CTL_H

/* switchyardctl sub-commands. Each takes the arguments after its own name
 * (argv[0] is the sub-command name) and returns the process exit code:
 * 0 success, 1 the operation failed, 2 bad usage. */
int sy_ctl_cmd_scrub(int argc, char **argv);
int sy_ctl_cmd_export(int argc, char **argv);
int sy_ctl_cmd_captures(int argc, char **argv);

/* Admin API over gRPC (ctl/cmd_admin.c, ctl/cmd_routes.c). Exit codes as
 * above plus 3: cannot connect, or the deadline passed (ctl/admin.h). */
int sy_ctl_cmd_health(int argc, char **argv);
int sy_ctl_cmd_routes(int argc, char **argv);
int sy_ctl_cmd_report(int argc, char **argv);
int sy_ctl_cmd_captures_remote(int argc, char **argv);
int sy_ctl_cmd_label(int argc, char **argv);
int sy_ctl_cmd_export_remote(int argc, char **argv);
int sy_ctl_cmd_keys(int argc, char **argv);

#endif
