"""Domain errors of the archive fetchers; each message is one line saying how to fix it."""
from __future__ import annotations


class ArchiveError(Exception):
    """Base class: fetching a kernel image from a distribution archive failed."""


class UnknownPackage(ArchiveError):
    """No debug kernel package matches what was asked for."""


class UnknownArch(ArchiveError):
    """The suite has no index for the requested architecture."""


class UnknownSuite(ArchiveError):
    """The mirror has no such suite."""


class MirrorError(ArchiveError):
    """The mirror is unreachable or answered with an HTTP error."""

    def __init__(self, message: str, url: str, status: int | None = None):
        super().__init__(message)
        self.url, self.status = url, status


class TruncatedDownload(ArchiveError):
    """The download ended before the size announced by the index."""


class ChecksumMismatch(ArchiveError):
    """The downloaded package does not match the index's SHA256 or size."""


class DebFormatError(ArchiveError):
    """The stream is not a Debian binary package."""


class MemberNotFound(ArchiveError):
    """The package does not contain the wanted file."""


class NoVmlinux(MemberNotFound):
    """The package contains no vmlinux."""


class DiskFull(ArchiveError):
    """No space left on the device holding the cache."""
