"""Runs one job in private PID and mount namespaces: `python -I sandbox_run.py PLAN_JSON -- COMMAND...`.

Standard library only: it runs with `-I`, in the job's environment, before anything of relaunch is importable.
Three processes: this one (outside the new PID namespace, so it can die of the signal that killed the job and the
agent classifies the job as it would an unsandboxed one), an init (PID 1 inside: it mounts, then reaps), and the job.
A PID 1 ignores every signal it has no handler for, even its own SIGKILL, so the job must never be PID 1.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import sys

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER = 0x00020000, 0x20000000, 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SETUP_FAILED = 126  # the shell's "found but could not run"
_LOCKED_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC  # statvfs's ST_* bits have the same values

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    args = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    _check(_libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), args[3]), f"mount {target}")


def enter_namespaces(user_ns: bool) -> None:
    """New mount and PID namespaces (the PID one for children), inside a user namespace mapped to this uid if asked."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | (CLONE_NEWUSER if user_ns else 0)), "unshare")
    if user_ns:  # the same uid inside: the job gets no capability in the namespace, so it cannot undo the mounts
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)


def hide_home(plan: dict[str, object]) -> None:
    """Mount a fresh /proc, an empty read-only tmpfs over the home, and the kept folders back at their own paths."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the stack's mount namespace
    keep, read_only = list(plan["keep"]), list(plan["read_only"])  # type: ignore[call-overload]
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in keep + read_only}  # before the tmpfs hides them
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    home = str(plan["hide"])
    _mount("tmpfs", home, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64k")
    for path in keep + read_only:  # mount points: the tmpfs is empty (a kept folder may hold a read-only one)
        os.makedirs(path, mode=0o700, exist_ok=True)
    for path in keep:
        _mount(f"/proc/self/fd/{fds[path]}", path, None, MS_BIND | MS_REC)
    _remount_read_only(home)  # the job cannot plant files where the stack would look
    for path in read_only:
        _mount(f"/proc/self/fd/{fds[path]}", path, None, MS_BIND | MS_REC)
        _remount_read_only(path)
    for fd in fds.values():
        os.close(fd)


def _remount_read_only(path: str) -> None:
    locked = os.statvfs(path).f_flag & _LOCKED_FLAGS  # a user namespace may add flags, never drop one it inherited
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)


def drop_privileges() -> None:
    """No capability survives the job's exec (root's included), and no set-uid program gives one back."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails without CAP_SETPCAP: then there is nothing to drop
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def run_job(command: list[str]) -> None:
    """In the job's process: default signals, no privilege, then exec the command (127 if it cannot start)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    drop_privileges()
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write(f"could not start {command[0]!r}: {exc}\n")
        os._exit(127)


def init(plan: dict[str, object], command: list[str], parent_alive: int, report: int) -> None:
    """PID 1: die with the outer process, set up the mounts, run the job, reap, and report the job's wait status."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if select.select([parent_alive], [], [], 0)[0]:  # EOF: the outer process died before the line above took effect
        os._exit(137)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as PID 1, a default disposition means: ignored
    try:
        hide_home(plan)
        os.chdir(str(plan["workdir"]))  # the old working folder is the one under the tmpfs: leave it
    except OSError as exc:
        sys.stderr.write(f"relaunch sandbox: {exc}\n")
        os._exit(SETUP_FAILED)
    job = os.fork()
    if job == 0:
        run_job(command)
    while True:  # orphans of the job are re-parented here: reap them all until the job itself ends
        pid, status = os.wait()
        if pid == job:
            os.write(report, f"{status}\n".encode())
            os._exit(0)  # the kernel then kills whatever the job left running in the namespace


def exit_like(status: int) -> None:
    """End this process the way the job ended: the same exit code, or the same signal."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the job's crash, not this process's: no core here
        if signum != signal.SIGKILL:  # the one signal whose disposition cannot be set (nor need be)
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # a signal whose default is not to end the process
    os._exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> None:
    """Enter the namespaces, start the init, wait for it and end as the job did."""
    plan, command = json.loads(argv[0]), argv[2:]
    if argv[1:2] != ["--"] or not command:
        sys.stderr.write("usage: sandbox_run.py PLAN_JSON -- COMMAND...\n")
        os._exit(2)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # the job's group gets these; the job decides
        signal.signal(signum, signal.SIG_IGN)
    try:
        enter_namespaces(bool(plan["user_ns"]))
    except OSError as exc:
        sys.stderr.write(f"relaunch sandbox: {exc}\n")
        os._exit(SETUP_FAILED)
    alive_read, alive_write = os.pipe()
    report_read, report_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(alive_write)
        os.close(report_read)
        init(plan, command, alive_read, report_write)
    os.close(alive_read)
    os.close(report_write)
    _, status = os.waitpid(child, 0)
    reported = os.read(report_read, 32).strip()
    exit_like(int(reported) if reported else status)


if __name__ == "__main__":
    main(sys.argv[1:])
