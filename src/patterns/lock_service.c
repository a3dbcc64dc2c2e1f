/* The lock service: named leases in one table behind a mutex, served as
 * actions of the caller's request/reply server (include/liberzmq/lock.h,
 * docs/lock.md). Leases end by deadline on the monotonic clock, checked on
 * each request: every scan of the table drops the expired leases it
 * passes, so there is no sweeper thread and memory follows the locks held.
 *
 * An acquire that may wait (wait_ms) for a held lock is parked: its reply
 * deferred (lz_server_defer) in the lease's queue of waiters, first come
 * first served. Whatever ends the lease (a release, its end, seen by a
 * request or by the timer thread) hands it to the first waiter still
 * waiting; a waiter whose wait ends gets the refusal. The timer thread,
 * started with the first waiter, sleeps until the next lease end or wait
 * end among the locks with waiters, and with none until one parks. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/node.h"
#include "core/prometheus.h"
#include "core/thread.h"
#include "liberzmq/lock.h"

// A lease's numbers, copied out under the mutex so replies are built after
// it; parked: the request waits in the lease's queue (no reply now); fresh:
// the request made the grant (not its owner's repeat: that one's client may
// hold the lease from an earlier reply, so it is never taken back).
typedef struct outcome {
    bool found, owned, parked, fresh;
    int64_t left_ms, token;
    unsigned asks; // the lease's, for taking back a grant that reached nobody (take_back)
} outcome_t;

// A parked acquire: one owner waiting for one lock. A repeat of its
// request (the client's retry, or its next request) joins it, keeping its
// place and its wait's end: every reply it holds gets the same answer.
typedef struct waiter {
    struct waiter *next; // its lease's queue, in arrival order
    char *owner;
    int64_t ttl_ms;       // the lease it asks for
    int64_t until_ms;     // when its wait ends: set by its first request, never moved later
    lz_server_reply_t **replies;
    size_t reply_count;
    outcome_t answer; // once answered: the grant or the refusal
} waiter_t;

typedef struct lease {
    char *name;
    char *owner;     // the holder's lock_id
    int64_t ends_ms; // lz__now_ms's clock
    int64_t token;
    waiter_t *waiters; // NULL: none
    // Its owner's acquires and renewals that found it theirs (lease_restart):
    // 0 for a handover until the owner asks again. One more since a grant
    // means the owner surely got the lock.
    unsigned asks;
} lease_t;

#define ACTION_COUNT 4
#define WAITER_COPIES_MAX 16 // replies one waiter holds: its client's retries, with room to spare

// What the server passes its handler: which action of which service.
typedef struct binding {
    lz_lock_service_t *service;
    const struct action *action;
} binding_t;

struct lz_lock_service {
    pthread_mutex_t mutex; // handlers run on several server threads at once
    lease_t *leases;       // unordered: a lookup scans them all anyway, to drop expired ones
    size_t count, cap, max;
    int64_t last_token;
    binding_t bindings[ACTION_COUNT];
    size_t parked, parked_max; // replies held by waiters; past parked_max only joins park
    waiter_t *answered;        // waiters answered under the mutex, whose replies go out after it
    pthread_cond_t changed;    // for the timer: a waiter parked, a lease changed hands, or closing
    pthread_t timer;
    bool timer_started, closing;
    lz_lock_stats_t stats; // the counters, counted where their events happen; gauges filled when read
    lz_context_t *ctx;     // the server's, referenced: the scrape this service is in
    lz__collector_t *collector;
};

// What a request asks about; owner and ttl_ms only when the action needs
// them, wait_ms only for an acquire (0: no waiting).
typedef struct lock_request {
    const lz_message_t *msg;
    const char *action;
    const char *name;
    const char *owner;
    int64_t ttl_ms, wait_ms;
} lock_request_t;

enum { NEED_OWNER = 1, NEED_TTL = 2, MAY_WAIT = 4 }; // lock_name is always needed

#define REASON_NOT_OWNED "lock_not_found_or_mismatch" // the Python guide's reason, kept for its clients

/* ---- requests ------------------------------------------------------------- */

// fail_reply records code and the formatted detail as the thread's error
// and makes the detail the error reply's message; returns code.
static int fail_reply(lz_value_t **reply, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_reply(lz_value_t **reply, int code, const char *format, ...) {
    char text[LZ_DETAIL_MAX];
    va_list args;
    va_start(args, format);
    lz__vformat(text, sizeof text, format, args); // cut between characters: it goes into a JSON reply
    va_end(args);
    lz__fail(code, "%s", text);
    *reply = lz_value_string(text);
    return code;
}

// string_field reads data[key]: a string of 1 to max bytes with no NUL
// (names are kept as C strings: "a\0b" would become "a").
static int string_field(const lock_request_t *req, const lz_value_t *data, const char *key, size_t max,
                        const char **out, lz_value_t **reply) {
    const lz_value_t *v = lz_value_get(data, key);
    size_t len = 0;
    const char *s = lz_value_get_string(v, &len);
    if (!v) return fail_reply(reply, LZ_EVALIDATION, "%s: missing '%s' (a string)", req->action, key);
    if (!s)
        return fail_reply(reply, LZ_EVALIDATION, "%s: '%s' must be a string, not %s", req->action, key,
                          lz_value_type_name(lz_value_type(v)));
    if (len == 0 || len > max || strlen(s) != len)
        return fail_reply(reply, LZ_EVALIDATION, "%s: '%s' must be 1 to %zu bytes with no NUL, not %zu bytes",
                          req->action, key, max, len);
    *out = s;
    return LZ_OK;
}

// ttl_field reads data["timeout"], seconds (the Python guide's unit), into
// milliseconds, rounded up so that any positive timeout is a lease.
static int ttl_field(lock_request_t *req, const lz_value_t *data, lz_value_t **reply) {
    const lz_value_t *v = lz_value_get(data, "timeout");
    lz_value_type_t type = lz_value_type(v);
    if (!v) {
        req->ttl_ms = (int64_t)LZ_LOCK_TIMEOUT_DEFAULT * 1000;
        return LZ_OK;
    }
    if (type != LZ_VALUE_INT && type != LZ_VALUE_DOUBLE)
        return fail_reply(reply, LZ_EVALIDATION, "%s: 'timeout' must be a number of seconds, not %s", req->action,
                          lz_value_type_name(type));
    double seconds = lz_value_get_double(v);
    if (!(seconds > 0 && seconds <= LZ_LOCK_TIMEOUT_MAX)) // NaN fails too
        return fail_reply(reply, LZ_EVALIDATION, "%s: 'timeout' must be more than 0 and at most %d seconds, not %g",
                          req->action, LZ_LOCK_TIMEOUT_MAX, seconds);
    // Whole microseconds first, so that 2.007 s (2.007 * 1000 = 2007.0000000000002) is 2007 ms, not 2008.
    int64_t us = llround(seconds * 1e6);
    req->ttl_ms = us > 1000 ? (us + 999) / 1000 : 1;
    return LZ_OK;
}

// wait_field reads the optional data["wait_ms"], milliseconds an acquire
// may wait for a held lock, capped at LZ_LOCK_WAIT_MAX_MS.
static int wait_field(lock_request_t *req, const lz_value_t *data, lz_value_t **reply) {
    const lz_value_t *v = lz_value_get(data, "wait_ms");
    lz_value_type_t type = lz_value_type(v);
    if (!v) return LZ_OK;
    double ms = type == LZ_VALUE_INT || type == LZ_VALUE_DOUBLE ? lz_value_get_double(v) : -1;
    if (!(ms >= 0)) // NaN fails too
        return fail_reply(reply, LZ_EVALIDATION, "%s: 'wait_ms' must be a number of milliseconds, at least 0",
                          req->action);
    req->wait_ms = ms < LZ_LOCK_WAIT_MAX_MS ? (int64_t)ms : LZ_LOCK_WAIT_MAX_MS;
    return LZ_OK;
}

// parse_request reads what the action needs from the request's data; a
// refused request gets an LZ_EVALIDATION error reply naming the field.
static int parse_request(const lz_message_t *msg, int need, lock_request_t *req, lz_value_t **reply) {
    const lz_value_t *data = lz_message_value(msg);
    *req = (lock_request_t){.msg = msg, .action = lz_message_type(msg)};
    if (lz_value_type(data) != LZ_VALUE_OBJECT)
        return fail_reply(reply, LZ_EVALIDATION, "%s: data must be an object with 'lock_name', not %s", req->action,
                          lz_value_type_name(lz_value_type(data)));
    int rc = string_field(req, data, "lock_name", LZ_LOCK_NAME_MAX, &req->name, reply);
    if (rc == LZ_OK && (need & NEED_OWNER)) rc = string_field(req, data, "lock_id", LZ_LOCK_ID_MAX, &req->owner, reply);
    if (rc == LZ_OK && (need & NEED_TTL)) rc = ttl_field(req, data, reply);
    if (rc == LZ_OK && (need & MAY_WAIT)) rc = wait_field(req, data, reply);
    return rc;
}

/* ---- the table (mutex held) ----------------------------------------------- */

static bool hand_over(lz_lock_service_t *svc, lease_t *lease, int64_t now);
static void refuse_waiters(lz_lock_service_t *svc, lease_t *lease, int64_t now, const char *owner);

static void lease_drop(lz_lock_service_t *svc, size_t i) {
    free(svc->leases[i].name);
    free(svc->leases[i].owner);
    svc->leases[i] = svc->leases[--svc->count]; // order does not matter
}

// lease_end ends the lease at index i: it goes to its first waiter still
// waiting, or is dropped (true: slot i now holds another lease, or none).
static bool lease_end(lz_lock_service_t *svc, size_t i, int64_t now) {
    if (hand_over(svc, &svc->leases[i], now)) return false;
    lease_drop(svc, i);
    return true;
}

// sweep_find returns the live lease of name (NULL: just sweep), or NULL,
// ending every expired lease on the way (handed to its first waiter, else
// dropped) and refusing the waiters whose wait has ended. A drop moves
// the last lease into the slot being looked at, never into one already
// passed, so the index found stays right.
static lease_t *sweep_find(lz_lock_service_t *svc, const char *name, int64_t now) {
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < svc->count;) {
        lease_t *lease = &svc->leases[i];
        if (lease->ends_ms <= now) {
            svc->stats.expiries_total++;
            if (lease_end(svc, i, now)) continue;
        }
        if (lease->waiters) refuse_waiters(svc, lease, now, NULL);
        if (name && found == SIZE_MAX && strcmp(svc->leases[i].name, name) == 0) found = i;
        i++;
    }
    return found == SIZE_MAX ? NULL : &svc->leases[found];
}

// next_token: the wall clock in microseconds, or one more than the last
// token if that is later. A restarted service (its table gone) thus goes
// on above the tokens it gave before, which storage may have seen.
static int64_t next_token(lz_lock_service_t *svc) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    svc->last_token = wall_us > svc->last_token ? wall_us : svc->last_token + 1;
    return svc->last_token;
}

// lease_add takes name for req's owner. LZ_EAGAIN when max locks are held.
static int lease_add(lz_lock_service_t *svc, const lock_request_t *req, int64_t now) {
    if (svc->count >= svc->max) return LZ_EAGAIN;
    if (svc->count == svc->cap) {
        size_t cap = svc->cap ? svc->cap * 2 : 16;
        lease_t *grown = realloc(svc->leases, cap * sizeof *grown);
        if (!grown) return LZ_ENOMEM;
        svc->leases = grown;
        svc->cap = cap;
    }
    lease_t lease = {strdup(req->name), strdup(req->owner), now + req->ttl_ms, 0, NULL, 0}; // its acquire restarts it
    if (!lease.name || !lease.owner) {
        free(lease.name);
        free(lease.owner);
        return LZ_ENOMEM;
    }
    lease.token = next_token(svc);
    svc->leases[svc->count++] = lease;
    return LZ_OK;
}

// take_outcome copies lease's numbers for the reply (lease may be NULL).
static outcome_t take_outcome(const lease_t *lease, const char *owner, int64_t now) {
    outcome_t o = {.found = lease != NULL};
    if (!lease) return o;
    o.owned = owner && strcmp(lease->owner, owner) == 0;
    o.left_ms = lease->ends_ms - now;
    o.token = lease->token;
    o.asks = lease->asks;
    return o;
}

/* ---- waiters (mutex held) ------------------------------------------------- */

static void waiter_free(waiter_t *w) {
    free(w->owner);
    free(w->replies);
    free(w);
}

// forget_closed finishes the replies of w that the server's stop answered
// (lz_server_reply_closed: their clients have their answer, LZ_ECLOSED,
// and finishing sends nothing) and keeps the others; returns how many went.
static size_t forget_closed(waiter_t *w) {
    size_t kept = 0, held = w->reply_count;
    for (size_t i = 0; i < held; i++) {
        if (!lz_server_reply_closed(w->replies[i])) w->replies[kept++] = w->replies[i];
        else lz_server_reply_error(&w->replies[i], LZ_ECLOSED, NULL); // sends nothing, frees the handle
    }
    w->reply_count = kept;
    return held - kept;
}

// unpark_stopped: the waiter at *at waits no more if the server's stop
// answered all its replies (a retry since, after a restart, keeps it
// waiting): it leaves its queue, unanswered (true). Its closed replies
// leave the waiters count either way.
static bool unpark_stopped(lz_lock_service_t *svc, waiter_t **at) {
    waiter_t *w = *at;
    svc->parked -= forget_closed(w);
    if (w->reply_count) return false;
    *at = w->next;
    waiter_free(w);
    return true;
}

// drop_stopped_waiters unparks, in every queue, the waiters a server's
// stop answered (unpark_stopped). Their turn or their wait's end drops
// them too; this makes room at the cap and keeps the gauge true.
static void drop_stopped_waiters(lz_lock_service_t *svc) {
    for (size_t i = 0; i < svc->count; i++)
        for (waiter_t **at = &svc->leases[i].waiters; *at;)
            if (!unpark_stopped(svc, at)) at = &(*at)->next;
}

// answer_waiter: w, off its queue, is answered with lease's numbers now
// (the grant when lease is now its, else the refusal); its replies go out
// once the mutex is released (unlock_and_answer).
static void answer_waiter(lz_lock_service_t *svc, waiter_t *w, const lease_t *lease, int64_t now) {
    w->answer = take_outcome(lease, w->owner, now);
    if (!w->answer.owned) svc->stats.refusals_total++; // one acquire, however many retries joined it
    svc->parked -= w->reply_count;
    w->next = svc->answered;
    svc->answered = w;
}

// refuse_waiters answers the waiters of lease whose wait has ended, and
// owner's (not NULL: it gave up waiting), with the refusal; one the
// server's stop answered just leaves (its client was told LZ_ECLOSED).
static void refuse_waiters(lz_lock_service_t *svc, lease_t *lease, int64_t now, const char *owner) {
    for (waiter_t **at = &lease->waiters; *at;) {
        waiter_t *w = *at;
        if (w->until_ms > now && !(owner && strcmp(w->owner, owner) == 0)) {
            at = &w->next;
            continue;
        }
        if (unpark_stopped(svc, at)) continue;
        *at = w->next;
        answer_waiter(svc, w, lease, now);
    }
}

// hand_over gives an ending lease to its first waiter still waiting: a new
// hold (its lease, a new token) in the same slot, so a full table never
// blocks it. A waiter the server's stop answered is passed over, not
// granted (the grant would only be taken back). false when nobody waits:
// the caller drops the lease.
static bool hand_over(lz_lock_service_t *svc, lease_t *lease, int64_t now) {
    refuse_waiters(svc, lease, now, NULL);
    while (lease->waiters) {
        if (unpark_stopped(svc, &lease->waiters)) continue;
        waiter_t *w = lease->waiters;
        lease->waiters = w->next;
        char *owner = strdup(w->owner);
        if (owner) {
            free(lease->owner);
            lease->owner = owner;
            lease->ends_ms = now + w->ttl_ms;
            lease->token = next_token(svc);
            lease->asks = 0;
            svc->stats.grants_total++;
            svc->stats.handovers_total++;
            pthread_cond_signal(&svc->changed); // the new lease may end before the timer's next wake
        }
        answer_waiter(svc, w, lease, now); // refused when out of memory: the lease is still the old owner's
        if (owner) return true;
    }
    return false;
}

// next_due: when the timer must look next, the first lease end or wait end
// among the locks with waiters (INT64_MAX: none waits).
static int64_t next_due(const lz_lock_service_t *svc) {
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < svc->count; i++) {
        const lease_t *lease = &svc->leases[i];
        if (lease->waiters && lease->ends_ms < due) due = lease->ends_ms;
        for (const waiter_t *w = lease->waiters; w; w = w->next)
            if (w->until_ms < due) due = w->until_ms;
    }
    return due;
}

static void *timer_main(void *arg);

// queue_place: where owner's waiter is in lease's queue, else its end.
static waiter_t **queue_place(lease_t *lease, const char *owner) {
    waiter_t **at = &lease->waiters;
    while (*at && strcmp((*at)->owner, owner) != 0) at = &(*at)->next;
    return at;
}

// park_room: where owner may park in lease's queue, as a new waiter at its
// end (parked_max replies are not held yet) or joining its waiter; NULL:
// no room. At the cap, the waiters a server's stop answered leave first
// (drop_stopped_waiters: only there, so parking stays cheap). A join passes
// the cap: refusing a client's retry would leave its first copy parked, to
// be granted a lock its client no longer waits for. A waiter that has
// WAITER_COPIES_MAX copies already is a client repeating without end: it
// stops waiting (refused, all copies), which also bounds what joins hold.
static waiter_t **park_room(lz_lock_service_t *svc, lease_t *lease, const char *owner, int64_t now) {
    waiter_t **at = queue_place(lease, owner);
    if (!*at && svc->parked >= svc->parked_max) {
        drop_stopped_waiters(svc);
        at = queue_place(lease, owner); // the queue's last waiter, holding its end, may be gone
    }
    waiter_t *w = *at;
    if (!w) return svc->parked < svc->parked_max ? at : NULL;
    if (w->reply_count < WAITER_COPIES_MAX) return at;
    *at = w->next;
    answer_waiter(svc, w, lease, now);
    return NULL;
}

// park queues req's acquire behind lease (another owner's) until its
// wait_ms has passed, deferring its reply; a repeat of an owner's request
// joins its waiter, keeping its place and its wait's end (a client's retry
// repeats the first request's wait_ms: were it counted from the retry,
// the refusal would never come in the time the client waits). Fails (the
// caller refuses at once) with no room (park_room), out of memory, or with
// no timer thread.
static int park(lz_lock_service_t *svc, const lock_request_t *req, lease_t *lease, int64_t now) {
    waiter_t **at = park_room(svc, lease, req->owner, now);
    if (!at) return LZ_EAGAIN;
    int err = svc->timer_started ? 0 : lz__thread_start(&svc->timer, timer_main, svc);
    if (err) return lz__thread_fail(err, "lock service: timer");
    svc->timer_started = true;
    waiter_t *w = *at ? *at : calloc(1, sizeof *w);
    if (!w) return LZ_ENOMEM;
    lz_server_reply_t **grown = realloc(w->replies, (w->reply_count + 1) * sizeof *grown);
    if (grown) w->replies = grown;
    lz_server_reply_t *reply = grown && (w->owner || (w->owner = strdup(req->owner))) ? lz_server_defer(req->msg) : NULL;
    if (!reply) {
        if (!*at) waiter_free(w);
        return LZ_ENOMEM;
    }
    w->replies[w->reply_count++] = reply;
    w->ttl_ms = req->ttl_ms;
    if (!*at || now + req->wait_ms < w->until_ms) w->until_ms = now + req->wait_ms;
    *at = w; // a new waiter goes last
    svc->parked++;
    pthread_cond_signal(&svc->changed);
    return LZ_OK;
}

/* ---- replies -------------------------------------------------------------- */

// reply_start makes *reply the object {key: ok}.
static int reply_start(lz_value_t **reply, const char *key, bool ok) {
    *reply = lz_value_object();
    if (!*reply) return lz__fail(LZ_ENOMEM, "lock service: out of memory");
    return lz_value_object_set_bool(*reply, key, ok);
}

// reply_lease adds what a holder needs: how long its lease has left and its token.
static int reply_lease(lz_value_t *reply, const outcome_t *o) {
    int rc = lz_value_object_set_double(reply, "expires_in", (double)o->left_ms / 1000);
    return rc == LZ_OK ? lz_value_object_set_int(reply, "fencing_token", o->token) : rc;
}

// reply_owned answers release and renew: {key: true} plus the lease when
// with_lease, or {key: false, "reason": ...} when req's owner holds no lease.
static int reply_owned(lz_value_t **reply, const char *key, const outcome_t *o, bool with_lease) {
    int rc = reply_start(reply, key, o->owned);
    if (rc == LZ_OK && !o->owned) rc = lz_value_object_set_string(*reply, "reason", REASON_NOT_OWNED);
    if (rc == LZ_OK && o->owned && with_lease) rc = reply_lease(*reply, o);
    return rc;
}

/* ---- actions -------------------------------------------------------------- */

static bool owns(const lease_t *lease, const char *owner) { return lease && strcmp(lease->owner, owner) == 0; }

// lease_restart runs its owner's lease ttl_ms from now. One cut short
// while others wait wakes the timer, asleep until the lease's old end.
static void lease_restart(lz_lock_service_t *svc, lease_t *lease, int64_t ttl_ms, int64_t now) {
    if (lease->waiters && now + ttl_ms < lease->ends_ms) pthread_cond_signal(&svc->changed);
    lease->ends_ms = now + ttl_ms;
    lease->asks++;
}

// acquire_lock grants a free lock, and grants a held one again to its own
// owner (a retried request whose first reply was lost must not lock its
// sender out), with the lease restarted and the same token.
static int acquire_change(lz_lock_service_t *svc, const lock_request_t *req, lease_t *lease, int64_t now,
                          outcome_t *o) {
    bool fresh = !lease;
    if (fresh) {
        int rc = lease_add(svc, req, now);
        svc->stats.table_full_total += rc == LZ_EAGAIN;
        if (rc != LZ_OK) return rc;
        svc->stats.grants_total++;
        lease = &svc->leases[svc->count - 1];
    }
    // An owner waiting already has its refusal counted when its waiter is
    // answered (park_room may just have), whatever this copy gets.
    bool waiting = !owns(lease, req->owner) && *queue_place(lease, req->owner);
    bool parked = !owns(lease, req->owner) && req->wait_ms > 0 && park(svc, req, lease, now) == LZ_OK;
    if (owns(lease, req->owner)) lease_restart(svc, lease, req->ttl_ms, now);
    *o = take_outcome(lease, req->owner, now);
    o->parked = parked;
    o->fresh = fresh;
    svc->stats.refusals_total += !o->owned && !parked && !waiting;
    return LZ_OK;
}

// A grant made at once to an acquire that could wait says "waited": false,
// so its client counts the lease from when it asked, not from the reply's
// arrival as after a wait (a handover has no "waited": the guide's grant,
// key for key, which a client of older services also counts from there).
static int acquire_reply(const lock_request_t *req, const outcome_t *o, lz_value_t **reply) {
    int rc = reply_start(reply, "acquired", o->owned);
    if (rc == LZ_OK && o->owned) rc = lz_value_object_set_string(*reply, "lock_id", req->owner);
    if (rc == LZ_OK && o->owned && req->wait_ms > 0) rc = lz_value_object_set_bool(*reply, "waited", false);
    if (rc == LZ_OK && o->owned) return reply_lease(*reply, o);
    if (rc == LZ_OK) rc = lz_value_object_set_string(*reply, "reason", "lock_held");
    // When to ask again: a waiting client sleeps no longer than this.
    return rc == LZ_OK ? lz_value_object_set_double(*reply, "expires_in", (double)o->left_ms / 1000) : rc;
}

// release_lock ends the lease if req's owner holds it (it goes to the
// first waiter); an owner that waits for the lock instead stops waiting
// (its parked acquire gets the refusal), as a client gone does on its way.
static int release_change(lz_lock_service_t *svc, const lock_request_t *req, lease_t *lease, int64_t now,
                          outcome_t *o) {
    *o = take_outcome(lease, req->owner, now);
    svc->stats.releases_total += o->owned;
    if (o->owned) lease_end(svc, (size_t)(lease - svc->leases), now);
    else if (lease) refuse_waiters(svc, lease, now, req->owner);
    return LZ_OK;
}

static int release_reply(const lock_request_t *req, const outcome_t *o, lz_value_t **reply) {
    return reply_owned(reply, "released", o, false);
}

// renew_lock restarts the lease of req's owner; an expired one is gone
// (another owner may have held the lock since), so it cannot come back.
static int renew_change(lz_lock_service_t *svc, const lock_request_t *req, lease_t *lease, int64_t now,
                        outcome_t *o) {
    if (owns(lease, req->owner)) lease_restart(svc, lease, req->ttl_ms, now);
    *o = take_outcome(lease, req->owner, now);
    return LZ_OK;
}

static int renew_reply(const lock_request_t *req, const outcome_t *o, lz_value_t **reply) {
    return reply_owned(reply, "renewed", o, true);
}

// lock_status says whether the lock is held, for how long and under which
// token; never who holds it (the owner id is what releases a lock).
static int status_change(lz_lock_service_t *svc, const lock_request_t *req, lease_t *lease, int64_t now,
                         outcome_t *o) {
    *o = take_outcome(lease, NULL, now);
    return LZ_OK;
}

static int status_reply(const lock_request_t *req, const outcome_t *o, lz_value_t **reply) {
    int rc = reply_start(reply, "held", o->found);
    if (rc == LZ_OK) rc = lz_value_object_set_string(*reply, "lock_name", req->name);
    return rc == LZ_OK && o->found ? reply_lease(*reply, o) : rc;
}

// An action is a change to the table, made under the mutex given the live
// lease of the request's name, and a reply built from its outcome after.
static const struct action {
    const char *name;
    int need;
    int (*change)(lz_lock_service_t *svc, const lock_request_t *req, lease_t *lease, int64_t now, outcome_t *o);
    int (*reply)(const lock_request_t *req, const outcome_t *o, lz_value_t **reply);
} actions[ACTION_COUNT] = {
    {"acquire_lock", NEED_OWNER | NEED_TTL | MAY_WAIT, acquire_change, acquire_reply},
    {"release_lock", NEED_OWNER, release_change, release_reply},
    {"renew_lock", NEED_OWNER | NEED_TTL, renew_change, renew_reply},
    {"lock_status", 0, status_change, status_reply},
};

// send_answer sends an answered waiter's grant or refusal to each of its
// replies. Returns true for a grant that reached none of them (none was
// handed to the socket): every connection it came on has closed (the
// client gave up, or ended), or its client's queue had no room (a client
// that reads no replies), or the server's stop answered them (LZ_ECLOSED:
// the stop came after the grant was made; hand_over passes over a waiter
// it answered before), or the grant could not be made for want of memory
// (an error reply went instead), so nobody holds what it was given.
static bool send_answer(waiter_t *w) {
    lock_request_t req = {.owner = w->owner};
    lz_value_t *reply = NULL;
    int rc = acquire_reply(&req, &w->answer, &reply);
    bool delivered = false;
    for (size_t i = 0; i < w->reply_count; i++) {
        int sent = rc == LZ_OK ? lz_server_reply_send(&w->replies[i], reply)
                               : lz_server_reply_error(&w->replies[i], rc, "acquire_lock: out of memory");
        delivered |= sent == LZ_OK;
    }
    lz_value_destroy(&reply);
    return w->answer.owned && (rc != LZ_OK || !delivered);
}

// take_back ends owner's lease given by grant, a grant nobody received,
// so the next waiter gets the lock now instead of after a lease nobody
// uses; unless its owner has asked for it again since (a retry on a new
// connection), which it then holds. true when it ended it.
static bool take_back(lz_lock_service_t *svc, const char *owner, const outcome_t *grant) {
    int64_t now = lz__now_ms();
    bool taken = false;
    for (size_t i = 0; i < svc->count && !taken; i++) { // tokens are unique
        lease_t *lease = &svc->leases[i];
        taken = lease->token == grant->token && lease->asks == grant->asks && strcmp(lease->owner, owner) == 0;
        if (taken) lease_end(svc, i, now);
    }
    sweep_find(svc, NULL, now);
    return taken;
}

// unlock_and_answer releases the mutex, then sends the replies of the
// waiters answered under it (a send may wait for a slow client's room),
// and takes back the grants that found nobody, which may answer more.
static void unlock_and_answer(lz_lock_service_t *svc) {
    while (svc->answered) {
        waiter_t *w = svc->answered, *lost = NULL;
        svc->answered = NULL;
        pthread_mutex_unlock(&svc->mutex);
        while (w) {
            waiter_t *next = w->next;
            if (send_answer(w)) {
                w->next = lost;
                lost = w;
            } else {
                waiter_free(w);
            }
            w = next;
        }
        pthread_mutex_lock(&svc->mutex);
        while (lost) {
            waiter_t *next = lost->next;
            svc->stats.taken_back_total += take_back(svc, lost->owner, &lost->answer);
            waiter_free(lost);
            lost = next;
        }
    }
    pthread_mutex_unlock(&svc->mutex);
}

// timer_main answers waiters when their wait or their holder's lease
// ends, sleeping until the next such end (with no waiter: until one parks).
static void *timer_main(void *arg) {
    lz_lock_service_t *svc = arg;
    pthread_mutex_lock(&svc->mutex);
    while (!svc->closing) {
        sweep_find(svc, NULL, lz__now_ms());
        if (svc->answered) {
            unlock_and_answer(svc);
            pthread_mutex_lock(&svc->mutex);
            continue;
        }
        int64_t due = next_due(svc);
        if (due == INT64_MAX) pthread_cond_wait(&svc->changed, &svc->mutex);
        else lz__cond_wait_until(&svc->changed, &svc->mutex, due);
    }
    pthread_mutex_unlock(&svc->mutex);
    return NULL;
}

// serve is every action's handler; arg binds it to its action and service.
static int serve(const lz_message_t *msg, lz_value_t **reply, void *arg) {
    const binding_t *b = arg;
    lz_lock_service_t *svc = b->service;
    lock_request_t req;
    int rc = parse_request(msg, b->action->need, &req, reply);
    if (rc != LZ_OK) return rc;
    outcome_t o = {0};
    pthread_mutex_lock(&svc->mutex);
    int64_t now = lz__now_ms();
    rc = b->action->change(svc, &req, sweep_find(svc, req.name, now), now, &o);
    size_t held = svc->count;
    unlock_and_answer(svc);
    if (o.parked) return LZ_SERVER_DEFERRED; // msg and req may be gone already: its reply may be out
    if (rc == LZ_EAGAIN)
        return fail_reply(reply, rc, "%s: the lock table is full (%zu locks held); try again later", req.action, held);
    if (rc != LZ_OK) return fail_reply(reply, rc, "%s: out of memory", req.action);
    rc = b->action->reply(&req, &o, reply);
    if (rc != LZ_OK && o.fresh && b->action->change == acquire_change) { // told an error, the client holds nothing
        pthread_mutex_lock(&svc->mutex);
        take_back(svc, req.owner, &o);
        unlock_and_answer(svc);
    }
    return rc;
}

// Stands in for the actions when attaching fails half way, so the server
// never calls into a freed service.
static int on_detached(const lz_message_t *msg, lz_value_t **reply, void *arg) {
    return fail_reply(reply, LZ_ECLOSED, "%s: the lock service is not attached", lz_message_type(msg));
}

/* ---- stats ---------------------------------------------------------------- */

// stats_take copies the numbers now, the waiters a stop answered and expired leases dropped first (mutex held).
static void stats_take(lz_lock_service_t *svc, lz_lock_stats_t *out) {
    drop_stopped_waiters(svc);
    sweep_find(svc, NULL, lz__now_ms());
    *out = svc->stats;
    out->locks_held = svc->count;
    out->waiters = svc->parked;
}

// The scrape's families, in the order collect fills their values.
static const lz__family_t families[] = {
    {"liberzmq_lock_held", "gauge", "Locks a lock service holds now."},
    {"liberzmq_lock_waiters", "gauge", "Acquire requests parked in a lock service's queues now."},
    {"liberzmq_lock_grants_total", "counter", "Locks granted: free ones at once, and handovers to waiters."},
    {"liberzmq_lock_handovers_total", "counter", "Locks handed to a parked waiter when the lease before ended."},
    {"liberzmq_lock_releases_total", "counter", "Leases ended by their owner's release."},
    {"liberzmq_lock_expiries_total", "counter", "Leases that ran out unreleased."},
    {"liberzmq_lock_refusals_total", "counter", "Acquires answered lock_held, at once or when their wait ended."},
    {"liberzmq_lock_taken_back_total", "counter", "Handovers whose grant reached nobody, taken back."},
    {"liberzmq_lock_table_full_total", "counter", "Acquires refused because the lock table was full."},
};

// collect is the scrape's read. It runs under the context's registry
// lock, so the replies of waiters its sweep answered are left to the
// timer thread (there is one: only a parked acquire is ever answered),
// not sent here, where a slow client would hold up every scrape.
static void collect(void *arg, uint64_t *values) {
    lz_lock_service_t *svc = arg;
    lz_lock_stats_t st;
    pthread_mutex_lock(&svc->mutex);
    stats_take(svc, &st);
    if (svc->answered) pthread_cond_signal(&svc->changed);
    pthread_mutex_unlock(&svc->mutex);
    const uint64_t in_order[] = {st.locks_held,      st.waiters,        st.grants_total,
                                 st.handovers_total, st.releases_total, st.expiries_total,
                                 st.refusals_total,  st.taken_back_total, st.table_full_total};
    _Static_assert(sizeof in_order / sizeof in_order[0] == sizeof families / sizeof families[0],
                   "a value for each family");
    memcpy(values, in_order, sizeof in_order);
}

static const lz__collector_kind_t collector_kind = {families, sizeof families / sizeof families[0], collect};

int lz_lock_service_stats(lz_lock_service_t *service, lz_lock_stats_t *out) {
    if (!service || !out) return lz__fail(LZ_EINVAL, "lz_lock_service_stats: %s is NULL", service ? "out" : "service");
    pthread_mutex_lock(&service->mutex);
    stats_take(service, out);
    unlock_and_answer(service);
    return LZ_OK;
}

/* ---- the service ---------------------------------------------------------- */

lz_lock_service_t *lz_lock_service_attach(lz_server_t *server, size_t max_locks) {
    if (!server) return lz__fail_null(LZ_EINVAL, "lz_lock_service_attach: server is NULL");
    lz_lock_service_t *svc = calloc(1, sizeof *svc);
    if (!svc) return lz__fail_null(LZ_ENOMEM, "lz_lock_service_attach: out of memory");
    int err = lz__cond_init_monotonic(&svc->changed);
    if (err) {
        free(svc);
        return lz__fail_null(LZ_EIO, "lz_lock_service_attach: cannot make a condition variable (error %d)", err);
    }
    pthread_mutex_init(&svc->mutex, NULL);
    svc->max = max_locks ? max_locks : LZ_LOCK_MAX_DEFAULT;
    svc->parked_max = LZ_LOCK_WAITERS_DEFAULT;
    lz_node_t *node = lz_server_node(server);
    svc->ctx = node->ctx;
    lz__context_ref(svc->ctx); // the service may outlive its server, and must still leave the scrape
    // Before the actions: once the server may call them, failing would leave them bound to a freed service.
    svc->collector = lz__collector_add(svc->ctx, &collector_kind, lz_node_name(node), node->id, svc);
    if (!svc->collector) {
        lz_lock_service_destroy(&svc);
        return NULL; // lz__collector_add's error
    }
    for (size_t i = 0; i < ACTION_COUNT; i++) {
        svc->bindings[i] = (binding_t){svc, &actions[i]};
        if (lz_server_on(server, actions[i].name, serve, &svc->bindings[i]) == LZ_OK) continue;
        // Replacing a registered action allocates nothing, so this cannot fail.
        for (size_t j = 0; j < i; j++) lz_server_on(server, actions[j].name, on_detached, NULL);
        lz_lock_service_destroy(&svc);
        return NULL; // lz_server_on's error
    }
    return svc;
}

// close_waiters frees a queue of waiters at the service's end. The
// server's stop answered their replies: finishing the handles frees them
// (a server still running sends the LZ_ECLOSED error reply itself).
static void close_waiters(waiter_t *w) {
    while (w) {
        waiter_t *next = w->next;
        for (size_t i = 0; i < w->reply_count; i++)
            lz_server_reply_error(&w->replies[i], LZ_ECLOSED, "the lock service is closing");
        waiter_free(w);
        w = next;
    }
}

int lz_lock_service_set_waiters_max(lz_lock_service_t *service, size_t max) {
    if (!service) return lz__fail(LZ_EINVAL, "lz_lock_service_set_waiters_max: service is NULL");
    pthread_mutex_lock(&service->mutex);
    service->parked_max = max;
    pthread_mutex_unlock(&service->mutex);
    return LZ_OK;
}

void lz_lock_service_destroy(lz_lock_service_t **service_p) {
    if (!service_p || !*service_p) return;
    lz_lock_service_t *svc = *service_p;
    lz__collector_remove(svc->ctx, &svc->collector); // first: a scrape may be reading it
    if (svc->timer_started) {
        pthread_mutex_lock(&svc->mutex);
        svc->closing = true;
        pthread_cond_signal(&svc->changed);
        pthread_mutex_unlock(&svc->mutex);
        pthread_join(svc->timer, NULL);
    }
    for (; svc->count; lease_drop(svc, svc->count - 1)) close_waiters(svc->leases[svc->count - 1].waiters);
    close_waiters(svc->answered); // a scrape's sweep left them to a timer that closed first
    free(svc->leases);
    pthread_cond_destroy(&svc->changed);
    pthread_mutex_destroy(&svc->mutex);
    lz__context_unref(svc->ctx);
    free(svc);
    *service_p = NULL;
}

size_t lz_lock_service_count(lz_lock_service_t *service) {
    lz_lock_stats_t stats;
    return service && lz_lock_service_stats(service, &stats) == LZ_OK ? (size_t)stats.locks_held : 0;
}
