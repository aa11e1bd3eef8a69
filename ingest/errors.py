"""Every domain error kernsurf raises, under one base class.

Each message is one line that names the input and says how to fix it; the CLI
turns any `KernsurfError` into a `click.ClickException` with that line.
Errors that also fit a builtin category keep it as a second base
(`UnknownBuild` is a `LookupError`) so that generic callers can still catch them.
"""

from __future__ import annotations


class KernsurfError(Exception):
    """Base class of every error kernsurf reports to its user."""


# Reading images (ingest.readers) and ingesting them (ingest.pipeline)


class ImageError(KernsurfError):
    """The file is not a usable kernel image."""


class NotAnElf(ImageError):
    """The file is not an ELF file."""


class UnsupportedMachine(ImageError):
    """The ELF is for a machine kernsurf does not know."""


class BadDwarf(KernsurfError):
    """The DWARF data is malformed or uses an unsupported encoding."""


class BadBtf(KernsurfError):
    """The bytes are not a well-formed BTF blob."""


class BadModule(KernsurfError):
    """A loadable module (.ko) is unreadable: truncated, corrupt relocations, unknown compression."""


class BadConfig(KernsurfError, ValueError):
    """The file is not a kernel config."""


class IngestError(KernsurfError):
    """An input could not be ingested; the message names the file and the problem."""


# Manifests and `kernsurf build` (ingest.catalog.manifest, ingest.catalog.batch)


class AlreadyStored(IngestError):
    """The build is already in the database (ingest it again with --replace)."""


class ManifestError(KernsurfError, ValueError):
    """The manifest is not valid; the message names the file, line and field."""


class BuildError(KernsurfError):
    """Some builds of the manifest could not be fetched or ingested."""

    def __init__(self, message: str, result: object):
        super().__init__(message)
        self.result = result  # the batch's BuildResult (typed there: errors imports nothing of kernsurf)


# Reading and serving the database (ingest.changes.diff, ingest.queries, ingest.web.serve)


class NoDatabase(KernsurfError):
    """The database file is missing or is not a kernsurf database."""


class OutdatedDatabase(NoDatabase, LookupError):
    """The database was made by a kernsurf too old for what is asked of it."""


class MergeError(KernsurfError):
    """A shard database cannot be merged (not kernsurf's, another schema, a clashing build name)."""


class UnknownGroup(KernsurfError, LookupError):
    """No stored group has that name."""


class UnknownBuild(KernsurfError, LookupError):
    """A build reference matches no stored build, or several."""


class BadKind(KernsurfError, ValueError):
    """A --kind value is neither an item kind nor a change kind."""


# BPF programs and `kernsurf check` (ingest.bpf)


class BadBpfObject(KernsurfError):
    """The file is not a usable BPF object; the message says why and what to do."""


class BadDependency(KernsurfError, ValueError):
    """A dependency's text form cannot be parsed."""


class CheckRefused(KernsurfError):
    """A /check request goes over a limit of the server; the message names the limit.
    `status` is the HTTP status to answer with (413 too large, 422 over a parse budget,
    503 over a time limit or busy, 400 malformed)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


# Distribution archives (ingest.archive)


class ArchiveError(KernsurfError):
    """Fetching a kernel image from a distribution archive failed."""


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


# Published databases (ingest.publish)


class PublishError(KernsurfError):
    """Publishing a database or pulling a published one failed."""


class BadArtefact(PublishError):
    """The URL does not hold a kernsurf publication (no manifest, or a malformed one)."""


class UnreadableFormat(PublishError):
    """The publication is in a format or schema newer than this kernsurf reads."""


class CorruptDownload(PublishError):
    """A downloaded file is cut short or does not match the manifest's size or sha256."""


class NothingToExport(PublishError):
    """An export selects no build; the message says how to name some."""


class DatabaseExists(PublishError):
    """The target database exists and differs from the publication; --replace overwrites it."""
