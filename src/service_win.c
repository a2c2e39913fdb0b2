/* service_win.c: darner as a Windows service. `--service install` registers
 * `darner.exe --service run FLAGS` with the service control manager (SCM),
 * `--service run` is what the SCM starts: it runs the server on the
 * service's main thread and turns the stop control into
 * server_request_stop; `--service uninstall` stops and removes it. */
#include "service.h"
#include "util/errstr.h"
#include "util/utf16.h"

#include "conffile.h"
#include "config.h"
#include "proc.h"
#include "server.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

#define SERVICE_NAME L"darner"
#define SERVICE_DISPLAY L"darner message queue"
#define SERVICE_DESCRIPTION                                                                                            \
    L"Durable message-queue server speaking the memcache text protocol. Its data folder and log file are named by "    \
    L"the --data and --log-file flags of its command line."
#define STOP_WAIT_MS 30000    /* uninstall waits this long for a running service to stop */
#define START_HINT_MS 30000   /* the SCM's patience while the journals are read at start */
#define STOP_HINT_MS 30000    /* and while connections close and the journals are synced */
#define LOG_NAME "darner.log" /* in the data folder, unless --log-file says otherwise */

const char *const SERVICE_UNAVAILABLE = NULL;

/* A Win32 error as text, without the trailing line break. */
static const char *win_error(DWORD e, char *buf, size_t cap)
{
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e, 0, buf, (DWORD)cap,
                             NULL);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '.'))
        n--;
    if (n == 0)
        snprintf(buf, cap, "Windows error %lu", (unsigned long)e);
    else
        buf[n] = '\0';
    return buf;
}

/* What to do about the errors an administrator meets. */
static const struct {
    DWORD error;
    const char *advice;
} ADVICE[] = {
    {ERROR_ACCESS_DENIED, "; run it from an elevated prompt (Run as administrator)"},
    {ERROR_SERVICE_EXISTS, "; `darner --service uninstall` removes the one installed"},
    {ERROR_DUPLICATE_SERVICE_NAME, "; `darner --service uninstall` removes the one installed"},
    {ERROR_SERVICE_DOES_NOT_EXIST, ": there is no service named darner"},
    {ERROR_SERVICE_MARKED_FOR_DELETE, "; it goes once every program that has it open (services.msc) closes it"},
};

/* Prints "darner: <what>: <Windows' text><advice>" for the last error;
 * returns the exit code 1. */
static int say_error(const char *what)
{
    DWORD e = GetLastError();
    char text[512];
    const char *advice = "";
    for (size_t i = 0; i < sizeof(ADVICE) / sizeof(ADVICE[0]); i++)
        if (ADVICE[i].error == e)
            advice = ADVICE[i].advice;
    fprintf(stderr, "darner: %s: %s%s\n", what, win_error(e, text, sizeof(text)), advice);
    return 1;
}

/* ---- the command line the service is installed with ---- */

/* A growing UTF-16 string; cap 0 with s NULL is the empty one. */
struct wbuf {
    wchar_t *s;
    size_t len, cap;
    int failed; /* out of memory: every later append does nothing */
};

static void wb_add(struct wbuf *b, const wchar_t *text, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        wchar_t *s = realloc(b->s, cap * sizeof(*s));
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    wmemcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = L'\0';
}

static void wb_str(struct wbuf *b, const wchar_t *text) { wb_add(b, text, wcslen(text)); }

static void wb_repeat(struct wbuf *b, wchar_t c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wb_add(b, &c, 1);
}

/* arg quoted so that CommandLineToArgvW (and the C runtime) give it back
 * as it is: in double quotes, a quote escaped with a backslash, and the
 * backslashes before a quote (the closing one too) doubled. */
static void wb_quoted(struct wbuf *b, const wchar_t *arg)
{
    wb_str(b, L" \"");
    for (const wchar_t *p = arg;; p++) {
        size_t slashes = 0;
        while (*p == L'\\') {
            slashes++;
            p++;
        }
        if (!*p) {
            wb_repeat(b, L'\\', slashes * 2);
            break;
        }
        if (*p == L'"') {
            wb_repeat(b, L'\\', slashes * 2 + 1);
        } else {
            wb_repeat(b, L'\\', slashes);
        }
        wb_add(b, p, 1);
    }
    wb_str(b, L"\"");
}

static void wb_quoted_narrow(struct wbuf *b, const char *arg)
{
    wchar_t *w = utf8_to_utf16(arg); /* UTF-8, as main's proc_args gives the arguments */
    if (!w) {
        b->failed = 1;
        return;
    }
    wb_quoted(b, w);
    free(w);
}

/* Prints a UTF-16 string as UTF-8, as darner prints every path. */
static void print_wide(const wchar_t *w)
{
    char *s = utf16_to_utf8(w);
    if (s)
        fputs(s, stdout);
    free(s);
}

static int is_absolute(const char *p)
{
    return (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' &&
            (p[2] == '\\' || p[2] == '/')) ||
           ((p[0] == '\\' || p[0] == '/') && (p[1] == '\\' || p[1] == '/'));
}

/* The settings that name files: a service runs in %SystemRoot%\system32,
 * so each must be a full path. */
static const struct {
    const char *flag;
    size_t off;
} PATH_SETTINGS[] = {
    {"--data", offsetof(struct config, data_dir)},
    {"--config", offsetof(struct config, config_file)},
    {"--log-file", offsetof(struct config, log_file)},
    {"--port-file", offsetof(struct config, port_file)},
    {"--admin-port-file", offsetof(struct config, admin_port_file)},
    {"--auth-file", offsetof(struct config, auth_file)},
    {"--ssl-chain-cert", offsetof(struct config, ssl_chain_cert)},
    {"--ssl-key", offsetof(struct config, ssl_key)},
    {"--ssl-ca-cert", offsetof(struct config, ssl_ca_cert)},
};

/* Reads the flags as the service will (a mistake is refused now, not at
 * the first start) into cfg, and checks their paths. Returns 0 or the exit
 * code. */
static int check_flags(int argc, char **argv, struct config *cfg, int *data_given)
{
    struct conffile *file;
    config_defaults(cfg);
    switch (config_parse(cfg, &file, argc, argv, stdout, stderr)) {
    case CONFIG_EXIT_OK:
        return 2; /* --help or --version: nothing installed */
    case CONFIG_EXIT_ERROR:
        return 2;
    case CONFIG_RUN:
        break;
    }
    conffile_free(file);
    *data_given = strcmp(cfg->data_dir, CONFIG_DEFAULT_DATA) != 0;
    for (size_t i = 0; i < sizeof(PATH_SETTINGS) / sizeof(PATH_SETTINGS[0]); i++) {
        const char *path = (const char *)cfg + PATH_SETTINGS[i].off;
        if (path[0] && !is_absolute(path) &&
            (PATH_SETTINGS[i].off != offsetof(struct config, data_dir) || *data_given)) {
            fprintf(stderr,
                    "darner: %s '%s' is not a full path: a service runs in %%SystemRoot%%\\system32, so give one "
                    "such as C:\\darner\\%s\n",
                    PATH_SETTINGS[i].flag, path, PATH_SETTINGS[i].flag + 2);
            return 2;
        }
    }
    return 0;
}

/* The service's command line: this program, --service run, the flags, and
 * --data and --log-file when the flags leave them out. Returns 0 or the
 * exit code; *log names the log file. */
static int service_command(int argc, char **argv, struct wbuf *cmd, char *log, size_t logcap)
{
    struct config cfg;
    int data_given, rc = check_flags(argc, argv, &cfg, &data_given);
    if (rc)
        return rc;
    wchar_t exe[32768];
    DWORD n = GetModuleFileNameW(NULL, exe, sizeof(exe) / sizeof(exe[0]));
    if (n == 0 || n >= sizeof(exe) / sizeof(exe[0]))
        return say_error("cannot find the path of this program");
    char data[sizeof(cfg.data_dir) + 16];
    if (data_given) {
        snprintf(data, sizeof(data), "%s", cfg.data_dir);
    } else { /* Windows' place for a service's data: C:\ProgramData\darner */
        const char *pd = getenv("ProgramData");
        snprintf(data, sizeof(data), "%s\\darner", pd && *pd ? pd : "C:\\ProgramData");
    }
    if (!cfg.log_file[0] && (rc = proc_prepare_dir(data)) < 0) { /* the log file's folder, before any start */
        fprintf(stderr, "darner: cannot make the data folder '%s': %s\n", data, errstr(rc));
        return 2;
    }
    snprintf(log, logcap, "%s", cfg.log_file);
    if (!cfg.log_file[0])
        snprintf(log, logcap, "%s%s%s", data, strchr("\\/", data[strlen(data) - 1]) ? "" : "\\", LOG_NAME);
    wb_str(cmd, L"\"");
    wb_str(cmd, exe);
    wb_str(cmd, L"\" --service run");
    for (int i = 1; i < argc; i++)
        wb_quoted_narrow(cmd, argv[i]);
    if (!data_given) {
        wb_str(cmd, L" --data");
        wb_quoted_narrow(cmd, data);
    }
    if (!cfg.log_file[0]) {
        wb_str(cmd, L" --log-file");
        wb_quoted_narrow(cmd, log);
    }
    if (cmd->failed) {
        fprintf(stderr, "darner: out of memory\n");
        return 1;
    }
    return 0;
}

int service_install(int argc, char **argv, const struct jio *io)
{
    (void)io;
    struct wbuf cmd = {0};
    char log[4200];
    int rc = service_command(argc, argv, &cmd, log, sizeof(log));
    if (rc) {
        free(cmd.s);
        return rc;
    }
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE);
    if (!scm) {
        free(cmd.s);
        return say_error("cannot open the service control manager");
    }
    SC_HANDLE svc = CreateServiceW(scm, SERVICE_NAME, SERVICE_DISPLAY, SERVICE_CHANGE_CONFIG | SERVICE_QUERY_STATUS,
                                   SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, cmd.s, NULL,
                                   NULL, NULL, NULL /* LocalSystem */, NULL);
    if (!svc) {
        rc = say_error("cannot install the service darner");
    } else {
        SERVICE_DESCRIPTIONW desc = {.lpDescription = SERVICE_DESCRIPTION};
        if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &desc))
            say_error("installed, but cannot set the service's description");
        fputs("installed the service darner (\"darner message queue\", started at boot) as:\n  ", stdout);
        print_wide(cmd.s);
        printf("\nits log: %s\nstart it now with: sc start darner (or: net start darner)\n", log);
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    free(cmd.s);
    return rc;
}

/* Sends the stop control if it runs, and waits up to STOP_WAIT_MS for it
 * to be stopped. Returns 0 or the exit code. */
static int stop_and_wait(SC_HANDLE svc)
{
    SERVICE_STATUS st;
    if (!QueryServiceStatus(svc, &st))
        return say_error("cannot ask the service darner for its state");
    if (st.dwCurrentState == SERVICE_STOPPED)
        return 0;
    printf("stopping the service darner...\n");
    fflush(stdout);
    if (st.dwCurrentState != SERVICE_STOP_PENDING && !ControlService(svc, SERVICE_CONTROL_STOP, &st) &&
        GetLastError() != ERROR_SERVICE_NOT_ACTIVE)
        return say_error("cannot stop the service darner");
    for (DWORD waited = 0; waited < STOP_WAIT_MS; waited += 250) {
        if (!QueryServiceStatus(svc, &st))
            return say_error("cannot ask the service darner for its state");
        if (st.dwCurrentState == SERVICE_STOPPED)
            return 0;
        Sleep(250);
    }
    fprintf(stderr, "darner: the service darner did not stop within %d s; removing it anyway (it goes once it stops)\n",
            STOP_WAIT_MS / 1000);
    return 0;
}

int service_uninstall(int argc, char **argv, const struct jio *io)
{
    (void)io;
    if (argc > 1) {
        fprintf(stderr, "darner: --service uninstall takes no flags, not '%s'\n", argv[1]);
        return 2;
    }
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (!scm)
        return say_error("cannot open the service control manager");
    int rc = 0;
    SC_HANDLE svc = OpenServiceW(scm, SERVICE_NAME, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    if (!svc) {
        rc = say_error("cannot open the service darner");
    } else {
        rc = stop_and_wait(svc);
        if (rc == 0 && !DeleteService(svc))
            rc = say_error("cannot remove the service darner");
        if (rc == 0)
            printf("removed the service darner; its data folder and log file are left as they are\n");
        CloseServiceHandle(svc);
    }
    CloseServiceHandle(scm);
    return rc;
}

/* ---- the running service ---- */

/* ServiceMain takes no argument of ours: what it needs is here, the one
 * service of this process. lock orders the control handler's thread
 * against the service's main thread. */
static struct {
    int argc;
    char **argv;
    const struct jio *io;
    SERVICE_STATUS_HANDLE handle;
    SERVICE_STATUS status;
    SRWLOCK lock;
    struct server *srv; /* serving: stop requests go to it */
    int stop_asked;     /* a stop came before the server served */
    int rc;             /* the server's exit code */
} svc = {.lock = SRWLOCK_INIT};

/* Tells the SCM the service's state; under svc.lock. */
static void report(DWORD state, int exit_code, DWORD hint_ms)
{
    SERVICE_STATUS *st = &svc.status;
    st->dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    st->dwCurrentState = state;
    st->dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    st->dwWin32ExitCode = exit_code ? ERROR_SERVICE_SPECIFIC_ERROR : NO_ERROR;
    st->dwServiceSpecificExitCode = (DWORD)exit_code;
    st->dwWaitHint = hint_ms;
    st->dwCheckPoint = state == SERVICE_RUNNING || state == SERVICE_STOPPED ? 0 : st->dwCheckPoint + 1;
    SetServiceStatus(svc.handle, st);
}

/* The SCM's controls, on its own thread. */
static DWORD WINAPI on_control(DWORD control, DWORD type, LPVOID data, LPVOID ctx)
{
    (void)type, (void)data, (void)ctx;
    if (control == SERVICE_CONTROL_INTERROGATE)
        return NO_ERROR;
    if (control != SERVICE_CONTROL_STOP && control != SERVICE_CONTROL_SHUTDOWN)
        return ERROR_CALL_NOT_IMPLEMENTED;
    AcquireSRWLockExclusive(&svc.lock);
    if (!svc.stop_asked && svc.status.dwCurrentState != SERVICE_STOPPED) {
        svc.stop_asked = 1;
        report(SERVICE_STOP_PENDING, 0, STOP_HINT_MS);
        if (svc.srv)
            server_request_stop(svc.srv);
    }
    ReleaseSRWLockExclusive(&svc.lock);
    return NO_ERROR;
}

/* darner_run's hook, on the service's main thread: s once it serves, NULL
 * once its loop has ended. */
static void on_ready(void *arg, struct server *s)
{
    (void)arg;
    AcquireSRWLockExclusive(&svc.lock);
    svc.srv = s;
    if (s && svc.stop_asked)
        server_request_stop(s);
    else if (s)
        report(SERVICE_RUNNING, 0, 0);
    ReleaseSRWLockExclusive(&svc.lock);
}

static void WINAPI service_main(DWORD n, LPWSTR *args)
{
    (void)n, (void)args; /* StartService's arguments: the flags are the command line's */
    svc.handle = RegisterServiceCtrlHandlerExW(SERVICE_NAME, on_control, NULL);
    if (!svc.handle) {
        svc.rc = 1;
        return;
    }
    AcquireSRWLockExclusive(&svc.lock);
    report(SERVICE_START_PENDING, 0, START_HINT_MS);
    ReleaseSRWLockExclusive(&svc.lock);
    struct darner_hooks hooks = {.ready = on_ready};
    svc.rc = darner_run(svc.argc, svc.argv, svc.io, &hooks);
    AcquireSRWLockExclusive(&svc.lock);
    report(SERVICE_STOPPED, svc.rc, 0);
    ReleaseSRWLockExclusive(&svc.lock);
}

int service_run(int argc, char **argv, const struct jio *io)
{
    svc.argc = argc;
    svc.argv = argv;
    svc.io = io;
    SERVICE_TABLE_ENTRYW table[] = {{SERVICE_NAME, service_main}, {NULL, NULL}};
    if (StartServiceCtrlDispatcherW(table))
        return svc.rc; /* once the service has stopped */
    if (GetLastError() == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
        fprintf(stderr, "darner: --service run is what the service manager starts (sc start darner); in a console, "
                        "run darner without --service\n");
        return 2;
    }
    return say_error("cannot connect to the service control manager");
}
