"""Several CRM spaces from one deployment: the spaces file, one partition per space.

`CRM_SPACES_FILE` names a TOML file with one `[[spaces]]` table per space:

    [[spaces]]
    name = "emea"                        # partition key: lower-case letters, digits, - and _
    api_url = "https://eu-central.api.example.com"
    space_id = "a1b2c3"
    username_env = "CRM_EMEA_USERNAME"   # names of the variables that hold the credentials
    password_env = "CRM_EMEA_PASSWORD"

The file contains no secret, only the names of the variables that contain them. It is read when the
code location loads, because the spaces become the assets' partitions.
"""

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crm_assets.errors import CrmConfigError
from crm_assets.settings import MAX_PAGE_SIZE, CrmConnection, build_connection

_SPACE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_REQUIRED_KEYS = ("name", "api_url", "space_id", "username_env", "password_env")


@dataclass(frozen=True)
class SpaceConfig:
    """One CRM space of the spaces file."""

    name: str
    api_url: str
    space_id: str
    username_env: str
    password_env: str

    def connection(self, page_size: int = MAX_PAGE_SIZE) -> CrmConnection:
        """Build the validated connection, reading the credentials from their variables now."""
        missing = [name for name in (self.username_env, self.password_env) if not os.environ.get(name)]
        if missing:
            raise CrmConfigError(
                f"Space {self.name}: missing environment variable(s) {', '.join(missing)}, which the "
                "spaces file names for its credentials. Set them and launch the run again."
            )
        try:
            return build_connection(
                self.api_url,
                self.space_id,
                os.environ[self.username_env],
                os.environ[self.password_env],
                page_size,
            )
        except CrmConfigError as error:
            raise CrmConfigError(f"Space {self.name}: {error}") from None


def load_spaces(path: Path) -> tuple[SpaceConfig, ...]:
    """Read and validate a spaces file; raises naming the file and the entry at fault."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CrmConfigError(f"CRM_SPACES_FILE={path} cannot be read: {error}") from None
    entries = document.get("spaces")
    if not isinstance(entries, list) or not entries:
        raise CrmConfigError(f"CRM_SPACES_FILE={path} has no [[spaces]] entries.")
    spaces = tuple(_space(path, number, entry) for number, entry in enumerate(entries, start=1))
    names = [space.name for space in spaces]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CrmConfigError(f"CRM_SPACES_FILE={path} names these spaces more than once: {', '.join(repeated)}.")
    return spaces


def _space(path: Path, number: int, entry: object) -> SpaceConfig:
    if not isinstance(entry, dict):
        raise CrmConfigError(f"CRM_SPACES_FILE={path}: space {number} is not a table.")
    missing = [key for key in _REQUIRED_KEYS if not isinstance(entry.get(key), str) or not entry[key]]
    if missing:
        raise CrmConfigError(f"CRM_SPACES_FILE={path}: space {number} lacks {', '.join(missing)}.")
    if not _SPACE_NAME.match(entry["name"]):
        raise CrmConfigError(
            f"CRM_SPACES_FILE={path}: space name {entry['name']!r} is invalid: use lower-case "
            "letters, digits, '-' and '_' (it becomes a partition key and a pipeline name)."
        )
    return SpaceConfig(**{key: entry[key] for key in _REQUIRED_KEYS})


def configured_spaces() -> tuple[SpaceConfig, ...] | None:
    """Return the spaces of `CRM_SPACES_FILE`, or None when it is not set (one space from `CRM_*`)."""
    configured = os.environ.get("CRM_SPACES_FILE")
    return load_spaces(Path(configured).expanduser()) if configured else None
