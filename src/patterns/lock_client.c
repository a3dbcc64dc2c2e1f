/* The lock client: one owner's holds of one named lock, asked of a lock
 * service (lock_service.c) through a request/reply client. Each hold has
 * its own random owner id (lock_id), kept for every request about it, so
 * a retried acquire finds its own grant and a stale release cannot end a
 * later hold. An acquire's request is one lz_lock_cancel can end
 * (lz__client_request_until), on the caller's thread as any request. */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "core/delay.h"
#include "core/envelope.h"
#include "core/error.h"
#include "core/node.h"
#include "core/thread.h"
#include "liberzmq/lock.h"
#include "patterns/client.h"

#define ACQUIRE_BACKOFF_BASE_MS 10  // against a server that does not park, a waiting acquire asks again
#define ACQUIRE_BACKOFF_MAX_MS 500  // after 5-10 ms, doubling up to 250-500 ms
#define PARK_SLACK_MS 5 // a refusal this close to the wait asked for came when a parked wait ended

struct lz_lock {
    lz_client_t *client;
    char *name;
    int ttl_ms;
    lz_live_t *live;     // the context's zmq.request_timeout, read per request: a reload changes it
    char owner[37];      // this hold's lock_id
    bool held;
    bool unsettled;       // an acquire under owner may have been granted unseen, or may still wait
    pthread_mutex_t mutex;  // guards settling: the releases' callbacks run on the client's thread
    pthread_cond_t settled; // signalled as settling falls
    int settling;           // background releases not yet answered (settle_in_background)
    int64_t token;        // the hold's fencing token (held only)
    int64_t lease_end_ms; // lz__now_ms's clock; counted from when the grant was asked
    lz_cancel_t cancel;   // lz_lock_cancel fires it: no more acquiring
};

/* ---- requests ------------------------------------------------------------- */

// request_data: {"lock_name", "lock_id"}, with_ttl "timeout" in seconds
// and, when wait_ms > 0, "wait_ms", as the service reads them. NULL when
// out of memory.
static lz_value_t *request_data(const lz_lock_t *lock, bool with_ttl, int wait_ms) {
    lz_value_t *data = lz_value_object();
    int rc = data ? lz_value_object_set_string(data, "lock_name", lock->name) : LZ_ENOMEM;
    if (rc == LZ_OK) rc = lz_value_object_set_string(data, "lock_id", lock->owner);
    if (rc == LZ_OK && with_ttl) rc = lz_value_object_set_double(data, "timeout", (double)lock->ttl_ms / 1000);
    if (rc == LZ_OK && wait_ms > 0) rc = lz_value_object_set_int(data, "wait_ms", wait_ms);
    if (rc != LZ_OK) lz_value_destroy(&data);
    return data;
}

// refused: the service answered action with an error reply (freed).
static int refused(const lz_lock_t *lock, const char *action, lz_value_t **reply) {
    lz__fail(LZ_EREMOTE, "lock '%s': %s refused: %s", lock->name, action,
             lz_value_find_string(*reply, "message", "an error reply"));
    lz_value_destroy(reply);
    return LZ_EREMOTE;
}

static int cancelled_fail(const lz_lock_t *lock) {
    return lz__fail(LZ_ECLOSED, "lock '%s': cancelled (lz_lock_cancel): this object acquires no more", lock->name);
}

// lock_call sends action about this hold (wait_ms: see request_data) and
// stores the reply in *reply, waiting up to timeout_ms (-1:
// zmq.request_timeout). An error reply is LZ_EREMOTE, its message in the
// detail. With cancel, a request lz_lock_cancel ends (or comes before: then
// nothing is sent) is LZ_ECLOSED, its answer left to the cancel's late
// callback (give_back); the cancel wins over an answer come but not yet
// taken, which the caller's settle_in_background then gives back.
static int lock_call(lz_lock_t *lock, const char *action, bool with_ttl, int wait_ms, int timeout_ms,
                     const lz_cancel_t *cancel, lz_value_t **reply) {
    if (lz__cancel_fired(cancel)) return cancelled_fail(lock);
    lz_value_t *data = request_data(lock, with_ttl, wait_ms);
    if (!data) return lz__fail(LZ_ENOMEM, "lock '%s': out of memory", lock->name);
    int rc = lz__client_request_until(lock->client, action, data, reply, timeout_ms, cancel);
    lz_value_destroy(&data);
    if (lz__cancel_fired(cancel)) {
        lz_value_destroy(reply);
        return cancelled_fail(lock);
    }
    return rc == LZ_EREMOTE ? refused(lock, action, reply) : rc;
}

// reply_flag reads reply[key], which a lock service's reply always has.
static int reply_flag(const lz_lock_t *lock, const lz_value_t *reply, const char *key, bool *flag) {
    const lz_value_t *v = lz_value_get(reply, key);
    if (lz_value_type(v) != LZ_VALUE_BOOL)
        return lz__fail(LZ_EPROTOCOL, "lock '%s': the reply has no boolean '%s': not a lock service", lock->name, key);
    *flag = lz_value_get_bool(v);
    return LZ_OK;
}

// hold records a grant or renewal asked for at asked_ms: the server began
// its lease after that, so the lease counted from it ends no later.
static void hold(lz_lock_t *lock, const lz_value_t *reply, int64_t asked_ms) {
    lock->held = true;
    lock->lease_end_ms = asked_ms + lock->ttl_ms;
    lock->token = lz_value_find_int(reply, "fencing_token", lock->token);
}

static void count_settling(lz_lock_t *lock, int change) {
    pthread_mutex_lock(&lock->mutex);
    lock->settling += change;
    pthread_cond_broadcast(&lock->settled);
    pthread_mutex_unlock(&lock->mutex);
}

static void settled(int status, const lz_value_t *reply, void *arg) { count_settling(arg, -1); }

// settle_in_background: an acquire under the current owner id may have
// been granted unseen; release it without waiting, so the lock is not
// kept from others for a whole lease.
static void settle_in_background(lz_lock_t *lock) {
    lz_value_t *data = request_data(lock, false, 0);
    count_settling(lock, 1);
    if (!data || lz_client_request_async(lock->client, "release_lock", data, -1, settled, lock) != LZ_OK)
        count_settling(lock, -1);
    lz_value_destroy(&data);
}

// let_settle: true when a background release is on its way, after waiting
// for its answer, which its request's own timeout (zmq.request_timeout)
// bounds: the release may not have gone out yet (the client holds a
// request while it asks whether a silent endpoint lives), and the client's
// end would drop it. No wait without a connection: nothing can go out.
static bool let_settle(lz_lock_t *lock) {
    lz_metrics_t metrics;
    bool connected = lz_node_metrics(lz_client_node(lock->client), &metrics) == LZ_OK && metrics.active_connections > 0;
    int64_t due = lz__now_ms() + LZ_LIVE(lock->live, request_timeout);
    pthread_mutex_lock(&lock->mutex);
    bool on_its_way = lock->settling > 0;
    while (connected && lock->settling > 0 && lz__now_ms() < due)
        lz__cond_wait_until(&lock->settled, &lock->mutex, due);
    pthread_mutex_unlock(&lock->mutex);
    return on_its_way;
}

/* ---- a cancel ------------------------------------------------------------- */

// give_back, on the client's thread, gets the outcome of an acquire request
// a cancel ended the wait for. Its owner id has been released
// (settle_in_background), but a grant may still come after that release
// (a copy of the request the service handled later): released too.
static void give_back(int status, const lz_value_t *reply, void *arg) {
    lz_lock_t *lock = arg;
    bool granted = false;
    if (status == LZ_OK) reply_flag(lock, reply, "acquired", &granted);
    if (granted) settle_in_background(lock); // the lock outlives its client's thread (lz_lock_destroy)
}

int lz_lock_cancel(lz_lock_t *lock) {
    if (!lock) return lz__fail(LZ_EINVAL, "lz_lock_cancel: lock is NULL");
    lz__client_cancel(lock->client, &lock->cancel);
    return LZ_OK;
}

/* ---- acquiring ------------------------------------------------------------ */

// begin_hold: a new hold needs an object not cancelled, a lock not held
// yet, and a new owner id.
static int begin_hold(lz_lock_t *lock, const char *fn) {
    if (!lock) return lz__fail(LZ_EINVAL, "%s: lock is NULL", fn);
    if (lz__cancel_fired(&lock->cancel)) return cancelled_fail(lock);
    if (lz_lock_held(lock)) return lz__fail(LZ_ESTATE, "%s: lock '%s' is held already: renew it", fn, lock->name);
    lock->held = lock->unsettled = false;
    lock->token = 0;
    return lz__uuid4_secret(lock->owner);
}

// granted_at: when the lease of a grant asked at asked_ms began, at the
// latest. A grant after a wait began its lease when the lock came free,
// long after the request was sent: it is counted from when the grant
// arrived (later than the server's start by the reply's way back). A
// grant that says it did not wait ("waited": false), or to a request that
// could not, began after the request was sent.
static int64_t granted_at(const lz_value_t *reply, int wait_ms, int64_t asked_ms) {
    const lz_value_t *waited = lz_value_get(reply, "waited");
    bool at_once = wait_ms == 0 || (lz_value_type(waited) == LZ_VALUE_BOOL && !lz_value_get_bool(waited));
    return at_once ? asked_ms : lz__now_ms();
}

// attempt asks once, willing to wait wait_ms (0: not) in the service's
// queue. LZ_EBUSY when another owner holds the lock; its lease's time
// left is then in *retry_ms (-1: not said).
static int attempt(lz_lock_t *lock, int wait_ms, int timeout_ms, int64_t *retry_ms) {
    lz_value_t *reply = NULL;
    int64_t asked = lz__now_ms();
    bool acquired = false;
    int rc = lock_call(lock, "acquire_lock", true, wait_ms, timeout_ms, &lock->cancel, &reply);
    if (rc == LZ_OK) rc = reply_flag(lock, reply, "acquired", &acquired);
    if (rc == LZ_OK && acquired) hold(lock, reply, granted_at(reply, wait_ms, asked));
    if (rc == LZ_OK && !acquired) {
        double left = lz_value_find_double(reply, "expires_in", -1); // a hint: any server may send any number
        *retry_ms = left >= 0 && left <= LZ_LOCK_TIMEOUT_MAX ? (int64_t)(left * 1000) : -1;
        rc = lz__fail(LZ_EBUSY, "lock '%s' is held by another owner", lock->name);
    }
    // A parked request not granted may have left a copy in the queue (a
    // retry the service refused, or one that arrived after the refusal),
    // to be granted a lock nobody then holds: settled like a lost answer,
    // as is a grant whose reply we had no memory to read, or one a cancel
    // left unseen.
    if (acquired) lock->unsettled = false;
    else if (rc == LZ_ETIMEOUT || rc == LZ_ENOMEM || rc == LZ_ECLOSED || wait_ms > 0) lock->unsettled = true;
    lz_value_destroy(&reply);
    return rc;
}

// attempt_timeout: one request waits zmq.request_timeout (-1), but not
// past the deadline of the whole wait while any of it is left; a parked
// one (wait_ms > 0) its wait on top. The client's retries of a parked
// request join it on the service, which answers it when the first copy's
// wait ends, on whichever copy: any of them completes the request.
static int attempt_timeout(const lz_lock_t *lock, int64_t deadline, int wait_ms) {
    int request_timeout = LZ_LIVE(lock->live, request_timeout);
    if (wait_ms > 0) return wait_ms < INT_MAX - request_timeout ? wait_ms + request_timeout : INT_MAX;
    int64_t left = deadline - lz__now_ms();
    return left <= 0 || left >= request_timeout ? -1 : (int)left;
}

// park_ms: how long the next request may wait in the service's queue:
// what is left of the wait, up to LZ_LOCK_WAIT_MAX_MS (0 for no wait).
static int park_ms(int wait_ms, int64_t deadline) {
    if (wait_ms == 0) return 0;
    int64_t left = deadline - lz__now_ms();
    return left <= 0 ? 0 : left < LZ_LOCK_WAIT_MAX_MS ? (int)left : LZ_LOCK_WAIT_MAX_MS;
}

// pause_ms: the backoff, but no later than when the holder's lease ends
// (its reply said when) and no later than the deadline.
static int64_t pause_ms(int attempts, int64_t retry_ms, int64_t left) {
    int64_t pause = lz__backoff_ms(attempts, ACQUIRE_BACKOFF_BASE_MS, ACQUIRE_BACKOFF_MAX_MS, lz__random64());
    if (retry_ms >= 0 && retry_ms + 1 < pause) pause = retry_ms + 1;
    return pause < left ? pause : left;
}

int lz_lock_try_acquire(lz_lock_t *lock) {
    int rc = begin_hold(lock, "lz_lock_try_acquire");
    if (rc != LZ_OK) return rc; // nothing asked: nothing to settle
    int64_t retry_ms;
    rc = attempt(lock, 0, -1, &retry_ms);
    if (lock->unsettled) settle_in_background(lock);
    return rc;
}

int lz_lock_acquire(lz_lock_t *lock, int wait_ms) {
    if (wait_ms < -1) return lz__timeout_check(wait_ms, "lz_lock_acquire");
    int rc = begin_hold(lock, "lz_lock_acquire");
    if (rc != LZ_OK) return rc;
    int64_t started = lz__now_ms(), deadline = wait_ms < 0 ? INT64_MAX : started + wait_ms;
    for (int attempts = 1; rc == LZ_OK; attempts++) {
        int64_t retry_ms = -1, asked = lz__now_ms();
        int park = park_ms(wait_ms, deadline);
        rc = attempt(lock, park, attempt_timeout(lock, deadline, park), &retry_ms);
        if (rc != LZ_EBUSY && rc != LZ_ETIMEOUT) break; // held, or a failure waiting does not mend
        int64_t now = lz__now_ms(), left = deadline - now;
        if (left <= 0) break;
        // Refused before the wait it asked for: the service did not park it
        // (it ignores wait_ms, or its queue is full): poll, as for it.
        if (rc == LZ_ETIMEOUT || now - asked + PARK_SLACK_MS < park)
            lz__cancel_pause(&lock->cancel, pause_ms(attempts, retry_ms, left));
        rc = LZ_OK;
    }
    if (lock->unsettled && rc != LZ_OK) settle_in_background(lock);
    if (rc == LZ_EBUSY)
        return lz__fail(LZ_ETIMEOUT, "lock '%s': still held by another owner after %d ms", lock->name, wait_ms);
    if (rc != LZ_ETIMEOUT) return rc;
    // The last request waited zmq.request_timeout past the wait: say how long it all took.
    return lz__fail(LZ_ETIMEOUT, "lock '%s': no answer from the lock service in %lld ms", lock->name,
                    (long long)(lz__now_ms() - started));
}

/* ---- holding -------------------------------------------------------------- */

// ask_holder sends a request only the holder makes (renew, release) and
// reads its answer under key. A refusal means the service has no such
// hold any more: the object no longer holds the lock.
static int ask_holder(lz_lock_t *lock, const char *fn, const char *action, const char *key, bool with_ttl) {
    if (!lock) return lz__fail(LZ_EINVAL, "%s: lock is NULL", fn);
    if (!lock->held) return lz__fail(LZ_ESTATE, "%s: lock '%s' is not held", fn, lock->name);
    lz_value_t *reply = NULL;
    int64_t asked = lz__now_ms();
    bool ok = false;
    int rc = lock_call(lock, action, with_ttl, 0, -1, NULL, &reply);
    if (rc == LZ_OK) rc = reply_flag(lock, reply, key, &ok);
    if (rc == LZ_OK && ok && with_ttl) hold(lock, reply, asked);
    lz_value_destroy(&reply);
    if (rc != LZ_OK || ok) return rc;
    lock->held = false;
    return lz__fail(LZ_ESTATE, "%s: lock '%s' was no longer held: its lease had ended (another owner may have held it since)",
                    fn, lock->name);
}

int lz_lock_renew(lz_lock_t *lock) { return ask_holder(lock, "lz_lock_renew", "renew_lock", "renewed", true); }

int lz_lock_release(lz_lock_t *lock) {
    int rc = ask_holder(lock, "lz_lock_release", "release_lock", "released", false);
    if (!lock) return rc;
    lock->held = false; // also on a timeout: the lease then ends on its own
    // Out of memory, the release may not have gone out: it goes in the
    // background (and again at lz_lock_destroy, should that fail too).
    if (rc == LZ_ENOMEM) {
        lock->unsettled = true;
        settle_in_background(lock);
    }
    return rc;
}

bool lz_lock_held(const lz_lock_t *lock) { return lock && lock->held && lz__now_ms() < lock->lease_end_ms; }

int64_t lz_lock_fencing_token(const lz_lock_t *lock) { return lock && lock->held ? lock->token : 0; }

/* ---- the object ----------------------------------------------------------- */

lz_lock_t *lz_lock_new(lz_context_t *ctx, const char *endpoints, const char *name, int ttl_ms) {
    if (!ctx || !name) return lz__fail_null(LZ_EINVAL, "lz_lock_new: NULL ctx or name");
    if (!lz__client_endpoints_given(endpoints)) // as its client's: none can be added later
        return lz__fail_null(LZ_EINVAL, "lz_lock_new: no endpoint: give the lock service's when creating it");
    size_t len = strlen(name);
    if (len == 0 || len > LZ_LOCK_NAME_MAX)
        return lz__fail_null(LZ_EINVAL, "lz_lock_new: the name must be 1 to %d bytes, not %zu", LZ_LOCK_NAME_MAX, len);
    if (ttl_ms < 1 || ttl_ms > LZ_LOCK_TIMEOUT_MAX * 1000)
        return lz__fail_null(LZ_EINVAL, "lz_lock_new: ttl_ms must be 1 to %d, not %d", LZ_LOCK_TIMEOUT_MAX * 1000,
                             ttl_ms);
    lz_lock_t *lock = calloc(1, sizeof *lock);
    if (!lock || !(lock->name = strdup(name)) || lz__cond_init_monotonic(&lock->settled) != 0) {
        if (lock) free(lock->name);
        free(lock);
        return lz__fail_null(LZ_ENOMEM, "lz_lock_new: out of memory");
    }
    pthread_mutex_init(&lock->mutex, NULL);
    if (lz__cancel_init(&lock->cancel, give_back, lock) != LZ_OK) {
        lz_lock_destroy(&lock);
        return NULL; // lz__cancel_init's error
    }
    lock->ttl_ms = ttl_ms;
    lock->live = lz__context_live(ctx);
    if (!(lock->client = lz_client_new(ctx, endpoints))) {
        lz_lock_destroy(&lock);
        return NULL; // lz_client_new's error
    }
    return lock;
}

void lz_lock_destroy(lz_lock_t **lock_p) {
    if (!lock_p || !*lock_p) return;
    lz_lock_t *lock = *lock_p;
    // An owner id an acquire gave up on is released, so that its possible
    // grant is too, unless its background release is on its way: sent
    // after that one, another would do no more, and would add a whole
    // zmq.request_timeout when the service is silent.
    if (lock->unsettled && !lock->held && !let_settle(lock)) lock->held = true;
    if (lock->held) lz_lock_release(lock);
    lz_client_destroy(&lock->client); // runs the callback of an acquire request a cancel left: lock is still whole
    lz__cancel_close(&lock->cancel);
    pthread_cond_destroy(&lock->settled);
    pthread_mutex_destroy(&lock->mutex);
    free(lock->name);
    free(lock);
    *lock_p = NULL;
}
