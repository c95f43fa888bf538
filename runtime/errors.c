/*
 * errors.c - error codes and their text (one X-macro, as libuv does), and
 * the clock.
 */
#include "internal.h"

#include <string.h>
#include <time.h>

CS_EXTERN const char *cs_strerror(int code)
{
    switch (code) {
#define XX(name, value, text)                                                 \
    case CS_##name:                                                           \
        return text;
        CS_ERRNO_MAP(XX)
#undef XX
    case 0:
        return "success";
    default:
        break;
    }
    if (code < 0 && code > -4000) {
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}

CS_EXTERN const char *cs_err_name(int code)
{
    switch (code) {
#define XX(name, value, text)                                                 \
    case CS_##name:                                                           \
        return "CS_" #name;
        CS_ERRNO_MAP(XX)
#undef XX
    default:
        return "CS_EUNKNOWN";
    }
}

CS_EXTERN int64_t cs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t cs__now(void)
{
    return cs_now_ns();
}
