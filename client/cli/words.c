/* words.c: splitting a `shell` line into words. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int split_words(const char *line, char ***argv)
{
    *argv = NULL;
    size_t len = strlen(line);
    /* At most len/2+1 words; each word's bytes fit in len+words bytes. */
    size_t maxw = len / 2 + 2;
    char **v = malloc(maxw * sizeof(char *) + len + maxw);
    if (!v)
        return -ENOMEM;
    char *out = (char *)(v + maxw);
    int n = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        v[n++] = out;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            if (*p == '\'') {
                const char *end = strchr(p + 1, '\'');
                if (!end)
                    goto unclosed;
                memcpy(out, p + 1, (size_t)(end - p - 1));
                out += end - p - 1;
                p = end + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
                        p++;
                    *out++ = *p++;
                }
                if (*p != '"')
                    goto unclosed;
                p++;
            } else if (*p == '\\') {
                p++;
                if (*p)
                    *out++ = *p++;
            } else {
                *out++ = *p++;
            }
        }
        *out++ = '\0';
    }
    v[n] = NULL;
    *argv = v;
    return n;
unclosed:
    free(v);
    return -EINVAL;
}
