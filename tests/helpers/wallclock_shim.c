/* Shift the wall clock, and only the wall clock, of a process: an LD_PRELOAD shim
 * for tests that need a host whose clock is wrong.
 *
 *   CRONTABBER_TEST_WALL_OFFSET=-120   the wall clock reads 120 s behind the real one
 *   CRONTABBER_TEST_WALL_AT=1774699200 the wall clock reads that epoch instant when the
 *                                      process starts, then advances in real time
 *
 * CRONTABBER_TEST_WALL_AT wins when both are set. The offset is fixed once, in a
 * constructor, and written back to the environment as CRONTABBER_TEST_WALL_OFFSET
 * (CRONTABBER_TEST_WALL_AT removed), so child processes share this process's clock
 * instead of restarting it.
 *
 * Shifted: clock_gettime(CLOCK_REALTIME / CLOCK_REALTIME_COARSE), gettimeofday, time.
 * Everything else (CLOCK_MONOTONIC, CLOCK_BOOTTIME, CPU clocks...) passes through.
 *
 * Timed waits keep their real length. Waits on the monotonic clock (what CPython uses
 * when it can) are untouched. Waits that take an absolute CLOCK_REALTIME deadline,
 * which a caller computed from the shifted clock, get the deadline shifted back:
 * sem_timedwait, sem_clockwait, pthread_mutex_timedlock, pthread_cond_clockwait,
 * pthread_cond_timedwait (for a condition variable on the realtime clock) and
 * clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME). Without this a wait would end at
 * once (clock behind) or last the offset longer (clock ahead); libfaketime's handling
 * of such waits is what hangs Python 3.11.
 *
 * Build: cc -shared -fPIC -O2 -o wallclock.so wallclock_shim.c -ldl
 */
#define _GNU_SOURCE
#define gettimeofday wallclock_hidden_gettimeofday
#include <sys/time.h>
#undef gettimeofday

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NS_PER_S 1000000000LL

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef int (*sem_timedwait_fn)(sem_t *, const struct timespec *);
typedef int (*sem_clockwait_fn)(sem_t *, clockid_t, const struct timespec *);
typedef int (*mutex_timedlock_fn)(pthread_mutex_t *, const struct timespec *);
typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t,
                                 const struct timespec *);

static int64_t offset_ns; /* added to every wall clock reading */

static void *next(const char *name) {
    void *found = dlsym(RTLD_NEXT, name);
    if (found == NULL) {
        fprintf(stderr, "wallclock shim: no %s after this library\n", name);
        abort();
    }
    return found;
}

/* The real function, looked up on first use: another library's constructor may
 * read the clock before ours has run. Racing threads store the same pointer. */
#define REAL(type, name)                                                       \
    static type real_##name;                                                   \
    static type get_##name(void) {                                             \
        type found = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);          \
        if (found == NULL) {                                                   \
            found = (type)next(#name);                                         \
            __atomic_store_n(&real_##name, found, __ATOMIC_RELEASE);           \
        }                                                                      \
        return found;                                                          \
    }

REAL(clock_gettime_fn, clock_gettime)
REAL(gettimeofday_fn, gettimeofday)
REAL(time_fn, time)
REAL(clock_nanosleep_fn, clock_nanosleep)
REAL(sem_timedwait_fn, sem_timedwait)
REAL(sem_clockwait_fn, sem_clockwait)
REAL(mutex_timedlock_fn, pthread_mutex_timedlock)
REAL(cond_timedwait_fn, pthread_cond_timedwait)
REAL(cond_clockwait_fn, pthread_cond_clockwait)

static int is_wall(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE;
}

static struct timespec shifted(struct timespec ts, int64_t by) {
    int64_t nsec = (int64_t)ts.tv_nsec + by % NS_PER_S;
    ts.tv_sec += (time_t)(by / NS_PER_S);
    if (nsec < 0) {
        nsec += NS_PER_S;
        ts.tv_sec -= 1;
    } else if (nsec >= NS_PER_S) {
        nsec -= NS_PER_S;
        ts.tv_sec += 1;
    }
    ts.tv_nsec = (long)nsec;
    return ts;
}

static int64_t seconds_to_ns(const char *name, const char *text) {
    char *end;
    double seconds = strtod(text, &end);
    if (end == text || *end != '\0') {
        fprintf(stderr, "wallclock shim: %s=%s is not a number of seconds\n", name, text);
        abort();
    }
    return (int64_t)(seconds * 1e9);
}

__attribute__((constructor)) static void wallclock_init(void) {
    const char *at = getenv("CRONTABBER_TEST_WALL_AT");
    const char *offset = getenv("CRONTABBER_TEST_WALL_OFFSET");
    if (at != NULL && *at != '\0') {
        struct timespec now;
        get_clock_gettime()(CLOCK_REALTIME, &now);
        int64_t real_ns = (int64_t)now.tv_sec * NS_PER_S + now.tv_nsec;
        offset_ns = seconds_to_ns("CRONTABBER_TEST_WALL_AT", at) - real_ns;
        char text[64];
        snprintf(text, sizeof text, "%.9f", (double)offset_ns / 1e9);
        setenv("CRONTABBER_TEST_WALL_OFFSET", text, 1);
        unsetenv("CRONTABBER_TEST_WALL_AT");
    } else if (offset != NULL && *offset != '\0') {
        offset_ns = seconds_to_ns("CRONTABBER_TEST_WALL_OFFSET", offset);
    }
}

/* --- reading the clock ------------------------------------------------------------ */

int clock_gettime(clockid_t clock, struct timespec *ts) {
    int result = get_clock_gettime()(clock, ts);
    if (result == 0 && is_wall(clock)) {
        *ts = shifted(*ts, offset_ns);
    }
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    int result = get_gettimeofday()(tv, tz);
    if (result == 0 && tv != NULL) {
        struct timespec ts = {tv->tv_sec, (long)tv->tv_usec * 1000};
        ts = shifted(ts, offset_ns);
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (get_clock_gettime()(CLOCK_REALTIME, &ts) != 0) {
        return get_time()(out);
    }
    ts = shifted(ts, offset_ns);
    if (out != NULL) {
        *out = ts.tv_sec;
    }
    return ts.tv_sec;
}

/* --- waiting until a wall clock deadline ------------------------------------------ */

/* A deadline computed from the shifted clock, as the real clock reads it. */
static const struct timespec *real_deadline(const struct timespec *deadline,
                                            struct timespec *buffer) {
    if (deadline == NULL) {
        return NULL;
    }
    *buffer = shifted(*deadline, -offset_ns);
    return buffer;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remain) {
    struct timespec buffer;
    if (is_wall(clock) && (flags & TIMER_ABSTIME)) {
        request = real_deadline(request, &buffer);
    }
    return get_clock_nanosleep()(clock, flags, request, remain);
}

int sem_timedwait(sem_t *sem, const struct timespec *deadline) {
    struct timespec buffer;
    return get_sem_timedwait()(sem, real_deadline(deadline, &buffer));
}

int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *deadline) {
    struct timespec buffer;
    if (is_wall(clock)) {
        deadline = real_deadline(deadline, &buffer);
    }
    return get_sem_clockwait()(sem, clock, deadline);
}

int pthread_mutex_timedlock(pthread_mutex_t *mutex, const struct timespec *deadline) {
    struct timespec buffer;
    return get_pthread_mutex_timedlock()(mutex, real_deadline(deadline, &buffer));
}

int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clock,
                           const struct timespec *deadline) {
    struct timespec buffer;
    if (is_wall(clock)) {
        deadline = real_deadline(deadline, &buffer);
    }
    return get_pthread_cond_clockwait()(cond, mutex, clock, deadline);
}

/* The clock a condition variable waits on (pthread_condattr_setclock) is private to
 * it. glibc keeps it in bit 1 of __wrefs (0: CLOCK_REALTIME, 1: CLOCK_MONOTONIC). */
static int cond_on_wall_clock(const pthread_cond_t *cond) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
    return (__atomic_load_n(&cond->__data.__wrefs, __ATOMIC_RELAXED) & 2) == 0;
#else
    (void)cond;
    return 0; /* unknown layout: leave the deadline alone */
#endif
}

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                           const struct timespec *deadline) {
    struct timespec buffer;
    if (cond_on_wall_clock(cond)) {
        deadline = real_deadline(deadline, &buffer);
    }
    return get_pthread_cond_timedwait()(cond, mutex, deadline);
}
