#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

typedef struct {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *help;
} sy_ctl_cmd;

static const sy_ctl_cmd cmds[] = {
    {"scrub", sy_ctl_cmd_scrub, "read text on stdin, write it with PII replaced (line by line)"},
    {"export", sy_ctl_cmd_export, "write fine-tuning JSONL (and preference pairs) from a store"},
    {"captures", sy_ctl_cmd_captures, "stats|list|show: a quick look into a store"},
    {"health", sy_ctl_cmd_health, "admin API: is the gateway up, who am I"},
    {"routes", sy_ctl_cmd_routes,
     "admin API: list|get|put|split|promote|rollback|shadow|history"},
    {"report", sy_ctl_cmd_report, "admin API: per-arm report and recommendation for a route"},
    {"captures-remote", sy_ctl_cmd_captures_remote, "admin API: list|show captured pairs"},
    {"label", sy_ctl_cmd_label, "admin API: verify or correct a captured answer"},
    {"export-remote", sy_ctl_cmd_export_remote, "admin API: stream the fine-tuning dataset"},
    {"keys", sy_ctl_cmd_keys, "admin API: create|revoke|list client API keys"},
};

static void usage(FILE *out) {
  fprintf(out, "usage: switchyardctl COMMAND [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    fprintf(out, "  %-16s %s\n", cmds[i].name, cmds[i].help);
  fprintf(out, "\nswitchyardctl COMMAND --help shows a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "switchyardctl: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
