/* liberzmq error codes and the per-thread error detail.
 *
 * Every fallible function returns 0 (LZ_OK) on success or a negative lz_error_t;
 * constructors return NULL. Either way the calling thread's detail message
 * (lz_last_error) says what went wrong in words a person can act on.
 *
 * Out of memory: any call that allocates may fail with LZ_ENOMEM (a thread
 * that cannot be started for want of memory included), and the object it
 * was given stays as it was and usable. A send that fails sends nothing; a
 * receive (or dispatch) that cannot decode a message for want of memory
 * counts it in the node's inbound_dropped and returns LZ_ENOMEM at once; a
 * lock release that fails is finished in the background. The sweeps of
 * tests/test_oom_*.c fail each allocation of these calls in turn.
 *
 * Timeouts: a call that waits takes timeout_ms (lz_lock_acquire: wait_ms)
 * as -1 (its default: no limit, or zmq.request_timeout where it says so),
 * 0 (do not wait) or a count of milliseconds. Below -1 it fails LZ_EINVAL
 * at once, nothing sent or received. */
#ifndef LIBERZMQ_ERROR_H
#define LIBERZMQ_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

// The categories follow the Python LiberZMQ exception tree, so a failure has
// the same name on both sides of a mixed fleet.
typedef enum lz_error {
    LZ_OK = 0,
    LZ_EINVAL = -1,         // invalid argument (NULL handle, bad URL, bad option)
    LZ_ENOMEM = -2,         // out of memory
    LZ_ECONFIG = -3,        // configuration: unknown key, bad value, unreadable file
    LZ_ECONNECTION = -4,    // bind/connect failed, peer unreachable
    LZ_ETIMEOUT = -5,       // an operation did not complete in time
    LZ_ESERIALIZATION = -6, // a value could not be encoded or bytes decoded
    LZ_EVALIDATION = -7,    // a value has the wrong shape for the operation
    LZ_ECLOSED = -8,        // the node or context is closed or stopping
    LZ_EPROTOCOL = -9,      // a message on the wire does not follow docs/protocol.md
    LZ_ENOTFOUND = -10,     // unknown name: serializer, action, config key...
    LZ_EAGAIN = -11,        // would block: high water mark reached (backpressure)
    LZ_EREMOTE = -12,       // the peer answered with an error reply
    LZ_ESTATE = -13,        // not allowed in the current state (already started...)
    LZ_EIO = -14,           // operating system I/O error (files, pipes, threads)
    LZ_EUNREACHABLE = -15,  // no route to the given peer identity
    LZ_EZMQ = -16,          // an unexpected libzmq error (the detail names it)
    LZ_EBUSY = -17          // held by someone else: a distributed lock (lock.h)
} lz_error_t;

// lz_strerror returns a static, human-readable description of an error code
// ("timed out"). Unknown codes give "unknown error". Thread safe.
const char *lz_strerror(int code);

// lz_error_name returns the symbolic name of an error code ("LZ_ETIMEOUT"),
// or "LZ_EUNKNOWN". Static string, thread safe.
const char *lz_error_name(int code);

// lz_last_error returns the detail message of the last failure on the calling
// thread, e.g. "config: key 'zmq.linger' from env LIBERZMQ_ZMQ__LINGER: not an
// integer: 'abc'". The string is owned by the thread and valid until its next
// liberzmq call; it is "" when nothing has failed yet. It holds at most 511
// bytes: a longer detail is cut before the first UTF-8 character that does
// not fit whole, so it stays valid UTF-8 (a server sends it in JSON).
const char *lz_last_error(void);

// lz_last_error_code returns the code of the last failure on the calling
// thread (LZ_OK if none).
int lz_last_error_code(void);

// lz_set_error records code (a negative lz_error_t) and the printf-style
// detail as the calling thread's last error, and returns code. A handler
// says why it failed with it: `return lz_set_error(LZ_EVALIDATION, "width
// %d too large", w);` puts the reason in the log and in a dead letter
// (pushpull.h). Thread safe: the detail is the thread's own.
int lz_set_error(int code, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
