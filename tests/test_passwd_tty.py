"""lz passwd at a terminal: the password typed is not shown, and the
terminal's echo is back on afterwards, also after a ^C at the prompt. Runs
lz on a pseudo-terminal the test makes (kept open here, so its settings
can be read once lz is gone), bounded in time. Before, the password was
echoed as it was typed."""
import os
import pty
import select
import signal
import sys
import termios
import time

LZ = sys.argv[1]
SECRET = b"TopSecretPw"
TIMEOUT_S = 60  # yescrypt under valgrind takes a while


def spawn():
    """lz passwd alice with a new pty as its controlling terminal."""
    master, slave = pty.openpty()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        for fd in range(3):
            os.dup2(slave, fd)
        os.execv(LZ, [LZ, "passwd", "alice"])
    return pid, master, slave


def read_until(fd, want, deadline):
    """What the terminal shows until want appears, or the deadline."""
    seen = b""
    while want not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def wait_for(pid, deadline):
    """The child's wait status, killing it at the deadline."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def check(ok, what):
    if not ok:
        print("FAIL:", what)
        sys.exit(1)


def echo_is_on(fd):
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)


def typed_password():
    pid, master, slave = spawn()
    deadline = time.monotonic() + TIMEOUT_S
    shown = read_until(master, b"Password: ", deadline)
    check(b"Password: " in shown, "no prompt in %r" % shown)
    check(not echo_is_on(slave), "echo still on at the prompt")
    os.write(master, SECRET + b"\r")
    status = wait_for(pid, deadline)
    shown += read_until(master, b"\0", time.monotonic() + 0.5)  # the rest (the pty outlives lz)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "status %r, shown %r" % (status, shown))
    check(b"alice:$" in shown, "no hash line in %r" % shown)
    check(SECRET not in shown, "the password was shown: %r" % shown)
    check(echo_is_on(slave), "echo left off after the password")


def interrupted_at_the_prompt():
    pid, master, slave = spawn()
    read_until(master, b"Password: ", time.monotonic() + TIMEOUT_S)
    check(not echo_is_on(slave), "echo still on at the prompt")
    os.kill(pid, signal.SIGINT)
    status = wait_for(pid, time.monotonic() + TIMEOUT_S)
    check(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, "status after ^C %r" % status)
    check(echo_is_on(slave), "echo left off after ^C")


try:
    os.close(os.openpty()[0])
except OSError as e:  # no /dev/ptmx here: ctest shows the test as not run
    print("skipped: no pseudo-terminal:", e)
    sys.exit(77)
typed_password()
interrupted_at_the_prompt()
print("ok")
