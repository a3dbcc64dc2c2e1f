/* Internal: sending a frame of 81 bytes or more through recycled buffers.
 *
 * zmq_send copies each frame into a block libzmq mallocs on the sending
 * thread, and the block is freed on another one (the receiver over inproc,
 * an I/O thread over tcp and ipc). Two costs follow, both measured:
 * - Past malloc's fast bins (frames over about 80 bytes), every such
 *   free and every malloc takes the sending thread's arena lock, so the
 *   two threads wait on each other: in a JSON task stream (~170-byte
 *   frames) half of the time went to malloc, free and futex calls.
 * - At 64 KiB the blocks come from the top of a heap that glibc trims back
 *   after every burst, so every frame faults in fresh pages (inproc 64 KiB
 *   runs 7x faster with trimming switched off).
 * Here the frame is copied into a buffer kept from an earlier frame
 * instead, and libzmq hands the buffer back (zmq_msg_init_data's free
 * function) when it is done with it, on whichever thread that is, without
 * a lock (see sendbuf.c). Buffers are kept per power of two from 128 B to
 * 1 MiB, at most LZ_SENDBUF_KEEP bytes of each size (on its shelf and in
 * sending threads' hands together). Smaller frames go through zmq_send:
 * up to 33 bytes libzmq stores them inside the message, and up to 80 its
 * block (frame and 40-byte header) comes from malloc's fast bins, which
 * take no lock, where a recycled buffer would only add work. */
#ifndef LZ_CORE_SENDBUF_H
#define LZ_CORE_SENDBUF_H

#include <stddef.h>
#include <zmq.h>

#define LZ_SENDBUF_MIN 81             // smaller frames: plain zmq_send
#define LZ_SENDBUF_MAX (1024 * 1024)  // larger frames: plain zmq_send
#define LZ_SENDBUF_KEEP (1024 * 1024) // bytes kept per size (shelf and hands), at most

// lz__sendbuf_send sends size bytes at data as one frame on socket, as
// zmq_send(socket, data, size, flags) does: it returns size, or -1 with
// zmq_errno() telling why (nothing is sent then). Thread safety: the
// socket's, as zmq_send; the buffers are shared by all threads.
int lz__sendbuf_send(void *socket, const void *data, size_t size, int flags);

// lz__sendbuf_build makes *msg a frame holding a copy of size bytes at data,
// in a recycled buffer as lz__sendbuf_send would send it (other sizes in a
// block libzmq allocates), so a multipart message can have every frame made
// before its first is sent: once libzmq has taken a frame with ZMQ_SNDMORE,
// a later frame that cannot be made would leave the message half sent, to
// be completed by the next one. Returns 0, the caller then owning *msg
// (zmq_msg_send, or zmq_msg_close, which gives the buffer back), or -1
// with errno ENOMEM and nothing to close. Thread safety: as
// lz__sendbuf_send.
int lz__sendbuf_build(zmq_msg_t *msg, const void *data, size_t size);

// lz__sendbuf_kept: how many buffers for frames of frame_size bytes are
// kept now, on their shelf and in every thread's hand (0 outside
// LZ_SENDBUF_MIN .. LZ_SENDBUF_MAX); exact while no thread is taking one.
// For tests.
size_t lz__sendbuf_kept(size_t frame_size);

#endif
