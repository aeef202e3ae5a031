"""Writing into a jail root from the host, treating the jail as hostile.

The jail's owner controls every symlink and hard link inside its root. So: the
root must lie strictly inside the canonical allowed base; every component below the
base is opened relative to the previous directory fd with ``O_NOFOLLOW`` (a symlink
fails with ELOOP on Linux, EMLINK on FreeBSD); the jail user's uid/gid come from the
jail's own ``etc/passwd`` read through the same walk; the file is written under a
random temporary name created with ``O_CREAT|O_EXCL|O_NOFOLLOW``, fchown'd, fsync'd
and renamed onto the target (rename replaces a symlink or a hard link, never writes
through it), and the directory is fsync'd. See reference/jails-and-services.md.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Final

import attrs

from colibri_vault.errors import (
    EnvWriteFailed,
    JailTargetError,
    JailUserMissing,
    TargetEscapesRoot,
    UnsafeJailUser,
)

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_TEMP_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SYMLINK_ERRNOS: Final = frozenset({errno.ELOOP, errno.EMLINK})
_PASSWD_CAP: Final = 4 * 1024 * 1024
_ENV_CAP: Final = 16 * 1024 * 1024
_TEMP_HEX: Final = 16


def split_components(path: str, what: str) -> list[str]:
    """The names of a '/'-separated path; refuses '.', '..', NUL and empty paths."""
    if "\x00" in path:
        raise TargetEscapesRoot(path.replace("\x00", "\\0"), f"the {what} contains a NUL")
    parts = [p for p in path.split("/") if p != ""]
    for part in parts:
        if part in (".", ".."):
            raise TargetEscapesRoot(path, f"the {what} contains {part!r}")
    if not parts:
        raise TargetEscapesRoot(path, f"the {what} is empty")
    return parts


def _open_dir(parent_fd: int, name: str, shown: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in _SYMLINK_ERRNOS:
            raise TargetEscapesRoot(shown, "it is a symbolic link") from None
        if exc.errno == errno.ENOTDIR:
            # Linux checks O_DIRECTORY before O_NOFOLLOW: a symlink reads as ENOTDIR.
            try:
                is_link = stat.S_ISLNK(
                    os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
                )
            except OSError:
                is_link = False
            reason = "it is a symbolic link" if is_link else "it is not a directory"
            raise TargetEscapesRoot(shown, reason) from None
        if exc.errno == errno.ENOENT:
            raise TargetEscapesRoot(shown, "it does not exist") from None
        raise EnvWriteFailed(shown, exc.strerror or str(exc), exc.errno) from None


def _walk(start_fd: int, names: Sequence[str], shown_prefix: str) -> int:
    """Open ``names`` one by one below ``start_fd`` without following symlinks.

    Returns a new fd of the last directory (the caller closes it)."""
    fd = os.dup(start_fd)
    shown = shown_prefix
    try:
        for name in names:
            shown = f"{shown.rstrip('/')}/{name}"
            nxt = _open_dir(fd, name, shown)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


@attrs.frozen
class JailUser:
    """The jail user as the jail's own etc/passwd defines it."""

    name: str
    uid: int
    gid: int
    home: str


def parse_passwd(text: str, user: str, shown: str) -> JailUser:
    """Find ``user`` in passwd-format ``text``; refuse uid 0, duplicates and bad entries."""
    found: list[JailUser] = []
    # "\n" only, as libc reads it: str.splitlines() also breaks at \x1c-\x1e, \x0b, \x0c,
    # \x85 and \u2028, which would let a field (a gecos) hide an entry libc never sees.
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if fields[0] != user:
            continue
        if len(fields) != 7:
            raise UnsafeJailUser(user, shown, "its passwd entry does not have 7 fields")
        # ASCII digits only: int() also takes " 1001", "+1001", "1_001" and other
        # scripts' digits (Arabic-Indic, fullwidth), which libc does not read as that number.
        if not all(f.isascii() and f.isdigit() for f in fields[2:4]):
            raise UnsafeJailUser(user, shown, "its uid or gid is not a number")
        uid, gid = int(fields[2], 10), int(fields[3], 10)
        if not (0 <= uid < 2**32 - 1 and 0 <= gid < 2**32 - 1):
            raise UnsafeJailUser(user, shown, "its uid or gid is out of range")
        found.append(JailUser(user, uid, gid, fields[5]))
    if not found:
        raise JailUserMissing(user, shown)
    if len(found) > 1:
        raise UnsafeJailUser(user, shown, "it has more than one passwd entry")
    entry = found[0]
    if entry.uid == 0:
        raise UnsafeJailUser(user, shown, "its uid is 0 (root)")
    if entry.gid == 0:
        raise UnsafeJailUser(user, shown, "its gid is 0 (wheel/root)")
    return entry


def _read_regular(dir_fd: int, name: str, shown: str, cap: int) -> bytes | None:
    """The content of regular file ``name`` (no symlink followed), or None if absent."""
    try:
        fd = os.open(name, _FILE_READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _SYMLINK_ERRNOS:
            raise TargetEscapesRoot(shown, "it is a symbolic link") from None
        if exc.errno == errno.ENXIO:  # a socket (a FIFO opens, then fails S_ISREG)
            raise TargetEscapesRoot(shown, "it is not a regular file") from None
        raise EnvWriteFailed(shown, exc.strerror or str(exc), exc.errno) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TargetEscapesRoot(shown, "it is not a regular file")
        if st.st_size > cap:
            raise EnvWriteFailed(shown, f"it is larger than {cap} bytes")
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            if sum(map(len, chunks)) > cap:
                raise EnvWriteFailed(shown, f"it is larger than {cap} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


class JailTarget:
    """An open, verified place for the .env inside one jail.

    Holds the fd of the target's directory from construction (all checks done) to
    :meth:`close`; use it as a context manager.
    """

    def __init__(
        self,
        *,
        allowed_base: str,
        jail_root: str,
        user: str,
        env_path: str | None,
    ) -> None:
        self.user_name = user
        if not os.path.isabs(allowed_base):
            raise TargetEscapesRoot(allowed_base, "the allowed base is not an absolute path")
        base = os.path.realpath(allowed_base)
        if not os.path.isabs(jail_root):
            raise TargetEscapesRoot(jail_root, "the jail root is not an absolute path")
        root_parts = split_components(jail_root, "jail root")
        base_parts = [p for p in base.split("/") if p]
        given_base = split_components(allowed_base, "allowed base") if allowed_base != "/" else []
        # The root is named either under the canonical base or under the base as given
        # (which may itself be a host symlink, e.g. /usr/local/bastille -> /tank/...).
        if root_parts[: len(base_parts)] == base_parts:
            below = root_parts[len(base_parts) :]
        elif given_base and root_parts[: len(given_base)] == given_base:
            below = root_parts[len(given_base) :]
        else:
            raise TargetEscapesRoot(jail_root, f"the jail root is not inside {base}")
        if not below:
            raise TargetEscapesRoot(jail_root, "the jail root is the allowed base itself")
        self.root_shown = "/" + "/".join(base_parts + below)
        try:
            base_fd = os.open(base, _DIR_FLAGS)
        except OSError as exc:
            raise TargetEscapesRoot(
                base, f"the allowed base cannot be opened: {exc.strerror}"
            ) from None
        self._base = base
        self._below = below
        try:
            self._root_fd = _walk(base_fd, below, "/" + "/".join(base_parts))
        finally:
            os.close(base_fd)
        self._dir_fd: int | None = None
        try:
            self.user = self._read_user()
            if env_path is None:
                home = self.user.home
                if not home.startswith("/"):
                    raise UnsafeJailUser(user, self.passwd_shown, "its home is not absolute")
                target_parts = [*split_components(home, "home directory"), ".env"]
            else:
                target_parts = split_components(env_path, "env path")
            *dirs, self.file_name = target_parts
            self._dirs = dirs
            self.path_shown = self.root_shown + "/" + "/".join(target_parts)
            self._dir_fd = _walk(self._root_fd, dirs, self.root_shown)
        except BaseException:
            self.close()
            raise

    @property
    def passwd_shown(self) -> str:
        return self.root_shown + "/etc/passwd"

    def _read_user(self) -> JailUser:
        etc = _walk(self._root_fd, ["etc"], self.root_shown)
        try:
            data = _read_regular(etc, "passwd", self.passwd_shown, _PASSWD_CAP)
        finally:
            os.close(etc)
        if data is None:
            raise JailUserMissing(self.user_name, self.passwd_shown)
        return parse_passwd(data.decode("utf-8", "replace"), self.user_name, self.passwd_shown)

    def close(self) -> None:
        for attr in ("_dir_fd", "_root_fd"):
            fd = getattr(self, attr, None)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)

    def __enter__(self) -> JailTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _dir(self) -> int:
        if self._dir_fd is None:
            raise EnvWriteFailed(self.path_shown, "the target is closed")
        return self._dir_fd

    def check_in_place(self) -> None:
        """Raise :class:`EnvWriteFailed` unless the directory held open since the checks
        is still the one the path names, walked again from the allowed base.

        The fd keeps a directory that was removed or renamed meanwhile (the jail
        recreated, the home rebuilt while bw ran): a file written there would be lost,
        with the result saying it was written."""
        dir_fd = self._dir()
        try:
            base_fd = os.open(self._base, _DIR_FLAGS)
        except OSError as exc:
            raise EnvWriteFailed(
                self.path_shown, f"the allowed base is gone: {exc.strerror}"
            ) from None
        try:
            fd = _walk(base_fd, [*self._below, *self._dirs], self._base)
        except JailTargetError as exc:
            raise EnvWriteFailed(
                self.path_shown, f"its directory changed while the secrets were fetched ({exc})"
            ) from None
        finally:
            os.close(base_fd)
        try:
            now, held = os.fstat(fd), os.fstat(dir_fd)
        finally:
            os.close(fd)
        if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
            raise EnvWriteFailed(
                self.path_shown,
                "its directory was replaced while the secrets were fetched; provision again",
            )

    def is_current(self, content: bytes) -> bool:
        """Whether the target already is exactly ``content``, 0600, owned by the user,
        with a single link (a hard link to elsewhere must be replaced, not kept)."""
        dir_fd = self._dir()
        try:
            st = os.stat(self.file_name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        if (
            st.st_nlink != 1
            or stat.S_IMODE(st.st_mode) != 0o600
            or (st.st_uid, st.st_gid) != (self.user.uid, self.user.gid)
            or st.st_size != len(content)
        ):
            return False
        try:
            current = _read_regular(dir_fd, self.file_name, self.path_shown, len(content) + 1)
        except TargetEscapesRoot:
            return False
        return current == content

    def exists(self) -> bool:
        try:
            os.stat(self.file_name, dir_fd=self._dir(), follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def write(self, content: bytes) -> None:
        """Atomically replace the target by ``content`` (0600, owned by the jail user)."""
        dir_fd = self._dir()
        if len(content) > _ENV_CAP:
            raise EnvWriteFailed(self.path_shown, "the content is too large")
        try:
            st = os.stat(self.file_name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise EnvWriteFailed(self.path_shown, "a directory is in the way")
        except FileNotFoundError:
            pass
        tmp = f".{self.file_name}.colibri-{secrets.token_hex(_TEMP_HEX // 2)}.tmp"
        try:
            fd = os.open(tmp, _TEMP_FLAGS, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise EnvWriteFailed(self.path_shown, exc.strerror or str(exc), exc.errno) from None
        renamed = False
        try:
            os.fchown(fd, self.user.uid, self.user.gid)
            os.fchmod(fd, 0o600)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, self.file_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            renamed = True
            os.fsync(dir_fd)
        except OSError as exc:
            if renamed:
                raise EnvWriteFailed(
                    self.path_shown,
                    f"its directory could not be synced: {exc.strerror or exc}",
                    exc.errno,
                    replaced=True,
                ) from None
            raise EnvWriteFailed(self.path_shown, exc.strerror or str(exc), exc.errno) from None
        finally:
            if fd >= 0:
                os.close(fd)
            if not renamed:
                try:
                    os.unlink(tmp, dir_fd=dir_fd)
                except OSError:
                    pass

    def remove_leftovers(self) -> list[str]:
        """Unlink the temporary files an interrupted :meth:`write` left beside the target
        (a crash or SIGKILL between create and rename): they hold an older set of
        secrets, which would otherwise stay in the jail after the vault dropped them.

        Only regular files named exactly like :meth:`write`'s temporaries go; unlink
        never follows a symlink. Returns the names removed."""
        dir_fd = self._dir()
        pattern = re.compile(
            rf"\.{re.escape(self.file_name)}\.colibri-[0-9a-f]{{{_TEMP_HEX}}}\.tmp", re.ASCII
        )
        removed = []
        for name in os.listdir(dir_fd):
            if not pattern.fullmatch(name):
                continue
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    os.unlink(name, dir_fd=dir_fd)
                    removed.append(name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise EnvWriteFailed(
                    f"{self.path_shown} (leftover {name})", exc.strerror or str(exc), exc.errno
                ) from None
        return removed


def default_jail_root(allowed_base: str, tenant: str) -> str:
    """Bastille's layout: ``<base>/<tenant>/root``."""
    return str(PurePosixPath(allowed_base) / tenant / "root")
