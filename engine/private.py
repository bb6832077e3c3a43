"""Instance files and folders readable by the service's account only: files 0600, folders 0700.

The instance folder holds the state database (with encrypted passwords and every user's
migration record), the key that decrypts them, the administrators' password hashes, TLS keys
and migrated mail: nothing in it is for other accounts of the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_FILE_MODE", "PRIVATE_FOLDER_MODE", "private_file", "private_folder"]

#: Mode of every file the service creates in the instance folder.
PRIVATE_FILE_MODE = 0o600

#: Mode of every folder the service creates in the instance folder.
PRIVATE_FOLDER_MODE = 0o700


def private_folder(path: str | Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (an existing folder is left as it is)."""
    folder = Path(path)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for made in reversed(missing):
        made.mkdir(mode=PRIVATE_FOLDER_MODE, exist_ok=True)
        os.chmod(made, PRIVATE_FOLDER_MODE)  # mkdir's mode is narrowed by the umask, never widened: set it
    return folder


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty with mode 0600 when absent; narrow an existing one of ours to 0600.

    A file owned by another account is left as it is (changing it is not ours to do).
    """
    file = Path(path)
    try:
        os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass
    status = file.stat()
    if status.st_uid == os.getuid() and status.st_mode & 0o777 != PRIVATE_FILE_MODE:
        os.chmod(file, PRIVATE_FILE_MODE)
    return file
