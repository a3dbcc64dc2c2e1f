/* liberzmq distributed locks: named leases kept by a lock service on a
 * request/reply server, taken and given back by lock objects on clients.
 *
 * Wire (docs/protocol.md section 4.1, docs/lock.md): the Python LiberZMQ
 * guide's DistributedLock talks to the service unchanged (actions
 * "acquire_lock" and "release_lock"); "renew_lock", "lock_status" and the
 * fencing token in every grant are additions.
 *
 * A lease is not a mutex: a holder that stalls past its lease (a GC pause,
 * a swapped-out VM) still believes it holds the lock while someone else
 * does. Pass the fencing token with every write and have the storage
 * refuse tokens lower than one it has seen (docs/lock.md). */
#ifndef LIBERZMQ_LOCK_H
#define LIBERZMQ_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context.h"
#include "reqrep.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lz_lock_service lz_lock_service_t;
typedef struct lz_lock lz_lock_t;

// Limits of the wire fields, in bytes / seconds; larger values get an
// LZ_EVALIDATION error reply.
#define LZ_LOCK_NAME_MAX 256
#define LZ_LOCK_ID_MAX 128
#define LZ_LOCK_TIMEOUT_MAX 86400 // a day: longer leases are a forgotten lock, not a lease
#define LZ_LOCK_TIMEOUT_DEFAULT 30 // seconds, when a request gives none (the Python guide's default)
#define LZ_LOCK_MAX_DEFAULT 4096   // locks held at once, when lz_lock_service_attach is given 0
#define LZ_LOCK_WAIT_MAX_MS 60000  // an acquire's "wait_ms" above this is taken as this
#define LZ_LOCK_WAITERS_DEFAULT 1024 // acquire requests parked at once (lz_lock_service_set_waiters_max)

/* ---- the service ---------------------------------------------------------- */

// lz_lock_service_attach registers the actions "acquire_lock",
// "release_lock", "renew_lock" and "lock_status" on server, which the
// caller owns, starts and stops. Attaching to a server rather than owning
// one lets a service offer locks beside its own actions on one endpoint,
// with that server's configuration, CURVE keys, hooks and metrics; a
// dedicated lock server is three lines (lz_server_new, attach, start).
// Call it before lz_server_start. At most max_locks locks (0:
// LZ_LOCK_MAX_DEFAULT) are held at once: an acquire beyond that gets an
// LZ_EAGAIN error reply until a lock is released or expires.
//
// Leases end on the server's monotonic clock, checked on every request:
// expired locks are dropped then, so memory follows the locks actually
// held, with no sweeper thread. A request costs a scan of the held locks
// (sized for thousands, not millions).
//
// Returns the service (owned by the caller) or NULL: LZ_EINVAL (server
// NULL), LZ_ESTATE (server started), LZ_ENOMEM, LZ_EIO (the system would
// not make its timer's condition variable). Handlers may run on
// several of the server's threads at once: the lock table has a mutex.
// Until destroyed, the service is in its context's Prometheus scrape
// (lz_context_prometheus), labelled with the server node's name as it is
// at attach time (name the node, lz_node_set_name, before) and its id.
lz_lock_service_t *lz_lock_service_attach(lz_server_t *server, size_t max_locks);

// Waiting: an "acquire_lock" with "wait_ms" (milliseconds, capped at
// LZ_LOCK_WAIT_MAX_MS) for a lock another owner holds is parked: its
// reply is deferred (lz_server_defer, so it holds no server thread) in
// the lock's queue of waiters. When the lease ends (released, or run
// out) the lock goes at once to the first waiter still waiting, with the
// grant reply a free lock gets (a new fencing token, its own lease); a
// waiter whose wait ends first gets the refusal. A repeat of a parked
// owner's acquire (its client's retry) joins it, keeping its place and
// the first request's wait end, and every reply it sent gets the same
// answer; a release_lock by a waiting owner ends its wait (the refusal).
// A timer thread, started with the first waiter, wakes only when a lease
// or a wait ends while someone waits. lz_server_stop answers parked
// acquires with its LZ_ECLOSED error reply: they wait no more and are
// not counted in the waiters count (lz_lock_service_stats), also after a
// restart; they leave the queues at their turn (passed over: no grant),
// at their wait's end (no refusal counted), when a new acquire finds the
// cap reached, or when the numbers are read.
//
// lz_lock_service_set_waiters_max caps the parked acquire requests
// (default LZ_LOCK_WAITERS_DEFAULT; 0: none parks): past it an acquire
// gets the immediate refusal, as without wait_ms. A repeat of a parked
// owner's acquire joins it even past the cap, up to 16 copies: one more
// ends that owner's wait (all its copies refused). Thread safe; LZ_EINVAL
// for NULL.
int lz_lock_service_set_waiters_max(lz_lock_service_t *service, size_t max);

// lz_lock_service_destroy takes the service out of its context's scrape
// (waiting for a scrape reading it), frees it, its waiters included (the
// server's stop answered them), and sets *service_p to NULL. Its handlers
// stay registered on the server, bound to the freed service: stop or
// destroy the server first, and do not start it again unless its four
// actions were registered anew meanwhile (another lz_lock_service_attach,
// or lz_server_on). NULL and *NULL are no-ops.
void lz_lock_service_destroy(lz_lock_service_t **service_p);

// lz_lock_service_count: how many locks are held now (expired ones are
// dropped first). 0 for NULL. Thread safe.
size_t lz_lock_service_count(lz_lock_service_t *service);

// What a lock service has done, for dashboards and alerts. Counters
// count from lz_lock_service_attach and only grow; gauges are now.
typedef struct lz_lock_stats {
    uint64_t locks_held;       // gauge: locks held (expired ones dropped first)
    uint64_t waiters;          // gauge: acquire requests parked (a client's retry that joins its wait is one more;
                               // not those a server's stop answered)
    uint64_t grants_total;     // locks given to an owner: free ones at once, and handovers; not an owner's repeat
    uint64_t handovers_total;  // of those, locks given to a parked waiter when the lease before ended
    uint64_t releases_total;   // leases ended by their owner's release_lock
    uint64_t expiries_total;   // leases that ran out unreleased (handed over or dropped)
    uint64_t refusals_total;   // acquires answered "lock_held": at once, or when a wait ended (one per waiter,
                               // however many copies of its request, also those refused at once)
    // handovers whose grant reached no reply (client gone, no room in its queue, a server stop answered it,
    // no memory)
    uint64_t taken_back_total;
    uint64_t table_full_total; // acquires refused with LZ_EAGAIN: max_locks were held
} lz_lock_stats_t;

// lz_lock_service_stats fills *out with service's numbers at one moment
// (taken under the service's mutex; expired leases are dropped first, as
// on a request). Also on the context's Prometheus scrape as the
// liberzmq_lock_* families (docs/metrics.md). Thread safe. LZ_EINVAL when
// service or out is NULL.
int lz_lock_service_stats(lz_lock_service_t *service, lz_lock_stats_t *out);

/* ---- the client ----------------------------------------------------------- */

// lz_lock_new makes a lock object for the lock called name (1 to
// LZ_LOCK_NAME_MAX bytes, copied) on the lock service at endpoints (a
// client, default side connect; several endpoints are several servers
// that do NOT share locks: give one). Each hold is a lease of ttl_ms
// (1 ms to LZ_LOCK_TIMEOUT_MAX s) that must be renewed (lz_lock_renew) or
// released before it ends. Requests use the context's zmq.request_timeout
// and zmq.request_retries.
//
// Returns the lock (owned by the caller; lz_lock_destroy) or NULL:
// LZ_EINVAL (also for NULL, "" or only commas as endpoints: as a client's,
// they cannot be added later), LZ_ENOMEM, LZ_EIO (no file descriptor left
// for the eventfd lz_lock_cancel signals), or the client's errors. Not
// thread safe (but for lz_lock_cancel): a lock object is one owner, so
// give each thread its own (a thread sharing one would share its hold);
// different lock objects may be used at once.
lz_lock_t *lz_lock_new(lz_context_t *ctx, const char *endpoints, const char *name, int ttl_ms);

// lz_lock_destroy releases the lock if it is held (one request, waiting
// up to zmq.request_timeout), then frees it and sets *lock_p to NULL. NULL
// and *NULL are no-ops. The owner id of an acquire given up unanswered
// (see lz_lock_acquire) is released the same way, unless its background
// release is still on its way: then nothing more is sent, and destroy
// waits for that release's answer, up to zmq.request_timeout (not at all
// with no connection to the service).
void lz_lock_destroy(lz_lock_t **lock_p);

// lz_lock_try_acquire asks once. 0 when the lock is now held (by this
// object, under a new random owner id and a new fencing token); LZ_EBUSY
// when another owner holds it; LZ_ESTATE when this object holds it
// already (renew it instead); LZ_ETIMEOUT when the server did not answer
// in zmq.request_timeout; LZ_EREMOTE when it answered with an error reply
// (the detail has its message: the lock table is full, a field is
// refused); LZ_EPROTOCOL for a reply that is not a lock service's;
// LZ_ECLOSED once lz_lock_cancel was called (see there).
int lz_lock_try_acquire(lz_lock_t *lock);

// lz_lock_acquire asks until the lock is held or wait_ms has passed (-1:
// no limit; 0: one request). Each request carries "wait_ms", what is left
// of the wait (up to LZ_LOCK_WAIT_MAX_MS), and waits that plus
// zmq.request_timeout: our service parks it and grants the lock the
// moment it is free, waiters in the order they came (see
// lz_lock_service_set_waiters_max). A service that refuses sooner (one
// that ignores wait_ms, or whose queue is full) is asked again after a
// backoff (10 ms doubling to 500 ms, jittered, never past the holder's
// lease end the server reports nor past wait_ms). Returns 0 when held,
// LZ_ETIMEOUT when wait_ms passed with the lock held by another owner or
// the server silent (up to zmq.request_timeout after wait_ms);
// LZ_EREMOTE when the server stopped meanwhile (its LZ_ECLOSED error
// reply); other failures as lz_lock_try_acquire, at once. Every request of
// one call carries the same owner id, so a grant whose reply was lost is
// found again by the next request (the service grants an owner's repeated
// acquire). When the wait ends without a grant after a request that was
// unanswered or could wait in the queue, or whose reply could not be read
// for want of memory (LZ_ENOMEM), the owner id is released in the
// background: a grant never seen, or a copy of a request still parked,
// then holds nothing. LZ_ECLOSED, at once, once lz_lock_cancel was called;
// LZ_EINVAL for a wait_ms below -1, nothing asked.
int lz_lock_acquire(lz_lock_t *lock, int wait_ms);

// lz_lock_cancel gives up acquiring, for good: an lz_lock_acquire or
// lz_lock_try_acquire running on lock returns LZ_ECLOSED promptly (within
// a few milliseconds: it stops waiting for the service's answer, or for
// its next poll), and every later one returns LZ_ECLOSED at once, sending
// nothing; make a new object to acquire again. So a cancel that comes just
// before an acquire begins still stops it. The abandoned acquire holds
// nothing and its request is not sent again (no retry goes out after the
// cancel): its owner id is released in the background (a parked request
// then ends its wait; a grant already given, on its way, or come but not
// yet taken is given back), and a grant that reaches the object later is
// given back as it arrives. A cancel that comes once the acquire has taken
// its grant leaves the hold to the caller (the acquire returns 0): release
// it as usual. lz_lock_renew, lz_lock_release and lz_lock_destroy work as
// before. Returns 0, or LZ_EINVAL for NULL; calling it again is harmless.
// Thread safe: call it from any thread, a signal-handling thread (one in
// sigwait) included, while another uses lock; not from a signal handler,
// and not once lz_lock_destroy may have begun. Being cancellable costs an
// acquire little: its request runs as any lz_client_request does (on the
// calling thread while it is the only one in flight, no hand-off to the
// client's thread), and the cancel wakes it wherever it waits.
int lz_lock_cancel(lz_lock_t *lock);

// lz_lock_renew extends the hold to ttl_ms from now (on the server's
// clock). 0 on success; LZ_ESTATE when this object does not hold the lock,
// or the server no longer has the hold (it expired, and may have gone to
// another owner): the object then no longer holds it. Other failures as
// lz_lock_try_acquire; after LZ_ETIMEOUT the hold may still end at its
// old time.
int lz_lock_renew(lz_lock_t *lock);

// lz_lock_release gives the lock back. 0 on success; LZ_ESTATE when this
// object does not hold it, or the server had no such hold any more (it had
// expired: what you did under it may have overlapped another holder).
// Either way, and on LZ_ETIMEOUT, the object no longer holds the lock
// (the lease then ends on its own). On LZ_ENOMEM the release may not have
// gone out: it is sent again in the background.
int lz_lock_release(lz_lock_t *lock);

// lz_lock_held: whether this object holds the lock, as far as it can tell
// without asking: acquired, not released, and its lease (counted from when
// the last grant or renewal was requested, so it ends no later than the
// server's; after lz_lock_acquire waited in the service's queue, the lock
// handed over when it came free, from when the grant arrived, so it may
// end later than the server's by the time that reply took to go out and
// arrive; a free lock granted at once to lz_lock_acquire is counted from
// the request, as our service marks such grants) not over. false for NULL.
bool lz_lock_held(const lz_lock_t *lock);

// lz_lock_fencing_token: the token of the current hold, 0 when not held
// (nor for NULL). Tokens of one lock name only grow from grant to grant;
// the service starts them from its wall clock in microseconds, so they
// keep growing across its restarts too (unless its clock goes back). A
// server that sends no token (the Python guide's LockServer) gives 0.
int64_t lz_lock_fencing_token(const lz_lock_t *lock);

#ifdef __cplusplus
}
#endif
#endif
