"""Build manifests: which kernels make up a database, and how they are grouped.

A manifest is a YAML file::

    defaults:                      # optional: fields every build inherits
      source: debian
      arch: amd64
    builds:
      - id: bookworm               # how groups refer to the build (letters, digits, . _ + -)
        release: 6.1.0-56-amd64    # kernel release, or package: linux-image-6.1.0-56-amd64-dbg
        suite: bookworm            # archive suite (its -updates/-security are searched too)
        version: 6.1.192-2         # optional: pin the package version
        label: 6.1.0-56-amd64      # optional: the build's name in the database (default: release)
      - id: trixie
        release: 6.12.113+deb13-amd64
        suite: trixie
    groups:
      - name: Regular
        kind: series               # series: diffed consecutively, oldest first
        members:                   # build id: display label (default: the build's label)
          - bookworm: "6.1"
          - trixie: "6.12"
      - name: Flavor
        kind: variants             # variants: the first member is the baseline
        members: [trixie, trixie-cloud]

With `source: ubuntu` (manifests/ubuntu.yml) a release is Ubuntu's <abi>-<flavor>
(6.8.0-31-generic, 6.8.0-1008-aws) or `package:` its
linux-image-unsigned-<release>-dbgsym, the suite an Ubuntu codename, and the
arch (which Ubuntu's flavors do not imply) defaults to amd64.

Every scalar is read as text: `6.10` stays "6.10" (YAML would make it the
float 6.1), `no` stays "no". Problems are reported as ManifestError with the
file, the line and the field.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ingest import groups
from ingest.archive import debian, ubuntu
from ingest.archive.sources import DEBIAN_CODENAMES
from ingest.errors import ManifestError

SOURCES = ("debian", "ubuntu")
KINDS = ("series", "variants")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_BUILD_FIELDS = ("id", "source", "package", "release", "suite", "arch", "version", "label")
_DEFAULT_FIELDS = ("source", "suite", "arch")
_GROUP_FIELDS = ("name", "kind", "members")
_Fields = dict[str, yaml.Node]  # a mapping's values by key
_Defaults = dict[str, tuple[str, yaml.Node]]  # defaults: key -> (value, the node giving it)


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """One kernel image the manifest asks for."""

    id: str  # manifest-local name, used by groups
    source: str  # archive: debian
    package: str  # debug package, e.g. linux-image-6.1.0-56-amd64-dbg
    release: str  # kernel release, e.g. 6.1.0-56-amd64
    flavor: str  # e.g. amd64, cloud-amd64, armmp
    suite: str  # e.g. bookworm (its -updates and -security are searched too)
    arch: str  # Debian architecture, e.g. amd64, armhf
    version: str | None  # pinned package version, None = whatever the archive has
    label: str  # the build's name in the database
    line: int = 0  # line of the entry in the manifest, for messages


@dataclass(frozen=True, slots=True)
class Member:
    """One build in a group, with the label the pages show for it there."""

    build: str  # BuildSpec.id
    label: str


@dataclass(frozen=True, slots=True)
class Group:
    """An ordered series (diffed consecutively) or a baseline with variants."""

    name: str
    kind: str  # "series" or "variants"
    members: tuple[Member, ...]

    @property
    def baseline(self) -> Member | None:
        """The member variants are diffed against (None for a series)."""
        return groups.baseline(self.kind, self.members)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed, validated manifest."""

    path: str
    builds: tuple[BuildSpec, ...]
    groups: tuple[Group, ...]

    def build(self, build_id: str) -> BuildSpec:
        """The build with this id (KeyError if none)."""
        for spec in self.builds:
            if spec.id == build_id:
                return spec
        raise KeyError(build_id)


def load(path: str | Path) -> Manifest:
    """Read and validate the manifest at `path`."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None
    return parse(text, str(path))


def parse(text: str, name: str = "<manifest>") -> Manifest:
    """Parse and validate manifest text; `name` is used in messages."""
    return _Parser(name).manifest(text)


class _Parser:
    def __init__(self, name: str):
        self.name = name

    def fail(self, node: yaml.Node | None, message: str) -> ManifestError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return ManifestError(f"{self.name}{line}: {message}")

    # ------------------------------------------------------------------ YAML nodes

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        """A mapping node as {key: value node}; rejects duplicate and unknown keys."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping (key: value lines)")
        out: dict[str, yaml.Node] = {}
        for key_node, value in node.value:
            key = self.scalar(key_node, f"a key of {what}")
            if key in out:
                raise self.fail(key_node, f"{what}: field {key!r} given twice")
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(allowed)}"
                raise self.fail(key_node, f"{what}: unknown field {key!r}{hint}")
            out[key] = value
        return out

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(
                node,
                f"{what} must be a single value, not a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}",
            )
        return node.value.strip()

    def optional(self, fields: dict[str, yaml.Node], key: str, what: str) -> str | None:
        node = fields.get(key)
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return None
        value = self.scalar(node, f"{what}: {key}")
        if not value:
            raise self.fail(node, f"{what}: {key} is empty")
        return value

    # ------------------------------------------------------------------ document

    def manifest(self, text: str) -> Manifest:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ManifestError(f"{self.name}{where}: not valid YAML ({problem})") from None
        if root is None:
            raise ManifestError(f"{self.name}: empty manifest; it needs a `builds:` list")
        top = self.mapping(root, "the manifest", ("defaults", "builds", "groups"))
        defaults = self.defaults(top.get("defaults"))
        if "builds" not in top:
            raise self.fail(root, "the manifest needs a `builds:` list")
        builds = self.builds(top["builds"], defaults)
        groups = self.groups(top.get("groups"), {b.id: b for b in builds})
        return Manifest(self.name, tuple(builds), tuple(groups))

    def defaults(self, node: yaml.Node | None) -> dict[str, tuple[str, yaml.Node]]:
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return {}
        fields = self.mapping(node, "defaults", _DEFAULT_FIELDS)
        return {k: (self.scalar(v, f"defaults: {k}"), v) for k, v in fields.items()}

    def builds(self, node: yaml.Node, defaults: dict[str, tuple[str, yaml.Node]]) -> list[BuildSpec]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, "builds must be a non-empty list of `- id: ...` entries")
        out: list[BuildSpec] = []
        seen_ids: dict[str, int] = {}
        seen_kernels: dict[tuple[str, str, str], str] = {}
        seen_labels: dict[str, str] = {}
        for item in node.value:
            spec = self.build(item, defaults)
            if spec.id in seen_ids:
                raise self.fail(
                    item, f"build id {spec.id!r} is used twice (first on line {seen_ids[spec.id]})"
                )
            kernel = (spec.source, spec.release, spec.arch)
            if kernel in seen_kernels:
                raise self.fail(
                    item,
                    f"build {spec.id!r} is the same kernel as build {seen_kernels[kernel]!r} "
                    f"({spec.release} {spec.arch}); list it once and use it in several groups",
                )
            if spec.label in seen_labels:
                raise self.fail(
                    item,
                    f"build {spec.id!r}: label {spec.label!r} is already the label of build "
                    f"{seen_labels[spec.label]!r}; labels name builds in the database and must differ",
                )
            seen_ids[spec.id], seen_kernels[kernel], seen_labels[spec.label] = spec.line, spec.id, spec.id
            out.append(spec)
        return out

    def build(self, node: yaml.Node, defaults: _Defaults) -> BuildSpec:
        fields = self.mapping(node, "a build", _BUILD_FIELDS)
        build_id = self.optional(fields, "id", "a build")
        if build_id is None:
            raise self.fail(node, "a build needs an `id:` (the name groups use for it)")
        if not _ID.match(build_id):
            raise self.fail(fields["id"], f"build id {build_id!r}: use letters, digits and . _ + - only")
        what = f"build {build_id!r}"
        source, source_node = self.field(fields, defaults, "source", what)
        source = source or "debian"
        if source not in SOURCES:
            raise self.fail(
                source_node, f"{what}: unknown source {source!r}; supported: {', '.join(SOURCES)}"
            )
        if source == "ubuntu":
            return self.ubuntu_build(node, fields, defaults, build_id, what)
        release, flavor = self.release(node, fields, what)
        return BuildSpec(
            id=build_id,
            source=source,
            package=f"linux-image-{release}-dbg",
            release=release,
            flavor=flavor,
            suite=self.suite(node, fields, defaults, what),
            arch=self.arch(node, fields, defaults, flavor, what),
            version=self.optional(fields, "version", what),
            label=self.optional(fields, "label", what) or release,
            line=node.start_mark.line + 1,
        )

    def ubuntu_build(
        self,
        node: yaml.Node,
        fields: _Fields,
        defaults: _Defaults,
        build_id: str,
        what: str,
    ) -> BuildSpec:
        """A build of `source: ubuntu`: an Ubuntu release (<abi>-<flavor>) or its dbgsym package."""
        package = self.optional(fields, "package", what)
        release = self.optional(fields, "release", what)
        if (package is None) == (release is None):
            raise self.fail(
                node,
                f"{what}: give exactly one of `release:` (e.g. 6.8.0-31-generic) "
                "or `package:` (e.g. linux-image-unsigned-6.8.0-31-generic-dbgsym)",
            )
        if package is not None:
            release = package.removeprefix("linux-image-").removeprefix("unsigned-").removesuffix("-dbgsym")
        assert release is not None
        parsed = ubuntu.parse_release(release)
        if parsed is None:
            key = "package" if package is not None else "release"
            raise self.fail(
                fields[key],
                f"{what}: {release!r} is not an Ubuntu release <abi>-<flavor> (like 6.8.0-1008-aws)",
            )
        suite, suite_node = self.field(fields, defaults, "suite", what)
        if suite is None:
            raise self.fail(node, f"{what}: needs a `suite:` (e.g. jammy, noble), here or in defaults")
        if suite.split("-", 1)[0] not in ubuntu.CODENAMES:
            close = difflib.get_close_matches(suite, sorted(ubuntu.CODENAMES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(suite_node, f"{what}: unknown Ubuntu suite {suite!r}{hint}")
        arch, arch_node = self.field(fields, defaults, "arch", what)
        arch = arch or "amd64"
        if arch not in ubuntu.ARCHES:
            raise self.fail(
                arch_node or node, f"{what}: unknown architecture {arch!r}; one of {', '.join(ubuntu.ARCHES)}"
            )
        return BuildSpec(
            id=build_id,
            source="ubuntu",
            package=f"linux-image-unsigned-{release}-dbgsym",
            release=release,
            flavor=parsed[1],
            suite=suite,
            arch=arch,
            version=self.optional(fields, "version", what),
            label=self.optional(fields, "label", what) or release,
            line=node.start_mark.line + 1,
        )

    def field(
        self, fields: _Fields, defaults: _Defaults, key: str, what: str
    ) -> tuple[str | None, yaml.Node | None]:
        """A build's field, else its default, with the node that gave it."""
        value = self.optional(fields, key, what)
        if value is not None:
            return value, fields[key]
        return defaults.get(key, (None, None))

    def release(self, node: yaml.Node, fields: _Fields, what: str) -> tuple[str, str]:
        """The kernel release a build names (by `release:` or `package:`), and its flavor."""
        package = self.optional(fields, "package", what)
        release = self.optional(fields, "release", what)
        if (package is None) == (release is None):
            raise self.fail(
                node,
                f"{what}: give exactly one of `release:` (e.g. 6.1.0-56-amd64) "
                "or `package:` (e.g. linux-image-6.1.0-56-amd64-dbg)",
            )
        if package is not None:
            release = package.removeprefix("linux-image-").removesuffix("-dbg")
            if not package.startswith("linux-image-"):
                raise self.fail(
                    fields["package"],
                    f"{what}: package {package!r} is not a linux-image-<release>-dbg package",
                )
        assert release is not None
        parsed = debian.parse_release(release)
        if parsed is None:
            key = "package" if package is not None else "release"
            raise self.fail(
                fields[key],
                f"{what}: {release!r} is not a full kernel release with a flavor "
                "(like 6.1.0-56-amd64 or 6.12.113+deb13-arm64)",
            )
        return release, parsed[1]

    def suite(
        self,
        node: yaml.Node,
        fields: _Fields,
        defaults: _Defaults,
        what: str,
    ) -> str:
        """A build's Debian suite (its own or the default), checked against the known codenames."""
        suite, suite_node = self.field(fields, defaults, "suite", what)
        if suite is None:
            raise self.fail(
                node, f"{what}: needs a `suite:` (e.g. bookworm, trixie, sid), here or in defaults"
            )
        if suite.split("-", 1)[0] not in DEBIAN_CODENAMES:
            close = difflib.get_close_matches(suite, sorted(DEBIAN_CODENAMES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(suite_node, f"{what}: unknown Debian suite {suite!r}{hint}")
        return suite

    def arch(
        self,
        node: yaml.Node,
        fields: _Fields,
        defaults: _Defaults,
        flavor: str,
        what: str,
    ) -> str:
        """A build's architecture: its own, else the one its flavor implies, else the default."""
        implied = debian.flavor_arch(flavor)
        arch, arch_node = self.optional(fields, "arch", what), fields.get("arch")
        if arch is None:
            # A default arch only applies when the flavor does not say otherwise.
            default, default_node = defaults.get("arch", (None, None))
            arch, arch_node = (implied, None) if implied else (default, default_node)
        if arch is None:
            raise self.fail(node, f"{what}: cannot tell the architecture from flavor {flavor!r}; add `arch:`")
        if arch not in debian.ARCHES:
            raise self.fail(
                arch_node or node, f"{what}: unknown architecture {arch!r}; one of {', '.join(debian.ARCHES)}"
            )
        if implied and implied != arch:
            raise self.fail(
                arch_node or node, f"{what}: flavor {flavor!r} is built for {implied}, not {arch}"
            )
        return arch

    def groups(self, node: yaml.Node | None, builds: dict[str, BuildSpec]) -> list[Group]:
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, "groups must be a list of `- name: ...` entries")
        out: list[Group] = []
        seen: dict[str, int] = {}
        for item in node.value:
            group = self.group(item, builds)
            if group.name in seen:
                raise self.fail(
                    item, f"group {group.name!r} is defined twice (first on line {seen[group.name]})"
                )
            seen[group.name] = item.start_mark.line + 1
            out.append(group)
        return out

    def group(self, node: yaml.Node, builds: dict[str, BuildSpec]) -> Group:
        fields = self.mapping(node, "a group", _GROUP_FIELDS)
        name = self.optional(fields, "name", "a group")
        if name is None:
            raise self.fail(node, "a group needs a `name:` (e.g. Regular, Arch, Flavor)")
        what = f"group {name!r}"
        kind = self.optional(fields, "kind", what)
        if kind not in KINDS:
            raise self.fail(
                fields.get("kind", node),
                f"{what}: `kind:` must be series (diffed consecutively) "
                "or variants (first member is the baseline)",
            )
        members_node = fields.get("members")
        if not isinstance(members_node, yaml.SequenceNode) or not members_node.value:
            raise self.fail(members_node or node, f"{what}: `members:` must be a non-empty list of build ids")
        members: list[Member] = []
        for item in members_node.value:
            if isinstance(item, yaml.MappingNode) and len(item.value) == 1:
                key_node, label_node = item.value[0]
                build_id = self.scalar(key_node, f"{what}: a member")
                label = self.scalar(label_node, f"{what}: the label of {build_id}")
            elif isinstance(item, yaml.ScalarNode):
                build_id, label = self.scalar(item, f"{what}: a member"), ""
            else:
                raise self.fail(item, f"{what}: a member is a build id, or `build-id: label`")
            if build_id not in builds:
                close = difflib.get_close_matches(build_id, list(builds), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(item, f"{what}: no build with id {build_id!r}{hint}")
            label = label or builds[build_id].label
            if any(m.build == build_id for m in members):
                raise self.fail(item, f"{what}: build {build_id!r} is listed twice")
            if any(m.label == label for m in members):
                raise self.fail(item, f"{what}: label {label!r} is used twice")
            members.append(Member(build_id, label))
        if kind == "variants" and len(members) < 2:
            raise self.fail(members_node, f"{what}: variants need a baseline and at least one variant")
        return Group(name, kind, tuple(members))
