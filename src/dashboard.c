/* dashboard.c: finds an embedded dashboard file by the path asked. */
#include "dashboard.h"

#include <errno.h>
#include <string.h>

static const char *type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

int dashboard_asset(const char *path, size_t path_len, const char **content_type, const unsigned char **body,
                    size_t *len)
{
    if (path_len < 1 || path[0] != '/')
        return -ENOENT;
    const char *name = path + 1;
    size_t nlen = path_len - 1;
    if (nlen == 0) {
        name = "index.html";
        nlen = strlen(name);
    }
    for (size_t i = 0; i < dashboard_nfiles; i++) {
        const struct dashboard_file *f = &dashboard_files[i];
        if (strlen(f->name) == nlen && memcmp(f->name, name, nlen) == 0) {
            *content_type = type_of(f->name);
            *body = f->body;
            *len = f->len;
            return 0;
        }
    }
    return -ENOENT;
}
