/* The request/reply server: one I/O thread reads the ROUTER socket, decodes
 * requests and hands them to a worker pool (or, with a concurrency of 1,
 * runs the handler itself); whoever ran the handler sends the reply behind
 * the request's own routing frames (docs/reqrep.md). A bad request always
 * gets an error reply.
 *
 * Every use of the socket is under the node's lock, so a worker sends its
 * reply itself instead of waking the I/O thread to do it: on a busy core
 * each such hand-off is a context switch, more than the network costs. With
 * workers the I/O thread therefore never blocks inside libzmq with the
 * socket: it waits outside the lock, on the socket's ZMQ_FD (see
 * serve_pooled and lz__node_wait). Without them it is the socket's only
 * user and waits in libzmq's blocking receive, as a REP loop does (see
 * serve_inline), until a handler defers a reply: whoever answers it later
 * sends on the socket too.
 *
 * A deferred reply (lz_server_defer) is a handle on the request's job, on
 * the server's list of outstanding replies until it is answered, by its
 * holder or by the stop (lz_server_reply_t below). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"
#include "core/error.h"
#include "core/hooks.h"
#include "core/node.h"
#include "core/pool.h"
#include "core/spare.h"
#include "core/thread.h"
#include "core/trace.h"
#include "liberzmq/reqrep.h"
#include "patterns/routing.h"

#define SERVER_QUEUE_MAX 1024 // requests waiting for a worker before the reader blocks
#define SERVER_STOP_SLICE_MS 50 // a server running handlers inline sees a stop this often

typedef struct handler {
    char *action;
    lz_server_handler_fn fn;
    void *arg;
} handler_t;

// One request on its way through the server, and then its encoded reply.
typedef struct job {
    lz_routing_t route;
    lz_message_t *msg;
    lz_buffer_t *reply;
    lz_span_t span; // the request's SERVER span, ended with status once the reply is sent
    int status;
    bool no_memory; // its error reply could not be made: the server's out_of_memory goes instead
    bool unencoded; // its error reply does not encode with the serializer at all: an empty frame goes instead
} job_t;

struct lz_server {
    lz_node_t node;
    handler_t *handlers;
    size_t handler_count;
    handler_t fallback; // fn NULL: unknown actions get LZ_ENOTFOUND
    lz_pool_t *pool; // NULL with a concurrency of 1: handlers run on the I/O thread
    pthread_t thread;
    bool running;
    atomic_bool stopping; // the I/O thread stops reading, drains the pool and ends
    atomic_bool deferring; // a handler has deferred a reply: other threads send on the socket too
    lz_spare_t spare_job; // the last job finished, for the next request
    // The error reply for a request whose own could not be made for want of
    // memory, made at the first start: an empty reply would read as a
    // reply that does not decode.
    lz_buffer_t *out_of_memory;
    pthread_mutex_t deferred_lock; // guards deferred
    lz_server_reply_t *deferred;   // replies deferred and not answered yet
};

// A deferred reply. Its holder and the server's stop may each finish it,
// on different threads: its mutex orders them, and the last to let go
// frees it (owners). While it has a job, its server is running or
// stopping, never freed: the stop waits for the mutex before it ends.
struct lz_server_reply {
    pthread_mutex_t mutex;
    lz_server_t *server; // NULL once answered
    job_t *job;          // NULL once answered
    lz_server_reply_t *prev, *next; // on server->deferred, under its deferred_lock
    bool listed;
    int owners; // the holder and the server's list; under mutex
};

// What the thread running a handler knows of it, for lz_server_defer.
typedef struct running {
    lz_server_t *server;
    job_t *job; // not to be read once deferred: the reply may be sent and the job freed
    lz_server_reply_t *deferred;
    lz_span_t span; // the thread's current span once deferred (lz_server_defer); unset before
} running_t;

static _Thread_local running_t *running_now;

// Set on a pooled server's I/O thread: the replies it sends itself (a
// pong, a malformed request's error) do not wait for room. Waiting, it
// would read no request meanwhile, so one peer that reads no replies would
// stall everyone for zmq.send_timeout per reply; such a reply is dropped.
static _Thread_local bool sends_without_waiting;

static void job_destroy(job_t *job) {
    if (!job) return;
    lz_buffer_destroy(&job->reply);
    free(job);
}

// job_new returns an empty job, the server's spare one when there is one.
static job_t *job_new(lz_server_t *s) {
    job_t *job = lz__spare_take(&s->spare_job);
    if (job) {
        lz_buffer_reset(job->reply);
        job->no_memory = job->unencoded = false;
        return job;
    }
    if (!(job = calloc(1, sizeof *job))) return NULL;
    if (!(job->reply = lz_buffer_new())) {
        free(job);
        return NULL;
    }
    return job;
}

// job_free empties job and keeps it as the spare (freeing the one before).
static void job_free(lz_server_t *s, job_t *job) {
    lz__span_end(&job->span, job->status);
    lz__routing_close(&job->route);
    lz_message_destroy(&job->msg);
    job_destroy(lz__spare_put(&s->spare_job, job));
}

// encode_error replaces the job's reply with an error reply, or, without
// the memory to make it, with the server's out_of_memory reply. A message
// the serializer refuses gives way to the code's own words: the client
// still learns the code. A serializer that encodes no error reply at all
// (raw) leaves an empty frame: the client still gets an answer.
static void encode_error(lz_server_t *s, job_t *job, int code, const char *message) {
    const char *action = job->msg ? lz_message_type(job->msg) : "unknown";
    lz_buffer_reset(job->reply);
    int rc = lz__envelope_encode_error(s->node.serializer, code, message, action, job->reply);
    if (rc < 0 && rc != LZ_ENOMEM && message) {
        lz_buffer_reset(job->reply);
        rc = lz__envelope_encode_error(s->node.serializer, code, NULL, action, job->reply);
    }
    job->no_memory = rc == LZ_ENOMEM;
    job->unencoded = rc < 0 && rc != LZ_ENOMEM;
    if (rc < 0) lz_buffer_reset(job->reply);
}

// send_now sends reply behind the request's routing parts (copied; count
// below LZ_MAX_FRAMES) without waiting for room: LZ_EAGAIN at once, the
// reply dropped and counted as any send's (outbound_dropped and
// backpressure_events). For a caller holding the node's lock.
static int send_now(lz_node_t *node, const zmq_msg_t *route, size_t count, const lz_buffer_t *reply) {
    lz_frame_t frames[LZ_MAX_FRAMES];
    for (size_t i = 0; i < count; i++)
        frames[i] = (lz_frame_t){zmq_msg_data((zmq_msg_t *)&route[i]), zmq_msg_size(&route[i])};
    frames[count] = (lz_frame_t){lz_buffer_data(reply), lz_buffer_size(reply)};
    return lz__node_send_locked(node, frames, count + 1, ZMQ_DONTWAIT);
}

// send_reply sends reply behind the request's routing parts (moved into
// libzmq when sent, unless sends_without_waiting), under the node's lock.
static int send_reply(lz_server_t *s, zmq_msg_t *route, size_t count, const lz_buffer_t *reply) {
    lz_node_t *node = &s->node;
    lz__node_lock(node); // the socket lives until the server is destroyed, after its threads
    int rc = sends_without_waiting
                 ? send_now(node, route, count, reply)
                 : lz__node_send_parts_locked(node, route, count, lz_buffer_data(reply), lz_buffer_size(reply));
    lz__node_unlock(node);
    return rc;
}

// send_job sends the job's reply behind its routing frames and frees it;
// any thread may call it. Returns the send's outcome, LZ_OK or its failure
// (LZ_EUNREACHABLE, LZ_EAGAIN, LZ_ENOMEM...), for a deferred reply's
// caller, which may undo what it answered; the others need not look: a
// failure is logged here, and counted in the metrics as every send's is.
// A worker's send may take the signal of a request that came meanwhile
// from the I/O thread waiting outside the lock: lz__node_unlock then wakes
// it (see lz__node_wait).
static int send_job(lz_server_t *s, job_t *job) {
    lz_node_t *node = &s->node;
    // The route goes back as the frames it came in: a reply is sent once.
    int rc = send_reply(s, job->route.part, job->route.count, job->no_memory ? s->out_of_memory : job->reply);
    // A client gone is routine (it timed out, or retried on a new socket):
    // counted in outbound_dropped, and said at most once a second.
    if (rc == LZ_EUNREACHABLE) lz__node_log_drop(node, "reply dropped: its client has gone away");
    else if (rc == LZ_EAGAIN && sends_without_waiting)
        lz__node_log_drop(node, "reply dropped: no room in its client's queue (it reads no replies)");
    else if (rc < 0) LZ_LOG(node->log, LZ_LOG_DEBUG, node->name, "reply not sent: %s", lz_last_error());
    job_free(s, job);
    return rc;
}

static const handler_t *find_exact(const lz_server_t *s, const char *action) {
    for (size_t i = 0; i < s->handler_count; i++)
        if (strcmp(s->handlers[i].action, action) == 0) return &s->handlers[i];
    return NULL;
}

// find_handler: the action's handler; for the Python LiberZMQ's
// call(method, ...) ({"type": "call", "data": {"method": ...}}) with no
// "call" handler, the method's handler; else the default (may be NULL).
static const handler_t *find_handler(const lz_server_t *s, const lz_message_t *msg) {
    const char *action = lz_message_type(msg);
    const handler_t *h = find_exact(s, action);
    if (!h && strcmp(action, "call") == 0) {
        const char *method = lz_value_find_string(lz_message_value(msg), "method", NULL);
        if (method) h = find_exact(s, method);
    }
    return h ? h : (s->fallback.fn ? &s->fallback : NULL);
}

// encode_value encodes value (NULL: null) as the job's reply and returns
// LZ_OK, or the failure, then encoded as an error reply.
static int encode_value(lz_server_t *s, job_t *job, const lz_value_t *value) {
    int rc = lz__node_encode(&s->node, value, job->reply);
    if (rc < 0) {
        lz__node_error(&s->node, rc, "handler '%s': reply does not encode: %s", lz_message_type(job->msg),
                       lz_last_error());
        encode_error(s, job, rc, "the handler's reply could not be serialized");
    }
    return rc < 0 ? rc : LZ_OK;
}

// encode_failure logs and counts a handler's failure (rc: negative, else
// LZ_EREMOTE) and encodes its error reply, with text (NULL: the code's own
// words). Returns the code.
static int encode_failure(lz_server_t *s, job_t *job, int rc, const char *text) {
    int code = rc < 0 ? rc : LZ_EREMOTE;
    if (!text) text = lz_strerror(code);
    lz__node_error(&s->node, code, "handler '%s' failed: %s", lz_message_type(job->msg), text);
    encode_error(s, job, code, text);
    return code;
}

// run_handler calls the handler and encodes its reply or its failure, which
// it returns (LZ_OK for a reply), or returns LZ_SERVER_DEFERRED when the
// handler deferred the reply: the job is then the reply handle's, and may
// be sent and freed already.
static int run_handler(lz_server_t *s, const handler_t *h, job_t *job) {
    lz_value_t *reply = NULL;
    running_t here, *outer = running_now; // fields set one by one: the span is only written by a deferral
    here.server = s;
    here.job = job;
    here.deferred = NULL;
    running_now = &here;
    int rc = h->fn(job->msg, &reply, h->arg);
    running_now = outer;
    if (here.deferred) rc = LZ_SERVER_DEFERRED; // whatever it returned: the reply is the handle's
    else if (rc == 0) rc = encode_value(s, job, reply);
    else if (rc == LZ_SERVER_DEFERRED)
        rc = encode_failure(s, job, LZ_ESTATE, "the handler returned LZ_SERVER_DEFERRED without lz_server_defer");
    else rc = encode_failure(s, job, rc, lz_value_get_string(reply, NULL));
    lz_value_destroy(&reply);
    return rc;
}

// answer dispatches one request and encodes its reply, inside the
// request's span: requests the handler makes belong to its trace. Returns
// LZ_SERVER_DEFERRED when the handler deferred the reply (the job is no
// longer the caller's to send), else LZ_OK.
static int answer(lz_server_t *s, job_t *job) {
    const handler_t *h = find_handler(s, job->msg);
    int refused = lz__hooks_receive(&s->node, job->msg);
    if (refused != LZ_OK) {
        job->status = refused;
        lz__node_error(&s->node, refused, "%s", lz_last_error());
        encode_error(s, job, refused, lz_last_error());
    } else if (h) {
        const lz_span_t *outer = lz__trace_enter(&job->span);
        bool traced = job->span.active; // read now: a deferred job may be freed before its handler returns
        int rc = run_handler(s, h, job);
        if (traced) lz__trace_swap(outer); // lz__trace_leave, without reading the span again
        if (rc == LZ_SERVER_DEFERRED) return rc;
        job->status = rc;
    } else {
        job->status = LZ_ENOTFOUND;
        char text[160];
        lz__format(text, sizeof text, "unknown action '%s'", lz_message_type(job->msg));
        lz__node_error(&s->node, LZ_ENOTFOUND, "%s", text);
        encode_error(s, job, LZ_ENOTFOUND, text);
    }
    return LZ_OK;
}

// answer_and_send answers one request and sends the reply unless deferred.
static void answer_and_send(lz_server_t *s, job_t *job) {
    if (answer(s, job) != LZ_SERVER_DEFERRED) send_job(s, job);
}

// A worker's job: answer one request and send the reply, as the server's
// callback (lz__thread_inside: a stop from its handler only asks).
static void job_run(void *p, void *arg) {
    lz_thread_running_t here;
    lz__thread_enter(&here, arg);
    answer_and_send(arg, p);
    lz__thread_leave(&here);
}

// Jobs still queued when the server stops are answered, not dropped, so
// their clients learn at once instead of timing out. The I/O thread drops
// them after its last read.
static void job_drop(void *p, void *arg) {
    lz_server_t *s = arg;
    job_t *job = p;
    encode_error(s, job, LZ_ECLOSED, "server stopping");
    job->status = LZ_ECLOSED;
    send_job(s, job);
}

/* ---- deferred replies ----------------------------------------------------- */

lz_server_reply_t *lz_server_defer(const lz_message_t *request) {
    running_t *r = running_now;
    if (!request) return lz__fail_null(LZ_EINVAL, "lz_server_defer: request is NULL");
    if (!r) return lz__fail_null(LZ_ESTATE, "lz_server_defer: not inside the handler of this request");
    // Tested before r->job is read: a deferred job may be answered and freed already.
    if (r->deferred) return lz__fail_null(LZ_ESTATE, "lz_server_defer: this handler's reply is deferred already");
    if (r->job->msg != request)
        return lz__fail_null(LZ_ESTATE, "lz_server_defer: not inside the handler of this request");
    lz_server_reply_t *reply = calloc(1, sizeof *reply);
    if (!reply) return lz__fail_null(LZ_ENOMEM, "lz_server_defer: out of memory");
    // The handler stays inside the request's trace until it returns, but
    // the job's span may end and be freed before then (any thread may send
    // the reply): from now on its thread's current span is a copy on the
    // handler's stack. Done before the stop can see the reply on the list.
    if (r->job->span.active) {
        r->span = r->job->span;
        lz__trace_swap(&r->span); // answer entered the job's span; it puts back the one before
    }
    pthread_mutex_init(&reply->mutex, NULL);
    lz_server_t *s = reply->server = r->server;
    reply->job = r->job;
    reply->listed = true;
    reply->owners = 2;
    pthread_mutex_lock(&s->deferred_lock);
    reply->next = s->deferred;
    if (s->deferred) s->deferred->prev = reply;
    s->deferred = reply;
    pthread_mutex_unlock(&s->deferred_lock);
    atomic_store(&s->deferring, true);
    r->deferred = reply;
    return reply;
}

// unlist takes reply off its server's list, if the stop has not taken it
// already (the stop then still looks at it); true when it did.
static bool unlist(lz_server_t *s, lz_server_reply_t *reply) {
    pthread_mutex_lock(&s->deferred_lock);
    bool listed = reply->listed;
    if (listed) {
        if (reply->prev) reply->prev->next = reply->next;
        else s->deferred = reply->next;
        if (reply->next) reply->next->prev = reply->prev;
        reply->listed = false;
    }
    pthread_mutex_unlock(&s->deferred_lock);
    return listed;
}

// let_go drops one owner's hold on reply (its mutex held) and frees it
// when that was the last.
static void let_go(lz_server_reply_t *reply, int holds) {
    bool last = (reply->owners -= holds) == 0;
    pthread_mutex_unlock(&reply->mutex);
    if (!last) return;
    pthread_mutex_destroy(&reply->mutex);
    free(reply);
}

// not_sent says why a deferred reply's send (rc, from send_job) failed,
// and returns rc.
static int not_sent(int rc, const char *fn) {
    switch (rc) {
    case LZ_EUNREACHABLE: return lz__fail(rc, "%s: the client has gone away: the reply was dropped", fn);
    case LZ_EAGAIN: return lz__fail(rc, "%s: no room in the client's queue: the reply was dropped", fn);
    case LZ_ENOMEM: return lz__fail(rc, "%s: out of memory: the reply was not sent", fn);
    default: return lz__fail(rc, "%s: the reply was not sent: %s", fn, lz_strerror(rc));
    }
}

// finish_reply answers a deferred reply with value, or with the error
// code and message when code is not LZ_OK, and lets the holder's handle go.
// Whatever kept the client from that answer is the caller's to know: a
// send that failed (not_sent), or a reply that could not be made for want
// of memory (an error reply, or the server's out_of_memory one, went
// instead: LZ_ENOMEM).
static int finish_reply(lz_server_reply_t **reply_p, int code, const lz_value_t *value, const char *message,
                        const char *fn) {
    if (!reply_p || !*reply_p) return lz__fail(LZ_EINVAL, "%s: reply is NULL", fn);
    lz_server_reply_t *reply = *reply_p;
    *reply_p = NULL;
    pthread_mutex_lock(&reply->mutex);
    job_t *job = reply->job;
    lz_server_t *s = reply->server;
    reply->job = NULL;
    reply->server = NULL;
    int holds = 1, rc = LZ_OK;
    bool unmade = false, unencoded = false;
    if (job) {
        job->status = code == LZ_OK ? encode_value(s, job, value) : encode_failure(s, job, code, message);
        unmade = code == LZ_OK ? job->status == LZ_ENOMEM : job->no_memory;
        unencoded = job->unencoded;
        rc = send_job(s, job); // under the mutex: a stop waits for it before the server may go
        if (unlist(s, reply)) holds = 2;
    }
    let_go(reply, holds);
    if (!job) return lz__fail(LZ_ECLOSED, "%s: the server stopped first and answered it", fn);
    if (rc < 0) return not_sent(rc, fn);
    if (unencoded)
        return lz__fail(LZ_ESERIALIZATION, "%s: no error reply encodes with the server's serializer: the client "
                        "got an empty reply", fn);
    return unmade ? lz__fail(LZ_ENOMEM, "%s: out of memory: the client got an error reply instead", fn) : LZ_OK;
}

int lz_server_reply_send(lz_server_reply_t **reply_p, const lz_value_t *value) {
    return finish_reply(reply_p, LZ_OK, value, NULL, "lz_server_reply_send");
}

int lz_server_reply_error(lz_server_reply_t **reply_p, int code, const char *message) {
    return finish_reply(reply_p, code == LZ_OK ? LZ_EREMOTE : code, NULL, message, "lz_server_reply_error");
}

bool lz_server_reply_closed(lz_server_reply_t *reply) {
    if (!reply) return true;
    pthread_mutex_lock(&reply->mutex);
    bool closed = !reply->job;
    pthread_mutex_unlock(&reply->mutex);
    return closed;
}

// answer_deferred: the stop answers every reply still deferred
// LZ_ECLOSED, as it answers queued requests, and lets them go: their
// holders' handles then only free them.
static void answer_deferred(lz_server_t *s) {
    for (;;) {
        pthread_mutex_lock(&s->deferred_lock);
        lz_server_reply_t *reply = s->deferred;
        if (reply) {
            s->deferred = reply->next;
            if (s->deferred) s->deferred->prev = NULL;
            reply->listed = false;
        }
        pthread_mutex_unlock(&s->deferred_lock);
        if (!reply) return;
        pthread_mutex_lock(&reply->mutex); // waits for a holder sending it now
        job_t *job = reply->job;
        reply->job = NULL;
        reply->server = NULL;
        let_go(reply, 1);
        if (job) job_drop(job, s);
    }
}

static void reply_pong(lz_server_t *s, job_t *job) {
    lz_value_t *pong = lz_value_object();
    if (pong) {
        lz_value_object_set_string(pong, "status", "ok");
        lz_value_object_set_bool(pong, "pong", true);
        lz_value_object_set_double(pong, "timestamp", lz__now_seconds());
    }
    if (!pong || lz_serializer_encode(s->node.serializer, pong, job->reply) < 0)
        encode_error(s, job, LZ_ENOMEM, "ping: out of memory");
    lz_value_destroy(&pong);
    send_job(s, job);
}

// handle_request takes one received message: every frame before the last
// is routing, echoed back; the last is the request. Runs on the I/O thread.
static void handle_request(lz_server_t *s, lz_frames_t *frames) {
    if (frames->total > frames->count || frames->count < 2) {
        lz__node_drop(&s->node, "request with %zu frames: cannot route a reply", frames->total);
        return;
    }
    size_t last = frames->count - 1;
    job_t *job = job_new(s);
    if (!job) {
        lz__node_error(&s->node, LZ_ENOMEM, "request refused: out of memory");
        send_reply(s, frames->part, last, s->out_of_memory);
        return;
    }
    lz__routing_take(&job->route, frames, last);
    int rc = lz__envelope_decode_request(s->node.serializer, &frames->part[last], lz__frame_size(frames, last),
                                         &job->msg);
    if (rc < 0) {
        char text[256]; // want of memory is not the request's fault: not called malformed
        lz__format(text, sizeof text, "%s request: %s", rc == LZ_ENOMEM ? "unread" : "malformed", lz_last_error());
        lz__node_drop(&s->node, "%s", text);
        lz_message_destroy(&job->msg);
        encode_error(s, job, rc, text);
        send_job(s, job);
        return;
    }
    if (strcmp(lz_message_type(job->msg), "ping") == 0 && !find_exact(s, "ping")) {
        reply_pong(s, job);
        return;
    }
    lz__span_begin_message(&job->span, &s->node, LZ_SPAN_SERVER, job->msg);
    if (!s->pool) {
        answer_and_send(s, job);
    } else if (lz__pool_submit(s->pool, job) < 0) {
        job_drop(job, s);
    }
}

// serve_pooled: the I/O thread reads requests one at a time and hands
// them to the workers, waiting outside the socket's lock
// (lz__node_recv_shared) so the workers' replies never wait for it; a stop
// wakes it.
static void serve_pooled(lz_server_t *s) {
    lz_frames_t frames;
    lz__frames_ready(&frames);
    while (!atomic_load(&s->stopping)) {
        int rc = lz__node_recv_shared(&s->node, &frames, 1, -1, &s->stopping, NULL);
        if (rc == LZ_ECLOSED) break;
        if (rc > 0) handle_request(s, &frames);
        lz__frames_release(&frames);
    }
    lz__frames_fini(&frames);
}

// serve_inline: with a concurrency of 1 the I/O thread is the socket's only
// user (it sends every reply itself), so it may hold the socket while it
// waits: one blocking receive per request, like a REP loop, with no poll
// and no descriptor look-ups. It waits in slices of SERVER_STOP_SLICE_MS so
// a stop is seen within one. Once a handler has deferred a reply, other
// threads send on the socket too: it then waits as a pooled server does,
// outside the lock, so their replies go out at once.
static void serve_inline(lz_server_t *s) {
    lz_node_t *node = &s->node;
    while (!atomic_load(&s->stopping)) {
        if (atomic_load(&s->deferring)) {
            serve_pooled(s);
            return;
        }
        lz_frames_t frames;
        lz__node_lock(node);
        int rc = lz__node_recv(node, &frames, SERVER_STOP_SLICE_MS);
        lz__node_unlock(node);
        if (rc == LZ_ECLOSED) return;
        if (rc < 0) continue;
        handle_request(s, &frames);
        lz__frames_close(&frames);
    }
}

// The I/O thread is the only one that submits to the pool, so it is also
// the one that destroys it when stopping: no request can race the pool's
// end. The whole thread is the server's callback (lz__thread_inside): a
// stop from a handler it runs only asks. The thread ends the stop itself,
// so a stop a handler asked for is complete but for the join.
static void *server_loop(void *arg) {
    lz_server_t *s = arg;
    lz_thread_running_t here;
    lz__thread_enter(&here, s);
    // Not without a pool: that I/O thread runs the handlers and sends their
    // replies, which wait for room as every handler's reply does.
    sends_without_waiting = s->pool != NULL;
    if (s->pool) serve_pooled(s);
    else serve_inline(s);
    // Running handlers finish and send their replies; queued requests are
    // answered LZ_ECLOSED.
    lz__pool_destroy(&s->pool, job_drop);
    answer_deferred(s); // after the handlers, which may defer until they end
    lz__thread_leave(&here);
    return NULL;
}

lz_server_t *lz_server_new(lz_context_t *ctx, const char *endpoints) {
    if (!ctx) return lz__fail_null(LZ_EINVAL, "lz_server_new: ctx is NULL");
    lz_server_t *s = calloc(1, sizeof *s);
    if (!s) return lz__fail_null(LZ_ENOMEM, "lz_server_new: out of memory");
    if (lz__node_init(&s->node, ctx, ZMQ_ROUTER, "server", '@', endpoints) < 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->deferred_lock, NULL);
    return s;
}

void lz_server_destroy(lz_server_t **server_p) {
    if (!server_p || !*server_p) return;
    lz_server_t *s = *server_p;
    if (lz__node_refuse_destroy(&s->node, s, "lz_server_destroy", "handler") != LZ_OK) return;
    if (lz_server_stop(s) != LZ_OK) return; // its I/O thread may still run: leaked rather than freed under it
    for (size_t i = 0; i < s->handler_count; i++) free(s->handlers[i].action);
    free(s->handlers);
    lz__node_close(&s->node);
    job_destroy(lz__spare_take(&s->spare_job));
    lz_buffer_destroy(&s->out_of_memory);
    pthread_mutex_destroy(&s->deferred_lock);
    free(s);
    *server_p = NULL;
}

lz_node_t *lz_server_node(lz_server_t *server) { return server ? &server->node : NULL; }

// finish_requested_stop joins the threads of a stop one of server's
// handlers asked for, unless called from one of them: what a start or a
// registration from another thread does first.
static int finish_requested_stop(lz_server_t *server) {
    if (server->running && atomic_load(&server->stopping) && !lz__thread_inside(server)) return lz_server_stop(server);
    return LZ_OK;
}

int lz_server_on(lz_server_t *server, const char *action, lz_server_handler_fn handler, void *arg) {
    if (!server || !action || !handler) return lz__fail(LZ_EINVAL, "lz_server_on: NULL argument");
    int rc = finish_requested_stop(server);
    if (rc != LZ_OK) return rc;
    if (server->running) return lz__fail(LZ_ESTATE, "lz_server_on: server already started");
    handler_t *h = (handler_t *)find_exact(server, action);
    if (h) { // registering again replaces
        h->fn = handler;
        h->arg = arg;
        return LZ_OK;
    }
    handler_t *grown = realloc(server->handlers, (server->handler_count + 1) * sizeof *grown);
    if (!grown) return lz__fail(LZ_ENOMEM, "lz_server_on: out of memory");
    server->handlers = grown;
    char *copy = strdup(action);
    if (!copy) return lz__fail(LZ_ENOMEM, "lz_server_on: out of memory");
    grown[server->handler_count++] = (handler_t){copy, handler, arg};
    return LZ_OK;
}

int lz_server_on_default(lz_server_t *server, lz_server_handler_fn handler, void *arg) {
    if (!server || !handler) return lz__fail(LZ_EINVAL, "lz_server_on_default: NULL argument");
    int rc = finish_requested_stop(server);
    if (rc != LZ_OK) return rc;
    if (server->running) return lz__fail(LZ_ESTATE, "lz_server_on_default: server already started");
    server->fallback = (handler_t){NULL, handler, arg};
    return LZ_OK;
}

// make_out_of_memory encodes the server's out_of_memory reply, once. A
// serializer that encodes no error reply (raw) sends it empty, as it
// sends them all (encode_error).
static int make_out_of_memory(lz_server_t *s) {
    if (s->out_of_memory) return LZ_OK;
    lz_buffer_t *reply = lz_buffer_new();
    int rc = reply ? lz__envelope_encode_error(s->node.serializer, LZ_ENOMEM, "the server ran out of memory", "",
                                                reply)
                   : LZ_ENOMEM;
    if (rc == LZ_ENOMEM) {
        lz_buffer_destroy(&reply);
        return lz__fail(LZ_ENOMEM, "lz_server_start: out of memory");
    }
    if (rc < 0) lz_buffer_reset(reply);
    s->out_of_memory = reply;
    return LZ_OK;
}

int lz_server_start(lz_server_t *server) {
    if (!server) return lz__fail(LZ_EINVAL, "lz_server_start: server is NULL");
    int rc = finish_requested_stop(server);
    if (rc != LZ_OK) return rc;
    if (server->running) return lz__fail(LZ_ESTATE, "lz_server_start: already started");
    rc = make_out_of_memory(server);
    if (rc != LZ_OK) return rc;
    // One handler at a time needs no pool: the I/O thread runs it, which
    // saves two thread hand-offs per request.
    int workers = server->node.settings->handler_max_concurrency;
    atomic_store(&server->stopping, false);
    server->running = true; // before its threads start: a handler may stop it at once
    server->pool = workers > 1 ? lz__pool_new(workers, SERVER_QUEUE_MAX, job_run, server) : NULL;
    int err;
    if (workers > 1 && !server->pool) rc = lz_last_error_code() < 0 ? lz_last_error_code() : LZ_ENOMEM;
    else if ((err = lz__thread_start(&server->thread, server_loop, server)) != 0)
        rc = lz__thread_fail(err, "lz_server_start");
    if (rc != LZ_OK) {
        lz__pool_destroy(&server->pool, NULL);
        server->running = false;
    }
    return rc;
}

// lz_server_stop: see server_loop for the order of the stop. From one of
// the server's own handlers it only asks: the join would wait for the
// thread it runs on (the I/O thread, or a worker the I/O thread joins).
int lz_server_stop(lz_server_t *server) {
    if (!server) return lz__fail(LZ_EINVAL, "lz_server_stop: server is NULL");
    if (!server->running) return LZ_OK;
    atomic_store(&server->stopping, true);
    lz__node_wake(&server->node); // a pooled server's I/O thread may be waiting with no end
    lz__node_set_send_wait(&server->node, false); // replies nobody has room for are dropped, not waited on
    if (lz__thread_inside(server)) return LZ_OK; // the next stop, start or destroy from another thread joins
    int err = pthread_join(server->thread, NULL);
    if (err) return lz__fail(LZ_ESTATE, "lz_server_stop: cannot join its I/O thread: %s", strerror(err));
    lz__node_set_send_wait(&server->node, true);
    server->running = false;
    return LZ_OK;
}
