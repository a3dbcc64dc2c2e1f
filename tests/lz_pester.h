/* A signal storm for tests: SIGUSR1 sent to one thread every few
 * microseconds and caught by a handler that does nothing, installed
 * without SA_RESTART, so whatever that thread is waiting in fails with
 * EINTR, as a second Ctrl-C, a child's SIGCHLD or a profiler's SIGPROF do
 * to real programs. */
#ifndef LZ_PESTER_H
#define LZ_PESTER_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

typedef struct lz_pester {
    pthread_t target, thread;
    int max;      // signals at most: a call restarted after each must get to finish
    int every_us; // pause between two signals
    atomic_int sent;
    atomic_bool done;
    struct sigaction old;
} lz_pester_t;

static void lz_pester_caught(int sig) { (void)sig; }

static void *lz_pester_main(void *arg) {
    lz_pester_t *p = arg;
    while (atomic_load(&p->sent) < p->max && !atomic_load(&p->done)) {
        pthread_kill(p->target, SIGUSR1);
        atomic_fetch_add(&p->sent, 1);
        usleep((useconds_t)p->every_us);
    }
    return NULL;
}

// lz_pester_start aims a storm of at most max signals, every_us apart, at
// the calling thread until lz_pester_stop.
static inline void lz_pester_start(lz_pester_t *p, int max, int every_us) {
    p->target = pthread_self();
    p->max = max;
    p->every_us = every_us;
    atomic_init(&p->sent, 0);
    atomic_init(&p->done, false);
    struct sigaction action = {.sa_handler = lz_pester_caught};
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, &p->old);
    pthread_create(&p->thread, NULL, lz_pester_main, p);
}

// lz_pester_stop ends the storm, restores SIGUSR1's handling and returns
// how many signals were sent.
static inline int lz_pester_stop(lz_pester_t *p) {
    atomic_store(&p->done, true);
    pthread_join(p->thread, NULL);
    sigaction(SIGUSR1, &p->old, NULL);
    return atomic_load(&p->sent);
}

#endif
