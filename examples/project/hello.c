/* hello: the tiny program that examples/project/tasks.toml builds. */
#include <stdio.h>
#include <string.h>

#ifndef VERSION
#define VERSION "dev"
#endif

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("hello %s\n", VERSION);
        return 0;
    }
    printf("Hello, %s!\n", argc > 1 ? argv[1] : "world");
    return 0;
}
