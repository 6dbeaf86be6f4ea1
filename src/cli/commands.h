/* The subcommands of bin/genre. Each takes the arguments after its name
 * (argv[0] is the command name) and returns the process exit status. */
#ifndef GENRE_COMMANDS_H
#define GENRE_COMMANDS_H

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

int cmd_prepare(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_embed(int argc, char **argv);

int cmd_baseline(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
