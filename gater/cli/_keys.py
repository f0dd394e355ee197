"""`gater keys` (API keys for a key file) and `gater certs` (development certificates).

Owns: only the commands. `gater keys add ID --file keys.toml` makes a key, prints it once on
stdout and appends only its SHA-256 (and roles) to the file, created 0600; `gater keys list`
shows the ids and roles a file holds. `gater certs DIR` makes (or reuses) a development CA in
DIR and a certificate for each --name. Both work offline on files: no server is involved.
May import gater.security; must not import the servers, gater.console nor the CLI's client
commands.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import click

__all__ = ["certs", "keys"]

_ROLE = re.compile(r"^[A-Za-z0-9_.:*-]+$")
_KEY_FILE = click.Path(dir_okay=False, path_type=Path)


def _read_keys(file: Path) -> dict[str, dict]:
    """The `[keys]` table of `file` ({} when the file does not exist); a usage error naming
    --file when it cannot be read."""
    if not file.exists():
        return {}
    try:
        return dict(tomllib.loads(file.read_text(encoding="utf-8")).get("keys", {}))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise click.BadParameter(f"cannot read {file}: {e}", param_hint="'--file'") from None


@click.group()
def keys() -> None:
    """API keys: make them and list them. The key file holds hashes only; pass it to servers
    with --api-keys (they re-read it when it changes)."""


@keys.command("add")
@click.argument("key_id")
@click.option("--file", "file", envvar="GATER_API_KEYS_FILE", type=_KEY_FILE, required=True,
              help="The key file to add to (created 0600 when missing) [env GATER_API_KEYS_FILE].")
@click.option("--role", "roles", multiple=True,
              help="A role of the key, as named in the server's --policy (repeat for several).")
def add(key_id: str, file: Path, roles: tuple[str, ...]) -> None:
    """Make an API key named KEY_ID: print it once (only its hash is stored) and add it to the
    key file. Give the printed key to the client (GATER_API_KEY, or `authorization: Bearer`)."""  # fmt: skip
    from ..security import CredentialsError, new_key

    bad = [r for r in roles if not _ROLE.match(r)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r}: use letters, digits and - _ . : *", param_hint="'--role'")
    try:
        key, digest = new_key(key_id)
    except CredentialsError as e:
        raise click.BadParameter(str(e), param_hint="'KEY_ID'") from None
    if key_id in _read_keys(file):
        raise click.BadParameter(f"{file} already has a key {key_id!r}; pick another id (or remove it from the "
                                 "file first)", param_hint="'KEY_ID'")  # fmt: skip
    entry = f'\n[keys.{key_id}]\nsha256 = "{digest}"\n'
    if roles:
        entry += "roles = [" + ", ".join(f'"{r}"' for r in roles) + "]\n"
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(entry)
    click.echo(key)
    click.echo(f"gater: added key {key_id!r} to {file}; the key above is shown only now", err=True)


@keys.command("list")
@click.option("--file", "file", envvar="GATER_API_KEYS_FILE", type=_KEY_FILE, required=True,
              help="The key file [env GATER_API_KEYS_FILE].")
def list_keys(file: Path) -> None:
    """The ids and roles of the keys in a key file."""
    if not file.exists():
        raise click.BadParameter(f"{file} does not exist", param_hint="'--file'")
    for key_id, entry in _read_keys(file).items():
        roles = entry.get("roles", []) if isinstance(entry, dict) else []
        click.echo(f"{key_id}\t{','.join(map(str, roles)) or '-'}")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", "names", multiple=True, default=("node", "gateway", "client"), show_default=True,
              help="Make a certificate for this name (repeat for several); each is also good for localhost, "
                   "127.0.0.1 and ::1.")  # fmt: skip
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650), help="Validity in days.")
def certs(folder: Path, names: tuple[str, ...], days: int) -> None:
    """Make a development CA in FOLDER (or use the one there) and a certificate and key for
    each --name, for trying TLS and mTLS locally. Not for production: use your PKI."""
    from ..security.devcerts import DevCa, DevCertError

    try:
        ca = DevCa(folder, days=days)
        made = [ca.issue(name) for name in names]
    except (DevCertError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{ca.cert_path}  ({'new CA' if ca.created else 'the CA already there'})")
    for cert, key in made:
        click.echo(f"{cert}  {key}")
    if made:
        cert, key = made[0]
        click.echo(f"\ne.g. gater node --tls-cert {cert} --tls-key {key} --tls-client-ca {ca.cert_path}\n"
                   f"     gater version s1 --ca-file {ca.cert_path} --cert-file {made[-1][0]} --key-file {made[-1][1]}",
                   err=True)  # fmt: skip
