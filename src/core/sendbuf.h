/* Internal: sending a frame of 4 KiB or more through recycled buffers.
 *
 * zmq_send copies each frame into a block libzmq mallocs and frees once the
 * frame is delivered. At 64 KiB those blocks come from the top of a glibc
 * heap that shrinks back (trimming) as often as it grows, so every frame
 * touches fresh pages: the sending loop spends most of its time in page
 * faults (inproc 64 KiB runs 7x faster with trimming switched off). Here
 * the frame is copied into a buffer kept from an earlier frame instead, and
 * libzmq hands the buffer back (zmq_msg_init_data's free function) when it
 * is done with it, on whichever thread that is. Buffers are kept per power
 * of two from 4 KiB to 1 MiB, a bounded number of each; smaller frames go
 * through zmq_send, where malloc's per-thread cache is already quicker. */
#ifndef LZ_CORE_SENDBUF_H
#define LZ_CORE_SENDBUF_H

#include <stddef.h>

#define LZ_SENDBUF_MIN 4096            // smaller frames: plain zmq_send
#define LZ_SENDBUF_MAX (1024 * 1024)   // larger frames: plain zmq_send
#define LZ_SENDBUF_KEEP (2 * 1024 * 1024) // bytes kept per size, at most

// lz__sendbuf_send sends size bytes at data as one frame on socket, as
// zmq_send(socket, data, size, flags) does: it returns size, or -1 with
// zmq_errno() telling why (nothing is sent then). Thread safety: the
// socket's, as zmq_send; the buffers are shared by all threads.
int lz__sendbuf_send(void *socket, const void *data, size_t size, int flags);

// lz__sendbuf_kept: how many buffers are kept now for frames of
// frame_size bytes (0 outside LZ_SENDBUF_MIN .. LZ_SENDBUF_MAX). For tests.
size_t lz__sendbuf_kept(size_t frame_size);

#endif
